"""Bit-exact golden model of the ``fusemax`` block (spec ``fusemax.md`` §2), its float references and
its cycle model.

One attention head ``AV = softmax(alpha Q K^T) V`` on int8 inputs, computed one epoch of ``R`` keys at a
time with a running integer maximum (log2 units), shift-only corrections of the running sums and one
deferred division per output (FuseMax's 1-pass cascade). :func:`attention_int` is what the RTL computes,
bit for bit; :func:`attention_float` is the ideal the error figures are taken against, and the 3-pass
and 1-pass float cascades show the reformulation is exact before any rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .ints import ceil_log2

EXP2_METHODS = ("lut", "ipoly3", "ipoly2")
# "column": a restoring divider per column, all in lock-step; "shared": one for every column in
# turn (C times the division time for about 1/C of the dividers' LUTs, for small FPGAs)
DIVIDERS = ("column", "shared")
# How a PE shifts S Cs right by SH: "barrel", a two-stage shifter (one cycle); "serial", one shift
# register per PE stepping by 8 then by 1 (SCALE_STEPS cycles, a quarter of the LUTs, for small FPGAs)
SCALE_SHIFTS = ("barrel", "serial")
SCALE_STEPS = 5 + 7  # SH <= 47: at most five steps by 8, then at most seven by 1
# Where exp2 runs: "pe", a ROM and rounding shifter in every PE; "column", one per column taking
# its R rows in turn (R - 1 more cycles, 1/R of the block RAMs)
EXP2_UNITS = ("pe", "column")
# "array": the spec's R x C PEs with scaling and exp2 in every PE and a correction unit per column;
# "compact": multiply-accumulate-only PEs with one softmax unit, corr_units correction units and one
# divider for the array (U 0.39 / 0.66 / 0.76 with 1 / 2 / 4 correction units at 2 x 4, E = F = 64),
# for FPGAs too small for the array
ARCHS = ("array", "compact")
MUL_STEPS = 16  # the compact softmax unit multiplies S by Cs one bit of Cs per cycle
D_MAX = 63  # numpy shifts by >= 64 are undefined; any clamp >= the RNV width gives the same bits


# -- build parameters ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FusemaxParams:
    """Build parameters of one array (spec §2.1). ``check()`` raises ``ValueError`` naming the first
    illegal one."""

    R: int = 8
    C: int = 8
    E: int = 64
    F: int = 64
    M_MAX: int = 4096
    P_MAX: int = 4096
    FB: int = 8
    PW: int = 16
    OB: int = 0
    exp2: str = "lut"
    interleave: bool = True
    divider: str = "column"
    scale_shift: str = "barrel"
    exp2_unit: str = "pe"
    # per-column and per-PE copies of control registers kept apart for routing (large arrays);
    # False lets synthesis merge them and drop their unused bits (small FPGAs, fewer flip-flops)
    keep_copies: bool = True
    arch: str = "array"
    corr_units: int = 1  # compact: read-modify-write units, each updating a column per PV slot

    def check(self) -> FusemaxParams:
        for name, lo, hi in (
            ("R", 1, 64),
            ("C", 1, 64),
            ("E", 1, 256),
            ("F", 1, 256),
            ("M_MAX", 1, 65536),
            ("P_MAX", 1, 65536),
            ("OB", 0, 8),
        ):
            v = getattr(self, name)
            if not lo <= v <= hi:
                raise ValueError(f"{name} = {v} is outside {lo}..{hi}")
        if self.exp2 not in EXP2_METHODS:
            raise ValueError(f"exp2 = {self.exp2!r}: use one of {', '.join(EXP2_METHODS)}")
        if self.divider not in DIVIDERS:
            raise ValueError(f"divider = {self.divider!r}: use one of {', '.join(DIVIDERS)}")
        if self.scale_shift not in SCALE_SHIFTS:
            raise ValueError(f"scale_shift = {self.scale_shift!r}: use one of {', '.join(SCALE_SHIFTS)}")
        if self.exp2_unit not in EXP2_UNITS:
            raise ValueError(f"exp2_unit = {self.exp2_unit!r}: use one of {', '.join(EXP2_UNITS)}")
        if self.arch not in ARCHS:
            raise ValueError(f"arch = {self.arch!r}: use one of {', '.join(ARCHS)}")
        if self.arch == "array" and self.corr_units != 1:
            raise ValueError(f"corr_units = {self.corr_units} is an option of arch 'compact': leave it at 1")
        if not (1 <= self.corr_units <= self.C and self.C % self.corr_units == 0):
            raise ValueError(f"corr_units = {self.corr_units} must divide C = {self.C}")
        if self.arch == "compact":
            array_only = {"interleave": True, "divider": "column", "scale_shift": "barrel", "exp2_unit": "pe"}
            for name, value in array_only.items():
                if getattr(self, name) != value:
                    raise ValueError(
                        f"{name} = {getattr(self, name)!r} is an option of arch 'array'; arch 'compact' "
                        f"has one schedule and one shared unit of each kind: leave {name} at {value!r}"
                    )
        if self.exp2 == "lut":
            if not 4 <= self.FB <= 10:
                raise ValueError(f"FB = {self.FB} is outside 4..10 for exp2 'lut'")
            if not 8 <= self.PW <= 18:
                raise ValueError(f"PW = {self.PW} is outside 8..18 for exp2 'lut'")
        elif (self.FB, self.PW) != (8, 16):
            raise ValueError(
                f"exp2 {self.exp2!r} is defined for FB = 8, PW = 16 only (got FB {self.FB}, PW {self.PW})"
            )
        return self

    # derived widths (§2.4)
    @property
    def XW(self) -> int:
        return self.FB + 8

    @property
    def W_S(self) -> int:
        return 16 + ceil_log2(self.E)

    @property
    def W_RD(self) -> int:
        return self.PW + ceil_log2(self.M_MAX + 1)

    @property
    def W_RNV(self) -> int:
        return self.PW + 8 + ceil_log2(self.M_MAX + 1)

    @property
    def timing(self) -> Timing:
        return Timing.of(self)


# -- exp2 and the host-side scale ----------------------------------------------------------------


def exp2_table(FB: int = 8, PW: int = 16, method: str = "lut") -> np.ndarray:
    """``T[f] ~ 2^(f / 2^FB) * 2^(PW-1)`` for f in [0, 2^FB) (spec §2.3); the RTL ROM's contents."""
    f = np.arange(1 << FB, dtype=np.int64)
    if method == "lut":
        # With FB > PW the top entries round to 2^PW, one bit more than the ROM holds. They are only
        # met with s >= 1, where 2^PW - 1 rounds to the same p, so they are clamped to it.
        T = np.round(np.exp2(f / (1 << FB)) * (1 << (PW - 1))).astype(np.int64)
        return np.minimum(T, (1 << PW) - 1)
    if (FB, PW) != (8, 16):
        raise ValueError(f"exp2 {method!r} is defined for FB = 8, PW = 16 only")
    if method == "ipoly3":
        return 32768 + ((f * (22733 + ((f * (7637 + ((2376 * f) >> 8))) >> 8))) >> 8)
    if method == "ipoly2":
        return 32768 + ((f * (22337 + ((10013 * f) >> 8))) >> 8)
    raise ValueError(f"exp2 = {method!r}: use one of {', '.join(EXP2_METHODS)}")


def choose_scale(sq: float, sk: float, alpha: float, FB: int = 8) -> tuple[int, int]:
    """``(Cs, SH)`` with ``Cs / 2^(SH+FB) ~ sq sk alpha log2(e)``, Cs < 2^16 and SH as large as
    possible (spec §2.2, host side)."""
    c = sq * sk * alpha * math.log2(math.e)
    if not (math.isfinite(c) and c >= 0):
        raise ValueError(f"logit scale sq*sk*alpha = {sq * sk * alpha} must be finite and >= 0")
    for SH in range(47, -1, -1):
        Cs = round(c * 2.0 ** (SH + FB))
        if Cs < 1 << 16:
            if Cs == 0 and c > 0:
                raise ValueError(f"logit scale {c:.3g} log2-units is too small for SH <= 47 at FB = {FB}")
            return int(Cs), SH
    raise ValueError(f"logit scale {c:.3g} log2-units is too large for Cs < 2^16 at SH = 0, FB = {FB}")


def quantize(x: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-tensor symmetric int8: step = max|x| / 127, ``np.round``, clip to +-127."""
    m = float(np.max(np.abs(x))) if x.size else 0.0
    step = m / 127 if m > 0 else 1.0
    return np.clip(np.round(x / step), -127, 127).astype(np.int64), step


def check_inputs(
    Q: np.ndarray, K: np.ndarray, V: np.ndarray, E: int | None = None, F: int | None = None
) -> None:
    """Raise ``ValueError`` for Q/K/V of the wrong rank, shape, dtype or range (one line each)."""
    for name, a, width in (("Q", Q, E), ("K", K, E), ("V", V, F)):
        a = np.asarray(a)
        if not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{name} must hold integers (int8 codes), got dtype {a.dtype}")
        if a.ndim != 2:
            raise ValueError(f"{name} must be 2-D, got shape {a.shape}")
        if width is not None and a.shape[1] != width:
            raise ValueError(f"{name} has {a.shape[1]} columns, the array is built for {width}")
        if a.size and (a.min() < -128 or a.max() > 127):
            raise ValueError(f"{name} holds {int(a.min())}..{int(a.max())}, outside int8 -128..127")
    if np.asarray(Q).shape[1] != np.asarray(K).shape[1]:
        raise ValueError(
            f"Q and K must share E: Q has {np.asarray(Q).shape[1]} columns, K {np.asarray(K).shape[1]}"
        )
    if np.asarray(K).shape[0] != np.asarray(V).shape[0]:
        raise ValueError(
            f"K and V must share M: K has {np.asarray(K).shape[0]} rows, V {np.asarray(V).shape[0]}"
        )


# -- the integer algorithm (§2.2) ------------------------------------------------------------------


def attention_int(
    Q: np.ndarray,
    K: np.ndarray,
    V: np.ndarray,
    *,
    Cs: int,
    SH: int,
    R: int,
    FB: int = 8,
    PW: int = 16,
    OB: int = 0,
    exp2: str = "lut",
    debug: bool = False,
) -> np.ndarray:
    """``AV[P, F]`` (int64, scaled by 2^OB) exactly as the RTL with tile height ``R`` computes it.

    Vectorised over queries, a loop over epochs of ``R`` keys. ``debug`` asserts the width and
    bound claims of spec §2.4 after every step.
    """
    Q, K, V = (np.asarray(a, dtype=np.int64) for a in (Q, K, V))
    check_inputs(Q, K, V)
    if not 0 <= Cs < 1 << 16 or not 0 <= SH <= 47:
        raise ValueError(f"Cs = {Cs} must be in 0..65535 and SH = {SH} in 0..47")
    P, E = Q.shape
    M, F = V.shape
    if M == 0 or P == 0:
        return np.zeros((P, F), dtype=np.int64)
    T = exp2_table(FB, PW, exp2)
    XW = FB + 8
    S = Q @ K.T  # (P, M), exact
    x = np.clip((S * Cs) >> SH, -(1 << (XW - 1)), (1 << (XW - 1)) - 1)
    mask = (1 << FB) - 1
    r = RD = RNV = None
    for j in range(-(-M // R)):
        xs = x[:, j * R : (j + 1) * R]
        lm = xs.max(axis=1)
        l = -((-lm) >> FB)  # noqa: E741  (the spec's name)
        if j == 0:
            r, d = l, np.zeros(P, dtype=np.int64)
        else:
            r_new = np.maximum(r, l)
            d = np.minimum(r_new - r, D_MAX)
            r = r_new
        y = xs - (r << FB)[:, None]
        s = np.minimum(-(y >> FB), PW)
        p = np.where(s >= PW, 0, (T[y & mask] + ((1 << s) >> 1)) >> s)
        SLD = p.sum(axis=1)
        SLNV = p @ V[j * R : (j + 1) * R]
        if j == 0:
            RD, RNV = SLD, SLNV
        else:
            RD = (RD >> d) + SLD
            RNV = (RNV >> d[:, None]) + SLNV
        if debug:
            assert (y <= 0).all() and (p <= 1 << (PW - 1)).all()
            assert (RD >= 1 << (PW - 2)).all(), "RD fell below 2^(PW-2)"
            assert (np.abs(RNV) < 128 * RD[:, None] + 258).all()
    N = RNV << OB
    q = (np.abs(N) + (RD >> 1)[:, None]) // RD[:, None]
    if debug:
        assert (q < 1 << (9 + OB)).all()
    return np.clip(np.sign(N) * q, -128 << OB, 127 << OB)


def attention_int_3pass(
    Q: np.ndarray, K: np.ndarray, V: np.ndarray, *, Cs: int, SH: int, FB: int = 8, PW: int = 16, OB: int = 0,
    exp2: str = "lut",
) -> np.ndarray:  # fmt: skip
    """The same integer steps as one epoch over all keys (global max first): what :func:`attention_int`
    gives when ``R >= M`` (spec §2.4), written independently as a check."""
    Q, K, V = (np.asarray(a, dtype=np.int64) for a in (Q, K, V))
    T = exp2_table(FB, PW, exp2)
    x = np.clip((Q @ K.T * Cs) >> SH, -(1 << (FB + 7)), (1 << (FB + 7)) - 1)
    g = -((-x.max(axis=1)) >> FB)
    y = x - (g << FB)[:, None]
    s = np.minimum(-(y >> FB), PW)
    p = np.where(s >= PW, 0, (T[y & ((1 << FB) - 1)] + ((1 << s) >> 1)) >> s)
    N = (p @ V) << OB
    RD = p.sum(axis=1)[:, None]
    return np.clip(np.sign(N) * ((np.abs(N) + (RD >> 1)) // RD), -128 << OB, 127 << OB)


# -- float references --------------------------------------------------------------------------------


def attention_float(Qd: np.ndarray, Kd: np.ndarray, Vd: np.ndarray, alpha: float) -> np.ndarray:
    """``softmax_rows(alpha Qd Kd^T) Vd`` in float64: the ideal."""
    z = alpha * (np.asarray(Qd, float) @ np.asarray(Kd, float).T)
    z -= z.max(axis=1, keepdims=True)
    w = np.exp(z)
    return (w / w.sum(axis=1, keepdims=True)) @ np.asarray(Vd, float)


def cascade_3pass(Qd: np.ndarray, Kd: np.ndarray, Vd: np.ndarray, alpha: float) -> np.ndarray:
    """FLAT's 3-pass cascade (global max, then sums, then M*P divisions), float64."""
    QK = alpha * (np.asarray(Qd, float) @ np.asarray(Kd, float).T)
    GM = QK.max(axis=1, keepdims=True)
    SN = np.exp(QK - GM)
    SD = SN.sum(axis=1, keepdims=True)
    return (SN / SD) @ np.asarray(Vd, float)


def cascade_1pass(Qd: np.ndarray, Kd: np.ndarray, Vd: np.ndarray, alpha: float, R: int) -> np.ndarray:
    """FuseMax's 1-pass cascade over epochs of ``R`` keys (running max RM, denominator RD,
    numerator RNV, the division deferred to the end), float64."""
    Qd, Kd, Vd = (np.asarray(a, float) for a in (Qd, Kd, Vd))
    P, M = Qd.shape[0], Kd.shape[0]
    RM = np.full(P, -np.inf)
    RD = np.zeros(P)
    RNV = np.zeros((P, Vd.shape[1]))
    for m1 in range(-(-M // R)):
        QK = alpha * (Qd @ Kd[m1 * R : (m1 + 1) * R].T)
        RM_new = np.maximum(RM, QK.max(axis=1))
        SLN = np.exp(QK - RM_new[:, None])
        PRM = np.exp(RM - RM_new)
        RD = PRM * RD + SLN.sum(axis=1)
        RNV = PRM[:, None] * RNV + SLN @ Vd[m1 * R : (m1 + 1) * R]
        RM = RM_new
    return RNV / RD[:, None]


# -- cycle model (§4), mirroring hdl/fusemax.py ------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """Timing constants of the RTL (spec §3.3 names).

    ``K_OVH``: non-MAC cycles per epoch: two scale passes on the PE's one multiplier and the cycle
    before them in which the last QK product is added.
    ``EX``: cycles from exp2's start to the first PV slot that can use its p (ROM read, latch,
    rounding, shift; R - 1 more when a column's PEs share one exp2 unit). exp2 uses no
    multiplier and runs beside the slots: it starts when its epoch's running max is in the PEs.
    ``L_RM``: stages from the second scale slot to the new running max in the PEs (operand and
    product registers, sum, two shift stages or the load and SCALE_STEPS steps of the serial
    shift, saturation, max tree, integer ceil); exp2 starts ``L_RM + 1`` cycles after at the earliest.
    ``SC_GAP``: with the serial scale shift, cycles from one SC1 slot to the next at the least (the
    PE's shift register holds one epoch's product until its x is taken); 0: no such wait.
    ``L_RED``: stages from a PV slot to its RNV write (operand and product registers, add tree, two
    sum registers, while RNV is read, latched and shifted).
    ``T_DIV``: cycles per output beat (read, latch the block RAM's output, load, 9 + OB restoring
    steps, output); with one shared divider: the read, then per column latch, load, the steps and
    the lane's result, then the output.
    Operands and products are registered, so a QK product is added two cycles after its slot (SC1
    waits one cycle and takes the last sum as it is formed); PV f = 0 waits for p.
    """

    K_OVH: int
    L_RM: int
    L_RED: int
    T_DIV: int
    EX: int
    SC_GAP: int = 0
    T_HEAD: int = 1
    L_OUT: int = 1

    @classmethod
    def of(cls, p: FusemaxParams) -> Timing:
        if p.arch == "compact":
            # per epoch E QK slots, SW, C / corr_units (F + 1) PV slots; the softmax unit: capture, R C scores
            # through its multiply stage (one per MUL_STEPS + 1 cycles), the last one's shift stage,
            # two cycles for the last running max, R C exp2 reads and its five stages
            n = p.R * p.C
            return cls(
                K_OVH=1 + p.C // p.corr_units * (p.F + 1) - p.F,
                L_RM=12 + n * (MUL_STEPS + 2) + SCALE_STEPS,
                L_RED=3 + ceil_log2(p.R + 1),
                T_DIV=p.C * (9 + p.OB + 7) + 1,
                EX=4,
            )
        tree = ceil_log2(p.R)
        steps = 9 + p.OB
        t_div = steps + 4 if p.divider == "column" else 2 + p.C * (steps + 3)
        shift = SCALE_STEPS if p.scale_shift == "serial" else 0
        gap = shift + 1 if shift else 0
        ex = 4 + (p.R - 1 if p.exp2_unit == "column" else 0)
        return cls(K_OVH=3, L_RM=7 + tree + shift, L_RED=4 + tree, T_DIV=t_div, EX=ex, SC_GAP=gap)


def _check_runtime(M: int, P: int) -> None:
    if M < 0 or P < 0:
        raise ValueError(f"M = {M} and P = {P} must be >= 0")


def cycles(M: int, P: int, p: FusemaxParams) -> int:
    """``perf_busy`` of one job without back-pressure: cycles from the ``cfg`` handshake to the last
    ``o`` handshake, exactly (a step-by-step replay of the RTL's schedule, waits included)."""
    _check_runtime(M, P)
    if M == 0 or P == 0:
        return 0
    t = p.timing
    M1, P1 = -(-M // p.R), -(-P // p.C)
    D = p.F * t.T_DIV
    if p.arch == "compact":
        return _cycles_compact(M1, P1, p, t)
    div_idle = 0  # first cycle the divider can see a finished tile
    last = 0
    if not p.interleave:  # QK SC1 SC2, exp2, PV per epoch, each tile's division before the next
        now, pend, clear = 1, 0, 0
        for _ in range(P1):
            for j in range(M1):
                qk = max(now, pend, clear if j == 0 else 0)
                sc2 = qk + p.E + 2
                ex1 = sc2 + t.L_RM + 1
                last_pv = ex1 + t.EX + p.F - 1
                now, pend = last_pv + 1, last_pv + t.L_RED + 1
            t0 = max(pend, div_idle)
            last = t0 + D + 1
            div_idle = clear = last
        return last
    # interleaved: step g = QK(g) SC1(g) SC2(g) PV(g-1), with exp2(g-1) from the step's start
    G = M1 * P1
    now = 1
    bank_clear = [0, 0]
    ready = 0  # cycle the back epoch's running max is in the PEs
    sc1 = -t.SC_GAP  # the last SC1 slot
    for g in range(G + 1):
        front, back = g < G, g >= 1
        if back:
            tile, j = divmod(g - 1, M1)
            ex1 = max(now, ready, bank_clear[tile & 1] if j == 0 else 0)
        if front:
            sc1 = max(now + p.E + 1, sc1 + t.SC_GAP)
            now = sc1 + 2
            ready = sc1 + 1 + t.L_RM + 1
        if back:
            last_pv = max(now, ex1 + t.EX) + p.F - 1
            now = last_pv + 1
            if j == M1 - 1:
                t0 = max(last_pv + t.L_RED + 1, div_idle)
                last = t0 + D + 1
                bank_clear[tile & 1] = div_idle = last
    return last


def _cycles_compact(M1: int, P1: int, p: FusemaxParams, t: Timing) -> int:
    """The compact microarchitecture's frames ``QK(g) SW PV(g-1)``: SW waits for the softmax unit
    (busy ``L_RM`` cycles from the SW that started it) and, for a tile's first epoch, for its memory
    bank (free when the division of the tile before the last ends)."""
    G = M1 * P1
    now, free = 1, 0
    bank_free, div_idle = [0, 0], 0
    npv = p.C // p.corr_units * (p.F + 1)
    for g in range(G + 1):
        if g < G:
            now += p.E
        tile, j = divmod(g - 1, M1)
        sw = max(now, free, bank_free[tile & 1] if g >= 1 and j == 0 else 0)
        if g < G:
            free = sw + t.L_RM
        now = sw + 1
        if g >= 1:
            now += npv
            if j == M1 - 1:  # its last RNV write, then the division of every (f, c)
                div_idle = max(now + t.L_RED, div_idle) + 1 + p.F * t.T_DIV
                bank_free[tile & 1] = div_idle
    return div_idle


def cycles_formula(M: int, P: int, p: FusemaxParams) -> int | None:
    """Closed form of :func:`cycles` when nothing waits but the last epoch (each tile's F divisions
    end before the next tile's last PV slot, roughly ``F T_DIV < M1 W``, and
    ``E >= L_RM + EX - 3``); else None.

    Interleaved: ``P1 M1 W + 2 + EX + L_RED + F T_DIV + wait`` with ``W = E + F + K_OVH``
    and the last epoch's wait for its running max ``max(0, L_RM - F)`` (``L_RM`` when there is
    one epoch); serial:
    ``1 + P1 (M1 (E + F + L_RM + L_RED + 3 + EX) + F T_DIV + 1)``.
    """
    if M == 0 or P == 0:
        return 0
    if p.arch == "compact":
        return None
    t = p.timing
    M1, P1 = -(-M // p.R), -(-P // p.C)
    D = p.F * t.T_DIV
    if not p.interleave:
        return 1 + P1 * (M1 * (p.E + p.F + t.L_RM + t.L_RED + 3 + t.EX) + D + 1)
    W = p.E + p.F + t.K_OVH
    G = P1 * M1
    ex = t.EX - 3  # exp2 cycles not hidden behind the scale slots
    # The last epoch waits for its running max (no next QK to hide behind); the first one would
    # when E < L_RM + ex (no PV before the second step's QK): left to the replay.
    wait = t.L_RM if G == 1 else max(0, t.L_RM - p.F)
    # The last tile has no next epoch's QK in its final step, so it ends sooner than a full step.
    if (P1 > 1 and D + 1 > (M1 - 1) * W + p.F + 3 + wait) or (G > 1 and p.E < t.L_RM + ex):
        return None
    return G * W + 5 + ex + t.L_RED + D + wait


def t_ideal(M: int, P: int, p: FusemaxParams) -> float:
    """Physical limit: one MAC per PE per cycle."""
    return P * M * (p.E + p.F) / (p.R * p.C)


def fusemax_cycles(M: int, P: int, p: FusemaxParams) -> int:
    """FuseMax's own analytical model at the same R, C (artifact ``proposal.py``, spec §4)."""
    M1, P1, E, F = -(-M // p.R), -(-P // p.C), p.E, p.F
    return P1 * (max((E + 1) * M1, (F + 1) * M1 + F) + M1 + 8 * M1 + F * M1)


def mac_cycles(M: int, P: int, p: FusemaxParams) -> int:
    """``perf_mac``: slots that issue a QK or PV step."""
    return -(-P // p.C) * -(-M // p.R) * (p.E + p.F) if M and P else 0


# -- stream beats (spec §3.2) ---------------------------------------------------------------------


def job_beats(
    Q: np.ndarray, K: np.ndarray, V: np.ndarray, p: FusemaxParams, rng: np.random.Generator | None = None
) -> dict[str, np.ndarray]:
    """The ``q``, ``k``, ``v`` beats of one job (rows of lanes) in stream order. Padding lanes (queries
    >= P, keys >= M) carry random int8 from ``rng`` (zeros without one): they must not matter."""
    Q, K, V = (np.asarray(a, dtype=np.int64) for a in (Q, K, V))
    P, M = Q.shape[0], K.shape[0]
    if M == 0 or P == 0:
        return {n: np.zeros((0, w), dtype=np.int64) for n, w in (("q", p.C), ("k", p.R), ("v", p.R))}
    M1, P1 = -(-M // p.R), -(-P // p.C)

    def padded(a: np.ndarray, rows: int) -> np.ndarray:
        out = (
            rng.integers(-128, 128, (rows, a.shape[1]))
            if rng is not None
            else np.zeros((rows, a.shape[1]), np.int64)
        )
        out[: len(a)] = a
        return out

    Qp, Kp, Vp = padded(Q, P1 * p.C), padded(K, M1 * p.R), padded(V, M1 * p.R)
    q = Qp.reshape(P1, p.C, p.E).transpose(0, 2, 1).reshape(-1, p.C)  # tile t, beat e, lane c
    kt = Kp.reshape(M1, p.R, p.E).transpose(0, 2, 1)  # epoch j, beat e, lane r
    vt = Vp.reshape(M1, p.R, p.F).transpose(0, 2, 1)
    if rng is not None:  # K and V are re-streamed per tile: fresh garbage in padding each time
        k = np.concatenate(
            [padded(K, M1 * p.R).reshape(M1, p.R, p.E).transpose(0, 2, 1).reshape(-1, p.R) for _ in range(P1)]
        )
        v = np.concatenate(
            [padded(V, M1 * p.R).reshape(M1, p.R, p.F).transpose(0, 2, 1).reshape(-1, p.R) for _ in range(P1)]
        )
    else:
        k = np.tile(kt.reshape(-1, p.R), (P1, 1))
        v = np.tile(vt.reshape(-1, p.R), (P1, 1))
    return {"q": q, "k": k, "v": v}


def out_beats(AV: np.ndarray, M: int, p: FusemaxParams) -> np.ndarray:
    """The ``o`` beats of one job over ``M`` keys: tile t, beat f, lane c = AV[tC + c, f]; padding
    lanes 0; none when M = 0 or P = 0."""
    P, F = AV.shape
    if P == 0 or M == 0:
        return np.zeros((0, p.C), dtype=np.int64)
    P1 = -(-P // p.C)
    out = np.zeros((P1 * p.C, F), dtype=np.int64)
    out[:P] = AV
    return out.reshape(P1, p.C, F).transpose(0, 2, 1).reshape(-1, p.C)


# -- accuracy regression (§5) -----------------------------------------------------------------------

SEEDS = (1000, 1001, 1002, 1003)
TEMPS = (0.5, 1, 2, 3, 4, 6, 8, 12)


def accuracy_sweep(
    M: int,
    *,
    R: int = 8,
    FB: int = 8,
    PW: int = 16,
    OB: int = 8,
    exp2: str = "lut",
    seeds: tuple[int, ...] = SEEDS,
    temps: tuple[float, ...] = TEMPS,
    P: int = 32,
    E: int = 64,
) -> tuple[float, float, float]:
    """Worst max |e| and worst RMS e in V-LSB over the spec's seed and temperature sweep, and the
    fraction of outputs equal to the correctly rounded float result (meaningful at OB = 0).

    ``Q = t N(0,1)`` (t is the temperature), ``K``, ``V`` standard normal, per-tensor int8,
    alpha = 1/sqrt(E); the error is against float attention on the same int8 inputs."""
    worst = rms = 0.0
    exact = total = 0
    for seed in seeds:
        for t in temps:
            rng = np.random.default_rng(seed)
            Q, sq = quantize(t * rng.standard_normal((P, E)))
            K, sk = quantize(rng.standard_normal((M, E)))
            V, sv = quantize(rng.standard_normal((M, E)))
            alpha = 1 / math.sqrt(E)
            Cs, SH = choose_scale(sq, sk, alpha, FB)
            AV = attention_int(Q, K, V, Cs=Cs, SH=SH, R=R, FB=FB, PW=PW, OB=OB, exp2=exp2)
            ref = attention_float(Q * sq, K * sk, V * sv, alpha) / sv
            e = AV / (1 << OB) - ref
            worst = max(worst, float(np.abs(e).max()))
            rms = max(rms, float(np.sqrt(np.mean(e**2))))
            exact += int((AV == np.sign(ref * (1 << OB)) * np.floor(np.abs(ref * (1 << OB)) + 0.5)).sum())
            total += AV.size
    return worst, rms, exact / total
