"""Time-multiplexed LIF/CUBA spiking core (spec ``lif.md`` §3)."""

from functools import cached_property

from amaranth.hdl import Array, Cat, Const, Module, Mux, ResetInserter, Signal, signed, unsigned
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..models.lif import CLEAR, SPIKE, TICK, LifNetwork, ceil_log2, pack
from .lif_lane import U_W, V_W, LifLane, profile_const, profile_layout
from .serializer import MaskSerializer

__all__ = ["LifCore", "cfg_layout", "ev_in_layout", "ev_out_layout", "trace_layout"]


def _bits(n: int) -> int:
    return max(1, ceil_log2(n))


def ev_in_layout(n_ax: int) -> data.StructLayout:
    return data.StructLayout({"addr": unsigned(_bits(n_ax)), "kind": unsigned(2)})


def ev_out_layout(n: int) -> data.StructLayout:
    return data.StructLayout({"addr": unsigned(_bits(n)), "kind": unsigned(1)})


def trace_layout(params) -> data.StructLayout:
    p = params
    return data.StructLayout(
        {
            "g": unsigned(_bits(p.G)),
            "u": data.ArrayLayout(signed(U_W), p.P),
            "v": data.ArrayLayout(signed(V_W), p.P),
            "ref": data.ArrayLayout(unsigned(p.REF_BITS), p.P),
            "s": unsigned(p.P),
        }
    )


PERF_LAYOUT = data.StructLayout(
    {
        "cyc_int": unsigned(32),
        "cyc_upd": unsigned(32),
        "words": unsigned(32),
        "stall_out": unsigned(32),
        "ticks": unsigned(32),
    }
)


def cfg_layout(width: int) -> data.StructLayout:
    """``sel``: 0 AXT word, 1 WMEM word, 2 NCFG word (one beat of Q neurons), 3 profile."""
    return data.StructLayout({"sel": unsigned(3), "addr": unsigned(16), "data": unsigned(width)})


def _state_layout(params) -> data.StructLayout:
    fields = {"v": signed(V_W), "ref": unsigned(params.REF_BITS)}
    if params.CUBA:
        fields["u"] = signed(U_W)
    return data.StructLayout(fields)


def _ncfg_layout(params) -> data.StructLayout:
    return data.StructLayout(
        {
            "prof": unsigned(_bits(params.N_PROF)),
            "bias_mant": signed(13),
            "bias_exp": unsigned(3),
            "lb": unsigned(1),
        }
    )


def _pack_words(layout: data.Layout, rows: list) -> list[int]:
    """Memory init words: each row is a list of per-lane dicts (or ints for a plain lane shape)."""
    return [int(Const.cast(layout.const(row)).value) for row in rows]


class LifCore(wiring.Component):
    """A core of ``N`` LIF neurons time-multiplexed over ``P`` integrate lanes and ``Q`` update lanes.

    Parameters
    ----------
    net : LifNetwork
        Build parameters and the network; weights, axon table and neuron configuration initialise
        the memories, profiles become constants (registers with ``CFG``).
    preload : bool
        With ``CFG``, ``False`` leaves memories and profiles empty for a host to load through
        ``cfg``. An SPRAM weight memory (``WMEM_IMPL="spram"``) is never preloaded.

    Attributes
    ----------
    ev_in : In(stream.Signature({addr, kind}))
        Commands: kind 0 SPIKE(addr), 1 TICK, 2 CLEAR, 3 NOP. Buffered in an ``IN_DEPTH`` FIFO.
    ev_out : Out(stream.Signature({addr, kind}))
        Spikes (kind 0) in ascending neuron order, then a TICK marker (kind 1, addr 0), per TICK.
    trace : Out(stream.Signature(trace_layout))
        With ``TRACE``: one beat per group per TICK, ascending, post-update state.
    cfg : In(stream.Signature(cfg_layout))
        With ``CFG``: ``sel`` 0 writes AXT[addr], 1 WMEM[addr], 2 NCFG[addr] (one beat of Q
        neurons), 3 profile register addr, with the words of :attr:`images`. ``ready`` only while
        ``idle``.
    perf : Out(PERF_LAYOUT)
        With ``PERF``: integrate-busy cycles, sweep-busy cycles, weight words, output-stall
        cycles and TICK markers, counted from ``rst``.
    idle : Out(1)
        No command is buffered or in flight.

    Timing
    ------
    An external SPIKE costs ``max(1, len)`` cycles (one weight word per cycle, no bubbles between
    events); a loopback spike ``len`` cycles; the TICK sweep ``G * P / Q`` cycles. The sweep's
    tail overlaps the next step's integration; :func:`neurohdl.models.lif.cycles` gives the exact
    count (within about 1 %). ``rst`` clears the state in ``G * P / Q`` cycles with ``ev_in.ready``
    low; memories and profile registers keep their contents.
    """

    def __init__(self, net: LifNetwork, *, preload: bool = True):
        self.net = net
        self.params = p = net.params
        # An SPRAM weight memory has no initial contents; without preload everything comes
        # through cfg (how the testbench proves the cfg path).
        self.preload = {
            "axt": preload or not p.CFG,
            "ncfg": preload or not p.CFG,
            "prof": preload or not p.CFG,
            "wmem": (preload or not p.CFG) and p.WMEM_IMPL != "spram",
        }
        sig = {
            "ev_in": In(stream.Signature(ev_in_layout(p.N_AX))),
            "ev_out": Out(stream.Signature(ev_out_layout(p.N))),
            "idle": Out(1),
        }
        if p.TRACE:
            sig["trace"] = Out(stream.Signature(trace_layout(p)))
        if p.CFG:
            sig["cfg"] = In(stream.Signature(cfg_layout(self.cfg_width)))
        if p.PERF:
            sig["perf"] = Out(PERF_LAYOUT)
        super().__init__(sig)

    @property
    def cfg_width(self) -> int:
        lay = self.images["layouts"]
        return max(
            lay["axt"].size, lay["wmem"].size, lay["ncfg"].size, profile_layout(self.params.REF_BITS).size
        )

    @cached_property
    def images(self) -> dict:
        """Memory words and profile words that define the network: the memories' initial
        contents, and what a host writes through ``cfg`` (``sel`` 0 AXT, 1 WMEM, 2 NCFG, 3 profile)."""
        p, net = self.params, self.net
        P, Q, G, B = p.P, p.Q, p.G, p.beats
        packed = pack(net)
        wdepth = net.wdepth
        axt_layout = data.StructLayout(
            {"base": unsigned(_bits(wdepth)), "g0": unsigned(_bits(G)), "len": unsigned(_bits(G + 1))}
        )
        axt_rows = [
            {"base": int(b), "g0": int(g), "len": int(n)}
            for b, g, n in zip(packed["base"], packed["g0"], packed["len"], strict=True)
        ]
        w_layout = data.ArrayLayout(signed(p.W_BITS), P)
        nc_layout = data.ArrayLayout(_ncfg_layout(p), Q)
        lb_rows = packed["len"][p.N_EXT :] > 0 if p.LOOPBACK else [False] * p.N
        blank = {"prof": 0, "bias_mant": 0, "bias_exp": 0, "lb": 0}
        nc_rows = [
            [
                {
                    "prof": int(net.prof[n]),
                    "bias_mant": int(net.bias_mant[n]),
                    "bias_exp": int(net.bias_exp[n]),
                    "lb": int(bool(lb_rows[n])),
                }
                if n < p.N
                else blank
                for n in range(gb * Q, gb * Q + Q)
            ]
            for gb in range(G * B)
        ]
        return {
            "layouts": {"axt": axt_layout, "wmem": w_layout, "ncfg": nc_layout},
            "axt": _pack_words(axt_layout, axt_rows),
            "wmem": _pack_words(w_layout, [[int(x) for x in row] for row in packed["wmem"]]),
            "ncfg": _pack_words(nc_layout, nc_rows),
            "prof": [profile_const(f, p.REF_BITS, p.DECAY).value for f in net.profile_table()],
        }

    def elaborate(self, platform):
        m = Module()
        p, net = self.params, self.net
        P, Q, G, B = p.P, p.Q, p.G, p.beats
        wdepth = net.wdepth
        beat_bits = ceil_log2(B)

        def beat_addr(g, b):
            return Cat(b, g) if B > 1 else g

        # ---- memories ----------------------------------------------------------------------
        img = self.images
        axt_layout, w_layout, nc_layout = (
            img["layouts"]["axt"],
            img["layouts"]["wmem"],
            img["layouts"]["ncfg"],
        )

        def init(name):
            return img[name] if self.preload[name] else []

        m.submodules.axt = axt = memory.Memory(
            shape=unsigned(axt_layout.size), depth=p.N_AX, init=init("axt")
        )
        m.submodules.wmem = wmem = memory.Memory(
            shape=unsigned(w_layout.size), depth=wdepth, init=init("wmem")
        )
        acc_layout = data.ArrayLayout(signed(p.ACC_BITS), P)
        m.submodules.accm = accm = memory.Memory(shape=unsigned(acc_layout.size), depth=G, init=[])
        # STATE and NCFG hold one beat (Q lanes) per word, so a narrow sweep keeps them narrow.
        st_layout = data.ArrayLayout(_state_layout(p), Q)
        m.submodules.state = state = memory.Memory(shape=unsigned(st_layout.size), depth=G * B, init=[])
        m.submodules.ncfg = ncfg = memory.Memory(
            shape=unsigned(nc_layout.size), depth=G * B, init=init("ncfg")
        )
        axt_rd = axt.read_port()
        w_rd = wmem.read_port()
        acc_rd = accm.read_port()
        acc_wr = accm.write_port()
        st_rd = state.read_port()
        st_wr = state.write_port()
        nc_rd = ncfg.read_port()
        axt_q = axt_layout(axt_rd.data)
        w_q = w_layout(w_rd.data)
        acc_q = acc_layout(acc_rd.data)
        st_q = st_layout(st_rd.data)
        nc_q = nc_layout(nc_rd.data)

        # ---- event FIFOs -------------------------------------------------------------------
        in_layout = ev_in_layout(p.N_AX)
        out_layout = ev_out_layout(p.N)
        m.submodules.in_fifo = in_fifo = fifo.SyncFIFOBuffered(width=in_layout.size, depth=p.IN_DEPTH)
        m.submodules.out_fifo = out_fifo = fifo.SyncFIFOBuffered(width=out_layout.size, depth=p.OUT_DEPTH)
        booting = Signal(init=1)
        head = in_layout(in_fifo.r_data)
        m.d.comb += [
            in_fifo.w_data.eq(self.ev_in.payload),
            in_fifo.w_en.eq(self.ev_in.valid & ~booting),
            self.ev_in.ready.eq(in_fifo.w_rdy & ~booting),
            self.ev_out.payload.eq(out_fifo.r_data),
            self.ev_out.valid.eq(out_fifo.r_rdy),
            out_fifo.r_en.eq(self.ev_out.ready),
        ]

        # Loopback set and emit queue hold (g, mask) words; serializers turn them into ids.
        mask_layout = data.StructLayout({"g": unsigned(_bits(G)), "mask": unsigned(P)})
        clear_lbq = Signal()
        lbq = fifo.SyncFIFOBuffered(width=mask_layout.size, depth=max(2, G + 1))
        m.submodules.lbq = ResetInserter(clear_lbq)(lbq)
        m.submodules.emq = emq = fifo.SyncFIFOBuffered(width=mask_layout.size, depth=4)
        # CLEAR empties Λ: the queue and the word its serializer may already hold.
        lb_ser = MaskSerializer(G, P)
        m.submodules.lb_ser = ResetInserter(clear_lbq)(lb_ser)
        m.submodules.em_ser = em_ser = MaskSerializer(G, P)
        m.d.comb += [
            lb_ser.i.payload.eq(lbq.r_data),
            lb_ser.i.valid.eq(lbq.r_rdy),
            lbq.r_en.eq(lb_ser.i.ready),
            em_ser.i.payload.eq(emq.r_data),
            em_ser.i.valid.eq(emq.r_rdy),
            emq.r_en.eq(em_ser.i.ready),
        ]

        # Registered: Λ is written only during the sweep, long before LOOP reads this.
        lbq_busy = Signal()
        m.d.sync += lbq_busy.eq(lbq.level != 0)

        # ---- integrate pipeline ------------------------------------------------------------
        # S0 chooses an axon and reads AXT; S1 holds the AXT entry; the issuer walks its window,
        # reading one WMEM word and ACC group per cycle; I2 adds and writes ACC back.
        src_valid = Signal()
        src_axon = Signal(_bits(p.N_AX))
        s1_valid = Signal()
        cur_addr = Signal(_bits(wdepth))
        cur_g = Signal(_bits(G))
        cur_rem = Signal(_bits(G + 1))
        # cur_rem != 0 and cur_rem <= 1, kept as flags so no compare sits on the control path
        cur_nz = Signal()
        cur_le1 = Signal(init=1)
        i2_valid = Signal()
        i2_g = Signal(_bits(G))
        s1_take = Signal()
        s1_free = Signal()
        m.d.comb += [
            s1_take.eq(s1_valid & cur_le1),
            s1_free.eq(~s1_valid | s1_take),
            axt_rd.addr.eq(src_axon),
            axt_rd.en.eq(s1_free),
        ]
        with m.If(s1_free):
            m.d.sync += s1_valid.eq(src_valid)
        issue = cur_nz
        with m.If(s1_take):
            m.d.sync += [cur_addr.eq(axt_q.base), cur_g.eq(axt_q.g0), cur_rem.eq(axt_q.len)]
            m.d.sync += [cur_nz.eq(axt_q.len != 0), cur_le1.eq(axt_q.len <= 1)]
        with m.Elif(issue):
            m.d.sync += [cur_addr.eq(cur_addr + 1), cur_g.eq(cur_g + 1), cur_rem.eq(cur_rem - 1)]
            m.d.sync += [cur_nz.eq(cur_rem != 1), cur_le1.eq(cur_rem <= 2)]
        m.d.sync += [i2_valid.eq(issue), i2_g.eq(cur_g)]
        # One address for the WMEM read and write ports, reads off while writing: the form that
        # Yosys maps onto a single-port iCE40 SPRAM.
        w_write = Signal()
        w_addr = Signal(_bits(wdepth))
        m.d.comb += [w_rd.addr.eq(w_addr), w_addr.eq(cur_addr)]
        if p.CFG:
            w_wr = wmem.write_port()
            m.d.comb += [w_wr.addr.eq(w_addr), w_rd.en.eq(~w_write)]
            with m.If(w_write):
                m.d.comb += w_addr.eq(self.cfg.payload.addr)

        # A word whose group was written by the word just before it reads a stale ACC: forward
        # that sum. The hit is decided at issue, so I2 is only a multiplexer and the adders.
        fwd_hit = Signal()
        fwd_sum = Signal(acc_layout)
        acc_old = Signal(acc_layout)
        acc_sum = Signal(acc_layout)
        m.d.sync += fwd_hit.eq(issue & i2_valid & (i2_g == cur_g))
        m.d.comb += acc_old.eq(Mux(fwd_hit, fwd_sum, acc_q))
        for j in range(P):
            m.d.comb += acc_sum[j].eq(acc_old[j] + w_q[j])
        m.d.sync += fwd_sum.eq(acc_sum)
        int_busy = s1_valid | issue | i2_valid

        # ---- update sweep (U0 .. UL) -------------------------------------------------------
        u0_valid = Signal()
        u0_g = Signal(_bits(G))
        u0_b = Signal(_bits(B))
        # U1 feeds the lanes; their results are in the last stage, LifLane.LATENCY cycles later.
        stage = [
            (Signal(name=f"u{k}_valid"), Signal(_bits(G), name=f"u{k}_g"), Signal(_bits(B), name=f"u{k}_b"))
            for k in range(1, LifLane.LATENCY + 2)
        ]
        (u1_valid, u1_g, u1_b), (ul_valid, ul_g, ul_b) = stage[0], stage[-1]
        ul_last = ul_b == B - 1
        room = emq.w_rdy & lbq.w_rdy
        if p.TRACE:
            # depth 4: a buffered FIFO of depth 2 takes a beat only every other cycle
            m.submodules.trace_fifo = trace_fifo = fifo.SyncFIFOBuffered(width=trace_layout(p).size, depth=4)
            room &= trace_fifo.w_rdy
        advance = Signal()
        m.d.comb += advance.eq(~(ul_valid & ul_last & ~room))
        with m.If(advance):
            prev = (u0_valid, u0_g, u0_b)
            for sv, sg, sb in stage:
                m.d.sync += [sv.eq(prev[0]), sg.eq(prev[1]), sb.eq(prev[2])]
                prev = (sv, sg, sb)
        sweep_busy = u0_valid
        for sv, _, _ in stage:
            sweep_busy |= sv

        lanes = []
        if p.CFG:
            # Profile registers keep their contents through rst, like the memories.
            prof_w = profile_layout(p.REF_BITS).size
            init = img["prof"] if self.preload["prof"] else [0] * p.N_PROF
            profiles = [
                Signal(prof_w, init=v, reset_less=True, name=f"profile{i}") for i, v in enumerate(init)
            ]
        else:
            profiles = [Const(v, profile_layout(p.REF_BITS).size) for v in img["prof"]]
        for q in range(Q):
            lane = LifLane(
                acc_bits=p.ACC_BITS,
                cuba=p.CUBA,
                decay=p.DECAY,
                ref_bits=p.REF_BITS,
                profiles=profiles,
            )
            m.submodules[f"lane{q}"] = lane
            lanes.append(lane)
            nc = nc_q[q]
            st = st_q[q]
            slot = Cat(Const(q, _bits(Q)) if Q > 1 else Cat(), u1_b if B > 1 else Cat(), u1_g)
            m.d.comb += [
                lane.en.eq(advance),
                # beat b feeds lane q with the accumulator of neuron slot b*Q + q
                lane.acc.eq(Array(acc_q[b * Q + q] for b in range(B))[u1_b] if B > 1 else acc_q[q]),
                lane.v.eq(st.v),
                lane.ref.eq(st.ref),
                lane.bias_mant.eq(nc.bias_mant),
                lane.bias_exp.eq(nc.bias_exp),
                lane.lb.eq(nc.lb),
                lane.prof.eq(nc.prof),
                lane.real.eq(slot < p.N),
            ]
            if p.CUBA:
                m.d.comb += lane.u.eq(st.u)

        # UL (the last stage): gather the beats of a group; write STATE, queue spikes and the trace beat.
        res_u = [Signal(signed(U_W), name=f"res_u{j}") for j in range(P)]
        res_v = [Signal(signed(V_W), name=f"res_v{j}") for j in range(P)]
        res_ref = [Signal(unsigned(p.REF_BITS), name=f"res_ref{j}") for j in range(P)]
        res_s = [Signal(name=f"res_s{j}") for j in range(P)]
        res_e = [Signal(name=f"res_e{j}") for j in range(P)]
        res_l = [Signal(name=f"res_l{j}") for j in range(P)]
        for b in range(B):
            for q, lane in enumerate(lanes):
                j = b * Q + q
                outs = [
                    (res_u[j], lane.u_o),
                    (res_v[j], lane.v_o),
                    (res_ref[j], lane.ref_o),
                    (res_s[j], lane.s),
                    (res_e[j], lane.s_emit),
                    (res_l[j], lane.s_loop),
                ]
                if b == B - 1:
                    m.d.comb += [dst.eq(src) for dst, src in outs]
                else:
                    with m.If(ul_valid & (ul_b == b) & advance):
                        m.d.sync += [dst.eq(src) for dst, src in outs]
        write_group = ul_valid & ul_last & advance
        st_new = Signal(st_layout)
        for q, lane in enumerate(lanes):
            m.d.comb += [st_new[q].v.eq(lane.v_o), st_new[q].ref.eq(lane.ref_o)]
            if p.CUBA:
                m.d.comb += st_new[q].u.eq(lane.u_o)
        emit_mask = Cat(*res_e)
        loop_mask = Cat(*res_l)
        m.d.comb += [
            st_wr.addr.eq(beat_addr(ul_g, ul_b)),
            st_wr.data.eq(st_new),
            st_wr.en.eq(ul_valid & advance),
            emq.w_data.eq(Cat(ul_g, emit_mask)),
            emq.w_en.eq(write_group & (emit_mask != 0)),
            lbq.w_data.eq(Cat(ul_g, loop_mask)),
            lbq.w_en.eq(write_group & (loop_mask != 0)),
        ]
        if p.TRACE:
            tr = trace_layout(p)(trace_fifo.w_data)
            m.d.comb += [tr.g.eq(ul_g), tr.s.eq(Cat(*res_s)), trace_fifo.w_en.eq(write_group)]
            for j in range(P):
                m.d.comb += [tr.u[j].eq(res_u[j]), tr.v[j].eq(res_v[j]), tr.ref[j].eq(res_ref[j])]
            m.d.comb += [
                self.trace.payload.eq(trace_fifo.r_data),
                self.trace.valid.eq(trace_fifo.r_rdy),
                trace_fifo.r_en.eq(self.trace.ready),
            ]

        # ---- memory port sharing between the phases ---------------------------------------
        clr = Signal(_bits(G * B))  # the clear sweep walks every STATE word
        clearing = Signal()
        # U0 reads a group's ACC and writes it to 0 in the same cycle (the read port returns the
        # old value), so once the sweep has issued its last group the next step may integrate.
        sweep_read = Signal()
        m.d.comb += [
            sweep_read.eq(u0_valid & advance & (u0_b == 0)),
            acc_rd.addr.eq(Mux(u0_valid, u0_g, cur_g)),
            st_rd.addr.eq(beat_addr(u0_g, u0_b)),
            nc_rd.addr.eq(beat_addr(u0_g, u0_b)),
            st_rd.en.eq(advance),
            nc_rd.en.eq(advance),
        ]
        with m.If(u0_valid | u1_valid):
            # hold the word U1 is using while the outputs stall the sweep
            m.d.comb += acc_rd.en.eq(sweep_read)
        with m.If(clearing):
            m.d.comb += [
                acc_wr.addr.eq(clr >> beat_bits),
                acc_wr.en.eq(1),
                acc_wr.data.eq(0),
                st_wr.addr.eq(clr),
                st_wr.en.eq(1),
                st_wr.data.eq(0),
            ]
        with m.Elif(u0_valid):
            m.d.comb += [acc_wr.addr.eq(u0_g), acc_wr.en.eq(sweep_read), acc_wr.data.eq(0)]
        with m.Else():
            m.d.comb += [acc_wr.addr.eq(i2_g), acc_wr.en.eq(i2_valid), acc_wr.data.eq(acc_sum)]

        # ---- control -----------------------------------------------------------------------
        # The update pipeline drains, and the TICK marker follows the last spike, while the next
        # step already integrates; the next TICK or CLEAR waits until the marker has left.
        is_spike = head.kind == SPIKE
        in_range = head.addr < p.N_AX
        out_busy = em_ser.o.valid | (emq.level != 0)
        tick_owed = Signal()
        integrating = Signal()
        marker = tick_owed & ~sweep_busy & ~out_busy
        out_w = out_layout(out_fifo.w_data)
        m.d.comb += [
            out_w.addr.eq(Mux(marker, 0, em_ser.o.payload)),
            out_w.kind.eq(marker),
            out_fifo.w_en.eq(em_ser.o.valid | marker),
            em_ser.o.ready.eq(out_fifo.w_rdy),
        ]
        with m.If(marker & out_fifo.w_rdy):
            m.d.sync += tick_owed.eq(0)
        with m.FSM(init="CLEAR"):
            with m.State("CLEAR"):
                m.d.comb += [clearing.eq(1), clear_lbq.eq(1)]
                m.d.sync += clr.eq(clr + 1)
                with m.If(clr == G * B - 1):
                    m.d.sync += [clr.eq(0), booting.eq(0)]
                    m.next = "INTEGRATE"
            with m.State("INTEGRATE"):
                m.d.comb += integrating.eq(1)
                with m.If(in_fifo.r_rdy):
                    with m.If(is_spike):
                        m.d.comb += [src_valid.eq(in_range), src_axon.eq(head.addr), in_fifo.r_en.eq(s1_free)]
                    with m.Elif(head.kind == TICK):
                        with m.If(~tick_owed):
                            m.next = "LOOP"
                    with m.Elif(head.kind == CLEAR):
                        m.next = "CLEAR_WAIT"
                    with m.Else():
                        m.d.comb += in_fifo.r_en.eq(1)
            with m.State("CLEAR_WAIT"):
                with m.If(~int_busy & ~tick_owed):
                    m.d.comb += in_fifo.r_en.eq(1)
                    m.next = "CLEAR"
            with m.State("LOOP"):
                m.d.comb += [
                    src_valid.eq(lb_ser.o.valid),
                    src_axon.eq(p.N_EXT + lb_ser.o.payload),
                    lb_ser.o.ready.eq(s1_free),
                ]
                with m.If(~lb_ser.o.valid & ~lbq_busy & ~int_busy):
                    # The TICK leaves ev_in here, on a short path, not when the sweep ends.
                    m.d.comb += in_fifo.r_en.eq(1)
                    m.next = "SWEEP"
            with m.State("SWEEP"):
                m.d.comb += u0_valid.eq(1)
                with m.If(advance):
                    m.d.sync += u0_b.eq(u0_b + 1)
                    with m.If(u0_b == B - 1):
                        m.d.sync += [u0_b.eq(0), u0_g.eq(u0_g + 1)]
                        with m.If(u0_g == G - 1):
                            m.d.sync += u0_g.eq(0)
                            m.next = "SWEEP_END"
            with m.State("SWEEP_END"):
                # The last group's ACC word stays on the read port until U1 hands it to the lanes
                # (U1 may be stalled by the outputs); only then may the next step read ACC.
                with m.If(advance | ~u1_valid):
                    m.d.sync += tick_owed.eq(1)
                    m.next = "INTEGRATE"
        m.d.comb += self.idle.eq(
            integrating & ~booting & ~in_fifo.r_rdy & ~int_busy & ~sweep_busy & ~out_busy & ~tick_owed
        )

        # ---- performance counters (reset by rst only) -------------------------------------
        if p.PERF:
            perf = self.perf
            m.d.sync += [
                perf.cyc_int.eq(perf.cyc_int + (int_busy | src_valid)),
                perf.cyc_upd.eq(perf.cyc_upd + (sweep_busy | tick_owed)),
                perf.words.eq(perf.words + issue),
                perf.stall_out.eq(
                    perf.stall_out + ((ul_valid & ~advance) | (self.ev_out.valid & ~self.ev_out.ready))
                ),
                perf.ticks.eq(perf.ticks + (marker & out_fifo.w_rdy)),
            ]

        # ---- configuration writes (only while idle) -----------------------------------------
        if p.CFG:
            cfg = self.cfg
            we = cfg.valid & cfg.ready
            axt_wr = axt.write_port()
            nc_wr = ncfg.write_port()
            m.d.comb += [
                cfg.ready.eq(self.idle),
                axt_wr.addr.eq(cfg.payload.addr),
                axt_wr.data.eq(cfg.payload.data),
                axt_wr.en.eq(we & (cfg.payload.sel == 0)),
                w_wr.data.eq(cfg.payload.data),
                w_wr.en.eq(w_write),
                w_write.eq(we & (cfg.payload.sel == 1)),
                nc_wr.addr.eq(cfg.payload.addr),
                nc_wr.data.eq(cfg.payload.data),
                nc_wr.en.eq(we & (cfg.payload.sel == 2)),
            ]
            with m.If(we & (cfg.payload.sel == 3)):
                with m.Switch(cfg.payload.addr):
                    for i, reg in enumerate(profiles):
                        with m.Case(i):
                            m.d.sync += reg.eq(cfg.payload.data)
        return m
