"""`spinecoach analyze FILE [--exercise NAME] [--json] [--orientation-csv OUT]`.

Runs the whole measurement pipeline over a recording (native or interchange CSV) as fast as it
can and prints a readable summary, or with ``--json`` one JSON object (schema in the README).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from spinecoach.analysis import EXERCISES, analyze_file, summary_text
from spinecoach.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "analyze",
        help="measure reps, holds and force contractions in a recording",
        description=(
            "Run the measurement pipeline over a recording (.screc or interchange CSV). "
            "Without --exercise the primary angle is the rotation about the axis of largest "
            "angular excursion, so any repetitive movement gets its reps counted."
        ),
    )
    parser.add_argument("file", type=Path, help="recording (.screc) or interchange CSV")
    parser.add_argument(
        "--exercise",
        metavar="NAME",
        help=f"exercise settings to use: {', '.join(sorted(EXERCISES))}",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--orientation-csv",
        metavar="OUT",
        type=Path,
        help="write the primary IMU's orientation (quaternion, inclination) per sample to OUT",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path: Path = args.file
    if not path.is_file():
        raise UsageError(f"{path}: no such recording; give the path of a .screc or .csv file")
    doc = analyze_file(path, args.exercise, args.orientation_csv)
    if args.json:
        json.dump(doc, sys.stdout, allow_nan=False)
        sys.stdout.write("\n")
    else:
        print(summary_text(doc))
    return 0
