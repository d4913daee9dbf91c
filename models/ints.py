"""Integer helpers every golden model shares."""

from __future__ import annotations


def ceil_log2(n: int) -> int:
    """Bits to count ``n`` distinct values (0 for n <= 1)."""
    return max(0, (int(n) - 1).bit_length())


def signed(value: int, bits: int) -> int:
    """The low ``bits`` of ``value`` read as two's complement."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value
