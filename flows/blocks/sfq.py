"""Registry entry of the ``sfq`` block: a pulse netlist (YAML), its slot-level golden model and RTL."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from ...models import sfq as model
from ...models.sfq_netlist import (
    CTRL,
    DEBUG_BASE,
    ID,
    REG_BASE,
    SLOTS,
    Netlist,
    NetlistError,
    debug_counters,
    load_netlist,
)
from ...models.sfq_random import random_netlist
from ..config import Param
from ..errors import ConfigError
from ..registry import Block, register

BUILTIN = Path(model.__file__).parent / "netlists"


@dataclass(frozen=True)
class SfqBuild:
    """The block's model object: the netlist and the build parameters (stimulus density)."""

    net: Netlist
    params: SimpleNamespace


class SfqBlock(Block):
    name = "sfq"
    summary = "SFQ-style pulse netlists (synapses, fluxon neurons, SFQ cells) as slot-accurate RTL"
    testbench = "neurohdl.cosim.tb_sfq"
    vectors_meaning = "slots of random input pulses"
    params = (
        Param(
            "netlist",
            str,
            "xor_t1",
            "A shipped netlist ("
            + ", ".join(sorted(p.stem for p in BUILTIN.glob("*.yaml")))
            + "), 'random:SEED' (a random legal netlist of 16 elements of every type) or a .yaml path",
        ),
        Param("density", float, 0.3, "Random stimulus: probability of a pulse per input per slot", 0.0, 1.0),
        Param("bias_scale", int, 1000, "Global bias scale in permille for {bias: N} parameters", 0, 4000),
        Param(
            "cnt_width", int, 0,
            "Debug counters' width in bits, 0 for none (read from 0x400: neurohdl sfq regmap)", 0, 32,
        ),
    )  # fmt: skip
    stimulus_keys = {
        "pulses": (2, None, "int (slots, n_inputs) 0/1 input pulses, one row per slot"),
        "cfg": (
            2, (4,),
            "int (beats, 4) cfg beats (slot, we, addr, data) in order, each taken after `slot` slots: "
            "register writes, CLEAR, reads of a register, SLOTS, ID or a debug counter (possibly none: "
            "shape (0, 4))",
        ),
    }  # fmt: skip
    dump_keys = {"out": "int (slots, n_outputs) output rows 1..slots"}

    def model(self, params: dict) -> SfqBuild:
        src = params["netlist"]
        if src.startswith("random:"):
            seed = src.partition(":")[2]
            if not seed.isdigit():
                raise ConfigError(f"params.netlist: {src!r}: expected random:SEED with SEED an integer >= 0")
            doc = random_netlist(np.random.default_rng(int(seed)), n_elements=16)
            return SfqBuild(load_netlist(doc, bias_scale=params["bias_scale"]), SimpleNamespace(**params))
        path = BUILTIN / f"{src}.yaml" if (BUILTIN / f"{src}.yaml").is_file() else Path(src)
        if not path.is_file():
            raise ConfigError(f"params.netlist: no shipped netlist or file {src!r}")
        try:
            net = load_netlist(path, bias_scale=params["bias_scale"])
        except NetlistError as e:
            raise ConfigError(f"params.netlist: {path.name}: {e}") from None
        return SfqBuild(net, SimpleNamespace(**params))

    def random_params(self, rng: np.random.Generator) -> dict:
        shipped = sorted(p.stem for p in BUILTIN.glob("*.yaml"))
        netlist = f"random:{rng.integers(0, 1 << 16)}" if rng.random() < 0.8 else str(rng.choice(shipped))
        return {
            "netlist": netlist,
            "density": float(rng.choice([0.1, 0.3, 0.6])),
            "cnt_width": int(rng.choice([0, 0, 8, 16])),
        }

    def add_commands(self, sub) -> None:
        from ..sfq_tools import add_commands

        add_commands(sub)

    def adopt(self, doc: dict, path: str) -> dict | None:
        """``--config NETLIST.yaml``: a netlist file is the sfq block with that netlist."""
        fmt = doc.get("format")
        return {"netlist": str(path)} if isinstance(fmt, str) and fmt.startswith("sfq-netlist") else None

    def rtl(self, build: SfqBuild, *, sim: bool):
        from ...hdl.sfq import SfqNet

        return SfqNet(build.net, cnt_width=build.params.cnt_width)

    def stimulus(self, build: SfqBuild, rng: np.random.Generator, vectors: int) -> dict:
        n_in = len(build.net.inputs)
        pulses = (rng.random((vectors, n_in)) < build.params.density).astype(np.int64)
        return {"pulses": pulses, "cfg": random_cfg(build.net, rng, vectors, build.params.cnt_width)}

    def expected(self, build: SfqBuild, stim: dict) -> dict:
        out, rsp = model.run_with_cfg(build.net, stim["pulses"], stim["cfg"], build.params.cnt_width)
        return {"out": out, "rsp": np.asarray(rsp, dtype=np.int64)}

    def check_stimulus(self, stim: dict, build: SfqBuild, source: str) -> None:
        super().check_stimulus(stim, build, source)
        p, n_in = stim["pulses"], len(build.net.inputs)
        if p.shape[1] != n_in:
            raise ConfigError(f"{source}: 'pulses' must have shape (slots, {n_in}), got {p.shape}")
        if p.size and not np.isin(p, (0, 1)).all():
            raise ConfigError(f"{source}: 'pulses' must hold 0 or 1")
        try:
            model.check_cfg(build.net, stim["cfg"], len(p), build.params.cnt_width)
        except ValueError as e:
            raise ConfigError(f"{source}: {e}") from None

    def cycle_model(self, build: SfqBuild, stim: dict) -> int:
        # One slot per clock: T beats take T + 1 cycles (spec §4), plus one per cfg beat between the
        # first and the last slot (cfg never coincides with a slot), and one more per CLEAR there:
        # it waits for its slot's output beat, taken the cycle after the slot.
        slots, T = stim["cfg"][:, 0], len(stim["pulses"])
        between = (slots > 0) & (slots < T)
        return T + 1 + int(between.sum()) + int((between & model.clear_beats(stim["cfg"])).sum())

    anchors = (("golden model speed", ">= 10x PyLSE on the same circuits (spec gate)"),)

    def figures(self, quick: bool) -> list[tuple[str, str, str]]:
        from ...models.sfq_xor import xor_net
        from ..pnr_options import PnrOptions
        from ..sfq_tools import PROTOTYPES, core_rows, logic_cells, run_bench

        r = run_bench(1 if quick else 3)
        rows = [
            (
                f"golden model, XOR {x['pulses']} pulses, inputs {x['pair']}",
                f"{x['golden_events_per_s'] / 1e3:.0f} k pulse-events/s",
                f"PyLSE {x['pylse_events_per_s'][1] / 1e3:.0f} k; "
                f"gate {r['gate_golden'][x['pulses']] / 1e3:.0f} k",
            )
            for x in r["rows"]
        ]
        (core,) = core_rows("xor_t1", xor_net(), ["ice40-hx8k"], PnrOptions(), lambda s: None, ("fixed",))
        lut, _, ff, hx8k = PROTOTYPES["fixed"]
        ours = "not built: " + core["error"] if "error" in core else (
            f"{core['lut4']} LUT4, {core['ff']} FF, {logic_cells(core)} LC, "
            f"{core['fmax_mhz']:.1f} MHz (sfq core)"
        )  # fmt: skip
        rows.append(("XOR T1 core alone, HX8K (constants)", ours, f"prototype {lut} LUT4 / {ff} FF, {hx8k}"))
        return rows

    def cycle_limit(self, build: SfqBuild, stim: dict) -> tuple[float, str]:
        return len(stim["pulses"]), "one slot per clock"


register(SfqBlock())


def random_cfg(net: Netlist, rng: np.random.Generator, slots: int, cnt_width: int = 0) -> np.ndarray:
    """About one cfg beat per 40 slots at random slots: writes of random values to the runtime
    registers and reads of them, CLEAR, reads of SLOTS, ID and (``cnt_width`` > 0) the debug counters
    (what :func:`models.sfq.run_with_cfg` answers for)."""
    regs = list(net.regs.values())
    n_dbg = len(debug_counters(net)) if cnt_width else 0
    kinds = ["slots", "id", "clear"] + (["write"] * 3 + ["read"] if regs else [])
    kinds += ["debug"] * 3 if n_dbg else []
    rows = []
    for slot in np.sort(rng.integers(0, slots + 1, 1 + slots // 40)).tolist():
        kind = str(rng.choice(kinds))
        k = int(rng.integers(len(regs))) if regs else 0
        if kind == "write":
            rows.append((slot, 1, REG_BASE + k, int(rng.integers(1 << regs[k].width))))
        elif kind == "debug":
            rows.append((slot, 0, DEBUG_BASE + int(rng.integers(n_dbg)), 0))
        elif kind == "clear":
            rows.append((slot, 1, CTRL, 1))
        else:
            rows.append((slot, 0, {"slots": SLOTS, "id": ID, "read": REG_BASE + k}[kind], 0))
    return np.asarray(rows, dtype=np.int64).reshape(-1, 4)
