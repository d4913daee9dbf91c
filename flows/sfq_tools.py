"""Block commands of ``sfq`` (``neurohdl sfq <command>``): the XOR application and its sweeps."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..models import sfq_xor as xor
from .errors import EXIT_MISMATCH, EXIT_OK, NeurohdlError

OUT = Path("build/sfq")


def _md(rows: list[list], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


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
    scale = []
    for g in range(900, 1325, 25):
        progress(f"bias scale {g} permille")
        regs = xor.regs_at_scale(g)
        m = min(xor.margin(xor.rates(net, regs, pulses=sweep_pulses, offset=o)) for o in range(4))
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
    cls = xor.classify(r_nom)
    return {
        "pulses": pulses,
        "nominal_regs": nominal,
        "rates": {f"{a}{b}": v for (a, b), v in r_nom.items()},
        "classified": {f"{a}{b}": v for (a, b), v in cls.items()},
        "correct": all(cls[p] == (p[0] ^ p[1]) for p in xor.PAIRS),
        "margin": xor.margin(r_nom),
        "deterministic_rates": {f"{a}{b}": v for (a, b), v in r_det.items()},
        "deterministic_margin": xor.margin(r_det),
        "offset_margins": offsets,
        "bias_scale": scale,
        "bias_scale_window": window,
        "input_period": rate,
        "elapsed_s": round(time.monotonic() - t0, 1),
    }


def cmd_xor(args) -> int:
    if args.pulses < 16 or args.sweep_pulses < 16:
        raise NeurohdlError("--pulses and --sweep-pulses must be at least 16")
    from .cli import progress

    r = run_xor(args.pulses, args.sweep_pulses, progress)
    rows = [[f"{a}{b}", a ^ b, f"{r['rates'][f'{a}{b}']:.3f}", r["classified"][f"{a}{b}"],
             f"{r['deterministic_rates'][f'{a}{b}']:.3f}"] for a, b in xor.PAIRS]  # fmt: skip
    md = _md(rows, ["a b", "XOR", "rate (p = 0xDEA4)", "read as", "rate (p = 65535)"])
    md += f"\n\nmargin {r['margin']:.3f} at nominal bias "
    md += f"(deterministic synapses {r['deterministic_margin']:.3f}); "
    md += "B late by 1/2/3 slots: " + " / ".join(f"{v:.3f}" for v in r["offset_margins"].values())
    md += "\n\n" + _md(
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
    md += "\n\n" + _md(
        [[x["period"], f"{x['margin']:.3f}"] for x in r["input_period"]], ["input period (slots)", "margin"]
    )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "xor.json").write_text(json.dumps(r, indent=1, default=str) + "\n")
    (OUT / "xor.md").write_text(md + "\n")
    print(json.dumps(r, indent=1, default=str) if args.json else md + f"\nsaved {OUT / 'xor.json'}")
    return EXIT_OK if r["correct"] and r["margin"] > 0 else EXIT_MISMATCH


def add_commands(sub) -> None:
    p = sub.add_parser(
        "xor", help="the XOR network: rates, margin, bias-scale window, offset and rate sweeps"
    )
    p.add_argument("--pulses", type=int, default=4096, help="input pulses per run at nominal bias")
    p.add_argument("--sweep-pulses", type=int, default=1024, help="input pulses per run in the sweeps")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_xor)
