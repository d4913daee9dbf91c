"""Shared fixtures: a build root per test session, so cosim builds are reused across tests."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def build_root() -> Path:
    root = ROOT / "build" / "test"
    root.mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture
def cli(capsys):
    """The CLI in-process: ``cli(*argv)`` returns (exit code, stdout, stderr)."""
    from neurohdl.flows.cli import main

    def run(*argv) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run
