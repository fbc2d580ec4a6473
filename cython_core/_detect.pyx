# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Movement-phase and hold kernels (METRICS.md "Movement").

Private: use :mod:`spinecoach.core.detect`. Each kernel keeps all state in a ``cdef class`` and
writes what the samples decide into caller-provided output arrays (at most one decision per
sample), so splitting a recording into blocks of any size changes nothing.
"""

import numpy as np

from libc.math cimport fabs


cdef class PhaseKernelState:
    """Hysteresis phase classifier with a minimum phase length and boundary refinement.

    Phases: 0 still, +1 / -1 moving with positive / negative angular velocity. A raw state follows
    the thresholds (moving above ``move_dps``, still below ``still_dps``, a reversal when the
    velocity passes ``-move_dps``); a change is committed once the raw state has held for
    ``min_n`` samples. The committed boundary is refined from a ring of recent velocities: a
    movement onset is walked back from the threshold crossing to the baseline (through wiggles
    above ``base_dps``, then to where the speed stops falling), a stop is walked forward the same
    way, a reversal is placed at the zero crossing.
    """

    cdef public double move_dps
    cdef public double still_dps
    cdef public double base_dps
    cdef public int delay_n
    cdef public int min_n
    cdef public int ring_n
    cdef public double[::1] ring
    cdef public long long n_seen
    cdef public int phase          # committed
    cdef public long long boundary # first sample of the committed phase
    cdef public int raw
    cdef public int cand
    cdef public long long cand_start

    def __init__(self, double move_dps, double still_dps, int min_n, int walk_n,
                 double base_dps, int delay_n=0):
        self.move_dps = move_dps
        self.still_dps = still_dps
        self.base_dps = base_dps
        self.delay_n = delay_n
        self.min_n = min_n
        self.ring_n = walk_n + min_n + 2
        self.ring = np.zeros(self.ring_n, dtype=np.float64)
        self.n_seen = 0
        self.phase = 0
        self.boundary = 0
        self.raw = 0
        self.cand = 0
        self.cand_start = 0

    def copy(self):
        cdef PhaseKernelState o = PhaseKernelState(self.move_dps, self.still_dps, self.min_n,
                                                   self.ring_n - self.min_n - 2, self.base_dps,
                                                   self.delay_n)
        o.ring = np.array(self.ring)
        o.n_seen, o.phase, o.boundary = self.n_seen, self.phase, self.boundary
        o.raw, o.cand, o.cand_start = self.raw, self.cand, self.cand_start
        return o


cdef inline double _w(PhaseKernelState st, long long k) noexcept nogil:
    return st.ring[k % st.ring_n]


cdef long long _extrapolate_onset(PhaseKernelState st, long long j, long long limit, int c) noexcept nogil:
    """Zero crossing of the line through the last sample above the baseline speed and the
    threshold crossing ``j`` (walking back), or -1 without a usable lever."""
    cdef long long jb = j
    cdef double slope, z
    while jb - 1 >= limit and _w(st, jb - 1) * c > st.base_dps:
        jb -= 1
    if jb - 1 < limit or jb == j:
        return -1
    slope = (_w(st, j) * c - _w(st, jb) * c) / (j - jb)
    if slope <= 0:
        return -1
    z = jb - _w(st, jb) * c / slope
    if z < jb - (j - jb):
        z = jb - (j - jb)
    return <long long>(z + 0.5)


cdef long long _extrapolate_stop(PhaseKernelState st, long long j, long long k, int p) noexcept nogil:
    """Zero crossing of the line through the last sample above the still threshold (j - 1) and
    the last sample above the baseline speed (walking forward), or -1 without a usable lever."""
    cdef long long jb = j
    cdef long long ja
    cdef double slope, z
    while jb + 1 <= k and _w(st, jb) * p > st.base_dps:
        jb += 1
    if _w(st, jb) * p > st.base_dps:
        return -1
    ja = jb - 1
    if ja <= j - 1:
        return -1
    slope = (_w(st, j - 1) * p - _w(st, ja) * p) / (ja - (j - 1))
    if slope <= 0:
        return -1
    z = ja + _w(st, ja) * p / slope
    if z > ja + (ja - j + 1):
        z = ja + (ja - j + 1)
    if z > k:
        z = k
    return <long long>(z + 0.5)


cdef long long _refine(PhaseKernelState st, long long k) noexcept nogil:
    """Boundary sample of the candidate being committed at sample k.

    Onsets and stops take the better of two estimates of where the speed left / reached zero:
    walking to the first local minimum below the baseline speed (exact on clean signals) and
    extrapolating the speed's slope between the baseline and the threshold down to zero (robust
    to noise that leaves spurious minima). A walk stopped early by noise is always late for an
    onset and early for a stop, so the earlier onset / later stop wins.

    The velocity has been through a causal low-pass of group delay ``delay_n`` samples:
    extrapolated onsets, stops and zero crossings lag by that much and are moved back; an onset
    found by walking back to the first sample that left zero does not lag.
    """
    cdef long long i = st.cand_start
    cdef long long x
    cdef long long limit = st.boundary + 1
    cdef long long oldest = k - st.ring_n + 1
    cdef int c = st.cand, p = st.phase
    if oldest > limit:
        limit = oldest
    if p == 0:
        while i - 1 >= limit and _w(st, i - 1) * c > 0 and (
                fabs(_w(st, i - 1)) < fabs(_w(st, i)) or fabs(_w(st, i - 1)) > st.base_dps):
            i -= 1
        x = _extrapolate_onset(st, st.cand_start, limit, c)
        if x >= 0 and x - st.delay_n < i:
            i = x - st.delay_n
    elif c == 0:
        while i + 1 <= k and _w(st, i) * p > 0 and (
                fabs(_w(st, i + 1)) < fabs(_w(st, i)) or fabs(_w(st, i)) > st.base_dps):
            i += 1
        if st.cand_start - 1 >= limit:
            x = _extrapolate_stop(st, st.cand_start, k, p)
            if x > i:
                i = x
        i -= st.delay_n
    else:
        # reversal: back to the first sample of the new sign
        while i - 1 >= limit and _w(st, i - 1) * c > 0:
            i -= 1
        i -= st.delay_n
    if i < limit:
        i = limit
    return i


def phase_step(PhaseKernelState st, const double[::1] omega_dps, long long[::1] out_boundary,
               signed char[::1] out_phase, long long[::1] out_decided):
    """Classify the samples; write committed phase changes; return how many were written."""
    cdef Py_ssize_t i, n = omega_dps.shape[0]
    cdef Py_ssize_t n_out = 0
    cdef double w, a
    cdef long long k
    cdef int new_raw
    with nogil:
        for i in range(n):
            k = st.n_seen
            w = omega_dps[i]
            st.ring[k % st.ring_n] = w
            a = fabs(w)
            new_raw = st.raw
            if st.raw == 0:
                if a > st.move_dps:
                    new_raw = 1 if w > 0 else -1
            elif a < st.still_dps:
                new_raw = 0
            elif w * st.raw < -st.move_dps:
                new_raw = -st.raw
            if new_raw != st.raw:
                st.raw = new_raw
                if new_raw == st.phase:
                    st.cand = st.phase
                elif new_raw != st.cand or st.cand == st.phase:
                    st.cand = new_raw
                    st.cand_start = k
            if st.cand != st.phase and k - st.cand_start + 1 >= st.min_n:
                out_boundary[n_out] = _refine(st, k)
                out_phase[n_out] = st.cand
                out_decided[n_out] = k
                n_out += 1
                st.boundary = out_boundary[n_out - 1]
                st.phase = st.cand
            st.n_seen = k + 1
    return n_out


cdef class HoldKernelState:
    """Hold = angle inside [lo_deg, hi_deg] and force within ±frac of its running hold mean.

    A hold starts at the first sample where both hold; it ends at the first sample of a break
    (either condition failing) that lasts longer than ``debounce_n`` samples, so its duration is
    exact to one sample. Holds shorter than ``min_n`` samples are not reported.
    """

    cdef public double lo_deg
    cdef public double hi_deg
    cdef public double frac
    cdef public long long debounce_n
    cdef public long long min_n
    cdef public long long n_seen
    cdef public bint holding
    cdef public bint announced
    cdef public long long start
    cdef public double f_sum
    cdef public long long f_n
    cdef public long long break_count
    cdef public long long break_start
    cdef public int break_reason   # 1 angle left the band, 2 force unstable

    def __init__(self, double lo_deg, double hi_deg, double frac, long long debounce_n,
                 long long min_n):
        self.lo_deg = lo_deg
        self.hi_deg = hi_deg
        self.frac = frac
        self.debounce_n = debounce_n
        self.min_n = min_n
        self.n_seen = 0
        self.holding = False
        self.announced = False
        self.break_count = 0

    def copy(self):
        cdef HoldKernelState o = HoldKernelState(self.lo_deg, self.hi_deg, self.frac,
                                                 self.debounce_n, self.min_n)
        for name in ("n_seen", "holding", "announced", "start", "f_sum", "f_n", "break_count",
                     "break_start", "break_reason"):
            setattr(o, name, getattr(self, name))
        return o


cdef inline void _hold_begin(HoldKernelState st, long long k, double f) noexcept nogil:
    st.holding = True
    st.announced = False
    st.start = k
    st.break_count = 0
    if f == f:
        st.f_sum = f
        st.f_n = 1
    else:
        st.f_sum = 0.0
        st.f_n = 0


def hold_step(HoldKernelState st, const double[::1] angle_deg, const double[::1] force_n,
              signed char[::1] out_kind, long long[::1] out_start, long long[::1] out_end,
              long long[::1] out_decided, signed char[::1] out_reason):
    """Run the hold logic; NaN force means "no force reading" (angle only). Returns the count.

    Writes kind 1 (hold announced once it has lasted min_n samples; end = -1) and kind 2 (hold
    ended: start, end = first sample of the break, reason 1 angle / 2 force).
    """
    cdef Py_ssize_t i, n = angle_deg.shape[0]
    cdef Py_ssize_t n_out = 0
    cdef double th, f, mean
    cdef bint ok_angle, ok_force
    cdef long long k
    with nogil:
        for i in range(n):
            k = st.n_seen
            th = angle_deg[i]
            f = force_n[i]
            ok_angle = th >= st.lo_deg and th <= st.hi_deg
            if st.holding:
                ok_force = True
                if f == f and st.f_n > 0:
                    mean = st.f_sum / st.f_n
                    ok_force = fabs(f - mean) <= st.frac * fabs(mean)
                if ok_angle and ok_force:
                    st.break_count = 0
                    if f == f:
                        st.f_sum += f
                        st.f_n += 1
                    if not st.announced and k - st.start + 1 >= st.min_n:
                        st.announced = True
                        out_kind[n_out] = 1
                        out_start[n_out] = st.start
                        out_end[n_out] = -1
                        out_decided[n_out] = k
                        out_reason[n_out] = 0
                        n_out += 1
                else:
                    if st.break_count == 0:
                        st.break_start = k
                        st.break_reason = 1 if not ok_angle else 2
                    st.break_count += 1
                    if st.break_count > st.debounce_n:
                        st.holding = False
                        if st.break_start - st.start >= st.min_n:
                            out_kind[n_out] = 2
                            out_start[n_out] = st.start
                            out_end[n_out] = st.break_start
                            out_decided[n_out] = k
                            out_reason[n_out] = st.break_reason
                            n_out += 1
                        if ok_angle:
                            _hold_begin(st, k, f)
            elif ok_angle:
                _hold_begin(st, k, f)
            st.n_seen = k + 1
    return n_out
