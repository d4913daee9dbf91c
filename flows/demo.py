"""The main job: for each block, generate, co-simulate in both simulators, synthesise, run its application."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from . import registry
from .emit import generate
from .errors import NeurohdlError

SIMS = ("icarus", "verilator")
TARGETS = ("ice40-up5k", "ecp5-25k")


def run_demo(
    blocks: list[str],
    *,
    out: str | Path,
    sim: str = "verilator",
    steps: list[int] = (16, 32),
    limit: int | None = None,
    quick: bool = False,
    targets: tuple[str, ...] = TARGETS,
    progress: Callable[[str], None] = lambda s: None,
) -> dict:
    """``quick``: co-simulation in Icarus only (bulk mode), no synthesis, no application."""
    from ..cosim.runner import run_cosim
    from .synth import synth

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    results, lines, passed = {}, [], True
    lines += [
        "| block | preset | simulator | mismatches | cycles, back-pressured (model) "
        "| target | LUT4 | FF | BRAM | DSP | Fmax MHz |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in blocks:
        block = registry.get(name)
        cfg = registry.resolve(name, preset="default")
        progress(f"{name}: generate")
        manifest = generate(cfg, out / name / "rtl")
        cosims = {}
        for s in SIMS[:1] if quick else SIMS:
            progress(f"{name}: cosim {s}")
            r = run_cosim(
                cfg, sim=s, seed=1, vectors=20, bulk=quick, build_root=out / "cosim", progress=progress
            )
            cosims[s] = r.to_json()
            passed &= r.passed
        synths = {}
        for t in () if quick else targets:
            if block.demo_no_synth:
                synths[t] = {"error": f"not synthesised in the demo: {block.demo_no_synth}"}
                continue
            progress(f"{name}: synth {t}")
            try:
                synths[t] = synth(cfg, t, build_root=out / "synth", progress=progress)
            except NeurohdlError as e:
                synths[t] = {"error": str(e)}
        for i, (s, t) in enumerate(zip(SIMS, TARGETS, strict=True)):
            if s not in cosims:
                continue
            c, y = cosims[s], synths.get(t, {"error": "not synthesised in this run"})
            syn = (
                [y["lut4"], y["ff"], y["bram"], y["dsp"], y["fmax_mhz"]]
                if "error" not in y
                else [y["error"], "", "", "", ""]
            )
            lines.append(
                "| "
                + " | ".join(
                    str(x)
                    for x in [
                        name if i == 0 else "",
                        "default" if i == 0 else "",
                        s,
                        len(c["mismatches"]),
                        f"{c['cycles']} ({c['model_cycles']})",
                        t,
                        *syn,
                    ]
                )
                + " |"
            )
        app_result = None
        if hasattr(block, "app") and not quick:
            progress(f"{name}: application")
            app_result = block.app(
                out_dir=out / name / "app", sim=sim, steps=list(steps), limit=limit, progress=progress
            )
            passed &= app_result["passed"]
        results[name] = {"manifest": manifest, "cosim": cosims, "synth": synths, "app": app_result}
    md = "\n".join(lines)
    for name, r in results.items():
        if r["app"]:
            md += f"\n\n{name} application:\n\n{r['app']['markdown']}"
    (out / "summary.md").write_text(md + "\n")
    (out / "summary.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    return {"out": str(out), "passed": passed, "markdown": md, "results": results}
