"""The daemon's calibration steps (known weight, zero pose) and where their results are kept.

The math is the core's (:mod:`spinecoach.core.calibration`); this module only collects the last
second of samples, calls those kernels and keeps the results in the state directory as JSON,
keyed by sensor identity (``chip:stream``), so a restarted daemon starts calibrated.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from spinecoach.band_profile import BandProfile
from spinecoach.core.calibration import (  # type: ignore[import-not-found]
    CalibrationError,
    GyroBiasSettings,
    TareSettings,
    fit_scale,
    gyro_bias_at_rest,
    mounting_alignment,
    tare,
)
from spinecoach.core.orientation import OrientationFilter  # type: ignore[import-not-found]
from spinecoach.drivers.blocks import ForceBlock, ImuBlock, StreamInfo
from spinecoach.errors import SpinecoachError

#: Standard gravity (m/s²): a known mass in kg weighs mass_kg × this in N.
STANDARD_GRAVITY_M_S2 = 9.80665
#: Samples a calibration step looks back over (s).
CALIBRATION_WINDOW_S = 1.0
#: Of that window, the quietest stretch the kernels average (s): leaves room for the jitter of
#: block boundaries, and the kernels refuse when even that stretch is not still.
STILL_WINDOW_S = 0.8
#: Steadiness a known-weight reading needs (SD, N): a swinging weight reads wrong.
KNOWN_WEIGHT_MAX_SD_N = 3.0


class CalibrationFileError(SpinecoachError):
    """The stored calibration cannot be read."""


class SampleWindow:
    """The last :data:`CALIBRATION_WINDOW_S` (or ``window_s``) of valid samples of one stream.

    Force streams keep raw ADC codes (1 column), IMU streams gyro °/s and accel g (6 columns).
    """

    def __init__(self, window_s: float = CALIBRATION_WINDOW_S) -> None:
        self.window_s = window_s
        self.info: StreamInfo | None = None
        self._rows: deque[tuple[float, ...]] = deque()
        self._size = 1

    def add(self, block: ForceBlock | ImuBlock) -> None:
        if not len(block):
            return
        if self.info is None or block.info.name != self.info.name:
            self._rows = deque()
            self._size = max(1, round(self.window_s * block.info.rate_hz))
        self.info = block.info
        if isinstance(block, ForceBlock):
            if block.raw is None:
                return
            self._rows.extend((float(c),) for c in block.raw[block.valid])
        else:
            rows = np.concatenate([block.gyro_dps, block.accel_g], axis=1)[block.valid]
            self._rows.extend(tuple(r) for r in rows.tolist())
        while len(self._rows) > self._size:
            self._rows.popleft()

    @property
    def full(self) -> bool:
        return bool(self._rows) and len(self._rows) >= self._size

    def mean_code(self) -> tuple[str, float] | None:
        """(stream name, mean code) once the window is at least half full, else None (tare)."""
        if self.info is None or not self._rows or len(self._rows) < self._size // 2:
            return None
        return self.info.name, float(np.mean([r[0] for r in self._rows]))

    def samples(self) -> npt.NDArray[np.float64]:
        return np.asarray(self._rows, dtype=np.float64)


@dataclass
class ForceCalibration:
    """A load cell's linear model: force_n = n_per_count · (counts − offset_counts)."""

    n_per_count: float
    offset_counts: float


@dataclass
class Alignment:
    """The trunk IMU's mounting (quaternion w, x, y, z, body → sensor) and gyro bias (°/s)."""

    quaternion: tuple[float, float, float, float]
    gyro_bias_dps: tuple[float, float, float]


@dataclass
class CalibrationRecord:
    """Everything calibrated, by sensor key (:func:`sensor_key`)."""

    forces: dict[str, ForceCalibration] = field(default_factory=dict)
    alignments: dict[str, Alignment] = field(default_factory=dict)
    #: Band profiles by :attr:`BandProfile.key` (exercise/band name).
    bands: dict[str, BandProfile] = field(default_factory=dict)


def sensor_key(info: StreamInfo) -> str:
    """A sensor's identity across restarts: chip name and stream name."""
    return f"{info.chip or 'unknown'}:{info.name}"


class CalibrationFile:
    """The JSON file of a :class:`CalibrationRecord`, replaced atomically (temp + rename)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> CalibrationRecord:
        if not self.path.exists():
            return CalibrationRecord()
        try:
            data: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
            return CalibrationRecord(
                {k: ForceCalibration(float(v["n_per_count"]), float(v["offset_counts"]))
                 for k, v in data.get("forces", {}).items()},
                {k: Alignment(tuple(float(x) for x in v["quaternion"]),  # type: ignore[arg-type]
                              tuple(float(x) for x in v["gyro_bias_dps"]))  # type: ignore[arg-type]
                 for k, v in data.get("alignments", {}).items()},
                bands=load_band_profiles(data),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise CalibrationFileError(
                f"calibration file {self.path} is unreadable ({error}): "
                "delete it and calibrate again"
            ) from None

    def save(self, record: CalibrationRecord) -> None:
        data = {
            "forces": {k: {"n_per_count": v.n_per_count, "offset_counts": v.offset_counts}
                       for k, v in record.forces.items()},
            "alignments": {k: {"quaternion": list(v.quaternion),
                               "gyro_bias_dps": list(v.gyro_bias_dps)}
                           for k, v in record.alignments.items()},
            **band_profiles_json(record),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".calibration-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out, indent=1)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


@dataclass(frozen=True)
class ScaleOutcome:
    """A known-weight step's result: the new model and the fit's residuals (N)."""

    calibration: ForceCalibration
    residuals_n: tuple[float, ...]
    points: int


class KnownWeightRun:
    """The known-weight points of one calibration run (raw mean code, load N) of one load cell.

    The zero is the current tare (the stream's offset), so a single known load already gives a
    two-point fit; each further load joins the least-squares fit.
    """

    def __init__(self) -> None:
        self.stream = ""
        self.codes: list[float] = []
        self.loads_n: list[float] = []

    def add(self, window: SampleWindow, mass_kg: float) -> ScaleOutcome:
        info = window.info
        if info is None or not window.full:
            raise CalibrationError(
                f"a known weight needs {CALIBRATION_WINDOW_S:g} s of load-cell samples: "
                "let it hang still a moment and try again"
            )
        if info.name != self.stream:
            self.stream, self.codes, self.loads_n = info.name, [], []
        scale = info.force_n_per_count
        # The tare kernel without a previous zero only checks steadiness: here it averages the
        # quietest stretch of the hung weight and refuses a swinging one.
        steady = TareSettings(window_s=STILL_WINDOW_S, max_sd_n=KNOWN_WEIGHT_MAX_SD_N)
        reading = tare(window.samples()[:, 0], info.rate_hz, scale, settings=steady)
        codes = [*self.codes, reading.offset_counts]
        loads_n = [*self.loads_n, mass_kg * STANDARD_GRAVITY_M_S2]
        fit = fit_scale(codes, loads_n, offset_counts=info.force_offset_counts)
        self.codes, self.loads_n = codes, loads_n
        return ScaleOutcome(ForceCalibration(fit.n_per_count, fit.offset_counts),
                            fit.residuals_n, len(codes))


def zero_pose(window: SampleWindow) -> Alignment:
    """The mounting alignment from the last second of an IMU with the athlete upright and still.

    Refused (:class:`CalibrationError`) when the IMU turned (the gyro-bias capture's check).
    """
    info = window.info
    if info is None or not window.full:
        raise CalibrationError(
            f"the zero pose needs {CALIBRATION_WINDOW_S:g} s of trunk IMU samples: "
            "stand still upright a moment and try again"
        )
    samples = window.samples()
    gyro_dps, accel_g = samples[:, :3], samples[:, 3:]
    bias = gyro_bias_at_rest(gyro_dps, info.rate_hz, GyroBiasSettings(window_s=STILL_WINDOW_S))
    orientation = OrientationFilter(info.rate_hz)
    orientation.seed_bias_dps(bias.bias_dps)
    zero_q = orientation.update(gyro_dps, accel_g)[-1]
    q = mounting_alignment(zero_q)
    return Alignment((float(q[0]), float(q[1]), float(q[2]), float(q[3])), bias.bias_dps)


def load_band_profiles(data: dict[str, Any]) -> dict[str, BandProfile]:
    """The ``bands`` of a calibration file's JSON (none in a file from before band profiles)."""
    return {key: BandProfile.from_json(value) for key, value in data.get("bands", {}).items()}


def band_profiles_json(record: CalibrationRecord) -> dict[str, Any]:
    """The record's band profiles as the file's ``bands`` entry (absent when there are none)."""
    if not record.bands:
        return {}
    return {"bands": {key: profile.to_json() for key, profile in record.bands.items()}}


def read_band_profiles(path: Path) -> list[BandProfile]:
    """The band profiles stored in the calibration file ``path`` (none when it does not exist).

    Read on its own (not through the daemon's record), so a reader on another thread never
    shares the daemon's objects; the file is replaced atomically, so it is always whole."""
    return list(CalibrationFile(path).load().bands.values())
