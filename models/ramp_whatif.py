"""What-if variation model of the ramp column (spec ``ramp_adc.md`` §2.7): model only, never in RTL.

The ramp is the running sum of programmed conductances, one device per step. This module perturbs
one group's ideal table with programming noise, a write-verify grid, stuck devices, read noise, gain
error, an offset, per-column comparator offsets and the bias calibration of the paper's five
calibration devices, converts every input code on every column, and reports the code errors. With
no read noise and no comparator offset the perturbed ramp is exported as an integer table that loads
into the RTL through ``cfg``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ramp_adc import Table, code_range, increments


@dataclass(frozen=True)
class Variation:
    """One variation condition. Fractions are of G_max (programming) or relative (read, gain)."""

    sigma_prog: float = 0.0
    levels: int | None = None
    p_off: float = 0.0
    p_on: float = 0.0
    sigma_read: float = 0.0
    gain: float = 1.0
    track_input: bool = True
    offset: float = 0.0
    sigma_cmp: float = 0.0
    calibrate: bool = False
    n_cal: int = 5
    cal_step: float = 1.0

    def __post_init__(self):
        for name in ("sigma_prog", "p_off", "p_on", "sigma_read", "sigma_cmp"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0):
                raise ValueError(f"{name} = {v} must be a finite number >= 0")
        if self.p_off + self.p_on > 1:
            raise ValueError("p_off + p_on must not exceed 1")
        if self.levels is not None and self.levels < 1:
            raise ValueError(f"levels = {self.levels} must be at least 1")
        if not (np.isfinite(self.gain) and self.gain > 0):
            raise ValueError(f"gain = {self.gain} must be a finite number > 0")


@dataclass
class Instance:
    """One perturbed ramp: its codes over every input code and column, and the comparison."""

    y: np.ndarray  # (2^B_in, columns)
    y_ideal: np.ndarray  # (2^B_in,)
    ramp: np.ndarray  # R~_j in input LSB, static part (no read noise)
    beta: float
    mean_abs: float
    p_err: float
    max_abs: int


def instance(
    table: Table, var: Variation, *, seed: int = 0, k: int = 0, group: int = 0, columns: int = 1
) -> Instance:
    """Instance ``k`` of a variation condition on one group's table (RNG key [seed, k, g, 0x52])."""
    rng = np.random.default_rng([seed, k, group, 0x52])
    K = table.K
    t = np.asarray(table.t, dtype=np.float64)
    d = np.asarray(table.d[1:], dtype=np.float64)
    d_max = d.max() if len(d) else 1.0
    prog = rng.standard_normal(K - 1)
    stuck = rng.random(K - 1)
    cmp = rng.standard_normal(columns)
    g = d / d_max
    if var.levels is not None:
        g = np.floor(g * var.levels + 0.5) / var.levels
    g = np.clip(g + var.sigma_prog * prog, 0.0, 1.0)
    g = np.where(stuck < var.p_off, 0.0, np.where(stuck < var.p_off + var.p_on, 1.0, g))
    s_min, s_max = code_range(table.B_in)
    s = np.arange(s_min, s_max + 1)
    y_ideal = table.codes()
    o = var.sigma_cmp * cmp

    def ramp_of(gains: np.ndarray) -> np.ndarray:
        r0 = t[0] - 0.5 + var.offset
        r = r0 + d_max * np.concatenate([[0.0], np.cumsum(np.maximum(0.0, gains))], axis=-1)
        return r if var.track_input else var.gain * r

    static = ramp_of(g)

    def convert(ramps: np.ndarray, beta: float) -> np.ndarray:
        # every column compares against the one ramp of this conversion, shifted by its offset
        thr = ramps[None, :] + o[:, None] + beta  # (columns, K)
        ge = s[:, None, None] >= thr
        J = K - 1 - np.argmax(ge[..., ::-1], axis=-1)
        return np.where(ge.any(-1), np.asarray(table.c)[J], 0)

    beta = 0.0
    if var.calibrate:
        half = 2 ** (var.n_cal - 1)
        cands = sorted(range(-half, half), key=lambda x: (abs(x), x))
        errs = [np.abs(convert(static, var.cal_step * x) - y_ideal[:, None]).mean() for x in cands]
        beta = var.cal_step * cands[int(np.argmin(errs))]
    if var.sigma_read > 0:
        # one conversion: every code meets the same noisy ramp (the spec's prototype convention)
        nu = rng.standard_normal(K - 1)
        y = convert(ramp_of(g * (1 + var.sigma_read * nu)), beta)
    else:
        y = convert(static, beta)
    delta = np.abs(y - y_ideal[:, None])
    return Instance(
        y, y_ideal, static, beta, float(delta.mean()), float((delta != 0).mean()), int(delta.max())
    )


def monte_carlo(
    table: Table, var: Variation, *, instances: int = 300, seed: int = 0, group: int = 0, columns: int = 1
) -> dict:
    """Mean over instances of mean |Δcode|, P(Δ ≠ 0) and max |Δcode| (spec §2.7 metrics)."""
    runs = [instance(table, var, seed=seed, k=k, group=group, columns=columns) for k in range(instances)]
    return {
        "mean_abs": float(np.mean([r.mean_abs for r in runs])),
        "p_err": float(np.mean([r.p_err for r in runs])),
        "max_abs": float(np.mean([r.max_abs for r in runs])),
        "instances": instances,
    }


def integer_export(table: Table, var: Variation, *, seed: int = 0, k: int = 0, group: int = 0) -> Table:
    """The perturbed ramp as an integer table: t'_j = clip(ceil(R~_j + β), s_min, s_max + 1), exact
    for integer inputs when there is no read noise and no comparator offset."""
    if var.sigma_read or var.sigma_cmp:
        raise ValueError("the integer export needs sigma_read = 0 and sigma_cmp = 0")
    inst = instance(table, var, seed=seed, k=k, group=group)
    s_min, s_max = code_range(table.B_in)
    t = np.clip(np.ceil(inst.ramp + inst.beta), s_min, s_max + 1).astype(np.int64).tolist()
    bias, d = increments(t)
    return Table(
        f"{table.name}~", table.B_in, table.N, table.form, table.rounding, table.in_range, table.out_range,
        t, list(table.c), bias, d,
    )  # fmt: skip
