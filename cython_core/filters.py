"""Low-pass biquad cascades and Hampel spike rejection, with explicit streaming state.

Design happens here in Python (Butterworth from the bilinear transform, written from the textbook
formulas so nothing outside numpy is needed at run time); the per-sample work runs in the Cython
kernel ``_filters``. Every filter keeps its state outside the loop, like scipy's ``sosfilt`` with
``zi``, so a recording processed in blocks of any size gives bit for bit the output of one block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from spinecoach.core import _filters

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


def sos_steady_state(sos: npt.ArrayLike, level: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """State (sections, channels, 2) of a cascade that has long seen the constant ``level``.

    Starting from it avoids the start-up transient of a zero state (a load cell's offset would
    otherwise ring through the filter). ``level`` is a scalar or one value per channel.
    """
    sections = np.atleast_2d(np.asarray(sos, dtype=np.float64))
    values = np.atleast_1d(np.asarray(level, dtype=np.float64))
    zi = np.empty((sections.shape[0], values.size, 2))
    v = values.copy()
    for k, (b0, b1, b2, _a0, a1, a2) in enumerate(sections):
        gain = (b0 + b1 + b2) / (1.0 + a1 + a2)
        out = gain * v
        zi[k, :, 1] = b2 * v - a2 * out
        zi[k, :, 0] = out - b0 * v
        v = out
    return zi


def sosfilt(
    sos: npt.ArrayLike, x: npt.ArrayLike, zi: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Run a second-order-section cascade over ``x`` from state ``zi``; returns (y, zf).

    ``x`` is (n,) or (n, channels); ``zi`` is (sections, channels, 2) (channels = 1 for 1-D x).
    Feeding ``zf`` back as the next block's ``zi`` makes block-wise filtering equal, bit for
    bit, to filtering the whole signal at once.
    """
    sections = np.ascontiguousarray(np.atleast_2d(sos), dtype=np.float64)
    if sections.ndim != 2 or sections.shape[1] != SOS_COLUMNS or not np.all(sections[:, 3] == 1.0):
        raise ValueError(f"sos must have shape (sections, 6) with a0 = 1, got {sections.shape}")
    signal = np.asarray(x, dtype=np.float64)
    one_d = signal.ndim == 1
    samples = np.ascontiguousarray(signal.reshape(-1, 1) if one_d else signal)
    if samples.ndim != 2:
        raise ValueError(f"x must be (n,) or (n, channels), got shape {signal.shape}")
    state = np.array(zi, dtype=np.float64, order="C", copy=True)
    if state.shape != (sections.shape[0], samples.shape[1], 2):
        raise ValueError(
            f"zi must have shape {(sections.shape[0], samples.shape[1], 2)}, got {state.shape}"
        )
    y = np.empty_like(samples)
    _filters.sosfilt(sections, samples, state, y)
    return (y[:, 0] if one_d else y), state


@dataclass(frozen=True)
class LowPassSettings:
    """Butterworth low-pass: cutoff (Hz) and order (sections = ceil(order / 2))."""

    cutoff_hz: float
    order: int = 2

    def __post_init__(self) -> None:
        if not isinstance(self.order, int) or self.order < 1:
            raise ValueError(f"LowPassSettings.order must be a positive integer, got {self.order!r}")
        if not (math.isfinite(self.cutoff_hz) and self.cutoff_hz > 0):
            raise ValueError(f"LowPassSettings.cutoff_hz must be positive, got {self.cutoff_hz!r}")


class LowPassFilter:
    """Streaming Butterworth low-pass over ``channels`` channels at ``rate_hz``.

    The state starts at the steady state of the first sample, so a signal with an offset does
    not ring at the start. ``update`` takes (n,) for one channel or (n, channels).
    """

    def __init__(self, rate_hz: float, settings: LowPassSettings, channels: int = 1) -> None:
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be a positive integer, got {channels!r}")
        self.rate_hz = float(rate_hz)
        self.settings = settings
        self.channels = channels
        self.sos = butterworth_lowpass_sos(settings.order, settings.cutoff_hz, self.rate_hz)
        self._zi: npt.NDArray[np.float64] | None = None

    def update(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        signal = np.asarray(x, dtype=np.float64)
        one_channel = signal.ndim == 1 and self.channels == 1
        if not (one_channel or (signal.ndim == 2 and signal.shape[1] == self.channels)):
            raise ValueError(
                f"x must have shape (n, {self.channels})"
                + (" or (n,)" if self.channels == 1 else "")
                + f", got {signal.shape}"
            )
        if not np.isfinite(signal).all():
            raise ValueError("x has non-finite values; drop or fill them before filtering")
        if signal.shape[0] == 0:
            return signal.copy()
        if self._zi is None:
            first = signal[0] if signal.ndim == 2 else signal[:1]
            self._zi = sos_steady_state(self.sos, first)
        # The kernel straight on the filter's own (already valid) sections and state, updated
        # in place: what ``sosfilt`` does, without its per-call checks and state copy.
        samples = np.ascontiguousarray(signal.reshape(-1, 1) if signal.ndim == 1 else signal)
        y = np.empty_like(samples)
        _filters.sosfilt(self.sos, samples, self._zi, y)
        return y[:, 0] if signal.ndim == 1 else y

    def copy(self) -> LowPassFilter:
        twin = LowPassFilter(self.rate_hz, self.settings, self.channels)
        twin._zi = None if self._zi is None else self._zi.copy()
        return twin


@dataclass(frozen=True)
class HampelSettings:
    """Spike rejection: an odd window (samples) and the threshold in robust SDs.

    A sample more than ``threshold_sd`` · 1.4826 · MAD (and more than ``floor``, in the signal's
    unit) away from its window's median is replaced by the median. The window is centred, so the
    output is delayed by (window_samples − 1) / 2 samples; a step is kept exactly.
    """

    window_samples: int = 5
    threshold_sd: float = 3.0
    floor: float = 0.0

    def __post_init__(self) -> None:
        w = self.window_samples
        if not isinstance(w, int) or w < 3 or w % 2 == 0 or w > 255:
            raise ValueError(f"HampelSettings.window_samples must be odd, 3..255, got {w!r}")
        if not (math.isfinite(self.threshold_sd) and self.threshold_sd > 0):
            raise ValueError(f"HampelSettings.threshold_sd must be positive, got {self.threshold_sd!r}")
        if not (math.isfinite(self.floor) and self.floor >= 0):
            raise ValueError(f"HampelSettings.floor must be >= 0, got {self.floor!r}")


class HampelFilter:
    """Streaming Hampel spike rejection for one channel (e.g. force in N).

    ``update(x)`` returns (y, replaced): y[i] is input i − delay_samples (spikes replaced by the
    window median), ``replaced`` flags the samples that were changed.
    """

    def __init__(self, settings: HampelSettings = HampelSettings()) -> None:
        self.settings = settings
        self._state = np.zeros(1 + settings.window_samples, dtype=np.float64)

    @property
    def delay_samples(self) -> int:
        """Fixed delay between input and output, in samples."""
        return (self.settings.window_samples - 1) // 2

    def update(self, x: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
        signal = np.ascontiguousarray(x, dtype=np.float64)
        if signal.ndim != 1:
            raise ValueError(f"x must be one channel, shape (n,), got {signal.shape}")
        if not np.isfinite(signal).all():
            raise ValueError("x has non-finite values; drop or fill them before spike rejection")
        return self.update_finite(signal)

    def update_finite(self, x: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
        """``update`` for a caller that has already checked ``x`` is one finite float64
        channel (the pipeline's force path), without checking it again."""
        signal = np.ascontiguousarray(x)
        y = np.empty_like(signal)
        replaced = np.zeros(signal.shape[0], dtype=np.uint8)
        s = self.settings
        _filters.hampel(signal, y, replaced, self._state, self.delay_samples, s.threshold_sd, s.floor)
        return y, replaced.view(bool)

    def copy(self) -> HampelFilter:
        twin = HampelFilter(self.settings)
        twin._state = self._state.copy()
        return twin
