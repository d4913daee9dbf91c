"""cocotb testbench of the ``lif`` core: every ``ev_out`` beat and every ``trace`` beat against the model."""

from __future__ import annotations

import cocotb
import numpy as np

from .drivers import Mismatch
from .testbench import StreamTestbench, check


class LifTestbench(StreamTestbench):
    """``ev_in`` carries the stimulus commands; ``ev_out`` and ``trace`` are scored in order."""

    def _geometry(self):
        p = self.params
        return p["N"], p["P"], -(-p["N"] // p["P"])

    def inputs(self):
        return {"ev_in": [{"kind": int(k), "addr": int(a)} for k, a in self.stim["events"]]}

    def expected_beats(self):
        n, p, g = self._geometry()
        exp = {"ev_out": [(int(k), int(a)) for k, a in self.exp["out"]]}
        if "trace" in self.job["ports"]:
            beats = []
            pad = g * p - n
            arrays = {k: np.pad(self.exp[k], ((0, 0), (0, pad))) for k in ("u", "v", "ref", "s")}
            for t in range(arrays["v"].shape[0]):
                for gi in range(g):
                    sl = slice(gi * p, (gi + 1) * p)
                    s_mask = int(sum(int(b) << j for j, b in enumerate(arrays["s"][t, sl])))
                    beats.append(
                        (gi, *(tuple(int(x) for x in arrays[k][t, sl]) for k in ("u", "v", "ref")), s_mask)
                    )
            exp["trace"] = beats
        return exp

    def normalise(self, stream, beat):
        if stream == "ev_out":
            return (beat["kind"], beat["addr"])
        return (beat["g"], tuple(beat["u"]), tuple(beat["v"]), tuple(beat["ref"]), beat["s"])

    def contexts(self):
        ticks_before = np.cumsum([k == 1 for k, _ in self.exp["out"]])
        g = self._geometry()[2]

        def out_ctx(i):
            step = int(ticks_before[i - 1]) if 0 < i <= len(ticks_before) else 0
            return f"beat {i} (step {step})"

        return {"ev_out": out_ctx, "trace": lambda i: f"beat {i} (step {i // g}, group {i % g})"}

    def final_checks(self, final):
        """perf.words and perf.ticks equal the model's counts exactly (spec §4)."""
        if "perf" not in final:
            return []
        out = []
        for key in ("words", "ticks"):
            want, got = int(self.exp[key]), final["perf"][key]
            if want != got:
                out.append(Mismatch("perf", 0, f"counter {key}", want, got))
        return out

    def dump(self, received):
        n, p, g = self._geometry()
        out = np.asarray(received.get("ev_out", []), dtype=np.int64).reshape(-1, 2)
        d = {"out": out}
        tr = received.get("trace", [])
        ticks = len(tr) // g
        for idx, key in ((1, "u"), (2, "v"), (3, "ref")):
            a = np.zeros((ticks, g * p), dtype=np.int64)
            for i, beat in enumerate(tr[: ticks * g]):
                a[i // g, beat[0] * p : (beat[0] + 1) * p] = beat[idx]
            d[key] = a[:, :n]
        s = np.zeros((ticks, g * p), dtype=np.int64)
        for i, beat in enumerate(tr[: ticks * g]):
            for j in range(p):
                s[i // g, beat[0] * p + j] = (beat[4] >> j) & 1
        d["s"] = s[:, :n]
        return d

    def max_cycles(self):
        return 400 * len(self.stim["events"]) + 200 * len(self.scoreboard.expected.get("trace", [])) + 20000


@cocotb.test()
async def lif_against_model(dut):
    tb = LifTestbench(dut)
    n_events = len(tb.stim["events"])
    results = await tb.run(tb.max_cycles())
    dut._log.info(
        "lif: seed %d, %d events in, %s beats out, %d cycles, %d mismatches",
        tb.job["seed"],
        n_events,
        results["received"],
        results["cycles"],
        results["mismatch_count"],
    )
    check(results)
