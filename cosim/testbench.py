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
import time
from dataclasses import asdict

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, First, ReadOnly, RisingEdge, Timer

from ..hdl.bulk_harness import SETTLE_CYCLES, throttle_threshold
from .drivers import CycleLoop, Mismatch, Scoreboard, StreamSink, StreamSource, Throttle
from .payload import Codec

#: Probability that a source offers a beat / a sink is ready in a cycle, drawn per stream per seed.
SOURCE_PROBS = (1.0, 0.8, 0.5, 0.3)
SINK_PROBS = (1.0, 0.5, 0.1)  # stall probability 0, 0.5, 0.9 (spec)


def interleave(
    main: list[dict], side: list[dict], slots, main_name: str = "i", side_name: str = "cfg"
) -> None:
    """Gate each ``side`` beat j between ``main`` beats slots[j] - 1 and slots[j] (``slots`` in rising
    order): it waits for slots[j] main handshakes, and main beat k for every side beat of a slot up
    to k. Adds the ``_after`` entries to the beats in place."""
    until = np.searchsorted(np.asarray(slots, dtype=np.int64), np.arange(len(main)), side="right")
    for k, beat in enumerate(main):
        if until[k]:
            beat.setdefault("_after", {})[side_name] = int(until[k])
    for beat, slot in zip(side, slots, strict=True):
        beat.setdefault("_after", {})[main_name] = int(slot)


class StreamTestbench:
    """Base class: subclasses implement :meth:`inputs`, :meth:`expected_beats` and :meth:`dump`."""

    def __init__(self, dut, job: dict | None = None, stim: dict | None = None, expected: dict | None = None):
        """``dut`` is None outside cocotb (planning a bulk run, or Amaranth's simulator); ``job``,
        ``stim`` and ``expected`` default to the files the runner wrote."""
        self.dut = dut
        if job is None:
            with open(os.environ["NEUROHDL_JOB"]) as f:
                job = json.load(f)
        self.job = job
        self.params = self.job["params"]
        self.rng = random.Random(self.job["seed"])
        self.stim = stim if stim is not None else _load_npz(self.job["stimulus"])
        self.exp = expected if expected is not None else _load_npz(self.job["expected"])
        bp = self.job["backpressure"]
        ports = self.job["ports"]
        self.throttle_probs = {
            name: self.rng.choice(SOURCE_PROBS if port["direction"] == "in" else SINK_PROBS) if bp else 1.0
            for name, port in ports.items()
        }
        self.bulk = self.job.get("bulk")
        self.sources: dict[str, StreamSource] = {}
        self.sinks: dict[str, StreamSink] = {}
        if dut is not None and not self.bulk:
            for name, port in ports.items():
                codec = Codec(port["fields"])
                throttle = Throttle(self.rng, self.throttle_probs[name], burst=0.002 if bp else 0.0)
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
        ``"_after": {stream: k}`` holds it back until ``k`` stimulus beats of that stream (input or
        output) have been handshaken."""
        raise NotImplementedError

    def expected_beats(self) -> dict[str, list]:
        raise NotImplementedError

    def normalise(self, stream: str, beat: dict):
        """A received beat as the comparable object :meth:`expected_beats` lists."""
        raise NotImplementedError

    def contexts(self) -> dict:
        return {}

    def max_cycles(self) -> int:
        """A generous bound on the stimulus's cycles, past which the run counts as timed out."""
        raise NotImplementedError

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
        """Run the job, per cycle from Python or (``bulk`` jobs) inside the simulated harness; score
        every output beat and write ``results.json``, ``dump.npz`` and ``timing.npz``."""
        if self.bulk:
            return await self.run_bulk(CocotbAccess(self.dut), max_cycles)
        Clock(self.dut.clk, 10, unit="ns").start()
        await self.reset()
        t0 = time.perf_counter()
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

        def handshakes() -> dict[str, int]:
            sent = {n: s.sent for n, s in self.sources.items()}
            return sent | {n: s.received for n, s in self.sinks.items()}

        base = handshakes()

        def gate(after: dict) -> bool:
            now = handshakes()
            return all(now[n] - base[n] >= k for n, k in after.items())

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
        timing = {f"{n}_handshakes": s.handshakes for n, s in {**self.sources, **self.sinks}.items()}
        timing.update({f"{n}_offers": s.offers for n, s in self.sources.items()})
        return self._finish(
            finished=finished,
            cycles=(self.last_out - (self.first_in or 0) + 1) if self.scoreboard.received else 0,
            sent={n: s.sent for n, s in self.sources.items()},
            final=final,
            speed=(settle.cycle, time.perf_counter() - t0),
            timing=timing,
        )

    def bulk_plan(self) -> tuple[dict[str, dict], dict[str, int]]:
        """The job as :class:`~neurohdl.hdl.bulk_harness.BulkHarness` loads it: per input stream its
        words (setup beats first), setup count and ``after`` tables (absolute handshake counts of
        the named stream); per output stream the expected beat count."""
        setup = self.job.get("setup") or {}
        inputs = self.inputs()
        sources = {}
        for name, port in self.job["ports"].items():
            if port["direction"] != "in":
                continue
            codec = Codec(port["fields"])
            head, beats = setup.get(name, []), inputs.get(name, [])
            words = [codec.encode(b) for b in head]
            after: dict[str, list[int]] = {}
            for i, b in enumerate(beats):
                for other, k in ((b.pop("_after", None) if isinstance(b, dict) else None) or {}).items():
                    table = after.setdefault(other, [0] * (len(head) + len(beats)))
                    table[len(head) + i] = len(setup.get(other, [])) + k
                words.append(codec.encode(b))
            sources[name] = {"words": words, "setup": len(head), "after": after}
        sinks = {n: len(e) for n, e in self.scoreboard.expected.items()}
        return sources, sinks

    async def run_bulk(self, io: BulkAccess, max_cycles: int) -> dict:
        """The bulk run: load the harness's memories, let it run alone, read the captures back."""
        sources, sinks = self.bulk_plan()
        await io.reset()
        for sel, (stream, other) in enumerate(self.bulk["load_map"]):
            await io.load(sel, sources[stream]["after"][other] if other else sources[stream]["words"])
        for name, src in sources.items():
            io.set(f"{name}_count", len(src["words"]))
            io.set(f"{name}_setup", src["setup"])
        for name, n in sinks.items():
            io.set(f"{name}_expected", n)
        for name, prob in self.throttle_probs.items():
            io.set(f"{name}_thr", throttle_threshold(prob))
            io.set(f"{name}_seed", self.rng.getrandbits(32))
        setup_beats = sum(s["setup"] for s in sources.values())
        t0 = time.perf_counter()
        finished = await io.run(max_cycles + 8 * setup_beats)
        speed = (io.get("cycles"), time.perf_counter() - t0)
        received = {}
        for name, port in self.job["ports"].items():
            if port["direction"] != "out":
                continue
            codec = Codec(port["fields"])
            received[name] = n = io.get(f"{name}_received")
            depth = self.bulk["sink_depth"][name]
            for word in await io.read_back(f"{name}_rb", min(n, depth)):
                self.scoreboard.check(name, self.normalise(name, codec.decode(word)))
            if n > depth:
                self.scoreboard.mismatches.append(
                    Mismatch(
                        name, depth, f"beats {depth}..{n - 1} (past the capture memory)", "none", n - depth
                    )
                )
        have = sum(len(v) for v in self.scoreboard.received.values())
        final = {
            name: Codec(port["fields"]).decode(io.get(name))
            for name, port in self.job.get("outputs", {}).items()
        }
        return self._finish(
            finished=finished,
            cycles=(io.get("last_out") - io.get("first_in") + 1) if have else 0,
            sent={n: io.get(f"{n}_sent") for n in sources},
            final=final,
            speed=speed,
            timing={},
            received_counts=received,
        )

    def _finish(self, *, finished, cycles, sent, final, speed, timing, received_counts=None) -> dict:
        sb = self.scoreboard
        sb.mismatches += self.final_checks(final)
        received = sb.received
        results = {
            "cycles": cycles,
            "sent": sent,
            "received": received_counts or {n: s.received for n, s in self.sinks.items()},
            "expected_counts": {n: len(e) for n, e in sb.expected.items()},
            "mismatches": [_jsonable(asdict(m)) for m in sb.mismatches[:20]],
            "mismatch_count": len(sb.mismatches),
            "missing": sb.missing(),
            "timed_out": not finished,
            "throttle": self.throttle_probs,
            "final": final,
            "sim_cycles": int(speed[0]),
            "sim_seconds": round(speed[1], 4),
        }
        np.savez(self.job["dump"], **self.dump(received))
        np.savez(self.job["timing"], **{k: np.asarray(v, dtype=np.int64) for k, v in timing.items()})
        with open(self.job["results"], "w") as f:
            json.dump(results, f, indent=1)
        return results


class BulkAccess:
    """How :meth:`StreamTestbench.run_bulk` reaches the harness: one implementation per simulator
    interface (cocotb here; Amaranth's simulator in :mod:`neurohdl.cosim.pysim`)."""

    async def reset(self) -> None:
        raise NotImplementedError

    async def load(self, sel: int, words: list[int]) -> None:
        raise NotImplementedError

    def set(self, name: str, value: int) -> None:
        raise NotImplementedError

    def get(self, name: str) -> int:
        raise NotImplementedError

    async def run(self, max_cycles: int) -> bool:
        """Raise ``run`` and wait for ``done``; False if ``max_cycles`` pass first."""
        raise NotImplementedError

    async def read_back(self, port: str, n: int) -> list[int]:
        raise NotImplementedError


class CocotbAccess(BulkAccess):
    def __init__(self, dut):
        self.dut = dut

    async def reset(self) -> None:
        # The bulk top makes its own clock.
        kick_comb_processes(self.dut)
        self.dut.rst.value = 1
        for port in ("run", "load_en", "load_sel", "load_addr", "load_data", "rb_addr"):
            getattr(self.dut, port).value = 0
        await ClockCycles(self.dut.clk, 4)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    async def load(self, sel: int, words: list[int]) -> None:
        self.dut.load_sel.value = sel
        self.dut.load_en.value = 1
        for addr, word in enumerate(words):
            self.dut.load_addr.value = addr
            self.dut.load_data.value = word
            await RisingEdge(self.dut.clk)
        self.dut.load_en.value = 0

    def set(self, name: str, value: int) -> None:
        getattr(self.dut, name).value = value

    def get(self, name: str) -> int:
        return int(getattr(self.dut, name).value)

    async def run(self, max_cycles: int) -> bool:
        await ClockCycles(self.dut.clk, 2)  # the throttles take their seeds while run is low
        self.dut.run.value = 1
        await First(RisingEdge(self.dut.done), Timer(10 * max_cycles, unit="ns"))
        await ReadOnly()
        return bool(int(self.dut.done.value))

    async def read_back(self, port: str, n: int) -> list[int]:
        await Timer(1, unit="ns")  # leave the read-only phase
        out = []
        for addr in range(n):
            self.dut.rb_addr.value = addr
            await Timer(1, unit="ns")
            out.append(int(getattr(self.dut, port).value))
        return out


def _load_npz(path: str) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


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
