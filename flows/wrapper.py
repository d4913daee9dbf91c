"""Pin-light wrapper: measure a block whose ports exceed the package, not the pin ring.

Every input port of the core is driven from one long shift register fed by a single serial pin, and
every output bit is XOR-reduced into one registered pin, so no logic can be optimised away while the
design needs four pins (``sin``, ``sout``, ``clk``, ``rst``).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Elaboratable, Module, Signal, Value
from amaranth.lib import wiring


class PinLightWrapper(Elaboratable):
    """Wraps ``core`` (a :class:`wiring.Component`) behind ``sin``/``sout``.

    Timing: inputs change one shift per cycle; ``sout`` is registered.
    """

    name = "serial shift-in / XOR-reduce-out wrapper (pins: sin, sout, clk, rst)"

    def __init__(self, core: wiring.Component):
        self.core = core
        self.sin = Signal()
        self.sout = Signal()

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        inputs, outputs = [], []
        for _path, member, value in core.signature.flatten(core):
            (inputs if member.flow == wiring.In else outputs).append(Value.cast(value))
        width = sum(len(v) for v in inputs)
        shift = Signal(max(1, width))
        m.d.sync += shift.eq(Cat(self.sin, shift[:-1]))
        offset = 0
        for v in inputs:
            m.d.comb += v.eq(shift[offset : offset + len(v)])
            offset += len(v)
        m.d.sync += self.sout.eq(Cat(*outputs).xor())
        return m


def pin_count(ports: list[dict]) -> int:
    return sum(p["width"] for p in ports)
