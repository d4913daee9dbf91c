"""Lookup-table baselines of the ramp ADC (spec ``ramp_adc.md`` §4): a uniform converter followed by a
digital lookup, per column or shared and time-multiplexed.

Both compute the same function of the input codes as :class:`~.ramp_adc.RampAdc` with the bank's
tables (the twin's converter delivers the uniform code directly); only area and timing differ.
"""

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Signal, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..models.ramp_adc import RampBank, ceil_log2, last_j
from .ramp_adc import in_layout, out_layout

__all__ = ["LutColumns", "LutShared"]


def _lut_contents(bank: RampBank) -> list[list[int]]:
    """Per group, the output code of every input code, s_min first."""
    p = bank.params
    s = np.arange(p.s_min, p.s_max + 1)
    R = bank.ramps()
    return [last_j(s, R[g, : bank.length[g]], bank.code[g, : bank.length[g]]).tolist() for g in range(p.G)]


def _index(p, value):
    """Table index of an input code: s - s_min is the code with its sign bit inverted."""
    return Cat(value[: p.B_in - 1], ~value[p.B_in - 1])


class _LutBase(wiring.Component):
    def __init__(self, bank: RampBank):
        self.bank = bank
        self.params = bank.params
        super().__init__(
            {
                "i": In(stream.Signature(in_layout(bank.params))),
                "o": Out(stream.Signature(out_layout(bank.params))),
                "busy": Out(1),
            }
        )


class LutColumns(_LutBase):
    """One read-only lookup table per column: a conversion every cycle, one cycle of latency.

    Ports: ``i``, ``o`` as :class:`~.ramp_adc.RampAdc`; ``busy`` is ``o.valid``.
    """

    def elaborate(self, platform):
        m = Module()
        p = self.params
        tables = _lut_contents(self.bank)
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += self.o.valid.eq(1)
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        for k in range(p.C):
            rom = memory.Memory(shape=unsigned(p.N), depth=2**p.B_in, init=tables[p.groups[k]])
            m.submodules[f"lut{k}"] = rom
            rd = rom.read_port(domain="comb")
            m.d.comb += rd.addr.eq(_index(p, self.i.payload[k]))
            with m.If(self.i.valid & self.i.ready):
                m.d.sync += self.o.payload[k].eq(rd.data)
        m.d.comb += self.busy.eq(self.o.valid)
        return m


class LutShared(_LutBase):
    """One lookup table (G * 2^B_in entries) serving the C columns in turn: C cycles per conversion.

    The columns are read from ``i.payload`` in place and shifted into the output register; ``i`` is
    taken with the last column. Ports as :class:`LutColumns`; ``busy`` while converting.
    """

    def elaborate(self, platform):
        m = Module()
        p = self.params
        tables = _lut_contents(self.bank)
        gbits = ceil_log2(p.G)
        rom = memory.Memory(shape=unsigned(p.N), depth=2 ** (p.B_in + gbits), init=sum(tables, []))
        m.submodules.lut = rom
        rd = rom.read_port(domain="comb")
        col = Signal(range(max(2, p.C)))
        active = Signal()
        s_k = Array(self.i.payload[k] for k in range(p.C))[col]
        g_k = Array(Const(g, max(1, gbits)) for g in p.groups)[col]
        m.d.comb += rd.addr.eq(Cat(_index(p, s_k), g_k[:gbits]) if gbits else _index(p, s_k))
        shift = Signal(unsigned(p.N * p.C))
        last = col == p.C - 1
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(~active & self.i.valid & ~self.o.valid):
            m.d.sync += [active.eq(1), col.eq(0)]
        with m.If(active):
            # column k's code ends at bits [k*N, (k+1)*N) after C shifts
            nxt = Cat(shift[p.N :], rd.data) if p.C > 1 else rd.data
            m.d.sync += [shift.eq(nxt), col.eq(col + 1)]
            with m.If(last):
                m.d.sync += [active.eq(0), self.o.valid.eq(1)]
        # the shift register is the output register: it only moves while o is empty
        m.d.comb += [self.o.payload.eq(shift), self.i.ready.eq(active & last), self.busy.eq(active)]
        return m
