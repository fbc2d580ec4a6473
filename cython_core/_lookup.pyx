# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# distutils: extra_compile_args = -ffp-contract=off
"""Sample-and-hold lookup of a stream at other times (private; used by the pipeline).

One pass instead of the numpy chain floor -> cast -> clip -> gather -> mask it replaces, with the
same arithmetic per element. Compiled without floating-point contraction so that
``(t - t0) * rate + 1e-9`` rounds twice, as numpy's separate operations do, on every CPU.
"""

from libc.math cimport floor, NAN


def latest_at(const double[::1] t_s, double t0_s, double rate_hz, long long index0,
              const double[::1] values, long long first, double[::1] out):
    """``out[i]`` = the value of the latest sample at or before ``t_s[i]``: sample number
    floor((t - t0) · rate + 1e-9) − index0, clipped to the kept ``values`` (sample numbers
    ``first`` ...), NaN where that number is negative (before the stream began)."""
    cdef Py_ssize_t i, n = t_s.shape[0]
    cdef long long k, pos, last = values.shape[0] - 1
    cdef double x
    with nogil:
        for i in range(n):
            x = (t_s[i] - t0_s) * rate_hz
            x = x + 1e-9
            k = <long long> floor(x) - index0
            if k < 0 or last < 0:
                out[i] = NAN
                continue
            pos = k - first
            if pos > last:
                pos = last
            if pos < 0:
                pos = 0
            out[i] = values[pos]
