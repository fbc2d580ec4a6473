# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""6-axis orientation kernel (private; use spinecoach.core.orientation).

The algorithm is the 6D part of VQF (D. Laidig, T. Seel, "VQF: Highly accurate IMU orientation
estimation with bias estimation and magnetic disturbance rejection", Information Fusion 91, 2023),
implemented from the paper's equations:

* strapdown integration of the bias-corrected gyroscope into q_gyro (sensor -> inertial frame I);
* the accelerometer, rotated into I, is low-passed by a 2nd-order Butterworth (time constant
  tau_acc); in I gravity is constant, so the low-pass removes linear and centripetal acceleration
  from fast movement without lagging the orientation;
* the inclination correction q_incl (I -> almost-inertial earth frame E, z up) is chosen so the
  low-passed gravity points exactly up;
* gyro bias by a 3-state Kalman filter: at rest it measures the low-passed gyroscope; in motion it
  measures the inclination-correction rate, compared with the equally low-passed R·b so both sides
  carry the same delay.

Differences from the paper, for speed and for real sensors:

* The slow part (accelerometer low-pass, inclination correction, bias Kalman filter) runs once
  every ``slow_n`` samples (about 50 Hz) on block means of the accelerometer in I and of R; the
  boxcar mean is the anti-alias filter. The low-pass has a cutoff near 0.1 Hz, so nothing of
  interest is lost, and the per-sample work is only strapdown integration, rest detection and
  one rotation matrix (the accelerometer is summed in E and its block mean rotated back into I
  with the block's fixed q_incl).
* Accelerometer samples whose norm is more than accel_reject_g away from 1 g (impacts) are
  left out of the mean.
* The output is predicted over the gyroscope's group delay (``gyro_delay_s``) with the current
  rate, so it refers to the sample time rather than to the chip's filtered past; less half a
  sample period, which is how far the strapdown step (each sample's rate over the period
  before it) runs ahead while the rate changes: 0.5 ms at 1 kHz, 20 ms at 25 Hz.
* Movement rejection (``moving_fast``). The low-pass in I removes movement acceleration only
  to first order: its output holds the velocity the sensor gained and lost, weighted by the
  filter's impulse response, ≈ h'·Δx for a rest-to-rest movement with displacement Δx (h'(0) =
  ωc² = 0.5 s⁻² for tau_acc = 2 s: a trunk sensor 0.45 m from the hip, swung through 85°,
  reads ~0.8° off while it moves). While the bias-corrected rate says the sensor turns (5 °/s
  on, 2.5 °/s off) its accelerometer samples are left out of the block means, so a whole
  movement passes the low-pass by and what is left is the velocity gained below the
  thresholds (ω·r, 0.04 m/s: ~0.1°). Blocks with no sample left skip the accelerometer
  low-pass, and with it the R and R·b low-passes of the bias filter, whose R sum carries over
  to the next block seen: the accelerometer low-pass runs on its own clock, and the bias drift
  of the skipped time is expected where it shows. The span is bounded (3 s per movement),
  after which the accelerometer is used again until the movement ends, so long continuous
  movement is corrected as in the paper; and the gyroscope alone needs a trusted bias, so
  this is only done while the Kalman filter's SD of the bias's earth-horizontal part is small
  (``move_bias_var``, checked at each movement's start; a seeded bias, ``Kernel.set_bias``,
  counts with the SD it was seeded with), or when told to (``move_always``).
* The motion bias update waits ``quiet_n`` samples after the last left-out sample (the
  velocity a left-out movement leaves in the low-pass shows as a correction that is not a
  bias), and weighs for tracking (``w_track``) once the bias is known (``bias_update``).

State and coefficients live in flat float64 arrays owned by the caller (viewed here as C structs),
so the Python object holds explicit state, copy() is an array copy and chunked processing is
bit-identical to one block. Nothing in the loop touches a Python object or allocates.
"""

from libc.math cimport sqrt, sin, cos, fabs, isfinite

cimport numpy as cnp

cnp.import_array()

ctypedef struct Coeffs:
    double ts_s            # sample period
    double slow_n          # samples per slow update
    double slow_ts_s       # slow_n * ts_s
    double acc_b[3]        # accelerometer low-pass at the slow rate
    double acc_a[2]
    double acc_init_n      # slow steps of running-mean start
    double rest_b[3]       # rest-detection low-pass at the sample rate
    double rest_a[2]
    double rest_init_n
    double rest_gyro_th2   # (rad/s)^2
    double rest_acc_th2    # g^2
    double rest_min_n      # samples
    double bias_limit      # rad/s
    double bias_p0         # (rad/s)^2
    double bias_v          # process noise per slow step, (rad/s)^2
    double w_motion
    double w_track         # the motion update's weight once the bias is known (tracking)
    double track_exit_var  # (rad/s)^2: horizontal variance above which tracking ends
    double w_vertical
    double w_rest
    double motion_bias_on
    double rest_bias_on
    double accel_norm2_low   # g², squared norm bounds of a usable accelerometer sample
    double accel_norm2_high
    double predict_s       # s: the output's prediction horizon (see output())
    double gap_reset_n     # invalid samples in a row that restart the low-passes
    double move_on2        # (rad/s)^2: above this rate the accelerometer is left out ...
    double move_off2       # ... until the rate falls below this one
    double move_max_n      # samples: the longest span left out in one movement
    double move_always     # 1: leave out whatever the bias filter's variance
    double move_bias_var   # (rad/s)^2: ... or once the horizontal bias variance is this small
    double quiet_n         # samples after a left-out movement before the motion update measures

ctypedef struct State:
    double q_gyro[4]
    double q_incl[4]
    double q6[4]           # q_incl ⊗ q_gyro after the last sample
    double rate[3]         # bias-corrected rate of the last sample, rad/s
    double rate_n2         # its squared norm, (rad/s)^2
    double bias[3]
    double p[9]
    double rest_n
    double rest_gyro_z[6]
    double rest_acc_z[6]
    double rest_gyro_lp[3]
    double rest_count
    double rest
    double slow_count      # samples in the current slow block
    double acc_count       # accelerometer samples used in it
    double acc_sum[3]      # their sum, rotated into E (q_incl is fixed within a block)
    double r_sum[9]        # sum of R(q6) over the block
    double acc_n
    double acc_z[6]
    double r_n
    double r_z[18]
    double rb_z[4]
    double invalid_run     # invalid samples in a row so far
    double move_mode       # 0 armed, 1 leaving the accelerometer out, 2 span used up
    double move_n          # samples left out in the current movement
    double bias_h_var      # variance of the bias's earth-horizontal part, (rad/s)^2
    double since_left_out  # samples since the accelerometer was last left out for movement
    double tracking        # 1 while the motion update weighs for tracking (w_track)

COEFFS_SIZE = sizeof(Coeffs) // sizeof(double)
STATE_SIZE = sizeof(State) // sizeof(double)

cdef double DEG = 0.017453292519943295


def fill_coeffs(double[::1] out, dict v):
    """Write the coefficients named in ``v`` into ``out`` (length COEFFS_SIZE).

    ``acc_ba`` and ``rest_ba`` are (b0, b1, b2, a1, a2); everything else is one number.
    """
    cdef Coeffs* c = <Coeffs*> &out[0]
    cdef int i
    for i in range(3):
        c.acc_b[i] = v["acc_ba"][i]
        c.rest_b[i] = v["rest_ba"][i]
    for i in range(2):
        c.acc_a[i] = v["acc_ba"][3 + i]
        c.rest_a[i] = v["rest_ba"][3 + i]
    c.ts_s = v["ts_s"]
    c.slow_n = v["slow_n"]
    c.slow_ts_s = v["slow_n"] * v["ts_s"]
    c.acc_init_n = v["acc_init_n"]
    c.rest_init_n = v["rest_init_n"]
    c.rest_gyro_th2 = v["rest_gyro_th"] ** 2
    c.rest_acc_th2 = v["rest_acc_th"] ** 2
    c.rest_min_n = v["rest_min_n"]
    c.bias_limit = v["bias_limit"]
    c.bias_p0 = v["bias_p0"]
    c.bias_v = v["bias_v"]
    c.w_motion = v["w_motion"]
    c.w_track = v["w_track"]
    c.track_exit_var = v["track_exit_var"]
    c.w_vertical = v["w_vertical"]
    c.w_rest = v["w_rest"]
    c.motion_bias_on = 1.0 if v["motion_bias_on"] else 0.0
    c.rest_bias_on = 1.0 if v["rest_bias_on"] else 0.0
    c.accel_norm2_low = max(0.0, 1.0 - v["accel_reject"]) ** 2
    c.accel_norm2_high = (1.0 + v["accel_reject"]) ** 2
    c.predict_s = v["predict_s"]
    c.gap_reset_n = v["gap_reset_n"]
    c.move_on2 = v["move_on"] ** 2
    c.move_off2 = v["move_off"] ** 2
    c.move_max_n = v["move_max_n"]
    c.move_always = 1.0 if v["move_always"] else 0.0
    c.move_bias_var = v["move_bias_sd"] ** 2
    c.quiet_n = v["quiet_n"]


def init_state(double[::1] state, double[::1] coeffs):
    """Reset ``state`` (length STATE_SIZE): identity attitude, zero bias, covariance P0·I."""
    cdef State* s = <State*> &state[0]
    cdef Coeffs* c = <Coeffs*> &coeffs[0]
    cdef Py_ssize_t i
    for i in range(state.shape[0]):
        state[i] = 0.0
    s.q_gyro[0] = 1.0
    s.q_incl[0] = 1.0
    s.q6[0] = 1.0
    for i in range(3):
        s.p[4 * i] = c.bias_p0
    s.bias_h_var = 2.0 * c.bias_p0
    s.since_left_out = c.quiet_n


def bias(double[::1] state):
    """Current gyro-bias estimate in rad/s."""
    cdef State* s = <State*> &state[0]
    return (s.bias[0], s.bias[1], s.bias[2])


def rest(double[::1] state):
    """True when rest was detected at the last processed sample."""
    cdef State* s = <State*> &state[0]
    return s.rest != 0.0


cdef inline void quat_mul(const double* a, const double* b, double* out) noexcept nogil:
    cdef double w = a[0] * b[0] - a[1] * b[1] - a[2] * b[2] - a[3] * b[3]
    cdef double x = a[0] * b[1] + a[1] * b[0] + a[2] * b[3] - a[3] * b[2]
    cdef double y = a[0] * b[2] - a[1] * b[3] + a[2] * b[0] + a[3] * b[1]
    cdef double z = a[0] * b[3] + a[1] * b[2] - a[2] * b[1] + a[3] * b[0]
    out[0] = w
    out[1] = x
    out[2] = y
    out[3] = z


cdef inline void quat_normalize(double* q) noexcept nogil:
    cdef double inv = 1.0 / sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3])
    q[0] *= inv
    q[1] *= inv
    q[2] *= inv
    q[3] *= inv


cdef inline void quat_rotate(const double* q, const double* v, double* out) noexcept nogil:
    """out = q ⊗ v ⊗ q* for a unit quaternion q (v and out may alias)."""
    cdef double w = q[0], x = q[1], y = q[2], z = q[3]
    cdef double v0 = v[0], v1 = v[1], v2 = v[2]
    out[0] = ((1.0 - 2.0 * (y * y + z * z)) * v0 + 2.0 * (x * y - w * z) * v1
              + 2.0 * (x * z + w * y) * v2)
    out[1] = (2.0 * (x * y + w * z) * v0 + (1.0 - 2.0 * (x * x + z * z)) * v1
              + 2.0 * (y * z - w * x) * v2)
    out[2] = (2.0 * (x * z - w * y) * v0 + 2.0 * (y * z + w * x) * v1
              + (1.0 - 2.0 * (x * x + y * y)) * v2)


cdef inline double norm2(const double* v) noexcept nogil:
    return v[0] * v[0] + v[1] * v[1] + v[2] * v[2]


cdef inline void rotation_quat(const double* rate, double n2, double dt,
                               double* dq) noexcept nogil:
    """Unit quaternion of rotating at the constant body rate ``rate`` (rad/s, squared norm
    ``n2``, which the caller has at hand) for ``dt`` s."""
    cdef double h2 = 0.25 * n2 * dt * dt
    cdef double n, c, sc
    if h2 < 0.01:
        # Half angle below 0.1 rad: Taylor series to h^8, exact to double precision there and
        # much cheaper than sin and cos.
        c = 1.0 - h2 * (0.5 - h2 * (1.0 / 24.0 - h2 * (1.0 / 720.0 - h2 / 40320.0)))
        sc = 1.0 / 120.0 - h2 * (1.0 / 5040.0 - h2 / 362880.0)
        sc = 0.5 * dt * (1.0 - h2 * (1.0 / 6.0 - h2 * sc))
    else:
        n = sqrt(n2)
        c = cos(0.5 * n * dt)
        sc = sin(0.5 * n * dt) / n
    dq[0] = c
    dq[1] = rate[0] * sc
    dq[2] = rate[1] * sc
    dq[3] = rate[2] * sc


cdef inline void quat_to_matrix(const double* q, double* r) noexcept nogil:
    cdef double w = q[0], x = q[1], y = q[2], z = q[3]
    r[0] = 1.0 - 2.0 * (y * y + z * z)
    r[1] = 2.0 * (x * y - w * z)
    r[2] = 2.0 * (x * z + w * y)
    r[3] = 2.0 * (x * y + w * z)
    r[4] = 1.0 - 2.0 * (x * x + z * z)
    r[5] = 2.0 * (y * z - w * x)
    r[6] = 2.0 * (x * z - w * y)
    r[7] = 2.0 * (y * z + w * x)
    r[8] = 1.0 - 2.0 * (x * x + y * y)


cdef inline void mat3_apply(const double* m, const double* v, double* out) noexcept nogil:
    """out = m·v for a row-major 3×3 matrix (out must not alias v)."""
    out[0] = m[0] * v[0] + m[1] * v[1] + m[2] * v[2]
    out[1] = m[3] * v[0] + m[4] * v[1] + m[5] * v[2]
    out[2] = m[6] * v[0] + m[7] * v[1] + m[8] * v[2]


cdef inline void lowpass(const double* x, double* y, int channels, double* z, double count,
                         const double* b, const double* a, double init_n) noexcept nogil:
    """One sample of a 2nd-order low-pass on ``channels`` channels (transposed direct form II).

    ``count`` is the number of samples seen including this one (the caller stops counting at
    init_n + 1). For the first ``init_n`` samples the output is the running mean and z[2i] holds
    the sum; then the state is set to the steady state of that mean, so the filter starts without
    a transient.
    """
    cdef int i
    cdef double m
    if count <= init_n:
        for i in range(channels):
            z[2 * i] += x[i]
            y[i] = z[2 * i] / count
        if count == init_n:
            for i in range(channels):
                m = y[i]
                z[2 * i] = m * (1.0 - b[0])
                z[2 * i + 1] = m * (b[2] - a[1])
        return
    for i in range(channels):
        y[i] = b[0] * x[i] + z[2 * i]
        z[2 * i] = b[1] * x[i] - a[0] * y[i] + z[2 * i + 1]
        z[2 * i + 1] = b[2] * x[i] - a[1] * y[i]


cdef inline double clip(double v, double limit) noexcept nogil:
    if v > limit:
        return limit
    if v < -limit:
        return -limit
    return v


cdef inline void mat3_mul(const double* a, const double* b, double* out,
                          bint transpose_b) noexcept nogil:
    """out = a·b (or a·bᵀ) for row-major 3×3 matrices; out must not alias a or b."""
    cdef int i, j, m
    cdef double acc
    for i in range(3):
        for j in range(3):
            acc = 0.0
            for m in range(3):
                acc += a[3 * i + m] * (b[3 * j + m] if transpose_b else b[3 * m + j])
            out[3 * i + j] = acc


cdef inline bint invert3(const double* m, double* inv) noexcept nogil:
    cdef double c0 = m[4] * m[8] - m[5] * m[7]
    cdef double c1 = m[5] * m[6] - m[3] * m[8]
    cdef double c2 = m[3] * m[7] - m[4] * m[6]
    cdef double det = m[0] * c0 + m[1] * c1 + m[2] * c2
    if det == 0.0:
        return False
    cdef double d = 1.0 / det
    inv[0] = c0 * d
    inv[1] = (m[2] * m[7] - m[1] * m[8]) * d
    inv[2] = (m[1] * m[5] - m[2] * m[4]) * d
    inv[3] = c1 * d
    inv[4] = (m[0] * m[8] - m[2] * m[6]) * d
    inv[5] = (m[2] * m[3] - m[0] * m[5]) * d
    inv[6] = c2 * d
    inv[7] = (m[1] * m[6] - m[0] * m[7]) * d
    inv[8] = (m[0] * m[4] - m[1] * m[3]) * d
    return True


cdef void bias_update(State* s, const Coeffs* c, const double* acc_earth,
                      bint corrected) noexcept nogil:
    """Kalman update of the gyro bias (state b, covariance P, measurement y = H·b + noise).

    ``acc_earth``: the low-passed gravity in E before this step's correction (``corrected``
    False when the block had no usable accelerometer sample).

    The R and R·b low-passes step only with the accelerometer's: a block the accelerometer
    low-pass skips (every sample left out) leaves its R sum to the next block it sees, so the
    drift the bias causes while the accelerometer is left out is expected in the correction of
    that block, where the accelerometer shows it. Both sides stay on the same time base.
    """
    cdef double r[9]
    cdef double rb[2]
    cdef double rblp[2]
    cdef double h[9]
    cdef double e[3]
    cdef double w[3]
    cdef double ph[9]   # P·Hᵀ
    cdef double sm[9]   # H·P·Hᵀ + W
    cdef double si[9]
    cdef double k[9]
    cdef double kh[9]
    cdef double np_[9]
    cdef double inv_n
    cdef int i
    cdef bint measure = False

    if c.motion_bias_on != 0.0 and corrected:
        # Block-mean R and R·b pass through the accelerometer's low-pass so both sides of the
        # measurement carry the same delay.
        inv_n = 1.0 / c.slow_n
        for i in range(9):
            r[i] = s.r_sum[i] * inv_n
        rb[0] = r[0] * s.bias[0] + r[1] * s.bias[1] + r[2] * s.bias[2]
        rb[1] = r[3] * s.bias[0] + r[4] * s.bias[1] + r[5] * s.bias[2]
        if s.r_n <= c.acc_init_n:
            s.r_n += 1.0
        lowpass(r, h, 9, s.r_z, s.r_n, c.acc_b, c.acc_a, c.acc_init_n)
        lowpass(rb, rblp, 2, s.rb_z, s.r_n, c.acc_b, c.acc_a, c.acc_init_n)
        for i in range(9):
            s.r_sum[i] = 0.0

    if s.rest != 0.0 and c.rest_bias_on != 0.0:
        for i in range(3):
            e[i] = s.rest_gyro_lp[i] - s.bias[i]
            w[i] = c.w_rest
        for i in range(9):
            h[i] = 0.0
        h[0] = 1.0
        h[4] = 1.0
        h[8] = 1.0
        measure = True
    elif c.motion_bias_on != 0.0 and corrected and s.since_left_out >= c.quiet_n:
        # Correction rate (rad/s, earth frame) = −LP(R·(b − b̂)) for a constant bias b.
        e[0] = (-acc_earth[1] / c.slow_ts_s + rblp[0]
                - h[0] * s.bias[0] - h[1] * s.bias[1] - h[2] * s.bias[2])
        e[1] = (acc_earth[0] / c.slow_ts_s + rblp[1]
                - h[3] * s.bias[0] - h[4] * s.bias[1] - h[5] * s.bias[2])
        # Vertical bias is unobservable: a weak pseudo-measurement pulls it towards zero.
        e[2] = -h[6] * s.bias[0] - h[7] * s.bias[1] - h[8] * s.bias[2]
        # Tracking from when the bias is known (as the movement rejection needs it) until it is
        # worse than acquisition would leave it: a turn brings the unmeasured vertical part's
        # grown variance into the horizontal, and acquisition, settling above the gate, would
        # not bring it back.
        if s.bias_h_var <= c.move_bias_var:
            s.tracking = 1.0
        elif s.bias_h_var > c.track_exit_var:
            s.tracking = 0.0
        w[0] = c.w_track if s.tracking != 0.0 else c.w_motion
        w[1] = w[0]
        w[2] = c.w_vertical
        measure = True

    # The bias may wander: the variance grows by V per step up to its initial value.
    for i in range(3):
        if s.p[4 * i] < c.bias_p0:
            s.p[4 * i] += c.bias_v
    if not measure:
        return
    for i in range(3):
        e[i] = clip(e[i], c.bias_limit)
    mat3_mul(s.p, h, ph, True)          # P·Hᵀ
    mat3_mul(h, ph, sm, False)          # H·P·Hᵀ
    for i in range(3):
        sm[4 * i] += w[i]
    if not invert3(sm, si):
        return
    mat3_mul(ph, si, k, False)          # K = P·Hᵀ·(H·P·Hᵀ + W)⁻¹
    for i in range(3):
        s.bias[i] += k[3 * i] * e[0] + k[3 * i + 1] * e[1] + k[3 * i + 2] * e[2]
    mat3_mul(k, h, kh, False)
    mat3_mul(kh, s.p, np_, False)       # P ← P − K·H·P
    for i in range(9):
        s.p[i] -= np_[i]
    for i in range(3):
        s.bias[i] = clip(s.bias[i], c.bias_limit)


cdef inline void level(double* q_incl, const double* up) noexcept nogil:
    """Turn the earth frame by the smallest rotation that takes unit vector ``up`` to +z."""
    cdef double corr[4]
    corr[0] = sqrt(0.5 * (up[2] + 1.0))
    if corr[0] > 1e-6:
        corr[1] = 0.5 * up[1] / corr[0]
        corr[2] = -0.5 * up[0] / corr[0]
        corr[3] = 0.0
    else:
        # Pointing straight down: any horizontal half-turn works; take the one about x.
        corr[0] = 0.0
        corr[1] = 1.0
        corr[2] = 0.0
        corr[3] = 0.0
    quat_mul(corr, q_incl, q_incl)
    quat_normalize(q_incl)


cdef inline void start_block(State* s) noexcept nogil:
    """Empty the accumulators of the accelerometer's block mean (bias_update empties R's)."""
    cdef int i
    s.slow_count = 0.0
    s.acc_count = 0.0
    for i in range(3):
        s.acc_sum[i] = 0.0


cdef void slow_update(State* s, const Coeffs* c) noexcept nogil:
    """Accelerometer low-pass, inclination correction and bias update for one block."""
    cdef double mean[3]
    cdef double alp[3]
    cdef double ae[3]
    cdef double back[4]
    cdef double n
    cdef int i
    cdef bint corrected = False

    ae[0] = 0.0
    ae[1] = 0.0
    ae[2] = 1.0
    if s.acc_count > 0.0:
        for i in range(3):
            mean[i] = s.acc_sum[i] / s.acc_count
        # Summed in E, the block's mean goes back into I in one rotation by q_incl⁻¹.
        back[0] = s.q_incl[0]
        for i in range(1, 4):
            back[i] = -s.q_incl[i]
        quat_rotate(back, mean, mean)
        if s.acc_n <= c.acc_init_n:
            s.acc_n += 1.0
        lowpass(mean, alp, 3, s.acc_z, s.acc_n, c.acc_b, c.acc_a, c.acc_init_n)
        quat_rotate(s.q_incl, alp, ae)
        n = sqrt(ae[0] * ae[0] + ae[1] * ae[1] + ae[2] * ae[2])
        if n > 0.0:
            for i in range(3):
                ae[i] /= n
            level(s.q_incl, ae)
            corrected = True
    if c.motion_bias_on != 0.0 or c.rest_bias_on != 0.0:
        bias_update(s, c, ae, corrected)
    # A product of unit quaternions drifts from unit norm by rounding only (~1e-16 a step), so
    # q_gyro is renormalised once a block rather than every sample.
    quat_normalize(s.q_gyro)
    quat_mul(s.q_incl, s.q_gyro, s.q6)
    s.bias_h_var = horizontal_variance(s.p, s.q6)
    start_block(s)


cdef inline double horizontal_variance(const double* p, const double* q) noexcept nogil:
    """Variance of the earth-horizontal part of a sensor-frame vector with covariance ``p``
    at attitude ``q``: the trace less the variance along earth-up (u = third row of R(q)).
    Only that part of a bias error tilts the inclination."""
    cdef double u0 = 2.0 * (q[1] * q[3] - q[0] * q[2])
    cdef double u1 = 2.0 * (q[2] * q[3] + q[0] * q[1])
    cdef double u2 = 1.0 - 2.0 * (q[1] * q[1] + q[2] * q[2])
    cdef double up = (u0 * (p[0] * u0 + p[1] * u1 + p[2] * u2)
                      + u1 * (p[3] * u0 + p[4] * u1 + p[5] * u2)
                      + u2 * (p[6] * u0 + p[7] * u1 + p[8] * u2))
    return p[0] + p[4] + p[8] - up


cdef inline bint moving_fast(State* s, const Coeffs* c, double rate2,
                             double periods) noexcept nogil:
    """True while the accelerometer is to be left out for movement (``rate2`` in (rad/s)²).

    A movement starts when the bias-corrected rate exceeds the upper threshold and ends when
    it falls below the lower one. Its samples are left out for at most ``move_max_n`` sample
    periods; after that they are used again until the movement ends, so a long continuous
    movement is corrected as plain VQF would and the gyroscope never runs alone for longer.
    Nothing is left out before the accelerometer low-pass has started (the first levelling);
    the caller starts a movement only while the bias is trusted (``step``): the gyroscope
    alone is only as good as its bias (0.5 °/s unknown is 1.5° over a 3 s movement).
    """
    if s.move_mode == 0.0:
        if rate2 <= c.move_on2 or s.acc_n == 0.0:
            return False
        s.move_mode = 1.0
        s.move_n = 0.0
    if rate2 < c.move_off2:
        s.move_mode = 0.0
        return False
    if s.move_mode == 2.0:
        return False
    if s.move_n >= c.move_max_n:
        s.move_mode = 2.0
        return False
    s.move_n += periods
    return True


cdef inline void step(State* s, const Coeffs* c, const double* gyro_dps,
                      const double* accel_g, double periods) noexcept nogil:
    """One valid sample; ``periods`` sample periods have passed since the last valid one."""
    cdef double g[3]
    cdef double glp[3]
    cdef double a[3]
    cdef double alp[3]
    cdef double ae[3]
    cdef double dq[4]
    cdef double r[9]
    cdef double d, n
    cdef int i
    cdef bint still, left_out

    for i in range(3):
        g[i] = gyro_dps[i] * DEG
        a[i] = accel_g[i]

    # Rest: both signals close to their own low-pass, and the low-passed rate small enough to
    # be a bias. Timed in samples.
    if s.rest_n <= c.rest_init_n:
        s.rest_n += 1.0
    lowpass(g, glp, 3, s.rest_gyro_z, s.rest_n, c.rest_b, c.rest_a, c.rest_init_n)
    lowpass(a, alp, 3, s.rest_acc_z, s.rest_n, c.rest_b, c.rest_a, c.rest_init_n)
    d = 0.0
    n = 0.0
    for i in range(3):
        d += (g[i] - glp[i]) * (g[i] - glp[i])
        n += (a[i] - alp[i]) * (a[i] - alp[i])
        s.rest_gyro_lp[i] = glp[i]
    still = (d < c.rest_gyro_th2 and n < c.rest_acc_th2 and fabs(glp[0]) <= c.bias_limit
             and fabs(glp[1]) <= c.bias_limit and fabs(glp[2]) <= c.bias_limit)
    s.rest_count = s.rest_count + 1.0 if still else 0.0
    s.rest = 1.0 if s.rest_count >= c.rest_min_n else 0.0

    # Strapdown integration of the bias-corrected rate (exact for a constant rate over Ts).
    for i in range(3):
        g[i] -= s.bias[i]
        s.rate[i] = g[i]
    s.rate_n2 = norm2(g)
    # A movement under way runs its course; a new one starts only with the bias trusted.
    left_out = ((c.move_always != 0.0 or s.move_mode != 0.0 or s.bias_h_var <= c.move_bias_var)
                and moving_fast(s, c, s.rate_n2, periods))
    if left_out:
        s.since_left_out = 0.0
    elif s.since_left_out < c.quiet_n:
        s.since_left_out += periods
    rotation_quat(g, s.rate_n2, c.ts_s * periods, dq)
    quat_mul(s.q_gyro, dq, s.q_gyro)
    quat_mul(s.q_incl, s.q_gyro, s.q6)
    # R(q6) serves both the accelerometer (into E) and the bias filter's block mean of R.
    quat_to_matrix(s.q6, r)

    n = a[0] * a[0] + a[1] * a[1] + a[2] * a[2]
    if n > 0.0 and c.accel_norm2_low <= n <= c.accel_norm2_high and not left_out:
        mat3_apply(r, a, ae)
        if s.acc_n == 0.0 and s.acc_count == 0.0:
            # First accelerometer sample since the start (or a gap): level on it at once
            # rather than output a level attitude until the first slow step.
            n = 1.0 / sqrt(n)
            for i in range(3):
                ae[i] *= n
            level(s.q_incl, ae)
            quat_mul(s.q_incl, s.q_gyro, s.q6)
            quat_to_matrix(s.q6, r)
            mat3_apply(r, a, ae)
        for i in range(3):
            s.acc_sum[i] += ae[i]
        s.acc_count += 1.0
    if c.motion_bias_on != 0.0:
        for i in range(9):
            s.r_sum[i] += r[i]
    s.slow_count += 1.0
    if s.slow_count >= c.slow_n:
        slow_update(s, c)


cdef inline bint is_samples(object obj, Py_ssize_t n, int columns):
    """obj is an aligned, native, C-contiguous float64 ndarray of shape (n, columns)."""
    if not cnp.PyArray_Check(obj):
        return False
    cdef cnp.ndarray arr = <cnp.ndarray> obj
    return (cnp.PyArray_TYPE(arr) == cnp.NPY_DOUBLE and cnp.PyArray_NDIM(arr) == 2
            and cnp.PyArray_DIM(arr, 1) == columns and (n < 0 or cnp.PyArray_DIM(arr, 0) == n)
            and cnp.PyArray_ISCARRAY_RO(arr))


cdef inline bint is_flags(object obj, Py_ssize_t n):
    """obj is a C-contiguous 1-byte (bool or uint8) ndarray of shape (n,)."""
    if not cnp.PyArray_Check(obj):
        return False
    cdef cnp.ndarray arr = <cnp.ndarray> obj
    cdef int kind = cnp.PyArray_TYPE(arr)
    return ((kind == cnp.NPY_BOOL or kind == cnp.NPY_UINT8) and cnp.PyArray_NDIM(arr) == 1
            and cnp.PyArray_DIM(arr, 0) == n and cnp.PyArray_ISCARRAY_RO(arr))


cdef class Kernel:
    """The per-sample loop bound to one filter's coefficient and state arrays.

    Holding raw pointers to the two arrays (kept alive here) keeps the per-call overhead to a
    few checks, which matters for the small blocks of live acquisition.
    """

    cdef readonly object coeffs
    cdef readonly object state
    cdef Coeffs* c
    cdef State* s

    def __cinit__(self, cnp.ndarray coeffs, cnp.ndarray state):
        if (cnp.PyArray_TYPE(coeffs) != cnp.NPY_DOUBLE
                or cnp.PyArray_TYPE(state) != cnp.NPY_DOUBLE
                or not cnp.PyArray_ISCARRAY(coeffs) or not cnp.PyArray_ISCARRAY(state)
                or cnp.PyArray_SIZE(coeffs) != COEFFS_SIZE
                or cnp.PyArray_SIZE(state) != STATE_SIZE):
            raise ValueError("Kernel needs contiguous float64 coefficient and state arrays")
        self.coeffs = coeffs
        self.state = state
        self.c = <Coeffs*> cnp.PyArray_DATA(coeffs)
        self.s = <State*> cnp.PyArray_DATA(state)

    def update(self, gyro_dps, accel_g, valid):
        """Process a block; returns the (n, 4) quaternions [w, x, y, z], one per sample.

        Returns None, touching nothing, unless gyro_dps and accel_g are aligned C-contiguous
        float64 (n, 3) arrays and valid is None or a contiguous bool/uint8 (n,) array (the
        caller then converts and calls again). Returns the index (int) of the first sample marked
        valid that has a non-finite value, again touching nothing. ``valid[i] == 0`` holds the
        state for that sample; its output repeats the current estimate.
        """
        if not is_samples(gyro_dps, -1, 3):
            return None
        cdef Py_ssize_t n = cnp.PyArray_DIM(<cnp.ndarray> gyro_dps, 0)
        if not is_samples(accel_g, n, 3):
            return None
        cdef bint has_flags = valid is not None
        if has_flags and not is_flags(valid, n):
            return None
        cdef const double* gyro = <const double*> cnp.PyArray_DATA(<cnp.ndarray> gyro_dps)
        cdef const double* accel = <const double*> cnp.PyArray_DATA(<cnp.ndarray> accel_g)
        cdef const unsigned char* flags = NULL
        if has_flags:
            flags = <const unsigned char*> cnp.PyArray_DATA(<cnp.ndarray> valid)
        cdef Py_ssize_t bad = first_bad(gyro, accel, flags, n)
        if bad >= 0:
            return bad
        cdef cnp.npy_intp dims[2]
        dims[0] = n
        dims[1] = 4
        cdef cnp.ndarray out = cnp.PyArray_EMPTY(2, dims, cnp.NPY_DOUBLE, 0)
        run(self.s, self.c, gyro, accel, flags, n, <double*> cnp.PyArray_DATA(out))
        return out

    def set_bias(self, double bx, double by, double bz, double variance):
        """Start the bias estimate at (bx, by, bz) rad/s with covariance variance·I."""
        cdef int i
        self.s.bias[0] = bx
        self.s.bias[1] = by
        self.s.bias[2] = bz
        for i in range(9):
            self.s.p[i] = variance if i % 4 == 0 else 0.0
        self.s.bias_h_var = horizontal_variance(self.s.p, self.s.q6)

    def hold(self):
        """The output a held (invalid) sample would give now: [w, x, y, z]."""
        cdef double q[4]
        output(self.s, self.c, q)
        return (q[0], q[1], q[2], q[3])


cdef Py_ssize_t first_bad(const double* gyro, const double* accel, const unsigned char* flags,
                          Py_ssize_t n) noexcept nogil:
    """Index of the first sample marked valid with a non-finite value, or -1."""
    cdef Py_ssize_t i
    cdef int j
    cdef double t
    for i in range(n):
        if flags != NULL and not flags[i]:
            continue
        # One test for the six values: a NaN or an infinity makes the sum's t - t NaN (so does
        # a finite sum that overflows, hence the exact check before refusing).
        t = (gyro[3 * i] + gyro[3 * i + 1] + gyro[3 * i + 2]
             + accel[3 * i] + accel[3 * i + 1] + accel[3 * i + 2])
        if t - t == 0.0:
            continue
        for j in range(3):
            if not (isfinite(gyro[3 * i + j]) and isfinite(accel[3 * i + j])):
                return i
    return -1


cdef inline void output(const State* s, const Coeffs* c, double* q) noexcept nogil:
    cdef double dq[4]
    if c.predict_s != 0.0:
        # Predict over the gyroscope's group delay, less half a sample (the strapdown step
        # turns by each sample's rate over the period before it, so the integrated attitude
        # is half a period ahead of the sample while the rate changes), so the output refers
        # to the sample time.
        rotation_quat(s.rate, s.rate_n2, c.predict_s, dq)
        quat_mul(s.q6, dq, q)
    else:
        q[0] = s.q6[0]
        q[1] = s.q6[1]
        q[2] = s.q6[2]
        q[3] = s.q6[3]


cdef void restart_after_gap(State* s) noexcept nogil:
    """Forget what the low-passes and the rest timer hold after a long gap.

    The rotation during the gap is lost, so q_gyro is off by it and the accelerometer history
    (kept in the inertial frame) no longer matches new samples. Restarting the low-passes from
    their running-mean start lets the next block's correction set the inclination at once.
    The attitude, the bias and its covariance are kept.
    """
    cdef int i
    s.rest_n = 0.0
    s.rest_count = 0.0
    s.rest = 0.0
    for i in range(6):
        s.rest_gyro_z[i] = 0.0
        s.rest_acc_z[i] = 0.0
        s.acc_z[i] = 0.0
    start_block(s)
    for i in range(9):
        s.r_sum[i] = 0.0
    for i in range(18):
        s.r_z[i] = 0.0
    for i in range(4):
        s.rb_z[i] = 0.0
    s.acc_n = 0.0
    s.r_n = 0.0
    s.move_mode = 0.0
    s.move_n = 0.0


cdef void run(State* s, const Coeffs* c, const double* gyro, const double* accel,
              const unsigned char* flags, Py_ssize_t n, double* out) noexcept nogil:
    cdef Py_ssize_t i
    cdef double periods
    for i in range(n):
        if flags == NULL or flags[i]:
            periods = 1.0
            if s.invalid_run != 0.0:
                if s.invalid_run >= c.gap_reset_n:
                    restart_after_gap(s)
                else:
                    # A short hole: the sensor kept turning, so integrate this sample's rate
                    # over the held samples too rather than lose that rotation.
                    periods += s.invalid_run
                s.invalid_run = 0.0
            step(s, c, &gyro[3 * i], &accel[3 * i], periods)
        else:
            s.invalid_run += 1.0
        output(s, c, &out[4 * i])
