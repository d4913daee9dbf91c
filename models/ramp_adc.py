"""Bit-exact golden model of the ``ramp_adc`` block (spec ``ramp_adc.md`` §2), its tables and its
float reference.

A pre-distorted ramp makes a single-slope ADC's latched count equal a quantised f(MAC). The model has
three layers: :func:`ideal_codes` (the ideal quantised target y*(s), float64 in the normative order),
:func:`build_table` (breakpoints t, codes c, increments d and bias, exhaustively over every input
code), and :class:`RampBank` (the programming state of every group and the integer conversion rule the
RTL must match). Everything after table construction is int64.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .ints import ceil_log2, signed  # noqa: F401  (part of this model's API)

THRESHOLD, INCREMENT = "threshold", "increment"
CFG_RAMP, CFG_CODE, CFG_LEN, CFG_BIAS = 0, 1, 2, 3
TIE_EPS = 1e-9

_erf = np.frompyfunc(math.erf, 1, 1)


def _gelu(x: np.ndarray) -> np.ndarray:
    return x * 0.5 * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))


#: name -> (f, in_range, out_range): the defaults of spec §2.5.
FUNCTIONS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], tuple[float, float], tuple[float, float]]] = {
    "sigmoid": (lambda x: 1.0 / (1.0 + np.exp(-x)), (-8.0, 8.0), (0.0, 1.0)),
    "tanh": (np.tanh, (-4.0, 4.0), (-1.0, 1.0)),
    "gelu": (_gelu, (-4.0, 4.0), (-0.17, 4.0)),
    "silu": (lambda x: x / (1.0 + np.exp(-x)), (-4.0, 4.0), (-0.28, 4.0)),
    "softplus": (lambda x: np.log1p(np.exp(x)), (-4.0, 4.0), (0.0, 4.02)),
    "relu6": (lambda x: np.clip(x, 0.0, 6.0), (-8.0, 8.0), (0.0, 6.0)),
    "exp": (np.exp, (-8.0, 0.0), (0.0, 1.0)),
}


def code_range(B_in: int) -> tuple[int, int]:
    return -(1 << (B_in - 1)), (1 << (B_in - 1)) - 1


# -- function specs and the ideal target (§2.2-2.3) ----------------------------------------------


@dataclass(frozen=True)
class FunctionSpec:
    """What a table approximates: ``f`` is a registry name, a vectorised float64 callable, or an int
    array of 2^B_in output codes indexed by s - s_min (then it is y* itself)."""

    f: str | Callable | np.ndarray
    in_range: tuple[float, float] | None = None
    out_range: tuple[float, float] | None = None
    rounding: str = "nearest"
    form: str = "codeseq"
    name: str = ""

    def resolved(self) -> FunctionSpec:
        """Registry defaults filled in; checks that do not need the widths."""
        f, lo_hi, out, name = self.f, self.in_range, self.out_range, self.name
        if isinstance(f, str):
            if f not in FUNCTIONS:
                raise ValueError(f"function {f!r} is not one of {', '.join(FUNCTIONS)}")
            name = name or f
            fn, d_in, d_out = FUNCTIONS[f]
            lo_hi, out = lo_hi or d_in, out or d_out
        elif not (callable(f) or isinstance(f, np.ndarray)):
            raise ValueError("f must be a function name, a callable or an int array of codes")
        lo_hi = tuple(float(x) for x in (lo_hi or (-8.0, 8.0)))
        out = tuple(float(x) for x in (out or (0.0, 1.0)))
        if not (np.isfinite(lo_hi).all() and lo_hi[0] < lo_hi[1]):
            raise ValueError(f"in_range {lo_hi} must be two finite numbers, low < high")
        if not (np.isfinite(out).all() and out[0] < out[1]):
            raise ValueError(f"out_range {out} must be two finite numbers, low < high")
        if self.rounding not in ("nearest", "floor"):
            raise ValueError(f"rounding {self.rounding!r} is not one of nearest, floor")
        if self.form not in ("codeseq", "counter"):
            raise ValueError(f"form {self.form!r} is not one of codeseq, counter")
        return FunctionSpec(f, lo_hi, out, self.rounding, self.form, name or "custom")


def inputs_real(spec: FunctionSpec, B_in: int) -> np.ndarray:
    """u(s) = mid + s*q for every input code, s_min first."""
    lo, hi = spec.in_range
    mid, q = (lo + hi) / 2, (hi - lo) / 2**B_in
    s_min, s_max = code_range(B_in)
    return mid + np.arange(s_min, s_max + 1, dtype=np.int64) * q


def real_to_code(x: np.ndarray, in_range: tuple[float, float], B_in: int) -> np.ndarray:
    """The stimulus quantiser of §2.2: ``clip(floor((x - mid)/q + 0.5), s_min, s_max)``."""
    lo, hi = in_range
    mid, q = (lo + hi) / 2, (hi - lo) / 2**B_in
    s_min, s_max = code_range(B_in)
    return np.clip(np.floor((np.asarray(x, dtype=np.float64) - mid) / q + 0.5), s_min, s_max).astype(np.int64)


def levels(spec: FunctionSpec, N: int, y: np.ndarray) -> np.ndarray:
    """L(y): the real value an output code stands for."""
    y_min, y_max = spec.out_range
    return y_min + np.asarray(y, dtype=np.float64) * (y_max - y_min) / (2**N - 1)


def reference(spec: FunctionSpec, B_in: int) -> np.ndarray:
    """The float reference f(u(s)) for every input code (NaN for a code-array spec)."""
    if isinstance(spec.f, np.ndarray):
        return np.full(2**B_in, np.nan)
    fn = FUNCTIONS[spec.f][0] if isinstance(spec.f, str) else spec.f
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        r = np.asarray(fn(inputs_real(spec, B_in)), dtype=np.float64)
    if r.shape != (2**B_in,):
        raise ValueError(
            f"{spec.name}: f returned shape {r.shape} for {2**B_in} inputs; f must be vectorised"
        )
    if not np.isfinite(r).all():
        bad = int(np.flatnonzero(~np.isfinite(r))[0])
        raise ValueError(f"{spec.name}: f is not finite at input code {bad + code_range(B_in)[0]}")
    return r


@dataclass
class Ideal:
    y: np.ndarray  # y*(s), s_min first
    ties: list[int]  # input codes whose v lies on a rounding boundary
    ref: np.ndarray  # f(u(s))


def ideal_codes(spec: FunctionSpec, B_in: int, N: int, allow_clip: bool = False) -> Ideal:
    spec = spec.resolved()
    top = 2**N - 1
    s_min = code_range(B_in)[0]
    if isinstance(spec.f, np.ndarray):
        y = np.asarray(spec.f)
        if y.shape != (2**B_in,) or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"{spec.name}: a code table needs {2**B_in} integers, got {y.dtype} {y.shape}")
        if y.min() < 0 or y.max() > top:
            bad = int(np.flatnonzero((y < 0) | (y > top))[0])
            raise ValueError(f"{spec.name}: code {int(y[bad])} at index {bad} is outside 0..{top} (N={N})")
        return Ideal(y.astype(np.int64), [], reference(spec, B_in))
    ref = reference(spec, B_in)
    y_min, y_max = spec.out_range
    v = (ref - y_min) * top / (y_max - y_min)  # multiply before divide (normative)
    if not allow_clip and (v.min() < -0.5 or v.max() > top + 0.5):
        i = int(np.argmax((v < -0.5) | (v > top + 0.5)))
        raise ValueError(
            f"{spec.name}: f = {ref[i]:.6g} at input code {i + s_min} lies outside out_range "
            f"{spec.out_range}; widen out_range or set allow_clip"
        )
    if spec.rounding == "nearest":
        w = v + 0.5
        y = np.floor(w)
    else:
        w = v
        y = np.floor(v)
    ties = [int(i) + s_min for i in np.flatnonzero(np.abs(w - np.round(w)) < TIE_EPS)]
    return Ideal(np.clip(y, 0, top).astype(np.int64), ties, ref)


def error_lsb(spec: FunctionSpec, B_in: int, N: int, y: np.ndarray) -> np.ndarray:
    """e(s) = (L(y) - f(u(s))) / Δy for every input code."""
    spec = spec.resolved()
    y_min, y_max = spec.out_range
    return (levels(spec, N, y) - reference(spec, B_in)) / ((y_max - y_min) / (2**N - 1))


# -- tables (§2.4) --------------------------------------------------------------------------------


@dataclass
class Table:
    """One group's ramp: breakpoints ``t``, codes ``c``, and the increment form ``bias``/``d``."""

    name: str
    B_in: int
    N: int
    form: str
    rounding: str
    in_range: tuple[float, float]
    out_range: tuple[float, float]
    t: list[int]
    c: list[int]
    bias: int
    d: list[int]
    ties: list[int] = field(default_factory=list)
    merged_error: float = 0.0

    @property
    def K(self) -> int:
        return len(self.t)

    def spec(self) -> FunctionSpec:
        return FunctionSpec(self.name, self.in_range, self.out_range, self.rounding, self.form, self.name)

    def codes(self) -> np.ndarray:
        """The table's output for every input code (the vectorised last-j rule)."""
        return last_j(np.arange(*_span(self.B_in)), np.asarray(self.t), np.asarray(self.c))

    def to_json(self) -> str:
        d = asdict(self)
        d["K"] = self.K
        return json.dumps(d, indent=1) + "\n"

    @classmethod
    def load(cls, path: str | Path) -> Table:
        d = json.loads(Path(path).read_text())
        d.pop("K", None)
        d["in_range"], d["out_range"] = tuple(d["in_range"]), tuple(d["out_range"])
        return cls(**d)


def _span(B_in: int) -> tuple[int, int]:
    s_min, s_max = code_range(B_in)
    return s_min, s_max + 1


def segments(y: np.ndarray, s_min: int) -> tuple[list[int], list[int]]:
    """Code-sequence form: a breakpoint wherever y* changes."""
    starts = [0, *(np.flatnonzero(np.diff(y)) + 1).tolist()]
    return [s_min + i for i in starts], [int(y[i]) for i in starts]


def counter_form(y: np.ndarray, s_min: int, N: int) -> tuple[list[int], list[int]]:
    if (np.diff(y) < 0).any():
        raise ValueError("the counter form needs a non-decreasing function; use form 'codeseq'")
    sentinel = s_min + len(y)
    t = [s_min] + [int(s_min + np.argmax(y >= k)) if (y >= k).any() else sentinel for k in range(1, 2**N)]
    return t, list(range(2**N))


def increments(t: list[int]) -> tuple[int, list[int]]:
    return t[0], [0] + [b - a for a, b in zip(t, t[1:], strict=False)]


def build_table(
    spec: FunctionSpec | str,
    B_in: int = 8,
    N: int = 5,
    *,
    K_max: int | None = None,
    w_d: int | None = None,
    merge: bool = False,
    allow_clip: bool = False,
) -> Table:
    """The table of a function at the given widths, exhaustively over every input code."""
    spec = (FunctionSpec(spec) if isinstance(spec, str) else spec).resolved()
    K_max = K_max or default_k_max(B_in, N)
    w_d = w_d or B_in + 1
    s_min = code_range(B_in)[0]
    ideal = ideal_codes(spec, B_in, N, allow_clip)
    y = ideal.y
    merged_error = 0.0
    if spec.form == "counter":
        t, c = counter_form(y, s_min, N)
    else:
        t, c = segments(y, s_min)
        if len(t) > K_max and merge:
            y = merge_segments(y, K_max)
            t, c = segments(y, s_min)
            merged_error = float(np.abs(y - ideal.y).max())
    if len(t) > K_max:
        raise ValueError(
            f"{spec.name} needs K = {len(t)} table entries at B_in={B_in}, N={N}, more than K_max = {K_max} "
            "(raise K_max or set merge)"
        )
    if any(b < a for a, b in zip(t, t[1:], strict=False)):
        raise AssertionError("breakpoints must not decrease")  # construction invariant
    bias, d = increments(t)
    if max(d) >= 2**w_d:
        raise ValueError(
            f"{spec.name}: increment {max(d)} does not fit w_d = {w_d} bits (needs {max(d).bit_length()})"
        )
    return Table(
        spec.name, B_in, N, spec.form, spec.rounding, spec.in_range, spec.out_range, t, c, bias, d,
        ideal.ties, merged_error,
    )  # fmt: skip


def merge_segments(y: np.ndarray, K_max: int) -> np.ndarray:
    """Join the shortest constant segment into a neighbour until at most K_max remain."""
    y = y.copy()
    while True:
        starts = [0, *(np.flatnonzero(np.diff(y)) + 1).tolist(), len(y)]
        if len(starts) - 1 <= K_max:
            return y
        lengths = np.diff(starts)
        i = int(np.argmin(lengths))
        a, b = starts[i], starts[i + 1]
        y[a:b] = y[a - 1] if i > 0 else y[b]


def default_k_max(B_in: int, N: int) -> int:
    return min(2 ** (N + 1), 2**B_in)


# -- the conversion rule and the programming state (§2.6) -----------------------------------------


def last_j(s: np.ndarray, R: np.ndarray, c: np.ndarray) -> np.ndarray:
    """y = c[J], J the last j with s >= R[j]; 0 where there is none. Any R, monotone or not."""
    s = np.asarray(s, dtype=np.int64)
    if len(R) == 0:
        return np.zeros_like(s)
    ge = s[..., None] >= R
    any_ge = ge.any(-1)
    J = len(R) - 1 - np.argmax(ge[..., ::-1], axis=-1)
    return np.where(any_ge, np.asarray(c, dtype=np.int64)[J], 0)


@dataclass(frozen=True)
class RampParams:
    """Build parameters (spec §2.1). ``K_max = 0`` and ``w_d = 0`` mean the defaults."""

    B_in: int = 8
    N: int = 5
    C: int = 16
    G: int = 1
    groups: tuple[int, ...] = ()
    K_max: int = 0
    mode: str = THRESHOLD
    code_source: str = "table"
    w_d: int = 0
    writable: bool = True
    in_reg: bool = True
    pipe: int = 0

    def __post_init__(self):
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ValueError(msg)

        need(4 <= self.B_in <= 16, f"B_in = {self.B_in} must lie in 4..16")
        need(1 <= self.N <= min(self.B_in, 10), f"N = {self.N} must lie in 1..min(B_in, 10)")
        need(1 <= self.C <= 256, f"C = {self.C} must lie in 1..256")
        need(1 <= self.G <= 8, f"G = {self.G} must lie in 1..8")
        if not self.groups:
            object.__setattr__(self, "groups", (0,) * self.C)
        object.__setattr__(self, "groups", tuple(int(g) for g in self.groups))
        need(len(self.groups) == self.C, f"groups has {len(self.groups)} entries for C = {self.C} columns")
        need(all(0 <= g < self.G for g in self.groups), f"groups entries must lie in 0..{self.G - 1}")
        need(self.mode in (THRESHOLD, INCREMENT), f"mode {self.mode!r} is not threshold or increment")
        need(
            self.code_source in ("table", "counter"),
            f"code_source {self.code_source!r} is not table or counter",
        )
        if self.code_source == "counter":
            need(self.K_max in (0, 2**self.N), f"K_max = {self.K_max}: code_source counter fixes K_max = 2^N")
            object.__setattr__(self, "K_max", 2**self.N)
        elif not self.K_max:
            object.__setattr__(self, "K_max", default_k_max(self.B_in, self.N))
        need(2 <= self.K_max <= 2**self.B_in, f"K_max = {self.K_max} must lie in 2..2^B_in")
        if not self.w_d:
            object.__setattr__(self, "w_d", self.B_in + 1)
        need(1 <= self.w_d <= self.B_in + 1, f"w_d = {self.w_d} must lie in 1..B_in+1")
        need(0 <= self.pipe <= 2, f"pipe = {self.pipe} must lie in 0..2")

    @property
    def s_min(self) -> int:
        return code_range(self.B_in)[0]

    @property
    def s_max(self) -> int:
        return code_range(self.B_in)[1]

    @property
    def group_bits(self) -> int:
        return max(1, ceil_log2(self.G))

    @property
    def addr_bits(self) -> int:
        return max(1, ceil_log2(self.K_max))

    @property
    def overhead(self) -> int:
        """Cycles from i.valid (all idle) to o.valid beyond K_run (spec §4)."""
        return 2 + self.pipe + (self.mode == INCREMENT)


class RampBank:
    """The programming state of every group (ramp and code memories, lengths, biases) and the
    conversion rule. ``write`` is the ``cfg`` port; ``convert`` converts rows of C input codes."""

    def __init__(self, params: RampParams, tables: list[Table], arch: str = "ramp", lut_style: str = "logic"):
        # arch names the hardware that realises the bank (the ramp, or a lookup-table baseline, whose
        # tables synthesis puts in logic or block RAM per lut_style): the conversion is the same,
        # only cycles and area differ.
        self.arch, self.lut_style = arch, lut_style
        p = self.params = params
        if len(tables) != p.G:
            raise ValueError(f"{len(tables)} tables for G = {p.G} groups")
        self.tables = tables
        pad_ramp = 0 if p.mode == INCREMENT else p.s_max + 1
        self.ramp = np.full((p.G, p.K_max), pad_ramp, dtype=np.int64)
        self.code = np.zeros((p.G, p.K_max), dtype=np.int64)
        self.length = np.ones(p.G, dtype=np.int64)
        self.bias = np.zeros(p.G, dtype=np.int64)
        for g, tb in enumerate(tables):
            if (tb.B_in, tb.N) != (p.B_in, p.N):
                raise ValueError(f"group {g}: table {tb.name} is for B_in={tb.B_in}, N={tb.N}")
            if tb.K > p.K_max:
                raise ValueError(f"group {g}: table {tb.name} has K = {tb.K} > K_max = {p.K_max}")
            if p.code_source == "counter" and tb.c != list(range(tb.K)):
                raise ValueError(f"group {g}: code_source counter needs a counter-form table (c_j = j)")
            if p.mode == INCREMENT:
                if max(tb.d) >= 2**p.w_d:
                    raise ValueError(
                        f"group {g}: increment {max(tb.d)} of {tb.name} does not fit w_d = {p.w_d}"
                    )
                self.ramp[g, : tb.K] = tb.d
                self.bias[g] = tb.bias
            else:
                self.ramp[g, : tb.K] = tb.t
            self.code[g, : tb.K] = tb.c
            self.length[g] = tb.K
        if p.code_source == "counter":
            self.code[:] = np.arange(p.K_max)

    def copy(self) -> RampBank:
        other = object.__new__(RampBank)
        other.params, other.tables = self.params, self.tables
        other.arch, other.lut_style = self.arch, self.lut_style
        for k in ("ramp", "code", "length", "bias"):
            setattr(other, k, getattr(self, k).copy())
        return other

    def check_write(self, kind: int, group: int, addr: int, data: int) -> None:
        """A user's write must name a slot that exists (the hardware ignores one that does not)."""
        p = self.params
        if not 0 <= kind <= 3:
            raise ValueError(f"cfg kind {kind} is not 0 (ramp), 1 (code), 2 (length) or 3 (bias)")
        if not 0 <= group < p.G:
            raise ValueError(f"cfg group {group} does not exist (G = {p.G})")
        if kind in (CFG_RAMP, CFG_CODE) and not 0 <= addr < p.K_max:
            raise ValueError(f"cfg addr {addr} does not exist (table slots 0..{p.K_max - 1})")
        lim = 1 << (p.B_in + 1)
        if not -lim <= data < lim:
            raise ValueError(f"cfg data {data} does not fit the signed {p.B_in + 2}-bit data field")

    def write(self, kind: int, group: int, addr: int, data: int) -> None:
        """One ``cfg`` beat (§2.6), fields as the port carries them."""
        p = self.params
        if group >= p.G:
            return
        if kind == CFG_RAMP and addr < p.K_max:
            self.ramp[group, addr] = (
                data & (2**p.w_d - 1) if p.mode == INCREMENT else signed(data, p.B_in + 1)
            )
        elif kind == CFG_CODE and addr < p.K_max and p.code_source == "table":
            self.code[group, addr] = data & (2**p.N - 1)
        elif kind == CFG_LEN:
            self.length[group] = min(max(signed(data, p.B_in + 2), 1), p.K_max)
        elif kind == CFG_BIAS and p.mode == INCREMENT:
            self.bias[group] = signed(data, p.B_in + 1)

    def ramps(self) -> np.ndarray:
        """R_g[j] for every group and step (exact integers; increment sums saturate at s_max + 1)."""
        p = self.params
        if p.mode == THRESHOLD:
            return self.ramp.copy()
        return np.minimum(self.bias[:, None] + np.cumsum(self.ramp, axis=1), p.s_max + 1)

    @property
    def k_run(self) -> int:
        return int(self.length.max())

    def convert(self, s: np.ndarray) -> np.ndarray:
        """Rows of C input codes to rows of C output codes (vectorised last-j rule)."""
        s = np.asarray(s, dtype=np.int64).reshape(-1, self.params.C)
        R = self.ramps()
        y = np.zeros_like(s)
        groups = np.asarray(self.params.groups)
        for g in range(self.params.G):
            cols = groups == g
            L = self.length[g]
            y[:, cols] = last_j(s[:, cols], R[g, :L], self.code[g, :L])
        return y

    def convert_loop(self, s: np.ndarray) -> np.ndarray:
        """The same, as the hardware's step loop: one step per clock, all columns at once."""
        s = np.asarray(s, dtype=np.int64).reshape(-1, self.params.C)
        R, groups = self.ramps(), np.asarray(self.params.groups)
        y = np.zeros_like(s)
        for j in range(self.k_run):
            act = j < self.length[groups]
            ge = s >= R[groups, min(j, self.params.K_max - 1)]
            y = np.where(act & ge, self.code[groups, min(j, self.params.K_max - 1)], y)
        return y

    def programmed(self, cfg: np.ndarray) -> RampBank:
        """A copy with every write of ``cfg`` (rows [before, kind, group, addr, data]) applied."""
        bank = self.copy()
        cfg = np.asarray(cfg, dtype=np.int64).reshape(-1, 5)
        for row in cfg[np.argsort(cfg[:, 0], kind="stable")]:
            bank.write(*(int(x) for x in row[1:]))
        return bank

    def run(self, inputs: np.ndarray, cfg: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Conversions interleaved with cfg writes: ``cfg`` rows are [before, kind, group, addr, data]
        and apply before conversion number ``before``. Returns the outputs and each conversion's
        K_run (its cycle count)."""
        inputs = np.asarray(inputs, dtype=np.int64).reshape(-1, self.params.C)
        cfg = np.zeros((0, 5), dtype=np.int64) if cfg is None else np.asarray(cfg, dtype=np.int64)
        bank = self.copy()
        out = np.zeros_like(inputs)
        k_run = np.zeros(len(inputs), dtype=np.int64)
        order = np.argsort(cfg[:, 0], kind="stable")
        cfg = cfg[order]
        w = 0
        # group conversions between writes so runs of conversions stay vectorised
        bounds = sorted({0, len(inputs), *(int(b) for b in cfg[:, 0] if b < len(inputs))})
        for a, b in zip(bounds, bounds[1:], strict=False):
            while w < len(cfg) and cfg[w, 0] <= a:
                bank.write(*(int(x) for x in cfg[w, 1:]))
                w += 1
            out[a:b] = bank.convert(inputs[a:b])
            k_run[a:b] = bank.k_run
        return out, k_run


# -- tables shipped with the package -------------------------------------------------------------

TABLE_DIR = Path(__file__).parent / "tables"


def shipped_table_path(name: str, B_in: int, N: int, form: str = "codeseq") -> Path:
    return TABLE_DIR / f"{name}_b{B_in}_n{N}_{form}.json"


def regenerate_tables(out_dir: Path = TABLE_DIR) -> list[Path]:
    """Every registry function at B_in=8, N=5 in both forms (monotone only for counter) as JSON."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in FUNCTIONS:
        for form in ("codeseq", "counter"):
            try:
                tb = build_table(FunctionSpec(name, form=form), 8, 5, K_max=64)
            except ValueError:
                continue  # the counter form of a non-monotone function does not exist
            path = out_dir / shipped_table_path(name, 8, 5, form).name
            path.write_text(tb.to_json())
            paths.append(path)
    return paths
