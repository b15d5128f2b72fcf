"""The shipped robots (models/, ik_neural.robots): names, chains, and their kinematics checked three ways.

1. Each URDF against Pinocchio (an independent URDF parser and FK): 1000 random configurations.
2. Each DH robot's URDF against its robot.yaml table, both through ``KinematicChain.from_dh`` and through
   a standard-DH product written out here in numpy.
3. Panda and UR5e against the makers' DH tables, written out here (not read from the package), the SO-101
   against Pinocchio on the maker's own URDF (example-robot-data's copy), and Stephan et al.'s artificial
   chains against their paper's Eq. 1-2.

Tolerances: 1e-9 m for positions, 1e-9 rad for the rotation angle between two orientations.
"""

from __future__ import annotations

import math
from xml.etree import ElementTree

import numpy as np
import pinocchio
import pytest
import yaml

from ik_neural.chain import KinematicChain
from ik_neural.robots import Robot, dh_chain, list_robots, load_robot, models_dir
from reference import dh_fk, example_robot_urdf, pinocchio_fk, pose_errors

N_CONFIGS = 1000
TOL_POSITION_M = 1e-9
TOL_ANGLE_RAD = 1e-9
HALF_PI = math.pi / 2

# name: (dof, base_link, tip_link)
EXPECTED = {
    "panda": (7, "panda_link0", "panda_link8"),
    "ur5e": (6, "base_link", "tool0"),
    "so101": (5, "base_link", "gripper_frame_link"),
    "planar_2link": (2, "base_link", "tool0"),
    "rrr_3dof": (3, "base_link", "tool0"),
    "dh6_slides": (6, "base_link", "tool0"),
    "dh6_experiments": (6, "base_link", "tool0"),
    "chain7_003": (7, "base_link", "tool0"),
    "chain10_003": (10, "base_link", "tool0"),
    "chain20_003": (20, "base_link", "tool0"),
}
DH_ROBOTS = ["planar_2link", "rrr_3dof", "dh6_slides", "dh6_experiments"]
CHAINS_003 = ["chain7_003", "chain10_003", "chain20_003"]
# Movable joints of a shipped URDF below its chain's tip, kept for collision checking: grippers.
GRIPPER_JOINTS = {"panda": ["panda_finger_joint1", "panda_finger_joint2"], "so101": ["gripper"]}


# ---------------------------------------------------------------------- helpers


def random_configurations(chain: KinematicChain, seed: int = 7) -> np.ndarray:
    """N_CONFIGS configurations drawn uniformly within the chain's limits, reproducibly."""
    return chain.bounds.sample(np.random.default_rng(seed), N_CONFIGS)


def rot_z(t: float) -> np.ndarray:
    c, s = math.cos(t), math.sin(t)
    return np.array([[c, -s, 0, 0], [s, c, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])


def rot_x(t: float) -> np.ndarray:
    c, s = math.cos(t), math.sin(t)
    return np.array([[1.0, 0, 0, 0], [0, c, -s, 0], [0, s, c, 0], [0, 0, 0, 1]])


def trans(x: float, y: float, z: float) -> np.ndarray:
    T = np.eye(4)
    T[:3, 3] = (x, y, z)
    return T


def modified_dh(a, d, alpha, q) -> np.ndarray:
    """Modified DH (Craig): prod_i Rx(alpha_{i-1}) Tx(a_{i-1}) Rz(q_i) Tz(d_i), a/alpha indexed from 0."""
    T = np.eye(4)
    for a_prev, d_i, alpha_prev, q_i in zip(a, d, alpha, q):
        T = T @ rot_x(alpha_prev) @ trans(a_prev, 0, 0) @ rot_z(q_i) @ trans(0, 0, d_i)
    return T


def assert_poses_close(T_a: np.ndarray, T_b: np.ndarray, what: str) -> None:
    """Position distance <= TOL_POSITION_M and rotation angle <= TOL_ANGLE_RAD, over (..., 4, 4) stacks."""
    T_a, T_b = np.asarray(T_a), np.asarray(T_b)
    assert T_a.shape == T_b.shape, what
    position_error, angle = pose_errors(T_a, T_b)
    assert position_error.max() <= TOL_POSITION_M, f"{what}: position error {position_error.max():.3g} m"
    assert angle.max() <= TOL_ANGLE_RAD, f"{what}: rotation error {angle.max():.3g} rad"
    assert np.allclose(T_a[..., 3, :], [0.0, 0.0, 0.0, 1.0]), what


def robot_config(name: str) -> dict:
    with open(models_dir() / name / "robot.yaml", encoding="utf-8") as stream:
        return yaml.safe_load(stream)


# ---------------------------------------------------------------------- catalogue


def test_list_robots_has_all_shipped_robots():
    names = list_robots()
    assert names == sorted(names)
    assert set(EXPECTED) <= set(names)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_robot_yaml_fields(name):
    config = robot_config(name)
    for field in ("description", "base_link", "tip_link", "urdf", "source"):
        assert isinstance(config.get(field), str) and config[field].strip(), f"{name}: robot.yaml lacks {field}"
    assert config["urdf"] == f"{name}.urdf"
    assert config["dof"] == EXPECTED[name][0]
    assert ("dh" in config) == (name in DH_ROBOTS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_load_robot(name):
    dof, base_link, tip_link = EXPECTED[name]
    robot = load_robot(name)
    assert isinstance(robot, Robot)
    assert robot.name == name
    assert robot.chain.dof == dof
    assert (robot.chain.base_link, robot.chain.tip_link) == (base_link, tip_link)
    assert robot.urdf_path.is_file() and robot.urdf_path.name == f"{name}.urdf"
    # Every shipped robot ships its trained network, with the report of its training.
    assert robot.network is not None and robot.network.fingerprint == robot.chain.fingerprint
    assert robot.network.joint_names == robot.chain.joint_names
    # The TorchScript module's parameters and the torch-free weights entry: 3.2 MB each for a 4x512.
    assert robot.network.path.stat().st_size < 7e6
    for report in ("report.json", "curve.png", "error_map.png", "histograms.png"):
        assert (robot.network.path.parent / f"ik_network.{report}").is_file()
    assert robot.description
    assert np.all(robot.chain.lower < robot.chain.upper)
    with pytest.raises(AttributeError):
        robot.name = "other"  # frozen


def test_unknown_robot_is_a_value_error_naming_the_choices():
    with pytest.raises(ValueError) as error:
        load_robot("no_such_robot")
    message = str(error.value)
    assert "no_such_robot" in message
    for name in EXPECTED:
        assert name in message


# ---------------------------------------------------------------------- URDF vs Pinocchio


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_urdf_chain_matches_pinocchio(name):
    robot = load_robot(name)
    chain = robot.chain
    model = pinocchio.buildModelFromUrdf(str(robot.urdf_path))
    # Every movable joint of the URDF is on the chain (the shipped URDFs hold one arm), but a gripper's,
    # below the chain's tip.
    fingers = GRIPPER_JOINTS.get(name, [])
    assert model.nq == chain.dof + len(fingers)
    assert [model.names[i] for i in range(1, model.njoints) if model.names[i] not in chain.joint_names] == fingers
    idx_q = [model.joints[model.getJointId(joint)].idx_q for joint in chain.joint_names]
    assert sorted(idx_q) == list(range(chain.dof))
    np.testing.assert_array_equal(model.lowerPositionLimit[idx_q], chain.lower)
    np.testing.assert_array_equal(model.upperPositionLimit[idx_q], chain.upper)

    qs = random_configurations(chain)
    expected = pinocchio_fk(robot.urdf_path, chain.base_link, chain.tip_link, chain.joint_names, qs)
    assert_poses_close(chain.forward(qs), expected, f"{name}: chain FK vs Pinocchio")


# ---------------------------------------------------------------------- DH robots: yaml table vs URDF


@pytest.mark.parametrize("name", DH_ROBOTS)
def test_dh_table_matches_urdf(name):
    urdf_chain = load_robot(name).chain
    table_chain = dh_chain(name)
    assert table_chain is not None
    assert table_chain.joint_names == urdf_chain.joint_names
    np.testing.assert_allclose(table_chain.lower, urdf_chain.lower, rtol=0, atol=1e-15)
    np.testing.assert_allclose(table_chain.upper, urdf_chain.upper, rtol=0, atol=1e-15)

    qs = random_configurations(urdf_chain)
    T_urdf = urdf_chain.forward(qs)
    assert_poses_close(table_chain.forward(qs), T_urdf, f"{name}: from_dh(robot.yaml) vs URDF")

    # The same table through a DH product written out here, independent of from_dh.
    table = robot_config(name)["dh"]
    offsets = np.asarray(table.get("theta_offset") or [0.0] * urdf_chain.dof)
    T_numpy = np.stack([dh_fk(table["a"], table["d"], table["alpha"], q + offsets) for q in qs])
    assert_poses_close(T_numpy, T_urdf, f"{name}: numpy DH product vs URDF")


def test_robots_without_dh_table_have_no_dh_chain():
    for name in ("panda", "ur5e", "so101", *CHAINS_003):
        assert dh_chain(name) is None


def test_nathan_dh_tables_in_si_units():
    """The yaml tables are those of Nathan's slides and code, converted from mm and degrees."""
    mm, deg = 1e-3, math.pi / 180
    expected = {
        "rrr_3dof": ([0, 0, 0], [0, 0, 50], [-90, 90, 0]),
        "dh6_slides": ([0] * 6, [0, 0, 50, 100, 0, 50], [-90, 90, 0, -90, 90, 0]),
        "dh6_experiments": ([0, 40, 40, 0, 0, 0], [10, 0, 0, 10, 10, 10], [90, 0, 0, 90, -90, 0]),
    }
    for name, (a, d, alpha) in expected.items():
        table = robot_config(name)["dh"]
        np.testing.assert_allclose(table["a"], np.array(a) * mm, rtol=0, atol=1e-15)
        np.testing.assert_allclose(table["d"], np.array(d) * mm, rtol=0, atol=1e-15)
        np.testing.assert_allclose(table["alpha"], np.array(alpha) * deg, rtol=0, atol=1e-15)
        np.testing.assert_allclose(table["lower"], [-HALF_PI] * len(a), rtol=0, atol=1e-15)
        np.testing.assert_allclose(table["upper"], [HALF_PI] * len(a), rtol=0, atol=1e-15)


def test_planar_2link_forward_kinematics():
    """x = L1 cos q1 + L2 cos(q1 + q2), y = L1 sin q1 + L2 sin(q1 + q2), z = 0; Al-Sharif et al.'s ranges."""
    chain = load_robot("planar_2link").chain
    np.testing.assert_allclose(chain.lower, [0.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(chain.upper, [HALF_PI, math.pi], atol=1e-15)
    qs = random_configurations(chain)
    T = chain.forward(qs)
    q1, q12 = qs[:, 0], qs[:, 0] + qs[:, 1]
    np.testing.assert_allclose(T[:, 0, 3], 1.0 * np.cos(q1) + 0.6 * np.cos(q12), rtol=0, atol=1e-12)
    np.testing.assert_allclose(T[:, 1, 3], 1.0 * np.sin(q1) + 0.6 * np.sin(q12), rtol=0, atol=1e-12)
    np.testing.assert_allclose(T[:, 2, 3], 0.0, rtol=0, atol=1e-12)


def test_rrr_3dof_tip_on_a_sphere():
    chain = load_robot("rrr_3dof").chain
    T = chain.forward(random_configurations(chain))
    np.testing.assert_allclose(np.linalg.norm(T[:, :3, 3], axis=1), 0.05, rtol=0, atol=1e-12)


def test_dh6_slides_joints_3_and_4_share_one_axis():
    """Only q3 + q4 matters: equal Jacobian columns 3 and 4, rank 5, and FK depends on the sum alone."""
    chain = load_robot("dh6_slides").chain
    qs = random_configurations(chain)[:100]
    J = chain.jacobian(qs)
    np.testing.assert_allclose(J[:, :, 2], J[:, :, 3], rtol=0, atol=1e-12)
    assert all(np.linalg.matrix_rank(j, tol=1e-9) == 5 for j in J)
    shifted = qs.copy()
    shifted[:, 2] += 0.3
    shifted[:, 3] -= 0.3
    assert_poses_close(chain.forward(shifted), chain.forward(qs), "dh6_slides: q3 + q4 invariance")


# ---------------------------------------------------------------------- makers' tables


# Franka's published table, modified DH (Craig): a_{i-1}, d_i, alpha_{i-1}; the 8th row is the flange.
PANDA_A = [0.0, 0.0, 0.0, 0.0825, -0.0825, 0.0, 0.088, 0.0]
PANDA_D = [0.333, 0.0, 0.316, 0.0, 0.384, 0.0, 0.0, 0.107]
PANDA_ALPHA = [0.0, -HALF_PI, HALF_PI, HALF_PI, -HALF_PI, HALF_PI, HALF_PI, 0.0]
PANDA_LOWER = [-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973]
PANDA_UPPER = [2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973]

# Universal Robots' published UR5e table, standard DH.
UR5E_A = [0.0, -0.425, -0.3922, 0.0, 0.0, 0.0]
UR5E_D = [0.1625, 0.0, 0.0, 0.1333, 0.0997, 0.0996]
UR5E_ALPHA = [HALF_PI, 0.0, 0.0, HALF_PI, -HALF_PI, 0.0]


def _urdf_poses(robot_name: str, qs: np.ndarray) -> list[np.ndarray]:
    """The shipped URDF's tip poses by the package's chain and by Pinocchio."""
    robot = load_robot(robot_name)
    chain = robot.chain
    return [
        chain.forward(qs),
        pinocchio_fk(robot.urdf_path, chain.base_link, chain.tip_link, chain.joint_names, qs),
    ]


def test_panda_urdf_matches_franka_dh_table():
    """panda_link0 = Craig frame 0 and panda_link8 = the flange frame: no extra base or tip transform."""
    chain = load_robot("panda").chain
    np.testing.assert_array_equal(chain.lower, PANDA_LOWER)
    np.testing.assert_array_equal(chain.upper, PANDA_UPPER)
    qs = random_configurations(chain)
    T_dh = np.stack([modified_dh(PANDA_A, PANDA_D, PANDA_ALPHA, list(q) + [0.0]) for q in qs])
    for T_urdf in _urdf_poses("panda", qs):
        assert_poses_close(T_urdf, T_dh, "panda: URDF vs Franka's DH table")


def test_ur5e_urdf_matches_universal_robots_dh_table():
    """base_link = Rz(pi) * DH base frame (ur_description's REP-103 base_link); tool0 = DH frame 6."""
    chain = load_robot("ur5e").chain
    two_pi = 2 * math.pi
    np.testing.assert_allclose(chain.lower, [-two_pi, -two_pi, -math.pi, -two_pi, -two_pi, -two_pi], atol=1e-15)
    np.testing.assert_allclose(chain.upper, [two_pi, two_pi, math.pi, two_pi, two_pi, two_pi], atol=1e-15)
    qs = random_configurations(chain)
    T_dh = np.stack([rot_z(math.pi) @ dh_fk(UR5E_A, UR5E_D, UR5E_ALPHA, q) for q in qs])
    for T_urdf in _urdf_poses("ur5e", qs):
        assert_poses_close(T_urdf, T_dh, "ur5e: URDF vs Universal Robots' DH table")


def test_so101_urdf_matches_the_makers():
    """The shipped SO-101 against TheRobotStudio's URDF (example-robot-data's copy of so101_new_calib.urdf):
    every joint as the maker's, text for text; the tip's pose by the package's chain and by Pinocchio on the
    shipped file against Pinocchio on the maker's, and the moving jaw's too (its joint drawn as well)."""
    maker = example_robot_urdf("so_arm_description/urdf/so101.urdf")

    def joints(path):
        found = {}
        for joint in ElementTree.parse(path).getroot().findall("joint"):  # not the transmissions' <joint>s
            limit, axis = joint.find("limit"), joint.find("axis")
            found[joint.get("name")] = (
                joint.get("type"),
                joint.find("parent").get("link"),
                joint.find("child").get("link"),
                joint.find("origin").attrib,
                None if joint.get("type") == "fixed" else axis.get("xyz"),
                None if limit is None else limit.attrib,
            )
        return found

    robot = load_robot("so101")
    assert joints(robot.urdf_path) == joints(maker)
    chain = robot.chain
    assert chain.joint_names == ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll"]
    model = pinocchio.buildModelFromUrdf(str(maker))
    idx_q = [model.joints[model.getJointId(joint)].idx_q for joint in chain.joint_names]
    np.testing.assert_array_equal(model.lowerPositionLimit[idx_q], chain.lower)
    np.testing.assert_array_equal(model.upperPositionLimit[idx_q], chain.upper)
    qs = random_configurations(chain)
    T_maker = pinocchio_fk(maker, chain.base_link, chain.tip_link, chain.joint_names, qs)
    for T_urdf in _urdf_poses("so101", qs):
        assert_poses_close(T_urdf, T_maker, "so101: URDF vs the maker's")

    jaw = KinematicChain.from_urdf(robot.urdf_path, "base_link", "moving_jaw_so101_v1_link")
    assert jaw.joint_names == [*chain.joint_names, "gripper"]
    qs = random_configurations(jaw)
    T_maker = pinocchio_fk(maker, jaw.base_link, jaw.tip_link, jaw.joint_names, qs)
    assert_poses_close(jaw.forward(qs), T_maker, "so101: the moving jaw vs the maker's")


def test_so101_points_its_tool_only_within_the_vertical_plane_through_the_base_axis():
    """The README's claim (Shipped robots, the SO-101), on its FK: the pan axis is vertical; lift, elbow and
    wrist flex turn about parallel axes at right angles to it; the tool's z axis (the roll axis) stays in the
    vertical plane through the pan axis normal to them (to the maker's rounded right angles), the tool frame
    within 8 mm of it (7.9 mm off the roll axis)."""
    chain = load_robot("so101").chain
    qs = random_configurations(chain)
    T = chain.forward(qs)
    F = np.stack([chain.frames(q)[0] for q in qs])  # (N, dof, 4, 4): each joint's frame
    pan_axis, pan_origin, normal = F[:, 0, :3, 2], F[:, 0, :3, 3], F[:, 1, :3, 2]
    assert np.abs(pan_axis[:, 2]).min() > 1 - 1e-9
    assert np.abs(np.einsum("ij,ij->i", pan_axis, normal)).max() < 1e-9
    for i in (2, 3):
        assert np.linalg.norm(np.cross(F[:, i, :3, 2], normal), axis=1).max() < 1e-9
    assert np.abs(np.einsum("ij,ij->i", T[:, :3, 2], normal)).max() < 1e-5
    off_plane = np.abs(np.einsum("ij,ij->i", T[:, :3, 3] - pan_origin, normal))
    assert 0.007 < off_plane.max() < 0.0081


def test_so101_reaches_a_pointing_direction_in_that_plane_not_one_turned_out_of_it():
    """With the rotation about the tool axis free: targets made by FK, their roll changed, are reached; the
    same targets with the tool axis turned 0.2 rad about the vertical (out of that plane; tool frame 0.1 m or
    more from the base axis, its axis at least 30 degrees from the vertical) are not."""
    from ik_neural import IKSolver, Tolerance

    chain = load_robot("so101").chain
    solver = IKSolver(chain)
    free_z = Tolerance(1e-5, (1e-5, 1e-5, math.inf))
    rng = np.random.default_rng(3)
    T = chain.forward(chain.bounds.sample(rng, 400))
    pan_origin = chain.frames(chain.middle)[0][0, :3, 3]
    far = (np.linalg.norm(T[:, :2, 3] - pan_origin[:2], axis=1) >= 0.1) & (np.linalg.norm(T[:, :2, 2], axis=1) >= 0.5)
    assert far.sum() >= 10
    for T_k in T[far][:10]:
        rolled = T_k @ rot_z(rng.uniform(-math.pi, math.pi))
        assert solver.solve(rolled, tolerance=free_z, timeout_s=0.5).success
        turned = T_k.copy()
        turned[:3, :3] = rot_z(0.2)[:3, :3] @ T_k[:3, :3]
        assert not solver.solve(turned, tolerance=free_z, timeout_s=0.02).success


@pytest.mark.parametrize("name", CHAINS_003)
def test_chain_003_matches_eq_1_2(name):
    """K_N = A_1 ... A_N; odd (1-based) A = [Rx(q), (0, 0, 0.01)], even A = [Rz(q), (0, 0, 0.15)]."""
    chain = load_robot(name).chain
    odd = np.arange(1, chain.dof + 1) % 2 == 1
    np.testing.assert_allclose(chain.lower, np.where(odd, -math.radians(120), -math.pi), atol=1e-15)
    np.testing.assert_allclose(chain.upper, np.where(odd, math.radians(120), math.pi), atol=1e-15)
    qs = random_configurations(chain)
    T_paper = np.empty((N_CONFIGS, 4, 4))
    for k, q in enumerate(qs):
        T = np.eye(4)
        for i, q_i in enumerate(q, start=1):
            A = rot_x(q_i) if i % 2 == 1 else rot_z(q_i)
            A[2, 3] = 0.01 if i % 2 == 1 else 0.15
            T = T @ A
        T_paper[k] = T
    assert_poses_close(chain.forward(qs), T_paper, f"{name}: URDF vs Stephan et al.'s Eq. 1-2")
