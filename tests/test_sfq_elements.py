"""Spec sfq §5 "exhaustive": every one-slot transition of the neuron (W <= 3) and the merger (two to four
inputs), the RTL element started from every reachable state against the golden model's rule."""

from itertools import product

import pytest
from amaranth.sim import Simulator
from neurohdl.hdl.sfq import element_component
from neurohdl.models import sfq
from neurohdl.models.sfq_netlist import load_netlist


def check_transitions(doc: dict, cases) -> int:
    """Run one slot of the netlist's only element per case ``(regs, state, inputs)`` (register
    values, golden state fields, port -> list of pulse bits) in Amaranth's simulator, each from the
    given state, and compare the decision and every state register with ``sfq.evaluate``. Returns
    the number of transitions checked."""
    net = load_netlist(doc)
    (e,) = net.elements
    dut = element_component(e, {r.name: r.width for r in net.regs.values()})
    sim = Simulator(dut)  # elaborates: dut.state now holds the state registers
    sim.add_clock(1e-6)
    assert e.lat == 1, "a one-slot transition needs the decision registered once"
    checked = []

    async def bench(ctx):
        for regs, state, inputs in cases:
            for name, prm in e.params.items():
                if prm.reg:
                    ctx.set(getattr(dut, f"p_{name}"), regs[prm.reg])
            for field, sig in dut.state.items():
                ctx.set(sig, state[field])
            for port, bits in inputs.items():
                if bits:
                    ctx.set(getattr(dut, f"in_{port}"), sum(b << k for k, b in enumerate(bits)))
            await ctx.tick()
            golden = sfq.initial_state(e)
            for field, v in state.items():
                setattr(golden, field, v)

            def param(name, regs=regs):
                prm = e.params[name]
                return regs[prm.reg] if prm.reg else prm.value

            want = sfq.evaluate(e, golden, inputs, param)
            got = {f: ctx.get(sig) for f, sig in dut.state.items()}
            where = f"{e.type} {regs} from {state} with {inputs}"
            assert ctx.get(dut.out) == want, where
            assert got == {f: getattr(golden, f) for f in dut.state}, where
            checked.append(1)

    sim.add_testbench(bench)
    sim.run()
    return len(checked)


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
        doc = {
            "inputs": [w for ws in ports.values() for w in ws],
            "outputs": ["y"],
            "regs": {"th": {"width": width + 1, "init": 1}, "lk": {"width": 2, "init": 0}},
            "elements": [
                {"id": "n", "type": "neuron", "out": "y", **ports, "width": width, "theta": "$th",
                 "leak": "$lk", "refractory": refractory, "reset": reset, "fanin": fanin}
            ],
        }  # fmt: skip
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
