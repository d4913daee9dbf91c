"""Golden-model tests for ``lif``: the spec §2.4 self-test vectors, packing, edges and the cycle model."""

import numpy as np
import pytest
from neurohdl.models import lif as m


def single(
    du=0,
    dv=0,
    vth=0,
    bias_mant=0,
    bias_exp=0,
    leak=m.LEAK_MUL,
    reset=m.RESET_ZERO,
    cmp=m.CMP_GT,
    ref=0,
    REF_BITS=2,
    W=0,
    wexp=0,
    ACC_BITS=16,
):
    p = m.LifParams(N=1, N_EXT=1, LOOPBACK=False, P=1, REF_BITS=REF_BITS, N_PROF=1, ACC_BITS=ACC_BITS)
    return m.LifNetwork(
        params=p,
        W=[[W]],
        du=[du],
        dv=[dv],
        vth=[vth],
        wexp=[wexp],
        leak=[leak],
        reset=[reset],
        cmp=[cmp],
        ref=[ref],
        emit=[1],
        prof=[0],
        bias_mant=[bias_mant],
        bias_exp=[bias_exp],
    )


def run_steps(net, steps, a0=None, u0=0, v0=0):
    """Run ``steps`` TICKs from u0/v0; ``a0`` injects acc=a0 before the first update."""
    model = m.LifModel(net)
    model.u[:] = u0
    model.v[:] = v0
    us, vs, ss = [], [], []
    for t in range(steps):
        if t == 0 and a0 is not None:
            model.acc[:] = a0
        r = model.run([[m.TICK, 0]])
        us.append(int(r.u[0, 0]))
        vs.append(int(r.v[0, 0]))
        ss.append(int(r.s[0, 0]))
    return us, vs, ss


def test_lava_impulse_du():
    us, _, _ = run_steps(single(du=2047, dv=0, vth=256), 8, a0=128)
    assert us == [8192, 4096, 2048, 1024, 512, 256, 128, 64]


def test_lava_impulse_dv():
    _, vs, _ = run_steps(single(du=0, dv=2048, vth=256), 8, a0=128)
    assert vs == [8192, 12286, 14331, 15351, 15859, 16111, 16235, 16295]


def test_lava_no_decay():
    _, vs, ss = run_steps(single(vth=8, bias_mant=2, bias_exp=6), 10)
    assert vs[:6] == [128, 256, 384, 512, 0, 128]
    assert [t for t, s in enumerate(ss) if s] == [4, 9]


def test_lava_scaling_of_bias():
    _, vs, _ = run_steps(single(vth=131071, bias_mant=4095, bias_exp=5), 1)
    assert vs == [131040]


@pytest.mark.parametrize(
    "u1,expected", [(2**23, 2**23), (2**23 + 1, -(2**23) + 1), (-(2**23), 2**23), (-(2**23) - 1, 2**23 - 1)]
)
def test_u_fold(u1, expected):
    assert m.fold_u(np.array([u1]))[0] == expected


def test_refractory():
    _, vs, ss = run_steps(single(vth=0, bias_mant=1000, ref=2), 10)
    assert [t for t, s in enumerate(ss) if s] == [0, 3, 6, 9]
    assert all(v == 0 for v in vs)


def test_sub_reset():
    _, vs, ss = run_steps(single(vth=5, bias_mant=200, reset=m.RESET_SUB), 8)
    assert vs == [200, 80, 280, 160, 40, 240, 120, 320]
    assert [t for t, s in enumerate(ss) if s] == [1, 3, 4, 6]


@pytest.mark.parametrize("sign", [1, -1])
def test_lin_leak(sign):
    _, vs, _ = run_steps(single(dv=5, vth=100, leak=m.LEAK_LIN), 5, v0=sign * 1000)
    assert vs == [sign * x for x in (680, 360, 40, 0, 0)]


@pytest.mark.parametrize("cmp,spike,v", [(m.CMP_GT, 0, 448), (m.CMP_GE, 1, 0)])
def test_gt_ge_tie(cmp, spike, v):
    _, vs, ss = run_steps(single(vth=7, bias_mant=448, cmp=cmp), 1)
    assert (ss[0], vs[0]) == (spike, v)


def test_shift_decay_equals_mul_exhaustive():
    """Spec §2.3: the shift decay equals the multiplicative one on every 25-bit u and 24-bit v."""
    x = np.arange(-(2**23), 2**23 + 1, dtype=np.int64)
    for mm in range(13):
        du = (1 << mm) - 1
        k = 12 - mm
        assert np.array_equal(m.shift_decay(x, k), m.rtz12(x * (4095 - du))), f"du={du}"
    xv = x[1:-1]
    for mm in range(12):
        dv = 1 << mm
        assert np.array_equal(m.shift_decay(xv, 12 - mm), m.rtz12(xv * (4096 - dv))), f"dv={dv}"


def test_a_saturation_and_acc_wrap():
    net = single(W=127, wexp=7, ACC_BITS=9)
    model = m.LifModel(net)
    r = model.run([[m.SPIKE, 0]] * 3 + [[m.TICK, 0]])
    # 3*127 = 381 wraps in 9 bits to -131; << 7 = -16768 (inside the a clamp); u = a << 6
    assert r.u[0, 0] == -131 * 128 * 64
    net = single(W=127, wexp=7, ACC_BITS=16)
    r = m.LifModel(net).run([[m.SPIKE, 0]] * 3 + [[m.TICK, 0]])
    assert r.u[0, 0] == m.A_MAX * 64


def test_v_clamp_and_bias_extremes():
    _, vs, _ = run_steps(single(vth=131071, bias_mant=-4096, bias_exp=7), 40)
    assert min(vs) == -m.V_MAX


@pytest.mark.parametrize("seed", range(8))
def test_pack_unpack_round_trip(seed):
    rng = np.random.default_rng(seed)
    p = m.LifParams(
        N=int(rng.integers(1, 60)), N_EXT=int(rng.integers(0, 40)), P=int(rng.choice([1, 2, 4, 8]))
    )
    net = m.random_network(p, seed, density=float(rng.random()) * 0.3)
    packed = m.pack(net)
    assert np.array_equal(m.unpack(packed, p), net.W)
    assert packed["words"] == packed["len"].sum() == len(packed["wmem"])


def test_loopback_is_one_step_late_and_event_order_irrelevant():
    p = m.LifParams(N=3, N_EXT=2, LOOPBACK=True, P=2, N_PROF=1)
    W = np.zeros((5, 3), dtype=np.int64)
    W[0, 0] = 100  # ext 0 -> n0
    W[2, 1] = 100  # n0 -> n1
    W[3, 2] = 100  # n1 -> n2
    net = m.LifNetwork(
        params=p,
        W=W,
        du=[4095],
        dv=[0],
        vth=[1],
        wexp=[0],
        leak=[0],
        reset=[0],
        cmp=[0],
        ref=[0],
        emit=[1],
        prof=[0, 0, 0],
        bias_mant=[0, 0, 0],
        bias_exp=[0, 0, 0],
    )
    r = m.LifModel(net).run([[m.SPIKE, 0], [m.TICK, 0], [m.TICK, 0], [m.TICK, 0], [m.SPIKE, 9], [m.TICK, 0]])
    assert r.out.tolist() == [[0, 0], [1, 0], [0, 1], [1, 0], [0, 2], [1, 0], [1, 0]]
    a = m.LifModel(m.random_network(m.LifParams(N=20, N_EXT=10, P=4), 3))
    b = m.LifModel(a.net)
    ev = [[m.SPIKE, x] for x in range(10)] + [[m.TICK, 0]]
    assert np.array_equal(a.run(ev).v, b.run(ev[9::-1] + ev[10:]).v)


def test_params_reject_illegal_values():
    with pytest.raises(ValueError, match="P="):
        m.LifParams(P=3)
    with pytest.raises(ValueError, match="ACC_BITS"):
        m.LifParams(W_BITS=8, ACC_BITS=8)
    with pytest.raises(ValueError, match="Q="):
        m.LifParams(P=4, Q=8)


def test_if_profile_float_reference_agrees_exactly():
    """IF profiles (du=4095, dv=0, bias multiple of 64) agree exactly with the float reference."""
    p = m.LifParams(N=16, N_EXT=8, LOOPBACK=False, P=4, N_PROF=1, CUBA=False)
    rng = np.random.default_rng(0)
    net = m.LifNetwork(
        params=p,
        W=rng.integers(-100, 100, (8, 16)),
        du=[4095],
        dv=[0],
        vth=[300],
        wexp=[0],
        leak=[0],
        reset=[1],
        cmp=[0],
        ref=[0],
        emit=[1],
        prof=np.zeros(16, int),
        bias_mant=rng.integers(-3, 4, 16),
        bias_exp=np.full(16, 6),
    )
    model = m.LifModel(net)
    ev, a_steps = [], []
    for _ in range(20):
        spikes = np.flatnonzero(rng.random(8) < 0.4)
        ev += [[m.SPIKE, int(x)] for x in spikes] + [[m.TICK, 0]]
        a_steps.append(net.W[spikes].sum(axis=0))
    r = model.run(ev)
    vf, sf = m.lif_float(net, np.asarray(a_steps))
    assert np.array_equal(r.s, sf)
    assert np.array_equal(r.v / 64.0, vf)


def test_cycle_model_by_hand():
    """Ten empty TICKs on a G=5, P/Q=2 core: the first costs START + TICK_START + (G*P/Q + 1) +
    TICK_TAIL = 4 + 2 + 11 + 7 = 24 cycles; each next one waits for the previous marker:
    11 + 7 + 2 = 20 more (the RTL measures 24 and 204)."""
    p = m.LifParams(N=20, N_EXT=12, P=4, Q=2)
    net = m.random_network(p, 1)
    assert m.cycles(m.LifModel(net).run([[m.TICK, 0]]), p) == 24
    assert m.cycles(m.LifModel(net).run([[m.TICK, 0]] * 10), p) == 24 + 9 * 20
    # A spike with a window of `len` words adds len + INTEGRATE_DRAIN before the sweep.
    a = int(np.flatnonzero(m.pack(net)["len"] > 0)[0])
    ln = int(m.pack(net)["len"][a])
    assert m.cycles(m.LifModel(net).run([[m.SPIKE, a], [m.TICK, 0]]), p) == 24 + ln + m.INTEGRATE_DRAIN
