"""`spinecoach replay FILE`: the coach on a recording, real time or faster."""

from __future__ import annotations

import argparse

from spinecoach.commands._coach_options import add_console_option
from spinecoach.errors import UsageError

SPEED_CHOICES = ("0.5", "1", "2", "4", "8")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "replay",
        help="the coach on a recording (pause: Space, seek: ←/→, speed: +/−)",
        description=(
            "Replay a recording (.screc or interchange CSV) through the measurement pipeline "
            "and show it in the coach. Keys: Space pause, ←/→ seek 5 s, +/− speed 0.5×–8×, "
            "? help, q quit."
        ),
    )
    parser.add_argument("file", help="recording to replay (.screc or .csv)")
    parser.add_argument(
        "--speed", choices=SPEED_CHOICES, default="1", help="replay speed (default 1 = real time)"
    )
    parser.add_argument("--paused", action="store_true", help="start paused (Space plays)")
    add_console_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here so `spinecoach --help` does not load Textual.
    from spinecoach.tui.launch import replay_feed, run_coach

    if not args.file:
        raise UsageError("give the recording to replay: spinecoach replay FILE")
    feed = replay_feed(args.file, speed=float(args.speed), paused=args.paused)
    return run_coach(feed, console=args.console)
