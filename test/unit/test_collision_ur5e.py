"""The shipped UR5e's collision geometry (one convex piece per link: UR's collision meshes, which are convex):
there, and the chain (so the shipped network) unchanged; the home and up poses free, folded poses colliding;
the pieces around an outline of the arm built here from UR's published numbers; the checker against
Pinocchio + coal on the same URDF."""

from __future__ import annotations

import math
import re
from xml.etree import ElementTree

import numpy as np
import pytest

from ik_neural.collision import CollisionChecker
from ik_neural.robots import load_robot
from ik_neural.ros.startup import resolve_path
from ik_neural.urdf_model import UrdfModel
from reference import SOURCE_TREE, PinocchioCollisionJudge, stl_triangles

pytestmark = pytest.mark.unit

PI = math.pi
ARM_LINKS = [
    "base_link_inertia",
    "shoulder_link",
    "upper_arm_link",
    "forearm_link",
    "wrist_1_link",
    "wrist_2_link",
    "wrist_3_link",
]
# The UR5e chain's fingerprint before it had collision geometry: models/ur5e/ik_network.pt was trained for it.
FINGERPRINT = "c6dee74652d5b073"


@pytest.fixture(scope="module")
def ur5e():
    robot = load_robot("ur5e")
    model = UrdfModel.parse(robot.urdf_path)
    checker = CollisionChecker.from_urdf(model, robot.chain, cache=False, resolve=resolve_path)  # default sampling
    return robot, checker


def _links():
    robot = load_robot("ur5e")
    root = ElementTree.parse(robot.urdf_path).getroot()
    return {link.get("name"): link for link in root.iter("link")}


def test_geometry_is_there_and_the_chain_unchanged(ur5e):
    robot, checker = ur5e
    links = _links()
    for name in ARM_LINKS:
        shapes = [c.find("geometry")[0] for c in links[name].findall("collision")]
        assert [shape.tag for shape in shapes] == ["mesh"], name
        assert shapes[0].get("filename").startswith("package://ik_neural/models/ur5e/collision/"), name
    assert checker.link_names == sorted(ARM_LINKS)
    # The network loaded (load_robot checks its fingerprint against the chain), and the chain is the one
    # of the URDF with every <collision> taken out.
    assert robot.network is not None and robot.chain.fingerprint == FINGERPRINT == robot.network.fingerprint
    bare = re.sub(r"<collision>.*?</collision>", "", robot.urdf_path.read_text(), flags=re.S)
    assert "<collision" not in bare
    assert UrdfModel.parse(bare).chain("base_link", "tool0").fingerprint == FINGERPRINT


def test_checked_pairs(ur5e):
    """Adjacent pairs are off; wrist 1 / wrist 3 and forearm / wrist 2 can never meet (the real arm keeps
    them 2.6 and 8.2 mm apart at every angle), so the Setup Assistant rule turns them off; the base against
    the upper arm stays on. The same 13 pairs as the fitted primitives had."""
    _, checker = ur5e
    assert len(checker.enabled_pairs) == 13
    assert ("base_link_inertia", "upper_arm_link") in checker.enabled_pairs
    reasons = {tuple(sorted(pair)): reason for pair, reason in checker.disabled_reasons.items()}
    assert reasons[("wrist_1_link", "wrist_3_link")] == "never"
    assert reasons[("forearm_link", "wrist_2_link")] == "never"
    assert sorted(pair for pair, reason in reasons.items() if reason == "adjacent") == sorted(
        tuple(sorted(pair)) for pair in zip(ARM_LINKS, ARM_LINKS[1:])
    )


@pytest.mark.parametrize(
    "q",
    [
        [0, 0, 0, 0, 0, 0],  # zero: arm stretched out horizontally (the middle of the joint limits)
        [0, -PI / 2, 0, -PI / 2, 0, 0],  # up: upper arm and forearm vertical
        [0, -PI / 2, PI / 2, -PI / 2, -PI / 2, 0],  # a usual working pose, the tool pointing down
        [1.0, -2.0, 1.8, -1.4, -1.57, 2.0],
    ],
)
def test_home_and_up_poses_are_free(ur5e, q):
    _, checker = ur5e
    assert checker.colliding_pairs(np.array(q, dtype=float)) == []


@pytest.mark.parametrize("elbow", [PI, -PI])
def test_forearm_folded_onto_the_upper_arm_collides(ur5e, elbow):
    _, checker = ur5e
    pairs = checker.colliding_pairs(np.array([0, -PI / 2, elbow, 0, 0, 0]))
    assert ("forearm_link", "shoulder_link") in pairs and ("upper_arm_link", "wrist_1_link") in pairs, pairs


def test_elbow_short_of_folded(ur5e):
    """At 0.9 pi the wrist housings meet the upper arm; at -0.9 pi (the wrists on the other side) the real
    meshes are still apart, where the fitted primitives (5 mm margin) met."""
    _, checker = ur5e
    pairs = checker.colliding_pairs(np.array([0, -PI / 2, 0.9 * PI, 0, 0, 0]))
    assert ("upper_arm_link", "wrist_1_link") in pairs, pairs
    assert checker.colliding_pairs(np.array([0, -PI / 2, -0.9 * PI, 0, 0, 0])) == []


def test_wrist_folded_into_the_base_collides(ur5e):
    _, checker = ur5e
    # Upper arm horizontal, elbow folded back to 2.8 rad: the wrist comes down beside the base (the real
    # meshes collide there too).
    pairs = checker.colliding_pairs(np.array([0, 0, 2.8, -1.57, 1.57, 0]))
    assert ("base_link_inertia", "wrist_1_link") in pairs, pairs


# ---------------------------------------------------------------- an outline of the arm from published numbers

# Housings as cylinders around the joint axes, in the link frames of the URDF (ur_description's layout):
# (link, centre (3,), axis (3,), radius m, half-length m). Sources:
# - positions: UR's DH parameters for the UR5e (a2 = -0.425, a3 = -0.3922 m; universal-robots.com, "DH
#   parameters for calculations of kinematics and dynamics") and ur_description's measured offsets of the
#   upper arm (0.138 m) and forearm (0.007 m) along the shoulder-lift/elbow axes (config/ur5e/
#   physical_parameters.yaml), so the upper arm's tube runs 0.138 m along the lift axis from the shoulder;
# - radii: the same file's hand-measured link radii (shoulder and elbow housings 0.060, upper arm 0.054,
#   forearm 0.040 m); the wrist housings, which that file gives as 0.045 m, are 0.039 m here: UR's own
#   collision meshes of the wrists are 78 mm across (its 45 mm is a rough inertia radius);
# - base: UR5e technical specification, footprint 149 mm across (the lowest 20 mm of the base).
# Lengths: a housing spans its link's body along its axis (the shoulder 0.12 m, the upper arm's two
# housings from 0.08 to 0.20 m along the lift axis, the wrists 0.10 m).
X, Y, Z = np.eye(3)
OUTLINE = [
    ("base_link_inertia", (0, 0, 0.01), Z, 0.0745, 0.01),
    ("shoulder_link", (0, 0, 0), Z, 0.060, 0.06),  # the pan joint's housing
    ("upper_arm_link", (0, 0, 0.14), Z, 0.060, 0.06),  # shoulder-lift housing
    ("upper_arm_link", (-0.425, 0, 0.14), Z, 0.060, 0.06),  # elbow housing
    ("upper_arm_link", (-0.2125, 0, 0.138), X, 0.054, 0.2125),  # the tube, shoulder to elbow
    ("forearm_link", (0, 0, 0.007), Z, 0.060, 0.045),  # elbow housing, forearm side
    ("forearm_link", (-0.1961, 0, 0.007), X, 0.040, 0.1961),  # the tube, elbow to wrist 1
    ("wrist_1_link", (0, 0, 0), Y, 0.039, 0.05),  # wrist 2's housing, on wrist 2's axis
    ("wrist_2_link", (0, 0, 0), Y, 0.039, 0.05),  # wrist 3's housing, on wrist 3's axis
    ("wrist_3_link", (0, 0, -0.02), Z, 0.0375, 0.02),  # wrist 3 behind the tool flange
]


def _cylinder_points(center, axis, radius, half_length, n_around=48, n_along=9) -> np.ndarray:
    """Points on the side and the two end rims of a cylinder (its convex hull's extreme points)."""
    axis = np.asarray(axis, float)
    u = np.cross(axis, X if abs(axis[0]) < 0.9 else Y)
    u /= np.linalg.norm(u)
    v = np.cross(axis, u)
    angles = np.linspace(0, 2 * PI, n_around, endpoint=False)
    ring = radius * (np.cos(angles)[:, None] * u + np.sin(angles)[:, None] * v)
    along = np.linspace(-half_length, half_length, n_along)
    return (np.asarray(center, float) + ring[None] + along[:, None, None] * axis).reshape(-1, 3)


def _piece(link: ElementTree.Element) -> np.ndarray:
    """The triangles (N, 3, 3) of the link's one convex piece (binary STL)."""
    (collision,) = link.findall("collision")
    assert collision.find("origin") is None
    filename = collision.find("geometry/mesh").get("filename")
    return stl_triangles(SOURCE_TREE / filename.removeprefix("package://ik_neural/"))


def _inside(points: np.ndarray, link: ElementTree.Element, slack_m: float = 0.0) -> np.ndarray:
    """Per point (N, 3) in the link's frame: inside the link's convex piece (on the inner side of every face
    plane, its normals outward), to slack_m."""
    triangles = _piece(link)
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    n = np.cross(b - a, c - a)
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    return ((points[:, None, :] - a[None]) * n[None]).sum(-1).max(1) <= slack_m


def test_pieces_are_convex_with_outward_faces():
    for name in ARM_LINKS:
        link = _links()[name]
        corners = np.unique(_piece(link).reshape(-1, 3), axis=0)
        assert _inside(corners, link, 1e-6).all(), name  # float32 corners: 0.2 um


# The outline's lengths are rough (a housing's ends overshoot the real covers by up to 12 mm), its radii close:
# the ring halfway along each housing lies in the link's piece to 1 mm. Not the forearm's elbow housing: UR's
# elbow cover is the upper arm's mesh (checked there), the forearm's mesh stops 16 mm inside that ring.
RINGS = [i for i, o in enumerate(OUTLINE) if o[:2] != ("forearm_link", (0, 0, 0.007))]


@pytest.mark.parametrize("index", RINGS, ids=[f"{OUTLINE[i][0]}-{i}" for i in RINGS])
def test_pieces_hold_the_published_outline(index):
    link, center, axis, radius, _ = OUTLINE[index]
    points = _cylinder_points(center, axis, radius, 0.0, n_along=1)
    inside = _inside(points, _links()[link], 0.001)
    assert inside.all(), f"{link}: {(~inside).sum()} of {len(points)} points outside, e.g. {points[~inside][:3]}"


def test_outline_check_catches_a_misplaced_piece():
    """The check above can fail: the elbow housing's ring 3 cm beyond the elbow axis (as if the upper arm's
    piece sat 3 cm towards the shoulder) is partly outside."""
    points = _cylinder_points((-0.425 - 0.03, 0, 0.14), Z, 0.060, 0.0, n_along=1)
    assert not _inside(points, _links()["upper_arm_link"], 0.001).all()


# ---------------------------------------------------------------- against Pinocchio


def test_checker_agrees_with_pinocchio_on_the_ur5e(ur5e):
    robot, checker = ur5e
    judge = PinocchioCollisionJudge(robot.urdf_path, checker.enabled_pairs, robot.chain.joint_names)
    Q = robot.chain.bounds.sample(np.random.default_rng(5), 200)
    ours, theirs = judge.verdicts(checker.in_collision, Q)
    assert 0 < ours.sum() < len(Q)
    assert (ours == theirs).all(), np.flatnonzero(ours != theirs)
