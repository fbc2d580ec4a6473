"""The band profile: a band's own force against the primary angle, captured through the daemon.

The athlete pulls the band slowly through the whole range and back between the coach's
``calibrate band_profile`` start and finish. :class:`BandCapture` keeps every primary-angle and
force sample the session's measurement pipeline processes in that stretch (full rate, not the
hub's 30 Hz frames), and the pipeline's phase changes; :meth:`BandCapture.finish`
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

import numpy as np
import numpy.typing as npt
from spinecoach.core.calibration import CalibrationError  # type: ignore[import-not-found]
from spinecoach.core.metrics import (  # type: ignore[import-not-found]
    FORCE_ANGLE_BIN_DEG,
    band_stiffness_n_per_deg,
    force_angle_curve,
)

#: Range of primary angle a capture must cover (°): less is a twitch, not the band's range.
MIN_RANGE_DEG = 20.0
#: Longest stretch a capture keeps (s); later samples are not used.
MAX_CAPTURE_S = 180.0
#: Name of a band the coach did not name.
DEFAULT_BAND_NAME = "band"

Curve = tuple[tuple[float, float], ...]
FloatArray = npt.NDArray[np.float64]


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
    """The full-rate primary angle and force between a capture's start and finish, and the
    phase changes the pipeline decided meanwhile.

    Fed by the session's measurement pipeline (:meth:`samples`, every sample it processes, so a
    quick pull leaves no gap between bins) and its phase events (:meth:`phase`, with the sample
    time of each boundary, so labels are exact even though a phase is decided a little later).
    """

    def __init__(self, exercise: str, name: str = DEFAULT_BAND_NAME) -> None:
        self.exercise = exercise
        self.name = name.strip() or DEFAULT_BAND_NAME
        self._chunks: dict[str, list[tuple[FloatArray, FloatArray]]] = {
            "angle_deg": [], "force_n": []}
        self._first_t_s: dict[str, float] = {}
        self._phase_t_s: list[float] = []
        self._phase_labels: list[str] = []
        #: Samples that came after :data:`MAX_CAPTURE_S` and were not kept.
        self.overflow = 0

    def samples(self, kind: str, t_s: npt.ArrayLike, values: npt.ArrayLike) -> None:
        """Keep a block of ``angle_deg`` (primary angle) or ``force_n`` samples at times
        ``t_s`` (s); other kinds are not the capture's. Not-finite values are left out."""
        if kind not in self._chunks:
            return
        t = np.array(t_s, dtype=np.float64).reshape(-1)
        v = np.array(values, dtype=np.float64).reshape(-1)
        if not len(t):
            return
        first = self._first_t_s.setdefault(kind, float(t[0]))
        kept = (t < first + MAX_CAPTURE_S)
        self.overflow += int(np.count_nonzero(~kept))
        kept &= np.isfinite(v)
        if kept.any():
            self._chunks[kind].append((t[kept], v[kept]))

    def phase(self, t_s: float, label: str) -> None:
        """The phase ``label`` (still, eccentric, concentric, moving) from sample time ``t_s``."""
        self._phase_t_s.append(float(t_s))
        self._phase_labels.append(label)

    @property
    def samples_kept(self) -> int:
        """Primary-angle samples kept so far."""
        return sum(len(t) for t, _ in self._chunks["angle_deg"])

    def _series(self, kind: str) -> tuple[FloatArray, FloatArray]:
        chunks = self._chunks[kind]
        if not chunks:
            return np.zeros(0), np.zeros(0)
        t = np.concatenate([c[0] for c in chunks])
        v = np.concatenate([c[1] for c in chunks])
        order = np.argsort(t, kind="stable")
        return t[order], v[order]

    def finish(self, captured_utc: str) -> BandProfile:
        """The profile, or :class:`CalibrationError` saying what the capture lacks."""
        t_angle, angles = self._series("angle_deg")
        t_force, forces = self._series("force_n")
        # Force at each angle sample (the load cell runs at its own rate): interpolated, and
        # only where force samples surround the angle sample.
        covered = ((t_angle >= t_force[0]) & (t_angle <= t_force[-1]) if len(t_force)
                   else np.zeros(len(t_angle), bool))
        t_angle, angles = t_angle[covered], angles[covered]
        if not len(angles):
            raise CalibrationError(
                "no angle and force came in during the capture: check that the trunk IMU and "
                "the load cell show ok, then start again"
            )
        forces_at = np.interp(t_angle, t_force, forces)
        low, high = float(angles.min()), float(angles.max())
        if high - low < MIN_RANGE_DEG:
            raise CalibrationError(
                f"the angle moved only {high - low:.0f}° (at least {MIN_RANGE_DEG:g}° needed): "
                "start again and pull through the whole range and back"
            )
        labels = self._labels(t_angle)
        curves = {phase: force_angle_curve(angles[labels == phase], forces_at[labels == phase],
                                           FORCE_ANGLE_BIN_DEG)
                  for phase in ("concentric", "eccentric")}
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

    def _labels(self, t_s: FloatArray) -> npt.NDArray[np.str_]:
        """The phase of each sample time: the last change at or before it ("still" before the
        first change seen, as a capture starts at rest)."""
        labels = np.array(["still", *self._phase_labels])
        order = np.argsort(self._phase_t_s, kind="stable")
        changes = np.asarray(self._phase_t_s, dtype=np.float64)[order]
        which = np.searchsorted(changes, t_s, side="right")
        return labels[np.concatenate(([0], order + 1))[which]]
