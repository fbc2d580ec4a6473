# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Loops behind per-rep and per-hold figures of :mod:`spinecoach.core.metrics` (private).

Each replaces a chain of a dozen small numpy calls over a rep's samples with one pass, computing
exactly what the numpy form computed, element by element and in the same order (bin sums
accumulate in sample order as ``np.bincount`` does), so the figures are bit for bit the same.
"""

from libc.math cimport floor, isfinite

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
