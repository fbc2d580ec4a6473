"""`spinecoach session`: run a coached session end to end and store it.

``spinecoach session --backend sim:SCENARIO|replay:FILE|hardware --exercise NAME --protocol NAME
[--headless]``. A simulated scenario implies its exercise and protocol. Headless, cues and
summaries are printed as text lines (one per cue: sample time, buzzer pattern, message).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spinecoach.backend import Backend
from spinecoach.calibration_steps import stored_calibration
from spinecoach.config import load_config
from spinecoach.engine.protocols import PROTOCOL_IDS
from spinecoach.engine.session import (
    SIDE_CHOICES,
    SWITCH_INTERVAL_S,
    SessionRequest,
    open_store,
    resolve_plan,
    run_session,
    summarise,
)
from spinecoach.engine.sources import make_haptics, open_blocks


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "session", help="run a coached session (cues, results, storage)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument("--backend", default=None,
                        help="hardware, sim:SCENARIO or replay:FILE (default: [device] backend)")
    parser.add_argument("--exercise", default=None, help="exercise id from the library")
    parser.add_argument("--protocol", default=None, choices=PROTOCOL_IDS,
                        help="protocol (default: the scenario's or the exercise's)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="protocol parameter, e.g. reps=6, tempo=4-1-1-0, target_s=5")
    parser.add_argument("--sets", type=int, default=1, help="number of sets (default 1)")
    parser.add_argument("--rest", type=float, default=60.0, metavar="S",
                        help="rest between sets in seconds (default 60)")
    parser.add_argument("--side", choices=SIDE_CHOICES, default=None,
                        help="tag sets left/right, or alternate them")
    parser.add_argument("--athlete", default=None, help="athlete name (default: [device] athlete)")
    parser.add_argument("--mode", choices=("training", "tracking"), default=None,
                        help="training: live cues; tracking: measure only")
    parser.add_argument("--realtime", action="store_true",
                        help="pace a simulated rig or a replay to the wall clock "
                        "(default: as fast as possible)")
    parser.add_argument("--headless", action="store_true",
                        help="print cues and summaries as text lines instead of the coach screen")
    parser.add_argument("--config", type=Path, default=None, help="read this configuration file")
    parser.set_defaults(func=run)


def _say(line: str) -> None:
    print(line, flush=True)


def run(args: argparse.Namespace) -> int:
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    config = load_config([args.config] if args.config else None, required=bool(args.config))
    backend = Backend.parse(args.backend or config.get("device", "backend"))
    request = SessionRequest(
        exercise=args.exercise, protocol=args.protocol, params=tuple(args.param), sets=args.sets,
        set_rest_s=args.rest, side=args.side, athlete=args.athlete, mode=args.mode,
    )
    plan = resolve_plan(request, backend, config)
    athlete = args.athlete or config.get("device", "athlete")
    mode = args.mode or config.get("coaching", "mode")
    if not args.headless:
        print("spinecoach: the on-screen coach runs in `spinecoach tui`; printing cues as text",
              file=sys.stderr)
    # The sensors' stored calibration, as the daemon has it (a recording carries its own).
    calibration = (None if backend.kind == "replay"
                   else stored_calibration(config.state_dir(), backend.kind))
    store = open_store(config, on_problem=lambda message: _say(f"store: {message}"))
    haptics = None
    try:
        haptics = make_haptics(backend, config)
        with open_blocks(backend, realtime=args.realtime, calibration=calibration) as (
                streams, blocks):
            report = run_session(
                plan, streams, blocks, config, store=store, haptics=haptics, athlete=athlete,
                backend=str(backend), mode=mode, say=_say,
            )
    finally:
        if haptics is not None:
            haptics.close()
        if not store.close(timeout_s=3.0):
            _say(f"store: some results could not be written to {store.path} "
                 f"({store.status.problem})")
    if report.session_id is not None:
        _say(f"stored session {report.session_id} in {store.path}")
    summarise(report, plan, config, athlete, _say)
    return 0
