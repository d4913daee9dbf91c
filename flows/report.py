"""``neurohdl report BUILD_DIR``: one self-contained HTML page of a demo's results, plots embedded.

Per block: LIF spike raster and membrane traces (RTL over model); ramp-ADC transfer curves against
the ideal function and the error per code, with the RTL's conversions on top; FuseMax utilisation
against sequence length for both schedules and FuseMax's own formula; SFQ XOR output rates and
margin against the bias scale; then area and Fmax per target, and links to logs and waveforms.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from pathlib import Path

import numpy as np

from . import registry
from .emit import write_atomic
from .errors import ConfigError


def _figure(draw, width: float = 7.5, height: float = 3.6) -> str:
    """Run ``draw(fig)`` on a new figure; the PNG as a data URI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(width, height), dpi=90)
    draw(fig)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def _run_dir(block_result: dict) -> Path | None:
    """A co-simulation run folder of the block that kept its expected outputs and the RTL's dump."""
    for c in block_result.get("cosim", {}).values():
        d = Path(c.get("build_dir", ""))
        if (d / "expected.npz").is_file() and (d / "dump.npz").is_file():
            return d
    return None


# -- per block plots -----------------------------------------------------------------------


def lif_plots(r: dict) -> list[tuple[str, str]]:
    run = _run_dir(r)
    if run is None:
        return []
    exp, got = _npz(run / "expected.npz"), _npz(run / "dump.npz")
    s_m, s_r, v_m, v_r = exp["s"], got["s"], exp["v"], got["v"]
    ticks = min(len(s_m), len(s_r))

    def raster(fig):
        ax = fig.add_subplot(1, 1, 1)
        t, n = np.nonzero(s_m[:ticks])
        ax.scatter(t, n, s=14, marker="o", facecolors="none", edgecolors="tab:blue", label="model")
        t, n = np.nonzero(s_r[:ticks])
        ax.scatter(t, n, s=8, marker="x", color="tab:red", label="RTL")
        ax.set_xlabel("timestep")
        ax.set_ylabel("neuron")
        ax.legend(loc="upper right", fontsize=8)
        ax.set_title(f"spike raster: {int(s_m.sum())} model spikes, {int(s_r.sum())} RTL spikes")

    busiest = np.argsort(-s_m.sum(axis=0), kind="stable")[:4]

    def traces(fig):
        ax = fig.add_subplot(1, 1, 1)
        for k, n in enumerate(busiest):
            color = f"C{k}"
            ax.plot(v_m[:ticks, n], color=color, lw=2.2, alpha=0.5, label=f"neuron {n} model")
            ax.plot(v_r[:ticks, n], color=color, lw=1, ls="--", marker=".", label=f"neuron {n} RTL")
        ax.set_xlabel("timestep")
        ax.set_ylabel("membrane v")
        ax.legend(fontsize=7, ncol=2)
        ax.set_title("membrane traces of the four busiest neurons")

    return [
        (_figure(raster), "Spike raster, RTL (x) over the golden model (o), from the co-simulation run."),
        (_figure(traces), "Membrane potential per timestep: model (wide) and RTL (dashed) coincide."),
    ]


def ramp_adc_plots(r: dict) -> list[tuple[str, str]]:
    from ..models import ramp_adc as ra

    block = registry.get("ramp_adc")
    bank = block.model(r["manifest"]["params"])
    p = bank.params
    lo = ra.code_range(p.B_in)[0]
    x = np.arange(2**p.B_in) + lo
    run = _run_dir(r)
    rtl = None
    if run is not None:
        stim, got = _npz(run / "stimulus.npz"), _npz(run / "dump.npz")
        # Conversions before the first table rewrite use the tables plotted here.
        cfg = stim.get("cfg", np.zeros((0, 5)))
        n = min(len(got.get("out", [])), int(cfg[:, 0].min()) if len(cfg) else len(stim["inputs"]))
        rtl = (stim["inputs"][:n], got["out"][:n])

    def transfer(fig):
        ax = fig.add_subplot(1, 2, 1)
        ax2 = fig.add_subplot(1, 2, 2)
        for g, tb in enumerate(bank.tables):
            spec = tb.spec()
            ideal = ra.ideal_codes(spec, p.B_in, p.N).y
            ref = ra.reference(spec, p.B_in)
            y = tb.codes()
            ax.plot(x, ideal, color=f"C{g}", lw=2.5, alpha=0.4, label=f"{tb.name}: ideal quantised")
            ax.step(x, y, where="mid", color=f"C{g}", lw=1, label=f"{tb.name}: ramp table")
            if np.isfinite(ref).all():
                levels = ra.levels(spec, p.N, np.arange(2**p.N))
                ax.plot(x, np.interp(ref, levels, np.arange(2**p.N)), color="k", lw=0.6, ls=":")
            ax2.plot(x, ra.error_lsb(spec, p.B_in, p.N, y), color=f"C{g}", lw=0.8, label=tb.name)
            if rtl is not None:
                cols = [c for c in range(p.C) if (p.groups[c] if p.groups else 0) == g]
                ins, outs = rtl[0][:, cols].ravel(), rtl[1][:, cols].ravel()
                ax.scatter(
                    ins, outs, s=10, color="tab:red", zorder=3, label="RTL conversions" if g == 0 else None
                )
        ax.set_xlabel("input code")
        ax.set_ylabel("output code")
        ax.legend(fontsize=7)
        ax.set_title("transfer curve")
        ax2.axhline(0.5, color="grey", ls="--", lw=0.8)
        ax2.axhline(-0.5, color="grey", ls="--", lw=0.8)
        ax2.set_xlabel("input code")
        ax2.set_ylabel("error (output LSB)")
        ax2.set_title("error per code against the ideal function")
        ax2.legend(fontsize=7)

    return [
        (
            _figure(transfer, 10, 3.8),
            f"Ramp-ADC (B_in {p.B_in}, N {p.N}): the table's codes against the ideal quantised function "
            "(dotted: the float function), the RTL's conversions from the co-simulation in red; right, "
            "the error per input code in output LSB (spec bound 0.5).",
        )
    ]


def fusemax_plots(r: dict) -> list[tuple[str, str]]:
    from dataclasses import replace

    from ..models import fusemax as fm

    fp = registry.get("fusemax").model(r["manifest"]["params"]).fp
    ms = [64, 128, 256, 512, 1024, 2048, 4096]

    def util(fig):
        ax = fig.add_subplot(1, 1, 1)
        for inter, label in ((True, "interleaved (RTL schedule)"), (False, "serial")):
            q = replace(fp, interleave=inter)
            ax.plot(ms, [fm.t_ideal(m, m, q) / fm.cycles(m, m, q) for m in ms], marker="o", label=label)
        ax.plot(ms, [fm.t_ideal(m, m, fp) / fm.fusemax_cycles(m, m, fp) for m in ms], marker="s", ls="--",
                label="FuseMax formula (proposal.py)")  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("sequence length M = P")
        ax.set_ylabel("MAC utilisation")
        ax.set_title(f"utilisation of the {fp.R}x{fp.C} array, E = {fp.E}, F = {fp.F}")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)

    return [
        (
            _figure(util),
            "MAC utilisation (physical limit / cycles) from the cycle model, which the RTL meets.",
        )
    ]


def sfq_plots(r: dict) -> list[tuple[str, str]]:
    from ..models import sfq_xor as xor

    gs = list(range(700, 1325, 50))
    rows = []
    for g in gs:
        net = xor.xor_net(theta_out=xor.out_theta_at_scale(g))
        rows.append(xor.rates(net, xor.regs_at_scale(g), pulses=512))

    def rates(fig):
        ax = fig.add_subplot(1, 1, 1)
        for pair in xor.PAIRS:
            ax.plot(gs, [x[pair] for x in rows], marker="o", label=f"inputs {pair[0]}{pair[1]}")
        ax.plot(gs, [xor.margin(x) for x in rows], color="k", lw=2, label="margin")
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xlabel("global bias scale (permille)")
        ax.set_ylabel("output pulses per input pulse")
        ax.set_title("XOR output rates and margin against bias scale")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)

    return [
        (_figure(rates), "Rate-coded XOR (golden model, 512 pulses per point): positive margin = correct.")
    ]


PLOTS = {"lif": lif_plots, "ramp_adc": ramp_adc_plots, "fusemax": fusemax_plots, "sfq": sfq_plots}


def area_plot(results: dict) -> str | None:
    rows = [(b, t, y) for b, r in results.items() for t, y in (r.get("synth") or {}).items() if "lut4" in y]
    if not rows:
        return None

    def bars(fig):
        ax = fig.add_subplot(1, 2, 1)
        ax2 = fig.add_subplot(1, 2, 2)
        labels = [f"{b}\n{t}" for b, t, _ in rows]
        ax.bar(labels, [y["lut4"] for _, _, y in rows], color="tab:blue", label="LUT4")
        ax.bar(labels, [y["ff"] for _, _, y in rows], color="tab:orange", alpha=0.8, width=0.5, label="FF")
        ax.set_yscale("log")
        ax.set_title("area")
        ax.legend(fontsize=8)
        ax2.bar(labels, [y["fmax_mhz"] for _, _, y in rows], color="tab:green")
        ax2.set_title("Fmax (MHz)")
        for a in (ax, ax2):
            a.tick_params(axis="x", labelsize=7, rotation=45)

    return _figure(bars, 10, 4)


# -- the page --------------------------------------------------------------------------------

_STYLE = """
body { font-family: sans-serif; max-width: 1000px; margin: 2em auto; color: #222; }
h1 { border-bottom: 2px solid #444; } h2 { margin-top: 2em; border-bottom: 1px solid #aaa; }
img { max-width: 100%; border: 1px solid #ddd; } figure { margin: 1em 0; }
figcaption { font-size: 0.9em; color: #555; } table { border-collapse: collapse; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
.fail { color: #b00; font-weight: bold; } pre { overflow-x: auto; font-size: 0.8em; }
"""


def _link(path: str | None, base: Path, text: str) -> str:
    if not path or not Path(path).exists():
        return ""
    return f'<a href="{html.escape(os.path.relpath(path, base))}">{html.escape(text)}</a>'


def render(build_dir: str | Path) -> Path:
    """Write ``BUILD_DIR/report.html`` from the demo summary there; returns its path."""
    base = Path(build_dir).resolve()
    summary = base / "summary.json"
    if not summary.is_file():
        raise ConfigError(f"{build_dir}: no summary.json; run 'neurohdl demo --out {build_dir}' first")
    try:
        results = json.loads(summary.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"{summary}: not a readable demo summary ({e})") from None
    parts = [f"<h1>neurohdl report: {html.escape(str(base))}</h1>"]
    n_figs = 0
    for name, r in results.items():
        if name not in PLOTS:
            continue
        parts.append(f"<h2 id='{name}'>{name}</h2>")
        rows = []
        for sim, c in (r.get("cosim") or {}).items():
            ok = not c["mismatches"] and not c["missing"] and not c["timed_out"]
            rows.append(
                f"<tr><td>{sim}</td><td class='{'' if ok else 'fail'}'>{'pass' if ok else 'FAIL'}</td>"
                f"<td>{len(c['mismatches'])}</td><td>{c['cycles']}</td><td>{c['model_cycles']}</td>"
                f"<td>{_link(c.get('log'), base, 'log')} {_link(c.get('waves'), base, 'waves')}</td></tr>"
            )
        for target, y in (r.get("synth") or {}).items():
            if "lut4" in y:
                rows.append(
                    f"<tr><td>{target}</td><td>synth</td><td colspan=3>{y['lut4']} LUT4, {y['ff']} FF, "
                    f"{y['bram']} BRAM, {y['dsp']} DSP, {y['fmax_mhz']} MHz</td>"
                    f"<td>{_link(y.get('dir'), base, 'logs')}</td></tr>"
                )
            else:
                rows.append(f"<tr><td>{target}</td><td class='fail'>synth</td><td colspan=4>"
                            f"{html.escape(str(y.get('error')))}</td></tr>")  # fmt: skip
        if rows:
            parts.append(
                "<table><tr><th>run</th><th>result</th><th>mismatches</th><th>cycles</th><th>model</th>"
                "<th>files</th></tr>" + "".join(rows) + "</table>"
            )
        for uri, caption in PLOTS[name](r):
            parts.append(f"<figure><img src='{uri}' alt='{name} plot'><figcaption>{html.escape(caption)}"
                         "</figcaption></figure>")  # fmt: skip
            n_figs += 1
        app = r.get("app")
        if app and app.get("markdown"):
            parts.append(f"<h3>application</h3><pre>{html.escape(app['markdown'])}</pre>")
    area = area_plot(results)
    if area:
        parts.append("<h2 id='area'>area and Fmax per target</h2>")
        parts.append(f"<figure><img src='{area}' alt='area and Fmax'><figcaption>LUT4 and FF (log scale), "
                     "Fmax (nextpnr seed 1) per block and target.</figcaption></figure>")  # fmt: skip
        n_figs += 1
    page = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>neurohdl report</title>"
        f"<style>{_STYLE}</style></head><body>\n" + "\n".join(parts) + "\n"
        f"<script>console.log('neurohdl report: {n_figs} figures');</script>\n</body></html>\n"
    )
    path = base / "report.html"
    write_atomic(path, page)
    return path
