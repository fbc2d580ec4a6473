# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Automatic zero tracking kernel (private; use spinecoach.core.calibration.ZeroTracker)."""

from libc.math cimport fabs

# State layout (float64 array): the tracked zero (N), samples unloaded-and-still so far, the
# stillness low-pass, and whether the low-pass has been started.
cdef enum:
    I_ZERO = 0
    I_QUIET = 1
    I_SMOOTH = 2
    I_STARTED = 3
    N_STATE = 4

ZERO = I_ZERO
STATE_SIZE = N_STATE


def track_zero(const double[::1] force_n, double[::1] out_n, unsigned char[::1] tracking,
               double[::1] state, double unloaded_band_n, double still_band_n,
               double smooth_alpha, double min_quiet_samples, double track_alpha):
    """Subtract a slowly tracked zero from force samples (N).

    A sample counts as quiet when it is within ``unloaded_band_n`` of the current zero and
    within ``still_band_n`` of its own low-pass (coefficient ``smooth_alpha`` per sample).
    Only after ``min_quiet_samples`` consecutive quiet samples does the zero move, by
    ``track_alpha`` of the way to the low-passed force per sample; any load or movement stops it
    at once and restarts the count.
    """
    cdef Py_ssize_t i, n = force_n.shape[0]
    cdef double f
    with nogil:
        for i in range(n):
            f = force_n[i]
            if state[I_STARTED] == 0.0:
                state[I_SMOOTH] = f
                state[I_STARTED] = 1.0
            else:
                state[I_SMOOTH] += smooth_alpha * (f - state[I_SMOOTH])
            if (fabs(f - state[I_ZERO]) <= unloaded_band_n
                    and fabs(f - state[I_SMOOTH]) <= still_band_n):
                state[I_QUIET] += 1.0
            else:
                state[I_QUIET] = 0.0
            if state[I_QUIET] >= min_quiet_samples:
                state[I_ZERO] += track_alpha * (state[I_SMOOTH] - state[I_ZERO])
                tracking[i] = 1
            else:
                tracking[i] = 0
            out_n[i] = f - state[I_ZERO]
