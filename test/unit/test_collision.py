"""The collision layer: analytic cases on primitives, world objects, SRDF pairs, the disabled-pair cache, and
the shipped Panda's geometry against the real meshes of example-robot-data (parsed here, not by ik_neural)."""

from __future__ import annotations

import json
import math
from xml.etree import ElementTree

import numpy as np
import pytest

from ik_neural.collision import CollisionChecker
from ik_neural.disabled_pairs import adjacent_pairs, cache_path, compute_disabled_pairs
from ik_neural.geometry import rpy_to_matrix
from ik_neural.robots import load_robot
from ik_neural.solver import IKSolver
from ik_neural.urdf_model import BOX, SPHERE, Geometry, UrdfModel
from reference import SOURCE_TREE, PinocchioCollisionJudge, example_robot_urdf, stl_triangles
from urdf_variants import slider_urdf

pytestmark = pytest.mark.unit

# base: a sphere r 0.1 at its origin; slider moves along x (prismatic, q in m) and carries a tiny sphere far
# away (5 m along y), so that block, a 0.2 m cube fixed to slider at its origin, is adjacent to slider and not
# to base (the adjacent link of a link is the nearest link with geometry above it).
SLIDER_URDF = slider_urdf(
    base='<collision><geometry><sphere radius="0.1"/></geometry></collision>',
    slider='<collision><origin xyz="0 5 0"/><geometry><sphere radius="0.01"/></geometry></collision>',
    block='<collision><geometry><box size="0.2 0.2 0.2"/></geometry></collision>',
)


def slider_checker(**kwargs) -> CollisionChecker:
    model = UrdfModel.parse(SLIDER_URDF)
    return CollisionChecker.from_urdf(model, model.chain("base", "tool"), **kwargs)


def test_sphere_against_box_at_known_distances():
    checker = slider_checker(disabled_pairs=[])
    assert checker.enabled_pairs == [("base", "block")]  # base-slider and slider-block are adjacent
    # Sphere r 0.1 at 0, cube of half-size 0.1 centred at x = q: touching at |q| = 0.2.
    for q, colliding in [(0.0, True), (0.19, True), (-0.199, True), (0.201, False), (-0.25, False), (1.0, False)]:
        assert checker.in_collision(np.array([q])) is colliding, q
        assert checker.colliding_pairs(np.array([q])) == ([("base", "block")] if colliding else [])
    # A pair that is disabled is never reported.
    assert not slider_checker(disabled_pairs=[("base", "block")]).in_collision(np.array([0.0]))


def test_world_objects_add_remove_clear():
    checker = slider_checker(disabled_pairs=[("base", "block")])
    T = np.eye(4)
    T[:3, 3] = [1.0, 0.0, 0.3]  # a sphere r 0.05 above the block's path: the cube's top is at z 0.1
    checker.add_object("ball", [(Geometry(SPHERE, (0.05,)), T)])
    assert not checker.in_collision(np.array([1.0]))
    T2 = T.copy()
    T2[2, 3] = 0.14  # now 0.04 m above the top face, radius 0.05: overlapping by 0.01
    checker.add_object("ball", [(Geometry(SPHERE, (0.05,)), T2)])  # replaces
    assert checker.object_names == ["ball"]
    assert checker.colliding_pairs(np.array([1.0])) == [("block", "ball")]
    assert not checker.in_collision(np.array([1.2]))  # 0.2 m further along x: apart (0.1 + 0.05 < 0.2)
    checker.add_object("wall", [(Geometry(BOX, (0.1, 1.0, 1.0)), np.eye(4))])  # around the base
    assert ("base", "wall") in checker.colliding_pairs(np.array([1.0]))
    assert checker.remove_object("ball") and not checker.remove_object("ball")
    assert checker.colliding_pairs(np.array([1.0])) == [("base", "wall")]
    checker.clear()
    assert checker.object_names == [] and not checker.in_collision(np.array([0.1]))


def test_srdf_pairs_are_honoured_and_bad_links_named():
    srdf = '<robot name="slider"><disable_collisions link1="block" link2="base" reason="Never"/></robot>'
    checker = slider_checker(srdf=srdf)
    assert checker.disabled_source == "srdf"
    assert frozenset(("base", "block")) in checker.disabled_pairs
    assert not checker.in_collision(np.array([0.0]))
    with pytest.raises(ValueError, match="nosuch"):
        slider_checker(srdf='<robot name="x"><disable_collisions link1="nosuch" link2="base"/></robot>')


def test_an_srdf_used_later_replaces_the_disabled_pairs_or_leaves_them_on_error(tmp_path, monkeypatch):
    """``use_srdf`` (the node's SRDF heard after start-up): the block-base pair, colliding at q 0 with the
    computed pairs, is disabled; an SRDF naming a link the URDF lacks is refused naming it, nothing changed."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    checker = slider_checker(samples=200)
    assert checker.enabled_pairs == [("base", "block")] and checker.in_collision(np.array([0.0]))
    with pytest.raises(ValueError, match="nosuch"):
        checker.use_srdf('<robot name="x"><disable_collisions link1="nosuch" link2="base"/></robot>')
    assert checker.disabled_source == "computed" and checker.in_collision(np.array([0.0]))
    checker.use_srdf('<robot name="slider"><disable_collisions link1="block" link2="base" reason="Never"/></robot>')
    assert checker.disabled_source == "srdf" and checker.enabled_pairs == []
    assert not checker.in_collision(np.array([0.0]))


def test_computed_pairs_are_cached_and_the_cache_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = slider_checker(samples=200)
    assert first.disabled_source == "computed"
    # The block meets the base only for |q| < 0.2 of [-0.5, 2] (not at the middle, 0.75): sometimes, so the
    # pair stays enabled.
    assert first.enabled_pairs == [("base", "block")]
    files = list((tmp_path / "ik_neural" / "collision").glob("*.json"))
    assert len(files) == 1
    # The second construction reads the file: a pair written into it (as if computed) is taken up.
    content = json.loads(files[0].read_text())
    content["pairs"].append(["base", "block", "never"])
    files[0].write_text(json.dumps(content))
    second = slider_checker(samples=200)
    assert second.disabled_source == "cache"
    assert second.enabled_pairs == []
    # Other sampling settings are another key.
    assert slider_checker(samples=100).disabled_source == "computed"
    assert cache_path("k").parent == tmp_path / "ik_neural" / "collision"


def test_mesh_without_resolver_names_link_and_file():
    urdf = SLIDER_URDF.replace('<box size="0.2 0.2 0.2"/>', '<mesh filename="package://nosuch/meshes/block.stl"/>')
    model = UrdfModel.parse(urdf)
    with pytest.raises(ValueError, match=r"link 'block'.*package://nosuch/meshes/block\.stl"):
        CollisionChecker.from_urdf(model, model.chain("base", "tool"), disabled_pairs=[])
    missing = SLIDER_URDF.replace('<box size="0.2 0.2 0.2"/>', '<mesh filename="/nonexistent/block.stl"/>')
    model = UrdfModel.parse(missing)
    with pytest.raises(ValueError, match=r"link 'block'.*/nonexistent/block\.stl"):
        CollisionChecker.from_urdf(model, model.chain("base", "tool"), disabled_pairs=[])


# ---------------------------------------------------------------- the shipped Panda


def _panda_model():
    robot = load_robot("panda")
    model = UrdfModel.parse(robot.urdf_path)
    return robot, model


def test_panda_fingers_are_held_and_named():
    robot, model = _panda_model()
    checker = CollisionChecker.from_urdf(model, robot.chain, samples=300, cache=False)
    assert set(checker.other_joints) == {"panda_finger_joint1", "panda_finger_joint2"}
    assert checker.positions == {"panda_finger_joint1": 0.02, "panda_finger_joint2": 0.02}  # mid, mimic
    assert {"panda_hand", "panda_leftfinger", "panda_rightfinger"} <= set(checker.link_names)
    # The fingers move with their joints: the left finger's box slides along the hand's y axis.
    q = robot.chain.middle
    open_ = checker.body_poses(q, {"panda_finger_joint1": 0.04})
    closed = checker.body_poses(q, {"panda_finger_joint1": 0.0})
    moved = np.linalg.norm(open_[:, :3, 3] - closed[:, :3, 3], axis=1)
    assert sorted(np.round(moved[moved > 1e-9], 6)) == [0.04] * (len(moved[moved > 1e-9]))
    # A closed gripper does not collide with itself.
    assert not checker.in_collision(q, {"panda_finger_joint1": 0.0})
    with pytest.raises(ValueError, match="panda_joint1"):
        checker.in_collision(q, {"panda_joint1": 0.0})


def _erd_panda_points(link_mesh: str, n: int = 4000, seed: int = 0) -> np.ndarray:
    """Vertices and n points on the surface of an example-robot-data Panda collision mesh (STL), in its
    link's frame (the meshes have no origin offset there)."""
    triangles = stl_triangles(example_robot_urdf(f"panda_description/meshes/collision/{link_mesh}"))
    count = len(triangles)
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    rng = np.random.default_rng(seed)
    pick = rng.choice(count, n, p=area / area.sum())
    u = rng.random((n, 2))
    u[u.sum(1) > 1] = 1 - u[u.sum(1) > 1]
    surface = a[pick] + u[:, :1] * (b - a)[pick] + u[:, 1:] * (c - a)[pick]
    return np.vstack([triangles.reshape(-1, 3), surface])


def _mesh_pieces(link: ElementTree.Element) -> list[np.ndarray]:
    """The triangles of each <collision> mesh of a shipped link (package://ik_neural/ is this source tree), each
    piece with no origin offset."""
    pieces = []
    for collision in link.findall("collision"):
        assert collision.find("origin") is None
        filename = collision.find("geometry/mesh").get("filename")
        pieces.append(stl_triangles(SOURCE_TREE / filename.removeprefix("package://ik_neural/")))
    return pieces


def _depth(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Per point: the largest signed distance to a convex piece's face planes (outward normals; <= 0 inside)."""
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    n = np.cross(b - a, c - a)
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    return ((points[:, None, :] - a[None]) * n[None]).sum(-1).max(1)


def _inside(points: np.ndarray, link: ElementTree.Element, slack_m: float) -> np.ndarray:
    """Per point (N, 3) in the link's frame: inside one of the link's <collision> primitives (analytic)."""
    inside = np.zeros(len(points), dtype=bool)
    for collision in link.findall("collision"):
        origin = collision.find("origin")
        xyz = [float(v) for v in (origin.get("xyz", "0 0 0") if origin is not None else "0 0 0").split()]
        rpy = [float(v) for v in (origin.get("rpy", "0 0 0") if origin is not None else "0 0 0").split()]
        local = (points - xyz) @ rpy_to_matrix(rpy)  # into the shape's frame
        shape = collision.find("geometry")[0]
        if shape.tag == "sphere":
            inside |= np.linalg.norm(local, axis=1) <= float(shape.get("radius")) + slack_m
        elif shape.tag == "cylinder":
            r, length = float(shape.get("radius")), float(shape.get("length"))
            inside |= (np.linalg.norm(local[:, :2], axis=1) <= r + slack_m) & (
                np.abs(local[:, 2]) <= length / 2 + slack_m
            )
        elif shape.tag == "box":
            half = np.array([float(v) for v in shape.get("size").split()]) / 2
            inside |= (np.abs(local) <= half + slack_m).all(1)
        else:
            raise AssertionError(f"unexpected shape {shape.tag}")
    return inside


@pytest.mark.parametrize(
    "link, mesh", [(f"panda_link{i}", f"link{i}.stl") for i in range(8)] + [("panda_hand", "hand.stl")]
)
def test_panda_pieces_are_the_real_meshes(link, mesh):
    """Each link's shipped piece is one convex solid whose faces are outward (every vertex on their inner
    side), that holds every vertex of example-robot-data's collision mesh (margin 0, float32 rounding), and
    whose vertices are the mesh's own: those meshes are convex, and the piece is the same solid."""
    robot, _ = _panda_model()
    root = ElementTree.parse(robot.urdf_path).getroot()
    (piece,) = _mesh_pieces(next(e for e in root.iter("link") if e.get("name") == link))
    corners = np.unique(piece.reshape(-1, 3), axis=0)
    assert (_depth(corners, piece) <= 1e-6).all(), "not convex, or a face turned inward"
    vertices = np.unique(
        stl_triangles(example_robot_urdf(f"panda_description/meshes/collision/{mesh}")).reshape(-1, 3), axis=0
    )
    depth = _depth(vertices, piece)
    assert depth.max() <= 1e-7, f"{link}: a mesh vertex {depth.max()} m outside its piece"
    gap = np.linalg.norm(corners[:, None] - vertices[None], axis=2).min(1)
    assert gap.max() <= 1e-7, f"{link}: a piece vertex {gap.max()} m from every mesh vertex"


def test_panda_finger_boxes_enclose_the_real_mesh():
    """The fingers keep a box each (example-robot-data's own URDF gives its fingers boxes): every vertex of the
    finger mesh, and points on its surface, lie inside it but for the inner pad's 0.6 mm (the URDF says why)."""
    robot, _ = _panda_model()
    root = ElementTree.parse(robot.urdf_path).getroot()
    element = next(e for e in root.iter("link") if e.get("name") == "panda_leftfinger")
    points = _erd_panda_points("finger.stl")
    inside = _inside(points, element, 0.0007)
    assert inside.all(), f"{(~inside).sum()} of {len(points)} points outside, e.g. {points[~inside][:3]}"


def test_right_finger_mirrors_the_left():
    robot, _ = _panda_model()
    root = ElementTree.parse(robot.urdf_path).getroot()
    element = next(e for e in root.iter("link") if e.get("name") == "panda_rightfinger")
    points = _erd_panda_points("finger.stl") * [-1.0, -1.0, 1.0]  # its visual turns the mesh by pi about z
    assert _inside(points, element, 0.0007).all()


def test_panda_fingerprint_unchanged_by_the_hand():
    robot = load_robot("panda")
    assert robot.network is not None  # loading checks the network's fingerprint against the chain
    assert robot.chain.base_link == "panda_link0" and robot.chain.tip_link == "panda_link8"
    assert math.isclose(robot.chain.forward(np.zeros(7))[2, 3], 0.333 + 0.316 + 0.384 - 0.107, abs_tol=1e-9)


# ---------------------------------------------------------------- the solver's acceptance test: collision-free


def test_checker_agrees_with_pinocchio_on_the_panda():
    robot, model = _panda_model()
    checker = CollisionChecker.from_urdf(
        model,
        robot.chain,
        samples=2000,
        cache=False,
        positions={"panda_finger_joint1": 0.0, "panda_finger_joint2": 0.0},
    )
    judge = PinocchioCollisionJudge(robot.urdf_path, checker.enabled_pairs, robot.chain.joint_names)
    Q = robot.chain.bounds.sample(np.random.default_rng(3), 300)
    ours, theirs = judge.verdicts(checker.in_collision, Q)
    assert 0 < ours.sum() < len(Q)
    assert (ours == theirs).all(), np.flatnonzero(ours != theirs)


def test_solve_rejects_colliding_candidates():
    """Targets whose seed is a colliding solution: with accept=checker.free the answer is collision-free (by
    Pinocchio) and right (by Pinocchio's FK), or a failure; without it, the colliding seed comes back."""
    from reference import ReferenceChain

    robot, model = _panda_model()
    positions = {"panda_finger_joint1": 0.0, "panda_finger_joint2": 0.0}
    checker = CollisionChecker.from_urdf(model, robot.chain, samples=2000, cache=False, positions=positions)
    judge = PinocchioCollisionJudge(robot.urdf_path, checker.enabled_pairs, robot.chain.joint_names)
    reference = ReferenceChain(robot.urdf_path, "panda_link0", "panda_link8", robot.chain.joint_names)
    solver = IKSolver(robot.chain, network=robot.network)
    rng = np.random.default_rng(7)
    colliding = [q for q in robot.chain.bounds.sample(rng, 400) if judge.collides(q)][:20]
    assert len(colliding) == 20
    solved = 0
    for q_col in colliding:
        T = robot.chain.forward(q_col)
        plain = solver.solve(T, seed=q_col, seed_first=True, timeout_s=0.5)
        assert plain.success and np.allclose(plain.q, q_col)  # the colliding seed is itself the answer
        result = solver.solve(T, seed=q_col, seed_first=True, timeout_s=0.5, accept=checker.free)
        if result.success:
            solved += 1
            assert not judge.collides(result.q)
            position_error, rotation_error = reference.errors(result.q, T)
            assert position_error < 1e-5 and rotation_error < 1e-5
    assert solved >= 10


def test_panda_pieces_agree_with_the_real_meshes():
    """On 2000 random configurations judged on example-robot-data's meshes by Pinocchio + coal (every pair not
    adjacent and not touching at the middle configuration): the shipped checker flags each mesh collision (its
    disabled pairs hide none) and no mesh-free configuration (the pieces are those convex meshes; capsules
    flagged 35-47 % of the mesh-free ones, the flat-ended wrist primitives about one in ten)."""
    from reference import PandaMeshJudge

    robot, model = _panda_model()
    checker = CollisionChecker.from_urdf(
        model, robot.chain, positions={"panda_finger_joint1": 0.0, "panda_finger_joint2": 0.0}
    )
    judge = PandaMeshJudge(robot.chain.joint_names, robot.chain.middle)
    Q = robot.chain.bounds.sample(np.random.default_rng(5), 2000)
    mesh = np.array([judge.self_collides(q) for q in Q])
    ours = np.array([checker.in_collision(q) for q in Q])
    assert 0.05 < mesh.mean() < 0.5
    assert ours[mesh].all(), np.flatnonzero(mesh & ~ours)
    assert ours[~mesh].sum() <= 2, np.flatnonzero(ours & ~mesh)  # measured: 0 of 2000


def test_the_pair_computation_is_a_function_of_the_bodies_alone():
    """disabled_pairs.compute_disabled_pairs reads the robot's bodies only: a checker's world objects and
    its own disabled pairs change neither the answer nor are changed by it (nothing swapped and restored)."""
    bare = slider_checker(disabled_pairs=[])
    reasons = compute_disabled_pairs(bare, samples=200)
    assert reasons == {
        frozenset({"base", "slider"}): "adjacent",
        frozenset({"slider", "block"}): "adjacent",
    }  # the block meets the base in some of the samples, not all: checked
    busy = slider_checker(disabled_pairs=[("base", "block")])
    busy.add_object("ball", [(Geometry(SPHERE, (1.0,)), np.eye(4))])  # around the base: every q collides with it
    assert compute_disabled_pairs(busy, samples=200) == reasons == busy.compute_disabled_pairs(samples=200)
    assert busy.enabled_pairs == [] and busy.disabled_source == "given" and busy.object_names == ["ball"]
    assert adjacent_pairs(busy) == {frozenset({"base", "slider"}), frozenset({"slider", "block"})}


PANDA_ENABLED_PAIRS = {
    frozenset(pair.split())
    for pair in (
        "panda_hand panda_link0",
        "panda_hand panda_link1",
        "panda_hand panda_link2",
        "panda_hand panda_link5",
        "panda_leftfinger panda_link0",
        "panda_leftfinger panda_link1",
        "panda_leftfinger panda_link2",
        "panda_leftfinger panda_link5",
        "panda_link0 panda_link5",
        "panda_link0 panda_link6",
        "panda_link0 panda_link7",
        "panda_link0 panda_rightfinger",
        "panda_link1 panda_link5",
        "panda_link1 panda_link6",
        "panda_link1 panda_link7",
        "panda_link1 panda_rightfinger",
        "panda_link2 panda_link5",
        "panda_link2 panda_link6",
        "panda_link2 panda_link7",
        "panda_link2 panda_rightfinger",
        "panda_link5 panda_link7",
        "panda_link5 panda_rightfinger",
    )
}
"""The shipped Panda's checked link pairs, computed from its convex pieces (as the capsules gave, plus
panda_link5-panda_link7, which the capsules made touch at mid-limits and the makers' meshes do not)."""


def test_the_panda_checks_the_same_link_pairs_as_before_and_link5_link7():
    robot, model = _panda_model()
    checker = CollisionChecker.from_urdf(model, robot.chain, cache=False)
    assert checker.disabled_source == "computed"
    assert {frozenset(pair) for pair in checker.enabled_pairs} == PANDA_ENABLED_PAIRS


def test_batched_and_several_solutions_answers_are_free_on_the_makers_meshes():
    """solve_batch and solutions with the checker as their acceptance test, targets whose configurations are
    free: every answer free of self-collision by Pinocchio + coal on example-robot-data's meshes and on the
    pose by Pinocchio's FK."""
    from reference import PandaMeshJudge, ReferenceChain

    robot, model = _panda_model()
    fingers = {"panda_finger_joint1": 0.0, "panda_finger_joint2": 0.0}
    checker = CollisionChecker.from_urdf(model, robot.chain, positions=fingers)
    judge = PandaMeshJudge(robot.chain.joint_names, robot.chain.middle)
    reference = ReferenceChain(robot.urdf_path, robot.chain.base_link, robot.chain.tip_link, robot.chain.joint_names)
    solver = IKSolver(robot.chain, robot.network)
    solver.warm_up()
    Q = [q for q in robot.chain.bounds.sample(np.random.default_rng(8), 80) if not judge.self_collides(q)][:30]
    T = robot.chain.forward(np.array(Q))
    batch = solver.solve_batch(T, accept=checker.free, timeout_s=3.0)
    assert batch.success.mean() >= 0.9
    for q, T_k in zip(batch.q[batch.success], T[batch.success]):
        assert not judge.self_collides(q)
        assert max(reference.errors(q, T_k)) < 1e-5
    several = solver.solutions(T[0], count=8, accept=checker.free, timeout_s=0.5)
    assert len(several.q) >= 2
    for q in several.q:
        assert not judge.self_collides(q) and max(reference.errors(q, T[0])) < 1e-5
