"""Registry entry of the ``fusemax`` block: a FuseMax-style attention array, its integer golden model
and its cycle model."""

from __future__ import annotations

from dataclasses import dataclass, fields
from types import SimpleNamespace

import numpy as np

from ...models import fusemax as model
from ..config import Param
from ..errors import ConfigError
from ..registry import Block, register

BUILD_KEYS = tuple(f.name for f in fields(model.FusemaxParams))

# The FPGA goals (spec §4): per target, the preset built there and the naive MAC-array baseline of the
# same size as the spec measured it.
FPGA_BASELINES = {
    "ice40-up5k": ("up5k", "2x4 (SB_MAC16)", "369 LC, 8 DSP, 62 MHz"),
    "ice40-hx8k": ("hx8k", "4x4 (LUT multipliers)", "3,088 LC (40 %), 70 MHz"),
    "ecp5-25k": ("ecp5_25k", "4x4", "1,230 LUT4, 470 FF, 15 MULT18X18D, 102 MHz"),
    "ecp5-85k": ("ecp5_85k", "8x8", "4,871 LUT4, 1,628 FF, 63 MULT18X18D, 79 MHz"),
}


@dataclass(frozen=True)
class FusemaxBuild:
    """The block's model object: the array's build parameters and the stimulus parameters."""

    fp: model.FusemaxParams
    params: SimpleNamespace


def split_jobs(stim: dict) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, int, int]]:
    """``(Q, K, V, Cs, SH)`` per row of ``jobs``; Q, K, V are the concatenations of all jobs' rows."""
    out, q0, k0 = [], 0, 0
    for M, P, Cs, SH in stim["jobs"].tolist():
        out.append((stim["Q"][q0 : q0 + P], stim["K"][k0 : k0 + M], stim["V"][k0 : k0 + M], Cs, SH))
        q0, k0 = q0 + P, k0 + M
    return out


class FusemaxBlock(Block):
    name = "fusemax"
    summary = "FuseMax-style attention array: one-pass online softmax, shift corrections, deferred division"
    testbench = "neurohdl.cosim.tb_fusemax"
    vectors_meaning = "attention jobs (the first of size M x P, then random sizes and corner cases)"
    lut_mapper = "abc"
    lut_mapper_why = "ABC9 maps each PE's variable scale shift to ~2.5x the LUT4s of classic ABC"
    demo_no_synth = (
        "the default 8x8 array fits neither demo target (it needs an ECP5-85F: "
        "neurohdl synth fusemax --preset default --target ecp5-85k; its routing takes over an hour here)"
    )
    params = (
        Param("R", int, 8, "Array rows: keys per epoch (the golden model depends on it)", 1, 64),
        Param("C", int, 8, "Array columns: queries per tile", 1, 64),
        Param("E", int, 64, "Q/K embedding", 1, 256),
        Param("F", int, 64, "V embedding", 1, 256),
        Param("M_MAX", int, 4096, "Largest runtime key count M", 1, 65536),
        Param("P_MAX", int, 4096, "Largest runtime query count P", 1, 65536),
        Param("FB", int, 8, "Fraction bits of log2 scores (lut: 4..10; ipoly*: 8)", 4, 10),
        Param("PW", int, 16, "Probability width, p <= 2^(PW-1) = 1.0 (lut: 8..18; ipoly*: 16)", 8, 18),
        Param("OB", int, 0, "Output fraction bits", 0, 8),
        Param("exp2", str, "lut", "2^frac generator (ROM contents)", choices=model.EXP2_METHODS),
        Param("interleave", bool, True, "Epoch-interleaved schedule (False: serial)"),
        Param("divider", str, "column", "Divider per column, or one 'shared' by all", choices=model.DIVIDERS),
        Param(
            "scale_shift",
            str,
            "barrel",
            "Scale shift by SH: a barrel shifter per PE, or a 'serial' shift register (12 cycles, less area)",
            choices=model.SCALE_SHIFTS,
        ),  # fmt: skip
        Param("exp2_unit", str, "pe", "exp2 ROM and shifter per PE or per column", choices=model.EXP2_UNITS),
        Param("keep_copies", bool, True, "Keep control copies per column apart (False: synthesis may merge)"),
        Param(
            "arch",
            str,
            "array",
            "'array' (the spec's PEs) or 'compact' (MAC-only PEs; shared softmax, correction, divider)",
            choices=model.ARCHS,
        ),  # fmt: skip
        Param(
            "corr_units",
            int,
            1,
            "compact: RNV/RD read-modify-write units (divides C; PV takes C / corr_units (F + 1) slots)",
            1,
            64,
        ),  # fmt: skip
        Param("M", int, 40, "Stimulus: keys of the first job", 0, 65536),
        Param("P", int, 12, "Stimulus: queries of the first job", 0, 65536),
        Param("t", float, 2.0, "Stimulus: temperature of Q (Q = t N(0,1), K, V = N(0,1), int8)", 0.0, 100.0),
    )
    stimulus_keys = {
        "jobs": (2, (4,), "int (n, 4) rows M, P, Cs, SH"),
        "Q": (2, None, "int (sum P, E) int8 queries of all jobs"),
        "K": (2, None, "int (sum M, E) int8 keys"),
        "V": (2, None, "int (sum M, F) int8 values"),
    }
    dump_keys = {"o": "int (beats, C) output lanes", "last": "int (beats,) last flags"}

    def random_params(self, rng: np.random.Generator) -> dict:
        """Spec §5's random configurations, with FB and PW drawn too for half the ``lut`` builds."""
        exp2 = str(rng.choice(model.EXP2_METHODS))
        widths = exp2 == "lut" and rng.random() < 0.5
        R, C = int(rng.choice([1, 2, 3, 4, 8])), int(rng.choice([1, 2, 3, 4]))
        M_MAX, P_MAX = 300, 40
        compact = rng.random() < 0.3  # one schedule, no array options
        return {
            "R": R,
            "C": C,
            "E": int(rng.choice([1, 2, 7, 16, 64])),
            "F": int(rng.choice([1, 3, 10, 64])),
            "M_MAX": M_MAX,
            "P_MAX": P_MAX,
            "FB": int(rng.integers(4, 11)) if widths else 8,
            "PW": int(rng.integers(8, 19)) if widths else 16,
            "OB": int(rng.choice([0, 8, int(rng.integers(1, 8))])),
            "exp2": exp2,
            "interleave": compact or bool(rng.random() < 0.6),
            "divider": "column" if compact else str(rng.choice(model.DIVIDERS)),
            "scale_shift": "barrel" if compact else str(rng.choice(model.SCALE_SHIFTS)),
            "exp2_unit": "pe" if compact else str(rng.choice(model.EXP2_UNITS)),
            "keep_copies": bool(rng.random() < 0.5),
            "arch": "compact" if compact else "array",
            "corr_units": int(rng.choice([u for u in range(1, C + 1) if C % u == 0])) if compact else 1,
            "M": int(rng.choice([1, max(1, R - 1), R, R + 1, int(rng.integers(1, M_MAX + 1))])),
            "P": int(rng.choice([1, max(1, C - 1), C + 1, int(rng.integers(1, P_MAX + 1))])),
            "t": float(rng.choice([0.5, 2.0, 8.0])),
        }

    def check(self, params: dict) -> None:
        self._fp(params).check()
        for k, lim in (("M", "M_MAX"), ("P", "P_MAX")):
            if params[k] > params[lim]:
                raise ValueError(f"{k} = {params[k]} exceeds {lim} = {params[lim]}")

    @staticmethod
    def _fp(params: dict) -> model.FusemaxParams:
        return model.FusemaxParams(**{k: params[k] for k in BUILD_KEYS})

    def model(self, params: dict) -> FusemaxBuild:
        return FusemaxBuild(self._fp(params).check(), SimpleNamespace(**params))

    def memory_styles(self, build: FusemaxBuild, family: str) -> dict[str, str]:
        # The Q buffer feeds every PE's multiplier; a DP16KD's slow output would sit in front of
        # the DSPs, a LUT RAM's output register does not.
        return {"qbuf": "distributed"} if family == "ecp5" else {}

    def rtl(self, build: FusemaxBuild, *, sim: bool):
        if build.fp.arch == "compact":
            from ...hdl.fusemax_compact import FusemaxCompact

            return FusemaxCompact(build.fp)
        from ...hdl.fusemax import FusemaxArray

        return FusemaxArray(build.fp)

    def stimulus(self, build: FusemaxBuild, rng: np.random.Generator, vectors: int) -> dict:
        p, s = build.fp, build.params
        jobs, Qs, Ks, Vs = [], [], [], []

        def add(M: int, P: int, t: float, Cs: int | None = None, SH: int | None = None, v=None) -> None:
            Q, sq = model.quantize(t * rng.standard_normal((P, p.E)))
            K, sk = model.quantize(rng.standard_normal((M, p.E)))
            V = model.quantize(rng.standard_normal((M, p.F)))[0] if v is None else np.full((M, p.F), v)
            if Cs is None:
                Cs, SH = model.choose_scale(sq, sk, 1 / np.sqrt(p.E), p.FB)
            jobs.append((M, P, Cs, SH))
            Qs.append(Q), Ks.append(K), Vs.append(V)

        add(s.M, s.P, s.t)
        corners = [
            lambda: add(1, min(p.C + 1, p.P_MAX), 1.0),  # M = 1: AV = V row exactly
            lambda: add(min(p.R - 1 or 1, p.M_MAX), 1, 3.0),  # M < R, P = 1
            lambda: add(min(p.R + 1, p.M_MAX), max(1, min(p.C - 1, p.P_MAX)), 2.0, v=-128),
            lambda: add(min(3 * p.R, p.M_MAX), min(p.C, p.P_MAX), 1.0, Cs=0, SH=0),  # uniform attention
            lambda: add(min(2 * p.R + 1, p.M_MAX), min(2, p.P_MAX), 4.0, Cs=65535, SH=0),  # x saturates
            lambda: add(0, min(3, p.P_MAX), 1.0),  # nothing consumed or emitted
            lambda: add(min(5, p.M_MAX), 0, 1.0),
        ]
        for i in range(1, vectors):
            if i <= len(corners):
                corners[i - 1]()
            else:
                M = int(rng.integers(1, min(p.M_MAX, 4 * p.R + 3) + 1))
                P = int(rng.integers(1, min(p.P_MAX, 2 * p.C + 1) + 1))
                t = float(rng.choice([0.5, 1, 2, 3, 4, 6, 8, 12]))
                if rng.random() < 0.3:
                    add(M, P, t, int(rng.integers(0, 1 << 16)), int(rng.integers(0, 48)))
                else:
                    add(M, P, t)
        return {
            "jobs": np.asarray(jobs, dtype=np.int64).reshape(-1, 4),
            "Q": np.concatenate(Qs).astype(np.int64).reshape(-1, p.E),
            "K": np.concatenate(Ks).astype(np.int64).reshape(-1, p.E),
            "V": np.concatenate(Vs).astype(np.int64).reshape(-1, p.F),
        }

    def expected(self, build: FusemaxBuild, stim: dict) -> dict:
        p = build.fp
        beats, lasts = [], []
        for Q, K, V, Cs, SH in split_jobs(stim):
            AV = model.attention_int(Q, K, V, Cs=Cs, SH=SH, R=p.R, FB=p.FB, PW=p.PW, OB=p.OB, exp2=p.exp2)
            o = model.out_beats(AV, len(K), p)
            beats.append(o)
            lasts.append(np.arange(len(o)) == len(o) - 1)
        return {
            "o": np.concatenate(beats).reshape(-1, p.C),
            "last": np.concatenate(lasts).astype(np.int64) if lasts else np.zeros(0, np.int64),
        }

    def check_stimulus(self, stim: dict, build: FusemaxBuild, source: str) -> None:
        super().check_stimulus(stim, build, source)
        p = build.fp
        jobs = stim["jobs"]
        M, P = jobs[:, 0], jobs[:, 1]
        for r, (m_, p_, cs, sh) in enumerate(jobs.tolist()):
            if not (0 <= m_ <= p.M_MAX and 0 <= p_ <= p.P_MAX):
                raise ConfigError(
                    f"{source}: job {r}: M = {m_}, P = {p_} must lie in 0..{p.M_MAX}, 0..{p.P_MAX}"
                )
            if not (0 <= cs < 1 << 16 and 0 <= sh <= 47):
                raise ConfigError(f"{source}: job {r}: Cs = {cs} must lie in 0..65535 and SH = {sh} in 0..47")
        if len(stim["Q"]) != P.sum() or len(stim["K"]) != M.sum() or len(stim["V"]) != M.sum():
            raise ConfigError(
                f"{source}: Q/K/V have {len(stim['Q'])}/{len(stim['K'])}/{len(stim['V'])} rows, "
                f"the jobs need {P.sum()}/{M.sum()}/{M.sum()}"
            )
        try:
            model.check_inputs(stim["Q"], stim["K"], stim["V"], p.E, p.F)
        except ValueError as e:
            raise ConfigError(f"{source}: {e}") from None

    def add_commands(self, sub) -> None:
        from ..fusemax_tools import add_commands

        add_commands(sub)

    def app(self, *, out_dir, sim: str, steps: list[int], limit: int | None, progress) -> dict:
        """The digits soft nearest-neighbour head (spec §5) at M = 64 .. 1437, RTL against the model."""
        from .. import fusemax_tools

        result = fusemax_tools.run_digits(sim=sim, limit=limit, out_dir=out_dir, progress=progress)
        result["markdown"] = fusemax_tools.digits_table(result)
        return result

    anchors = (("FuseMax MAC utilisation, 256x256, E=F=64", "0.831 (1K) -> 0.901 (4K) (spec)"),) + tuple(
        (f"baseline int8 MAC array, {target} {array}", f"{figures} (spec)")
        for target, (_, array, figures) in FPGA_BASELINES.items()
    )

    def figures(self, quick: bool) -> list[tuple[str, str, str]]:
        from ..fusemax_tools import error_table

        return [
            (
                f"error vs float attention, {r['config']}, M={r['M']}",
                f"{r['max_lsb']:.3f} / {r['rms_lsb']:.4f} LSB (max / rms)"
                if "max_lsb" in r
                else f"{100 * r['exact_fraction']:.2f} % correctly rounded",
                f"<= {r['must_max']} / {r['must_rms']}"
                if "max_lsb" in r
                else f">= {100 * r['must_min']:.1f} %",
            )
            for r in error_table(256 if quick else 4096)
        ]

    def cycle_limit(self, build: FusemaxBuild, stim: dict) -> tuple[float, str]:
        return sum(model.t_ideal(M, P, build.fp) for M, P, _, _ in stim["jobs"].tolist()), "P*M*(E+F)/(R*C)"

    def cycle_model(self, build: FusemaxBuild, stim: dict) -> int | None:
        """First handshake to last ``o`` handshake without back-pressure: each job's ``cycles()``
        plus its ``cfg`` cycle, up to the last job that emits anything."""
        jobs = stim["jobs"].tolist()
        emitting = [i for i, (M, P, _, _) in enumerate(jobs) if M and P]
        if not emitting:
            return None
        return sum(model.cycles(M, P, build.fp) + 1 for M, P, _, _ in jobs[: emitting[-1] + 1])


register(FusemaxBlock())
