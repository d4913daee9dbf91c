"""Amaranth's Python simulator as a third co-simulator: it runs the bulk harness in-process.

The same :meth:`~neurohdl.cosim.testbench.StreamTestbench.run_bulk` drives it as drives Icarus and
Verilator through cocotb; only the access differs (captures are read back from the memories
directly, which takes no simulated time).
"""

from __future__ import annotations

from pathlib import Path

from .testbench import BulkAccess, StreamTestbench

_CHUNK = 1024  # cycles simulated between looks at ``done``


class AmaranthAccess(BulkAccess):
    def __init__(self, ctx, harness, rst):
        self.ctx, self.harness, self.rst = ctx, harness, rst

    async def reset(self) -> None:
        self.ctx.set(self.rst, 1)
        await self.ctx.tick().repeat(4)
        self.ctx.set(self.rst, 0)
        await self.ctx.tick()

    async def load(self, sel: int, words: list[int]) -> None:
        # Through the load port, a word per cycle, as in the HDL simulators: the design sees the
        # same cycles before the run, so all three simulators give the same cycle counts.
        h = self.harness
        self.ctx.set(h.load_sel, sel)
        self.ctx.set(h.load_en, 1)
        for addr, word in enumerate(words):
            self.ctx.set(h.load_addr, addr)
            self.ctx.set(h.load_data, word)
            await self.ctx.tick()
        self.ctx.set(h.load_en, 0)

    def set(self, name: str, value: int) -> None:
        self.ctx.set(getattr(self.harness, name), value)

    def get(self, name: str) -> int:
        from amaranth.hdl import Value

        return int(self.ctx.get(Value.cast(getattr(self.harness, name))))

    async def run(self, max_cycles: int) -> bool:
        await self.ctx.tick().repeat(2)  # the throttles take their seeds while run is low
        self.ctx.set(self.harness.run, 1)
        for _ in range(0, max_cycles, _CHUNK):
            await self.ctx.tick().repeat(_CHUNK)
            if self.ctx.get(self.harness.done):
                return True
        return False

    async def read_back(self, port: str, n: int) -> list[int]:
        mem = self.harness.capture_mems[port.removesuffix("_rb")]
        return [self.ctx.get(mem.data[addr]) for addr in range(n)]


def run_bulk(harness, tb: StreamTestbench, max_cycles: int, waves: str | Path | None = None) -> dict:
    """Simulate ``harness`` running ``tb``'s job; returns the testbench's results."""
    from amaranth.hdl import Module, ResetInserter, Signal
    from amaranth.sim import Simulator

    top, rst = Module(), Signal()
    top.submodules.harness = ResetInserter(rst)(harness)
    sim = Simulator(top)
    sim.add_clock(10e-9)
    out = {}

    async def bench(ctx):
        out["results"] = await tb.run_bulk(AmaranthAccess(ctx, harness, rst), max_cycles)

    sim.add_testbench(bench)
    if waves:
        with sim.write_vcd(str(waves)):
            sim.run()
    else:
        sim.run()
    return out["results"]
