"""Serial kinematic chains, built from a URDF or a DH table: forward kinematics and the Jacobian.

A chain is the path of joints from ``base_link`` to ``tip_link``. Fixed joints on that path are
folded into the constant transforms, so the chain holds only movable joints:

    T_base_tip(q) = T_origin[0] · M_0(q_0) · T_origin[1] · M_1(q_1) · ... · M_{n-1}(q_{n-1}) · T_last_tip

where ``T_origin[i]`` is the constant transform from the previous joint's moving frame to joint i's
frame and ``M_i`` is the joint's motion along or about its axis (given in joint i's frame).

Poses are 4x4 homogeneous transforms of the tip in the base frame; lengths in metres, angles in
radians. ``forward`` and ``jacobian`` take numpy arrays (one float64 pose runs a compiled kernel, more
run vectorised numpy) or torch tensors (batched, any float dtype, differentiable); the output type
follows the input. This module never imports torch: a tensor can only come from a caller that did.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ik_neural.geometry import matrix_to_rpy, rot_x, rot_z, skew, transform
from ik_neural.joint_bounds import JointBounds
from ik_neural.kernels.kinematics import ChainArrays, fk_jacobian, joint_frames

if TYPE_CHECKING:
    from ik_neural.urdf_model import UrdfSource

REVOLUTE = "revolute"
CONTINUOUS = "continuous"
PRISMATIC = "prismatic"
MOVABLE_JOINT_TYPES = (REVOLUTE, CONTINUOUS, PRISMATIC)
"""The URDF joint types a chain holds (its fixed joints are folded into the constant transforms)."""

# Digits kept when hashing numbers into the fingerprint: far below any physical tolerance, far
# above the last-bit differences between libm implementations of sin/cos.
_FINGERPRINT_DECIMALS = 9


def _torch_of(q: Any):
    """The torch module if q is a torch tensor, else None (without importing torch)."""
    torch = sys.modules.get("torch")
    return torch if torch is not None and isinstance(q, torch.Tensor) else None


@dataclass(frozen=True, eq=False)
class Joint:
    """One movable joint of a chain.

    ``T_prev_joint`` is the fixed 4x4 transform from the previous joint's moving frame (the base for
    the first joint) to this joint's frame; ``axis`` is a unit vector in this joint's frame.
    Continuous joints have ``lower = -pi``, ``upper = pi``: the range one turn is sampled in.
    ``velocity_limit`` is rad/s (m/s for a prismatic joint), ``math.inf`` where none is given.
    """

    name: str
    type: str
    axis: np.ndarray
    T_prev_joint: np.ndarray
    lower: float
    upper: float
    velocity_limit: float = math.inf


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
                raise ValueError(f"joint {joint.name!r} has type {joint.type!r}; a chain holds {MOVABLE_JOINT_TYPES}")
            if not joint.lower <= joint.upper:
                raise ValueError(f"joint {joint.name!r}: lower limit {joint.lower} is above upper limit {joint.upper}")
            if not joint.velocity_limit > 0:  # NaN fails too
                raise ValueError(f"joint {joint.name!r}: velocity limit {joint.velocity_limit} is not > 0")
        self.joints: tuple[Joint, ...] = tuple(joints)
        self.T_last_tip = np.array(T_last_tip, dtype=np.float64)
        self.base_link = base_link
        self.tip_link = tip_link
        self.joint_names: list[str] = [j.name for j in joints]
        self.lower = np.array([j.lower for j in joints])
        self.upper = np.array([j.upper for j in joints])
        self.is_continuous = np.array([j.type == CONTINUOUS for j in joints])
        # rad/s (m/s for prismatic joints), inf where the URDF gives none; not part of the fingerprint (the
        # kinematics and a trained network do not depend on them).
        self.velocity_limits = np.array([j.velocity_limit for j in joints])
        # The default seed of a solve: mid-limits, 0 for continuous joints.
        self.middle = np.where(self.is_continuous, 0.0, 0.5 * (self.lower + self.upper))
        # Read-only: the fingerprint and the FK constants are computed from these once.
        for array in (self.T_last_tip, self.lower, self.upper, self.is_continuous, self.middle, self.velocity_limits):
            array.setflags(write=False)
        self.fingerprint = self._compute_fingerprint()
        # Where a search may go: the limits, continuous joints over a full turn.
        self.bounds = JointBounds.of_limits(self.joint_names, self.lower, self.upper, self.is_continuous)
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
        K = np.stack([skew(j.axis) for j in joints]) * ~is_prismatic[:, None, None]
        self._np = {
            "T_prev_joint": np.stack([j.T_prev_joint for j in joints]),
            "R0": R0,
            "R0K": R0 @ K,
            "R0K2": R0 @ K @ K,
            "slide": np.einsum("nij,nj->ni", R0, np.stack([j.axis for j in joints])) * is_prismatic[:, None],
            "axis": np.stack([j.axis for j in joints]),
            "revolute": (~is_prismatic).astype(np.float64),
            "prismatic": is_prismatic.astype(np.float64),
            "T_last_tip": self.T_last_tip,
        }
        # The same constants for the compiled kernels (one pose, float64), as the plain tuple they take.
        arrays = ChainArrays(
            R0=R0,
            R0K=self._np["R0K"],
            R0K2=self._np["R0K2"],
            t0=np.stack([j.T_prev_joint[:3, 3] for j in joints]),
            slide=self._np["slide"],
            axis=self._np["axis"],
            prismatic=is_prismatic,
            T_last_tip=self.T_last_tip,
            reach_m=self.reach_m,
        )
        for array in arrays[:-1]:
            array.setflags(write=False)
        self.arrays: tuple = tuple(arrays)
        self._torch_cache: dict[tuple, dict] = {}  # (dtype, device) -> the constants as tensors

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_urdf(cls, urdf: UrdfSource, base_link: str, tip_link: str) -> "KinematicChain":
        """The chain from ``base_link`` to ``tip_link`` of a URDF given as a file path or an XML string
        (``UrdfModel.parse(urdf).chain(...)``; parse once to take several things from one URDF)."""
        from ik_neural.urdf_model import UrdfModel  # the parser depends on the chain, not the reverse

        return UrdfModel.parse(urdf).chain(base_link, tip_link)

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
        velocity_limits: Sequence[float] | None = None,
        joint_names: Sequence[str] | None = None,
        base_link: str = "base_link",
        tip_link: str = "tool0",
    ) -> "KinematicChain":
        """A revolute chain from a standard DH table: link i is Rz(theta_i)·Tz(d_i)·Tx(a_i)·Rx(alpha_i).

        ``theta_i = q_i + theta_offset_i``; a and d in metres, alpha, offsets and limits in radians;
        ``velocity_limits`` in rad/s (default: none given, inf).
        """
        columns = {"a": a, "d": d, "alpha": alpha, "lower": lower, "upper": upper}
        if theta_offset is not None:
            columns["theta_offset"] = theta_offset
        if velocity_limits is not None:
            columns["velocity_limits"] = velocity_limits
        if joint_names is not None:
            columns["joint_names"] = joint_names
        dof = len(a)
        for name, column in columns.items():
            if len(column) != dof:
                raise ValueError(f"DH table: {name} has {len(column)} entries, a has {dof}")
        offsets = [0.0] * dof if theta_offset is None else list(theta_offset)
        names = list(joint_names) if joint_names is not None else [f"joint_{i + 1}" for i in range(dof)]
        velocities = [math.inf] * dof if velocity_limits is None else [float(v) for v in velocity_limits]

        joints: list[Joint] = []
        T_prev = np.eye(4)  # constant part of the previous DH link, after its joint rotation
        for i in range(dof):
            axis_z = np.array([0.0, 0.0, 1.0])
            joints.append(Joint(names[i], REVOLUTE, axis_z, T_prev, float(lower[i]), float(upper[i]), velocities[i]))
            T_prev = transform(rot_z(offsets[i])) @ transform(p=[a[i], 0.0, d[i]]) @ transform(rot_x(alpha[i]))
        return cls(joints, T_prev, base_link, tip_link)

    def to_urdf(self, robot_name: str) -> str:
        """A kinematics-only URDF of this chain (no meshes, no inertias; effort limits 0, velocity limits 0
        where none is given).

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
            velocity = joint.velocity_limit if math.isfinite(joint.velocity_limit) else 0.0
            lines += _urdf_joint_xml(
                joint.name, joint.type, parent, child, joint.T_prev_joint, joint.axis, limits, velocity
            )
        lines += _urdf_joint_xml(
            f"{self.tip_link}_joint", "fixed", last_link, self.tip_link, self.T_last_tip, None, None, 0.0
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

    def forward(self, q):
        """Tip pose in the base frame: q (..., dof) -> T_base_tip (..., 4, 4)."""
        q = self._check_q(q)
        if _is_one_float64_pose(q):
            return fk_jacobian(q, self.arrays)[0]
        return self._frames(q)[1]

    def jacobian(self, q):
        """Geometric Jacobian of the tip in the base frame: q (..., dof) -> (..., 6, dof), rows [linear; angular]."""
        return self._forward_and_jacobian(self._check_q(q))[1]

    def forward_and_jacobian(self, q):
        """Both ``forward(q)`` and ``jacobian(q)``, sharing one pass over the chain."""
        return self._forward_and_jacobian(self._check_q(q))

    def warm_up(self) -> None:
        """Compile (or load from numba's cache) the one-pose kernels (``forward``, ``forward_and_jacobian``,
        ``frames``) for both kinds of q numba compiles apart: read-only (``middle``) and writable (a request's
        or a command's), so that no call compiles them inside a time budget."""
        for q in (self.middle, self.middle.copy()):
            self.forward_and_jacobian(q)
            self.frames(q)

    def _check_q(self, q):
        torch = _torch_of(q)
        if torch is not None:
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

    def _constants(self, q) -> dict:
        torch = _torch_of(q)
        if torch is None:
            if q.dtype == np.float64:
                return self._np
            return {k: v.astype(q.dtype) for k, v in self._np.items()}
        key = (q.dtype, q.device)
        consts = self._torch_cache.get(key)
        if consts is None:
            consts = {k: torch.tensor(v, dtype=q.dtype, device=q.device) for k, v in self._np.items()}
            self._torch_cache[key] = consts
        return consts

    def frames(self, q):
        """Every joint's frame after its motion (..., dof, 4, 4) and the tip pose (..., 4, 4), in the base
        frame: q (..., dof). Vectorised numpy or torch (differentiable); the obstacle loss uses the origins,
        the collision checker the frames of one pose (compiled)."""
        q = self._check_q(q)
        if _is_one_float64_pose(q):
            return joint_frames(q, self.arrays)
        return self._frames(q)

    def _frames(self, q):
        c = self._constants(q)
        torch = _torch_of(q)
        torch_in = torch is not None
        sin, cos, stack = (torch.sin, torch.cos, torch.stack) if torch_in else (np.sin, np.cos, np.stack)
        shape = tuple(q.shape) + (4, 4)
        local = q.new_zeros(shape) if torch_in else np.zeros(shape, dtype=q.dtype)
        local[...] = c["T_prev_joint"]  # the translations and bottom rows; rotations follow
        local[..., :3, :3] = c["R0"] + sin(q)[..., None, None] * c["R0K"] + (1.0 - cos(q))[..., None, None] * c["R0K2"]
        if self._has_prismatic:
            local[..., :3, 3] += q[..., None] * c["slide"]

        T = local[..., 0, :, :]
        frames = [T]
        for i in range(1, self.dof):
            T = T @ local[..., i, :, :]
            frames.append(T)
        return stack(frames, -3), T @ c["T_last_tip"]

    def _forward_and_jacobian(self, q):
        if _is_one_float64_pose(q):
            return fk_jacobian(q, self.arrays)
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
        J = (
            q.new_zeros(q.shape[:-1] + (6, self.dof))
            if _torch_of(q) is not None
            else np.empty(q.shape[:-1] + (6, self.dof), dtype=q.dtype)
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


def _is_one_float64_pose(q) -> bool:
    """One numpy float64 configuration: the case the compiled kernels serve."""
    return isinstance(q, np.ndarray) and q.ndim == 1 and q.dtype == np.float64


def _urdf_joint_xml(
    name: str,
    joint_type: str,
    parent: str,
    child: str,
    T_parent_child: np.ndarray,
    axis: np.ndarray | None,
    limits: tuple[float, float] | None,
    velocity: float,
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
        lines.append(f'    <limit lower="{limits[0]!r}" upper="{limits[1]!r}" effort="0" velocity="{velocity!r}"/>')
    elif velocity:  # a continuous joint: its velocity limit alone
        lines.append(f'    <limit effort="0" velocity="{velocity!r}"/>')
    lines.append("  </joint>")
    return lines
