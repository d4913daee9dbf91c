"""cocotb testbench of the ``ramp_adc`` block and its lookup baselines: every output word against the
golden model, with cfg writes kept in the order the model applied them."""

from __future__ import annotations

import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly

from .payload import Codec
from .testbench import StreamTestbench, check, interleave


class RampAdcTestbench(StreamTestbench):
    """``i`` carries one row of C codes per conversion, ``cfg`` the table writes; ``o`` is scored.

    A write listed before conversion n is offered only after conversion n-1's input was taken, and
    conversion n's input only after that write was taken, so every conversion sees exactly the writes
    whose handshake precedes its input handshake (the scoreboard rule of spec §3).
    """

    def inputs(self):
        x, cfg = self.stim["inputs"], self.stim["cfg"]
        beats = {"i": [{"value": [int(v) for v in row]} for row in x]}
        if "cfg" in self.job["ports"]:
            cfg = cfg[np.argsort(cfg[:, 0], kind="stable")] if len(cfg) else cfg
            beats["cfg"] = [
                {"kind": int(k), "group": int(g), "addr": int(a), "data": int(d)} for _, k, g, a, d in cfg
            ]
            interleave(beats["i"], beats["cfg"], cfg[:, 0] if len(cfg) else [])
        return beats

    def expected_beats(self):
        return {"o": [tuple(int(v) for v in row) for row in self.exp["out"]]}

    def normalise(self, stream, beat):
        return tuple(beat["value"])

    def contexts(self):
        x = self.stim["inputs"]

        def where(i: int) -> str:
            if i >= len(x):
                return f"conversion {i} (extra)"
            exp, got = self.exp["out"][i], self.scoreboard.received["o"][i]
            cols = [k for k in range(len(exp)) if exp[k] != got[k]]
            k = cols[0] if cols else 0
            return f"conversion {i}, column {k}, s = {int(x[i][k])} ({len(cols)} column(s) differ)"

        return {"o": where}

    def dump(self, received):
        c = self.stim["inputs"].shape[1]
        return {"out": np.asarray(received.get("o", []), dtype=np.int64).reshape(-1, c)}

    def max_cycles(self):
        k_max = 1 << (int(self.params.get("B_in", 8)) + 1)
        return 40 * (k_max + 8) * (len(self.stim["inputs"]) + len(self.stim["cfg"])) + 10000


@cocotb.test()
async def ramp_adc_against_model(dut):
    tb = RampAdcTestbench(dut)
    n = len(tb.stim["inputs"])
    results = await tb.run(tb.max_cycles())
    dut._log.info(
        "ramp_adc: seed %d, %d conversions, %d cfg writes, %s beats out, %d cycles, %d mismatches",
        tb.job["seed"],
        n,
        len(tb.stim["cfg"]),
        results["received"],
        results["cycles"],
        results["mismatch_count"],
    )
    check(results)


@cocotb.test()
async def ramp_adc_reset_mid_conversion(dut):
    """After the main test: one output left untaken, the next conversion in flight, then ``rst``.
    Both must vanish, the tables must survive (they are conductances), and the next conversion
    must give the model's code with every write of the main test applied."""
    with open(os.environ["NEUROHDL_JOB"]) as f:
        job = json.load(f)
    with np.load(job["stimulus"]) as f:
        rows = f["inputs"]
    with np.load(job["expected"]) as f:
        want = [int(v) for v in f["after_reset"].reshape(-1)]
    if not len(rows):
        return
    i_codec, o_codec = Codec(job["ports"]["i"]["fields"]), Codec(job["ports"]["o"]["fields"])
    Clock(dut.clk, 10, unit="ns").start()
    if "cfg" in job["ports"]:
        dut.cfg__valid.value = 0
    dut.o__ready.value = 0
    problems = []

    async def offer(row) -> int:
        """Offer a row until it is taken; cycles waited."""
        await FallingEdge(dut.clk)
        dut.i__payload.value = i_codec.encode({"value": [int(v) for v in row]})
        dut.i__valid.value = 1
        for n in range(10000):
            await ReadOnly()
            if int(dut.i__ready.value):
                await FallingEdge(dut.clk)
                dut.i__valid.value = 0
                return n
            await FallingEdge(dut.clk)
        raise AssertionError("input never taken")

    await offer(rows[0])  # its result stays in the output register (o.ready low)
    await offer(rows[-1])
    await ClockCycles(dut.clk, 2)
    busy = int(dut.busy.value)
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    await ReadOnly()
    if int(dut.o__valid.value):
        problems.append("o.valid survived the reset")
    await offer(rows[-1])
    dut.o__ready.value = 1
    got = []
    for _ in range(4 * 2 ** (int(job["params"].get("B_in", 8)) + 1) + 64):
        await ReadOnly()
        if int(dut.o__valid.value):
            got.append(o_codec.decode(int(dut.o__payload.value))["value"])
        await FallingEdge(dut.clk)
    if got != [want]:
        problems.append(f"after reset expected exactly [{want}], got {got}")
    dut._log.info("reset test: busy at reset %d, %s", busy, problems or "ok")
    with open(job["results"]) as f:
        results = json.load(f)
    for p in problems:
        results["mismatches"].append(
            {"stream": "o", "index": -1, "where": "reset test", "expected": "", "got": p}
        )
    results["mismatch_count"] += len(problems)
    with open(job["results"], "w") as f:
        json.dump(results, f, indent=1)
    assert not problems, problems
