"""The sfq netlist format and slot-level golden model (spec ``sfq.md`` §2): element rules, netlist
errors, and the XOR demo's reference figures."""

from pathlib import Path

import numpy as np
import pytest
from neurohdl.models import sfq, sfq_timed
from neurohdl.models.sfq_netlist import NetlistError, bias_p, bias_theta, load_netlist

XOR = Path(sfq.__file__).parent / "netlists" / "xor_t1.yaml"


def one(etype: str, ports: dict, **params) -> dict:
    """A netlist with one element whose inputs are the netlist's inputs."""
    inputs = [w for ws in ports.values() for w in (ws if isinstance(ws, list) else [ws])]
    el = {"id": "e", "type": etype, "out": "y", **ports, **params}
    return {"inputs": inputs, "outputs": ["y"], "elements": [el]}


def run(doc: dict, stim: dict, n: int, **kw) -> sfq.Result:
    return sfq.simulate(load_netlist(doc), stim, n, **kw)


def test_lfsr_has_period_65535():
    s, seen = 1, 0
    while True:
        s = sfq.lfsr_step(s)
        seen += 1
        if s == 1:
            break
    assert seen == 65535


@pytest.mark.parametrize("p", [0, 1, 0x7FFF, 0xDEA4, 0xFFFE, 0xFFFF])
def test_synapse_passes_exactly_p_of_a_period(p):
    r = run(one("synapse", {"in": "x"}, p=p, seed=0xACE1, steps=1), {"x": np.arange(65535)}, 65536)
    assert r.counters["e"]["pass"] == p and len(r.trace["y"]) == p


def test_merge_lossy_and_queue_rules():
    doc = one("merge", {"in": ["a", "b"]}, mode="lossy", dead=1)
    r = run(doc, {"a": [0, 1, 2], "b": [0, 3]}, 6)
    # slot 0: both -> out, 1 lost, dead 1; slot 1: dead, lost; slot 2: out; slot 3: dead, lost
    assert r.trace["y"].tolist() == [1, 3] and r.counters["e"]["lost"] == 3
    doc = one("merge", {"in": ["a", "b"]}, mode="queue", depth=2)
    r = run(doc, {"a": [0], "b": [0]}, 4)
    assert r.trace["y"].tolist() == [1, 2] and r.counters["e"]["lost"] == 0


def test_neuron_threshold_leak_and_same_slot_cancel():
    doc = one("neuron", {"exc": ["e"], "inh": ["i"]}, width=3, theta=2)
    r = run(doc, {"e": [0, 1, 5, 6, 7], "i": [5]}, 9)
    assert r.trace["y"].tolist() == [2, 8]  # fires at the second exc; exc+inh in slot 5 cancel
    assert r.counters["e"]["cancelled"] == 1
    doc = one("neuron", {"exc": ["e"]}, width=3, theta=2, leak=2)
    r = run(doc, {"e": [0, 3]}, 6)  # the leak tick at slot 1 removes the first fluxon
    assert r.trace["y"].tolist() == [] and r.counters["e"]["leaked"] == 2


def test_dro_tff_and_divider():
    r = run(one("dro", {"d": "d", "clk": "c"}), {"d": [0, 2], "c": [1, 2, 3]}, 5)
    assert r.trace["y"].tolist() == [2, 4]  # clock_first: slot-2 clock reads the old bit
    r = run(one("tff", {"in": "x"}), {"x": range(8)}, 10)
    assert r.trace["y"].tolist() == [2, 4, 6, 8]
    r = run(one("divider", {"in": "x"}, k=3), {"x": range(9)}, 10)
    assert r.trace["y"].tolist() == [3, 6, 9]


@pytest.mark.parametrize(
    "mutate,msg",
    [
        (
            lambda d: d["elements"].append({"id": "z", "type": "flux", "in": "y", "out": "q"}),
            "unknown element type",
        ),
        (lambda d: d["elements"][0].update({"in": "nope"}), "has no driver"),
        (lambda d: d.update({"outputs": ["y", "y"]}), "already feeds"),
        (lambda d: d["elements"][0].update({"p": 70000}), "outside 0..65535"),
        (lambda d: d["elements"][0].update({"p": "$nope"}), "no register"),
        (lambda d: d["elements"][0].update({"id": False}), "not a name"),
        (lambda d: d["elements"][0].update({"lat": 0}), "outside 1..64"),
        (lambda d: d.update({"outputs": []}), "at least one output"),
    ],
)
def test_malformed_netlists_name_the_problem(mutate, msg):
    doc = one("synapse", {"in": "x"})
    mutate(doc)
    with pytest.raises(NetlistError, match=msg):
        load_netlist(doc)


def test_dangling_and_doubly_driven_wires():
    doc = {"inputs": ["a"], "outputs": ["y"], "elements": [
        {"id": "s", "type": "split", "in": "a", "out": ["y", "z"]}]}  # fmt: skip
    with pytest.raises(NetlistError, match="s: wire z goes nowhere"):
        load_netlist(doc)
    doc["elements"].append({"id": "d", "type": "delay", "in": "z", "out": "y"})
    with pytest.raises(NetlistError, match="d: wire y is already driven by s"):
        load_netlist(doc)


def test_bias_curves():
    assert bias_p(128, {}) == 32768 and bias_p(146, {}) == 0xDEA4
    assert bias_theta(200, 15, {}) == 1 and bias_theta(128, 15, {}) == 2


def test_xor_reference_figures():
    """Spec §5: deterministic synapses r = 0 / 0.5 / 0.5 / 0 (margin 0.500); nominal p = 0xDEA4
    r = 0 / 0.377 / 0.373 / 0.014; first output in row 9, then every 8 slots."""
    net = load_netlist(XOR)
    train = sfq.periodic(4, 0, 4096)
    for p, want in ((65535, (0.0, 0.5, 0.5, 0.0)), (0xDEA4, (0.0, 0.377, 0.373, 0.014))):
        rates = []
        for a, b in ((0, 0), (0, 1), (1, 0), (1, 1)):
            stim = {"a": train if a else [], "b": train if b else []}
            rates.append(len(sfq.simulate(net, stim, 4 * 4096 + 64, regs={"p_syn": p}).trace["y"]) / 4096)
        assert np.round(rates, 3).tolist() == list(want)
    r = sfq.simulate(net, {"a": sfq.periodic(4, 0, 10)}, 60, regs={"p_syn": 65535})
    assert r.trace["y"][:3].tolist() == [9, 17, 25]


def pysim_rows(net, rows: np.ndarray, stall_seed: int = 0) -> np.ndarray:
    """The RTL in Amaranth's simulator: one i beat per row, o.ready low at random; beats out."""
    return pysim_session(net, rows, {}, stall_seed)[0]


@pytest.mark.parametrize("seed", range(16))
def test_random_netlists_rtl_equals_model(seed):
    """Random netlists of every element type: the RTL (Amaranth simulator, random o.ready stalls)
    produces the golden model's output rows 1..T exactly."""
    from neurohdl.models.sfq_random import random_netlist

    rng = np.random.default_rng(seed)
    net = load_netlist(random_netlist(rng, n_elements=16))
    rows = (rng.random((120, len(net.inputs))) < rng.uniform(0.05, 0.9)).astype(np.int64)
    ref = sfq.simulate(net, rows, len(rows)).dense()
    got = pysim_rows(net, rows, seed)
    assert got.shape == (len(rows), len(net.outputs))
    assert (got == ref[1:]).all(), f"seed {seed}: first difference at row {np.argwhere(got != ref[1:])[0]}"


@pytest.mark.parametrize("seed", range(12))
def test_timed_golden_and_rtl_identical_at_whole_slot_delays(seed):
    """Acceptance 4: random netlists, aligned mode: every pulse of the timed model lands on a slot
    boundary, in the golden model's slot, on every wire; same counters; and the RTL's output rows
    equal both."""
    from neurohdl.models import sfq_timed
    from neurohdl.models.sfq_random import random_netlist

    rng = np.random.default_rng(100 + seed)
    net = load_netlist(random_netlist(rng, n_elements=16))
    n = 150
    rows = (rng.random((n, len(net.inputs))) < rng.uniform(0.05, 0.9)).astype(np.int64)
    golden = sfq.simulate(net, rows, n)
    stim = {w: np.flatnonzero(rows[:, k]) for k, w in enumerate(net.inputs)}
    timed = sfq_timed.simulate_timed(net, stim, n)
    T = sfq_timed.fs(net.slot_ps)
    assert golden.pulse_events > 0
    for w in net.wires:
        assert not (timed.times[w] % T).any(), w
        assert (timed.times[w] // T).tolist() == golden.trace[w].tolist(), w
    assert timed.counters == golden.counters
    assert (pysim_rows(net, rows, seed) == golden.dense()[1:]).all()


def test_timed_physical_mode_applies_every_group_of_a_slot():
    """Spec §2.8: pulses reaching a neuron at different times within one slot are separate groups,
    each resolved in time order (the leak ticks at the slot's end); the second one used to be
    dropped, so this neuron with theta 2 never fired."""
    neuron = {"id": "n", "type": "neuron", "exc": ["a", "bd"], "out": "y", "theta": 2, "width": 2, "leak": 1}
    doc = {"slot_ps": 20, "inputs": ["a", "b"], "outputs": ["y"],
           "elements": [{"id": "d", "type": "delay", "in": "b", "out": "bd"}, neuron]}  # fmt: skip
    net = load_netlist(doc)
    r = sfq_timed.simulate_timed(net, {"a": [0], "b": [0]}, 4, aligned=False)
    assert r.times["bd"].tolist() == [5700]  # the JTL delay: still slot 0 of 20 ps
    assert r.times["y"].tolist() == [5700 + 10000] and r.counters["n"]["fires"] == 1
    # one pulse per slot: the leak (every slot) takes the first before the second arrives
    r = sfq_timed.simulate_timed(net, {"a": [0], "b": [1]}, 4, aligned=False)
    assert r.times["y"].tolist() == [] and r.counters["n"]["leaked"] == 2


@pytest.mark.parametrize(
    "mode, y, counted", [("lossy", [8200], {"lost": 1}), ("queue", [8200, 28200], {"lost": 0})]
)
def test_timed_merger_takes_every_group_of_a_slot(mode, y, counted):
    """Two pulses 5.7 ps apart in one 20 ps slot reach a merger as two groups: it emits once in the
    slot; the lossy one counts the second as lost, the queue sends it a slot later."""
    merge = {"id": "m", "type": "merge", "in": ["a", "bd"], "out": "y", "mode": mode, "dead": 0}
    doc = {"slot_ps": 20, "inputs": ["a", "b"], "outputs": ["y"],
           "elements": [{"id": "d", "type": "delay", "in": "b", "out": "bd"}, merge]}  # fmt: skip
    r = sfq_timed.simulate_timed(
        load_netlist(doc), {"a": [0], "b": [0]}, 4, aligned=False, violations="record"
    )
    assert r.times["y"].tolist() == y and r.counters["m"] == counted


def test_timed_physical_mode_reports_violations():
    """Library delays: a DRO whose data arrives 1 ps before its clock breaks the 2.3 ps setup."""
    from neurohdl.models import sfq_timed

    doc = one("dro", {"d": "d", "clk": "c"})
    doc["slot_ps"] = 0.001  # inputs 1 fs apart: data then clock
    net = load_netlist(doc)
    with pytest.raises(sfq_timed.SfqTimingError, match="setup violation at e"):
        sfq_timed.simulate_timed(net, {"d": [0], "c": [1000]}, 2000, aligned=False)
    r = sfq_timed.simulate_timed(net, {"d": [0], "c": [1000]}, 2000, aligned=False, violations="record")
    assert r.violations and r.violations[0][0] == "setup"


@pytest.mark.parametrize("seed", range(30))
def test_event_engine_equals_step_engine(seed):
    """Spec §2.7: the two engines agree bit for bit (traces, counters, truncation, accounting)."""
    from neurohdl.models.sfq_random import random_netlist

    rng = np.random.default_rng(300 + seed)
    net = load_netlist(random_netlist(rng, n_elements=16))
    n = 200
    rows = (rng.random((n, len(net.inputs))) < rng.uniform(0.05, 0.9)).astype(np.int64)
    a = sfq.simulate(net, rows, n, engine="step")
    b = sfq.simulate(net, rows, n, engine="event")
    for w in net.wires:
        assert a.trace[w].tolist() == b.trace[w].tolist(), w
    assert (a.counters, a.truncated, a.pulse_events, a.jj_switches) == (
        b.counters, b.truncated, b.pulse_events, b.jj_switches,
    )  # fmt: skip


def _same(a: sfq.Result, b: sfq.Result, wires) -> None:
    for w in wires:
        assert a.trace[w].tolist() == b.trace[w].tolist(), w
    assert (a.counters, a.truncated, a.pulse_events, a.jj_switches) == (
        b.counters, b.truncated, b.pulse_events, b.jj_switches,
    )  # fmt: skip


@pytest.mark.parametrize("seed", range(12))
def test_batch_step_engine_equals_each_run(seed):
    """Spec §2.7: the step engine vectorised over a batch axis (B, slots, inputs) gives, per run, what
    the scalar step engine gives for that run alone, with mid-run register writes and either settle."""
    from neurohdl.models.sfq_random import random_netlist

    rng = np.random.default_rng(700 + seed)
    net = load_netlist(random_netlist(rng, n_elements=16))
    n, B = 150, 5
    stims = (rng.random((B, n, len(net.inputs))) < rng.uniform(0.05, 0.9, (B, 1, 1))).astype(np.int64)
    writes = [
        (int(rng.integers(0, n)), name, int(rng.integers(0, 2**reg.width)))
        for name, reg in net.regs.items()
        for _ in range(2)
    ]
    settle = bool(seed % 2)
    runs = sfq.simulate(net, stims, n, writes=writes, settle=settle)
    assert len(runs) == B
    for rows, got in zip(stims, runs, strict=True):
        _same(got, sfq.simulate(net, rows, n, writes=writes, settle=settle, engine="step"), net.wires)
    with pytest.raises(ValueError, match="a batch .* needs engine 'step'"):
        sfq.simulate(net, stims, n, engine="event")
    with pytest.raises(ValueError, match=rf"stimulus rows of shape \(150, {len(net.inputs) + 1}\): give"):
        sfq.simulate(net, np.zeros((B, n, len(net.inputs) + 1)), n)


def test_event_engine_refuses_feedback_and_writes():
    doc = {"inputs": ["a"], "outputs": ["y"], "elements": [
        {"id": "m", "type": "merge", "in": ["a", "fb"], "out": "x"},
        {"id": "s", "type": "split", "in": "x", "out": ["y", "fb"], "lat": 2}]}  # fmt: skip
    net = load_netlist(doc)
    assert sfq.topological_order(net) is None
    with pytest.raises(ValueError, match="feedback-free"):
        sfq.simulate(net, {"a": [0]}, 10, engine="event")
    r = sfq.simulate(net, {"a": [0]}, 10)  # auto falls back to the step engine: the loop rings
    assert r.trace["y"].tolist() == [3, 6, 9]
    xor = load_netlist(XOR)
    with pytest.raises(ValueError, match="no mid-run writes"):
        sfq.simulate(xor, {"a": [0]}, 10, writes=[(5, "p_syn", 0)], engine="event")


def pysim_session(
    net, rows: np.ndarray, ops: dict[int, list[tuple[int, int, int]]], stall_seed: int | None = None
):
    """The RTL in Amaranth's simulator: i beats from ``rows``; before beat k the cfg beats
    ``ops[k]`` = [(we, addr, data)]; with ``stall_seed``, o.ready is low 40 % of the cycles at
    random. Returns the o beats and the rsp words."""
    from amaranth.sim import Simulator
    from neurohdl.hdl.sfq import SfqNet

    dut = SfqNet(net)
    out, rsp = [], []
    rng = np.random.default_rng(stall_seed) if stall_seed is not None else None

    async def source(ctx):
        ctx.set(dut.rsp.ready, 1)
        for k in range(len(rows) + 1):
            for we, addr, value in ops.get(k, []):
                ctx.set(dut.cfg.payload, {"we": we, "addr": addr, "data": value})
                ctx.set(dut.cfg.valid, 1)
                await ctx.tick().until(dut.cfg.ready)
                ctx.set(dut.cfg.valid, 0)
            if k == len(rows):
                break
            ctx.set(dut.i.payload, int(sum(int(b) << j for j, b in enumerate(rows[k]))))
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)

    async def sink(ctx):
        while len(out) < len(rows):
            ready = int(rng.random() < 0.6) if rng is not None else 1
            ctx.set(dut.o.ready, ready)
            _, _, ov, op, rv, rp = await ctx.tick().sample(
                dut.o.valid, dut.o.payload, dut.rsp.valid, dut.rsp.payload
            )
            if ov and ready:
                out.append([(op >> j) & 1 for j in range(len(net.outputs))])
            if rv:
                rsp.append(rp)
        await ctx.tick().repeat(4)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source, background=True)
    sim.add_testbench(sink)
    sim.run()
    return np.asarray(out, dtype=np.int64).reshape(-1, len(net.outputs)), rsp


def test_rtl_register_writes_reads_and_clear_mid_run():
    """A write accepted after k slots acts from slot k (the golden model's writes); reads return
    the register, SLOTS and the netlist ID; CLEAR restarts the elements and keeps the registers."""
    from neurohdl.hdl.sfq import ID, REG_BASE, SLOTS
    from neurohdl.models.sfq_netlist import netlist_id

    net = load_netlist(XOR)
    rng = np.random.default_rng(5)
    rows = (rng.random((120, 2)) < 0.5).astype(np.int64)
    ops = {
        40: [(1, REG_BASE, 65535), (0, REG_BASE, 0), (0, SLOTS, 0), (0, ID, 0)],
        80: [(1, REG_BASE + 1, 1)],
    }
    got, rsp = pysim_session(net, rows, ops)
    want = sfq.simulate(net, rows, 120, writes=[(40, "p_syn", 65535), (80, "th_hid", 1)]).dense()[1:]
    assert (got == want).all() and rsp == [65535, 40, netlist_id(net)]
    # the model of the cfg port that the cocotb runs score against says the same
    cfg = np.array([(slot, *op) for slot, beats in ops.items() for op in beats])
    model_out, model_rsp = sfq.run_with_cfg(net, rows, cfg)
    assert (model_out == want).all() and model_rsp == rsp
    got, _ = pysim_session(net, rows, {60: [(1, REG_BASE, 65535), (1, 0x000, 1)]})
    first = sfq.simulate(net, rows[:60], 60).dense()[1:]
    again = sfq.simulate(net, rows[60:], 60, regs={"p_syn": 65535}).dense()[1:]
    assert (got == np.concatenate([first, again])).all()
    model_out, _ = sfq.run_with_cfg(net, rows, np.array([(60, 1, REG_BASE, 65535), (60, 1, 0x000, 1)]))
    assert (model_out == got).all()


@pytest.mark.parametrize("seed", range(4))
def test_unsettled_run_has_the_same_outputs_and_the_counts_after_n_slots(seed):
    """settle=False (the counts the RTL's debug counters hold after n slots) changes no output row;
    settling is one more slot without input."""
    from neurohdl.models.sfq_random import random_netlist

    rng = np.random.default_rng(seed)
    net = load_netlist(random_netlist(rng, n_elements=16))
    rows = (rng.random((60, len(net.inputs))) < 0.4).astype(np.int64)
    settled = sfq.simulate(net, rows, 60, engine="step")
    unsettled = sfq.simulate(net, rows, 60, engine="step", settle=False)
    assert (settled.dense() == unsettled.dense()).all()
    longer = sfq.simulate(net, np.vstack([rows, np.zeros_like(rows[:1])]), 61, engine="step", settle=False)
    assert longer.counters == settled.counters, "settling is one more slot without input"


def test_clear_while_the_output_is_stalled_drops_that_beat():
    """Spec §3: CLEAR sets o.valid to 0, so the beat the sink has not taken is gone, and the next
    beats are the netlist's from reset (registers kept); ResetInserter is outside EnableInserter, so
    CLEAR acts while the slot is stalled."""
    from amaranth.sim import Simulator
    from neurohdl.hdl.sfq import CTRL, REG_BASE, SfqNet

    net = load_netlist(XOR)
    rng = np.random.default_rng(11)
    rows = (rng.random((40, 2)) < 0.6).astype(np.int64)
    dut = SfqNet(net)
    got = []

    async def bench(ctx):
        async def beat(k):
            ctx.set(dut.i.payload, int(rows[k] @ [1, 2]))
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)

        async def cfg(we, addr, data):
            ctx.set(dut.cfg.payload, {"we": we, "addr": addr, "data": data})
            ctx.set(dut.cfg.valid, 1)
            await ctx.tick().until(dut.cfg.ready)
            ctx.set(dut.cfg.valid, 0)

        async def take():
            ctx.set(dut.o.ready, 1)
            *_, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            ctx.set(dut.o.ready, 0)
            return payload if valid else None

        await cfg(1, REG_BASE, 65535)  # deterministic synapses
        for k in range(20):
            await beat(k)
            if k < 19:  # the sink stalls on the last beat before CLEAR
                got.append(await take())
        assert ctx.get(dut.o.valid) and not ctx.get(dut.i.ready)
        await cfg(1, CTRL, 1)
        await ctx.tick()
        assert not ctx.get(dut.o.valid), "the stalled beat is dropped"
        for k in range(20, 40):
            await beat(k)
            got.append(await take())

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    first = sfq.simulate(net, rows[:20], 20, regs={"p_syn": 65535}).dense()[1:20]
    again = sfq.simulate(net, rows[20:], 20, regs={"p_syn": 65535}).dense()[1:]
    want = [int(r @ [1]) for r in np.concatenate([first, again])]
    assert got == want and 0 < sum(want[19:]) < 20
