"""Shared stream helper: turn (group, bit mask) words into ascending element indices."""

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["MaskSerializer", "lowest_set_bit"]


def lowest_set_bit(m: Module, mask: Signal, width: int) -> Signal:
    """Index of the lowest set bit of ``mask`` (0 when ``mask`` is 0), as a combinational signal."""
    idx = Signal(range(max(2, width)))
    value = 0
    for j in reversed(range(width)):
        value = Mux(mask[j], j, value)
    m.d.comb += idx.eq(value)
    return idx


class MaskSerializer(wiring.Component):
    """Serialises a stream of ``{g, mask}`` words into one index ``g * lanes + j`` per set bit.

    Indices leave in ascending ``j`` for each word, one per cycle; a word with a single set bit
    costs one cycle, and the next word is taken in the cycle its predecessor's last index leaves,
    so a run of words is serialised with no bubbles. An all-zero mask is consumed and produces
    nothing.

    Parameters
    ----------
    groups : int
        Number of groups ``g`` can take.
    lanes : int
        Width of ``mask``; must be a power of two so that ``g * lanes`` is a concatenation.

    Attributes
    ----------
    i : In(stream.Signature({g, mask}))
        Words to serialise.
    o : Out(stream.Signature(unsigned))
        Indices. ``valid`` does not depend on ``ready``.
    """

    def __init__(self, groups: int, lanes: int):
        assert lanes & (lanes - 1) == 0, "lanes must be a power of two"
        self.groups = groups
        self.lanes = lanes
        self.lane_bits = (lanes - 1).bit_length()
        self.g_bits = max(1, (groups - 1).bit_length())
        layout = data.StructLayout({"g": unsigned(self.g_bits), "mask": unsigned(lanes)})
        super().__init__(
            {
                "i": In(stream.Signature(layout)),
                "o": Out(stream.Signature(unsigned(self.g_bits + self.lane_bits))),
            }
        )

    def elaborate(self, platform):
        m = Module()
        mask = Signal(self.lanes)
        g = Signal(self.g_bits)
        idx = lowest_set_bit(m, mask, self.lanes)
        # ``empty`` (mask == 0) and ``single`` (at most one bit set) are registers, set beside mask:
        # ``i.ready`` is then one gate after ``o.ready``, where it had the carry chain of mask - 1
        # and a wide compare in front of a chain of handshakes.
        empty = Signal(init=1)
        single = Signal(init=1)

        def at_most_one(v):
            return (v & (v - 1)) == 0

        rest = mask & (mask - 1)
        m.d.comb += [
            self.o.valid.eq(~empty),
            self.o.payload.eq(g << self.lane_bits | idx[: self.lane_bits] if self.lane_bits else g),
            self.i.ready.eq(empty | (self.o.ready & single)),
        ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [mask.eq(rest), empty.eq(single), single.eq(at_most_one(rest))]
        with m.If(self.i.valid & self.i.ready):
            word = self.i.payload
            m.d.sync += [mask.eq(word.mask), g.eq(word.g), empty.eq(word.mask == 0)]
            m.d.sync += single.eq(at_most_one(word.mask))
        return m
