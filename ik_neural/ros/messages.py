"""Conversions between ROS messages and the solver's numpy arrays (the ROS layer).

Poses become 4x4 homogeneous transforms (metres); quaternions are (x, y, z, w) as in
geometry_msgs; durations become float seconds.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence, TypeVar

import numpy as np
from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import Pose, Quaternion
from moveit_msgs.msg import CollisionObject, MoveItErrorCodes
from moveit_msgs.srv import GetPositionFK, GetPositionIK
from shape_msgs.msg import SolidPrimitive
from sensor_msgs.msg import JointState
from std_msgs.msg import Header
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from ik_neural.echo import echo
from ik_neural.geometry import matrix_to_quaternion, quaternion_to_matrix
from ik_neural.urdf_model import BOX, CONE, CYLINDER, SPHERE, Geometry, Plane, Shape, TriangleMesh

if TYPE_CHECKING:
    from ik_neural.solver import IKResult

SOURCE = "ik_neural"
"""What a MoveIt error code's ``source`` says (moveit_msgs from 2.4 on)."""
_ERROR_CODES_HAVE_MESSAGE = "message" in MoveItErrorCodes.get_fields_and_field_types()
Response = TypeVar("Response", GetPositionIK.Response, GetPositionFK.Response)

# A pose's quaternion must have norm 1 within this (it is then normalised). Wider than float32 rounding
# of a unit quaternion, far narrower than any quaternion that was never meant to be a rotation.
QUATERNION_NORM_TOLERANCE = 1e-3


def pose_to_matrix(pose: Pose) -> np.ndarray:
    """T (4, 4) of a geometry_msgs/Pose. ValueError naming the field for NaN/inf or a non-unit quaternion."""
    # Python floats, not small numpy arrays: every request's pose comes through here (a few µs each).
    p, o = pose.position, pose.orientation
    position = [p.x, p.y, p.z]
    if not all(map(math.isfinite, position)):
        raise ValueError(f"pose.position has non-finite values {position}")
    T = np.eye(4)
    T[:3, :3] = _rotation([o.x, o.y, o.z, o.w], "pose.orientation")
    T[:3, 3] = position
    return T


def orientation_to_matrix(orientation: Quaternion) -> np.ndarray:
    """R (3, 3) of a geometry_msgs/Quaternion, as ``pose_to_matrix`` takes a pose's: ValueError (saying
    "(x, y, z, w) = ...") for NaN/inf or a norm farther than QUATERNION_NORM_TOLERANCE from 1."""
    o = orientation
    return _rotation([o.x, o.y, o.z, o.w], "")


def _rotation(quaternion: list[float], name: str) -> np.ndarray:
    """R (3, 3) of a quaternion [x, y, z, w], finite and of norm 1 within QUATERNION_NORM_TOLERANCE
    (then normalised); ValueError beginning with ``name`` otherwise."""
    prefix = name + " " if name else ""
    if not all(map(math.isfinite, quaternion)):
        raise ValueError(f"{prefix}(x, y, z, w) = {quaternion} has non-finite values")
    norm = math.hypot(*quaternion)  # a huge finite quaternion may have an infinite norm: refused below
    if abs(norm - 1.0) > QUATERNION_NORM_TOLERANCE:
        raise ValueError(f"{prefix}(x, y, z, w) = {quaternion} has norm {norm:.6g}; a rotation needs norm 1")
    return quaternion_to_matrix(*(value / norm for value in quaternion))


def object_pose_to_matrix(pose: Pose) -> np.ndarray:
    """``pose_to_matrix``, but an all-zero quaternion is the identity rotation (as MoveIt reads a
    CollisionObject's poses)."""
    o = pose.orientation
    if o.x == 0.0 and o.y == 0.0 and o.z == 0.0 and o.w == 0.0:
        pose = Pose(position=pose.position)
    return pose_to_matrix(pose)


def primitive_geometry(primitive: SolidPrimitive) -> Geometry:
    """The ``Geometry`` of a shape_msgs/SolidPrimitive: box [x, y, z] (full edge lengths); sphere [radius];
    cylinder and cone [height, radius] (centred, the axis along z). ValueError for another type, or
    dimensions of another count or out of range."""
    d = [float(v) for v in primitive.dimensions]
    if primitive.type == SolidPrimitive.BOX and len(d) == 3:
        return Geometry(BOX, tuple(d))
    if primitive.type == SolidPrimitive.SPHERE and len(d) >= 1:
        return Geometry(SPHERE, (d[0],))
    if primitive.type in (SolidPrimitive.CYLINDER, SolidPrimitive.CONE) and len(d) == 2:
        return Geometry(CYLINDER if primitive.type == SolidPrimitive.CYLINDER else CONE, (d[1], d[0]))
    raise ValueError(f"type {primitive.type} with dimensions {d} is not a box, sphere, cylinder or cone")


def collision_object_shapes(msg: CollisionObject) -> tuple[np.ndarray, list[tuple[Shape, np.ndarray]]]:
    """(T_frame_object (4, 4), [(Shape, T_object_shape (4, 4))]) of a moveit_msgs/CollisionObject: its
    ``pose`` in ``header.frame_id``, its primitives (box, sphere, cylinder, cone), meshes (shape_msgs/Mesh,
    as ``TriangleMesh``) and planes at their poses relative to it (identity for shapes beyond the poses
    given, as MoveIt); metres. A shape_msgs/Plane's coef
    (a, b, c, d) becomes ``Plane((a, b, c), d)``, the plane (a, b, c) · x = d, as MoveIt hands the
    coefficients to FCL's Plane (the message's comment writes a·x + b·y + c·z + d = 0: the same plane
    when d = 0). ValueError naming the object and the field for bad dimensions, poses, meshes or planes."""
    name = echo(msg.id)
    shape_poses = {}
    for shapes, poses in (("primitives", "primitive_poses"), ("meshes", "mesh_poses"), ("planes", "plane_poses")):
        given, count = list(getattr(msg, poses)), len(getattr(msg, shapes))
        if len(given) > count:
            raise ValueError(f"collision object {name}: {count} {shapes} but {len(given)} {poses}")
        # Fewer poses than shapes: the rest at the object's pose, as MoveIt assumes (pymoveit2's add_collision_box
        # sends its box with no primitive_poses at all).
        shape_poses[shapes] = given + [Pose()] * (count - len(given))
    try:
        T_frame_object = object_pose_to_matrix(msg.pose)
    except ValueError as error:
        raise ValueError(f"collision object {name}: {error}") from None
    shapes = []
    for k, (primitive, pose) in enumerate(zip(msg.primitives, shape_poses["primitives"])):
        try:
            shapes.append((primitive_geometry(primitive), object_pose_to_matrix(pose)))
        except ValueError as error:
            raise ValueError(f"collision object {name}: primitives[{k}]: {error}") from None
    for k, (mesh, pose) in enumerate(zip(msg.meshes, shape_poses["meshes"])):
        try:
            vertices = np.array([[p.x, p.y, p.z] for p in mesh.vertices], dtype=np.float64).reshape(-1, 3)
            triangles = np.array([t.vertex_indices for t in mesh.triangles], dtype=np.int64).reshape(-1, 3)
            shapes.append((TriangleMesh(vertices, triangles), object_pose_to_matrix(pose)))
        except ValueError as error:
            raise ValueError(f"collision object {name}: meshes[{k}].{error}") from None
    for k, (plane, pose) in enumerate(zip(msg.planes, shape_poses["planes"])):
        a, b, c, d = (float(v) for v in plane.coef)
        try:
            shapes.append((Plane((a, b, c), d), object_pose_to_matrix(pose)))
        except ValueError as error:
            raise ValueError(f"collision object {name}: planes[{k}]: {error}") from None
    return T_frame_object, shapes


def matrix_to_pose(T: np.ndarray) -> Pose:
    """The geometry_msgs/Pose of a rigid transform T (4, 4)."""
    T = np.asarray(T, dtype=np.float64)
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(c) for c in T[:3, 3])
    o = pose.orientation
    o.x, o.y, o.z, o.w = matrix_to_quaternion(T[:3, :3])
    return pose


def duration_to_seconds(duration: Duration) -> float:
    """A builtin_interfaces/Duration in seconds (nanoseconds kept)."""
    return duration.sec + 1e-9 * duration.nanosec


def seconds_to_duration(seconds: float) -> Duration:
    """A builtin_interfaces/Duration of ``seconds`` >= 0, to the nanosecond."""
    nanoseconds = round(seconds * 1e9)
    return Duration(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


def joint_state(names: Sequence[str], positions: np.ndarray, stamp: Time) -> JointState:
    """A sensor_msgs/JointState of positions (rad or m), one per name."""
    return JointState(name=list(names), position=[float(v) for v in positions], header=Header(stamp=stamp))


def joint_trajectory(
    names: Sequence[str], positions: np.ndarray, time_from_start_s: float, stamp: Time
) -> JointTrajectory:
    """A one-point trajectory_msgs/JointTrajectory reaching ``positions`` after ``time_from_start_s``."""
    point = JointTrajectoryPoint(
        positions=[float(v) for v in positions], time_from_start=seconds_to_duration(time_from_start_s)
    )
    return JointTrajectory(joint_names=list(names), points=[point], header=Header(stamp=stamp))


def answer(response: Response, code: int, message: str) -> Response:
    """The (IK or FK) response with its error code, and its message and source where the type has them
    (moveit_msgs from 2.4 on; Humble's has only the code)."""
    response.error_code.val = code
    if _ERROR_CODES_HAVE_MESSAGE:
        response.error_code.message, response.error_code.source = message, SOURCE
    return response


def describe(result: "IKResult") -> str:
    """One solve in words, for a response's message and the log: the verdict, the errors, the effort. An
    approximate answer says so first, and how far it is in mm and degrees."""
    effort = f"{result.iterations} iterations, {1e3 * result.elapsed_s:.2f} ms"
    if result.approximate:
        return (
            f"approximate: {1e3 * result.position_error_m:.3g} mm and {math.degrees(result.orientation_error_rad):.3g} "
            "deg from the pose (no solution within the tolerances was found; this is the closest configuration "
            f"found, within the approximate tolerances), {effort}"
        )
    verdict = "solved" if result.success else "no solution within the timeout; best effort"
    return (
        f"{verdict}: position error {result.position_error_m:.3g} m, orientation error "
        f"{result.orientation_error_rad:.3g} rad, {effort}"
    )
