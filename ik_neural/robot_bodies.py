"""A chain's robot as coal solids: the bodies, where they are at a configuration, and which of given pairs
of them collide. What ``CollisionChecker`` (collision.py) and the disabled-pair computation
(disabled_pairs.py) both stand on.

A robot body is one ``<collision>`` element of a link the chain moves (a movable joint's child, or a link
fixed to one or to the base) or of a link hanging below one through joints that are not in the chain (a
gripper's fingers): those joints are held at given positions (default mid-limits), so for given positions
every body is rigid in one of the chain's frames. Where a link is comes from ``ChainLinks.anchor``
(urdf_model.py). Shapes: ``Geometry`` (URDF's primitives and mesh files), ``TriangleMesh`` (in memory, as
shape_msgs/Mesh; coal's BVH of its triangles: its surface) and ``Plane`` (infinite, two-sided). A robot's
mesh file becomes its convex pieces (``robot_geometries``, convex_pieces.py), each piece a body of its own
with its own bounding sphere; a mesh file given as a world or attached object's shape stays coal's BVH of
its triangles (its surface, as MoveIt's world meshes).

A check first rejects pairs whose bounding spheres are apart, then asks coal about the rest: for the
robot's own pairs one compiled pass (``kernels.kinematics.place_bodies``) places the bodies and tests the
spheres; world and attached objects' spheres are tested in numpy (``spheres_meet``, ``confirm``). Every pose in the chain's base frame; lengths in metres, angles in radians.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Collection, Mapping, Optional, Sequence

import coal
import numpy as np

from ik_neural.chain import CONTINUOUS, MOVABLE_JOINT_TYPES, KinematicChain
from ik_neural.convex_pieces import PiecesReport, convex_solid, mesh_pieces
from ik_neural.echo import echo, echo_list
from ik_neural.robots import PACKAGE, package_file
from ik_neural.kernels.kinematics import place_bodies
from ik_neural.urdf_model import (
    BOX,
    CAPSULE,
    CONE,
    CYLINDER,
    MESH,
    SPHERE,
    Plane,
    Shape,
    TriangleMesh,
    UrdfModel,
)

Pair = frozenset  # of two link names
MeshResolver = Callable[[str], Path]
"""Turns a mesh ``filename`` as the URDF wrote it (a path, ``file://`` or ``package://`` URI) into a file path."""


_NO_PAIRS = np.zeros(0, dtype=np.int64)


def pair(a: str, b: str) -> Pair:
    """The unordered pair of links ``a`` and ``b``."""
    return frozenset((a, b))


def coal_geometry(geometry: Shape, resolve: Optional[MeshResolver] = None, where: str = "") -> coal.CollisionGeometry:
    """The coal solid of a ``Shape`` (mesh files loaded from the file ``resolve`` gives; a ``TriangleMesh``
    as an OBBRSS BVH). ValueError naming ``where`` and the file for a mesh that cannot be found or loaded."""
    if isinstance(geometry, Plane):
        return coal.Plane(np.array(geometry.normal, dtype=np.float64), float(geometry.offset))
    if isinstance(geometry, TriangleMesh):
        bvh = coal.BVHModelOBBRSS()
        bvh.beginModel(len(geometry.triangles), len(geometry.vertices))
        bvh.addVertices(geometry.vertices)
        bvh.addTriangles(geometry.triangles)
        bvh.endModel()
        return bvh
    r = geometry.size
    if geometry.kind == BOX:
        return coal.Box(*r)
    if geometry.kind == SPHERE:
        return coal.Sphere(r[0])
    if geometry.kind == CYLINDER:
        return coal.Cylinder(r[0], r[1])
    if geometry.kind == CAPSULE:
        return coal.Capsule(r[0], r[1])
    if geometry.kind == CONE:
        return coal.Cone(r[0], r[1])
    assert geometry.kind == MESH
    path = mesh_path(geometry, resolve, where)
    try:
        return coal.MeshLoader().load(str(path), np.asarray(geometry.size, dtype=np.float64))
    except Exception as exc:  # coal raises its own exception types for unreadable files
        raise ValueError(f"{where}: cannot load mesh {geometry.filename!r} ({str(path)!r}): {exc}") from exc


def mesh_path(geometry: Shape, resolve: Optional[MeshResolver], where: str) -> Path:
    """The file of a mesh ``Geometry``; ValueError naming ``where`` and the file where it cannot be found."""
    try:
        path = (resolve or _plain_path)(geometry.filename)
    except (ValueError, RuntimeError) as exc:  # the node's resolver raises its StartupError (a RuntimeError)
        raise ValueError(f"{where}: {exc}") from exc
    if not path.is_file():
        raise ValueError(f"{where}: mesh {geometry.filename!r} not found (looked at {str(path)!r})")
    return path


def robot_geometries(
    geometry: Shape,
    resolve: Optional[MeshResolver] = None,
    where: str = "",
    cache: bool = True,
    report: Optional[PiecesReport] = None,
) -> list[coal.CollisionGeometry]:
    """The coal solids of one URDF ``<collision>`` geometry: a primitive as itself, a mesh file as its convex
    pieces (convex_pieces.py: the hull of a convex mesh, CoACD's pieces of a concave one, cached per user).
    ValueError naming ``where`` and the file for a mesh that cannot be found or read."""
    if isinstance(geometry, (Plane, TriangleMesh)) or geometry.kind != MESH:
        return [coal_geometry(geometry, resolve, where)]
    path = mesh_path(geometry, resolve, where)
    try:
        pieces = mesh_pieces(path, geometry.size, cache, report)
    except ValueError as exc:
        raise ValueError(f"{where}: cannot load mesh {geometry.filename!r} ({str(path)!r}): {exc}") from exc
    return [convex_solid(points) for points in pieces]


def _plain_path(filename: str) -> Path:
    """A mesh file name without a resolver: a path, a file:// URI, or this package's own package:// URI (the
    shipped robots' meshes)."""
    own = f"package://{PACKAGE}/"
    if filename.startswith(own):
        return package_file(filename[len(own) :])
    if filename.startswith("package://"):
        raise ValueError(
            f"mesh {filename!r} is a package:// URI and no resolver was given "
            "(CollisionChecker.from_urdf(..., resolve=...); the node passes its own)"
        )
    return Path(filename[len("file://") :] if filename.startswith("file://") else filename).expanduser()


@dataclass(frozen=True, eq=False)
class Solid:
    """A coal solid with its bounding sphere in its own frame (centre (3,) m, radius m)."""

    geometry: coal.CollisionGeometry
    center: np.ndarray
    radius: float

    @classmethod
    def of(cls, geometry: coal.CollisionGeometry) -> "Solid":
        geometry.computeLocalAABB()
        center, radius = np.array(geometry.aabb_center, dtype=np.float64), float(geometry.aabb_radius)
        if not (np.isfinite(center).all() and math.isfinite(radius)):  # a plane: never rejected by its sphere
            center, radius = np.zeros(3), math.inf
        return cls(geometry, center, radius)


def checked_transform(T, where: str) -> np.ndarray:
    """T as a float64 (4, 4) array; ValueError naming ``where`` unless it is a finite (4, 4) transform."""
    T = np.array(T, dtype=np.float64)
    if T.shape != (4, 4) or not np.isfinite(T).all():
        raise ValueError(f"{where}: a shape's pose must be a finite (4, 4) transform")
    return T


def solids_of(
    shapes: Sequence[tuple[Shape, np.ndarray]], resolve: Optional[MeshResolver], where: str
) -> list[tuple[Solid, np.ndarray]]:
    """[(Solid, T (4, 4))] of shapes at poses; ValueError naming ``where`` for a pose that is not a finite
    (4, 4) transform or a mesh that cannot be loaded."""
    return [(Solid.of(coal_geometry(geometry, resolve, where)), checked_transform(T, where)) for geometry, T in shapes]


def spheres_meet(center_a: np.ndarray, radius_a, center_b: np.ndarray, radius_b) -> np.ndarray:
    """The cheap check: whether bounding spheres (centres (..., 3), radii (...), broadcast) overlap."""
    d = center_a - center_b
    reach = radius_a + radius_b
    return (d * d).sum(-1) <= reach * reach


def confirm(
    near: np.ndarray,
    collide: Callable[[int], bool],
    label: Callable[[int], tuple[str, str]],
    found: list[tuple[str, str]],
    first_only: bool,
) -> bool:
    """The exact check of the candidates the cheap one left: for each flat index k of the mask ``near`` (in
    order), ``collide(k)`` (coal); ``label(k)`` appended to ``found`` for each collision. True when the caller
    is done: one found and ``first_only``."""
    for k in np.flatnonzero(near).tolist():
        if collide(k):
            found.append(label(k))
            if first_only:
                return True
    return False


class Placement:
    """The robot's bodies at one configuration: joint frames F (dof + 1, 4, 4) (the base's, then each
    joint's), body poses T_base_solid (B, 4, 4) and bounding-sphere centres (B, 3), all in the base frame;
    ``near``: the indices k of body pairs (I[k], J[k]) whose spheres overlap, when placed for pairs (I, J)
    (``pairs``), else None; coal transforms made on first use. One per check (not shared between threads)."""

    _request = coal.CollisionRequest()  # read-only: shared by every placement

    def __init__(
        self,
        F: np.ndarray,
        T_base_solid: np.ndarray,
        centers: np.ndarray,
        near: Optional[np.ndarray] = None,
        pairs: Optional[tuple[np.ndarray, np.ndarray]] = None,
    ) -> None:
        self.F = F
        self.T_base_solid = T_base_solid
        self.centers = centers
        self.near, self.pairs = near, pairs
        self._result = coal.CollisionResult()
        self._transforms: dict[int, coal.Transform3s] = {}

    def transform(self, i: int) -> coal.Transform3s:
        """Body i's pose as coal takes it."""
        T = self._transforms.get(i)
        if T is None:
            T_base_solid = self.T_base_solid[i]
            T = self._transforms[i] = coal.Transform3s(T_base_solid[:3, :3], T_base_solid[:3, 3])
        return T

    def collide(self, a: Solid, T_a: coal.Transform3s, b: Solid, T_b: coal.Transform3s) -> bool:
        """coal's exact answer: do solids a and b, at T_a and T_b in the base frame, touch?"""
        self._result.clear()
        return coal.collide(a.geometry, T_a, b.geometry, T_b, self._request, self._result)


class RobotBodies:
    """The collision bodies of ``chain`` (made from ``model``), placed at any q (dof,) in chain order (rad or
    m), the joints outside the chain at ``positions``. See the module docstring."""

    def __init__(
        self,
        model: UrdfModel,
        chain: KinematicChain,
        elements: Sequence[tuple[str, Solid, np.ndarray]],
        positions: Optional[Mapping[str, float]] = None,
    ) -> None:
        """Bodies ``elements``: (link, solid, T_link_solid (4, 4)); those of links the chain does not place
        (another branch of the tree) are left out. ``positions``: of the URDF's movable joints outside the
        chain (default mid-limits)."""
        self.model = model
        self.chain = chain
        self.chain_links = model.chain_links(chain)
        self.other_joints: list[str] = [
            name
            for name in model.joint_names
            if model.robot.joint_map[name].type in MOVABLE_JOINT_TYPES and name not in chain.joint_names
        ]
        """Movable URDF joints outside the chain (a gripper's): held at ``positions`` for collision."""
        self.positions: dict[str, float] = self._full_positions(positions or {})
        memo: dict = {}
        kept = [element for element in elements if self.chain_links.anchor(element[0], self.positions, memo)]
        self._links = [link for link, _, _ in kept]
        self._solids = [solid for _, solid, _ in kept]
        self._T_link_solid = np.array([T for _, _, T in kept]).reshape(-1, 4, 4)
        self.link_names: list[str] = sorted(set(self._links))
        """Links with collision geometry that the chain places."""
        self._center = np.array([s.center for s in self._solids]).reshape(-1, 3)
        self._radius = np.array([s.radius for s in self._solids])
        self._frame, self._T_frame_solid = self._anchor(self.positions)

    def _full_positions(self, positions: Mapping[str, float]) -> dict[str, float]:
        """Every other joint's position: given ones, mimic joints from their master, the rest mid-limits."""
        unknown = [name for name in positions if name not in self.other_joints]
        if unknown:
            raise ValueError(
                f"positions names {unknown}, which are not movable joints of URDF robot {self.model.name!r} outside "
                f"the chain (those are {self.other_joints})"
            )
        full = {}
        for name in self.other_joints:
            joint = self.model.robot.joint_map[name]
            if name in positions:
                value = float(positions[name])
            elif joint.type == CONTINUOUS or joint.limit is None:
                value = 0.0
            else:
                lower, upper = self.model.joint_limits(name)
                value = 0.5 * (lower + upper)
            if not math.isfinite(value):
                raise ValueError(f"joint {name!r}: position {value} is not finite")
            full[name] = value
        for name in self.other_joints:
            mimic = self.model.robot.joint_map[name].mimic
            if mimic is not None and name not in positions and mimic.joint in full:
                full[name] = (mimic.multiplier if mimic.multiplier is not None else 1.0) * full[mimic.joint] + (
                    mimic.offset or 0.0
                )
        return full

    def _anchor(self, positions: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """Per body: the chain frame it is rigid in (B,) (0 the base, i + 1 joint i's) and T_frame_solid
        (B, 4, 4), the other joints at ``positions`` (all of them)."""
        memo: dict = {}
        anchors = [self.chain_links.anchor(link, positions, memo) for link in self._links]
        frames = np.array([anchor.frame + 1 for anchor in anchors], dtype=int)
        T = [anchor.T_frame_link @ T_link_solid for anchor, T_link_solid in zip(anchors, self._T_link_solid)]
        return frames, np.array(T).reshape(-1, 4, 4)

    # ------------------------------------------------------------------ where links and bodies are

    def places(self, link: str) -> bool:
        """Whether ``link`` is placed by the chain's joints (and the held ones): a link of the chain, one
        fixed to it or to the base, or one below them through other joints (fingers)."""
        return self.chain_links.anchor(link, self.positions) is not None

    @property
    def placed_links(self) -> list[str]:
        """Every link ``places``, sorted."""
        memo: dict = {}
        return sorted(link for link in self.model.link_names if self.chain_links.anchor(link, self.positions, memo))

    def link_pose(self, q: np.ndarray, link: str, positions: Optional[Mapping[str, float]] = None) -> np.ndarray:
        """T_base_link (4, 4) of a link the checker places (``places``) at q (dof,), the other joints at
        ``positions`` (default: the checker's). ValueError for any other link."""
        full = self.positions if positions is None else self._full_positions(positions)
        anchor = self.chain_links.anchor(link, full)
        if anchor is None:
            raise ValueError(self._not_placed(link))
        return self._joint_frames(q)[anchor.frame + 1] @ anchor.T_frame_link

    def _not_placed(self, link: str) -> str:
        return (
            f"link {echo(link)} is not placed by the chain {self.chain.base_link!r} -> {self.chain.tip_link!r} "
            f"(links placed: {echo_list(self.placed_links)})"
        )

    def body_poses(self, q: np.ndarray, positions: Optional[Mapping[str, float]] = None) -> np.ndarray:
        """T_base_solid (B, 4, 4) of every body at q (dof,)."""
        return self._body_poses(self._joint_frames(q), positions)

    def _joint_frames(self, q: np.ndarray) -> np.ndarray:
        """(dof + 1, 4, 4): the base's frame (identity), then each joint's frame at q, in the base frame."""
        frames = self.chain.frames(np.asarray(q, dtype=np.float64))[0]
        return np.concatenate([np.eye(4)[None], frames])

    def _body_poses(self, F: np.ndarray, positions: Optional[Mapping[str, float]]) -> np.ndarray:
        if positions is None:
            T_frame_solid = self._T_frame_solid
        else:
            T_frame_solid = self._anchor(self._full_positions(positions))[1]
        return F[self._frame] @ T_frame_solid

    def place(
        self,
        q: np.ndarray,
        positions: Optional[Mapping[str, float]] = None,
        pairs: Optional[tuple[np.ndarray, np.ndarray]] = None,
    ) -> Placement:
        """The bodies at q (dof,), the other joints at ``positions`` (default: the checker's); with ``pairs``
        (I, J) (body pairs, ``body_pairs``), which of them have overlapping spheres too (one compiled pass:
        frames, poses, spheres)."""
        q = self.chain._check_q(q)
        if q.ndim != 1:
            raise ValueError(f"q has shape {tuple(q.shape)}; expected ({self.chain.dof},)")
        T_frame_solid = self._T_frame_solid if positions is None else self._anchor(self._full_positions(positions))[1]
        I, J = pairs if pairs is not None else (_NO_PAIRS, _NO_PAIRS)
        F, T, centers, near = place_bodies(
            np.ascontiguousarray(q, dtype=np.float64),
            self.chain.arrays,
            self._frame,
            T_frame_solid,
            self._center,
            self._radius,
            I,
            J,
        )
        return Placement(F, T, centers, near if pairs is not None else None, pairs)

    # ------------------------------------------------------------------ self-collision

    def body_pairs(self, disabled: Collection[Pair]) -> tuple[np.ndarray, np.ndarray]:
        """The body pairs (P,) (I, J) to check: bodies of different links whose pair of links is not in
        ``disabled``."""
        I, J = [], []
        for i in range(len(self._links)):
            for j in range(i + 1, len(self._links)):
                a, b = self._links[i], self._links[j]
                if a != b and pair(a, b) not in disabled:
                    I.append(i)
                    J.append(j)
        return np.array(I, dtype=np.int64), np.array(J, dtype=np.int64)

    def link_pairs(self, I: np.ndarray, J: np.ndarray) -> list[tuple[str, str]]:
        """The pairs of links of body pairs (I, J), each sorted, sorted."""
        return sorted({tuple(sorted((self._links[i], self._links[j]))) for i, j in zip(I, J)})

    def self_collisions(
        self, placed: Placement, I: np.ndarray, J: np.ndarray, found: list[tuple[str, str]], first_only: bool
    ) -> bool:
        """The colliding (link, link) pairs (each sorted) among body pairs (I, J) at ``placed``, appended to
        ``found``; True once one is found when ``first_only``."""
        solids, links = self._solids, self._links
        if placed.pairs is not None and placed.pairs[0] is I and placed.pairs[1] is J:
            near = placed.near
        else:
            radius, centers = self._radius, placed.centers
            near = np.flatnonzero(spheres_meet(centers[I], radius[I], centers[J], radius[J]))
        # Inlined ``confirm`` (the hot path of every check): only the pairs the spheres leave reach coal.
        for i, j in zip(I[near].tolist(), J[near].tolist()):
            if placed.collide(solids[i], placed.transform(i), solids[j], placed.transform(j)):
                found.append(tuple(sorted((links[i], links[j]))))
                if first_only:
                    return True
        return False
