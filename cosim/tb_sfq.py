"""cocotb testbench of the ``sfq`` block: one ``i`` beat per slot, every ``o`` beat against the golden
model's output rows (beat k = row k + 1)."""

from __future__ import annotations

import cocotb
import numpy as np

from .testbench import StreamTestbench, check


class SfqTestbench(StreamTestbench):
    """``i`` carries the pulses of one slot; ``o`` is scored; ``cfg`` stays idle and ``rsp`` must
    stay silent."""

    def inputs(self):
        weights = 1 << np.arange(self.stim["pulses"].shape[1])
        return {"i": [{"value": int(row @ weights)} for row in self.stim["pulses"]]}

    def expected_beats(self):
        weights = 1 << np.arange(self.exp["out"].shape[1])
        return {"o": [int(row @ weights) for row in self.exp["out"]], "rsp": []}

    def normalise(self, stream, beat):
        return beat["value"]

    def contexts(self):
        return {"o": lambda i: f"slot {i} (output row {i + 1})"}

    def dump(self, received):
        n_out = self.exp["out"].shape[1]
        beats = received.get("o", [])
        return {
            "out": np.array([[(b >> k) & 1 for k in range(n_out)] for b in beats], dtype=np.int64).reshape(
                -1, n_out
            )
        }

    def max_cycles(self):
        return 200 * len(self.stim["pulses"]) + 10000


@cocotb.test()
async def sfq_against_model(dut):
    tb = SfqTestbench(dut)
    n = len(tb.stim["pulses"])
    results = await tb.run(tb.max_cycles())
    dut._log.info(
        "sfq: seed %d, %d slots, %s beats out, %d cycles, %d mismatches",
        tb.job["seed"], n, results["received"], results["cycles"], results["mismatch_count"],
    )  # fmt: skip
    check(results)
