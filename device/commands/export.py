"""`spinecoach export`: a recording to the interchange CSV, or stored results to CSV/JSON/PNG.

Two forms, told apart by what is named:

- ``spinecoach export RECORDING --csv OUT``: a native recording (or an interchange CSV) to the
  interchange CSV with its JSON sidecar;
- ``spinecoach export --session ID | --set ID | --athlete NAME [--format csv,json,png]``: what
  the session store holds (see :mod:`spinecoach.engine.export`).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from spinecoach.engine import export as store_export
from spinecoach.errors import UsageError
from spinecoach.recording.interchange import UnknownColumnsWarning, write_csv
from spinecoach.recording.load import load_recording


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "export",
        help="export a recording as interchange CSV, or stored sessions/sets/athletes",
        description=(
            "RECORDING --csv OUT converts a native recording (or an interchange CSV) to the "
            "interchange CSV with a JSON sidecar OUT.json. --session/--set/--athlete export "
            "stored results as CSV, JSON or PNG. Files are written atomically: an existing file "
            "is replaced only when the new one is complete."
        ),
    )
    parser.add_argument(
        "recording", type=Path, nargs="?", metavar="RECORDING", help=".screc or .csv file"
    )
    parser.add_argument("--csv", type=Path, metavar="OUT", help="CSV to write (with RECORDING)")
    store_export.add_arguments(parser, required=False)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    store_selected = args.session is not None or args.set_id is not None or args.athlete
    if args.recording is None:
        if not store_selected:
            raise UsageError(
                "name what to export: RECORDING --csv OUT, or --session ID, --set ID or "
                "--athlete NAME (see `spinecoach history` for the ids)"
            )
        return store_export.run(args)
    if store_selected:
        raise UsageError("export either a RECORDING or stored results (--session/--set/--athlete)")
    if args.csv is None:
        raise UsageError(f"say where to write the CSV: spinecoach export {args.recording} --csv OUT")
    return _export_recording(args.recording, args.csv)


def _export_recording(path: Path, csv_out: Path) -> int:
    notes: list[str] = []
    with warnings.catch_warnings():
        # Reported below as one line each, not as a Python warning with a source location.
        warnings.simplefilter("ignore", UnknownColumnsWarning)
        recording = load_recording(path, notes=notes)
    for note in notes:
        print(f"spinecoach: {note}", file=sys.stderr)
    out = write_csv(recording, csv_out)
    counts = ", ".join(
        f"{s.info.name} {len(s.index)} samples at {s.info.rate_hz:g} Hz"
        for s in [*recording.imu.values(), *recording.force.values()]
    )
    print(f"wrote {out} and {out}.json ({counts})")
    return 0
