"""Bulk co-simulation: the harness runs every block's job with no Python per cycle, in all three
simulators, with the same result as the model and the same cycle behaviour in each simulator."""

import numpy as np
import pytest
from neurohdl.cosim.runner import run_cosim
from neurohdl.flows import registry

# Small builds of every block; ramp_adc's default rewrites its table mid-stream and sfq writes and
# reads its registers between slots (gated beats).
CASES = [("lif", "tiny", 6), ("ramp_adc", "default", 20), ("sfq", "default", 80), ("fusemax", "tiny", 3)]


def _same_run(a, b) -> None:
    for key in ("cycles", "sim_cycles", "final", "received", "sent"):
        assert getattr(a, key) == getattr(b, key), (
            f"{key}: {a.sim} {getattr(a, key)} vs {b.sim} {getattr(b, key)}"
        )


def _passed(res, what: str) -> None:
    assert res.passed, f"{what}: {res.mismatches[:3]} missing {res.missing} timed out {res.timed_out}"
    assert res.bulk
    assert res.received == res.expected, "every expected beat arrived exactly once"


@pytest.mark.parametrize("block,preset,vectors", CASES)
def test_bulk_matches_the_model_in_icarus_and_amaranth(block, preset, vectors, build_root):
    cfg = registry.resolve(block, preset=preset)
    runs = [
        run_cosim(cfg, sim=sim, seed=5, vectors=vectors, bulk=True, build_root=build_root)
        for sim in ("icarus", "amaranth")
    ]
    for r in runs:
        _passed(r, f"{block} bulk on {r.sim}, seed 5")
    _same_run(*runs)
    if block in ("ramp_adc", "sfq"):  # cfg beats between conversions or slots: gated beats
        assert runs[0].sent["cfg"] > 0


def test_bulk_in_verilator_equals_icarus_and_the_per_cycle_drivers(build_root):
    cfg = registry.resolve("lif", preset="tiny")
    runs = [
        run_cosim(cfg, sim=sim, seed=2, vectors=6, bulk=True, backpressure=False, build_root=build_root)
        for sim in ("verilator", "icarus")
    ]
    _passed(runs[0], "lif tiny bulk on verilator")
    _same_run(*runs)
    per_cycle = run_cosim(cfg, sim="icarus", seed=2, vectors=6, backpressure=False, build_root=build_root)
    assert per_cycle.passed and not per_cycle.bulk
    assert runs[0].cycles == per_cycle.cycles, "without back-pressure both modes time the design alike"
    assert runs[0].cycles_per_second > 0


@pytest.mark.parametrize("change", ["drop", "extra"])
def test_bulk_catches_a_missing_or_extra_beat(change, monkeypatch, build_root):
    """The scoreboard counts: a model that expects one beat more or one fewer than the RTL sends
    fails the run (as a dropped or duplicated beat in the RTL would)."""
    block = registry.get("lif")
    real = block.expected

    def tampered(model, stim):
        exp = dict(real(model, stim))
        out = exp["out"]
        exp["out"] = out[:-1] if change == "drop" else np.concatenate([out, out[-1:]])
        return exp

    monkeypatch.setattr(block, "expected", tampered)
    cfg = registry.resolve("lif", preset="tiny")
    res = run_cosim(cfg, sim="amaranth", seed=1, vectors=4, build_root=build_root)
    assert not res.passed
    if change == "drop":
        assert res.mismatches and "no more beats expected" in str(res.mismatches[0]["expected"])
    else:
        assert res.missing == {"ev_out": 1} and res.timed_out


def test_cli_bulk_and_a_bad_simulator(cli, tmp_path):
    code, out, err = cli("cosim", "lif", "--preset", "tiny", "--sim", "amaranth", "--vectors", "2")
    assert code == 0, err
    assert "amaranth, bulk (harness in the design)" in out and "cycles/s" in out and "PASS" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("block: lif\npreset: tiny\ncosim:\n  sim: icarsu\n")
    code, _, err = cli("cosim", "--config", str(bad))
    assert code == 2 and "'icarsu' is not one of" in err and "icarus" in err and "Traceback" not in err
