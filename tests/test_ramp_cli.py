"""The ramp_adc block on the command line: listing, deterministic generation, the error table, and
one-line errors (exit 2) for bad tables, unrealisable widths and writes to slots that do not exist."""

import json
import sys

import numpy as np
import pytest


def test_list_has_ramp_adc_presets(cli):
    code, out, _ = cli("list", "--json")
    assert code == 0
    b = {b["name"]: b for b in json.loads(out)["blocks"]}["ramp_adc"]
    assert {"default", "gelu", "lstm", "nladc64", "lut_column64", "lut_shared64"} <= set(b["presets"])
    d = b["presets"]["default"]
    assert (d["C"], d["G"], d["functions"]) == (64, 2, "sigmoid,tanh")
    assert all(p["description"] for p in b["parameters"])
    assert {"inputs", "cfg"} == set(b["stimulus_keys"])


def test_error_table_command(cli):
    code, out, _ = cli("ramp_adc", "errors", "--json")
    assert code == 0
    rows = json.loads(out)["rows"]
    assert {r["function"] for r in rows} == {"sigmoid", "tanh", "gelu", "silu", "softplus", "relu6", "exp"}
    assert all(r["max_abs_error_lsb"] <= 0.5 + 1e-9 and r["code_mismatches"] == 0 for r in rows)


def test_tables_command_finds_the_shipped_tables_current(cli):
    code, out, _ = cli("ramp_adc", "tables")
    assert code == 0 and "equal a fresh build" in out


def _npy(tmp_path, name, arr):
    p = tmp_path / name
    np.save(p, arr)
    return str(p)


@pytest.mark.parametrize(
    "sets,expect",
    [
        (["K_max=16"], "needs K = 32 table entries at B_in=8, N=5, more than K_max = 16"),
        (["code_source=counter", "functions=gelu"], "non-decreasing"),
        (["G=2"], "1 function(s) for G = 2 groups"),
        (["groups=0*8,x"], "groups: 'x'"),
        (["functions=sigmod"], "'sigmod' is not one of sigmoid"),
        (["w_d=6", "functions=relu6"], "does not fit w_d = 6"),
        (["arch=lut_column"], "read-only lookup table: set writable: false"),
    ],
)
def test_unrealisable_configs_are_one_line_errors(cli, tmp_path, sets, expect):
    args = [a for s in sets for a in ("--set", s)]
    code, _, err = cli("generate", "ramp_adc", *args, "-o", str(tmp_path / "out"))
    errors = [ln for ln in err.splitlines() if ln.startswith("neurohdl: error")]
    assert code == 2 and len(errors) == 1 and expect in errors[0], err
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_bad_tables_are_one_line_errors(cli, tmp_path):
    cases = [
        (
            _npy(tmp_path, "nan.npy", np.full(256, np.nan)),
            "integer output codes, got float64 with non-finite",
        ),
        (_npy(tmp_path, "big.npy", np.full(256, 40)), "code 40 at index 0 is outside 0..31"),
        (_npy(tmp_path, "short.npy", np.zeros(10, dtype=int)), "needs 256 integers"),
    ]
    spec = tmp_path / "exp.json"
    spec.write_text(json.dumps({"f": "exp", "in_range": [0, 4], "out_range": [0, 1]}))
    cases.append((str(spec), "lies outside out_range"))
    for path, expect in cases:
        code, _, err = cli("generate", "ramp_adc", "--set", f"functions={path}", "-o", str(tmp_path / "o"))
        assert code == 2 and expect in err, err


def test_a_user_code_table_converts(cli, tmp_path):
    path = _npy(tmp_path, "steps.npy", np.arange(256) // 8)
    code, _, err = cli("generate", "ramp_adc", "--set", f"functions={path}", "-o", str(tmp_path / "o"))
    assert code == 0, err


@pytest.mark.parametrize(
    "cfg,expect",
    [
        ([[0, 0, 5, 0, 1]], "cfg row 0: cfg group 5 does not exist (G = 1)"),
        ([[0, 1, 0, 64, 1]], "cfg row 0: cfg addr 64 does not exist (table slots 0..63)"),
        ([[0, 4, 0, 0, 1]], "cfg kind 4 is not"),
        ([[9, 0, 0, 0, 1]], "'before' 9 must lie in 0..2"),
    ],
)
def test_writes_to_slots_that_do_not_exist_are_refused(cli, tmp_path, cfg, expect):
    stim = tmp_path / "s.npz"
    np.savez(stim, inputs=np.zeros((2, 16), dtype=np.int64), cfg=np.asarray(cfg, dtype=np.int64))
    code, _, err = cli("cosim", "ramp_adc", "--preset", "a", "--stimulus", str(stim))
    assert code == 2 and expect in err, err


def test_stimulus_codes_out_of_range_are_refused(cli, tmp_path):
    stim = tmp_path / "s.npz"
    np.savez(stim, inputs=np.full((2, 16), 200, dtype=np.int64), cfg=np.zeros((0, 5), dtype=np.int64))
    code, _, err = cli("cosim", "ramp_adc", "--preset", "a", "--stimulus", str(stim))
    assert code == 2 and "codes must lie in -128..127" in err


def test_perf_command_measures_the_interval(cli):
    code, out, _ = cli(
        "ramp_adc", "perf", "--preset", "a", "--sim", "icarus", "--conversions", "30", "--json"
    )
    assert code == 0
    (r,) = json.loads(out)
    assert r["interval_min"] == r["interval_max"] == 32 and r["latency"] == 34


def test_every_block_is_registered_after_importing_one_directly():
    """Regression: importing lif's registry entry first made the registry skip loading the others."""
    import subprocess as sp

    code = (
        "import neurohdl.flows.blocks.lif\n"
        "from neurohdl.flows import registry\n"
        "assert {'lif', 'ramp_adc'} <= set(registry.names()), registry.names()\n"
    )
    sp.run([sys.executable, "-c", code], check=True)
