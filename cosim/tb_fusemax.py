"""cocotb testbench of the ``fusemax`` block: jobs as cfg/q/k/v beats (random garbage in padding
lanes), every ``o`` beat against the integer golden model, the last job's counters against the
cycle model."""

from __future__ import annotations

import cocotb
import numpy as np

from ..models import fusemax as fm
from .drivers import Mismatch
from .testbench import StreamTestbench, check


class FusemaxTestbench(StreamTestbench):
    def __init__(self, dut, job=None, stim=None, expected=None):
        super().__init__(dut, job, stim, expected)
        names = fm.FusemaxParams.__dataclass_fields__
        self.fp = fm.FusemaxParams(**{k: v for k, v in self.params.items() if k in names})
        self.jobs = self.stim["jobs"].tolist()

    def inputs(self):
        rng = np.random.default_rng(self.job["seed"])  # padding-lane garbage
        beats = {"cfg": [], "q": [], "k": [], "v": []}
        q0 = k0 = 0
        for M, P, Cs, SH in self.jobs:
            Q, K, V = self.stim["Q"][q0 : q0 + P], self.stim["K"][k0 : k0 + M], self.stim["V"][k0 : k0 + M]
            q0, k0 = q0 + P, k0 + M
            beats["cfg"].append({"M": M, "P": P, "Cs": Cs, "SH": SH})
            for name, rows in fm.job_beats(Q, K, V, self.fp, rng).items():
                beats[name] += [{"value": [int(x) for x in row]} for row in rows]
        return beats

    def expected_beats(self):
        pairs = zip(self.exp["o"], self.exp["last"], strict=True)
        return {"o": [(tuple(int(x) for x in row), int(last)) for row, last in pairs]}

    def normalise(self, stream, beat):
        return (tuple(beat["data"]), beat["last"])

    def contexts(self):
        return {"o": lambda i: f"beat {i}"}

    def dump(self, received):
        beats = received.get("o", [])
        return {
            "o": np.array([b[0] for b in beats], dtype=np.int64).reshape(-1, self.fp.C),
            "last": np.array([b[1] for b in beats], dtype=np.int64),
        }

    def final_checks(self, final):
        """The counters hold the last job's figures (spec §3.3 and §5)."""
        M, P = (self.jobs[-1][:2]) if self.jobs else (0, 0)
        busy, mac = final["perf_busy"]["value"], final["perf_mac"]["value"]
        stalls = final["perf_stall_in"]["value"] + final["perf_stall_out"]["value"]
        want = fm.cycles(M, P, self.fp)
        out = []
        if mac != fm.mac_cycles(M, P, self.fp):
            out.append(Mismatch("perf_mac", 0, "last job", fm.mac_cycles(M, P, self.fp), mac))
        if not self.job["backpressure"] and busy != want:
            out.append(Mismatch("perf_busy", 0, "last job, no back-pressure", want, busy))
        if not want <= busy <= want + stalls:
            out.append(
                Mismatch("perf_busy", 0, "last job: cycles() <= busy <= cycles() + stalls", want, busy)
            )
        return out

    def max_cycles(self):
        return 20 * sum(fm.cycles(M, P, self.fp) + 1 for M, P, _, _ in self.jobs) + 10000


@cocotb.test()
async def fusemax_against_model(dut):
    tb = FusemaxTestbench(dut)
    results = await tb.run(tb.max_cycles())
    dut._log.info(
        "fusemax: seed %d, %d jobs, %s beats out, %d cycles, %d mismatches, counters %s",
        tb.job["seed"], len(tb.jobs), results["received"], results["cycles"], results["mismatch_count"],
        results["final"],
    )  # fmt: skip
    check(results)
