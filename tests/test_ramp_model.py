"""The ramp_adc golden model (numpy only): tables, the conversion rule, the programming state, the
what-if model and the LSTM application (spec ``ramp_adc.md`` §5, model tests)."""

import numpy as np
import pytest
from neurohdl.models import ramp_adc as m
from neurohdl.models import ramp_lstm as lstm
from neurohdl.models import ramp_whatif as w

WIDTHS = [(8, 3), (8, 4), (8, 5), (10, 5), (10, 8)]
MONOTONE = ("sigmoid", "tanh", "softplus", "relu6", "exp")


@pytest.mark.parametrize("B_in,N", WIDTHS)
@pytest.mark.parametrize("name", list(m.FUNCTIONS))
def test_every_form_of_the_rule_agrees_with_the_ideal_target(name, B_in, N):
    spec = m.FunctionSpec(name)
    ideal = m.ideal_codes(spec, B_in, N)
    tb = m.build_table(spec, B_in, N, K_max=2**B_in)
    s = np.arange(*m._span(B_in))
    y = tb.codes()
    assert (y == ideal.y).all()
    e = m.error_lsb(spec, B_in, N, y)
    assert np.abs(e).max() <= 0.5 + 1e-9
    # searchsorted on the (non-decreasing) breakpoints
    assert (np.asarray(tb.c)[np.searchsorted(tb.t, s, "right") - 1] == y).all()
    # the hardware's step loop and the increment form, through a bank
    for mode in ("threshold", "increment"):
        p = m.RampParams(B_in=B_in, N=N, C=1, K_max=2**B_in, mode=mode)
        bank = m.RampBank(p, [tb])
        assert (bank.convert(s[:, None])[:, 0] == y).all()
        assert (bank.convert_loop(s[:, None])[:, 0] == y).all()
    if (np.diff(y) >= 0).all():  # GELU and SiLU are monotone staircases at N=3
        assert name in MONOTONE or N == 3
        ct = m.build_table(m.FunctionSpec(name, form="counter"), B_in, N)
        assert ct.K == 2**N and ct.c == list(range(2**N))
        count = (s[:, None] >= np.asarray(ct.t[1:])[None, :]).sum(1)
        assert (count == y).all()
        bank = m.RampBank(m.RampParams(B_in=B_in, N=N, C=1, code_source="counter"), [ct])
        assert (bank.convert(s[:, None])[:, 0] == y).all()
    else:
        with pytest.raises(ValueError, match="non-decreasing"):
            m.build_table(m.FunctionSpec(name, form="counter"), B_in, N)


# K, d_max/d_min, max|e|, RMS e at B_in=8, N=5 (spec §2.5)
SPEC_TABLE = {
    "sigmoid": (32, 63, 2, 0.500, 0.245),
    "tanh": (32, 63, 2, 0.500, 0.245),
    "gelu": (33, 81, 3, 0.494, 0.265),
    "silu": (33, 55, 1, 0.499, 0.283),
    "softplus": (32, 42, 4, 0.494, 0.293),
    "relu6": (32, 130, 3, 0.500, 0.177),
    "exp": (31, 124, 1, 0.499, 0.242),
}


@pytest.mark.parametrize("name", list(SPEC_TABLE))
def test_registry_reproduces_the_spec_table(name):
    tb = m.build_table(name, 8, 5)
    e = m.error_lsb(tb.spec(), 8, 5, tb.codes())
    got = (
        tb.K,
        max(tb.d[1:]),
        min(tb.d[1:]),
        round(float(np.abs(e).max()), 3),
        round(float(np.sqrt((e**2).mean())), 3),
    )
    assert got == SPEC_TABLE[name]


def test_structural_ties_and_the_counts_the_spec_names():
    sig = m.build_table("sigmoid", 8, 5)
    assert 0 in sig.ties and sig.codes()[128] == 16  # sigmoid(0) = 15.5 LSB exactly -> 16
    assert m.build_table("gelu", 8, 5).c[:4] == [1, 0, 1, 2]
    assert [m.build_table(f, 8, 3).K for f in ("gelu", "silu")] == [8, 8]
    assert [m.build_table(f, 8, 4).K for f in ("gelu", "silu")] == [17, 17]
    assert [m.build_table(f, 10, 8, K_max=1024).K for f in ("gelu", "silu")] == [266, 263]
    exp = m.build_table(m.FunctionSpec("exp", form="counter"), 8, 5)
    assert exp.t[-1] == 128 and exp.t[-2] < 128  # one sentinel: code 31 is never reached


@pytest.mark.parametrize("B_in,N", WIDTHS)
def test_sigmoid_and_tanh_give_identical_tables(B_in, N):
    a = m.build_table("sigmoid", B_in, N, K_max=2**B_in)
    b = m.build_table("tanh", B_in, N, K_max=2**B_in)
    assert (a.t, a.c) == (b.t, b.c)


def test_shipped_tables_regenerate_byte_equal(tmp_path):
    fresh = m.regenerate_tables(tmp_path)
    assert len(fresh) == 12
    for p in fresh:
        shipped = m.TABLE_DIR / p.name
        assert shipped.read_bytes() == p.read_bytes(), p.name
        assert (
            m.Table.load(shipped).ties
            == m.build_table(
                m.FunctionSpec(m.Table.load(shipped).name, form=m.Table.load(shipped).form), 8, 5, K_max=64
            ).ties
        )


def test_user_callables_and_code_arrays():
    tb = m.build_table(m.FunctionSpec(lambda x: x**2, (-1, 1), (0, 1), name="square"), 8, 4)
    assert tb.c[0] == 15 and min(tb.c) == 0  # decreasing then increasing
    codes = np.arange(256) // 64
    tb = m.build_table(m.FunctionSpec(codes), 8, 2)
    assert tb.K == 4 and (tb.codes() == codes).all()


@pytest.mark.parametrize(
    "spec,kw,msg",
    [
        (m.FunctionSpec(lambda x: np.log(x), (-1, 1), (0, 1), name="log"), {}, "not finite"),
        (m.FunctionSpec("exp", (0, 4), (0, 1)), {}, "outside out_range"),
        (m.FunctionSpec(np.full(256, 40)), {}, "outside 0..31"),
        (m.FunctionSpec(np.zeros(100, dtype=int)), {}, "needs 256 integers"),
        (m.FunctionSpec("sigmoid"), {"K_max": 16}, "K = 32 table entries"),
        (m.FunctionSpec("relu6"), {"w_d": 7}, "does not fit w_d = 7"),
        (m.FunctionSpec("sigmoid", (3, 3)), {}, "low < high"),
        (m.FunctionSpec("nope"), {}, "not one of"),
    ],
)
def test_bad_functions_and_unrealisable_tables_raise(spec, kw, msg):
    with pytest.raises(ValueError, match=msg):
        m.build_table(spec, 8, 5, **kw)


def test_merge_joins_short_segments_and_reports_the_error():
    tb = m.build_table("sigmoid", 8, 5, K_max=24, merge=True)
    assert tb.K <= 24 and tb.merged_error >= 1


@pytest.mark.parametrize("seed", range(6))
def test_random_tables_and_writes_state_machine_equals_cycle_loop(seed):
    from neurohdl.flows.blocks.ramp_adc import random_writes

    rng = np.random.default_rng(seed)
    B_in = int(rng.integers(4, 9))
    N = int(rng.integers(1, min(B_in, 5) + 1))
    G = int(rng.integers(1, 4))
    mode = str(rng.choice(["threshold", "increment"]))
    p = m.RampParams(B_in=B_in, N=N, C=5, G=G, groups=tuple(rng.integers(0, G, 5)), mode=mode)
    tables = [
        m.build_table(str(rng.choice(["sigmoid", "tanh", "relu6"])), B_in, N, K_max=p.K_max) for _ in range(G)
    ]
    bank = m.RampBank(p, tables)
    x = rng.integers(p.s_min, p.s_max + 1, size=(60, 5))
    cfg = []
    for n in range(60):
        if rng.random() < 0.3:
            cfg += [[n, *wr] for wr in random_writes(bank, rng)]
    cfg = np.asarray(cfg).reshape(-1, 5)
    out, k_run = bank.run(x, cfg)
    ref = bank.copy()
    for n in range(60):
        for row in cfg[cfg[:, 0] == n]:
            ref.write(*(int(v) for v in row[1:]))
        assert (ref.convert_loop(x[n : n + 1]) == out[n]).all()
        assert k_run[n] == ref.k_run
    assert (bank.run(x)[0] == bank.convert(x)).all()  # run() does not modify the bank


def test_writes_decode_fields_like_the_port():
    bank = m.RampBank(
        m.RampParams(B_in=8, N=5, C=2, G=2, mode="increment"), [m.build_table("sigmoid", 8, 5)] * 2
    )
    bank.write(m.CFG_LEN, 1, 0, -5)
    assert bank.length[1] == 1
    bank.write(m.CFG_LEN, 1, 0, 500)  # data is a signed B_in+2-bit field
    assert bank.length[1] == bank.params.K_max
    bank.write(m.CFG_BIAS, 0, 0, -300)  # low 9 bits as signed
    assert bank.bias[0] == m.signed(-300, 9)
    before = bank.ramp.copy()
    bank.write(m.CFG_RAMP, 5, 0, 1)  # group 5 does not exist: no effect
    bank.write(m.CFG_RAMP, 0, 200, 1)  # neither does slot 200
    assert (bank.ramp == before).all()
    with pytest.raises(ValueError, match="group 5 does not exist"):
        bank.check_write(m.CFG_RAMP, 5, 0, 1)
    with pytest.raises(ValueError, match="addr 200 does not exist"):
        bank.check_write(m.CFG_CODE, 0, 200, 1)
    # increment sums saturate at s_max + 1 and the bias is never clamped
    bank.write(m.CFG_BIAS, 1, 0, -256)
    bank.write(m.CFG_RAMP, 1, 1, 511)
    assert bank.ramps()[1, 0] == -256 and (bank.ramps()[1, 1:] == 128).all()


def test_bad_params_raise_naming_the_parameter():
    for kw, msg in [
        ({"B_in": 3}, "B_in"),
        ({"N": 9}, "N = 9"),
        ({"C": 4, "groups": (0, 1, 0, 0)}, "groups entries"),
        ({"code_source": "counter", "K_max": 16}, "K_max = 16"),
        ({"pipe": 3}, "pipe"),
    ]:
        with pytest.raises(ValueError, match=msg):
            m.RampParams(**kw)


# -- what-if --------------------------------------------------------------------------------------

SIG = m.build_table("sigmoid", 8, 5)


def test_whatif_same_seed_same_arrays_and_tracked_gain_is_harmless():
    v = w.Variation(sigma_prog=0.01, p_off=0.01, sigma_cmp=0.3)
    a, b = w.instance(SIG, v, seed=3, k=2, columns=4), w.instance(SIG, v, seed=3, k=2, columns=4)
    assert (a.y == b.y).all() and (a.ramp == b.ramp).all()
    assert not (w.instance(SIG, v, seed=3, k=3, columns=4).y == a.y).all()
    for gain in (0.8, 0.9, 1.1, 1.2):
        assert w.instance(SIG, w.Variation(gain=gain), k=0).mean_abs == 0


def test_whatif_offset_is_recovered_by_calibration_exactly():
    assert w.instance(SIG, w.Variation(offset=3), k=0).mean_abs > 0.3
    r = w.instance(SIG, w.Variation(offset=3, calibrate=True), k=0)
    assert r.mean_abs == 0 and r.beta == -3


def test_whatif_integer_export_equals_the_float_comparison():
    for k in range(10):
        v = w.Variation(sigma_prog=0.02, p_off=0.02, calibrate=bool(k % 2))
        tb = w.integer_export(SIG, v, seed=1, k=k)
        inst = w.instance(SIG, v, seed=1, k=k)
        bank = m.RampBank(m.RampParams(C=1, mode="increment"), [tb])
        s = np.arange(-128, 128)[:, None]
        assert (bank.convert(s)[:, 0] == inst.y[:, 0]).all()


# condition -> (mean|Δ|, P(Δ≠0), max|Δ|) of spec §2.7, 300 instances, seed 0
WHATIF_SPEC = [
    (w.Variation(sigma_prog=0.005), 1, (0.106, 0.104, 1.13)),
    (w.Variation(sigma_prog=0.01), 1, (0.218, 0.183, 1.77)),
    (w.Variation(sigma_prog=0.02, calibrate=True), 1, (0.261, None, None)),
    (w.Variation(p_off=0.02), 1, (0.263, 0.098, 1.29)),
    (w.Variation(levels=32), 1, (0.527, None, None)),
    (w.Variation(gain=0.9, track_input=False), 1, (0.266, 0.266, 1.00)),
    (w.Variation(offset=3), 1, (0.363, 0.320, 2.00)),
    (w.Variation(sigma_read=0.01), 1, (0.056, 0.056, 0.63)),
    (w.Variation(sigma_cmp=1.0), 16, (0.092, None, None)),
]


@pytest.mark.parametrize("var,cols,want", WHATIF_SPEC)
def test_whatif_reproduces_the_spec_table(var, cols, want):
    r = w.monte_carlo(SIG, var, instances=300, seed=0, columns=cols)
    got = (round(r["mean_abs"], 3), round(r["p_err"], 3), round(r["max_abs"], 2))
    for g, e in zip(got, want, strict=True):
        if e is not None:
            assert g == pytest.approx(e, abs=1e-9)


# -- the LSTM application -----------------------------------------------------------------------


def test_lstm_seed0_float_and_ramp_accuracy():
    net = lstm.train(0)
    _, _, xt, yt = lstm.load_split()
    assert round(100 * lstm.accuracy(net, xt, yt), 1) == 95.8
    assert round(100 * lstm.accuracy(net, xt, yt, lstm.ramp_acts(8, 5)), 1) == 96.2


def test_lstm_conversions_follow_the_activation_path():
    """Running the recurrence as bank conversions predicts what the ramp activations predict."""
    net = lstm.train(0)
    _, _, xt, _ = lstm.load_split()
    bank = m.RampBank(
        m.RampParams(C=128, G=2, groups=(0,) * 64 + (1,) * 32 + (0,) * 32),
        [m.build_table("sigmoid", 8, 5), m.build_table("tanh", 8, 5)],
    )
    s, y, pred = lstm.conversions(net, xt[:40], bank.convert, 8, 5)
    assert s.shape == (40 * 16, 128) and (bank.convert(s) == y).all()
    assert (pred == lstm.forward(net, xt[:40], *lstm.ramp_acts(8, 5)).argmax(1)).all()
