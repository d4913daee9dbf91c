"""The sfq block on the command line: listing, netlists as configs, the XOR command and the benchmark."""

import json

import numpy as np
import pytest
from neurohdl.flows.blocks.sfq import BUILTIN


def test_list_has_sfq_presets(cli):
    code, out, _ = cli("list", "--json")
    b = {b["name"]: b for b in json.loads(out)["blocks"]}["sfq"]
    assert code == 0 and {"default", "tiny"} <= set(b["presets"])


def test_a_netlist_file_is_a_config(cli, tmp_path):
    code, out, _ = cli("validate", str(BUILTIN / "tiny.yaml"))
    assert code == 0 and "sfq" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "format: sfq-netlist/1\ninputs: [a]\noutputs: [y]\n"
        "elements:\n  - {id: d, type: delai, in: a, out: y}\n"
    )
    code, _, err = cli("generate", "--config", str(bad), "-o", str(tmp_path / "o"))
    assert code == 2 and "d: unknown element type 'delai' (did you mean 'delay'?)" in err
    assert not (tmp_path / "o").exists()


def test_xor_command(cli):
    """Spec §5 targets: 4/4 correct, margin >= 0.33 for every seed set, >= 0.25 under offsets,
    >= 0.12 over bias scales 950..1225 (worst offset), silent at an input period of 8."""
    code, out, _ = cli("sfq", "xor", "--json")
    r = json.loads(out)
    assert code == 0 and r["correct"] and round(r["margin"], 3) == 0.359
    assert r["deterministic_margin"] == 0.5 and r["seed_set_margin_min"] >= 0.33
    assert min(r["offset_margins"].values()) >= 0.25
    assert all(s["margin_min_over_offsets"] >= 0.12 for s in r["bias_scale"] if 950 <= s["g"] <= 1225)
    assert all(s["margin_min_over_offsets"] < 0 for s in r["bias_scale"] if s["g"] >= 1250)
    assert {x["period"]: x["margin"] for x in r["input_period"]}[8] == 0
    # the float ideal (spec 2.7): independent pulses, leak as a steady -1/P; the golden rate doubles it
    ideal = r["ideal_rates"]
    assert ideal["00"] == ideal["11"] == 0 and 0.18 < ideal["01"] == ideal["10"] < 0.19
    assert 0.18 < r["ideal_error_max"] < 0.2
    # physical mode over slot sizes (spec 2.8): 5 and 8 ps cross slots, 10 ps is the smallest at which
    # pairs 00, 01 and 10 are clean; pair 11 never is: jitter parts the pulses that cancel in the
    # golden model, both hidden neurons fire and their pulses collide in the merger's dead time
    sizes = {x["slot_ps"]: x for x in r["slot_size"]}
    assert sizes[5]["crossings"] > 0 and sizes[8]["crossings"] > 0 and sizes[10]["crossings"] == 0
    assert r["slot_size_min_clean_ps_pairs_00_01_10"] == 10 and r["slot_size_min_clean_ps"] is None
    assert all("11" not in x["clean_pairs"] and set(x["violations"]) <= {"dead_time"} for x in r["slot_size"])


def test_core_alone_beside_the_spec_prototype(cli):
    """Spec §4 gate on the XOR core (no streams or cfg), registers as constants: one flip-flop per
    state bit, 92 like the prototype's. Regression: a merger without dead time kept a dead-time
    counter stuck at 0 (93)."""
    code, _, err = cli("sfq", "core", "--targets", "ice40-hx9k")
    assert code == 2 and "unknown target 'ice40-hx9k' (did you mean 'ice40-hx8k'?)" in err
    code, out, _ = cli("sfq", "core", "--targets", "ice40-hx8k", "--json")
    rows = {r["regs"]: r for r in json.loads(out)}
    fixed, ports = rows["fixed"], rows["ports"]
    assert fixed["ff"] == ports["ff"] == 92 and fixed["lut4"] < ports["lut4"]
    assert fixed["lut_ratio"] <= 1.15 and "gate_met" in fixed and "gate_met" not in ports
    assert fixed["port_bits"] < ports["port_bits"] and fixed["fmax_mhz"] > 0


@pytest.mark.parametrize(
    "row, expect",
    [
        ((5, 0, 0x002, 0), "cfg row 1 (slot 5, we 0, addr 0x2, data 0): reads of a register, SLOTS"),
        ((5, 1, 0x000, 2), "cfg row 1 (slot 5, we 1, addr 0x0, data 2): CTRL takes 0 or 1 (CLEAR)"),
        ((5, 1, 0x005, 1), "writes go to CTRL or a runtime register"),
        ((5, 1, 0x011, 16), "th_hid is 4 bits wide"),
        ((1, 0, 0x001, 0), "slots must rise from 0 to the 8 stimulus slots"),
        ((9, 0, 0x001, 0), "slots must rise from 0 to the 8 stimulus slots"),
    ],
)
def test_bad_cfg_beats_in_a_stimulus_file(tmp_path, cli, row, expect):
    """The model answers for register writes and reads, CLEAR, SLOTS and ID; anything else in a
    stimulus file is refused with the row, not simulated into a mismatch."""
    path = tmp_path / "stim.npz"
    np.savez(path, pulses=np.zeros((8, 2), dtype=np.int64), cfg=np.array([(2, 0, 0x003, 0), row]))
    code, _, err = cli("cosim", "sfq", "--stimulus", str(path), "--sim", "icarus")
    assert code == 2 and expect in err, err
