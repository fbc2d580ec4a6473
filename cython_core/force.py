"""Force contractions: onset, end, peak, F@t, RFD, impulse (METRICS.md "Force").

:class:`ContractionDetector` is the streaming detector (state in a Cython kernel,
:mod:`spinecoach.core._force`); :func:`measure_contraction` turns the samples of one contraction
into a :class:`~spinecoach.core.results.ContractionResult`; :func:`detect_contractions` runs the
detector over a whole array. Every window is a setting in seconds and is converted to samples
with the stream's rate, so the same settings work from 25 Hz to 1 kHz.

The force given here must already be despiked (single-sample spike rejection) and must not have
been low-passed below 100 Hz, which would delay the onset and flatten the RFD.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from spinecoach.core._force import ForceKernelState, force_step
from spinecoach.core._metrics import trapezoid_sum
from spinecoach.core.results import ContractionResult, CoreEvent

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ForceSettings:
    """Tunable numbers of the force metrics; defaults are METRICS.md's.

    ``min_rise_factor`` and ``max_contraction_s`` are this implementation's guards: a
    "contraction" whose peak rises less than ``min_rise_factor`` times the onset margin above the
    baseline is a wandering baseline, not an effort, and is dropped; a contraction that never
    relaxes is closed after ``max_contraction_s`` so memory stays bounded. A contraction also
    ends where the force settles (stays within ``onset_floor_n`` for ``settle_s``) below the
    baseline plus max(floor, ``settle_rise_fraction`` x its rise): a baseline that wandered by
    more than the floor during the effort would otherwise never let it end (``settle_s`` = 0:
    METRICS.md's end only).
    """

    quiet_window_s: float = 1.0
    baseline_search_s: float = 3.0
    onset_k_sd: float = 5.0
    onset_floor_n: float = 20.0
    end_below_s: float = 0.1
    pretension_window_s: float = 0.2
    force_at_ms: tuple[int, ...] = (50, 100, 150, 200)
    rfd_windows_ms: tuple[int, ...] = (50, 100, 150, 200)
    peak_rfd_window_s: float = 0.02
    peak_rfd_search_s: float = 0.3
    impulse_windows_ms: tuple[int, ...] = (100, 200, 300)
    min_rise_factor: float = 2.0
    max_contraction_s: float = 120.0
    settle_s: float = 0.5
    settle_rise_fraction: float = 0.1

    def samples(self, seconds: float, rate_hz: float) -> int:
        """``seconds`` as a whole number of samples at ``rate_hz`` (at least 1)."""
        return max(1, round(seconds * rate_hz))


DEFAULT_FORCE_SETTINGS = ForceSettings()


def _interp_at(t_s: FloatArray, f: FloatArray, at_s: list[float]) -> list[float | None]:
    """Force at each time of ``at_s`` by linear interpolation (None outside the samples), in one
    numpy call: np.interp computes every point on its own, so this equals point-by-point calls."""
    values = np.interp(at_s, t_s, f).tolist()
    lo, hi = t_s[0] - 1e-12, t_s[-1] + 1e-12
    return [None if (a < lo or a > hi) else v for a, v in zip(at_s, values)]


def _impulse(t_s: FloatArray, f: FloatArray, t_from: float, t_to: float,
             f_from: float, f_to: float) -> float | None:
    """Trapezoidal integral of ``f`` over [t_from, t_to] (N·s); ``t_s`` ascending, ``f_from`` and
    ``f_to`` the interpolated end points (np.interp at t_from and t_to)."""
    if t_to > t_s[-1] + 1e-12 or t_from < t_s[0] - 1e-12:
        return None
    # the samples strictly inside (t_from, t_to): a slice, since t_s is ascending
    i0 = int(t_s.searchsorted(t_from, side="right"))
    m = max(int(t_s.searchsorted(t_to, side="left")) - i0, 0)
    # the trapezoids through (t_from, f_from), those samples and (t_to, f_to), in one C pass
    # (the numpy expression's bits, summed pairwise as .sum() does)
    return float(trapezoid_sum(t_s, f, i0, m, t_from, t_to, f_from, f_to))


def _mean_on(f: FloatArray, half_n: float, peak_n: float) -> float:
    """Mean force over the "on" time: from the first to the last sample at or above half of
    the rise (so the rise and the release do not dilute a repeater's mean)."""
    above = (f >= half_n).nonzero()[0]
    if above.size == 0:
        return peak_n
    return float(f[above[0] : above[-1] + 1].mean())


def measure_contraction(
    force_n: FloatArray,
    first_sample: int,
    trigger_sample: int,
    end_sample: int,
    baseline_mean_n: float,
    baseline_sd_n: float,
    rate_hz: float,
    t0_s: float = 0.0,
    settings: ForceSettings = DEFAULT_FORCE_SETTINGS,
    invalid_samples: int = 0,
) -> ContractionResult | None:
    """Figures of one contraction from its samples.

    ``force_n[i]`` is sample number ``first_sample + i`` (time ``t0_s + n / rate_hz``); it covers
    the pre-trigger search span, the contraction and the samples that decided its end.
    ``trigger_sample`` is the first sample above the threshold, ``end_sample`` the first sample of
    the run below baseline + floor (exclusive end). Returns None when the effort is smaller than
    ``min_rise_factor`` onset margins (a drifting baseline, not a contraction).
    """
    s = settings
    f = np.asarray(force_n, dtype=np.float64)
    margin = max(s.onset_k_sd * baseline_sd_n, s.onset_floor_n)
    threshold = baseline_mean_n + margin
    trig = trigger_sample - first_sample
    end = min(end_sample - first_sample, len(f))
    if end <= trig:
        end = min(trig + 1, len(f))
    contraction = f[trig:end]
    peak_rel = int(contraction.argmax())
    peak = float(contraction[peak_rel])
    if peak - baseline_mean_n < s.min_rise_factor * margin:
        return None
    # The rise: first sample at or above half of the rise to the peak.
    half = baseline_mean_n + 0.5 * (peak - baseline_mean_n)
    rise = trig + int((contraction >= half).argmax())
    # Onset: first sample of the final run above the threshold, walking back from the rise.
    below = (f[: rise + 1] <= threshold).nonzero()[0]
    onset = int(below[-1]) + 1 if below.size else 0
    # Windows are evaluated on the samples up to the contraction end (plus interpolation);
    # they all start at the onset, so the baseline span before it is left out. Sample times
    # are computed for that span only: t[i] = t0 + (first_sample + i) / rate, element by element.
    last = min(len(f), max(end + 1, onset + 1))
    first = max(onset - 1, 0)
    t_c = t0_s + (first_sample + np.arange(first, last, dtype=np.float64)) / rate_hz
    f_c = f[first:last]
    # The onset sample is the first of the final run above the threshold; its time is where
    # the force crossed the threshold, interpolated between it and the sample before, so the
    # windowed figures do not depend on where the sample clock happened to fall.
    t_on = float(t_c[onset - first])
    f_on = float(f[onset])
    if onset > 0 and f[onset] > f[onset - 1]:
        frac = (threshold - f[onset - 1]) / (f[onset] - f[onset - 1])
        t_on = float(t_c[0] + min(max(frac, 0.0), 1.0) / rate_hz)
        f_on = float(np.interp(t_on, t_c[:2], f[onset - 1 : onset + 1]))
    peak_idx = onset + int(f[onset:end].argmax()) if end > onset else trig + peak_rel
    peak = float(f[peak_idx])
    pre_n = s.samples(s.pretension_window_s, rate_hz)
    pre = f[max(0, onset - pre_n) : onset]
    pretensioned = bool(pre.size and np.abs(pre - baseline_mean_n).max() > margin)

    window_ms = list(dict.fromkeys((*s.force_at_ms, *s.rfd_windows_ms)))
    at_window = dict(zip(window_ms, _interp_at(t_c, f_c, [t_on + ms / 1000.0 for ms in window_ms])))
    force_at: dict[str, float | None] = {str(ms): at_window[ms] for ms in s.force_at_ms}
    rfd: dict[str, float | None] = {}
    for ms in s.rfd_windows_ms:
        f_w = at_window[ms]
        rfd[f"0-{ms}"] = None if f_w is None else (f_w - f_on) / (ms / 1000.0)
    # Peak RFD: largest slope over a sliding window within the first peak_rfd_search_s.
    w = s.peak_rfd_window_s
    i0 = int(t_c.searchsorted(t_on, side="right"))  # t_c > t_on
    i1 = int(t_c.searchsorted(t_on + s.peak_rfd_search_s - w + 1e-12, side="right"))
    starts = np.concatenate(([t_on], t_c[i0 : max(i0, i1)]))
    starts = starts[starts + w <= t_c[-1] + 1e-12]
    if starts.size:
        both = np.interp(np.concatenate((starts + w, starts)), t_c, f_c)
        slopes = (both[: starts.size] - both[starts.size :]) / w
        peak_rfd = float(slopes.max())
    else:
        peak_rfd = 0.0
    net = f_c - baseline_mean_n
    t_end = float(t0_s + end_sample / rate_hz)
    whole_to = min(t_end, float(t_c[-1]))
    ends = [t_on + ms / 1000.0 for ms in s.impulse_windows_ms]
    net_on, *net_end, net_whole = np.interp([t_on, *ends, whole_to], t_c, net).tolist()
    impulse: dict[str, float | None] = {}
    for ms, t_to, f_to in zip(s.impulse_windows_ms, ends, net_end):
        impulse[f"0-{ms}"] = _impulse(t_c, net, t_on, t_to, net_on, f_to)
    impulse["contraction"] = (_impulse(t_c, net, t_on, whole_to, net_on, net_whole)
                              if whole_to > t_on else 0.0)
    return ContractionResult(
        onset_s=t_on,
        end_s=t_end,
        baseline_n=float(baseline_mean_n),
        peak_force_n=peak,
        time_to_peak_s=float(t0_s + (first_sample + float(peak_idx)) / rate_hz - t_on),
        force_at_n=force_at,  # type: ignore[arg-type]
        rfd_n_per_s=rfd,  # type: ignore[arg-type]
        peak_rfd_n_per_s=peak_rfd,
        impulse_n_s=impulse,  # type: ignore[arg-type]
        pretensioned=pretensioned,
        rate_hz=float(rate_hz),
        mean_force_n=_mean_on(f[onset:end], half, peak),
        invalid_samples=int(invalid_samples),
        baseline_sd_n=float(baseline_sd_n),
        threshold_n=float(threshold),
    )


class ContractionDetector:
    """Streaming force-contraction detector for one load-cell stream.

    ``update`` takes the next consecutive samples (a block of any size) and returns the events
    they decide: ``contraction_onset`` when a sample crosses the onset threshold (t_s = that
    sample) and ``contraction`` when the contraction has ended (t_s = the deciding sample,
    data = :class:`ContractionResult`). Invalid samples are replaced by the last valid value and
    counted in the result.
    """

    def __init__(self, rate_hz: float, settings: ForceSettings = DEFAULT_FORCE_SETTINGS, t0_s: float = 0.0):
        if not (rate_hz > 0 and np.isfinite(rate_hz)):
            raise ValueError(f"rate_hz must be a positive number, got {rate_hz!r}")
        self.rate_hz = float(rate_hz)
        self.t0_s = float(t0_s)
        self.settings = settings
        s = settings
        win_n = s.samples(s.quiet_window_s, rate_hz)
        search_n = max(win_n + 1, s.samples(s.baseline_search_s, rate_hz))
        self._state = ForceKernelState(
            win_n,
            search_n,
            s.samples(s.end_below_s, rate_hz),
            s.samples(s.max_contraction_s, rate_hz),
            s.onset_k_sd,
            s.onset_floor_n,
            s.samples(s.settle_s, rate_hz) if s.settle_s > 0 else 0,
            s.settle_rise_fraction,
        )

    @property
    def samples_seen(self) -> int:
        """Number of samples consumed so far."""
        return int(self._state.n_seen)

    @property
    def active(self) -> bool:
        """True while a contraction is in progress."""
        return bool(self._state.mode == 1)

    def copy(self) -> ContractionDetector:
        other = object.__new__(ContractionDetector)
        other.rate_hz, other.t0_s, other.settings = self.rate_hz, self.t0_s, self.settings
        other._state = self._state.copy()
        return other

    def _t(self, sample: int) -> float:
        return self.t0_s + sample / self.rate_hz

    def update(
        self, force_n: npt.ArrayLike, valid: npt.ArrayLike | None = None
    ) -> list[CoreEvent]:
        """Consume consecutive samples (N); return the events they decide, in order."""
        f = np.ascontiguousarray(force_n, dtype=np.float64)
        if f.ndim != 1:
            raise ValueError(f"force_n must be 1-D, got shape {f.shape}")
        if valid is None:
            v = np.isfinite(f).view(np.uint8)
        else:
            v = np.ascontiguousarray(valid, dtype=np.bool_).view(np.uint8)
            if v.shape != f.shape:
                raise ValueError("valid must have the same length as force_n")
            v = v & np.isfinite(f).view(np.uint8)
        st = self._state
        events: list[CoreEvent] = []
        pos = 0
        n = f.shape[0]
        while pos < n:
            st.ensure_capacity(n - pos)
            was_active = st.mode == 1
            seen_before = st.n_seen
            pos, code = force_step(st, f, v, pos)
            if st.trigger_n >= seen_before and (st.mode == 1 or code == 1) and not was_active:
                events.append(CoreEvent("contraction_onset", self._t(int(st.trigger_n))))
            if code == 1:
                result = self._measure()
                if result is not None:
                    events.append(CoreEvent("contraction", self._t(int(st.n_seen) - 1), result))
        return events

    def _measure(self) -> ContractionResult | None:
        st = self._state
        return measure_contraction(
            np.asarray(st.buf)[: st.buf_len],
            int(st.buf_start_n),
            int(st.trigger_n),
            int(st.end_n_sample),
            float(st.base_mean),
            float(st.base_sd),
            self.rate_hz,
            self.t0_s,
            self.settings,
            int(st.n_invalid),
        )

    def finish(self) -> list[CoreEvent]:
        """Close a contraction still in progress at the end of the data (end = after last sample)."""
        st = self._state
        if st.mode != 1:
            return []
        st.end_n_sample = st.n_seen
        result = self._measure()
        st.mode = 0
        if result is None:
            return []
        return [CoreEvent("contraction", self._t(int(st.n_seen) - 1), result)]


def detect_contractions(
    force_n: npt.ArrayLike,
    rate_hz: float,
    settings: ForceSettings = DEFAULT_FORCE_SETTINGS,
    valid: npt.ArrayLike | None = None,
    t0_s: float = 0.0,
) -> list[ContractionResult]:
    """All contractions of a whole recording (the batch form of :class:`ContractionDetector`)."""
    det = ContractionDetector(rate_hz, settings, t0_s)
    events = det.update(force_n, valid) + det.finish()
    return [e.data for e in events if e.kind == "contraction"]
