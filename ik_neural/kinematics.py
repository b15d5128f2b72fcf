"""Serial kinematic chains: built from a URDF or a DH table; forward kinematics and Jacobian.

A chain is the path of joints from ``base_link`` to ``tip_link``. Fixed joints on that path are
folded into the constant transforms, so the chain holds only movable joints:

    T_base_tip(q) = T_origin[0] · M_0(q_0) · T_origin[1] · M_1(q_1) · ... · M_{n-1}(q_{n-1}) · T_last_tip

where ``T_origin[i]`` is the constant transform from the previous joint's moving frame to joint i's
frame and ``M_i`` is the joint's motion along or about its axis (given in joint i's frame).

Poses are 4x4 homogeneous transforms of the tip in the base frame; lengths in metres, angles in
radians. ``forward`` and ``jacobian`` take numpy arrays (a lean path for one pose at a time) or
torch tensors (batched, any float dtype, differentiable); the output type follows the input.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, TypeVar, Union
from xml.etree import ElementTree

import numpy as np
import torch
from urdf_parser_py.urdf import URDF
from urdf_parser_py.xml_reflection.core import ParseError as URDFParseError

from ik_neural import single_pose

Array = TypeVar("Array", np.ndarray, torch.Tensor)
UrdfSource = Union[str, os.PathLike]

REVOLUTE = "revolute"
CONTINUOUS = "continuous"
PRISMATIC = "prismatic"
MOVABLE_JOINT_TYPES = (REVOLUTE, CONTINUOUS, PRISMATIC)

# Digits kept when hashing numbers into the fingerprint: far below any physical tolerance, far
# above the last-bit differences between libm implementations of sin/cos.
_FINGERPRINT_DECIMALS = 9


@dataclass(frozen=True, eq=False)
class Joint:
    """One movable joint of a chain.

    ``T_prev_joint`` is the fixed 4x4 transform from the previous joint's moving frame (the base for
    the first joint) to this joint's frame; ``axis`` is a unit vector in this joint's frame.
    Continuous joints have ``lower = -pi``, ``upper = pi``: the range one turn is sampled in.
    """

    name: str
    type: str
    axis: np.ndarray
    T_prev_joint: np.ndarray
    lower: float
    upper: float


def rpy_to_matrix(rpy: Sequence[float]) -> np.ndarray:
    """URDF roll-pitch-yaw (fixed axes x, y, z; radians) -> 3x3 rotation Rz(yaw)·Ry(pitch)·Rx(roll)."""
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
    """3x3 rotation -> URDF roll-pitch-yaw (radians); at pitch = ±pi/2 the roll is set to 0."""
    sp = -R[2, 0]
    if abs(sp) > 1.0 - 1e-12:
        pitch = math.copysign(math.pi / 2, sp)
        return np.array([0.0, pitch, math.atan2(-R[0, 1], R[1, 1])])
    return np.array(
        [math.atan2(R[2, 1], R[2, 2]), math.asin(sp), math.atan2(R[1, 0], R[0, 0])]
    )


def quaternion_xyzw(R: np.ndarray) -> tuple[float, float, float, float]:
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


def quaternion_xyzw_to_matrix(x: float, y: float, z: float, w: float) -> np.ndarray:
    """The rotation matrix (3x3) of the unit quaternion (x, y, z, w)."""
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])  # fmt: skip


def transform(R: np.ndarray | None = None, p: Sequence[float] | None = None) -> np.ndarray:
    """4x4 homogeneous transform from a 3x3 rotation and a translation in metres."""
    T = np.eye(4)
    if R is not None:
        T[:3, :3] = R
    if p is not None:
        T[:3, 3] = p
    return T


def _rot_z(theta: float) -> np.ndarray:
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _rot_x(alpha: float) -> np.ndarray:
    c, s = math.cos(alpha), math.sin(alpha)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _skew(v: np.ndarray) -> np.ndarray:
    return np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])


class KinematicChain:
    """A serial chain of revolute, continuous and prismatic joints from ``base_link`` to ``tip_link``."""

    def __init__(
        self,
        joints: Sequence[Joint],
        T_last_tip: np.ndarray,
        base_link: str,
        tip_link: str,
    ) -> None:
        if not joints:
            raise ValueError(f"chain {base_link!r} -> {tip_link!r} has no movable joints")
        for joint in joints:
            if joint.type not in MOVABLE_JOINT_TYPES:
                raise ValueError(
                    f"joint {joint.name!r} has type {joint.type!r}; a chain holds {MOVABLE_JOINT_TYPES}"
                )
            if not joint.lower <= joint.upper:
                raise ValueError(
                    f"joint {joint.name!r}: lower limit {joint.lower} is above upper limit {joint.upper}"
                )
        self.joints: tuple[Joint, ...] = tuple(joints)
        self.T_last_tip = np.array(T_last_tip, dtype=np.float64)
        self.base_link = base_link
        self.tip_link = tip_link
        self.joint_names: list[str] = [j.name for j in joints]
        self.lower = np.array([j.lower for j in joints])
        self.upper = np.array([j.upper for j in joints])
        self.is_continuous = np.array([j.type == CONTINUOUS for j in joints])
        # The default seed of a solve: mid-limits, 0 for continuous joints.
        self.middle = np.where(self.is_continuous, 0.0, 0.5 * (self.lower + self.upper))
        # Read-only: the fingerprint and the FK constants are computed from these once.
        for array in (self.T_last_tip, self.lower, self.upper, self.is_continuous, self.middle):
            array.setflags(write=False)
        self.fingerprint = self._compute_fingerprint()
        # Upper bound of the distance from the first joint to the tip, in metres (prismatic strokes in).
        links = [np.linalg.norm(j.T_prev_joint[:3, 3]) for j in joints[1:]] + [np.linalg.norm(T_last_tip[:3, 3])]
        strokes = [max(abs(j.lower), abs(j.upper)) for j in joints if j.type == PRISMATIC]
        self.reach_m = float(sum(links) + sum(strokes))

        # Constants of the vectorised FK. A revolute joint's local transform is
        #   T_prev_joint · Rot(axis, q) = [R0 + sin q · R0 K + (1 - cos q) · R0 K², t0]
        # (Rodrigues, K the axis' skew matrix); a prismatic one is [R0, t0 + q · R0 axis].
        is_prismatic = np.array([j.type == PRISMATIC for j in joints])
        self._has_prismatic = bool(is_prismatic.any())
        R0 = np.stack([j.T_prev_joint[:3, :3] for j in joints])
        K = np.stack([_skew(j.axis) for j in joints]) * ~is_prismatic[:, None, None]
        self._np = {
            "T_prev_joint": np.stack([j.T_prev_joint for j in joints]),
            "R0": R0,
            "R0K": R0 @ K,
            "R0K2": R0 @ K @ K,
            "slide": np.einsum("nij,nj->ni", R0, np.stack([j.axis for j in joints]))
            * is_prismatic[:, None],
            "axis": np.stack([j.axis for j in joints]),
            "revolute": (~is_prismatic).astype(np.float64),
            "prismatic": is_prismatic.astype(np.float64),
            "T_last_tip": self.T_last_tip,
        }
        # The same constants, in the order the compiled single-pose kernels take them.
        self.kernel_constants = (
            R0, self._np["R0K"], self._np["R0K2"], np.stack([j.T_prev_joint[:3, 3] for j in joints]),
            self._np["slide"], self._np["axis"], is_prismatic, self.T_last_tip,
        )  # fmt: skip
        self._torch_cache: dict[tuple[torch.dtype, torch.device], dict[str, torch.Tensor]] = {}

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_urdf(cls, urdf: UrdfSource, base_link: str, tip_link: str) -> "KinematicChain":
        """The chain from ``base_link`` to ``tip_link`` of a URDF given as a file path or an XML string."""
        robot, origin = _parse_urdf(urdf)
        links = {link.name for link in robot.links}
        for role, name in (("base_link", base_link), ("tip_link", tip_link)):
            if name not in links:
                raise ValueError(
                    f"{role} {name!r} is not a link of URDF robot {robot.name!r} ({origin}); "
                    f"links: {sorted(links)}"
                )

        # Walk up from the tip: in a URDF tree each link has at most one parent joint.
        path = []
        link = tip_link
        while link != base_link:
            if link not in robot.parent_map or len(path) > len(robot.joints):
                # No parent: the top of the tree was reached. More steps than joints: a cycle.
                raise ValueError(
                    f"no path from base_link {base_link!r} to tip_link {tip_link!r} in URDF "
                    f"robot {robot.name!r} ({origin}): {tip_link!r} is not below {base_link!r}"
                )
            joint_name, link = robot.parent_map[link]
            path.append(robot.joint_map[joint_name])
        path.reverse()

        joints: list[Joint] = []
        T_pending = np.eye(4)  # fixed transforms since the last movable joint
        for urdf_joint in path:
            T_origin = _urdf_origin(urdf_joint.origin)
            if urdf_joint.type == "fixed":
                T_pending = T_pending @ T_origin
                continue
            if urdf_joint.type not in MOVABLE_JOINT_TYPES:
                raise ValueError(
                    f"joint {urdf_joint.name!r} has type {urdf_joint.type!r}, which a serial chain "
                    f"cannot hold (supported: fixed, {', '.join(MOVABLE_JOINT_TYPES)})"
                )
            if urdf_joint.mimic is not None:
                raise ValueError(f"joint {urdf_joint.name!r} is a mimic joint; mimic joints are not supported")
            lower, upper = _joint_limits(urdf_joint)
            joints.append(
                Joint(urdf_joint.name, urdf_joint.type, _unit_axis(urdf_joint), T_pending @ T_origin, lower, upper)
            )
            T_pending = np.eye(4)
        return cls(joints, T_pending, base_link, tip_link)

    @classmethod
    def from_dh(
        cls,
        a: Sequence[float],
        d: Sequence[float],
        alpha: Sequence[float],
        theta_offset: Sequence[float] | None = None,
        *,
        lower: Sequence[float],
        upper: Sequence[float],
        joint_names: Sequence[str] | None = None,
        base_link: str = "base_link",
        tip_link: str = "tool0",
    ) -> "KinematicChain":
        """A revolute chain from a standard DH table: link i is Rz(theta_i)·Tz(d_i)·Tx(a_i)·Rx(alpha_i).

        ``theta_i = q_i + theta_offset_i``; a and d in metres, alpha, offsets and limits in radians.
        """
        columns = {"a": a, "d": d, "alpha": alpha, "lower": lower, "upper": upper}
        if theta_offset is not None:
            columns["theta_offset"] = theta_offset
        if joint_names is not None:
            columns["joint_names"] = joint_names
        dof = len(a)
        for name, column in columns.items():
            if len(column) != dof:
                raise ValueError(f"DH table: {name} has {len(column)} entries, a has {dof}")
        offsets = [0.0] * dof if theta_offset is None else list(theta_offset)
        names = list(joint_names) if joint_names is not None else [f"joint_{i + 1}" for i in range(dof)]

        joints: list[Joint] = []
        T_prev = np.eye(4)  # constant part of the previous DH link, after its joint rotation
        for i in range(dof):
            joints.append(
                Joint(names[i], REVOLUTE, np.array([0.0, 0.0, 1.0]), T_prev, float(lower[i]), float(upper[i]))
            )
            T_prev = (
                transform(_rot_z(offsets[i]))
                @ transform(p=[a[i], 0.0, d[i]])
                @ transform(_rot_x(alpha[i]))
            )
        return cls(joints, T_prev, base_link, tip_link)

    def to_urdf(self, robot_name: str) -> str:
        """A kinematics-only URDF of this chain (no meshes, no inertias; effort and velocity limits 0).

        Links are ``base_link``, ``<joint>_link`` after each joint but the last, and ``tip_link``.
        """
        link_names = [self.base_link] + [f"{j.name}_link" for j in self.joints[:-1]]
        lines = ['<?xml version="1.0"?>', f'<robot name="{robot_name}">']
        lines += [f'  <link name="{name}"/>' for name in link_names]
        last_link = f"{self.joints[-1].name}_link"
        lines += [f'  <link name="{last_link}"/>', f'  <link name="{self.tip_link}"/>']
        children = link_names[1:] + [last_link]
        for joint, parent, child in zip(self.joints, link_names, children):
            limits = None if joint.type == CONTINUOUS else (joint.lower, joint.upper)
            lines += _urdf_joint_xml(joint.name, joint.type, parent, child, joint.T_prev_joint, joint.axis, limits)
        lines += _urdf_joint_xml(
            f"{self.tip_link}_joint", "fixed", last_link, self.tip_link, self.T_last_tip, None, None
        )
        lines.append("</robot>")
        return "\n".join(lines) + "\n"

    # ------------------------------------------------------------------ properties

    @property
    def dof(self) -> int:
        """Number of movable joints."""
        return len(self.joints)

    def __repr__(self) -> str:
        return (
            f"KinematicChain({self.base_link!r} -> {self.tip_link!r}, {self.dof} joints, "
            f"fingerprint {self.fingerprint})"
        )

    def _compute_fingerprint(self) -> str:
        """Hash of what the kinematics depend on: joint types, axes, transforms and limits.

        Names are left out on purpose: a prefixed copy of a robot (``left_joint1``) is the same chain.
        """

        def numbers(values: np.ndarray) -> list[float]:
            # + 0.0 turns -0.0 into 0.0 so that the sign of a zero never changes the hash.
            return [round(float(v), _FINGERPRINT_DECIMALS) + 0.0 for v in np.ravel(values)]

        content = {
            "joints": [
                {
                    "type": j.type,
                    "axis": numbers(j.axis),
                    "T_prev_joint": numbers(j.T_prev_joint[:3]),
                    "limits": numbers([j.lower, j.upper]),
                }
                for j in self.joints
            ],
            "T_last_tip": numbers(self.T_last_tip[:3]),
        }
        digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
        return digest[:16]

    # ------------------------------------------------------------------ kinematics

    def forward(self, q: Array) -> Array:
        """Tip pose in the base frame: q (..., dof) -> T_base_tip (..., 4, 4)."""
        q = self._check_q(q)
        if _is_one_float64_pose(q):
            return single_pose.fk_jacobian(q, *self.kernel_constants)[0]
        return self._frames(q)[1]

    def jacobian(self, q: Array) -> Array:
        """Geometric Jacobian of the tip in the base frame: q (..., dof) -> (..., 6, dof), rows [linear; angular]."""
        return self._forward_and_jacobian(self._check_q(q))[1]

    def forward_and_jacobian(self, q: Array) -> tuple[Array, Array]:
        """Both ``forward(q)`` and ``jacobian(q)``, sharing one pass over the chain."""
        return self._forward_and_jacobian(self._check_q(q))

    def _check_q(self, q: Array | Sequence[float]) -> Array:
        if isinstance(q, torch.Tensor):
            if not q.is_floating_point():
                q = q.to(torch.float64)
            finite = torch.isfinite(q)
        else:
            if not (isinstance(q, np.ndarray) and q.dtype.char in "fd"):
                q = np.asarray(q, dtype=np.float64)
            finite = np.isfinite(q)
        if q.ndim == 0 or q.shape[-1] != self.dof:
            raise ValueError(
                f"q has shape {tuple(q.shape)}; expected (..., {self.dof}) for the joints {self.joint_names}"
            )
        if not finite.all():
            bad = finite.reshape(-1, self.dof).all(0)
            names = [n for n, ok in zip(self.joint_names, bad.tolist()) if not ok]
            raise ValueError(f"q has non-finite values (NaN or inf) for joints {names}")
        return q

    def _constants(self, q: Array) -> dict:
        if not isinstance(q, torch.Tensor):
            if q.dtype == np.float64:
                return self._np
            return {k: v.astype(q.dtype) for k, v in self._np.items()}
        key = (q.dtype, q.device)
        consts = self._torch_cache.get(key)
        if consts is None:
            consts = {k: torch.tensor(v, dtype=q.dtype, device=q.device) for k, v in self._np.items()}
            self._torch_cache[key] = consts
        return consts

    def frames(self, q: Array) -> tuple[Array, Array]:
        """Every joint's frame after its motion (..., dof, 4, 4) and the tip pose (..., 4, 4), in the base
        frame: q (..., dof). Vectorised numpy or torch (differentiable); the obstacle loss uses the origins."""
        return self._frames(self._check_q(q))

    def _frames(self, q: Array) -> tuple[Array, Array]:
        c = self._constants(q)
        torch_in = isinstance(q, torch.Tensor)
        sin, cos, stack = (torch.sin, torch.cos, torch.stack) if torch_in else (np.sin, np.cos, np.stack)
        shape = tuple(q.shape) + (4, 4)
        local = q.new_zeros(shape) if torch_in else np.zeros(shape, dtype=q.dtype)
        local[...] = c["T_prev_joint"]  # the translations and bottom rows; rotations follow
        local[..., :3, :3] = (
            c["R0"] + sin(q)[..., None, None] * c["R0K"] + (1.0 - cos(q))[..., None, None] * c["R0K2"]
        )
        if self._has_prismatic:
            local[..., :3, 3] += q[..., None] * c["slide"]

        T = local[..., 0, :, :]
        frames = [T]
        for i in range(1, self.dof):
            T = T @ local[..., i, :, :]
            frames.append(T)
        return stack(frames, -3), T @ c["T_last_tip"]

    def _forward_and_jacobian(self, q: Array) -> tuple[Array, Array]:
        if _is_one_float64_pose(q):
            return single_pose.fk_jacobian(q, *self.kernel_constants)
        c = self._constants(q)
        frames, T_base_tip = self._frames(q)
        # Joint axes and origins in the base frame (rotation about an axis moves neither).
        z = (frames[..., :3, :3] @ c["axis"][..., None])[..., 0]
        lever = T_base_tip[..., None, :3, 3] - frames[..., :3, 3]
        if self._has_prismatic:
            # A prismatic joint moves the tip along its axis and does not turn it.
            revolute, prismatic = c["revolute"], c["prismatic"]
            lever = lever * revolute[:, None]
            z_linear, z = z * prismatic[:, None], z * revolute[:, None]
        J = q.new_zeros(q.shape[:-1] + (6, self.dof)) if isinstance(q, torch.Tensor) else np.empty(
            q.shape[:-1] + (6, self.dof), dtype=q.dtype
        )
        # Linear rows: z × lever, written component by component straight into J (np.cross and
        # stacking cost more than the whole FK for one pose).
        z0, z1, z2 = z[..., 0], z[..., 1], z[..., 2]
        l0, l1, l2 = lever[..., 0], lever[..., 1], lever[..., 2]
        J[..., 0, :] = z1 * l2 - z2 * l1
        J[..., 1, :] = z2 * l0 - z0 * l2
        J[..., 2, :] = z0 * l1 - z1 * l0
        if self._has_prismatic:
            J[..., :3, :] += z_linear.swapaxes(-1, -2)
        J[..., 3:, :] = z.swapaxes(-1, -2)
        return T_base_tip, J


def rigidly_attached_frames(urdf: UrdfSource, link: str) -> dict[str, np.ndarray]:
    """Every link of the URDF joined to ``link`` by fixed joints only (up or down the tree), ``link``
    itself included: name -> T_link_frame (4, 4), that frame's pose in ``link``'s frame.

    ValueError for an unreadable URDF or a ``link`` it does not have.
    """
    robot, origin = _parse_urdf(urdf)
    if link not in {each.name for each in robot.links}:
        raise ValueError(f"{link!r} is not a link of URDF robot {robot.name!r} ({origin})")
    # Fixed joints as edges both ways: T_parent_child one way, its inverse the other.
    edges: dict[str, list[tuple[str, np.ndarray]]] = {}
    for joint in robot.joints:
        if joint.type == "fixed":
            T_parent_child = _urdf_origin(joint.origin)
            edges.setdefault(joint.parent, []).append((joint.child, T_parent_child))
            edges.setdefault(joint.child, []).append((joint.parent, np.linalg.inv(T_parent_child)))
    frames = {link: np.eye(4)}
    pending = [link]
    while pending:
        name = pending.pop()
        for other, T_name_other in edges.get(name, []):
            if other not in frames:
                frames[other] = frames[name] @ T_name_other
                pending.append(other)
    return frames


def _is_one_float64_pose(q: Array) -> bool:
    """One numpy float64 configuration: the case the compiled kernels serve."""
    return isinstance(q, np.ndarray) and q.ndim == 1 and q.dtype == np.float64


# ---------------------------------------------------------------------- URDF helpers


def _read_urdf(urdf: UrdfSource) -> tuple[str, str]:
    """(XML text, a short description of where it came from for error messages)."""
    if isinstance(urdf, str) and urdf.lstrip().startswith("<"):
        return urdf, "XML string"
    path = Path(urdf)
    try:
        return path.read_text(), str(path)
    except OSError as exc:
        raise ValueError(f"cannot read URDF file {str(path)!r}: {exc.strerror}") from exc


def urdf_joint_names(urdf: UrdfSource) -> list[str]:
    """Names of every joint of the URDF (fixed ones included), in file order."""
    return [joint.name for joint in _parse_urdf(urdf)[0].joints]


def _parse_urdf(urdf: UrdfSource) -> tuple[URDF, str]:
    """(the URDF's kinematic tree, where it came from); ValueError for an unreadable or malformed one."""
    xml, origin = _read_urdf(urdf)
    try:
        return URDF.from_xml_string(_kinematic_elements(xml, origin)), origin
    except (URDFParseError, ValueError, AttributeError) as exc:
        raise ValueError(f"malformed URDF ({origin}): {exc}") from exc


def _kinematic_elements(xml: str, origin: str) -> str:
    """The URDF reduced to link names and joints, the only parts a chain needs.

    Visuals, transmissions, gazebo and sensor tags are dropped before urdf_parser_py sees them, so
    that a dialect it does not know (e.g. ROS 1 style transmissions) cannot fail the chain.
    """
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as exc:
        raise ValueError(f"malformed URDF XML ({origin}): {exc}") from exc
    if root.tag != "robot":
        raise ValueError(f"URDF ({origin}) has root element <{root.tag}>; expected <robot>")
    kinematic = ElementTree.Element("robot", root.attrib)
    for element in root:
        if element.tag == "link":
            ElementTree.SubElement(kinematic, "link", {k: v for k, v in element.attrib.items() if k == "name"})
        elif element.tag == "joint":
            kinematic.append(element)
    return ElementTree.tostring(kinematic, encoding="unicode")


def _urdf_origin(origin) -> np.ndarray:
    if origin is None:
        return np.eye(4)
    xyz = origin.xyz if origin.xyz is not None else [0.0, 0.0, 0.0]
    rpy = origin.rpy if origin.rpy is not None else [0.0, 0.0, 0.0]
    return transform(rpy_to_matrix(rpy), xyz)


def _unit_axis(urdf_joint) -> np.ndarray:
    # URDF's default axis is x.
    axis = np.array(urdf_joint.axis if urdf_joint.axis is not None else [1.0, 0.0, 0.0], dtype=np.float64)
    norm = np.linalg.norm(axis)
    if not np.isfinite(norm) or norm < 1e-12:
        raise ValueError(f"joint {urdf_joint.name!r} has a zero or non-finite axis {axis.tolist()}")
    return axis / norm


def _joint_limits(urdf_joint) -> tuple[float, float]:
    if urdf_joint.type == CONTINUOUS:
        return -math.pi, math.pi
    limit = urdf_joint.limit
    if limit is None or limit.lower is None or limit.upper is None:
        raise ValueError(
            f"{urdf_joint.type} joint {urdf_joint.name!r} has no <limit lower=... upper=...>; "
            f"URDF requires limits for {urdf_joint.type} joints"
        )
    lower, upper = float(limit.lower), float(limit.upper)
    if not (math.isfinite(lower) and math.isfinite(upper)) or lower > upper:
        raise ValueError(f"joint {urdf_joint.name!r} has invalid limits lower={lower}, upper={upper}")
    return lower, upper


def _urdf_joint_xml(
    name: str,
    joint_type: str,
    parent: str,
    child: str,
    T_parent_child: np.ndarray,
    axis: np.ndarray | None,
    limits: tuple[float, float] | None,
) -> list[str]:
    def numbers(values) -> str:
        return " ".join(repr(float(v) + 0.0) for v in values)

    lines = [
        f'  <joint name="{name}" type="{joint_type}">',
        f'    <parent link="{parent}"/>',
        f'    <child link="{child}"/>',
        f'    <origin xyz="{numbers(T_parent_child[:3, 3])}" rpy="{numbers(matrix_to_rpy(T_parent_child[:3, :3]))}"/>',
    ]
    if axis is not None:
        lines.append(f'    <axis xyz="{numbers(axis)}"/>')
    if limits is not None:
        lines.append(f'    <limit lower="{limits[0]!r}" upper="{limits[1]!r}" effort="0" velocity="0"/>')
    lines.append("  </joint>")
    return lines
