"""The place-and-route options shared by the commands that run nextpnr: seeds and a routing time limit."""

from __future__ import annotations

import argparse

from .errors import ConfigError


def add_pnr_arguments(p: argparse.ArgumentParser) -> None:
    """``--seed``, ``--seeds`` and ``--route-timeout`` of a command that places and routes."""
    p.add_argument("--seed", type=int, help="nextpnr seed")
    p.add_argument("--seeds", help="several nextpnr seeds, '1-5' or '1,3,7': Fmax median and max")
    p.add_argument(
        "--route-timeout",
        type=float,
        metavar="MIN",
        help="give up a seed's place and route after MIN minutes",
    )


def seeds_of(args: argparse.Namespace, default: int = 1) -> list[int]:
    """The seeds that :func:`add_pnr_arguments`' options ask for."""
    if args.seeds and args.seed is not None:
        raise ConfigError("give --seed or --seeds, not both")
    if args.seeds:
        return parse_seeds(args.seeds)
    return [default if args.seed is None else args.seed]


def parse_seeds(text: str) -> list[int]:
    """``--seeds``: a range ``1-5`` or a list ``1,3,7``."""
    try:
        if "-" in text:
            lo, hi = (int(x) for x in text.split("-", 1))
            seeds = list(range(lo, hi + 1))
        else:
            seeds = [int(x) for x in text.split(",")]
    except ValueError:
        raise ConfigError(f"--seeds {text!r}: expected a range like 1-5 or a list like 1,3,7") from None
    if not seeds or min(seeds) < 0:
        raise ConfigError(f"--seeds {text!r}: expected non-negative seeds")
    return seeds
