"""Config files: loading, schema checks with key paths, presets and ``--set`` overrides."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

SECTIONS = {
    "cosim": {"sim": str, "seed": int, "vectors": int, "waves": str, "bulk": bool},
    "synth": {"target": str, "seed": int},
}


@dataclass(frozen=True)
class Param:
    """One build parameter of a block: its type, legal range or choices, default and meaning."""

    name: str
    type: type
    default: Any
    description: str
    min: float | None = None
    max: float | None = None
    choices: tuple | None = None

    def check(self, value: Any, path: str) -> Any:
        t = self.type
        if t is bool:
            ok = isinstance(value, bool)
        elif t is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif t is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            value = float(value) if ok else value
        else:
            ok = isinstance(value, t)
        if not ok:
            raise ConfigError(f"{path}: expected {t.__name__}, got {type(value).__name__} {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"{path}: {value!r} is not one of {', '.join(map(str, self.choices))}")
        if self.min is not None and value < self.min:
            raise ConfigError(f"{path}: {value!r} is below the minimum {self.min}")
        if self.max is not None and value > self.max:
            raise ConfigError(f"{path}: {value!r} is above the maximum {self.max}")
        return value

    def describe(self) -> dict:
        d = {
            "name": self.name,
            "type": self.type.__name__,
            "default": self.default,
            "description": self.description,
        }
        if self.choices is not None:
            d["choices"] = list(self.choices)
        if self.min is not None or self.max is not None:
            d["range"] = [self.min, self.max]
        return d


def did_you_mean(key: str, known) -> str:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.5)
    if not close:
        close = [k for k in known if k.lower() == key.lower()]
    return f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(sorted(known))})"


@dataclass
class Config:
    """A resolved config: block name, every parameter filled in, and the optional sections."""

    block: str
    params: dict
    cosim: dict = field(default_factory=dict)
    synth: dict = field(default_factory=dict)
    source: str = "defaults"


def parse_value(text: str) -> Any:
    """``--set`` values are YAML scalars: ``8``, ``true``, ``shift``, ``0.5``."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"--set value {text!r} is not a YAML scalar: {e.problem}") from None


def read_yaml(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        doc = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: a config must be a mapping with 'block' and 'params'")
    return doc


def check_section(name: str, values: Any, errors: list[str]) -> dict:
    schema = SECTIONS[name]
    if values is None:
        return {}
    if not isinstance(values, dict):
        errors.append(f"{name}: must be a mapping")
        return {}
    out = {}
    for k, v in values.items():
        if k not in schema:
            errors.append(f"{name}.{k}: unknown key{did_you_mean(k, schema)}")
        elif not isinstance(v, schema[k]) or isinstance(v, bool):
            errors.append(f"{name}.{k}: expected {schema[k].__name__}, got {type(v).__name__} {v!r}")
        else:
            out[k] = v
    return out


def check_params(schema: dict[str, Param], values: dict, errors: list[str], prefix: str = "params") -> dict:
    out = {}
    for k, v in values.items():
        if k not in schema:
            errors.append(f"{prefix}.{k}: unknown parameter{did_you_mean(k, schema)}")
            continue
        try:
            out[k] = schema[k].check(v, f"{prefix}.{k}")
        except ConfigError as e:
            errors.append(str(e))
    return out


def raise_all(errors: list[str], source: str) -> None:
    if errors:
        head = f"{source}: " if source else ""
        raise ConfigError(head + "; ".join(errors))
