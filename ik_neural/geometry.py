"""SO(3) and SE(3) in numpy: the one home of the package's rotation math.

Rotations are 3x3 matrices, poses 4x4 homogeneous transforms; lengths in metres, angles in radians.
Quaternions are (x, y, z, w), as geometry_msgs has them. URDF roll-pitch-yaw is about fixed axes x, y,
z. The rotation error of a pose against a target is the angle of R_target·Rᵀ, from the log map (exact
near zero, where the arccos of the trace loses half the digits). ``geometry_kernels`` is the compiled
twin of the functions the solver runs per iteration; a test holds the two equal.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

# Below this, sin(angle) is taken as zero: the rotation vector is v itself (angle/sin -> 1).
SMALL_SINE = 1e-9
# Below this sine with a negative cosine, the angle is near pi and v has lost its direction.
NEAR_PI_SINE = 1e-6
_DOUBLE_EPSILON = float(np.finfo(np.float64).eps)


def rpy_to_matrix(rpy: Sequence[float]) -> np.ndarray:
    """URDF roll-pitch-yaw (fixed axes x, y, z; rad) -> 3x3 rotation Rz(yaw)·Ry(pitch)·Rx(roll)."""
    roll, pitch, yaw = rpy
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    return np.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ]
    )


def matrix_to_rpy(R: np.ndarray) -> np.ndarray:
    """3x3 rotation -> URDF roll-pitch-yaw (rad); at pitch = ±pi/2 the roll is set to 0."""
    sp = -R[2, 0]
    if abs(sp) > 1.0 - 1e-12:
        pitch = math.copysign(math.pi / 2, sp)
        return np.array([0.0, pitch, math.atan2(-R[0, 1], R[1, 1])])
    return np.array([math.atan2(R[2, 1], R[2, 2]), math.asin(sp), math.atan2(R[1, 0], R[0, 0])])


def xyz_euler_angles(R: np.ndarray) -> tuple[float, float, float, bool]:
    """Intrinsic x-y-z Euler angles (a, b, c) of a rotation R (3x3) = Rx(a)·Ry(b)·Rz(c), rad, in
    [-pi, pi] x [-pi/2, pi/2] x [-pi, pi], and whether R is regular. At the singularity (b = ±pi/2, where
    only a ± c is decided) c is set to 0 and a takes the whole rotation, and the flag is False. The
    extraction is Eigen's EulerSystem's (MoveIt's orientation constraints use it), step for step."""
    r = R.tolist() if isinstance(R, np.ndarray) else R
    (r00, r01, r02), (r10, r11, r12), (r20, r21, r22) = r
    rsum = math.sqrt((r00 * r00 + r01 * r01 + r12 * r12 + r22 * r22) / 2.0)
    b = math.atan2(r02, rsum)
    if rsum > 4.0 * _DOUBLE_EPSILON:
        return math.atan2(-r12, r22), b, math.atan2(-r01, r00), True
    if r02 > 0.0:  # b = pi/2: a + c is decided
        return math.atan2(r10 + r21, r11 - r20), b, 0.0, False
    return math.atan2(r21 - r10, r11 + r20), b, 0.0, False  # b = -pi/2: a - c is decided


def matrix_to_quaternion(R: np.ndarray) -> tuple[float, float, float, float]:
    """Unit quaternion (x, y, z, w) of the rotation matrix ``R`` (3x3), by Shepperd's method."""
    m = np.asarray(R, dtype=np.float64)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0.0:
        s = 2.0 * math.sqrt(1.0 + trace)
        w, x, y, z = 0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        w, x, y, z = (m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        w, x, y, z = (m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        w, x, y, z = (m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s
    norm = math.sqrt(x * x + y * y + z * z + w * w)
    return x / norm, y / norm, z / norm, w / norm


def rotation_vector(R: np.ndarray) -> tuple[float, float, float]:
    """The rotation vector (angle · axis, rad; angle in [0, pi]) of one rotation R (3x3), through its
    quaternion, as Eigen's AngleAxis takes it (MoveIt's orientation constraints do): scalar, a few µs where
    ``log_map`` of one matrix costs about 20."""
    x, y, z, w = matrix_to_quaternion(R)
    sine = math.sqrt(x * x + y * y + z * z)  # sin(angle / 2)
    if sine == 0.0:
        return 0.0, 0.0, 0.0
    scale = 2.0 * math.atan2(sine, abs(w)) / (sine if w >= 0.0 else -sine)
    return x * scale, y * scale, z * scale


def quaternion_to_matrix(x: float, y: float, z: float, w: float) -> np.ndarray:
    """The rotation matrix (3x3) of the unit quaternion (x, y, z, w)."""
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def transform(R: Optional[np.ndarray] = None, p: Optional[Sequence[float]] = None) -> np.ndarray:
    """4x4 homogeneous transform from a 3x3 rotation and a translation in metres."""
    T = np.eye(4)
    if R is not None:
        T[:3, :3] = R
    if p is not None:
        T[:3, 3] = p
    return T


def rot_x(angle: float) -> np.ndarray:
    """3x3 rotation by ``angle`` (rad) about x."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_z(angle: float) -> np.ndarray:
    """3x3 rotation by ``angle`` (rad) about z."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def axis_rotation(axis: Sequence[float], angle: float) -> np.ndarray:
    """3x3 rotation by ``angle`` (rad) about the unit vector ``axis`` (Rodrigues)."""
    K = skew(np.asarray(axis, dtype=np.float64))
    return np.eye(3) + math.sin(angle) * K + (1.0 - math.cos(angle)) * (K @ K)


def skew(v: np.ndarray) -> np.ndarray:
    """The 3x3 matrix [v]× with [v]× u = v × u."""
    return np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])


def log_map(R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation vectors and angles of rotations R (..., 3, 3): (omega (..., 3) rad, angle (...) rad in [0, pi]).

    omega = angle · axis; the angle comes from atan2(sine, cosine), exact from 0 to pi.
    """
    v = 0.5 * np.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], -1)
    sine = np.sqrt((v * v).sum(-1))
    cosine = 0.5 * (R[..., 0, 0] + R[..., 1, 1] + R[..., 2, 2] - 1.0)
    angle = np.arctan2(sine, cosine)
    tiny = sine <= SMALL_SINE
    omega = v * np.where(tiny, 1.0, angle / (sine + tiny))[..., None]
    near_pi = (sine < NEAR_PI_SINE) & (cosine < 0)
    if near_pi.any():
        # At pi, v vanishes but R + I = 2 axis axisᵀ: its largest column is along the axis.
        C = R + np.eye(3)
        best = (C * C).sum(-2).argmax(-1)
        axis = np.take_along_axis(C, best[..., None, None], axis=-1)[..., 0]
        axis = axis / np.sqrt((axis * axis).sum(-1))[..., None]
        omega = np.where(near_pi[..., None], axis * angle[..., None], omega)
    return omega, angle


def pose_errors(T_target: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Errors of poses T against targets, both (..., 4, 4) in one frame.

    Returns (position error vector (..., 3) m, target minus pose; rotation error vector (..., 3) rad, the
    log map of R_target·Rᵀ; position error (...) m, Euclidean; rotation angle (...) rad).
    """
    T_target, T = np.asarray(T_target, dtype=np.float64), np.asarray(T, dtype=np.float64)
    dp = T_target[..., :3, 3] - T[..., :3, 3]
    omega, angle = log_map(T_target[..., :3, :3] @ np.swapaxes(T[..., :3, :3], -1, -2))
    return dp, omega, np.sqrt((dp * dp).sum(-1)), angle
