"""IMU calibration: mounting alignment, gyro bias and accelerometer offset/scale, and their fits.

An :class:`ImuCalibration` turns a chip's raw readings into body-frame readings::

    gyro_body  = (gyro_dps - gyro_bias_dps) · R
    accel_body = ((accel_g - accel_offset_g) / accel_scale) · R

with ``R`` the rotation matrix of ``mount_wxyz`` (body -> sensor, the quaternion
:func:`spinecoach.core.calibration.mounting_alignment` returns) and readings as row vectors, so
``v · R`` is ``Rᵀ v``: the sensor-frame vector seen in the body frame. The accelerometer model
per axis is ``measured = accel_scale · true + accel_offset_g`` (zero-g offset and sensitivity
error, MPU-6050 datasheet PS-MPU-6000A-00 §6.2: ±50 mg on X/Y, ±80 mg on Z, ±3 % sensitivity).

The accelerometer is fitted from still poses (:func:`still_pose`, :func:`fit_accelerometer`):
at rest it measures gravity only, so the mean readings of poses in well-spread orientations lie
on the ellipsoid ``|(a - offset) / scale| = 1 g``. The fit is the diagonal (axis-aligned) case of
the multi-position calibration of I. Frosio, F. Pedersini, N. A. Borghese, "Autocalibration of
MEMS accelerometers", IEEE Trans. Instrum. Meas. 58(6):2034-2041, 2009: an algebraic ellipsoid
fit (linear least squares, smallest singular vector) as the start, refined by Gauss-Newton on
the geometric residuals ``|(a_i - offset) / scale| - 1``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from spinecoach.core.angles import quaternion_to_matrix
from spinecoach.core.calibration import CalibrationError, _smallest_rotation

FloatArray = npt.NDArray[np.float64]
Vector3 = tuple[float, float, float]

IDENTITY_WXYZ = (1.0, 0.0, 0.0, 0.0)
#: Body axis pointing up at the zero pose (trunk convention: +x up the spine).
BODY_UP = (1.0, 0.0, 0.0)
#: Plausibility limits of a calibration (anything beyond is a wrong unit or a broken chip):
#: gyro bias (°/s), accelerometer offset (g) and scale.
MAX_GYRO_BIAS_DPS = 20.0
MAX_ACCEL_OFFSET_G = 0.3
ACCEL_SCALE_RANGE = (0.8, 1.2)


def _vector(name: str, values: Any, size: int) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {size} numbers, got {values!r}") from None
    if len(out) != size or not all(math.isfinite(v) for v in out):
        raise ValueError(f"{name} must be {size} finite numbers, got {values!r}")
    return out


@dataclass(frozen=True)
class ImuCalibration:
    """One IMU's calibration (see the module docstring); the default is the identity.

    ``mount_wxyz``: unit quaternion body -> sensor (normalised here; refused when its norm is
    not within 1e-3 of 1). ``gyro_bias_dps``: subtracted from the gyro (°/s).
    ``accel_offset_g``/``accel_scale``: the accelerometer's per-axis zero-g offset (g) and
    sensitivity (measured / true). ``gyro_bias_sd_dps``: how far ``gyro_bias_dps`` may be off
    (°/s, one SD per axis), None when unknown; only a bias measured with the sensor truly at
    rest has one (:func:`box_gyro_bias`), and the pipeline then starts the orientation filter
    with the bias as known to that SD.
    """

    mount_wxyz: tuple[float, float, float, float] = IDENTITY_WXYZ
    gyro_bias_dps: Vector3 = (0.0, 0.0, 0.0)
    accel_offset_g: Vector3 = (0.0, 0.0, 0.0)
    accel_scale: Vector3 = (1.0, 1.0, 1.0)
    gyro_bias_sd_dps: float | None = None
    _rotation: FloatArray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        q = _vector("mount_wxyz", self.mount_wxyz, 4)
        norm = math.sqrt(sum(v * v for v in q))
        if abs(norm - 1.0) > 1e-3:
            raise ValueError(f"mount_wxyz must be a unit quaternion, got norm {norm:.6g}")
        q = tuple(v / norm for v in q)
        if q[0] < 0:  # one sign for the same rotation, so equal calibrations compare equal
            q = tuple(-v for v in q)
        bias = _vector("gyro_bias_dps", self.gyro_bias_dps, 3)
        offset = _vector("accel_offset_g", self.accel_offset_g, 3)
        scale = _vector("accel_scale", self.accel_scale, 3)
        if max(abs(b) for b in bias) > MAX_GYRO_BIAS_DPS:
            raise ValueError(f"gyro_bias_dps {bias} exceeds ±{MAX_GYRO_BIAS_DPS:g} °/s")
        if max(abs(o) for o in offset) > MAX_ACCEL_OFFSET_G:
            raise ValueError(f"accel_offset_g {offset} exceeds ±{MAX_ACCEL_OFFSET_G:g} g")
        lo, hi = ACCEL_SCALE_RANGE
        if not all(lo <= s <= hi for s in scale):
            raise ValueError(f"accel_scale {scale} is outside {lo:g}..{hi:g}")
        sd = self.gyro_bias_sd_dps
        if sd is not None:
            try:
                sd = float(sd)
            except (TypeError, ValueError):
                raise ValueError(f"gyro_bias_sd_dps must be a number, got {sd!r}") from None
            if not (math.isfinite(sd) and 0.0 <= sd <= MAX_GYRO_BIAS_DPS):
                raise ValueError(
                    f"gyro_bias_sd_dps must be within 0..{MAX_GYRO_BIAS_DPS:g} °/s, got {sd!r}")
        object.__setattr__(self, "gyro_bias_sd_dps", sd)
        object.__setattr__(self, "mount_wxyz", q)
        object.__setattr__(self, "gyro_bias_dps", bias)
        object.__setattr__(self, "accel_offset_g", offset)
        object.__setattr__(self, "accel_scale", scale)
        object.__setattr__(self, "_rotation", quaternion_to_matrix(np.asarray(q)))

    @property
    def is_identity(self) -> bool:
        """True when :meth:`apply` changes nothing."""
        return self == IDENTITY

    def apply(self, gyro_dps: npt.ArrayLike, accel_g: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Body-frame gyro (°/s) and accel (g), (n,3) each, from raw (n,3) readings."""
        gyro = np.asarray(gyro_dps, dtype=np.float64).reshape(-1, 3)
        accel = np.asarray(accel_g, dtype=np.float64).reshape(-1, 3)
        r = self._rotation
        return ((gyro - self.gyro_bias_dps) @ r,
                ((accel - self.accel_offset_g) / self.accel_scale) @ r)

    def correct_accel(self, accel_g: npt.ArrayLike) -> FloatArray:
        """Offset and scale only (sensor frame), (n,3): what the zero pose aligns."""
        accel = np.asarray(accel_g, dtype=np.float64).reshape(-1, 3)
        return (accel - self.accel_offset_g) / self.accel_scale

    # --- storage -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (lists of numbers, the bias SD a number and absent when unknown, so
        calibrations without one are written as before it existed); :meth:`from_dict` reads
        it back."""
        out: dict[str, Any] = {name: list(getattr(self, name)) for name in _VECTOR_FIELDS}
        if self.gyro_bias_sd_dps is not None:
            out["gyro_bias_sd_dps"] = self.gyro_bias_sd_dps
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ImuCalibration:
        """From :meth:`to_dict`'s form; absent keys are the identity's. Raises ValueError."""
        if not isinstance(data, Mapping):
            # a value read from a file: ValueError, which every reader turns into its format error
            raise ValueError(f"an IMU calibration must be an object, got {data!r}")  # noqa: TRY004
        unknown = set(data) - set(STREAM_FIELDS)
        if unknown:
            raise ValueError(f"unknown IMU calibration keys {sorted(unknown)}")
        fields: dict[str, Any] = {k: v if k == "gyro_bias_sd_dps" else tuple(v)
                                  for k, v in data.items()}
        return cls(**fields)

    @classmethod
    def from_stream(cls, info: Any) -> ImuCalibration:
        """The calibration a stream description carries (identity when it has none)."""
        return cls(**{name: getattr(info, name, getattr(IDENTITY, name)) for name in STREAM_FIELDS})

    def stream_fields(self) -> dict[str, Any]:
        """Keyword arguments that put this calibration on a ``StreamInfo`` (``replace``)."""
        return {name: getattr(self, name) for name in STREAM_FIELDS}


_VECTOR_FIELDS = ("mount_wxyz", "gyro_bias_dps", "accel_offset_g", "accel_scale")
#: The fields an IMU calibration has on a stream description and in JSON.
STREAM_FIELDS = (*_VECTOR_FIELDS, "gyro_bias_sd_dps")
IDENTITY = ImuCalibration()


def calibrations_of(streams: Any) -> dict[str, ImuCalibration]:
    """The non-identity calibrations the IMU streams of ``streams`` carry, by stream name."""
    out = {}
    for s in streams:
        if getattr(s, "kind", "") == "imu":
            cal = ImuCalibration.from_stream(s)
            if not cal.is_identity:
                out[s.name] = cal
    return out


# --- still poses -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StillPoseSettings:
    """What counts as still: per-axis SD limits of gyro (°/s) and accel (g) over the capture,
    the largest mean rate (°/s, bias included) and the range of the mean |accel| (g)."""

    max_gyro_sd_dps: float = 0.5
    max_gyro_mean_dps: float = 5.0
    max_accel_sd_g: float = 0.02
    accel_norm_range_g: tuple[float, float] = (0.8, 1.2)
    min_samples: int = 10


@dataclass(frozen=True)
class StillPose:
    """Mean readings of one still pose: accel (g) and gyro (°/s) in the sensor frame, and the
    gyro's per-axis sample SD over the capture (°/s; None when not known)."""

    accel_g: Vector3
    gyro_dps: Vector3
    samples: int
    gyro_sd_dps: Vector3 | None = None


def still_pose(gyro_dps: npt.ArrayLike, accel_g: npt.ArrayLike,
               settings: StillPoseSettings = StillPoseSettings()) -> StillPose:
    """Mean of a capture with the sensor lying still; :class:`CalibrationError` if it moved."""
    gyro = np.asarray(gyro_dps, dtype=np.float64).reshape(-1, 3)
    accel = np.asarray(accel_g, dtype=np.float64).reshape(-1, 3)
    if len(gyro) != len(accel):
        raise ValueError("gyro_dps and accel_g must have the same number of samples")
    if len(accel) < settings.min_samples:
        raise CalibrationError(
            f"a still pose needs at least {settings.min_samples} samples, got {len(accel)}: "
            "hold the sensor still a moment longer and capture again")
    if not (np.isfinite(gyro).all() and np.isfinite(accel).all()):
        raise ValueError("the pose capture has non-finite values; drop invalid samples first")
    g_mean, a_mean = gyro.mean(axis=0), accel.mean(axis=0)
    g_sd, a_sd = gyro.std(axis=0, ddof=1), accel.std(axis=0, ddof=1)
    norm = float(np.linalg.norm(a_mean))
    lo, hi = settings.accel_norm_range_g
    if (g_sd.max() > settings.max_gyro_sd_dps or np.abs(g_mean).max() > settings.max_gyro_mean_dps
            or a_sd.max() > settings.max_accel_sd_g or not lo <= norm <= hi):
        raise CalibrationError(
            f"the sensor was not still (gyro SD {g_sd.max():.2f} °/s, accel SD "
            f"{1000 * a_sd.max():.0f} mg, |accel| {norm:.3f} g): let it rest on the face and "
            "capture again")
    return StillPose((float(a_mean[0]), float(a_mean[1]), float(a_mean[2])),
                     (float(g_mean[0]), float(g_mean[1]), float(g_mean[2])), len(accel),
                     (float(g_sd[0]), float(g_sd[1]), float(g_sd[2])))


# --- accelerometer fit -----------------------------------------------------------------------


@dataclass(frozen=True)
class AccelFitSettings:
    """``min_poses`` still poses; every sensor axis must have pointed within
    ``min_axis_cos`` (cos 60°) of straight up and of straight down in some pose; a fitted pose
    further than ``max_residual_g`` from 1 g means a pose was not still (or the chip is bad)."""

    min_poses: int = 6
    min_axis_cos: float = 0.5
    max_residual_g: float = 0.02
    iterations: int = 20


@dataclass(frozen=True)
class AccelFit:
    """Fitted offset (g) and scale per axis, each pose's residual ``|a_cal| - 1`` (g), RMS."""

    offset_g: Vector3
    scale: Vector3
    residuals_g: tuple[float, ...]
    rms_g: float


_AXES = ("x", "y", "z")


def face_up(accel_g: npt.ArrayLike) -> str:
    """The box face a still reading lies on, named by the sensor axis pointing up (``+z up``)."""
    a = np.asarray(accel_g, dtype=np.float64).reshape(3)
    k = int(np.argmax(np.abs(a)))
    return f"{'+' if a[k] >= 0 else '-'}{_AXES[k]} up"


def missing_faces(mean_accel_g: npt.ArrayLike, min_axis_cos: float = AccelFitSettings.min_axis_cos
                  ) -> list[str]:
    """The axis directions (``-y up`` ...) no pose has pointed within acos(``min_axis_cos``)
    of straight up: what the poses still lack for a fit."""
    a = np.asarray(mean_accel_g, dtype=np.float64).reshape(-1, 3)
    directions = a / np.linalg.norm(a, axis=1, keepdims=True) if len(a) else np.zeros((1, 3))
    missing = []
    for k, axis in enumerate(_AXES):
        if directions[:, k].max() < min_axis_cos:
            missing.append(f"+{axis} up")
        if directions[:, k].min() > -min_axis_cos:
            missing.append(f"-{axis} up")
    return missing


def _check_spread(a: FloatArray, settings: AccelFitSettings) -> None:
    missing = missing_faces(a, settings.min_axis_cos)
    if missing:
        raise CalibrationError(
            f"the poses are not spread enough (none with {', '.join(missing)}): rest the sensor "
            "on each face of a box, one pose per face")


def _algebraic_fit(a: FloatArray, fit_scale: bool) -> tuple[FloatArray, FloatArray]:
    """Start values: the least-squares axis-aligned ellipsoid (or unit-free sphere) through
    the points, as the smallest right singular vector of the design matrix."""
    n = len(a)
    if fit_scale:
        design = np.hstack([a * a, a, np.ones((n, 1))])  # Σ A_k a_k² + Σ B_k a_k + D = 0
        coef = np.linalg.svd(design)[2][-1]
        quad, lin, d = coef[:3], coef[3:6], coef[6]
        if quad.max() <= 0:
            quad, lin, d = -quad, -lin, -d
        if quad.min() <= 0:
            raise CalibrationError("the poses do not fit an ellipsoid: capture the six faces again")
        offset = -lin / (2 * quad)
        g = float(quad @ (offset * offset)) - d
        if g <= 0:
            raise CalibrationError("the poses do not fit an ellipsoid: capture the six faces again")
        return offset, np.sqrt(g / quad)
    # |a|² - 1 = 2 a·o - (|o|² - 1): linear in (o, c)
    design = np.hstack([2 * a, -np.ones((n, 1))])
    sol = np.linalg.lstsq(design, np.sum(a * a, axis=1) - 1.0, rcond=None)[0]
    return sol[:3], np.ones(3)


def fit_accelerometer(mean_accel_g: npt.ArrayLike, *, fit_scale: bool = True,
                      settings: AccelFitSettings = AccelFitSettings()) -> AccelFit:
    """Accelerometer offset (and per-axis scale) from the mean readings (n,3 g) of still poses.

    Refused (:class:`CalibrationError`) with fewer than ``settings.min_poses`` poses, poses
    that leave an axis never pointing up or down, or a result that does not fit every pose.
    """
    a = np.asarray(mean_accel_g, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 3:
        raise ValueError(f"mean_accel_g must have shape (n, 3), got {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("mean_accel_g has non-finite values")
    if len(a) < settings.min_poses:
        raise CalibrationError(
            f"{len(a)} pose(s) captured, the accelerometer fit needs {settings.min_poses}: "
            "rest the sensor on each face of a box, one capture per face")
    _check_spread(a, settings)
    offset, scale = _algebraic_fit(a, fit_scale)
    for _ in range(settings.iterations):
        u = (a - offset) / scale
        norm = np.linalg.norm(u, axis=1)
        residual = norm - 1.0
        d_offset = -u / (scale * norm[:, None])
        jac = np.hstack([d_offset, d_offset * u]) if fit_scale else d_offset
        step = np.linalg.lstsq(jac, -residual, rcond=None)[0]
        offset = offset + step[:3]
        if fit_scale:
            scale = scale + step[3:]
        if float(np.abs(step).max()) < 1e-10:
            break
    residual = np.linalg.norm((a - offset) / scale, axis=1) - 1.0
    worst = int(np.argmax(np.abs(residual)))
    if abs(residual[worst]) > settings.max_residual_g:
        raise CalibrationError(
            f"pose {worst + 1} is {1000 * residual[worst]:+.0f} mg off the fit: it was probably "
            "not still; capture the poses again")
    if np.abs(offset).max() > MAX_ACCEL_OFFSET_G or not (
            ACCEL_SCALE_RANGE[0] <= scale.min() and scale.max() <= ACCEL_SCALE_RANGE[1]):
        raise CalibrationError(
            f"the fit gives offset {np.round(offset, 3).tolist()} g, scale "
            f"{np.round(scale, 3).tolist()}: outside any working accelerometer; check the chip")
    return AccelFit(
        (float(offset[0]), float(offset[1]), float(offset[2])),
        (float(scale[0]), float(scale[1]), float(scale[2])),
        tuple(float(r) for r in residual), float(np.sqrt(np.mean(residual**2))))


# --- zero pose -------------------------------------------------------------------------------


def zero_pose_alignment(mean_accel_g: npt.ArrayLike, accel: ImuCalibration = IDENTITY
                        ) -> tuple[float, float, float, float]:
    """Mounting quaternion (body -> sensor) from the mean raw accel (g) of the upright zero pose.

    The reading is corrected with ``accel``'s offset and scale first; the body's up axis
    (:data:`BODY_UP`) is then turned onto the measured up by the smallest rotation, which fixes
    the mounting tilt (as :func:`~spinecoach.core.calibration.mounting_alignment` with the zero
    pose alone).
    """
    up = accel.correct_accel(mean_accel_g)[0]
    norm = float(np.linalg.norm(up))
    if not (math.isfinite(norm) and norm > 0.5):
        raise CalibrationError(
            f"the zero pose reads {norm:.2f} g: stand still upright and capture it again")
    q = _smallest_rotation(np.asarray(BODY_UP), up / norm)
    return (float(q[0]), float(q[1]), float(q[2]), float(q[3]))


def with_accelerometer(calibration: ImuCalibration, fit: AccelFit) -> ImuCalibration:
    """``calibration`` with the accelerometer part of ``fit``."""
    return replace(calibration, accel_offset_g=fit.offset_g, accel_scale=fit.scale)


# --- gyro bias from the box poses ------------------------------------------------------------


def box_gyro_bias(poses: Sequence[StillPose]) -> tuple[Vector3, float]:
    """The gyro bias (°/s) of still poses of the sensor alone (a box, no athlete) and its SD.

    The bias is the mean of the poses' mean rates. Its SD (°/s, the worst axis) is the larger
    of two standard errors of that mean: from the samples' own scatter (white noise,
    ``gyro_sd_dps / √samples`` per pose) and from the scatter of the pose means about each
    other (which also holds what is not white: the chip's own low-pass correlating samples,
    drift during the capture, the gyro's sensitivity to gravity in different orientations).
    A zero pose has no such figure: the athlete's sway is in its mean rate.
    """
    if len(poses) < 2:
        raise ValueError(f"a gyro bias with its SD needs at least 2 still poses, got {len(poses)}")
    means = np.array([p.gyro_dps for p in poses], dtype=np.float64)
    bias = means.mean(axis=0)
    count = len(poses)
    between = means.std(axis=0, ddof=1) / math.sqrt(count)
    sds = [p.gyro_sd_dps for p in poses]
    if all(sd is not None for sd in sds):
        variance = np.sum([np.square(np.asarray(sd)) / p.samples for sd, p in zip(sds, poses)],
                          axis=0)
        within = np.sqrt(variance) / count
    else:
        within = np.zeros(3)
    sd = float(np.maximum(between, within).max())
    return (float(bias[0]), float(bias[1]), float(bias[2])), sd
