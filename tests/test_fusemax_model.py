"""Golden model of the fusemax block (spec fusemax.md §2, §4, §5): exp2 tables, the integer algorithm
against the float cascades and the 3-pass form, the accuracy regression, and the cycle model."""

import numpy as np
import pytest
from neurohdl.models import fusemax as fm


@pytest.mark.parametrize(
    "method, t255, total, rel",
    [
        ("lut", 65359, 12_085_828, 1.4e-5),
        ("ipoly3", 65336, 12_085_591, 3.5e-4),
        ("ipoly2", 64951, 12_085_827, 6.2e-3),
    ],
)
def test_exp2_check_values_and_every_class(method, t255, total, rel):
    T = fm.exp2_table(8, 16, method)
    assert T[0] == 1 << 15 and T[255] == t255 and T.sum() == total
    assert (np.diff(T) > 0).all()
    ideal = np.exp2(np.arange(256) / 256) * (1 << 15)
    assert np.abs(T / ideal - 1).max() == pytest.approx(rel, rel=0.05)
    # every (f, s) class: p is monotone in y and never above 2^(PW-1)
    y = np.arange(-(17 << 8), 1)
    s = np.minimum(-(y >> 8), 16)
    p = np.where(s >= 16, 0, (T[y & 255] + ((1 << s) >> 1)) >> s)
    assert (np.diff(p) >= 0).all() and p.max() == 1 << 15 and p[-1] == 1 << 15
    if method == "lut":
        assert fm.exp2_table(8, 16, "lut")[128] == 46341


@pytest.mark.parametrize("FB", range(4, 11))
def test_lut_table_fits_the_rom_at_every_width(FB):
    """Every (FB, PW) the check accepts: the table fits PW bits (with FB > PW its top entries round
    to 2^PW and are clamped; a ROM of PW bits dropped that bit, found by a random build at FB = 10,
    PW = 9), and p over every (f, s) class is what the unclamped table gives, monotone, <= 2^(PW-1)."""
    f = np.arange(1 << FB)
    for PW in range(8, 19):
        fm.FusemaxParams(FB=FB, PW=PW).check()
        T = fm.exp2_table(FB, PW, "lut")
        assert T.max() < 1 << PW and (np.diff(T) >= 0).all()
        exact = np.round(np.exp2(f / (1 << FB)) * (1 << (PW - 1))).astype(np.int64)
        assert (T < exact).any() == (FB > PW)
        y = np.arange(-((PW + 1) << FB), 1)
        s = np.minimum(-(y >> FB), PW)
        half = (1 << s) >> 1
        p = np.where(s >= PW, 0, (T[y & ((1 << FB) - 1)] + half) >> s)
        assert (p == np.where(s >= PW, 0, (exact[y & ((1 << FB) - 1)] + half) >> s)).all()
        assert (np.diff(p) >= 0).all() and p.max() == 1 << (PW - 1)


def _job(rng, P, M, E, F, t=2.0):
    Q, sq = fm.quantize(t * rng.standard_normal((P, E)))
    K, sk = fm.quantize(rng.standard_normal((M, E)))
    V, sv = fm.quantize(rng.standard_normal((M, F)))
    Cs, SH = fm.choose_scale(sq, sk, 1 / np.sqrt(E))
    return Q, K, V, Cs, SH, (sq, sk, sv)


def test_float_cascades_are_equal():
    rng = np.random.default_rng(0)
    Q, K, V = rng.standard_normal((5, 16)), rng.standard_normal((37, 16)), rng.standard_normal((37, 3))
    ref = fm.attention_float(Q, K, V, 0.7)
    for R in (1, 4, 8, 64):
        assert np.allclose(fm.cascade_1pass(Q, K, V, 0.7, R), ref, rtol=1e-12, atol=1e-12)
    assert np.allclose(fm.cascade_3pass(Q, K, V, 0.7), ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("R", [8, 64])
def test_one_epoch_equals_integer_3pass_and_query_tiling_does_not_matter(R):
    rng = np.random.default_rng(R)
    Q, K, V, Cs, SH, _ = _job(rng, 12, R, 64, 5, t=3.0)
    one = fm.attention_int(Q, K, V, Cs=Cs, SH=SH, R=R, OB=8, debug=True)
    assert (one == fm.attention_int_3pass(Q, K, V, Cs=Cs, SH=SH, OB=8)).all()
    parts = np.concatenate(
        [fm.attention_int(Q[i : i + 5], K, V, Cs=Cs, SH=SH, R=R, OB=8) for i in range(0, 12, 5)]
    )
    assert (parts == one).all()


def test_widths_and_bounds_on_extreme_inputs():
    for q, k, v in ((-128, -128, -128), (127, -128, 127), (-128, 127, -128)):
        Q, K, V = np.full((3, 64), q), np.full((300, 64), k), np.full((300, 4), v)
        for Cs, SH in ((65535, 0), (65535, 47), (0, 0), (1, 20)):
            AV = fm.attention_int(Q, K, V, Cs=Cs, SH=SH, R=8, OB=8, debug=True)
            assert (AV == v << 8).all()  # every key equal: AV is that V exactly
    rng = np.random.default_rng(5)
    Q, K = rng.integers(-128, 128, (4, 64)), rng.integers(-128, 128, (500, 64))
    V = rng.integers(-128, 128, (500, 6))
    fm.attention_int(Q, K, V, Cs=65535, SH=0, R=8, OB=8, debug=True)  # saturating x keeps the bounds


def test_m_equals_one_returns_the_value_row():
    rng = np.random.default_rng(1)
    Q, K, V = (
        rng.integers(-128, 128, (3, 7)),
        rng.integers(-128, 128, (1, 7)),
        rng.integers(-128, 128, (1, 4)),
    )
    for OB in (0, 8):
        assert (fm.attention_int(Q, K, V, Cs=999, SH=3, R=4, OB=OB) == V[0] << OB).all()


# spec §5 accuracy regression: worst max / rms over seeds 1000-1003 and 8 temperatures
@pytest.mark.parametrize(
    "M, method, PW, max_lim, rms_lim",
    [
        (256, "lut", 16, 0.10, 0.015),
        (256, "ipoly3", 16, 0.10, 0.015),
        (1024, "lut", 16, 0.35, 0.04),
        (1024, "ipoly2", 16, 0.35, 0.045),
        (1024, "lut", 17, 0.20, 0.02),
    ],
)
def test_accuracy_regression(M, method, PW, max_lim, rms_lim):
    worst, rms, _ = fm.accuracy_sweep(M, exp2=method, PW=PW)
    assert worst <= max_lim and rms <= rms_lim


def test_ob0_mostly_correctly_rounded():
    assert fm.accuracy_sweep(1024, OB=0, seeds=(1000,), temps=(1, 3, 8))[2] >= 0.975


def test_bad_inputs_are_named():
    Q = np.zeros((2, 4), np.int64)
    with pytest.raises(ValueError, match="Q and K must share E"):
        fm.attention_int(Q, np.zeros((3, 5), np.int64), np.zeros((3, 2), np.int64), Cs=1, SH=0, R=2)
    with pytest.raises(ValueError, match="K and V must share M"):
        fm.check_inputs(Q, np.zeros((3, 4), np.int64), np.zeros((4, 2), np.int64))
    with pytest.raises(ValueError, match="outside int8"):
        fm.check_inputs(Q + 200, np.zeros((3, 4), np.int64), np.zeros((3, 2), np.int64))
    with pytest.raises(ValueError, match="must hold integers"):
        fm.check_inputs(Q.astype(float), np.zeros((3, 4)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="R = 65"):
        fm.FusemaxParams(R=65).check()
    with pytest.raises(ValueError, match="ipoly3"):
        fm.FusemaxParams(exp2="ipoly3", PW=17).check()
    with pytest.raises(ValueError, match="too large"):
        fm.choose_scale(1e6, 1e6, 1.0)
    with pytest.raises(ValueError, match="arch = 'mesh': use one of array, compact"):
        fm.FusemaxParams(arch="mesh").check()
    with pytest.raises(ValueError, match="interleave = False is an option of arch 'array'"):
        fm.FusemaxParams(arch="compact", interleave=False).check()
    with pytest.raises(ValueError, match="corr_units = 2 is an option of arch 'compact'"):
        fm.FusemaxParams(corr_units=2).check()
    with pytest.raises(ValueError, match="corr_units = 3 must divide C = 4"):
        fm.FusemaxParams(arch="compact", C=4, corr_units=3).check()


# -- cycle model ----------------------------------------------------------------------------------


@pytest.mark.parametrize("divider", ["column", "shared"])
@pytest.mark.parametrize("interleave", [True, False])
def test_closed_form_equals_the_replay(interleave, divider):
    rng = np.random.default_rng(3)
    checked = 0
    for _ in range(300):
        p = fm.FusemaxParams(
            R=int(rng.integers(1, 17)), C=int(rng.integers(1, 9)), E=int(rng.integers(1, 80)),
            F=int(rng.integers(1, 80)), OB=int(rng.choice([0, 8])), interleave=interleave,
            divider=divider, scale_shift=str(rng.choice(fm.SCALE_SHIFTS)),
        )  # fmt: skip
        M, P = int(rng.integers(1, 400)), int(rng.integers(1, 60))
        closed = fm.cycles_formula(M, P, p)
        if closed is not None:
            assert closed == fm.cycles(M, P, p), (p, M, P)
            checked += 1
        else:  # divider-bound: never faster than the closed form's pipeline would be
            assert fm.cycles(M, P, p) >= fm.t_ideal(M, P, p)
    assert checked > 100


def test_utilisation_targets():
    p = fm.FusemaxParams(R=4, C=4, E=64, F=64)
    assert fm.t_ideal(256, 256, p) / fm.cycles(256, 256, p) >= 0.96
    for R, C, E, M in ((2, 4, 64, 1024), (4, 4, 64, 1024), (8, 8, 64, 1024), (8, 8, 128, 1024)):
        q = fm.FusemaxParams(R=R, C=C, E=E, F=E)
        u = fm.t_ideal(M, M, q) / fm.cycles(M, M, q)
        assert u >= fm.t_ideal(M, M, q) / fm.fusemax_cycles(M, M, q)  # beats FuseMax's own model
    assert fm.fusemax_cycles(1024, 1024, fm.FusemaxParams(R=4, C=4)) == 9_060_352  # spec §4 table
    assert fm.fusemax_cycles(1437, 360, fm.FusemaxParams(F=10)) == 680_400
