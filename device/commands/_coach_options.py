"""Options every command that opens the Textual coach shares (not a command itself: the CLI
skips modules whose name starts with an underscore)."""

from __future__ import annotations

import argparse


def add_console_option(parser: argparse.ArgumentParser) -> None:
    """``--console``: the look for the 16-colour Linux console."""
    parser.add_argument(
        "--console",
        action="store_true",
        help="Linux-console look: 16 ANSI colours, no braille (automatic when TERM=linux)",
    )
