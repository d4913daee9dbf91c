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
    timing: str = ""  # .npz: per stream the handshake cycles, per input stream the offer cycles

    def to_json(self) -> dict:
        return asdict(self)


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
    build_root: str | Path = "build/cosim",
    progress: Callable[[str], None] = lambda s: None,
) -> CosimResult:
    from cocotb_tools.runner import get_runner

    from ..flows import registry
    from ..flows.emit import to_verilog
    from ..flows.errors import CheckFailed, ConfigError, MissingToolError
    from .payload import plain_outputs, stream_ports

    t0 = time.monotonic()
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
    text = to_verilog(top, block.name)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    build_dir = Path(build_root).resolve() / f"{block.name}-{digest}-{sim}{'-waves' if waves else ''}"
    run_dir = build_dir / f"run-seed{seed}-{os.getpid()}-{time.monotonic_ns()}"
    run_dir.mkdir(parents=True)
    src = build_dir / f"{block.name}.v"
    np.savez(run_dir / "stimulus.npz", **stim)
    np.savez(run_dir / "expected.npz", **expected)
    job = {
        "block": block.name,
        "seed": seed,
        "backpressure": backpressure,
        "ports": stream_ports(top),
        "outputs": plain_outputs(top),
        "params": {k: v for k, v in vars(model.params).items()} if hasattr(model, "params") else {},
        "stimulus": str(run_dir / "stimulus.npz"),
        "expected": str(run_dir / "expected.npz"),
        "results": str(run_dir / "results.json"),
        "dump": str(run_dir / "dump.npz"),
        "timing": str(run_dir / "timing.npz"),
        "setup": block.setup_beats(top),
    }
    (run_dir / "job.json").write_text(json.dumps(job, indent=1, default=int))

    runner = get_runner(sim)
    build_args = VERILATOR_ARGS if sim == "verilator" else []
    with _env(info.env), _locked(build_dir):
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
        cands = list((build_dir / "sim").glob(f"*.{waves}")) + list(run_dir.glob(f"*.{waves}"))
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
        timing=str(run_dir / "timing.npz"),
    )
