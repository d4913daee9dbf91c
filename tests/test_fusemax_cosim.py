"""cocotb co-simulation of the fusemax block against the integer golden model, in Icarus and
Verilator: back-pressure on every stream, jobs back to back, garbage in padding lanes, counters."""

import numpy as np
import pytest
from neurohdl.cosim.runner import run_cosim
from neurohdl.flows import registry
from neurohdl.flows.fuzz import draw
from neurohdl.models import fusemax as fm


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
@pytest.mark.parametrize(
    "interleave, divider, shift",
    [("true", "column", "barrel"), ("false", "column", "barrel"), ("true", "shared", "barrel"),
     ("true", "shared", "serial"), ("compact", "column", "barrel")],
)  # fmt: skip
def test_tiny_bit_exact_under_backpressure(build_root, sim, interleave, divider, shift):
    """The fourth case is the array's small-FPGA build (as the up5k_array preset): serial scale
    shift, exp2 per column, control copies that synthesis may merge; the last the compact
    microarchitecture."""
    sets = [f"interleave={interleave}", f"divider={divider}", f"scale_shift={shift}"]
    if interleave == "compact":
        sets = ["arch=compact", "corr_units=2"]
    if shift == "serial":
        sets += ["exp2_unit=column", "keep_copies=false"]
    cfg = registry.resolve("fusemax", preset="tiny", sets=sets)
    res = run_cosim(cfg, sim=sim, seed=3, vectors=12, build_root=build_root)
    assert res.passed, f"{sim}: {res.mismatches[:1]}; log {res.log}"
    assert res.received == res.expected  # every beat once: none dropped, none duplicated
    assert res.sent["cfg"] == 12


@pytest.mark.parametrize("preset", ["up5k", "up5k_array"])
def test_up5k_presets_in_icarus(build_root, preset):
    """The builds users synthesise for the UP5K (2 x 4, E = F = 64: the compact microarchitecture,
    and the array with every small-FPGA option); Icarus builds them in a second where Verilator
    takes 20."""
    cfg = registry.resolve("fusemax", preset=preset)
    res = run_cosim(cfg, sim="icarus", seed=1, vectors=4, build_root=build_root)
    assert res.passed, f"{res.mismatches[:1]}; log {res.log}"
    assert res.received == res.expected


@pytest.mark.parametrize("options", ["interleave=true", "interleave=false", "arch=compact"])
def test_cycles_equal_the_model_without_backpressure(build_root, options):
    """perf_busy == cycles() is checked inside the testbench; here the handshake-measured span of
    all jobs equals the model's too (the small-FPGA options' cycles: tests/test_fusemax_rtl.py)."""
    cfg = registry.resolve("fusemax", preset="tiny", sets=[options, "M=23", "P=5"])
    res = run_cosim(cfg, sim="verilator", seed=2, vectors=9, backpressure=False, build_root=build_root)
    assert res.passed, res.mismatches[:1]
    assert res.cycles == res.model_cycles
    assert res.final["perf_stall_in"]["value"] == res.final["perf_stall_out"]["value"] == 0


@pytest.mark.parametrize("divider", ["column", "shared"])
def test_divider_bound_tiles_and_odd_epoch_count(build_root, divider):
    """F T_DIV > M1 W: tiles wait for the divider's bank; M1 = 3 flips the parity across tiles."""
    sets = ["F=9", "E=2", "OB=8", "M=5", "P=9", f"divider={divider}"]
    cfg = registry.resolve("fusemax", preset="tiny", sets=sets)
    p = registry.get("fusemax").model(cfg.params).fp
    assert fm.cycles_formula(5, 9, p) is None  # divider-bound
    res = run_cosim(cfg, sim="icarus", seed=4, vectors=1, backpressure=False, build_root=build_root)
    assert res.passed and res.cycles == res.model_cycles


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(8))
def test_random_builds(build_root, seed):
    """Spec §5 random configurations (R, C, E, F, FB, PW, OB, exp2, schedule, build options, M, P),
    drawn as ``neurohdl fuzz`` draws them."""
    sets = draw("fusemax", 100 + seed)
    cfg = registry.resolve("fusemax", sets=sets)
    sim = "verilator" if seed % 2 else "icarus"
    res = run_cosim(cfg, sim=sim, seed=seed, vectors=8, build_root=build_root)
    assert res.passed, f"{sets}: {res.mismatches[:1]}; log {res.log}"


@pytest.mark.parametrize("M", [64, 256])
def test_digits_head_in_icarus_is_bit_identical(build_root, tmp_path, M):
    """Spec §5: the digits head at R = C = 8 with P = 2C queries in Icarus (all 360 queries and every
    M run in Verilator by 'neurohdl fusemax digits')."""
    from neurohdl.models import fusemax_digits as digits

    task = digits.load_task()
    cfg = registry.resolve("fusemax", preset="demo")
    Cs, SH = task.scale()
    stim = tmp_path / "digits.npz"
    np.savez(stim, jobs=np.array([[M, 16, Cs, SH]]), Q=task.Q[:16], K=task.K[:M], V=task.V[:M])
    res = run_cosim(cfg, sim="icarus", seed=1, stimulus=str(stim), backpressure=False, build_root=build_root)
    assert res.passed and res.received["o"] == 2 * 10
    assert res.final["perf_busy"]["value"] == fm.cycles(
        M, 16, fm.FusemaxParams(F=10, OB=8, M_MAX=2048, P_MAX=512)
    )
