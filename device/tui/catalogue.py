"""What the coach lists besides the live session: exercises, protocols, stored sessions, progress.

The coach reads these from the engine's library and store on the same machine (over SSH the coach
runs on the device too). :class:`EmptyCatalogue` is what a coach without a store shows: every
screen then says in one sentence why it is empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


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


class Catalogue(Protocol):
    """Read-only access to the exercise library and the session store."""

    def exercises(self) -> list[str]:
        """Exercise names, in library order."""

    def protocols(self) -> list[str]:
        """Protocol names."""

    def athletes(self) -> list[str]:
        """Athletes with a profile."""

    def recent_sessions(self, athlete: str, limit: int = 10) -> list[SessionRow]:
        """The newest sessions of ``athlete``, newest first."""

    def progress(self, athlete: str) -> list[Progress]:
        """One progress series per exercise the athlete has trained."""

    @property
    def unavailable_reason(self) -> str:
        """Why lists are empty ("" when the store is there)."""


class EmptyCatalogue:
    """No library and no store: every list is empty, with the reason to show."""

    def __init__(self, reason: str = "No session store on this device yet.") -> None:
        self._reason = reason

    def exercises(self) -> list[str]:
        return []

    def protocols(self) -> list[str]:
        return []

    def athletes(self) -> list[str]:
        return []

    def recent_sessions(self, athlete: str, limit: int = 10) -> list[SessionRow]:
        return []

    def progress(self, athlete: str) -> list[Progress]:
        return []

    @property
    def unavailable_reason(self) -> str:
        return self._reason


@dataclass
class FixedCatalogue:
    """A catalogue held in memory (tests, demo screenshots)."""

    exercise_names: list[str]
    protocol_names: list[str]
    athlete_names: list[str]
    sessions: list[SessionRow]
    series: list[Progress]

    def exercises(self) -> list[str]:
        return list(self.exercise_names)

    def protocols(self) -> list[str]:
        return list(self.protocol_names)

    def athletes(self) -> list[str]:
        return list(self.athlete_names)

    def recent_sessions(self, athlete: str, limit: int = 10) -> list[SessionRow]:
        return self.sessions[:limit]

    def progress(self, athlete: str) -> list[Progress]:
        return list(self.series)

    @property
    def unavailable_reason(self) -> str:
        return ""
