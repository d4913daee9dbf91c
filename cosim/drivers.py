"""cocotb stream drivers with random back-pressure, a scoreboard, and the per-cycle loop that runs them.

The drivers follow the ``lib.stream`` rules from the testbench side: a source never withdraws a beat
it has offered, and a sink's ``ready`` is random. All of them are serviced by one :class:`CycleLoop`
coroutine per clock: inputs change on the falling edge, handshakes are sampled in the ReadOnly phase
before the rising edge that completes them.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from cocotb.triggers import FallingEdge, ReadOnly

from .payload import Codec


class Throttle:
    """Random on/off pattern: each cycle 'on' with probability ``p``, plus occasional long bursts off."""

    def __init__(self, rng: random.Random, p: float, burst: float = 0.002, burst_len: int = 64):
        self.rng, self.p, self.burst, self.burst_len = rng, p, burst, burst_len
        self.hold = 0

    def __call__(self) -> bool:
        if self.p >= 1.0:
            return True
        if self.hold:
            self.hold -= 1
            return False
        if self.rng.random() < self.burst:
            self.hold = self.rng.randrange(1, self.burst_len)
            return False
        return self.rng.random() < self.p


class StreamSource:
    """Drives ``<prefix>__valid``/``__payload`` from a queue of words, gated by a :class:`Throttle`.

    A word may wait for other streams: ``send(values, after={"cfg": 3})`` offers it only once
    ``gate({"cfg": 3})`` holds (the testbench counts handshakes), which keeps the order of events on
    different streams that the golden model assumed. ``offers`` and ``handshakes`` time-stamp each word.
    """

    def __init__(self, dut, prefix: str, codec: Codec, throttle: Throttle):
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.codec, self.throttle = codec, throttle
        self.queue: deque[tuple[int, dict | None]] = deque()
        self.offering = False
        self.new_offer = False
        self.sent = 0
        self.offers: list[int] = []
        self.handshakes: list[int] = []
        self.on_send: Callable[[int], None] | None = None
        self.gate: Callable[[dict], bool] = lambda after: True

    def send(self, values: dict, after: dict | None = None) -> None:
        self.queue.append((self.codec.encode(values), after))

    def drive(self) -> None:
        if not self.offering and self.queue:
            word, after = self.queue[0]
            if (after is None or self.gate(after)) and self.throttle():
                self.payload.value = word
                self.offering = self.new_offer = True
        self.valid.value = int(self.offering)

    def sample(self, cycle: int) -> None:
        if self.new_offer:
            self.offers.append(cycle)
            self.new_offer = False
        if self.offering and int(self.ready.value):
            self.queue.popleft()
            self.offering = False
            self.sent += 1
            self.handshakes.append(cycle)
            if self.on_send:
                self.on_send(cycle)

    @property
    def idle(self) -> bool:
        return not self.queue and not self.offering


class StreamSink:
    """Drives ``<prefix>__ready`` from a :class:`Throttle` and hands each accepted beat to ``on_beat``."""

    def __init__(
        self, dut, prefix: str, codec: Codec, throttle: Throttle, on_beat: Callable[[dict, int], None]
    ):
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.codec, self.throttle, self.on_beat = codec, throttle, on_beat
        self.received = 0
        self.ready_now = False
        self.handshakes: list[int] = []

    def drive(self) -> None:
        self.ready_now = self.throttle()
        self.ready.value = int(self.ready_now)

    def sample(self, cycle: int) -> None:
        if self.ready_now and int(self.valid.value):
            self.received += 1
            self.handshakes.append(cycle)
            self.on_beat(self.codec.decode(int(self.payload.value)), cycle)  # 1-bit payloads are Logic


class CycleLoop:
    """Services every driver once per clock cycle until ``done()`` or ``max_cycles``."""

    def __init__(self, clk, drivers: list, done: Callable[[], bool], max_cycles: int):
        self.clk, self.drivers, self.done, self.max_cycles = clk, drivers, done, max_cycles
        self.cycle = 0

    async def run(self) -> bool:
        while not self.done():
            if self.cycle >= self.max_cycles:
                return False
            await FallingEdge(self.clk)
            for d in self.drivers:
                d.drive()
            await ReadOnly()
            for d in self.drivers:
                d.sample(self.cycle)
            self.cycle += 1
        return True


@dataclass
class Mismatch:
    stream: str
    index: int
    where: str
    expected: object
    got: object


@dataclass
class Scoreboard:
    """In-order comparison of each output stream with the golden model's list of expected beats."""

    expected: dict[str, list]
    context: dict[str, Callable[[int], str]] = field(default_factory=dict)
    received: dict[str, list] = field(default_factory=dict)
    mismatches: list[Mismatch] = field(default_factory=list)

    def check(self, stream: str, got) -> None:
        got_list = self.received.setdefault(stream, [])
        i = len(got_list)
        got_list.append(got)
        exp = self.expected[stream]
        want = exp[i] if i < len(exp) else "<no more beats expected>"
        if got != want:
            where = self.context.get(stream, lambda k: f"beat {k}")(i)
            self.mismatches.append(Mismatch(stream, i, where, want, got))

    def complete(self, stream: str) -> bool:
        return len(self.received.get(stream, [])) >= len(self.expected[stream])

    def missing(self) -> dict[str, int]:
        return {
            s: len(e) - len(self.received.get(s, []))
            for s, e in self.expected.items()
            if len(self.received.get(s, [])) < len(e)
        }
