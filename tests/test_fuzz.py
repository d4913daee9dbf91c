"""``neurohdl fuzz``: random legal configurations per block, co-simulated under back-pressure; a
failing run is reported with the ``neurohdl cosim`` command that reproduces it."""

import json
import shlex

import numpy as np
import pytest
from neurohdl.flows import registry
from neurohdl.flows.fuzz import draw


@pytest.mark.parametrize("block", registry.names())
def test_every_draw_is_a_legal_configuration_and_covers_the_choices(block):
    b = registry.get(block)
    seen: dict[str, set] = {}
    for seed in range(60):
        cfg = registry.resolve(block, sets=draw(block, seed))
        b.model(cfg.params)
        for k, v in cfg.params.items():
            seen.setdefault(k, set()).add(v)
    assert draw(block, 7) == draw(block, 7)
    # every choice parameter the draw sets takes each of its values
    for p in b.params:
        if p.choices and p.name in b.random_params(np.random.default_rng(0)):
            assert seen[p.name] == set(p.choices), p.name


def test_a_failing_run_is_reported_with_a_command_that_reproduces_it(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["fuzz", "sfq", "--runs", "2", "--seed", "3", "--jobs", "1", "--vectors", "12", "--out", "fz"]
    code, out, err = cli(*args)
    assert code == 0, out + err
    assert "2 of 2 configurations passed" in out and "run 2/2 seed 4: ok" in err
    doc = json.loads((tmp_path / "fz" / "fuzz.json").read_text())
    assert [r["seed"] for r in doc["results"]] == [3, 4]
    assert all(sum(r["received"].values()) == sum(r["expected"].values()) > 0 for r in doc["results"])

    # a model that disagrees with the RTL on one output bit: both runs fail, each with its command
    block = registry.get("sfq")
    expected = block.expected

    def wrong(build, stim):
        exp = expected(build, stim)
        exp["out"][0, 0] ^= 1
        return exp

    monkeypatch.setattr(block, "expected", wrong)
    code, out, err = cli(*args)
    assert code == 1 and "0 of 2 configurations passed, 2 failed" in out
    doc = json.loads((tmp_path / "fz" / "fuzz.json").read_text())
    assert all("1 mismatches" in r["reason"] for r in doc["results"])
    command = doc["results"][0]["reproduce"]
    assert command in out and " --seed 3 " in command
    argv = shlex.split(command)[1:]
    assert cli(*argv)[0] == 1
    monkeypatch.setattr(block, "expected", expected)
    assert cli(*argv)[0] == 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["fuzz", "sfqq"], "unknown block 'sfqq'"),
        (["fuzz", "sfq", "--runs", "0"], "--runs must be at least 1"),
        (["fuzz", "sfq", "--jobs", "0"], "--jobs must be at least 1"),
        (["fuzz", "sfq", "--seed", "-1"], "--seed must be >= 0"),
    ],
)
def test_bad_arguments_are_one_line_errors(cli, argv, message):
    code, out, err = cli(*argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_a_random_netlist_spec_is_checked():
    with pytest.raises(Exception, match="expected random:SEED"):
        registry.get("sfq").model(registry.resolve("sfq", sets=["netlist=random:x"]).params)
