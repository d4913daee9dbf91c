"""One LIF/CUBA update lane (spec ``lif.md`` §2.3 and §3.4, stages U1-U3)."""

from types import SimpleNamespace

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
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


def profile_const(fields: dict, ref_bits: int, decay: str) -> Const:
    """One profile as a constant of :func:`profile_layout`, with the shift decodes filled in."""
    du, dv = fields["du"], fields["dv"]
    shift = decay == "shift"
    value = {k: fields[k] for k in ("du", "dv", "vth", "wexp", "leak", "reset", "cmp", "ref", "emit")}
    value.update(
        ku=12 - (du + 1).bit_length() + 1 if shift else 0,
        kv=12 - dv.bit_length() + 1 if shift and dv else 0,
        v_hold=int(dv == 0),
    )
    return Const.cast(profile_layout(ref_bits).const(value))


def _rtz12(x):
    """``x / 4096`` truncated toward zero."""
    return (x + Mux(x[-1], 4095, 0)) >> 12


def _shift_term(x, k):
    """``(x + [x >= 0](2^k - 1)) >>> k``: the decay of ``DECAY=shift`` is ``x`` minus this, which
    equals the multiplicative decay exactly (spec §2.3)."""
    return (x + Mux(x[-1], 0, (1 << k) - 1)) >> k


class LifLane(wiring.Component):
    """Updates one neuron per enabled cycle, through :attr:`LATENCY` register stages.

    Each stage has at most two carry chains in series, and none has a chain behind a variable
    shift: the input's scaling is shifted in stage 1 and saturated in stage 2 (on the iCE40 the two
    in one stage were the core's longest path after the spike serializer's handshake).

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
    profiles : list of Value
        The parameter profiles (spec §2.2) as :func:`profile_layout` words: constants from
        :func:`profile_const`, or the core's profile registers. Each stage looks up only the fields
        it needs from the neuron's profile index, so no profile data rides the pipeline.

    Attributes
    ----------
    en : In(1)
        Advances the pipeline; with ``en`` low every stage holds.
    acc, u, v, ref, bias_mant, bias_exp, prof, real, lb : In
        The neuron, sampled in cycle U1. ``real`` is low on padding lanes, whose outputs are zero.
        ``lb`` says the neuron's spikes loop back to a non-empty axon row.
    u_o, v_o, ref_o, s, s_emit, s_loop : Out
        The updated neuron, valid :attr:`LATENCY` enabled cycles after its inputs, combinational
        from the last stage's registers.
    """

    LATENCY = 6

    def __init__(self, *, acc_bits: int, cuba: bool, decay: str, ref_bits: int, profiles: list):
        self.acc_bits, self.cuba, self.decay, self.ref_bits = acc_bits, cuba, decay, ref_bits
        self.profiles = list(profiles)
        self.prof_bits = max(1, (len(profiles) - 1).bit_length())
        super().__init__(
            {
                "en": In(1),
                "acc": In(signed(acc_bits)),
                "u": In(signed(U_W)),
                "v": In(signed(V_W)),
                "ref": In(unsigned(ref_bits)),
                "bias_mant": In(signed(13)),
                "bias_exp": In(unsigned(3)),
                "prof": In(unsigned(max(1, (len(profiles) - 1).bit_length()))),
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
        layout = profile_layout(self.ref_bits)
        table = Array(self.profiles)

        def profile(index) -> data.View:
            return layout(table[index] if len(self.profiles) > 1 else self.profiles[0])

        def stage(name: str, **values) -> SimpleNamespace:
            """Register ``values`` (advancing with ``en``); returns the registers by name."""
            regs = {}
            for key, value in values.items():
                shape = value.shape()
                regs[key] = reg = Signal(shape, name=f"{name}_{key}")
                with m.If(self.en):
                    m.d.sync += reg.eq(value)
            return SimpleNamespace(**regs)

        # Stage 0: register the inputs, which come straight from block RAM.
        s0 = stage(
            "s0",
            acc=self.acc,
            u=self.u,
            v=self.v,
            ref=self.ref,
            bias_mant=self.bias_mant,
            bias_exp=self.bias_exp,
            prof=self.prof,
            real=self.real,
            lb=self.lb,
        )
        pr = profile(s0.prof)

        # Stage 1: shift a, form the decays' products (or shifts), the linear leak and the bias.
        wexp = pr.wexp
        a_shift = Mux(wexp[-1], s0.acc >> (-wexp).as_unsigned()[:4], s0.acc << wexp.as_unsigned()[:3])
        lin_l = Cat(Signal(6), pr.dv, Signal(1)).as_signed()
        v_lin = Mux(s0.v > lin_l, s0.v - lin_l, Mux(s0.v < -lin_l, s0.v + lin_l, 0))
        zero = Const(0, signed(2))
        if self.decay == "mul":
            ud = s0.u * (4095 - pr.du) if self.cuba else zero
            vd = s0.v * (4096 - pr.dv)
            raw = {}
        else:
            # the shifted terms here, the subtraction in stage 2 (one carry chain per stage)
            ud = _shift_term(s0.u, pr.ku) if self.cuba else zero
            vd = _shift_term(s0.v, pr.kv)
            raw = dict(u_raw=s0.u if self.cuba else zero, v_raw=s0.v)
        keep = dict(ref=s0.ref, prof=s0.prof, real=s0.real, lb=s0.lb)
        s1 = stage(
            "s1",
            a_shift=a_shift,  # saturated in stage 2: the profile pick and the shift fill this one
            ud=ud,
            vd=vd,
            v_lin=v_lin,
            bias=s0.bias_mant << s0.bias_exp,
            **raw,
            **keep,
        )
        keep = dict(ref=s1.ref, prof=s1.prof, real=s1.real, lb=s1.lb)

        # Stage 2: saturate a, round the products toward zero and choose the v leak.
        lim = 1 << 15
        a = Mux(s1.a_shift < -lim, -lim, Mux(s1.a_shift > lim - 1, lim - 1, s1.a_shift))
        pr1 = profile(s1.prof)
        if self.decay == "mul":
            u_dec, v_mul = _rtz12(s1.ud), _rtz12(s1.vd)
        else:
            u_dec, v_mul = s1.u_raw - s1.ud, Mux(pr1.v_hold, s1.v_raw, s1.v_raw - s1.vd)
        v_dec = Mux(pr1.leak, s1.v_lin, v_mul)
        s2 = stage(
            "s2",
            u_dec=u_dec[: U_W + 1].as_signed(),
            v_dec=v_dec[: V_W + 1].as_signed(),
            a6=Cat(Const(0, 6), a[:16]).as_signed(),
            bias=s1.bias,
            **keep,
        )
        keep = dict(ref=s2.ref, prof=s2.prof, real=s2.real, lb=s2.lb)

        # Stage 3: add the input to u; add the bias to v.
        u1 = (s2.u_dec + s2.a6) if self.cuba else s2.a6
        s3 = stage("s3", u1=u1[:27].as_signed(), vb=(s2.v_dec + s2.bias)[:27].as_signed(), **keep)
        keep = dict(ref=s3.ref, prof=s3.prof, real=s3.real, lb=s3.lb)

        # Stage 4: fold u into (-2^23, 2^23].
        u1 = s3.u1
        un = Mux(u1 > U_MAX, u1 - (1 << 24), Mux(u1 <= -U_MAX, u1 + (1 << 24), u1)) if self.cuba else u1
        s4 = stage("s4", un=un[:U_W].as_signed(), vb=s3.vb, **keep)
        keep = dict(ref=s4.ref, prof=s4.prof, real=s4.real, lb=s4.lb)

        # Stage 5: sum v; clamp it, compare it with the threshold and subtract the threshold in
        # parallel from the unclamped sum (theta < V_MAX, so the clamp never changes the decision).
        vsum = s4.vb + s4.un
        pr4 = profile(s4.prof)
        theta = Cat(Const(0, 6), pr4.vth, Const(0, 1)).as_signed()
        hi = vsum > V_MAX
        v1 = Mux(hi, V_MAX, Mux(vsum < -V_MAX, -V_MAX, vsum))
        fire = Mux(pr4.cmp, vsum >= theta, vsum > theta)
        v_sub = Mux(hi, V_MAX - theta, vsum - theta)
        s5 = stage("s5", v1=v1[:V_W].as_signed(), fire=fire, v_sub=v_sub[:V_W].as_signed(), un=s4.un, **keep)

        # Output (multiplexers only, from stage 5): reset and refractory.
        in_ref = Signal()
        if self.ref_bits:
            m.d.comb += in_ref.eq(s5.ref != 0)
        s = Signal()
        m.d.comb += s.eq(s5.fire & ~in_ref & s5.real)
        pr5 = profile(s5.prof)
        v_fired = Mux(pr5.reset, s5.v_sub, 0)
        v1 = s5.v1
        with m.If(s5.real):
            m.d.comb += [
                self.u_o.eq(s5.un),
                self.v_o.eq(Mux(in_ref, 0, Mux(s, v_fired, v1))),
            ]
            if self.ref_bits:
                m.d.comb += self.ref_o.eq(Mux(in_ref, s5.ref - 1, Mux(s, pr5.ref, 0)))
        m.d.comb += [
            self.s.eq(s),
            self.s_emit.eq(s & pr5.emit),
            self.s_loop.eq(s & s5.lb),
        ]
        return m
