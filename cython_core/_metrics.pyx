# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# distutils: extra_compile_args = -ffp-contract=off
"""Loops behind per-rep and per-hold figures of :mod:`spinecoach.core.metrics` (private).

Compiled without floating-point contraction, so that a sum of products rounds after each
operation, as numpy's separate array operations do, on every CPU. Each replaces a chain of a dozen small numpy calls over a rep's samples with one pass, computing
exactly what the numpy form computed, element by element and in the same order (bin sums
accumulate in sample order as ``np.bincount`` does), so the figures are bit for bit the same.
"""

from libc.math cimport floor, isfinite, sqrt
from libc.stdlib cimport free, malloc

import numpy as np


def binned_means(const double[::1] angle_deg, const double[::1] force_n, double bin_deg):
    """{lower bin edge: mean force} over the samples where both values are finite, bins at
    multiples of ``bin_deg`` (floor(angle / bin_deg)), sorted by angle."""
    cdef Py_ssize_t n = angle_deg.shape[0], i, k, nbins
    cdef long long b, lo = 0, hi = 0
    cdef bint any_ok = False
    for i in range(n):
        if isfinite(angle_deg[i]) and isfinite(force_n[i]):
            b = <long long> floor(angle_deg[i] / bin_deg)
            if not any_ok or b < lo:
                lo = b
            if not any_ok or b > hi:
                hi = b
            any_ok = True
    if not any_ok:
        return {}
    nbins = <Py_ssize_t> (hi - lo + 1)
    sums_arr = np.zeros(nbins, dtype=np.float64)
    counts_arr = np.zeros(nbins, dtype=np.int64)
    cdef double[::1] sums = sums_arr
    cdef long long[::1] counts = counts_arr
    for i in range(n):
        if isfinite(angle_deg[i]) and isfinite(force_n[i]):
            k = <Py_ssize_t> (<long long> floor(angle_deg[i] / bin_deg) - lo)
            sums[k] += force_n[i]
            counts[k] += 1
    out = {}
    for k in range(nbins):
        if counts[k]:
            out[<double> (lo + k) * bin_deg] = sums[k] / <double> counts[k]
    return out


def first_settled(const double[::1] angle_deg, double settled_deg, double band_deg,
                  Py_ssize_t keep):
    """First index from which ``keep`` samples in a row lie within ±band of the settled angle
    (|angle - settled| <= band), or -1."""
    cdef Py_ssize_t n = angle_deg.shape[0], i, run = 0
    for i in range(n):
        if abs(angle_deg[i] - settled_deg) <= band_deg:
            run += 1
            if run >= keep:
                return i - keep + 1
        else:
            run = 0
    return -1



cdef inline double _bin_hz(Py_ssize_t i, double rate_hz, double n_fft) noexcept nogil:
    """Frequency of spectrum bin i, rounded as ``np.arange(size) * rate_hz / n_fft`` is."""
    return ((<double> i) * rate_hz) / n_fft


def spectrum_bins_up_to(Py_ssize_t size, double rate_hz, double n_fft, double fc_max_hz):
    """How many of the ``size`` bins of an ``n_fft``-point spectrum lie at or below
    ``fc_max_hz`` (the bin frequencies ascend, so the count is where they first exceed it)."""
    cdef Py_ssize_t i
    for i in range(size):
        if not _bin_hz(i, rate_hz, n_fft) <= fc_max_hz:
            return i
    return size


def arc_length_terms(const double[::1] mag, Py_ssize_t k, double rate_hz, double n_fft,
                     double amplitude_threshold, double[::1] terms):
    """SPARC's arc-length elements over the first ``k`` bins of the magnitude spectrum ``mag``,
    normalised by its DC value and cut after the last bin at or above ``amplitude_threshold``:
    ``terms[j] = sqrt(df² + dm²)`` from bin j to j + 1, the frequency step relative to the
    kept span. Returns the number of terms (0 when fewer than 2 bins are kept); their sum,
    negated, is the SPARC value."""
    cdef Py_ssize_t i, last = 0
    cdef double m0 = mag[0], span, df, dm
    for i in range(k):
        if mag[i] / m0 >= amplitude_threshold:
            last = i
    if last < 1:
        return 0
    span = _bin_hz(last, rate_hz, n_fft) - _bin_hz(0, rate_hz, n_fft)
    with nogil:
        for i in range(last):
            df = (_bin_hz(i + 1, rate_hz, n_fft) - _bin_hz(i, rate_hz, n_fft)) / span
            dm = mag[i + 1] / m0 - mag[i] / m0
            terms[i] = sqrt(df * df + dm * dm)
    return last


cdef double _pairwise_sum(const double* a, Py_ssize_t n) noexcept nogil:
    """numpy's pairwise summation of a contiguous float64 run (its ``DOUBLE_pairwise_sum``):
    under 8 values in order, up to 128 in 8 interleaved partial sums, beyond that the two
    halves (split at a multiple of 8) summed separately."""
    cdef Py_ssize_t i, j, n2
    cdef double r[8]
    cdef double res
    if n < 8:
        res = -0.0
        for i in range(n):
            res += a[i]
        return res
    if n <= 128:
        for j in range(8):
            r[j] = a[j]
        i = 8
        while i < n - (n % 8):
            for j in range(8):
                r[j] += a[i + j]
            i += 8
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < n:
            res += a[i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _pairwise_sum(a, n2) + _pairwise_sum(a + n2, n - n2)


def add_reduce(const double[::1] values):
    """``np.add.reduce`` of a 1-D float64 array, bit for bit (the identity 0.0 plus the
    pairwise sum), for callers that sum many short runs."""
    if values.shape[0] == 0:
        return 0.0
    return 0.0 + _pairwise_sum(&values[0], values.shape[0])


def mean_curve(curves):
    """Bin-wise mean of force-angle curves ({bin: force} dicts, in order), sorted by bin: each
    bin's values in curve order, summed as ``np.add.reduce`` sums them, divided by their count."""
    cdef dict acc = {}
    cdef list values
    cdef Py_ssize_t i, n, most = 0
    for c in curves:
        for k, v in c.items():
            values = acc.get(k)
            if values is None:
                acc[k] = [v]
            else:
                values.append(v)
    for values in acc.values():
        most = max(most, len(values))
    cdef double* buf = <double*> malloc(max(most, 1) * sizeof(double))
    if buf == NULL:
        raise MemoryError()
    out = {}
    try:
        for k in sorted(acc):
            values = acc[k]
            n = len(values)
            for i in range(n):
                buf[i] = float(values[i])
            out[k] = (0.0 + _pairwise_sum(buf, n)) / <double> n
    finally:
        free(buf)
    return out


def bell_fit_profile(const double[::1] rate_dps, double direction, Py_ssize_t q, double t_first_s,
                     double rate_hz, double[::1] t_out, double[::1] speed_out):
    """The speed a swing's bell fit works on, in one pass: ``max(rate · direction, 0)``
    averaged over consecutive runs of ``q`` samples (as ``np.maximum`` then
    ``np.add.reduce(x.reshape(-1, q), axis=1) / q`` give it), at the runs' mid times
    ``t_first_s + (j·q + (q − 1)/2) / rate_hz``. Fills ``len(rate_dps) // q`` values of each
    output and returns their sum (``np.add.reduce``'s pairwise sum)."""
    cdef Py_ssize_t j, i, m = rate_dps.shape[0] // q
    cdef double half = 0.5 * <double> (q - 1), x, total
    cdef double* run = <double*> malloc(max(q, 1) * sizeof(double))
    if run == NULL:
        raise MemoryError()
    with nogil:
        for j in range(m):
            for i in range(q):
                x = rate_dps[j * q + i] * direction
                # np.maximum(x, 0.0): x when x >= 0 or NaN
                run[i] = x if (x >= 0.0 or x != x) else 0.0
            speed_out[j] = (0.0 + _pairwise_sum(run, q)) / <double> q
            t_out[j] = t_first_s + (<double> (j * q) + half) / rate_hz
        total = 0.0 + _pairwise_sum(&speed_out[0], m) if m > 0 else 0.0
    free(run)
    return total


def trapezoid_sum(const double[::1] t_s, const double[::1] f, Py_ssize_t i0, Py_ssize_t m,
                  double t_from, double t_to, double f_from, double f_to):
    """Trapezoidal integral through (t_from, f_from), the samples i0 .. i0 + m − 1 and
    (t_to, f_to): ``(0.5 · (f[k+1] + f[k]) · (t[k+1] − t[k])).sum()`` over those points, as
    numpy computes and sums it (pairwise)."""
    cdef Py_ssize_t k
    cdef double ta, tb, fa, fb, total
    if i0 < 0 or m < 0 or i0 + m > t_s.shape[0] or i0 + m > f.shape[0]:
        raise ValueError("trapezoid_sum: samples i0 .. i0 + m - 1 must lie in t_s and f")
    cdef double* terms = <double*> malloc((m + 1) * sizeof(double))
    if terms == NULL:
        raise MemoryError()
    with nogil:
        ta, fa = t_from, f_from
        for k in range(m + 1):
            if k < m:
                tb, fb = t_s[i0 + k], f[i0 + k]
            else:
                tb, fb = t_to, f_to
            terms[k] = 0.5 * (fb + fa) * (tb - ta)
            ta, fa = tb, fb
        total = 0.0 + _pairwise_sum(terms, m + 1)
    free(terms)
    return total


def mean_of(const double[::1] values):
    """``values.mean()`` bit for bit (numpy's pairwise sum divided by the count) without the
    Python wrapper around it; NaN for no values."""
    cdef Py_ssize_t n = values.shape[0]
    if n == 0:
        return float("nan")
    return (0.0 + _pairwise_sum(&values[0], n)) / <double> n
