"""cocotb testbench of the ``sfq`` block: one ``i`` beat per slot, cfg beats between slots, every ``o``
beat against the golden model's output rows (beat k = row k + 1) and every ``rsp`` word against the
model's answers."""

from __future__ import annotations

import cocotb
import numpy as np

from ..models.sfq import clear_beats
from .testbench import StreamTestbench, check, interleave


class SfqTestbench(StreamTestbench):
    """``i`` carries the pulses of one slot; ``cfg`` the stimulus's register writes and reads; ``o``
    and ``rsp`` are scored.

    A cfg beat of slot k is offered once k ``i`` beats are taken (a CLEAR also once k ``o`` beats
    are), and ``i`` beat k once every cfg beat of slots up to k is taken, so a write acts from its
    slot, as in the model.
    """

    def inputs(self):
        pulses, cfg = self.stim["pulses"], self.stim["cfg"]
        weights = 1 << np.arange(pulses.shape[1])
        beats = {"i": [{"value": int(row @ weights)} for row in pulses], "cfg": []}
        for (slot, we, addr, data), clear in zip(cfg.tolist(), clear_beats(cfg), strict=True):
            # CLEAR drops an output beat not yet taken (spec §3): it waits for its slot's beat
            beats["cfg"].append(
                {"we": we, "addr": addr, "data": data, **({"_after": {"o": slot}} if clear else {})}
            )
        interleave(beats["i"], beats["cfg"], cfg[:, 0])
        return beats

    def expected_beats(self):
        weights = 1 << np.arange(self.exp["out"].shape[1])
        return {
            "o": [int(row @ weights) for row in self.exp["out"]],
            "rsp": [int(w) for w in self.exp["rsp"]],
        }

    def normalise(self, stream, beat):
        return beat["value"]

    def contexts(self):
        reads = [(slot, addr) for slot, we, addr, _ in self.stim["cfg"].tolist() if not we]

        def read(i: int) -> str:
            if i >= len(reads):
                return f"read {i} (extra)"
            return f"read {i} (addr {reads[i][1]:#x} at slot {reads[i][0]})"

        return {"o": lambda i: f"slot {i} (output row {i + 1})", "rsp": read}

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
