# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Filter kernels (private; use spinecoach.core.filters).

Both keep their state in caller-owned arrays, so a signal processed in blocks of any size gives
bit for bit the output of one block.
"""

from libc.math cimport fabs


def sosfilt(const double[:, ::1] sos, const double[:, ::1] x, double[:, :, ::1] zi,
            double[:, ::1] y):
    """Cascade of biquads (transposed direct form II) over x (n, channels) into y.

    ``sos`` rows are [b0, b1, b2, 1, a1, a2]; ``zi`` (sections, channels, 2) is read as the
    state before the block and left as the state after it (scipy's ``sosfilt`` with ``zi``).
    """
    cdef Py_ssize_t n = x.shape[0], channels = x.shape[1], sections = sos.shape[0]
    cdef Py_ssize_t i, ch, k
    cdef double v, out, z0, z1, b0, b1, b2, a1, a2
    if sections == 1:
        # One biquad (the 2nd-order low-pass): channel by channel with the state in locals,
        # so the recursion does not pass through memory; the same operations per sample.
        b0, b1, b2, a1, a2 = sos[0, 0], sos[0, 1], sos[0, 2], sos[0, 4], sos[0, 5]
        with nogil:
            for ch in range(channels):
                z0 = zi[0, ch, 0]
                z1 = zi[0, ch, 1]
                for i in range(n):
                    v = x[i, ch]
                    out = b0 * v + z0
                    z0 = b1 * v - a1 * out + z1
                    z1 = b2 * v - a2 * out
                    y[i, ch] = out
                zi[0, ch, 0] = z0
                zi[0, ch, 1] = z1
        return
    with nogil:
        for i in range(n):
            for ch in range(channels):
                v = x[i, ch]
                for k in range(sections):
                    out = sos[k, 0] * v + zi[k, ch, 0]
                    zi[k, ch, 0] = sos[k, 1] * v - sos[k, 4] * out + zi[k, ch, 1]
                    zi[k, ch, 1] = sos[k, 2] * v - sos[k, 5] * out
                    v = out
                y[i, ch] = v


cdef inline void sort_small(double* a, int n) noexcept nogil:
    """Insertion sort: the windows are a handful of samples."""
    cdef int i, j
    cdef double v
    for i in range(1, n):
        v = a[i]
        j = i - 1
        while j >= 0 and a[j] > v:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = v


cdef inline double middle_of_3(double a0, double a1, double a2) noexcept nogil:
    """The middle element ``sort_small`` leaves of three (the same one of equal values, so
    the same bits), by its compare-exchanges written as selections: the window's comparisons
    are noise, and as branches they are mispredicted half of the time."""
    cdef double t0 = a1 if a0 > a1 else a0
    cdef double t1 = a0 if a0 > a1 else a1
    cdef double u1 = a2 if t1 > a2 else t1
    return t0 if t0 > u1 else u1


def hampel(const double[::1] x, double[::1] y, unsigned char[::1] replaced, double[::1] state,
           int half, double threshold, double floor):
    """Centred Hampel filter with a fixed delay of ``half`` samples.

    ``state`` = [samples seen, ring of the last 2·half + 1 inputs]. Output i is input i − half,
    replaced by the window median when it is more than max(threshold·1.4826·MAD, floor) away
    from it (1.4826·MAD estimates the SD of Gaussian noise). Before the first input the signal is
    taken to equal it (edge padding), so the first ``half`` outputs repeat the first input.
    """
    cdef Py_ssize_t n = x.shape[0]
    cdef int w = 2 * half + 1
    cdef double* ring = &state[1]
    cdef double window[255]
    cdef double dev[255]
    cdef Py_ssize_t i, seen
    cdef int j, centre, slot
    cdef double med, mad, limit, v
    if n == 0:
        return
    with nogil:
        # the ring slot of the newest input and the centre's, seen % w and (seen - half) % w,
        # are stepped on per sample rather than divided out (two integer divisions a sample)
        seen = <Py_ssize_t> state[0]
        slot = <int> (seen % w)
        centre = <int> ((seen - half) % w)
        if centre < 0:
            centre += w
        for i in range(n):
            if seen == 0:
                for j in range(w):
                    ring[j] = x[i]
            else:
                ring[slot] = x[i]
            seen += 1
            state[0] = seen
            if w == 3:
                med = middle_of_3(ring[0], ring[1], ring[2])
                mad = middle_of_3(fabs(ring[0] - med), fabs(ring[1] - med), fabs(ring[2] - med))
            else:
                for j in range(w):
                    window[j] = ring[j]
                sort_small(window, w)
                med = window[half]
                for j in range(w):
                    dev[j] = fabs(ring[j] - med)
                sort_small(dev, w)
                mad = dev[half]
            limit = threshold * 1.4826 * mad
            if limit < floor:
                limit = floor
            v = ring[centre]
            if fabs(v - med) > limit:
                y[i] = med
                replaced[i] = 1
            else:
                y[i] = v
                replaced[i] = 0
            slot = 0 if slot == w - 1 else slot + 1
            centre = 0 if centre == w - 1 else centre + 1
