"""The band profile: a band's own force against the primary angle, captured through the daemon.

The athlete pulls the band slowly through the whole range and back between the coach's
``calibrate band_profile`` start and finish. :class:`BandCapture` keeps the live frames of that
stretch (angle, force, phase, at the hub's 30 Hz frame rate), and :meth:`BandCapture.finish`
bins force against the primary angle with the core's force-angle curve (METRICS.md "Force
against angle": 2° bins, concentric and eccentric separately) and fits the band stiffness (N/°)
over the concentric curve with the core's fit. The result, a :class:`BandProfile`, is stored with
the other calibrations (:mod:`spinecoach.rig_calibration`) and drawn by the coach as the
reference curve under the athlete's own.

The phases come from the exercise's motion settings (which direction lengthens), so a capture
needs an exercise chosen: without one the pipeline only knows "moving", and the primary angle
itself is not the exercise's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from spinecoach.core.calibration import CalibrationError  # type: ignore[import-not-found]
from spinecoach.core.metrics import (  # type: ignore[import-not-found]
    FORCE_ANGLE_BIN_DEG,
    band_stiffness_n_per_deg,
    force_angle_curve,
)
from spinecoach.hub.messages import Frame

#: Range of primary angle a capture must cover (°): less is a twitch, not the band's range.
MIN_RANGE_DEG = 20.0
#: Frames a capture keeps at most (3 min at the 30 Hz frame rate); later ones are not used.
MAX_CAPTURE_FRAMES = 5400
#: Name of a band the coach did not name.
DEFAULT_BAND_NAME = "band"

Curve = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class BandProfile:
    """One band's force against the primary angle of ``exercise``.

    ``concentric``/``eccentric``: (lower bin edge °, mean force N) per ``bin_deg`` bin, by angle;
    ``stiffness_n_per_deg``: slope of the concentric curve (None under two bins);
    ``range_deg``: lowest and highest angle seen; ``captured_utc``: when (ISO 8601, UTC).
    """

    name: str
    exercise: str
    captured_utc: str
    range_deg: tuple[float, float]
    stiffness_n_per_deg: float | None
    concentric: Curve
    eccentric: Curve
    bin_deg: float = FORCE_ANGLE_BIN_DEG

    @property
    def key(self) -> str:
        """Where it is kept: one profile per band name and exercise."""
        return f"{self.exercise}/{self.name}"

    @property
    def bins(self) -> int:
        """Distinct angle bins with a force in either direction."""
        return len({edge for edge, _ in self.concentric} | {edge for edge, _ in self.eccentric})

    def reference_curve(self) -> list[tuple[float, float]]:
        """(bin centre °, force N) to draw: the concentric curve (the one the stiffness is
        fitted over), else the eccentric one."""
        curve = self.concentric or self.eccentric
        return [(edge + self.bin_deg / 2, force_n) for edge, force_n in curve]

    def describe(self) -> str:
        """One line: name, range, bins and stiffness."""
        stiffness = ("–" if self.stiffness_n_per_deg is None
                     else f"{self.stiffness_n_per_deg:+.2f} N/°")
        low, high = self.range_deg
        return (f"{self.name}: {low:.0f}–{high:.0f}°, {self.bins} bins of {self.bin_deg:g}°, "
                f"stiffness {stiffness}")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "exercise": self.exercise,
            "captured_utc": self.captured_utc,
            "bin_deg": self.bin_deg,
            "range_deg": list(self.range_deg),
            "stiffness_n_per_deg": self.stiffness_n_per_deg,
            "concentric": [list(point) for point in self.concentric],
            "eccentric": [list(point) for point in self.eccentric],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BandProfile:
        """Read :meth:`to_json` back; KeyError, TypeError or ValueError when it is not one."""
        low, high = (float(x) for x in data["range_deg"])
        stiffness = data.get("stiffness_n_per_deg")
        return cls(
            name=str(data["name"]),
            exercise=str(data["exercise"]),
            captured_utc=str(data["captured_utc"]),
            range_deg=(low, high),
            stiffness_n_per_deg=None if stiffness is None else float(stiffness),
            concentric=_curve(data["concentric"]),
            eccentric=_curve(data["eccentric"]),
            bin_deg=float(data.get("bin_deg", FORCE_ANGLE_BIN_DEG)),
        )


def _curve(points: Any) -> Curve:
    return tuple((float(a), float(f)) for a, f in points)


def newest_profile(profiles: Iterable[BandProfile], exercise: str) -> BandProfile | None:
    """The most recently captured profile of ``exercise`` (None when it has none)."""
    mine = [p for p in profiles if p.exercise == exercise]
    return max(mine, key=lambda p: p.captured_utc) if mine else None


class BandCapture:
    """Frames between a capture's start and finish: (angle °, force N, phase) each."""

    def __init__(self, exercise: str, name: str = DEFAULT_BAND_NAME) -> None:
        self.exercise = exercise
        self.name = name.strip() or DEFAULT_BAND_NAME
        self._angles: list[float] = []
        self._forces: list[float] = []
        self._phases: list[str] = []
        #: Frames that came after :data:`MAX_CAPTURE_FRAMES` and were not kept.
        self.overflow = 0

    def add(self, messages: Iterable[Any]) -> None:
        """Keep the ``frame`` messages among ``messages`` that carry both an angle and a force."""
        for message in messages:
            if not isinstance(message, Frame):
                continue
            angle, force = message.angle_deg, message.force_n
            if angle is None or force is None:
                continue
            if len(self._angles) >= MAX_CAPTURE_FRAMES:
                self.overflow += 1
                continue
            self._angles.append(float(angle))
            self._forces.append(float(force))
            self._phases.append(message.phase)

    @property
    def frames(self) -> int:
        return len(self._angles)

    def finish(self, captured_utc: str) -> BandProfile:
        """The profile, or :class:`CalibrationError` saying what the capture lacks."""
        if not self._angles:
            raise CalibrationError(
                "no angle and force came in during the capture: check that the trunk IMU and "
                "the load cell show ok, then start again"
            )
        low, high = min(self._angles), max(self._angles)
        if high - low < MIN_RANGE_DEG:
            raise CalibrationError(
                f"the angle moved only {high - low:.0f}° (at least {MIN_RANGE_DEG:g}° needed): "
                "start again and pull through the whole range and back"
            )
        curves = {phase: self._curve(phase) for phase in ("concentric", "eccentric")}
        if len(curves["concentric"]) < 2:
            raise CalibrationError(
                "no lift back through the range was seen, so the stiffness cannot be fitted: "
                "start again, pull slowly out and come back"
            )
        stiffness = band_stiffness_n_per_deg(curves["concentric"])
        return BandProfile(
            name=self.name,
            exercise=self.exercise,
            captured_utc=captured_utc,
            range_deg=(round(low, 2), round(high, 2)),
            stiffness_n_per_deg=None if stiffness is None or not math.isfinite(stiffness)
            else round(stiffness, 4),
            concentric=tuple((a, round(f, 2)) for a, f in curves["concentric"].items()),
            eccentric=tuple((a, round(f, 2)) for a, f in curves["eccentric"].items()),
        )

    def _curve(self, phase: str) -> dict[float, float]:
        chosen = [i for i, p in enumerate(self._phases) if p == phase]
        return force_angle_curve([self._angles[i] for i in chosen],
                                 [self._forces[i] for i in chosen], FORCE_ANGLE_BIN_DEG)
