"""Constraints on where a link of the chain may be, decided as MoveIt decides a request's constraints
(moveit_core's kinematic_constraints: ``PositionConstraint::decide``, ``OrientationConstraint::decide``), and
the acceptance test that holds a solve to them (``ConstraintTest``).

A constraint is on a link whose pose the chain's joints decide (a ``ChainLink``: fixed to the base or to a
joint's frame, e.g. the tip, a hand or a TCP frame); its target is given in the chain's base frame. Lengths
in metres, angles in radians. No ROS: the request layer (ik_neural.ros.request) builds these from
moveit_msgs/Constraints.

- Position: the link's origin plus an offset (in the link's frame) must lie inside at least one region: a
  box (full edge lengths, centred), a sphere, or a cylinder (its axis along z, centred); boundaries count as
  inside, as geometric_shapes' bodies have them.
- Orientation: the rotation from the target to the link, R_targetᵀ·R_link, is measured per axis either as
  its intrinsic x-y-z Euler angles (``XYZ_EULER_ANGLES``: about the target's axes, each wrapped to
  [0, pi]; at the Euler singularity a rotation the z tolerance cannot hold is taken about z), or as its
  rotation vector expressed in the axes of the frame the target was given in (``ROTATION_VECTOR``: the
  target's rotation in that frame turns the vector), absolute values; each must be below its tolerance
  plus double epsilon.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import numpy as np

from ik_neural.chain import KinematicChain
from ik_neural.geometry import rotation_vector, xyz_euler_angles
from ik_neural.kernels.kinematics import joint_frames
from ik_neural.query import AcceptanceTest
from ik_neural.urdf_model import BOX, CYLINDER, SPHERE, ChainLink, Geometry

XYZ_EULER_ANGLES, ROTATION_VECTOR = 0, 1
"""moveit_msgs/OrientationConstraint's parameterizations."""
PARAMETERIZATIONS = {XYZ_EULER_ANGLES: "XYZ_EULER_ANGLES", ROTATION_VECTOR: "ROTATION_VECTOR"}
REGION_KINDS = (BOX, SPHERE, CYLINDER)
_EPSILON = float(np.finfo(np.float64).eps)  # MoveIt's slack on every orientation tolerance
_TWO_PI = 2.0 * math.pi


def wrapped_angle(angle: float) -> float:
    """|angle| wrapped into [0, pi] (rad), as MoveIt wraps an Euler angle's error."""
    turned = math.fmod(abs(angle), _TWO_PI)
    return min(_TWO_PI - turned, turned)


class Region:
    """A box, sphere or cylinder (``Geometry``) at T_base_region (4, 4); ``contains(p)`` for a point p (3,)
    in the base frame. ValueError for another kind of geometry or a pose that is not finite."""

    def __init__(self, geometry: Geometry, T_base_region: np.ndarray) -> None:
        if geometry.kind not in REGION_KINDS:
            raise ValueError(f"a constraint region is a box, sphere or cylinder, not a {geometry.kind}")
        T = np.asarray(T_base_region, dtype=np.float64)
        if not np.isfinite(T).all():
            raise ValueError("the region's pose is not finite once expressed in the base frame")
        self.geometry = geometry
        self.T_base_region = T
        # Plain floats: a point is checked in a few hundred ns, where numpy's calls on 3-vectors cost µs.
        self._center = tuple(T[:3, 3].tolist())
        self._R_region_base = tuple(tuple(row) for row in T[:3, :3].T.tolist())
        size = geometry.size
        if geometry.kind == BOX:
            self._half = (0.5 * size[0], 0.5 * size[1], 0.5 * size[2])
        elif geometry.kind == SPHERE:
            self._radius2 = size[0] * size[0]
        else:  # CYLINDER: (radius, length)
            self._radius2, self._half_length = size[0] * size[0], 0.5 * size[1]

    def contains(self, p: Sequence[float]) -> bool:
        """Whether the point p (3,) (base frame, m) is inside or on the boundary."""
        cx, cy, cz = self._center
        dx, dy, dz = p[0] - cx, p[1] - cy, p[2] - cz
        (r00, r01, r02), (r10, r11, r12), (r20, r21, r22) = self._R_region_base
        x, y, z = r00 * dx + r01 * dy + r02 * dz, r10 * dx + r11 * dy + r12 * dz, r20 * dx + r21 * dy + r22 * dz
        kind = self.geometry.kind
        if kind == BOX:
            hx, hy, hz = self._half
            return abs(x) <= hx and abs(y) <= hy and abs(z) <= hz
        if kind == SPHERE:
            return x * x + y * y + z * z <= self._radius2
        if abs(z) > self._half_length:
            return False
        remaining = self._radius2 - x * x  # geometric_shapes' cylinder test, step for step
        return remaining >= 0.0 and y * y <= remaining


@dataclass(frozen=True, eq=False)
class PositionConstraint:
    """The point ``offset`` (3,) (m, in the link's frame) of the link placed at ``link`` must lie inside
    at least one of ``regions`` (base frame). ``label`` names it in messages."""

    label: str
    link: ChainLink
    offset: np.ndarray
    regions: tuple[Region, ...]
    _point: tuple[float, float, float] = field(init=False, repr=False)  # the offset point in the link's chain frame

    def __post_init__(self) -> None:
        T = self.link.T_frame_link
        point = T[:3, :3] @ np.asarray(self.offset, dtype=np.float64) + T[:3, 3]
        object.__setattr__(self, "_point", tuple(point.tolist()))
        if not self.regions:
            raise ValueError("a position constraint needs at least one region")

    def point(self, F: np.ndarray) -> tuple[float, float, float]:
        """The constrained point (x, y, z) in the base frame, the joint frames F (dof, 4, 4) given."""
        px, py, pz = self._point
        if self.link.frame < 0:
            return px, py, pz
        (r00, r01, r02, x), (r10, r11, r12, y), (r20, r21, r22, z) = F[self.link.frame, :3].tolist()
        return (
            r00 * px + r01 * py + r02 * pz + x,
            r10 * px + r11 * py + r12 * pz + y,
            r20 * px + r21 * py + r22 * pz + z,
        )

    def holds(self, F: np.ndarray) -> bool:
        """Whether the constraint holds with the joint frames F (dof, 4, 4) (``KinematicChain.frames``)."""
        p = self.point(F)
        return any(region.contains(p) for region in self.regions)


@dataclass(frozen=True, eq=False)
class OrientationConstraint:
    """The link placed at ``link`` must be turned from ``R_base_target`` (3, 3) by at most ``tolerances_rad``
    (x, y, z; each >= 0, inf: free) as ``parameterization`` measures it; ``R_frame_target`` (3, 3): the
    target as given, in its own frame (``ROTATION_VECTOR`` measures in that frame's axes). ``label`` names
    it in messages."""

    label: str
    link: ChainLink
    R_base_target: np.ndarray
    tolerances_rad: tuple[float, float, float]
    parameterization: int = XYZ_EULER_ANGLES
    R_frame_target: Optional[np.ndarray] = None  # None: the target was given in the base frame
    _R_target_base: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.parameterization not in PARAMETERIZATIONS:
            raise ValueError(f"parameterization {self.parameterization!r} is not one of {PARAMETERIZATIONS}")
        if not all(t >= 0 for t in self.tolerances_rad):  # NaN fails too
            raise ValueError(f"tolerances {self.tolerances_rad} must be >= 0 (rad)")
        object.__setattr__(self, "_R_target_base", np.ascontiguousarray(np.asarray(self.R_base_target).T))
        if self.R_frame_target is None:
            object.__setattr__(self, "R_frame_target", np.asarray(self.R_base_target, dtype=np.float64))

    def rotation(self, F: np.ndarray) -> np.ndarray:
        """R_target_link (3, 3): the link's rotation from the target, the joint frames F (dof, 4, 4) given."""
        frame, R_frame_link = self.link.frame, self.link.T_frame_link[:3, :3]
        R_base_link = R_frame_link if frame < 0 else F[frame][:3, :3] @ R_frame_link
        return self._R_target_base @ R_base_link

    def errors(self, R_target_link: np.ndarray) -> tuple[float, float, float]:
        """The error (x, y, z) (rad, each in [0, pi]) of R_target_link (3, 3), as MoveIt measures it."""
        if self.parameterization == ROTATION_VECTOR:
            omega = np.array(rotation_vector(R_target_link))  # in the target's axes
            x, y, z = np.abs(self.R_frame_target @ omega).tolist()  # in the axes of the target's frame
            return x, y, z
        a, b, c, regular = xyz_euler_angles(R_target_link)
        if not regular and wrapped_angle(a) > self.tolerances_rad[2] + _EPSILON:
            a, c = 0.0, a  # at the singularity: taken as a rotation about z, so the z tolerance sees it
        return wrapped_angle(a), wrapped_angle(b), wrapped_angle(c)

    def holds(self, F: np.ndarray) -> bool:
        """Whether the constraint holds with the joint frames F (dof, 4, 4) (``KinematicChain.frames``)."""
        x, y, z = self.errors(self.rotation(F))
        tx, ty, tz = self.tolerances_rad
        return z < tz + _EPSILON and y < ty + _EPSILON and x < tx + _EPSILON


LinkConstraint = Union[PositionConstraint, OrientationConstraint]


class ConstraintTest:
    """The acceptance test (``IKQuery.accept``) of ``constraints`` on ``chain``'s links: q (dof,) is accepted
    when every constraint holds and then ``then(q)`` (e.g. a collision check, asked only of configurations
    the constraints accept). Counts, per constraint label, the candidates each rejected (the first that
    fails is counted). One per solve: the counts are its own."""

    def __init__(
        self, chain: KinematicChain, constraints: Sequence[LinkConstraint], then: Optional[AcceptanceTest] = None
    ) -> None:
        self.chain = chain
        self.constraints = tuple(constraints)
        self.then = then
        self.rejected: dict[str, int] = {}
        """label -> how many candidates that constraint rejected, in the order first seen."""

    def violated(self, q: np.ndarray) -> Optional[LinkConstraint]:
        """The first of the constraints that q (dof,) violates, else None (``then`` is not asked)."""
        # The chain's own compiled FK, as KinematicChain.frames runs it for one pose, without its input
        # checks (a few µs): the solver's candidates are finite float64 (dof,).
        F = joint_frames(np.ascontiguousarray(q, dtype=np.float64), self.chain.arrays)[0]
        for constraint in self.constraints:
            if not constraint.holds(F):
                return constraint
        return None

    def __call__(self, q: np.ndarray) -> bool:
        constraint = self.violated(q)
        if constraint is not None:
            self.rejected[constraint.label] = self.rejected.get(constraint.label, 0) + 1
            return False
        return self.then is None or bool(self.then(q))

    def rejections(self) -> str:
        """The counts in words: "constraints.position_constraints[0] (link 'panda_hand') rejected 3
        candidates, ..."; empty when none was rejected."""
        return ", ".join(
            f"{label} rejected {count} candidate{'s' if count > 1 else ''}" for label, count in self.rejected.items()
        )
