"""Fast unit tests of small RTL pieces in Amaranth's own simulator (the blocks are checked in cocotb)."""

import random

import numpy as np
from amaranth.sim import Simulator
from neurohdl.hdl.lif_lane import LifLane, profile_const
from neurohdl.hdl.serializer import MaskSerializer
from neurohdl.models import lif as m


def test_mask_serializer_order_and_backpressure():
    dut = MaskSerializer(groups=6, lanes=8)
    rng = random.Random(5)
    words = [(rng.randrange(6), rng.choice([0, 1, 0x80, 0xFF, rng.randrange(256)])) for _ in range(60)]
    expected = [g * 8 + j for g, mask in words for j in range(8) if mask >> j & 1]
    got = []

    async def source(ctx):
        for g, mask in words:
            ctx.set(dut.i.payload.g, g)
            ctx.set(dut.i.payload.mask, mask)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)
            if rng.random() < 0.3:
                await ctx.tick()

    async def sink(ctx):
        for _ in range(2000):
            ready = rng.random() < 0.6
            ctx.set(dut.o.ready, ready)
            valid, payload = ctx.get(dut.o.valid), ctx.get(dut.o.payload)
            await ctx.tick()
            if valid and ready:
                got.append(payload)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    assert len(expected) > 100 and got == expected


def test_mask_serializer_has_no_bubbles():
    """Single-bit words back to back leave at one index per cycle."""
    dut = MaskSerializer(groups=16, lanes=4)
    got = []

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.valid, 1)
        for g in range(16):
            ctx.set(dut.i.payload.g, g)
            ctx.set(dut.i.payload.mask, 1 << (g % 4))
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)
        for _ in range(3):
            await ctx.tick()

    async def watch(ctx):
        for cycle in range(30):
            if ctx.get(dut.o.valid):
                got.append((cycle, ctx.get(dut.o.payload)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.add_testbench(watch)
    sim.run()
    cycles = [c for c, _ in got]
    assert [p for _, p in got] == [g * 4 + g % 4 for g in range(16)]
    assert cycles == list(range(cycles[0], cycles[0] + 16))


def test_lane_matches_model_on_random_neurons():
    """One lane, random states and profiles, both decay datapaths, against ``models.lif.update``."""
    rng = np.random.default_rng(3)
    for decay in ("mul", "shift"):
        p = m.LifParams(N=64, N_EXT=1, LOOPBACK=False, P=1, REF_BITS=3, N_PROF=4, DECAY=decay, ACC_BITS=20)
        net = m.random_network(p, 9, extreme=True)
        acc = rng.integers(-(1 << 19), 1 << 19, 64)
        u = rng.integers(-(1 << 23) + 1, (1 << 23) + 1, 64)
        v = rng.integers(-(1 << 23) + 1, 1 << 23, 64)
        ref = rng.integers(0, 8, 64)
        exp = m.update(net, acc, u, v, ref)
        profiles = [profile_const(f, 3, decay) for f in net.profile_table()]
        lane = LifLane(acc_bits=20, cuba=True, decay=decay, ref_bits=3, profiles=profiles)
        got = []

        async def tb(ctx, lane=lane, net=net, acc=acc, u=u, v=v, ref=ref, got=got):
            ctx.set(lane.en, 1)
            for n in range(64 + LifLane.LATENCY):
                if n < 64:
                    for sig, val in (
                        (lane.acc, acc[n]),
                        (lane.u, u[n]),
                        (lane.v, v[n]),
                        (lane.ref, ref[n]),
                        (lane.bias_mant, net.bias_mant[n]),
                        (lane.bias_exp, net.bias_exp[n]),
                        (lane.prof, net.prof[n]),
                        (lane.real, 1),
                        (lane.lb, 0),
                    ):
                        ctx.set(sig, int(val))
                if n >= LifLane.LATENCY:
                    got.append(tuple(ctx.get(s) for s in (lane.u_o, lane.v_o, lane.ref_o, lane.s)))
                await ctx.tick()

        sim = Simulator(lane)
        sim.add_clock(1e-8)
        sim.add_testbench(tb)
        sim.run()
        want = list(zip(*(np.asarray(x).tolist() for x in exp), strict=True))
        want = [(a, b, c, int(d)) for a, b, c, d in want]
        assert len(got) == 64 and got == want, decay


def test_mac_array_baseline_accumulates_every_product():
    """The FPGA baseline of fusemax (spec §4) is a real MAC array: 24-bit wrapping sums of a[r] b[c]."""
    from neurohdl.hdl.mac_array import MacArray, MacArrayBench

    R, C, n = 2, 3, 200
    dut = MacArray(R, C)
    rng = np.random.default_rng(11)
    a = rng.integers(-128, 128, (n, R))
    b = rng.integers(-128, 128, (n, C))
    clear = rng.random(n) < 0.1
    clear[0] = True
    acc = np.zeros((R, C), dtype=np.int64)
    expected = []
    for i in range(n):
        acc = np.outer(a[i], b[i]) + (0 if clear[i] else acc)
        expected.append(((acc + (1 << 23)) % (1 << 24) - (1 << 23)).ravel().tolist())
    got = []

    async def bench(ctx):
        for i in range(n):
            ctx.set(dut.a, a[i].tolist())
            ctx.set(dut.b, b[i].tolist())
            ctx.set(dut.clear, int(clear[i]))
            await ctx.tick()
            got.append(list(ctx.get(dut.acc)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got == expected

    # the synthesis bench drives the array from its LFSR and its one output moves with the sums
    top = MacArrayBench(2, 2)
    outs = []

    async def watch(ctx):
        for _ in range(64):
            await ctx.tick()
            outs.append(ctx.get(top.o))

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(watch)
    sim.run()
    assert 10 < sum(outs) < 54
