"""One damped-least-squares (Levenberg–Marquardt) step of IK, compiled: for one configuration, and for
rows of configurations each against its own target (in parallel or on the calling thread).

``test/reference.py`` has the same step in plain numpy; the tests hold the two equal.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from ik_neural.kernels.geometry import pose_error, swing
from ik_neural.kernels.kinematics import ChainArrays, chain_fk_jacobian, chain_tip
from ik_neural.kernels.mlp import guesses_of_pose


NO_FREE_AXIS, POSITION_ONLY = -1, 3
"""``StepSettings.free_axis`` besides 0, 1, 2 (the target frame's x, y or z free): every rotation held, or none."""


class StepSettings(NamedTuple):
    """What a call's steps share besides the chain: the task (which rotations count, the tolerances, the
    rotation rows' weight), damping and the joint bounds (dof,). Passed as a plain tuple, as
    ``ChainArrays`` is (see there)."""

    free_axis: int  # NO_FREE_AXIS, 0, 1, 2 (the rotation about that axis of the target frame free), POSITION_ONLY
    position_tolerance_m: float
    # About the target frame's x, y, z axes, rad; inf where free. Three floats, not an array: numba types
    # floats faster at every call, and parallel loops take no tuples.
    orientation_tolerance_x_rad: float
    orientation_tolerance_y_rad: float
    orientation_tolerance_z_rad: float
    rotation_weight: float  # weight of the rotation rows against dp / reach (1; less: position first)
    damping: float  # constant part of λ, on errors normalised by the reach
    error_damping: float  # part of λ proportional to the squared normalised error
    lower: np.ndarray  # rad or m
    upper: np.ndarray
    bounded: np.ndarray  # bool; False: a continuous joint searched over a full turn (wrapped)


@njit(cache=True, nogil=True)
def task_rows(free_axis):
    """Rows of the task's error: 3 for the position, plus 3 rotations, 2 (one axis free) or none."""
    if free_axis == POSITION_ONLY:
        return 3
    return 6 if free_axis == NO_FREE_AXIS else 5


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


@njit(cache=True, nogil=True, inline="always")  # inlined: a call returning arrays costs a tenth of a step
def task_error(q, T_target, chain, step):
    """The task at q (n,): (e (m,), J (m, n), converged, position error m, orientation error rad), with
    m = ``task_rows(step.free_axis)``: ``task_residual`` of the tip's pose and its Jacobian.

    J is the Jacobian of e: the position rows scaled by 1 / reach; the rotation rows weighed by
    ``rotation_weight`` and, with one axis free, turned onto the target frame's two held axes.
    """
    T, J = chain_fk_jacobian(q, chain)  # J (6, n) is this call's own: scaled and rotated in place
    e, converged, position_error, orientation_error = task_residual(T, T_target, chain, step)
    n, free_axis = q.shape[0], step.free_axis
    for r in range(3):
        for k in range(n):
            J[r, k] /= chain.reach_m
    if free_axis == POSITION_ONLY:
        return e, J[:3], converged, position_error, orientation_error
    weight = step.rotation_weight
    if free_axis == NO_FREE_AXIS:
        # The rows stay in the base frame: a step does not change when its rows are rotated together.
        if weight != 1.0:
            for r in range(3, 6):
                for k in range(n):
                    J[r, k] *= weight
        return e, J, converged, position_error, orientation_error
    a, b = (free_axis + 1) % 3, (free_axis + 2) % 3
    for k in range(n):  # column by column: rows 3-5 read before rows 3 and 4 are overwritten
        x, y, z = J[3, k], J[4, k], J[5, k]
        J[3, k] = weight * (T_target[0, a] * x + T_target[1, a] * y + T_target[2, a] * z)
        J[4, k] = weight * (T_target[0, b] * x + T_target[1, b] * y + T_target[2, b] * z)
    return e, J[:5], converged, position_error, orientation_error


@njit(cache=True, nogil=True, inline="always")
def task_residual(T, T_target, chain, step):
    """The task's error at the tip's pose T (4, 4): (e (m,), converged, position error m, orientation error
    rad), m = ``task_rows(step.free_axis)``.

    e = [dp / reach; w c]: c are the rotation error's components about the target frame's held axes (all
    three: the log map of R_target Rᵀ; one free: the swing that turns the tip's free axis onto the
    target's, whatever the rotation about it), w = ``rotation_weight``. Converged: within
    ``position_tolerance_m`` and Σ (c_j / tolerance_j)² <= 1 over the held axes. The orientation error is
    |c| (position only: the whole rotation angle, unconstrained).
    """
    dp, omega, position_error, angle = pose_error(T_target, T)
    free_axis = step.free_axis
    e = np.empty(task_rows(free_axis))
    for r in range(3):
        e[r] = dp[r] / chain.reach_m
    if free_axis == POSITION_ONLY:
        return e, position_error <= step.position_tolerance_m, position_error, angle
    weight = step.rotation_weight
    if free_axis == NO_FREE_AXIS:
        rotation, orientation_error = omega, angle
        for r in range(3):
            e[3 + r] = weight * omega[r]
    else:
        rotation, orientation_error = swing(T_target, T, free_axis)
        for row, j in ((3, (free_axis + 1) % 3), (4, (free_axis + 2) % 3)):
            e[row] = weight * (
                T_target[0, j] * rotation[0] + T_target[1, j] * rotation[1] + T_target[2, j] * rotation[2]
            )
    tx, ty, tz = step.orientation_tolerance_x_rad, step.orientation_tolerance_y_rad, step.orientation_tolerance_z_rad
    if free_axis == NO_FREE_AXIS and tx == ty == tz:  # the ellipse is a ball: the angle decides (no projection)
        converged = position_error <= step.position_tolerance_m and orientation_error <= tx
        return e, converged, position_error, orientation_error
    ellipse, widest = 0.0, 0.0
    for j in range(3):
        if j != free_axis:
            component = T_target[0, j] * rotation[0] + T_target[1, j] * rotation[1] + T_target[2, j] * rotation[2]
            tolerance = _axis_tolerance(step, j)
            ellipse += (component / tolerance) ** 2
            widest = max(widest, tolerance)
    # The angle bound keeps the reported error within the tolerance where the ellipse's sum rounds below 1.
    converged = position_error <= step.position_tolerance_m and ellipse <= 1.0 and orientation_error <= widest
    return e, converged, position_error, orientation_error


@njit(cache=True, nogil=True, inline="always")
def _axis_tolerance(step, axis):
    """The step's orientation tolerance about the target frame's ``axis`` (0, 1, 2), rad."""
    if axis == 0:
        return step.orientation_tolerance_x_rad
    return step.orientation_tolerance_y_rad if axis == 1 else step.orientation_tolerance_z_rad


@njit(cache=True, nogil=True)
def task_met(q, T_target, chain_fields, step_fields):
    """Whether FK of q (n,) meets the task's tolerances (``task_error``'s ``converged``)."""
    return task_error(q, T_target, ChainArrays(*chain_fields), StepSettings(*step_fields))[2]


@njit(cache=True, nogil=True)
def dls_step_pulled(q, T_target, chain, step, pull):
    """One DLS step at q (n,) towards T_target (4, 4) that also moves the joints by ``pull`` (n,, rad or m)
    within the null space of the task: dq = Jᵀ (J Jᵀ + λ I)⁻¹ (e - J pull) + pull, which to first order
    moves the tip as the plain step does; ``pull`` None: the plain step (numba compiles that case apart,
    the pull's arithmetic pruned). Returns what ``dls_step`` returns.

    The task's error e and Jacobian J are ``task_error``'s, λ = damping + error_damping · |e|²; a step
    that leaves a bounded joint's limits is redone with that joint held at its limit and not pulled (the
    rest re-solved). Where q is converged no step is taken: q_next is q, within the bounds.
    """
    e, J, converged, position_error, orientation_error = task_error(q, T_target, chain, step)
    error_norm_sq = 0.0
    for r in range(e.shape[0]):
        error_norm_sq += e[r] * e[r]
    if converged:  # no step is taken from an answer: every caller keeps q itself
        q_next = q.copy()
        _into_bounds(q_next, step)
        return q_next, True, position_error, orientation_error, math.sqrt(error_norm_sq)
    q_next = _damped_step(q, e, J, step.error_damping * error_norm_sq + step.damping, pull, step)
    return q_next, converged, position_error, orientation_error, math.sqrt(error_norm_sq)


@njit(cache=True, nogil=True, inline="always")
def _damped_step(q, e, J, lam, pull, step):
    """q + dq (n,) for the task (e (m,), J (m, n)) with damping λ = ``lam`` and the null-space ``pull``
    (None: none), a bounded joint the step would push past a limit held at it, within the bounds."""
    n = q.shape[0]
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
    return q_next


@njit(cache=True, nogil=True)
def polish(q, T_target, chain_fields, step_fields, q_seed, displacement_weight, centring_weight, iterations):
    """The converged q (n,) moved along the task's null space (the arm's self-motion) by up to
    ``iterations`` rounds, each pulled ``displacement_weight`` of the way towards q_seed (n,) and
    ``centring_weight`` of the way towards the middle of the bounded joints' limits (continuous joints:
    the short way round to the seed, no centring), then one plain step back onto the task: (the last
    configuration within the tolerances, its position error m and orientation error rad). A round that
    ends outside them is retried with half the pull, so the pose never pays for the cost terms."""
    chain, step = ChainArrays(*chain_fields), StepSettings(*step_fields)
    n = q.shape[0]
    pull = np.empty(n)
    e, J, converged, position_error, orientation_error = task_error(q, T_target, chain, step)
    scale = 1.0
    for _ in range(iterations):
        for k in range(n):
            to_seed = q_seed[k] - q[k]
            if step.bounded[k]:
                to_middle = 0.5 * (step.lower[k] + step.upper[k]) - q[k]
            else:
                to_seed, to_middle = (to_seed + math.pi) % (2 * math.pi) - math.pi, 0.0
            pull[k] = scale * (displacement_weight * to_seed + centring_weight * to_middle)
        q_next = _damped_step(q, e, J, _damping(e, step), pull, step)
        e_next, J_next, converged, position_next, orientation_next = task_error(q_next, T_target, chain, step)
        if not converged:  # the pull's second-order drift, stepped back onto the task
            q_next = _damped_step(q_next, e_next, J_next, _damping(e_next, step), None, step)
            e_next, J_next, converged, position_next, orientation_next = task_error(q_next, T_target, chain, step)
        if converged:
            q, e, J, position_error, orientation_error = q_next, e_next, J_next, position_next, orientation_next
        else:
            scale *= 0.5
    return q, position_error, orientation_error


@njit(cache=True, nogil=True, inline="always")
def _damping(e, step):
    """λ of a step on the error e (m,): damping + error_damping · |e|²."""
    error_norm_sq = 0.0
    for r in range(e.shape[0]):
        error_norm_sq += e[r] * e[r]
    return step.error_damping * error_norm_sq + step.damping


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


@njit(cache=True, nogil=True)
def dls_step_rows(Q, T_targets, chain_fields, step_fields):
    """``dls_step`` for each row of Q (R, n) against its own target T_targets (R, 4, 4), on the calling
    thread (the one-pose restarts' few rows; a batch's rounds are ``dls_steps_rows``).

    Returns (Q_next (R, n), converged (R,), position errors (R,), orientation errors (R,), error norms (R,)).
    """
    chain, step = ChainArrays(*chain_fields), StepSettings(*step_fields)
    out = _row_outputs(Q)
    for r in range(Q.shape[0]):
        _step_row(r, Q, T_targets, out, chain, step)
    return out


@njit(cache=True, nogil=True)
def _steps_row(r, Q, T_targets, out, chain, step):
    """Up to ``steps`` DLS steps of row r of Q against T_targets[r], stopping where it converges (each
    step's error into out[5][:, r], a converged row's repeated); the outputs ``dls_steps_rows`` names."""
    Q_judged, Q_next, converged, position_error, orientation_error, errors, taken = out
    q = Q[r]
    steps = errors.shape[0]
    for s in range(steps):
        q_next, converged[r], position_error[r], orientation_error[r], errors[s, r] = dls_step_with(
            q, T_targets[r], chain, step
        )
        taken[r] = s + 1
        if converged[r] or s == steps - 1:
            Q_judged[r], Q_next[r] = q, q_next
            errors[s + 1 :, r] = errors[s, r]
            return
        q = q_next


@njit(cache=True, nogil=True)
def _steps_outputs(Q, steps):
    """Empty outputs of ``dls_steps_rows`` for Q (R, n)."""
    rows = Q.shape[0]
    converged, taken = np.empty(rows, dtype=np.bool_), np.empty(rows, dtype=np.int64)
    return np.empty_like(Q), np.empty_like(Q), converged, np.empty(rows), np.empty(rows), np.empty((steps, rows)), taken


@njit(cache=True, nogil=True, parallel=True)
def dls_steps_rows(Q, T_targets, chain_fields, step_fields, steps):
    """Up to ``steps`` DLS steps of each row of Q (R, n) against its own target T_targets (R, 4, 4), rows in
    parallel, a row stopping where it converges: one call instead of ``steps``, where a call's bookkeeping
    outweighs a step (a batch's rounds).

    Returns (Q_judged (R, n): each row's last configuration judged, Q_next (R, n) the step from it,
    converged (R,), position and orientation errors (R,) of Q_judged (m, rad), errors (steps, R): the error
    norm of each step's configuration (a converged row's repeated after it), taken (R,): steps taken).
    With ``steps`` 1: ``dls_step_rows``'s outputs, Q_judged being Q.
    """
    chain, step = ChainArrays(*chain_fields), StepSettings(*step_fields)
    out = _steps_outputs(Q, steps)
    for r in prange(Q.shape[0]):
        _steps_row(r, Q, T_targets, out, chain, step)
    return out


@njit(cache=True, nogil=True)
def dls_steps_rows_serial(Q, T_targets, chain_fields, step_fields, steps):
    """``dls_steps_rows`` on the calling thread."""
    chain, step = ChainArrays(*chain_fields), StepSettings(*step_fields)
    out = _steps_outputs(Q, steps)
    for r in range(Q.shape[0]):
        _steps_row(r, Q, T_targets, out, chain, step)
    return out


@njit(cache=True, nogil=True)
def _rank_target(i, G, T_targets, out, chain, step):
    """Target i's guesses G[i] (K, n), anywhere, into out[i] lowest error first (by FK alone: a step would
    cost three times as much), each within the bounds, the first stepped once; a guess already within
    both tolerances is only moved into the bounds, ahead of the rest (the next step confirms it)."""
    k = G.shape[1]
    error = np.empty(k)
    for j in range(k):
        e, converged, _, _ = task_residual(chain_tip(G[i, j], chain), T_targets[i], chain, step)
        error_norm_sq = 0.0
        for r in range(e.shape[0]):
            error_norm_sq += e[r] * e[r]
        error[j] = -1.0 if converged else math.sqrt(error_norm_sq)  # as ``dls_step`` reports it
    order = np.argsort(error, kind="mergesort")  # stable: ties keep head order
    for j in range(k):
        out[i, j] = G[i, order[j]]
        _into_bounds(out[i, j], step)
    if error[order[0]] >= 0.0:
        out[i, 0] = dls_step_with(G[i, order[0]], T_targets[i], chain, step)[0]


@njit(cache=True, nogil=True)
def ranked_guesses_of_pose(T_target, network_fields, chain_fields, step_fields):
    """A network's K guesses for one pose T_target (4, 4) (``mlp.guesses_of_pose`` of ``network_fields``),
    ranked as ``ranked_guesses`` ranks them: (K, n), in one call (the solver's first seeds; a call from
    Python costs about a µs, and each array it returns more)."""
    G = guesses_of_pose(T_target, *network_fields)
    out = np.empty((1,) + G.shape)
    chain, step = ChainArrays(*chain_fields), StepSettings(*step_fields)
    _rank_target(0, G.reshape((1,) + G.shape), T_target.reshape((1, 4, 4)), out, chain, step)
    return out[0]


@njit(cache=True, nogil=True, parallel=True)
def ranked_guesses(G, T_targets, chain_fields, step_fields):
    """Each target's K guesses G (N, K, n) ordered by their error, lowest first, the first stepped once
    (``_rank_target``): (N, K, n); T_targets (N, 4, 4); targets in parallel."""
    chain, step = ChainArrays(*chain_fields), StepSettings(*step_fields)
    out = np.empty_like(G)
    for i in prange(G.shape[0]):
        _rank_target(i, G, T_targets, out, chain, step)
    return out


@njit(cache=True, nogil=True)
def ranked_guesses_serial(G, T_targets, chain_fields, step_fields):
    """``ranked_guesses`` on the calling thread."""
    chain, step = ChainArrays(*chain_fields), StepSettings(*step_fields)
    out = np.empty_like(G)
    for i in range(G.shape[0]):
        _rank_target(i, G, T_targets, out, chain, step)
    return out
