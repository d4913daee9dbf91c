"""The fusemax RTL in Amaranth's simulator: many small random builds and jobs, every output and the
counters against the golden and cycle models (fast; the cocotb runs cover Icarus and Verilator)."""

import numpy as np
import pytest
from amaranth.sim import Simulator
from neurohdl.hdl.fusemax import FusemaxArray
from neurohdl.hdl.fusemax_compact import FusemaxCompact
from neurohdl.models import fusemax as fm

COUNTERS = ("perf_busy", "perf_mac", "perf_stall_in", "perf_stall_out")


def pysim(p: fm.FusemaxParams, jobs: list, seed: int = 0, gap: float = 0.0):
    """Run ``jobs`` [(Q, K, V, Cs, SH)] back to back; ``gap``: probability of a valid gap per beat on
    every input and of ready low on o. Returns (o beats, expected beats, counters per job)."""
    dut = FusemaxCompact(p) if p.arch == "compact" else FusemaxArray(p)
    rng = np.random.default_rng(seed)
    beats = {"q": [], "k": [], "v": []}
    cfgs, expected = [], []
    for Q, K, V, Cs, SH in jobs:
        for name, rows in fm.job_beats(Q, K, V, p, rng).items():
            beats[name] += [[int(x) for x in row] for row in rows]
        cfgs.append({"M": len(K), "P": len(Q), "Cs": Cs, "SH": SH})
        AV = fm.attention_int(Q, K, V, Cs=Cs, SH=SH, R=p.R, FB=p.FB, PW=p.PW, OB=p.OB, exp2=p.exp2)
        expected.append(fm.out_beats(AV, len(K), p))
    got, counters, state = [], [], {"done": False}

    def source(name):
        async def run(ctx):
            port, r = getattr(dut, name), np.random.default_rng(seed + len(name))
            for beat in beats[name]:
                while r.random() < gap:
                    await ctx.tick()
                ctx.set(port.payload, beat)
                ctx.set(port.valid, 1)
                await ctx.tick().until(port.ready)
                ctx.set(port.valid, 0)

        return run

    async def cfg(ctx):
        for c in cfgs:
            ctx.set(dut.cfg.payload, c)
            ctx.set(dut.cfg.valid, 1)
            await ctx.tick().until(dut.cfg.ready)
            ctx.set(dut.cfg.valid, 0)
            await ctx.tick()
            while ctx.get(dut.running):
                await ctx.tick()
            counters.append({n: ctx.get(getattr(dut, n)) for n in COUNTERS})
        state["done"] = True

    async def sink(ctx):
        r = np.random.default_rng(seed + 99)
        while not state["done"]:
            ready = int(r.random() >= gap)
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid and ready:
                got.append(list(payload.data))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for name in beats:
        sim.add_testbench(source(name), background=True)
    sim.add_testbench(cfg, background=True)
    sim.add_testbench(sink)
    sim.run()
    return np.array(got, dtype=np.int64).reshape(-1, p.C), np.concatenate(expected).reshape(-1, p.C), counters


def check(p, jobs, seed=0, gap=0.0):
    got, want, counters = pysim(p, jobs, seed, gap)
    assert np.array_equal(got, want), (p, [(len(j[1]), len(j[0])) for j in jobs])
    for (Q, K, *_), c in zip(jobs, counters, strict=True):
        M, P = len(K), len(Q)
        cyc = fm.cycles(M, P, p)
        assert c["perf_mac"] == fm.mac_cycles(M, P, p)
        if gap == 0:
            assert c["perf_busy"] == cyc and c["perf_stall_in"] == c["perf_stall_out"] == 0
        assert cyc <= c["perf_busy"] <= cyc + c["perf_stall_in"] + c["perf_stall_out"]


def test_saturated_scores_in_back_to_back_epochs():
    """Regression: with one key per epoch, the SC write of one epoch's score register and the QK
    add into the other's land in the same cycle; neither may undo the other."""
    Q, K, V = np.array([[-94, -96]]), np.array([[76, -1], [23, 25]]), np.array([[54], [-121]])
    for il in (True, False):
        check(fm.FusemaxParams(R=1, C=1, E=2, F=1, M_MAX=8, P_MAX=8, interleave=il), [(Q, K, V, 30000, 12)])


@pytest.mark.parametrize("interleave", [True, False])
@pytest.mark.parametrize("exp2_unit", fm.EXP2_UNITS)
def test_serial_scale_shift_every_sh_and_the_wait_for_it(interleave, exp2_unit):
    """The serial scale shift at every SH class (steps by 8 only, by 1 only, both, none, the most)
    and E = 1, where SC1 must wait SC_GAP cycles for the last epoch's shift and then take the QK sum
    from S, not as it is formed (the bug this caught); with exp2 per PE and per column (whose rows
    overlap in its pipeline: each row's s and zero flag must move on with it, the other bug)."""
    rng = np.random.default_rng(11)
    p = fm.FusemaxParams(
        R=3,
        C=2,
        E=1,
        F=2,
        M_MAX=16,
        P_MAX=8,
        interleave=interleave,
        scale_shift="serial",
        exp2_unit=exp2_unit,
    )
    assert fm.cycles(7, 3, p) > fm.cycles(7, 3, fm.FusemaxParams(**{**p.__dict__, "scale_shift": "barrel"}))
    Q, K, V = (rng.integers(-128, 128, shape) for shape in ((3, 1), (7, 1), (7, 2)))
    jobs = [
        (Q, K, V, Cs, SH)
        for Cs, SH in ((65535, 0), (40000, 3), (50000, 8), (30000, 13), (65535, 40), (65535, 47), (12345, 29))
    ]
    check(p, jobs)
    check(p, jobs, seed=5, gap=0.3)


@pytest.mark.parametrize("seed", range(9))
def test_random_small_builds_and_jobs(seed):
    """Seeds 6-8: the compact microarchitecture."""
    rng = np.random.default_rng(seed)
    R, C = int(rng.choice([1, 2, 3, 4])), int(rng.choice([1, 2, 3]))
    E, F = int(rng.choice([1, 2, 7])), int(rng.choice([1, 3, 5]))
    options = (
        {"arch": "compact", "corr_units": C if seed % 2 else 1}
        if seed >= 6
        else {
            "interleave": bool(seed % 2),
            "divider": "shared" if seed % 4 >= 2 else "column",
            "scale_shift": str(rng.choice(fm.SCALE_SHIFTS)),
            "exp2_unit": str(rng.choice(fm.EXP2_UNITS)),
        }
    )
    p = fm.FusemaxParams(
        R=R, C=C, E=E, F=F, M_MAX=40, P_MAX=20, OB=int(rng.choice([0, 8])),
        exp2=str(rng.choice(["lut", "ipoly3"])), **options,
    )  # fmt: skip
    jobs = []
    for _ in range(3):
        M = int(rng.choice([0, 1, max(1, R - 1), R, R + 1, int(rng.integers(1, 40))]))
        P = int(rng.choice([1, max(1, C - 1), C + 1, int(rng.integers(1, 20))]))
        Cs = int(rng.choice([0, 65535, int(rng.integers(0, 65536))]))
        SH = int(rng.choice([0, 47, int(rng.integers(0, 48))]))
        V = np.full((M, F), -128) if rng.random() < 0.2 else rng.integers(-128, 128, (M, F))
        jobs.append((rng.integers(-128, 128, (P, E)), rng.integers(-128, 128, (M, E)), V, Cs, SH))
    check(p, jobs, seed, gap=0.3 if seed % 3 else 0.0)


@pytest.mark.parametrize("FB, PW", [(10, 9), (10, 18), (4, 8), (4, 18), (9, 12)])
def test_fixed_point_widths(FB, PW):
    """The corners of FB and PW (the exp2 ROM, score and p widths follow them); a random build at
    FB = 10, PW = 9 found the ROM one bit too narrow for its table."""
    rng = np.random.default_rng(FB * 100 + PW)
    jobs = [
        (
            rng.integers(-128, 128, (3, 5)),
            rng.integers(-128, 128, (M, 5)),
            rng.integers(-128, 128, (M, 2)),
            Cs,
            SH,
        )
        for M, Cs, SH in ((7, 65535, 8), (9, 40000, 12), (4, 65535, 0), (11, 3000, 10))
    ]
    for options in ({"exp2_unit": "pe"}, {"exp2_unit": "column"}, {"arch": "compact", "corr_units": 2}):
        p = fm.FusemaxParams(R=3, C=2, E=5, F=2, M_MAX=16, P_MAX=8, FB=FB, PW=PW, OB=4, **options)
        check(p, jobs, seed=FB, gap=0.3)


def _epoch_maxima(Q, K, Cs: int, SH: int, p: fm.FusemaxParams) -> np.ndarray:
    """Each epoch's integer max l (query 0), to show a case really exercises what it is named for."""
    x = np.clip((Q[:1] @ K.T * Cs) >> SH, -(1 << (p.XW - 1)), (1 << (p.XW - 1)) - 1)[0]
    return np.array([-((-x[j : j + p.R].max()) >> p.FB) for j in range(0, len(K), p.R)])


def _corner_jobs(p: fm.FusemaxParams, rng) -> dict:
    """Spec §3.5, one job list per corner case for an array of ``p``'s shape."""
    R, C, E, F = p.R, p.C, p.E, p.F

    def rand(rows, cols):
        return rng.integers(-128, 128, (rows, cols))

    def job(M, P, Cs=3000, SH=14, V=None):
        return (rand(P, E), rand(M, E), rand(M, F) if V is None else V, Cs, SH)

    q = np.full((1, E), 127)
    # K rows whose score with q steps the running max up by about 30 per epoch
    steps = np.repeat(np.arange(3) * 30 - 100, R)[:, None] + np.zeros((1, E), dtype=np.int64)
    rising = (q, steps, rand(3 * R, F), 16384, 13 + (E - 1).bit_length())
    jump = (
        q,
        np.repeat([[-128], [127]], R, axis=0) + np.zeros((1, E), dtype=np.int64),
        rand(2 * R, F),
        65535,
        16,
    )
    first_max = (
        q,
        np.concatenate([np.full((R, E), 127), rand(2 * R, E) // 4]),
        rand(3 * R, F),
        65535,
        14 + (E - 1).bit_length(),
    )
    return {
        "M < R, P < C": [job(max(1, R - 1), max(1, C - 1))],
        "M = 1": [job(1, C + 1)],
        "odd M1": [job(3 * R, C)],
        "Cs = 0 (uniform)": [job(2 * R + 1, C, Cs=0)],
        "SH = 0, large Cs (x saturates)": [job(R + 1, C, Cs=65535, SH=0)],
        "V = -128 everywhere": [job(2 * R, C, V=np.full((2 * R, F), -128))],
        "running max rising every epoch": [rising],
        "d > 63": [jump],
        "running max fixed by epoch 0": [first_max],
        "back to back, M = 0 and P = 0 between": [
            job(R + 2, 1),
            job(0, C),
            job(1, 2 * C + 1),
            job(R, 0),
            job(3, 2),
        ],
    }


@pytest.mark.parametrize("arch", fm.ARCHS)
@pytest.mark.parametrize(
    "shape", [(1, 1, 1, 1), (3, 2, 2, 3), (4, 3, 7, 1)], ids=lambda s: "x".join(map(str, s))
)
def test_spec_corner_cases(shape, arch):
    """Every corner case of spec §3.5 on arrays with R = 1 / C = 1, E = 1, F = 1 and E < L_RM,
    with and without back-pressure; the cases that name a property of the result check it too."""
    R, C, E, F = shape
    units = {"corr_units": C} if arch == "compact" and C > 1 else {}  # and 1 at C = 1
    p = fm.FusemaxParams(R=R, C=C, E=E, F=F, M_MAX=64, P_MAX=64, OB=8, arch=arch, **units)
    assert E < p.timing.L_RM
    rng = np.random.default_rng(sum(shape))
    for name, jobs in _corner_jobs(p, rng).items():
        for Q, K, V, Cs, SH in jobs:
            AV = fm.attention_int(Q, K, V, Cs=Cs, SH=SH, R=R, OB=p.OB)
            if len(K) == 1 or (V == -128).all() and len(K):
                assert np.array_equal(AV, np.broadcast_to(V[0] << p.OB, AV.shape)), name
            if Cs == 0 and len(K):  # every p equal (and even): the mean, rounded half away from 0
                total = V.sum(axis=0)
                mean = np.sign(total) * ((2 * np.abs(total << p.OB) + len(K)) // (2 * len(K)))
                assert np.array_equal(AV, np.broadcast_to(mean, AV.shape)), name
            l = _epoch_maxima(Q, K, Cs, SH, p) if len(K) and len(Q) else None  # noqa: E741
            if name == "running max rising every epoch":
                assert (np.diff(l) > 0).all(), l
            if name == "d > 63":
                assert l[1] - l[0] > fm.D_MAX, l
            if name == "running max fixed by epoch 0":
                assert (l[1:] < l[0]).all(), l
        for gap in (0.0, 0.3):
            check(p, jobs, seed=len(name), gap=gap)
