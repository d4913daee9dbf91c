"""cocotb co-simulation of the ramp_adc block and its lookup baselines against the golden model, in
Icarus and Verilator: the spec's configurations a-g, random legal configurations, exact timing, and
the LSTM recurrence through the RTL."""

import numpy as np
import pytest
from neurohdl.cosim.runner import run_cosim
from neurohdl.flows import registry
from neurohdl.flows.fuzz import as_sets
from neurohdl.models import ramp_adc as m

SIMS = ["icarus", "verilator"]


def _assert_pass(res, what: str) -> None:
    assert res.passed, f"{what}: {len(res.mismatches)} mismatches, first {res.mismatches[:1]}; log {res.log}"
    # no conversion dropped or duplicated, and every write taken
    assert res.received == res.expected, f"{what}: received {res.received}, expected {res.expected}"


def _cosim(build_root, preset=None, sets=(), **kw):
    cfg = registry.resolve("ramp_adc", preset=preset, sets=list(sets))
    return run_cosim(cfg, build_root=build_root, **kw)


# configs a, c, f and the default in both simulators; the rest in one each (the suite's time budget)
SPEC_RUNS = [(p, s) for p in ("default", "a", "c", "f") for s in SIMS]
SPEC_RUNS += [("gelu", "icarus"), ("b", "verilator"), ("d", "icarus"), ("e", "verilator"), ("g", "icarus")]


@pytest.mark.parametrize("preset,sim", SPEC_RUNS)
def test_spec_configs_every_code_random_rewrites(build_root, preset, sim):
    """The sweep gives every column every input code; then random codes with random table
    rewrites (whole functions, arbitrary non-monotone tables, lengths, biases, missing slots)."""
    seed = 11 + len(preset)
    res = _cosim(build_root, preset, sim=sim, seed=seed, vectors=30 if preset != "e" else 8)
    _assert_pass(res, f"preset {preset}, {sim}, seed {seed}")
    p = registry.get("ramp_adc").model(registry.resolve("ramp_adc", preset=preset).params).params
    assert res.sent["i"] >= 2**p.B_in


@pytest.mark.parametrize(
    "preset,sim", [("lut_column16", "icarus"), ("lut_shared16", "icarus"), ("nladc16", "verilator")]
)
def test_baselines_and_constant_table_build(build_root, preset, sim):
    _assert_pass(_cosim(build_root, preset, sim=sim, seed=5, vectors=20), f"{preset}, {sim}")


def random_config(seed: int) -> list[str]:
    """A random legal configuration, drawn as ``neurohdl fuzz`` draws them: widths, columns, groups,
    modes, code source, K_max, w_d, pipeline, input register, writable table."""
    params = registry.get("ramp_adc").random_params(np.random.default_rng(500 + seed))
    if params["B_in"] > 9 or params["N"] > 6:  # up to 2^(N+1) ramp steps per conversion: the
        # suite stops at B_in 9, N 6 (a few seconds a run), fuzz goes on
        params |= {"B_in": min(params["B_in"], 9), "N": min(params["N"], 6)}
        params.pop("K_max", None)
        params.pop("w_d", None)
    return as_sets(params)


@pytest.mark.parametrize("cfg_seed", range(4))
def test_random_configs(build_root, cfg_seed):
    sets = random_config(cfg_seed)
    sim = SIMS[cfg_seed % 2]
    res = _cosim(build_root, sets=sets, sim=sim, seed=cfg_seed, vectors=30)
    _assert_pass(res, f"config {sets}, {sim}, seed {cfg_seed}")


@pytest.mark.parametrize(
    "preset,sets",
    [
        ("default", []),
        ("b", ["writable=false", "pipe=2"]),
        ("nladc16", []),
        ("a", ["writable=false", "N=1", "B_in=4"]),
        ("lut_shared16", []),
        ("lut_column16", []),
    ],
)
def test_timing_matches_the_cycle_formula_exactly(build_root, tmp_path, preset, sets):
    """No back-pressure: cycles equal the model's, the interval is max(K_run, overhead) with the
    input register (K_run + overhead without), latency K_run + overhead (spec §4)."""
    cfg = registry.resolve("ramp_adc", preset=preset, sets=sets)
    bank = registry.get("ramp_adc").model(cfg.params)
    p = bank.params
    x = np.random.default_rng(3).integers(p.s_min, p.s_max + 1, size=(200, p.C))
    stim = tmp_path / "s.npz"
    np.savez(stim, inputs=x, cfg=np.zeros((0, 5), dtype=np.int64))
    res = run_cosim(cfg, sim="verilator", stimulus=str(stim), backpressure=False, build_root=build_root)
    _assert_pass(res, preset)
    assert res.cycles == res.model_cycles
    if bank.arch != "ramp":
        return
    with np.load(res.timing) as t:
        o, offers = t["o_handshakes"], t["i_offers"]
    K, ov = bank.k_run, p.overhead
    assert o[0] - offers[0] == K + ov
    assert set(np.diff(o).tolist()) == {max(K, ov) if p.in_reg else K + ov}


def test_reprogramming_sigmoid_to_gelu_and_whatif_tables(build_root, tmp_path):
    """Rewrite the ramp column through cfg: sigmoid -> GELU (K 32 -> 33), then a perturbed ramp
    from the what-if model's integer export, in increment mode with a negative bias."""
    from neurohdl.models import ramp_whatif as w

    cfg = registry.resolve("ramp_adc", preset="b")
    bank = registry.get("ramp_adc").model(cfg.params)
    p = bank.params
    writes = []
    tables = [
        m.build_table("gelu", 8, 5),
        w.integer_export(m.build_table("sigmoid", 8, 5), w.Variation(0.02), k=4),
    ]
    for n, tb in enumerate(tables):
        before = 256 * (n + 1)
        writes += [[before, m.CFG_RAMP, 0, j, d] for j, d in enumerate(tb.d)]
        writes += [[before, m.CFG_CODE, 0, j, c] for j, c in enumerate(tb.c)]
        writes += [[before, m.CFG_LEN, 0, 0, tb.K], [before, m.CFG_BIAS, 0, 0, tb.bias]]
    sweep = np.arange(-128, 128)[:, None] + np.zeros((1, p.C), dtype=int)
    x = np.concatenate([sweep, sweep, sweep])
    stim = tmp_path / "s.npz"
    np.savez(stim, inputs=x, cfg=np.asarray(writes))
    res = run_cosim(
        cfg, sim="verilator", seed=2, stimulus=str(stim), dump=str(tmp_path / "d.npz"), build_root=build_root
    )
    _assert_pass(res, "reprogramming")
    out = np.load(tmp_path / "d.npz")["out"]
    assert (out[256:512, 0] == tables[0].codes()).all()
    assert (out[512:, 0] == tables[1].codes()).all()


def test_lstm_recurrence_through_the_rtl(tmp_path):
    from neurohdl.flows import ramp_lstm

    r = ramp_lstm.rtl_subset(tmp_path, "verilator", 4, lambda s: None)
    assert r["codes_equal"] and r["inputs_equal"] and r["predictions_equal"], r
    assert r["conversions"] == 64


@pytest.mark.slow
@pytest.mark.parametrize("sim,vectors", [("icarus", 2000), ("verilator", 20000)])
def test_long_run_config_g(build_root, sim, vectors):
    """Spec §5 duration: >= 2,000 conversions on Icarus and >= 20,000 on Verilator (config g)."""
    res = _cosim(build_root, "g", sim=sim, seed=77, vectors=vectors)
    _assert_pass(res, f"config g, {sim}, {vectors} conversions")
    assert res.sent["i"] >= vectors


@pytest.mark.slow
@pytest.mark.parametrize("cfg_seed", range(4, 24))
def test_random_configs_nightly(build_root, cfg_seed):
    test_random_configs(build_root, cfg_seed)
