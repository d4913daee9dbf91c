"""A self-running test harness: stimulus memories in front of a design, capture memories behind it.

Python that touches the design every cycle caps co-simulation at tens of thousands of cycles per
second whatever the simulator. :class:`BulkHarness` moves the testbench's per-cycle work into the
simulated design: every input stream of the wrapped component is fed from a memory holding its
beats, every output stream is captured into a memory, and ``valid``/``ready`` are thrown by LFSRs.
The testbench loads the memories once, starts the run, waits for ``done`` without calling Python on
the way, and then reads the captured beats back and scores them.

Only the memory depths are built into the Verilog; beats, counts, throttles and seeds are loaded at
run time, so one simulator build serves every stimulus that fits.
"""

from dataclasses import dataclass

from amaranth.hdl import Module, Mux, Shape, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["BulkHarness", "SETTLE_CYCLES", "throttle_threshold"]

#: Cycles every sink stays serviced after the last expected beat, so that extra beats are caught.
SETTLE_CYCLES = 64
_BURST_BITS = 9  # a burst off starts with probability 2**-9 per cycle (the Python driver's 0.002)
_LFSR_TAPS = 0xA3000000  # maximal-length 32-bit Galois LFSR


def throttle_threshold(prob: float) -> int:
    """The ``<stream>_thr`` value for a stream that is on with probability ``prob`` per cycle;
    256 means always on, without bursts."""
    return max(0, min(256, round(prob * 256)))


@dataclass(frozen=True)
class _Source:
    capacity: int
    after: tuple[str, ...]  # input streams whose stimulus counts gate this one's beats


class _Throttle(wiring.Component):
    """A random on/off bit from a 32-bit Galois LFSR.

    Ports: ``seed`` (In(32), loaded while ``run`` is low), ``threshold`` (In(9)): on with
    probability ``threshold``/256 per cycle, plus bursts off of up to 63 cycles, unless it is 256;
    ``run`` (In(1)); ``on`` (Out(1)), registered.
    """

    seed: In(32)
    threshold: In(9)
    run: In(1)
    on: Out(1)

    def elaborate(self, platform):
        m = Module()
        lfsr = Signal(32, init=1)
        hold = Signal(6)
        with m.If(~self.run):
            m.d.sync += [lfsr.eq(self.seed | 1), hold.eq(0), self.on.eq(0)]
        with m.Else():
            m.d.sync += lfsr.eq(Mux(lfsr[0], (lfsr >> 1) ^ _LFSR_TAPS, lfsr >> 1))
            with m.If(self.threshold[8]):
                m.d.sync += self.on.eq(1)
            with m.Elif(hold != 0):
                m.d.sync += [hold.eq(hold - 1), self.on.eq(0)]
            with m.Elif(lfsr[8 : 8 + _BURST_BITS] == 0):
                m.d.sync += [hold.eq(lfsr[20:26]), self.on.eq(0)]
            with m.Else():
                m.d.sync += self.on.eq(lfsr[:8] < self.threshold)
        return m


def _stream_members(dut: wiring.Component) -> dict[str, wiring.Member]:
    return {
        name: member
        for name, member in dut.signature.members.items()
        if member.is_signature and isinstance(member.signature, stream.Signature)
    }


def _payload_width(member: wiring.Member) -> int:
    return Shape.cast(member.signature.members["payload"].shape).width


def _depth(n: int) -> int:
    return max(16, 1 << max(0, n - 1).bit_length())


class BulkHarness(wiring.Component):
    """Wraps ``dut`` (a component with ``lib.stream`` ports) into a design that runs a job alone.

    Parameters
    ----------
    dut : wiring.Component
        The design under test; its clock and reset are the harness's.
    source_beats : dict[str, int]
        Per input stream of ``dut``, how many beats (setup and stimulus) its memory must hold.
    source_after : dict[str, tuple[str, ...]]
        Per input stream, the streams (input or output) whose handshake counts gate its beats (may
        be empty).
    sink_beats : dict[str, int]
        Per output stream, how many beats the run is expected to produce; the capture memory holds
        :data:`SETTLE_CYCLES` more, so extra beats are seen, and the count goes on past it.

    Memory depths are these counts rounded up to a power of two (at least 16).

    Ports
    -----
    load_sel, load_addr, load_data, load_en : In
        Write port into memory ``load_sel`` (the order of :attr:`load_mems`), one word per cycle.
    run : In(1)
        Low: everything holds and the throttles load their seeds. High: the job runs.
    <src>_count, <src>_setup : In(32)
        Beats to send, of which the first ``_setup`` go before every stream's stimulus.
    <stream>_thr : In(9), <stream>_seed : In(32)
        The stream's throttle (see :func:`throttle_threshold`).
    <sink>_expected : In(32)
        Beats the model expects on that output stream.
    done : Out(1)
        Rises :data:`SETTLE_CYCLES` cycles after every source is empty and every sink has its
        expected count; then the sinks stop accepting beats and the counters freeze.
    cycles : Out(32)
        Cycles since ``run`` rose.
    first_in, last_out : Out(32)
        The cycle of the first stimulus handshake (after all setup beats) and of the last output
        handshake, as the per-cycle testbench counts them.
    <src>_sent, <sink>_received : Out(32)
        Handshakes on each stream (received keeps counting past the capture depth).
    rb_addr : In, <sink>_rb : Out(payload width)
        The captured beat at ``rb_addr``, combinationally.
    <plain output of dut> : Out(shape)
        Passed through (counters, status).

    A source's gate for stimulus beat ``i`` is: every stream's setup beats are taken, and for each
    stream ``t`` in its ``after`` list, ``t``'s handshakes reach the value in memory ``<src>_after_<t>``
    (loaded with setup counts included). Once ``valid`` is up it stays up, payload steady, until
    ``ready``.
    """

    def __init__(
        self,
        dut: wiring.Component,
        source_beats: dict[str, int],
        source_after: dict[str, tuple[str, ...]],
        sink_beats: dict[str, int],
    ):
        self.dut = dut
        streams = _stream_members(dut)
        ins = sorted(n for n, mb in streams.items() if mb.flow == In)
        outs = sorted(n for n, mb in streams.items() if mb.flow == Out)
        if sorted(source_beats) != ins or sorted(sink_beats) != outs:
            raise ValueError(
                f"beat counts for {sorted(source_beats)} -> {sorted(sink_beats)}, "
                f"but the design's streams are {ins} -> {outs}"
            )
        self._sources = {n: _Source(_depth(source_beats[n]), tuple(source_after.get(n, ()))) for n in ins}
        self._sink_depth = {n: _depth(sink_beats[n] + SETTLE_CYCLES) for n in outs}
        self._widths = {n: _payload_width(streams[n]) for n in streams}
        self._plain = {
            n: mb.shape for n, mb in dut.signature.members.items() if mb.is_port and mb.flow == Out
        }
        #: Loadable memories in ``load_sel`` order, keyed ``(stream, None)`` for a stream's beats and
        #: ``(stream, other)`` for its ``after`` table on ``other``.
        self.load_mems: dict[tuple[str, str | None], Memory] = {}
        for n, s in self._sources.items():
            self.load_mems[(n, None)] = Memory(shape=unsigned(self._widths[n]), depth=s.capacity, init=[])
            for t in s.after:
                self.load_mems[(n, t)] = Memory(shape=unsigned(32), depth=s.capacity, init=[])
        #: Capture memory per output stream.
        self.capture_mems = {
            n: Memory(shape=unsigned(self._widths[n]), depth=d, init=[]) for n, d in self._sink_depth.items()
        }
        mems = [*self.load_mems.values(), *self.capture_mems.values()]
        max_depth = max(mem.depth for mem in mems)
        addr = unsigned(max(1, (max_depth - 1).bit_length()))
        sig = {
            "load_sel": In(range(max(2, len(self.load_mems)))),
            "load_addr": In(addr),
            "load_data": In(max([32] + [Shape.cast(mem.shape).width for mem in self.load_mems.values()])),
            "load_en": In(1),
            "run": In(1),
            "done": Out(1),
            "cycles": Out(32),
            "first_in": Out(32),
            "last_out": Out(32),
            "rb_addr": In(addr),
        }
        for n in ins:
            sig |= {f"{n}_count": In(32), f"{n}_setup": In(32), f"{n}_sent": Out(32)}
        for n in outs:
            sig |= {f"{n}_expected": In(32), f"{n}_received": Out(32), f"{n}_rb": Out(self._widths[n])}
        for n in ins + outs:
            sig |= {f"{n}_thr": In(9), f"{n}_seed": In(32)}
        clash = set(sig) & set(self._plain)
        if clash:
            raise ValueError(f"the design's outputs {sorted(clash)} clash with harness ports")
        sig |= {n: Out(shape) for n, shape in self._plain.items()}
        super().__init__(sig)

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        cycle = Signal(32)
        live = self.run & ~self.done
        with m.If(live):
            m.d.sync += cycle.eq(cycle + 1)
        m.d.comb += self.cycles.eq(cycle)
        for n in self._plain:
            m.d.comb += getattr(self, n).eq(getattr(dut, n))

        def throttle(name: str) -> Signal:
            t = m.submodules[f"thr_{name}"] = _Throttle()
            m.d.comb += [
                t.seed.eq(getattr(self, f"{name}_seed")),
                t.threshold.eq(getattr(self, f"{name}_thr")),
                t.run.eq(self.run),
            ]
            return t.on

        def loadable(key: tuple[str, str | None]) -> Memory:
            mem = m.submodules["bulk_in_" + "_after_".join(filter(None, key))] = self.load_mems[key]
            sel = list(self.load_mems).index(key)
            wr = mem.write_port()
            m.d.comb += [
                wr.addr.eq(self.load_addr),
                wr.data.eq(self.load_data),
                wr.en.eq(self.load_en & (self.load_sel == sel)),
            ]
            return mem

        sent = {n: getattr(self, f"{n}_sent") for n in self._sources}
        handshakes = sent | {n: getattr(self, f"{n}_received") for n in self._sink_depth}
        setup_done = Signal()
        m.d.comb += setup_done.eq(_all(sent[n] >= getattr(self, f"{n}_setup") for n in sent))
        stimulus_handshakes = []
        for n, src in self._sources.items():
            port, ptr = getattr(dut, n), sent[n]
            rd = loadable((n, None)).read_port(domain="comb")
            m.d.comb += rd.addr.eq(ptr)
            gates = [(ptr < getattr(self, f"{n}_setup")) | setup_done]
            for t in src.after:
                ard = loadable((n, t)).read_port(domain="comb")
                m.d.comb += ard.addr.eq(ptr)
                gates.append(handshakes[t] >= ard.data)
            holding = Signal(name=f"{n}_holding")
            valid = live & (ptr < getattr(self, f"{n}_count")) & (holding | (_all(gates) & throttle(n)))
            m.d.comb += [port.valid.eq(valid), port.payload.eq(rd.data)]
            m.d.sync += holding.eq(valid & ~port.ready)
            with m.If(valid & port.ready):
                m.d.sync += ptr.eq(ptr + 1)
            stimulus_handshakes.append(valid & port.ready & (ptr >= getattr(self, f"{n}_setup")))

        started = Signal()
        with m.If(_any(stimulus_handshakes) & ~started):
            m.d.sync += [started.eq(1), self.first_in.eq(cycle)]

        complete = []
        for n, depth in self._sink_depth.items():
            port, count = getattr(dut, n), getattr(self, f"{n}_received")
            mem = m.submodules[f"bulk_out_{n}"] = self.capture_mems[n]
            wr, rd = mem.write_port(), mem.read_port(domain="comb")
            ready = live & throttle(n)
            m.d.comb += [
                port.ready.eq(ready),
                wr.addr.eq(count),
                wr.data.eq(port.payload),
                wr.en.eq(ready & port.valid & (count < depth)),
                rd.addr.eq(self.rb_addr),
                getattr(self, f"{n}_rb").eq(rd.data),
            ]
            with m.If(ready & port.valid):
                m.d.sync += [count.eq(count + 1), self.last_out.eq(cycle)]
            complete.append(count >= getattr(self, f"{n}_expected"))

        emptied = [sent[n] >= getattr(self, f"{n}_count") for n in self._sources]
        settle = Signal(range(SETTLE_CYCLES + 1))
        with m.If(live & _all(emptied + complete)):
            m.d.sync += settle.eq(settle + 1)
            with m.If(settle == SETTLE_CYCLES - 1):
                m.d.sync += self.done.eq(1)
        return m


def _all(terms) -> Signal:
    out = 1
    for t in terms:
        out = out & t
    return out


def _any(terms) -> Signal:
    out = 0
    for t in terms:
        out = out | t
    return out
