# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# distutils: extra_compile_args = -ffp-contract=off
"""Sample-and-hold lookup of a stream at other times (private; used by the pipeline).

One pass instead of the numpy chain floor -> cast -> clip -> gather -> mask it replaces, with the
same arithmetic per element. Compiled without floating-point contraction so that
``(t - t0) * rate + 1e-9`` rounds twice, as numpy's separate operations do, on every CPU.
"""

from libc.math cimport floor, NAN


cdef inline double _latest(double t, double t0_s, double rate_hz, long long index0,
                           const double[::1] values, long long first, long long last) noexcept nogil:
    """The value of the latest sample at or before time ``t`` (NaN before the stream)."""
    cdef double x = (t - t0_s) * rate_hz
    cdef long long k, pos
    x = x + 1e-9
    k = <long long> floor(x) - index0
    if k < 0 or last < 0:
        return NAN
    pos = k - first
    if pos > last:
        pos = last
    if pos < 0:
        pos = 0
    return values[pos]


def latest_at(const double[::1] t_s, double t0_s, double rate_hz, long long index0,
              const double[::1] values, long long first, double[::1] out):
    """``out[i]`` = the value of the latest sample at or before ``t_s[i]``: sample number
    floor((t - t0) · rate + 1e-9) − index0, clipped to the kept ``values`` (sample numbers
    ``first`` ...), NaN where that number is negative (before the stream began)."""
    cdef Py_ssize_t i, n = t_s.shape[0]
    cdef long long last = values.shape[0] - 1
    with nogil:
        for i in range(n):
            out[i] = _latest(t_s[i], t0_s, rate_hz, index0, values, first, last)


def latest_on_grid(double t_first_s, double grid_rate_hz, double t0_s, double rate_hz,
                   long long index0, const double[::1] values, long long first, double[::1] out):
    """``latest_at`` at the times ``t_first_s + i / grid_rate_hz`` (i = 0 .. len(out) − 1),
    each computed as numpy's ``t_first_s + np.arange(n) / grid_rate_hz`` does (the same two
    roundings), without building the time array."""
    cdef Py_ssize_t i, n = out.shape[0]
    cdef long long last = values.shape[0] - 1
    cdef double t
    with nogil:
        for i in range(n):
            t = (<double> i) / grid_rate_hz
            t = t_first_s + t
            out[i] = _latest(t, t0_s, rate_hz, index0, values, first, last)


cdef inline double _grid_at(double t_first_s, double grid_rate_hz, Py_ssize_t j) noexcept nogil:
    """Time of grid sample j, rounded as ``t_first_s + np.arange(n) / grid_rate_hz`` is."""
    cdef double t = (<double> j) / grid_rate_hz
    return t_first_s + t


def interp_on_grid(const double[::1] x_s, double t_first_s, double grid_rate_hz,
                   const double[::1] values, double[::1] out):
    """``np.interp(x_s, t_first_s + np.arange(n) / grid_rate_hz, values)`` bit for bit, the
    interval of each point found from the uniform grid instead of a binary search (each point
    is interpolated on its own by the same formula, ends held, NaN passed through)."""
    cdef Py_ssize_t i, j, n = values.shape[0], m = x_s.shape[0]
    cdef double x, x0, x_last, slope, r, g, gj, gj1
    if n == 0:
        raise ValueError("interp_on_grid needs at least one grid value")
    # Each grid time is a division; the ends are the same for every point, and within a
    # point each grid time needed is computed once (the same value as recomputing it).
    x0 = _grid_at(t_first_s, grid_rate_hz, 0)
    x_last = _grid_at(t_first_s, grid_rate_hz, n - 1)
    with nogil:
        for i in range(m):
            x = x_s[i]
            if n == 1:  # numpy: the one value everywhere, even at NaN
                out[i] = values[0]
                continue
            if x != x:
                out[i] = x
                continue
            if x < x0:
                out[i] = values[0]
                continue
            if x > x_last:
                out[i] = values[n - 1]
                continue
            # the last grid sample at or before x: a guess, then exact steps on the grid times
            g = floor((x - x0) * grid_rate_hz)
            j = <Py_ssize_t> (0.0 if g < 0.0 else (<double> (n - 1) if g > n - 1 else g))
            gj = _grid_at(t_first_s, grid_rate_hz, j)
            gj1 = _grid_at(t_first_s, grid_rate_hz, j + 1) if j + 1 < n else 0.0
            while j + 1 < n and gj1 <= x:
                j += 1
                gj = gj1
                gj1 = _grid_at(t_first_s, grid_rate_hz, j + 1) if j + 1 < n else 0.0
            while j > 0 and gj > x:
                j -= 1
                gj1 = gj
                gj = _grid_at(t_first_s, grid_rate_hz, j)
            if j == n - 1 or gj == x:
                out[i] = values[j]
                continue
            slope = (values[j + 1] - values[j]) / (gj1 - gj)
            r = slope * (x - gj) + values[j]
            if r != r:
                r = slope * (x - gj1) + values[j + 1]
                if r != r and values[j] == values[j + 1]:
                    r = values[j]
            out[i] = r
