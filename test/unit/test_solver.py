"""The numerical solver: answers checked by an independent FK error, restarts, limits, seeds, bad input."""

import math
from math import inf
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from ik_neural import KinematicChain, list_robots, load_robot
from ik_neural.joint_bounds import JointBounds
from ik_neural.kernels.dls import (
    NO_FREE_AXIS,
    POSITION_ONLY,
    task_met,
    StepSettings,
    dls_step,
    dls_step_rows,
    dls_steps_rows,
    dls_steps_rows_serial,
    ranked_guesses_of_pose,
    ranked_guesses,
    ranked_guesses_serial,
)
from ik_neural.sampling import reachable_targets
from ik_neural.query import IKQuery, Tolerance
from ik_neural.solver import IKSolver, SolverSettings
import reference
from reference import example_robot_urdf, pose_errors

TOL = 1e-6
TIGHT = Tolerance(TOL, TOL)
GENEROUS_S = 0.5  # budgets far above what these targets need: answers do not depend on the machine's load


@pytest.fixture(scope="module")
def solvers():
    cache = {}

    def get(name: str) -> IKSolver:
        if name not in cache:
            cache[name] = IKSolver(load_robot(name).chain)
            cache[name].warm_up()
        return cache[name]

    return get


def step_settings(solver: IKSolver, tolerance: float) -> tuple:
    """The settings a solve at ``tolerance`` (m and rad) within the chain's limits gives its steps."""
    bounds = solver.chain.bounds
    return tuple(
        StepSettings(
            NO_FREE_AXIS,
            tolerance,
            *(tolerance,) * 3,
            1.0,
            solver.settings.damping,
            solver.settings.error_damping,
            bounds.lower,
            bounds.upper,
            bounds.bounded,
        )
    )


def assert_solved(chain: KinematicChain, q: np.ndarray, T_target: np.ndarray, tolerance: float = TOL) -> None:
    """Independent check: FK of q meets both tolerances, and q is within the limits."""
    position_m, rotation_rad = pose_errors(chain.forward(q), T_target)
    assert np.all(position_m <= tolerance) and np.all(rotation_rad <= tolerance)
    assert chain.bounds.contains(q).all()


@pytest.mark.parametrize("name", list_robots())
def test_every_shipped_chain_is_solved_and_checked_by_fk(solvers, name):
    solver = solvers(name)
    chain = solver.chain
    _, targets = reachable_targets(chain, 10, seed=11)
    for T in targets:
        result = solver.solve(T, timeout_s=GENEROUS_S, tolerance=TIGHT)
        assert result.success, f"{name}: {result}"
        assert_solved(chain, result.q, T)
        position_m, rotation_rad = pose_errors(chain.forward(result.q), T)
        assert result.position_error_m == pytest.approx(position_m, abs=1e-12)
        assert result.orientation_error_rad == pytest.approx(rotation_rad, abs=1e-12)

    batch = solver.solve_batch(targets, timeout_s=10 * GENEROUS_S, tolerance=TIGHT)
    assert batch.success.all(), name
    assert_solved(chain, batch.q, targets)


def test_restarts_find_what_a_bad_start_misses(solvers):
    solver = solvers("ur5e")
    chain, step = solver.chain, step_settings(solver, TOL)
    _, targets = reachable_targets(chain, 200, seed=12)
    for T in targets:
        result = solver.solve(T, timeout_s=GENEROUS_S, tolerance=TIGHT)
        if result.restarts:
            break
    else:
        pytest.fail("no target needed a restart")
    assert result.success
    assert_solved(chain, result.q, T)
    # The seed on its own, given ten times the steps it got, does not converge.
    q = solver.chain.middle
    for _ in range(10 * solver.settings.max_iterations_per_seed):
        q, converged, *_ = dls_step(q, T, chain.arrays, step)
        assert not converged


def test_a_near_singular_target_is_reached_from_most_seeds_without_a_restart(solvers):
    # rrr_3dof with its middle joint at 1e-4 rad: the first and last axes nearly align, and DLS reaches the
    # pose only along a weak direction. With the damping of 1e-6 that this package had, 1 of these 100
    # random seeds got there without a restart (239 restarts a solve on average), and a batch waited on
    # such targets.
    solver = solvers("rrr_3dof")
    chain = solver.chain
    T = chain.forward(np.array([1.432, 1e-4, -1.065]))
    seeds = chain.bounds.sample(np.random.default_rng(1), 100)
    results = [solver.solve(T, seed=seed, timeout_s=GENEROUS_S, tolerance=TIGHT) for seed in seeds]
    assert all(r.success for r in results)
    for r in results:
        assert_solved(chain, r.q, T)
    without_restart = sum(r.restarts == 0 for r in results)
    assert without_restart >= 50, without_restart


def test_limits_are_never_violated_even_when_failing(solvers):
    solver = solvers("panda")
    chain = solver.chain
    _, reachable = reachable_targets(chain, 30, seed=13)
    unreachable = reachable.copy()
    # The same directions 3 m from the base: the arm reaches about 1.1 m.
    unreachable[:, :3, 3] *= 3.0 / np.linalg.norm(unreachable[:, :3, 3], axis=-1, keepdims=True)
    for T in np.concatenate([reachable, unreachable]):
        q = solver.solve(T, timeout_s=0.002, tolerance=TIGHT).q
        assert chain.bounds.contains(q).all()
    batch = solver.solve_batch(unreachable, timeout_s=0.05)
    assert not batch.success.any()
    assert chain.bounds.contains(batch.q).all()


def test_unreachable_target_returns_the_best_found_without_raising(solvers):
    solver = solvers("panda")
    T = np.eye(4)
    T[:3, 3] = [5.0, 0.0, 0.0]
    result = solver.solve(T, timeout_s=0.01)
    assert not result.success
    assert result.position_error_m > 3.9  # the arm reaches about 1.1 m
    position_m, rotation_rad = pose_errors(solver.chain.forward(result.q), T)
    assert result.position_error_m == pytest.approx(position_m, abs=1e-12)
    assert result.orientation_error_rad == pytest.approx(rotation_rad, abs=1e-12)
    assert result.restarts > 0 and result.iterations > 0


def test_continuous_joints_are_wrapped():
    # PR2's right arm: forearm roll and wrist roll are continuous.
    chain = KinematicChain.from_urdf(
        example_robot_urdf("pr2_description/urdf/pr2.urdf"), "torso_lift_link", "r_gripper_tool_frame"
    )
    assert chain.is_continuous.any()
    solver = IKSolver(chain)
    q, targets = reachable_targets(chain, 5, seed=14)
    seeds = q + np.where(chain.is_continuous, 4 * np.pi, 0.0)  # continuous joints turned twice round
    for T, seed in zip(targets, seeds):
        result = solver.solve(T, seed=seed, timeout_s=GENEROUS_S, tolerance=TIGHT)
        assert result.success
        assert_solved(chain, result.q, T)
        wrapped = result.q[chain.is_continuous]
        assert np.all(wrapped >= -np.pi) and np.all(wrapped < np.pi)


def test_narrowed_bounds_hold_for_bounded_and_continuous_joints():
    chain = KinematicChain.from_urdf(
        example_robot_urdf("pr2_description/urdf/pr2.urdf"), "torso_lift_link", "r_gripper_tool_frame"
    )
    solver = IKSolver(chain)
    continuous = np.flatnonzero(chain.is_continuous)
    q, targets = reachable_targets(chain, 5, seed=15)
    for q_true, T in zip(q, targets):
        lower, upper = chain.lower.copy(), chain.upper.copy()
        lower[0], upper[0] = max(q_true[0] - 0.02, chain.lower[0]), min(q_true[0] + 0.03, chain.upper[0])
        # A window of a continuous joint that crosses +pi: the answer is given inside it, not wrapped.
        j = continuous[0]
        lower[j], upper[j] = q_true[j] + 2 * np.pi - 0.05, q_true[j] + 2 * np.pi + 0.05
        result = solver.solve(T, timeout_s=GENEROUS_S, tolerance=TIGHT, bounds=chain.bounds.narrow_arrays(lower, upper))
        assert result.success
        position_m, rotation_rad = pose_errors(chain.forward(result.q), T)
        assert position_m <= TOL and rotation_rad <= TOL
        assert np.all(result.q >= lower) and np.all(result.q <= upper)
    # A call's bounds are held within the chain's (JointBounds.narrow, by the solver): wider limits are the
    # chain's; limits beside them leave no room; bounds of other joints are refused.
    names, continuous = chain.joint_names, chain.is_continuous
    wider = JointBounds.of_limits(names, chain.lower - 1.0, chain.upper, continuous)
    wide = solver.solve(targets[0], bounds=wider, timeout_s=GENEROUS_S)
    assert wide.success and chain.bounds.contains(wide.q)
    first = np.arange(7) == 0
    beside = JointBounds.of_limits(
        names,
        np.where(first, chain.upper + 1.0, chain.lower),
        np.where(first, chain.upper + 2.0, chain.upper),
        continuous,
    )
    with pytest.raises(
        ValueError, match=r"joint 'r_shoulder_pan_joint': window \[.*\] leaves no room within its bounds"
    ):
        solver.solve(targets[0], bounds=beside)
    with pytest.raises(ValueError, match=r"window \[.*\] is not finite and ordered"):
        solver.solve(targets[0], bounds=JointBounds.of_limits(names, chain.lower, np.full(7, np.nan), continuous))
    with pytest.raises(ValueError, match=r"bounds are for the joints \['a0'"):
        solver.solve(
            targets[0], bounds=JointBounds.of_limits([f"a{j}" for j in range(7)], chain.lower, chain.upper, continuous)
        )


def test_seed_first_gives_the_solution_nearest_the_seed(solvers):
    solver = IKSolver(load_robot("panda").chain, network=load_robot("panda").network)
    chain = solver.chain
    q, targets = reachable_targets(chain, 10, seed=16)
    seeds = chain.bounds.project(q + np.random.default_rng(17).uniform(-0.05, 0.05, q.shape))
    far = 0
    for q_true, T, seed in zip(q, targets, seeds):
        near = solver.solve(T, seed=seed, timeout_s=GENEROUS_S, tolerance=TIGHT, seed_first=True)
        assert near.success
        assert np.abs(near.q - q_true).max() < 0.1
        network_first = solver.solve(T, seed=seed, timeout_s=GENEROUS_S, tolerance=TIGHT)
        far += np.abs(network_first.q - q_true).max() > 0.1
    # The network's guess, first by default, lands on another of the redundant arm's solutions at times.
    assert far > 0


def two_link_arm() -> KinematicChain:
    """A planar 2-link arm, links 1.0 and 0.6 m, joints ±pi: elbow-up and elbow-down reach each point."""
    return KinematicChain.from_dh([1.0, 0.6], [0.0, 0.0], [0.0, 0.0], lower=[-np.pi] * 2, upper=[np.pi] * 2)


def test_position_only_and_the_solution_closest_to_the_seed():
    chain = two_link_arm()
    solver = IKSolver(chain)
    q_up = np.array([0.3, 0.9])
    # The other elbow: the same tip position with the elbow mirrored about the shoulder-tip line.
    q_down = np.array([q_up[0] + 2 * np.arctan2(0.6 * np.sin(q_up[1]), 1.0 + 0.6 * np.cos(q_up[1])), -q_up[1]])
    T = chain.forward(q_up)
    np.testing.assert_allclose(chain.forward(q_down)[:3, 3], T[:3, 3], atol=1e-12)
    for near in (q_up, q_down):
        seed = near + np.array([0.2, -0.2])
        result = solver.solve(T, seed=seed, timeout_s=GENEROUS_S, tolerance=Tolerance.position_only(TOL))
        assert result.success
        np.testing.assert_allclose(result.q, near, atol=1e-5)
        batch = solver.solve_batch(T[None], seeds=seed[None], timeout_s=GENEROUS_S, tolerance=Tolerance.position_only())
        np.testing.assert_allclose(batch.q[0], near, atol=1e-4)
    # Position only on an orientation no configuration reaches: solved, and the orientation error reported.
    T_tilted = T.copy()
    T_tilted[:3, :3] = [[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]  # 90 degrees about x
    result = solver.solve(T_tilted, timeout_s=GENEROUS_S, tolerance=Tolerance.position_only(TOL))
    assert result.success and result.position_error_m <= TOL
    assert result.orientation_error_rad > 1.0
    assert not solver.solve(T_tilted, timeout_s=0.01, tolerance=TIGHT).success


def test_concurrent_solves_give_the_serial_answers(solvers):
    solver = solvers("panda")
    _, targets = reachable_targets(solver.chain, 40, seed=15)

    def solve(T):
        return solver.solve(T, timeout_s=GENEROUS_S, tolerance=TIGHT).q

    serial = [solve(T) for T in targets]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(solve, targets))
    np.testing.assert_array_equal(np.array(parallel), np.array(serial))


def test_the_row_kernel_equals_the_single_step(solvers):
    solver = solvers("panda")
    chain, step = solver.chain, step_settings(solver, TOL)
    rng = np.random.default_rng(16)
    q, T = chain.bounds.sample(rng, 600), reachable_targets(chain, 600, seed=17)[1]
    expected = [dls_step(q[r], T[r], chain.arrays, step) for r in range(len(q))]
    rows = dls_step_rows(q, T, chain.arrays, step)
    for r in range(len(q)):
        for got, want in zip((rows[0][r], rows[1][r], rows[2][r], rows[3][r], rows[4][r]), expected[r]):
            np.testing.assert_array_equal(got, want)


def test_rows_of_several_steps_equal_single_steps_until_each_row_converges(solvers):
    """``dls_steps_rows`` (a batch's rounds on few rows): each row's ``dls_step`` repeated, stopping at the
    first configuration that converges; the errors of every step, the last repeated after convergence."""
    solver = solvers("panda")
    chain, step = solver.chain, step_settings(solver, TOL)
    q_true, T = reachable_targets(chain, 200, seed=21)
    q = np.vstack([q_true[:100] + 0.02, chain.bounds.sample(np.random.default_rng(22), 100)])  # near, far
    steps = 5
    for kernel in (dls_steps_rows, dls_steps_rows_serial):
        Q_judged, Q_next, converged, position_error, orientation_error, errors, taken = kernel(
            q, T, chain.arrays, step, steps
        )
        for r in range(len(q)):
            q_r, want_errors = q[r], []
            for _ in range(steps):
                q_next, converged_r, position_r, orientation_r, error_r = dls_step(q_r, T[r], chain.arrays, step)
                want_errors.append(error_r)
                if converged_r or len(want_errors) == steps:
                    break
                q_r = q_next
            assert taken[r] == len(want_errors) and converged[r] == converged_r
            np.testing.assert_array_equal(Q_judged[r], q_r)
            np.testing.assert_array_equal(Q_next[r], q_next)
            assert (position_error[r], orientation_error[r]) == (position_r, orientation_r)
            want_errors += [want_errors[-1]] * (steps - len(want_errors))
            np.testing.assert_array_equal(errors[:, r], want_errors)
        assert converged[:100].all() and 1 < taken[:100].max() and not converged[100:].all()


def test_ranked_guesses_are_ordered_lowest_error_first_and_the_first_stepped_once(solvers):
    """The network's first round: the guesses ordered by their error (``dls_step``'s), each moved into the
    bounds, the first one stepped; a guess already converged is kept, only moved into the bounds, ahead
    of the rest."""
    solver = solvers("panda")
    chain, step = solver.chain, step_settings(solver, TOL)
    q_true, T = reachable_targets(chain, 300, seed=18)
    q_true[:50, 0] = chain.upper[0]  # solutions at a limit ...
    T[:50] = chain.forward(q_true[:50])
    rng = np.random.default_rng(19)
    G = chain.bounds.sample(rng, 300 * 3).reshape(300, 3, 7)
    G[:100, 1] = q_true[:100]  # converged: kept
    G[:50, 1, 0] += 1e-12  # ... guessed outside it by a rounding error: clamped
    for kernel in (ranked_guesses, ranked_guesses_serial):
        ranked = kernel(G, T, chain.arrays, step)
        for i in range(300):
            steps = [dls_step(g, T[i], chain.arrays, step) for g in G[i]]
            order = np.argsort([-1.0 if converged else error for _, converged, _, _, error in steps], kind="stable")
            want = [chain.bounds.project(G[i, j]) for j in order]
            if not steps[order[0]][1]:
                want[0] = steps[order[0]][0]
            np.testing.assert_array_equal(ranked[i], np.array(want))
        assert chain.bounds.contains(ranked.reshape(-1, 7)).all()
        np.testing.assert_array_equal(ranked[:100, 0], chain.bounds.project(q_true[:100]))


def test_a_poses_ranked_guesses_in_one_call_are_its_guesses_ranked(solvers):
    """``ranked_guesses_of_pose`` (guess and rank fused, the one-pose solve's first seeds) returns exactly
    ``ranked_guesses`` of the network's guesses, for targets near and far."""
    robot = load_robot("panda")
    chain, network = robot.chain, robot.network
    step = step_settings(solvers("panda"), TOL)
    _, T = reachable_targets(chain, 200, seed=20)
    T[100:, :3, 3] *= 3.0  # out of reach: no guess converges
    for T_i in T:
        want = ranked_guesses_serial(network.predict_all(T_i)[None], T_i[None], chain.arrays, step)[0]
        np.testing.assert_array_equal(ranked_guesses_of_pose(T_i, network.one_pose_fields, chain.arrays, step), want)


@pytest.mark.parametrize("robot", ["panda", "pr2_right_arm"])
def test_dls_kernel_equals_the_plain_numpy_reference_step(robot):
    """The compiled step against test/reference.py's (numpy's solver, Pinocchio's FK, Jacobian and log map),
    from configurations near and at the limits (the held-joint re-solve) and, on PR2, continuous joints."""
    if robot == "panda":
        loaded = load_robot("panda")
        urdf, chain = loaded.urdf_path, loaded.chain
    else:
        urdf = example_robot_urdf("pr2_description/urdf/pr2.urdf")
        chain = KinematicChain.from_urdf(urdf, "torso_lift_link", "r_gripper_tool_frame")
    ref = reference.ReferenceChain(urdf, chain.base_link, chain.tip_link, chain.joint_names)
    bounds = chain.bounds
    rng = np.random.default_rng(23)
    q_all = bounds.sample(rng, 200)
    q_all[:50] = np.clip(q_all[:50] + rng.choice([-1.0, 1.0], q_all[:50].shape), bounds.lower, bounds.upper)
    targets = chain.forward(bounds.sample(rng, 200))
    # Every task: the whole pose, each axis free in turn, position only; per-axis tolerances; a weight.
    tasks = [(NO_FREE_AXIS, (1e-6, 1e-6, 1e-6), 1.0), (0, (inf, 1e-6, 1e-6), 1.0), (1, (2e-2, inf, 1e-2), 1.0)]
    tasks += [(2, (1e-6, 3e-6, inf), 0.3), (NO_FREE_AXIS, (1e-1, 2e-1, 3e-1), 0.01), (POSITION_ONLY, (inf,) * 3, 1.0)]
    for free_axis, orientation_tolerance_rad, weight in tasks:
        tolerance = tuple(orientation_tolerance_rad)  # x, y, z: three fields
        fields = (free_axis, 1e-6, *tolerance, weight, 1e-6, 0.1, bounds.lower, bounds.upper, bounds.bounded)
        for q, T in zip(q_all, targets):
            got = dls_step(q, T, chain.arrays, tuple(StepSettings(*fields)))
            want = reference.dls_step(ref, q, T, chain.reach_m, *fields)
            np.testing.assert_allclose(got[0], want[0], atol=1e-9)
            assert got[1] == want[1]
            np.testing.assert_allclose(got[2:], want[2:], rtol=1e-9, atol=1e-12)


def test_the_kernel_converges_as_the_reference_judges_near_the_tolerance():
    """Candidates just inside and just outside loose per-axis and free-axis tolerances: the kernel's
    ``converged`` (and ``task_met``) agree with test/reference.py's ellipse on the target frame's axes."""
    loaded = load_robot("panda")
    chain = loaded.chain
    ref = reference.ReferenceChain(loaded.urdf_path, chain.base_link, chain.tip_link, chain.joint_names)
    bounds, rng = chain.bounds, np.random.default_rng(29)
    agreed = {True: 0, False: 0}
    for free_axis, tolerance in [(NO_FREE_AXIS, (0.02, 0.05, 0.1)), (2, (0.03, 0.01, inf)), (0, (inf, 0.05, 0.02))]:
        fields = (free_axis, 1.0, *tolerance, 1.0, 1e-6, 0.1, bounds.lower, bounds.upper, bounds.bounded)
        for q in bounds.sample(rng, 300):
            T = chain.forward(q + rng.normal(scale=0.03, size=7))
            T[:3, 3] = chain.forward(q)[:3, 3]  # the position met: the rotation decides
            got = dls_step(q, T, chain.arrays, tuple(StepSettings(*fields)))[1]
            want = reference.dls_step(ref, q, T, chain.reach_m, *fields)[1]
            assert got == want == task_met(q, T, chain.arrays, tuple(StepSettings(*fields)))
            agreed[got] += 1
    assert min(agreed.values()) > 100  # both sides of each boundary were tried


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda T: T[:3, :3], r"T_target has shape \(3, 3\); expected \(4, 4\)"),
        (lambda T: np.where(np.eye(4, dtype=bool), np.nan, T), "non-finite"),
        (lambda T: np.diag([2.0, 1.0, 1.0, 1.0]) @ T, "not a rigid transform"),
        (lambda T: np.diag([-1.0, 1.0, 1.0, 1.0]) @ T, "not a rigid transform"),
        (lambda T: T + np.array([[0, 0, 0, 0]] * 3 + [[0, 0, 0.5, 0]]), "bottom row"),
    ],
    ids=["shape", "nan", "scaled", "mirrored", "bottom row"],
)
def test_bad_target_is_refused(solvers, change, message):
    solver = solvers("panda")
    T = solver.chain.forward(solver.chain.middle)
    with pytest.raises(ValueError, match=message):
        solver.solve(change(T))
    if change(T).shape == (4, 4):
        with pytest.raises(ValueError, match=message.replace("T_target", "T_targets")):
            solver.solve_batch(np.stack([T, change(T)]))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(seed=np.zeros(6)), r"seed has shape \(6,\); expected \(7,\) for the joints \['panda_joint1'"),
        (dict(seed=np.full(7, np.nan)), "seed has non-finite values"),
        (dict(timeout_s=-0.001), "timeout_s must be >= 0"),
        (dict(position_tolerance_m=0.0), r"Tolerance.position_m must be finite and > 0 \(m\), got 0.0"),
        (dict(orientation_tolerance_rad=-1e-6), r"Tolerance.orientation_rad must be > 0 about each axis"),
        (
            dict(tolerance=Tolerance(1e-5, (1e-3, math.inf, math.inf))),
            r"Tolerance.orientation_rad \(0.001, inf, inf\): two free axes and one held are not supported",
        ),
    ],
    ids=["seed length", "seed nan", "timeout", "position tolerance", "orientation tolerance", "two free"],
)
def test_bad_arguments_are_refused(solvers, kwargs, message):
    solver = solvers("panda")
    with pytest.raises(ValueError, match=message):
        solver.solve(solver.chain.forward(solver.chain.middle), **kwargs)


def test_bad_batch_seeds_are_refused(solvers):
    solver = solvers("panda")
    T = np.repeat(solver.chain.forward(solver.chain.middle)[None], 3, axis=0)
    with pytest.raises(ValueError, match="seeds has 2 rows for 3 targets"):
        solver.solve_batch(T, seeds=np.zeros((2, 7)))
    with pytest.raises(ValueError, match=r"seeds has shape \(3, 6\); expected \(N, 7,\)"):
        solver.solve_batch(T, seeds=np.zeros((3, 6)))


# ---------------------------------------------------------------------- hybrid: the shipped networks


@pytest.mark.parametrize("name", ["panda", "ur5e"])
def test_hybrid_solves_what_the_numerical_solver_solves_in_fewer_iterations(name, solvers):
    robot = load_robot(name)
    hybrid = IKSolver(robot.chain, network=robot.network)
    numerical = solvers(name)
    _, T = reachable_targets(robot.chain, 300, seed=11)
    iterations = {"hybrid": 0, "numerical": 0}
    for T_target in T:
        for label, solver in (("hybrid", hybrid), ("numerical", numerical)):
            result = solver.solve(T_target, timeout_s=GENEROUS_S, tolerance=TIGHT)
            assert result.success
            assert_solved(robot.chain, result.q, T_target)
            iterations[label] += result.iterations
    # The network's guess starts near the target: DLS needs far fewer steps from it than from mid-limits.
    assert iterations["hybrid"] < 0.7 * iterations["numerical"], iterations


@pytest.mark.parametrize("name", ["panda", "ur5e"])
def test_hybrid_batch_solves_with_fewer_iterations(name, solvers):
    robot = load_robot(name)
    hybrid = IKSolver(robot.chain, network=robot.network)
    _, T = reachable_targets(robot.chain, 600, seed=12)
    with_network = hybrid.solve_batch(T, timeout_s=60.0, tolerance=TIGHT)
    without = solvers(name).solve_batch(T, timeout_s=60.0, tolerance=TIGHT)
    assert with_network.success.all() and without.success.all()
    assert_solved(robot.chain, with_network.q, T)
    assert with_network.iterations.sum() < 0.7 * without.iterations.sum()


def test_a_batch_of_a_new_size_right_after_another_succeeds_within_a_tight_budget():
    """A network's guess for a batch must cost the same for every batch size: a first call at a new size
    once spent ~40 ms re-specialising the TorchScript graph, past a 20 ms budget, and solved nothing."""
    robot = load_robot("rrr_3dof")
    solver = IKSolver(robot.chain, network=robot.network)
    solver.warm_up()
    _, T = reachable_targets(robot.chain, 16, seed=14)
    for size in (8, 4, 3, 5, 8):
        result = solver.solve_batch(T[:size], timeout_s=0.02, tolerance=TIGHT)
        assert result.success.all(), size
        assert_solved(robot.chain, result.q, T[:size])


def test_hybrid_with_a_useless_network_still_solves_everything(tmp_path, solvers):
    """An untrained network's guesses are far off: the caller's seed and the restarts must take over."""
    import torch

    from ik_neural.network import chain_metadata, load_network
    from ik_neural.torch_network import PoseToJoints, save_network

    chain = load_robot("panda").chain
    torch.manual_seed(0)
    save_network(
        PoseToJoints(chain, False, "biternion", 16, 1, False), chain_metadata(chain), tmp_path / "untrained.pt"
    )
    hybrid = IKSolver(chain, network=load_network(tmp_path / "untrained.pt", chain))
    _, T = reachable_targets(chain, 50, seed=13)
    for T_target in T:
        result = hybrid.solve(T_target, timeout_s=GENEROUS_S, tolerance=TIGHT)
        assert result.success
        assert_solved(chain, result.q, T_target)
    batch = hybrid.solve_batch(T, timeout_s=30.0, tolerance=TIGHT)
    assert batch.success.all()
    assert_solved(chain, batch.q, T)


def test_batch_takes_narrowed_bounds_and_seed_first_as_solve_does():
    robot = load_robot("panda")
    solver = IKSolver(robot.chain, network=robot.network)
    solver.warm_up()
    chain = solver.chain
    q, targets = reachable_targets(chain, 12, seed=31)
    lower, upper = chain.lower.copy(), chain.upper.copy()
    lower[3], upper[3] = q[:, 3].min() - 0.01, q[:, 3].max() + 0.01  # a window holding every target's joint 4
    bounds = chain.bounds.narrow_arrays(lower, upper)
    seeds = chain.bounds.project(q + np.random.default_rng(32).uniform(-0.05, 0.05, q.shape))
    batch = solver.solve_batch(
        targets,
        seeds=seeds,
        timeout_s=12 * GENEROUS_S,
        tolerance=TIGHT,
        bounds=bounds,
        seed_first=True,
    )
    assert batch.success.all()
    assert_solved(chain, batch.q, targets)
    assert bounds.contains(batch.q).all()
    # Seed first: each answer is the solution next to its seed, as solve's is.
    for k, T in enumerate(targets):
        one = solver.solve(
            T,
            seed=seeds[k],
            timeout_s=GENEROUS_S,
            tolerance=TIGHT,
            bounds=bounds,
            seed_first=True,
        )
        assert np.abs(batch.q[k] - q[k]).max() < 0.1 and np.abs(one.q - q[k]).max() < 0.1


def test_a_set_stop_event_ends_a_solve_like_its_budget(solvers):
    import threading

    solver = solvers("panda")
    T = np.eye(4)
    T[:3, 3] = [5.0, 0.0, 0.0]  # unreachable: the solve would use its whole budget
    stop = threading.Event()
    threading.Timer(0.05, stop.set).start()
    result = solver.solve(T, timeout_s=30.0, stop=stop)
    assert not result.success and result.elapsed_s < 1.0
    batch = solver.solve_batch(np.repeat(T[None], 4, axis=0), timeout_s=30.0, stop=stop)
    assert not batch.success.any() and batch.elapsed_s < 1.0


@pytest.mark.parametrize("name", ["panda", "ur5e"])
def test_solutions_are_distinct_checked_and_nearest_the_seed_first(name):
    robot = load_robot(name)
    solver = IKSolver(robot.chain, network=robot.network)
    solver.warm_up()
    chain = solver.chain
    ref = reference.ReferenceChain(robot.urdf_path, chain.base_link, chain.tip_link, chain.joint_names)
    q, targets = reachable_targets(chain, 5, seed=41)
    for q_true, T in zip(q, targets):
        seed = chain.bounds.project(q_true + 0.02)
        sols = solver.solutions(T, count=8, seed=seed, timeout_s=GENEROUS_S, min_distance_rad=0.1)
        assert 4 <= len(sols.q) <= 8 and sols.success.all()
        position_m, rotation_rad = ref.errors(sols.q, np.repeat(T[None], len(sols.q), axis=0))
        assert (position_m <= 1e-5).all() and (rotation_rad <= 1e-5).all()
        assert chain.bounds.contains(sols.q).all()
        for i in range(len(sols.q)):
            others = np.delete(sols.q, i, axis=0)
            assert chain.bounds.largest_difference(others, sols.q[i]).min() >= 0.1
        distances = chain.bounds.distance(sols.q, seed)
        assert (np.diff(distances) >= 0).all()
        assert np.abs(sols.q[0] - q_true).max() < 0.1  # the seed's own solution comes first


def test_solutions_of_an_unreachable_pose_are_none_and_bad_arguments_are_refused(solvers):
    solver = solvers("panda")
    T = np.eye(4)
    T[:3, 3] = [5.0, 0.0, 0.0]
    sols = solver.solutions(T, timeout_s=0.01)
    assert sols.q.shape == (0, 7) and sols.success.shape == (0,) and sols.iterations > 0
    one = solver.solutions(solver.chain.forward(solver.chain.middle), count=1, timeout_s=GENEROUS_S)
    assert len(one.q) == 1 and np.abs(one.q[0] - solver.chain.middle).max() < 1e-3
    with pytest.raises(ValueError, match="count must be an integer >= 1"):
        solver.solutions(T, count=0)
    with pytest.raises(ValueError, match="min_distance_rad must be >= 0"):
        solver.solutions(T, min_distance_rad=-0.1)


# ---------------------------------------------------------------------- the query and the acceptance test


def test_the_query_form_and_the_keyword_form_give_the_same_answer():
    robot = load_robot("panda")
    solver = IKSolver(robot.chain, network=robot.network)
    chain = solver.chain
    q, targets = reachable_targets(chain, 6, seed=51)
    seeds = chain.bounds.project(q + np.random.default_rng(52).uniform(-0.05, 0.05, q.shape))
    bounds = chain.bounds.narrow({"panda_joint4": (q[:, 3].min() - 0.01, q[:, 3].max() + 0.01)})
    for T, seed, seed_first in zip(targets, seeds, [False, True] * 3):
        fields = dict(seed=seed, timeout_s=GENEROUS_S, tolerance=TIGHT, bounds=bounds, seed_first=seed_first)
        by_query = solver.solve(IKQuery(T, **fields))
        by_keywords = solver.solve(T, **fields)
        assert by_query.success and bounds.contains(by_query.q)
        np.testing.assert_array_equal(by_query.q, by_keywords.q)
        assert (by_query.iterations, by_query.restarts) == (by_keywords.iterations, by_keywords.restarts)
    # The older scalar keywords are the same tolerance.
    old = solver.solve(targets[0], timeout_s=GENEROUS_S, position_tolerance_m=TOL, orientation_tolerance_rad=TOL)
    np.testing.assert_array_equal(old.q, solver.solve(IKQuery(targets[0], timeout_s=GENEROUS_S, tolerance=TIGHT)).q)
    with pytest.raises(TypeError, match=r"an IKQuery comes alone, without keywords \(got seed_first\)"):
        solver.solve(IKQuery(targets[0]), seed_first=True)
    with pytest.raises(TypeError, match="lower"):
        solver.solve(targets[0], lower=chain.lower)
    with pytest.raises(TypeError, match="collision_free"):
        solver.solve(targets[0], collision_free=lambda q: True)
    with pytest.raises(TypeError, match="IKQuery.approximate must be a Tolerance or None, got float"):
        solver.solve(targets[0], approximate=1e-3)
    with pytest.raises(TypeError, match="not both"):
        solver.solve_batch(targets, tolerance=TIGHT, position_tolerance_m=TOL)


def test_two_free_axes_are_refused_by_every_entry_point(solvers):
    solver = solvers("panda")
    T = solver.chain.forward(solver.chain.middle)
    two_free = Tolerance(1e-5, (math.inf, 1e-3, math.inf))
    message = r"two free axes and one held are not supported; leave one axis free \(x, y or z\) or all three"
    with pytest.raises(ValueError, match=message):
        solver.solve(IKQuery(T, tolerance=two_free))
    with pytest.raises(ValueError, match=message):
        solver.solve_batch(T[None], tolerance=two_free)
    with pytest.raises(ValueError, match=message):
        solver.solutions(T, tolerance=two_free)


def test_solve_batch_and_solutions_check_their_fields_as_a_query_does(solvers):
    solver = solvers("panda")
    T = solver.chain.forward(solver.chain.middle)
    for call in (lambda **kw: solver.solve_batch(T[None], **kw), lambda **kw: solver.solutions(T, **kw)):
        with pytest.raises(TypeError, match="IKQuery.bounds must be a JointBounds or None, got tuple"):
            call(bounds=(solver.chain.lower, solver.chain.upper))
        with pytest.raises(ValueError, match="timeout_s must be >= 0, got -1"):
            call(timeout_s=-1)


def test_step_settings_carry_the_tolerance_damping_and_bounds_by_name(solvers):
    """The kernels read a call's settings as ``StepSettings(*fields)``: each field lands where it is named."""
    solver = solvers("panda")
    bounds = solver.chain.bounds.narrow({"panda_joint4": (-2.0, -1.0)})
    step = StepSettings(*solver.step_settings(Tolerance(2e-5, (3e-5, 4e-5, 5e-5)), bounds))
    assert (step.free_axis, step.position_tolerance_m, step.rotation_weight) == (NO_FREE_AXIS, 2e-5, 1.0)
    assert (step.orientation_tolerance_x_rad, step.orientation_tolerance_y_rad, step.orientation_tolerance_z_rad) == (
        3e-5,
        4e-5,
        5e-5,
    )
    assert (step.damping, step.error_damping) == (solver.settings.damping, solver.settings.error_damping)
    assert step.lower is bounds.lower and step.upper is bounds.upper and step.bounded is bounds.bounded
    position_only = StepSettings(*solver.step_settings(Tolerance.position_only(1e-4), bounds))
    assert (position_only.free_axis, position_only.position_tolerance_m) == (POSITION_ONLY, 1e-4)
    free_y = StepSettings(*solver.step_settings(Tolerance(1e-4, (1e-3, math.inf, 1e-3)), bounds))
    assert free_y.free_axis == 1


def two_branches() -> tuple[KinematicChain, np.ndarray, np.ndarray, np.ndarray]:
    """The two-link arm, a tip position both elbows reach: (chain, T, q_up, q_down)."""
    chain = two_link_arm()
    q_up = np.array([0.3, 0.9])
    q_down = np.array([q_up[0] + 2 * np.arctan2(0.6 * np.sin(q_up[1]), 1.0 + 0.6 * np.cos(q_up[1])), -q_up[1]])
    return chain, chain.forward(q_up), q_up, q_down


def assert_reached(chain: KinematicChain, q: np.ndarray, T: np.ndarray, tolerance_m: float) -> None:
    """Independent check of position-only answers: FK of q (..., dof) within tolerance_m of T's position."""
    position_m, _ = pose_errors(chain.forward(q), T)
    assert np.all(position_m <= tolerance_m) and chain.bounds.contains(q).all()


def test_accept_rejects_a_branch_on_every_entry_point():
    """An acceptance test that rejects the elbow-up branch: from seeds next to it, every answer is the
    elbow-down one (FK-checked); without the test the seeds' own branch comes back."""
    chain, T, q_up, q_down = two_branches()
    solver = IKSolver(chain)
    tolerance = Tolerance.position_only(TOL)
    asked: list[np.ndarray] = []

    def elbow_down(q: np.ndarray) -> bool:
        asked.append(q.copy())
        return bool(q[1] < 0)

    seeds = q_up + np.random.default_rng(61).uniform(-0.2, 0.2, (5, 2))
    for seed in seeds:
        plain = solver.solve(T, seed=seed, timeout_s=GENEROUS_S, tolerance=tolerance)
        np.testing.assert_allclose(plain.q, q_up, atol=1e-5)
        result = solver.solve(IKQuery(T, seed=seed, timeout_s=GENEROUS_S, tolerance=tolerance, accept=elbow_down))
        assert result.success and elbow_down(result.q)
        np.testing.assert_allclose(result.q, q_down, atol=1e-5)
        assert_reached(chain, result.q, T, TOL)

    T_rows = np.repeat(T[None], len(seeds), axis=0)
    plain_batch = solver.solve_batch(T_rows, seeds, timeout_s=GENEROUS_S, tolerance=tolerance)
    np.testing.assert_allclose(plain_batch.q, np.tile(q_up, (len(seeds), 1)), atol=1e-5)
    asked.clear()
    batch = solver.solve_batch(T_rows, seeds, timeout_s=GENEROUS_S, tolerance=tolerance, accept=elbow_down)
    assert batch.success.all() and all(elbow_down(q) for q in batch.q)
    np.testing.assert_allclose(batch.q, np.tile(q_down, (len(seeds), 1)), atol=1e-5)
    assert_reached(chain, batch.q, T_rows, TOL)
    assert any(q[1] > 0 for q in asked)  # the seeds' own branch was found, and rejected

    both = solver.solutions(T, count=4, seed=seeds[0], timeout_s=0.1, tolerance=tolerance)
    assert len(both.q) == 2
    one = solver.solutions(T, count=4, seed=seeds[0], timeout_s=0.1, tolerance=tolerance, accept=elbow_down)
    assert len(one.q) == 1 and all(elbow_down(q) for q in one.q)
    np.testing.assert_allclose(one.q[0], q_down, atol=1e-5)
    assert_reached(chain, one.q, np.repeat(T[None], len(one.q), axis=0), TOL)


def test_solutions_with_seed_first_find_the_seeds_own_solution_first():
    robot = load_robot("panda")
    solver = IKSolver(robot.chain, network=robot.network)
    chain = solver.chain
    q, targets = reachable_targets(chain, 5, seed=71)
    for q_true, T in zip(q, targets):
        seed = chain.bounds.project(q_true + 0.02)
        sols = solver.solutions(T, count=1, seed=seed, seed_first=True, timeout_s=GENEROUS_S, tolerance=TIGHT)
        assert len(sols.q) == 1 and np.abs(sols.q[0] - q_true).max() < 0.1
        assert_solved(chain, sols.q, np.repeat(T[None], 1, axis=0))
        # The rows that follow the seed still find the other branches.
        several = solver.solutions(T, count=4, seed=seed, seed_first=True, timeout_s=GENEROUS_S)
        assert len(several.q) >= 2 and np.abs(several.q[0] - q_true).max() < 0.1


def test_cost_terms_move_a_redundant_arms_solution_without_costing_its_pose():
    """The Panda's solutions polished along its self-motion: towards the seed (displacement) or the middle
    of the limits (centring), each answer still within the tolerance by Pinocchio's FK."""
    robot = load_robot("panda")
    chain = robot.chain
    ref = reference.ReferenceChain(robot.urdf_path, chain.base_link, chain.tip_link, chain.joint_names)
    rng = np.random.default_rng(31)
    q_true = chain.bounds.sample(rng, 60)
    T, seeds = chain.forward(q_true), chain.bounds.project(q_true + rng.normal(scale=0.3, size=q_true.shape))

    def answers(**weights) -> np.ndarray:
        solver = IKSolver(chain, robot.network, SolverSettings(**weights))
        solver.warm_up()
        results = [
            solver.solve(T_k, seed=s, seed_first=True, timeout_s=0.05, tolerance=TIGHT) for T_k, s in zip(T, seeds)
        ]
        assert all(result.success for result in results)
        q = np.array([result.q for result in results])
        position_m, rotation_rad = ref.errors(q, T)
        assert position_m.max() <= TIGHT.position_m and rotation_rad.max() <= TIGHT.orientation_rad[0]
        return q

    plain, nearer, centred = answers(), answers(displacement_weight=0.5), answers(centring_weight=0.5)
    distance = lambda q: np.linalg.norm(q - seeds, axis=1)  # noqa: E731
    offset = lambda q: np.linalg.norm(q - chain.middle, axis=1)  # noqa: E731
    assert np.mean(distance(nearer) < distance(plain)) >= 0.9
    assert np.mean(offset(centred) < offset(plain)) >= 0.9
