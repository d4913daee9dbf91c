"""Ramp-ADC nonlinear-activation periphery (spec ``ramp_adc.md`` §3).

One step counter walks every group's ramp table; each column has only a signed comparator and an
N-bit latch, so C columns convert in K_run steps with no per-column adder or lookup.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..models.ramp_adc import (
    CFG_BIAS,
    CFG_CODE,
    CFG_LEN,
    CFG_RAMP,
    INCREMENT,
    RampBank,
    RampParams,
)

__all__ = ["RampAdc", "cfg_layout", "in_layout", "out_layout"]


def in_layout(p: RampParams) -> data.ArrayLayout:
    return data.ArrayLayout(signed(p.B_in), p.C)


def out_layout(p: RampParams) -> data.ArrayLayout:
    return data.ArrayLayout(unsigned(p.N), p.C)


def cfg_layout(p: RampParams) -> data.StructLayout:
    return data.StructLayout(
        {
            "kind": unsigned(2),
            "group": unsigned(p.group_bits),
            "addr": unsigned(p.addr_bits),
            "data": signed(p.B_in + 2),
        }
    )


def _entry_layout(p: RampParams) -> data.StructLayout:
    ramp = unsigned(p.w_d) if p.mode == INCREMENT else signed(p.B_in + 1)
    fields = {"ramp": ramp}
    if p.code_source == "table":
        fields["code"] = unsigned(p.N)
    return data.StructLayout(fields)


class _Tags:
    """The tags that travel with a step: valid, first, last, and per group 'step < L_g'."""

    def __init__(self, G: int, name: str):
        self.v = Signal(name=f"{name}_v")
        self.first = Signal(name=f"{name}_first")
        self.last = Signal(name=f"{name}_last")
        self.act = Signal(G, name=f"{name}_act")

    def eq(self, other: "_Tags") -> list:
        return [
            self.v.eq(other.v),
            self.first.eq(other.first),
            self.last.eq(other.last),
            self.act.eq(other.act),
        ]


class RampAdc(wiring.Component):
    """C columns, G function groups, one shared step counter.

    Parameters
    ----------
    bank : RampBank
        Build parameters and the initial tables (memory contents, lengths, biases).

    Attributes
    ----------
    overhead : int
        Cycles from ``i.valid`` (all idle) to ``o.valid`` beyond K_run: 2 + pipe (+1 in increment
        mode).
    params : RampParams

    Ports
    -----
    i : In(stream)
        C signed B_in-bit input codes (one crossbar MAC result per column).
    o : Out(stream)
        C unsigned N-bit output codes. The column latches are the output register: they hold a
        result until it is taken, and the next conversion's first step waits for that.
    cfg : In(stream), only when ``writable``
        ``kind`` 0 ramp entry, 1 code entry, 2 length L_g, 3 bias_g; ``ready`` only while idle. A
        ramp or code write takes two cycles (read, merge, write the shared entry).
    busy : Out(1)
        A conversion or a configuration write is in flight.

    Timing: the step counter issues one step per cycle; with ``in_reg`` the input is taken when its
    step 0 enters the comparators, and the next conversion starts without a gap (initiation interval
    max(K_run, overhead)); without it the comparators read ``i.payload`` in place and ``i.ready`` rises
    with the last comparison (interval K_run + overhead). A result not yet taken stalls the pipeline when
    the next conversion's first step reaches the comparators.
    """

    def __init__(self, bank: RampBank):
        self.bank = bank
        self.params = p = bank.params
        self.overhead = p.overhead
        members = {
            "i": In(stream.Signature(in_layout(p))),
            "o": Out(stream.Signature(out_layout(p))),
            "busy": Out(1),
        }
        if p.writable:
            members["cfg"] = In(stream.Signature(cfg_layout(p)))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        p, bank = self.params, self.bank
        G, C = p.G, p.C
        R_W = p.B_in + 1
        entry = _entry_layout(p)
        s_top = p.s_max + 1

        # -- programming state: memories ignore reset; lengths and biases are reset-less --------
        # A fixed threshold table is stored pre-decoded for the comparator (see _encode_fixed).
        precomputed = not p.writable and p.mode != INCREMENT
        rds, wrs = [], []
        for g in range(G):
            init = []
            for k in range(p.K_max):
                fields = {
                    "ramp": _encode_fixed(p, int(bank.ramp[g, k])) if precomputed else int(bank.ramp[g, k])
                }
                if p.code_source == "table":
                    fields["code"] = int(bank.code[g, k])
                init.append(Const.cast(entry.const(fields)).value)
            mem = memory.Memory(shape=unsigned(entry.size), depth=p.K_max, init=init)
            m.submodules[f"table{g}"] = mem
            rds.append(mem.read_port())
            if p.writable:
                wrs.append(mem.write_port())
        length = [
            Signal(range(1, p.K_max + 1), init=int(bank.length[g]), reset_less=True, name=f"length{g}")
            for g in range(G)
        ]
        bias = [
            Signal(signed(R_W), init=int(bank.bias[g]), reset_less=True, name=f"bias{g}") for g in range(G)
        ]
        k_run = _max_tree(m, length)

        # -- sequencer -----------------------------------------------------------------------
        run = Signal()
        j = Signal(range(p.K_max))
        taken = Signal()  # the issued conversion's input is not yet taken (pending / in use)
        wr_busy = Signal()
        stall = Signal()
        advance = Signal()
        cfg_valid = self.cfg.valid if p.writable else Const(0)
        m.d.comb += advance.eq(~stall)
        start = Signal()
        m.d.comb += start.eq(self.i.valid & ~cfg_valid & ~taken & ~wr_busy)

        s0 = _Tags(G, "s0")
        m.d.comb += [
            s0.v.eq(run),
            s0.first.eq(j == 0),
            s0.last.eq(j == k_run - 1),
        ]
        for g in range(G):
            m.d.comb += s0.act[g].eq(j < length[g])
        with m.If(advance):
            with m.If(run & ~s0.last):
                m.d.sync += j.eq(j + 1)
            with m.Elif(start):
                m.d.sync += [run.eq(1), j.eq(0), taken.eq(1)]
            with m.Else():
                m.d.sync += run.eq(0)

        # -- stage 1: memory data --------------------------------------------------------------
        for g in range(G):
            addr = j if not p.writable else Mux(run, j, self.cfg.payload.addr)
            m.d.comb += [rds[g].addr.eq(addr), rds[g].en.eq(advance)]
        s1 = _Tags(G, "s1")
        with m.If(advance):
            m.d.sync += s1.eq(s0)
        ramp = [data.View(entry, rds[g].data).ramp for g in range(G)]
        code = [data.View(entry, rds[g].data).code if p.code_source == "table" else None for g in range(G)]
        if p.code_source == "counter":
            j1 = Signal.like(j, name="j1")
            with m.If(advance):
                m.d.sync += j1.eq(j)
            code = [j1[: p.N]] * G
        stages = [s0, s1]

        # -- increment mode: the accumulator (bias + running sum, saturating at s_max + 1) ---------
        if p.mode == INCREMENT:
            sa = _Tags(G, "sa")
            acc = [Signal(signed(R_W), name=f"acc{g}") for g in range(G)]
            code_a = [Signal(unsigned(p.N), name=f"code_a{g}") for g in range(G)]
            with m.If(advance):
                m.d.sync += sa.eq(s1)
                for g in range(G):
                    total = Mux(s1.first, bias[g], acc[g]) + ramp[g]
                    m.d.sync += [acc[g].eq(Mux(total > s_top, s_top, total)), code_a[g].eq(code[g])]
            ramp, code = acc, code_a
            stages.append(sa)

        # -- extra broadcast registers ------------------------------------------------------------
        for k in range(p.pipe):
            sp = _Tags(G, f"sp{k}")
            r_p = [Signal(signed(R_W), name=f"ramp_p{k}_{g}") for g in range(G)]
            c_p = [Signal(unsigned(p.N), name=f"code_p{k}_{g}") for g in range(G)]
            with m.If(advance):
                m.d.sync += sp.eq(stages[-1])
                m.d.sync += [r.eq(x) for r, x in zip(r_p, ramp, strict=True)]
                m.d.sync += [c.eq(x) for c, x in zip(c_p, code, strict=True)]
            ramp, code = r_p, c_p
            stages.append(sp)
        se, pre = stages[-1], stages[-2]

        # -- columns: comparator and latch -------------------------------------------------------
        last_cmp = Signal()
        m.d.comb += [
            last_cmp.eq(se.v & se.last),
            stall.eq(se.v & se.first & self.o.valid & ~self.o.ready),
        ]
        if p.in_reg:
            s_in = Signal(in_layout(p))
            take = pre.v & pre.first & advance
            with m.If(take):
                m.d.sync += s_in.eq(self.i.payload)
        else:
            s_in = self.i.payload
            take = last_cmp & advance
        m.d.comb += self.i.ready.eq(take)
        with m.If(take):
            m.d.sync += taken.eq(0)
        # The latches are the output register: a conversion's step 0 may only overwrite them once
        # the previous result is taken. Tables fixed at elaboration often need less per column:
        # padded with the never-crossed sentinel (threshold mode), steps past L_g cannot hit, and
        # with every R_0 <= s_min step 0 always hits, so the clear is never needed.
        R = bank.ramps()
        fixed = not p.writable
        gated = G > 1 and not (fixed and p.mode != INCREMENT)
        clear = not (fixed and all(R[g, 0] <= p.s_min for g in range(G)))
        # Signed s >= R as the carry out of (s + 2^B_in) + ~(R + 2^B_in) + 1: the inverted
        # threshold is formed once per group, so each column's comparator is a bare carry chain.
        # A pre-decoded fixed table needs only B_in bits of chain (s - s_min + ~(R - s_min - 1)).
        ramp_n = [~Cat(r[: R_W - 1], ~r[R_W - 1]) for r in ramp]
        for k in range(C):
            g = p.groups[k]
            x = s_in[k]
            if precomputed:
                r = ramp[g]
                ge = (Cat(x[: p.B_in - 1], ~x[p.B_in - 1]) + r[: p.B_in])[p.B_in] | r[p.B_in]
            else:
                ge = (Cat(x[: p.B_in], ~x[p.B_in - 1]) + ramp_n[g] + 1)[R_W]
            hit = se.act[g] & ge if gated else ge
            with m.If(se.v & advance):
                with m.If(hit):
                    m.d.sync += self.o.payload[k].eq(code[g])
                if clear:
                    with m.Elif(se.first):
                        m.d.sync += self.o.payload[k].eq(0)
        with m.If(last_cmp & advance):
            m.d.sync += self.o.valid.eq(1)
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        busy = run | wr_busy
        for st in stages[1:]:
            busy = busy | st.v
        m.d.comb += self.busy.eq(busy)

        # -- cfg: lengths and biases directly, table entries as read-merge-write -----------------
        if p.writable:
            cfg = self.cfg
            cfg_beat = Signal(cfg_layout(p))
            m.d.comb += cfg.ready.eq(~busy)
            with m.If(cfg.valid & cfg.ready):
                m.d.sync += [cfg_beat.eq(cfg.payload), wr_busy.eq(1)]
                for g in range(G):
                    m.d.comb += rds[g].en.eq(1)
            with m.If(wr_busy):
                m.d.sync += wr_busy.eq(0)
            b = cfg_beat
            in_range = b.addr < p.K_max
            d = b.data
            for g in range(G):
                hit = wr_busy & (b.group == g)
                old = data.View(entry, rds[g].data)
                new = Signal(entry, name=f"merge{g}")
                m.d.comb += new.eq(old)
                if p.mode == INCREMENT:
                    m.d.comb += new.ramp.eq(d[: p.w_d])
                else:
                    m.d.comb += new.ramp.eq(d[:R_W])
                with m.If(b.kind == CFG_CODE):
                    m.d.comb += new.ramp.eq(old.ramp)
                    if p.code_source == "table":
                        m.d.comb += new.code.eq(d[: p.N])
                is_entry = (b.kind == CFG_RAMP) | ((b.kind == CFG_CODE) & (p.code_source == "table"))
                m.d.comb += [
                    wrs[g].addr.eq(b.addr),
                    wrs[g].data.eq(new),
                    wrs[g].en.eq(hit & in_range & is_entry),
                ]
                with m.If(hit & (b.kind == CFG_LEN)):
                    m.d.sync += length[g].eq(Mux(d < 1, 1, Mux(d > p.K_max, p.K_max, d)))
                if p.mode == INCREMENT:
                    with m.If(hit & (b.kind == CFG_BIAS)):
                        m.d.sync += bias[g].eq(d[:R_W].as_signed())
        return m


def _max_tree(m: Module, values: list[Signal]) -> Signal:
    """The largest of ``values`` (the conversion's step count K_run)."""
    cur = values[0]
    for i, v in enumerate(values[1:]):
        nxt = Signal.like(cur, name=f"k_run_{i}")
        m.d.comb += nxt.eq(Mux(v > cur, v, cur))
        cur = nxt
    return cur


def _encode_fixed(p: RampParams, r: int) -> int:
    """A fixed threshold for the comparator: with R' = clip(R, s_min, s_max + 1) - s_min, the low
    B_in bits hold ~(R' - 1) and the top bit says R' = 0 (crossed by every input)."""
    rel = min(max(r, p.s_min), p.s_max + 1) - p.s_min
    if rel == 0:
        return 1 << p.B_in
    return ~(rel - 1) & ((1 << p.B_in) - 1)
