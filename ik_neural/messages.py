"""Conversions between ROS messages and the solver's numpy arrays (the ROS layer).

Poses become 4x4 homogeneous transforms (metres); quaternions are (x, y, z, w) as in
geometry_msgs; durations become float seconds.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import Pose
from sensor_msgs.msg import JointState
from std_msgs.msg import Header
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

# A pose's quaternion must have norm 1 within this (it is then normalised). Wider than float32 rounding
# of a unit quaternion, far narrower than any quaternion that was never meant to be a rotation.
QUATERNION_NORM_TOLERANCE = 1e-3


def pose_to_matrix(pose: Pose) -> np.ndarray:
    """T (4, 4) of a geometry_msgs/Pose. ValueError naming the field for NaN/inf or a non-unit quaternion."""
    p, o = pose.position, pose.orientation
    position = np.array([p.x, p.y, p.z], dtype=np.float64)
    quaternion = np.array([o.x, o.y, o.z, o.w], dtype=np.float64)
    if not np.isfinite(position).all():
        raise ValueError(f"pose.position has non-finite values {position.tolist()}")
    if not np.isfinite(quaternion).all():
        raise ValueError(f"pose.orientation has non-finite values {quaternion.tolist()}")
    norm = float(np.linalg.norm(quaternion))
    if abs(norm - 1.0) > QUATERNION_NORM_TOLERANCE:
        raise ValueError(
            f"pose.orientation (x, y, z, w) = {quaternion.tolist()} has norm {norm:.6g}; a rotation needs norm 1"
        )
    x, y, z, w = quaternion / norm
    T = np.eye(4)
    T[:3, :3] = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ]
    T[:3, 3] = position
    return T


def matrix_to_pose(T: np.ndarray) -> Pose:
    """The geometry_msgs/Pose of a rigid transform T (4, 4)."""
    R = np.asarray(T, dtype=np.float64)[:3, :3]
    # Shepperd's method: divide by the largest of the four squared components, never by a small one.
    trace = float(np.trace(R))
    largest = int(np.argmax([R[0, 0], R[1, 1], R[2, 2], trace]))
    if largest == 3:
        w = 0.5 * math.sqrt(1.0 + trace)
        x, y, z = (R[2, 1] - R[1, 2]) / (4 * w), (R[0, 2] - R[2, 0]) / (4 * w), (R[1, 0] - R[0, 1]) / (4 * w)
    else:
        i, j, k = largest, (largest + 1) % 3, (largest + 2) % 3
        v = [0.0, 0.0, 0.0]
        v[i] = 0.5 * math.sqrt(max(1.0 + R[i, i] - R[j, j] - R[k, k], 0.0))
        v[j] = (R[j, i] + R[i, j]) / (4 * v[i])
        v[k] = (R[k, i] + R[i, k]) / (4 * v[i])
        w = (R[k, j] - R[j, k]) / (4 * v[i])
        x, y, z = v
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(c) for c in np.asarray(T)[:3, 3])
    pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = (
        float(x), float(y), float(z), float(w),
    )  # fmt: skip
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
