"""Timed reference model of SFQ pulse netlists (spec ``sfq.md`` §2.8): pulses at integer femtoseconds,
one event heap, each element a transition machine with the golden model's rules.

Pulses that reach an element at the same time (within ``coincide_fs``) form a group that the slot
rule resolves. Elements whose state moves with time (neurons: leak, refractory, count-mode re-fire;
mergers: dead time and queue) catch up the slots between groups and wake themselves when they may
fire without input. In *aligned* mode (delays = lat * T_slot, no jitter) every pulse lands at a
multiple of T_slot and the traces equal the golden model's slot for slot; in *physical* mode the
element library's delays apply, with optional jitter, and timing checks report dead-time, setup and
hold violations.
"""

from __future__ import annotations

import copy
import heapq
import math
from dataclasses import dataclass, field

import numpy as np

from .sfq import _State, evaluate, initial_state, simulate, slot_end, slot_group, slot_start
from .sfq_netlist import Element, Netlist, load_netlist

#: library delays in ps (PyLSE v0.1.0 cells; placeholders for the neuromorphic elements)
DELAY_PS = {
    "delay": 5.7, "split": 4.3, "merge": 8.2, "dro": 5.1, "c_last": 8.0, "c_first": 9.0, "inhibit": 9.6,
    "ndro": 5.5, "neuron": 10.0, "synapse": 5.0, "tff": 5.0, "divider": 5.0,
}  # fmt: skip
DEAD_PS = {"split": 4.3, "merge": 8.2}
SETUP_PS = {"dro": 2.3, "inhibit": 1.2}
HOLD_PS = {"inhibit": 5.0}
#: elements whose state changes with time, not only with input pulses
TIMED_STATE = {"neuron", "merge"}
CLOCK_PORT = {"dro": "clk", "ndro": "clk", "inhibit": "clk"}


class SfqTimingError(Exception):
    def __init__(self, kind: str, element: str, t_fs: int, wires: tuple[str, ...]):
        super().__init__(f"{kind} violation at {element}, t = {t_fs} fs, wires {', '.join(wires)}")
        self.kind, self.element, self.t_fs, self.wires = kind, element, t_fs, wires


def fs(ps: float) -> int:
    return round(ps * 1000)


@dataclass
class TimedResult:
    times: dict[str, np.ndarray]  # pulse times per wire, fs
    counters: dict[str, dict[str, int]]
    violations: list[tuple[str, str, int]] = field(default_factory=list)
    coincidences: int = 0

    def slots(self, wire: str, slot_fs: int, phase_fs: int = 0) -> np.ndarray:
        return np.round((self.times[wire] + phase_fs) / slot_fs).astype(np.int64)


def simulate_timed(
    net: Netlist,
    stim: dict[str, np.ndarray],
    n_slots: int,
    *,
    aligned: bool = True,
    regs: dict[str, int] | None = None,
    jitter: bool = False,
    run_seed: int = 0,
    coincide_fs: int = 0,
    violations: str = "raise",
) -> TimedResult:
    """Input pulses at ``slot * slot_ps``; runs until every event before ``n_slots`` slots is done."""
    T = fs(net.slot_ps)
    end = n_slots * T
    reg_vals = {name: r.init for name, r in net.regs.items()} | dict(regs or {})
    rng = np.random.default_rng([net.seed, run_seed])
    elements = net.elements
    load: dict[str, tuple[int, str]] = {}
    for k, e in enumerate(elements):
        for port, ws in e.ins.items():
            for w in ws:
                load[w] = (k, port)
    states: list[_State] = [initial_state(e) for e in elements]
    last_slot = [-1] * len(elements)  # last slot a timed-state element was evaluated in
    last_group = [dict() for _ in elements]  # port -> time of the previous group (timing checks)
    delay = [_delay(e, T, aligned) for e in elements]
    if aligned:
        for e in elements:
            for table in (DEAD_PS, SETUP_PS, HOLD_PS):
                if e.type in table and fs(table[e.type]) >= T:
                    raise ValueError(
                        f"{e.id}: a {table[e.type]} ps window is not below the {net.slot_ps} ps slot"
                    )
    times: dict[str, list[int]] = {w: [] for w in net.wires}
    heap: list[tuple[int, int, str]] = []  # (time, order, wire) ; wire "" = wake-up of element order
    seq = 0
    for w in net.inputs:
        for s in np.asarray(stim.get(w, []), dtype=np.int64):
            if 0 <= s < n_slots:
                heapq.heappush(heap, (int(s) * T, seq, w))
                seq += 1
    found: list[tuple[str, str, int]] = []
    coincidences = 0

    def emit(k: int, t: int) -> None:
        nonlocal seq
        d = delay[k]
        if jitter:
            d = round(d * (1 + float(np.clip(rng.normal(0, 0.2 / 3), -0.2, 0.2))))
        for w in elements[k].outs:
            heapq.heappush(heap, (t + d, seq, w))
            seq += 1

    def catch_up(k: int, slot: int) -> None:
        """Evaluate a timed-state element with no input in the slots before ``slot``."""
        e = elements[k]
        for u in range(last_slot[k] + 1, slot):
            if evaluate(e, states[k], _idle(e), e.reader(reg_vals)):
                emit(k, u * T)
        last_slot[k] = max(last_slot[k], slot - 1)

    def wake(k: int, slot: int) -> None:
        nonlocal seq
        if slot < n_slots + 1:
            heapq.heappush(heap, (slot * T, seq, f"@{k}"))
            seq += 1

    # A merger or neuron takes every group of a slot (its inputs within the slot's time) in time
    # order; the slot's end, with the leak tick, is an event just before the next slot begins.
    open_slot: dict[int, int] = {}

    def close(k: int) -> None:
        slot = open_slot.pop(k)
        slot_end(elements[k], states[k], elements[k].reader(reg_vals))
        if _may_fire_idle(elements[k], states[k], elements[k].reader(reg_vals)):
            wake(k, slot + 1)

    while heap and heap[0][0] < end + T:
        t0 = heap[0][0]
        if heap[0][2].startswith("!"):
            close(int(heapq.heappop(heap)[2][1:]))
            continue
        group: list[str] = []
        while heap and heap[0][0] <= t0 + coincide_fs and not heap[0][2].startswith("!"):
            t, _, w = heapq.heappop(heap)
            group.append(w)
            if not w.startswith("@"):
                times[w].append(t)
        by_element: dict[int, dict[str, list[str]]] = {}
        for w in group:
            if w.startswith("@"):
                by_element.setdefault(int(w[1:]), {})
            elif w in load:
                k, port = load[w]
                by_element.setdefault(k, {}).setdefault(port, []).append(w)
        for k, ports in sorted(by_element.items()):
            e = elements[k]
            slot = (t0 + T // 2) // T
            timed_state = e.type in TIMED_STATE
            if timed_state:
                if slot > last_slot[k]:  # the slot's first group (or its wake-up) opens it
                    catch_up(k, slot)
                    slot_start(e, states[k])
                    last_slot[k] = open_slot[k] = slot
                    heapq.heappush(heap, (slot * T + T // 2 - 1, seq, f"!{k}"))
                    seq += 1
                elif not ports:
                    continue  # a wake-up for a slot already open
            x = {p: [1 if w in ports.get(p, ()) else 0 for w in ws] for p, ws in e.ins.items()}
            if sum(len(v) for v in ports.values()) > 1:
                coincidences += 1
            if not aligned:
                found += _checks(e, ports, t0, last_group[k])
            rule = slot_group if timed_state else evaluate
            if rule(e, states[k], x, e.reader(reg_vals)):
                emit(k, t0)
    if found and violations == "raise":
        kind, element, t = found[0]
        raise SfqTimingError(kind, element, t, ())
    for k in list(open_slot):  # slots opened after the last event time the loop runs to
        close(k)
    for k, e in enumerate(elements):
        if e.type in TIMED_STATE:
            catch_up(k, n_slots + 1)
    return TimedResult(
        times={w: np.asarray([t for t in v if t <= end], dtype=np.int64) for w, v in times.items()},
        counters={e.id: dict(st.counters) for e, st in zip(elements, states, strict=True)},
        violations=found,
        coincidences=coincidences,
    )


def _delay(e: Element, T: int, aligned: bool) -> int:
    return e.lat * T if aligned else fs(DELAY_PS[e.type])


def _idle(e: Element) -> dict[str, list[int]]:
    return {p: [0] * len(ws) for p, ws in e.ins.items()}


def _may_fire_idle(e: Element, st: _State, param) -> bool:
    """Whether the element can emit a pulse in the next slot without input."""
    if e.type == "merge":
        return e.choices["mode"] == "queue" and st.q > 0
    theta = param("theta")
    return e.choices["fanin"] == "count" and theta != 0 and st.n >= theta


def _checks(
    e: Element, ports: dict[str, list[str]], t: int, last: dict[str, int]
) -> list[tuple[str, str, int]]:
    """Dead time on each input, and setup/hold of data against the clock (physical mode)."""
    out = []
    dead = fs(DEAD_PS.get(e.type, 0))
    for p in ports:
        if p in last and t - last[p] < dead:
            out.append(("dead_time", e.id, t))
    clk = CLOCK_PORT.get(e.type)
    if clk:
        setup, hold = fs(SETUP_PS.get(e.type, 0)), fs(HOLD_PS.get(e.type, 0))
        if clk in ports:
            data_last = max((last[p] for p in last if p != clk), default=None)
            if data_last is not None and 0 < t - data_last < setup:
                out.append(("setup", e.id, t))
        elif clk in last and 0 < t - last[clk] < hold:
            out.append(("hold", e.id, t))
    for p in ports:
        last[p] = t
    return out


def physical_netlist(doc: dict, slot_ps: float) -> Netlist:
    """The netlist ``doc`` at slot size ``slot_ps`` with the physical mode's golden latencies,
    lat_e = max(1, ceil(delay_e / T_slot)) from the library delays (spec §2.8)."""
    d = copy.deepcopy(doc)
    d["slot_ps"] = slot_ps
    for el in d["elements"]:
        el["lat"] = max(1, math.ceil(round(DELAY_PS[el["type"]] / slot_ps, 9)))
    return load_netlist(d)


def slot_crossings(
    net: Netlist, stim: dict, n_slots: int, regs: dict | None = None, seeds: range = range(20)
) -> dict:
    """Physical mode against the golden model (spec §2.8): per wire the phase
    phi_w = median(golden slot * T - t) of the run without jitter, then for each jitter seed every
    pulse's slot round((t + phi_w) / T) against the golden slot. Returns the crossings (pulses in
    another slot), count errors (wires with a different number of pulses, by how many), violations
    by kind and coincidences, summed over the seeds."""
    T = fs(net.slot_ps)
    golden = simulate(net, stim, n_slots, regs=regs)
    base = simulate_timed(net, stim, n_slots, aligned=False, regs=regs, violations="record")
    phase = {}
    for w, t in base.times.items():
        g = golden.trace[w]
        if len(t) and len(t) == len(g):
            phase[w] = int(np.median(g * T - t))
    out = {"crossings": 0, "count_errors": 0, "violations": {}, "coincidences": 0, "runs": len(seeds)}
    for seed in seeds:
        r = simulate_timed(net, stim, n_slots, aligned=False, regs=regs, jitter=True, run_seed=seed,
                           violations="record")  # fmt: skip
        for w, t in r.times.items():
            g = golden.trace[w]
            if len(t) != len(g):
                out["count_errors"] += abs(len(t) - len(g))
            elif len(t):
                out["crossings"] += int((np.round((t + phase.get(w, 0)) / T).astype(np.int64) != g).sum())
        for kind, _, _ in r.violations:
            out["violations"][kind] = out["violations"].get(kind, 0) + 1
        out["coincidences"] += r.coincidences
    return out
