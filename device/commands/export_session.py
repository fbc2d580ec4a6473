"""`spinecoach export-session`: stored sessions, sets or an athlete's history to CSV/JSON/PNG."""

from __future__ import annotations

import argparse

from spinecoach.engine import export


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "export-session", help="export stored sessions, sets or an athlete to CSV, JSON, PNG",
        description=export.__doc__.split("\n\n")[0] if export.__doc__ else None,
    )
    export.add_arguments(parser)
    parser.set_defaults(func=export.run)
