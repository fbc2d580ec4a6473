"""`spinecoach tui`: the coach attached to a running daemon, on this screen or over SSH."""

from __future__ import annotations

import argparse
from pathlib import Path

from spinecoach.commands._coach_options import add_console_option


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "tui",
        help="the coach attached to the running daemon (locally or in an SSH session)",
        description=(
            "Attach the coach to the daemon's socket. Several coaches may attach at once; if "
            "the daemon restarts the coach shows RECONNECTING and carries on when it is back. "
            "Press ? in the coach for the keys."
        ),
    )
    parser.add_argument(
        "--socket",
        type=Path,
        default=None,
        metavar="PATH",
        help="the daemon's socket (default: $SPINECOACH_SOCKET, else this user's daemon in "
        "$XDG_RUNTIME_DIR/spinecoach, else the system daemon's /run/spinecoach/hub.sock)",
    )
    add_console_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here so `spinecoach --help` does not load Textual.
    from spinecoach.hub.client import SocketFeed
    from spinecoach.tui.launch import run_coach

    return run_coach(SocketFeed(args.socket), console=args.console)
