"""RTL of the ``fusemax`` block (spec ``fusemax.md`` §3): an R x C array of PEs computing one attention
head in one pass over the keys, with a correction row of C units and a restoring divider per column
(or, ``divider = "shared"``, one taking the columns in turn).

Keys of the current epoch run along rows, queries of the current tile along columns. Each epoch is a
sequence of slots on one multiplier per PE: ``QK`` (E slots, one multiply-accumulate each),
``SC1``/``SC2`` (scale S Cs to log2 units in two passes, after one cycle for the last QK sum) and
``PV`` (F slots, one product per PE into the column add tree). exp2 (ROM read, latch, rounding, shift:
p is in the PEs four cycles after it starts) needs no multiplier, so it runs beside the slots as soon as
its epoch's running max is in the PEs. The interleaved schedule runs ``QK(g) SC(g) PV(g-1)`` with
epoch g-1's exp2 during QK(g), so the max tree and the running-max update of epoch g hide behind epoch
g+1's QK; the serial one runs each epoch to completion and waits for each tile's division. Numerics
are identical (the golden model is :func:`neurohdl.models.fusemax.attention_int`); cycle counts
follow :func:`~neurohdl.models.fusemax.cycles`.

Only slot issue stalls: a slot issues when its input beats are valid and its internal conditions hold
(running max ready, correction bank free), otherwise the array freezes. Everything behind the slot
(product registers, trees, correction row) keeps flowing with bubble tags, and the divider and the
output register run on their own, so ``o`` back-pressure never stops accumulation of the next tile.
"""

from __future__ import annotations

import operator
from functools import partial, reduce
from types import SimpleNamespace

from amaranth.hdl import Array, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..models.fusemax import D_MAX, SCALE_STEPS, FusemaxParams, Timing, exp2_table
from ..models.ints import ceil_log2

__all__ = ["FusemaxArray", "cfg_layout", "out_layout"]


def cfg_layout(p: FusemaxParams) -> data.StructLayout:
    return data.StructLayout({"M": range(p.M_MAX + 1), "P": range(p.P_MAX + 1), "Cs": 16, "SH": 6})


def out_layout(p: FusemaxParams) -> data.StructLayout:
    return data.StructLayout({"data": data.ArrayLayout(signed(8 + p.OB), p.C), "last": 1})


def signature_members(p: FusemaxParams) -> dict:
    """The block's ports (spec §3.2, §3.3), shared by both microarchitectures."""
    return {
        "cfg": In(stream.Signature(cfg_layout(p))),
        "q": In(stream.Signature(data.ArrayLayout(signed(8), p.C))),
        "k": In(stream.Signature(data.ArrayLayout(signed(8), p.R))),
        "v": In(stream.Signature(data.ArrayLayout(signed(8), p.R))),
        "o": Out(stream.Signature(out_layout(p))),
        "perf_busy": Out(48),
        "perf_mac": Out(48),
        "perf_stall_in": Out(48),
        "perf_stall_out": Out(48),
        "running": Out(1),
    }


def count_job(m: Module, dut: wiring.Component, running: Signal, *, mac, stall_in) -> None:
    """The counters of spec §3.3 while a job runs (cleared by the caller when ``cfg`` is taken), and
    the job's end at the last ``o`` handshake."""
    o = dut.o
    with m.If(running):
        m.d.sync += dut.perf_busy.eq(dut.perf_busy + 1)
        with m.If(mac):
            m.d.sync += dut.perf_mac.eq(dut.perf_mac + 1)
        with m.If(stall_in):
            m.d.sync += dut.perf_stall_in.eq(dut.perf_stall_in + 1)
        with m.If(o.valid & ~o.ready):
            m.d.sync += dut.perf_stall_out.eq(dut.perf_stall_out + 1)
        with m.If(o.valid & o.ready & o.payload.last):
            m.d.sync += running.eq(0)


def next_epoch(m: Module, domain: str, d: data.View, nxt: data.View, *, R: int, C: int, M, P) -> None:
    """``nxt`` becomes the epoch after the descriptor ``d`` (in ``domain``): the next R keys, or the
    next tile's first epoch after the last (``ex`` low after the job's last). The bits that say
    where an epoch stands (``last``, ``tlast``, ``keys``) are computed here, a step ahead, so no
    compare sits in front of the control; ``par``, if the layout has it, flips every epoch."""
    flip = [nxt.par.eq(~d.par)] if "par" in d.shape().members else []
    m.d[domain] += nxt.eq(d)
    with m.If(d.last):
        m.d[domain] += [
            nxt.kb.eq(0),
            nxt.first.eq(1),
            nxt.last.eq(R >= M),
            nxt.keys.eq(Cat(r < M for r in range(R))),
            nxt.qb.eq(d.qb + C),
            nxt.tlast.eq(d.qb + 2 * C >= P),
            nxt.bank.eq(~d.bank),
            nxt.ex.eq(~d.tlast),
            *flip,
        ]
    with m.Else():
        m.d[domain] += [
            nxt.kb.eq(d.kb + R),
            nxt.last.eq(d.kb + 2 * R >= M),
            nxt.keys.eq(Cat(d.kb + R + r < M for r in range(R))),
            nxt.first.eq(0),
            *flip,
        ]


def _tree(m: Module, leaves: list, op, name: str):
    """A registered reduction tree: ceil(log2(n)) stages, each a register of pairwise results (an odd
    element is carried through a register). Zero stages for one leaf."""
    level = 0
    while len(leaves) > 1:
        nxt = []
        for i in range(0, len(leaves), 2):
            val = op(leaves[i], leaves[i + 1]) if i + 1 < len(leaves) else leaves[i]
            reg = Signal(val.shape(), name=f"{name}_l{level}_{i // 2}")
            m.d.sync += reg.eq(val)
            nxt.append(reg)
        leaves, level = nxt, level + 1
    return leaves[0]


def _pick(pair: list, bit):
    """One of two registers (a bank or score-register pair) by a select bit."""
    return Mux(bit, pair[1], pair[0])


def _one_hot(m: Module, shape, name: str, terms: list) -> Signal:
    """The value of the term whose select is high (the selects are one-hot; none: 0) as an AND-OR:
    two LUT levels, where a priority mux takes about one per term."""
    parts = []
    for i, (sel, value) in enumerate(terms):
        part = Signal(shape, name=f"{name}_{i}")
        m.d.comb += part.eq(Mux(sel, value, 0))
        parts.append(part)
    out = Signal(shape, name=name)
    m.d.comb += out.eq(reduce(operator.or_, parts))
    return out


def _copy(name: str, shape=1, *, keep: bool) -> Signal:
    """One copy of a control register for the logic near it; ``keep``: synthesis must not merge it
    with its equals (else it may, and on a small array does)."""
    return Signal(shape, name=name, attrs={"keep": 1} if keep else {})


def _put(m: Module, pair: list, bit, value) -> None:
    """Write ``value`` into the register of ``pair`` that ``bit`` selects, leaving the other to any
    other writer in the same cycle."""
    with m.If(bit):
        m.d.sync += pair[1].eq(value)
    with m.Else():
        m.d.sync += pair[0].eq(value)


class FusemaxArray(wiring.Component):
    """FuseMax-style attention array.

    Parameters
    ----------
    params : FusemaxParams
        Build parameters (spec §2.1; ``exp2`` methods are realised as the ROM's contents).

    Attributes
    ----------
    K_OVH, L_RM, L_RED, T_DIV, EX, SC_GAP, T_HEAD, L_OUT : int
        Timing constants (spec §3.3), as in :class:`~neurohdl.models.fusemax.Timing`.

    Ports
    -----
    cfg : In(stream)
        ``M, P, Cs, SH`` of one job; ready only while no job runs. ``M = 0`` or ``P = 0``: nothing.
    q : In(stream of C x int8)
        Per query tile t, E beats: lane c = Q[tC + c, e].
    k, v : In(stream of R x int8)
        Per tile t and epoch j: E beats of K (lane r = K[jR + r, e]), F beats of V. Consumed
        independently; ``k`` of epoch j + 1 is taken before ``v`` of epoch j when interleaving.
    o : Out(stream of {data: C x signed(8 + OB), last})
        Per tile F beats: lane c = AV[tC + c, f] (0 for padding queries); ``last`` on the job's last.
    perf_busy, perf_mac, perf_stall_in, perf_stall_out : Out(48)
        Counters of the last job (spec §3.3), cleared when ``cfg`` is taken.
    running : Out(1)
        From the ``cfg`` handshake to the last ``o`` handshake.
    """

    def __init__(self, params: FusemaxParams):
        self.p = p = params.check()
        t = Timing.of(p)
        self.K_OVH, self.L_RM, self.L_RED, self.T_DIV = t.K_OVH, t.L_RM, t.L_RED, t.T_DIV
        self.EX, self.SC_GAP, self.T_HEAD, self.L_OUT = t.EX, t.SC_GAP, t.T_HEAD, t.L_OUT
        super().__init__(signature_members(p))

    def elaborate(self, platform):
        p = self.p
        m = Module()
        R, C, E, F, FB, PW, OB = p.R, p.C, p.E, p.F, p.FB, p.PW, p.OB
        local_copy = partial(_copy, keep=p.keep_copies)
        XW = p.XW
        L_RM, L_RED = self.L_RM, self.L_RED
        tree = ceil_log2(R)
        NQ = 9 + OB  # quotient bits (|RNV| < 128 RD + 258)
        W_SCORE = max(XW, PW + 1)  # x, then p; S has its own accumulator
        W_R = XW - FB + 1
        fbits = max(1, ceil_log2(F))
        ebits = max(1, ceil_log2(E))
        x_min, x_max = -(1 << (XW - 1)), (1 << (XW - 1)) - 1

        # -- job registers (SH is kept in every PE, below) ----------------------------------
        cfgp = self.cfg.payload
        M = Signal.like(cfgp.M, name="M")
        P = Signal.like(cfgp.P, name="P")
        running = Signal()
        start = Signal()
        m.d.comb += [self.cfg.ready.eq(~running), start.eq(self.cfg.valid & self.cfg.ready)]
        m.d.comb += self.running.eq(running)

        # -- epoch descriptors (front: QK/SC, back: EX/PV when interleaving) ----------------
        desc = data.StructLayout(
            {
                "ex": 1,
                "kb": range(p.M_MAX + R + 1),
                "qb": range(p.P_MAX + C + 1),
                "par": 1,
                "bank": 1,
                "first": 1,  # kb == 0, kept as a bit: it selects every PE's Q operand
                # the epoch is its tile's last (kb + R >= M), the tile the job's last (qb + C >= P):
                # kept as bits, computed a step ahead, so no compare sits in front of the control
                "last": 1,
                "tlast": 1,
                "keys": R,  # row r holds a key (kb + r < M), also a step ahead
            }
        )
        front = Signal(desc, name="front")
        back = Signal(desc, name="back")
        xd = back if p.interleave else front  # the epoch EX/PV work on

        def advance(d) -> data.View:
            nxt = Signal(desc, name=f"next_{d.as_value().name}")
            # Every field in one If/Else: a lone statement becomes its own ``always @*`` that
            # Icarus never runs at time 0 (the X then circulates through front.par for good).
            next_epoch(m, "comb", d, nxt, R=R, C=C, M=M, P=P)
            return nxt

        front_next = advance(front)

        # -- slot control -------------------------------------------------------------------
        idx = Signal(max(ebits, fbits), name="idx")
        rdy = Signal(2, name="rdy")  # running max of the epoch with this parity is in the PEs
        full = Signal(2, name="full")  # correction bank holds a finished tile not yet divided
        pend = Signal()  # serial: the last epoch's RNV writes are still in flight
        adv = Signal()
        is_qk, is_sc1, is_sc, is_pv = (Signal(name=n) for n in ("is_qk", "is_sc1", "is_sc", "is_pv"))
        need_q = Signal()
        stall_in = Signal()
        wait = Signal()
        qk_pending = Signal()  # the last cycle issued a QK slot: its product is being added
        # exp2 runs beside the slots, once per epoch: ``ex_go`` (ROM address, shift), ``ex_s1``
        # (ROM data latched), ``ex_s2`` (rounding), ``ex_s3`` (p written); ``p_ok``: p of the epoch
        # PV works on is in the PEs.
        ex_go, ex_s1, ex_s2, ex_s3, p_ok = (
            Signal(name=n) for n in ("ex_go", "ex_s1", "ex_s2", "ex_s3", "p_ok")
        )
        m.d.comb += [
            need_q.eq(is_qk & front.first),
            stall_in.eq((is_qk & ~self.k.valid) | (need_q & ~self.q.valid) | (is_pv & ~self.v.valid)),
            adv.eq(~stall_in & ~wait),
            self.k.ready.eq(is_qk & adv),
            self.q.ready.eq(need_q & adv),
            self.v.ready.eq(is_pv & adv),
        ]
        # exp2 needs its epoch's running max (and, first epoch of a tile, a free correction bank);
        # SC1 waits for the last QK product to be added, PV for p to be written.
        ex_ok = xd.ex & rdy.bit_select(xd.par, 1)
        if p.interleave:
            ex_ok &= ~(xd.first & full.bit_select(xd.bank, 1))
        m.d.comb += ex_go.eq(ex_ok)
        # exp2 shared by a column's PEs takes its rows in turn: row k starts at ex_go + k
        shared_ex = p.exp2_unit == "column"
        ex_chain = [ex_go, ex_s1, ex_s2, ex_s3]
        ex_chain += [Signal(name=f"ex_s{i}") for i in range(4, R + 3)] if shared_ex else []
        m.d.sync += [b.eq(a) for a, b in zip(ex_chain[:-1], ex_chain[1:], strict=True)]
        with m.If(ex_chain[-1]):
            m.d.sync += p_ok.eq(1)
        waits = (is_sc1 & qk_pending) | (is_pv & ~p_ok)
        if self.SC_GAP:  # the serial scale shift still holds the last epoch's product
            sc_wait = Signal(range(self.SC_GAP), name="sc_wait")
            with m.If(is_sc1 & adv):
                m.d.sync += sc_wait.eq(self.SC_GAP - 1)
            with m.Elif(sc_wait != 0):
                m.d.sync += sc_wait.eq(sc_wait - 1)
            waits |= is_sc1 & (sc_wait != 0)
        if not p.interleave:
            waits |= is_qk & (idx == 0) & (pend | (front.first & full.any()))
        m.d.comb += wait.eq(waits)

        # The slot state is one-hot (is_qk, is_sc1, is_sc, is_pv; none: idle) because it selects
        # every PE's multiplier operands: no decode in front of the DSPs.
        slot_regs = {"QK": is_qk, "SC1": is_sc1, "SC2": is_sc, "PV": is_pv}
        # Each column has its own copy of the slot state, the exp2 steps, Cs and the slot tags (below),
        # all registers: a copy drives one column's PEs, not a net spanning the whole array.
        col_slot = [{n: local_copy(f"{reg.name}_c{c}") for n, reg in slot_regs.items()} for c in range(C)]
        # and of the parity of the epoch exp2 and PV work on, which picks each PE's score register:
        # 0 at the start, changed only when a step ends
        col_xpar = [local_copy(f"xd_par_c{c}") for c in range(C)]

        def goto(state: str) -> None:
            for regs in (slot_regs, *col_slot):
                m.d.sync += [reg.eq(name == state) for name, reg in regs.items()]

        def step_end():
            m.d.sync += p_ok.eq(0)
            if p.interleave:
                m.d.sync += [back.eq(front), front.eq(front_next)]
                m.d.sync += [cp.eq(front.par) for cp in col_xpar]
                with m.If(front_next.ex):
                    goto("QK")
                with m.Elif(front.ex):
                    goto("PV")
                with m.Else():
                    goto("IDLE")
            else:
                m.d.sync += front.eq(front_next)
                m.d.sync += [cp.eq(front_next.par) for cp in col_xpar]
                with m.If(front_next.ex):
                    goto("QK")
                with m.Else():
                    goto("IDLE")

        # interleaved: QK(g) SC1(g) SC2(g) PV(g-1); serial: QK SC1 SC2 PV
        def counted(n: int, done) -> None:
            """A run of ``n`` slots indexed by ``idx``; ``done`` picks what follows the last."""
            with m.If(adv):
                m.d.sync += idx.eq(idx + 1)
                with m.If(idx == n - 1):
                    m.d.sync += idx.eq(0)
                    done()

        with m.If(start & (self.cfg.payload.M != 0) & (self.cfg.payload.P != 0)):
            m.d.sync += [front.eq(0), front.ex.eq(1), front.first.eq(1), back.eq(0), idx.eq(0)]
            m.d.sync += [front.last.eq(R >= cfgp.M), front.tlast.eq(C >= cfgp.P)]
            m.d.sync += front.keys.eq(Cat(r < cfgp.M for r in range(R)))
            m.d.sync += [cp.eq(0) for cp in col_xpar]
            goto("QK")
        with m.If(is_qk):
            counted(E, lambda: goto("SC1"))
        with m.If(is_sc1 & adv):
            goto("SC2")
        with m.If(is_sc):
            if p.interleave:
                with m.If(back.ex):
                    goto("PV")
                with m.Else():
                    step_end()
            else:
                goto("PV")
        with m.If(is_pv):
            counted(F, step_end)

        # -- slot tags: what a slot left in the pipeline behind it ---------------------------
        tag_layout = data.StructLayout(
            {"qk": 1, "e0": 1, "sc": 1, "pv": 1, "par": 1, "bank": 1, "first": 1, "flast": 1,
             "tdone": 1, "f": fbits, "mask": R}
        )  # fmt: skip
        tags = [Signal(tag_layout, name=f"tag{i}") for i in range(max(L_RM, L_RED) + 1)]
        on_front = is_qk | is_sc
        m.d.comb += [
            tags[0].qk.eq(is_qk & adv),
            tags[0].e0.eq(idx == 0),
            tags[0].sc.eq(is_sc & adv),
            tags[0].pv.eq(is_pv & adv),
            tags[0].par.eq(Mux(on_front, front.par, xd.par)),
            tags[0].bank.eq(Mux(on_front, front.bank, xd.bank)),
            tags[0].first.eq(Mux(on_front, front.first, xd.first)),
            tags[0].flast.eq(idx == F - 1),
            tags[0].tdone.eq((idx == F - 1) & xd.last),
            tags[0].f.eq(idx),
            tags[0].mask.eq(front.keys),
        ]
        for i in range(1, len(tags)):
            m.d.sync += tags[i].eq(tags[i - 1])
        col_tags = [[tags[0]] for c in range(C)]
        for c, chain in enumerate(col_tags):
            for i in range(1, len(tags)):
                chain.append(local_copy(f"tag{i}_c{c}", tag_layout))
                m.d.sync += chain[i].eq(chain[i - 1])
        m.d.comb += qk_pending.eq(tags[1].qk)  # its product is not formed yet

        # -- Q buffer: written by each tile's first epoch, read one slot ahead later --------
        m.submodules.qbuf = qbuf = memory.Memory(shape=unsigned(8 * C), depth=E, init=[])
        qw = qbuf.write_port()
        # Not transparent: an address written in a cycle is read again in a later one before any
        # QK slot uses it, and a transparent port's data would skip the output register.
        qr = qbuf.read_port()
        m.d.comb += [
            qw.addr.eq(idx),
            qw.data.eq(self.q.payload.as_value()),
            qw.en.eq(need_q & adv),
            qr.en.eq(adv),
            qr.addr.eq(Mux(is_qk & (idx != E - 1), idx + 1, 0)),
        ]
        q_lane = [
            Mux(front.first, self.q.payload[c], qr.data[8 * c : 8 * c + 8].as_signed()) for c in range(C)
        ]

        # -- the PE array ---------------------------------------------------------------------
        r_ep = [[Signal(signed(W_R), name=f"r_ep{b}_{c}") for c in range(C)] for b in range(2)]
        d_ep = [[Signal(range(D_MAX + 1), name=f"d_ep{b}_{c}") for c in range(C)] for b in range(2)]
        score = [
            [[Signal(signed(W_SCORE), name=f"s{b}_{r}_{c}") for c in range(C)] for r in range(R)]
            for b in range(2)
        ]
        # One multiplier per PE: QK (q x k), two scale passes (Cs x S >> 11, Cs x S & 2047), PV (p x v).
        split = 11
        a_w, b_w = max(17, PW + 1), max(8, split + 1, p.W_S - split)
        prod = [[Signal(signed(a_w + b_w), name=f"prod_{r}_{c}") for c in range(C)] for r in range(R)]
        table = [int(x) for x in exp2_table(FB, PW, p.exp2)]
        sbits = ceil_log2(PW + 1)

        xs = [[Signal(signed(XW), name=f"x_{r}_{c}") for c in range(C)] for r in range(R)]
        col_ex = []  # per column: ex_s1, ex_s2, ... (ex_chain[1:])
        # The job's Cs and SH reach the PEs through a tree of registers (the cfg beat, then a
        # copy per column, then SH per PE), one hop per cycle after the cfg handshake: a single
        # source spanning an 8 x 8 array is 17 ns of routing. The first scale pass that reads
        # them issues E + 2 >= 3 cycles after the handshake, the shift three cycles later.
        job_cs, job_sh = Signal(16, name="Cs"), Signal(6, name="SH")
        start1, start2 = Signal(name="start1"), Signal(name="start2")
        m.d.sync += [start1.eq(start), start2.eq(start1)]
        with m.If(start):
            m.d.sync += [job_cs.eq(cfgp.Cs), job_sh.eq(cfgp.SH)]
        col_cs, col_sh = [], []
        serial = p.scale_shift == "serial"
        XS = 4 + (SCALE_STEPS if serial else 0)  # x is written at this stage of SC2
        if serial:
            # The serial scale shift's step k (0..SCALE_STEPS - 1) runs XS - SCALE_STEPS + k cycles
            # after SC2: by 8 while k < SH >> 3, then by 1 from step 5 while k - 5 < SH & 7.
            # Each column steps its PEs with its own copy of the two selects.
            step = Signal(range(SCALE_STEPS + 1), init=SCALE_STEPS, name="scale_step")
            step_next = Mux(tags[3].sc, 0, Mux(step == SCALE_STEPS, SCALE_STEPS, step + 1))
            m.d.sync += step.eq(step_next)
            col_by8, col_by1 = [], []
        for c in range(C):
            steps = [local_copy(f"{n.name}_c{c}") for n in ex_chain[1:]]
            m.d.sync += [b.eq(a) for a, b in zip([ex_go, *steps[:-1]], steps, strict=True)]
            col_ex.append(steps)
            cs, sh = local_copy(f"Cs_c{c}", 16), local_copy(f"SH_c{c}", 6)
            with m.If(start1):
                m.d.sync += [cs.eq(job_cs), sh.eq(job_sh)]
            col_cs.append(cs)
            col_sh.append(sh)
            if serial:
                by8, by1 = local_copy(f"by8_c{c}"), local_copy(f"by1_c{c}")
                m.d.sync += [
                    by8.eq(step_next < sh[3:]),
                    by1.eq((step_next >= 5) & (step_next < 5 + sh[:3])),
                ]
                col_by8.append(by8)
                col_by1.append(by1)

        def exp2_unit(suffix: str, x, c: int, pipelined: bool = False) -> SimpleNamespace:
            """exp2's registers and ROM for the score ``x`` (a PE's, or the row a column's unit is
            on) in column c: ``p`` is its result in the cycle after step 2; ``pipelined``: a new
            score may start every cycle (s and the zero flag move on at step 2).
            Start: y = x - (r << FB) <= 0; ROM address f = y mod 2^FB = x mod 2^FB, shift
            s = -(y >> FB) = r - (x >> FB): a short subtract, no carry through the fraction."""
            s_val = Mux(col_xpar[c], r_ep[1][c], r_ep[0][c]) - x[FB:XW].as_signed()
            rom = memory.Memory(shape=unsigned(PW), depth=1 << FB, init=table)
            m.submodules[f"exp2_{suffix}"] = rom
            rp = rom.read_port()
            m.d.comb += rp.addr.eq(x[:FB])
            u = SimpleNamespace(s_val=s_val, rp=rp)
            u.s_raw = Signal.like(s_val, name=f"s_{suffix}")
            u.masked = Signal(name=f"m_{suffix}")
            u.s_reg = Signal(sbits, name=f"sh_{suffix}")
            u.zero = Signal(name=f"z_{suffix}")
            # step 1: T[f] latched (a block RAM's output is slow), s clamped; step 2:
            # t = T[f] + 2^s / 2; then p = t >> s, or 0 (underflow or masked key), is written.
            # The rounding bit 2^(s-1) is a decoder.
            u.half = Cat(*(u.s_reg == i + 1 for i in range(PW)))
            u.t_rom = Signal(PW, name=f"tr_{suffix}")
            u.t_reg = Signal(PW + 1, name=f"t_{suffix}")
            u.s_out, u.z_out = (
                (Signal(sbits, name=f"sho_{suffix}"), Signal(name=f"zo_{suffix}"))
                if pipelined
                else (u.s_reg, u.zero)
            )
            u.p = Mux(u.z_out, 0, u.t_reg >> u.s_out)
            return u

        def exp2_steps(u: SimpleNamespace, go, step1, step2, masked) -> None:
            with m.If(go):
                m.d.sync += [u.s_raw.eq(u.s_val), u.masked.eq(masked)]
            with m.If(step1):
                m.d.sync += [
                    u.t_rom.eq(u.rp.data),
                    u.s_reg.eq(Mux(u.s_raw >= PW, PW, u.s_raw)),
                    u.zero.eq((u.s_raw >= PW) | u.masked),
                ]
            with m.If(step2):
                m.d.sync += u.t_reg.eq(u.t_rom + u.half)
                if u.s_out is not u.s_reg:
                    m.d.sync += [u.s_out.eq(u.s_reg), u.z_out.eq(u.zero)]

        # A column's shared exp2 unit: row k starts at ex_go + k (its score picked by that pulse)
        # and its p is written to the PE at ex_go + k + 3.
        col_exp2, col_ex_write = [], []
        for c in range(C) if shared_ex else ():
            go = [ex_go, *col_ex[c][: R - 1]]
            x_row = _one_hot(
                m, signed(W_SCORE), f"ex_x{c}",
                [(g, _pick([score[0][r][c], score[1][r][c]], col_xpar[c])) for r, g in enumerate(go)],
            )  # fmt: skip
            u = exp2_unit(f"c{c}", x_row, c, pipelined=True)
            masked = reduce(operator.or_, [g & ~xd.keys[r] for r, g in enumerate(go)])
            exp2_steps(
                u,
                reduce(operator.or_, go),
                reduce(operator.or_, col_ex[c][:R]),
                reduce(operator.or_, col_ex[c][1 : R + 1]),
                masked,
            )
            col_exp2.append(u)
            col_ex_write.append(col_ex[c][2 : R + 2])

        for r in range(R):
            for c in range(C):
                t1, t2, t3, tx, tx1 = (col_tags[c][i] for i in (1, 2, 3, XS, XS + 1))
                pe_s1, pe_s2, pe_s3 = col_ex[c][:3]
                slot = col_slot[c]
                if not serial:
                    # The PE's own copy of the job's SH: a register next to its scale shifter,
                    # not a net across the column in front of eight levels of logic.
                    pe_sh = local_copy(f"shamt_{r}_{c}", 6)
                    with m.If(start2):
                        m.d.sync += pe_sh.eq(col_sh[c])
                fs = [score[0][r][c], score[1][r][c]]
                s_back = _pick(fs, col_xpar[c])
                # Every product is registered (stage 2) behind its registered operands (stage 1),
                # so no select logic sits in front of the multiplier. QK: one signed 8x8 product
                # per slot, accumulated at stage 2 in S, which only the scale passes read: the
                # score registers (x, then p) are not in the accumulate loop.
                opa = Signal(signed(a_w), name=f"opa_{r}_{c}")
                opb = Signal(signed(b_w), name=f"opb_{r}_{c}")
                S = Signal(signed(p.W_S), name=f"S_{r}_{c}")
                acc = Mux(t2.e0, 0, S) + prod[r][c]
                # SC1 takes the last QK sum as it is formed, or, when it waited longer for the
                # serial shift, from S
                sum_hi = (Mux(t2.qk, acc, S) if serial else acc) >> split
                # operands per slot: QK q x k, SC1 / SC2 Cs x S_hi / S_lo, PV p (unsigned,
                # <= 2^(PW-1)) x v. SC1 comes two cycles after the last QK slot, as that slot's
                # sum is formed: it takes the sum itself, SC2 the sum in S.
                mul_a = _one_hot(
                    m, signed(a_w), f"mul_a_{r}_{c}",
                    [(slot["QK"], q_lane[c]), (slot["SC1"] | slot["SC2"], col_cs[c]),
                     (slot["PV"], s_back[:PW])],
                )  # fmt: skip
                mul_b = _one_hot(
                    m, signed(b_w), f"mul_b_{r}_{c}",
                    [(slot["QK"], self.k.payload[r]), (slot["SC1"], sum_hi),
                     (slot["SC2"], S[:split]), (slot["PV"], self.v.payload[r])],
                )  # fmt: skip
                m.d.sync += [opa.eq(mul_a), opb.eq(mul_b), prod[r][c].eq(opa * opb)]
                # SC: x = sat((S Cs) >> SH) in log2 units with FB fraction bits, exact in two passes:
                # Cs S_hi waits in ``hi`` while Cs S_lo is formed; the sum is registered (stage 3),
                # then shifted, saturated into ``x`` (stage XS + 1) and written to the score
                # register: the shifter and the score register, which sits near its many readers,
                # are a register apart. Floors of floors compose, so the shift may be cut in steps.
                hi = Signal.like(prod[r][c], name=f"hi_{r}_{c}")
                full_p = Signal(signed(a_w + b_w + split + 1), name=f"sp_{r}_{c}")
                scaled = Signal.like(full_p, name=f"sc_{r}_{c}")
                sum_p = (hi << split) + prod[r][c]
                if serial:  # a shift register, loaded at stage 3, stepped by its column
                    m.d.sync += full_p.eq(sum_p)
                    with m.If(t3.sc):
                        m.d.sync += scaled.eq(full_p)
                    with m.Elif(col_by8[c]):
                        m.d.sync += scaled.eq(scaled >> 8)
                    with m.Elif(col_by1[c]):
                        m.d.sync += scaled.eq(scaled >> 1)
                else:  # by 8 (SH >> 3) at stage 4, by SH & 7 as x is saturated
                    m.d.sync += [full_p.eq(sum_p), scaled.eq(full_p >> (pe_sh[3:] << 3))]
                    scaled = scaled >> pe_sh[:3]
                top = scaled[XW - 1 :]  # in range when these bits are all equal (the sign)
                # x is kept until the next SC2 slot: the max tree reads it a stage later, not the
                # score register, which would need a pick by parity first
                x = xs[r][c]
                with m.If(tx.sc):
                    m.d.sync += x.eq(
                        Mux(top.all() | ~top.any(), scaled[:XW].as_signed(), Mux(scaled[-1], x_min, x_max))
                    )
                if not shared_ex:
                    ex = exp2_unit(f"{r}_{c}", s_back, c)
                with m.If(t2.qk):
                    m.d.sync += S.eq(acc)
                with m.If(tx1.sc):
                    _put(m, fs, tx1.par, x)
                with m.If(col_ex_write[c][r] if shared_ex else pe_s3):
                    _put(m, fs, col_xpar[c], (col_exp2[c] if shared_ex else ex).p)
                with m.If(t1.sc):  # SC2 at stage 1: SC1's product is out
                    m.d.sync += hi.eq(prod[r][c])
                if not shared_ex:
                    exp2_steps(ex, ex_go, pe_s1, pe_s2, ~xd.keys[r])

        # -- column trees and the correction row ------------------------------------------------
        # SC2 slot -> x in the PEs at stage 6 -> max tree -> ceil -> new running max at stage L_RM.
        # PV slot -> product at stage 2 -> add tree -> registered sums at stage L_RED, where RNV[f]
        # (read at stage L_RED - 3, shifted at L_RED - 1) and RD are updated.
        with m.If(tags[L_RM].sc):
            m.d.sync += rdy.bit_select(tags[L_RM].par, 1).eq(1)
        with m.If(ex_go):
            m.d.sync += rdy.bit_select(xd.par, 1).eq(0)

        r_bank = [[Signal(signed(W_R), name=f"r_bank{b}_{c}") for c in range(C)] for b in range(2)]
        RD = [[Signal(p.W_RD, name=f"RD{b}_{c}") for c in range(C)] for b in range(2)]
        rnv_rd = []  # per column: the divider's read port
        for c in range(C):
            ct = col_tags[c]
            tM, tL = ct[L_RM], ct[L_RED]
            col_x = [Mux(ct[XS + 2].mask[r], xs[r][c], x_min) for r in range(R)]
            col_p = [_pick([score[0][r][c], score[1][r][c]], ct[2].par)[:PW] for r in range(R)]
            lm = _tree(m, col_x, lambda a, b: Mux(a > b, a, b), f"max{c}")
            pv = [prod[r][c][: PW + 9].as_signed() for r in range(R)]  # p v fits PW + 9 bits
            sld = Signal(PW + tree, name=f"sld{c}")
            slnv = Signal(signed(PW + 9 + tree), name=f"slnv{c}")
            # the sums wait a stage more, for the RNV read they are added to (see below)
            sld_t = Signal.like(sld, name=f"sld_t{c}")
            slnv_t = Signal.like(slnv, name=f"slnv_t{c}")
            m.d.sync += [
                sld_t.eq(_tree(m, col_p, lambda a, b: a + b, f"sld{c}")),
                slnv_t.eq(_tree(m, pv, lambda a, b: a + b, f"slnv{c}")),
                sld.eq(sld_t),
                slnv.eq(slnv_t),
            ]
            # running max: integer ceil(lm / 2^FB), registered before the compare with r
            # The bank's running max is read a stage early (the last write to it was an epoch ago),
            # and compare and difference run side by side, not one after the other.
            l_val = Signal(signed(W_R), name=f"l{c}")
            rb = Signal(signed(W_R), name=f"rb{c}")
            m.d.sync += [
                l_val.eq((lm + ((1 << FB) - 1)) >> FB),
                rb.eq(Mux(ct[L_RM - 1].bank, r_bank[1][c], r_bank[0][c])),
            ]
            rise = l_val > rb
            diff = (l_val - rb)[: W_R + 1]  # > 0 when it is used
            r_new = Mux(tM.first | rise, l_val, rb)
            dbits = D_MAX.bit_length()  # D_MAX = 2^dbits - 1: the clamp is an OR of the high bits
            d_new = Mux(tM.first | ~rise, 0, Mux(diff[dbits:].any(), D_MAX, diff[:dbits]))
            with m.If(tM.sc):
                _put(m, [r_bank[0][c], r_bank[1][c]], tM.bank, r_new)
                _put(m, [r_ep[0][c], r_ep[1][c]], tM.par, r_new)
                _put(m, [d_ep[0][c], d_ep[1][c]], tM.par, d_new)
            # denominator RD (once per epoch) and numerators RNV[f] (read-modify-write): both are
            # shifted a stage before the add (RD's last write was an epoch ago)
            t_rd, t_sh = ct[L_RED - 3], ct[L_RED - 1]
            d_sh = Mux(t_sh.par, d_ep[1][c], d_ep[0][c])
            rd_sh = Signal(p.W_RD, name=f"rd_sh{c}")
            m.d.sync += rd_sh.eq(Mux(t_sh.bank, RD[1][c], RD[0][c]) >> d_sh)
            with m.If(tL.pv & (tL.f == 0)):
                _put(m, [RD[0][c], RD[1][c]], tL.bank, Mux(tL.first, sld, rd_sh + sld))
            mem = memory.Memory(shape=signed(p.W_RNV), depth=2 << fbits, init=[])
            m.submodules[f"rnv_{c}"] = mem
            wp = mem.write_port()
            # Neither read meets a write to its address in the same cycle, so the ports are not
            # transparent: a transparent port's data goes straight to the fabric, where Yosys
            # folds the latch below into the block RAM and its slow output feeds the shift.
            ra = mem.read_port()
            rb_port = mem.read_port()
            # RNV[f]: read (stage L_RED - 3), latched (a block RAM's output is slow), shifted, written
            latched = Signal(signed(p.W_RNV), name=f"rnv_q{c}")
            shifted = Signal(signed(p.W_RNV), name=f"rnv_sh{c}")
            m.d.sync += [latched.eq(ra.data), shifted.eq(latched >> d_sh)]
            m.d.comb += [
                ra.addr.eq(Cat(t_rd.f, t_rd.bank)),
                wp.addr.eq(Cat(tL.f, tL.bank)),
                wp.data.eq(Mux(tL.first, slnv, shifted + slnv)),
                wp.en.eq(tL.pv),
            ]
            rnv_rd.append(rb_port)

        t_end = tags[L_RED]
        with m.If(t_end.pv & t_end.tdone):
            m.d.sync += full.bit_select(t_end.bank, 1).eq(1)
        if not p.interleave:
            with m.If(is_pv & adv & (idx == F - 1)):
                m.d.sync += pend.eq(1)
            with m.If(t_end.pv & t_end.flast):
                m.d.sync += pend.eq(0)

        # -- divider and output register ---------------------------------------------------------
        # Restoring division of |RNV| 2^OB + RD/2 by RD, one f at a time: a divider per column, all
        # in lock-step, or (``divider = "shared"``) one taking the columns in turn.
        shared = p.divider == "shared"
        dbank = Signal()
        dqb = Signal(range(p.P_MAX + C + 1))
        df = Signal(fbits)
        dcount = Signal(range(NQ + 1))
        o = self.o

        def divider(suffix) -> dict:
            return {
                "divisor": Signal(p.W_RD, name=f"div{suffix}"),
                "rem": Signal(p.W_RNV + OB + 1, name=f"rem{suffix}"),
                "dsh": Signal(p.W_RD + NQ, name=f"dsh{suffix}"),
                "quo": Signal(NQ, name=f"quo{suffix}"),
                "neg": Signal(name=f"neg{suffix}"),
                "n": Signal(signed(p.W_RNV), name=f"n{suffix}"),
            }

        def lane(u: dict, live):
            """The output lane of a finished division: the magnitude clamped to [-128, 127] 2^OB,
            then the sign applied; 0 for a padding query."""
            quo, neg = u["quo"], u["neg"]
            over = Mux(neg, quo > (128 << OB), quo > (127 << OB))
            mag = Mux(over, Mux(neg, 128 << OB, 127 << OB), quo)
            return Mux(live, Mux(neg, -mag, mag), 0)

        live = [Signal(name=f"live{c}") for c in range(C)]  # a real query, not padding
        units = [divider("")] if shared else [divider(c) for c in range(C)]
        for rd in rnv_rd:
            m.d.comb += rd.addr.eq(Cat(df, dbank))
        if shared:
            dc = Signal(range(C), name="dc")  # the column being divided
            lanes = [Signal(signed(8 + OB), name=f"res{c}") for c in range(C)]
        else:
            lanes = [lane(u, lv) for u, lv in zip(units, live, strict=True)]
        with m.If(o.valid & o.ready):
            m.d.sync += o.valid.eq(0)
        tile_end = Signal()  # the tile being divided is the job's last
        with m.FSM(name="div"):
            with m.State("IDLE"):
                with m.If(running & full.bit_select(dbank, 1)):
                    for c in range(C):
                        if not shared:
                            m.d.sync += units[c]["divisor"].eq(_pick([RD[0][c], RD[1][c]], dbank))
                        m.d.sync += live[c].eq(dqb + c < P)
                    m.d.sync += [df.eq(0), tile_end.eq(dqb + C >= P)]
                    m.next = "LOAD"
            with m.State("LOAD"):  # the RNV read is in flight
                m.next = "LATCH"
            with m.State("LATCH"):  # a block RAM's output is slow: register it before using it
                if shared:
                    # the read address holds for the whole f, and the bank is not written while
                    # it is divided: every column's read data stays valid
                    u = units[0]
                    m.d.sync += [
                        u["n"].eq(Array(rd.data for rd in rnv_rd)[dc]),
                        u["divisor"].eq(Array(_pick([RD[0][c], RD[1][c]], dbank) for c in range(C))[dc]),
                    ]
                else:
                    for u, rd in zip(units, rnv_rd, strict=True):
                        m.d.sync += u["n"].eq(rd.data)
                m.next = "START"
            with m.State("START"):
                for u in units:
                    n_val, half = u["n"] << OB, u["divisor"] >> 1
                    m.d.sync += [
                        u["neg"].eq(u["n"] < 0),
                        u["rem"].eq(Mux(u["n"] < 0, half - n_val, n_val + half)),
                        u["dsh"].eq(u["divisor"] << (NQ - 1)),
                        u["quo"].eq(0),
                    ]
                m.d.sync += dcount.eq(0)
                m.next = "ITER"
            with m.State("ITER"):
                for u in units:
                    take = u["rem"] >= u["dsh"]
                    m.d.sync += [
                        u["rem"].eq(Mux(take, u["rem"] - u["dsh"], u["rem"])),
                        u["quo"].eq(Cat(take, u["quo"][:-1]) if NQ > 1 else take),
                        u["dsh"].eq(u["dsh"] >> 1),
                    ]
                m.d.sync += dcount.eq(dcount + 1)
                with m.If(dcount == NQ - 1):
                    m.next = "NEXT" if shared else "DONE"
            if shared:
                with m.State("NEXT"):  # the column's lane, then the next column or the beat
                    m.d.sync += Array(lanes)[dc].eq(lane(units[0], Array(live)[dc]))
                    with m.If(dc == C - 1):
                        m.d.sync += dc.eq(0)
                        m.next = "DONE"
                    with m.Else():
                        m.d.sync += dc.eq(dc + 1)
                        m.next = "LATCH"
            with m.State("DONE"):
                with m.If(~o.valid | o.ready):
                    is_last_f = df == F - 1
                    m.d.sync += [o.payload.data[c].eq(v) for c, v in enumerate(lanes)]
                    m.d.sync += [o.valid.eq(1), o.payload.last.eq(is_last_f & tile_end), df.eq(df + 1)]
                    with m.If(is_last_f):
                        m.d.sync += [full.bit_select(dbank, 1).eq(0), dbank.eq(~dbank), dqb.eq(dqb + C)]
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "LOAD"

        # -- job start, end and counters --------------------------------------------------------
        count_job(m, self, running, mac=adv & (is_qk | is_pv), stall_in=stall_in)
        with m.If(start):
            m.d.sync += [
                M.eq(cfgp.M),
                P.eq(cfgp.P),
                running.eq((cfgp.M != 0) & (cfgp.P != 0)),
                rdy.eq(0),
                full.eq(0),
                pend.eq(0),
                dbank.eq(0),
                dqb.eq(0),
                self.perf_busy.eq(0),
                self.perf_mac.eq(0),
                self.perf_stall_in.eq(0),
                self.perf_stall_out.eq(0),
            ]
        return m
