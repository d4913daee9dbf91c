"""The FPGA baseline of the ``fusemax`` block (spec ``fusemax.md`` §4): a naive output-stationary int8
MAC array, and the LFSR-in / XOR-out bench that synthesises it without a pin per operand bit.

It computes nothing the attention array needs; it is the yardstick for its area and Fmax: the same
R x C int8 products per cycle with none of the softmax around them.
"""

from amaranth.hdl import Cat, Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["MacArray", "MacArrayBench"]


class MacArray(wiring.Component):
    """R x C output-stationary int8 multiply-accumulate array.

    Every cycle PE (r, c) adds ``a[r] * b[c]`` to its accumulator, or loads the product when
    ``clear`` is high. Operands are broadcast along rows and columns and the product is not
    registered (the spec's "no pipelining" baseline).

    Parameters
    ----------
    R, C : int
        Rows and columns.
    acc_width : int
        Accumulator width; sums wrap modulo ``2**acc_width``.

    Ports
    -----
    a : In(ArrayLayout(signed(8), R))
        Row operands.
    b : In(ArrayLayout(signed(8), C))
        Column operands.
    clear : In(1)
        Start a new sum with this cycle's product.
    acc : Out(ArrayLayout(signed(acc_width), R * C))
        Accumulators, row-major (lane ``r * C + c``); one cycle after the operands.
    """

    def __init__(self, R: int, C: int, acc_width: int = 24):
        if R < 1 or C < 1:
            raise ValueError(f"MacArray needs R, C >= 1 (got {R} x {C})")
        self.R, self.C, self.acc_width = R, C, acc_width
        super().__init__(
            {
                "a": In(data.ArrayLayout(signed(8), R)),
                "b": In(data.ArrayLayout(signed(8), C)),
                "clear": In(1),
                "acc": Out(data.ArrayLayout(signed(acc_width), R * C)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        for r in range(self.R):
            for c in range(self.C):
                acc = self.acc[r * self.C + c]
                prod = self.a[r] * self.b[c]
                with m.If(self.clear):
                    m.d.sync += acc.eq(prod)
                with m.Else():
                    m.d.sync += acc.eq(acc + prod)
        return m


class MacArrayBench(wiring.Component):
    """A :class:`MacArray` fed by a free-running LFSR and observed through one XOR of all its
    accumulator bits, so synthesis keeps every PE while the design needs one output pin.

    The operands (8 (R + C) bits) and ``clear`` are a shift register of that width whose input bit is
    the feedback of the maximal 32-bit LFSR x^32 + x^22 + x^2 + x + 1 on its low 32 bits.

    Ports
    -----
    o : Out(1)
        Registered XOR of every accumulator bit.
    """

    o: Out(1)

    def __init__(self, R: int, C: int, acc_width: int = 24):
        self.array = MacArray(R, C, acc_width)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.array = array = self.array
        width = 8 * (array.R + array.C) + 1
        state = Signal(max(width, 32), init=0x1F2E3D4C)
        feedback = state[31] ^ state[21] ^ state[1] ^ state[0]
        m.d.sync += state.eq(Cat(feedback, state[:-1]))
        m.d.comb += Cat(array.a.as_value(), array.b.as_value(), array.clear).eq(state[:width])
        m.d.sync += self.o.eq(array.acc.as_value().xor())
        return m
