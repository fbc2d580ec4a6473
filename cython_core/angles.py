"""Angles derived from orientation quaternions and gyroscope data (vectorised numpy).

Quaternions are [w, x, y, z] rotating sensor-frame vectors into an earth frame with z up and an
arbitrary heading (what :class:`~spinecoach.core.orientation.OrientationFilter` returns). Every
angle here is heading-independent: it only uses the earth-up direction seen from the sensor.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def _as_quaternions(q: npt.ArrayLike, name: str = "q") -> npt.NDArray[np.float64]:
    arr = np.asarray(q, dtype=np.float64)
    if arr.ndim == 1 and arr.shape == (4,):
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{name} must have shape (n, 4) [w, x, y, z], got {arr.shape}")
    return arr


def _as_axis(axis: npt.ArrayLike, name: str) -> npt.NDArray[np.float64]:
    arr = np.asarray(axis, dtype=np.float64)
    if arr.shape != (3,):
        raise ValueError(f"{name} must be a 3-vector in the sensor frame, got shape {arr.shape}")
    norm = float(np.linalg.norm(arr))
    if not np.isfinite(norm) or norm == 0.0:
        raise ValueError(f"{name} must be a finite non-zero vector, got {arr.tolist()}")
    return arr / norm


def up_in_sensor(q: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Earth-up [0, 0, 1] expressed in the sensor frame, (n, 3) unit vectors (Rᵀ·ẑ)."""
    quat = _as_quaternions(q)
    w, x, y, z = quat.T
    norm2 = w * w + x * x + y * y + z * z
    return np.stack(
        [2.0 * (x * z - w * y), 2.0 * (y * z + w * x), w * w - x * x - y * y + z * z], axis=1
    ) / norm2[:, None]


def inclination_deg(
    q: npt.ArrayLike, axis_sensor: npt.ArrayLike = (0.0, 0.0, 1.0)
) -> npt.NDArray[np.float64]:
    """Angle (°, 0..180) between the sensor axis ``axis_sensor`` and vertical, per quaternion."""
    axis = _as_axis(axis_sensor, "axis_sensor")
    cos_angle = np.clip(up_in_sensor(q) @ axis, -1.0, 1.0)
    return np.degrees(np.arccos(cos_angle))


def primary_angle_deg(
    q: npt.ArrayLike, axis_sensor: npt.ArrayLike, zero_q: npt.ArrayLike | None = None
) -> npt.NDArray[np.float64]:
    """Signed rotation (°) about the working axis ``axis_sensor`` (sensor frame), unwrapped.

    The earth-up direction seen from the sensor is projected onto the plane perpendicular to the
    axis; its angle relative to the same projection at the zero pose ``zero_q`` (default: the
    first sample) is the primary angle. A right-hand rotation of the sensor about +axis turns the
    up direction the other way in the sensor frame, hence the minus sign: trunk flexion (a
    positive rotation about sensor +y) reads positive. Heading does not enter. When the axis
    itself is vertical the angle is undefined; the projection is then near zero and the result
    is not meaningful.
    """
    axis = _as_axis(axis_sensor, "axis_sensor")
    up = up_in_sensor(q)
    if up.shape[0] == 0:
        return np.zeros(0, dtype=np.float64)
    up0 = up_in_sensor(zero_q)[0] if zero_q is not None else up[0]
    ref = up0 - axis * float(up0 @ axis)
    ref_norm = float(np.linalg.norm(ref))
    if ref_norm < 1e-9:
        raise ValueError(
            "the working axis is vertical at the zero pose, so no rotation about it can be "
            "measured; choose a horizontal working axis or another zero pose"
        )
    ref /= ref_norm
    ortho = np.cross(axis, ref)
    # Coordinates of the projected up direction in the plane basis (ref, axis × ref).
    angle = np.arctan2(up @ ortho, up @ ref)
    return -np.degrees(np.unwrap(angle))


def largest_excursion_axis(
    gyro_dps: npt.ArrayLike, valid: npt.ArrayLike | None = None
) -> npt.NDArray[np.float64]:
    """Unit sensor-frame axis of the largest angular excursion in a gyroscope recording.

    The rate is integrated to a rotation-vector path (small-angle sum, scale-free so no sample
    rate is needed), its linear trend removed (gyro bias) and the principal direction of the
    path taken (largest eigenvector of its covariance). The sign makes the largest component
    positive, so a hinge about sensor +y gives +y and flexion reads positive.
    """
    gyro = np.asarray(gyro_dps, dtype=np.float64)
    if gyro.ndim != 2 or gyro.shape[1] != 3:
        raise ValueError(f"gyro_dps must have shape (n, 3), got {gyro.shape}")
    if valid is not None:
        mask = np.asarray(valid, dtype=bool)
        if mask.shape != (gyro.shape[0],):
            raise ValueError(f"valid must have shape ({gyro.shape[0]},), got {mask.shape}")
        gyro = gyro[mask]
    gyro = gyro[np.isfinite(gyro).all(axis=1)]
    if gyro.shape[0] < 3:
        raise ValueError("largest_excursion_axis needs at least 3 valid gyroscope samples")
    path = np.cumsum(gyro, axis=0)
    index = np.arange(path.shape[0], dtype=np.float64)
    design = np.stack([np.ones_like(index), index], axis=1)
    trend, *_ = np.linalg.lstsq(design, path, rcond=None)
    path -= design @ trend
    _, vectors = np.linalg.eigh(path.T @ path)
    axis = vectors[:, -1]
    if axis[np.argmax(np.abs(axis))] < 0:
        axis = -axis
    return axis / np.linalg.norm(axis)


def lumbar_angle_deg(trunk_deg: npt.ArrayLike, pelvis_deg: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Relative lumbar angle (°): trunk primary angle − pelvis primary angle, sample by sample."""
    trunk = np.asarray(trunk_deg, dtype=np.float64)
    pelvis = np.asarray(pelvis_deg, dtype=np.float64)
    if trunk.shape != pelvis.shape:
        raise ValueError(
            f"trunk and pelvis angles must be sampled alike (same shape), got {trunk.shape} "
            f"and {pelvis.shape}; resample the pelvis stream onto the trunk's sample times"
        )
    return trunk - pelvis


def quaternion_multiply(a: npt.ArrayLike, b: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Hamilton product a ⊗ b of (n, 4) [w, x, y, z] arrays (either may be a single (4,))."""
    w1, x1, y1, z1 = np.moveaxis(np.asarray(a, dtype=np.float64), -1, 0)
    w2, x2, y2, z2 = np.moveaxis(np.asarray(b, dtype=np.float64), -1, 0)
    return np.stack(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ],
        axis=-1,
    )


def quaternion_conjugate(q: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Conjugate (the inverse of a unit quaternion) of [w, x, y, z] quaternions."""
    return np.asarray(q, dtype=np.float64) * np.array([1.0, -1.0, -1.0, -1.0])


def heading_free_error_deg(q_est: npt.ArrayLike, q_ref: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Inclination error (°) between two sensor-to-earth estimates, ignoring heading.

    The BROAD benchmark's measure (Laidig et al., Data 6(7):72, 2021): with
    q_err = q_est ⊗ q_ref⁻¹ (a rotation between the two earth frames), the error is
    2·acos(√(w² + z²)) — the part of q_err that is not a rotation about vertical.
    """
    est = _as_quaternions(q_est, "q_est")
    ref = _as_quaternions(q_ref, "q_ref")
    if est.shape != ref.shape:
        raise ValueError(f"q_est and q_ref must have the same shape, got {est.shape} and {ref.shape}")
    err = quaternion_multiply(est, quaternion_conjugate(ref))
    norm2 = np.sum(err * err, axis=1)
    cos_half = np.sqrt(np.clip((err[:, 0] ** 2 + err[:, 3] ** 2) / norm2, 0.0, 1.0))
    return np.degrees(2.0 * np.arccos(cos_half))


def quaternion_from_matrix(matrix: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Unit quaternion [w, x, y, z] (w >= 0) of a 3×3 rotation matrix (Shepperd's method).

    The largest of w², x², y², z² is taken from the trace terms so the division below never
    loses precision.
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (3, 3):
        raise ValueError(f"matrix must be 3×3, got {m.shape}")
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    candidates = [trace, m[0, 0], m[1, 1], m[2, 2]]
    k = int(np.argmax(candidates))
    if k == 0:
        s = 2.0 * np.sqrt(1.0 + trace)
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif k == 1:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif k == 2:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    quat = np.asarray(q, dtype=np.float64)
    quat /= np.linalg.norm(quat)
    return quat if quat[0] >= 0 else -quat


def quaternion_to_matrix(q: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """3×3 rotation matrix of one unit quaternion [w, x, y, z] (v_out = R · v_in)."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )
