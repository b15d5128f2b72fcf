"""The collision layer's attached bodies and in-memory meshes, on analytic cases: an object held by a link
moves with it (also with a finger's joint), is checked against the other links, the world and other held
objects but not against its own link and touch links; a mesh cube collides as the box it bounds, by its
surface; bad meshes and links are refused by name; checks from many threads at once agree with serial ones."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from ik_neural.collision import CollisionChecker
from ik_neural.urdf_model import BOX, SPHERE, Geometry, Plane, TriangleMesh, UrdfModel

pytestmark = pytest.mark.unit

# floor --lift (prismatic z, outside the chain)--> base (sphere r 0.1 at its origin) --x (prismatic along x,
# q in m)--> slider (a 0.1 m cube at its origin); tool fixed 0.5 m above slider (the chain's tip, no
# geometry); finger --grip (prismatic along y, outside the chain)--> below slider, its only geometry a tiny
# sphere 5 m down, out of the way. floor is above the base through a movable joint: the chain does not place it.
HOLDER_URDF = """<?xml version="1.0"?>
<robot name="holder">
  <link name="floor"/>
  <link name="base"><collision><geometry><sphere radius="0.1"/></geometry></collision></link>
  <link name="slider"><collision><geometry><box size="0.1 0.1 0.1"/></geometry></collision></link>
  <link name="tool"/>
  <link name="finger"><collision><origin xyz="0 0 -5"/><geometry><sphere radius="0.01"/></geometry></collision></link>
  <joint name="lift" type="prismatic">
    <parent link="floor"/><child link="base"/><axis xyz="0 0 1"/><limit lower="0" upper="1" effort="1" velocity="1"/>
  </joint>
  <joint name="x" type="prismatic">
    <parent link="base"/><child link="slider"/><axis xyz="1 0 0"/><limit lower="-1" upper="3" effort="1" velocity="1"/>
  </joint>
  <joint name="tool_joint" type="fixed"><parent link="slider"/><child link="tool"/><origin xyz="0 0 0.5"/></joint>
  <joint name="grip" type="prismatic">
    <parent link="slider"/><child link="finger"/><axis xyz="0 1 0"/><limit lower="0" upper="0.5" effort="1" velocity="1"/>
  </joint>
</robot>
"""


@pytest.fixture(scope="module")
def checker() -> CollisionChecker:
    model = UrdfModel.parse(HOLDER_URDF)
    return CollisionChecker.from_urdf(model, model.chain("base", "tool"), disabled_pairs=[])


def _at(x=0.0, y=0.0, z=0.0) -> np.ndarray:
    T = np.eye(4)
    T[:3, 3] = [x, y, z]
    return T


def _q(x: float) -> np.ndarray:
    return np.array([x])


def cube_mesh(edge: float) -> TriangleMesh:
    """A closed cube of edge ``edge`` centred at the origin: 8 vertices, 12 outward triangles."""
    h = edge / 2
    vertices = np.array([[x, y, z] for x in (-h, h) for y in (-h, h) for z in (-h, h)])
    faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    triangles = np.array([t for a, b, c, d in faces for t in ((a, b, c), (a, c, d))])
    return TriangleMesh(vertices, triangles)


def test_an_attached_sphere_moves_with_its_link_against_a_world_box(checker):
    """A sphere r 0.05 held at the tool (0.5 m above the slider at x = q), a 0.1 m world cube at x = 1,
    z = 0.5: they touch at |q - 1| = 0.1."""
    ball = checker.attached_body("ball", "tool", [(Geometry(SPHERE, (0.05,)), np.eye(4))])
    checker.add_object("box", [(Geometry(BOX, (0.1, 0.1, 0.1)), _at(1.0, 0.0, 0.5))])
    try:
        for q, colliding in [(0.5, False), (0.89, False), (0.91, True), (1.0, True), (1.09, True), (1.11, False)]:
            assert checker.in_collision(_q(q), attached=[ball]) is colliding, q
            assert checker.colliding_pairs(_q(q), attached=[ball]) == ([("ball", "box")] if colliding else []), q
            assert not checker.in_collision(_q(q))  # the robot alone never reaches the box
        # A world object of the held object's name is the same object: no longer in the world.
        ghost = checker.attached_body("box", "tool", [(Geometry(SPHERE, (0.05,)), np.eye(4))])
        assert not checker.in_collision(_q(1.0), attached=[ghost])
        assert not checker.in_collision(_q(1.0), attached=[ghost, ball])  # nor do other held bodies meet it there
    finally:
        checker.clear()


def test_an_attached_body_meets_other_links_but_not_its_own_or_its_touch_links(checker):
    """A sphere r 0.3 held by the tool, 0.5 m below it (around the slider's cube): it overlaps the slider
    (another link) always and the base's sphere (r 0.1 at 0) while |q| < 0.4."""
    shapes = [(Geometry(SPHERE, (0.3,)), _at(z=-0.5))]
    held = checker.attached_body("held", "tool", shapes)
    assert checker.colliding_pairs(_q(1.0), attached=[held]) == [("held", "slider")]
    assert checker.colliding_pairs(_q(0.3), attached=[held]) == [("held", "base"), ("held", "slider")]
    touching = checker.attached_body("held", "tool", shapes, touch_links=["slider"])
    assert not checker.in_collision(_q(1.0), attached=[touching])
    assert not checker.in_collision(_q(0.41), attached=[touching])
    assert checker.colliding_pairs(_q(0.39), attached=[touching]) == [("held", "base")]
    # Held by the slider itself: the slider is its own link, never checked against it.
    on_slider = checker.attached_body("held", "slider", [(Geometry(SPHERE, (0.3,)), np.eye(4))])
    assert not checker.in_collision(_q(1.0), attached=[on_slider])


def test_a_body_held_by_a_finger_follows_the_finger_joint(checker):
    """A sphere r 0.05 on the finger, at (q, grip, 0); a world sphere r 0.05 at (0, 0.4, 0)."""
    pad = checker.attached_body("pad", "finger", [(Geometry(SPHERE, (0.05,)), np.eye(4))])
    checker.add_object("ball", [(Geometry(SPHERE, (0.05,)), _at(0.0, 0.4, 0.0))])
    try:
        assert checker.in_collision(_q(0.0), {"grip": 0.35}, attached=[pad])
        assert not checker.in_collision(_q(0.0), {"grip": 0.29}, attached=[pad])
        assert not checker.in_collision(_q(0.0), attached=[pad])  # held at mid-limits, 0.25
        np.testing.assert_allclose(
            checker.link_pose(_q(0.7), "finger", {"grip": 0.35}), _at(0.7, 0.35, 0.0), atol=1e-12
        )
        np.testing.assert_allclose(checker.link_pose(_q(0.7), "tool"), _at(0.7, 0.0, 0.5), atol=1e-12)
    finally:
        checker.clear()


def test_bodies_held_by_different_links_meet_and_touch_links_concern_robot_links_only(checker):
    """As MoveIt's FCL checker: objects held by one link never meet; by different links they do, whatever
    their touch links name."""
    on_tool = checker.attached_body("a", "tool", [(Geometry(SPHERE, (0.3,)), _at(z=-0.25))], touch_links=["slider"])
    on_finger = checker.attached_body(
        "b", "finger", [(Geometry(SPHERE, (0.3,)), np.eye(4))], touch_links=["slider", "tool"]
    )
    assert checker.colliding_pairs(_q(2.0), attached=[on_tool, on_finger]) == [("a", "b")]
    also_on_tool = checker.attached_body(
        "c", "tool", [(Geometry(SPHERE, (0.3,)), _at(z=-0.25))], touch_links=["slider"]
    )
    assert checker.colliding_pairs(_q(2.0), attached=[on_tool, also_on_tool]) == []


def test_a_plane_is_two_sided_and_unbounded(checker):
    """The plane z = 0.3 (normal (0, 0, 2), offset 0.6: normalised as coal does), far along x too: the
    0.3 m sphere held 0.5 m below the tool (at z 0) crosses it; lifted 0.7 m it is above it, apart; the
    object's pose moves the plane with it."""
    checker.add_object("plane", [(Plane((0.0, 0.0, 2.0), 0.6), _at(x=100.0))])
    try:
        held = checker.attached_body("held", "tool", [(Geometry(SPHERE, (0.3,)), _at(z=-0.5))], touch_links=["slider"])
        assert checker.colliding_pairs(_q(2.0), attached=[held]) == [("held", "plane")]
        above = checker.attached_body("held", "tool", [(Geometry(SPHERE, (0.3,)), _at(z=0.2))])
        assert not checker.in_collision(_q(2.0), attached=[above])  # centre z 0.7, bottom 0.4 > 0.3
        assert not checker.in_collision(_q(-0.5))  # the robot (cube top 0.05, base 0.1) stays below it
        checker.add_object("plane", [(Plane((0.0, 0.0, 1.0), 0.3), _at(z=-0.3))])  # now z = 0: through the robot
        assert ("slider", "plane") in checker.colliding_pairs(_q(-0.5)) and (
            "base",
            "plane",
        ) in checker.colliding_pairs(_q(-0.5))
    finally:
        checker.clear()
    for normal, offset, message in [
        ((0.0, 0.0, 0.0), 0.0, "not all 0"),
        ((0.0, np.nan, 1.0), 0.0, "finite"),
        ((0.0, 0.0, 1.0), np.inf, "offset inf is not finite"),
    ]:
        with pytest.raises(ValueError, match=message):
            Plane(normal, offset)


def test_a_link_the_chain_does_not_place_is_refused_by_name(checker):
    with pytest.raises(ValueError, match=r"attached object 'ball': link 'floor' is not placed by the chain"):
        checker.attached_body("ball", "floor", [(Geometry(SPHERE, (0.05,)), np.eye(4))])
    with pytest.raises(ValueError, match=r"link 'nosuch' is not placed"):
        checker.link_pose(_q(0.0), "nosuch")
    assert checker.places("finger") and checker.places("tool") and not checker.places("floor")
    with pytest.raises(ValueError, match=r"attached object 'ball': a shape's pose must be a finite"):
        checker.attached_body("ball", "tool", [(Geometry(SPHERE, (0.05,)), _at(np.nan))])


def test_a_mesh_cube_collides_as_the_box_it_bounds_by_its_surface(checker):
    """A world mesh cube of edge 0.2 at x = 1 against the slider's 0.1 m cube: as the box of the same size
    while their surfaces cross (|q - 1| <= 0.15); the slider wholly inside the mesh (q = 1) does not touch
    its surface, as in MoveIt (FCL's BVH meshes are surfaces)."""
    mesh = cube_mesh(0.2)
    for q, expected in [(0.8, False), (0.84, False), (0.86, True), (0.9, True), (1.14, True), (1.16, False)]:
        for shape in (mesh, Geometry(BOX, (0.2, 0.2, 0.2))):
            checker.add_object("cube", [(shape, _at(1.0))])
            assert checker.colliding_pairs(_q(q)) == ([("slider", "cube")] if expected else []), (q, type(shape))
    checker.add_object("cube", [(mesh, _at(1.0))])
    assert not checker.in_collision(_q(1.0))
    checker.add_object("cube", [(Geometry(BOX, (0.2, 0.2, 0.2)), _at(1.0))])
    assert checker.in_collision(_q(1.0))
    checker.clear()
    # Held, the same mesh is the same box: 0.5 m below the tool it sits around the slider, against the base.
    for shape in (mesh, Geometry(BOX, (0.2, 0.2, 0.2))):
        held = checker.attached_body("held", "tool", [(shape, _at(z=-0.5))], touch_links=["slider"])
        for q, expected in [(0.19, True), (0.21, False), (-0.19, True), (-0.21, False)]:
            assert checker.in_collision(_q(q), attached=[held]) is expected, (q, type(shape))


@pytest.mark.parametrize(
    "vertices, triangles, message",
    [
        ([[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 1, 3]], r"triangles\[0\] = \[0, 1, 3\] indexes past the 3 vertices"),
        ([[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 1, -1]], r"triangles\[0\] = \[0, 1, -1\] indexes past"),
        ([[0, 0, 0], [1, np.inf, 0], [0, 1, 0]], [[0, 1, 2]], r"vertices\[1\] = \[1.0, inf, 0.0\] is not finite"),
        (
            [[0, 0, 0], [1, 0, 0], [0, 1, 0]],
            np.empty((0, 3), dtype=int),
            r"triangles is empty: a mesh needs at least one",
        ),
        ([[0, 0], [1, 0]], [[0, 1, 1]], r"vertices must be \(V, 3\)"),
        ([[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0.0, 1.0, 2.0]], r"triangles must be \(T, 3\) vertex indices"),
    ],
)
def test_bad_meshes_are_refused_naming_the_field(vertices, triangles, message):
    with pytest.raises(ValueError, match=message):
        TriangleMesh(np.array(vertices, dtype=float), np.array(triangles))


def test_checks_from_many_threads_agree_with_serial_ones(checker):
    """The node serves requests from several threads, each with its own attached bodies, while world
    objects change: every answer is the one a serial check gives."""
    bodies = [
        checker.attached_body(f"held{k}", "tool", [(Geometry(SPHERE, (0.05 + 0.05 * k,)), np.eye(4))]) for k in range(4)
    ]
    checker.add_object("box", [(Geometry(BOX, (0.1, 0.1, 0.1)), _at(1.0, 0.0, 0.5))])
    qs = np.linspace(0.4, 1.6, 61)
    expected = {k: [checker.in_collision(_q(q), attached=[b]) for q in qs] for k, b in enumerate(bodies)}
    assert any(any(v) for v in expected.values()) and not all(all(v) for v in expected.values())
    results: dict[int, list] = {}
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            results[k] = [[checker.in_collision(_q(q), attached=[bodies[k]]) for q in qs] for _ in range(20)]
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for _ in range(50):  # world changes meanwhile, under other names
        checker.add_object("far", [(Geometry(SPHERE, (0.1,)), _at(10.0))])
        checker.remove_object("far")
    for thread in threads:
        thread.join()
    checker.clear()
    assert not errors, errors
    for k in range(4):
        assert all(run == expected[k] for run in results[k]), k


def test_chain_links_anchor_places_links_below_the_chain_through_other_joints():
    """ChainLinks.anchor, the one home of 'where a link is': FK's links as they are, the finger below the
    slider through 'grip' (outside the chain) at the position given (0 when none), floor (above the base
    through a movable joint) nowhere; the checker's link_pose agrees."""
    model = UrdfModel.parse(HOLDER_URDF)
    chain = model.chain("base", "tool")
    links = model.chain_links(chain)
    assert links.anchor("tool", {}) is links.links["tool"] and links.anchor("floor", {"grip": 0.2}) is None
    finger = links.anchor("finger", {"grip": 0.2})
    assert finger.frame == 0  # joint x's frame
    np.testing.assert_allclose(finger.T_frame_link, _at(y=0.2))
    np.testing.assert_allclose(links.anchor("finger", {}).T_frame_link, np.eye(4))
    checker = CollisionChecker.from_urdf(model, chain, disabled_pairs=[], positions={"grip": 0.2})
    np.testing.assert_allclose(checker.link_pose(_q(1.5), "finger"), _at(1.5, 0.2))
    np.testing.assert_allclose(checker.link_pose(_q(1.5), "finger", {"grip": 0.4}), _at(1.5, 0.4))
