"""The shipped SO-101's collision geometry (models/so101/so101.urdf): primitives that hold the maker's collision
meshes (example-robot-data's copy of TheRobotStudio's files, read here with numpy) with 3 mm to spare; the zero
pose free; every configuration that collides on the meshes flagged, and few mesh-free ones; the checker against
Pinocchio + coal on the same URDF."""

from __future__ import annotations

import itertools
from xml.etree import ElementTree

import numpy as np
import pinocchio
import pytest

from ik_neural.collision import CollisionChecker
from ik_neural.robots import load_robot
from ik_neural.urdf_model import UrdfModel
from reference import MeshSelfCollisionJudge, PinocchioCollisionJudge, example_robot_urdf, stl_triangles

pytestmark = pytest.mark.unit

MAKER = "so_arm_description/urdf/so101.urdf"
LINKS = [
    "base_link",
    "shoulder_link",
    "upper_arm_link",
    "lower_arm_link",
    "wrist_link",
    "gripper_link",
    "moving_jaw_so101_v1_link",
]
JAW = "gripper"
JAW_LOWER, JAW_UPPER = -0.174533, 1.74533  # the maker's limits of the moving jaw
MARGIN_M = 0.003
ROUNDING_M = 0.0001  # the URDF's figures are rounded outward to 0.1 mm
# 26 directions: the faces, edges and corners of a cube
DIRECTIONS = np.array([d for d in itertools.product((-1, 0, 1), repeat=3) if any(d)], dtype=float)
DIRECTIONS /= np.linalg.norm(DIRECTIONS, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def so101():
    """The robot and its checker as the node builds it (the jaw held half-open, the middle of its limits)."""
    robot = load_robot("so101")
    return robot, CollisionChecker.from_urdf(UrdfModel.parse(robot.urdf_path), robot.chain)


def _links(path) -> dict[str, ElementTree.Element]:
    return {link.get("name"): link for link in ElementTree.parse(path).getroot().iter("link")}


def _maker_points(link: str, n_surface: int = 20_000, seed: int = 0) -> np.ndarray:
    """The distinct vertices of the maker's collision meshes of ``link`` and n_surface points sampled on their
    surfaces (by area), in the link's frame, each mesh placed by the maker's <collision> origin."""
    urdf = example_robot_urdf(MAKER)
    triangles = []
    for collision in _links(urdf)[link].findall("collision"):
        origin = collision.find("origin")
        R = pinocchio.rpy.rpyToMatrix(np.array([float(v) for v in origin.get("rpy").split()]))
        t = np.array([float(v) for v in origin.get("xyz").split()])
        name = collision.find("geometry/mesh").get("filename").rsplit("/", 1)[1]
        triangles.append(stl_triangles(urdf.parent.parent / "meshes" / "so101" / name) @ R.T + t)
    triangles = np.concatenate(triangles)
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(triangles), n_surface, p=area / area.sum())
    u = rng.random((n_surface, 2))
    u[u.sum(1) > 1] = 1 - u[u.sum(1) > 1]
    surface = a[pick] + u[:, :1] * (b - a)[pick] + u[:, 1:] * (c - a)[pick]
    return np.vstack([np.unique(triangles.reshape(-1, 3), axis=0), surface])


def _inside(points: np.ndarray, link: ElementTree.Element) -> np.ndarray:
    """Per point (N, 3) in the link's frame: inside one of the link's <collision> boxes or cylinders (analytic)."""
    inside = np.zeros(len(points), dtype=bool)
    for collision in link.findall("collision"):
        origin = collision.find("origin")
        xyz = np.array([float(v) for v in origin.get("xyz", "0 0 0").split()])
        R = pinocchio.rpy.rpyToMatrix(np.array([float(v) for v in origin.get("rpy", "0 0 0").split()]))
        local = (points - xyz) @ R  # into the shape's frame
        shape = collision.find("geometry")[0]
        if shape.tag == "box":
            inside |= (np.abs(local) <= np.array([float(v) for v in shape.get("size").split()]) / 2).all(1)
        elif shape.tag == "cylinder":
            r, length = float(shape.get("radius")), float(shape.get("length"))
            inside |= (np.linalg.norm(local[:, :2], axis=1) <= r) & (np.abs(local[:, 2]) <= length / 2)
        else:
            raise AssertionError(f"unexpected shape {shape.tag}")
    return inside


def test_geometry_is_there_and_the_jaw_held(so101):
    robot, checker = so101
    links = _links(robot.urdf_path)
    for name in LINKS:
        shapes = [c.find("geometry")[0].tag for c in links[name].findall("collision")]
        assert 1 <= len(shapes) <= 5 and set(shapes) <= {"box", "cylinder"}, (name, shapes)
    assert checker.link_names == sorted(LINKS)
    assert checker.other_joints == [JAW]
    assert checker.positions == {JAW: pytest.approx((JAW_LOWER + JAW_UPPER) / 2)}


@pytest.mark.parametrize("link", LINKS)
def test_primitives_hold_the_makers_meshes_with_3_mm_to_spare(link):
    """Each mesh point moved 3 mm in any of 26 directions stays inside the link's primitives; moved 3.2 mm, some
    point leaves them (the margin is 3 mm, not more)."""
    element = _links(load_robot("so101").urdf_path)[link]
    points = _maker_points(link)
    assert _inside(points, element).all()
    for direction in DIRECTIONS:
        inside = _inside(points + MARGIN_M * direction, element)
        assert inside.all(), f"{link}: {(~inside).sum()} points outside 3 mm along {direction}"
    wider = MARGIN_M + ROUNDING_M + 0.0001
    assert not all(_inside(points + wider * direction, element).all() for direction in DIRECTIONS), link


def test_checked_pairs(so101):
    """Adjacent pairs are off; none is off for colliding at the middle (zero) pose; the jaw and the wrist never
    meet (the jaw's hinge is a cylinder about its axis: a box there met the wrist's box at half-open)."""
    _, checker = so101
    reasons = {tuple(sorted(pair)): reason for pair, reason in checker.disabled_reasons.items()}
    assert sorted(pair for pair, reason in reasons.items() if reason == "adjacent") == sorted(
        tuple(sorted(pair))
        for pair in zip(LINKS, LINKS[1:])  # the jaw's parent is the gripper
    )
    assert "default" not in reasons.values()
    assert len(checker.enabled_pairs) == 11
    assert reasons[("moving_jaw_so101_v1_link", "wrist_link")] == "never"
    assert ("base_link", "gripper_link") in checker.enabled_pairs
    assert ("lower_arm_link", "shoulder_link") in checker.enabled_pairs


@pytest.mark.parametrize("jaw", [JAW_LOWER, 0.0, (JAW_LOWER + JAW_UPPER) / 2, JAW_UPPER])
@pytest.mark.parametrize(
    "q",
    [
        [0, 0, 0, 0, 0],  # zero (the middle of the ranges): upper arm up, forearm and gripper forward
        [0, 1.0, -1.0, 0.5, 0],  # leaning forward, the gripper pointing down-forward
        [1.5, 0.3, 0.5, 1.2, 2.0],
    ],
)
def test_zero_and_usual_poses_are_free_on_primitives_and_meshes(so101, q, jaw):
    robot, checker = so101
    q = np.array(q, dtype=float)
    assert checker.colliding_pairs(q, {JAW: jaw}) == []
    assert MeshSelfCollisionJudge(MAKER, robot.chain.joint_names, {JAW: jaw}).colliding_pairs(q) == set()


def test_folded_arm_collides(so101):
    """Shoulder lift and elbow at their limits fold the forearm onto the shoulder: the meshes collide too."""
    robot, checker = so101
    q = np.array([0, -1.74533, 1.69, 1.65806, 0])
    mesh = MeshSelfCollisionJudge(MAKER, robot.chain.joint_names, checker.positions).colliding_pairs(q)
    assert ("lower_arm_link", "shoulder_link") in mesh
    assert mesh <= set(checker.colliding_pairs(q))


def test_primitives_flag_every_mesh_collision_and_few_free_configurations(so101):
    """On 400 random configurations judged on the maker's meshes (every pair of links not adjacent, the jaw
    half-open): each pair colliding on the meshes is flagged by the shipped checker (its disabled pairs hide
    none), and few mesh-free configurations are flagged (measured: 4 %)."""
    robot, checker = so101
    judge = MeshSelfCollisionJudge(MAKER, robot.chain.joint_names, checker.positions)
    Q = robot.chain.bounds.sample(np.random.default_rng(5), 400)
    mesh = [judge.colliding_pairs(q) for q in Q]
    ours = [set(checker.colliding_pairs(q)) for q in Q]
    missed = [(k, m - o) for k, (m, o) in enumerate(zip(mesh, ours)) if m - o]
    assert not missed, missed[:5]
    on_mesh, flagged = np.array([bool(m) for m in mesh]), np.array([bool(o) for o in ours])
    assert 0.05 < on_mesh.mean() < 0.5
    assert flagged[~on_mesh].mean() < 0.1, flagged[~on_mesh].mean()


def test_checker_agrees_with_pinocchio_on_the_so101():
    """The checker and Pinocchio + coal on the same URDF's primitives (the jaw at 0: Pinocchio's neutral)."""
    robot = load_robot("so101")
    checker = CollisionChecker.from_urdf(UrdfModel.parse(robot.urdf_path), robot.chain, positions={JAW: 0.0})
    judge = PinocchioCollisionJudge(robot.urdf_path, checker.enabled_pairs, robot.chain.joint_names)
    Q = robot.chain.bounds.sample(np.random.default_rng(5), 200)
    ours, theirs = judge.verdicts(checker.in_collision, Q)
    assert 0 < ours.sum() < len(Q)
    assert (ours == theirs).all(), np.flatnonzero(ours != theirs)
