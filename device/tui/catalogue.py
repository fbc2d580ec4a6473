"""What the coach lists besides the live session: exercises, protocols, stored sessions, progress
and the stored band profiles.

A coach in-process reads these from the engine's library and store on the same machine
(:class:`~spinecoach.tui.store_catalogue.StoreCatalogue`); a coach attached to a daemon asks the
daemon (:class:`~spinecoach.tui.hub_catalogue.HubCatalogue`), so over SSH it lists the device's
sessions, not its own user's. :class:`EmptyCatalogue` is what a coach without a store shows: every
screen then says in one sentence why it is empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from spinecoach.band_profile import BandProfile
from spinecoach.hub.queries import Progress, ProgressPoint, SessionRow

__all__ = ["BandProfile", "Catalogue", "EmptyCatalogue", "FixedCatalogue", "Progress",
           "ProgressPoint", "SessionRow"]


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

    def band_profiles(self) -> list[BandProfile]:
        """The stored band profiles (every exercise)."""

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

    def band_profiles(self) -> list[BandProfile]:
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
    bands: list[BandProfile] = field(default_factory=list)

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

    def band_profiles(self) -> list[BandProfile]:
        return list(self.bands)

    @property
    def unavailable_reason(self) -> str:
        return ""
