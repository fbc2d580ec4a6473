# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Per-rep kernels: bell-shaped speed fit and quaternion-derived rep figures.

Private: used by :mod:`spinecoach.core.metrics` and the pipeline. They run once per rep on a few
hundred to a few thousand samples; in C they cost microseconds where the same numpy code paid
per-call overhead on every small array (the per-rep work dominated the pipeline's cost).
"""

from cpython.array cimport array, clone
from libc.math cimport asin, cos, fabs, sin, sqrt, M_PI

cdef array _DOUBLES = array("d")

#: Profiles (normalised speed, area 1 over u in [0, 1]): 0 minimum jerk, 1 half-cosine.
cdef enum:
    MIN_JERK = 0
    COSINE = 1


cdef inline double _shape(int kind, double u) noexcept nogil:
    if kind == MIN_JERK:
        return 30.0 * u * u * (1.0 - u) * (1.0 - u)
    return 0.5 * M_PI * sin(M_PI * u)


cdef inline double _dshape(int kind, double u) noexcept nogil:
    """d shape / du."""
    if kind == MIN_JERK:
        return 60.0 * u * (1.0 - u) * (1.0 - 2.0 * u)
    return 0.5 * M_PI * M_PI * cos(M_PI * u)


cdef double _sse(const double[::1] t, const double[::1] v, double t0, double dur, double delta,
                 int kind) noexcept nogil:
    cdef Py_ssize_t i
    cdef double u, r, s = 0.0
    for i in range(t.shape[0]):
        u = (t[i] - t0) / dur
        r = -v[i]
        if 0.0 < u < 1.0:
            r += delta / dur * _shape(kind, u)
        s += r * r
    return s


cdef Py_ssize_t _first_above(const double[::1] t_s, double t0, double d, Py_ssize_t lo,
                             Py_ssize_t hi) noexcept nogil:
    """First i in [lo, hi) of ascending ``t_s`` with ``t_s[i] - t0 > d`` (hi if none)."""
    cdef Py_ssize_t mid
    while lo < hi:
        mid = lo + (hi - lo) // 2
        if t_s[mid] - t0 > d:
            hi = mid
        else:
            lo = mid + 1
    return lo


def fit_bell(const double[::1] t_s, const double[::1] v, double delta, double start_s,
             double length_s, int kind, int max_iter=12, bint free_amplitude=False):
    """Gauss-Newton fit of ``delta / dur * shape((t - t0) / dur)`` to the speed ``v`` (°/s).

    Start (t0, s) and duration (dur, s) begin at ``start_s - 0.05 length`` and ``1.1 length``;
    each step is clipped to ±0.2 length so the fit cannot jump to a neighbouring movement.
    With ``free_amplitude`` the angle change ``delta`` (°) is a third parameter starting from
    the given value. Jacobian in closed form. Returns (t0, dur, sse, delta) or None if the
    duration collapses below 0.1 length or the amplitude changes sign.
    """
    cdef Py_ssize_t i, n = t_s.shape[0]
    cdef double t0 = start_s - 0.05 * length_s
    cdef double dur = 1.1 * length_s
    cdef double amp = delta
    cdef double lim = 0.2 * length_s
    cdef double u, sh, dsh, k, r, j0, j1, j2, det, s0, s1, s2
    cdef double a00, a01, a02, a11, a12, a22, g0, g1, g2, c00, c01, c02, c11, c12, c22
    cdef int it
    cdef Py_ssize_t lo = 0, hi = n
    cdef bint ascending = True
    with nogil:
        for i in range(1, n):
            if not t_s[i] >= t_s[i - 1]:
                ascending = False
                break
        for it in range(max_iter):
            a00 = a01 = a02 = a11 = a12 = a22 = g0 = g1 = g2 = 0.0
            k = amp / (dur * dur)
            if ascending and dur > 0.0:
                # Only samples with 0 < t - t0 <= dur can have 0 < u < 1 (the rounded
                # difference and quotient are monotonic), and on ascending times they are one
                # run: the others add nothing, and are not visited.
                lo = _first_above(t_s, t0, 0.0, 0, n)
                hi = _first_above(t_s, t0, dur, lo, n)
            else:
                lo, hi = 0, n
            for i in range(lo, hi):
                u = (t_s[i] - t0) / dur
                r = -v[i]
                if 0.0 < u < 1.0:
                    sh = _shape(kind, u)
                    dsh = _dshape(kind, u)
                    r += amp / dur * sh
                    j0 = -k * dsh
                    j1 = -k * (sh + u * dsh)
                    j2 = sh / dur
                    a00 += j0 * j0
                    a01 += j0 * j1
                    a11 += j1 * j1
                    a02 += j0 * j2
                    a12 += j1 * j2
                    a22 += j2 * j2
                    g0 -= j0 * r
                    g1 -= j1 * r
                    g2 -= j2 * r
            if free_amplitude:
                # 3x3 normal equations by the adjugate
                c00 = a11 * a22 - a12 * a12
                c01 = a02 * a12 - a01 * a22
                c02 = a01 * a12 - a02 * a11
                c11 = a00 * a22 - a02 * a02
                c12 = a01 * a02 - a00 * a12
                c22 = a00 * a11 - a01 * a01
                det = a00 * c00 + a01 * c01 + a02 * c02
                if not fabs(det) > 1e-12 * (a00 * a11 * a22 if a00 * a11 * a22 > 1e-300 else 1e-300):
                    break
                s0 = (c00 * g0 + c01 * g1 + c02 * g2) / det
                s1 = (c01 * g0 + c11 * g1 + c12 * g2) / det
                s2 = (c02 * g0 + c12 * g1 + c22 * g2) / det
            else:
                det = a00 * a11 - a01 * a01
                if not det > 1e-12 * (a00 * a11 if a00 * a11 > 1e-300 else 1e-300):
                    break
                s0 = (a11 * g0 - a01 * g1) / det
                s1 = (a00 * g1 - a01 * g0) / det
                s2 = 0.0
            s0 = lim if s0 > lim else (-lim if s0 < -lim else s0)
            s1 = lim if s1 > lim else (-lim if s1 < -lim else s1)
            t0 += s0
            dur += s1
            amp += s2
            if dur <= 0.1 * length_s or amp * delta <= 0.0:
                break
            if fabs(s0) < 1e-5 and fabs(s1) < 1e-5 and fabs(s2) < 1e-5 * fabs(delta):
                break
    if dur <= 0.1 * length_s or amp * delta <= 0.0:
        return None
    return t0, dur, _sse(t_s, v, t0, dur, amp, kind), amp


cdef inline double _abs_vertical_rate(const double[:, ::1] q, const double[:, ::1] gyro_dps,
                                      Py_ssize_t i) noexcept nogil:
    """|gyro · earth-up in the sensor frame| (°/s) at sample i."""
    cdef double w = q[i, 0], x = q[i, 1], y = q[i, 2], z = q[i, 3]
    return fabs(2.0 * (x * z - w * y) * gyro_dps[i, 0]
                + 2.0 * (y * z + w * x) * gyro_dps[i, 1]
                + (1.0 - 2.0 * (x * x + y * y)) * gyro_dps[i, 2])


def peak_vertical_rate(const double[:, ::1] q, const double[:, ::1] gyro_dps):
    """Largest |gyro · earth-up in the sensor frame| (°/s) over the samples; 0 without any."""
    cdef Py_ssize_t i, n = q.shape[0]
    cdef double r, best = 0.0
    with nogil:
        for i in range(n):
            r = _abs_vertical_rate(q, gyro_dps, i)
            if r > best:
                best = r
    return best


def abs_vertical_rates(const double[:, ::1] q, const double[:, ::1] gyro_dps, double[::1] out):
    """``out[i]`` = |gyro · earth-up in the sensor frame| (°/s) of each sample, the values
    ``peak_vertical_rate`` takes the largest of (for a pipeline that keeps one number per
    sample instead of the gyro)."""
    cdef Py_ssize_t i, n = q.shape[0]
    with nogil:
        for i in range(n):
            out[i] = _abs_vertical_rate(q, gyro_dps, i)


def peak_of(const double[::1] rates):
    """Largest value above 0 of ``rates`` (0 without any; NaN never wins), as
    ``peak_vertical_rate`` picks it."""
    cdef Py_ssize_t i
    cdef double best = 0.0
    with nogil:
        for i in range(rates.shape[0]):
            if rates[i] > best:
                best = rates[i]
    return best


def axis_tilt_rms(const double[:, ::1] q, double a0, double a1, double a2):
    """RMS about its mean of asin(earth-up · axis) (°) over the samples (axis in the sensor
    frame): the tilt of the working axis out of the horizontal. Two-pass for accuracy."""
    cdef Py_ssize_t i, n = q.shape[0]
    cdef double w, x, y, z, d, mean = 0.0, acc = 0.0
    if n == 0:
        return 0.0
    cdef double[::1] tilt = _scratch(n)
    with nogil:
        for i in range(n):
            w, x, y, z = q[i, 0], q[i, 1], q[i, 2], q[i, 3]
            d = (2.0 * (x * z - w * y) * a0 + 2.0 * (y * z + w * x) * a1
                 + (1.0 - 2.0 * (x * x + y * y)) * a2)
            d = 1.0 if d > 1.0 else (-1.0 if d < -1.0 else d)
            tilt[i] = asin(d) * (180.0 / M_PI)
            mean += tilt[i]
        mean /= n
        for i in range(n):
            d = tilt[i] - mean
            acc += d * d
    return sqrt(acc / n)


cdef double[::1] _scratch(Py_ssize_t n):
    return clone(_DOUBLES, n, False)
