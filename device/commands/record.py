"""`spinecoach record`: record a session from the sensors or a simulated rig (native format)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType

from spinecoach.acquisition.source import SamplerSource, describe_streams, open_source
from spinecoach.backend import Backend
from spinecoach.calibration_steps import put_in_force, stored_calibration
from spinecoach.config import load_config
from spinecoach.errors import UsageError
from spinecoach.recording.native import RecordingWriter


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "record",
        help="record a session to a native .screc file",
        description=(
            "Record every sample (raw codes, SI values, gaps) from the sensors or a simulated "
            "rig into a crash-safe native recording. Ctrl-C stops and finalises the file. The "
            "calibration stored for the backend's sensors (load-cell tare and scale, IMU "
            "mounting and accelerometer) is in force and in the recording's stream table."
        ),
    )
    parser.add_argument("out", type=Path, metavar="OUT", help="output file (.screc)")
    parser.add_argument(
        "--backend", required=True, help="hardware or sim:SCENARIO (see `spinecoach scenarios`)"
    )
    parser.add_argument(
        "--seconds", type=float, default=None,
        help="how long to record (default: the scenario's length; hardware: until Ctrl-C)",
    )
    parser.add_argument(
        "--faults", default="", help="fault spec for a simulated bus, e.g. '121:0.01,outage@20:2'"
    )
    parser.add_argument("--seed", type=int, default=None, help="scenario seed (simulated rig)")
    parser.add_argument(
        "--realtime", action="store_true",
        help="pace a simulated rig to the wall clock (default: as fast as possible)",
    )
    parser.add_argument(
        "--progress", action="store_true",
        help="print the sample time reached after every block (for monitoring)",
    )
    parser.set_defaults(func=run)


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    backend = Backend.parse(args.backend)
    if backend.kind == "replay":
        raise UsageError("record reads sensors or a simulated rig; to convert a recording use "
                         "`spinecoach export`")
    if args.seconds is not None and args.seconds <= 0:
        raise UsageError(f"--seconds must be positive, got {args.seconds:g}")
    calibration = stored_calibration(load_config().state_dir(), backend.kind)
    source = open_source(backend, realtime=args.realtime, faults=args.faults, seed=args.seed)
    assert isinstance(source, SamplerSource)
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        for note in source.notes:
            print(f"spinecoach: {note}", file=sys.stderr)
        source.start()
        streams = put_in_force(calibration, source)
        duration = args.seconds if args.seconds is not None else source.duration_s
        writer = RecordingWriter(args.out, streams, source.meta)
        print(f"recording {source.description} ({describe_streams(source.streams)}) to "
              f"{args.out}" + (f" for {duration:g} s" if duration else "; Ctrl-C stops"),
              flush=True)
        interrupted = False
        try:
            for block in source.blocks(duration):
                writer.write(block)
                if args.progress and len(block):
                    print(f"t={float(block.t_s[-1]):.4f}", flush=True)
        except KeyboardInterrupt:
            interrupted = True
            for block in source.sampler.finish():
                writer.write(block)
        accounts = source.sampler.accounts()
        writer.close(meta={"interrupted": interrupted})
    finally:
        signal.signal(signal.SIGTERM, previous)
        source.close()
    summary = "; ".join(
        f"{name}: {a.delivered} samples, {a.gap_samples} in {a.gap_records} gaps"
        for name, a in accounts.items()
    )
    how = "stopped by the user" if interrupted else "done"
    print(f"{how}: {args.out} ({summary})")
    return 0
