"""Low-pass biquad cascades and Hampel spike rejection, with explicit streaming state.

Design happens here in Python (Butterworth from the bilinear transform, written from the textbook
formulas so nothing outside numpy is needed at run time); the per-sample work runs in the Cython
kernel ``_filters``. Every filter keeps its state outside the loop, like scipy's ``sosfilt`` with
``zi``, so a recording processed in blocks of any size gives bit for bit the output of one block.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

#: Second-order sections are rows [b0, b1, b2, a0, a1, a2] with a0 = 1 (scipy's ``sos`` layout).
SOS_COLUMNS = 6


def _check_cutoff(cutoff_hz: float, rate_hz: float) -> None:
    if not (math.isfinite(rate_hz) and rate_hz > 0.0):
        raise ValueError(f"rate_hz must be a positive number, got {rate_hz!r}")
    if not (math.isfinite(cutoff_hz) and 0.0 < cutoff_hz < rate_hz / 2.0):
        raise ValueError(
            f"cutoff_hz must lie between 0 and the Nyquist frequency {rate_hz / 2.0:g} Hz, "
            f"got {cutoff_hz!r}; lower the cutoff or raise the sample rate"
        )


def butterworth_lowpass_sos(order: int, cutoff_hz: float, rate_hz: float) -> npt.NDArray[np.float64]:
    """Digital Butterworth low-pass of ``order`` as second-order sections, shape (ceil(order/2), 6).

    Analog prototype poles s_k = exp(i·π·(2k + N − 1) / (2N)), k = 1..N, grouped in conjugate
    pairs; each pair is 1 / (s² + 2ζs + 1) with ζ = sin(π(2k − 1) / (2N)). The cutoff is
    pre-warped (K = tan(π·fc/fs)) and every section mapped with the bilinear transform
    s = (1 − z⁻¹) / (K(1 + z⁻¹)), which gives
    b = K²/D · [1, 2, 1], a = [1, 2(K² − 1)/D, (1 − 2ζK + K²)/D], D = 1 + 2ζK + K².
    An odd order adds the first-order section K/(1 + K) · [1, 1] / [1, (K − 1)/(K + 1)].
    Every section has unit gain at DC, so the cascade does too, and |H| = 1/√2 at ``cutoff_hz``.
    """
    if not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"order must be a positive integer, got {order!r}")
    _check_cutoff(cutoff_hz, rate_hz)
    k = math.tan(math.pi * cutoff_hz / rate_hz)
    k2 = k * k
    sections: list[list[float]] = []
    for pair in range(1, order // 2 + 1):
        zeta = math.sin(math.pi * (2 * pair - 1) / (2 * order))
        d = 1.0 + 2.0 * zeta * k + k2
        b0 = k2 / d
        sections.append([b0, 2.0 * b0, b0, 1.0, 2.0 * (k2 - 1.0) / d, (1.0 - 2.0 * zeta * k + k2) / d])
    if order % 2:
        b0 = k / (1.0 + k)
        sections.append([b0, b0, 0.0, 1.0, (k - 1.0) / (k + 1.0), 0.0])
    return np.asarray(sections, dtype=np.float64)


def time_constant_cutoff_hz(time_constant_s: float) -> float:
    """Cutoff of the second-order Butterworth whose step response matches a time constant.

    fc = √2 / (2π·τ): the convention of the VQF paper (Laidig & Seel 2023) for its
    accelerometer and rest-detection low-passes, so settings read as time constants in seconds.
    """
    if not (math.isfinite(time_constant_s) and time_constant_s > 0.0):
        raise ValueError(f"time constant must be a positive number of seconds, got {time_constant_s!r}")
    return math.sqrt(2.0) / (2.0 * math.pi * time_constant_s)


def sos_magnitude(sos: npt.ArrayLike, freq_hz: npt.ArrayLike, rate_hz: float) -> npt.NDArray[np.float64]:
    """|H(e^{iω})| of a second-order-section cascade at ``freq_hz`` (for checks and plots)."""
    sections = np.atleast_2d(np.asarray(sos, dtype=np.float64))
    z1 = np.exp(-2j * np.pi * np.asarray(freq_hz, dtype=np.float64) / rate_hz)
    h = np.ones_like(z1)
    for b0, b1, b2, a0, a1, a2 in sections:
        h *= (b0 + b1 * z1 + b2 * z1 * z1) / (a0 + a1 * z1 + a2 * z1 * z1)
    return np.abs(h)
