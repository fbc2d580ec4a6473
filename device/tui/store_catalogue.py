"""The catalogue from this machine's exercise library and session store (no Textual).

Screens redraw up to 30 times a second, so answers are cached for :data:`CACHE_S` seconds of wall
clock (display freshness only; nothing measured depends on it), and the store is opened per
refresh rather than held open, so the daemon's writer never waits on the coach.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from spinecoach.engine.library import Library
from spinecoach.engine.progression import TREND_FIGURE, History, ProgressionSettings, suggest
from spinecoach.engine.protocols import PROTOCOL_IDS
from spinecoach.engine.reader import StoreReader
from spinecoach.engine.store import db_path
from spinecoach.errors import SpinecoachError
from spinecoach.tui.catalogue import Progress, ProgressPoint, SessionRow

#: How long a store answer is reused (s of wall clock).
CACHE_S = 5.0
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

T = TypeVar("T")


class StoreCatalogue:
    """Exercises and protocols from ``library``; sessions and progress from the store."""

    def __init__(
        self,
        library: Library,
        state_dir: Path,
        settings: ProgressionSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._library = library
        self._state_dir = state_dir
        self._settings = settings or ProgressionSettings()
        self._clock = clock
        self._cache: dict[tuple[Any, ...], tuple[float, Any]] = {}
        self._reason = ""

    def _cached(self, key: tuple[Any, ...], compute: Callable[[StoreReader], T], empty: T) -> T:
        now = self._clock()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < CACHE_S:
            return hit[1]  # type: ignore[no-any-return]
        value = empty
        if not db_path(self._state_dir).exists():
            self._reason = f"No sessions stored yet in {self._state_dir}."
        else:
            try:
                with StoreReader(self._state_dir) as reader:
                    value = compute(reader)
                self._reason = ""
            except SpinecoachError as error:
                self._reason = str(error)
        self._cache[key] = (now, value)
        return value

    # --- Catalogue ---------------------------------------------------------------------------

    def exercises(self) -> list[str]:
        return [exercise.id for exercise in self._library]

    def protocols(self) -> list[str]:
        return list(PROTOCOL_IDS)

    def athletes(self) -> list[str]:
        return self._cached(("athletes",), lambda r: r.athletes(), [])

    def recent_sessions(self, athlete: str, limit: int = 10) -> list[SessionRow]:
        def compute(reader: StoreReader) -> list[SessionRow]:
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

        return self._cached(("sessions", athlete, limit), compute, [])

    def progress(self, athlete: str) -> list[Progress]:
        def compute(reader: StoreReader) -> list[Progress]:
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
                suggestion = suggest(history, self._settings)
                label, unit = _figure_words(figure)
                out.append(Progress(exercise, label, unit, tuple(points),
                                    suggestion.sentence if suggestion else ""))
            return out

        return self._cached(("progress", athlete), compute, [])

    @property
    def unavailable_reason(self) -> str:
        return self._reason


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
