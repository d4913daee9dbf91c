"""``neurohdl sweep``: generate, co-simulate and synthesise a block over a parameter grid.

Points run in parallel on a local process pool, or on a Dask distributed cluster. Each finished
point is saved as ``DIR/points/<key>.json`` (the key hashes the block, preset, parameters, target,
simulator, vectors and seed), so re-running the same sweep reuses it; a point that fails keeps its
reason in the table and the others still finish. The table (``sweep.md``/``sweep.json``) lists the
points in the order given, so it is the same whichever executor ran them; ``pareto.png`` plots area
against Fmax, coloured by cycles, with the Pareto-optimal points marked.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from . import registry
from .emit import write_atomic
from .errors import ConfigError, DoesNotFit, NeurohdlError, failure_reason
from .results import markdown_table, save_results

SEED = 1


def _check_name(name: str, block: str, flag: str) -> None:
    from .config import did_you_mean

    schema = registry.get(block).schema
    if name not in schema:
        raise ConfigError(f"{flag} {name}: {block} has no such parameter{did_you_mean(name, schema)}")


def parse_points(grid_specs: list[str], point_specs: list[str], block: str) -> list[dict[str, str]]:
    """The sweep's points: the product of the ``--param NAME=V1,V2,...`` axes, then each
    ``--point NAME=V,NAME=V`` as given (for parameters that must change together)."""
    grid: dict[str, list[str]] = {}
    for spec in grid_specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        vals = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not name or not vals:
            raise ConfigError(f"--param {spec!r}: expected NAME=V1,V2,...")
        _check_name(name, block, "--param")
        if name in grid:
            raise ConfigError(f"--param {name} is given twice")
        grid[name] = vals
    points = [dict(zip(grid, vals, strict=True)) for vals in itertools.product(*grid.values())]
    points = points if grid else []
    for spec in point_specs:
        point = {}
        for item in spec.split(","):
            name, sep, value = item.partition("=")
            if not sep or not name.strip() or not value.strip():
                raise ConfigError(f"--point {spec!r}: expected NAME=V,NAME=V,...")
            _check_name(name.strip(), block, "--point")
            point[name.strip()] = value.strip()
        points.append(point)
    if not points:
        raise ConfigError("give at least one --param NAME=V1,V2,... or --point NAME=V,...")
    return points


def point_key(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def run_point(spec: dict) -> dict:
    """One grid point, start to end; never raises (a failure is a result with its reason)."""
    from ..cosim.runner import run_cosim
    from .emit import generate
    from .pnr_options import PnrOptions
    from .synth import synth

    t0 = time.monotonic()
    out = Path(spec["out"])
    result = {"params": spec["params"], "status": "ok", "reason": "", "stage": ""}
    try:
        result["stage"] = "config"
        cfg = registry.resolve(
            spec["block"],
            preset=spec["preset"],
            sets=[*spec["sets"], *(f"{k}={v}" for k, v in spec["params"].items())],
        )
        result["stage"] = "generate"
        man = generate(cfg, out / "points" / spec["key"] / "rtl")
        result["verilog_sha256"] = man["sha256"]
        if spec["sim"]:
            result["stage"] = "cosim"
            res = run_cosim(
                cfg, sim=spec["sim"], seed=SEED, vectors=spec["vectors"], bulk=spec["sim"] != "icarus",
                backpressure=False, build_root=out / "cosim",
            )  # fmt: skip
            result |= {"cosim_passed": res.passed, "cycles": res.cycles, "model_cycles": res.model_cycles}
            if not res.passed:
                raise NeurohdlError(f"co-simulation: {len(res.mismatches)} mismatches, missing {res.missing}")
        if spec["target"]:
            result["stage"] = "synth"
            y = synth(cfg, spec["target"], pnr=PnrOptions((SEED,)), build_root=out / "synth")
            result |= {k: y[k] for k in ("lut4", "ff", "carry", "bram", "dsp", "fmax_mhz")}
        result["stage"] = "done"
    except DoesNotFit as e:  # what it needs, beside what it lacks
        result |= {k: e.usage[k] for k in ("lut4", "ff", "carry", "bram", "dsp")}
        result |= {"status": "failed", "reason": str(e)}
    except Exception as e:  # a bug in one point must not sink the sweep; the reason says which
        result |= {"status": "failed", "reason": failure_reason(e)}
    result["seconds"] = round(time.monotonic() - t0, 1)
    return result


def run_sweep(
    block: str,
    points: list[dict[str, str]],
    *,
    preset: str | None,
    sets: list[str] = (),
    target: str | None,
    sim: str | None,
    vectors: int,
    jobs: int,
    dask: str | None,
    out: str | Path,
    progress: Callable[[str], None] = lambda s: None,
) -> dict:
    registry.get(block)
    out = Path(out).resolve()
    (out / "points").mkdir(parents=True, exist_ok=True)
    specs = []
    for params in points:
        spec = {
            "block": block,
            "preset": preset,
            "sets": list(sets),
            "params": params,
            "target": target,
            "sim": sim,
            "vectors": vectors,
        }
        spec["key"] = point_key(spec)
        spec["out"] = str(out)
        specs.append(spec)
    results: dict[str, dict] = {}
    todo = []
    for spec in specs:
        path = out / "points" / f"{spec['key']}.json"
        if path.is_file():
            results[spec["key"]] = json.loads(path.read_text()) | {"reused": True}
        else:
            todo.append(spec)
    progress(f"sweep {block}: {len(specs)} points, {len(specs) - len(todo)} reused, {len(todo)} to run")

    def finished(spec: dict, r: dict) -> None:
        results[spec["key"]] = r
        if r["status"] == "ok":  # a failed point is tried again next time
            write_atomic(out / "points" / f"{spec['key']}.json", json.dumps(r, indent=1, default=str) + "\n")
        done = sum(1 for s in todo if s["key"] in results)
        what = "ok" if r["status"] == "ok" else f"FAILED at {r['stage']}: {r['reason']}"
        progress(f"point {done}/{len(todo)} {_label(r['params'])}: {what} ({r['seconds']} s)")

    if todo and dask:
        _run_dask(todo, dask, jobs, finished)
    elif todo:
        with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {pool.submit(run_point, s): s for s in todo}
            for f in as_completed(futures):
                finished(futures[f], f.result())
    rows = [results[s["key"]] for s in specs]
    doc = {"block": block, "preset": preset, "sets": list(sets), "target": target, "sim": sim, "points": rows}
    md = table(doc)
    path = save_results(out, "sweep", doc, md)
    plot = pareto_plot(rows, out / "pareto.png", f"{block} sweep" + (f" on {target}" if target else ""))
    return {
        "out": str(out),
        "json": str(path),
        "plot": str(plot) if plot else None,
        "markdown": md,
        "doc": doc,
    }


def _run_dask(todo: list[dict], address: str, jobs: int, finished: Callable[[dict, dict], None]) -> None:
    try:
        from dask.distributed import Client, LocalCluster
        from dask.distributed import as_completed as dask_completed
    except ImportError:
        raise NeurohdlError("--dask needs dask.distributed: pip install 'dask[distributed]'") from None
    cluster = None
    if address == "local":
        cluster = LocalCluster(n_workers=max(1, jobs), threads_per_worker=1, processes=True)
        address = cluster.scheduler_address
    try:
        client = Client(address, timeout="20s")
    except (OSError, TimeoutError) as e:
        raise NeurohdlError(f"--dask {address}: cannot reach the scheduler ({e})") from None
    try:
        futures = {client.submit(run_point, s, key=f"neurohdl-{s['key']}", pure=False): s for s in todo}
        for f in dask_completed(futures):
            finished(futures[f], f.result())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _label(params: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items())


def table(doc: dict) -> str:
    rows = []
    for r in doc["points"]:
        rows.append(
            [_label(r["params"]), r["status"], r.get("lut4", ""), r.get("ff", ""), r.get("bram", ""),
             r.get("dsp", ""), r.get("fmax_mhz", ""), r.get("cycles", ""), r["reason"]]
        )  # fmt: skip
    head = f"sweep of {doc['block']}" + (f" (preset {doc['preset']})" if doc["preset"] else "")
    head += f", with {' '.join(doc['sets'])}" if doc["sets"] else ""
    head += f", target {doc['target'] or 'none'}, co-simulation {doc['sim'] or 'none'}"
    return (
        head
        + "\n\n"
        + markdown_table(
            rows, ["point", "status", "LUT4", "FF", "BRAM", "DSP", "Fmax MHz", "cycles", "reason"]
        )
    )


def pareto_front(rows: list[dict]) -> list[int]:
    """Indices of the ok points no other ok point beats on every axis (fewer LUT4, higher Fmax,
    fewer cycles; axes a point lacks are left out)."""
    axes = [("lut4", 1), ("fmax_mhz", -1), ("cycles", 1)]
    ok = [i for i, r in enumerate(rows) if r["status"] == "ok"]
    used = [(k, s) for k, s in axes if all(k in rows[i] for i in ok)]

    def vec(i):
        return [s * rows[i][k] for k, s in used]

    front = []
    for i in ok:
        vi = vec(i)
        dominated = any(
            all(a <= b for a, b in zip(vec(j), vi, strict=True)) and vec(j) != vi for j in ok if j != i
        )
        if not dominated:
            front.append(i)
    return front


def pareto_plot(rows: list[dict], path: Path, title: str) -> Path | None:
    """Area against Fmax (or cycles, without synthesis), colour by cycles; Pareto points ringed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if r["status"] == "ok"]
    x_key = "lut4" if ok and all("lut4" in r for r in ok) else None
    y_key = "fmax_mhz" if x_key else "cycles"
    if not ok or not all(y_key in r for r in ok):
        return None
    front = set(pareto_front(rows))
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=100)
    xs = [r[x_key] if x_key else i for i, r in enumerate(ok)]
    ys = [r[y_key] for r in ok]
    cs = [r.get("cycles", 0) for r in ok]
    sc = ax.scatter(xs, ys, c=cs, cmap="viridis", s=60, zorder=3)
    if any(cs):
        fig.colorbar(sc, ax=ax, label="cycles (no back-pressure)")
    for i, r in enumerate(rows):
        if r["status"] != "ok":
            continue
        j = ok.index(r)
        ax.annotate(
            _label(r["params"]), (xs[j], ys[j]), textcoords="offset points", xytext=(5, 5), fontsize=8
        )
        if i in front:
            ax.scatter([xs[j]], [ys[j]], s=180, facecolors="none", edgecolors="red", zorder=4)
    ax.set_xlabel("LUT4" if x_key else "point")
    ax.set_ylabel("Fmax (MHz)" if y_key == "fmax_mhz" else "cycles")
    failed = len(rows) - len(ok)
    ax.set_title(title + (f" ({failed} failed point{'s' if failed != 1 else ''})" if failed else ""))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return path
