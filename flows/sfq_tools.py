"""Block commands of ``sfq`` (``neurohdl sfq <command>``): the XOR application and its sweeps."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..models import sfq_xor as xor
from .config import did_you_mean
from .errors import EXIT_MISMATCH, EXIT_OK, CheckFailed, ConfigError, NeurohdlError
from .pnr_options import add_pnr_arguments, pnr_of
from .progress import progress
from .results import markdown_table, save_results
from .synth import LOGIC_CELL

OUT = Path("build/sfq")


def run_xor(pulses: int, sweep_pulses: int, progress=lambda s: None) -> dict:
    net = xor.xor_net()
    nominal = xor.regs_at_scale(1000)
    t0 = time.monotonic()
    progress("nominal bias, 4 input pairs")
    r_nom = xor.rates(net, nominal, pulses=pulses)
    r_det = xor.rates(net, {**nominal, "p_syn": 65535}, pulses=pulses)
    offsets = {}
    for off in (1, 2, 3):
        progress(f"input B {off} slot(s) late")
        offsets[off] = xor.margin(xor.rates(net, nominal, pulses=pulses, offset=off))
    seed_sets = []
    rng = np.random.default_rng(2024)
    for _ in range(16):
        seeds = rng.integers(1, 65536, size=4).tolist()
        seed_sets.append(
            {"seeds": seeds, "margin": xor.margin(xor.rates(xor.xor_net(seeds), nominal, pulses=pulses))}
        )
    progress("16 random synapse seed sets")
    scale = []
    for g in range(700, 1325, 25):
        progress(f"bias scale {g} permille")
        regs = xor.regs_at_scale(g)
        net_g = xor.xor_net(theta_out=xor.out_theta_at_scale(g))
        m = min(xor.margin(xor.rates(net_g, regs, pulses=sweep_pulses, offset=o)) for o in range(4))
        scale.append({"g": g, **regs, "theta_out": xor.out_theta_at_scale(g), "margin_min_over_offsets": m})
    ok = [s["g"] for s in scale if s["margin_min_over_offsets"] > 0]
    window = [ok[0], ok[-1]] if ok else None
    if ok and any(s["margin_min_over_offsets"] <= 0 for s in scale if ok[0] <= s["g"] <= ok[-1]):
        window = None  # not one contiguous range
    rate = []
    for period in range(2, 9):
        progress(f"input period {period} slots")
        rate.append(
            {
                "period": period,
                "margin": xor.margin(xor.rates(net, nominal, period=period, pulses=sweep_pulses)),
            }
        )
    progress("slot sizes, physical mode, 20 jitter seeds")
    slot_size = xor.slot_size_sweep(nominal)
    clean = [x["slot_ps"] for x in slot_size if x["clean"]]
    # pair 11 under jitter has extra pulses (exc and inh no longer meet), and its collisions follow
    three = [x["slot_ps"] for x in slot_size if {"00", "01", "10"} <= set(x["clean_pairs"])]
    ideal = xor.ideal(net, nominal)
    cls = xor.classify(r_nom)
    return {
        "slot_size": slot_size,
        "slot_size_min_clean_ps": min(clean) if clean else None,
        "slot_size_min_clean_ps_pairs_00_01_10": min(three) if three else None,
        "ideal_rates": {f"{a}{b}": v for (a, b), v in ideal.items()},
        "ideal_error_max": max(abs(r_nom[pair] - ideal[pair]) for pair in xor.PAIRS),
        "pulses": pulses,
        "nominal_regs": nominal,
        "rates": {f"{a}{b}": v for (a, b), v in r_nom.items()},
        "classified": {f"{a}{b}": v for (a, b), v in cls.items()},
        "correct": all(cls[p] == (p[0] ^ p[1]) for p in xor.PAIRS),
        "margin": xor.margin(r_nom),
        "deterministic_rates": {f"{a}{b}": v for (a, b), v in r_det.items()},
        "deterministic_margin": xor.margin(r_det),
        "offset_margins": offsets,
        "seed_sets": seed_sets,
        "seed_set_margin_min": min(x["margin"] for x in seed_sets),
        "bias_scale": scale,
        "bias_scale_window": window,
        "input_period": rate,
        "elapsed_s": round(time.monotonic() - t0, 1),
    }


def cmd_xor(args) -> int:
    if args.pulses < 16 or args.sweep_pulses < 16:
        raise NeurohdlError("--pulses and --sweep-pulses must be at least 16")
    r = run_xor(args.pulses, args.sweep_pulses, progress)
    rows = [[f"{a}{b}", a ^ b, f"{r['rates'][f'{a}{b}']:.3f}", r["classified"][f"{a}{b}"],
             f"{r['deterministic_rates'][f'{a}{b}']:.3f}", f"{r['ideal_rates'][f'{a}{b}']:.3f}"]
            for a, b in xor.PAIRS]  # fmt: skip
    md = markdown_table(
        rows, ["a b", "XOR", "rate (p = 0xDEA4)", "read as", "rate (p = 65535)", "float ideal (p = 0xDEA4)"]
    )
    md += f"\n\n|golden - float ideal| <= {r['ideal_error_max']:.3f} output pulses per input pulse"
    md += f"\n\nmargin {r['margin']:.3f} at nominal bias "
    md += f"(deterministic synapses {r['deterministic_margin']:.3f}); "
    md += "B late by 1/2/3 slots: " + " / ".join(f"{v:.3f}" for v in r["offset_margins"].values())
    md += f"; 16 random synapse seed sets: margin >= {r['seed_set_margin_min']:.3f}"
    md += "\n\n" + markdown_table(
        [
            [s["g"], s["p_syn"], s["th_hid"], s["theta_out"], f"{s['margin_min_over_offsets']:.3f}"]
            for s in r["bias_scale"]
        ],
        ["bias scale (permille)", "p_syn", "theta_hid", "theta_out", "margin, worst offset 0-3"],
    )
    w = r["bias_scale_window"]
    md += (
        f"\n\ncorrect (4/4, every offset 0-3) for bias scale {w[0]}..{w[1]} permille"
        if w
        else "\n\nno contiguous window"
    )
    md += "\n\n" + markdown_table(
        [[x["period"], f"{x['margin']:.3f}"] for x in r["input_period"]], ["input period (slots)", "margin"]
    )
    md += "\n\n" + markdown_table(
        [[x["slot_ps"], " ".join(str(v) for v in x["lat"].values()), x["crossings"], x["count_errors"],
          ", ".join(f"{k} {v}" for k, v in x["violations"].items()) or "0", x["coincidences"],
          "yes" if x["clean"] else "no", " ".join(x["clean_pairs"]) or "none"] for x in r["slot_size"]],
        ["slot (ps)", "lat per element", "slot crossings", "count errors", "violations", "coincidences",
         "clean", "clean pairs"],
    )  # fmt: skip
    md += (
        f"\n\nphysical mode, library delays, 4 pairs x 128 pulses x 20 jitter seeds: smallest clean slot "
        f"(no crossings, no violations) {r['slot_size_min_clean_ps'] or 'none'}; for pairs 00, 01 and 10 "
        f"(also no count errors) {r['slot_size_min_clean_ps_pairs_00_01_10']} ps"
    )
    save_results(OUT, "xor", r, md)
    print(json.dumps(r, indent=1, default=str) if args.json else md + f"\nsaved {OUT / 'xor.json'}")
    return EXIT_OK if r["correct"] and r["margin"] > 0 else EXIT_MISMATCH


#: PyLSE v0.1.0 on the same XOR structure, 2-core machine (spec §4): pulse-events/s at 2,000 and 20,000
PYLSE = {2000: (71_000, 83_000), 20000: (58_000, 60_000)}


BATCH = 256  # runs in the batch-axis measurement


def run_bench(repeats: int = 3) -> dict:
    """Golden (event engine) and timed model speed on the PyLSE-shaped XOR netlist, pulses every
    4 slots on one or both inputs; best of ``repeats`` (the first call also builds the LFSR orbit)."""
    from ..models import sfq, sfq_timed
    from ..models.sfq_netlist import load_netlist

    net = load_netlist(xor.XOR_PATH.with_name("xor_pylse.yaml"))
    sfq.simulate(net, {"a": [0]}, 8)
    rows = []
    for n in (2000, 20000):
        for pair in ((1, 1), (1, 0)):
            stim = {w: sfq.periodic(4, 0, n) if on else [] for w, on in zip(("a", "b"), pair, strict=True)}
            best = {}
            for name, fn in (
                ("golden", lambda stim=stim, n=n: sfq.simulate(net, stim, 4 * n + 64)),
                ("step", lambda stim=stim, n=n: sfq.simulate(net, stim, 4 * n + 64, engine="step")),
                ("timed", lambda stim=stim, n=n: sfq_timed.simulate_timed(net, stim, 4 * n + 64)),
            ):
                times = []
                for _ in range(repeats if name != "step" else 1):
                    t0 = time.perf_counter()
                    fn()
                    times.append(time.perf_counter() - t0)
                best[name] = min(times)
            events = sfq.simulate(net, stim, 4 * n + 64).pulse_events
            rows.append(
                {"pulses": n, "pair": f"{pair[0]}{pair[1]}", "pulse_events": events}
                | {f"{k}_events_per_s": events / v for k, v in best.items()}
                | {"pylse_events_per_s": PYLSE[n]}
            )
    # the step engine over a batch axis: BATCH runs of the 2000-pulse stimuli at once
    batch = []
    for pair in ((1, 1), (1, 0)):
        n_slots = 4 * 2000 + 64
        rows_ab = np.zeros((n_slots, 2), dtype=np.int64)
        for k, on in enumerate(pair):
            rows_ab[sfq.periodic(4, 0, 2000), k] = on
        t0 = time.perf_counter()
        runs = sfq.simulate(net, np.broadcast_to(rows_ab, (BATCH, *rows_ab.shape)), n_slots, engine="step")
        seconds = time.perf_counter() - t0
        events = sum(r.pulse_events for r in runs)
        batch.append(
            {"pulses": 2000, "pair": f"{pair[0]}{pair[1]}", "runs": BATCH, "events_per_s": events / seconds}
        )
    return {"rows": rows, "batch": batch, "gate_golden": {2000: 830_000, 20000: 600_000}}


def cmd_bench(args) -> int:
    r = run_bench(args.repeats)
    gate = r["gate_golden"]
    ok = all(x["golden_events_per_s"] >= gate[x["pulses"]] for x in r["rows"])
    ok &= all(x["timed_events_per_s"] >= x["pylse_events_per_s"][1] for x in r["rows"])
    md = markdown_table(
        [[x["pulses"], x["pair"], x["pulse_events"], f"{x['golden_events_per_s'] / 1e3:.0f} k",
          f"{x['step_events_per_s'] / 1e3:.0f} k", f"{x['timed_events_per_s'] / 1e3:.0f} k",
          f"{x['pylse_events_per_s'][0] // 1000}-{x['pylse_events_per_s'][1] // 1000} k",
          f"{x['golden_events_per_s'] / x['pylse_events_per_s'][1]:.1f}x", f"{gate[x['pulses']] // 1000} k"]
         for x in r["rows"]],
        ["pulses/input", "a b", "pulse events", "golden (event engine)", "golden (step engine)", "timed",
         "PyLSE (spec)", "golden / PyLSE best", "gate"],
    )  # fmt: skip
    md += f"\n\nstep engine over a batch axis, {BATCH} runs of the 2000-pulse stimuli at once: " + ", ".join(
        f"a b = {b['pair']} {b['events_per_s'] / 1e6:.2f} M pulse events/s" for b in r["batch"]
    )
    save_results(OUT, "bench", r, md)
    print(json.dumps(r, indent=1, default=str) if args.json else md + f"\nsaved {OUT / 'bench.json'}")
    return EXIT_OK if ok else EXIT_MISMATCH


#: The spec's hand-written Verilog prototypes of XOR T1 (§4, Yosys 0.23, nextpnr-ice40 0.4 on the HX8K):
#: (iCE40 LUT4, ECP5 LUT4, FF, HX8K figure) per register treatment. The gates apply to "fixed", whose
#: row has this design's rules (constants, per-pulse LFSR, K = 16); the "ports" row (every parameter
#: a top-level port, ECP5 293-315) does not say which LFSR rule it used, so it is shown, not gated.
PROTOTYPES = {
    "fixed": (208, 233, 92, "236 LC, 107.8 MHz"),
    "ports": (181, 315, 92, "-"),
}
GATE_LUT_RATIO, GATE_FF, GATE_HX8K_MHZ = 1.15, 92, 100.0
CORE_TARGETS = "ice40-hx8k,ecp5-25k"


def core_rows(
    netlist: str, net, targets: list[str], pnr, progress, variants: tuple[str, ...] = ("fixed", "ports")
) -> list[dict]:
    """The netlist's core alone (no streams, cfg or counters), its runtime registers as constants
    ("fixed") and as ports, per target; for XOR T1 beside the spec's prototypes with the gates applied."""
    from ..hdl.sfq import SfqCore
    from .synth import synth_design

    rows = []
    for target in targets:
        for regs in variants:
            row = {"target": target, "regs": regs, "netlist": netlist}
            try:
                row.update(
                    synth_design(
                        f"sfq_core_{netlist}_{regs}", SfqCore(net, fixed_regs=regs == "fixed"), target,
                        params={"netlist": netlist, "regs": regs}, pnr=pnr, progress=progress, reuse=True,
                    )
                )  # fmt: skip
            except CheckFailed as e:
                row["error"] = str(e)
            if netlist == "xor_t1" and regs == "fixed" and "error" not in row:
                lut_ice40, lut_ecp5, ff, _ = PROTOTYPES[regs]
                lut_ref = lut_ice40 if target.startswith("ice40") else lut_ecp5
                checks = [row["ff"] <= GATE_FF, row["lut4"] <= GATE_LUT_RATIO * lut_ref]
                if target == "ice40-hx8k":
                    checks.append((row["fmax_mhz"] or 0) >= GATE_HX8K_MHZ)
                row["lut_ratio"] = row["lut4"] / lut_ref
                row["gate_met"] = all(checks)
            rows.append(row)
    return rows


def logic_cells(r: dict):
    """nextpnr-ice40's packed logic cells of a synthesis result ("-" elsewhere)."""
    return (r.get("utilization") or {}).get(LOGIC_CELL["ice40"], ["-"])[0]  # [used, available]


def core_table(rows: list[dict]) -> str:
    def fmax(r: dict) -> str:
        per_seed = [f"{f:.1f}" if f else "-" for f in r.get("fmax_per_seed", {}).values()]
        med = f"{r['fmax_mhz']:.1f}" if r.get("fmax_mhz") else "-"
        return med + (f" ({' / '.join(per_seed)})" if len(per_seed) > 1 else "")

    out = []
    for r in rows:
        proto = PROTOTYPES[r["regs"]] if r["netlist"] == "xor_t1" else None
        if "error" in r:
            out.append([r["target"], r["regs"], "-", "-", "-", "-", "-", "-", "no: " + r["error"]])
            continue
        ref = "-"
        if proto:
            lut_ref = proto[0] if r["target"].startswith("ice40") else proto[1]
            ref = f"{lut_ref} LUT4 / {proto[2]} FF" + (f"; {proto[3]}" if r["target"] == "ice40-hx8k" else "")
        verdict = "-" if "gate_met" not in r else ("yes" if r["gate_met"] else "no")
        if "lut_ratio" in r:
            verdict += f" (LUT4 {r['lut_ratio']:.2f}x)"
        elif proto:
            verdict = "not gated (the prototype's LFSR rule is not given)"
        out.append(
            [r["target"], r["regs"], r["lut4"], r["carry"], r["ff"], logic_cells(r), fmax(r), ref, verdict]
        )
    gate = (
        f"gate (XOR T1): <= {GATE_FF} FF, LUT4 <= {GATE_LUT_RATIO}x the prototype's, Fmax >= "
        f"{GATE_HX8K_MHZ:.0f} MHz on the HX8K"
    )
    header = ["target", "registers", "LUT4", "carry", "FF", "logic cells", "Fmax MHz", "spec prototype", gate]
    return markdown_table(out, header)


def cmd_core(args) -> int:
    from . import registry
    from .synth import TARGETS

    targets = [t for t in args.targets.split(",") if t]
    for t in targets:
        if t not in TARGETS:
            raise ConfigError(f"unknown target '{t}'{did_you_mean(t, TARGETS)}")
    pnr = pnr_of(args)
    cfg = registry.resolve("sfq", preset=args.preset, config=args.config, sets=args.set)
    net = registry.get("sfq").model(cfg.params).net
    rows = core_rows(str(cfg.params["netlist"]), net, targets, pnr, progress)
    md = core_table(rows)
    path = save_results(OUT, "core", rows, md)
    print(json.dumps(rows, indent=1, default=str) if args.json else md + f"\nsaved {path}")
    return EXIT_OK if all(r.get("gate_met", True) for r in rows) else EXIT_MISMATCH


def cmd_regmap(args) -> int:
    from ..models.sfq_netlist import register_map
    from . import registry

    cfg = registry.resolve("sfq", preset=args.preset, config=args.config, sets=args.set)
    build = registry.get("sfq").model(cfg.params)
    print(json.dumps(register_map(build.net, build.params.cnt_width), indent=1))
    return EXIT_OK


def add_commands(sub) -> None:
    p = sub.add_parser("regmap", help="the cfg register map of a netlist (JSON)")
    p.add_argument("--preset")
    p.add_argument("--config", help="a config or a netlist .yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.set_defaults(func=cmd_regmap)

    p = sub.add_parser(
        "core", help="the netlist's core alone (no streams or cfg) synthesised beside the spec's prototypes"
    )
    p.add_argument("--preset", default="default")
    p.add_argument("--config", help="a config or a netlist .yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--targets", default=CORE_TARGETS, help=f"comma-separated (default {CORE_TARGETS})")
    add_pnr_arguments(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_core)

    p = sub.add_parser("bench", help="pulse-events per second of the golden and timed models against PyLSE")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "xor", help="the XOR network: rates, margin, bias-scale window, offset and rate sweeps"
    )
    p.add_argument("--pulses", type=int, default=4096, help="input pulses per run at nominal bias")
    p.add_argument("--sweep-pulses", type=int, default=1024, help="input pulses per run in the sweeps")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_xor)
