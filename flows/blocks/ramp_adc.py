"""Registry entry of the ``ramp_adc`` block: schema, tables, stimulus and expected outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...models import ramp_adc as model
from ..config import Param
from ..errors import ConfigError
from ..registry import Block, register

ARCHS = ("ramp", "lut_column", "lut_shared")
MONOTONE = ["sigmoid", "tanh", "relu6", "softplus", "exp"]  # of model.FUNCTIONS
BUILD_KEYS = ("B_in", "N", "C", "G", "K_max", "mode", "code_source", "w_d", "writable", "in_reg", "pipe")


def parse_groups(text: str, C: int, G: int) -> tuple[int, ...]:
    """``interleave`` (column k in group k mod G), ``blocks`` (G equal runs), or a list with
    repeats such as ``0*64,1*32,0*32``."""
    if text == "interleave":
        return tuple(k % G for k in range(C))
    if text == "blocks":
        return tuple(k * G // C for k in range(C))
    out: list[int] = []
    for item in text.split(","):
        g, _, n = item.strip().partition("*")
        try:
            out += [int(g)] * (int(n) if n else 1)
        except ValueError:
            raise ValueError(f"groups: {item!r} is not 'g' or 'g*count'") from None
    return tuple(out)


def function_spec(item: str, params: dict) -> model.FunctionSpec | model.Table:
    """One entry of ``functions``: a registry name, a table JSON, a function-spec JSON or a .npy
    array of 2^B_in output codes."""
    form = "counter" if params["code_source"] == "counter" else params["form"]
    if item in model.FUNCTIONS:
        return model.FunctionSpec(item, rounding=params["rounding"], form=form)
    path = Path(item)
    if path.suffix not in (".json", ".npy"):
        known = ", ".join(model.FUNCTIONS)
        raise ValueError(f"function {item!r} is not one of {known}, nor a .json or .npy table file")
    if not path.is_file():
        raise ValueError(f"no such table file {item!r}")
    if path.suffix == ".npy":
        try:
            codes = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise ValueError(f"{item}: not a readable .npy array ({e})") from None
        if codes.dtype.kind not in "iu":
            finite = codes.dtype.kind != "f" or np.isfinite(codes).all()
            raise ValueError(
                f"{item}: a code table holds integer output codes, got {codes.dtype}"
                + ("" if finite else " with non-finite values")
            )
        return model.FunctionSpec(
            codes.astype(np.int64), rounding=params["rounding"], form=form, name=path.stem
        )
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{item}: not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{item}: expected a JSON object (a table or a function spec)")
    if "t" in doc:
        try:
            return model.Table.load(path)
        except TypeError as e:
            raise ValueError(f"{item}: not a table file ({e})") from None
    unknown = set(doc) - {"f", "codes", "in_range", "out_range", "rounding", "name"}
    if unknown:
        raise ValueError(f"{item}: unknown key(s) {', '.join(sorted(unknown))}")
    f = doc.get("f")
    if "codes" in doc:
        codes = np.asarray(doc["codes"])
        if codes.dtype.kind not in "iu":
            raise ValueError(f"{item}: codes must be integers, got {codes.dtype}")
        f = codes.astype(np.int64)
    if f is None:
        raise ValueError(f"{item}: give 'f' (a function name) or 'codes'")
    return model.FunctionSpec(
        f,
        tuple(doc["in_range"]) if "in_range" in doc else None,
        tuple(doc["out_range"]) if "out_range" in doc else None,
        doc.get("rounding", params["rounding"]),
        form,
        doc.get("name", path.stem),
    )


class RampAdcBlock(Block):
    name = "ramp_adc"
    summary = "Ramp-ADC activation periphery: a pre-distorted ramp makes the ADC's code f(MAC); LUT baselines"
    testbench = "neurohdl.cosim.tb_ramp_adc"
    vectors_meaning = (
        "random conversions with random table rewrites, after the sweep of every input code on every column"
    )
    params = (
        Param("B_in", int, 8, "Input code width (signed)", 4, 16),
        Param("N", int, 5, "Output code width", 1, 10),
        Param("C", int, 16, "Columns converting in parallel", 1, 256),
        Param("G", int, 1, "Function groups (ramp columns)", 1, 8),
        Param(
            "groups", str, "interleave", "Column to group map: interleave, blocks, or a list like 0*64,1*32"
        ),
        Param(
            "functions",
            str,
            "sigmoid",
            "One function per group, comma-separated: "
            + ", ".join(model.FUNCTIONS)
            + ", or a table file (.json table or function spec, .npy codes)",
        ),
        Param("form", str, "codeseq", "Table form", choices=("codeseq", "counter")),
        Param("rounding", str, "nearest", "Output rounding", choices=("nearest", "floor")),
        Param("merge", bool, False, "Join the shortest segments when a table exceeds K_max"),
        Param("allow_clip", bool, False, "Allow f outside out_range (clipped codes)"),
        Param("K_max", int, 0, "Table depth per group; 0: min(2^(N+1), 2^B_in)", 0, 65536),
        Param(
            "mode",
            str,
            "threshold",
            "Ramp memory holds thresholds, or increments plus a bias",
            choices=("threshold", "increment"),
        ),  # fmt: skip
        Param(
            "code_source",
            str,
            "table",
            "Codes from a memory, or the step counter (K_max = 2^N)",
            choices=("table", "counter"),
        ),  # fmt: skip
        Param("w_d", int, 0, "Increment width; 0: B_in+1", 0, 17),
        Param("writable", bool, True, "cfg port: rewrite tables, lengths and biases at run time"),
        Param("in_reg", bool, True, "Capture the inputs (back-to-back conversions)"),
        Param("pipe", int, 0, "Extra broadcast register stages", 0, 2),
        Param("arch", str, "ramp", "NL-ADC, or a baseline: per-column or shared lookup table", choices=ARCHS),
        Param(
            "lut_style",
            str,
            "logic",
            "Where synthesis puts a baseline's lookup tables",
            choices=("logic", "block"),
        ),  # fmt: skip
    )
    stimulus_keys = {
        "inputs": (2, None, "int (n, C) signed input codes, one row per conversion"),
        "cfg": (
            2,
            (5,),
            "int (m, 5) rows [before, kind, group, addr, data]: a write before conversion 'before'",
        ),
    }
    dump_keys = {"out": "int (n, C) output codes per conversion"}

    def random_params(self, rng: np.random.Generator) -> dict:
        B_in = int(rng.integers(4, 13))
        N = int(rng.integers(1, min(B_in, 8) + 1))
        arch = str(rng.choice(["ramp", "ramp", "ramp", *ARCHS]))
        G = int(rng.integers(1, 5))
        # the counter form and a counter code source need non-decreasing functions
        form = str(rng.choice(["codeseq", "counter"]))
        counter = rng.random() < 0.2
        functions = MONOTONE if form == "counter" or counter else list(model.FUNCTIONS)
        params = {
            "B_in": B_in,
            "N": N,
            "C": int(rng.integers(G, 24)),
            "G": G,
            "groups": str(rng.choice(["interleave", "blocks"])),
            "functions": ",".join(rng.choice(functions, size=G)),
            "form": form,
            "rounding": str(rng.choice(["nearest", "floor"])),
            "merge": True,  # a narrow K_max may need it for non-monotone functions
            "mode": str(rng.choice(["threshold", "increment"])),
            "pipe": int(rng.integers(0, 3)),
            "in_reg": bool(rng.random() < 0.7),
            "arch": arch,
            "writable": arch == "ramp" and bool(rng.random() < 0.7),
            "lut_style": str(rng.choice(["logic", "block"])),
        }
        if counter:
            params["code_source"] = "counter"
        elif rng.random() < 0.3:
            params["K_max"] = int(rng.integers(2**N, min(2**B_in, 4 * 2**N) + 1))
        if params["mode"] == "increment" and rng.random() < 0.4:
            # the width an increment table needs depends on its function: a narrower one is dropped
            w_d = int(rng.integers(max(1, B_in - 3), B_in + 2))
            try:
                self.model({**self.defaults(), **params, "w_d": w_d})
                params["w_d"] = w_d
            except ConfigError:
                pass
        return params

    def check(self, params: dict) -> None:
        self._params(params)
        if params["arch"] != "ramp" and params["writable"]:
            raise ValueError(f"arch {params['arch']} is a read-only lookup table: set writable: false")

    def _params(self, params: dict) -> model.RampParams:
        groups = parse_groups(params["groups"], params["C"], params["G"])
        return model.RampParams(
            **{k: params[k] for k in BUILD_KEYS if k != "G"}, G=params["G"], groups=groups
        )

    def model(self, params: dict) -> model.RampBank:
        p = self._params(params)
        items = [x.strip() for x in params["functions"].split(",")]
        if len(items) != p.G:
            raise ConfigError(f"params.functions: {len(items)} function(s) for G = {p.G} groups")
        tables = []
        for g, item in enumerate(items):
            try:
                spec = function_spec(item, params)
                tb = spec if isinstance(spec, model.Table) else model.build_table(
                    spec, p.B_in, p.N, K_max=p.K_max, w_d=p.w_d, merge=params["merge"],
                    allow_clip=params["allow_clip"],
                )  # fmt: skip
                tables.append(tb)
            except ValueError as e:
                raise ConfigError(f"params.functions[{g}]: {e}") from None
        try:
            return model.RampBank(p, tables, params["arch"], params["lut_style"])
        except ValueError as e:
            raise ConfigError(f"params.functions: {e}") from None

    def rtl(self, bank: model.RampBank, *, sim: bool):
        arch = bank.arch
        if arch == "lut_column":
            from ...hdl.ramp_lut import LutColumns

            return LutColumns(bank)
        if arch == "lut_shared":
            from ...hdl.ramp_lut import LutShared

            return LutShared(bank)
        from ...hdl.ramp_adc import RampAdc

        return RampAdc(bank)

    def memory_styles(self, bank: model.RampBank, family: str) -> dict[str, str]:
        # A constant ramp table is a ROM in logic (the spec's measurement); a writable one may use
        # block RAM. The baselines' tables go where lut_style says.
        if bank.arch == "ramp":
            return {} if bank.params.writable else {f"table{g}": "logic" for g in range(bank.params.G)}
        style = "logic" if bank.lut_style == "logic" else "block"
        if bank.arch == "lut_shared":
            return {"lut": style}
        return {f"lut{k}": style for k in range(bank.params.C)}

    def stimulus(self, bank: model.RampBank, rng: np.random.Generator, vectors: int) -> dict:
        return random_stimulus(bank, rng, vectors, writes=bank.params.writable and bank.arch == "ramp")

    def expected(self, bank: model.RampBank, stim: dict) -> dict:
        out, _ = bank.run(stim["inputs"], stim["cfg"])
        # the testbench's reset test converts the last row again after a reset: tables survive it
        after = bank.programmed(stim["cfg"]).convert(stim["inputs"][-1:]) if len(out) else out
        return {"out": out, "after_reset": after}

    def cycle_model(self, bank: model.RampBank, stim: dict) -> int | None:
        if len(stim["cfg"]):
            return None
        _, k_run = bank.run(stim["inputs"])
        return stream_cycles(bank, k_run)

    anchors = (
        ("NL-ADC prototype, C=32, sigmoid, N=5", "87 LUT4+116 carry, 103 FF, 71.3 MHz UP5K; 140.7 MHz ECP5"),
        ("shared-LUT baseline, C=32", "320 LUT4, 86 FF, 30.8 MHz UP5K (spec)"),
    )

    def figures(self, quick: bool) -> list[tuple[str, str, str]]:
        from ..ramp_adc_tools import error_table

        return [
            (
                f"{r['function']}, B_in 8, N 5: error vs ideal quantised",
                f"max {r['max_abs_error_lsb']:.3f} LSB, rms {r['rms_error_lsb']:.3f}, "
                f"{r['code_mismatches']} codes off",
                "|e| <= 0.5 LSB, 0 codes off",
            )
            for r in error_table(8, 5, ["sigmoid", "tanh"] if quick else list(model.FUNCTIONS))
        ]

    def cycle_limit(self, bank: model.RampBank, stim: dict) -> tuple[float, str]:
        _, k_run = bank.run(stim["inputs"], stim["cfg"])
        return float(k_run.sum()), "K_run steps per conversion (one level per step)"

    def check_stimulus(self, stim: dict, bank: model.RampBank, source: str) -> None:
        super().check_stimulus(stim, bank, source)
        p = bank.params
        x, cfg = stim["inputs"], stim["cfg"]
        if x.shape[1] != p.C:
            raise ConfigError(f"{source}: 'inputs' must have shape (n, {p.C}), got {x.shape}")
        if x.size and (x.min() < p.s_min or x.max() > p.s_max):
            raise ConfigError(f"{source}: 'inputs' codes must lie in {p.s_min}..{p.s_max} (B_in = {p.B_in})")
        if len(cfg) and not (p.writable and bank.arch == "ramp"):
            raise ConfigError(f"{source}: 'cfg' has writes but this build has no cfg port (writable: false)")
        for r, (before, *fields) in enumerate(cfg.tolist()):
            if not 0 <= before <= len(x):
                raise ConfigError(f"{source}: cfg row {r}: 'before' {before} must lie in 0..{len(x)}")
            try:
                bank.check_write(*fields)
            except ValueError as e:
                raise ConfigError(f"{source}: cfg row {r}: {e}") from None

    def add_commands(self, sub) -> None:
        from ..ramp_adc_tools import add_commands

        add_commands(sub)

    def app(self, *, out_dir, sim: str, steps: list[int], limit: int | None, progress) -> dict:
        """The LSTM on digits (spec §5): float, ramp-ADC and noisy accuracies, and the RTL subset."""
        from .. import ramp_lstm

        return ramp_lstm.run(out_dir=out_dir, sim=sim, limit=limit, progress=progress)


def stream_cycles(bank: model.RampBank, k_run: np.ndarray) -> int:
    """Cycles from the first input handshake to the last output handshake with no back-pressure
    (the timing of each architecture; see the RTL docstrings)."""
    n = len(k_run)
    if n == 0:
        return 0
    p, arch = bank.params, bank.arch
    if arch == "lut_column":
        return n + 1
    if arch == "lut_shared":
        return (n - 1) * (p.C + 2) + 2
    ov = p.overhead
    if p.in_reg:
        return int(np.maximum(k_run[:-1], ov).sum() + k_run[-1] + 2)
    return int((k_run[:-1] + ov).sum() + k_run[-1] - k_run[0] + 2)


def sweep(p: model.RampParams, n: int) -> np.ndarray:
    """Conversion m, column k gets s_min + ((m + 37k) mod 2^B_in): every column sees every code."""
    m = np.arange(n)[:, None]
    k = np.arange(p.C)[None, :]
    return p.s_min + (m + 37 * k) % (1 << p.B_in)


def random_stimulus(bank: model.RampBank, rng: np.random.Generator, n_random: int, writes: bool) -> dict:
    """The sweep of every code on the initial tables, then random and edge codes, with (when the
    build is writable) random reprogramming before some conversions: whole functions (sigmoid ->
    GELU and friends), arbitrary non-monotone tables, random lengths and biases, and writes to slots
    that do not exist (which the hardware must ignore)."""
    p = bank.params
    full = 1 << p.B_in
    inputs = [sweep(p, full)]
    edges = np.array([p.s_min, p.s_min + 1, -1, 0, 1, p.s_max - 1, p.s_max])
    rand = rng.integers(p.s_min, p.s_max + 1, size=(n_random, p.C))
    edge_rows = rng.random(n_random) < 0.2
    rand[edge_rows] = rng.choice(edges, size=(int(edge_rows.sum()), p.C))
    inputs.append(rand)
    cfg: list[list[int]] = []
    if writes:
        for m in range(n_random):
            if rng.random() < 0.25:
                before = full + m
                cfg += [[before, *w] for w in random_writes(bank, rng)]
    return {
        "inputs": np.concatenate(inputs).astype(np.int64),
        "cfg": np.asarray(cfg, dtype=np.int64).reshape(-1, 5),
    }


def random_writes(bank: model.RampBank, rng: np.random.Generator) -> list[list[int]]:
    p = bank.params
    g = int(rng.integers(0, p.G))
    kind = rng.choice(["function", "arbitrary", "single"], p=[0.3, 0.3, 0.4])
    ramp_lo = 0 if p.mode == model.INCREMENT else -(1 << p.B_in)
    ramp_hi = (1 << p.w_d) if p.mode == model.INCREMENT else 1 << p.B_in
    if kind == "function":
        name = str(rng.choice(list(model.FUNCTIONS)))
        form = "counter" if p.code_source == "counter" else "codeseq"
        try:
            tb = model.build_table(model.FunctionSpec(name, form=form), p.B_in, p.N, K_max=p.K_max, w_d=p.w_d)
        except ValueError:
            return []
        ramp = tb.d if p.mode == model.INCREMENT else tb.t
        w = [[model.CFG_RAMP, g, j, r] for j, r in enumerate(ramp)]
        w += [[model.CFG_CODE, g, j, c] for j, c in enumerate(tb.c)]
        return w + [[model.CFG_LEN, g, 0, tb.K], [model.CFG_BIAS, g, 0, tb.bias]]
    if kind == "arbitrary":
        L = int(rng.integers(1, p.K_max + 1))
        w = [[model.CFG_RAMP, g, j, int(rng.integers(ramp_lo, ramp_hi))] for j in range(L)]
        w += [[model.CFG_CODE, g, j, int(rng.integers(0, 1 << p.N))] for j in range(L)]
        w += [[model.CFG_LEN, g, 0, L]]
        return w + [[model.CFG_BIAS, g, 0, int(rng.integers(-(1 << p.B_in), 1 << p.B_in))]]
    lim = 1 << (p.B_in + 1)
    return [
        [
            int(rng.integers(0, 4)),
            int(rng.integers(0, 1 << p.group_bits)),  # may name a group that does not exist
            int(rng.integers(0, 1 << p.addr_bits)),
            int(rng.integers(-lim, lim)),
        ]
        for _ in range(int(rng.integers(1, 4)))
    ]


register(RampAdcBlock())
