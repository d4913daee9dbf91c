"""Saving a command's figures: a JSON file and a markdown table side by side."""

from __future__ import annotations

import json
from pathlib import Path

from .emit import write_atomic


def markdown_table(rows: list[list], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def save_results(out_dir: Path, name: str, result: dict | list, markdown: str) -> Path:
    """``out_dir/name.json`` and ``out_dir/name.md``; returns the JSON path."""
    path = Path(out_dir) / f"{name}.json"
    write_atomic(path, json.dumps(result, indent=1, default=str) + "\n")
    write_atomic(Path(out_dir) / f"{name}.md", markdown + "\n")
    return path
