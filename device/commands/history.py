"""`spinecoach history`: stored sessions, a session's sets, and per-exercise progress.

Without options: the most recent sessions. ``--session ID``: its sets with their figures and a
left/right comparison. ``--exercise ID``: bests, the trend over recent sessions and the
suggestion for the next session, each explained in one sentence. ``--exercises`` lists the
library. ``--replay-set ID`` replays a stored set and checks its figures are reproduced.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from spinecoach.config import load_config
from spinecoach.engine.library import load_library
from spinecoach.engine.progression import History, ProgressionSettings, compare_sides, suggest
from spinecoach.engine.reader import StoreReader
from spinecoach.engine.runner import SetReport, headline
from spinecoach.engine.session import verify_set
from spinecoach.engine.store import db_path
from spinecoach.errors import DataFormatError


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "history", help="stored sessions, bests, trends and the next-session suggestion",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--session", type=int, metavar="ID", help="show one session's sets")
    which.add_argument("--exercise", metavar="ID", help="bests, trend and next-session suggestion")
    which.add_argument("--exercises", action="store_true", help="list the exercise library")
    which.add_argument("--replay-set", type=int, metavar="ID",
                       help="replay a stored set's raw recording through the engine and check "
                       "that every stored figure is reproduced exactly")
    parser.add_argument("--athlete", default=None, help="athlete (default: [device] athlete)")
    parser.add_argument("--limit", type=int, default=20, help="sessions listed (default 20)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--config", type=Path, default=None, help="read this configuration file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_config([args.config] if args.config else None, required=bool(args.config))
    if args.exercises:
        return _exercises(config, args.json)
    if args.replay_set is not None:
        with StoreReader(config.state_dir()) as reader:
            row = reader.set(args.replay_set)
            differ = verify_set(reader, row, config)
        if differ:
            for line in differ:
                print(line)
            raise DataFormatError(f"set {row.id} did not replay to its stored figures "
                                  f"({len(differ)} differ); the exercise file may have changed")
        print(f"set {row.id}: replay reproduces all stored figures exactly")
        return 0
    if not db_path(config.state_dir()).exists() and args.session is None:
        print(f"no sessions stored yet in {config.state_dir()}")
        return 0
    with StoreReader(config.state_dir()) as reader:
        if args.session is not None:
            data = _session(reader, args.session)
        elif args.exercise is not None:
            athlete = args.athlete or config.get("device", "athlete")
            data = _exercise(reader, athlete, args.exercise, ProgressionSettings.from_config(config))
        else:
            data = _sessions(reader, args.athlete, args.limit)
    if args.json:
        print(json.dumps(_finite(data), indent=2))
    else:
        for line in data["lines"]:
            print(line)
    return 0


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items() if k != "lines"}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _exercises(config: Any, as_json: bool) -> int:
    library = load_library(config.exercises_dir())
    if as_json:
        print(json.dumps([{"id": e.id, "name": e.name, "kind": e.kind,
                           "default_protocol": e.default_protocol, "source": e.source}
                          for e in library], indent=2))
        return 0
    for e in library:
        print(f"{e.id:24} {e.kind:8} {e.default_protocol:24} {e.name}")
    return 0


def _sessions(reader: StoreReader, athlete: str | None, limit: int) -> dict[str, Any]:
    sessions = reader.sessions(athlete=athlete, limit=limit)
    rows, lines = [], []
    for s in sessions:
        sets = reader.sets(session_id=s.id)
        what = ", ".join(sorted({f"{x.exercise}/{x.protocol}" for x in sets})) or "no sets"
        rows.append({"id": s.id, "athlete": s.athlete, "started_utc": s.started_utc,
                     "status": s.status, "backend": s.backend, "sets": len(sets), "what": what})
        lines.append(f"{s.id:5}  {s.started_utc}  {s.athlete:12} {s.status:11} "
                     f"{len(sets)} set(s)  {what}")
    if not lines:
        lines = ["no sessions stored yet"]
    return {"sessions": rows, "lines": lines}


def _session(reader: StoreReader, session_id: int) -> dict[str, Any]:
    s = reader.session(session_id)
    lines = [f"session {s.id}: {s.athlete}, {s.started_utc}, {s.status}, {s.backend}, {s.mode}"]
    sets_out = []
    by_side: dict[str, list[dict[str, float]]] = {}
    protocol = ""
    for row in reader.sets(session_id=session_id):
        metrics = reader.metrics(row.id)
        report = SetReport(row.number, row.id, row.exercise, row.protocol, row.side,
                           row.prescription, row.status, row.targets_met, row.start_s,
                           row.end_s if row.end_s is not None else row.start_s, metrics)
        side = f" ({row.side})" if row.side else ""
        lines.append(f"  set {row.number} [{row.id}] {row.exercise}{side} {row.status}: "
                     f"{row.prescription} -> {headline(report)}")
        sets_out.append({"id": row.id, "number": row.number, "exercise": row.exercise,
                         "protocol": row.protocol, "side": row.side, "status": row.status,
                         "targets_met": row.targets_met, "figures": report.figures()})
        if row.side:
            by_side.setdefault(row.side, []).append(report.figures())
        protocol = row.protocol
    comparison = compare_sides(by_side, protocol)
    for c in comparison:
        lines.append(f"  left/right {c.figure}: left {c.left:.1f}, right {c.right:.1f} "
                     f"({c.asymmetry_pct:+.0f} %)")
    latency = reader.session_metrics(session_id)
    if latency.get("cue_latency_count"):
        lines.append(f"  sample-to-buzzer latency: p50 {latency['cue_latency_p50_ms']:.3f} ms, "
                     f"p99 {latency['cue_latency_p99_ms']:.3f} ms over "
                     f"{latency['cue_latency_count']:.0f} cues")
    return {"session": {"id": s.id, "athlete": s.athlete, "status": s.status},
            "sets": sets_out, "session_metrics": latency,
            "left_right": [{"figure": c.figure, "left": c.left, "right": c.right,
                            "asymmetry_pct": c.asymmetry_pct} for c in comparison],
            "lines": lines}


def _exercise(reader: StoreReader, athlete: str, exercise: str,
              settings: ProgressionSettings) -> dict[str, Any]:
    history = History(reader, athlete, exercise)
    if not history.sets:
        return {"exercise": exercise, "athlete": athlete, "bests": [],
                "lines": [f"no finished sets of {exercise} for {athlete} yet"]}
    lines = [
        f"{exercise} for {athlete}: {len(history.sets)} sets in {len(history.sessions())} sessions"
    ]
    bests = history.bests()
    for b in bests:
        lines.append(f"  best {b.figure}: {b.value:.2f} {b.unit} (set {b.set_id}, {b.date_utc})")
    protocol = history.sets[-1].protocol
    trend = history.trend(protocol, settings.trend_sessions)
    if trend is not None:
        lines.append(f"  trend {trend.describe()}")
    suggestion = suggest(history, settings)
    if suggestion is not None:
        lines.append(f"  next session ({suggestion.action}): {suggestion.sentence}")
    return {
        "exercise": exercise, "athlete": athlete,
        "bests": [{"figure": b.figure, "value": b.value, "unit": b.unit, "set_id": b.set_id}
                  for b in bests],
        "trend": None if trend is None else {"figure": trend.figure, "values": list(trend.values),
                                             "slope_per_session": trend.slope_per_session},
        "suggestion": None if suggestion is None else {
            "action": suggestion.action, "params": dict(suggestion.params),
            "sentence": suggestion.sentence},
        "lines": lines,
    }
