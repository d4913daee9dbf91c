"""``neurohdl sweep``: a grid in parallel on a process pool or a Dask cluster, reused points,
failed points reported with their reason while the rest finish."""

import json

import pytest
from neurohdl.flows.sweep import pareto_front, run_sweep


def _table(out):
    return (out / "sweep.md").read_text()


def test_pool_and_dask_give_the_same_table_and_reruns_reuse_points(tmp_path, cli):
    args = ["sweep", "lif", "--preset", "tiny", "--param", "P=1,2", "--param", "Q=1,2", "--jobs", "2"]
    code, out, err = cli(*args, "--out", str(tmp_path / "pool"))
    assert code == 1, err  # Q=2 with P=1 is not a legal build
    assert "params: Q=2 must be a power of 2 no larger than P" in _table(tmp_path / "pool")
    assert "3 points ok, 1 failed" in out and (tmp_path / "pool" / "pareto.png").is_file()
    code, out, err = cli(*args, "--out", str(tmp_path / "pool"))
    assert "3 reused, 1 to run" in err
    assert "point 1/1 P=1 Q=2: FAILED at config" in err

    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        code, out, err = cli(*args, "--dask", cluster.scheduler_address, "--out", str(tmp_path / "dask"))
    assert code == 1, err
    assert _table(tmp_path / "dask") == _table(tmp_path / "pool")
    doc = json.loads((tmp_path / "dask" / "sweep.json").read_text())
    assert [p["cycles"] for p in doc["points"] if p["status"] == "ok"] == sorted(
        (p["cycles"] for p in doc["points"] if p["status"] == "ok"), reverse=True
    ), "more lanes, fewer cycles"


def test_a_point_too_large_for_the_device_fails_and_the_rest_finish(tmp_path):
    """16 CUBA lanes (64 multipliers, thousands of LUTs) do not fit the UP5K; 4 lanes do."""
    r = run_sweep(
        "lif", [{"P": "4", "Q": "2"}, {"P": "16", "Q": "16"}], preset="tiny", target="ice40-up5k",
        sim=None, vectors=1, jobs=2, dask=None, out=tmp_path,
    )  # fmt: skip
    ok, big = r["doc"]["points"]
    assert ok["status"] == "ok" and ok["lut4"] > 0 and ok["fmax_mhz"] > 0
    assert big["status"] == "failed" and big["stage"] == "synth"
    assert "does not fit ice40-up5k: it needs" in big["reason"] and "the device has" in big["reason"]
    assert big["lut4"] > 5280 and big["ff"] > 0  # what it needs is in the table too
    assert "does not fit ice40-up5k" in _table(tmp_path) and r["plot"]


def test_pareto_front():
    rows = [
        {"status": "ok", "lut4": 100, "fmax_mhz": 50, "cycles": 10},
        {"status": "ok", "lut4": 200, "fmax_mhz": 40, "cycles": 20},  # beaten by the first on every axis
        {"status": "ok", "lut4": 300, "fmax_mhz": 90, "cycles": 10},
        {"status": "failed"},
    ]
    assert pareto_front(rows) == [0, 2]


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--param", "X=1,2"], "lif has no such parameter"),
        (["--param", "P"], "expected NAME=V1,V2"),
        ([], "give at least one --param"),
        (["--point", "P=2,Q"], "expected NAME=V,NAME=V"),
        (["--point", "P=2,Z=1"], "--point Z: lif has no such parameter"),
        (["--param", "P=1", "--param", "P=2"], "is given twice"),
        (["--param", "P=1", "--sim", "none"], "nothing to measure"),
    ],
)
def test_bad_sweeps_are_one_line_errors(argv, message, cli, tmp_path):
    code, out, err = cli("sweep", "lif", *argv, "--out", str(tmp_path))
    assert code == 2 and message in err and "Traceback" not in err
