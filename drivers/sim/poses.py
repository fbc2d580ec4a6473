"""The simulated IMU put through still poses, and mounted tilted on its segment.

:func:`still_poses` takes a rig's IMU off its segment and rests it on the faces of a box, one
after the other (what a physiotherapist does for the accelerometer calibration): a short
minimum-jerk turn, then a still hold, per pose. The chip is the same one: the pose signal uses
the rig's seed, span, rate and error model for that placement, so its gyro bias and its
accelerometer offset are exactly those the chip has in the rig's scenario, and a fit on the
poses can be checked against them and applied to that scenario.

:class:`MountedMotion` is a segment's motion seen by a sensor strapped on at a tilt (the
mounting error the zero pose calibrates away).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
from spinecoach.drivers.sim.motion import Script
from spinecoach.drivers.sim.rig import (
    BodyMotion,
    FloatArray,
    ImuMount,
    ImuSignal,
    Rig,
    _rotation_zxy,
)

#: The six faces of a box as (flexion θ, lean λ) of the rig's orientation convention
#: (``R = Rz(ψ) Rx(λ) Ry(θ − 90°)``), named by the sensor axis that points up.
FACE_POSES: dict[str, tuple[float, float]] = {
    "+x up": (0.0, 0.0),
    "+z up": (90.0, 0.0),
    "-x up": (180.0, 0.0),
    "-z up": (-90.0, 0.0),
    "+y up": (0.0, 90.0),
    "-y up": (0.0, -90.0),
}
#: How long a pose is held still and how long the turn to it takes (s).
HOLD_S = 1.5
TURN_S = 0.6


@dataclass(frozen=True)
class PoseSession:
    """A chip going through still poses: its signal and when each pose is still (s)."""

    signal: ImuSignal
    rate_hz: float
    names: tuple[str, ...]
    still_s: tuple[tuple[float, float], ...]

    @property
    def duration_s(self) -> float:
        return self.still_s[-1][1] if self.still_s else 0.0

    def capture(self, pose: int) -> tuple[FloatArray, FloatArray]:
        """Gyro (°/s) and accel (g), (n,3) each, of the still part of pose ``pose``, sampled
        on the chip's clock ``k / rate_hz``."""
        start, end = self.still_s[pose]
        k = np.arange(np.ceil(start * self.rate_hz), np.floor(end * self.rate_hz))
        return self.signal(k / self.rate_hz)


def still_poses(rig: Rig, placement: str, poses: Sequence[str | tuple[float, float]] = tuple(FACE_POSES),
                *, hold_s: float = HOLD_S, turn_s: float = TURN_S, start_s: float = 0.5) -> PoseSession:
    """The IMU at ``placement`` of ``rig`` resting in ``poses`` one after the other.

    A pose is a :data:`FACE_POSES` name or a (flexion°, lean°) pair. Each pose begins with a
    turn of ``turn_s`` and is then still for ``hold_s``; the first is still from ``start_s``.
    """
    angles = [FACE_POSES[p] if isinstance(p, str) else (float(p[0]), float(p[1])) for p in poses]
    names = tuple(p if isinstance(p, str) else f"flexion {p[0]:g}°, lean {p[1]:g}°" for p in poses)
    if not angles:
        raise ValueError("give at least one pose")
    flexion = Script(angles[0][0]).pause(start_s)
    lean = Script(angles[0][1]).pause(start_s)
    still = [(start_s, start_s + hold_s)]
    flexion.hold(hold_s)
    lean.hold(hold_s)
    for theta, lam in angles[1:]:
        flexion.move(theta, turn_s).hold(hold_s)
        lean.move(lam, turn_s).hold(hold_s)
        still.append((flexion.end_s - hold_s, flexion.end_s))
    mount = rig.imus[placement]
    # A box on a table: the sensor turns about itself, no lever arm.
    motion = BodyMotion(flexion, lean, lever_m=(0.0, 0.0, 0.0))
    box = Rig(seed=rig.seed, span_s=rig.span_s,
              imus={placement: ImuMount(motion, mount.rate_hz, mount.errors)})
    return PoseSession(box.imu_signal(placement), mount.rate_hz, names, tuple(still))


@dataclass(frozen=True)
class MountedMotion(BodyMotion):
    """A :class:`BodyMotion` measured by a sensor strapped on tilted: ``mount_deg`` = (pitch
    about the segment's y, roll about its x, yaw about its z) in degrees, applied as
    ``Rz(yaw) Rx(roll) Ry(pitch)`` (segment -> sensor axes)."""

    mount_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @classmethod
    def tilted(cls, motion: BodyMotion, mount_deg: tuple[float, float, float]) -> MountedMotion:
        base = {f.name: getattr(motion, f.name) for f in fields(BodyMotion)}
        return cls(**base, mount_deg=mount_deg)

    def mount_matrix(self) -> FloatArray:
        """Rotation (3,3) taking segment-frame vectors into the sensor frame."""
        pitch, roll, yaw = (np.radians(np.array([v])) for v in self.mount_deg)
        return _rotation_zxy(yaw, roll, pitch)[:, :, 0]

    def ideal_imu(self, t_s: FloatArray) -> tuple[FloatArray, FloatArray]:
        gyro, accel = super().ideal_imu(t_s)
        to_sensor = self.mount_matrix().T  # row vectors: v_s = v_b @ Mᵀ
        return np.ascontiguousarray(gyro @ to_sensor), np.ascontiguousarray(accel @ to_sensor)


def tilted_rig(rig: Rig, placement: str, mount_deg: tuple[float, float, float]) -> Rig:
    """``rig`` with the IMU at ``placement`` strapped on at ``mount_deg`` (same chip errors)."""
    imus = dict(rig.imus)
    mount = imus[placement]
    imus[placement] = ImuMount(MountedMotion.tilted(mount.motion, mount_deg), mount.rate_hz,
                               mount.errors)
    return Rig(rig.seed, rig.span_s, imus, rig.force, rig.force_rate_hz, rig.load_cell_errors)
