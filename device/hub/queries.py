"""What a coach lists besides the live session, read from a session store: recent sessions and
progress, as rows the coach draws and as the hub's ``reply`` data.

Two readers share this: the coach on the daemon's own machine and user
(:class:`~spinecoach.tui.store_catalogue.StoreCatalogue`, in-process) and the daemon answering a
coach's ``request`` over its socket (:class:`StoreQueries`), so a coach over SSH, running as
another user, lists the daemon's sessions rather than its own user's empty store.

:class:`StoreQueries` runs on the hub's query thread, never the engine's: each answer opens its
own **read-only** SQLite connection (the store is in WAL mode, so it never waits for the
daemon's writer nor holds it up) and is bounded (:data:`~spinecoach.hub.messages.MAX_QUERY_ROWS`
rows). No Textual here.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from spinecoach.band_profile import BandProfile
from spinecoach.engine.library import Library
from spinecoach.engine.progression import TREND_FIGURE, History, ProgressionSettings, suggest
from spinecoach.engine.protocols import PROTOCOL_IDS
from spinecoach.engine.reader import StoreReader
from spinecoach.engine.store import connect, db_path
from spinecoach.errors import SpinecoachError, StorageError
from spinecoach.hub.messages import MAX_QUERY_ROWS, Reply, Request

#: Headline figure of a session row, per protocol (the first one a set has).
HEADLINE_FIGURES: dict[str, tuple[tuple[str, str, int], ...]] = {
    "tempo_set": (("rep_peak_force_n", "N", 0), ("mean_eccentric_s", "s ecc", 1)),
    "isometric_holds": (("longest_hold_s", "s hold", 1),),
    "holds_with_transitions": (("longest_hold_s", "s hold", 1),),
    "max_pulls": (("best_peak_force_n", "N", 0),),
    "repeaters": (("mean_force_n", "N", 0),),
    "critical_force": (("critical_force_n", "N CF", 0),),
    "sorensen": (("sorensen_hold_s", "s", 1),),
    "free": (("peak_force_n", "N", 0), ("peak_concentric_speed_dps", "°/s", 0)),
}
#: Progress series a reply carries at most, and points per series.
MAX_SERIES = 50
MAX_POINTS = 200


@dataclass(frozen=True)
class SessionRow:
    """One stored session for the recent-sessions lists. ``started`` is shown as given."""

    started: str
    exercise: str
    protocol: str
    sets: int
    reps: int
    headline: str = ""
    status: str = "complete"


@dataclass(frozen=True)
class ProgressPoint:
    """One session's headline figure for an exercise (``value`` in ``unit``)."""

    label: str
    value: float


@dataclass(frozen=True)
class Progress:
    """A per-exercise series over sessions with the engine's suggestion for the next one."""

    exercise: str
    figure: str
    unit: str
    points: tuple[ProgressPoint, ...]
    suggestion: str = ""


# --------------------------------------------------------------------------------------------
# From a store


def session_rows(reader: StoreReader, athlete: str, limit: int) -> list[SessionRow]:
    """The newest ``limit`` sessions of ``athlete`` (all athletes when empty), newest first."""
    rows = []
    for session in reader.sessions(athlete or None, limit):
        sets = reader.sets(session_id=session.id)
        figures = [reader.set_metrics(s.id) for s in sets]
        reps = sum(int(f.get("reps", 0) or 0) for f in figures if math.isfinite(f.get("reps", 0)))
        protocol = str(session.info.get("protocol", ""))
        rows.append(SessionRow(
            started=session.started_utc[:16].replace("T", " "),
            exercise=str(session.info.get("exercise", "")),
            protocol=protocol,
            sets=len(sets),
            reps=reps,
            headline=_headline(protocol, figures),
            status=session.status,
        ))
    return rows


def progress_series(reader: StoreReader, athlete: str,
                    settings: ProgressionSettings) -> list[Progress]:
    """One series per exercise ``athlete`` trained: the protocol's trend figure per session."""
    out = []
    exercises = sorted({s.exercise for s in reader.sets(athlete=athlete or None)})
    for exercise in exercises:
        history = History(reader, athlete, exercise)
        sessions = history.sessions()
        if not sessions:
            continue
        protocol = sessions[-1][-1].protocol
        figure = TREND_FIGURE.get(protocol)
        if figure is None:
            continue
        points = []
        for number, session in enumerate(sessions, start=1):
            values = [history.figures(s).get(figure, math.nan) for s in session
                      if s.protocol == protocol]
            values = [v for v in values if math.isfinite(v)]
            if values:
                points.append(ProgressPoint(f"S{number}", max(values)))
        if not points:
            continue
        suggestion = suggest(history, settings)
        label, unit = _figure_words(figure)
        out.append(Progress(exercise, label, unit, tuple(points),
                            suggestion.sentence if suggestion else ""))
    return out


def _headline(protocol: str, figures: list[dict[str, float]]) -> str:
    for name, unit, digits in HEADLINE_FIGURES.get(protocol, ()):
        values = [f[name] for f in figures if name in f and math.isfinite(f[name])]
        if values:
            return f"{max(values):.{digits}f} {unit}"
    return ""


def _figure_words(name: str) -> tuple[str, str]:
    """``mean_eccentric_s`` -> ("mean eccentric", "s")."""
    for suffix, unit in (("_n_per_s", "N/s"), ("_dps", "°/s"), ("_n_s", "N·s"), ("_n", "N"),
                         ("_s", "s"), ("_pct", "%"), ("_deg", "°")):
        if name.endswith(suffix):
            return name[: -len(suffix)].replace("_", " "), unit
    return name.replace("_", " "), ""


# --------------------------------------------------------------------------------------------
# As reply data and back


def rows_json(rows: Iterable[SessionRow]) -> list[dict[str, Any]]:
    return [asdict(row) for row in rows]


def rows_from_json(items: Iterable[Any]) -> list[SessionRow]:
    """Session rows of a reply; TypeError or ValueError when one is not a row."""
    rows = []
    for item in items:
        if not isinstance(item, Mapping):
            raise TypeError("a session row must be an object")
        rows.append(SessionRow(
            started=str(item["started"]), exercise=str(item["exercise"]),
            protocol=str(item["protocol"]), sets=int(item["sets"]), reps=int(item["reps"]),
            headline=str(item.get("headline", "")), status=str(item.get("status", "complete")),
        ))
    return rows


def series_json(series: Iterable[Progress]) -> list[dict[str, Any]]:
    return [{**asdict(p), "points": [[pt.label, pt.value] for pt in p.points[-MAX_POINTS:]]}
            for p in series]


def series_from_json(items: Iterable[Any]) -> list[Progress]:
    """Progress series of a reply; TypeError, KeyError or ValueError when one is not a series."""
    out = []
    for item in items:
        if not isinstance(item, Mapping):
            raise TypeError("a progress series must be an object")
        points = tuple(ProgressPoint(str(label), float(value)) for label, value in item["points"])
        out.append(Progress(str(item["exercise"]), str(item["figure"]), str(item["unit"]), points,
                            str(item.get("suggestion", ""))))
    return out


def profiles_from_json(items: Iterable[Any]) -> list[BandProfile]:
    """Band profiles of a reply; TypeError, KeyError or ValueError when one is not a profile."""
    out = []
    for item in items:
        if not isinstance(item, Mapping):
            raise TypeError("a band profile must be an object")
        out.append(BandProfile.from_json(item))
    return out


# --------------------------------------------------------------------------------------------
# The daemon's answers


class ReadOnlyStoreReader(StoreReader):
    """A :class:`StoreReader` that opens the database read-only and changes nothing: the
    daemon's own writer is the one that marks interrupted sessions, and a reader on the query
    thread must never take a write lock it would share with the engine's store."""

    def __init__(self, state_dir: Path) -> None:
        self.path = db_path(state_dir)
        try:
            self._conn = connect(self.path, readonly=True)
            self._conn.execute("SELECT 1 FROM sessions LIMIT 1").fetchall()
        except sqlite3.Error as error:
            raise StorageError(f"cannot read the session store {self.path}: {error}") from None


class StoreQueries:
    """Answers :class:`~spinecoach.hub.messages.Request` lines from ``state_dir``'s store, the
    exercise ``library`` and the band profiles that ``band_profiles`` returns.

    Safe to call from a thread of its own: nothing here is shared with the engine.
    """

    def __init__(self, state_dir: Path, library: Library, settings: ProgressionSettings,
                 band_profiles: Callable[[], list[BandProfile]]) -> None:
        self._state_dir = state_dir
        self._library = library
        self._settings = settings
        self._band_profiles = band_profiles

    def answer(self, request: Request) -> Reply:
        """The reply to ``request``; a store that cannot be read is a refused reply that says why."""
        try:
            data, note = self._data(request)
        except SpinecoachError as error:
            return Reply(request.id, request.query, False, str(error))
        return Reply(request.id, request.query, True, note, data)

    def _data(self, request: Request) -> tuple[dict[str, Any], str]:
        args = request.args
        if request.query == "band_profiles":
            exercise = args.get("exercise")
            profiles = [p for p in self._band_profiles() if exercise is None or p.exercise == exercise]
            return {"profiles": [p.to_json() for p in profiles[:MAX_QUERY_ROWS]]}, ""
        if request.query == "catalogue":
            data: dict[str, Any] = {"exercises": [e.id for e in self._library],
                                    "protocols": list(PROTOCOL_IDS), "athletes": []}
            return self._from_store(data, lambda r: {"athletes": r.athletes()[:MAX_QUERY_ROWS]})
        athlete = str(args.get("athlete", ""))
        if request.query == "recent_sessions":
            limit = min(int(args.get("limit", 10)), MAX_QUERY_ROWS)
            return self._from_store({"sessions": []}, lambda r: {
                "sessions": rows_json(session_rows(r, athlete, limit))})
        return self._from_store({"series": []}, lambda r: {
            "series": series_json(progress_series(r, athlete, self._settings)[:MAX_SERIES])})

    def _from_store(self, empty: dict[str, Any],
                    read: Callable[[StoreReader], dict[str, Any]]) -> tuple[dict[str, Any], str]:
        if not db_path(self._state_dir).exists():
            return empty, f"No sessions stored yet on the device ({self._state_dir})."
        reader = ReadOnlyStoreReader(self._state_dir)
        try:
            return {**empty, **read(reader)}, ""
        finally:
            reader.close()
