"""The block registry: one entry per block ties its schema, presets, golden model, RTL and testbench.

Every CLI command goes through :func:`get` and :func:`resolve`, so it works for every block without
special cases.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import numpy as np
import yaml

from .config import (
    Config,
    Param,
    check_params,
    check_section,
    did_you_mean,
    parse_value,
    raise_all,
    read_yaml,
)
from .errors import ConfigError


class Block:
    """What a block provides to the flows. Subclasses fill in the class attributes and methods.

    ``stimulus_keys`` maps each key of a stimulus ``.npz`` to ``(ndim, trailing shape or None,
    description)``; ``dump_keys`` likewise for what ``cosim --dump`` writes.
    """

    name: str = ""
    summary: str = ""
    params: tuple[Param, ...] = ()
    testbench: str = ""  # cocotb test module
    stimulus_keys: dict[str, tuple] = {}
    dump_keys: dict[str, str] = {}
    vectors_meaning: str = "vectors"
    lut_mapper: str = "abc9"  # or "abc": Yosys' classic ABC maps the block's LUTs (say why)
    lut_mapper_why: str = ""
    #: Why the demo does not synthesise the default preset (empty: it does).
    demo_no_synth: str = ""

    @property
    def schema(self) -> dict[str, Param]:
        return {p.name: p for p in self.params}

    @property
    def presets(self) -> dict[str, dict]:
        text = resources.files("neurohdl.flows").joinpath("presets", f"{self.name}.yaml").read_text()
        return yaml.safe_load(text)

    def defaults(self) -> dict:
        return {p.name: p.default for p in self.params}

    # -- hooks a block implements ----------------------------------------------------------
    def check(self, params: dict) -> None:
        """Cross-parameter constraints; raise ``ValueError`` naming the parameter."""

    def model(self, params: dict) -> Any:
        """The golden model object (network, tables) that both the model run and the RTL use."""
        raise NotImplementedError

    def rtl(self, model: Any, *, sim: bool) -> Any:
        """The Amaranth component; ``sim`` adds the observation ports the testbench compares."""
        raise NotImplementedError

    def stimulus(self, model: Any, rng: np.random.Generator, vectors: int) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def expected(self, model: Any, stimulus: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def random_params(self, rng: np.random.Generator) -> dict[str, Any]:
        """A random legal configuration (build and stimulus parameters over the defaults) that,
        over many draws, covers every build parameter: ``neurohdl fuzz`` and the random
        co-simulation tests draw from it."""
        raise NotImplementedError

    def memory_styles(self, model: Any, family: str) -> dict[str, str]:
        """Yosys ``ram_style`` per memory name for an FPGA family. ``"huge"`` (iCE40 SPRAM) drops
        the memory's initial contents in synthesis, so the design must load it through a port."""
        return {}

    def setup_beats(self, component: Any) -> dict[str, list[dict]]:
        """Beats the testbench sends before the stimulus (configuration), per input stream."""
        return {}

    def cycle_model(self, model: Any, stimulus: dict[str, np.ndarray]) -> int | None:
        return None

    #: The spec's numbers to beat, as (what, value and source) rows for ``neurohdl bench``.
    anchors: tuple[tuple[str, str], ...] = ()

    def cycle_limit(self, model: Any, stimulus: dict[str, np.ndarray]) -> tuple[float, str] | None:
        """The physical limit on the stimulus's cycles (spec), and the formula's name."""
        return None

    def figures(self, quick: bool) -> list[tuple[str, str, str]]:
        """Error and application figures for ``neurohdl bench``: (figure, ours, spec's bound or anchor)."""
        return []

    def check_stimulus(self, stim: dict[str, np.ndarray], model: Any, source: str) -> None:
        """Keys, dtypes and shapes of a user's stimulus file."""
        missing = [k for k in self.stimulus_keys if k not in stim]
        extra = [k for k in stim if k not in self.stimulus_keys]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing key(s) {', '.join(missing)}")
            if extra:
                parts.append(f"unknown key(s) {', '.join(extra)}")
            raise ConfigError(f"{source}: {'; '.join(parts)}; a {self.name} stimulus has {self._keys_doc()}")
        for k, (ndim, trailing, _) in self.stimulus_keys.items():
            a = stim[k]
            if not np.issubdtype(a.dtype, np.integer):
                raise ConfigError(f"{source}: key '{k}' must be an integer array, got dtype {a.dtype}")
            if a.ndim != ndim or (trailing is not None and a.shape[1:] != tuple(trailing)):
                want = "(k, " + ", ".join(map(str, trailing)) + ")" if trailing else f"{ndim}-D"
                raise ConfigError(f"{source}: key '{k}' must have shape {want}, got {a.shape}")

    def adopt(self, doc: dict, path: str) -> dict | None:
        """Parameters for a file in the block's own format given as ``--config`` (else None)."""
        return None

    def add_commands(self, sub) -> None:
        """Block commands, ``neurohdl <block> <command>``: add parsers to ``sub`` (argparse)."""

    @property
    def has_commands(self) -> bool:
        return type(self).add_commands is not Block.add_commands

    def _keys_doc(self) -> str:
        return ", ".join(f"'{k}' {d}" for k, (_, _, d) in self.stimulus_keys.items())


_BLOCKS: dict[str, Block] = {}
TOP_KEYS = ("block", "params", "preset", "cosim", "synth")


def register(block: Block) -> Block:
    _BLOCKS[block.name] = block
    return block


def _load() -> None:
    # Always import every block module: importing one directly (a test, a tool) registers only that
    # one, so an empty registry is no sign that the others are loaded.
    from .blocks import fusemax, lif, ramp_adc, sfq  # noqa: F401  (they register themselves)


def names() -> list[str]:
    _load()
    return sorted(_BLOCKS)


def get(name: str) -> Block:
    _load()
    if name not in _BLOCKS:
        raise ConfigError(f"unknown block '{name}'{did_you_mean(name, _BLOCKS)}")
    return _BLOCKS[name]


def resolve(
    block: str | None = None,
    *,
    preset: str | None = None,
    config: str | None = None,
    sets: list[str] = (),
) -> Config:
    """Defaults, then a preset, then a config file, then ``--set key=value`` overrides, all checked."""
    doc: dict = {}
    source = ""
    if config:
        doc = read_yaml(config)
        source = config
        for b in (get(n) for n in names()):
            adopted = b.adopt(doc, config)
            if adopted is not None:  # a block's own file format (an sfq netlist), not a config file
                doc = {"block": b.name, "params": adopted}
                break
        unknown = [k for k in doc if k not in TOP_KEYS]
        if unknown:
            raise ConfigError(f"{config}: {unknown[0]}: unknown key{did_you_mean(unknown[0], TOP_KEYS)}")
        if "block" not in doc:
            raise ConfigError(f"{config}: missing 'block' (one of {', '.join(names())})")
        if block and doc["block"] != block:
            raise ConfigError(f"{config}: file is for block '{doc['block']}', not '{block}'")
        block = doc["block"]
        preset = preset or doc.get("preset")
    if block is None:
        raise ConfigError("name a block or give --config FILE.yaml")
    if not isinstance(block, str):
        raise ConfigError(f"{source or 'block'}: block must be a name, got {block!r}")
    b = get(block)
    params = b.defaults()
    errors: list[str] = []
    if preset:
        if preset not in b.presets:
            raise ConfigError(f"unknown preset '{preset}' for {block}{did_you_mean(preset, b.presets)}")
        params.update(check_params(b.schema, b.presets[preset], errors, f"preset {preset}"))
    file_params = doc.get("params") or {}
    if not isinstance(file_params, dict):
        raise ConfigError(f"{source}: params must be a mapping")
    params.update(check_params(b.schema, file_params, errors))
    cosim = check_section("cosim", doc.get("cosim"), errors)
    synth = check_section("synth", doc.get("synth"), errors)
    overrides = {}
    for item in sets:
        if "=" not in item:
            errors.append(f"--set {item}: expected key=value")
            continue
        key, _, text = item.partition("=")
        overrides[key.strip()] = parse_value(text)
    params.update(check_params(b.schema, overrides, errors, "--set"))
    raise_all(errors, source)
    try:
        b.check(params)
    except ValueError as e:
        raise ConfigError(f"{source + ': ' if source else ''}params: {e}") from None
    return Config(
        block=block, params=params, cosim=cosim, synth=synth, source=source or (preset or "defaults")
    )
