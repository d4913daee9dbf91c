"""The lif application: scikit-learn digits on the core, golden model and RTL side by side."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..models import lif as model
from ..models import lif_digits as app
from . import registry
from .blocks.lif import digits_network_path


def neurobench(net: model.LifNetwork, result: model.LifResult, images: int, steps: int) -> dict:
    """NeuroBench metrics per inference (arXiv 2304.04640), from the golden model's run."""
    W = net.W
    synapses = int(np.count_nonzero(W))
    layer_sizes = app.N_IN * app.N_HID + app.N_HID * app.N_OUT
    spikes = int(result.s.sum())
    return {
        "effective_acs": result.effective_acs / images,
        "dense_ops": layer_sizes * steps,
        "activation_sparsity": 1 - spikes / (images * steps * net.params.N),
        "membrane_updates": net.params.N * steps,
        "footprint_bytes": synapses + 2 * net.params.N + 8 * net.params.N_PROF,
        "connection_sparsity": 1 - synapses / layer_sizes,
        "parameter_count": layer_sizes + app.N_HID + app.N_OUT,
    }


def run(
    *,
    steps: list[int],
    sim: str = "verilator",
    limit: int | None = None,
    out_dir: str | Path = "build/demo/lif",
    progress: Callable[[str], None] = lambda s: None,
) -> dict:
    """Model accuracy at each T, then the RTL on the test images at each T, image by image."""
    from ..cosim.runner import run_cosim

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    x_train, x_test, y_train, y_test = app.load_split()
    fnet = app.load_float(Path(digits_network_path()).with_name("lif_digits_float.npz"))
    float_acc = fnet.accuracy(x_test, y_test)
    cfg = registry.resolve("lif", preset="digits")
    net = registry.get("lif").model(cfg.params)
    n_rtl = len(x_test) if limit is None else min(limit, len(x_test))
    rows = []
    for t in steps:
        progress(f"golden model, T = {t}")
        events = app.encode(x_test, t)
        res = model.LifModel(net).run(events)
        outs = app.split_outputs(res.out, t)
        pred = np.array([app.readout(o) for o in outs])
        row = {
            "T": t,
            "float_ann_accuracy": float_acc,
            "model_accuracy": float(np.mean(pred == y_test)),
            "neurobench": neurobench(net, res, len(x_test), t),
        }
        progress(f"RTL ({sim}), T = {t}, {n_rtl} images")
        rtl_events = app.encode(x_test[:n_rtl], t)
        with tempfile.TemporaryDirectory() as tmp:
            stim = Path(tmp) / "stim.npz"
            np.savez(stim, events=rtl_events)
            dump = out / f"rtl_T{t}.npz"
            cr = run_cosim(
                cfg,
                sim=sim,
                seed=0,
                stimulus=str(stim),
                dump=str(dump),
                backpressure=False,
                progress=progress,
            )
        with np.load(dump) as f:
            rtl_out = f["out"]
        rtl_outs = app.split_outputs(rtl_out, t)
        ref_outs = outs[:n_rtl]
        identical = sum(
            1 for a, b in zip(rtl_outs, ref_outs, strict=False) if a.shape == b.shape and np.array_equal(a, b)
        )
        rtl_pred = np.array([app.readout(o) for o in rtl_outs])
        acs = row["neurobench"]["effective_acs"] * n_rtl
        row.update(
            rtl_images=n_rtl,
            rtl_images_identical=identical,
            rtl_accuracy=float(np.mean(rtl_pred == y_test[: len(rtl_pred)])) if len(rtl_pred) else 0.0,
            rtl_mismatches=len(cr.mismatches),
            rtl_cycles=cr.cycles,
            model_cycles=cr.model_cycles,
            cycles_per_image=cr.cycles / max(1, n_rtl),
            sop_per_cycle=acs / cr.cycles if cr.cycles else 0.0,
            passed=cr.passed and identical == n_rtl,
        )
        rows.append(row)
    result = {"network": str(digits_network_path()), "P": net.params.P, "rows": rows}
    (out / "digits.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    return result


def table(result: dict) -> str:
    lines = [
        "| T | float ANN | model | RTL | RTL == model | cycles/image | SOP/cycle | Effective_ACs | "
        "ActivationSparsity |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        nb = r["neurobench"]
        lines.append(
            f"| {r['T']} | {r['float_ann_accuracy']:.2%} | {r['model_accuracy']:.2%} "
            f"| {r['rtl_accuracy']:.2%} "
            f"({r['rtl_images']} images) | {r['rtl_images_identical']}/{r['rtl_images']} | "
            f"{r['cycles_per_image']:.0f} | {r['sop_per_cycle']:.2f} (limit {result['P']}) | "
            f"{nb['effective_acs']:.0f} | {nb['activation_sparsity']:.3f} |"
        )
    return "\n".join(lines)
