"""SFQ pulse netlists (spec ``sfq.md`` §2.2): the YAML format, its checks, and the resolved form that
the golden model, the timed model and the RTL all read.

A netlist names its inputs, outputs, runtime registers and elements; every wire has exactly one
driver and one load, and every element has a latency of at least one slot, so any netlist, feedback
included, is a synchronous circuit. Errors raise :class:`NetlistError` naming the element.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
FORMAT = "sfq-netlist/1"
LFSR_TAPS = 0xB400


@lru_cache(maxsize=1)
def lfsr_orbit() -> tuple[np.ndarray, np.ndarray]:
    """The single-step LFSR orbit from state 1 (all 65535 nonzero states) and each state's position."""
    orbit = np.empty(65535, dtype=np.int64)
    s = 1
    for k in range(65535):
        orbit[k] = s
        s = (s >> 1) ^ (LFSR_TAPS if s & 1 else 0)
    pos = np.zeros(65536, dtype=np.int64)
    pos[orbit] = np.arange(65535)
    return orbit, pos


class NetlistError(ValueError):
    """A malformed netlist; the message names the element or key."""


@dataclass(frozen=True)
class Reg:
    """A runtime register: a parameter that ``cfg`` can rewrite."""

    name: str
    width: int
    init: int


@dataclass(frozen=True)
class Param:
    """One resolved parameter: a constant, or a register read every slot."""

    value: int
    reg: str | None = None
    #: for ``p: {bias: N}``, the unquantised pass probability Phi(...) that ``value`` rounds
    exact: float | None = None


#: type -> (input ports, output port count rule, parameters with (lo, hi, default), jj default)
#: input ports: name -> "one" | "many" (a list) | "many0" (a list, may be empty)
ELEMENTS: dict[str, dict] = {
    "delay": {"in": {"in": "one"}, "params": {}, "jj": lambda e: 2 * e.lat},
    "split": {"in": {"in": "one"}, "params": {}, "jj": lambda e: 3 * (len(e.outs) - 1)},
    "merge": {
        "in": {"in": "many"},
        "params": {"dead": (0, 15, 0), "depth": (1, 15, 1)},
        "choices": {"mode": ("lossy", "queue")},
        "jj": lambda e: 7 * (len(e.ins["in"]) - 1),
    },
    "dro": {
        "in": {"d": "one", "clk": "one"},
        "params": {},
        "choices": {"order": ("clock_first", "data_first")},
        "jj": lambda e: 6,
    },  # fmt: skip
    "ndro": {"in": {"set": "one", "rst": "one", "clk": "one"}, "params": {}, "jj": lambda e: 10},
    "tff": {"in": {"in": "one"}, "params": {"init": (0, 1, 0)}, "jj": lambda e: 8},
    "c_last": {"in": {"a": "one", "b": "one"}, "params": {}, "jj": lambda e: 5},
    "c_first": {"in": {"a": "one", "b": "one"}, "params": {}, "jj": lambda e: 3},
    "inhibit": {"in": {"a": "one", "clk": "one"}, "params": {}, "jj": lambda e: 10},
    "divider": {"in": {"in": "one"}, "params": {"k": (1, 256, 2)}, "jj": lambda e: 4},
    "synapse": {
        "in": {"in": "one"},
        "params": {"p": (0, 65535, 65535), "seed": (1, 65535, None), "steps": (1, 16, 16)},
        "jj": lambda e: 4,
    },
    "neuron": {
        "in": {"exc": "many", "inh": "many0"},
        "params": {
            "width": (1, 16, 4),
            "theta": (0, 65535, 1),
            "leak": (0, 65535, 0),
            "refractory": (0, 255, 0),
            "n0": (0, 65535, 0),
        },
        "choices": {"reset": ("subtract", "zero"), "fanin": ("merge", "count")},
        "jj": lambda e: 20,
    },
}
#: parameters that may be runtime registers (the bias-current knobs)
RUNTIME = {"p", "theta", "leak"}
COMMON = {"id", "type", "in", "out", "exc", "inh", "lat", "jj", "delay_ps", "dead_ps", "dead_cross_ps",
          "setup_ps", "hold_ps", "d", "clk", "set", "rst", "a", "b"}  # fmt: skip
TOP = {"format", "name", "slot_ps", "seed", "inputs", "outputs", "regs", "elements", "timing", "bias_curve",
       "stimulus"}  # fmt: skip


@dataclass(frozen=True)
class Element:
    id: str
    type: str
    ins: dict[str, tuple[str, ...]]
    outs: tuple[str, ...]
    params: dict[str, Param]
    choices: dict[str, str]
    lat: int = 1
    jj: int = 0

    def reader(self, regs: dict[str, int]) -> Callable[[str], int]:
        """``read(name)``: the parameter's value, from ``regs`` (read at each call, so writes to it
        show) when a register holds it."""
        params = self.params

        def read(name: str) -> int:
            p = params[name]
            return regs[p.reg] if p.reg else p.value

        return read


@dataclass(frozen=True)
class Netlist:
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    regs: dict[str, Reg]
    elements: tuple[Element, ...]
    slot_ps: float = 10.0
    seed: int = 1
    timing: dict = field(default_factory=dict)
    bias_curve: dict = field(default_factory=dict)
    stimulus: dict = field(default_factory=dict)

    @property
    def wires(self) -> tuple[str, ...]:
        out = list(self.inputs)
        for e in self.elements:
            out += e.outs
        return tuple(out)

    def element(self, eid: str) -> Element:
        return next(e for e in self.elements if e.id == eid)


def _name(value, what: str) -> str:
    if not isinstance(value, str) or not NAME.match(value):
        raise NetlistError(
            f"{what}: {value!r} is not a name ([A-Za-z_][A-Za-z0-9_]*; quote YAML words like on/no)"
        )
    return value


def _int(value, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise NetlistError(f"{what}: expected an integer, got {value!r}")
    if not lo <= value <= hi:
        raise NetlistError(f"{what}: {value} is outside {lo}..{hi}")
    return value


def bias_phi(b: int, curve: dict) -> float:
    """Synapse bias curve (§2.4), unquantised: Phi((b - b50) / sigma)."""
    z = (b - curve.get("b50", 128)) / curve.get("sigma", 16)
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def bias_p(b: int, curve: dict) -> int:
    """Synapse bias curve (§2.4): p(b) = round(65535 * Phi((b - b50) / sigma))."""
    return round(65535 * bias_phi(b, curve))


def bias_theta(b: int, n_max: int, curve: dict) -> int:
    """Neuron bias curve (§2.5): theta(b) = 1 if b >= ic else min(n_max, ceil((ic - b) / dI))."""
    ic, di = curve.get("ic", 200), curve.get("dI", 40)
    return 1 if b >= ic else min(n_max, math.ceil((ic - b) / di))


def scaled_bias(b: int, g: int, bw: int = 8) -> int:
    """The global bias scale g (permille) applied to a bias b."""
    return min(2**bw - 1, (b * g + 500) // 1000)


def load_netlist(source: str | Path | dict, *, bias_scale: int = 1000) -> Netlist:
    """Parse and check a netlist from a path, a YAML string or a mapping."""
    if isinstance(source, dict):
        doc = source
    else:
        is_path = isinstance(source, Path) or str(source).endswith((".yaml", ".yml"))
        if is_path and not Path(source).is_file():
            raise NetlistError(f"{source}: no such netlist file")
        text = Path(source).read_text() if is_path else str(source)
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise NetlistError(f"not valid YAML: {getattr(e, 'problem', e)}") from None
    if not isinstance(doc, dict):
        raise NetlistError("a netlist is a mapping with inputs, outputs and elements")
    unknown = set(doc) - TOP
    if unknown:
        raise NetlistError(f"unknown top-level key(s): {', '.join(sorted(map(str, unknown)))}")
    if doc.get("format", FORMAT) != FORMAT:
        raise NetlistError(f"format {doc.get('format')!r} is not {FORMAT}")
    inputs = tuple(_name(x, "inputs") for x in doc.get("inputs") or [])
    outputs = tuple(_name(x, "outputs") for x in doc.get("outputs") or [])
    if not outputs:
        raise NetlistError("outputs: a netlist needs at least one output")
    seed = _int(doc.get("seed", 1), "seed", 0, 2**32 - 1)
    curve = doc.get("bias_curve") or {}
    regs: dict[str, Reg] = {}
    for rname, spec in (doc.get("regs") or {}).items():
        _name(rname, "regs")
        if not isinstance(spec, dict) or set(spec) - {"width", "init"}:
            raise NetlistError(f"regs.{rname}: expected {{width: W, init: V}}")
        width = _int(spec.get("width", 16), f"regs.{rname}.width", 1, 32)
        init = _int(spec.get("init", 0), f"regs.{rname}.init", 0, 2**width - 1)
        regs[rname] = Reg(rname, width, init)
    elements: list[Element] = []
    ids: set[str] = set()
    synapse_index = 0
    for raw in doc.get("elements") or []:
        if not isinstance(raw, dict):
            raise NetlistError(f"elements: expected a mapping per element, got {raw!r}")
        eid = _name(raw.get("id"), "element id")
        if eid in ids:
            raise NetlistError(f"{eid}: duplicate element id")
        ids.add(eid)
        etype = raw.get("type")
        if etype not in ELEMENTS:
            close = difflib.get_close_matches(str(etype), list(ELEMENTS), n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(ELEMENTS)}"
            raise NetlistError(f"{eid}: unknown element type {etype!r} ({hint})")
        lib = ELEMENTS[etype]
        allowed = COMMON | set(lib["params"]) | set(lib.get("choices", {}))
        extra = set(raw) - allowed
        if extra:
            raise NetlistError(f"{eid}: unknown key(s) {', '.join(sorted(map(str, extra)))} for a {etype}")
        ins: dict[str, tuple[str, ...]] = {}
        for port, kind in lib["in"].items():
            v = raw.get(port)
            if kind == "one":
                if v is None:
                    raise NetlistError(f"{eid}: missing input '{port}'")
                ins[port] = (_name(v, f"{eid}.{port}"),)
            else:
                v = [] if v is None else v
                if not isinstance(v, list) or (kind == "many" and not v):
                    raise NetlistError(
                        f"{eid}: '{port}' must be a list of wires"
                        + (" (at least one)" if kind == "many" else "")
                    )
                ins[port] = tuple(_name(x, f"{eid}.{port}") for x in v)
        out = raw.get("out")
        outs = (
            tuple(_name(x, f"{eid}.out") for x in out)
            if isinstance(out, list)
            else (_name(out, f"{eid}.out"),)
        )
        if etype == "split" and not 2 <= len(outs) <= 64:
            raise NetlistError(f"{eid}: a split has 2..64 outputs, got {len(outs)}")
        if etype != "split" and len(outs) != 1:
            raise NetlistError(f"{eid}: a {etype} has one output")
        if etype == "merge" and not 2 <= len(ins["in"]) <= 64:
            raise NetlistError(f"{eid}: a merge has 2..64 inputs, got {len(ins['in'])}")
        lat = _int(raw.get("lat", 1), f"{eid}.lat", 1, 64)
        params: dict[str, Param] = {}
        n_max = 2 ** raw.get("width", 4) - 1 if etype == "neuron" else 0
        for pname, (lo, hi, default) in lib["params"].items():
            hi = n_max if pname in ("theta", "n0") else hi
            v = raw.get(pname, default)
            exact = None
            if pname == "seed" and v is None:
                v = 1 + ((seed + 40499 * (synapse_index + 1)) % 65535)
            if isinstance(v, dict):
                if pname not in ("p", "theta") or set(v) != {"bias"}:
                    raise NetlistError(f"{eid}.{pname}: only p and theta take {{bias: N}}")
                b = _int(v["bias"], f"{eid}.{pname}.bias", 0, 255)
                b = scaled_bias(b, bias_scale)
                v = bias_p(b, curve) if pname == "p" else bias_theta(b, n_max, curve)
                exact = bias_phi(b, curve) if pname == "p" else None
            if isinstance(v, str) and v.startswith("$"):
                if pname not in RUNTIME:
                    raise NetlistError(f"{eid}.{pname}: only {', '.join(sorted(RUNTIME))} can be registers")
                reg = regs.get(v[1:])
                if reg is None:
                    raise NetlistError(f"{eid}.{pname}: no register {v[1:]!r} in regs")
                if reg.init > hi:
                    raise NetlistError(f"{eid}.{pname}: register {reg.name} starts at {reg.init}, above {hi}")
                params[pname] = Param(reg.init, reg.name)
            else:
                params[pname] = Param(_int(v, f"{eid}.{pname}", lo, hi), exact=exact)
        if etype == "synapse":
            synapse_index += 1
        choices = {}
        for cname, options in lib.get("choices", {}).items():
            c = raw.get(cname, options[0])
            if c not in options:
                raise NetlistError(f"{eid}.{cname}: {c!r} is not one of {', '.join(options)}")
            choices[cname] = c
        proto = Element(eid, etype, ins, outs, params, choices, lat)
        jj = _int(raw.get("jj", lib["jj"](proto)), f"{eid}.jj", 0, 10**6)
        elements.append(Element(eid, etype, ins, outs, params, choices, lat, jj))
    net = Netlist(
        str(doc.get("name", "netlist")), inputs, outputs, regs, tuple(elements),
        float(doc.get("slot_ps", 10.0)), seed, doc.get("timing") or {}, curve, doc.get("stimulus") or {},
    )  # fmt: skip
    _check_wires(net)
    return net


def _check_wires(net: Netlist) -> None:
    """One driver and one load per wire; every load driven."""
    driver: dict[str, str] = {}
    for w in net.inputs:
        if w in driver:
            raise NetlistError(f"inputs: {w} listed twice")
        driver[w] = "input"
    for e in net.elements:
        for w in e.outs:
            if w in driver:
                raise NetlistError(f"{e.id}: wire {w} is already driven by {driver[w]}")
            driver[w] = e.id
    load: dict[str, str] = {}
    for e in net.elements:
        for port, ws in e.ins.items():
            for w in ws:
                if w not in driver:
                    raise NetlistError(f"{e.id}: input {port} wire {w} has no driver")
                if w in load:
                    raise NetlistError(f"{e.id}: wire {w} already feeds {load[w]}; fan-out needs a split")
                load[w] = e.id
    for w in net.outputs:
        if w not in driver:
            raise NetlistError(f"outputs: wire {w} has no driver")
        if w in load:
            raise NetlistError(f"outputs: wire {w} already feeds {load[w]}; fan-out needs a split")
        load[w] = "outputs"
    dangling = [w for w in driver if w not in load]
    if dangling:
        raise NetlistError(f"{driver[dangling[0]]}: wire {dangling[0]} goes nowhere (dangling)")


def netlist_id(net: Netlist) -> int:
    """CRC32 of the canonical JSON of the resolved netlist (the RTL's ID register)."""
    doc = {
        "name": net.name,
        "inputs": net.inputs,
        "outputs": net.outputs,
        "regs": [[r.name, r.width, r.init] for r in net.regs.values()],
        "elements": [
            [
                e.id,
                e.type,
                e.ins,
                e.outs,
                {k: [p.value, p.reg] for k, p in e.params.items()},
                e.choices,
                e.lat,
            ]
            for e in net.elements
        ],
    }
    return zlib.crc32(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())


#: cfg port addresses (spec §3): control, status, identity, the runtime registers in order from
#: REG_BASE, the debug counters (:func:`debug_counters`) from DEBUG_BASE
CTRL, SLOTS, CYCLES, ID, REG_BASE, DEBUG_BASE = 0x000, 0x001, 0x002, 0x003, 0x010, 0x400

#: debug counters per element type, in register order (spec §2.3/§2.5)
COUNTERS = {
    "merge": ("lost",),
    "dro": ("dup", "same_slot"),
    "ndro": ("conflict", "same_slot"),
    "c_last": ("dup",),
    "c_first": ("dup",),
    "inhibit": ("same_slot",),
    "synapse": ("pass", "block"),
    "neuron": (
        "fires",
        "sat_drop",
        "floor_drop",
        "cancelled",
        "refr_drop",
        "fanin_lost",
        "reset_drop",
        "leaked",
    ),
}


def debug_counters(net: Netlist) -> list[tuple[str, str]]:
    """(element id, counter) of every debug counter, in register order from DEBUG_BASE."""
    return [(e.id, name) for e in net.elements for name in COUNTERS.get(e.type, ())]


def register_map(net: Netlist, cnt_width: int = 0) -> dict:
    """Addresses of the cfg port (spec §3): control, status, identity, the runtime registers and,
    with ``cnt_width`` > 0, the debug counters."""
    debug = {
        f"{eid}.{name}": {"addr": DEBUG_BASE + k, "access": "R", "width": cnt_width}
        for k, (eid, name) in enumerate(debug_counters(net))
    }
    return {
        "CTRL": {"addr": CTRL, "access": "W", "bits": {"CLEAR": 0}},
        "SLOTS": {"addr": SLOTS, "access": "R", "width": 32},
        "CYCLES": {"addr": CYCLES, "access": "R", "width": 32},
        "ID": {"addr": ID, "access": "R", "width": 32, "value": netlist_id(net)},
        "registers": {
            r.name: {"addr": REG_BASE + k, "access": "RW", "width": r.width, "init": r.init}
            for k, r in enumerate(net.regs.values())
        },
        **({"debug": debug} if cnt_width else {}),
    }
