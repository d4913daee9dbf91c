"""The ``ramp_adc`` application run: LSTM accuracies with float, ramp-ADC and perturbed activations,
and the recurrence of the first test images through the RTL, bit-exact with the golden model."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..models import ramp_lstm as lstm
from ..models.ramp_whatif import Variation
from . import registry

SEEDS = (0, 1, 2)
WIDTHS = ((8, 3), (8, 4), (8, 5), (10, 8))
#: target drop from float per width (spec §5)
DROP_LIMIT = {(8, 3): 4.0, (8, 4): 1.5, (8, 5): 1.0, (10, 8): 0.5}
CONDITIONS = {
    "sigma_p 1 %": Variation(sigma_prog=0.01),
    "sigma_p 1 %, calibrated": Variation(sigma_prog=0.01, calibrate=True),
    "sigma_p 2 %": Variation(sigma_prog=0.02),
    "sigma_p 2 %, calibrated": Variation(sigma_prog=0.02, calibrate=True),
    "stuck-OFF 2 %": Variation(p_off=0.02),
    "stuck-OFF 2 %, calibrated": Variation(p_off=0.02, calibrate=True),
}
INSTANCES = 10
RTL_IMAGES = 32


def accuracies(progress: Callable[[str], None]) -> dict:
    _, _, xt, yt = lstm.load_split()
    rows = {}
    for seed in SEEDS:
        progress(f"LSTM seed {seed}: train (40 epochs) and evaluate")
        net = lstm.train(seed)
        r = {"float": lstm.accuracy(net, xt, yt)}
        for b, n in WIDTHS:
            r[f"B_in={b}, N={n}"] = lstm.accuracy(net, xt, yt, lstm.ramp_acts(b, n))
        for name, var in CONDITIONS.items():
            accs = [lstm.accuracy(net, xt, yt, lstm.noisy_acts(8, 5, var, k)) for k in range(INSTANCES)]
            r[f"N=5, {name}"] = float(np.mean(accs))
            r[f"N=5, {name} (worst)"] = float(np.min(accs))
        rows[seed] = r
    return rows


def rtl_subset(out_dir: Path, sim: str, images: int, progress: Callable[[str], None]) -> dict:
    """The lstm preset (C=128, G=2) converts every gate code of the recurrence for the first test
    images (seed-0 weights); every code and every prediction must equal the golden model's."""
    from ..cosim.runner import run_cosim

    cfg = registry.resolve("ramp_adc", preset="lstm")
    bank = registry.get("ramp_adc").model(cfg.params)
    _, _, xt, yt = lstm.load_split()
    net = lstm.train(0)
    x = xt[:images]
    s, y_model, pred_model = lstm.conversions(net, x, bank.convert, 8, 5)
    out_dir.mkdir(parents=True, exist_ok=True)
    stim = out_dir / "lstm_stimulus.npz"
    np.savez(stim, inputs=s, cfg=np.zeros((0, 5), dtype=np.int64))
    dump = out_dir / "lstm_rtl.npz"
    progress(f"RTL: {len(s)} conversions of {images} images in {sim}")
    res = run_cosim(cfg, sim=sim, seed=1, stimulus=str(stim), dump=str(dump), build_root=out_dir / "cosim")
    with np.load(dump) as f:
        y_rtl = f["out"]
    # Close the loop on the RTL's codes: the recurrence driven by them must ask for the same inputs.
    replay = iter(y_rtl.reshape(images, -1, y_rtl.shape[1]).transpose(1, 0, 2))
    s_rtl, _, pred_rtl = lstm.conversions(net, x, lambda rows: next(replay), 8, 5)
    return {
        "conversions": int(len(s)),
        "images": images,
        "sim": sim,
        "codes_equal": bool(y_rtl.shape == y_model.shape and (y_rtl == y_model).all()),
        "inputs_equal": bool((s_rtl == s).all()),
        "predictions_equal": bool((pred_rtl == pred_model).all()),
        "rtl_accuracy": float((pred_rtl == yt[:images]).mean()),
        "cosim_passed": res.passed,
        "mismatches": len(res.mismatches),
        "log": res.log,
    }


def table(result: dict) -> str:
    rows = result["accuracy"]
    keys = [k for k in rows[SEEDS[0]] if not k.endswith("(worst)")]
    lines = ["| activations | " + " | ".join(f"seed {s}" for s in SEEDS) + " | mean | drop | target |"]
    lines.append("|---|" + "---|" * (len(SEEDS) + 3))
    fl = np.mean([rows[s]["float"] for s in SEEDS])
    for k in keys:
        vals = [rows[s][k] for s in SEEDS]
        mean = np.mean(vals)
        target = ""
        for (b, n), lim in DROP_LIMIT.items():
            if k == f"B_in={b}, N={n}":
                target = f"drop <= {lim}"
        if k == "float":
            target = ">= 95.0 %"
        if k == "N=5, sigma_p 1 %, calibrated":
            target = "within 1.5 of N=5"
        cells = " | ".join(f"{100 * v:.1f}" for v in vals)
        lines.append(f"| {k} | {cells} | {100 * mean:.2f} | {100 * (fl - mean):+.2f} | {target} |")
    r = result.get("rtl")
    if r:
        lines.append("")
        lines.append(
            f"RTL ({r['sim']}): {r['conversions']} conversions of {r['images']} images, codes equal: "
            f"{r['codes_equal']}, recurrence inputs equal: {r['inputs_equal']}, predictions equal: "
            f"{r['predictions_equal']}, accuracy on them {100 * r['rtl_accuracy']:.1f} %"
        )
    return "\n".join(lines)


def checks(result: dict) -> dict[str, bool]:
    rows = result["accuracy"]

    def mean(k):
        return 100 * np.mean([rows[s][k] for s in SEEDS])

    out = {"float >= 95 %": mean("float") >= 95.0}
    for (b, n), lim in DROP_LIMIT.items():
        out[f"B_in={b}, N={n} drop <= {lim}"] = mean("float") - mean(f"B_in={b}, N={n}") <= lim
    out["sigma_p 1 % calibrated within 1.5 of N=5"] = (
        mean("B_in=8, N=5") - mean("N=5, sigma_p 1 %, calibrated") <= 1.5
    )
    if result.get("rtl"):
        r = result["rtl"]
        out["RTL bit-exact"] = r["codes_equal"] and r["inputs_equal"] and r["predictions_equal"]
    return out


def run(*, out_dir, sim: str = "verilator", limit: int | None = None, progress=lambda s: None) -> dict:
    out_dir = Path(out_dir)
    result = {"accuracy": accuracies(progress)}
    if sim != "none":
        result["rtl"] = rtl_subset(out_dir, sim, min(limit or RTL_IMAGES, RTL_IMAGES), progress)
    result["checks"] = checks(result)
    result["passed"] = all(result["checks"].values())
    result["markdown"] = table(result)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "lstm.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    (out_dir / "lstm.md").write_text(result["markdown"] + "\n")
    return result
