"""Slot-accurate RTL of SFQ pulse netlists (spec ``sfq.md`` §3): one component per element type, and
:class:`SfqNet`, which builds and wires them from a :class:`~neurohdl.models.sfq_netlist.Netlist`.

One clock cycle with ``adv`` high is one slot. Every element registers its decision and delays it by
``lat - 1`` more slots; all slot state moves only on ``adv`` (an ``EnableInserter``), so the outputs
hold under back-pressure.
"""

from amaranth.hdl import Cat, Const, EnableInserter, Module, Mux, ResetInserter, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..models.sfq import lfsr_step
from ..models.sfq_netlist import (
    COUNTERS,
    CTRL,
    CYCLES,
    DEBUG_BASE,
    ID,
    REG_BASE,
    SLOTS,
    Element,
    Netlist,
    debug_counters,
    netlist_id,
)

__all__ = [
    "SfqNet", "SfqCore", "element_component", "CFG_LAYOUT", "REG_BASE", "CTRL", "SLOTS", "CYCLES", "ID"
]  # fmt: skip

CFG_LAYOUT = data.StructLayout({"we": 1, "addr": 12, "data": 32})


class _Element(wiring.Component):
    """Base: input pulse ports per element port (one bit per wire), one output bit per output wire,
    and one input per runtime parameter (its register's value).

    Timing: the decision of slot t is on ``out`` in slot t + lat (registered, then lat - 1 stages).

    With ``cnt_width`` > 0, one ``dbg_NAME`` output per debug counter of the element type
    (``models.sfq_netlist.COUNTERS``): what the golden model counts in the slot is added, mod
    2^cnt_width.

    ``state``: after elaboration, the element's state registers under the golden model's field
    names (``models.sfq`` ``_State``), for tests that start a slot from any state.
    """

    def __init__(self, e: Element, reg_widths: dict[str, int], cnt_width: int = 0):
        self.e = e
        self.cnt_width = cnt_width
        self.state: dict[str, Signal] = {}
        self.increments: dict[str, object] = {}
        members = {f"in_{p}": In(len(ws)) for p, ws in e.ins.items() if ws}
        members["out"] = Out(len(e.outs))
        for name, prm in e.params.items():
            if prm.reg:
                members[f"p_{name}"] = In(reg_widths[prm.reg])
        if cnt_width:
            members.update({f"dbg_{name}": Out(cnt_width) for name in COUNTERS.get(e.type, ())})
        super().__init__(members)

    def param(self, name: str):
        prm = self.e.params[name]
        return getattr(self, f"p_{name}") if prm.reg else Const(prm.value)

    def port(self, name: str):
        return getattr(self, f"in_{name}") if self.e.ins.get(name) else Const(0, 1)

    def decide(self, m: Module):
        """Returns the one-bit decision of this slot; adds the state updates to ``m.d.sync`` and
        states what each debug counter counts in the slot with :meth:`count`."""
        raise NotImplementedError

    def count(self, name: str, amount) -> None:
        """The debug counter ``name`` grows by ``amount`` (a value) in this slot."""
        self.increments[name] = amount

    def elaborate(self, platform):
        m = Module()
        d = self.decide(m)
        if self.cnt_width:
            assert set(self.increments) == set(COUNTERS.get(self.e.type, ())), self.e.type
            for name, amount in self.increments.items():
                cnt = getattr(self, f"dbg_{name}")
                m.d.sync += cnt.eq(cnt + amount)
        stage = Signal(name="decided")
        m.d.sync += stage.eq(d)
        for k in range(self.e.lat - 1):
            nxt = Signal(name=f"lat{k + 1}")
            m.d.sync += nxt.eq(stage)
            stage = nxt
        m.d.comb += self.out.eq(stage.replicate(len(self.e.outs)))
        return m


class Delay(_Element):
    def decide(self, m):
        return self.port("in")[0]


class Merge(_Element):
    def decide(self, m):
        e = self.e
        ins = self.port("in")
        c = Signal(range(len(ins) + 1))
        m.d.comb += c.eq(sum(ins[k] for k in range(len(ins))))
        dead = e.params["dead"].value
        # the dead-time counter; none without a dead time (a register stuck at 0 survives synthesis)
        dz = Signal(range(dead + 1)) if dead else Const(0)
        if dead:
            self.state["dz"] = dz

        def restart():
            if dead:
                m.d.sync += dz.eq(dead)

        if dead:
            with m.If(dz != 0):
                m.d.sync += dz.eq(dz - 1)
        out = Signal()
        if e.choices["mode"] == "lossy":
            with m.If((dz == 0) & (c != 0)):
                m.d.comb += out.eq(1)
                restart()
            self.count("lost", Mux(dz != 0, c, c - out))
            return out
        depth = e.params["depth"].value
        q = Signal(range(depth + len(ins) + 1))
        q1 = Signal.like(q)
        m.d.comb += q1.eq(q + c)
        q2 = Signal.like(q)
        m.d.comb += q2.eq(q1)
        with m.If((dz == 0) & (q1 != 0)):
            m.d.comb += [out.eq(1), q2.eq(q1 - 1)]
            restart()
        m.d.sync += q.eq(q2)
        with m.If(q2 > depth):
            m.d.sync += q.eq(depth)
        self.count("lost", Mux(q2 > depth, q2 - depth, 0))
        self.state["q"] = q
        return out


class Dro(_Element):
    def decide(self, m):
        d, clk = self.port("d")[0], self.port("clk")[0]
        b = Signal()
        self.state["b"] = b
        out = Signal()
        self.count("same_slot", d & clk)
        if self.e.choices["order"] == "clock_first":
            m.d.comb += out.eq(clk & b)
            self.count("dup", d & b & ~clk)
            with m.If(d):
                m.d.sync += b.eq(1)
            with m.Elif(clk):
                m.d.sync += b.eq(0)
        else:
            m.d.comb += out.eq(clk & (b | d))
            self.count("dup", d & b)
            with m.If(clk):
                m.d.sync += b.eq(0)
            with m.Elif(d):
                m.d.sync += b.eq(1)
        return out


class Ndro(_Element):
    def decide(self, m):
        s, r, clk = self.port("set")[0], self.port("rst")[0], self.port("clk")[0]
        b = Signal()
        self.state["b"] = b
        self.count("same_slot", (s | r) & clk)
        self.count("conflict", s & r)
        with m.If(s & ~r):
            m.d.sync += b.eq(1)
        with m.Elif(r & ~s):
            m.d.sync += b.eq(0)
        return clk & b


class Tff(_Element):
    def decide(self, m):
        x = self.port("in")[0]
        b = Signal(init=self.e.params["init"].value)
        self.state["b"] = b
        with m.If(x):
            m.d.sync += b.eq(~b)
        return x & b


class CLast(_Element):
    """Latches each input until both were seen; fires with the second (c_first: with the first)."""

    def decide(self, m):
        a, b = self.port("a")[0], self.port("b")[0]
        sa, sb = Signal(), Signal()
        self.state.update(sa=sa, sb=sb)
        self.count("dup", (a & sa) + (b & sb))
        na, nb = sa | a, sb | b
        both = na & nb
        m.d.sync += [sa.eq(na & ~both), sb.eq(nb & ~both)]
        return both if self.e.type == "c_last" else ~sa & ~sb & (a | b)


class Inhibit(_Element):
    def decide(self, m):
        a, clk = self.port("a")[0], self.port("clk")[0]
        s = Signal()
        self.state["b"] = s
        self.count("same_slot", a & clk)
        with m.If(a):
            m.d.sync += s.eq(1)
        with m.Elif(clk):
            m.d.sync += s.eq(0)
        return clk & ~s


class Divider(_Element):
    def decide(self, m):
        x = self.port("in")[0]
        k = self.e.params["k"].value
        c = Signal(range(max(2, k)))
        self.state["c"] = c
        hit = Signal()
        with m.If(x):
            with m.If(c == k - 1):
                m.d.comb += hit.eq(1)
                m.d.sync += c.eq(0)
            with m.Else():
                m.d.sync += c.eq(c + 1)
        return hit


def lfsr_matrix(k: int) -> list[int]:
    """step^k is linear over GF(2): bit i of the result is the XOR of the input bits in mask i."""
    cols = [lfsr_step(1 << j, k) for j in range(16)]
    return [sum(((cols[j] >> i) & 1) << j for j in range(16)) for i in range(16)]


class Synapse(_Element):
    def decide(self, m):
        x = self.port("in")[0]
        s = Signal(16, init=self.e.params["seed"].value)
        masks = lfsr_matrix(self.e.params["steps"].value)
        nxt = Cat(*((s & mask).xor() for mask in masks))
        self.state["s"] = s
        passed = s <= self.param("p")
        self.count("pass", x & passed)
        self.count("block", x & ~passed)
        with m.If(x):
            m.d.sync += s.eq(nxt)
        return x & passed


class Neuron(_Element):
    """§2.5 as one combinational chain into the W-bit count; theta = 0 and leak = 0 guards."""

    def decide(self, m):
        e = self.e
        W = e.params["width"].value
        n_max = 2**W - 1
        exc, inh = self.port("exc"), self.port("inh")
        n = Signal(W, init=e.params["n0"].value)
        R = e.params["refractory"].value
        r = Signal(range(R + 1)) if R else None
        leak = self.param("leak")
        lc_w = max(1, (e.params["leak"].value - 1).bit_length()) if not e.params["leak"].reg else len(leak)
        lc = Signal(lc_w)
        self.state.update(n=n, lc=lc, **({"r": r} if R else {}))
        ne = len(e.ins["exc"])
        ni = len(e.ins["inh"])
        if e.choices["fanin"] == "merge":
            ev = exc.any()
            iv = inh.any() if ni else Const(0)
        else:
            ev = sum(exc[k] for k in range(ne))
            iv = sum(inh[k] for k in range(ni)) if ni else Const(0)
        refr = (r != 0) if R else Const(0)
        ev_m = Signal(range(ne + 1))
        iv_m = Signal(range(max(2, ni + 1)))
        m.d.comb += [ev_m.eq(ev), iv_m.eq(iv)]
        with m.If(refr):
            m.d.comb += [ev_m.eq(0), iv_m.eq(0)]
            if R:
                m.d.sync += r.eq(r - 1)
        total = Signal(range(-(ni + 1), n_max + ne + 2))
        m.d.comb += total.eq(n + ev_m - iv_m)
        clamped = Signal(W)
        with m.If(total > n_max):
            m.d.comb += clamped.eq(n_max)
        with m.Elif(total < 0):
            m.d.comb += clamped.eq(0)
        with m.Else():
            m.d.comb += clamped.eq(total)
        theta = self.param("theta")
        fire = Signal()
        m.d.comb += fire.eq(~refr & (theta != 0) & (clamped >= theta))
        after = Signal(W)
        m.d.comb += after.eq(clamped)
        with m.If(fire):
            if R:
                m.d.sync += r.eq(R)
            if e.choices["reset"] == "subtract":
                m.d.comb += after.eq(clamped - theta)
            else:
                m.d.comb += after.eq(0)
        tick = Signal()
        m.d.comb += tick.eq((leak != 0) & (lc >= leak - 1))
        raw_e = sum(exc[k] for k in range(ne))
        raw_i = sum(inh[k] for k in range(ni)) if ni else Const(0)
        self.count("fires", fire)
        self.count("sat_drop", Mux(total > n_max, total - n_max, 0))
        self.count("floor_drop", Mux(total < 0, -total, 0))
        self.count("cancelled", Mux(ev_m < iv_m, ev_m, iv_m))
        self.count("refr_drop", Mux(refr, ev + iv, 0))
        self.count("fanin_lost", raw_e - ev + raw_i - iv if e.choices["fanin"] == "merge" else Const(0))
        self.count("reset_drop", Mux(fire, clamped - theta, 0) if e.choices["reset"] == "zero" else Const(0))
        self.count("leaked", tick & (after != 0))
        with m.If((leak == 0) | tick):
            m.d.sync += lc.eq(0)
        with m.Else():
            m.d.sync += lc.eq(lc + 1)
        with m.If(tick & (after != 0)):
            m.d.sync += n.eq(after - 1)
        with m.Else():
            m.d.sync += n.eq(after)
        return fire


COMPONENTS = {
    "delay": Delay, "split": Delay, "merge": Merge, "dro": Dro, "ndro": Ndro, "tff": Tff, "c_last": CLast,
    "c_first": CLast, "inhibit": Inhibit, "divider": Divider, "synapse": Synapse, "neuron": Neuron,
}  # fmt: skip


def element_component(e: Element, reg_widths: dict[str, int], cnt_width: int = 0) -> _Element:
    return COMPONENTS[e.type](e, reg_widths, cnt_width)


class SfqCore(wiring.Component):
    """The elements wired by the netlist, one slot per clock: what :class:`SfqNet` wraps, and on its
    own what the spec's hand-written prototypes measure (§4).

    Parameters
    ----------
    net : the netlist.
    fixed_regs : each runtime register is a constant at its reset value (no ``reg_*`` ports), so
        synthesis folds it into the logic.
    cnt_width : width of the debug counters (0: none).

    Ports
    -----
    pulses_in : In(one bit per input), the inputs' pulses in this slot.
    pulses_out : Out(one bit per output), the outputs' registered pulses.
    reg_NAME : In(width), the runtime register NAME's value (unless ``fixed_regs``).
    counters : Out(array of cnt_width-bit counters), in ``debug_counters(net)`` order (if
        ``cnt_width``).
    """

    def __init__(self, net: Netlist, *, fixed_regs: bool = False, cnt_width: int = 0):
        self.net = net
        self.fixed_regs = fixed_regs
        self.cnt_width = cnt_width
        ports = {"pulses_in": In(max(1, len(net.inputs))), "pulses_out": Out(len(net.outputs))}
        if not fixed_regs:
            ports.update({f"reg_{r.name}": In(r.width) for r in net.regs.values()})
        n_cnt = len(debug_counters(net))
        if cnt_width and n_cnt:
            ports["counters"] = Out(data.ArrayLayout(cnt_width, n_cnt))
        super().__init__(ports)

    def reg(self, name: str):
        r = self.net.regs[name]
        return Const(r.init, r.width) if self.fixed_regs else getattr(self, f"reg_{name}")

    def elaborate(self, platform):
        m = Module()
        net = self.net
        wire = {w: self.pulses_in[k] for k, w in enumerate(net.inputs)}
        widths = {r.name: r.width for r in net.regs.values()}
        comps = []
        for e in net.elements:
            c = element_component(e, widths, self.cnt_width)
            m.submodules[e.id] = c
            comps.append(c)
            for k, w in enumerate(e.outs):
                wire[w] = c.out[k]
        for e, c in zip(net.elements, comps, strict=True):
            for p, ws in e.ins.items():
                if ws:
                    m.d.comb += getattr(c, f"in_{p}").eq(Cat(*(wire[w] for w in ws)))
            for name, prm in e.params.items():
                if prm.reg:
                    m.d.comb += getattr(c, f"p_{name}").eq(self.reg(prm.reg))
        m.d.comb += self.pulses_out.eq(Cat(*(wire[w] for w in net.outputs)))
        if self.cnt_width:
            ports = [getattr(c, f"dbg_{name}") for c in comps for name in COUNTERS.get(c.e.type, ())]
            m.d.comb += [self.counters[k].eq(port) for k, port in enumerate(ports)]
        return m


class SfqNet(wiring.Component):
    """A netlist as a streaming block: one ``i`` beat per slot, one ``o`` beat per slot.

    Ports
    -----
    i : In(stream), payload bit k = input k's pulse in this slot.
    o : Out(stream), beat k = row k + 1 of the outputs (the elements' registered outputs).
    cfg : In(stream of {we, addr, data}): CTRL (0x000, bit 0 CLEAR), runtime registers from 0x010;
        a read (we = 0) answers on ``rsp``: SLOTS (0x001), CYCLES (0x002), ID (0x003, CRC32 of the
        netlist), registers, debug counters from 0x400 (``models.sfq_netlist.register_map``).
    rsp : Out(stream of 32 bits).

    Parameters: ``cnt_width``, the debug counters' width (0: none; CLEAR zeroes them).

    Timing: a slot advances when ``i`` is taken; ``i.ready`` = (o empty or taken) and no cfg beat in
    this cycle, so a write accepted after k slots acts from slot k.
    """

    def __init__(self, net: Netlist, cnt_width: int = 0):
        self.net = net
        self.cnt_width = cnt_width
        super().__init__(
            {
                "i": In(stream.Signature(max(1, len(net.inputs)))),
                "o": Out(stream.Signature(len(net.outputs))),
                "cfg": In(stream.Signature(CFG_LAYOUT)),
                "rsp": Out(stream.Signature(32)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        net = self.net
        cfg_take = Signal()
        adv = Signal()
        clear = Signal()
        m.d.comb += [
            self.cfg.ready.eq(~self.rsp.valid | self.rsp.ready),
            cfg_take.eq(self.cfg.valid & self.cfg.ready),
            self.i.ready.eq((~self.o.valid | self.o.ready) & ~cfg_take),
            adv.eq(self.i.valid & self.i.ready),
        ]
        core = SfqCore(net, cnt_width=self.cnt_width)
        m.submodules.core = ResetInserter(clear)(EnableInserter(adv)(core))
        regs = {}
        for k, r in enumerate(net.regs.values()):
            reg = Signal(r.width, init=r.init, name=f"reg_{r.name}")
            regs[REG_BASE + k] = reg
            m.d.comb += getattr(core, f"reg_{r.name}").eq(reg)
        slots = Signal(32)
        cycles = Signal(32)
        m.d.sync += cycles.eq(cycles + 1)
        # After slot k's edge the elements' output registers hold row k + 1: that is beat k.
        m.d.comb += [core.pulses_in.eq(self.i.payload), self.o.payload.eq(core.pulses_out)]
        with m.If(adv):
            m.d.sync += [slots.eq(slots + 1), self.o.valid.eq(1)]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.rsp.ready):
            m.d.sync += self.rsp.valid.eq(0)
        beat = self.cfg.payload
        with m.If(cfg_take):
            with m.If(beat.we):
                with m.If(beat.addr == CTRL):
                    m.d.comb += clear.eq(beat.data[0])
                    with m.If(beat.data[0]):
                        m.d.sync += [slots.eq(0), cycles.eq(0), self.o.valid.eq(0)]
                for addr, reg in regs.items():
                    with m.If(beat.addr == addr):
                        m.d.sync += reg.eq(beat.data)
            with m.Else():
                m.d.sync += self.rsp.valid.eq(1)
                with m.Switch(beat.addr):
                    with m.Case(SLOTS):
                        m.d.sync += self.rsp.payload.eq(slots)
                    with m.Case(CYCLES):
                        m.d.sync += self.rsp.payload.eq(cycles)
                    with m.Case(ID):
                        m.d.sync += self.rsp.payload.eq(netlist_id(net))
                    for addr, reg in regs.items():
                        with m.Case(addr):
                            m.d.sync += self.rsp.payload.eq(reg)
                    if self.cnt_width:
                        for k in range(len(debug_counters(net))):
                            with m.Case(DEBUG_BASE + k):
                                m.d.sync += self.rsp.payload.eq(core.counters[k])
                    with m.Default():
                        m.d.sync += self.rsp.payload.eq(0)
        return m
