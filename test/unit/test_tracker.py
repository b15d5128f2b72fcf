"""The Tracker (goal streams) judged by the independent reference: Pinocchio's FK for every error and
Pinocchio's reading of the URDF's velocity limits for every step limit (test/reference.py)."""

import math

import numpy as np
import pytest

from reference import ReferenceChain
from urdf_variants import PANDA_URDF, panda_urdf, with_continuous_joint

from ik_neural.chain import KinematicChain
from ik_neural.query import Tolerance
from ik_neural.robots import load_robot
from ik_neural.solver import IKSolver
from ik_neural.tracker import (
    APPROXIMATE,
    EXACT,
    HELD,
    OUT_OF_REACH,
    STEP_LIMIT,
    UNSOLVED,
    Tracker,
    TrackerSettings,
)

TOL = 1e-5
DT_S = 0.005
LONGEST_S = TrackerSettings().max_step_dt_s  # the most time one step limit counts


@pytest.fixture(scope="module")
def panda():
    robot = load_robot("panda")
    solver = IKSolver(robot.chain, network=robot.network)
    solver.warm_up()
    return solver


@pytest.fixture(scope="module")
def reference(panda):
    chain = panda.chain
    return ReferenceChain(PANDA_URDF, chain.base_link, chain.tip_link, chain.joint_names)


def _velocity_limits(reference):
    """The URDF's velocity limits as Pinocchio reads them, rad/s, in chain order."""
    model = reference.model
    return np.array([model.velocityLimit[model.joints[i].idx_v] for i in reference.joint_ids])


def _centre(chain):
    """A collision-free Panda configuration away from limits and singularities."""
    q = chain.middle.copy()
    q[3], q[5] = -1.5, 1.9
    return q


def _sine_path(q_centre, steps, amplitude_rad=0.3, period_s=3.0):
    """A slow joint-space sine around q_centre, one row per DT_S (at most ~0.003 rad a step)."""
    t = np.arange(steps)[:, None] * DT_S
    return q_centre + amplitude_rad * np.sin(2 * np.pi * t / period_s + np.arange(q_centre.size))


def _assert_velocity_limited(commands, dt_s, limits, longest_s=LONGEST_S):
    """Commands (n, dof) dt_s apart, the first the start: between any two, no joint moved farther than its
    velocity limit allows in the time between them plus longest_s (the step limit's unused allowance)."""
    Q = np.asarray(commands)
    i, j = np.triu_indices(len(Q), k=1)
    allowed = limits * ((j - i)[:, None] * dt_s + longest_s) + 1e-12
    assert (np.abs(Q[j] - Q[i]) <= allowed).all()


def test_a_smooth_path_is_tracked_exactly_within_the_velocity_limits(panda, reference):
    path = _sine_path(_centre(panda.chain), 200)
    limits = _velocity_limits(reference)
    tracker = Tracker(panda)
    tracker.reset(path[0])
    commands = [path[0]]
    for q_path in path[1:]:
        T_goal = reference.forward(q_path)
        command = tracker.step(T_goal, DT_S)
        assert command.status == EXACT and command.exact and command.reason == ""
        position_m, rotation_rad = reference.errors(command.q, T_goal)
        assert position_m <= TOL and rotation_rad <= TOL
        assert command.position_error_m == pytest.approx(position_m, abs=1e-9)
        commands.append(command.q)
    _assert_velocity_limited(commands, DT_S, limits)
    assert np.array_equal(tracker.q, commands[-1])


def test_a_goal_on_another_branch_is_approached_in_steps_never_a_jump(panda, reference):
    """The goal jumps 1.5 rad away in joint space: no joint moves faster than its velocity limit (with the
    step limit's allowance), the tip comes closer, and the goal is reached exactly at the end."""
    chain = panda.chain
    q_start = _centre(chain)
    q_goal = q_start + np.array([1.5, 0.3, -0.4, 0.3, 0.5, -0.3, 0.8])
    T_goal = reference.forward(q_goal)
    limits = _velocity_limits(reference)
    tracker = Tracker(panda)
    tracker.reset(q_start)
    commands, errors, statuses = [q_start], [], []
    for _ in range(400):
        command = tracker.step(T_goal, 0.01)
        errors.append(reference.errors(command.q, T_goal)[0])
        statuses.append(command.status)
        commands.append(command.q)
        if command.exact:
            break
    assert statuses[0] == APPROXIMATE and command.exact, statuses[-5:]
    _assert_velocity_limited(commands, 0.01, limits)
    assert errors[-1] <= TOL and errors[len(errors) // 2] < errors[0]
    first = Tracker(panda)
    first.reset(q_start)
    assert first.step(T_goal, 0.01).reason == STEP_LIMIT


def test_an_unreachable_goal_gets_the_closest_pose_then_exact_again_once_in_reach(panda, reference):
    chain = panda.chain
    q_start = _centre(chain)
    T_reachable = reference.forward(q_start)
    T_far = T_reachable.copy()
    T_far[:3, 3] *= 3.0  # well beyond the Panda's reach of about 1 m
    tracker = Tracker(panda)
    tracker.reset(q_start)
    commands = [tracker.step(T_far, 0.02) for _ in range(150)]
    assert all(c.status == APPROXIMATE for c in commands)
    assert commands[-1].reason == OUT_OF_REACH
    start_m, _ = reference.errors(q_start, T_far)
    closest_m, _ = reference.errors(commands[-1].q, T_far)
    assert closest_m < start_m - 0.1
    back = [tracker.step(T_reachable, 0.02) for _ in range(300)]
    assert back[-1].exact
    position_m, rotation_rad = reference.errors(back[-1].q, T_reachable)
    assert position_m <= TOL and rotation_rad <= TOL


class _CountingSolver(IKSolver):
    """An IKSolver that counts its full solves."""

    solves = 0

    def solve(self, *args, **kwargs):
        self.solves += 1
        return super().solve(*args, **kwargs)


def test_a_goal_held_out_of_reach_costs_a_full_solve_now_and_then_not_every_command(panda, reference):
    """The goal lies within the sphere of the arm's reach, so the stalled steps ask for full solves; after
    each that finds nothing the next waits 2, 4, ... up to 64 commands."""
    chain = panda.chain
    q_start = _centre(chain)
    T_reachable = reference.forward(q_start)
    T_out = T_reachable.copy()
    T_out[:3, 3] *= 1.25
    first_joint_m = chain.joints[0].T_prev_joint[:3, 3]
    assert np.linalg.norm(T_out[:3, 3] - first_joint_m) < chain.reach_m  # not skipped as certainly out of reach
    solver = _CountingSolver(chain, network=panda.network)
    tracker = Tracker(solver)
    tracker.reset(q_start)
    commands = [tracker.step(T_out, DT_S) for _ in range(200)]
    assert all(c.status == APPROXIMATE for c in commands) and commands[-1].reason == OUT_OF_REACH
    assert 1 <= solver.solves <= 10  # 2 + 4 + ... + 64 + 64 commands waited: at most 8 solves in 200
    back = [tracker.step(T_reachable, DT_S) for _ in range(400)]
    assert back[-1].exact and max(reference.errors(back[-1].q, T_reachable)) <= TOL


def test_goals_in_a_burst_use_the_step_limit_left_unused_before_them(panda, reference):
    """Goals 10 ms apart, then three in 0.1 ms: the burst's goals are still reached exactly, from what the
    slow commands before left unused, and no joint ever moves more than max_step_dt_s at its velocity."""
    path = _sine_path(_centre(panda.chain), 40)
    limits = _velocity_limits(reference)
    tracker = Tracker(panda)
    tracker.reset(path[0])
    for q_path in path[1:37]:
        assert tracker.step(reference.forward(q_path), 0.01).exact
    for q_path in path[37:]:
        q_last = tracker.q
        command = tracker.step(reference.forward(q_path), 0.0001)
        assert command.exact
        assert (np.abs(command.q - q_last) <= limits * LONGEST_S + 1e-12).all()


def test_a_goal_the_steps_cannot_reach_from_where_they_stall_is_reached_by_a_solution_found_anew(panda, reference):
    """From this start the window's steps stall in a local minimum 0.24 m from the goal; the short full solve
    finds a solution and the arm moves to it within the step limits until the command is exact."""
    q_goal = np.array([-0.2819, -0.2154, 0.0049, -1.2773, 0.3024, 1.6920, -0.2812])
    q_start = np.array([0.0459, -0.6918, 0.2862, -2.2293, 0.2791, 1.9226, -0.3635])
    T_goal = reference.forward(q_goal)
    limits = _velocity_limits(reference)
    tracker = Tracker(panda)
    tracker.reset(q_start)
    commands = [q_start]
    for _ in range(600):
        command = tracker.step(T_goal, DT_S)
        commands.append(command.q)
        if command.exact:
            break
    assert command.exact and max(reference.errors(command.q, T_goal)) <= TOL
    _assert_velocity_limited(commands, DT_S, limits)


def test_a_refused_step_holds_the_last_command(panda, reference):
    path = _sine_path(_centre(panda.chain), 3)
    tracker = Tracker(panda)
    tracker.reset(path[0])
    held = tracker.step(reference.forward(path[1]), DT_S, accept=lambda q: False)
    assert held.status == HELD and "collides" in held.reason
    assert np.array_equal(held.q, path[0]) and np.array_equal(tracker.q, path[0])
    moved = tracker.step(reference.forward(path[1]), DT_S, accept=lambda q: True)
    assert moved.exact and not np.array_equal(moved.q, path[0])


def test_the_first_goal_without_a_previous_command_is_solved_in_full(panda, reference):
    q_goal = _centre(panda.chain) + 0.4
    T_goal = reference.forward(q_goal)
    tracker = Tracker(panda)
    assert tracker.q is None
    command = tracker.step(T_goal, DT_S)
    assert command.exact
    position_m, rotation_rad = reference.errors(command.q, T_goal)
    assert position_m <= TOL and rotation_rad <= TOL
    unreachable = Tracker(panda, settings=TrackerSettings(first_timeout_s=0.01))
    T_far = T_goal.copy()
    T_far[:3, 3] = [3.0, 0.0, 0.0]
    none = unreachable.step(T_far, DT_S)
    assert none.status == UNSOLVED and none.q is None and unreachable.q is None


def test_joints_without_a_velocity_limit_step_by_the_fixed_limit():
    """A DH chain has no velocity limits: every joint moves at most step_without_velocity_limit a command."""
    chain = KinematicChain.from_dh(
        a=[0.0, 0.4, 0.3], d=[0.3, 0.0, 0.0], alpha=[math.pi / 2, 0.0, 0.0], lower=[-3.0] * 3, upper=[3.0] * 3
    )
    assert np.isinf(chain.velocity_limits).all()
    tracker = Tracker(IKSolver(chain), Tolerance.position_only(), TrackerSettings(step_without_velocity_limit=0.02))
    q_start = np.array([0.0, 0.5, 0.5])
    T_goal = chain.forward(np.array([1.0, 0.2, 0.9]))
    tracker.reset(q_start)
    q_last = q_start
    for _ in range(5):
        command = tracker.step(T_goal, DT_S)
        assert np.abs(command.q - q_last).max() <= 0.02 + 1e-12
        q_last = command.q
    assert command.reason == STEP_LIMIT


def test_a_continuous_joint_crosses_pi_without_a_jump():
    urdf = with_continuous_joint(panda_urdf(), "panda_joint7")
    chain = KinematicChain.from_urdf(urdf, "panda_link0", "panda_link8")
    reference = ReferenceChain(urdf, "panda_link0", "panda_link8", chain.joint_names)
    tracker = Tracker(IKSolver(chain))
    path = np.tile(_centre(chain), (80, 1))
    path[:, 6] = np.linspace(3.0, 3.3, 80)  # past pi, on the turn it started on
    tracker.reset(path[0])
    q_last = path[0]
    for q_path in path[1:]:
        command = tracker.step(reference.forward(q_path), DT_S)
        assert command.exact and np.abs(command.q - q_last).max() < 0.02
        q_last = command.q
    assert q_last[6] == pytest.approx(3.3, abs=1e-4)


def test_a_joint_found_beyond_its_limit_only_moves_back(panda):
    chain = panda.chain
    q_out = _centre(chain)
    q_out[3] = chain.upper[3] + 0.05
    tracker = Tracker(panda)
    lower, upper = tracker.window(q_out, DT_S)
    assert upper[3] == q_out[3] and lower[3] == pytest.approx(q_out[3] - chain.velocity_limits[3] * DT_S)
    tracker.reset(q_out)
    command = tracker.step(chain.forward(_centre(chain)), DT_S)
    assert q_out[3] - chain.velocity_limits[3] * DT_S - 1e-12 <= command.q[3] <= q_out[3]


def test_a_long_pause_counts_at_most_max_step_dt_s(panda):
    chain = panda.chain
    tracker = Tracker(panda, settings=TrackerSettings(max_step_dt_s=0.04, velocity_scale=0.5))
    q = _centre(chain)
    for dt_s in (10.0, math.inf):
        lower, upper = tracker.window(q, dt_s)
        np.testing.assert_allclose(upper - q, 0.5 * chain.velocity_limits * 0.04)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda t, T: t.step(T, -0.001), "dt_s must be"),
        (lambda t, T: t.step(T, math.nan), "dt_s must be"),
        (lambda t, T: t.step(T[:3], DT_S), r"T_target has shape \(3, 4\)"),
        (lambda t, T: t.reset(np.zeros(3)), "reset: q must be 7 finite joint values"),
        (lambda t, T: t.reset(np.full(7, math.nan)), "reset: q must be 7 finite joint values"),
        (lambda t, T: Tracker(t.solver, Tolerance(1e-5, (1e-5, math.inf, math.inf))), "two free axes"),
        (lambda t, T: TrackerSettings(velocity_scale=0.0), "velocity_scale must be a positive number"),
        (lambda t, T: TrackerSettings(max_steps=0), "max_steps must be at least 1"),
    ],
)
def test_bad_arguments_are_refused_naming_them(panda, call, message):
    tracker = Tracker(panda)
    tracker.reset(_centre(panda.chain))
    with pytest.raises(ValueError, match=message):
        call(tracker, panda.chain.forward(_centre(panda.chain)))
