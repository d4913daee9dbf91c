"""Block commands of ``fusemax`` (``neurohdl fusemax <command>``): error against float attention,
cycles and utilisation (model, RTL and FuseMax's own model side by side), the digits application, and
area and Fmax beside the naive MAC-array baseline."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..models import fusemax as fm
from . import registry
from .blocks.fusemax import FPGA_BASELINES
from .errors import EXIT_MISMATCH, EXIT_OK, CheckFailed, ConfigError, DoesNotFit
from .pnr_options import PnrOptions, add_pnr_arguments, pnr_of
from .progress import progress
from .results import markdown_table, save_results

OUT = Path("build/fusemax")

# spec §5 accuracy regression: (label, M, exp2, PW, must max, must rms)
ERROR_ROWS = (
    ("FB 8, PW 16, lut", 256, "lut", 16, 0.10, 0.015),
    ("FB 8, PW 16, ipoly3", 256, "ipoly3", 16, 0.10, 0.015),
    ("FB 8, PW 16, lut", 1024, "lut", 16, 0.35, 0.04),
    ("FB 8, PW 16, ipoly3", 1024, "ipoly3", 16, 0.35, 0.04),
    ("FB 8, PW 16, lut", 4096, "lut", 16, 1.0, 0.08),
    ("FB 8, PW 16, lut", 16384, "lut", 16, 1.2, 0.10),
    ("FB 8, PW 16, ipoly2", 1024, "ipoly2", 16, 0.35, 0.045),
    ("FB 8, PW 17, lut", 1024, "lut", 17, 0.20, 0.02),
    ("FB 8, PW 17, lut", 4096, "lut", 17, 0.6, 0.05),
)


def error_table(max_m: int = 16384) -> list[dict]:
    rows = []
    for label, M, method, PW, lim_max, lim_rms in ERROR_ROWS:
        if M > max_m:
            continue
        worst, rms, _ = fm.accuracy_sweep(M, exp2=method, PW=PW)
        rows.append(
            {"config": label, "M": M, "max_lsb": worst, "rms_lsb": rms, "must_max": lim_max,
             "must_rms": lim_rms, "ok": worst <= lim_max and rms <= lim_rms}
        )  # fmt: skip
    for M in (256, 1024):
        exact = fm.accuracy_sweep(M, OB=0)[2]
        rows.append(
            {"config": "OB 0, lut: correctly rounded", "M": M, "exact_fraction": exact, "must_min": 0.975,
             "ok": exact >= 0.975}
        )  # fmt: skip
    return rows


def cmd_errors(args) -> int:
    rows = error_table(args.max_m)
    md = markdown_table(
        [
            [r["config"], r["M"], f"{r['max_lsb']:.3f} / {r['rms_lsb']:.4f}",
             f"<= {r['must_max']} / {r['must_rms']}", "yes" if r["ok"] else "NO"]
            if "max_lsb" in r
            else [r["config"], r["M"], f"{100 * r['exact_fraction']:.2f} % equal",
                  f">= {100 * r['must_min']:.1f} %", "yes" if r["ok"] else "NO"]
            for r in rows
        ],
        ["config (R 8, OB 8)", "M", "worst max / rms (V-LSB)", "spec limit", "within"],
    )  # fmt: skip
    note = (
        "\nseeds 1000-1003 x temperatures 0.5..12 (Q = t N(0,1); K, V = N(0,1)), 32 queries, E = F = 64,"
        " per-tensor int8, alpha = 1/sqrt(E); error of the golden model (= the RTL) against float64"
        " attention on the same int8 inputs"
    )
    path = save_results(OUT, "errors", {"rows": rows}, md + "\n" + note)
    print(json.dumps(rows, indent=1) if args.json else md + note + f"\nsaved {path}")
    return EXIT_OK if all(r["ok"] for r in rows) else EXIT_MISMATCH


# -- cycles and utilisation ---------------------------------------------------------------------

FORMULA_CONFIGS = ((2, 4, 64, 64), (4, 4, 64, 64), (8, 8, 64, 64), (8, 8, 128, 128))
LENGTHS = (1024, 4096, 16384, 65536, 262144, 1048576)


def formula_rows() -> list[dict]:
    """Model cycles (closed form) of both schedules beside FuseMax's own model at the same R, C."""
    rows = []
    for R, C, E, F in FORMULA_CONFIGS:
        for n in LENGTHS:
            p = fm.FusemaxParams(R=R, C=C, E=E, F=F, M_MAX=65536, P_MAX=65536)
            s = fm.FusemaxParams(R=R, C=C, E=E, F=F, M_MAX=65536, P_MAX=65536, interleave=False)
            ideal = fm.t_ideal(n, n, p)
            ti, ts, tfm = fm.cycles_formula(n, n, p), fm.cycles_formula(n, n, s), fm.fusemax_cycles(n, n, p)
            M1, P1 = -(-n // R), -(-n // C)
            rows.append(
                {"R": R, "C": C, "E": E, "F": F, "M": n, "P": n, "t_ideal": ideal, "interleaved": ti,
                 "serial": ts, "fusemax_model": tfm, "u_interleaved": ideal / ti, "u_serial": ideal / ts,
                 "u_fusemax": ideal / tfm, "u2d_fusemax": P1 * M1 * (E + F + 9) / tfm}
            )  # fmt: skip
    return rows


def measure(preset: str, sim: str, sets: list[str], backpressure: bool, seed: int = 1) -> dict:
    """One job of the preset's M x P in RTL: counters against the cycle model."""
    from ..cosim.runner import run_cosim

    cfg = registry.resolve("fusemax", preset=preset, sets=list(sets))
    build = registry.get("fusemax").model(cfg.params)
    p, M, P = build.fp, cfg.params["M"], cfg.params["P"]
    res = run_cosim(cfg, sim=sim, seed=seed, vectors=1, backpressure=backpressure, build_root="build/cosim")
    f = {k: v["value"] for k, v in res.final.items() if k.startswith("perf")}
    ideal = fm.t_ideal(M, P, p)
    return {
        "preset": preset,
        "sets": list(sets),
        "R": p.R,
        "C": p.C,
        "E": p.E,
        "F": p.F,
        "M": M,
        "P": P,
        "interleave": p.interleave,
        "arch": p.arch,
        "corr_units": p.corr_units,
        "sim": sim,
        "backpressure": backpressure,
        "passed": res.passed,
        **f,
        "model_cycles": fm.cycles(M, P, p),
        "t_ideal": ideal,
        "u_measured": ideal / f["perf_busy"],
        "u_fusemax": ideal / fm.fusemax_cycles(M, P, p),
        "elapsed_s": res.elapsed_s,
    }


def cmd_perf(args) -> int:
    ok = True
    measured = []
    if not args.no_rtl:
        runs = [(args.preset, [*args.set], False), (args.preset, ["interleave=false", *args.set], False)]
        if args.backpressure:
            runs.append((args.preset, [*args.set], True))
        runs.append(("up5k", ["M=256", "P=256"], False))  # the compact build at the same M, P
        for preset, sets, bp in runs:
            r = measure(preset, args.sim, sets, bp)
            measured.append(r)
            ok &= r["passed"] and r["perf_mac"] == fm.mac_cycles(r["M"], r["P"], _params(r))
            ok &= (r["perf_busy"] == r["model_cycles"]) if not bp else r["perf_busy"] >= r["model_cycles"]
    md = markdown_table(
        [
            [f"{r['R']}x{r['C']}", f"{r['E']}, {r['F']}", f"{r['M']}, {r['P']}",
             _schedule(r), "on" if r["backpressure"] else "off",
             r["perf_busy"], r["model_cycles"], r["perf_mac"], r["perf_stall_in"], r["perf_stall_out"],
             f"{r['u_measured']:.4f}", f"{r['u_fusemax']:.4f}", r["passed"]]
            for r in measured
        ],
        ["R x C", "E, F", "M, P", "schedule", "back-pressure", "perf_busy (RTL)", "cycles() model",
         "perf_mac", "stall in", "stall out", "U measured", "U FuseMax model", "bit-exact"],
    )  # fmt: skip
    rows = formula_rows()
    md2 = markdown_table(
        [
            [f"{r['R']}x{r['C']}", f"{r['E']}, {r['F']}", r["M"], f"{r['t_ideal']:.0f}",
             f"{r['interleaved']} ({r['u_interleaved']:.3f})", f"{r['serial']} ({r['u_serial']:.3f})",
             f"{r['fusemax_model']} ({r['u_fusemax']:.3f}; 2D-active {r['u2d_fusemax']:.3f})"]
            for r in rows
        ],
        ["R x C", "E, F", "M = P", "T_ideal", "interleaved (U)", "serial (U)", "FuseMax model (U)"],
    )  # fmt: skip
    note = (
        "\nFuseMax's published MAC-only utilisation (256 x 256, E = F = 64): 0.831 (1K) -> 0.901 (4K)"
        " -> 0.927 (1M); our model's bound (E + F) / (E + F + K_OVH) = "
        f"{128 / (128 + fm.Timing.of(fm.FusemaxParams()).K_OVH):.3f}"
    )
    text = (md + "\n\n" if measured else "") + md2 + note
    path = save_results(OUT, "perf", {"measured": measured, "formula": rows}, text)
    print(
        json.dumps({"measured": measured, "formula": rows}, indent=1)
        if args.json
        else text + f"\nsaved {path}"
    )
    return EXIT_OK if ok else EXIT_MISMATCH


def _params(r: dict) -> fm.FusemaxParams:
    return fm.FusemaxParams(R=r["R"], C=r["C"], E=r["E"], F=r["F"], interleave=r["interleave"])


def _schedule(r: dict) -> str:
    if r["arch"] == "compact":
        return f"compact, {r['corr_units']} correction unit{'s' if r['corr_units'] > 1 else ''}"
    return "interleaved" if r["interleave"] else "serial"


# -- the digits application ----------------------------------------------------------------------


def run_digits(
    *, sim: str = "verilator", limit: int | None = None, out_dir=OUT, progress=lambda s: None
) -> dict:
    """Golden accuracies at every M (spec §5), then the RTL at R = C = 8 on the same jobs: every output
    compared, cycles beside the model, T_ideal and FuseMax's model."""
    from ..cosim.runner import run_cosim
    from ..models import fusemax_digits as digits

    progress("digits: embed and quantise")
    task = digits.load_task()
    cfg = registry.resolve("fusemax", preset="demo")
    p = registry.get("fusemax").model(cfg.params).fp
    serial = fm.FusemaxParams(**{**p.__dict__, "interleave": False})
    Cs, SH = task.scale(p.FB)
    n_q = len(task.Q) if limit is None else min(limit, len(task.Q))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for M in digits.LENGTHS:
        progress(f"digits: M = {M}, golden model")
        r = digits.evaluate(task, M, R=p.R, OB=p.OB)
        av = r.pop("av")
        stim = out_dir / f"digits_m{M}.npz"
        np.savez(stim, jobs=np.array([[M, n_q, Cs, SH]]), Q=task.Q[:n_q], K=task.K[:M], V=task.V[:M])
        progress(f"digits: M = {M}, RTL ({sim}, {n_q} queries)")
        res = run_cosim(
            cfg, sim=sim, seed=1, stimulus=str(stim), backpressure=False, build_root="build/cosim"
        )
        with np.load(res.build_dir + "/dump.npz") as d:
            rtl_beats = d["o"]
        want = fm.out_beats(av[:n_q], M, p)
        busy = res.final["perf_busy"]["value"]
        ideal = fm.t_ideal(M, n_q, p)
        rows.append(
            {**r, "queries_rtl": n_q, "rtl_bit_exact": bool(res.passed and np.array_equal(rtl_beats, want)),
             "rtl_cycles": busy, "model_cycles": fm.cycles(M, n_q, p),
             "serial_cycles": fm.cycles(M, n_q, serial),
             "t_ideal": ideal, "u": ideal / busy, "t_fusemax": fm.fusemax_cycles(M, n_q, p),
             "speedup_vs_fusemax_model": fm.fusemax_cycles(M, n_q, p) / busy}
        )  # fmt: skip
    return {"alpha": digits.ALPHA, "Cs": Cs, "SH": SH, "rows": rows, "passed": all(_row_ok(r) for r in rows)}


def _row_ok(r: dict) -> bool:
    return (
        r["rtl_bit_exact"]
        and r["rtl_cycles"] == r["model_cycles"]
        and r["accuracy"] >= r["accuracy_float_int8"] - 0.003
        and (r["M"] != 1437 or r["accuracy"] >= 0.99)
    )


def digits_table(result: dict) -> str:
    return markdown_table(
        [
            [r["M"], f"{100 * r['accuracy']:.2f}", f"{100 * r['accuracy_float_int8']:.2f}",
             f"{100 * r['accuracy_float']:.2f}", f"{100 * r['argmax_agreement']:.1f}",
             f"{r['max_err_lsb']:.3f} / {r['rms_err_lsb']:.4f}", r["queries_rtl"], r["rtl_bit_exact"],
             f"{r['rtl_cycles']} ({r['model_cycles']})", f"{r['t_ideal']:.0f}", f"{r['u']:.3f}",
             r["t_fusemax"],
             f"{r['speedup_vs_fusemax_model']:.3f}", r["serial_cycles"]]
            for r in result["rows"]
        ],
        ["M", "acc. % (RTL = model)", "float int8 %", "float %", "argmax agree %", "err max / rms (V-LSB)",
         "queries in RTL", "RTL bit-exact", "RTL cycles (model)", "T_ideal", "U", "T FuseMax model",
         "speed-up vs FuseMax model", "serial cycles"],
    )  # fmt: skip


def cmd_digits(args) -> int:
    result = run_digits(sim=args.sim, limit=args.limit, progress=progress)
    md = digits_table(result)
    path = save_results(OUT, "digits", result, md)
    print(json.dumps(result, indent=1, default=str) if args.json else md + f"\nsaved {path}")
    return EXIT_OK if result["passed"] else EXIT_MISMATCH


U_SIZE = 1024  # M = P for the utilisation in GMAC/s


def fpga_point(target: str, sets: list[str], pnr: PnrOptions, progress) -> list[dict]:
    """The target's fusemax preset and the naive MAC array of the same R x C, synthesised with the
    same flow and seeds; GMAC/s = R C Fmax U (U from the cycle model at M = P = 1024; 1 for the
    baseline, which does nothing but MACs)."""
    from ..hdl.mac_array import MacArrayBench
    from .synth import synth, synth_design

    preset = FPGA_BASELINES[target][0]
    cfg = registry.resolve("fusemax", preset=preset, sets=sets)
    p = registry.get("fusemax").model(cfg.params).fp
    u = fm.t_ideal(U_SIZE, U_SIZE, p) / fm.cycles(U_SIZE, U_SIZE, p)
    rows = []
    for design, u_design, run in (
        (
            f"fusemax ({preset})",
            u,
            lambda: synth(cfg, target, pnr=pnr, progress=progress, reuse=True),
        ),
        (
            "naive MAC array",
            1.0,
            lambda: synth_design(
                f"mac_array_{p.R}x{p.C}",
                MacArrayBench(p.R, p.C),
                target,
                params={"R": p.R, "C": p.C, "acc_width": 24},
                pnr=pnr,
                progress=progress,
                reuse=True,
            ),
        ),
    ):
        row = {"target": target, "design": design, "R": p.R, "C": p.C, "u": u_design}
        try:
            row.update(run())
        except DoesNotFit as e:  # what it needs, beside what it lacks
            row.update(e.usage, error=str(e))
        except CheckFailed as e:
            row["error"] = str(e)
        fmax = row.get("fmax_mhz")
        row["gmac_s"] = p.R * p.C * fmax * u_design / 1000 if fmax else None
        rows.append(row)
    return rows


def fpga_table(rows: list[dict]) -> str:
    def num(v, fmt: str = "{:,}") -> str:
        return fmt.format(v) if v is not None else "-"

    def cell(r: dict, key: str, fmt: str = "{:,}") -> str:
        return num(r.get(key), fmt)

    def fmax(r: dict) -> str:
        """The median; with several seeds, each seed's figure after it."""
        per_seed = list(r.get("fmax_per_seed", {}).values())
        median = cell(r, "fmax_mhz", "{:.2f}")
        if len(per_seed) > 1:
            median += f" ({' / '.join(num(f, '{:.2f}') for f in per_seed)})"
        return median + (f", {r['router']}" if r.get("router", "router1") != "router1" else "")

    out = []
    for r in rows:
        base = next(b for b in rows if b["target"] == r["target"] and b["design"] == "naive MAC array")
        if r is base:
            verdict = r.get("error", "")  # a baseline that failed says why, not just "-"
        elif "error" in r:
            verdict = "no: " + r["error"]
        elif not (r.get("fmax_mhz") and base.get("fmax_mhz")):
            verdict = "no: fits; no Fmax to compare"
        else:
            ratio = r["fmax_mhz"] / base["fmax_mhz"]
            verdict = f"{'yes' if ratio >= 1 else 'no'}: fits; Fmax {ratio:.2f}x the baseline's"
        out.append(
            [r["target"], r["design"], f"{r['R']}x{r['C']}", cell(r, "lut4"), cell(r, "carry"), cell(r, "ff"),
             cell(r, "bram"), cell(r, "dsp"), fmax(r), f"{r['u']:.3f}",
             cell(r, "gmac_s", "{:.2f}"), FPGA_BASELINES[r["target"]][2] if r is base else "", verdict]
        )  # fmt: skip
    return markdown_table(
        out,
        ["target", "design", "R x C", "LUT4", "carry", "FF", "BRAM", "DSP", "Fmax MHz", "U",
         "GMAC/s", "spec's baseline", "goal (fits, Fmax >= baseline)"],
    )  # fmt: skip


def _size_key(row: dict) -> tuple:
    return row.get("target"), row.get("R"), row.get("C")


def cmd_fpga(args) -> int:
    targets = args.targets.split(",")
    for t in targets:
        if t not in FPGA_BASELINES:
            raise ConfigError(f"no fusemax goal for target '{t}': use {', '.join(FPGA_BASELINES)}")
    if args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs}: give 1 or more")
    pnr = pnr_of(args)

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        per_target = list(pool.map(lambda t: fpga_point(t, args.set, pnr, progress), targets))
    rows = [r for rs in per_target for r in rs]
    seed_note = (
        f"seed {pnr.seeds[0]}"
        if len(pnr.seeds) == 1
        else f"seeds {', '.join(map(str, pnr.seeds))}: Fmax is the median of the routed ones (each "
        "seed's in brackets, - where --route-timeout stopped it)"
    )
    clock = {r["clock_pin"] for r in rows if r.get("clock_pin")}
    router_note = f"nextpnr {pnr.router}" + (f" (clock on pin {', '.join(sorted(clock))})" if clock else "")
    md = fpga_table(rows) + (
        f"\n{router_note}, {seed_note}; U: the interleaved schedule's cycle model at M = P = {U_SIZE} "
        "(the baseline only multiplies); GMAC/s = R C Fmax U."
    )
    print(json.dumps(rows, indent=1, default=str) if args.json else md)
    # The saved results keep earlier runs of other targets and array sizes: one file holds the
    # latest of each (target, R x C).
    saved = OUT / "fpga.json"
    try:
        earlier = json.loads(saved.read_text()) if saved.exists() else []
    except json.JSONDecodeError:
        earlier = []  # not ours to keep
    fresh = {_size_key(r) for r in rows}
    rows = [r for r in earlier if isinstance(r, dict) and _size_key(r) not in fresh] + rows
    path = save_results(OUT, "fpga", rows, fpga_table(rows))
    if not args.json:
        print(f"saved {path} (with the latest results of the other targets and sizes)")
    return EXIT_OK


def add_commands(sub) -> None:
    """``neurohdl fusemax <command>``."""
    p = sub.add_parser("errors", help="error against float attention over the spec's seed/temperature sweep")
    p.add_argument("--max-m", type=int, default=16384, help="skip rows with more keys")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_errors)

    p = sub.add_parser(
        "perf", help="RTL-measured cycles and utilisation beside the cycle model and FuseMax's"
    )
    p.add_argument("--preset", default="util")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--sim", choices=("icarus", "verilator"), default="verilator")
    p.add_argument("--backpressure", action="store_true", help="also a run with random back-pressure")
    p.add_argument("--no-rtl", action="store_true", help="only the model tables")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_perf)

    p = sub.add_parser("digits", help="the soft nearest-neighbour digits head: accuracy, RTL, cycles per M")
    p.add_argument("--sim", choices=("icarus", "verilator"), default="verilator")
    p.add_argument("--limit", type=int, help="queries in the RTL runs (default: all 360)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_digits)

    p = sub.add_parser("fpga", help="area and Fmax per target beside the naive MAC array of the same size")
    p.add_argument("--targets", default=",".join(FPGA_BASELINES), help="comma-separated targets")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    add_pnr_arguments(p)
    p.add_argument("--jobs", type=int, default=1, help="targets synthesised at once")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_fpga)
