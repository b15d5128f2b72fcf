"""Independent references for the kinematics tests: Pinocchio FK and the example-robot-data URDFs."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np
import pinocchio


def example_robot_urdf(relative_path: str) -> Path:
    """A URDF shipped by the example-robot-data package, e.g. 'ur_description/urdf/ur5_robot.urdf'."""
    root = importlib.metadata.distribution("example-robot-data").locate_file(
        "cmeel.prefix/share/example-robot-data/robots"
    )
    return Path(str(root)) / relative_path


def pinocchio_fk(urdf_path: Path | str, base_link: str, tip_link: str, joint_names, q: np.ndarray) -> np.ndarray:
    """T_base_tip computed by Pinocchio: q (N, dof) in the order of joint_names -> (N, 4, 4).

    Joints not named stay at Pinocchio's neutral configuration.
    """
    model = pinocchio.buildModelFromUrdf(str(urdf_path))
    data = model.createData()
    base_id, tip_id = model.getFrameId(base_link), model.getFrameId(tip_link)
    # Continuous joints are (cos, sin) pairs in Pinocchio's configuration vector.
    slots = []
    for name in joint_names:
        joint = model.joints[model.getJointId(name)]
        slots.append((joint.idx_q, joint.nq))
    poses = np.empty((len(q), 4, 4))
    for k, q_k in enumerate(np.asarray(q, dtype=np.float64)):
        q_pin = pinocchio.neutral(model)
        for (index, nq), angle in zip(slots, q_k):
            if nq == 2:
                q_pin[index : index + 2] = [np.cos(angle), np.sin(angle)]
            else:
                q_pin[index] = angle
        pinocchio.framesForwardKinematics(model, data, q_pin)
        poses[k] = (data.oMf[base_id].inverse() * data.oMf[tip_id]).homogeneous
    return poses


def pose_errors(T_a: np.ndarray, T_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(position error in m, rotation angle of R_a·R_bᵀ in rad) for (..., 4, 4) poses.

    The angle comes from atan2 of the log map's sine and cosine parts, exact near zero where arccos
    of the trace would lose half the digits.
    """
    position = np.linalg.norm(T_a[..., :3, 3] - T_b[..., :3, 3], axis=-1)
    R = T_a[..., :3, :3] @ np.swapaxes(T_b[..., :3, :3], -1, -2)
    sine = 0.5 * np.linalg.norm(
        np.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], -1),
        axis=-1,
    )
    cosine = 0.5 * (np.trace(R, axis1=-2, axis2=-1) - 1.0)
    return position, np.arctan2(sine, cosine)


def dh_fk(a, d, alpha, theta) -> np.ndarray:
    """Standard DH product of Rz(theta_i)·Tz(d_i)·Tx(a_i)·Rx(alpha_i), each link written out element by element."""
    T = np.eye(4)
    for a_i, d_i, alpha_i, theta_i in zip(a, d, alpha, theta):
        ct, st, ca, sa = np.cos(theta_i), np.sin(theta_i), np.cos(alpha_i), np.sin(alpha_i)
        T = T @ np.array(
            [
                [ct, -st * ca, st * sa, a_i * ct],
                [st, ct * ca, -ct * sa, a_i * st],
                [0.0, sa, ca, d_i],
                [0.0, 0.0, 0.0, 1.0],
            ]
        )
    return T
