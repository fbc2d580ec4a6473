# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Streaming primary angle and its rate, one sample at a time (the pipeline's hot path).

Same definition as :func:`spinecoach.core.angles.primary_angle_deg` (earth-up seen from the
sensor, projected on the plane perpendicular to the working axis, angle from the zero pose's
projection, sign so that a right-hand rotation about the axis reads positive), computed with libm
per sample and unwrapped against the previous sample, so any split into blocks gives bit-identical
angles. The rate is the backward difference of the angle (°/s).

Where the working axis comes close to vertical, gravity says little about rotation about it (the
projected up direction is short and its angle noisy, undefined at vertical): there the rate is
the gyroscope's rate about the axis and the angle integrates it, until gravity is usable again.
"""

from libc.math cimport atan2, floor, sqrt, M_PI


cdef class PrimaryAngleState:
    """Basis of the angle (``ref`` and ``ortho``, unit sensor-frame vectors) and the last angle."""

    cdef public double r0, r1, r2, o0, o1, o2, a0, a1, a2
    cdef public double min_norm
    cdef public double last_deg
    cdef public bint have_last
    cdef public bint on_gyro

    def __init__(self, ref, ortho, axis, double min_norm):
        self.r0, self.r1, self.r2 = float(ref[0]), float(ref[1]), float(ref[2])
        self.o0, self.o1, self.o2 = float(ortho[0]), float(ortho[1]), float(ortho[2])
        self.a0, self.a1, self.a2 = float(axis[0]), float(axis[1]), float(axis[2])
        self.min_norm = min_norm
        self.have_last = False
        self.on_gyro = False
        self.last_deg = 0.0


def primary_step(PrimaryAngleState st, const double[:, ::1] q, const double[:, ::1] gyro_dps,
                 double rate_hz, double[::1] out_angle_deg, double[::1] out_rate_dps):
    """Angle (°) and rate (°/s) for each quaternion [w, x, y, z] and gyro sample (°/s)."""
    cdef Py_ssize_t i, n = q.shape[0]
    cdef double w, x, y, z, n2, u0, u1, u2, a, d, s2, prev, pr, po
    cdef double to_deg = 180.0 / M_PI
    # The basis and the running angle in locals: the compiler must otherwise reload them from
    # the state object after every store to the output arrays (they might alias).
    cdef double r0 = st.r0, r1 = st.r1, r2 = st.r2, o0 = st.o0, o1 = st.o1, o2 = st.o2
    cdef double a0 = st.a0, a1 = st.a1, a2 = st.a2, min_norm = st.min_norm
    # Below this squared projection sqrt(...) < min_norm may hold; above it it cannot, and
    # the square root is skipped (the test's outcome is the same either way).
    cdef double may_be_short = 4.0 * min_norm * min_norm
    cdef double last_deg = st.last_deg
    cdef bint have_last = st.have_last, on_gyro = st.on_gyro
    with nogil:
        for i in range(n):
            w = q[i, 0]
            x = q[i, 1]
            y = q[i, 2]
            z = q[i, 3]
            n2 = w * w + x * x + y * y + z * z
            u0 = 2.0 * (x * z - w * y) / n2
            u1 = 2.0 * (y * z + w * x) / n2
            u2 = (w * w - x * x - y * y + z * z) / n2
            po = u0 * o0 + u1 * o1 + u2 * o2
            pr = u0 * r0 + u1 * r1 + u2 * r2
            s2 = po * po + pr * pr
            if s2 < may_be_short and sqrt(s2) < min_norm and have_last:
                out_rate_dps[i] = gyro_dps[i, 0] * a0 + gyro_dps[i, 1] * a1 + gyro_dps[i, 2] * a2
                last_deg = last_deg + out_rate_dps[i] / rate_hz
                out_angle_deg[i] = last_deg
                on_gyro = True
                continue
            a = -atan2(po, pr) * to_deg
            if have_last:
                prev = last_deg
                d = prev - a
                if -90.0 <= d <= 90.0:
                    # floor(d / 360 + 0.5) is +0 here: the same sum without the division
                    a += 0.0
                else:
                    a += 360.0 * floor(d / 360.0 + 0.5)
            else:
                prev = a
                have_last = True
            out_angle_deg[i] = a
            if on_gyro:
                # back on gravity: the angle may step by what the gyro missed; the rate does not
                out_rate_dps[i] = gyro_dps[i, 0] * a0 + gyro_dps[i, 1] * a1 + gyro_dps[i, 2] * a2
                on_gyro = False
            else:
                out_rate_dps[i] = (a - prev) * rate_hz
            last_deg = a
    st.last_deg = last_deg
    st.have_last = have_last
    st.on_gyro = on_gyro
