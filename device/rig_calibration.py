"""The daemon's calibration steps (known weight, zero pose, accelerometer poses) and where their
results are kept.

The math is the core's (:mod:`spinecoach.core.calibration`,
:mod:`spinecoach.core.imu_calibration`); this module only collects the last second of samples,
calls those kernels and keeps the results in the state directory as JSON, keyed by sensor
identity (``chip:stream``), so a restarted daemon starts calibrated.
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
    tare,
)
from spinecoach.core.imu_calibration import (  # type: ignore[import-not-found]
    IDENTITY,
    AccelFit,
    ImuCalibration,
    StillPose,
    box_gyro_bias,
    face_up,
    fit_accelerometer,
    missing_faces,
    still_pose,
    zero_pose_alignment,
)
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
#: Steadiness of the zero pose: a person standing still sways at up to ~0.6 °/s SD (the
#: gyro-bias capture's 0.5 °/s is for a sensor lying still); any movement is tens of °/s.
ZERO_POSE_STILL = GyroBiasSettings(window_s=STILL_WINDOW_S, max_sd_dps=1.0)


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
    """The trunk IMU's mounting (quaternion w, x, y, z, body → sensor) and gyro bias (°/s).

    ``zero_accel_g``: the zero pose's mean raw accel (g), kept so the mounting can be worked
    out again when the accelerometer is calibrated after it (None in files from before).
    """

    quaternion: tuple[float, float, float, float]
    gyro_bias_dps: tuple[float, float, float]
    zero_accel_g: tuple[float, float, float] | None = None


@dataclass
class AccelCalibration:
    """An accelerometer's offset (g) and scale per axis from the box poses, and the mean gyro
    (°/s) of those poses (the gyro bias while no zero pose gives one) with its SD (°/s, None in
    files from before it was kept)."""

    offset_g: tuple[float, float, float]
    scale: tuple[float, float, float]
    gyro_bias_dps: tuple[float, float, float] = (0.0, 0.0, 0.0)
    gyro_bias_sd_dps: float | None = None


@dataclass
class CalibrationRecord:
    """Everything calibrated, by sensor key (:func:`sensor_key`)."""

    forces: dict[str, ForceCalibration] = field(default_factory=dict)
    alignments: dict[str, Alignment] = field(default_factory=dict)
    accelerometers: dict[str, AccelCalibration] = field(default_factory=dict)
    #: Band profiles by :attr:`BandProfile.key` (exercise/band name).
    bands: dict[str, BandProfile] = field(default_factory=dict)

    def imu_calibration(self, key: str) -> ImuCalibration:
        """The calibration of IMU ``key`` the pipeline applies (identity when none is kept).

        The zero pose's gyro bias replaces the box poses' one, and with it goes the bias's SD:
        the athlete's sway is in it, by an amount nobody measured."""
        calibration = ImuCalibration()
        accel = self.accelerometers.get(key)
        if accel is not None:
            calibration = ImuCalibration(gyro_bias_dps=accel.gyro_bias_dps,
                                         accel_offset_g=accel.offset_g, accel_scale=accel.scale,
                                         gyro_bias_sd_dps=accel.gyro_bias_sd_dps)
        alignment = self.alignments.get(key)
        if alignment is not None:
            calibration = ImuCalibration(alignment.quaternion, alignment.gyro_bias_dps,
                                         calibration.accel_offset_g, calibration.accel_scale)
        return calibration


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
            record = CalibrationRecord(
                {k: ForceCalibration(float(v["n_per_count"]), float(v["offset_counts"]))
                 for k, v in data.get("forces", {}).items()},
                {k: Alignment(_floats(v["quaternion"], 4), _floats(v["gyro_bias_dps"], 3),
                              _floats(v["zero_accel_g"], 3) if v.get("zero_accel_g") else None)
                 for k, v in data.get("alignments", {}).items()},
                {k: AccelCalibration(_floats(v["offset_g"], 3), _floats(v["scale"], 3),
                                     _floats(v.get("gyro_bias_dps", (0, 0, 0)), 3),
                                     _optional_float(v.get("gyro_bias_sd_dps")))
                 for k, v in data.get("accelerometers", {}).items()},
                bands=load_band_profiles(data),
            )
            for key in {*record.alignments, *record.accelerometers}:
                record.imu_calibration(key)  # refuses implausible values (ValueError)
            return record
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
                               "gyro_bias_dps": list(v.gyro_bias_dps),
                               "zero_accel_g": None if v.zero_accel_g is None
                               else list(v.zero_accel_g)}
                           for k, v in record.alignments.items()},
            "accelerometers": {k: _accelerometer_json(v) for k, v in record.accelerometers.items()},
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


def _accelerometer_json(accel: AccelCalibration) -> dict[str, Any]:
    """A box-pose calibration's file entry (the bias SD only when known, as files before it)."""
    out: dict[str, Any] = {"offset_g": list(accel.offset_g), "scale": list(accel.scale),
                           "gyro_bias_dps": list(accel.gyro_bias_dps)}
    if accel.gyro_bias_sd_dps is not None:
        out["gyro_bias_sd_dps"] = accel.gyro_bias_sd_dps
    return out


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _floats(values: Any, size: int) -> Any:
    out = tuple(float(x) for x in values)
    if len(out) != size:
        raise ValueError(f"expected {size} numbers, got {list(values)}")
    return out


def zero_pose(window: SampleWindow, accel: ImuCalibration = IDENTITY) -> Alignment:
    """The mounting alignment from the last second of an IMU with the athlete upright and still.

    The accelerometer's calibration ``accel`` (offset, scale) is applied to the mean reading
    first. Refused (:class:`CalibrationError`) when the IMU turned (the gyro-bias capture's check).
    """
    info = window.info
    if info is None or not window.full:
        raise CalibrationError(
            f"the zero pose needs {CALIBRATION_WINDOW_S:g} s of trunk IMU samples: "
            "stand still upright a moment and try again"
        )
    samples = window.samples()
    gyro_dps, accel_g = samples[:, :3], samples[:, 3:]
    bias = gyro_bias_at_rest(gyro_dps, info.rate_hz, ZERO_POSE_STILL)
    mean = accel_g.mean(axis=0)
    zero_accel_g = (float(mean[0]), float(mean[1]), float(mean[2]))
    return Alignment(zero_pose_alignment(mean, accel), bias.bias_dps, zero_accel_g)


def realign(alignment: Alignment, accel: ImuCalibration) -> Alignment:
    """``alignment`` worked out again with a new accelerometer calibration (kept as it is when
    its zero pose reading is unknown)."""
    if alignment.zero_accel_g is None:
        return alignment
    return Alignment(zero_pose_alignment(alignment.zero_accel_g, accel),
                     alignment.gyro_bias_dps, alignment.zero_accel_g)


#: Two box poses closer than this (°) are the same face.
SAME_FACE_DEG = 30.0


@dataclass(frozen=True)
class PoseOutcome:
    """One box pose captured: its face, how many this run has, what is still missing, and the
    fit once the poses allow one."""

    face: str
    poses: int
    missing: tuple[str, ...]
    fit: AccelFit | None
    gyro_bias_dps: tuple[float, float, float]
    #: The bias's SD (°/s, :func:`~spinecoach.core.imu_calibration.box_gyro_bias`); None with
    #: a single pose.
    gyro_bias_sd_dps: float | None = None


class AccelPoseRun:
    """The still poses of one accelerometer calibration run (one IMU stream, one pose per face
    of a box); fits once every axis has pointed up and down (:func:`fit_accelerometer`)."""

    def __init__(self) -> None:
        self.stream = ""
        self.poses: list[StillPose] = []

    def add(self, window: SampleWindow) -> PoseOutcome:
        info = window.info
        if info is None or not window.full:
            raise CalibrationError(
                f"a pose needs {CALIBRATION_WINDOW_S:g} s of IMU samples: let the sensor rest "
                "on the face a moment and try again")
        if info.name != self.stream:
            self.stream, self.poses = info.name, []
        samples = window.samples()
        pose = still_pose(samples[:, :3], samples[:, 3:])
        face = face_up(pose.accel_g)
        a = np.asarray(pose.accel_g)
        for k, earlier in enumerate(self.poses, 1):
            b = np.asarray(earlier.accel_g)
            if a @ b > np.cos(np.radians(SAME_FACE_DEG)) * np.linalg.norm(a) * np.linalg.norm(b):
                raise CalibrationError(
                    f"this face ({face}) was captured already as pose {k}: turn the sensor "
                    "onto a face not captured yet")
        poses = [*self.poses, pose]
        means = [p.accel_g for p in poses]
        missing = tuple(missing_faces(means))
        fit = None
        if not missing and len(poses) >= 6:
            try:
                fit = fit_accelerometer(means)
            except CalibrationError:
                self.poses = []  # a bad pose spoils every fit with it: start afresh
                raise
        self.poses = poses
        if len(poses) < 2:
            return PoseOutcome(face, len(poses), missing, fit, pose.gyro_dps)
        bias, sd = box_gyro_bias(poses)
        return PoseOutcome(face, len(poses), missing, fit, bias, sd)


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
