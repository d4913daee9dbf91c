"""``neurohdl bench``: a fixed suite that puts every block's numbers beside the spec's.

Per block, on one stimulus (fixed seed): the golden model's speed; co-simulation speed in DUT cycles
per second in Amaranth's simulator, Icarus and Verilator, per-cycle cocotb drivers and bulk harness,
as ratios; RTL cycles against the cycle model and the physical limit; area and Fmax per target; the
block's error and application figures; and the spec's anchors. Everything lands in
``DIR/results.json`` and ``DIR/results.md``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import registry
from .errors import NeurohdlError
from .results import markdown_table, save_results

SEED = 1
#: Per block: (preset, vectors) of the suite, quick and full.
SUITE = {
    True: {
        "lif": ("default", 300),
        "ramp_adc": ("default", 24),
        "sfq": ("default", 4000),
        "fusemax": ("tiny", 3),
    },
    False: {
        "lif": ("default", 400),
        "ramp_adc": ("default", 96),
        "sfq": ("default", 20000),
        "fusemax": ("default", 2),
    },
}
TARGETS = {True: ("ecp5-25k",), False: ("ice40-up5k", "ice40-hx8k", "ecp5-25k")}
#: (simulator, bulk); the first is the reference of the speed ratios.
MODES = (("amaranth", True), ("icarus", False), ("icarus", True), ("verilator", False), ("verilator", True))
#: Blocks whose quick run measures every mode; the others measure the fastest of each kind.
QUICK_ALL_MODES = ("lif",)
#: Runs per compiled-simulator bulk mode; the fastest counts (the first pays for a cold binary and
#: cold memory pages, a few hundredths of a second that matter at a million cycles per second).
REPEATS = 3


def _mode_name(sim: str, bulk: bool) -> str:
    return f"{sim} {'bulk' if bulk else 'per-cycle'}" if sim != "amaranth" else "amaranth (bulk)"


def bench_block(name: str, *, quick: bool, out: Path, progress: Callable[[str], None]) -> dict:
    from ..cosim.runner import run_cosim
    from .synth import synth

    block = registry.get(name)
    preset, vectors = SUITE[quick][name]
    cfg = registry.resolve(name, preset=preset)
    model = block.model(cfg.params)
    stim = block.stimulus(model, np.random.default_rng(SEED), vectors)
    stim_path = out / name / "stimulus.npz"
    stim_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(stim_path, **stim)
    r: dict = {"preset": preset, "vectors": vectors, "seed": SEED, "stimulus": str(stim_path)}

    progress(f"{name}: golden model")
    t0 = time.perf_counter()
    block.expected(model, stim)
    model_s = time.perf_counter() - t0
    model_cycles = block.cycle_model(model, stim)
    r["model"] = {"seconds": round(model_s, 4), "cycles": model_cycles}

    modes = MODES if (not quick or name in QUICK_ALL_MODES) else (("icarus", False), ("verilator", True))
    r["cosim"] = {}
    for sim, bulk in modes:
        progress(f"{name}: cosim {_mode_name(sim, bulk)}")
        runs = [
            run_cosim(
                cfg, sim=sim, seed=SEED, stimulus=str(stim_path), bulk=bulk, build_root=out / "cosim",
                progress=progress,
            )
            for _ in range(REPEATS if bulk and sim != "amaranth" else 1)
        ]  # fmt: skip
        res = max(runs, key=lambda x: x.cycles_per_second)
        r["cosim"][_mode_name(sim, bulk)] = {
            "passed": all(x.passed for x in runs),
            "mismatches": sum(len(x.mismatches) for x in runs),
            "runs": len(runs),
            "cycles": res.cycles,
            "sim_cycles": res.sim_cycles,
            "sim_seconds": res.sim_seconds,
            "cycles_per_second": round(res.cycles_per_second),
            "wall_seconds": res.elapsed_s,
            "log": res.log,
        }
    ref = next(iter(r["cosim"].values()))["sim_cycles"]
    r["model"]["cycles_per_second"] = round(ref / model_s) if model_s else None

    progress(f"{name}: cycles without back-pressure")
    res = run_cosim(
        cfg, sim="verilator", seed=SEED, stimulus=str(stim_path), bulk=True, backpressure=False,
        build_root=out / "cosim",
    )  # fmt: skip
    limit = block.cycle_limit(model, stim)
    r["cycles"] = {
        "rtl": res.cycles,
        "passed": res.passed,
        "model": model_cycles,
        "limit": round(limit[0], 1) if limit else None,
        "limit_formula": limit[1] if limit else "",
    }

    r["synth"] = {}
    for target in TARGETS[quick]:
        progress(f"{name}: synth {target}")
        try:
            y = synth(cfg, target, build_root=out / "synth", progress=progress)
            r["synth"][target] = {k: y[k] for k in ("lut4", "ff", "carry", "bram", "dsp", "fmax_mhz")}
        except NeurohdlError as e:
            r["synth"][target] = {"error": str(e)}

    progress(f"{name}: error and application figures")
    r["figures"] = [list(f) for f in block.figures(quick)]
    r["anchors"] = [list(a) for a in block.anchors]
    return r


def run_bench(
    blocks: list[str], *, quick: bool, out: str | Path, progress: Callable[[str], None] = lambda s: None
) -> dict:
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    results = {name: bench_block(name, quick=quick, out=out, progress=progress) for name in blocks}
    doc = {"quick": quick, "seconds": round(time.monotonic() - t0, 1), "blocks": results}
    md = markdown(doc)
    path = save_results(out, "results", doc, md)
    return {"out": str(out), "json": str(path), "markdown": md, "results": doc}


def markdown(doc: dict) -> str:
    blocks = doc["blocks"]
    speed_rows = []
    for name, r in blocks.items():
        runs = r["cosim"]
        ref_name, ref = next(iter(runs.items()))
        for mode, c in runs.items():
            ratio = c["cycles_per_second"] / ref["cycles_per_second"] if ref["cycles_per_second"] else 0
            speed_rows.append(
                [name, mode, "ok" if c["passed"] else "FAIL", c["sim_cycles"], f"{c['cycles_per_second']:,}",
                 f"{ratio:.1f}x {ref_name}", c["wall_seconds"]]
            )  # fmt: skip
        m = r["model"]
        speed_rows.append(
            [name, "golden model (numpy)", "", m["cycles"], f"{m['cycles_per_second']:,}",
             "DUT-cycle equivalent", m["seconds"]]
        )  # fmt: skip
    cycle_rows = [
        [name, r["preset"], r["vectors"], r["cycles"]["rtl"], r["cycles"]["model"], r["cycles"]["limit"],
         f"{r['cycles']['rtl'] / r['cycles']['limit']:.3f}" if r["cycles"]["limit"] else "",
         r["cycles"]["limit_formula"]]
        for name, r in blocks.items()
    ]  # fmt: skip
    synth_rows = []
    for name, r in blocks.items():
        for target, y in r["synth"].items():
            synth_rows.append(
                [name, target, y["error"], "", "", "", ""] if "error" in y
                else [name, target, f"{y['lut4']} + {y['carry']} carry", y["ff"], y["bram"], y["dsp"],
                      y["fmax_mhz"]]
            )  # fmt: skip
    fig_rows = [[name, *f] for name, r in blocks.items() for f in r["figures"]]
    fig_rows += [[name, a[0], "", a[1]] for name, r in blocks.items() for a in r["anchors"]]
    parts = [
        f"# neurohdl bench ({'quick' if doc['quick'] else 'full'}, seed {SEED}, {doc['seconds']} s)",
        "## Co-simulation speed (DUT cycles per second, same design and stimulus)",
        markdown_table(
            speed_rows, ["block", "simulator", "result", "cycles", "cycles/s (best run)", "ratio", "wall s"]
        ),
        "## RTL cycles without back-pressure against the model and the physical limit",
        markdown_table(
            cycle_rows,
            ["block", "preset", "vectors", "RTL", "cycle model", "limit", "RTL / limit", "limit is"],
        ),
        "## Synthesis (nextpnr seed 1)",
        markdown_table(synth_rows, ["block", "target", "LUT4", "FF", "BRAM", "DSP", "Fmax MHz"]),
        "## Error, application and the spec's anchors (ours vs the best known)",
        markdown_table(fig_rows, ["block", "figure", "ours", "spec bound / anchor"]),
    ]
    return "\n\n".join(parts)
