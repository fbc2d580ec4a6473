"""`spinecoach coach` (and `spinecoach` with no arguments): the standalone coach.

On the real sensors when an I2C bus is there and the chips answer; otherwise on the bundled demo
recording, with a banner saying so.
"""

from __future__ import annotations

import argparse

from spinecoach.backend import Backend
from spinecoach.commands._coach_options import add_console_option


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "coach",
        help="the coach on the sensors, or on the demo recording when none answer (default)",
        description=(
            "The standalone coach: on the real sensors when present, otherwise on the bundled "
            "demo recording. Press ? in the coach for the keys."
        ),
    )
    parser.add_argument(
        "--demo", action="store_true", help="use the demo recording even when sensors answer"
    )
    parser.add_argument(
        "--backend",
        type=Backend.parse,
        default=None,
        metavar="BACKEND",
        help="hardware (the default, with the demo as fallback), sim:SCENARIO or replay:FILE",
    )
    add_console_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here so `spinecoach --help` does not load Textual.
    from spinecoach.tui.launch import default_catalogue, run_coach, standalone_feed

    feed = standalone_feed(force_demo=args.demo, backend=args.backend)
    # A simulated rig keeps its own calibration (and band profiles) apart from the sensors'.
    simulated = args.backend is not None and args.backend.kind == "sim"
    catalogue = default_catalogue(backend_kind="sim") if simulated else None
    return run_coach(feed, console=args.console, catalogue=catalogue)
