"""Flat payload codecs: the bit fields of an Amaranth layout, usable without Amaranth inside a testbench.

A field spec is ``[name, index, offset, width, signed]``; ``index`` is the array element or -1.
"""

from __future__ import annotations

from typing import Any


def flatten_layout(shape: Any, prefix: str = "", offset: int = 0, index: int = -1) -> list[list]:
    """Bit fields of an Amaranth shape or layout (called on the RTL side, where Amaranth is loaded)."""
    from amaranth.hdl import Shape
    from amaranth.lib import data

    if isinstance(shape, data.StructLayout):
        out = []
        for name, fld in shape:
            out += flatten_layout(
                fld.shape, f"{prefix}.{name}" if prefix else name, offset + fld.offset, index
            )
        return out
    if isinstance(shape, data.ArrayLayout):
        out = []
        elem_size = Shape.cast(shape.elem_shape).width
        for i in range(shape.length):
            out += flatten_layout(shape.elem_shape, prefix, offset + i * elem_size, i)
        return out
    s = Shape.cast(shape)
    return [[prefix or "value", index, offset, s.width, s.signed]]


def stream_ports(component) -> dict[str, dict]:
    """Every stream member of a component's signature: its payload width and fields."""
    from amaranth.hdl import Shape
    from amaranth.lib import stream, wiring

    ports = {}
    for name, member in component.signature.members.items():
        if member.is_signature and isinstance(member.signature, stream.Signature):
            payload = member.signature.members["payload"].shape
            width = Shape.cast(payload).width
            ports[name] = {
                "direction": "in" if member.flow == wiring.In else "out",
                "width": width,
                "fields": flatten_layout(payload),
            }
    return ports


def plain_outputs(component) -> dict[str, dict]:
    """Every non-stream output port (status, counters): its width and fields."""
    from amaranth.hdl import Shape
    from amaranth.lib import wiring

    ports = {}
    for name, member in component.signature.members.items():
        if member.is_port and member.flow == wiring.Out:
            shape = member.shape
            ports[name] = {"width": Shape.cast(shape).width, "fields": flatten_layout(shape)}
    return ports


class Codec:
    """Packs and unpacks one payload from its field specs; arrays come back as lists."""

    def __init__(self, fields: list[list]):
        self.fields = fields
        self.names = []
        for name, *_ in fields:
            if name not in self.names:
                self.names.append(name)
        self.lengths = {n: 1 + max(i for nm, i, *_ in fields if nm == n) for n in self.names}

    def decode(self, word: int) -> dict[str, Any]:
        out: dict[str, Any] = {n: [0] * self.lengths[n] if self.lengths[n] > 0 else 0 for n in self.names}
        for name, index, off, width, signed in self.fields:
            v = (word >> off) & ((1 << width) - 1) if width else 0
            if signed and width and v >> (width - 1):
                v -= 1 << width
            if index < 0:
                out[name] = v
            else:
                out[name][index] = v
        return out

    def encode(self, values: dict[str, Any]) -> int:
        word = 0
        for name, index, off, width, _ in self.fields:
            v = values[name] if index < 0 else values[name][index]
            word |= (int(v) & ((1 << width) - 1)) << off
        return word
