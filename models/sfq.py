"""Slot-level golden model of SFQ pulse netlists (spec ``sfq.md`` §2): the reference for the RTL.

Time is an integer slot; a wire carries at most one pulse per slot. Per slot every element reads its
inputs and state, then all next states commit together; what an element decides in slot t appears on
its output in slot t + lat. This module holds the element rules (one small state machine each) and
the ``step`` engine, which runs any netlist, feedback and mid-run register writes included.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .sfq_batch import BatchState, evaluate_batch
from .sfq_netlist import (
    COUNTERS,
    CTRL,
    DEBUG_BASE,
    ID,
    LFSR_TAPS,
    REG_BASE,
    SLOTS,
    Element,
    Netlist,
    debug_counters,
    lfsr_orbit,
    netlist_id,
)


def lfsr_step(s: int, k: int = 1) -> int:
    """The synapse LFSR (16-bit Galois, right shift, taps 0xB400) advanced k times."""
    for _ in range(k):
        s = (s >> 1) ^ (LFSR_TAPS if s & 1 else 0)
    return s


@dataclass
class Result:
    """Pulse trains and counters of one run. ``trace[wire]`` holds the slots with a pulse."""

    trace: dict[str, np.ndarray]
    counters: dict[str, dict[str, int]]
    n_slots: int
    pulse_events: int
    jj_switches: int
    truncated: int
    outputs: tuple[str, ...] = ()

    def dense(self, wires: tuple[str, ...] | list[str] | None = None) -> np.ndarray:
        """0/1 rows 0..n_slots for the given wires (default: the outputs)."""
        wires = tuple(wires or self.outputs)
        out = np.zeros((self.n_slots + 1, len(wires)), dtype=np.int64)
        for k, w in enumerate(wires):
            out[self.trace[w], k] = 1
        return out


@dataclass
class _State:
    """Mutable per-element state; which fields matter depends on the element type."""

    b: int = 0
    c: int = 0
    q: int = 0
    dz: int = 0
    sa: int = 0
    sb: int = 0
    n: int = 0
    lc: int = 0
    r: int = 0
    s: int = 1
    hold: int = 0  # a neuron refractory or a merger dead in the current slot: inputs are dropped
    counters: dict[str, int] = field(default_factory=dict)

    def count(self, name: str, k: int = 1) -> None:
        if k:
            self.counters[name] = self.counters.get(name, 0) + k


def initial_state(e: Element) -> _State:
    st = _State(counters={name: 0 for name in COUNTERS.get(e.type, ())})
    if e.type == "tff":
        st.b = e.params["init"].value
    elif e.type == "synapse":
        st.s = e.params["seed"].value
    elif e.type == "neuron":
        st.n = e.params["n0"].value
    return st


def evaluate(e: Element, st: _State, x: dict[str, list[int]], param) -> int:
    """One slot of element ``e``: inputs ``x[port]`` (lists of 0/1), parameters via ``param(name)``.
    Updates ``st`` and returns the decision (0/1) that lands on the output ``lat`` slots later."""
    t = e.type
    if t in ("delay", "split"):
        return x["in"][0]
    if t in ("merge", "neuron"):
        slot_start(e, st)
        out = slot_group(e, st, x, param)
        slot_end(e, st, param)
        return out
    if t == "dro":
        d, clk = x["d"][0], x["clk"][0]
        st.count("same_slot", d & clk)
        if e.choices["order"] == "clock_first":
            out = clk & st.b
            if clk:
                st.b = 0
            if d:
                st.count("dup", st.b)
                st.b = 1
            return out
        if d:
            st.count("dup", st.b)
            st.b = 1
        out = clk & st.b
        if clk:
            st.b = 0
        return out
    if t == "ndro":
        s, r, clk = x["set"][0], x["rst"][0], x["clk"][0]
        out = clk & st.b
        st.count("same_slot", (s | r) & clk)
        if s and r:
            st.count("conflict")
        elif s:
            st.b = 1
        elif r:
            st.b = 0
        return out
    if t == "tff":
        if x["in"][0]:
            st.b ^= 1
            return int(st.b == 0)
        return 0
    if t in ("c_last", "c_first"):
        # Both C-elements latch each input until both were seen; they differ only in when they fire.
        a, b = x["a"][0], x["b"][0]
        first = int(not st.sa and not st.sb and bool(a or b))
        st.count("dup", (a & st.sa) + (b & st.sb))
        st.sa |= a
        st.sb |= b
        both = int(st.sa and st.sb)
        if both:
            st.sa = st.sb = 0
        return both if t == "c_last" else first
    if t == "inhibit":
        a, clk = x["a"][0], x["clk"][0]
        st.count("same_slot", a & clk)
        out = clk & (1 - st.b)
        if clk:
            st.b = 0
        if a:
            st.b = 1
        return out
    if t == "divider":
        if x["in"][0]:
            st.c += 1
            if st.c == param("k"):
                st.c = 0
                return 1
        return 0
    if t == "synapse":
        if not x["in"][0]:
            return 0
        out = int(st.s <= param("p"))
        st.count("pass" if out else "block")
        st.s = lfsr_step(st.s, param("steps"))
        return out
    raise AssertionError(f"no rule for {t}")


def slot_start(e: Element, st: _State) -> None:
    """A slot of a merger or neuron begins: a dead merger or a refractory neuron (dz or r > 0) holds
    the whole slot, dropping its inputs, and counts down. One slot of either is its start, its
    inputs as one group and its end; the timed model applies several groups in one slot."""
    if e.type == "neuron":
        st.hold = int(st.r > 0)
        st.r -= st.hold
    else:
        st.hold = int(st.dz >= 1)
        st.dz -= st.hold


def slot_group(e: Element, st: _State, x: dict[str, list[int]], param) -> int:
    """One group of input pulses at a merger or neuron (§2.5 steps 1-6); returns the decision."""
    if e.type == "neuron":
        return neuron_group(e, st, x, param)
    c = sum(x["in"])
    if e.choices["mode"] == "lossy":
        if st.hold:
            st.count("lost", c)
            return 0
        out = int(c >= 1)
        st.count("lost", max(0, c - 1))
        if out:  # one pulse per slot: a later group of the slot is lost too
            st.dz, st.hold = param("dead"), 1
        return out
    st.q += c
    out = 0
    if not st.hold and st.q >= 1:
        out, st.q, st.dz, st.hold = 1, st.q - 1, param("dead"), 1
    depth = param("depth")
    if st.q > depth:
        st.count("lost", st.q - depth)
        st.q = depth
    return out


def slot_end(e: Element, st: _State, param) -> None:
    """The end of a merger's or neuron's slot: the neuron's leak tick (every P-th slot, P = leak)."""
    if e.type == "neuron":
        P = param("leak")
        tick = P != 0 and st.lc >= P - 1
        st.lc = 0 if (P == 0 or tick) else st.lc + 1
        if tick and st.n > 0:
            st.n -= 1
            st.count("leaked")


def neuron_group(e: Element, st: _State, x: dict[str, list[int]], param) -> int:
    """One group of input pulses at a neuron: fan-in, refractory drop, cancellation, integration with
    saturation and floor, fire and reset. After a fire with a refractory period, later groups of
    the slot are dropped too."""
    n_max = 2 ** param("width") - 1
    e_in, i_in = sum(x["exc"]), sum(x["inh"])
    if e.choices["fanin"] == "merge":
        st.count("fanin_lost", max(0, e_in - 1) + max(0, i_in - 1))
        e_in, i_in = min(e_in, 1), min(i_in, 1)
    if st.hold:
        st.count("refr_drop", e_in + i_in)
        e_in = i_in = 0
    st.count("cancelled", min(e_in, i_in))
    m = st.n + e_in - i_in
    if m > n_max:
        st.count("sat_drop", m - n_max)
        m = n_max
    if m < 0:
        st.count("floor_drop", -m)
        m = 0
    theta = param("theta")
    out = 0
    if not st.hold and theta != 0 and m >= theta:
        out = 1
        st.count("fires")
        st.r = param("refractory")
        st.hold = int(st.r > 0)
        if e.choices["reset"] == "subtract":
            m -= theta
        else:
            st.count("reset_drop", m - theta)
            m = 0
    st.n = m
    return out


def _stim_rows(net: Netlist, stim, n_slots: int) -> np.ndarray:
    rows = np.zeros((n_slots + 1, len(net.inputs)), dtype=np.int64)
    if isinstance(stim, dict):
        for k, w in enumerate(net.inputs):
            slots = np.asarray(stim.get(w, []), dtype=np.int64)
            slots = slots[slots < n_slots]
            rows[slots, k] = 1
    else:
        a = np.asarray(stim, dtype=np.int64)
        if a.ndim != 2 or a.shape[1] != len(net.inputs):
            raise ValueError(
                f"stimulus rows of shape {a.shape}: give (slots, {len(net.inputs)}) or (B, slots, "
                f"{len(net.inputs)}) 0/1 for the inputs {', '.join(net.inputs)}"
            )
        rows[: min(n_slots, len(a))] = a[:n_slots]
    return rows


def simulate(
    net: Netlist,
    stim,
    n_slots: int,
    regs: dict[str, int] | None = None,
    writes: list[tuple[int, str, int]] = (),
    engine: str = "auto",
    settle: bool = True,
) -> Result:
    """Run ``n_slots`` input slots. ``stim`` is {input: slots}, 0/1 rows (n_slots, n_in), or a batch
    of them (B, n_slots, n_in), which the step engine runs at once and returns one Result per run;
    ``writes`` are (slot, register, value), acting from that slot. ``engine``: ``step`` (every slot,
    any netlist), ``event`` (feedback-free, no writes: elements visited in topological order, each
    evaluated only in the slots where it has input or time-driven state), ``auto`` (event when legal).
    Both engines give identical results. ``settle``: the elements also take slot ``n_slots``, where
    the last inputs' pulses arrive (no new input), so the counters account for every pulse; without
    it (step engine) the counters are those after ``n_slots`` slots, which the RTL's debug counters
    hold. The output rows are the same either way."""
    if engine not in ("auto", "step", "event"):
        raise ValueError(f"engine {engine!r} is not auto, step or event")
    if not isinstance(stim, dict) and np.ndim(stim) == 3:  # a batch: the step engine's vectorised rules
        if engine == "event":
            raise ValueError(
                "the event engine runs one stimulus; a batch (B, slots, inputs) needs engine 'step'"
            )
        return _simulate_step(net, stim, n_slots, regs, writes, settle)
    order = topological_order(net)
    if engine == "event" or (engine == "auto" and order is not None and not writes and settle):
        if order is None or writes or not settle:
            raise ValueError("the event engine needs a feedback-free netlist, no mid-run writes and settle")
        return _simulate_event(net, stim, n_slots, regs, order)
    return _simulate_step(net, stim, n_slots, regs, writes, settle)


def topological_order(net: Netlist) -> list[int] | None:
    """Element indices with every driver before its loads, or None if the netlist has feedback."""
    driver = {w: k for k, e in enumerate(net.elements) for w in e.outs}
    deps = [{driver[w] for ws in e.ins.values() for w in ws if w in driver} for e in net.elements]
    done: list[int] = []
    placed = [False] * len(deps)
    while len(done) < len(deps):
        ready = [k for k in range(len(deps)) if not placed[k] and all(placed[d] for d in deps[k])]
        if not ready:
            return None
        for k in ready:
            placed[k] = True
            done.append(k)
    return done


def _simulate_event(net: Netlist, stim, n_slots: int, regs: dict | None, order: list[int]) -> Result:
    rows = _stim_rows(net, stim, n_slots)
    reg_vals = {name: r.init for name, r in net.regs.items()} | {k: int(v) for k, v in (regs or {}).items()}
    trace: dict[str, np.ndarray] = {w: np.flatnonzero(rows[:, k]) for k, w in enumerate(net.inputs)}
    counters: dict[str, dict[str, int]] = {}
    truncated = 0
    for k in order:
        e = net.elements[k]
        st = initial_state(e)
        param = e.reader(reg_vals)

        events: dict[int, dict[str, list[int]]] = {}
        if e.type not in ("delay", "split", "synapse") and all(len(ws) <= 1 for ws in e.ins.values()):
            # one wire per port: shared read-only input lists (the rules never modify their inputs)
            hit = {p: set(trace[ws[0]].tolist()) if ws else set() for p, ws in e.ins.items()}
            for t in sorted(set().union(*hit.values())):
                events[t] = {p: (_ONE if t in h else _ZERO) if e.ins[p] else [] for p, h in hit.items()}
        elif e.type not in ("delay", "split", "synapse"):
            for port, ws in e.ins.items():
                for j, w in enumerate(ws):
                    for t in trace[w].tolist():
                        events.setdefault(t, {p: [0] * len(v) for p, v in e.ins.items()})[port][j] = 1
        else:
            events = dict.fromkeys(trace[e.ins["in"][0]].tolist())
        fired: list[int] = []
        if e.type in ("delay", "split"):
            fired = sorted(events)
        elif e.type == "synapse":
            fired = _synapse_events(e, st, trace[e.ins["in"][0]], param)
        elif e.type in ("merge", "neuron"):
            fired = _timed_element(e, st, events, n_slots, param)
        else:
            for t in sorted(events):
                if evaluate(e, st, events[t], param):
                    fired.append(t)
        out = np.asarray(fired, dtype=np.int64) + e.lat
        truncated += int((out > n_slots).sum()) * len(e.outs)
        for w in e.outs:
            trace[w] = out[out <= n_slots]
        counters[e.id] = dict(st.counters)
    return _result(net, trace, counters, n_slots, truncated)


_ONE, _ZERO = [1], [0]


def _synapse_events(e: Element, st: _State, slots: np.ndarray, param) -> list[int]:
    """Pulse j meets state step^(K*j)(seed): one gather from the orbit, no per-pulse loop."""
    orbit, pos = lfsr_orbit()
    K = param("steps")
    states = orbit[(pos[st.s] + K * np.arange(len(slots) + 1)) % 65535]
    passed = states[:-1] <= param("p")
    st.s = int(states[-1])
    st.count("pass", int(passed.sum()))
    st.count("block", int((~passed).sum()))
    return slots[passed].tolist()


def _timed_element(e: Element, st: _State, events: dict, n_slots: int, param) -> list[int]:
    """Mergers and neurons: evaluate the slots with input, and idle slots one by one only while the
    state can still change without input; leak ticks in between in closed form (lc = slot mod P)."""
    idle = {p: [0] * len(ws) for p, ws in e.ins.items()}
    fired: list[int] = []
    slots = sorted(events)
    u = 0  # next slot not yet evaluated
    for t in [*slots, n_slots + 1]:
        while u < t and _busy(e, st, param):
            if evaluate(e, st, idle, param):
                fired.append(u)
            u += 1
        if u < t and e.type == "neuron":
            P = param("leak")
            if P:
                ticks = t // P - u // P  # slots v in [u, t) with v mod P == P - 1
                drop = min(st.n, ticks)
                st.n -= drop
                st.count("leaked", drop)
                st.lc = t % P
        if e.type == "merge" and u < t:
            st.dz = max(0, st.dz - (t - u))
        u = t
        if t <= n_slots:
            if evaluate(e, st, events[t], param):
                fired.append(t)
            u = t + 1
    return fired


def _busy(e: Element, st: _State, param) -> bool:
    """Whether an idle slot can change more than the leak (or emit a pulse)."""
    if e.type == "merge":
        return st.q > 0 or (st.dz > 0 and e.choices["mode"] == "queue")
    theta = param("theta")
    return st.r > 0 or (theta != 0 and st.n >= theta)


def _result(net: Netlist, trace: dict, counters: dict, n_slots: int, truncated: int) -> Result:
    jj = {w: e.jj for e in net.elements for ws in e.ins.values() for w in ws}
    counts = {w: len(v) for w, v in trace.items()}
    return Result(
        trace={w: np.asarray(trace[w], dtype=np.int64) for w in net.wires},
        counters=counters | {},
        n_slots=n_slots,
        pulse_events=int(sum(counts.values())),
        jj_switches=int(sum(counts[w] * jj.get(w, 0) for w in counts)),
        truncated=truncated,
        outputs=net.outputs,
    )


def _simulate_step(
    net: Netlist,
    stim,
    n_slots: int,
    regs: dict | None,
    writes: list[tuple[int, str, int]],
    settle: bool = True,
) -> Result | list[Result]:
    """Dense two-phase, slot by slot. ``stim`` of shape (B, slots, inputs) runs B stimuli at once
    (the rules of :mod:`.sfq_batch`) and gives one Result per run; else the scalar rules, one Result."""
    batch = not isinstance(stim, dict) and np.ndim(stim) == 3
    stims = list(stim) if batch else [stim]
    wires = net.wires
    index = {w: k for k, w in enumerate(wires)}
    max_lat = max((e.lat for e in net.elements), default=1)
    vals = np.zeros((len(stims), n_slots + 1 + max_lat, len(wires)), dtype=np.int8)
    for b, s in enumerate(stims):
        vals[b, : n_slots + 1, : len(net.inputs)] = _stim_rows(net, s, n_slots)
    vals[:, n_slots:, : len(net.inputs)] = 0  # input slots are 0..n_slots-1
    reg_vals = {name: r.init for name, r in net.regs.items()}
    for name, v in (regs or {}).items():
        if name not in reg_vals:
            raise ValueError(f"no register {name!r}")
        reg_vals[name] = int(v)
    pending = sorted(writes, key=lambda w: w[0])
    states = [initial_state(e) for e in net.elements]
    if batch:
        states = [BatchState(e, len(stims), st) for e, st in zip(net.elements, states, strict=True)]
    ports = [{p: [index[w] for w in ws] for p, ws in e.ins.items()} for e in net.elements]
    outs = [[index[w] for w in e.outs] for e in net.elements]
    jj = np.zeros(len(wires), dtype=np.int64)  # jj of the element each wire feeds
    for e in net.elements:
        for ws in e.ins.values():
            for w in ws:
                jj[index[w]] = e.jj
    truncated = np.zeros(len(stims), dtype=np.int64)
    wpos = 0
    for t in range(n_slots + settle):
        while wpos < len(pending) and pending[wpos][0] <= t:
            _, name, value = pending[wpos]
            reg_vals[name] = int(value)
            wpos += 1
        row = vals[:, t] if batch else vals[0, t]
        for e, st, pt, ow in zip(net.elements, states, ports, outs, strict=True):
            param = e.reader(reg_vals)
            if batch:  # the runs that fired
                x = {p: row[:, ws].astype(np.int64) for p, ws in pt.items()}
                runs = np.flatnonzero(evaluate_batch(e, st, x, param))
            else:  # scalar rules: a run is much faster without numpy per element
                runs = (
                    [0]
                    if evaluate(e, st, {p: [int(row[w]) for w in ws] for p, ws in pt.items()}, param)
                    else []
                )
            if len(runs):
                if t + e.lat > n_slots:
                    truncated[runs] += len(ow)
                elif batch:
                    vals[np.ix_(runs, [t + e.lat], ow)] = 1
                else:
                    vals[0, t + e.lat, ow] = 1
    results = []
    for b in range(len(stims)):
        dense = vals[b, : n_slots + 1]
        counts = dense.sum(0).astype(np.int64)
        results.append(
            Result(
                trace={w: np.flatnonzero(dense[:, k]).astype(np.int64) for k, w in enumerate(wires)},
                counters={
                    e.id: st.item(b) if batch else dict(st.counters)
                    for e, st in zip(net.elements, states, strict=True)
                },
                n_slots=n_slots,
                pulse_events=int(counts.sum()),
                jj_switches=int((counts * jj).sum()),
                truncated=int(truncated[b]),
                outputs=net.outputs,
            )
        )
    return results if batch else results[0]


def periodic(period: int, offset: int, count: int) -> np.ndarray:
    """Slots of a periodic pulse train."""
    return offset + period * np.arange(count, dtype=np.int64)


def check_cfg(net: Netlist, cfg: np.ndarray, n_slots: int, cnt_width: int = 0) -> None:
    """Raise ``ValueError`` naming the first row of ``cfg`` (rows ``(slot, we, addr, data)``, each a cfg
    beat taken after ``slot`` slots) that :func:`run_with_cfg` cannot answer for: slots out of order
    or past ``n_slots``, writes other than to a runtime register (within its width) or CTRL (0 or 1),
    reads other than of a register, SLOTS, ID or (``cnt_width`` > 0) a debug counter. CYCLES depends
    on when beats are taken, not only on slots; Amaranth's simulator tests it."""
    regs = list(net.regs.values())
    n_dbg = len(debug_counters(net)) if cnt_width else 0
    last = 0
    for k, (slot, we, addr, data) in enumerate(np.asarray(cfg, dtype=np.int64).tolist()):
        where = f"cfg row {k} (slot {slot}, we {we}, addr {addr:#x}, data {data})"
        if not last <= slot <= n_slots:
            raise ValueError(f"{where}: slots must rise from 0 to the {n_slots} stimulus slots")
        last = slot
        if we not in (0, 1):
            raise ValueError(f"{where}: we must be 0 (read) or 1 (write)")
        r = regs[addr - REG_BASE] if 0 <= addr - REG_BASE < len(regs) else None
        if we and addr == CTRL:
            if data not in (0, 1):
                raise ValueError(f"{where}: CTRL takes 0 or 1 (CLEAR)")
        elif we and (r is None or not 0 <= data < 1 << r.width):
            why = f"{r.name} is {r.width} bits wide" if r else "writes go to CTRL or a runtime register"
            raise ValueError(f"{where}: {why}")
        if not we and r is None and addr not in (SLOTS, ID) and not 0 <= addr - DEBUG_BASE < n_dbg:
            dbg = f" or a debug counter ({DEBUG_BASE:#x}..{DEBUG_BASE + n_dbg - 1:#x})" if n_dbg else ""
            raise ValueError(f"{where}: reads of a register, SLOTS ({SLOTS:#x}), ID ({ID:#x}){dbg} only")


def clear_beats(cfg: np.ndarray) -> np.ndarray:
    """Which rows of ``cfg`` (``(slot, we, addr, data)``) are CLEARs: a write of bit 0 to CTRL."""
    cfg = np.asarray(cfg, dtype=np.int64).reshape(-1, 4)
    return (cfg[:, 1] == 1) & (cfg[:, 2] == CTRL) & (cfg[:, 3] & 1 == 1)


def run_with_cfg(
    net: Netlist, rows: np.ndarray, cfg: np.ndarray, cnt_width: int = 0
) -> tuple[np.ndarray, list[int]]:
    """The RTL's output rows 1..T and ``rsp`` words for input ``rows`` (T slots) and the cfg beats
    ``cfg`` (rows ``(slot, we, addr, data)`` in the order taken, each after ``slot`` slots and, for
    CLEAR, after that slot's output beat was taken; checked by :func:`check_cfg`). A write acts from
    its slot (spec §3); CLEAR restarts the elements, SLOTS and the debug counters from that slot and
    keeps the registers. A read returns the register's value then, SLOTS the slots since the last
    CLEAR, ID the netlist's CRC32, a debug counter its count since the last CLEAR mod 2^cnt_width."""
    regs = list(net.regs.values())
    values = {r.name: r.init for r in regs}
    dbg = debug_counters(net)
    start, at_start, writes = 0, dict(values), []  # the run since the last CLEAR; its writes
    outs, rsp = [], []

    def run(end: int, settle: bool = True) -> Result:
        """Slots start..end-1 from reset, registers as at ``start``, the writes before ``end``."""
        before = [(t - start, name, v) for t, name, v in writes if t < end]
        return simulate(net, rows[start:end], end - start, regs=at_start, writes=before, settle=settle)

    beats = np.asarray(cfg, dtype=np.int64).reshape(-1, 4)
    for (slot, we, addr, data), clear in zip(beats.tolist(), clear_beats(beats), strict=True):
        if clear:
            outs.append(run(slot).dense()[1:])
            start, at_start, writes = slot, dict(values), []
        elif we and addr == CTRL:
            pass  # CTRL without CLEAR does nothing
        elif 0 <= addr - REG_BASE < len(regs):
            name = regs[addr - REG_BASE].name
            if we:
                values[name] = data
                writes.append((slot, name, data))
            else:
                rsp.append(values[name])
        elif 0 <= addr - DEBUG_BASE < len(dbg):
            eid, counter = dbg[addr - DEBUG_BASE]
            rsp.append(run(slot, settle=False).counters[eid][counter] % (1 << cnt_width))
        else:
            rsp.append(slot - start if addr == SLOTS else netlist_id(net))
    outs.append(run(len(rows)).dense()[1:])
    return np.concatenate(outs), rsp
