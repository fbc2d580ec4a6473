"""The coach's catalogue (``spinecoach.tui.catalogue.Catalogue``) backed by the library and store.

Read-only: the exercise library, the protocols, the athletes, recent sessions and one progress
series per exercise with the next-session suggestion. When no session has been stored yet every
list is empty and :attr:`StoreCatalogue.unavailable_reason` says why. The row types are the
coach's plain dataclasses (that module imports no Textual).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spinecoach.config import Config
from spinecoach.engine.library import load_library
from spinecoach.engine.progression import TREND_FIGURE, History, ProgressionSettings, suggest
from spinecoach.engine.protocols import PROTOCOL_IDS
from spinecoach.engine.reader import StoreReader
from spinecoach.engine.runner import SetReport, headline
from spinecoach.engine.store import db_path
from spinecoach.errors import SpinecoachError


class StoreCatalogue:
    """Library and store of one configuration, opened per query (the daemon may be writing)."""

    def __init__(self, config: Config) -> None:
        self._state_dir: Path = config.state_dir()
        self._library = load_library(config.exercises_dir())
        self._settings = ProgressionSettings.from_config(config)

    def _reader(self) -> StoreReader | None:
        if not db_path(self._state_dir).exists():
            return None
        try:
            return StoreReader(self._state_dir)
        except SpinecoachError:
            return None

    def exercises(self) -> list[str]:
        return [e.id for e in self._library]

    def protocols(self) -> list[str]:
        return list(PROTOCOL_IDS)

    def athletes(self) -> list[str]:
        reader = self._reader()
        if reader is None:
            return []
        with reader:
            return reader.athletes()

    def recent_sessions(self, athlete: str, limit: int = 10) -> list[Any]:
        from spinecoach.tui.catalogue import SessionRow

        reader = self._reader()
        if reader is None:
            return []
        rows = []
        with reader:
            for session in reader.sessions(athlete=athlete or None, limit=limit):
                sets = reader.sets(session_id=session.id)
                reps = sum(len(reader.reps(s.id)) for s in sets)
                last = sets[-1] if sets else None
                text = ""
                if last is not None:
                    report = SetReport(last.number, last.id, last.exercise, last.protocol,
                                       last.side, last.prescription, last.status,
                                       last.targets_met, last.start_s,
                                       last.end_s if last.end_s is not None else last.start_s,
                                       reader.metrics(last.id))
                    text = headline(report)
                rows.append(SessionRow(
                    started=session.started_utc, exercise=last.exercise if last else "",
                    protocol=last.protocol if last else "", sets=len(sets), reps=reps,
                    headline=text, status=session.status,
                ))
        return rows

    def progress(self, athlete: str) -> list[Any]:
        from spinecoach.tui.catalogue import Progress, ProgressPoint

        reader = self._reader()
        if reader is None:
            return []
        series = []
        with reader:
            exercises = sorted({s.exercise for s in reader.sets(athlete=athlete)})
            for exercise in exercises:
                history = History(reader, athlete, exercise)
                if not history.sets:
                    continue
                protocol = history.sets[-1].protocol
                trend = history.trend(protocol, self._settings.trend_sessions)
                if trend is None:
                    continue
                advice = suggest(history, self._settings)
                points = tuple(
                    ProgressPoint(label=started[:10], value=value)
                    for started, value in zip(trend.started_utc, trend.values, strict=True)
                )
                series.append(Progress(
                    exercise=exercise, figure=TREND_FIGURE[protocol], unit=trend.unit,
                    points=points, suggestion=advice.sentence if advice else "",
                ))
        return series

    @property
    def unavailable_reason(self) -> str:
        if not db_path(self._state_dir).exists():
            return f"No sessions stored yet in {self._state_dir}."
        return ""
