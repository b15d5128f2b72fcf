"""One damped-least-squares (Levenberg–Marquardt) step of IK, compiled: for one configuration, and for
rows of configurations each against its own target (in parallel or on the calling thread).

``test/reference.py`` has the same step in plain numpy; the tests hold the two equal.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from ik_neural.kernels.geometry import pose_error
from ik_neural.kernels.kinematics import ChainArrays, chain_fk_jacobian


class StepSettings(NamedTuple):
    """What a call's steps share besides the chain: tolerances, damping and the joint bounds (dof,).
    Passed as a plain tuple, as ``ChainArrays`` is (see there)."""

    position_only: bool
    position_tolerance_m: float
    orientation_tolerance_rad: float  # unused when position_only
    damping: float  # constant part of λ, on errors normalised by the reach
    error_damping: float  # part of λ proportional to the squared normalised error
    lower: np.ndarray  # rad or m
    upper: np.ndarray
    bounded: np.ndarray  # bool; False: a continuous joint searched over a full turn (wrapped)


@njit(cache=True, nogil=True)
def damped_solve(J, e, damping):
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
def dls_step(q, T_target, chain_fields, step_fields):
    """One DLS step at q (n,) towards T_target (4, 4): (q_next, converged, position error m, orientation
    error rad, normalised error norm). The errors and ``converged`` are those of q itself, before the step.
    ``chain_fields``, ``step_fields``: ``ChainArrays`` and ``StepSettings`` as plain tuples."""
    return dls_step_with(q, T_target, ChainArrays(*chain_fields), StepSettings(*step_fields))


@njit(cache=True, nogil=True, inline="always")
def _into_bounds(q, step):
    """q (n,) moved, in place, to the nearest point of the bounds: bounded joints clamped, the others
    wrapped to [-pi, pi)."""
    for k in range(q.shape[0]):
        if step.bounded[k]:
            q[k] = min(max(q[k], step.lower[k]), step.upper[k])
        else:
            q[k] = (q[k] + math.pi) % (2 * math.pi) - math.pi


@njit(cache=True, nogil=True)
def dls_step_with(q, T_target, chain, step):
    """``dls_step`` on the named tuples (``dls_step_pulled`` with no pull)."""
    return dls_step_pulled(q, T_target, chain, step, None)


@njit(cache=True, nogil=True)
def dls_step_pulled(q, T_target, chain, step, pull):
    """One DLS step at q (n,) towards T_target (4, 4) that also moves the joints by ``pull`` (n,, rad or m)
    within the null space of the task: dq = Jᵀ (J Jᵀ + λ I)⁻¹ (e - J pull) + pull, which to first order
    moves the tip as the plain step does; ``pull`` None: the plain step (numba compiles that case apart,
    the pull's arithmetic pruned). Returns what ``dls_step`` returns.

    The error is [dp / reach; omega] (or dp / reach alone), λ = damping + error_damping · |e|²; a step that
    leaves a bounded joint's limits is redone with that joint held at its limit and not pulled (the rest
    re-solved). Where q is converged no step is taken: q_next is q, within the bounds.
    """
    T, J_full = chain_fk_jacobian(q, chain)
    dp, omega, position_error, orientation_error = pose_error(T_target, T)
    n = q.shape[0]
    m = 3 if step.position_only else 6
    e = np.empty(m)
    for r in range(3):
        e[r] = dp[r] / chain.reach_m
        for k in range(n):
            J_full[r, k] /= chain.reach_m
    if not step.position_only:
        for r in range(3):
            e[3 + r] = omega[r]
    J = J_full[:m]  # a view: the position rows alone when position_only
    converged = position_error <= step.position_tolerance_m and (
        step.position_only or orientation_error <= step.orientation_tolerance_rad
    )
    error_norm_sq = 0.0
    for r in range(m):
        error_norm_sq += e[r] * e[r]
    if converged:  # no step is taken from an answer: every caller keeps q itself
        q_next = q.copy()
        _into_bounds(q_next, step)
        return q_next, True, position_error, orientation_error, math.sqrt(error_norm_sq)
    lam = step.error_damping * error_norm_sq + step.damping
    if pull is None:
        q_next = damped_solve(J, e, lam)  # dq, turned into q + dq in place (no allocation per step)
        for k in range(n):
            q_next[k] += q[k]
    else:
        q_next = damped_solve(J, _less_moved(e, J, pull), lam)
        for k in range(n):
            q_next[k] += pull[k] + q[k]

    lower, upper, bounded = step.lower, step.upper, step.bounded
    any_over = False
    for k in range(n):
        if bounded[k] and (q_next[k] < lower[k] or q_next[k] > upper[k]):
            any_over = True
    if any_over:
        over = np.zeros(n, dtype=np.bool_)
        # What the redone step moves by itself: the held joints' delta, the others' pull.
        moved = np.zeros(n) if pull is None else pull.copy()
        for k in range(n):
            if bounded[k] and (q_next[k] < lower[k] or q_next[k] > upper[k]):
                over[k] = True
                moved[k] = min(max(q_next[k], lower[k]), upper[k]) - q[k]
        J_free = J.copy()
        for k in range(n):
            if over[k]:
                J_free[:, k] = 0.0
        q_next = damped_solve(J_free, _less_moved(e, J, moved), lam)
        for k in range(n):
            q_next[k] += q[k] + moved[k]
    _into_bounds(q_next, step)
    return q_next, converged, position_error, orientation_error, math.sqrt(error_norm_sq)


@njit(cache=True, nogil=True, inline="always")
def _less_moved(e, J, moved):
    """e (m,) less what the joints' motion ``moved`` (n,) does to it to first order: e - J moved."""
    left = e.copy()
    for r in range(e.shape[0]):
        for k in range(moved.shape[0]):
            left[r] -= J[r, k] * moved[k]
    return left


@njit(cache=True, nogil=True)
def _row_outputs(Q):
    """Empty outputs of a rows step for Q (R, n): (Q_next, converged, position, orientation, error norm)."""
    rows = Q.shape[0]
    return np.empty_like(Q), np.empty(rows, dtype=np.bool_), np.empty(rows), np.empty(rows), np.empty(rows)


@njit(cache=True, nogil=True)
def _step_row(r, Q, T_targets, out, chain, step):
    """``dls_step`` of row r of Q against T_targets[r], written into row r of the outputs ``out``."""
    out[0][r], out[1][r], out[2][r], out[3][r], out[4][r] = dls_step_with(Q[r], T_targets[r], chain, step)


@njit(cache=True, nogil=True, parallel=True)
def dls_step_rows(Q, T_targets, chain_fields, step_fields):
    """``dls_step`` for each row of Q (R, n) against its own target T_targets (R, 4, 4), rows in parallel.

    Returns (Q_next (R, n), converged (R,), position errors (R,), orientation errors (R,), error norms (R,)).
    """
    chain, step = ChainArrays(*chain_fields), StepSettings(*step_fields)
    out = _row_outputs(Q)
    for r in prange(Q.shape[0]):
        _step_row(r, Q, T_targets, out, chain, step)
    return out


@njit(cache=True, nogil=True)
def dls_step_rows_serial(Q, T_targets, chain_fields, step_fields):
    """``dls_step_rows`` on the calling thread: for few rows, where waking threads costs more than it saves."""
    chain, step = ChainArrays(*chain_fields), StepSettings(*step_fields)
    out = _row_outputs(Q)
    for r in range(Q.shape[0]):
        _step_row(r, Q, T_targets, out, chain, step)
    return out


@njit(cache=True, nogil=True)
def _rank_target(i, G, T_targets, out, chain, step):
    """Target i's guesses G[i] (K, n), anywhere: each stepped once (which puts it within the bounds),
    written into out[i] lowest error first; a guess already within both tolerances is only moved into the
    bounds, ahead of the rest (the next step confirms it)."""
    k = G.shape[1]
    error = np.empty(k)
    stepped = np.empty_like(G[i])
    for j in range(k):
        stepped[j], converged, _, _, error[j] = dls_step_with(G[i, j], T_targets[i], chain, step)
        if converged:
            stepped[j] = G[i, j]
            _into_bounds(stepped[j], step)
            error[j] = -1.0
    order = np.argsort(error, kind="mergesort")  # stable: ties keep head order
    for j in range(k):
        out[i, j] = stepped[order[j]]


@njit(cache=True, nogil=True, parallel=True)
def ranked_steps(G, T_targets, chain_fields, step_fields):
    """Each target's K guesses G (N, K, n) stepped once and ordered by their error, lowest first: (N, K, n);
    T_targets (N, 4, 4); targets in parallel."""
    chain, step = ChainArrays(*chain_fields), StepSettings(*step_fields)
    out = np.empty_like(G)
    for i in prange(G.shape[0]):
        _rank_target(i, G, T_targets, out, chain, step)
    return out


@njit(cache=True, nogil=True)
def ranked_steps_serial(G, T_targets, chain_fields, step_fields):
    """``ranked_steps`` on the calling thread."""
    chain, step = ChainArrays(*chain_fields), StepSettings(*step_fields)
    out = np.empty_like(G)
    for i in range(G.shape[0]):
        _rank_target(i, G, T_targets, out, chain, step)
    return out
