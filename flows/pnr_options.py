"""The place-and-route options shared by the commands that run nextpnr: seeds, router and a routing
time limit."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from .errors import ConfigError

ROUTERS = ("router1", "router2")


@dataclass(frozen=True)
class PnrOptions:
    """How nextpnr runs: once per seed in ``seeds``; ``router``: nextpnr's ``--router``;
    ``route_timeout_min``: a seed's place and route is given up after that many minutes."""

    seeds: tuple[int, ...] = (1,)
    router: str = "router1"
    route_timeout_min: float | None = None

    def __post_init__(self) -> None:
        if self.router not in ROUTERS:
            raise ConfigError(f"--router {self.router!r}: use one of {', '.join(ROUTERS)}")
        if self.route_timeout_min is not None and self.route_timeout_min <= 0:
            raise ConfigError(f"--route-timeout {self.route_timeout_min:g}: give minutes > 0")


DEFAULT_PNR = PnrOptions()


def add_pnr_arguments(p: argparse.ArgumentParser) -> None:
    """``--seed``, ``--seeds``, ``--router`` and ``--route-timeout`` of a command that places and
    routes."""
    p.add_argument("--seed", type=int, help="nextpnr seed")
    p.add_argument("--seeds", help="several nextpnr seeds, '1-5' or '1,3,7': Fmax median and max")
    p.add_argument(
        "--router",
        choices=ROUTERS,
        default=DEFAULT_PNR.router,
        help="nextpnr's router; router2 also puts the ECP5 clock on a dedicated clock pin, which it "
        "needs (default: router1)",
    )
    p.add_argument(
        "--route-timeout",
        type=float,
        metavar="MIN",
        help="give up a seed's place and route after MIN minutes",
    )


def pnr_of(args: argparse.Namespace, default_seed: int = 1) -> PnrOptions:
    """The :class:`PnrOptions` that :func:`add_pnr_arguments`' options ask for."""
    if args.seeds and args.seed is not None:
        raise ConfigError("give --seed or --seeds, not both")
    if args.seeds:
        seeds = parse_seeds(args.seeds)
    else:
        seeds = [default_seed if args.seed is None else args.seed]
    return PnrOptions(tuple(seeds), args.router, args.route_timeout)


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
