"""A goal stream's step, compiled: the step limits of one command and a few DLS steps within the window,
the first pulled along a redundant arm's self-motion towards the middle of the limits, in one call (a
control loop's budget has no room for a dispatch per step).

Arrays are (n,) in chain order, rad or m; ``chain_fields`` and ``step_fields`` are ``ChainArrays`` and
``StepSettings`` as plain tuples; the step's bounds are the joint limits (inf for continuous joints).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ik_neural.kernels.dls import StepSettings, dls_step_pulled, task_rows
from ik_neural.kernels.geometry import RIGIDITY_TOLERANCE, is_rigid
from ik_neural.kernels.kinematics import ChainArrays

# What held a command that is not exact back (``held_back_by``).
NOT_HELD, HELD_BY_STEP_LIMIT, HELD_BY_JOINT_LIMIT, HELD_BY_REACH = 0, 1, 2, 3

# A joint this close to a bound is at it (a step shortened to the window ends on it up to rounding), rad or m.
_AT_BOUND = 1e-9


@njit(cache=True, nogil=True)
def step_window(q_last, dt_s, unused, rate, fixed, longest_s, limit_lower, limit_upper):
    """The next command's step limit and window, ``dt_s`` (s, inf: long ago) after the last command at
    q_last: (limit, lower, upper). limit = min(unused + rate x dt, rate x longest) + fixed, with ``rate``
    the scaled velocity limits (0 where none), ``fixed`` the per-command step of joints without one and
    ``unused`` what earlier commands left of their limits; the window is q_last +- limit within the joint
    limits, and a joint found beyond its limits may only move back towards them."""
    n = q_last.shape[0]
    dt = min(dt_s, longest_s)
    limit, lower, upper = np.empty(n), np.empty(n), np.empty(n)
    for k in range(n):
        limit[k] = min(unused[k] + rate[k] * dt, rate[k] * longest_s) + fixed[k]
        lower[k] = max(q_last[k] - limit[k], min(limit_lower[k], q_last[k]))
        upper[k] = min(q_last[k] + limit[k], max(limit_upper[k], q_last[k]))
    return limit, lower, upper


@njit(cache=True, nogil=True)
def within_window(q, q_next, lower, upper):
    """q_next (n,) pulled back towards q along the line between them, as little as needed for every joint
    to stay within [lower, upper] (q must be within it): the step keeps its direction."""
    fraction = 1.0
    for k in range(q.shape[0]):
        move = q_next[k] - q[k]
        if move > 0.0 and q[k] + move > upper[k]:
            fraction = min(fraction, (upper[k] - q[k]) / move)
        elif move < 0.0 and q[k] + move < lower[k]:
            fraction = min(fraction, (lower[k] - q[k]) / move)
    return q + max(fraction, 0.0) * (q_next - q)


@njit(cache=True, nogil=True)
def centring_pull(q, centre, gain, lower, upper):
    """gain x (centre - q) (n,), each joint's share kept within half its room to [lower, upper] (so the
    steps keep room to follow the goal): the pull a command adds along a redundant arm's self-motion, whose
    commands otherwise drift towards joint limits and singular wrists."""
    pull = np.empty(q.shape[0])
    for k in range(q.shape[0]):
        pull[k] = min(max(gain * (centre[k] - q[k]), 0.5 * (lower[k] - q[k])), 0.5 * (upper[k] - q[k]))
    return pull


@njit(cache=True, nogil=True)
def dls_steps(q, T_target, chain_fields, step_fields, lower, upper, max_steps, pull):
    """Up to ``max_steps`` DLS steps from q (n,) towards T_target (4, 4) within the window [lower, upper]
    (n,) around q (a goal stream's step limits, within the step's bounds, the joint limits), on one call
    with no per-step dispatch; the first step also moves the joints by ``pull`` (n,) in the task's null
    space (``dls_step_pulled``; zeros: none). Returns (q_best, converged, position error m, orientation error rad, steps
    taken, remaining): q_best is the first configuration within both tolerances, else the one of lowest
    normalised error among those visited, q included; the errors are q_best's; ``remaining`` is q_best's
    normalised error over q's (1: no progress; 0 when converged).

    Each step is first clamped joint by joint to the window, which keeps tracking fast where one joint
    saturates. When that does not lower the error (far from the target, a clamped step can turn uphill),
    the step within the joint limits is taken whole, shortened along its direction to fit the window, and
    halved until it does."""
    chain, limits = ChainArrays(*chain_fields), StepSettings(*step_fields)
    window = StepSettings(
        limits.free_axis,
        limits.position_tolerance_m,
        limits.orientation_tolerance_x_rad,
        limits.orientation_tolerance_y_rad,
        limits.orientation_tolerance_z_rad,
        limits.rotation_weight,
        limits.damping,
        limits.error_damping,
        lower,
        upper,
        limits.bounded,
    )
    proposal, converged, best_position, best_orientation, best_norm = dls_step_pulled(q, T_target, chain, window, pull)
    if converged:
        return q, True, best_position, best_orientation, 0, 0.0
    start_norm = best_norm
    # The later steps pull nothing, through the same compiled step as the first (one copy of its code in
    # the instruction cache: a control loop's other work evicts it between commands).
    no_pull = np.zeros(q.shape[0])
    best, clamped, fraction = q, True, 1.0
    for taken in range(1, max_steps + 1):
        candidate = best + fraction * (proposal - best)
        q_next, converged, position_error, orientation_error, error_norm = dls_step_pulled(
            candidate, T_target, chain, window, no_pull
        )
        if converged:
            return candidate, True, position_error, orientation_error, taken, 0.0
        if error_norm < best_norm:
            best, proposal, clamped, fraction = candidate, q_next, True, 1.0
            best_position, best_orientation, best_norm = position_error, orientation_error, error_norm
        elif clamped:
            whole = dls_step_pulled(best, T_target, chain, limits, no_pull)[0]
            proposal, clamped = within_window(best, whole, lower, upper), False
        else:
            fraction *= 0.5
    return best, False, best_position, best_orientation, max_steps, best_norm / start_norm


@njit(cache=True, nogil=True)
def held_back_by(q, lower, upper, limit_lower, limit_upper):
    """Why q, the closest configuration of the window [lower, upper] (n,) to a goal it does not reach, is
    not exact: HELD_BY_STEP_LIMIT where a joint is at a bound of the window that is a step limit (not its
    joint limit ``limit_lower``/``limit_upper``), else HELD_BY_JOINT_LIMIT where one is at a joint limit,
    else HELD_BY_REACH (out of reach, or not reached at a singularity)."""
    at_joint_limit = False
    for k in range(q.shape[0]):
        at_lower, at_upper = q[k] <= lower[k] + _AT_BOUND, q[k] >= upper[k] - _AT_BOUND
        if (at_lower and lower[k] > limit_lower[k]) or (at_upper and upper[k] < limit_upper[k]):
            return HELD_BY_STEP_LIMIT
        at_joint_limit = at_joint_limit or at_lower or at_upper
    return HELD_BY_JOINT_LIMIT if at_joint_limit else HELD_BY_REACH


@njit(cache=True, nogil=True)
def track(q_last, T_target, dt_s, unused, chain_fields, step_fields, rate, fixed, longest_s, centre, gain, max_steps):
    """One command of a goal stream from q_last towards T_target (4, 4), a C-contiguous float64 pose: the
    window (``step_window``), then ``dls_steps`` within it, its first step pulled towards ``centre``
    (``centring_pull``; gain 0, or an arm with no more joints than the task has rows: no pull). Returns (q,
    rigid, converged, position error m, orientation error rad, steps, remaining, held by (``held_back_by``;
    NOT_HELD when converged), unused (2, n): row 0 the step limits left unused if q is commanded, row 1 if
    the arm holds). rigid False: T_target is not a rigid transform (``is_rigid``) and nothing was done."""
    n = q_last.shape[0]
    unused_next = np.zeros((2, n))
    if not is_rigid(T_target, RIGIDITY_TOLERANCE):
        return q_last.copy(), False, False, np.inf, np.inf, 0, 1.0, NOT_HELD, unused_next
    step = StepSettings(*step_fields)
    limit, lower, upper = step_window(q_last, dt_s, unused, rate, fixed, longest_s, step.lower, step.upper)
    pull = np.zeros(n)
    if gain > 0.0 and n > task_rows(step.free_axis):
        pull = centring_pull(q_last, centre, gain, lower, upper)
    q, converged, position_error, orientation_error, steps, remaining = dls_steps(
        q_last, T_target, chain_fields, step_fields, lower, upper, max_steps, pull
    )
    held_by = NOT_HELD if converged else held_back_by(q, lower, upper, step.lower, step.upper)
    for k in range(n):
        unused_next[1, k] = limit[k] - fixed[k]
        unused_next[0, k] = max(unused_next[1, k] - abs(q[k] - q_last[k]), 0.0)
    return q, True, converged, position_error, orientation_error, steps, remaining, held_by, unused_next
