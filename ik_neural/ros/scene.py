"""The planning scene as move_group hears it, pure: ``moveit_msgs/CollisionObject`` messages (topic
collision_object) add, append to, move and remove world objects; ``moveit_msgs/AttachedCollisionObject``
messages (topic attached_collision_object) hold objects on robot links and put them back into the world.
Each message becomes operations on the node's ``CollisionChecker``, or the reason it is ignored (one line
naming the object id and the field or frame; every value quoted back through ``echo``).

One copy of the world: the checker's. Its ``WorldObject`` keeps each object's shapes in the object's frame
and the object's pose, which is what MOVE, APPEND and a detach need, and every check reads the checker's
world anyway; the scene only keeps what the checker does not: the objects the robot holds (the checker
takes attached bodies per call, as MoveIt's robot state carries them). The scene is the only thing that
changes the checker's world.

No node and no DDS: messages are plain Python objects. Thread safety: one lock around every change, so a
message is applied whole (an attach takes an object off the world and holds it in one step), and service
threads read the held bodies (``held_bodies``) while subscriptions change the scene. Poses in the chain's
base frame unless named otherwise; metres, radians.
"""

from __future__ import annotations

import threading
from typing import AbstractSet, Mapping, Optional

import numpy as np
from moveit_msgs.msg import AttachedCollisionObject, CollisionObject

from ik_neural.collision import AttachedBody
from ik_neural.echo import echo
from ik_neural.query import AcceptanceTest
from ik_neural.ros.messages import collision_object_shapes, object_pose_to_matrix
from ik_neural.ros.request import CurrentState, HeldObject, Refusal, RequestContext, held_object_of


class Scene:
    """The world objects (in ``context.collision``) and the held objects of one node. ``collision_object``
    and ``attached_collision_object`` apply a message and return None, or the reason it was ignored."""

    def __init__(self, context: RequestContext) -> None:
        """``context``: the node's request context; its ``collision`` checker must be set."""
        self._context = context
        self._checker = context.collision
        self._lock = threading.Lock()
        # Objects the robot holds: by id, each with its checker body (an immutable value, replaced as a whole).
        self._held: dict[str, tuple[HeldObject, AttachedBody]] = {}

    def held_bodies(self, excluding: AbstractSet[str] = frozenset()) -> tuple[AttachedBody, ...]:
        """The checker's bodies of the held objects, but those named in ``excluding`` (a request's robot state
        holds objects of those names itself)."""
        with self._lock:
            return tuple(body for name, (_, body) in self._held.items() if name not in excluding)

    def collision_free(
        self, attached: tuple[AttachedBody, ...], positions: Optional[Mapping[str, float]]
    ) -> AcceptanceTest:
        """The acceptance test of an avoid_collisions request: q (dof,) free of self-collision, of the world
        objects and of the held ones: the request's own (``attached``, its robot state's), then those held
        through attached_collision_object that it does not name; the joints outside the chain at
        ``positions`` (a request's robot state; None or empty: the checker's)."""
        checker, bodies = self._checker, (*attached, *self.held_bodies(excluding={body.name for body in attached}))
        positions = positions or None

        def accept(q: np.ndarray) -> bool:
            return not checker.in_collision(q, positions, bodies)

        return accept

    # ------------------------------------------------------------------ collision_object

    def collision_object(self, msg: CollisionObject) -> Optional[str]:
        """ADD (replace), REMOVE (an empty id: all), APPEND (shapes added to the object) or MOVE (a new pose)
        a world object of primitives, meshes and planes; its frame must be the base or a frame fixed to it
        (there is no TF listener). None, or why the message is ignored."""
        try:
            with self._lock:
                self._apply_collision_object(msg)
        except ValueError as error:
            return str(error)
        return None

    def _apply_collision_object(self, msg: CollisionObject) -> None:
        checker, chain = self._checker, self._context.chain
        frame = msg.header.frame_id[1:] if msg.header.frame_id.startswith("/") else msg.header.frame_id
        T_base_frame = self._context.T_base_frame.get(frame or chain.base_link)
        if T_base_frame is None:
            raise ValueError(
                f"collision object {echo(msg.id)}: frame {echo(msg.header.frame_id)} is not the base "
                f"{chain.base_link!r} or a frame fixed to it; this node has no TF listener"
            )
        if msg.operation == CollisionObject.REMOVE:
            if msg.id:
                checker.remove_object(msg.id)
            else:
                checker.clear()
            return
        if msg.operation == CollisionObject.MOVE:
            if not checker.move_object(msg.id, T_base_frame @ object_pose_to_matrix(msg.pose)):
                raise ValueError(f"MOVE of collision object {echo(msg.id)}, which was never added")
            return
        if msg.operation not in (CollisionObject.ADD, CollisionObject.APPEND):
            raise ValueError(f"collision object {echo(msg.id)}: unknown operation {msg.operation}")
        T_frame_object, shapes = collision_object_shapes(msg)
        with np.errstate(over="ignore", invalid="ignore"):  # an overflowed pose is refused by add_object
            T_base_object = T_base_frame @ T_frame_object
        old = checker.world_object(msg.id) if msg.operation == CollisionObject.APPEND else None
        if old is not None:  # the new shapes join the old ones, in the old object's frame
            T_old_new = np.linalg.inv(old.T_base_object) @ T_base_object
            T_base_object, shapes = old.T_base_object, [*old.shapes, *((g, T_old_new @ T) for g, T in shapes)]
        checker.add_object(msg.id, shapes, T_base_object=T_base_object)

    # ------------------------------------------------------------------ attached_collision_object

    def attached_collision_object(self, msg: AttachedCollisionObject, current: CurrentState) -> Optional[str]:
        """As move_group: ADD with shapes holds a new object on link_name; ADD without shapes takes world
        object object.id off the world onto link_name where it is now (pymoveit2's attach_collision_object);
        REMOVE puts object.id (empty: every object of link_name, or every object) back into the world where
        it is now. "Now" is ``current`` (the joint state heard; the other joints at the checker's positions).
        None, or why the message is ignored."""
        try:
            with self._lock:
                if msg.object.operation == CollisionObject.REMOVE:
                    self._detach(msg, current)
                elif msg.object.operation == CollisionObject.ADD:
                    self._attach(msg, current)
                else:
                    raise ValueError(
                        f"attached object {echo(msg.object.id)}: operation {msg.object.operation!r} is not ADD or "
                        "REMOVE"
                    )
        except ValueError as error:
            return str(error)
        return None

    def _detach(self, msg: AttachedCollisionObject, current: CurrentState) -> None:
        """Each object named back into the world, where its link holds it at ``current``."""
        object_id, link = msg.object.id, msg.link_name
        names = (
            [object_id] if object_id else [name for name, (held, _) in self._held.items() if link in ("", held.link)]
        )
        for name in names:
            held, _ = self._held.pop(name, (None, None))
            if held is None:
                raise ValueError(f"attached object {echo(name)} is not held")
            T_base_object = self._checker.link_pose(current.q, held.link) @ held.T_link_object
            self._checker.add_object(name, held.shapes, T_base_object=T_base_object)

    def _attach(self, msg: AttachedCollisionObject, current: CurrentState) -> None:
        """The object held by msg.link_name, off the world (an attached object is no longer in the world)."""
        checker, object_id = self._checker, msg.object.id
        if msg.object.primitives or msg.object.meshes or msg.object.planes:
            held = held_object_of(msg, self._context, current)
            if isinstance(held, Refusal):
                raise ValueError(held.message)
        else:
            world_object = checker.world_object(object_id)
            if world_object is None:
                raise ValueError(f"attached object {echo(object_id)} has no shapes and no world object has that id")
            if not checker.places(msg.link_name):
                raise ValueError(
                    f"attached object {echo(object_id)}: link_name {echo(msg.link_name)} is not a link this node places"
                )
            cap = self._context.settings.max_request_items
            if len(msg.touch_links) > cap:
                raise ValueError(
                    f"attached object {echo(object_id)}: {len(msg.touch_links)} touch_links, more than "
                    f"max_request_items ({cap})"
                )
            T_link_object = np.linalg.inv(checker.link_pose(current.q, msg.link_name)) @ world_object.T_base_object
            held = HeldObject(
                object_id, msg.link_name, T_link_object, list(world_object.shapes), tuple(msg.touch_links)
            )
        self._held[object_id] = (held, held.body(checker))
        checker.remove_object(object_id)
