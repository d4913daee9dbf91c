"""The sfq application (spec ``sfq.md`` §5): the rate-coded XOR network, its classification margin,
and its robustness to bias scale, input offset, input rate and synapse seeds."""

from __future__ import annotations

from pathlib import Path

import yaml

from . import sfq
from .sfq_ideal import ideal_rates
from .sfq_netlist import Netlist, bias_p, bias_theta, load_netlist, scaled_bias
from .sfq_timed import physical_netlist, slot_crossings

XOR_PATH = Path(__file__).parent / "netlists" / "xor_t1.yaml"
PAIRS = ((0, 0), (0, 1), (1, 0), (1, 1))
#: the biases standing for the XOR registers at g = 1000 (synapse p, hidden threshold, output threshold)
BIAS = {"syn": 146, "hid": 128, "out": 170}


def xor_net(seeds: list[int] | None = None, theta_out: int | None = None) -> Netlist:
    """The reference netlist, optionally with other synapse seeds (declaration order) and another
    output threshold (a constant in the netlist)."""
    doc = yaml.safe_load(XOR_PATH.read_text())
    if theta_out is not None:
        next(e for e in doc["elements"] if e["id"] == "nout")["theta"] = int(theta_out)
    if seeds is not None:
        syn = [e for e in doc["elements"] if e["type"] == "synapse"]
        for e, s in zip(syn, seeds, strict=True):
            e["seed"] = int(s)
    return load_netlist(doc)


def rates(net: Netlist, regs: dict, *, period: int = 4, pulses: int = 4096, offset: int = 0) -> dict:
    """Output pulses per input pulse for the four input pairs; 'on' = a pulse every ``period`` slots,
    input B ``offset`` slots late."""
    n_slots = period * pulses + offset + 64
    out = {}
    for a, b in PAIRS:
        stim = {
            "a": sfq.periodic(period, 0, pulses) if a else [],
            "b": sfq.periodic(period, offset, pulses) if b else [],
        }
        out[(a, b)] = len(sfq.simulate(net, stim, n_slots, regs=regs).trace["y"]) / pulses
    return out


def ideal(net: Netlist, regs: dict, *, period: int = 4) -> dict:
    """:func:`rates` of the float ideal (spec §2.7): output pulses per input pulse."""
    return {
        (a, b): ideal_rates(net, {"a": a / period, "b": b / period}, regs)["y"] * period for a, b in PAIRS
    }


#: slot sizes of the physical-mode sweep (spec §6), ps
SLOT_SIZES_PS = (5, 8, 10, 12, 15, 20)


def slot_size_sweep(regs: dict, *, period: int = 4, pulses: int = 128, seeds: int = 20) -> list[dict]:
    """Per slot size: the XOR netlist with physical latencies, every input pair (inputs every
    ``period`` slots, ``pulses`` each), ``seeds`` jitter seeds: slot crossings, count errors and
    timing violations against the golden model (spec §2.8 physical mode)."""
    doc = yaml.safe_load(XOR_PATH.read_text())
    out = []
    for T in SLOT_SIZES_PS:
        net = physical_netlist(doc, T)
        tot = {"slot_ps": T, "lat": {e.id: e.lat for e in net.elements}, "crossings": 0, "count_errors": 0,
               "violations": {}, "coincidences": 0, "clean_pairs": []}  # fmt: skip
        for a, b in PAIRS:
            stim = {
                "a": sfq.periodic(period, 0, pulses) if a else [],
                "b": sfq.periodic(period, 0, pulses) if b else [],
            }
            r = slot_crossings(net, stim, period * pulses + 64, regs, range(seeds))
            for key in ("crossings", "count_errors", "coincidences"):
                tot[key] += r[key]
            for kind, n in r["violations"].items():
                tot["violations"][kind] = tot["violations"].get(kind, 0) + n
            if not (r["crossings"] or r["violations"] or r["count_errors"]):
                tot["clean_pairs"].append(f"{a}{b}")
        # the spec's criterion: no crossings, no violations (count errors are reported beside)
        tot["clean"] = not (tot["crossings"] or tot["violations"])
        out.append(tot)
    return out


def margin(r: dict) -> float:
    """min(r01, r10) - max(r00, r11): positive means every pair is classified right."""
    return min(r[(0, 1)], r[(1, 0)]) - max(r[(0, 0)], r[(1, 1)])


def regs_at_scale(g: int) -> dict:
    """The XOR registers for a global bias scale g (permille) through the default bias curves."""
    return {
        "p_syn": bias_p(scaled_bias(BIAS["syn"], g), {}),
        "th_hid": bias_theta(scaled_bias(BIAS["hid"], g), 15, {}),
    }


def out_theta_at_scale(g: int) -> int:
    return bias_theta(scaled_bias(BIAS["out"], g), 15, {})


def classify(r: dict) -> dict:
    """Read a rate as 1 when above the midpoint between the two classes' closest rates."""
    mid = (min(r[(0, 1)], r[(1, 0)]) + max(r[(0, 0)], r[(1, 1)])) / 2
    return {pair: int(v > mid) for pair, v in r.items()}
