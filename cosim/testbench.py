"""The testbench base every block's cocotb test uses.

It reads the job the runner wrote (ports, stimulus, expected outputs, seed), attaches a source with
random ``valid`` gaps to every input stream and a sink with random ``ready`` stalls to every output
stream, runs the cycle loop until every expected beat has arrived, keeps running a while to catch
extra beats, and writes ``results.json`` and ``dump.npz``. A block's testbench says only how its
stimulus becomes input beats, how expected arrays become beats, and how beats become a dump.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import asdict

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from .drivers import CycleLoop, Mismatch, Scoreboard, StreamSink, StreamSource, Throttle
from .payload import Codec

#: Probability that a source offers a beat / a sink is ready in a cycle, drawn per stream per seed.
SOURCE_PROBS = (1.0, 0.8, 0.5, 0.3)
SINK_PROBS = (1.0, 0.5, 0.1)  # stall probability 0, 0.5, 0.9 (spec)
SETTLE_CYCLES = 64


class StreamTestbench:
    """Base class: subclasses implement :meth:`inputs`, :meth:`expected_beats` and :meth:`dump`."""

    def __init__(self, dut):
        self.dut = dut
        with open(os.environ["NEUROHDL_JOB"]) as f:
            self.job = json.load(f)
        self.params = self.job["params"]
        self.rng = random.Random(self.job["seed"])
        with np.load(self.job["stimulus"]) as f:
            self.stim = {k: f[k] for k in f.files}
        with np.load(self.job["expected"]) as f:
            self.exp = {k: f[k] for k in f.files}
        bp = self.job["backpressure"]
        self.sources: dict[str, StreamSource] = {}
        self.sinks: dict[str, StreamSink] = {}
        self.throttle_probs = {}
        for name, port in self.job["ports"].items():
            codec = Codec(port["fields"])
            prob = self.rng.choice(SOURCE_PROBS if port["direction"] == "in" else SINK_PROBS) if bp else 1.0
            self.throttle_probs[name] = prob
            throttle = Throttle(self.rng, prob, burst=0.002 if bp else 0.0)
            if port["direction"] == "in":
                self.sources[name] = StreamSource(dut, name, codec, throttle)
            else:
                self.sinks[name] = StreamSink(dut, name, codec, throttle, self._beat_handler(name))
        self.scoreboard = Scoreboard(expected=self.expected_beats(), context=self.contexts())
        self.first_in: int | None = None
        self.stimulus_started = False
        self.last_out = 0
        for src in self.sources.values():
            src.on_send = self._on_send

    # -- block hooks ----------------------------------------------------------------------
    def inputs(self) -> dict[str, list[dict]]:
        """The stimulus as input beats per stream; they follow the job's setup beats. A beat's
        ``"_after": {stream: k}`` holds it back until ``k`` stimulus beats of that stream are taken."""
        raise NotImplementedError

    def expected_beats(self) -> dict[str, list]:
        raise NotImplementedError

    def normalise(self, stream: str, beat: dict):
        """A received beat as the comparable object :meth:`expected_beats` lists."""
        raise NotImplementedError

    def contexts(self) -> dict:
        return {}

    def dump(self, received: dict[str, list]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def final_checks(self, final: dict[str, dict]) -> list[Mismatch]:
        """Compare the plain outputs read after the run (counters, status) with the model."""
        return []

    # -- machinery ------------------------------------------------------------------------
    def _on_send(self, cycle: int) -> None:
        if self.first_in is None and self.stimulus_started:
            self.first_in = cycle

    def _beat_handler(self, name: str):
        def handle(beat: dict, cycle: int) -> None:
            self.scoreboard.check(name, self.normalise(name, beat))
            self.last_out = cycle

        return handle

    async def reset(self) -> None:
        kick_comb_processes(self.dut)
        self.dut.rst.value = 1
        for s in self.sources.values():
            s.valid.value = 0
        for s in self.sinks.values():
            s.ready.value = 0
        await ClockCycles(self.dut.clk, 4)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    async def run(self, max_cycles: int) -> dict:
        Clock(self.dut.clk, 10, unit="ns").start()
        await self.reset()
        drivers = [*self.sources.values(), *self.sinks.values()]
        cycle = 0
        setup = self.job.get("setup") or {}
        if setup:
            # Configuration first; the cycle count starts with the stimulus.
            for name, beats in setup.items():
                for b in beats:
                    self.sources[name].send(b)
            loop = CycleLoop(
                self.dut.clk, drivers, lambda: all(s.idle for s in self.sources.values()), max_cycles
            )
            await loop.run()
            cycle = loop.cycle
        self.stimulus_started = True
        base = {n: s.sent for n, s in self.sources.items()}

        def gate(after: dict) -> bool:
            return all(self.sources[n].sent - base[n] >= k for n, k in after.items())

        for name, beats in self.inputs().items():
            src = self.sources[name]
            src.gate = gate
            for b in beats:
                after = b.pop("_after", None) if isinstance(b, dict) else None
                src.send(b, after)

        def done() -> bool:
            return all(s.idle for s in self.sources.values()) and all(
                self.scoreboard.complete(n) for n in self.sinks
            )

        loop = CycleLoop(self.dut.clk, drivers, done, cycle + max_cycles)
        loop.cycle = cycle
        finished = await loop.run()
        # Keep every sink ready a while: a duplicated or extra beat shows up as a mismatch.
        settle = CycleLoop(self.dut.clk, drivers, lambda: False, loop.cycle + SETTLE_CYCLES)
        settle.cycle = loop.cycle
        await settle.run()
        final = {
            name: Codec(port["fields"]).decode(int(getattr(self.dut, name).value))
            for name, port in self.job.get("outputs", {}).items()
        }
        sb = self.scoreboard
        sb.mismatches += self.final_checks(final)
        received = sb.received
        results = {
            "cycles": (self.last_out - (self.first_in or 0) + 1) if received else 0,
            "sent": {n: s.sent for n, s in self.sources.items()},
            "received": {n: s.received for n, s in self.sinks.items()},
            "expected_counts": {n: len(e) for n, e in sb.expected.items()},
            "mismatches": [_jsonable(asdict(m)) for m in sb.mismatches[:20]],
            "mismatch_count": len(sb.mismatches),
            "missing": sb.missing(),
            "timed_out": not finished,
            "throttle": self.throttle_probs,
            "final": final,
        }
        np.savez(self.job["dump"], **self.dump(received))
        timing = {f"{n}_handshakes": s.handshakes for n, s in {**self.sources, **self.sinks}.items()}
        timing.update({f"{n}_offers": s.offers for n, s in self.sources.items()})
        np.savez(self.job["timing"], **{k: np.asarray(v, dtype=np.int64) for k, v in timing.items()})
        with open(self.job["results"], "w") as f:
            json.dump(results, f, indent=1)
        return results


def kick_comb_processes(handle, depth: int = 0) -> int:
    """Make Icarus evaluate every ``always @*`` block of Amaranth's Verilog once at time zero.

    Icarus starts those blocks only on an input change, so one whose inputs keep their initial
    values stays X and can poison a register for good (the time-0 race of amaranth-lang/amaranth
    #594). Yosys puts a ``dump_module`` register in every such block's sensitivity list; writing it
    runs them all. Verilator evaluates everything at time zero and has no such register.
    """
    kicked = 0
    for child in handle:
        if "dump_module" in child._name:
            child.value = 1
            kicked += 1
        elif depth < 8 and type(child).__name__ == "HierarchyObject":
            kicked += kick_comb_processes(child, depth + 1)
    return kicked


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.integer):
        return int(x)
    return x


def check(results: dict) -> None:
    """Fail the cocotb test with the first mismatch, or a count of missing beats."""
    if results["mismatches"]:
        m = results["mismatches"][0]
        raise AssertionError(
            f"{results['mismatch_count']} mismatch(es); first on {m['stream']} {m['where']}: "
            f"expected {m['expected']}, got {m['got']}"
        )
    if results["missing"] or results["timed_out"]:
        raise AssertionError(f"missing beats {results['missing']} (timed out: {results['timed_out']})")
