"""The request logic, pure: a ``moveit_msgs/PositionIKRequest`` becomes a ``Problem`` for the solver (the
tip's pose in the chain's base frame, seed, joint bounds, budget, the position and orientation constraints
every answer must meet), a ``GetPositionFK`` request an
``FKProblem`` (the chain's joints, the links to place, the frame to place them in); either may instead be a
``Refusal`` (a MoveIt error code and a message naming the field).

No node and no DDS: messages are plain Python objects, so every refusal is unit-tested in milliseconds.
Every value quoted back from a request goes through ``echo``/``echo_list`` (bounded); arrays longer than
``max_request_items`` are refused before any other work. Lengths in metres, angles in radians.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
import dataclasses
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Union

import numpy as np
from moveit_msgs.msg import (
    AttachedCollisionObject,
    CollisionObject,
    MoveItErrorCodes,
    OrientationConstraint as OrientationConstraintMsg,
    PositionConstraint as PositionConstraintMsg,
    PositionIKRequest,
    RobotState,
)
from moveit_msgs.srv import GetPositionFK
from sensor_msgs.msg import JointState

from ik_neural.chain import KinematicChain
from ik_neural.collision import AttachedBody, CollisionChecker
from ik_neural.constraints import (
    PARAMETERIZATIONS,
    REGION_KINDS,
    ROTATION_VECTOR,
    XYZ_EULER_ANGLES,
    LinkConstraint,
    OrientationConstraint,
    PositionConstraint,
    Region,
)
from ik_neural.echo import echo, echo_list
from ik_neural.joint_bounds import JointBounds, JointBoundsError
from ik_neural.query import AcceptanceTest, IKQuery, Tolerance
from ik_neural.geometry import rotation_vector
from ik_neural.ros.messages import (
    collision_object_shapes,
    duration_to_seconds,
    object_pose_to_matrix,
    orientation_to_matrix,
    pose_to_matrix,
    primitive_geometry,
)
from ik_neural.ros.settings import NodeSettings
from ik_neural.urdf_model import ChainLink, ChainLinks, UrdfModel


LARGEST_POSITION_M = float(np.finfo(np.float32).max)
"""Largest coordinate of a target in the base frame, m: the network reads poses in float32. Constraint
regions and offsets are held to it too (beyond it their arithmetic could overflow)."""
MATCHING_ORIENTATION_RAD = 1e-6
"""An orientation constraint on the IK link whose orientation is within this angle of the pose's (both in
the base frame) widens the pose's own rotation tolerance to the constraint's (``Problem.tolerance``): the
way a MoveIt client asks for a free tool axis. Far above float rounding of one orientation sent twice (the
quaternions of one rotation through two frames differ by ~1e-15 rad), far below any tilt meant."""
ALIGNED_AXES_COSINE = 1.0 - 1e-9
"""Two axes whose unit vectors have a dot product beyond this (in absolute value) are taken as one axis."""


@dataclass(frozen=True)
class RequestContext:
    """What a request is checked against: the chain, the frames and links fixed to its base and tip, the
    links FK of the chain places, the robot's joint names, the node's settings."""

    chain: KinematicChain
    T_base_frame: Mapping[str, np.ndarray]  # a frame a pose may be given in -> its pose (4, 4) in the base frame
    T_link_tip: Mapping[str, np.ndarray]  # a link a request may place -> the tip's pose (4, 4) in that link's frame
    chain_links: ChainLinks  # the links (and frames) forward kinematics of the chain places
    robot_joints: frozenset[str]  # every joint of the URDF (a full robot state names them all)
    settings: NodeSettings
    collision: Optional[CollisionChecker] = None  # the node's checker (None: the robot has no collision geometry)

    @property
    def collision_checking(self) -> bool:
        """Whether avoid_collisions can be checked: the node has a collision checker."""
        return self.collision is not None

    @classmethod
    def of_model(
        cls,
        model: UrdfModel,
        chain: KinematicChain,
        settings: NodeSettings,
        collision: Optional[CollisionChecker] = None,
    ) -> "RequestContext":
        """The context of ``chain``, taken from ``model``, the parsed URDF it came from."""
        return cls(
            chain=chain,
            T_base_frame=model.attached_frames(chain.base_link),
            T_link_tip={link: np.linalg.inv(T) for link, T in model.attached_frames(chain.tip_link).items()},
            chain_links=model.chain_links(chain),
            robot_joints=frozenset(model.joint_names),
            settings=settings,
            collision=collision,
        )


@dataclass(frozen=True)
class CurrentState:
    """The chain's joints as last heard on joint_states: q (dof,) in chain order, mid-limits for joints
    never heard of; ``known`` whether any was heard."""

    q: np.ndarray
    known: bool


@dataclass(frozen=True)
class Problem:
    """A request checked and put in the solver's terms: its fields map onto an ``IKQuery`` one to one
    (``query``), besides what the node's collision check takes (``avoid_collisions``, ``other_positions``,
    ``attached``), ``notes`` and ``remarks``."""

    T_base_tip: np.ndarray  # (4, 4) the tip's target pose in the chain's base frame, finite
    seed: np.ndarray  # (dof,) finite
    seed_known: bool  # from the request or joint_states, not only the mid-limits default
    bounds: JointBounds  # the chain's, narrowed by the request's joint constraints
    timeout_s: float  # the solve budget, 0 < timeout_s <= max_timeout_s
    notes: tuple[str, ...]  # what the answer's message and the log must say besides the result
    avoid_collisions: bool = False  # the answer must be collision-free (checked by the node's checker)
    other_positions: Mapping[str, float] = dataclasses.field(default_factory=dict)
    """Positions (rad or m) of the robot's joints outside the chain (a gripper's) the request gave; with
    avoid_collisions checked, those of the checker's held joints (``other_joints``), finite."""
    attached: tuple[AttachedBody, ...] = ()
    """robot_state.attached_collision_objects, for the node's checker (only with avoid_collisions)."""
    constraints: tuple[LinkConstraint, ...] = ()
    """The request's position and orientation constraints, in the base frame: every answer must satisfy
    them (``ConstraintTest`` of the chain, the node's acceptance test)."""
    orientation_tolerance_rad: Optional[tuple[float, float, float]] = None
    """The rotation tolerance (rad, about the tip target's x, y, z; inf: free) that the request's
    orientation constraints on the IK link give the pose (``tolerance``); None: the node's."""
    remarks: tuple[str, ...] = ()
    """What the answer's message says besides the result and the notes, not logged: what the request asked
    for and got (a widened rotation tolerance)."""

    def tolerance(self, default: Tolerance) -> Tolerance:
        """The solver's tolerance of this request: the node's ``default``, its rotation tolerance widened per
        axis to ``orientation_tolerance_rad`` where that is wider (never narrowed; ``one_free_axis``)."""
        widened = self.orientation_tolerance_rad
        if widened is None:
            return default
        rotation = tuple(max(d, w) for d, w in zip(default.orientation_rad, widened))
        return Tolerance(default.position_m, one_free_axis(rotation, default.orientation_rad))

    def query(
        self,
        tolerance: Tolerance,
        seed_first: bool,
        accept: Optional[AcceptanceTest],
        stop: Optional[threading.Event],
        approximate: Optional[Tolerance] = None,
    ) -> IKQuery:
        """The solver's query: this problem's target (T_base_tip), seed, bounds and budget, with the node's
        ``tolerance`` (as ``self.tolerance`` widens it), acceptance test (its collision check, with the
        constraints' test), stop event and ``approximate`` tolerance (None: exact answers only; else never
        narrower than the exact one, axis by axis); ``seed_first`` holds only for a known seed (a default one
        is no better a start than the network's guess)."""
        exact = self.tolerance(tolerance)
        if approximate is not None:
            rotation = tuple(max(a, e) for a, e in zip(approximate.orientation_rad, exact.orientation_rad))
            approximate = Tolerance(
                max(approximate.position_m, exact.position_m), one_free_axis(rotation, exact.orientation_rad)
            )
        return IKQuery(
            T_target=self.T_base_tip,
            seed=self.seed,
            bounds=self.bounds,
            tolerance=exact,
            timeout_s=self.timeout_s,
            seed_first=seed_first and self.seed_known,
            accept=accept,
            stop=stop,
            approximate=approximate,
        )


def one_free_axis(rotation: Sequence[float], keep: Sequence[float]) -> tuple[float, float, float]:
    """A per-axis rotation tolerance (rad; inf: free) the solver takes: none, one or all three axes free.
    Two free and one held (which it cannot solve for) become one free: the axis free in ``keep`` (the
    node's own tolerance) if one is, else none; the other takes the held axis' tolerance. Narrower, never
    wrong: the answer is still checked against every constraint."""
    free = [axis for axis, value in enumerate(rotation) if value == math.inf]
    if len(free) != 2:
        return rotation[0], rotation[1], rotation[2]
    held = max(value for value in rotation if value < math.inf)
    kept = [axis for axis in free if keep[axis] == math.inf][:1]
    values = [held if axis in free and axis not in kept else value for axis, value in enumerate(rotation)]
    return values[0], values[1], values[2]


@dataclass(frozen=True)
class FKProblem:
    """A GetPositionFK request checked: ``context.chain_links.poses(q, links, frame)`` answers it."""

    q: np.ndarray  # (dof,) the chain's joints in chain order, rad or m, finite
    links: tuple[str, ...]  # the links to place, as requested (each one of context.chain_links)
    frame: str  # the link whose frame the poses are expressed in (one of context.chain_links)


@dataclass(frozen=True)
class Refusal:
    """A request answered without solving: a MoveItErrorCodes value and a one-line message."""

    code: int
    message: str


class _Refused(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.refusal = Refusal(code, message)


def problem_of(ik: PositionIKRequest, context: RequestContext, current: CurrentState) -> Union[Problem, Refusal]:
    """The request ``ik`` as a Problem, or the Refusal that answers it. Never raises for any message."""
    try:
        return _problem(ik, context, current)
    except _Refused as refused:
        return refused.refusal


def _problem(ik: PositionIKRequest, context: RequestContext, current: CurrentState) -> Problem:
    chain, settings = context.chain, context.settings
    _check_sizes(_ik_arrays(ik), settings.max_request_items)
    if ik.group_name not in ("", settings.group_name):
        raise _Refused(
            MoveItErrorCodes.INVALID_GROUP_NAME,
            f"group_name {echo(ik.group_name)}: this node serves {settings.group_name!r}",
        )
    notes: list[str] = []
    check_collisions = False
    if ik.avoid_collisions:
        policy = settings.avoid_collisions_policy
        if policy == "check" and not context.collision_checking:
            raise _Refused(
                MoveItErrorCodes.COLLISION_CHECKING_UNAVAILABLE,
                "avoid_collisions is true, but this robot's URDF has no collision geometry to check "
                "(send avoid_collisions=false, or set avoid_collisions_policy to 'ignore')",
            )
        if policy == "refuse":
            raise _Refused(
                MoveItErrorCodes.COLLISION_CHECKING_UNAVAILABLE,
                "avoid_collisions is true, but this node's avoid_collisions_policy is 'refuse' "
                "(send avoid_collisions=false, or set avoid_collisions_policy to 'check' or 'ignore')",
            )
        if policy == "ignore":
            notes.append("collisions NOT checked (avoid_collisions_policy 'ignore')")
        check_collisions = policy == "check"
    link, pose_stamped = _link_and_pose(ik, context)
    try:
        T_frame_link = pose_to_matrix(pose_stamped.pose)
    except ValueError as error:
        raise _Refused(MoveItErrorCodes.INVALID_GOAL_CONSTRAINTS, f"pose_stamped.{error}") from None
    T_base_frame = _T_base_frame(pose_stamped.header.frame_id, "pose frame", context)
    # A finite position far enough out (1e308 m) overflows in the frame change, or in the network, which
    # reads float32: refused here, where it is known, not as a numpy warning and a garbage target later.
    with np.errstate(over="ignore", invalid="ignore"):
        T_base_link = T_base_frame @ T_frame_link
        T_base_tip = T_base_link @ context.T_link_tip[link]
    if not np.abs(T_base_tip[:3, 3]).max() <= LARGEST_POSITION_M:  # NaN fails too
        position = pose_stamped.pose.position
        raise _Refused(
            MoveItErrorCodes.INVALID_GOAL_CONSTRAINTS,
            f"pose_stamped.pose.position {echo([position.x, position.y, position.z])} is beyond float32's range "
            f"(±{LARGEST_POSITION_M:.3g} m) once expressed in the base frame {chain.base_link!r}",
        )
    timeout_s = _timeout_s(ik, settings, notes)
    seed, seed_known, others = _seed(ik.robot_state.joint_state, context, current)
    attached: tuple[AttachedBody, ...] = ()
    if check_collisions:
        bad = sorted(name for name, position in others.items() if not math.isfinite(position))
        if bad:
            raise _Refused(MoveItErrorCodes.INVALID_ROBOT_STATE, f"robot_state: joints {echo_list(bad)} are not finite")
        others = {name: value for name, value in others.items() if name in context.collision.other_joints}
        attached = _attached(ik.robot_state.attached_collision_objects, context, seed, others)
    bounds = _bounds(ik, context, notes)
    constraints, on_link = _link_constraints(ik, context, link, notes)
    remarks: list[str] = []
    widened = _widened_rotation(
        on_link, T_base_link, context.T_link_tip[link], settings.tolerance.orientation_rad, remarks
    )
    return Problem(
        T_base_tip,
        seed,
        seed_known,
        bounds,
        timeout_s,
        tuple(notes),
        check_collisions,
        others,
        attached,
        constraints,
        widened,
        tuple(remarks),
    )


@dataclass(frozen=True)
class HeldObject:
    """An object held by robot link ``link``: its shapes [(Shape, T_object_shape)] at T_link_object (4, 4)
    in the link's frame, and the links it may touch besides ``link``."""

    name: str
    link: str
    T_link_object: np.ndarray
    shapes: list
    touch_links: tuple[str, ...]

    def body(self, checker: CollisionChecker) -> AttachedBody:
        """The checker's body of this object. ValueError for a pose that overflowed once composed."""
        shapes = [(shape, self.T_link_object @ T) for shape, T in self.shapes]
        return checker.attached_body(self.name, self.link, shapes, touch_links=self.touch_links)


def held_object_of(
    msg: AttachedCollisionObject, context: RequestContext, current: CurrentState
) -> Union[HeldObject, Refusal]:
    """An attached_collision_object message's ADD (with its shapes) as a HeldObject, placed as a robot
    state's attached object is (``_held``) at the current joint state, the other joints at the checker's
    positions; or the Refusal that says why not. Never raises for any message."""
    try:
        return _held(msg, "attached_collision_object", context, current.q, context.collision.positions)
    except _Refused as refused:
        return refused.refusal


def _attached(
    objects: Sequence[AttachedCollisionObject], context: RequestContext, q: np.ndarray, others: Mapping[str, float]
) -> tuple[AttachedBody, ...]:
    """The robot state's attached objects as the checker's bodies (``_held``, at the seed ``q`` and the
    request's held joint positions ``others``). Only ADD objects: a robot state holds objects, it does not
    edit them."""
    bodies = []
    for n, attached in enumerate(objects):
        field_name = f"robot_state.attached_collision_objects[{n}]"
        if attached.object.operation != CollisionObject.ADD:
            raise _Refused(
                MoveItErrorCodes.INVALID_ROBOT_STATE,
                f"{field_name} (object {echo(attached.object.id)}): object.operation {attached.object.operation!r} "
                "is not ADD; a robot state holds whole objects",
            )
        held = _held(attached, field_name, context, q, others)
        try:
            bodies.append(held.body(context.collision))
        except ValueError as error:  # a pose that overflowed once composed
            raise _Refused(MoveItErrorCodes.INVALID_ROBOT_STATE, f"{field_name}: {error}") from None
    return tuple(bodies)


def _held(
    attached: AttachedCollisionObject,
    field_name: str,
    context: RequestContext,
    q: np.ndarray,
    others: Mapping[str, float],
) -> HeldObject:
    """One attached object. Its pose is in its header.frame_id: empty or link_name, relative to that link;
    another link the checker places (the base, a world frame fixed to it, a chain or finger link) is placed
    as MoveIt does, at the configuration q (dof,) with the other joints at ``others``, and the object then
    stays where it is relative to its link. INVALID_ROBOT_STATE for a link the checker does not place or a
    bad shape; FRAME_TRANSFORM_FAILURE for a frame it does not place; FAILURE for arrays beyond
    max_request_items."""
    checker, msg = context.collision, attached.object
    _check_sizes(
        {
            f"{field_name}.object.primitives": msg.primitives,
            f"{field_name}.object.meshes": msg.meshes,
            f"{field_name}.object.planes": msg.planes,
            f"{field_name}.touch_links": attached.touch_links,
            **{
                f"{field_name}.object.meshes[{k}].{part}": getattr(mesh, part)
                for k, mesh in enumerate(msg.meshes)
                for part in ("vertices", "triangles")
            },
        },
        context.settings.max_request_items,
    )
    link, where = attached.link_name, f"{field_name} (object {echo(msg.id)})"
    try:
        T_base_link = checker.link_pose(q, link, others)
    except ValueError as error:
        raise _Refused(MoveItErrorCodes.INVALID_ROBOT_STATE, f"{where}: link_name: {error}") from None
    try:
        T_frame_object, shapes = collision_object_shapes(msg)
    except ValueError as error:
        raise _Refused(MoveItErrorCodes.INVALID_ROBOT_STATE, f"{field_name}: {error}") from None
    frame = _frame(msg.header.frame_id, link)
    try:
        T_link_frame = np.eye(4) if frame == link else np.linalg.inv(T_base_link) @ checker.link_pose(q, frame, others)
    except ValueError as error:
        raise _Refused(
            MoveItErrorCodes.FRAME_TRANSFORM_FAILURE,
            f"{where}: object.header.frame_id: {error}; this node has no TF listener",
        ) from None
    return HeldObject(msg.id, link, T_link_frame @ T_frame_object, shapes, tuple(attached.touch_links))


def _ik_arrays(ik: PositionIKRequest) -> dict[str, Sequence]:
    """Every array of an IK request, by field name."""
    constraints = ik.constraints
    return {
        **_robot_state_arrays(ik.robot_state),
        "constraints.joint_constraints": constraints.joint_constraints,
        "constraints.position_constraints": constraints.position_constraints,
        "constraints.orientation_constraints": constraints.orientation_constraints,
        "constraints.visibility_constraints": constraints.visibility_constraints,
        "ik_link_names": ik.ik_link_names,
        "pose_stamped_vector": ik.pose_stamped_vector,
    }


def _robot_state_arrays(robot_state: RobotState) -> dict[str, Sequence]:
    """Every array of a moveit_msgs/RobotState, by field name (as the IK and FK requests hold it)."""
    state, multi_dof = robot_state.joint_state, robot_state.multi_dof_joint_state
    return {
        "robot_state.joint_state.name": state.name,
        "robot_state.joint_state.position": state.position,
        "robot_state.joint_state.velocity": state.velocity,
        "robot_state.joint_state.effort": state.effort,
        "robot_state.multi_dof_joint_state.joint_names": multi_dof.joint_names,
        "robot_state.multi_dof_joint_state.transforms": multi_dof.transforms,
        "robot_state.multi_dof_joint_state.twist": multi_dof.twist,
        "robot_state.multi_dof_joint_state.wrench": multi_dof.wrench,
        "robot_state.attached_collision_objects": robot_state.attached_collision_objects,
    }


def _check_sizes(arrays: Mapping[str, Sequence], cap: int) -> None:
    """FAILURE for any of a request's ``arrays`` (field name -> values) longer than ``cap``, before any work
    on their contents."""
    for field_name, values in arrays.items():
        if len(values) > cap:
            raise _Refused(
                MoveItErrorCodes.FAILURE,
                f"{field_name} has {len(values)} entries; this node takes at most {cap} (max_request_items)",
            )


def _frame(frame_id: str, base_link: str) -> str:
    """The frame a pose names: one leading '/' (tf1 style) is dropped; empty means the base."""
    return (frame_id[1:] if frame_id.startswith("/") else frame_id) or base_link


def _T_base_frame(frame_id: str, what: str, context: RequestContext) -> np.ndarray:
    """T_base_frame (4, 4) of the frame a request names (``_frame``): the base or a frame fixed to it.
    FRAME_TRANSFORM_FAILURE naming ``what`` (the field) for any other."""
    base_link = context.chain.base_link
    T_base_frame = context.T_base_frame.get(_frame(frame_id, base_link))
    if T_base_frame is None:
        raise _Refused(
            MoveItErrorCodes.FRAME_TRANSFORM_FAILURE,
            f"{what} {echo(frame_id)} is not the base {base_link!r} or a frame fixed to it "
            f"{echo_list(sorted(context.T_base_frame))}; this node has no TF listener",
        )
    return T_base_frame


def _link_and_pose(ik: PositionIKRequest, context: RequestContext):
    """(the link to place, its geometry_msgs/PoseStamped); a one-entry pose_stamped_vector stands for
    pose_stamped."""
    chain = context.chain
    link, pose_stamped = ik.ik_link_name, ik.pose_stamped
    if ik.pose_stamped_vector or ik.ik_link_names:
        if len(ik.pose_stamped_vector) != 1 or len(ik.ik_link_names) > 1:
            raise _Refused(
                MoveItErrorCodes.INVALID_LINK_NAME,
                f"{len(ik.pose_stamped_vector)} poses for links {echo_list(ik.ik_link_names)}: this node places "
                f"one link, the tip {chain.tip_link!r} or a link fixed to it",
            )
        pose_stamped = ik.pose_stamped_vector[0]
        link = ik.ik_link_names[0] if ik.ik_link_names else link
    link = link or chain.tip_link
    if link not in context.T_link_tip:
        raise _Refused(
            MoveItErrorCodes.INVALID_LINK_NAME,
            f"ik_link_name {echo(link)} is not the tip {chain.tip_link!r} or a link fixed to it "
            f"{echo_list(sorted(context.T_link_tip))}",
        )
    return link, pose_stamped


def _timeout_s(ik: PositionIKRequest, settings: NodeSettings, notes: list[str]) -> float:
    """The request's budget, s: zero means default_timeout_s; above max_timeout_s it is cut (noted)."""
    timeout_s = duration_to_seconds(ik.timeout)
    if timeout_s < 0:
        raise _Refused(MoveItErrorCodes.FAILURE, f"timeout is negative ({timeout_s:.9g} s)")
    if timeout_s > settings.max_timeout_s:
        notes.append(f"timeout {timeout_s:.9g} s capped to max_timeout_s = {settings.max_timeout_s:g} s")
        return settings.max_timeout_s
    return timeout_s or settings.default_timeout_s


def _seed(
    state: JointState, context: RequestContext, current: CurrentState
) -> tuple[np.ndarray, bool, dict[str, float]]:
    """(seed (dof,), known, others): the request's positions by joint name, the rest the current joint state
    (else mid-limits); known: whether any of it came from the request or joint_states; others: the positions
    it gives of the robot's joints outside the chain."""
    given, others = _chain_positions(state, context)
    index = {name: j for j, name in enumerate(context.chain.joint_names)}
    seed = current.q.copy()
    for name, position in given.items():
        seed[index[name]] = position
    return seed, current.known or bool(given), others


def _chain_positions(state: JointState, context: RequestContext) -> tuple[dict[str, float], dict[str, float]]:
    """The joints that a request's robot_state.joint_state gives: (the chain's, finite; the robot's other
    joints (a gripper's), as given), each name -> position (rad or m). INVALID_ROBOT_STATE for names and
    positions of different lengths, a name that is no joint of the URDF, a repeated name, or a non-finite
    position of a chain joint."""
    chain = context.chain
    if len(state.position) != len(state.name):
        raise _Refused(
            MoveItErrorCodes.INVALID_ROBOT_STATE,
            f"robot_state.joint_state has {len(state.name)} names but {len(state.position)} positions",
        )
    names = list(state.name)
    unknown = sorted(set(names) - context.robot_joints)
    if unknown:
        raise _Refused(
            MoveItErrorCodes.INVALID_ROBOT_STATE,
            f"robot_state.joint_state has unknown joints {echo_list(unknown)}; the chain's joints are "
            f"{echo_list(chain.joint_names)}",
        )
    if len(set(names)) != len(names):
        repeated = sorted(name for name, count in Counter(names).items() if count > 1)
        raise _Refused(
            MoveItErrorCodes.INVALID_ROBOT_STATE, f"robot_state.joint_state repeats joint names {echo_list(repeated)}"
        )
    chain_joints = set(chain.joint_names)
    given: dict[str, float] = {}
    others: dict[str, float] = {}
    for name, position in zip(names, state.position):
        if name in chain_joints:
            if not math.isfinite(position):
                raise _Refused(MoveItErrorCodes.INVALID_ROBOT_STATE, f"robot_state: joint {name!r} is {position}")
            given[name] = position
        else:
            others[name] = float(position)
    return given, others


def _bounds(ik: PositionIKRequest, context: RequestContext, notes: list[str]) -> JointBounds:
    """The chain's bounds narrowed by constraints.joint_constraints (JointBounds.narrow judges each window);
    joints of the robot outside the chain, and constraint kinds that are not applied, are noted."""
    constraints = ik.constraints
    if constraints.visibility_constraints:
        notes.append(
            f"unsupported constraints ignored ({len(constraints.visibility_constraints)} visibility): only joint, "
            "position and orientation constraints are applied"
        )
    bounds = context.chain.bounds
    outside: set[str] = set()
    for constraint in constraints.joint_constraints:
        name = constraint.joint_name
        if name not in context.robot_joints:
            raise _Refused(MoveItErrorCodes.INVALID_GOAL_CONSTRAINTS, f"joint constraint on unknown joint {echo(name)}")
        below, above = constraint.tolerance_below, constraint.tolerance_above
        if not (below >= 0 and above >= 0):  # NaN fails too
            raise _Refused(
                MoveItErrorCodes.INVALID_GOAL_CONSTRAINTS,
                f"joint constraint on {name!r}: tolerances must be >= 0, got below {below:.6g}, above {above:.6g}",
            )
        if name not in bounds.names:
            outside.add(name)
            continue
        # Python floats overflow to inf here (-1e308 - 1e308) without a warning; narrow refuses it.
        window = (constraint.position - below, constraint.position + above)
        try:
            bounds = bounds.narrow({name: window})
        except JointBoundsError as error:
            raise _Refused(MoveItErrorCodes.INVALID_GOAL_CONSTRAINTS, f"joint constraint: {error}") from None
    if outside:
        notes.append(f"joint constraints on joints outside the chain ignored: {echo_list(sorted(outside))}")
    return bounds


def _link_constraints(
    ik: PositionIKRequest, context: RequestContext, link: str, notes: list[str]
) -> tuple[tuple[LinkConstraint, ...], list[OrientationConstraint]]:
    """(constraints.position_constraints and orientation_constraints as ``LinkConstraint``s, cheapest
    first; the orientation constraints on the IK ``link``)."""
    constraints = ik.constraints
    positions = [_position_constraint(n, msg, context) for n, msg in enumerate(constraints.position_constraints)]
    orientations, on_link = [], []
    for n, msg in enumerate(constraints.orientation_constraints):
        orientations.append(_orientation_constraint(n, msg, context, notes))
        if msg.link_name == link:
            on_link.append(orientations[-1])
    return (*positions, *orientations), on_link


def _constraint_link(name: str, field_name: str, context: RequestContext) -> ChainLink:
    """Where the chain places the link a constraint is on; INVALID_GOAL_CONSTRAINTS naming it for a link the
    chain's joints do not place alone (unknown, above the base, or moved by other joints: a finger)."""
    placed = context.chain_links.links.get(name)
    if placed is None:
        chain = context.chain
        why = (
            "is not a link of the robot"
            if name not in context.chain_links.model.link_names
            else f"is not placed by the chain {chain.base_link!r} -> {chain.tip_link!r} alone (joints outside the "
            "chain move it, or no joint of the chain does and it is not fixed to the base)"
        )
        raise _Refused(
            MoveItErrorCodes.INVALID_GOAL_CONSTRAINTS,
            f"{field_name}.link_name {echo(name)} {why}; a constraint may be on {echo_list(context.chain_links.names)}",
        )
    return placed


def _position_constraint(n: int, msg: PositionConstraintMsg, context: RequestContext) -> PositionConstraint:
    """constraints.position_constraints[n]: the link's point target_point_offset (link frame) inside one of
    constraint_region's primitives (box, sphere, cylinder), posed by primitive_poses in header.frame_id."""
    field_name = f"constraints.position_constraints[{n}]"
    region = msg.constraint_region
    _check_sizes(
        {
            f"{field_name}.constraint_region.{part}": getattr(region, part)
            for part in ("primitives", "primitive_poses", "meshes", "mesh_poses")
        },
        context.settings.max_request_items,
    )
    placed = _constraint_link(msg.link_name, field_name, context)
    refuse = MoveItErrorCodes.INVALID_GOAL_CONSTRAINTS
    if region.meshes:
        raise _Refused(
            refuse,
            f"{field_name}.constraint_region.meshes: mesh regions are not supported; give the region as primitives "
            "(box, sphere, cylinder)",
        )
    if not region.primitives:
        raise _Refused(refuse, f"{field_name}.constraint_region has no primitives: no region to be inside")
    if len(region.primitive_poses) != len(region.primitives):
        raise _Refused(
            refuse,
            f"{field_name}.constraint_region has {len(region.primitives)} primitives but "
            f"{len(region.primitive_poses)} primitive_poses (one pose per primitive)",
        )
    T_base_frame = _T_base_frame(msg.header.frame_id, f"{field_name}.header.frame_id", context)
    offset = np.array([msg.target_point_offset.x, msg.target_point_offset.y, msg.target_point_offset.z])
    if not np.abs(offset).max() <= LARGEST_POSITION_M:  # NaN fails too
        raise _Refused(refuse, f"{field_name}.target_point_offset {echo(offset.tolist())} is not finite within float32")
    regions = []
    for k, (primitive, pose) in enumerate(zip(region.primitives, region.primitive_poses)):
        where = f"{field_name}.constraint_region.primitives[{k}]"
        try:
            geometry = primitive_geometry(primitive)
        except ValueError as error:
            raise _Refused(refuse, f"{where}: {error}") from None
        if geometry.kind not in REGION_KINDS:
            raise _Refused(refuse, f"{where}: a {geometry.kind} region is not supported (box, sphere, cylinder)")
        where = f"{field_name}.constraint_region.primitive_poses[{k}]"
        try:
            T_frame_region = object_pose_to_matrix(pose)
        except ValueError as error:
            raise _Refused(refuse, f"{where}: {error}") from None
        with np.errstate(over="ignore", invalid="ignore"):
            T_base_region = T_base_frame @ T_frame_region
        if not np.abs(T_base_region[:3, 3]).max() <= LARGEST_POSITION_M:  # NaN fails too
            raise _Refused(
                refuse,
                f"{where}: the position is beyond float32's range (±{LARGEST_POSITION_M:.3g} m) once expressed in the "
                f"base frame {context.chain.base_link!r}",
            )
        regions.append(Region(geometry, T_base_region))
    return PositionConstraint(f"{field_name} (link {echo(msg.link_name)})", placed, offset, tuple(regions))


def _orientation_constraint(
    n: int, msg: OrientationConstraintMsg, context: RequestContext, notes: list[str]
) -> OrientationConstraint:
    """constraints.orientation_constraints[n]: the link's orientation within absolute_x/y/z_axis_tolerance
    (their absolute values, as MoveIt takes them) of ``orientation`` (in header.frame_id), measured as
    ``parameterization`` says (an unknown one: XYZ_EULER_ANGLES, noted, as MoveIt does)."""
    field_name = f"constraints.orientation_constraints[{n}]"
    placed = _constraint_link(msg.link_name, field_name, context)
    refuse = MoveItErrorCodes.INVALID_GOAL_CONSTRAINTS
    tolerances = []
    for axis in "xyz":
        value = getattr(msg, f"absolute_{axis}_axis_tolerance")
        if math.isnan(value):
            raise _Refused(refuse, f"{field_name}.absolute_{axis}_axis_tolerance is NaN")
        tolerances.append(abs(value))
    T_base_frame = _T_base_frame(msg.header.frame_id, f"{field_name}.header.frame_id", context)
    try:
        R_frame_target = orientation_to_matrix(msg.orientation)
    except ValueError as error:
        raise _Refused(refuse, f"{field_name}.orientation {error}") from None
    # Humble's moveit_msgs has no parameterization field: its constraints are Euler angles.
    parameterization = getattr(msg, "parameterization", XYZ_EULER_ANGLES)
    if parameterization not in PARAMETERIZATIONS:
        notes.append(
            f"{field_name}: unknown parameterization {parameterization}, taken as XYZ_EULER_ANGLES (as MoveIt)"
        )
        parameterization = XYZ_EULER_ANGLES
    return OrientationConstraint(
        f"{field_name} (link {echo(msg.link_name)})",
        placed,
        T_base_frame[:3, :3] @ R_frame_target,
        (tolerances[0], tolerances[1], tolerances[2]),
        parameterization,
        R_frame_target,
    )


def _widened_rotation(
    on_link: Sequence[OrientationConstraint],
    T_base_link: np.ndarray,
    T_link_tip: np.ndarray,
    default_rad: Sequence[float],
    remarks: list[str],
) -> Optional[tuple[float, float, float]]:
    """The rotation tolerance (rad, about the tip target's x, y, z; inf: free) that the orientation
    constraints on the IK link give the pose: those whose orientation matches the pose's (the IK link's
    target T_base_link (4, 4), within MATCHING_ORIENTATION_RAD) widen it to their tolerances, a tolerance of
    pi or more freeing its axis; several: the narrowest per axis. None when none matches.

    A constraint's axes are the link's (Euler angles) or its frame's (rotation vector); a tip axis along one
    of them (the IK link is the tip, or a frame fixed to it turned about that axis or by quarter turns)
    takes that axis' tolerance, another axis the constraint's narrowest. The constraint itself is still
    checked on every answer: this only lets the solver look where the constraint allows. A remark says the
    request's rotation tolerance (with the node's, ``default_rad``: ``Problem.tolerance``)."""
    R_base_link = T_base_link[:3, :3]
    R_base_tip = R_base_link @ T_link_tip[:3, :3]
    widened, used = [math.inf] * 3, []
    for constraint in on_link:
        if np.linalg.norm(rotation_vector(constraint.R_base_target.T @ R_base_link)) > MATCHING_ORIENTATION_RAD:
            continue
        if constraint.parameterization == ROTATION_VECTOR:  # the axes of the frame the orientation was given in
            R_base_axes = constraint.R_base_target @ constraint.R_frame_target.T
        else:  # the link's own axes
            R_base_axes = R_base_link
        M = R_base_tip.T @ R_base_axes  # column j: the constraint's axis j in the tip's axes
        tolerances = [t if t < math.pi else math.inf for t in constraint.tolerances_rad]
        for i in range(3):
            aligned = [j for j in range(3) if abs(M[i, j]) > ALIGNED_AXES_COSINE]
            widened[i] = min(widened[i], tolerances[aligned[0]] if aligned else min(tolerances))
        used.append(constraint.label)
    if not used:
        return None
    wider = [max(d, w) for d, w in zip(default_rad, widened)]
    solved = one_free_axis(wider, default_rad)
    shown = ", ".join(f"{axis} {'free' if t == math.inf else f'{t:.4g} rad'}" for axis, t in zip("xyz", solved))
    note = f"rotation tolerance about the target's axes widened to {shown} by {', '.join(used)}"
    if list(solved) != wider:
        note += " (two free axes and one held cannot be solved for; the constraints are checked as given)"
    remarks.append(note)
    return widened[0], widened[1], widened[2]


def fk_problem_of(request: GetPositionFK.Request, context: RequestContext) -> Union[FKProblem, Refusal]:
    """A GetPositionFK request as an FKProblem, or the Refusal that answers it. Never raises for any message.

    As move_group's compute_fk: header.frame_id is the frame the poses are returned in (empty: the chain's
    base; one leading '/' ignored), fk_link_names the links to place (none: INVALID_LINK_NAME). The
    positions are robot_state.joint_state's alone (no joint_states fill-in): every chain joint must be given.
    """
    try:
        return _fk_problem(request, context)
    except _Refused as refused:
        return refused.refusal


def _fk_problem(request: GetPositionFK.Request, context: RequestContext) -> FKProblem:
    chain, placed = context.chain, context.chain_links
    _check_sizes(
        {**_robot_state_arrays(request.robot_state), "fk_link_names": request.fk_link_names},
        context.settings.max_request_items,
    )
    if not request.fk_link_names:
        raise _Refused(MoveItErrorCodes.INVALID_LINK_NAME, "fk_link_names is empty: no link to place")
    unknown = sorted(set(request.fk_link_names) - set(placed.names))
    if unknown:
        raise _Refused(
            MoveItErrorCodes.INVALID_LINK_NAME,
            f"fk_link_names has links {echo_list(unknown)} that forward kinematics of the chain {chain.base_link!r} -> "
            f"{chain.tip_link!r} does not place; it places {echo_list(placed.names)}",
        )
    frame = _frame(request.header.frame_id, chain.base_link)
    if frame not in placed:
        raise _Refused(
            MoveItErrorCodes.FRAME_TRANSFORM_FAILURE,
            f"header.frame_id {echo(request.header.frame_id)} is not a link forward kinematics of the chain places "
            f"{echo_list(placed.names)}; this node has no TF listener",
        )
    given = _chain_positions(request.robot_state.joint_state, context)[0]
    missing = [name for name in chain.joint_names if name not in given]
    if missing:
        raise _Refused(
            MoveItErrorCodes.INVALID_ROBOT_STATE,
            f"robot_state.joint_state lacks the chain's joints {echo_list(missing)}; forward kinematics needs all "
            f"of {echo_list(chain.joint_names)}",
        )
    q = np.array([given[name] for name in chain.joint_names], dtype=np.float64)
    return FKProblem(q, tuple(request.fk_link_names), frame)
