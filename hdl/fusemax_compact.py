"""RTL of the ``fusemax`` block's compact microarchitecture (``arch = "compact"``): PEs that only
multiply and accumulate, one softmax unit, ``corr_units`` correction units and one divider shared by
the whole array, for FPGAs too small for :class:`~neurohdl.hdl.fusemax.FusemaxArray` (the iCE40
UP5K's 2 x 4).

Same ports, numerics and golden model (:func:`neurohdl.models.fusemax.attention_int`) as the array;
only timing differs, replayed exactly by :func:`~neurohdl.models.fusemax.cycles`.

The array runs frames, each ``QK(g) SW PV(g-1)``:

* ``QK``: E slots, every PE accumulates ``S = sum_e Q K`` in its multiplier's output register.
* ``SW``: one slot that waits for the softmax unit to be idle (so p of epoch g-1 is complete),
  loads every PE's second operand with its ``p - 1`` and, a cycle later, captures every S into a
  shift chain, from which the softmax unit then scales (multiply, then shift, two scores in
  flight), takes the column maxima, updates the running maxima and evaluates exp2, while the array
  goes on.
* ``PV``: C / U (F + 1) slots for U = ``corr_units``, f major: slot (f, g) sums, for each unit k,
  column gU + k's products ``(p - 1) v`` over the rows plus ``sum_r v`` (= ``sum_r p v``; p - 1
  fits a signed PW-bit operand where p = 2^(PW-1) does not, so one 16 x 16 DSP does both products
  at PW = 16), and slot (F, g) does the same with v = 1, giving SLD. Each unit's read-modify-write
  updates RNV[f, c] (RD at f = F) in its own memory.

A division unit takes each finished tile's memory bank, one division at a time.
"""

from __future__ import annotations

import operator

from amaranth.hdl import Array, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, wiring

from ..models.fusemax import D_MAX, MUL_STEPS, SCALE_STEPS, FusemaxParams, Timing, exp2_table
from ..models.ints import ceil_log2
from .fusemax import _one_hot, _tree, count_job, next_epoch, signature_members

__all__ = ["FusemaxCompact"]


class FusemaxCompact(wiring.Component):
    """FuseMax-style attention with multiply-accumulate-only PEs and shared softmax, correction and
    division units (spec §3 ports and counters; ``perf_mac`` counts a PV step once per f, when its
    last column group issues).

    Parameters
    ----------
    params : FusemaxParams
        Build parameters with ``arch = "compact"`` (spec §2.1; ``exp2`` methods are the ROM's
        contents).

    Attributes
    ----------
    K_OVH, L_RM, L_RED, T_DIV, EX, SC_GAP, T_HEAD, L_OUT : int
        Timing constants, as in :class:`~neurohdl.models.fusemax.Timing`: ``L_RM`` is the softmax
        unit's time per epoch, ``T_DIV`` the time per output beat.

    Ports
    -----
    As :class:`~neurohdl.hdl.fusemax.FusemaxArray`.
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
        N = R * C
        U = p.corr_units  # columns updated per PV slot, one read-modify-write unit each
        NG = C // U  # column groups: column g U + k is group g's in unit k
        NPV = NG * (F + 1)  # PV slots per epoch
        XW, W_R = p.XW, p.XW - p.FB + 1
        NQ = 9 + OB
        BW = max(8, PW)  # second multiplier operand: q, or p - 1 <= 2^(PW-1) - 1
        AW = max(p.W_S, PW + 8)  # the multiplier's output register: S, or (p - 1) v
        x_min, x_max = -(1 << (XW - 1)), (1 << (XW - 1)) - 1

        cfgp = self.cfg.payload
        M = Signal.like(cfgp.M, name="M")
        P = Signal.like(cfgp.P, name="P")
        running = Signal()
        start = Signal()
        m.d.comb += [self.cfg.ready.eq(~running), start.eq(self.cfg.valid & self.cfg.ready)]
        m.d.comb += self.running.eq(running)
        job_cs, job_sh = Signal(16, name="Cs"), Signal(6, name="SH")

        # -- epoch descriptors: front (QK), back (PV) ------------------------------------------
        desc = data.StructLayout(
            {"ex": 1, "kb": range(p.M_MAX + R + 1), "qb": range(p.P_MAX + C + 1), "bank": 1,
             "first": 1, "last": 1, "tlast": 1, "keys": R}
        )  # fmt: skip
        front = Signal(desc, name="front")
        back = Signal(desc, name="back")
        # A register: a frame lasts two cycles at the least, so it follows front in time.
        front_next = Signal(desc, name="front_next")
        next_epoch(m, "sync", front, front_next, R=R, C=C, M=M, P=P)

        # -- slot control ------------------------------------------------------------------------
        is_qk, is_sw, is_pv = (Signal(name=n) for n in ("is_qk", "is_sw", "is_pv"))
        idx = Signal(range(E), name="idx")
        pf = Signal(range(F + 1), name="pf")
        pc = Signal(range(NG), name="pc")  # the column group
        ps = Signal(range(NPV), name="ps")
        sc_free = Signal(init=1, name="sc_free")  # the softmax unit is idle: its p and d are final
        sld = Signal(name="sld")  # pf == F: the PV slots that sum p alone
        # idx == E - 1, pc == NG - 1, ps == NPV - 1, kept as bits: no compare before the control
        idx_last, pc_last, ps_last = Signal(name="idx_last"), Signal(name="pc_last"), Signal(name="ps_last")
        owned = Signal(2, name="owned")  # bank holds a tile whose division has not ended
        written = Signal(2, name="written")  # ... and its last RNV write has landed
        adv, stall_in, wait = Signal(name="adv"), Signal(name="stall_in"), Signal(name="wait")
        need_q = is_qk & front.first
        need_v = is_pv & ~sld
        m.d.comb += [
            stall_in.eq((is_qk & ~self.k.valid) | (need_q & ~self.q.valid) | (need_v & ~self.v.valid)),
            wait.eq(is_sw & (~sc_free | (back.ex & back.first & owned.bit_select(back.bank, 1)))),
            adv.eq(~stall_in & ~wait),
            self.k.ready.eq(is_qk & adv),
            self.q.ready.eq(need_q & adv),
            self.v.ready.eq(need_v & pc_last & adv),
        ]

        def goto(state: str) -> None:
            m.d.sync += [is_qk.eq(state == "QK"), is_sw.eq(state == "SW"), is_pv.eq(state == "PV")]

        def frame_end() -> None:
            m.d.sync += [back.eq(front), front.eq(front_next)]
            with m.If(front_next.ex):
                goto("QK")
            with m.Elif(front.ex):
                goto("SW")
            with m.Else():
                goto("IDLE")

        with m.If(start & (cfgp.M != 0) & (cfgp.P != 0)):
            m.d.sync += [front.eq(0), front.ex.eq(1), front.first.eq(1), back.eq(0), idx.eq(0)]
            m.d.sync += idx_last.eq(E == 1)
            m.d.sync += [front.last.eq(R >= cfgp.M), front.tlast.eq(C >= cfgp.P)]
            m.d.sync += front.keys.eq(Cat(r < cfgp.M for r in range(R)))
            goto("QK")
        with m.If(is_qk & adv):
            m.d.sync += [idx.eq(idx + 1), idx_last.eq(idx == E - 2)]
            with m.If(idx_last):
                m.d.sync += [idx.eq(0), idx_last.eq(E == 1)]
                goto("SW")
        with m.If(is_sw & adv):
            m.d.sync += [pf.eq(0), pc.eq(0), ps.eq(0), sld.eq(0), pc_last.eq(NG == 1), ps_last.eq(0)]
            with m.If(back.ex):
                goto("PV")
            with m.Else():
                frame_end()
        with m.If(is_pv & adv):
            m.d.sync += [ps.eq(ps + 1), pc.eq(pc + 1), pc_last.eq(pc == NG - 2), ps_last.eq(ps == NPV - 2)]
            with m.If(pc_last):
                m.d.sync += [pc.eq(0), pf.eq(pf + 1), sld.eq(pf == F - 1), pc_last.eq(NG == 1)]
            with m.If(ps_last):
                frame_end()
                with m.If(back.last):
                    m.d.sync += owned.bit_select(back.bank, 1).eq(1)

        # -- slot tags: what an issued slot left in the pipeline behind it -----------------------
        abits = ceil_log2(2 * NPV)
        tag_layout = data.StructLayout(
            {"qk": 1, "e0": 1, "sw": 1, "front": 1, "pv": 1, "g": range(NG), "addr": abits,
             "first": 1, "d": data.ArrayLayout(range(D_MAX + 1), U), "tdone": 1, "bank": 1}
        )  # fmt: skip
        T = ceil_log2(R + 1)  # add tree over the rows and the sum of v
        L_SUM = 3 + T  # stage at which a PV slot's column sum is in its register
        assert L_SUM == self.L_RED
        tags = [Signal(tag_layout, name=f"tag{i}") for i in range(L_SUM + 1)]
        d_pv = [Signal(range(D_MAX + 1), name=f"d_pv{c}") for c in range(C)]
        m.d.comb += [
            tags[0].qk.eq(is_qk & adv),
            tags[0].e0.eq(idx == 0),
            tags[0].sw.eq(is_sw & adv),
            tags[0].front.eq(front.ex),
            tags[0].pv.eq(is_pv & adv),
            tags[0].g.eq(pc),
            tags[0].addr.eq(Mux(back.bank, ps + NPV, ps)),
            tags[0].first.eq(back.first),
            *(tags[0].d[k].eq(Array(d_pv[k::U])[pc]) for k in range(U)),
            tags[0].tdone.eq(ps_last & back.last),
            tags[0].bank.eq(back.bank),
        ]
        for i in range(1, len(tags)):
            m.d.sync += tags[i].eq(tags[i - 1])
        t1, t2 = tags[1], tags[2]

        # -- Q buffer: written by each tile's first epoch, read one slot ahead later ----------
        m.submodules.qbuf = qbuf = memory.Memory(shape=unsigned(8 * C), depth=E, init=[])
        qw = qbuf.write_port()
        qr = qbuf.read_port()  # never meets a write to its address in the same cycle
        m.d.comb += [
            qw.addr.eq(idx),
            qw.data.eq(self.q.payload.as_value()),
            qw.en.eq(need_q & adv),
            qr.en.eq(adv),
            qr.addr.eq(Mux(is_qk & ~idx_last, idx + 1, 0)),
        ]
        q_lane = [
            Mux(front.first, self.q.payload[c], qr.data[8 * c : 8 * c + 8].as_signed()) for c in range(C)
        ]

        # -- the PE array: operand registers (stage 1), multiply-accumulate (stage 2) -----------
        opa = [Signal(signed(8), name=f"opa{r}") for r in range(R)]  # k, v or 1: one per row
        opb = [[Signal(signed(BW), name=f"opb_{r}_{c}") for c in range(C)] for r in range(R)]
        acc = [[Signal(signed(AW), name=f"acc_{r}_{c}") for c in range(C)] for r in range(R)]
        pm1 = [[Signal(signed(BW), name=f"pm1_{r}_{c}") for c in range(C)] for r in range(R)]
        for r in range(R):
            with m.If(is_qk & adv):
                m.d.sync += opa[r].eq(self.k.payload[r])
            with m.Elif(is_pv & adv):
                m.d.sync += opa[r].eq(Mux(sld, 1, self.v.payload[r]))
            for c in range(C):
                with m.If(is_qk & adv):
                    m.d.sync += opb[r][c].eq(q_lane[c])
                with m.Elif(is_sw & adv):
                    m.d.sync += opb[r][c].eq(pm1[r][c])
                with m.If(t1.qk | t1.pv):
                    m.d.sync += acc[r][c].eq(Mux(t1.pv | t1.e0, 0, acc[r][c]) + opa[r] * opb[r][c])

        # -- column sums (stages 3 .. L_SUM) and the correction unit ------------------------------
        sum_a = Signal(signed(8 + ceil_log2(R + 1)), name="sum_a")
        sum_a3 = Signal.like(sum_a, name="sum_a3")
        m.d.sync += [sum_a.eq(sum(opa)), sum_a3.eq(sum_a)]
        t_rd, t_sh, t_wr = tags[L_SUM - 3], tags[L_SUM - 1], tags[L_SUM]
        rnv_rd = []  # per unit: the division unit's read port
        for k in range(U):
            rows = []
            for r in range(R):
                terms = [(t2.g == g, acc[r][g * U + k]) for g in range(NG)]
                sel = _one_hot(m, signed(PW + 8), f"colsel{k}_{r}", terms)
                reg = Signal(signed(PW + 8), name=f"row{k}_{r}")
                m.d.sync += reg.eq(sel)
                rows.append(reg)
            col_sum = _tree(m, [*rows, sum_a3], operator.add, f"colsum{k}")
            rnv = memory.Memory(shape=signed(p.W_RNV), depth=2 * NPV, init=[])
            m.submodules[f"rnv{k}"] = rnv
            wp = rnv.write_port()
            ra = rnv.read_port()  # reads an address three cycles before its write, never during one
            rnv_rd.append(rnv.read_port())  # the bank being divided is not written
            latched = Signal(signed(p.W_RNV), name=f"rnv_q{k}")  # a block RAM's output is slow
            shifted = Signal(signed(p.W_RNV), name=f"rnv_sh{k}")
            m.d.sync += [latched.eq(ra.data), shifted.eq(latched >> t_sh.d[k])]
            m.d.comb += [
                ra.addr.eq(t_rd.addr),
                wp.addr.eq(t_wr.addr),
                wp.data.eq(Mux(t_wr.first, col_sum, shifted + col_sum)),
                wp.en.eq(t_wr.pv),
            ]
        with m.If(t_wr.pv & t_wr.tdone):
            m.d.sync += written.bit_select(t_wr.bank, 1).eq(1)

        # -- the softmax unit ----------------------------------------------------------------------
        # S of every PE, column major, into a chain (at SW's stage 1, when the last QK sum is in).
        # Two stages, a score in each: A pops S and multiplies it by Cs (MUL_STEPS cycles, a bit
        # of Cs each); B shifts the product right by SH (SCALE_STEPS: by 8, then by 1), saturates
        # it to x, keeps x and the column max; a column's last x gives its running max and d.
        # Then exp2 reads every x back, one per cycle, and writes p - 1 to its PE.
        chain = [Signal(signed(p.W_S), name=f"chain{i}") for i in range(N)]
        ZW = p.W_S + 1 + MUL_STEPS  # the product, hi part (W_S + 1) over the bits shifted out
        z = Signal(signed(ZW), name="z")
        zb = Signal(signed(ZW), name="zb")
        mcand = Signal(signed(p.W_S), name="mcand")
        csr = Signal(15, name="csr")  # the bits of Cs after the next step's
        addend = Signal(signed(p.W_S), name="addend")  # S or 0: the next multiply step's
        # Stage control: counters, and one-hot flags decoded a cycle ahead (no compare in front)
        a_on, a_step, a_i = (
            Signal(name="a_on"),
            Signal(range(MUL_STEPS + 1), name="a_step"),
            Signal(range(N), name="a_i"),
        )
        a_load, a_mul, a_last = Signal(name="a_load"), Signal(name="a_mul"), Signal(name="a_last")
        b_on, b_step = Signal(name="b_on"), Signal(range(SCALE_STEPS + 3), name="b_step")
        b_shift, b_sat, b_cmp, b_max = (Signal(name=n) for n in ("b_shift", "b_sat", "b_cmp", "b_max"))
        take = Signal(name="take")  # x is the column's new maximum
        # The shift by SH: step k of SCALE_STEPS shifts by 8 while k < SH >> 3, then by 1 from
        # step 5 while k - 5 < SH & 7; the job's pattern of steps, stepped through per score.
        pat8, pat1, by8, by1 = (Signal(SCALE_STEPS, name=n) for n in ("pat8", "pat1", "by8", "by1"))
        m.d.sync += [
            pat8.eq(Cat(k < job_sh[3:] for k in range(SCALE_STEPS))),
            pat1.eq(Cat((k >= 5) & (k < 5 + job_sh[:3]) for k in range(SCALE_STEPS))),
        ]
        x_b = Signal(signed(XW), name="x")
        lm = Signal(signed(XW), name="lm")
        u_keys = Signal(R, name="u_keys")
        u_first = Signal(name="u_first")
        u_r = Signal(range(R), name="u_r")  # stage B's row and column, then exp2's
        u_c = Signal(range(C), name="u_c")
        u_i = Signal(range(N), name="u_i")
        col_done = Signal(name="col_done")  # lm is a column's maximum: update its running max
        r_col = [Signal(signed(W_R), name=f"rmax{c}") for c in range(C)]
        d_col = [Signal(range(D_MAX + 1), name=f"d{c}") for c in range(C)]
        with m.If(is_sw & adv):  # the d of the epoch PV now works on (final: the unit is idle)
            m.d.sync += [a.eq(b) for a, b in zip(d_pv, d_col, strict=True)]

        with m.If(t1.sw & t1.front):
            m.d.sync += [chain[i].eq(acc[r][c]) for i, (c, r) in enumerate(_col_major(R, C))]
        with m.Elif(a_on & a_load):
            m.d.sync += [a.eq(b) for a, b in zip(chain, chain[1:], strict=False)]

        m.submodules.xmem = xmem = memory.Memory(shape=signed(XW), depth=N, init=[])
        xw = xmem.write_port()
        xr = xmem.read_port()  # exp2 reads x after every write
        m.d.comb += [xw.addr.eq(u_i), xw.data.eq(x_b), xw.en.eq(b_on & b_max)]

        # stage A
        a_nxt = Mux(a_step == MUL_STEPS, 0, a_step + 1)
        with m.If(a_on):
            m.d.sync += [
                a_step.eq(a_nxt),
                a_load.eq(a_nxt == 0),
                a_mul.eq(a_nxt != 0),
                a_last.eq(a_nxt == MUL_STEPS),
            ]
        with m.If(a_on & a_load):
            m.d.sync += [mcand.eq(chain[0]), csr.eq(job_cs[1:]), z.eq(0)]
            m.d.sync += addend.eq(Mux(job_cs[0], chain[0], 0))
        t_add = z[MUL_STEPS:].as_signed() + addend
        z_step = Cat(z[1:MUL_STEPS], t_add[0], t_add[1:])
        with m.If(a_on & a_mul):
            m.d.sync += [z.eq(z_step), csr.eq(csr >> 1), addend.eq(Mux(csr[0], mcand, 0))]

        # stage B
        b_nxt = b_step + 1
        with m.If(b_on):
            m.d.sync += [
                b_step.eq(b_nxt),
                b_shift.eq(b_nxt < SCALE_STEPS),
                b_sat.eq(b_nxt == SCALE_STEPS),
                b_cmp.eq(b_nxt == SCALE_STEPS + 1),
                b_max.eq(b_nxt == SCALE_STEPS + 2),
            ]
        with m.If(b_on & b_shift):
            m.d.sync += [by8.eq(by8 >> 1), by1.eq(by1 >> 1)]
            with m.If(by8[0]):
                m.d.sync += zb.eq(zb >> 8)
            with m.Elif(by1[0]):
                m.d.sync += zb.eq(zb >> 1)
        with m.If(b_on & b_sat):
            top = zb[XW - 1 :]
            in_range = top.all() | ~top.any()
            m.d.sync += x_b.eq(Mux(in_range, zb[:XW].as_signed(), Mux(zb[-1], x_min, x_max)))
        with m.If(b_on & b_cmp):
            m.d.sync += take.eq((u_r == 0) | (u_keys.bit_select(u_r, 1) & (x_b > lm)))
        with m.If(b_on & b_max):  # x kept (above), the running column maximum
            m.d.sync += [b_on.eq(0), u_i.eq(u_i + 1), u_r.eq(u_r + 1)]
            with m.If(take):
                m.d.sync += lm.eq(x_b)
            with m.If(u_r == R - 1):
                m.d.sync += [u_r.eq(0), u_c.eq(Mux(u_c == C - 1, 0, u_c + 1)), col_done.eq(1)]
        # A hands its product to B
        with m.If(a_on & a_last):
            m.d.sync += [zb.eq(z_step), by8.eq(pat8), by1.eq(pat1), a_i.eq(a_i + 1)]
            m.d.sync += [b_on.eq(1), b_step.eq(0), b_shift.eq(1), b_sat.eq(0), b_cmp.eq(0), b_max.eq(0)]
            with m.If(a_i == N - 1):
                m.d.sync += a_on.eq(0)

        # A column's running max in two steps: its ceil(lm / 2^FB) and old value, then compare
        done_c = Signal(range(C), name="done_c")  # the column whose last x is in lm
        l_val = Signal(signed(W_R), name="l_val")
        r_old = Signal(signed(W_R), name="r_old")
        col_upd = Signal(name="col_upd")
        m.d.sync += col_upd.eq(col_done)
        with m.If(col_done):
            m.d.sync += [
                done_c.eq(Mux(u_c == 0, C - 1, u_c - 1)),
                l_val.eq((lm + ((1 << FB) - 1)) >> FB),
                r_old.eq(Array(r_col)[Mux(u_c == 0, C - 1, u_c - 1)]),
                col_done.eq(0),
            ]
        with m.If(col_upd):
            rise = l_val > r_old
            diff = (l_val - r_old)[: W_R + 1]
            dbits = D_MAX.bit_length()
            m.d.sync += [
                Array(r_col)[done_c].eq(Mux(u_first | rise, l_val, r_old)),
                Array(d_col)[done_c].eq(
                    Mux(u_first | ~rise, 0, Mux(diff[dbits:].any(), D_MAX, diff[:dbits]))
                ),
            ]

        # exp2 pipeline: x read (stage 0), ROM address and s = r - (x >> FB) (1), ROM data
        # latched and s clamped (2), T[f] + 2^s / 2 (3), p = that >> s (4), p - 1 written to its
        # PE (5)
        table = [int(v) for v in exp2_table(FB, PW, p.exp2)]
        m.submodules.exp2 = rom = memory.Memory(shape=unsigned(PW), depth=1 << FB, init=table)
        rp = rom.read_port()
        sbits = ceil_log2(PW + 1)
        x_rd = xr.data
        m.d.comb += [xr.addr.eq(u_i), rp.addr.eq(x_rd[:FB])]
        ex = [Signal(name=f"ex{i}") for i in range(6)]
        ex_i = [Signal(range(N), name=f"ex_i{i}") for i in range(6)]
        ex_r, ex_c = Signal(range(R), name="ex_r"), Signal(range(C), name="ex_c")
        s_raw = Signal(signed(W_R + 1), name="s_raw")
        masked = Signal(name="ex_masked")
        t_rom, t_sum = Signal(PW, name="t_rom"), Signal(PW + 1, name="t_sum")
        s1, s2 = Signal(sbits, name="s1"), Signal(sbits, name="s2")
        z1, z2 = Signal(name="z1"), Signal(name="z2")
        m.d.sync += [a.eq(b) for a, b in zip(ex[1:], ex, strict=False)]
        m.d.sync += [a.eq(b) for a, b in zip(ex_i[1:], ex_i, strict=False)]
        m.d.sync += [ex_r.eq(u_r), ex_c.eq(u_c)]
        m.d.comb += ex_i[0].eq(u_i)
        m.d.sync += [
            s_raw.eq(Array(r_col)[ex_c] - x_rd[FB:XW].as_signed()),
            masked.eq(~u_keys.bit_select(ex_r, 1)),
            t_rom.eq(rp.data),
            s1.eq(Mux(s_raw >= PW, PW, s_raw[:sbits])),
            z1.eq((s_raw >= PW) | masked),
            t_sum.eq(t_rom + Cat(*(s1 == i + 1 for i in range(PW)))),
            s2.eq(s1),
            z2.eq(z1),
        ]
        p_val = Signal(PW, name="p")
        m.d.sync += p_val.eq(Mux(z2, 0, t_sum >> s2))
        for i, (c, r) in enumerate(_col_major(R, C)):
            with m.If(ex[5] & (ex_i[5] == i)):
                m.d.sync += pm1[r][c].eq(p_val - 1)

        with m.FSM(name="softmax"):
            with m.State("IDLE"):
                with m.If(is_sw & adv & front.ex):
                    m.d.sync += [u_keys.eq(front.keys), u_first.eq(front.first), u_r.eq(0), u_c.eq(0)]
                    m.d.sync += [u_i.eq(0), a_i.eq(0), sc_free.eq(0)]
                    m.next = "CAPTURE"
            with m.State("CAPTURE"):  # the chain is loaded at the end of this cycle
                m.d.sync += [a_on.eq(1), a_step.eq(0), a_load.eq(1), a_mul.eq(0), a_last.eq(0)]
                m.next = "SCALE"
            with m.State("SCALE"):
                with m.If(b_on & b_max & (u_i == N - 1)):
                    m.next = "FLUSH"
            with m.State("FLUSH"):  # the last column's running max: two steps
                m.d.sync += u_i.eq(0)
                m.next = "FLUSH2"
            with m.State("FLUSH2"):
                m.next = "EXP2"
            with m.State("EXP2"):
                m.d.comb += ex[0].eq(1)
                m.d.sync += [u_i.eq(u_i + 1), u_r.eq(u_r + 1)]
                with m.If(u_r == R - 1):
                    m.d.sync += [u_r.eq(0), u_c.eq(Mux(u_c == C - 1, 0, u_c + 1))]
                with m.If(u_i == N - 1):
                    m.next = "DRAIN"
            with m.State("DRAIN"):  # the last p's exp2 stages
                with m.If(ex[-1] & (ex_i[-1] == N - 1)):
                    m.d.sync += sc_free.eq(1)
                    m.next = "IDLE"
        # -- the division unit, the output register and the counters -----------------------------
        o = self.o
        dbank = Signal(name="dbank")
        dqb = Signal(range(p.P_MAX + C + 1), name="dqb")
        df = Signal(range(F), name="df")
        dc = Signal(range(C), name="dc")
        dk = Signal(range(U), name="dk")  # the unit of column dc
        dg = Signal(range(NG + 1), name="dg")  # its group
        dn = Signal(range(F * NG + 1), name="dn")  # the address of (df, dg) in a bank
        rd_addr = Signal(range(2 * NPV), name="rd_addr")
        rd_data = Array(rd.data for rd in rnv_rd)[dk]
        m.d.comb += [rd.addr.eq(rd_addr) for rd in rnv_rd]
        dcount = Signal(range(NQ + 1), name="dcount")
        divisor = Signal(p.W_RD, name="divisor")
        n = Signal(signed(p.W_RNV), name="n")
        nabs = Signal(p.W_RNV, name="nabs")
        rem = Signal(signed(p.W_RD + 1), name="rem")  # partial remainder, in [-divisor, divisor)
        neg_div = Signal(signed(p.W_RD + 1), name="neg_div")
        low = Signal(NQ, name="low")  # the dividend's bits still to come
        quo = Signal(NQ, name="quo")
        mag = Signal(NQ, name="mag")
        neg = Signal(name="neg")
        live = Signal(C, name="live")
        tile_end = Signal(name="tile_end")
        lanes = [Signal(signed(8 + OB), name=f"res{c}") for c in range(C)]
        base = Mux(dbank, NPV, 0)
        with m.If(o.valid & o.ready):
            m.d.sync += o.valid.eq(0)
        with m.FSM(name="div"):
            with m.State("IDLE"):
                with m.If(running & written.bit_select(dbank, 1)):
                    m.d.sync += [live.eq(Cat(dqb + c < P for c in range(C))), tile_end.eq(dqb + C >= P)]
                    m.d.sync += [df.eq(0), dc.eq(0), dk.eq(0), dg.eq(0), dn.eq(0)]
                    m.next = "READ_RD"
            with m.State("READ_RD"):
                m.d.comb += rd_addr.eq(base + F * NG + dg)
                m.next = "READ_N"
            with m.State("READ_N"):
                m.d.comb += rd_addr.eq(base + dn)
                m.d.sync += divisor.eq(rd_data[: p.W_RD])
                m.next = "LATCH"
            with m.State("LATCH"):  # a block RAM's output is slow: register it before using it
                m.d.sync += n.eq(rd_data)
                m.next = "ABS"
            with m.State("ABS"):
                m.d.sync += [nabs.eq(Mux(n < 0, -n, n)), neg.eq(n < 0)]
                m.next = "START"
            with m.State("START"):  # |n| 2^OB + RD / 2 < RD 2^NQ: its top part is below RD
                m.d.sync += [Cat(low, rem).eq((nabs << OB) + (divisor >> 1)), quo.eq(0), dcount.eq(0)]
                m.d.sync += neg_div.eq(-divisor)
                m.next = "ITER"
            with m.State("ITER"):
                # Non-restoring long division: a negative remainder is not restored but added
                # to next, so each step is one add whose operand a register picks (the quotient
                # bits equal the restoring division's).
                trial = Signal(signed(p.W_RD + 2), name="trial")
                m.d.comb += trial.eq(Cat(low[-1], rem).as_signed() + Mux(rem[-1], divisor, neg_div))
                m.d.sync += [
                    rem.eq(trial),
                    low.eq(low << 1),
                    quo.eq(Cat(~trial[-1], quo[:-1])),
                    dcount.eq(dcount + 1),
                ]
                with m.If(dcount == NQ - 1):
                    m.next = "CLAMP"
            with m.State("CLAMP"):  # to [-128, 127] 2^OB
                over = Mux(neg, quo > (128 << OB), quo > (127 << OB))
                m.d.sync += mag.eq(Mux(over, Mux(neg, 128 << OB, 127 << OB), quo))
                m.next = "LANE"
            with m.State("LANE"):  # sign applied, 0 for padding
                m.d.sync += [
                    Array(lanes)[dc].eq(Mux(live.bit_select(dc, 1), Mux(neg, -mag, mag), 0)),
                    dc.eq(dc + 1),
                    dk.eq(dk + 1),
                ]
                with m.If(dk == U - 1):
                    m.d.sync += [dk.eq(0), dg.eq(dg + 1), dn.eq(dn + 1)]
                with m.If(dc == C - 1):
                    m.d.sync += [dc.eq(0), dg.eq(0)]
                    m.next = "EMIT"
                with m.Else():
                    m.next = "READ_RD"
            with m.State("EMIT"):
                with m.If(~o.valid | o.ready):
                    last_f = df == F - 1
                    m.d.sync += [o.payload.data[c].eq(v) for c, v in enumerate(lanes)]
                    m.d.sync += [o.valid.eq(1), o.payload.last.eq(last_f & tile_end), df.eq(df + 1)]
                    with m.If(last_f):
                        m.d.sync += [
                            owned.bit_select(dbank, 1).eq(0),
                            written.bit_select(dbank, 1).eq(0),
                            dbank.eq(~dbank),
                            dqb.eq(dqb + C),
                        ]
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "READ_RD"

        count_job(m, self, running, mac=adv & (is_qk | (need_v & pc_last)), stall_in=stall_in)
        with m.If(start):
            m.d.sync += [
                M.eq(cfgp.M),
                P.eq(cfgp.P),
                job_cs.eq(cfgp.Cs),
                job_sh.eq(cfgp.SH),
                running.eq((cfgp.M != 0) & (cfgp.P != 0)),
                owned.eq(0),
                written.eq(0),
                dbank.eq(0),
                dqb.eq(0),
                self.perf_busy.eq(0),
                self.perf_mac.eq(0),
                self.perf_stall_in.eq(0),
                self.perf_stall_out.eq(0),
            ]
        return m


def _col_major(R: int, C: int) -> list[tuple[int, int]]:
    """(column, row) of the softmax unit's scores in the order it takes them."""
    return [(c, r) for c in range(C) for r in range(R)]
