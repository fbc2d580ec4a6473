"""The rig model: the physical signals the chip simulators sample.

A :class:`BodyMotion` is the orientation and position of one rigid segment (trunk, pelvis or
implement) over time, built from movement scripts (:mod:`spinecoach.drivers.sim.motion`).
From it the rig computes, analytically, what an IMU strapped to the segment measures:

- gyro (°/s): the angular velocity in the sensor's own axes;
- accel (g): the specific force in the sensor's own axes, i.e. gravity rotated into the sensor
  frame plus the linear acceleration of the sensor point, which sits at a lever arm from the
  segment's pivot (the hips for a hinge: ~0.45 m up the spine), so a fast hinge or throw shows
  the tangential and centripetal terms real data show.

Frames (common convention of the project): earth x = the athlete's forward when standing at
heading 0, y = left, z = up. Sensor (trunk) x = up the spine, y = left, z = posterior. The
orientation is ``R = Rz(ψ) · Rx(λ) · Ry(θ − 90°)`` (sensor → earth): ``θ`` is the primary angle
(trunk flexion about sensor +y, 0 = upright), ``λ`` a lateral lean about the earth's forward
axis (positive = toward the athlete's right), ``ψ`` the heading about vertical (positive =
turning to the left, counter-clockwise seen from above). At ``θ = λ = ψ = 0`` the sensor x axis
is vertical, so the accelerometer reads +1 g on x.

Sensor imperfections are added on top: white noise with a datasheet-like density, a constant
bias plus a slow random walk (gyro), a constant offset (accel); for the load cell white noise,
a slow drift, first-order creep under sustained load and optional single-sample spikes.
Every random quantity is a deterministic function of the seed and of the sample *time*, never
of how the times are chunked: white noise is hashed from the time in microseconds
(counter-based, SplitMix64), slow processes are pre-computed on a fixed grid spanning the
scenario and linearly interpolated. Calling a signal on ``t`` split in chunks therefore returns
exactly the same bits as one call.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt
from spinecoach.drivers.sim.motion import Channel, Constant, Derivatives

FloatArray = npt.NDArray[np.float64]

#: Standard gravity (m/s²) used to express specific force in g.
G0_MPS2 = 9.80665

_DEG = np.pi / 180.0
#: The channel that stays at 0 (immutable, so one instance serves every default).
ZERO = Constant(0.0)


# ------------------------------------------------------------------------------------------------
# Counter-based noise
# ------------------------------------------------------------------------------------------------
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
#: Noise is keyed on the sample time rounded to this tick (s): sample clocks computed slightly
#: differently by different consumers (t0 + i/rate vs. a running sum) still get the same noise.
NOISE_TICK_S = 1e-6


def _splitmix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """SplitMix64 finaliser (Steele, Lea & Flood 2014): a bijective 64-bit mixer."""
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def stream_key(seed: int, *names: str) -> int:
    """A 64-bit key for one noise channel, derived from the seed and stable names."""
    codes = [zlib.crc32(name.encode()) for name in names]
    state = np.random.SeedSequence([int(seed), *codes]).generate_state(1, np.uint64)
    return int(state[0])


def gaussian_at(t_s: FloatArray, key: int | Sequence[int]) -> FloatArray:
    """Standard-normal noise that is a pure function of (``key``, sample time).

    Two hashed 64-bit words per time tick feed a Box-Muller transform; distinct ticks give
    independent values (to the quality of SplitMix64), equal ticks equal values. With a
    sequence of keys the result is (len(keys), n): one independent channel per key.
    """
    ticks = np.rint(np.asarray(t_s, dtype=np.float64) / NOISE_TICK_S).astype(np.int64)
    keys = np.asarray(key, dtype=np.uint64)
    words = ticks.view(np.uint64) ^ (keys[:, None] if keys.ndim else keys)
    with np.errstate(over="ignore"):
        a = _splitmix64(words)
        b = _splitmix64(a ^ _GOLDEN)
    u1 = ((a >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53
    u2 = (b >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


@dataclass(frozen=True)
class SlowProcess:
    """A random walk (plus linear trend) pre-computed on a grid, read by interpolation.

    ``values`` at ``t0_s + k * step_s``; outside the grid the end values hold.
    """

    t0_s: float
    step_s: float
    values: FloatArray
    _grid: FloatArray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        grid = self.t0_s + self.step_s * np.arange(self.values.size, dtype=np.float64)
        object.__setattr__(self, "_grid", grid)

    @classmethod
    def random_walk(
        cls,
        rng: np.random.Generator,
        span_s: float,
        walk_per_rts: float,
        start: float = 0.0,
        trend_per_s: float = 0.0,
        step_s: float = 0.25,
    ) -> SlowProcess:
        """A walk with increments N(0, walk²·step) (``walk_per_rts`` in unit/√s)."""
        n = int(np.ceil(span_s / step_s)) + 2
        steps = rng.standard_normal(n - 1) * walk_per_rts * np.sqrt(step_s)
        values = start + np.concatenate(([0.0], np.cumsum(steps)))
        values += trend_per_s * step_s * np.arange(n)
        return cls(0.0, step_s, values)

    def __call__(self, t_s: FloatArray) -> FloatArray:
        return np.interp(np.asarray(t_s, dtype=np.float64), self._grid, self.values)


# ------------------------------------------------------------------------------------------------
# Rigid-body kinematics
# ------------------------------------------------------------------------------------------------
# Rotations are held component-major: a (3, 3, n) array whose [i, j] row is one contiguous
# array, vectors as (3, n). Every element's arithmetic is written out, so its result never
# depends on how many samples are evaluated together, and numpy streams contiguous memory.
def _apply_transposed(m: FloatArray, v: FloatArray) -> FloatArray:
    """(3,3,n)ᵀ @ (3,n) -> (3,n): earth-frame vectors into the sensor frame."""
    return np.stack([m[0, i] * v[0] + m[1, i] * v[1] + m[2, i] * v[2] for i in range(3)])


def _cross(a: FloatArray, b: FloatArray) -> FloatArray:
    """Cross product of (3,n) vectors."""
    return np.stack(
        [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
    )


def _lever_in_earth(rotation: FloatArray, lever_m: Sequence[float]) -> FloatArray:
    """A segment-frame lever (m) rotated into the earth frame, (3,n)."""
    lever = [float(v) for v in lever_m]
    return np.stack(
        [
            rotation[i, 0] * lever[0] + rotation[i, 1] * lever[1] + rotation[i, 2] * lever[2]
            for i in range(3)
        ]
    )


def _rotation_zxy(psi: FloatArray, lam: FloatArray, phi: FloatArray) -> FloatArray:
    """``Rz(ψ) Rx(λ) Ry(φ)`` (rad) as a (3,3,n) array, multiplied out by hand."""
    cps, sps = np.cos(psi), np.sin(psi)
    cla, sla = np.cos(lam), np.sin(lam)
    cph, sph = np.cos(phi), np.sin(phi)
    # Rx(λ) Ry(φ) = [[cφ, 0, sφ], [sλ sφ, cλ, −sλ cφ], [−cλ sφ, sλ, cλ cφ]]
    r10, r11, r12 = sla * sph, cla, -sla * cph
    zero = np.zeros_like(psi)
    return np.array(
        [
            [cps * cph - sps * r10, -sps * r11, cps * sph - sps * r12],
            [sps * cph + cps * r10, cps * r11, sps * sph + cps * r12],
            [-cla * sph, sla + zero, cla * cph],
        ]
    )


def _quat_multiply(p: FloatArray, q: FloatArray) -> FloatArray:
    """Hamilton product of (n,4) quaternions (w, x, y, z)."""
    pw, px, py, pz = p[..., 0], p[..., 1], p[..., 2], p[..., 3]
    qw, qx, qy, qz = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return np.stack(
        [
            pw * qw - px * qx - py * qy - pz * qz,
            pw * qx + px * qw + py * qz - pz * qy,
            pw * qy - px * qz + py * qw + pz * qx,
            pw * qz + px * qy - py * qx + pz * qw,
        ],
        axis=-1,
    )


def _axis_quaternion(angle: FloatArray, axis: int) -> FloatArray:
    half = 0.5 * angle
    q = np.zeros(angle.shape + (4,), dtype=np.float64)
    q[..., 0] = np.cos(half)
    q[..., 1 + axis] = np.sin(half)
    return q


#: θ, λ, ψ with their derivatives.
_Angles = tuple[Derivatives, Derivatives, Derivatives]


@dataclass(frozen=True)
class Kinematics:
    """Motion of a segment's sensor point at sample times (earth frame unless noted).

    ``rotation`` (n,3,3) sensor → earth; ``omega_rad_s``/``alpha_rad_s2`` angular velocity and
    acceleration; ``position_m``/``accel_m_s2`` of the sensor point.
    """

    rotation: FloatArray
    omega_rad_s: FloatArray
    alpha_rad_s2: FloatArray
    position_m: FloatArray
    accel_m_s2: FloatArray


@dataclass(frozen=True)
class BodyMotion:
    """Orientation and pivot position of one rigid segment over time.

    ``flexion_deg`` θ (primary angle, about sensor +y), ``lean_deg`` λ (about the earth's
    forward axis, positive toward the athlete's right), ``heading_deg`` ψ (about vertical,
    positive to the left). ``pivot_m``: earth-frame position of the pivot (x, y, z channels in
    metres). ``lever_m``: the sensor's position relative to the pivot in segment axes (m).
    """

    flexion_deg: Channel
    lean_deg: Channel = ZERO
    heading_deg: Channel = ZERO
    pivot_m: tuple[Channel, Channel, Channel] = (ZERO, ZERO, ZERO)
    lever_m: tuple[float, float, float] = (0.45, 0.0, 0.10)

    def angles(self, t_s: FloatArray) -> _Angles:
        """θ, λ, ψ with derivatives (deg, °/s, °/s²)."""
        return (
            self.flexion_deg.evaluate(t_s),
            self.lean_deg.evaluate(t_s),
            self.heading_deg.evaluate(t_s),
        )

    def primary_angle_deg(self, t_s: FloatArray) -> FloatArray:
        """The true primary angle θ (deg) at ``t_s``."""
        return self.flexion_deg.evaluate(np.asarray(t_s, dtype=np.float64)).value

    def rotation(self, t_s: FloatArray) -> FloatArray:
        """Sensor → earth rotation matrices (n,3,3)."""
        return np.moveaxis(self._rotation(np.asarray(t_s, dtype=np.float64)), -1, 0)

    def _rotation(self, t: FloatArray, angles: _Angles | None = None) -> FloatArray:
        theta, lean, heading = self.angles(t) if angles is None else angles
        return _rotation_zxy(heading.value * _DEG, lean.value * _DEG, (theta.value - 90.0) * _DEG)

    def quaternion(self, t_s: FloatArray) -> FloatArray:
        """Sensor → earth orientation quaternions (n,4) as (w, x, y, z), w >= 0."""
        theta, lean, heading = self.angles(np.asarray(t_s, dtype=np.float64))
        q = _quat_multiply(
            _quat_multiply(
                _axis_quaternion(heading.value * _DEG, 2), _axis_quaternion(lean.value * _DEG, 0)
            ),
            _axis_quaternion((theta.value - 90.0) * _DEG, 1),
        )
        return np.where(q[..., :1] < 0, -q, q)

    def earth_angular_velocity(self, t_s: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Angular velocity (rad/s) and acceleration (rad/s²) in the earth frame, (n,3) each."""
        omega, alpha = self._angular(np.asarray(t_s, dtype=np.float64))
        return omega.T, alpha.T

    def _angular(
        self, t: FloatArray, angles: _Angles | None = None
    ) -> tuple[FloatArray, FloatArray]:
        # ω = ψ' ẑ + λ' Rz(ψ) x̂ + θ' Rz(ψ) Rx(λ) ŷ and its time derivative, written out (3,n).
        theta, lean, heading = self.angles(t) if angles is None else angles
        psi = heading.value * _DEG
        lam = lean.value * _DEG
        dth, ddth = theta.rate * _DEG, theta.accel * _DEG
        dla, ddla = lean.rate * _DEG, lean.accel * _DEG
        dps, ddps = heading.rate * _DEG, heading.accel * _DEG
        cps, sps, cla, sla = np.cos(psi), np.sin(psi), np.cos(lam), np.sin(lam)
        omega = np.stack(
            [dla * cps - dth * sps * cla, dla * sps + dth * cps * cla, dps + dth * sla]
        )
        alpha = np.stack(
            [
                ddla * cps
                - dla * dps * sps
                - ddth * sps * cla
                - dth * dps * cps * cla
                + dth * dla * sps * sla,
                ddla * sps
                + dla * dps * cps
                + ddth * cps * cla
                - dth * dps * sps * cla
                - dth * dla * cps * sla,
                ddps + ddth * sla + dth * dla * cla,
            ]
        )
        return omega, alpha

    def point_kinematics(
        self, t_s: FloatArray, lever_m: Sequence[float] | None = None
    ) -> Kinematics:
        """Kinematics of the point at ``lever_m`` (segment axes; default the sensor)."""
        k = self._point(np.asarray(t_s, dtype=np.float64), lever_m)
        return Kinematics(
            np.moveaxis(k.rotation, -1, 0),
            k.omega_rad_s.T,
            k.alpha_rad_s2.T,
            k.position_m.T,
            k.accel_m_s2.T,
        )

    def point_position_m(self, t_s: FloatArray, lever_m: Sequence[float]) -> FloatArray:
        """Earth-frame position (m, n×3) of the point at ``lever_m`` (segment axes)."""
        t = np.asarray(t_s, dtype=np.float64)
        r = _lever_in_earth(self._rotation(t), lever_m)
        pivot = np.stack([c.evaluate(t).value for c in self.pivot_m])
        return np.ascontiguousarray((pivot + r).T)

    def _point(self, t: FloatArray, lever_m: Sequence[float] | None) -> Kinematics:
        angles = self.angles(t)  # evaluated once: the sway sines dominate the cost
        rotation = self._rotation(t, angles)
        omega, alpha = self._angular(t, angles)
        r = _lever_in_earth(rotation, self.lever_m if lever_m is None else lever_m)
        pivot = [c.evaluate(t) for c in self.pivot_m]
        pivot_pos = np.stack([p.value for p in pivot])
        pivot_acc = np.stack([p.accel for p in pivot])
        accel = pivot_acc + _cross(alpha, r) + _cross(omega, _cross(omega, r))
        return Kinematics(rotation, omega, alpha, pivot_pos + r, accel)

    def ideal_imu(self, t_s: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Error-free gyro (°/s) and specific force (g) in sensor axes, (n,3) each."""
        k = self._point(np.asarray(t_s, dtype=np.float64), None)
        gyro_dps = _apply_transposed(k.rotation, k.omega_rad_s) / _DEG
        specific = k.accel_m_s2 / G0_MPS2
        specific[2] += 1.0
        accel_g = _apply_transposed(k.rotation, specific)
        return np.ascontiguousarray(gyro_dps.T), np.ascontiguousarray(accel_g.T)


# ------------------------------------------------------------------------------------------------
# Look-ahead cache
# ------------------------------------------------------------------------------------------------
#: Long requests are evaluated in blocks of this many samples: the temporaries then stay in
#: the CPU cache (about twice as fast for ten minutes at 1 kHz) and the result is unchanged,
#: every signal being element-wise in time.
EVALUATION_BLOCK = 8192


def _blocks(t: FloatArray) -> list[FloatArray]:
    return [t[i : i + EVALUATION_BLOCK] for i in range(0, t.size, EVALUATION_BLOCK)]


class SampleClockCache:
    """Serves small requests from a block of samples computed ahead, bit for bit.

    The chip simulators ask for a few samples at a time (one FIFO drain, one conversion);
    evaluating the rig costs ~0.5 ms per call whatever the size, so a sample clock at 1 kHz
    would be dominated by call overhead. When the requested times are exactly
    ``anchor + k / rate`` (or ``anchor + k * (1 / rate)``) for integers ``k``, a plausible
    rate and an anchor the cache can infer (0, the first requested time, or the anchor found
    before), it computes the next ``block`` samples of that clock in one go and answers later
    requests by exact float equality; requested times that are not on the block are computed
    directly. Every signal here is an element-wise function of time, so a value from the
    cache is identical to a direct evaluation whatever happens.
    """

    def __init__(
        self,
        compute: Callable[[FloatArray], tuple[FloatArray, ...]],
        nominal_rate_hz: float,
        block: int = 4096,
    ) -> None:
        self._compute = compute
        self._rates = [float(nominal_rate_hz)]
        self._anchors = [0.0]
        self._block = block
        self._times: FloatArray | None = None
        self._values: tuple[FloatArray, ...] = ()
        self._next = 0
        self.hits = 0
        self.misses = 0

    def __call__(self, t: FloatArray) -> tuple[FloatArray, ...]:
        if t.size == 0:
            return self._compute(t)
        found = self._from_block(t)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        grid = self._clock_grid(t)
        if grid is None:
            return self._compute(t)
        self._times = grid
        self._values = self._compute(grid)
        self._next = 0
        found = self._from_block(t)
        # The grid reproduces every requested time exactly, so this always finds them.
        return found if found is not None else self._compute(t)

    def _from_block(self, t: FloatArray) -> tuple[FloatArray, ...] | None:
        times = self._times
        if times is None:
            return None
        # Usual case: the request continues the clock where the previous one ended.
        start = self._next
        stop = start + t.size
        if stop <= times.size and np.array_equal(times[start:stop], t):
            self._next = stop
            return tuple(values[start:stop].copy() for values in self._values)
        index = np.minimum(np.searchsorted(times, t), times.size - 1)
        on_block = times[index] == t
        if not on_block.any() or (not on_block[-1] and t.max() > times[-1]):
            return None  # another clock, or the clock has run past the block: rebuild it
        self._next = int(index[-1]) + 1
        found = tuple(values[index] for values in self._values)
        if not on_block.all():
            direct = self._compute(t[~on_block])
            for out, values in zip(found, direct, strict=True):
                out[~on_block] = values
        return found

    def _candidate_rates(self, t: FloatArray) -> list[float]:
        rates = list(self._rates)
        if t.size >= 2 and t[-1] > t[0]:
            estimate = (t.size - 1) / (t[-1] - t[0])
            rates.append(float(np.round(estimate)))
            # Divided-down output data rates (MPU-6050: 1 or 8 kHz / (1 + divider)).
            for base in (1000.0, 8000.0):
                divider = float(np.round(base / estimate))
                if divider >= 1.0:
                    rates.append(base / divider)
        return [r for r in dict.fromkeys(rates) if r > 0]

    def _clock_grid(self, t: FloatArray) -> FloatArray | None:
        anchors = list(dict.fromkeys([*self._anchors, float(t[0])]))
        for rate in self._candidate_rates(t):
            period = 1.0 / rate
            for anchor in anchors:
                k = np.rint((t - anchor) * rate)
                for make in (
                    lambda n, a=anchor, r=rate: a + n / r,
                    lambda n, a=anchor, p=period: a + n * p,
                ):
                    if not np.array_equal(make(k), t):
                        continue
                    first, last = float(k.min()), float(k.max())
                    if last - first >= 4 * max(self._block, t.size):
                        return None  # sparse times: a grid over them all would be wasteful
                    # Try the clock that matched first next time (single-sample requests).
                    self._rates = [rate] + [r for r in self._rates if r != rate][:3]
                    self._anchors = [anchor] + [a for a in self._anchors if a != anchor][:3]
                    last = max(last, first + self._block - 1)
                    return make(np.arange(first, last + 1.0))
        return None


# ------------------------------------------------------------------------------------------------
# IMU errors
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImuErrorModel:
    """Datasheet-like IMU imperfections (defaults: InvenSense MPU-6000/6050 PS-MPU-6000A-00
    rev 3.4, §6.1-6.2: rate noise spectral density 0.005 °/s/√Hz, accel noise PSD 400 µg/√Hz).

    White noise SD per sample = density · √(rate/2) (noise up to Nyquist at the nominal rate).
    Gyro bias: constant N(0, ``gyro_bias_sd_dps``) per axis plus a random walk of
    ``gyro_bias_walk_dps_rts`` °/s/√s. Accel: constant offset N(0, ``accel_bias_sd_g``).
    """

    gyro_noise_dps_rthz: float = 0.005
    accel_noise_g_rthz: float = 400e-6
    gyro_bias_sd_dps: float = 0.8
    gyro_bias_walk_dps_rts: float = 0.004
    accel_bias_sd_g: float = 0.01

    def gyro_noise_sd_dps(self, rate_hz: float) -> float:
        return self.gyro_noise_dps_rthz * float(np.sqrt(rate_hz / 2.0))

    def accel_noise_sd_g(self, rate_hz: float) -> float:
        return self.accel_noise_g_rthz * float(np.sqrt(rate_hz / 2.0))


@dataclass(frozen=True)
class ImuMount:
    """An IMU strapped to a segment: its motion, nominal rate and error model."""

    motion: BodyMotion
    rate_hz: float = 1000.0
    errors: ImuErrorModel = ImuErrorModel()


class ImuSignal:
    """Callable ``t_s -> (gyro_dps, accel_g)`` of one placement (see module docstring)."""

    def __init__(self, mount: ImuMount, seed: int, placement: str, span_s: float, ideal: bool,
                 delay_s: float = 0.0):
        """``delay_s``: the chip's internal low-pass, modelled by its group delay (s): the
        sample at ``t`` measures the motion at ``t - delay_s`` (the errors are the chip's own,
        at ``t``). For the wide filter settings that is all such a low-pass does to the rig's
        movements (below ~5 Hz): a 2nd-order low-pass at 98 Hz keeps their gain within
        0.001 %, at 20 Hz within 0.2 %; the attenuation of the narrow 5-10 Hz settings is not
        modelled."""
        self.mount = mount
        self.placement = placement
        self.ideal = ideal
        self.delay_s = float(delay_s)
        self._seed = seed
        self._span_s = span_s
        self._delayed: dict[float, ImuSignal] = {}
        errors = mount.errors
        rng = np.random.default_rng([int(seed), zlib.crc32(placement.encode())])
        self.gyro_bias_dps = rng.standard_normal(3) * errors.gyro_bias_sd_dps
        self.accel_bias_g = rng.standard_normal(3) * errors.accel_bias_sd_g
        self.gyro_walk = [
            SlowProcess.random_walk(rng, span_s, errors.gyro_bias_walk_dps_rts) for _ in range(3)
        ]
        self._keys = [stream_key(seed, placement, f"imu{axis}") for axis in range(6)]
        self._gyro_sd = errors.gyro_noise_sd_dps(mount.rate_hz)
        self._accel_sd = errors.accel_noise_sd_g(mount.rate_hz)
        self.cache = SampleClockCache(self.evaluate, mount.rate_hz)

    def delayed(self, delay_s: float) -> ImuSignal:
        """The same IMU (same errors, same noise) behind a low-pass of group delay
        ``delay_s``; one instance per delay, so its sample cache is kept."""
        if delay_s == self.delay_s:
            return self
        signal = self._delayed.get(delay_s)
        if signal is None:
            signal = self._delayed[delay_s] = ImuSignal(
                self.mount, self._seed, self.placement, self._span_s, self.ideal, delay_s)
        return signal

    def bias_dps(self, t_s: FloatArray) -> FloatArray:
        """The gyro bias (°/s, n×3) at ``t_s``: constant part plus the random walk."""
        t = np.asarray(t_s, dtype=np.float64)
        return np.stack([self.gyro_bias_dps[i] + self.gyro_walk[i](t) for i in range(3)], -1)

    def __call__(self, t_s: FloatArray) -> tuple[FloatArray, FloatArray]:
        gyro, accel = self.cache(np.asarray(t_s, dtype=np.float64))
        return gyro, accel

    def evaluate(self, t_s: FloatArray) -> tuple[FloatArray, FloatArray]:
        """The signal at ``t_s`` computed directly (what the cache stores)."""
        t = np.asarray(t_s, dtype=np.float64)
        if t.size > EVALUATION_BLOCK:
            parts = [self.evaluate(chunk) for chunk in _blocks(t)]
            return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        gyro, accel = self.mount.motion.ideal_imu(t - self.delay_s if self.delay_s else t)
        if self.ideal:
            return gyro, accel
        noise = gaussian_at(t, self._keys)
        gyro = gyro + self.bias_dps(t) + self._gyro_sd * noise[:3].T
        accel = accel + self.accel_bias_g + self._accel_sd * noise[3:].T
        return gyro, accel


# ------------------------------------------------------------------------------------------------
# Forces
# ------------------------------------------------------------------------------------------------
class ForceSource(Protocol):
    """The physical (error-free) force on the load cell."""

    def force_n(self, t_s: FloatArray) -> FloatArray:
        """Force (N) at ``t_s`` (s)."""


@dataclass(frozen=True)
class Band:
    """An elastic band from a fixed anchor to an attachment point on a moving segment.

    Tension = ``stiffness_n_per_m · max(0, length − rest_length_m)`` (linear elastic, slack
    below the rest length). ``attach_m`` is in segment axes relative to the pivot;
    ``anchor_m`` in earth coordinates. The load cell sits inline at the anchor.
    """

    motion: BodyMotion
    attach_m: tuple[float, float, float]
    anchor_m: tuple[float, float, float]
    stiffness_n_per_m: float
    rest_length_m: float

    def length_m(self, t_s: FloatArray) -> FloatArray:
        """Band length (m) at ``t_s``."""
        point = self.motion.point_position_m(t_s, self.attach_m)
        d = point - np.asarray(self.anchor_m)
        return np.sqrt(d[..., 0] ** 2 + d[..., 1] ** 2 + d[..., 2] ** 2)

    def force_n(self, t_s: FloatArray) -> FloatArray:
        stretch = self.length_m(t_s) - self.rest_length_m
        return self.stiffness_n_per_m * np.maximum(stretch, 0.0)


@dataclass(frozen=True)
class Chain:
    """A chain hanging from an attachment point onto the floor.

    The load cell between the harness and the chain carries the weight of the links off the
    floor: ``rigging_n + mass_kg_per_m · g · clip(h − floor_m, 0, length_m)`` with ``h`` the
    attachment height; piecewise linear in height (statics: link swing is ignored).
    """

    motion: BodyMotion
    attach_m: tuple[float, float, float]
    mass_kg_per_m: float
    length_m: float
    rigging_n: float = 0.0
    floor_m: float = 0.0

    def height_m(self, t_s: FloatArray) -> FloatArray:
        """Attachment height above the pivot's zero (m)."""
        return self.motion.point_position_m(t_s, self.attach_m)[..., 2]

    def force_n(self, t_s: FloatArray) -> FloatArray:
        hanging = np.clip(self.height_m(t_s) - self.floor_m, 0.0, self.length_m)
        return self.rigging_n + self.mass_kg_per_m * G0_MPS2 * hanging


@dataclass(frozen=True)
class Contraction:
    """One isometric contraction with closed-form force (net of the baseline).

    From ``onset_s`` for ``on_s`` seconds: ``F(s) = A (1 − e^(−s/τ)) − D s`` (s = t − onset;
    ``A`` amplitude N, ``τ`` ``tau_rise_s``, ``D`` ``decline_n_per_s`` within-rep fatigue);
    after release: ``F(T) e^(−(t − onset − T)/τ_r)``.
    """

    onset_s: float
    on_s: float
    amplitude_n: float
    tau_rise_s: float
    decline_n_per_s: float = 0.0
    tau_relax_s: float = 0.08

    def net_n(self, t_s: FloatArray) -> FloatArray:
        """Force above the baseline (N) at ``t_s``."""
        s = np.asarray(t_s, dtype=np.float64) - self.onset_s
        on = np.clip(s, 0.0, self.on_s)
        rising = self.amplitude_n * -np.expm1(-on / self.tau_rise_s) - self.decline_n_per_s * on
        after = np.exp(-np.maximum(s - self.on_s, 0.0) / self.tau_relax_s)
        return np.where(s < 0.0, 0.0, np.where(s <= self.on_s, rising, rising * after))

    def net_at(self, s: float) -> float:
        """Net force (N) at ``s`` seconds after onset, 0 <= s <= on_s."""
        return float(self.amplitude_n * -np.expm1(-s / self.tau_rise_s) - self.decline_n_per_s * s)

    def impulse_net(self, s: float) -> float:
        """∫₀ˢ net force (N·s), 0 <= s <= on_s."""
        tau = self.tau_rise_s
        return float(
            self.amplitude_n * (s + tau * np.expm1(-s / tau)) - 0.5 * self.decline_n_per_s * s * s
        )


@dataclass(frozen=True)
class IsometricPulls:
    """Baseline (pre-tension, N) plus a series of :class:`Contraction`."""

    baseline_n: float
    contractions: tuple[Contraction, ...]

    def force_n(self, t_s: FloatArray) -> FloatArray:
        t = np.asarray(t_s, dtype=np.float64)
        force = np.full_like(t, self.baseline_n)
        for contraction in self.contractions:
            force += contraction.net_n(t)
        return force


@dataclass(frozen=True)
class LoadCellErrorModel:
    """Load cell + ADC imperfections.

    ``noise_sd_n`` per sample at the nominal rate; drift = ``drift_n_per_min`` trend plus a
    random walk of ``drift_walk_n_rts`` N/√s; creep: the reading moves toward
    ``creep_fraction`` × the applied load with time constant ``creep_tau_s`` (first order),
    the classic strain-gauge creep under sustained load.
    """

    noise_sd_n: float = 0.8
    drift_n_per_min: float = 0.3
    drift_walk_n_rts: float = 0.02
    creep_fraction: float = 0.002
    creep_tau_s: float = 30.0


NO_LOAD_CELL_ERRORS = LoadCellErrorModel(0.0, 0.0, 0.0, 0.0, 30.0)


@dataclass(frozen=True)
class Spike:
    """A single-sample load-cell spike of ``amplitude_n`` at ``t_s`` (fault injection)."""

    t_s: float
    amplitude_n: float


def first_order_lag(x: FloatArray, a: float, gain: float, block: int = 512) -> FloatArray:
    """``y[n] = a y[n-1] + (1 − a) gain x[n]`` with y[-1] = 0, vectorised per block.

    Inside a block the recursion is a scaled cumulative sum; blocks are short so ``a^-k``
    stays well conditioned.
    """
    y = np.empty_like(x)
    b = (1.0 - a) * gain
    powers = a ** np.arange(block, dtype=np.float64)
    carry = 0.0
    for start in range(0, x.size, block):
        chunk = x[start : start + block]
        m = chunk.size
        p = powers[:m]
        y_chunk = p * (a * carry + np.cumsum(b * chunk / p))
        y[start : start + m] = y_chunk
        carry = float(y_chunk[-1])
    return y


class ForceSignal:
    """Callable ``t_s -> force_n`` of the load cell: physical force plus sensor errors."""

    def __init__(
        self,
        source: ForceSource,
        errors: LoadCellErrorModel,
        seed: int,
        span_s: float,
        rate_hz: float,
        spikes: Sequence[Spike] = (),
        ideal: bool = False,
        creep_step_s: float = 0.005,
    ) -> None:
        self.source = source
        self.errors = errors
        self.ideal = ideal
        self.rate_hz = rate_hz
        rng = np.random.default_rng([int(seed), zlib.crc32(b"force")])
        self.drift = SlowProcess.random_walk(
            rng, span_s, errors.drift_walk_n_rts, trend_per_s=errors.drift_n_per_min / 60.0
        )
        self._key = stream_key(seed, "force")
        ordered = sorted(spikes, key=lambda s: s.t_s)
        self._spike_t = np.array([s.t_s for s in ordered], dtype=np.float64)
        self._spike_n = np.array([s.amplitude_n for s in ordered], dtype=np.float64)
        self._creep: SlowProcess | None = None
        if not ideal and errors.creep_fraction != 0.0:
            grid = (
                np.arange(int(np.ceil(span_s / creep_step_s)) + 2, dtype=np.float64) * creep_step_s
            )
            a = float(np.exp(-creep_step_s / errors.creep_tau_s))
            # In blocks: the force over the whole span at once would need tens of MB of
            # temporaries (rotations, positions) for a 1 MB result; element-wise, so the
            # values are the same.
            applied = np.concatenate([source.force_n(part) for part in _blocks(grid)])
            creep = first_order_lag(applied, a, errors.creep_fraction)
            self._creep = SlowProcess(0.0, creep_step_s, creep)
        self.cache = SampleClockCache(lambda t: (self.evaluate(t),), rate_hz, block=2048)

    def spike_n(self, t_s: FloatArray) -> FloatArray:
        """Spike contribution: a spike covers [t − P/2, t + P/2) with P = 1/nominal rate, so a
        conversion clock at the nominal rate sees each spike in exactly one sample."""
        t = np.asarray(t_s, dtype=np.float64)
        out = np.zeros_like(t)
        if self._spike_t.size == 0:
            return out
        half = 0.5 / self.rate_hz
        k = np.searchsorted(self._spike_t, t + half, side="right") - 1
        valid = k >= 0
        kk = np.clip(k, 0, None)
        hit = valid & (self._spike_t[kk] - half <= t) & (t < self._spike_t[kk] + half)
        out[hit] = self._spike_n[kk[hit]]
        return out

    def __call__(self, t_s: FloatArray) -> FloatArray:
        return self.cache(np.asarray(t_s, dtype=np.float64))[0]

    def evaluate(self, t_s: FloatArray) -> FloatArray:
        """The signal at ``t_s`` computed directly (what the cache stores)."""
        t = np.asarray(t_s, dtype=np.float64)
        if t.size > EVALUATION_BLOCK:
            return np.concatenate([self.evaluate(chunk) for chunk in _blocks(t)])
        force = self.source.force_n(t)
        if self.ideal:
            return force
        force = force + self.drift(t) + self.errors.noise_sd_n * gaussian_at(t, self._key)
        if self._creep is not None:
            force += self._creep(t)
        return force + self.spike_n(t)


# ------------------------------------------------------------------------------------------------
# The rig
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rig:
    """Everything the chip simulators sample for one scenario.

    ``imus``: placement ("trunk", "pelvis", "implement") -> mount. ``force``: the physical
    force on the load cell, or None for bodyweight work without a load cell. ``span_s``: the
    time covered by pre-computed slow processes (bias walk, drift, creep); beyond it they hold.
    """

    seed: int
    span_s: float
    imus: Mapping[str, ImuMount] = field(default_factory=dict)
    force: ForceSource | None = None
    force_rate_hz: float = 320.0
    load_cell_errors: LoadCellErrorModel = LoadCellErrorModel()

    def imu_signal(self, placement: str, *, ideal: bool = False) -> ImuSignal:
        """The IMU signal of ``placement``; ``ideal`` switches every imperfection off."""
        if placement not in self.imus:
            known = ", ".join(sorted(self.imus)) or "none"
            raise KeyError(f"no IMU at {placement!r} on this rig (placements: {known})")
        return ImuSignal(self.imus[placement], self.seed, placement, self.span_s, ideal)

    def force_signal(self, *, ideal: bool = False, spikes: Sequence[Spike] = ()) -> ForceSignal:
        """The load-cell signal; ``spikes`` injects single-sample spikes (fault injection)."""
        if self.force is None:
            raise KeyError("this rig has no load cell (bodyweight exercise)")
        errors = NO_LOAD_CELL_ERRORS if ideal else self.load_cell_errors
        return ForceSignal(
            self.force, errors, self.seed, self.span_s, self.force_rate_hz, spikes, ideal
        )
