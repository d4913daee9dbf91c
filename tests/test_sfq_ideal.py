"""The float ideal of spec sfq §2.7: exact on deterministic chains, the independent-pulse formulas where
inputs are random, and a clear refusal where it has no answer."""

import numpy as np
import pytest
from neurohdl.models import sfq
from neurohdl.models.sfq_ideal import ideal_rates
from neurohdl.models.sfq_netlist import load_netlist

N = 30000


def golden_rate(doc: dict, stim: dict, wire: str = "y") -> float:
    return len(sfq.simulate(load_netlist(doc), stim, N).trace[wire]) / N


def test_deterministic_chain_is_exact():
    """delay, split, synapse p = 65535, divider, TFF, DRO and a theta = 1 neuron on a periodic train."""
    doc = {
        "inputs": ["a"],
        "outputs": ["y", "z"],
        "elements": [
            {"id": "d", "type": "delay", "in": "a", "out": "a1", "lat": 3},
            {"id": "s", "type": "split", "in": "a1", "out": ["a2", "a3"]},
            {"id": "p", "type": "synapse", "in": "a2", "out": "a4", "p": 65535},
            {"id": "k", "type": "divider", "in": "a4", "out": "a5", "k": 3},
            {"id": "t", "type": "tff", "in": "a5", "out": "a6"},
            {"id": "n", "type": "neuron", "exc": ["a6"], "out": "a7", "theta": 1},
            {"id": "s2", "type": "split", "in": "a7", "out": ["y", "a8"]},
            {"id": "r", "type": "dro", "d": "a3", "clk": "a8", "out": "z"},
        ],
    }
    stim = {"a": sfq.periodic(5, 0, N // 5)}
    ideal = ideal_rates(load_netlist(doc), {"a": 1 / 5})
    assert ideal["y"] == pytest.approx(1 / 30) and ideal["z"] == pytest.approx(1 / 30)
    for wire in ("y", "z"):
        assert abs(golden_rate(doc, stim, wire) - ideal[wire]) <= 2 / N


@pytest.mark.parametrize("p", [0x4000, 0xDEA4])
def test_random_inputs_follow_the_independent_pulse_formulas(p):
    """Bernoulli inputs: a synapse passes p/65535 of them and a lossy merger of two independent trains
    gives 1 - (1 - l1)(1 - l2), within 4 sigma."""
    rng = np.random.default_rng(p)
    la, lb = 0.3, 0.2
    stim = {"a": np.flatnonzero(rng.random(N) < la), "b": np.flatnonzero(rng.random(N) < lb)}
    doc = {
        "inputs": ["a", "b"],
        "outputs": ["y"],
        "elements": [
            {"id": "p", "type": "synapse", "in": "a", "out": "pa", "p": p},
            {"id": "m", "type": "merge", "in": ["pa", "b"], "out": "y", "mode": "lossy"},
        ],
    }
    ideal = ideal_rates(load_netlist(doc), {"a": la, "b": lb})
    assert ideal["pa"] == pytest.approx(p / 65535 * la)
    for wire in ("pa", "y"):
        q = ideal[wire]
        assert abs(golden_rate(doc, stim, wire) - q) <= 4 * np.sqrt(q * (1 - q) / N), wire


def test_a_bias_synapse_uses_the_unquantised_probability():
    syn = {"id": "p", "type": "synapse", "in": "a", "out": "y", "p": {"bias": 140}}
    doc = {"inputs": ["a"], "outputs": ["y"], "elements": [syn]}
    net = load_netlist(doc)
    prm = net.elements[0].params["p"]
    assert prm.exact is not None and prm.value == round(65535 * prm.exact)
    assert ideal_rates(net, {"a": 1.0})["y"] == prm.exact != prm.value / 65535


def test_no_ideal_for_feedback_or_c_elements():
    loop = {"inputs": ["a"], "outputs": ["y"],
            "elements": [{"id": "m", "type": "merge", "in": ["a", "f"], "out": "x"},
                         {"id": "s", "type": "split", "in": "x", "out": ["y", "f"]}]}  # fmt: skip
    with pytest.raises(ValueError, match="feedback-free"):
        ideal_rates(load_netlist(loop), {"a": 0.1})
    c = {
        "inputs": ["a", "b"],
        "outputs": ["y"],
        "elements": [{"id": "c", "type": "c_last", "a": "a", "b": "b", "out": "y"}],
    }
    with pytest.raises(ValueError, match="c: no float ideal for a c_last"):
        ideal_rates(load_netlist(c), {"a": 0.1, "b": 0.1})
