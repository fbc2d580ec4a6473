"""`spinecoach scenarios`: list the simulated-rig scenarios, or write one's ground truth.

spinecoach scenarios                       # one "name  description" per line
spinecoach scenarios --truth NAME [--seed N] [--out FILE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spinecoach.drivers.sim.scenarios import DEFAULT_SEED, DESCRIPTIONS, build_scenario
from spinecoach.errors import StorageError


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "scenarios",
        help="list the simulated-rig scenarios (for --backend sim:SCENARIO)",
        description="List the simulated-rig scenarios, one 'name  description' per line, or "
        "write the ground truth of one scenario as JSON.",
    )
    parser.add_argument("--truth", metavar="NAME", help="write the ground truth of scenario NAME")
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"scenario seed (default {DEFAULT_SEED})"
    )
    parser.add_argument(
        "--out", metavar="FILE", type=Path, help="write the truth JSON to FILE instead of stdout"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.truth is None:
        width = max(len(name) for name in DESCRIPTIONS)
        for name, description in DESCRIPTIONS.items():
            print(f"{name.ljust(width)}  {description}")
        return 0
    text = build_scenario(args.truth, seed=args.seed).truth.to_json()
    if args.out is None:
        sys.stdout.write(text)
        return 0
    try:
        args.out.write_text(text, encoding="utf-8")
    except OSError as error:
        raise StorageError(
            f"cannot write {args.out}: {error.strerror}; choose a writable path"
        ) from error
    return 0
