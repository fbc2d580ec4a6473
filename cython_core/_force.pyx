# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Streaming force-contraction detector kernel (METRICS.md "Force").

Private: use :mod:`spinecoach.core.force`, which validates inputs and computes the contraction
figures. One call consumes samples until the block ends or a contraction ends; all state lives in
:class:`ForceKernelState`, so any split of a recording into blocks gives the same samples to the
same decisions.

Per sample the kernel keeps the quiet baseline of METRICS.md continuously: the mean and SD of
every 1 s window (running sums over a ring of the last 3 s), and a monotonic deque that yields the
lowest-SD window lying wholly inside the 3 s before the current sample. A sample above that
baseline's onset threshold starts a contraction; the baseline is then frozen and every sample
(plus the 3 s before the trigger) is copied to ``buf`` so the wrapper can walk back to the onset.
"""

import numpy as np

from libc.math cimport sqrt, fmax, fmin

DEF IDLE = 0
DEF ACTIVE = 1

# Return codes of force_step.
STEP_BLOCK_DONE = 0
STEP_CONTRACTION_END = 1


cdef class ForceKernelState:
    """All state of the detector; sample counts, not seconds (set by the wrapper from the rate)."""

    cdef public int win_n          # quiet window (samples)
    cdef public int search_n       # baseline search span before the current sample (samples)
    cdef public int end_n          # samples below baseline + floor that end a contraction
    cdef public long long max_active_n  # longest contraction before a forced end (samples)
    cdef public double k_sd
    cdef public double floor_n
    # ring of the last search_n samples and of the window statistics ending at each of them
    cdef public double[::1] ring
    cdef public double[::1] ring_mean
    cdef public double[::1] ring_sd
    cdef public long long[::1] deque
    cdef public int dq_head
    cdef public int dq_len
    cdef public double s1
    cdef public double s2
    cdef public double ref             # offset subtracted before the running sums (precision)
    cdef public long long n_seen       # samples consumed so far (= sample number of the next one)
    cdef public double last_valid
    cdef public bint have_valid
    # contraction in progress
    cdef public int mode
    cdef public double base_mean
    cdef public double base_sd
    cdef public double threshold
    cdef public long long trigger_n
    cdef public long long buf_start_n  # sample number of buf[0]
    cdef public double[::1] buf
    cdef public long long buf_len
    cdef public long long below_count
    cdef public long long below_start_n
    cdef public long long end_n_sample  # sample number of the contraction end (first sample below)
    cdef public long long n_invalid
    # a contraction also ends where the force settles (within floor_n for settle_n samples)
    # below base_mean + max(floor_n, settle_frac x rise): a baseline that wandered meanwhile
    cdef public int settle_n           # 0: off
    cdef public double settle_frac
    cdef public double peak
    cdef public long long settle_start_n
    cdef public double settle_lo
    cdef public double settle_hi

    def __init__(self, int win_n, int search_n, int end_n, long long max_active_n,
                 double k_sd, double floor_n, int settle_n=0, double settle_frac=0.0):
        self.settle_n = settle_n
        self.settle_frac = settle_frac
        self.settle_start_n = -1
        self.win_n = win_n
        self.search_n = search_n
        self.end_n = end_n
        self.max_active_n = max_active_n
        self.k_sd = k_sd
        self.floor_n = floor_n
        self.ring = np.zeros(search_n, dtype=np.float64)
        self.ring_mean = np.zeros(search_n, dtype=np.float64)
        self.ring_sd = np.zeros(search_n, dtype=np.float64)
        self.deque = np.zeros(search_n, dtype=np.int64)
        self.dq_head = 0
        self.dq_len = 0
        self.s1 = 0.0
        self.s2 = 0.0
        self.ref = 0.0
        self.n_seen = 0
        self.last_valid = 0.0
        self.have_valid = False
        self.mode = IDLE
        self.buf = np.zeros(search_n + 1024, dtype=np.float64)
        self.buf_len = 0
        self.below_count = 0
        self.n_invalid = 0

    def ensure_capacity(self, long long extra):
        """Grow ``buf`` so ``extra`` more samples (plus a full pre-trigger ring) fit."""
        cdef long long need = self.buf_len + extra + self.search_n + 1
        if need > self.buf.shape[0]:
            # only buf[:buf_len] is ever read, so the new tail need not be zeroed
            new = np.empty(max(need, 2 * self.buf.shape[0]), dtype=np.float64)
            new[: self.buf_len] = np.asarray(self.buf)[: self.buf_len]
            self.buf = new

    def copy(self):
        """An independent copy (snapshots for tests and what-if replays)."""
        cdef ForceKernelState other = ForceKernelState(
            self.win_n, self.search_n, self.end_n, self.max_active_n, self.k_sd, self.floor_n,
            self.settle_n, self.settle_frac)
        other.ring = np.array(self.ring)
        other.ring_mean = np.array(self.ring_mean)
        other.ring_sd = np.array(self.ring_sd)
        other.deque = np.array(self.deque)
        other.buf = np.array(self.buf)
        for name in ("dq_head", "dq_len", "s1", "s2", "ref", "n_seen", "last_valid", "have_valid",
                     "mode", "base_mean", "base_sd", "threshold", "trigger_n", "buf_start_n",
                     "buf_len", "below_count", "below_start_n", "end_n_sample", "n_invalid",
                     "peak", "settle_start_n", "settle_lo", "settle_hi"):
            setattr(other, name, getattr(self, name))
        return other


cdef inline void _start_contraction(ForceKernelState st, double x) noexcept nogil:
    """Freeze the baseline, copy the pre-trigger ring into buf, start counting."""
    cdef long long n = st.n_seen
    cdef long long n_pre = n if n < st.search_n else st.search_n
    cdef long long j
    cdef long long dq_front = st.deque[st.dq_head]
    cdef int slot = <int>(dq_front % st.search_n)
    st.base_mean = st.ring_mean[slot]
    st.base_sd = st.ring_sd[slot]
    st.mode = ACTIVE
    st.trigger_n = n
    st.buf_start_n = n - n_pre
    for j in range(n_pre):
        st.buf[j] = st.ring[(n - n_pre + j) % st.search_n]
    st.buf_len = n_pre
    st.below_count = 0
    st.n_invalid = 0
    st.peak = x
    st.settle_start_n = -1


cdef inline bint _settled(ForceKernelState st, double x, long long k) noexcept nogil:
    """Track the run of samples below the settle level that stay within floor_n of each
    other; True once it is settle_n long (the force rests on a baseline that moved)."""
    st.peak = fmax(st.peak, x)
    if x >= st.base_mean + fmax(st.floor_n, st.settle_frac * (st.peak - st.base_mean)):
        st.settle_start_n = -1
        return False
    if st.settle_start_n < 0 or fmax(st.settle_hi, x) - fmin(st.settle_lo, x) > st.floor_n:
        st.settle_start_n = k
        st.settle_lo = x
        st.settle_hi = x
    else:
        st.settle_lo = fmin(st.settle_lo, x)
        st.settle_hi = fmax(st.settle_hi, x)
    return k - st.settle_start_n + 1 >= st.settle_n


cdef inline double _threshold(ForceKernelState st) noexcept nogil:
    return st.base_mean + fmax(st.k_sd * st.base_sd, st.floor_n)


cdef inline int _wrap(int v, int r) noexcept nogil:
    """v % r for 0 <= v < 2 r (deque positions: head and length each below r), without the
    integer division."""
    return v - r if v >= r else v


cdef inline int _slot_of(long long j, long long k, int slot_k, int r) noexcept nogil:
    """j % r for a sample j with k - r < j <= k (the deque's window ends, all within the
    search span before sample k), from slot_k = k % r."""
    cdef int s = slot_k - <int>(k - j)
    return s + r if s < 0 else s


def force_step(ForceKernelState st, const double[::1] force_n, const unsigned char[::1] valid,
               Py_ssize_t start):
    """Consume samples from ``start``; return (next position, code).

    ``code`` is STEP_CONTRACTION_END when the sample just consumed ended a contraction (its
    samples are in ``st.buf``; the wrapper measures it and calls again from the returned
    position), else STEP_BLOCK_DONE. The caller guarantees ``st.buf`` capacity for the block.
    """
    cdef Py_ssize_t i, n = force_n.shape[0]
    cdef double x, old, mean, var, sd, thr
    cdef long long k, first_end
    cdef int slot, w = st.win_n, R = st.search_n
    cdef int code = 0
    # k % R of the sample being consumed, stepped on per sample (no integer division)
    cdef int slot_k = <int>(st.n_seen % R)
    with nogil:
        i = start
        while i < n:
            k = st.n_seen
            if valid[i]:
                x = force_n[i]
                st.last_valid = x
                if not st.have_valid:
                    st.have_valid = True
                    st.ref = x
            else:
                x = st.last_valid
                if st.mode == ACTIVE:
                    st.n_invalid += 1
            # -- contraction logic against the baseline of the windows before this sample --
            if st.mode == IDLE:
                if st.dq_len > 0:
                    slot = _slot_of(st.deque[st.dq_head], k, slot_k, R)
                    thr = st.ring_mean[slot] + fmax(st.k_sd * st.ring_sd[slot], st.floor_n)
                    if x > thr and st.have_valid:
                        _start_contraction(st, x)
                        st.threshold = _threshold(st)
            if st.mode == ACTIVE:
                st.buf[st.buf_len] = x
                st.buf_len += 1
                if x < st.base_mean + st.floor_n:
                    if st.below_count == 0:
                        st.below_start_n = k
                    st.below_count += 1
                else:
                    st.below_count = 0
                if st.settle_n > 0 and _settled(st, x, k):
                    st.end_n_sample = st.settle_start_n
                    code = 1
                elif st.below_count >= st.end_n:
                    st.end_n_sample = st.below_start_n
                    code = 1
                elif k - st.trigger_n + 1 >= st.max_active_n:
                    st.end_n_sample = k + 1
                    code = 1
            # -- update the running 1 s window and the lowest-SD deque with this sample --
            slot = slot_k
            if k >= w:
                # (k - w) % R from k % R (0 < w < R): one integer division a sample fewer
                old = st.ring[slot - w + R if slot < w else slot - w] - st.ref
                st.s1 -= old
                st.s2 -= old * old
            st.ring[slot] = x
            st.s1 += x - st.ref
            st.s2 += (x - st.ref) * (x - st.ref)
            if k >= w - 1:
                mean = st.s1 / w
                var = st.s2 / w - mean * mean
                sd = sqrt(var) if var > 0.0 else 0.0
                st.ring_mean[slot] = mean + st.ref
                st.ring_sd[slot] = sd
                # windows ending at j are usable for a later sample m when j >= m - R + w - 1
                while st.dq_len > 0 and st.ring_sd[_slot_of(st.deque[_wrap(st.dq_head + st.dq_len - 1, R)], k, slot_k, R)] >= sd:
                    st.dq_len -= 1
                st.deque[_wrap(st.dq_head + st.dq_len, R)] = k
                st.dq_len += 1
            first_end = k + 1 - R + w - 1
            while st.dq_len > 0 and st.deque[st.dq_head] < first_end:
                st.dq_head = _wrap(st.dq_head + 1, R)
                st.dq_len -= 1
            st.n_seen = k + 1
            slot_k = _wrap(slot_k + 1, R)
            i += 1
            if code == 1:
                st.mode = IDLE
                break
    return i, code
