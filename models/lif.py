"""Bit-exact golden model of the ``lif`` core (spec ``lif.md`` §2), plus its float reference.

Everything is int64 numpy, vectorised over neurons. The model is the single source of truth for what
the RTL computes: :class:`LifModel` executes the command stream of ``ev_in`` and produces the exact
``ev_out`` sequence and the post-update state of every neuron at every TICK (what the ``trace`` port
shows). :func:`pack` gives the memory images the RTL is initialised with, :func:`cycles` the cycle
count the RTL must reach.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

import numpy as np

from .ints import ceil_log2  # noqa: F401  (part of this model's API)

SPIKE, TICK, CLEAR, NOP = 0, 1, 2, 3
OUT_SPIKE, OUT_TICK = 0, 1

LEAK_MUL, LEAK_LIN = 0, 1
RESET_ZERO, RESET_SUB = 0, 1
CMP_GT, CMP_GE = 0, 1

U_MAX = 1 << 23
V_MAX = (1 << 23) - 1
A_MIN, A_MAX = -(1 << 15), (1 << 15) - 1

PROFILE_FIELDS = ("du", "dv", "vth", "wexp", "leak", "reset", "cmp", "ref", "emit")
NETWORK_FIELDS = (*PROFILE_FIELDS, "prof", "bias_mant", "bias_exp", "W")


@dataclass(frozen=True)
class LifParams:
    """Build parameters of a core (spec §2.2). ``WDEPTH = 0`` sizes the weight memory to the network."""

    N: int = 256
    N_EXT: int = 256
    LOOPBACK: bool = True
    P: int = 8
    Q: int = 0  # 0 means Q = P
    W_BITS: int = 8
    ACC_BITS: int = 16
    CUBA: bool = True
    DECAY: str = "mul"
    REF_BITS: int = 0
    N_PROF: int = 4
    WDEPTH: int = 0
    TRACE: bool = False
    PERF: bool = False
    CFG: bool = False
    WMEM_IMPL: str = "ebr"
    IN_DEPTH: int = 16
    OUT_DEPTH: int = 16

    def __post_init__(self):
        if self.Q == 0:
            object.__setattr__(self, "Q", self.P)
        checks = [
            ("N", 1 <= self.N <= 4096, "must be in 1..4096"),
            ("N_EXT", 0 <= self.N_EXT <= 4096, "must be in 0..4096"),
            ("P", self.P in (1, 2, 4, 8, 16, 32), "must be one of 1, 2, 4, 8, 16, 32"),
            (
                "Q",
                self.Q in (1, 2, 4, 8, 16, 32) and self.Q <= self.P,
                "must be a power of 2 no larger than P",
            ),
            ("W_BITS", 2 <= self.W_BITS <= 8, "must be in 2..8"),
            ("ACC_BITS", self.W_BITS + 1 <= self.ACC_BITS <= 24, "must be in W_BITS+1..24"),
            ("DECAY", self.DECAY in ("mul", "shift"), "must be 'mul' or 'shift'"),
            ("REF_BITS", 0 <= self.REF_BITS <= 4, "must be in 0..4"),
            ("N_PROF", 1 <= self.N_PROF <= 16, "must be in 1..16"),
            ("IN_DEPTH", 2 <= self.IN_DEPTH <= 512, "must be in 2..512"),
            ("OUT_DEPTH", 2 <= self.OUT_DEPTH <= 512, "must be in 2..512"),
            ("WDEPTH", self.WDEPTH >= 0, "must be >= 0 (0 sizes it to the network)"),
            (
                "LOOPBACK",
                self.N_EXT > 0 or self.LOOPBACK,
                "an empty axon space needs LOOPBACK (or N_EXT > 0)",
            ),
            ("WMEM_IMPL", self.WMEM_IMPL in ("ebr", "spram"), "must be 'ebr' or 'spram'"),
            (
                "WMEM_IMPL",
                self.WMEM_IMPL == "ebr" or self.CFG,
                "'spram' has no initial contents: it needs CFG=True to load the weights",
            ),
            (
                "WMEM_IMPL",
                self.WMEM_IMPL == "ebr" or self.P * self.W_BITS == 16,
                "'spram' needs 16-bit weight words (P * W_BITS = 16), the SB_SPRAM256KA width",
            ),
        ]
        for name, ok, why in checks:
            if not ok:
                raise ValueError(f"{name}={getattr(self, name)!r} {why}")

    @property
    def N_AX(self) -> int:
        return self.N_EXT + (self.N if self.LOOPBACK else 0)

    @property
    def G(self) -> int:
        return -(-self.N // self.P)

    @property
    def beats(self) -> int:
        return self.P // self.Q


@dataclass
class LifNetwork:
    """A network for one core: build parameters, weights, profiles and per-neuron configuration.

    ``W`` is ``N_AX x N`` signed ``W_BITS``; profile arrays have length ``N_PROF``; ``prof``,
    ``bias_mant``, ``bias_exp`` have length ``N``.
    """

    params: LifParams
    W: np.ndarray
    du: np.ndarray
    dv: np.ndarray
    vth: np.ndarray
    wexp: np.ndarray
    leak: np.ndarray
    reset: np.ndarray
    cmp: np.ndarray
    ref: np.ndarray
    emit: np.ndarray
    prof: np.ndarray
    bias_mant: np.ndarray
    bias_exp: np.ndarray

    def __post_init__(self):
        p = self.params
        for name in NETWORK_FIELDS:
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.int64))
        if self.W.shape != (p.N_AX, p.N):
            raise ValueError(f"W has shape {self.W.shape}, expected (N_AX, N) = {(p.N_AX, p.N)}")
        lo, hi = -(1 << (p.W_BITS - 1)), (1 << (p.W_BITS - 1)) - 1
        if self.W.size and (self.W.min() < lo or self.W.max() > hi):
            raise ValueError(f"W must lie in [{lo}, {hi}] for W_BITS={p.W_BITS}")
        for name in PROFILE_FIELDS:
            if getattr(self, name).shape != (p.N_PROF,):
                raise ValueError(f"profile field {name} must have N_PROF={p.N_PROF} entries")
        for name in ("prof", "bias_mant", "bias_exp"):
            if getattr(self, name).shape != (p.N,):
                raise ValueError(f"{name} must have N={p.N} entries")
        ranges = {
            "du": (0, 4095),
            "dv": (0, 4095),
            "vth": (0, (1 << 17) - 1),
            "wexp": (-8, 7),
            "leak": (0, 1),
            "reset": (0, 1),
            "cmp": (0, 1),
            "ref": (0, (1 << p.REF_BITS) - 1),
            "emit": (0, 1),
            "prof": (0, p.N_PROF - 1),
            "bias_mant": (-4096, 4095),
            "bias_exp": (0, 7),
        }
        for name, (lo, hi) in ranges.items():
            arr = getattr(self, name)
            if arr.size and (arr.min() < lo or arr.max() > hi):
                raise ValueError(f"{name} must lie in [{lo}, {hi}]")
        if not p.CUBA and np.any(self.du != 4095):
            raise ValueError("CUBA=False requires du=4095 in every profile")
        if p.DECAY == "shift":
            if not np.all(np.isin(self.du, [(1 << m) - 1 for m in range(13)])):
                raise ValueError("DECAY=shift allows only du in {2^m-1 : 0<=m<=12}")
            mul_dv = self.dv[self.leak == LEAK_MUL]
            if not np.all(np.isin(mul_dv, [0] + [1 << m for m in range(12)])):
                raise ValueError("DECAY=shift allows only dv in {0} U {2^m : 0<=m<=11}")
        if p.WMEM_IMPL == "spram" and self.wdepth > 16384:
            raise ValueError(f"WMEM_IMPL='spram' holds 16384 words; this network needs {self.wdepth}")
        if p.CFG and max(p.N_AX, self.wdepth, p.G * p.beats) > 1 << 16:
            raise ValueError("CFG addresses are 16 bits: N_AX, WDEPTH and G*P/Q must be at most 65536")
        if p.WDEPTH and p.WDEPTH < pack(self)["words"]:
            raise ValueError(
                f"WDEPTH={p.WDEPTH} is smaller than the packed weights ({pack(self)['words']} words)"
            )

    @property
    def wdepth(self) -> int:
        return self.params.WDEPTH or max(1, pack(self)["words"])

    def with_params(self, **changes) -> LifNetwork:
        """The same network with some build parameters changed (checked again)."""
        fields = {name: getattr(self, name) for name in NETWORK_FIELDS}
        return LifNetwork(params=dataclasses.replace(self.params, **changes), **fields)

    def profile_table(self) -> list[dict[str, int]]:
        return [{f: int(getattr(self, f)[i]) for f in PROFILE_FIELDS} for i in range(self.params.N_PROF)]

    def save(self, path) -> None:
        arrays = {name: getattr(self, name) for name in NETWORK_FIELDS}
        np.savez_compressed(path, params=np.array(json.dumps(dataclasses.asdict(self.params))), **arrays)

    @classmethod
    def load(cls, path, **overrides) -> LifNetwork:
        with np.load(path) as f:
            fields = {k: f[k] for k in f.files if k != "params"}
            params = json.loads(str(f["params"]))
        params.update(overrides)
        return cls(params=LifParams(**params), **fields)


def random_network(
    params: LifParams, seed: int, density: float = 0.5, extreme: bool = False, span: int = 0
) -> LifNetwork:
    """A random network covering every mode the build parameters allow.

    ``extreme`` draws parameters near the wrap and clamp edges (large weights, wide shifts, big biases).
    ``span > 0`` keeps each axon's targets within ``span`` consecutive neurons at a random offset
    (local connectivity, which keeps the packed weight memory small).
    """
    rng = np.random.default_rng(seed)
    p = params
    wmax = (1 << (p.W_BITS - 1)) - 1
    W = rng.integers(-wmax - 1, wmax + 1, size=(p.N_AX, p.N))
    mask = rng.random((p.N_AX, p.N)) < density
    if 0 < span < p.N:
        start = rng.integers(0, p.N - span + 1, size=(p.N_AX, 1))
        col = np.arange(p.N)[None, :]
        mask &= (col >= start) & (col < start + span)
    # Whole empty rows and empty group windows are part of what the RTL must handle.
    mask[rng.random(p.N_AX) < 0.1] = False
    W = np.where(mask, W, 0)
    n = p.N_PROF
    if p.DECAY == "shift":
        du = (1 << rng.integers(0, 13, n)) - 1
        dv_mul = np.where(rng.random(n) < 0.2, 0, 1 << rng.integers(0, 12, n))
    else:
        du = rng.integers(0, 4096, n)
        dv_mul = rng.integers(0, 4096, n)
    if not p.CUBA:
        du = np.full(n, 4095)
    leak = rng.integers(0, 2, n)
    dv = np.where(leak == LEAK_MUL, dv_mul, rng.integers(0, 64, n))
    vth_hi = (1 << 17) - 1 if extreme else 2048
    vth = rng.integers(0, vth_hi + 1, n)
    wexp = rng.integers(-8, 8, n) if extreme else rng.integers(-2, 4, n)
    bias_exp = rng.integers(0, 8, p.N) if extreme else rng.integers(0, 4, p.N)
    bias_mant = rng.integers(-4096, 4096, p.N) if extreme else rng.integers(-300, 600, p.N)
    return LifNetwork(
        params=p,
        W=W,
        du=du,
        dv=dv,
        vth=vth,
        wexp=wexp,
        leak=leak,
        reset=rng.integers(0, 2, n),
        cmp=rng.integers(0, 2, n),
        ref=rng.integers(0, 1 << p.REF_BITS, n),
        emit=np.where(rng.random(n) < 0.8, 1, 0),
        prof=rng.integers(0, n, p.N),
        bias_mant=bias_mant,
        bias_exp=bias_exp,
    )


# --------------------------------------------------------------------------------------------------
# Packing (spec §3.2)


def pack(net: LifNetwork) -> dict:
    """Trim each weight row to its nonzero group window and concatenate the windows.

    Returns ``base``, ``g0``, ``len`` (per axon), ``wmem`` (``words x P`` weights) and ``words``.
    """
    p = net.params
    G, P = p.G, p.P
    Wp = np.zeros((p.N_AX, G * P), dtype=np.int64)
    Wp[:, : p.N] = net.W
    groups = Wp.reshape(p.N_AX, G, P)
    nz = np.any(groups != 0, axis=2)
    base = np.zeros(p.N_AX, dtype=np.int64)
    g0 = np.zeros(p.N_AX, dtype=np.int64)
    ln = np.zeros(p.N_AX, dtype=np.int64)
    words = []
    off = 0
    for a in range(p.N_AX):
        idx = np.flatnonzero(nz[a])
        if idx.size == 0:
            continue
        g0[a], ln[a], base[a] = idx[0], idx[-1] - idx[0] + 1, off
        words.append(groups[a, idx[0] : idx[-1] + 1])
        off += int(ln[a])
    wmem = np.concatenate(words) if words else np.zeros((0, P), dtype=np.int64)
    return {"base": base, "g0": g0, "len": ln, "wmem": wmem, "words": off}


def unpack(packed: dict, params: LifParams) -> np.ndarray:
    """Invert :func:`pack`: the ``N_AX x N`` weight matrix."""
    p = params
    Wp = np.zeros((p.N_AX, p.G, p.P), dtype=np.int64)
    for a in range(p.N_AX):
        b, g, n = int(packed["base"][a]), int(packed["g0"][a]), int(packed["len"][a])
        Wp[a, g : g + n] = packed["wmem"][b : b + n]
    return Wp.reshape(p.N_AX, p.G * p.P)[:, : p.N]


# --------------------------------------------------------------------------------------------------
# Neuron update (spec §2.3)


def _wrap(x: np.ndarray, bits: int) -> np.ndarray:
    half = 1 << (bits - 1)
    return ((x + half) & ((1 << bits) - 1)) - half


def rtz12(x: np.ndarray) -> np.ndarray:
    """``x / 4096`` truncated toward zero."""
    return (x + np.where(x < 0, 4095, 0)) >> 12


def shift_decay(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``x - ((x + [x>=0](2^k-1)) >>> k)``: the multiplier-free decay of ``DECAY=shift``."""
    k = np.asarray(k, dtype=np.int64)
    return x - ((x + np.where(x >= 0, (1 << k) - 1, 0)) >> k)


def fold_u(u1: np.ndarray) -> np.ndarray:
    return np.where(u1 > U_MAX, u1 - (1 << 24), np.where(u1 <= -U_MAX, u1 + (1 << 24), u1))


def update(net: LifNetwork, acc, u, v, ref):
    """One TICK update of every neuron. Returns ``(u', v', ref', s)``."""
    p = net.params
    pr = net.prof
    du, dv, vth, wexp = net.du[pr], net.dv[pr], net.vth[pr], net.wexp[pr]
    leak, reset, cmp, refp = net.leak[pr], net.reset[pr], net.cmp[pr], net.ref[pr]
    a = np.asarray(acc, dtype=np.int64)
    a = np.where(wexp >= 0, a << np.maximum(wexp, 0), a >> np.maximum(-wexp, 0))
    a = np.clip(a, A_MIN, A_MAX)
    if p.CUBA:
        u1 = rtz12(u * (4095 - du)) + (a << 6)
        un = fold_u(u1)
    else:
        un = a << 6
    L = dv << 6
    v_lin = np.where(v > L, v - L, np.where(v < -L, v + L, 0))
    v_mul = rtz12(v * (4096 - dv))
    vd = np.where(leak == LEAK_MUL, v_mul, v_lin)
    v1 = np.clip(vd + un + (net.bias_mant << net.bias_exp), -V_MAX, V_MAX)
    theta = vth << 6
    fire = np.where(cmp == CMP_GT, v1 > theta, v1 >= theta)
    in_ref = ref > 0
    s = fire & ~in_ref
    vn = np.where(in_ref, 0, np.where(s, np.where(reset == RESET_ZERO, 0, v1 - theta), v1))
    refn = np.where(in_ref, ref - 1, np.where(s, refp, 0))
    return un, vn, refn, s


@dataclass
class LifResult:
    """What the core produced: ``out`` is ``(k, 2)`` ``[kind, addr]``; traces are ``(ticks, N)``."""

    out: np.ndarray
    u: np.ndarray
    v: np.ndarray
    ref: np.ndarray
    s: np.ndarray
    ext_events: int = 0
    loop_events: int = 0
    clears: int = 0
    words: int = 0
    effective_acs: int = 0
    timeline: list = field(default_factory=list)

    @property
    def ticks(self) -> int:
        return self.v.shape[0]


class LifModel:
    """Executes ``ev_in`` commands in order (spec §2.1) and records ``ev_out`` and the state per TICK."""

    def __init__(self, net: LifNetwork):
        self.net = net
        self.p = net.params
        self.packed = pack(net)
        self.clear()

    def clear(self) -> None:
        n = self.p.N
        self.acc = np.zeros(n, dtype=np.int64)
        self.u = np.zeros(n, dtype=np.int64)
        self.v = np.zeros(n, dtype=np.int64)
        self.ref = np.zeros(n, dtype=np.int64)
        self.lam = np.zeros(0, dtype=np.int64)

    def run(self, events: np.ndarray) -> LifResult:
        """Run ``events`` (``(k, 2)`` array of ``[kind, addr]``) from the current state."""
        p, net, ln = self.p, self.net, self.packed["len"]
        events = np.asarray(events, dtype=np.int64).reshape(-1, 2)
        out, us, vs, refs, ss, timeline = [], [], [], [], [], []
        ext = loop = words = acs = clears = 0
        pending: list[int] = []

        nnz = np.count_nonzero(net.W, axis=1)

        def integrate(axons: list[int]) -> None:
            if axons:
                idx = np.asarray(axons, dtype=np.int64)
                self.acc = _wrap(self.acc + net.W[idx].sum(axis=0), p.ACC_BITS)

        for kind, addr in events:
            if kind == SPIKE:
                ext += 1
                cost = max(1, int(ln[addr])) if addr < p.N_AX else 1
                if addr < p.N_AX:
                    # Words and synaptic operations are spent on arrival, even if a CLEAR follows.
                    pending.append(int(addr))
                    words += int(ln[addr])
                    acs += int(nnz[addr])
                timeline.append(("ext", cost))
            elif kind == TICK:
                integrate(pending)
                pending = []
                loop_ids = [p.N_EXT + int(m) for m in self.lam]
                loop += len(loop_ids)
                lam_words = int(ln[loop_ids].sum()) if loop_ids else 0
                words += lam_words
                acs += int(nnz[loop_ids].sum()) if loop_ids else 0
                integrate(loop_ids)
                self.u, self.v, self.ref, s = update(net, self.acc, self.u, self.v, self.ref)
                self.acc[:] = 0
                emitted = np.flatnonzero(s & (net.emit[net.prof] == 1))
                for n in emitted:
                    out.append((OUT_SPIKE, int(n)))
                groups, counts = np.unique(emitted // p.P, return_counts=True)
                timeline.append(("tick", lam_words, list(zip(groups.tolist(), counts.tolist(), strict=True))))
                out.append((OUT_TICK, 0))
                self.lam = np.flatnonzero(s) if p.LOOPBACK else np.zeros(0, dtype=np.int64)
                us.append(self.u.copy())
                vs.append(self.v.copy())
                refs.append(self.ref.copy())
                ss.append(s.astype(np.int64))
            elif kind == CLEAR:
                clears += 1
                timeline.append(("clear",))
                pending = []
                self.clear()
            else:
                timeline.append(("ext", 1))
        integrate(pending)
        # Events after the last TICK stay in acc, as they would in the RTL.
        shape = (len(us), p.N)
        return LifResult(
            out=np.asarray(out, dtype=np.int64).reshape(-1, 2),
            u=np.asarray(us, dtype=np.int64).reshape(shape),
            v=np.asarray(vs, dtype=np.int64).reshape(shape),
            ref=np.asarray(refs, dtype=np.int64).reshape(shape),
            s=np.asarray(ss, dtype=np.int64).reshape(shape),
            ext_events=ext,
            loop_events=loop,
            clears=clears,
            words=words,
            effective_acs=acs,
            timeline=timeline,
        )


# --------------------------------------------------------------------------------------------------
# Cycle model (spec §4)

#: Timing constants of the RTL's control (cycles), pinned by the cosim cycle tests.
#: START: first ``ev_in`` beat to the core's first action, plus the ``ev_out`` FIFO latency.
START_LATENCY = 4
#: WORK: integrate-pipeline fill and drain (S1, issue, I2) of a step that integrated anything.
INTEGRATE_DRAIN = 2
#: IDLE: a TICK at the head of ``ev_in`` to the first sweep cycle (TICK seen, Λ empty).
TICK_START = 2
#: TAIL: last sweep issue to the TICK marker, the update lanes' latency and the write-back.
TICK_TAIL = 7
#: WAIT: a marker leaving to the next sweep, when the next TICK was waiting for it.
TICK_WAIT = 2
#: ARRIVE: a group's issue to its spikes reaching the output serializer.
EMIT_ARRIVE = 10
#: Cycles of a CLEAR beyond its sweep over the ``G * P / Q`` state words.
CLEAR_OVERHEAD = 2
#: The fixed per-TICK overhead D when steps do not overlap (spec target D <= 10).
TICK_OVERHEAD = TICK_START + TICK_TAIL


def cycles(result: LifResult, params: LifParams) -> int:
    """Cycles from the first ``ev_in`` beat to the last TICK marker, with no back-pressure (spec §4).

    The integrate front end costs ``max(1, len_a)`` per external event (a dropped event or a NOP
    costs one) and ``len`` per loopback event; the sweep ``G * P / Q``. The sweep's tail (update
    lanes, write-back, spike serializer, TICK marker) overlaps the next step's integration, and
    the next sweep starts only after the marker has left. Per step without overlap this is
    ``sum + G * P / Q + TICK_OVERHEAD`` (+ ``INTEGRATE_DRAIN`` if the step integrated anything).
    """
    gb, beats = params.G * params.beats, params.beats
    t = START_LATENCY
    marker = None  # cycle at which the last TICK marker has left
    work = 0
    for entry in result.timeline:
        if entry[0] == "ext":
            t += entry[1]
            work = INTEGRATE_DRAIN
        elif entry[0] == "clear":
            t += work
            if marker is not None:
                t = max(t, marker + 1)
            t += gb + CLEAR_OVERHEAD
            work = 0
        else:
            _, loop_words, emits = entry
            work = INTEGRATE_DRAIN if (work or loop_words) else 0
            start = t + TICK_START
            if marker is not None:
                start = max(start, marker + TICK_WAIT)
            start += loop_words + work
            end = start + gb + 1  # the last group leaves U1
            ser = 0
            for g, k in emits:
                ser = max(ser, start + g * beats + EMIT_ARRIVE) + k
            marker = max(end + TICK_TAIL, ser + 1)
            t, work = end, 0
    return marker if marker is not None else t


# --------------------------------------------------------------------------------------------------
# Float reference (spec §2.5)


def lif_float(net: LifNetwork, a_steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float64 reference in input units (integers / 64), no wrap and no clamp.

    ``a_steps`` is ``(T, N)`` of scaled input ``a`` per step. Returns ``(v, s)`` of shape ``(T, N)``.
    """
    pr = net.prof
    du, dv, vth = net.du[pr] / 1.0, net.dv[pr] / 1.0, net.vth[pr] / 1.0
    leak, reset, cmp, refp = net.leak[pr], net.reset[pr], net.cmp[pr], net.ref[pr]
    bias = (net.bias_mant << net.bias_exp) / 64.0
    n = net.params.N
    u = np.zeros(n)
    v = np.zeros(n)
    ref = np.zeros(n, dtype=np.int64)
    vs, ss = [], []
    for a in np.asarray(a_steps, dtype=np.float64):
        u = (1 - (du + 1) / 4096) * u + a if net.params.CUBA else a
        v_mul = (1 - dv / 4096) * v
        v_lin = np.sign(v) * np.maximum(np.abs(v) - dv, 0)
        v1 = np.where(leak == LEAK_MUL, v_mul, v_lin) + u + bias
        fire = np.where(cmp == CMP_GT, v1 > vth, v1 >= vth)
        in_ref = ref > 0
        s = fire & ~in_ref
        v = np.where(in_ref, 0.0, np.where(s, np.where(reset == RESET_ZERO, 0.0, v1 - vth), v1))
        ref = np.where(in_ref, ref - 1, np.where(s, refp, 0))
        vs.append(v.copy())
        ss.append(s.astype(np.int64))
    return np.asarray(vs), np.asarray(ss)
