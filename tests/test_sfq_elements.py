"""Spec sfq §5 "exhaustive": every one-slot transition of every element type, the RTL element started
from every reachable state (the synapse: from chosen LFSR states) against the golden model's rule:
the decision, every state register and every debug counter's increment."""

from collections import defaultdict
from itertools import product

import numpy as np
import pytest
from amaranth.sim import Simulator
from neurohdl.hdl.sfq import element_component
from neurohdl.models import sfq
from neurohdl.models.sfq_batch import FIELDS, BatchState, evaluate_batch
from neurohdl.models.sfq_netlist import COUNTERS, load_netlist

CNT = 8  # debug counter width: every increment fits


def check_transitions(doc: dict, cases) -> int:
    """Run one slot of the netlist's only element per case ``(regs, state, inputs)`` (register
    values, golden state fields, port -> list of pulse bits) in Amaranth's simulator, each from the
    given state with the debug counters at 0, and compare the decision, every state register and
    every counter with ``sfq.evaluate``; and the batch rule on the same cases. Returns the number of
    transitions checked."""
    net = load_netlist(doc)
    (e,) = net.elements
    dut = element_component(e, {r.name: r.width for r in net.regs.values()}, cnt_width=CNT)
    sim = Simulator(dut)  # elaborates: dut.state now holds the state registers
    sim.add_clock(1e-6)
    assert e.lat == 1, "a one-slot transition needs the decision registered once"
    counters = {name: getattr(dut, f"dbg_{name}") for name in COUNTERS.get(e.type, ())}
    checked = []

    async def bench(ctx):
        for regs, state, inputs in cases:
            for name, prm in e.params.items():
                if prm.reg:
                    ctx.set(getattr(dut, f"p_{name}"), regs[prm.reg])
            for field, sig in dut.state.items():
                ctx.set(sig, state[field])
            for sig in counters.values():
                ctx.set(sig, 0)
            for port, bits in inputs.items():
                if bits:
                    ctx.set(getattr(dut, f"in_{port}"), sum(b << k for k, b in enumerate(bits)))
            await ctx.tick()
            golden = sfq.initial_state(e)
            for field, v in state.items():
                setattr(golden, field, v)

            want = sfq.evaluate(e, golden, inputs, e.reader(regs))
            where = f"{e.type} {regs} from {state} with {inputs}"
            assert ctx.get(dut.out) == want, where
            assert {f: ctx.get(sig) for f, sig in dut.state.items()} == {
                f: getattr(golden, f) for f in dut.state
            }, where
            assert {n: ctx.get(sig) for n, sig in counters.items()} == golden.counters, where
            checked.append(1)

    sim.add_testbench(bench)
    sim.run()
    check_batch_rule(e, cases)
    return len(checked)


def check_batch_rule(e, cases) -> None:
    """The step engine's batch rule (``sfq_batch.evaluate_batch``) on all cases with the same
    registers at once, one run per case, against the scalar rule case by case."""
    groups = defaultdict(list)
    for case in cases:
        groups[tuple(sorted(case[0].items()))].append(case)
    for key, group in groups.items():
        param = e.reader(dict(key))
        batch = BatchState(e, len(group), sfq.initial_state(e))
        want = []
        for i, (_, state, inputs) in enumerate(group):
            golden = sfq.initial_state(e)
            for field, v in state.items():
                setattr(golden, field, v)
                getattr(batch, field)[i] = v
            want.append((sfq.evaluate(e, golden, inputs, param), golden))
        x = {
            port: np.array([inputs.get(port, []) for *_, inputs in group], dtype=np.int64).reshape(
                len(group), len(ws)
            )
            for port, ws in e.ins.items()
        }
        got = evaluate_batch(e, batch, x, param)
        for i, (decision, golden) in enumerate(want):
            where = f"{e.type} {dict(key)} from {group[i][1]} with {group[i][2]}"
            assert got[i] == decision, where
            assert {f: int(getattr(batch, f)[i]) for f in FIELDS} == {
                f: getattr(golden, f) for f in FIELDS
            }, where
            assert batch.item(i) == golden.counters, where


def one(etype: str, ports: dict, regs: dict | None = None, **params) -> dict:
    """A netlist of one element whose input wires (a name, or a list for a many-wire port) are the
    netlist's inputs."""
    wires = [w for ws in ports.values() for w in (ws if isinstance(ws, list) else [ws])]
    el = {"id": "x", "type": etype, "out": "y", **ports, **params}
    return {"inputs": wires, "outputs": ["y"], "regs": regs or {}, "elements": [el]}


def bit_patterns(n: int) -> list[list[int]]:
    return [list(p) for p in product((0, 1), repeat=n)]


@pytest.mark.parametrize("width", [1, 2, 3])
def test_neuron_every_transition(width):
    """Every (n, exc, inh, theta in 0..2^W, reset, r in {0, 1}, leak P in 0..3 with every lc, fanin),
    theta and leak as runtime registers; with two exc and two inh wires and with one exc alone."""
    for reset, refractory, fanin, (ne, ni) in product(
        ("subtract", "zero"), (0, 1), ("merge", "count"), ((2, 2), (1, 0))
    ):
        ports = {"exc": [f"e{k}" for k in range(ne)], **({"inh": [f"i{k}" for k in range(ni)]} if ni else {})}
        regs = {"th": {"width": width + 1, "init": 1}, "lk": {"width": 2, "init": 0}}
        doc = one("neuron", ports, regs, width=width, theta="$th", leak="$lk", refractory=refractory,
                  reset=reset, fanin=fanin)  # fmt: skip
        cases = [
            ({"th": theta, "lk": leak}, {"n": n, "r": r, "lc": lc},
             {"exc": ex, "inh": ih})
            for theta in range(2**width + 1)
            for leak in range(4)
            for lc in range(max(1, leak))
            for n in range(2**width)
            for r in range(refractory + 1)
            for ex in bit_patterns(ne)
            for ih in bit_patterns(ni)
        ]  # fmt: skip
        assert check_transitions(doc, cases) == len(cases)


@pytest.mark.parametrize("mode", ["lossy", "queue"])
def test_merger_every_transition(mode):
    """Every input pattern of 2-4 inputs x dead time 0..2 x (queue) depth 1..2, from every dead-time
    count and queue fill."""
    for n_in, dead, depth in product(range(2, 5), range(3), (1, 2) if mode == "queue" else (1,)):
        ins = [f"a{k}" for k in range(n_in)]
        extra = {"depth": depth} if mode == "queue" else {}
        doc = {
            "inputs": ins,
            "outputs": ["y"],
            "elements": [
                {"id": "m", "type": "merge", "in": ins, "out": "y", "mode": mode, "dead": dead, **extra}
            ],
        }
        cases = [
            ({}, {"dz": dz, **({"q": q} if mode == "queue" else {})}, {"in": bits})
            for dz in range(dead + 1)
            for q in range(depth + 1 if mode == "queue" else 1)
            for bits in bit_patterns(n_in)
        ]
        assert check_transitions(doc, cases) == len(cases)


ONE_BIT = {  # type: (input ports, {choice or parameter: values}, state fields (one bit each))
    "dro": (("d", "clk"), {"order": ("clock_first", "data_first")}, ("b",)),
    "ndro": (("set", "rst", "clk"), {}, ("b",)),
    "tff": (("in",), {"init": (0, 1)}, ("b",)),
    "c_last": (("a", "b"), {}, ("sa", "sb")),
    "c_first": (("a", "b"), {}, ("sa", "sb")),
    "inhibit": (("a", "clk"), {}, ("b",)),
}


@pytest.mark.parametrize("etype", sorted(ONE_BIT))
def test_one_bit_cells_every_transition(etype):
    """Every input pattern from every state, for every choice."""
    ports, choices, fields = ONE_BIT[etype]
    for values in product(*choices.values()):
        doc = one(etype, {p: p for p in ports}, **dict(zip(choices, values, strict=True)))
        cases = [
            ({}, dict(zip(fields, st, strict=True)), {p: [b] for p, b in zip(ports, bits, strict=True)})
            for st in product((0, 1), repeat=len(fields))
            for bits in product((0, 1), repeat=len(ports))
        ]
        assert check_transitions(doc, cases) == len(cases)


def test_divider_every_transition():
    for k in (1, 2, 3, 5):
        doc = one("divider", {"in": "a"}, k=k)
        cases = [({}, {"c": c}, {"in": [x]}) for c in range(k) for x in (0, 1)]
        assert check_transitions(doc, cases) == len(cases)


@pytest.mark.parametrize("steps", [1, 16])
def test_synapse_from_chosen_states(steps):
    """p at the spec's values (a runtime register) against LFSR states on both sides of it and
    random ones, with and without a pulse: the decision, the next state, pass and block."""
    rng = np.random.default_rng(steps)
    ps = (0, 1, 0x7FFF, 0xDEA4, 0xFFFE, 0xFFFF)
    states = sorted({1, 2, 0x7FFE, 0x7FFF, 0x8000, 0xDEA3, 0xDEA4, 0xDEA5, 0xFFFE, 0xFFFF}
                    | set(rng.integers(1, 65536, 40).tolist()))  # fmt: skip
    doc = one("synapse", {"in": "a"}, {"p": {"width": 16, "init": 0}}, p="$p", seed=0xACE1, steps=steps)
    cases = [({"p": p}, {"s": st}, {"in": [x]}) for p in ps for st in states for x in (0, 1)]
    assert check_transitions(doc, cases) == len(cases)
