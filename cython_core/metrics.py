"""Per-rep, per-hold and per-set figures (METRICS.md "Movement", "Force against angle",
"Endurance and fatigue").

These run once per rep, hold or set on short arrays, never per sample, so they are vectorised
numpy rather than Cython. Angles in degrees, speeds in °/s, forces in N, times in seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from spinecoach.core._metrics import (
    add_reduce,
    arc_length_terms,
    binned_means,
    first_settled,
    mean_of,
    spectrum_bins_up_to,
)
from spinecoach.core._metrics import mean_curve as _mean_curve
from spinecoach.core._repfit import fit_bell, peak_vertical_rate
from spinecoach.core.angles import up_in_sensor
from spinecoach.core.detect import HoldDetector

FloatArray = npt.NDArray[np.float64]

#: Width of the force-angle bins (°).
FORCE_ANGLE_BIN_DEG = 2.0
#: Velocity-loss stop rules (%).
VELOCITY_LOSS_STOP_RULES_PCT = (10.0, 20.0, 40.0)
#: Sørensen-style hold cap (s).
SORENSEN_CAP_S = 240.0
#: Stabilisation: band around the settled angle (°) and how long it must be kept (s).
STABILISATION_BAND_DEG = 2.0
STABILISATION_KEEP_S = 0.1
#: Critical-force test: reps averaged at the end (k).
CRITICAL_FORCE_LAST_K = 6


# --------------------------------------------------------------------------- smoothness
@dataclass(frozen=True)
class SparcSettings:
    """SPARC parameters of Balasubramanian et al. (2015): zero padding 4 levels, spectrum up to
    10 Hz, adaptive cut-off at the last frequency where the normalised magnitude is >= 0.05."""

    pad_level: int = 4
    fc_max_hz: float = 10.0
    amplitude_threshold: float = 0.05


DEFAULT_SPARC = SparcSettings()


def sparc(speed: npt.ArrayLike, rate_hz: float, settings: SparcSettings = DEFAULT_SPARC) -> float:
    """Spectral arc length of a speed profile (dimensionless, <= 0; closer to 0 = smoother).

    Balasubramanian, Melendez-Calderon, Burdet, "A robust and sensitive metric for quantifying
    movement smoothness", IEEE TBME 59(8), 2012; Balasubramanian et al., "On the analysis of
    movement smoothness", J NeuroEng Rehabil 12:112, 2015. The magnitude spectrum of the
    zero-padded speed profile is normalised by its DC value; the arc length of that curve, with
    frequency normalised by the adaptive cut-off, is negated.
    """
    v = np.asarray(speed, dtype=np.float64)
    if v.ndim != 1 or v.size < 2:
        raise ValueError("sparc needs a 1-D speed profile of at least 2 samples")
    if not rate_hz > 0:
        raise ValueError(f"sparc needs a positive rate_hz, got {rate_hz!r}")
    n_fft = int(2 ** (np.ceil(np.log2(v.size)) + settings.pad_level))
    spectrum = np.fft.rfft(v, n_fft)
    # the bin frequencies ascend, so the bins up to the cut-off are a prefix: only they need
    # magnitudes, and the arc length over them is one C pass (_metrics.arc_length_terms)
    k = spectrum_bins_up_to(spectrum.size, rate_hz, n_fft, settings.fc_max_hz)
    mag = np.abs(spectrum[: max(k, 1)])
    if mag[0] <= 0:
        raise ValueError("sparc needs a speed profile with a non-zero mean")
    terms = np.empty(max(k - 1, 0))
    count = arc_length_terms(mag, k, rate_hz, n_fft, settings.amplitude_threshold, terms)
    # numpy's (pairwise) sum of the terms, as the arc length has always been summed
    return -add_reduce(terms[:count]) if count else 0.0


# --------------------------------------------------------------------------- force vs angle
def force_angle_curve(
    angle_deg: npt.ArrayLike, force_n: npt.ArrayLike, bin_deg: float = FORCE_ANGLE_BIN_DEG
) -> dict[float, float]:
    """Mean force per angle bin: {lower bin edge (°): mean force (N)}, bins at multiples of
    ``bin_deg``, sorted by angle."""
    a = np.ascontiguousarray(angle_deg, dtype=np.float64)
    f = np.ascontiguousarray(force_n, dtype=np.float64)
    if a.shape != f.shape or a.ndim != 1:
        raise ValueError(f"angle_deg and force_n must be 1-D of one length, got {a.shape} and {f.shape}")
    return binned_means(a, f, float(bin_deg))


def mean_curve(curves: Sequence[dict[float, float]]) -> dict[float, float]:
    """Bin-wise mean over reps (a bin present in only some reps averages those): each bin's
    np.mean, computed in C (_metrics.mean_curve: numpy's pairwise sum divided by the count, the
    same bits) without a numpy call per bin."""
    return _mean_curve(curves)  # type: ignore[no-any-return]


def band_stiffness_n_per_deg(curve: dict[float, float], bin_deg: float = FORCE_ANGLE_BIN_DEG) -> float | None:
    """Slope (N/°) of a least-squares line through the curve's bin centres; None under 2 bins."""
    if len(curve) < 2:
        return None
    x = np.fromiter(curve.keys(), dtype=np.float64) + bin_deg / 2
    y = np.fromiter(curve.values(), dtype=np.float64)
    dx = x - mean_of(x)
    return float(dx @ (y - mean_of(y)) / (dx @ dx))


def sticking_region(
    rep_curve: dict[float, float], set_curve: dict[float, float], bin_deg: float = FORCE_ANGLE_BIN_DEG
) -> list[float] | None:
    """[lo °, hi °, deviation N] of the bin where the rep deviates most from the set mean."""
    common = [k for k in rep_curve if k in set_curve]
    if not common:
        return None
    dev = np.array([rep_curve[k] - set_curve[k] for k in common])
    i = int(np.argmax(np.abs(dev)))
    return [common[i], common[i] + bin_deg, float(dev[i])]


def curve_to_json(curve: dict[float, float]) -> list[list[float]]:
    """[[lower bin edge °, mean force N], ...] for JSON."""
    return [[k, v] for k, v in curve.items()]


# --------------------------------------------------------------------------- sets and fatigue
def velocity_loss_pct(mean_concentric_speeds_dps: Sequence[float]) -> list[float]:
    """Per rep: drop of mean concentric speed from the fastest rep so far (%)."""
    out: list[float] = []
    fastest = 0.0
    for v in mean_concentric_speeds_dps:
        fastest = max(fastest, v)
        out.append(0.0 if fastest <= 0 else 100.0 * (fastest - v) / fastest)
    return out


def velocity_loss_stops(
    losses_pct: Sequence[float], rules_pct: Sequence[float] = VELOCITY_LOSS_STOP_RULES_PCT
) -> dict[str, int | None]:
    """For each stop rule, the 1-based rep at which the loss first reached it (None = never)."""
    out: dict[str, int | None] = {}
    for rule in rules_pct:
        hit = next((i + 1 for i, x in enumerate(losses_pct) if x >= rule), None)
        out[f"{rule:g}"] = hit
    return out


def fatigue_index_pct(peaks: Sequence[float], skip_first: int = 0) -> float | None:
    """(first - last) / first x 100 over per-rep peak force, after skipping ``skip_first`` reps."""
    p = list(peaks)[skip_first:]
    if len(p) < 2 or p[0] == 0:
        return None
    return 100.0 * (p[0] - p[-1]) / p[0]


def critical_force(
    rep_mean_force_n: Sequence[float], on_time_s: float | Sequence[float], last_k: int = CRITICAL_FORCE_LAST_K
) -> tuple[float, float] | None:
    """(critical force N, W' N·s): CF = mean of the last k per-rep means; W' = sum over reps
    above CF of (rep mean - CF) x on-time. No duty-cycle scaling (METRICS.md)."""
    m = np.asarray(rep_mean_force_n, dtype=np.float64)
    if m.size < last_k or last_k < 1:
        return None
    on = np.broadcast_to(np.asarray(on_time_s, dtype=np.float64), m.shape)
    cf = float(np.mean(m[-last_k:]))
    above = m > cf
    w_prime = float(np.sum((m[above] - cf) * on[above]))
    return cf, w_prime


# --------------------------------------------------------------------------- holds and posture
def sorensen_hold_time_s(
    angle_deg: npt.ArrayLike,
    rate_hz: float,
    horizontal_deg: float = 90.0,
    tolerance_deg: float = 5.0,
    debounce_s: float = 0.2,
    cap_s: float = SORENSEN_CAP_S,
    drop_sign: int = 1,
) -> float:
    """Sørensen-style hold time (s): from the first sample at horizontal (within tolerance) until
    the trunk has dropped past horizontal by more than the tolerance for longer than the
    debounce; ``drop_sign`` +1 if dropping increases the angle. Capped at ``cap_s``."""
    a = np.asarray(angle_deg, dtype=np.float64)
    lo, hi = horizontal_deg - tolerance_deg, horizontal_deg + tolerance_deg
    first = np.flatnonzero((a >= lo) & (a <= hi))
    if first.size == 0:
        return 0.0
    start = int(first[0])
    # one-sided band: only the drop ends the test
    band = (-np.inf, hi) if drop_sign > 0 else (lo, np.inf)
    det = HoldDetector(rate_hz, band[0], band[1], 0.0, debounce_s, min_hold_s=1.0 / rate_hz)
    changes = det.update(a[start:]) + det.finish()
    ends = [c for c in changes if c.kind == "hold_end"]
    held = (ends[0].end - ends[0].start) / rate_hz if ends else 0.0
    return float(min(held, cap_s))


def stabilisation_time_s(
    angle_deg: npt.ArrayLike,
    onset: int,
    settled_deg: float,
    rate_hz: float,
    band_deg: float = STABILISATION_BAND_DEG,
    keep_s: float = STABILISATION_KEEP_S,
) -> float | None:
    """Time from ``onset`` to the first sample from which the angle stays within ±band of the
    settled value for ``keep_s``; None if it never does within the data."""
    a = np.asarray(angle_deg, dtype=np.float64)[onset:]
    keep = max(1, round(keep_s * rate_hz))
    if a.size < keep:
        return None
    hit = first_settled(np.ascontiguousarray(a), float(settled_deg), float(band_deg), keep)
    return None if hit < 0 else float(hit / rate_hz)


def overshoot_deg(angle_deg: npt.ArrayLike, target_deg: float, direction: int) -> float:
    """Largest excursion past ``target_deg`` in ``direction`` (+1 up, -1 down), >= 0."""
    a = np.asarray(angle_deg, dtype=np.float64)
    if a.size == 0:
        return 0.0
    return float(max(0.0, ((a - target_deg) * direction).max()))


def sway_rms_deg(off_axis_angle_deg: npt.ArrayLike) -> float | None:
    """RMS of the off-axis (frontal-plane) angle about its mean (°)."""
    a = np.asarray(off_axis_angle_deg, dtype=np.float64)
    if a.size == 0:
        return None
    return float(np.sqrt(np.mean((a - a.mean()) ** 2)))


def vertical_rate_dps(quat_wxyz: npt.ArrayLike, gyro_dps: npt.ArrayLike) -> FloatArray:
    """Angular rate about the earth vertical (°/s): gyro · (earth z expressed in the sensor frame).

    ``quat_wxyz`` rotates sensor vectors into the earth frame; the sensor-frame vertical is the
    third row of its rotation matrix.
    """
    g = np.asarray(gyro_dps, dtype=np.float64)
    return np.asarray(np.sum(up_in_sensor(quat_wxyz) * g, axis=1), dtype=np.float64)


def rotation_speed_dps(quat_wxyz: npt.ArrayLike, gyro_dps: npt.ArrayLike) -> float | None:
    """Peak angular speed about the vertical axis (°/s), e.g. of a rotational throw."""
    q = np.ascontiguousarray(quat_wxyz, dtype=np.float64).reshape(-1, 4)
    g = np.ascontiguousarray(gyro_dps, dtype=np.float64).reshape(-1, 3)
    return float(peak_vertical_rate(q, g)) if len(q) else None


# --------------------------------------------------------------------------- movement bounds
#: A fitted movement is used only if it explains this share of the speed's variance.
BELL_MIN_R2 = 0.9
#: Fit the angle change as well (the area of the clipped speed, its start value, also holds
#: rectified sway, which widens a fixed-amplitude bell).
BELL_FREE_AMPLITUDE = True
#: Rate (Hz) the speed is averaged down to for the fit.
BELL_FIT_RATE_HZ = 100.0


#: Normalised speed profiles (area 1 over u in [0, 1]) of a point-to-point movement, by their
#: code in :mod:`spinecoach.core._repfit`: minimum jerk (Flash & Hogan 1985), 30 u² (1 - u)²,
#: and a half-cosine position profile, (π/2) sin(π u).
_BELL_KERNEL = {"min_jerk": 0, "cosine": 1}
#: The half-cosine profile replaces the minimum-jerk one only if its squared error is below this
#: share of the minimum-jerk fit's. The two put the ends of one movement ~8 % of its duration
#: apart (a cosine bell is narrower at its feet), so a choice flipped by noise moves the
#: boundaries by that much: under the simulated rig's postural sway a 4 s lowering's two fits
#: come within 0.5-2x of each other and the cosine won 7 of 48 lowerings (8 seeds), each time
#: putting the lowering ~0.6 s short. Brisk movements and clean cosine movements separate by
#: 10-150x, so the preference only takes effect where the shape is not measurable anyway.
BELL_COSINE_SSE_SHARE = 1.0 / 3.0


def fit_movement_bounds(
    t_s: FloatArray, rate_dps: FloatArray, delta_deg: float, start_s: float, end_s: float
) -> tuple[float, float, float, str] | None:
    """Start and end (s) of one movement from a bell-shaped fit of its angular speed.

    A voluntary point-to-point movement leaves and reaches rest smoothly, so speed thresholds
    see it late (a minimum-jerk start rises as t²). Fitting the whole speed profile with the
    minimum-jerk and the half-cosine bell (amplitude fixed by the angle change ``delta_deg``;
    start and duration by Gauss-Newton from the thresholded ``start_s``/``end_s``, closed-form
    Jacobian, in :func:`spinecoach.core._repfit.fit_bell`) recovers where the speed truly
    leaves and reaches zero. Returns (start, end, R², profile) of the better fit, or None if
    neither explains BELL_MIN_R2 of the variance or the fit runs away.
    """
    t = np.ascontiguousarray(t_s, dtype=np.float64)
    v = np.ascontiguousarray(rate_dps, dtype=np.float64)
    length = end_s - start_s
    if length <= 0 or t.size < 8 or delta_deg == 0:
        return None
    dev = v - mean_of(v)
    var = float(dev @ dev)
    if var <= 0:
        return None
    best: tuple[float, float, float, str] | None = None
    best_sse = np.inf
    for name, kind in _BELL_KERNEL.items():
        fit = fit_bell(t, v, float(delta_deg), float(start_s), float(length), kind,
                       free_amplitude=BELL_FREE_AMPLITUDE)
        if fit is None:
            continue
        t0, dur, sse, _ = fit
        # minimum jerk is the model of a voluntary movement; the cosine must clearly beat it
        wins = sse < best_sse * (BELL_COSINE_SSE_SHARE if name == "cosine" else 1.0)
        if wins:
            best_sse = sse
            best = (t0, t0 + dur, 1.0 - sse / var, name)
    if best is None or best[2] < BELL_MIN_R2:
        return None
    # a fit far from what the thresholds saw is a different movement, not a refinement
    if abs(best[0] - start_s) > 0.4 * length + 0.05 or abs(best[1] - end_s) > 0.4 * length + 0.05:
        return None
    return best
