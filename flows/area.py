"""Where a synthesised netlist's area goes: LUTs, carry cells and flip-flops grouped by the register
they belong to (``neurohdl synth BLOCK --breakdown``).

A flip-flop belongs to the signal on its output. A LUT or carry cell belongs to the first register,
block RAM or DSP input it feeds (forward through other LUTs and carries), so a shifter in front of a
register counts for that register. Signal names are grouped with their digits replaced by ``#``:
``prod_0_1`` and ``prod_1_3`` are one group, ``prod_#_#``, with the number of signals in it.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path

from .results import markdown_table

__all__ = ["breakdown", "breakdown_table"]


def _group(name: str) -> str:
    return re.sub(r"\d+", "#", name)


def breakdown(netlist: Path, cells: dict[str, tuple[str, ...]], top: int | None = None) -> list[dict]:
    """Rows ``{group, signals, lut4, carry, ff}`` of the Yosys JSON ``netlist``, largest first
    (LUT4 + FF); ``cells``: the family's cell names (``flows.synth.CELLS[family]``); ``top``: at
    most this many rows, the rest summed in one."""
    mod = json.loads(Path(netlist).read_text())["modules"]["top"]
    names: dict[int, str] = {}
    for name, net in mod["netnames"].items():
        if name.startswith("$"):
            continue
        for bit in net["bits"]:
            if isinstance(bit, int) and (bit not in names or len(name) < len(names[bit])):
                names[bit] = name
    kinds = [(prefix, k) for k, prefixes in cells.items() for prefix in prefixes]
    kind = {
        cell["type"]: next((k for prefix, k in kinds if cell["type"].startswith(prefix)), None)
        for cell in mod["cells"].values()
    }
    readers: dict[int, list[str]] = defaultdict(list)
    outputs: dict[str, list[int]] = {}
    for cname, cell in mod["cells"].items():
        dirs = cell.get("port_directions", {})
        outputs[cname] = []
        for port, bits in cell["connections"].items():
            ints = [bit for bit in bits if isinstance(bit, int)]
            if dirs.get(port) == "output":
                outputs[cname] += ints
            else:
                for bit in ints:
                    readers[bit].append(cname)

    def reg_name(cname: str) -> str:
        """The signal on a flip-flop's output, without its hierarchy."""
        return names.get(outputs[cname][0], "?").rsplit(".", 1)[-1] if outputs[cname] else "?"

    owner: dict[str, str] = {}

    def owner_of(start: str) -> str:
        """The group the logic cell ``start`` belongs to (iterative: netlists are deep)."""
        stack, order = [start], []
        while stack:
            cname = stack.pop()
            if cname in owner:
                continue
            owner[cname] = ""  # visiting
            order.append(cname)
            for bit in outputs[cname]:
                for r in readers[bit]:
                    k = kind.get(mod["cells"][r]["type"])
                    if k == "ff":
                        owner[cname] = owner[cname] or _group(reg_name(r))
                    elif k in ("bram", "dsp", "spram") and not owner[cname]:
                        owner[cname] = f"({mod['cells'][r]['type']} inputs)"
                    elif k in ("lut", "carry") and r not in owner:
                        stack.append(r)
        # a cell reaching no register directly takes the group of a logic cell it feeds
        for cname in reversed(order):
            if not owner[cname]:
                fed = [owner.get(r, "") for bit in outputs[cname] for r in readers[bit]]
                owner[cname] = next((o for o in fed if o), "(outputs)")
        return owner[start]

    count: dict[str, Counter] = defaultdict(Counter)
    signals: dict[str, set] = defaultdict(set)
    for cname, cell in mod["cells"].items():
        k = kind.get(cell["type"])
        if k == "ff":
            name = reg_name(cname)
            count[_group(name)]["ff"] += 1
            signals[_group(name)].add(name)
        elif k in ("lut", "carry"):
            count[owner_of(cname)]["lut4" if k == "lut" else "carry"] += 1
    rows = [
        {"group": g, "signals": len(signals[g]), "lut4": c["lut4"], "carry": c["carry"], "ff": c["ff"]}
        for g, c in count.items()
    ]
    rows.sort(key=lambda r: (-(r["lut4"] + r["ff"]), r["group"]))
    if top is not None and len(rows) > top:
        rest = rows[top:]
        rows = rows[:top] + [
            {"group": f"({len(rest)} more groups)", "signals": sum(r["signals"] for r in rest)}
            | {k: sum(r[k] for r in rest) for k in ("lut4", "carry", "ff")}
        ]
    return rows


def breakdown_table(rows: list[dict]) -> str:
    total = {k: sum(r[k] for r in rows) for k in ("lut4", "carry", "ff")}
    body = [[r["group"], r["signals"], f"{r['lut4']:,}", f"{r['carry']:,}", f"{r['ff']:,}"] for r in rows]
    body.append(["total", "", f"{total['lut4']:,}", f"{total['carry']:,}", f"{total['ff']:,}"])
    return markdown_table(body, ["register group", "signals", "LUT4", "carry", "FF"])
