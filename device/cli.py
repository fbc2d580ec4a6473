"""The `spinecoach` command line.

Each sub-command lives in its own module under ``spinecoach.commands`` and exposes
``register(subparsers) -> None``; the parser it adds sets ``func=callable(args) -> int``.
Modules are discovered, so adding a command never edits this file.

Errors derived from :class:`~spinecoach.errors.SpinecoachError` become one line on stderr and
the error's exit status: a user's mistake never shows a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from spinecoach import __version__, commands
from spinecoach.errors import SpinecoachError

#: Command run when `spinecoach` is called with no arguments (the standalone coach).
DEFAULT_COMMAND = "coach"


def build_parser() -> argparse.ArgumentParser:
    """Parser with every discovered sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="spinecoach",
        description="Gym-floor coach for posterior-chain strength work on a band/chain rig.",
    )
    parser.add_argument("--version", action="version", version=f"spinecoach {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{module_info.name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not args_list:
        known = set(parser._subparsers._group_actions[0].choices or ())  # type: ignore[union-attr]
        # Without the coach installed yet, the text readout is the standalone experience.
        args_list = [DEFAULT_COMMAND if DEFAULT_COMMAND in known else "readout"]
    args = parser.parse_args(args_list)
    try:
        return int(args.func(args) or 0)
    except SpinecoachError as error:
        print(f"spinecoach: {error}", file=sys.stderr)
        return error.exit_status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped into `head` and closed: not an error of ours.
        return 0
