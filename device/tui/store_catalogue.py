"""The catalogue from this machine's exercise library and session store (no Textual).

Screens redraw up to 30 times a second, so answers are cached for :data:`CACHE_S` seconds of wall
clock (display freshness only; nothing measured depends on it), and the store is opened per
refresh rather than held open, so the daemon's writer never waits on the coach.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from spinecoach.band_profile import BandProfile
from spinecoach.engine.library import Library
from spinecoach.engine.progression import ProgressionSettings
from spinecoach.engine.protocols import PROTOCOL_IDS
from spinecoach.engine.reader import StoreReader
from spinecoach.engine.store import db_path
from spinecoach.errors import SpinecoachError
from spinecoach.hub.queries import Progress, SessionRow, progress_series, session_rows
from spinecoach.rig_calibration import read_band_profiles

#: How long a store answer is reused (s of wall clock).
CACHE_S = 5.0
#: The daemon's calibration file of the real sensors, in the state directory.
HARDWARE_CALIBRATION_FILE = "calibration.hardware.json"

T = TypeVar("T")


class StoreCatalogue:
    """Exercises and protocols from ``library``; sessions and progress from the store."""

    def __init__(
        self,
        library: Library,
        state_dir: Path,
        settings: ProgressionSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
        calibration_file: str = HARDWARE_CALIBRATION_FILE,
    ) -> None:
        self._library = library
        self._calibration_file = calibration_file
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
        return self._cached(("sessions", athlete, limit),
                            lambda r: session_rows(r, athlete, limit), [])

    def progress(self, athlete: str) -> list[Progress]:
        return self._cached(("progress", athlete),
                            lambda r: progress_series(r, athlete, self._settings), [])

    def band_profiles(self) -> list[BandProfile]:
        """The profiles captured for the sensors (``calibration.hardware.json``, or the
        ``calibration_file`` named, e.g. a simulated rig's)."""
        now = self._clock()
        hit = self._cache.get(("bands",))
        if hit is not None and now - hit[0] < CACHE_S:
            return hit[1]  # type: ignore[no-any-return]
        try:
            profiles = read_band_profiles(self._state_dir / self._calibration_file)
        except SpinecoachError:
            profiles = []  # an unreadable file: the daemon says so when it starts
        self._cache[("bands",)] = (now, profiles)
        return profiles

    @property
    def unavailable_reason(self) -> str:
        return self._reason

