"""`spinecoach export`: convert a recording (native or CSV) to the interchange CSV."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from spinecoach.recording.interchange import UnknownColumnsWarning, write_csv
from spinecoach.recording.load import load_recording


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "export",
        help="export a recording as interchange CSV (x-io Fusion columns)",
        description=(
            "Convert a native recording (or an interchange CSV) to the interchange CSV with a "
            "JSON sidecar OUT.json. Written atomically: an existing OUT is replaced only when the "
            "new file is complete."
        ),
    )
    parser.add_argument("recording", type=Path, metavar="RECORDING", help=".screc or .csv file")
    parser.add_argument("--csv", type=Path, required=True, metavar="OUT", help="CSV to write")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    notes: list[str] = []
    with warnings.catch_warnings():
        # Reported below as one line each, not as a Python warning with a source location.
        warnings.simplefilter("ignore", UnknownColumnsWarning)
        recording = load_recording(args.recording, notes=notes)
    for note in notes:
        print(f"spinecoach: {note}", file=sys.stderr)
    out = write_csv(recording, args.csv)
    counts = ", ".join(
        f"{s.info.name} {len(s.index)} samples at {s.info.rate_hz:g} Hz"
        for s in [*recording.imu.values(), *recording.force.values()]
    )
    print(f"wrote {out} and {out}.json ({counts})")
    return 0
