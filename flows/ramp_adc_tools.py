"""Block commands of ``ramp_adc`` (``neurohdl ramp_adc <command>``): the error table, the timing
measured in RTL, the area comparison with the lookup baselines, the Monte Carlo what-if table, and
the shipped tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..models import ramp_adc as model
from ..models import ramp_whatif as whatif
from . import registry
from .errors import EXIT_MISMATCH, EXIT_OK, NeurohdlError
from .results import markdown_table, save_results

OUT = Path("build/ramp_adc")


def _save(name: str, result: dict, markdown: str) -> None:
    save_results(OUT, name, result, markdown)


# -- errors -------------------------------------------------------------------------------------


def error_table(B_in: int, N: int, functions: list[str], rounding: str = "nearest") -> list[dict]:
    """Per function: K, increments, max and RMS error in output LSB over every input code, and the
    code mismatches of the table's conversion against the ideal quantised target."""
    rows = []
    for name in functions:
        spec = model.FunctionSpec(name, rounding=rounding)
        tb = model.build_table(spec, B_in, N, K_max=2**B_in)
        y = tb.codes()
        e = model.error_lsb(tb.spec(), B_in, N, y)
        ideal = model.ideal_codes(spec, B_in, N)
        lo, hi = (-0.5 - 1e-9, 0.5 + 1e-9) if rounding == "nearest" else (-1.0, 1e-9)
        d = tb.d[1:]
        rows.append(
            {
                "function": name,
                "K": tb.K,
                "d_max": max(d) if d else 0,
                "d_min": min(d) if d else 0,
                "max_abs_error_lsb": float(np.abs(e).max()),
                "rms_error_lsb": float(np.sqrt((e**2).mean())),
                "code_mismatches": int((y != ideal.y).sum()),
                "ties": len(tb.ties),
                "passed": bool(((e > lo) & (e <= hi)).all() and (y == ideal.y).all()),
            }
        )
    return rows


def cmd_errors(args) -> int:
    names = args.function or list(model.FUNCTIONS)
    for n in names:
        if n not in model.FUNCTIONS:
            raise NeurohdlError(f"--function {n}: not one of {', '.join(model.FUNCTIONS)}")
    try:
        rows = error_table(args.B_in, args.N, names, args.rounding)
    except ValueError as e:
        raise NeurohdlError(str(e)) from None
    bound = "|e| <= 0.5" if args.rounding == "nearest" else "-1 < e <= 0"
    md = markdown_table(
        [
            [
                r["function"],
                r["K"],
                f"{r['d_max']}/{r['d_min']}",
                f"{r['max_abs_error_lsb']:.3f}",
                f"{r['rms_error_lsb']:.3f}",
                r["code_mismatches"],
                "pass" if r["passed"] else "FAIL",
            ]
            for r in rows
        ],  # fmt: skip
        ["function", "K", "d_max/d_min", "max |e| (LSB)", "RMS e", "codes != y*", bound],
    )
    result = {"B_in": args.B_in, "N": args.N, "rounding": args.rounding, "rows": rows}
    _save(f"errors_b{args.B_in}_n{args.N}", result, md)
    print(
        json.dumps(result, indent=1)
        if args.json
        else f"B_in={args.B_in}, N={args.N}, every input code:\n{md}"
    )
    return EXIT_OK if all(r["passed"] for r in rows) else EXIT_MISMATCH


# -- perf ---------------------------------------------------------------------------------------


def measure(preset: str, sim: str, conversions: int, sets: list[str] = ()) -> dict:
    """Stream conversions without back-pressure and time-stamp every handshake (spec §4)."""
    from ..cosim.runner import run_cosim
    from .blocks.ramp_adc import stream_cycles

    cfg = registry.resolve("ramp_adc", preset=preset, sets=list(sets))
    block = registry.get("ramp_adc")
    bank = block.model(cfg.params)
    p = bank.params
    rng = np.random.default_rng(7)
    x = rng.integers(p.s_min, p.s_max + 1, size=(conversions, p.C))
    OUT.mkdir(parents=True, exist_ok=True)
    stim = OUT / f"perf_{preset}.npz"
    np.savez(stim, inputs=x, cfg=np.zeros((0, 5), dtype=np.int64))
    res = run_cosim(cfg, sim=sim, seed=1, stimulus=str(stim), backpressure=False, build_root="build/cosim")
    with np.load(res.timing) as t:
        offers, i_hs, o_hs = t["i_offers"], t["i_handshakes"], t["o_handshakes"]
    ii = np.diff(o_hs)
    k_run = bank.k_run
    overhead = p.overhead if bank.arch == "ramp" else None
    latency = int(o_hs[0] - offers[0])
    return {
        "preset": preset,
        "arch": bank.arch,
        "C": p.C,
        "N": p.N,
        "K_run": k_run,
        "conversions": conversions,
        "sim": sim,
        "passed": res.passed,
        "cycles": res.cycles,
        "model_cycles": stream_cycles(bank, np.full(conversions, k_run)),
        "interval_min": int(ii.min()),
        "interval_max": int(ii.max()),
        "cycles_per_conversion": float((o_hs[-1] - o_hs[0]) / (len(o_hs) - 1)),
        "activations_per_cycle": float(p.C * (len(o_hs) - 1) / (o_hs[-1] - o_hs[0])),
        "latency": latency,
        "overhead": overhead,
        "limit_steps": 2**p.N,
        "input_interval": int(np.diff(i_hs).max()),
    }


def cmd_perf(args) -> int:
    presets = args.preset or ["default", "nladc64", "lut_column64", "lut_shared64"]
    rows, results, ok = [], [], True
    for pr in presets:
        r = measure(pr, args.sim, args.conversions, args.set)
        results.append(r)
        exact = r["cycles"] == r["model_cycles"]
        if r["arch"] == "ramp":
            ok &= r["latency"] == r["K_run"] + r["overhead"]
            if registry.resolve("ramp_adc", preset=pr, sets=args.set).params["in_reg"]:
                ok &= r["interval_min"] == r["interval_max"] == max(r["K_run"], r["overhead"])
        ok &= r["passed"] and exact
        rows.append(
            [pr, r["arch"], r["C"], r["K_run"], f"{r['interval_min']}..{r['interval_max']}",
             f"{r['cycles_per_conversion']:.2f}", f"{r['activations_per_cycle']:.3f}", r["latency"],
             r["overhead"], r["limit_steps"], f"{r['cycles']} / {r['model_cycles']}", r["passed"]]
        )  # fmt: skip
    md = markdown_table(
        rows,
        ["preset", "arch", "C", "K_run", "interval", "cycles/conv", "act./cycle", "latency", "overhead",
         "limit 2^N", "cycles RTL / model", "bit-exact"],
    )  # fmt: skip
    _save("report", {"rows": results}, md)
    print(json.dumps(results, indent=1) if args.json else md + f"\nsaved {OUT / 'report.json'}")
    return EXIT_OK if ok else EXIT_MISMATCH


# -- compare (area and Fmax) --------------------------------------------------------------------

DESIGNS = (
    ("NL-ADC", "nladc{C}", []),
    ("NL-ADC writable, in_reg", "nladc{C}", ["writable=true", "in_reg=true"]),
    ("per-column LUT", "lut_column{C}", []),
    ("shared LUT", "lut_shared{C}", []),
)
#: with --full: the other width, the increment mode and the non-monotone table (spec §4)
EXTRA = (
    ("NL-ADC N=4", "nladc{C}", ["N=4"]),
    ("NL-ADC increment", "nladc{C}", ["mode=increment"]),
    ("NL-ADC GELU", "nladc{C}", ["functions=gelu"]),
    ("per-column LUT N=4", "lut_column{C}", ["N=4"]),
)
LC_KEY = {"ice40": "ICESTORM_LC", "ecp5": "TRELLIS_COMB"}


def cmd_compare(args) -> int:
    from .pnr_options import PnrOptions
    from .synth import TARGETS, synth

    results, rows = [], []
    columns = args.columns or [16, 64]
    targets = args.target or ["ice40-up5k", "ecp5-25k"]
    for target in targets:
        fam = TARGETS[target].family
        for C in columns:
            base = None
            for label, preset, sets in DESIGNS + (EXTRA if args.full else ()):
                cfg = registry.resolve("ramp_adc", preset=preset.format(C=C), sets=sets)
                try:
                    r = synth(cfg, target, pnr=PnrOptions((args.seed,)))
                except NeurohdlError as e:
                    results.append({"design": label, "C": C, "target": target, "error": str(e)})
                    rows.append([target, C, label, str(e)[:60], "", "", "", "", "", "", ""])
                    continue
                lc = r["utilization"].get(LC_KEY[fam], [None])[0]
                r.update({"design": label, "C": C, "logic_cells": lc})
                results.append(r)
                if label == "per-column LUT":
                    base = r
                ff = f"{r['ff'] - r['ff_wrapper']} (+{r['ff_wrapper']})"
                rows.append([target, C, label, lc, r["lut4"], r["carry"], ff, r["bram"], r["dsp"],
                             r["fmax_mhz"], ""])  # fmt: skip
            nl = next((r for r in results if r.get("design") == "NL-ADC" and r["C"] == C and
                       r["target"] == target and "error" not in r), None)  # fmt: skip
            if nl and base:
                cells = nl["logic_cells"] / base["logic_cells"]
                logic = (nl["lut4"] + nl["carry"]) / (base["lut4"] + base["carry"])
                fmax = nl["fmax_mhz"] / base["fmax_mhz"]
                nl["vs_per_column_lut"] = {"logic_cells": cells, "lut4_carry": logic, "fmax": fmax}
                row = next(r for r in rows if r[:3] == [target, C, "NL-ADC"])
                row[-1] = f"cells {cells:.2f}x, LUT4+carry {logic:.2f}x, Fmax {fmax:.2f}x"
    md = markdown_table(
        rows,
        [
            "target",
            "C",
            "design",
            "logic cells",
            "LUT4",
            "carry",
            "FF",
            "BRAM",
            "DSP",
            "Fmax MHz",
            "vs per-column LUT",
        ],
    )
    _save("compare", {"rows": results}, md)
    print(json.dumps(results, indent=1, default=str) if args.json else md + f"\nsaved {OUT / 'compare.json'}")
    return EXIT_OK


# -- what-if ------------------------------------------------------------------------------------

#: condition, Variation, columns, the prototype's mean|Δ| / P(Δ≠0) / max|Δ| (spec §2.7)
WHATIF = (
    ("sigma_p 0.5 %", whatif.Variation(sigma_prog=0.005), 1, (0.106, 0.104, 1.13)),
    ("sigma_p 1 %", whatif.Variation(sigma_prog=0.01), 1, (0.218, 0.183, 1.77)),
    ("sigma_p 1 %, calibrated", whatif.Variation(sigma_prog=0.01, calibrate=True), 1, (0.133, None, None)),
    ("sigma_p 2 %", whatif.Variation(sigma_prog=0.02), 1, (0.434, 0.271, 3.16)),
    ("sigma_p 2 %, calibrated", whatif.Variation(sigma_prog=0.02, calibrate=True), 1, (0.261, None, None)),
    ("sigma_p 5 %", whatif.Variation(sigma_prog=0.05), 1, (1.067, 0.397, 6.11)),
    ("stuck-OFF 1 %", whatif.Variation(p_off=0.01), 1, (0.096, 0.043, 0.51)),
    ("stuck-OFF 2 %", whatif.Variation(p_off=0.02), 1, (0.263, 0.098, 1.29)),
    ("stuck-OFF 2 %, calibrated", whatif.Variation(p_off=0.02, calibrate=True), 1, (0.134, None, None)),
    ("stuck-OFF 5 %", whatif.Variation(p_off=0.05), 1, (0.670, 0.210, 3.14)),
    ("levels 16", whatif.Variation(levels=16), 1, (2.078, None, None)),
    ("levels 32", whatif.Variation(levels=32), 1, (0.527, None, None)),
    ("levels 64", whatif.Variation(levels=64), 1, (0.125, None, None)),
    ("gain 0.9, ramp only", whatif.Variation(gain=0.9, track_input=False), 1, (0.266, 0.266, 1.00)),
    ("gain 0.9, tracked", whatif.Variation(gain=0.9), 1, (0.0, 0.0, 0.0)),
    ("offset +3 LSB", whatif.Variation(offset=3), 1, (0.363, 0.320, 2.00)),
    ("offset +3 LSB, calibrated", whatif.Variation(offset=3, calibrate=True), 1, (0.0, None, None)),
    ("sigma_read 1 %", whatif.Variation(sigma_read=0.01), 1, (0.056, 0.056, 0.63)),
    ("sigma_cmp 0.5 LSB, C=16", whatif.Variation(sigma_cmp=0.5), 16, (0.039, None, None)),
    ("sigma_cmp 1.0 LSB, C=16", whatif.Variation(sigma_cmp=1.0), 16, (0.092, None, None)),
)


def whatif_table(instances: int = 300, seed: int = 0, function: str = "sigmoid") -> list[dict]:
    tb = model.build_table(function, 8, 5)
    out = []
    for name, var, cols, proto in WHATIF:
        r = whatif.monte_carlo(tb, var, instances=instances, seed=seed, columns=cols)
        r.update({"condition": name, "columns": cols, "prototype": proto})
        out.append(r)
    return out


def cmd_whatif(args) -> int:
    if args.instances < 1:
        raise NeurohdlError(f"--instances must be at least 1, got {args.instances}")
    rows = whatif_table(args.instances, args.seed, args.function)

    def fmt(x, pct=False):
        return "" if x is None else (f"{100 * x:.1f} %" if pct else f"{x:.3f}")

    md = markdown_table(
        [
            [
                r["condition"],
                r["columns"],
                fmt(r["mean_abs"]),
                fmt(r["p_err"], True),
                f"{r['max_abs']:.2f}",
                " / ".join(fmt(v, i == 1) for i, v in enumerate(r["prototype"]) if v is not None),
            ]
            for r in rows
        ],  # fmt: skip
        ["condition", "C", "mean |Δ|", "P(Δ≠0)", "max |Δ|", "spec prototype"],
    )
    _save("whatif", {"instances": args.instances, "seed": args.seed, "rows": rows}, md)
    print(json.dumps(rows, indent=1) if args.json else f"{args.function}, B_in=8, N=5, {args.instances} "
          f"instances, seed {args.seed}:\n{md}")  # fmt: skip
    return EXIT_OK


# -- shipped tables -----------------------------------------------------------------------------


def cmd_tables(args) -> int:
    import tempfile

    if args.write:
        paths = model.regenerate_tables()
        print(f"wrote {len(paths)} tables to {model.TABLE_DIR}")
        return EXIT_OK
    with tempfile.TemporaryDirectory() as tmp:
        fresh = model.regenerate_tables(Path(tmp))
        differ = [p.name for p in fresh if (model.TABLE_DIR / p.name).read_bytes() != p.read_bytes()]
        missing = [p.name for p in fresh if not (model.TABLE_DIR / p.name).exists()]
    if differ or missing:
        print(f"tables differ from a fresh build: {', '.join(differ + missing)}")
        return EXIT_MISMATCH
    print(f"{len(fresh)} shipped tables in {model.TABLE_DIR} equal a fresh build")
    return EXIT_OK


def add_commands(sub) -> None:
    """``neurohdl ramp_adc <command>``."""
    p = sub.add_parser("errors", help="max error of every function against the ideal quantised target")
    p.add_argument("--B_in", type=int, default=8)
    p.add_argument("--N", type=int, default=5)
    p.add_argument("--rounding", choices=("nearest", "floor"), default="nearest")
    p.add_argument("--function", action="append", help="one function (repeatable; default: all)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_errors)

    p = sub.add_parser("perf", help="interval, latency and activations per cycle measured in RTL")
    p.add_argument("--preset", action="append", help="preset (repeatable)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--sim", choices=("icarus", "verilator"), default="verilator")
    p.add_argument("--conversions", type=int, default=200)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_perf)

    p = sub.add_parser("compare", help="area and Fmax of the NL-ADC and the lookup baselines side by side")
    p.add_argument("--target", action="append", choices=("ice40-up5k", "ice40-hx8k", "ecp5-25k", "ecp5-85k"))
    p.add_argument("--columns", type=int, action="append", choices=(16, 64))
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--full", action="store_true", help="also N=4, increment mode and GELU")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("whatif", help="Monte Carlo code errors of a perturbed ramp column")
    p.add_argument("--instances", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--function", choices=tuple(model.FUNCTIONS), default="sigmoid")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_whatif)

    p = sub.add_parser("tables", help="check (or --write) the shipped JSON tables")
    p.add_argument("--write", action="store_true")
    p.set_defaults(func=cmd_tables)
