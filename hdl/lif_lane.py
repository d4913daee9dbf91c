"""One LIF/CUBA update lane (spec ``lif.md`` §2.3 and §3.4, stages U1-U3)."""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["LifLane", "profile_layout"]

U_W, V_W = 25, 24
U_MAX = 1 << 23
V_MAX = (1 << 23) - 1


def profile_layout(ref_bits: int) -> data.StructLayout:
    """Per-profile fields as the lane sees them; ``ku``/``kv``/``v_hold`` are ``DECAY=shift`` decodes."""
    return data.StructLayout(
        {
            "du": unsigned(12),
            "dv": unsigned(12),
            "vth": unsigned(17),
            "wexp": signed(4),
            "leak": unsigned(1),
            "reset": unsigned(1),
            "cmp": unsigned(1),
            "ref": unsigned(ref_bits),
            "emit": unsigned(1),
            "ku": unsigned(4),
            "kv": unsigned(4),
            "v_hold": unsigned(1),
        }
    )


def _rtz12(x):
    """``x / 4096`` truncated toward zero."""
    return (x + Mux(x[-1], 4095, 0)) >> 12


def _shift_decay(x, k):
    """``x - ((x + [x >= 0](2^k - 1)) >>> k)``, equal to the multiplicative decay (spec §2.3)."""
    return x - ((x + Mux(x[-1], 0, (1 << k) - 1)) >> k)


class LifLane(wiring.Component):
    """Updates one neuron per enabled cycle, with two register stages.

    Parameters
    ----------
    acc_bits : int
        Width of the signed accumulator.
    cuba : bool
        Keep a decaying synaptic current ``u``; otherwise ``u' = a << 6``.
    decay : ``"mul"`` or ``"shift"``
        Multipliers (4 DSPs per lane) or the exact shift form.
    ref_bits : int
        Refractory counter width.

    Attributes
    ----------
    en : In(1)
        Advances the pipeline; with ``en`` low every stage holds.
    acc, u, v, ref, bias_mant, bias_exp, prof, real, lb : In
        The neuron, sampled in cycle U1. ``real`` is low on padding lanes, whose outputs are zero.
        ``lb`` says the neuron's spikes loop back to a non-empty axon row.
    u_o, v_o, ref_o, s, s_emit, s_loop : Out
        The updated neuron, valid two enabled cycles after its inputs (U3), combinational from the
        stage-2 registers.
    """

    def __init__(self, *, acc_bits: int, cuba: bool, decay: str, ref_bits: int):
        self.acc_bits, self.cuba, self.decay, self.ref_bits = acc_bits, cuba, decay, ref_bits
        super().__init__(
            {
                "en": In(1),
                "acc": In(signed(acc_bits)),
                "u": In(signed(U_W)),
                "v": In(signed(V_W)),
                "ref": In(unsigned(ref_bits)),
                "bias_mant": In(signed(13)),
                "bias_exp": In(unsigned(3)),
                "prof": In(profile_layout(ref_bits)),
                "real": In(1),
                "lb": In(1),
                "u_o": Out(signed(U_W)),
                "v_o": Out(signed(V_W)),
                "ref_o": Out(unsigned(ref_bits)),
                "s": Out(1),
                "s_emit": Out(1),
                "s_loop": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        pr = self.prof

        # U1: scale a, form the decays' products (or shifts), the linear leak and the bias.
        wexp = pr.wexp
        a_shift = Mux(wexp[-1], self.acc >> (-wexp).as_unsigned()[:4], self.acc << wexp.as_unsigned()[:3])
        a = Signal(signed(16))
        m.d.comb += a.eq(Mux(a_shift < -(1 << 15), -(1 << 15), Mux(a_shift > (1 << 15) - 1, (1 << 15) - 1, a_shift)))
        lin_l = Cat(Signal(6), pr.dv, Signal(1)).as_signed()
        v_lin = Mux(self.v > lin_l, self.v - lin_l, Mux(self.v < -lin_l, self.v + lin_l, 0))

        r1_a = Signal(signed(16))
        r1_ud = Signal(signed(38))  # product (mul) or decayed u (shift)
        r1_vd = Signal(signed(38))
        r1_vlin = Signal(signed(V_W + 1))
        r1_bias = Signal(signed(21))
        r1_ref = Signal(unsigned(self.ref_bits))
        r1_prof = Signal(profile_layout(self.ref_bits))
        r1_real = Signal()
        r1_lb = Signal()
        if self.decay == "mul":
            ud = self.u * (4095 - pr.du) if self.cuba else 0
            vd = self.v * (4096 - pr.dv)
        else:
            ud = _shift_decay(self.u, pr.ku) if self.cuba else 0
            vd = Mux(pr.v_hold, self.v, _shift_decay(self.v, pr.kv))
        with m.If(self.en):
            m.d.sync += [
                r1_a.eq(a),
                r1_ud.eq(ud),
                r1_vd.eq(vd),
                r1_vlin.eq(v_lin),
                r1_bias.eq(self.bias_mant << self.bias_exp),
                r1_ref.eq(self.ref),
                r1_prof.eq(pr),
                r1_real.eq(self.real),
                r1_lb.eq(self.lb),
            ]

        # U2: round toward zero, fold u, sum v.
        if self.decay == "mul":
            u_dec, v_mul = _rtz12(r1_ud), _rtz12(r1_vd)
        else:
            u_dec, v_mul = r1_ud, r1_vd
        u1 = Signal(signed(27))
        un = Signal(signed(U_W))
        a6 = Cat(Signal(6), r1_a).as_signed()
        if self.cuba:
            m.d.comb += u1.eq(u_dec + a6)
            m.d.comb += un.eq(Mux(u1 > U_MAX, u1 - (1 << 24), Mux(u1 <= -U_MAX, u1 + (1 << 24), u1)))
        else:
            m.d.comb += un.eq(a6)
        v_dec = Mux(r1_prof.leak, r1_vlin, v_mul)
        r2_vsum = Signal(signed(28))
        r2_u = Signal(signed(U_W))
        r2_ref = Signal(unsigned(self.ref_bits))
        r2_prof = Signal(profile_layout(self.ref_bits))
        r2_real = Signal()
        r2_lb = Signal()
        with m.If(self.en):
            m.d.sync += [
                r2_vsum.eq(v_dec + un + r1_bias),
                r2_u.eq(un),
                r2_ref.eq(r1_ref),
                r2_prof.eq(r1_prof),
                r2_real.eq(r1_real),
                r2_lb.eq(r1_lb),
            ]

        # U3: clamp, compare, reset, refractory.
        v1 = Signal(signed(V_W))
        m.d.comb += v1.eq(Mux(r2_vsum > V_MAX, V_MAX, Mux(r2_vsum < -V_MAX, -V_MAX, r2_vsum)))
        theta = Cat(Signal(6), r2_prof.vth, Signal(1)).as_signed()
        fire = Mux(r2_prof.cmp, v1 >= theta, v1 > theta)
        in_ref = Signal()
        if self.ref_bits:
            m.d.comb += in_ref.eq(r2_ref != 0)
        s = Signal()
        m.d.comb += s.eq(fire & ~in_ref & r2_real)
        v_fired = Mux(r2_prof.reset, v1 - theta, 0)
        with m.If(r2_real):
            m.d.comb += [
                self.u_o.eq(r2_u),
                self.v_o.eq(Mux(in_ref, 0, Mux(s, v_fired, v1))),
            ]
            if self.ref_bits:
                m.d.comb += self.ref_o.eq(Mux(in_ref, r2_ref - 1, Mux(s, r2_prof.ref, 0)))
        m.d.comb += [
            self.s.eq(s),
            self.s_emit.eq(s & r2_prof.emit),
            self.s_loop.eq(s & r2_lb),
        ]
        return m
