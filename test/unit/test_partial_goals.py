"""Partial goals: a free rotation axis, loose per-axis tolerances and approximate answers, judged by
Pinocchio's FK (test/reference.py) in the target frame, not by the code under test."""

import math

import numpy as np
import pytest

from reference import ReferenceChain, axis_angle_rad, example_robot_urdf, perturbed

from ik_neural.chain import KinematicChain
from ik_neural.query import IKQuery, Tolerance
from ik_neural.robots import load_robot
from ik_neural.solver import IKSolver
from ik_neural.tracker import EXACT, Tracker

FREE_Z = Tolerance(1e-5, (1e-5, 1e-5, math.inf))


@pytest.fixture(scope="module")
def panda():
    robot = load_robot("panda")
    solver = IKSolver(robot.chain, network=robot.network)
    solver.warm_up()
    reference = ReferenceChain(robot.urdf_path, robot.chain.base_link, robot.chain.tip_link, robot.chain.joint_names)
    return solver, reference


def components_rad(R_target: np.ndarray, R: np.ndarray) -> np.ndarray:
    """The rotation from R to R_target (3, 3) as a rotation vector about the target frame's axes, rad."""
    E = R_target.T @ R
    angle = math.acos(np.clip((np.trace(E) - 1) / 2, -1, 1))
    vector = np.array([E[2, 1] - E[1, 2], E[0, 2] - E[2, 0], E[1, 0] - E[0, 1]]) / 2
    return vector * (angle / math.sin(angle) if angle > 1e-12 else 1.0)


def twisted_targets(chain: KinematicChain, count: int, seed: int) -> np.ndarray:
    """Poses of random configurations turned about their own z axis by up to pi: (count, 4, 4)."""
    rng = np.random.default_rng(seed)
    T = chain.forward(chain.bounds.sample(rng, count))
    for T_k, angle in zip(T, rng.uniform(-math.pi, math.pi, count)):
        c, s = math.cos(angle), math.sin(angle)
        T_k[:3, :3] = T_k[:3, :3] @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return T


def assert_free_z_met(reference: ReferenceChain, q: np.ndarray, T: np.ndarray) -> None:
    """Each q (N, dof) puts the tip at T's position (N, 4, 4) with its z axis along T's, any twist."""
    T_q = reference.forward(q)
    assert np.linalg.norm(T_q[:, :3, 3] - T[:, :3, 3], axis=-1).max() <= 1e-5
    assert axis_angle_rad(T_q[:, :3, :3], T[:, :3, :3], 2).max() <= 1e-5


def test_a_free_tool_axis_is_met_by_solve_batch_and_solutions(panda):
    solver, reference = panda
    T = twisted_targets(solver.chain, 60, seed=3)
    answers = [solver.solve(T_k, tolerance=FREE_Z, timeout_s=0.05) for T_k in T]
    assert all(answer.success for answer in answers)
    q = np.array([answer.q for answer in answers])
    assert_free_z_met(reference, q, T)
    assert max(answer.orientation_error_rad for answer in answers) <= 1e-5  # the tool axis' angle
    # The twist about z is whatever the solver found: it differs from the target's.
    assert np.median(reference.errors(q, T)[1]) > 1e-3
    batch = solver.solve_batch(T, tolerance=FREE_Z, timeout_s=1.0)
    assert batch.success.all()
    assert_free_z_met(reference, batch.q, T)
    several = solver.solutions(T[0], count=4, tolerance=FREE_Z, timeout_s=0.2)
    assert len(several.q) == 4
    assert_free_z_met(reference, several.q, np.repeat(T[:1], 4, axis=0))


def test_a_free_tool_axis_reaches_what_the_whole_pose_cannot(panda):
    """The Panda's last joint narrowed to a 0.2 rad window: a target turned 1 rad about its z axis is out of
    reach as a whole pose, and reached with the rotation about z free."""
    solver, reference = panda
    chain = solver.chain
    q = chain.middle.copy()
    bounds = chain.bounds.narrow({"panda_joint7": (q[6] - 0.1, q[6] + 0.1)})
    T = chain.forward(q)
    T[:3, :3] = T[:3, :3] @ np.array(
        [[math.cos(1.0), -math.sin(1.0), 0.0], [math.sin(1.0), math.cos(1.0), 0.0], [0, 0, 1]]
    )
    assert not solver.solve(IKQuery(T, bounds=bounds, timeout_s=0.05)).success
    answer = solver.solve(IKQuery(T, bounds=bounds, tolerance=FREE_Z, timeout_s=0.05))
    assert answer.success and bounds.contains(answer.q)
    assert_free_z_met(reference, answer.q[None], T[None])


@pytest.mark.parametrize("free_axis", [0, 1])
def test_each_axis_can_be_the_free_one(panda, free_axis):
    solver, reference = panda
    tolerance = Tolerance(1e-5, tuple(math.inf if j == free_axis else 1e-5 for j in range(3)))
    T = solver.chain.forward(solver.chain.bounds.sample(np.random.default_rng(7), 20))
    for T_k in T:
        answer = solver.solve(T_k, tolerance=tolerance, timeout_s=0.05)
        assert answer.success
        assert axis_angle_rad(reference.forward(answer.q)[:3, :3], T_k[:3, :3], free_axis) <= 1e-5


def test_loose_per_axis_tolerances_bound_each_axis_of_the_target_frame(panda):
    """Tolerances of 0.05, 0.01 and 0.2 rad about the target's x, y, z: every answer's rotation error,
    about the target frame's axes, lies within the ellipse they span (and so within each bound)."""
    solver, reference = panda
    tolerance_rad = np.array([0.05, 0.01, 0.2])
    T = twisted_targets(solver.chain, 40, seed=9)  # turned by up to pi about z: often beyond 0.2 rad
    for T_k in T:
        answer = solver.solve(T_k, tolerance=Tolerance(1e-5, tuple(tolerance_rad)), timeout_s=0.05)
        assert answer.success
        T_q = reference.forward(answer.q)
        assert np.linalg.norm(T_q[:3, 3] - T_k[:3, 3]) <= 1e-5
        c = components_rad(T_k[:3, :3], T_q[:3, :3])
        assert np.sum((c / tolerance_rad) ** 2) <= 1 + 1e-9


def test_the_tracker_follows_a_stream_with_a_free_tool_axis(panda):
    solver, reference = panda
    chain = solver.chain
    tracker = Tracker(solver, FREE_Z)
    q = chain.middle.copy()
    tracker.reset(q)
    path = np.linspace(q, q + 0.3, 40)
    T = chain.forward(path)
    for k, T_k in enumerate(T):  # the goals turn about their z axis, which the commands need not follow
        c, s = math.cos(0.05 * k), math.sin(0.05 * k)
        T_k[:3, :3] = T_k[:3, :3] @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    commands = [tracker.step(T_k, 0.01) for T_k in T]
    assert all(command.status == EXACT for command in commands)
    assert_free_z_met(reference, np.array([command.q for command in commands]), T)


@pytest.fixture(scope="module")
def five_joints():
    """example-robot-data's SO-101, 5 joints (base_link -> gripper_frame_link), numerical seeds only."""
    urdf = example_robot_urdf("so_arm_description/urdf/so101.urdf")
    chain = KinematicChain.from_urdf(urdf, "base_link", "gripper_frame_link")
    solver = IKSolver(chain)
    solver.warm_up()
    return solver, ReferenceChain(urdf, chain.base_link, chain.tip_link, chain.joint_names)


def test_a_five_joint_arm_answers_approximately_what_it_cannot_reach(five_joints):
    """Reachable poses are exact (not flagged); poses whose rotation is perturbed by ~0.2 rad are out of
    reach: with ``approximate`` they succeed flagged, the position within its 1 mm, the rotation the
    closest the search found (no worse than the configuration the pose came from leaves, the perturbation
    itself, for 90 % of them); without it they fail."""
    solver, reference = five_joints
    rng = np.random.default_rng(11)
    q_true = solver.chain.bounds.sample(rng, 30)
    T = solver.chain.forward(q_true)
    approximate = Tolerance(1e-3, math.inf)
    exact = [solver.solve(T_k, approximate=approximate, timeout_s=0.02) for T_k in T]
    assert sum(answer.success and not answer.approximate for answer in exact) >= 29
    far = perturbed(T, rng, 0.2)
    answers = [solver.solve(T_k, approximate=approximate, timeout_s=0.005) for T_k in far]
    assert all(answer.success and answer.approximate for answer in answers)
    q = np.array([answer.q for answer in answers])
    position_m, rotation_rad = reference.errors(q, far)
    assert position_m.max() <= 1e-3
    np.testing.assert_allclose([a.position_error_m for a in answers], position_m, atol=1e-12)
    # The closest reachable rotation: no worse than where the pose came from (the perturbation itself).
    assert np.mean(rotation_rad <= reference.errors(q_true, far)[1] + 1e-9) >= 0.9
    assert not solver.solve(far[0], timeout_s=0.005).success


def test_approximate_answers_must_pass_the_acceptance_test(five_joints):
    solver, _ = five_joints
    rng = np.random.default_rng(13)
    (T,) = perturbed(solver.chain.forward(solver.chain.bounds.sample(rng, 1)), rng, 0.2)
    answer = solver.solve(T, approximate=Tolerance(1e-3, math.inf), accept=lambda q: False, timeout_s=0.005)
    assert not answer.success and not answer.approximate
