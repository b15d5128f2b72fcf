"""The compiled twin of ``ik_neural.geometry`` for one pose (tests hold the two equal), and the rigidity
check of input poses. 3-vectors and 3x3 matrices, float64; metres and radians."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# The same thresholds as ik_neural.geometry's log map.
from ik_neural.geometry import NEAR_PI_SINE, SMALL_SINE

RIGIDITY_TOLERANCE = 1e-6
"""The largest |RᵀR - I| of an input pose taken as a rigid transform (rounding of a pose built in float64)."""


@njit(cache=True, nogil=True, inline="always")
def _relative(T_target, T, r, c):
    """Entry (r, c) of R_target Rᵀ for poses (4, 4)."""
    return T_target[r, 0] * T[c, 0] + T_target[r, 1] * T[c, 1] + T_target[r, 2] * T[c, 2]


@njit(cache=True, nogil=True, inline="always")
def pose_error(T_target, T):
    """``geometry.pose_errors`` for one pose (4, 4): (position error vector m, rotation error vector rad,
    position error m, rotation angle rad), the vectors as 3-tuples (no allocation: the solver's every step
    takes one)."""
    dp = (T_target[0, 3] - T[0, 3], T_target[1, 3] - T[1, 3], T_target[2, 3] - T[2, 3])
    v0 = 0.5 * (_relative(T_target, T, 2, 1) - _relative(T_target, T, 1, 2))
    v1 = 0.5 * (_relative(T_target, T, 0, 2) - _relative(T_target, T, 2, 0))
    v2 = 0.5 * (_relative(T_target, T, 1, 0) - _relative(T_target, T, 0, 1))
    trace = _relative(T_target, T, 0, 0) + _relative(T_target, T, 1, 1) + _relative(T_target, T, 2, 2)
    sine = math.sqrt(v0 * v0 + v1 * v1 + v2 * v2)
    cosine = 0.5 * (trace - 1.0)
    angle = math.atan2(sine, cosine)
    position_error = math.sqrt(dp[0] * dp[0] + dp[1] * dp[1] + dp[2] * dp[2])
    if sine < NEAR_PI_SINE and cosine < 0:
        return dp, _near_pi_axis(T_target, T, angle), position_error, angle
    factor = angle / sine if sine > SMALL_SINE else 1.0
    return dp, (v0 * factor, v1 * factor, v2 * factor), position_error, angle


@njit(cache=True, nogil=True)
def _near_pi_axis(T_target, T, angle):
    """The rotation vector (3-tuple, rad) of R_target Rᵀ = E at an ``angle`` near pi, where its
    antisymmetric part vanishes: E + I = 2 axis axisᵀ, so its largest column lies along the axis."""
    best, best_norm = 0, -1.0
    for c in range(3):
        norm = 0.0
        for r in range(3):
            value = _relative(T_target, T, r, c) + (1.0 if r == c else 0.0)
            norm += value * value
        if norm > best_norm:
            best, best_norm = c, norm
    root = math.sqrt(best_norm)
    return (
        (_relative(T_target, T, 0, best) + (1.0 if best == 0 else 0.0)) * angle / root,
        (_relative(T_target, T, 1, best) + (1.0 if best == 1 else 0.0)) * angle / root,
        (_relative(T_target, T, 2, best) + (1.0 if best == 2 else 0.0)) * angle / root,
    )


@njit(cache=True, nogil=True, inline="always")
def swing(T_target, T, axis):
    """The rotation that turns the tip's ``axis`` (0, 1, 2: x, y, z) onto the target's by the shortest way,
    for poses (4, 4): (rotation vector (3-tuple) in the base frame, rad; its angle, rad). Perpendicular to
    both axes, so it leaves out the rotation about the axis (the twist); antiparallel axes: a half turn
    about the target's next axis."""
    t0, t1, t2 = T[0, axis], T[1, axis], T[2, axis]
    g0, g1, g2 = T_target[0, axis], T_target[1, axis], T_target[2, axis]
    c0, c1, c2 = t1 * g2 - t2 * g1, t2 * g0 - t0 * g2, t0 * g1 - t1 * g0
    sine = math.sqrt(c0 * c0 + c1 * c1 + c2 * c2)
    cosine = t0 * g0 + t1 * g1 + t2 * g2
    angle = math.atan2(sine, cosine)
    if sine > SMALL_SINE:
        factor = angle / sine
        return (c0 * factor, c1 * factor, c2 * factor), angle
    if cosine > 0:
        return (c0, c1, c2), angle  # first order: the angle is the sine
    other = (axis + 1) % 3
    return (T_target[0, other] * angle, T_target[1, other] * angle, T_target[2, other] * angle), angle


@njit(cache=True, nogil=True)
def pose_rigidity(T):
    """For one pose T (4, 4): (finite, max |RᵀR - I|, det R, max |bottom row - (0 0 0 1)|)."""
    finite = True
    for r in range(4):
        for c in range(4):
            if not math.isfinite(T[r, c]):
                finite = False
    orthonormality = 0.0
    for r in range(3):
        for c in range(3):
            dot = T[0, r] * T[0, c] + T[1, r] * T[1, c] + T[2, r] * T[2, c]
            orthonormality = max(orthonormality, abs(dot - (1.0 if r == c else 0.0)))
    det = (
        T[0, 0] * (T[1, 1] * T[2, 2] - T[1, 2] * T[2, 1])
        - T[0, 1] * (T[1, 0] * T[2, 2] - T[1, 2] * T[2, 0])
        + T[0, 2] * (T[1, 0] * T[2, 1] - T[1, 1] * T[2, 0])
    )
    bottom = 0.0
    for c in range(4):
        bottom = max(bottom, abs(T[3, c] - (1.0 if c == 3 else 0.0)))
    return finite, orthonormality, det, bottom


@njit(cache=True, nogil=True)
def rigidity_errors(T):
    """``pose_rigidity`` of each of T (N, 4, 4): (finite, max |RᵀR - I|, det R, max |bottom row - (0 0 0
    1)|), each (N,)."""
    n = T.shape[0]
    finite = np.ones(n, dtype=np.bool_)
    orthonormality, det, bottom = np.zeros(n), np.zeros(n), np.zeros(n)
    for k in range(n):
        finite[k], orthonormality[k], det[k], bottom[k] = pose_rigidity(T[k])
    return finite, orthonormality, det, bottom


@njit(cache=True, nogil=True)
def is_rigid(T, tolerance):
    """Whether the pose T (4, 4) is a rigid transform by ``pose_rigidity``: finite, max |RᵀR - I| within
    ``tolerance``, det R >= 0 and the bottom row exactly (0 0 0 1)."""
    finite, orthonormality, det, bottom = pose_rigidity(T)
    return finite and orthonormality <= tolerance and det >= 0 and bottom <= 0


@njit(cache=True, nogil=True)
def all_rigid(T, tolerance):
    """Whether every pose of T (N, 4, 4) is a rigid transform (``is_rigid``). One call for the usual case;
    the caller asks ``rigidity_errors`` what is wrong only when it is not."""
    for k in range(T.shape[0]):
        if not is_rigid(T[k], tolerance):
            return False
    return True
