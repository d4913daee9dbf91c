"""cocotb testbench of the ``ramp_adc`` block and its lookup baselines: every output word against the
golden model, with cfg writes kept in the order the model applied them."""

from __future__ import annotations

import cocotb
import numpy as np

from .testbench import StreamTestbench, check


class RampAdcTestbench(StreamTestbench):
    """``i`` carries one row of C codes per conversion, ``cfg`` the table writes; ``o`` is scored.

    A write listed before conversion n is offered only after conversion n-1's input was taken, and
    conversion n's input only after that write was taken, so every conversion sees exactly the writes
    whose handshake precedes its input handshake (the scoreboard rule of spec §3).
    """

    def inputs(self):
        x, cfg = self.stim["inputs"], self.stim["cfg"]
        before = cfg[:, 0] if len(cfg) else np.zeros(0, dtype=np.int64)
        writes_until = np.searchsorted(np.sort(before), np.arange(len(x)), side="right")
        beats = {"i": []}
        for n, row in enumerate(x):
            beat = {"value": [int(v) for v in row]}
            if "cfg" in self.sources and writes_until[n]:
                beat["_after"] = {"cfg": int(writes_until[n])}
            beats["i"].append(beat)
        if "cfg" in self.sources:
            order = np.argsort(before, kind="stable")
            beats["cfg"] = [
                {"kind": int(k), "group": int(g), "addr": int(a), "data": int(d), "_after": {"i": int(b)}}
                for b, k, g, a, d in cfg[order]
            ]
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


@cocotb.test()
async def ramp_adc_against_model(dut):
    tb = RampAdcTestbench(dut)
    n = len(tb.stim["inputs"])
    k_max = 1 << (int(tb.params.get("B_in", 8)) + 1)
    results = await tb.run(max_cycles=40 * (k_max + 8) * (n + len(tb.stim["cfg"])) + 10000)
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
