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


@njit(cache=True, nogil=True)
def pose_error(T_target, T):
    """``geometry.pose_errors`` for one pose (4, 4): (position error vector (3,) m, rotation error vector
    (3,) rad, position error m, rotation angle rad)."""
    dp = T_target[:3, 3] - T[:3, 3]
    E = np.empty((3, 3))
    for r in range(3):
        for c in range(3):
            E[r, c] = T_target[r, 0] * T[c, 0] + T_target[r, 1] * T[c, 1] + T_target[r, 2] * T[c, 2]
    v = np.array([0.5 * (E[2, 1] - E[1, 2]), 0.5 * (E[0, 2] - E[2, 0]), 0.5 * (E[1, 0] - E[0, 1])])
    sine = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
    cosine = 0.5 * (E[0, 0] + E[1, 1] + E[2, 2] - 1.0)
    angle = math.atan2(sine, cosine)
    if sine < NEAR_PI_SINE and cosine < 0:
        # At pi, v vanishes but E + I = 2 axis axisᵀ: its largest column is along the axis.
        best, best_norm = 0, -1.0
        for c in range(3):
            norm = 0.0
            for r in range(3):
                value = E[r, c] + (1.0 if r == c else 0.0)
                norm += value * value
            if norm > best_norm:
                best, best_norm = c, norm
        omega = np.empty(3)
        for r in range(3):
            omega[r] = (E[r, best] + (1.0 if r == best else 0.0)) * angle / math.sqrt(best_norm)
    else:
        factor = angle / sine if sine > SMALL_SINE else 1.0
        omega = v * factor
    return dp, omega, math.sqrt(dp[0] * dp[0] + dp[1] * dp[1] + dp[2] * dp[2]), angle


@njit(cache=True, nogil=True)
def swing(T_target, T, axis):
    """The rotation that turns the tip's ``axis`` (0, 1, 2: x, y, z) onto the target's by the shortest way,
    for poses (4, 4): (rotation vector (3,) in the base frame, rad; its angle, rad). Perpendicular to
    both axes, so it leaves out the rotation about the axis (the twist); antiparallel axes: a half turn
    about the target's next axis."""
    tip, goal = T[:3, axis], T_target[:3, axis]
    cross = np.array(
        [tip[1] * goal[2] - tip[2] * goal[1], tip[2] * goal[0] - tip[0] * goal[2], tip[0] * goal[1] - tip[1] * goal[0]]
    )
    sine = math.sqrt(cross[0] * cross[0] + cross[1] * cross[1] + cross[2] * cross[2])
    cosine = tip[0] * goal[0] + tip[1] * goal[1] + tip[2] * goal[2]
    angle = math.atan2(sine, cosine)
    if sine > SMALL_SINE:
        return cross * (angle / sine), angle
    if cosine > 0:
        return cross, angle  # first order: the angle is the sine
    return T_target[:3, (axis + 1) % 3] * angle, angle


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
