"""The planning scene without a ROS graph: collision_object and attached_collision_object messages (plain
Python objects, no rclpy.init, no node) change the checker's world and the held objects, or are ignored
with a reason naming the object; the checker's answers (real coal checks) follow.

The robot is the Panda with a 'world' frame above its base, 0.5 m off and turned 45 degrees about z.
"""

import math

import numpy as np
import pytest
from moveit_msgs.msg import AttachedCollisionObject, CollisionObject
from shape_msgs.msg import SolidPrimitive

from urdf_variants import panda_urdf, with_world_frame

from ik_neural.collision import CollisionChecker
from ik_neural.geometry import transform
from ik_neural.ros.messages import matrix_to_pose
from ik_neural.ros.request import CurrentState, RequestContext
from ik_neural.ros.scene import Scene
from ik_neural.ros.settings import NodeSettings
from ik_neural.urdf_model import Geometry, UrdfModel

SETTINGS = NodeSettings(group_name="panda_arm", max_request_items=5)
T_WORLD_BASE = transform(
    np.array(
        [
            [math.cos(math.pi / 4), -math.sin(math.pi / 4), 0],
            [math.sin(math.pi / 4), math.cos(math.pi / 4), 0],
            [0, 0, 1],
        ]
    ),
    [0.5, -0.2, 0.75],
)


@pytest.fixture(scope="module")
def context():
    model = UrdfModel.parse(with_world_frame(panda_urdf(), "0.5 -0.2 0.75", f"0 0 {math.pi / 4!r}"))
    chain = model.chain("panda_link0", "panda_link8")
    # Few samples: the pairs only need to leave the configurations used here free of self-collision.
    checker = CollisionChecker.from_urdf(model, chain, samples=300, cache=False)
    return RequestContext.of_model(model, chain, SETTINGS, collision=checker)


@pytest.fixture()
def scene(context):
    context.collision.clear()
    return Scene(context)


def _current(context, q=None):
    return CurrentState(context.chain.middle.copy() if q is None else np.asarray(q, dtype=np.float64), True)


def _box(object_id, T_frame_object, frame="panda_link0", size=0.1, operation=CollisionObject.ADD):
    msg = CollisionObject(id=object_id, operation=operation)
    msg.header.frame_id = frame
    msg.pose = matrix_to_pose(T_frame_object)
    if operation in (CollisionObject.ADD, CollisionObject.APPEND):
        msg.primitives = [SolidPrimitive(type=SolidPrimitive.BOX, dimensions=[size] * 3)]
    return msg


def _at(p):
    return transform(p=np.asarray(p, dtype=np.float64))


def _hand(context, q=None):
    q = context.chain.middle if q is None else q
    return context.collision.link_pose(q, "panda_hand")


def _hits(checker, q, name, attached=()):
    """Whether anything collides with ``name`` (a world object or an attached body) at q."""
    return any(name in pair for pair in checker.colliding_pairs(q, attached=attached))


def test_add_remove_and_the_checkers_answers_follow(context, scene):
    checker, q = context.collision, context.chain.middle
    assert checker.free(q)
    hand = _hand(context)[:3, 3]
    assert scene.collision_object(_box("box", _at(hand))) is None
    assert (
        checker.object_names == ["box"] and not checker.free(q) and ("panda_hand", "box") in checker.colliding_pairs(q)
    )
    assert scene.collision_object(_box("box", np.eye(4), operation=CollisionObject.REMOVE)) is None
    assert checker.object_names == [] and checker.free(q)
    # Given in a frame fixed to the base ('world', and '/world' as tf1 wrote it): the same place.
    for frame in ("world", "/world"):
        assert scene.collision_object(_box("box", T_WORLD_BASE @ _at(hand), frame=frame)) is None
        np.testing.assert_allclose(checker.world_object("box").T_base_object, _at(hand), atol=1e-12)
        assert not checker.free(q)
    scene.collision_object(_box("other", _at([2.0, 0.0, 0.0])))
    assert scene.collision_object(_box("", np.eye(4), operation=CollisionObject.REMOVE)) is None  # empty id: all
    assert checker.object_names == [] and checker.free(q)


def test_move_and_append_keep_the_objects_shapes_in_its_frame(context, scene):
    checker, q = context.collision, context.chain.middle
    hand = _hand(context)[:3, 3]
    scene.collision_object(_box("box", _at(hand)))
    assert scene.collision_object(_box("box", _at(hand + [0.0, 0.0, 1.0]), operation=CollisionObject.MOVE)) is None
    assert checker.free(q)
    np.testing.assert_allclose(checker._world.centers[0], hand + [0.0, 0.0, 1.0], atol=1e-12)
    # APPEND at the hand: the new box joins the old one, placed relative to the object's (moved) frame.
    assert scene.collision_object(_box("box", _at(hand), operation=CollisionObject.APPEND)) is None
    item = checker.world_object("box")
    np.testing.assert_allclose(item.T_base_object, _at(hand + [0.0, 0.0, 1.0]), atol=1e-12)
    np.testing.assert_allclose(item.shapes[1][1], _at([0.0, 0.0, -1.0]), atol=1e-12)
    assert len(item.solids) == 2 and not checker.free(q)
    # MOVE takes both along; APPEND of an unknown id adds it.
    scene.collision_object(_box("box", _at(hand + [0.0, 0.0, 2.0]), operation=CollisionObject.MOVE))
    assert checker.free(q)
    np.testing.assert_allclose(checker._world.centers[:, 2], [hand[2] + 2.0, hand[2] + 1.0], atol=1e-12)
    assert scene.collision_object(_box("new", _at(hand), operation=CollisionObject.APPEND)) is None
    assert checker.object_names == ["box", "new"] and not checker.free(q)


def test_bad_collision_objects_are_ignored_naming_the_object(context, scene):
    checker = context.collision
    scene.collision_object(_box("box", _at([2.0, 0.0, 0.0])))
    cases = [
        (
            _box("ghost", np.eye(4), operation=CollisionObject.MOVE),
            "MOVE of collision object 'ghost', which was never added",
        ),
        (
            _box("box", np.eye(4), frame="camera"),
            "collision object 'box': frame 'camera' is not the base 'panda_link0'",
        ),
        (_box("box", np.eye(4), operation=7), "collision object 'box': unknown operation 7"),
        (_box("x" * 1000, _at([1.7e308, -1.7e308, 0.0]), frame="world"), "world object 'xxxxxxxx"),
    ]
    for msg, expected in cases:
        reason = scene.collision_object(msg)
        assert reason is not None and expected in reason and len(reason) < 300, (expected, reason)
    bad = _box("box", np.eye(4))
    bad.primitives[0].dimensions = [1.0]
    assert "collision object 'box': primitives[0]" in scene.collision_object(bad)
    # Nothing ignored changed the world.
    assert checker.object_names == ["box"]
    np.testing.assert_allclose(checker.world_object("box").T_base_object, _at([2.0, 0.0, 0.0]))


def _attached(object_id, link="panda_hand", radius=None, operation=CollisionObject.ADD, touch_links=(), frame=""):
    """An AttachedCollisionObject: with a sphere of ``radius`` at the link's origin, or no shapes."""
    msg = CollisionObject(id=object_id, operation=operation)
    msg.header.frame_id = frame
    msg.pose = matrix_to_pose(np.eye(4))
    if radius is not None:
        msg.primitives = [SolidPrimitive(type=SolidPrimitive.SPHERE, dimensions=[radius])]
    return AttachedCollisionObject(link_name=link, object=msg, touch_links=list(touch_links))


def test_held_objects_with_shapes_collide_and_detach_into_the_world_where_they_are(context, scene):
    checker, chain = context.collision, context.chain
    q, q_other = chain.middle, chain.middle + 0.3
    assert scene.attached_collision_object(_attached("ball", radius=0.3), _current(context)) is None
    (body,) = scene.held_bodies()
    assert (body.name, body.link) == ("ball", "panda_hand")
    assert scene.held_bodies(excluding={"ball"}) == ()
    # 0.3 m about the hand reaches panda_link7 (not a touch link) at every configuration.
    assert checker.in_collision(q, attached=[body]) and _hits(checker, q, "ball", [body])
    assert checker.object_names == []
    # REMOVE: back into the world where the hand holds it now (q_other).
    assert (
        scene.attached_collision_object(_attached("ball", operation=CollisionObject.REMOVE), _current(context, q_other))
        is None
    )
    assert scene.held_bodies() == () and checker.object_names == ["ball"]
    np.testing.assert_allclose(checker.world_object("ball").T_base_object, _hand(context, q_other), atol=1e-12)
    assert _hits(checker, q_other, "ball")


def test_the_collision_free_test_of_a_request_checks_the_world_and_every_held_object(context, scene):
    """A request's acceptance test: q against the world and the held objects, the request's own first (a
    held object it names is its own, not the scene's); the checker's verdicts, whatever the scene holds."""
    checker, q = context.collision, context.chain.middle
    assert checker.free(q) and scene.collision_free((), None)(q)
    scene.attached_collision_object(_attached("ball", radius=0.3), _current(context))
    assert not scene.collision_free((), None)(q)  # the held ball reaches panda_link7
    # The request holds its own, small "ball" 0.2 m beyond the hand: the scene's is not checked.
    small = checker.attached_body("ball", "panda_hand", [(Geometry("sphere", (0.01,)), _at([0.0, 0.0, 0.2]))])
    assert not checker.in_collision(q, attached=[small])
    assert scene.collision_free((small,), {})(q)
    # A world box around the hand collides whatever is held.
    scene.collision_object(_box("box", _hand(context, q), size=0.05))
    assert not scene.collision_free((small,), None)(q)


def test_attach_without_shapes_takes_the_world_object_onto_the_link(context, scene):
    checker, chain = context.collision, context.chain
    q, q_other = chain.middle, chain.middle + 0.3
    T_base_box = _hand(context, q) @ _at([0.0, 0.0, 0.3])
    scene.collision_object(_box("box", T_base_box))
    assert (
        scene.attached_collision_object(_attached("box", touch_links=["panda_leftfinger"]), _current(context, q))
        is None
    )
    assert checker.object_names == [] and checker.free(q)
    (body,) = scene.held_bodies()
    assert body.touch_links == frozenset({"panda_leftfinger"})
    np.testing.assert_allclose(body.T_link_solid[0], _at([0.0, 0.0, 0.3]), atol=1e-12)
    # Detached at another configuration: where the hand has carried it.
    scene.attached_collision_object(_attached("box", operation=CollisionObject.REMOVE), _current(context, q_other))
    np.testing.assert_allclose(
        checker.world_object("box").T_base_object, _hand(context, q_other) @ _at([0.0, 0.0, 0.3]), atol=1e-12
    )
    assert scene.held_bodies() == ()


def test_detach_by_link_or_all(context, scene):
    current = _current(context)
    for name, link in (("a", "panda_hand"), ("b", "panda_hand"), ("c", "panda_link3")):
        assert scene.attached_collision_object(_attached(name, link=link, radius=0.01), current) is None
    scene.attached_collision_object(_attached("", link="panda_hand", operation=CollisionObject.REMOVE), current)
    assert [body.name for body in scene.held_bodies()] == ["c"]
    assert context.collision.object_names == ["a", "b"]
    scene.attached_collision_object(_attached("", link="", operation=CollisionObject.REMOVE), current)
    assert scene.held_bodies() == () and context.collision.object_names == ["a", "b", "c"]


def test_bad_attached_objects_are_ignored_naming_the_object_and_field(context, scene):
    current = _current(context)
    scene.collision_object(_box("box", _at([2.0, 0.0, 0.0])))
    cases = [
        (_attached("ghost"), "attached object 'ghost' has no shapes and no world object has that id"),
        (_attached("ghost", operation=CollisionObject.REMOVE), "attached object 'ghost' is not held"),
        (_attached("box", link="nosuch"), "attached object 'box': link_name 'nosuch' is not a link this node places"),
        (_attached("box", touch_links=["panda_link1"] * 6), "'box': 6 touch_links, more than max_request_items (5)"),
        (
            _attached("box", operation=CollisionObject.MOVE),
            "attached object 'box': operation b'\\x03' is not ADD or REMOVE",
        ),
        (_attached("ball", radius=0.1, link="nosuch"), "(object 'ball'): link_name: link 'nosuch' is not placed"),
        (_attached("ball", radius=0.1, frame="camera"), "object.header.frame_id: link 'camera' is not placed"),
        (_attached("ball", radius=0.1, touch_links=["x"] * 6), "touch_links has 6 entries"),
    ]
    for msg, expected in cases:
        reason = scene.attached_collision_object(msg, current)
        assert reason is not None and expected in reason and len(reason) < 1000, (expected, reason)
    # Nothing ignored changed the scene.
    assert scene.held_bodies() == () and context.collision.object_names == ["box"]
