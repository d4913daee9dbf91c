"""The slot rules of :mod:`neurohdl.models.sfq` vectorised over a batch axis: one slot of an element
for B independent runs at once (the step engine's batch mode, spec sfq §2.7). Every rule is the
scalar :func:`~neurohdl.models.sfq.evaluate`'s, step for step; the exhaustive element tests run both
on every transition."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .sfq_netlist import COUNTERS, Element, lfsr_orbit

__all__ = ["BatchState", "evaluate_batch"]

FIELDS = ("b", "c", "q", "dz", "sa", "sb", "n", "lc", "r", "s", "hold")


class BatchState:
    """The state fields of one element in B runs (int64 arrays, from the scalar ``initial`` state)
    and its counters (name -> array; every rule counts only the type's declared counters)."""

    def __init__(self, e: Element, batch: int, initial) -> None:
        for name in FIELDS:
            setattr(self, name, np.full(batch, getattr(initial, name), dtype=np.int64))
        self.counters = {name: np.zeros(batch, dtype=np.int64) for name in COUNTERS.get(e.type, ())}

    def count(self, name: str, k: np.ndarray) -> None:
        self.counters[name] += k

    def item(self, i: int) -> dict[str, int]:
        """Run ``i``'s counters, as the scalar engine keeps them."""
        return {name: int(v[i]) for name, v in self.counters.items()}


def evaluate_batch(
    e: Element, st: BatchState, x: dict[str, np.ndarray], param: Callable[[str], int]
) -> np.ndarray:
    """One slot of ``e`` in every run: ``x[port]`` is (B, wires) of 0/1; returns the (B,) decisions."""
    t = e.type
    one = {p: v[:, 0] for p, v in x.items() if v.shape[1]}
    if t in ("delay", "split"):
        return one["in"]
    if t in ("merge", "neuron"):
        _slot_start(e, st)
        out = _slot_group(e, st, x, param)
        _slot_end(e, st, param)
        return out
    if t == "dro":
        d, clk = one["d"], one["clk"]
        st.count("same_slot", d & clk)
        if e.choices["order"] == "clock_first":
            out = clk & st.b
            b = np.where(clk == 1, 0, st.b)
            st.count("dup", d & b)
            st.b = np.where(d == 1, 1, b)
            return out
        st.count("dup", d & st.b)
        b = np.where(d == 1, 1, st.b)
        out = clk & b
        st.b = np.where(clk == 1, 0, b)
        return out
    if t == "ndro":
        s, r, clk = one["set"], one["rst"], one["clk"]
        out = clk & st.b
        st.count("same_slot", (s | r) & clk)
        st.count("conflict", s & r)
        st.b = np.where((s == 1) & (r == 0), 1, np.where((r == 1) & (s == 0), 0, st.b))
        return out
    if t == "tff":
        st.b = st.b ^ one["in"]
        return one["in"] & (st.b == 0).astype(np.int64)
    if t in ("c_last", "c_first"):
        a, b = one["a"], one["b"]
        first = ((st.sa == 0) & (st.sb == 0) & ((a | b) == 1)).astype(np.int64)
        st.count("dup", (a & st.sa) + (b & st.sb))
        sa, sb = st.sa | a, st.sb | b
        both = sa & sb
        st.sa, st.sb = np.where(both == 1, 0, sa), np.where(both == 1, 0, sb)
        return both if t == "c_last" else first
    if t == "inhibit":
        a, clk = one["a"], one["clk"]
        st.count("same_slot", a & clk)
        out = clk & (1 - st.b)
        st.b = np.where(a == 1, 1, np.where(clk == 1, 0, st.b))
        return out
    if t == "divider":
        c = st.c + one["in"]
        fire = (one["in"] == 1) & (c == param("k"))
        st.c = np.where(fire, 0, c)
        return fire.astype(np.int64)
    if t == "synapse":
        hit = one["in"] == 1
        out = hit & (st.s <= param("p"))
        st.count("pass", out.astype(np.int64))
        st.count("block", (hit & ~out).astype(np.int64))
        orbit, pos = lfsr_orbit()
        st.s = np.where(hit, orbit[(pos[st.s] + param("steps")) % len(orbit)], st.s)
        return out.astype(np.int64)
    raise AssertionError(f"no rule for {t}")


def _slot_start(e: Element, st: BatchState) -> None:
    """:func:`~neurohdl.models.sfq.slot_start` in every run."""
    if e.type == "neuron":
        st.hold = (st.r > 0).astype(np.int64)
        st.r = st.r - st.hold
    else:
        st.hold = (st.dz >= 1).astype(np.int64)
        st.dz = st.dz - st.hold


def _slot_group(e: Element, st: BatchState, x: dict[str, np.ndarray], param) -> np.ndarray:
    """:func:`~neurohdl.models.sfq.slot_group` in every run."""
    if e.type == "neuron":
        return _neuron_group(e, st, x, param)
    c = x["in"].sum(1)
    hold = st.hold == 1
    if e.choices["mode"] == "lossy":
        out = ~hold & (c >= 1)
        st.count("lost", np.where(hold, c, np.maximum(0, c - 1)))
    else:
        q = st.q + c
        out = ~hold & (q >= 1)
        q = q - out
        over = np.maximum(0, q - param("depth"))
        st.count("lost", over)
        st.q = q - over
    st.dz = np.where(out, param("dead"), st.dz)
    st.hold = st.hold | out
    return out.astype(np.int64)


def _slot_end(e: Element, st: BatchState, param) -> None:
    """:func:`~neurohdl.models.sfq.slot_end` in every run."""
    if e.type != "neuron":
        return
    P = param("leak")
    if P == 0:
        st.lc = np.zeros_like(st.lc)
        return
    tick = st.lc >= P - 1
    st.lc = np.where(tick, 0, st.lc + 1)
    leak = tick & (st.n > 0)
    st.n = st.n - leak
    st.count("leaked", leak.astype(np.int64))


def _neuron_group(e: Element, st: BatchState, x: dict[str, np.ndarray], param) -> np.ndarray:
    """:func:`~neurohdl.models.sfq.neuron_group` in every run."""
    n_max = 2 ** param("width") - 1
    e_in, i_in = x["exc"].sum(1), x["inh"].sum(1)
    if e.choices["fanin"] == "merge":
        st.count("fanin_lost", np.maximum(0, e_in - 1) + np.maximum(0, i_in - 1))
        e_in, i_in = np.minimum(e_in, 1), np.minimum(i_in, 1)
    hold = st.hold == 1
    st.count("refr_drop", np.where(hold, e_in + i_in, 0))
    e_in, i_in = np.where(hold, 0, e_in), np.where(hold, 0, i_in)
    st.count("cancelled", np.minimum(e_in, i_in))
    m = st.n + e_in - i_in
    sat = np.maximum(0, m - n_max)
    st.count("sat_drop", sat)
    m = m - sat
    floor = np.maximum(0, -m)
    st.count("floor_drop", floor)
    m = m + floor
    theta = param("theta")
    fire = ~hold & (theta != 0) & (m >= theta)
    st.count("fires", fire.astype(np.int64))
    st.r = np.where(fire, param("refractory"), st.r)
    st.hold = np.where(fire, (st.r > 0).astype(np.int64), st.hold)
    if e.choices["reset"] == "subtract":
        m = np.where(fire, m - theta, m)
    else:
        st.count("reset_drop", np.where(fire, m - theta, 0))
        m = np.where(fire, 0, m)
    st.n = m
    return fire.astype(np.int64)
