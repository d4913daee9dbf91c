"""The fusemax block on the command line: listing, deterministic generation, clear errors for bad
parameters and bad Q/K/V, and the error and cycle tables."""

import json

import numpy as np
import pytest


def test_list_has_fusemax_presets(cli):
    code, out, _ = cli("list", "--json")
    b = {b["name"]: b for b in json.loads(out)["blocks"]}["fusemax"]
    assert code == 0 and {"default", "tiny", "serial", "util", "demo"} <= set(b["presets"])
    assert {"jobs", "Q", "K", "V"} == set(b["stimulus_keys"])


@pytest.mark.parametrize(
    "sets, message",
    [
        (["R=65"], "above the maximum 64"),
        (["M=5000"], "M = 5000 exceeds M_MAX = 64"),
        (["exp2=ipoly3", "PW=17"], "exp2 'ipoly3' is defined for FB = 8, PW = 16 only"),
        (["exp2=cubic"], "is not one of lut, ipoly3, ipoly2"),
        (["interleav=false"], "did you mean 'interleave'"),
        (["divider=serial"], "is not one of column, shared"),
    ],
)
def test_parameters_that_cannot_work_are_refused(cli, tmp_path, sets, message):
    argv = ["generate", "fusemax", "--preset", "tiny", "-o", str(tmp_path / "o")]
    for s in sets:
        argv += ["--set", s]
    code, _, err = cli(*argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def _stim(tmp_path, **over):
    rng = np.random.default_rng(0)
    stim = {
        "jobs": np.array([[3, 2, 1000, 10]]),
        "Q": rng.integers(-128, 128, (2, 7)),
        "K": rng.integers(-128, 128, (3, 7)),
        "V": rng.integers(-128, 128, (3, 3)),
    }
    stim.update(over)
    path = tmp_path / "stim.npz"
    np.savez(path, **stim)
    return str(path)


@pytest.mark.parametrize(
    "over, message",
    [
        ({"Q": np.zeros((2, 7))}, "'Q' must be an integer array, got dtype float64"),
        ({"Q": np.zeros((2, 6), np.int64)}, "Q has 6 columns, the array is built for 7"),
        ({"V": np.full((3, 3), 128)}, "V holds 128..128, outside int8 -128..127"),
        ({"K": np.zeros((4, 7), np.int64)}, "Q/K/V have 2/4/3 rows, the jobs need 2/3/3"),
        ({"jobs": np.array([[3, 2, 70000, 10]])}, "job 0: Cs = 70000 must lie in 0..65535"),
        ({"jobs": np.array([[65, 2, 1, 1]])}, "M = 65, P = 2 must lie in 0..64, 0..64"),
    ],
)
def test_bad_stimulus_files_are_refused(cli, tmp_path, over, message):
    code, _, err = cli("cosim", "fusemax", "--preset", "tiny", "--stimulus", _stim(tmp_path, **over))
    assert code == 2 and message in err


def test_errors_and_cycle_tables(cli):
    code, out, _ = cli("fusemax", "errors", "--max-m", "1024", "--json")
    rows = json.loads(out)
    assert code == 0 and all(r["ok"] for r in rows)
    assert [round(r["max_lsb"], 3) for r in rows if r["M"] == 256 and "max_lsb" in r] == [0.069, 0.069]
    code, out, _ = cli("fusemax", "perf", "--no-rtl", "--json")
    f = json.loads(out)["formula"]
    at = {(r["R"], r["E"], r["M"]): r for r in f}
    assert code == 0 and at[(4, 64, 1024)]["u_interleaved"] > at[(4, 64, 1024)]["u_fusemax"]
    assert at[(8, 128, 1048576)]["u_interleaved"] > 0.98


def test_fpga_table_and_its_bad_target(cli):
    from neurohdl.flows.fusemax_tools import fpga_table

    code, _, err = cli("fusemax", "fpga", "--targets", "ecp5-45k")
    assert code == 2 and "no fusemax goal for target 'ecp5-45k'" in err
    code, _, err = cli("fusemax", "fpga", "--jobs", "0")
    assert code == 2 and "--jobs 0: give 1 or more" in err
    base = {"target": "ecp5-25k", "design": "naive MAC array", "R": 4, "C": 4, "u": 1.0, "fmax_mhz": 100.0}
    slow = {**base, "design": "fusemax (ecp5_25k)", "u": 0.97, "fmax_mhz": 50.0, "lut4": 14087}
    big = {**base, "design": "fusemax (ecp5_25k)", "u": 0.97, "error": "fusemax does not fit ecp5-25k"}
    md = fpga_table([slow, base, big])
    assert "| 14,087 |" in md and "no: fits; Fmax 0.50x the baseline's" in md
    assert "no: fusemax does not fit ecp5-25k" in md and "1,230 LUT4, 470 FF, 15 MULT18X18D, 102 MHz" in md
    # regression: a baseline that failed showed only dashes
    failed = {**base, "fmax_mhz": None, "error": "mac_array_4x4 does not fit ecp5-25k"}
    assert "| mac_array_4x4 does not fit ecp5-25k |" in fpga_table([slow, failed])


def test_fpga_seeds_give_the_median_and_each_seed(cli):
    from neurohdl.flows.fusemax_tools import fpga_table

    code, _, err = cli("fusemax", "fpga", "--seed", "2", "--seeds", "1-3")
    assert code == 2 and "give --seed or --seeds, not both" in err
    code, _, err = cli("fusemax", "fpga", "--seeds", "3-x")
    assert code == 2 and "--seeds '3-x'" in err
    base = {"target": "ecp5-25k", "design": "naive MAC array", "R": 4, "C": 4, "u": 1.0, "fmax_mhz": 80.0,
            "fmax_per_seed": {1: 85.5, 2: 80.0, 3: 79.0}}  # fmt: skip
    fmx = {**base, "design": "fusemax (ecp5_25k)", "fmax_mhz": 88.0,
           "fmax_per_seed": {1: 88.0, 2: None, 3: 90.0}}  # fmt: skip
    md = fpga_table([fmx, base])
    assert "| 80.00 (85.50 / 80.00 / 79.00) |" in md and "| 88.00 (88.00 / - / 90.00) |" in md
    assert "yes: fits; Fmax 1.10x the baseline's" in md


def test_fpga_results_keep_the_other_targets_latest(cli, monkeypatch, tmp_path):
    """One run per target and size (they take an hour each) must not erase the others' results."""
    from neurohdl.flows import fusemax_tools

    def point(target, sets, pnr, progress):
        R = int(sets[0].split("=")[1]) if sets else 4
        base = {"target": target, "design": "naive MAC array", "R": R, "C": 4, "u": 1.0, "fmax_mhz": 70.0,
                "router": pnr.router, "clock_pin": "P6" if pnr.router == "router2" else None}  # fmt: skip
        return [{**base, "design": "fusemax", "fmax_mhz": 77.0, "seeds": list(pnr.seeds)}, base]

    monkeypatch.setattr(fusemax_tools, "fpga_point", point)
    monkeypatch.setattr(fusemax_tools, "OUT", tmp_path)
    assert cli("fusemax", "fpga", "--targets", "ecp5-25k", "--router", "router2")[0] == 0
    code, out, _ = cli("fusemax", "fpga", "--targets", "ecp5-85k", "--seed", "4")
    assert code == 0 and "nextpnr router1, seed 4;" in out and "router2" not in out
    assert cli("fusemax", "fpga", "--targets", "ecp5-85k", "--seed", "5")[0] == 0
    rows = json.loads((tmp_path / "fpga.json").read_text())
    assert [(r["target"], r["design"]) for r in rows] == [
        ("ecp5-25k", "fusemax"), ("ecp5-25k", "naive MAC array"),
        ("ecp5-85k", "fusemax"), ("ecp5-85k", "naive MAC array"),
    ]  # fmt: skip
    assert rows[0]["router"] == "router2" and rows[2]["seeds"] == [5]
    assert "77.00, router2 |" in (tmp_path / "fpga.md").read_text()
    # another array size on a target is a row pair of its own
    assert cli("fusemax", "fpga", "--targets", "ecp5-85k", "--set", "R=2", "--seed", "6")[0] == 0
    rows = json.loads((tmp_path / "fpga.json").read_text())
    assert [(r["target"], r["R"]) for r in rows][2:] == [("ecp5-85k", 4)] * 2 + [("ecp5-85k", 2)] * 2
