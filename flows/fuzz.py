"""``neurohdl fuzz``: co-simulate random legal configurations of a block under back-pressure.

Run ``i`` draws its configuration from ``numpy.random.default_rng(seed + i)`` through the block's
:meth:`~neurohdl.flows.registry.Block.random_params` and co-simulates it with random stimulus and
random ``valid``/``ready`` from the same seed, so every run is reproduced by the ``neurohdl cosim``
command the table gives for it. A run fails on a mismatch, a beat dropped or duplicated (the beats
received differ from the model's count), a timeout, or an error anywhere from configuration to
simulation; the others still finish.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from . import registry
from .errors import failure_reason
from .results import markdown_table, save_results


def as_sets(params: dict) -> list[str]:
    """Parameters as ``--set`` overrides."""
    return [f"{k}={('true' if v else 'false') if isinstance(v, bool) else v}" for k, v in params.items()]


def draw(block: str, seed: int) -> list[str]:
    """Run ``seed``'s configuration as ``--set`` overrides."""
    return as_sets(registry.get(block).random_params(np.random.default_rng(seed)))


def reproduce(block: str, sets: list[str], sim: str, seed: int, vectors: int) -> str:
    args = " ".join(f"--set {s}" for s in sets)
    return f"neurohdl cosim {block} {args} --sim {sim} --seed {seed} --vectors {vectors}"


def run_one(block: str, seed: int, sim: str, vectors: int, build_root: str) -> dict:
    """One run, start to end; never raises (a failure is a result with its reason)."""
    from ..cosim.runner import run_cosim

    t0 = time.monotonic()
    r = {"seed": seed, "sets": [], "status": "ok", "reason": ""}
    try:
        r["sets"] = sets = draw(block, seed)
        cfg = registry.resolve(block, sets=sets)
        res = run_cosim(cfg, sim=sim, seed=seed, vectors=vectors, build_root=build_root)
        r |= {"cycles": res.cycles, "received": res.received, "expected": res.expected, "log": res.log}
        if not res.passed or res.received != res.expected:
            what = [f"{len(res.mismatches)} mismatches"] if res.mismatches else []
            what += [f"missing {res.missing}"] if any(res.missing.values()) else []
            what += ["timed out"] if res.timed_out else []
            if res.received != res.expected:
                what.append(f"received {res.received}, expected {res.expected}")
            first = f"; first {res.mismatches[0]}" if res.mismatches else ""
            r |= {"status": "failed", "reason": ", ".join(what or ["failed"]) + first}
    except Exception as e:  # a bug in one run must not sink the others; the reason says which
        r |= {"status": "failed", "reason": failure_reason(e)}
    r["seconds"] = round(time.monotonic() - t0, 1)
    return r


def run_fuzz(
    block: str,
    *,
    runs: int,
    seed: int,
    sim: str,
    vectors: int,
    jobs: int,
    out: str | Path,
    progress: Callable[[str], None] = lambda s: None,
) -> dict:
    registry.get(block)
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    seeds = range(seed, seed + runs)
    progress(f"fuzz {block}: {runs} random configurations, seeds {seed}..{seed + runs - 1}, {sim}")
    results: dict[int, dict] = {}

    def finished(r: dict) -> None:
        results[r["seed"]] = r
        what = "ok" if r["status"] == "ok" else f"FAILED: {r['reason']}"
        progress(f"run {len(results)}/{runs} seed {r['seed']}: {what} ({r['seconds']} s)")

    build_root = str(out / "cosim")
    if jobs == 1:
        for s in seeds:
            finished(run_one(block, s, sim, vectors, build_root))
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(run_one, block, s, sim, vectors, build_root) for s in seeds]
            for f in as_completed(futures):
                finished(f.result())
    rows = [results[s] for s in seeds]
    for r in rows:
        if r["status"] != "ok":
            r["reproduce"] = reproduce(block, r["sets"], sim, r["seed"], vectors)
    doc = {"block": block, "sim": sim, "seed": seed, "runs": runs, "vectors": vectors, "results": rows}
    md = table(doc)
    path = save_results(out, "fuzz", doc, md)
    return {"out": str(out), "json": str(path), "markdown": md, "doc": doc}


def table(doc: dict) -> str:
    rows = [
        [r["seed"], " ".join(r["sets"]), r["status"], r.get("cycles", ""), r["seconds"], r["reason"]]
        for r in doc["results"]
    ]
    head = (
        f"fuzz of {doc['block']}: {doc['runs']} random configurations in {doc['sim']}, "
        f"{doc['vectors']} vectors each, random back-pressure"
    )
    failed = [r for r in doc["results"] if r["status"] != "ok"]
    tail = "".join(f"\n\nseed {r['seed']}: {r['reproduce']}" for r in failed)
    body = markdown_table(rows, ["seed", "configuration", "status", "cycles", "s", "reason"])
    return f"{head}\n\n{body}{tail}"
