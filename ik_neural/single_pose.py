"""Compiled (numba) kernels for one pose: FK + Jacobian and the DLS step, in float64.

For one pose the vectorised numpy code spends its time in per-call overhead (about 1 µs for each of
~100 small array operations a step); compiled loops do the same arithmetic in a few µs. The formulas
are those of ``KinematicChain._frames`` and ``solver._dls_step``, and the tests hold them equal.
Everything here works on plain arrays: ``KinematicChain`` and ``IKSolver`` own the API.
numba's linear algebra needs scipy, so the 3x3 products and the Cholesky solve are written out.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange


@njit(cache=True, nogil=True)
def _mat3(A, B):
    C = np.empty((3, 3))
    for r in range(3):
        for c in range(3):
            C[r, c] = A[r, 0] * B[0, c] + A[r, 1] * B[1, c] + A[r, 2] * B[2, c]
    return C


@njit(cache=True, nogil=True)
def _add_rotated(t, R, v):
    """t + R v for 3-vectors."""
    out = np.empty(3)
    for r in range(3):
        out[r] = t[r] + R[r, 0] * v[0] + R[r, 1] * v[1] + R[r, 2] * v[2]
    return out


@njit(cache=True, nogil=True)
def fk_jacobian(q, R0, R0K, R0K2, t0, slide, axis, prismatic, T_last):
    """T_base_tip (4, 4) and the geometric Jacobian (6, n), base frame, at q (n,).

    The constants are KinematicChain's: joint i's local transform is [R0 + sin q R0K + (1 - cos q) R0K²,
    t0 + q slide]; ``prismatic`` (n,) is bool.
    """
    n = q.shape[0]
    R = np.eye(3)
    t = np.zeros(3)
    z = np.empty((n, 3))
    origin = np.empty((n, 3))
    local = np.empty((3, 3))
    for i in range(n):
        s, one_minus_c = math.sin(q[i]), 1.0 - math.cos(q[i])
        for r in range(3):
            for c in range(3):
                local[r, c] = R0[i, r, c] + s * R0K[i, r, c] + one_minus_c * R0K2[i, r, c]
        t = _add_rotated(t, R, t0[i] + q[i] * slide[i])
        R = _mat3(R, local)
        # The joint's axis and origin in the base frame (its own motion moves neither).
        for r in range(3):
            z[i, r] = R[r, 0] * axis[i, 0] + R[r, 1] * axis[i, 1] + R[r, 2] * axis[i, 2]
            origin[i, r] = t[r]
    T = np.eye(4)
    T[:3, :3] = _mat3(R, T_last[:3, :3])
    T[:3, 3] = _add_rotated(t, R, T_last[:3, 3])
    J = np.zeros((6, n))
    for i in range(n):
        if prismatic[i]:
            J[0, i], J[1, i], J[2, i] = z[i, 0], z[i, 1], z[i, 2]
        else:
            l0, l1, l2 = T[0, 3] - origin[i, 0], T[1, 3] - origin[i, 1], T[2, 3] - origin[i, 2]
            J[0, i] = z[i, 1] * l2 - z[i, 2] * l1
            J[1, i] = z[i, 2] * l0 - z[i, 0] * l2
            J[2, i] = z[i, 0] * l1 - z[i, 1] * l0
            J[3, i], J[4, i], J[5, i] = z[i, 0], z[i, 1], z[i, 2]
    return T, J


@njit(cache=True, nogil=True)
def pose_error(T_target, T):
    """(position error vector (3,) m, rotation error vector (3,) rad, position error m, angle rad).

    The rotation error is the log map of R_target·Rᵀ, as ``solver.pose_errors``.
    """
    dp = T_target[:3, 3] - T[:3, 3]
    E = np.empty((3, 3))
    for r in range(3):
        for c in range(3):
            E[r, c] = T_target[r, 0] * T[c, 0] + T_target[r, 1] * T[c, 1] + T_target[r, 2] * T[c, 2]
    v = np.array([0.5 * (E[2, 1] - E[1, 2]), 0.5 * (E[0, 2] - E[2, 0]), 0.5 * (E[1, 0] - E[0, 1])])
    sine = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
    cosine = 0.5 * (E[0, 0] + E[1, 1] + E[2, 2] - 1.0)
    angle = math.atan2(sine, cosine)
    if sine < 1e-6 and cosine < 0:
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
        factor = angle / sine if sine > 1e-9 else 1.0
        omega = v * factor
    return dp, omega, math.sqrt(dp[0] * dp[0] + dp[1] * dp[1] + dp[2] * dp[2]), angle


@njit(cache=True, nogil=True)
def _damped_solve(J, e, damping):
    """dq = Jᵀ (J Jᵀ + λ I)⁻¹ e by Cholesky (J Jᵀ + λ I is symmetric positive definite)."""
    m, n = J.shape
    L = np.zeros((m, m))
    for r in range(m):
        for c in range(r + 1):
            acc = 0.0
            for k in range(n):
                acc += J[r, k] * J[c, k]
            if r == c:
                acc += damping
            L[r, c] = acc
    for j in range(m):  # in place: L Lᵀ = A, lower triangle
        for k in range(j):
            L[j, j] -= L[j, k] * L[j, k]
        L[j, j] = math.sqrt(L[j, j])
        for r in range(j + 1, m):
            for k in range(j):
                L[r, j] -= L[r, k] * L[j, k]
            L[r, j] /= L[j, j]
    x = e.copy()
    for r in range(m):  # L y = e
        for k in range(r):
            x[r] -= L[r, k] * x[k]
        x[r] /= L[r, r]
    for r in range(m - 1, -1, -1):  # Lᵀ x = y
        for k in range(r + 1, m):
            x[r] -= L[k, r] * x[k]
        x[r] /= L[r, r]
    dq = np.zeros(n)
    for k in range(n):
        for r in range(m):
            dq[k] += J[r, k] * x[r]
    return dq


@njit(cache=True, nogil=True)
def dls_step(
    q, T_target, R0, R0K, R0K2, t0, slide, axis, prismatic, T_last,
    reach_m, position_only, position_tolerance_m, orientation_tolerance_rad,
    damping, error_damping, lower, upper, bounded,
):  # fmt: skip
    """One DLS step at q (n,): (q_next, converged, position error m, orientation error rad, error norm).

    The errors and ``converged`` are those of q itself, before the step; as ``solver._dls_step``.
    """
    T, J_full = fk_jacobian(q, R0, R0K, R0K2, t0, slide, axis, prismatic, T_last)
    dp, omega, position_error, orientation_error = pose_error(T_target, T)
    n = q.shape[0]
    m = 3 if position_only else 6
    e = np.empty(m)
    J = np.empty((m, n))
    for r in range(3):
        e[r] = dp[r] / reach_m
        for k in range(n):
            J[r, k] = J_full[r, k] / reach_m
    if not position_only:
        for r in range(3):
            e[3 + r] = omega[r]
            for k in range(n):
                J[3 + r, k] = J_full[3 + r, k]
    converged = position_error <= position_tolerance_m and (
        position_only or orientation_error <= orientation_tolerance_rad
    )
    error_norm_sq = 0.0
    for r in range(m):
        error_norm_sq += e[r] * e[r]
    lam = error_damping * error_norm_sq + damping
    q_try = q + _damped_solve(J, e, lam)

    over = np.zeros(n, dtype=np.bool_)
    any_over = False
    for k in range(n):
        if bounded[k] and (q_try[k] < lower[k] or q_try[k] > upper[k]):
            over[k] = True
            any_over = True
    if any_over:
        delta = np.zeros(n)
        for k in range(n):
            if over[k]:
                delta[k] = min(max(q_try[k], lower[k]), upper[k]) - q[k]
        e_left = e.copy()
        for r in range(m):
            for k in range(n):
                e_left[r] -= J[r, k] * delta[k]
        J_free = J.copy()
        for k in range(n):
            if over[k]:
                J_free[:, k] = 0.0
        q_try = q + delta + _damped_solve(J_free, e_left, lam)
    q_next = np.empty(n)
    for k in range(n):
        if bounded[k]:
            q_next[k] = min(max(q_try[k], lower[k]), upper[k])
        else:
            q_next[k] = (q_try[k] + math.pi) % (2 * math.pi) - math.pi
    return q_next, converged, position_error, orientation_error, math.sqrt(error_norm_sq)


@njit(cache=True, nogil=True)
def _row_outputs(Q):
    """Empty outputs of a rows step for Q (R, n): (Q_next, converged, position, orientation, error norm)."""
    rows = Q.shape[0]
    return np.empty_like(Q), np.empty(rows, dtype=np.bool_), np.empty(rows), np.empty(rows), np.empty(rows)


@njit(cache=True, nogil=True)
def _step_row(r, Q, T_targets, out, constants):
    """``dls_step`` of row r of Q against T_targets[r], written into row r of the outputs ``out``."""
    out[0][r], out[1][r], out[2][r], out[3][r], out[4][r] = dls_step(Q[r], T_targets[r], *constants)


@njit(cache=True, nogil=True, parallel=True)
def dls_step_rows(Q, T_targets, constants):
    """``dls_step`` for each row of Q (R, n) against its own target T_targets (R, 4, 4), rows in parallel.

    ``constants`` are dls_step's arguments after (q, T_target). Returns (Q_next (R, n), converged (R,),
    position errors (R,), orientation errors (R,), error norms (R,)).
    """
    out = _row_outputs(Q)
    for r in prange(Q.shape[0]):
        _step_row(r, Q, T_targets, out, constants)
    return out


@njit(cache=True, nogil=True)
def dls_step_rows_serial(Q, T_targets, constants):
    """``dls_step_rows`` on the calling thread: for few rows, where waking threads costs more than it saves."""
    out = _row_outputs(Q)
    for r in range(Q.shape[0]):
        _step_row(r, Q, T_targets, out, constants)
    return out


@njit(cache=True, nogil=True)
def rigidity_errors(T):
    """For each of T (N, 4, 4): (finite, max |RᵀR - I|, det R, max |bottom row - (0 0 0 1)|), each (N,)."""
    n = T.shape[0]
    finite = np.ones(n, dtype=np.bool_)
    orthonormality, det, bottom = np.zeros(n), np.zeros(n), np.zeros(n)
    for k in range(n):
        for r in range(4):
            for c in range(4):
                if not math.isfinite(T[k, r, c]):
                    finite[k] = False
        for r in range(3):
            for c in range(3):
                dot = T[k, 0, r] * T[k, 0, c] + T[k, 1, r] * T[k, 1, c] + T[k, 2, r] * T[k, 2, c]
                orthonormality[k] = max(orthonormality[k], abs(dot - (1.0 if r == c else 0.0)))
        det[k] = (
            T[k, 0, 0] * (T[k, 1, 1] * T[k, 2, 2] - T[k, 1, 2] * T[k, 2, 1])
            - T[k, 0, 1] * (T[k, 1, 0] * T[k, 2, 2] - T[k, 1, 2] * T[k, 2, 0])
            + T[k, 0, 2] * (T[k, 1, 0] * T[k, 2, 1] - T[k, 1, 1] * T[k, 2, 0])
        )
        for c in range(4):
            bottom[k] = max(bottom[k], abs(T[k, 3, c] - (1.0 if c == 3 else 0.0)))
    return finite, orthonormality, det, bottom
