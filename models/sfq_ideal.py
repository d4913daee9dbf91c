"""The float ideal of an SFQ netlist (spec sfq.md §2.7): mean pulse rates per slot propagated through a
feedback-free netlist as if every wire carried independent Bernoulli pulses. It is what the circuit
would do with no quantisation, collisions or correlations; |golden - ideal| measures those effects, and
on deterministic chains the two agree."""

from __future__ import annotations

from .sfq import topological_order
from .sfq_netlist import Element, Netlist

#: element types the spec gives an ideal rate for, with delays, splitters and dividers
IDEAL_TYPES = ("delay", "split", "synapse", "merge", "neuron", "tff", "dro", "divider")


def ideal_rates(
    net: Netlist, in_rates: dict[str, float], regs: dict[str, int] | None = None
) -> dict[str, float]:
    """Pulses per slot on every wire for input rates ``in_rates`` (pulses per slot, each input);
    runtime registers at ``regs`` (else their reset values). Raises ``ValueError`` for feedback or an
    element type without an ideal (C-elements, NDRO, inhibit)."""
    order = topological_order(net)
    if order is None:
        raise ValueError("the float ideal needs a feedback-free netlist")
    values = {name: r.init for name, r in net.regs.items()} | (regs or {})
    rate = {w: float(in_rates.get(w, 0.0)) for w in net.inputs}
    for k in order:
        e = net.elements[k]
        out = _element_rate(e, {p: [rate[w] for w in ws] for p, ws in e.ins.items()}, values)
        rate.update(dict.fromkeys(e.outs, out))
    return rate


def _element_rate(e: Element, lam: dict[str, list[float]], regs: dict[str, int]) -> float:
    param = e.reader(regs)
    t = e.type
    if t in ("delay", "split"):
        return lam["in"][0]
    if t == "synapse":
        p = e.params["p"]
        return (p.exact if p.exact is not None else param("p") / 65535) * lam["in"][0]
    if t == "merge":
        if e.choices["mode"] == "lossy":
            silent = 1.0
            for x in lam["in"]:
                silent *= 1 - x
            return 1 - silent
        return min(1.0, sum(lam["in"]))
    if t == "neuron":
        theta, leak = param("theta"), param("leak")
        if theta == 0:
            return 0.0
        return min(1.0, max(0.0, sum(lam["exc"]) - sum(lam["inh"]) - (1 / leak if leak else 0.0)) / theta)
    if t == "tff":
        return lam["in"][0] / 2
    if t == "dro":
        return min(lam["d"][0], lam["clk"][0])
    if t == "divider":
        return lam["in"][0] / param("k")
    raise ValueError(f"{e.id}: no float ideal for a {t} (the ideal covers {', '.join(IDEAL_TYPES)})")
