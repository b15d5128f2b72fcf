"""Collision checking of a chain's robot: self-collision from the URDF's ``<collision>`` geometry, minus the
disabled pairs, and collision with world objects; on coal (the collision library under Pinocchio).

Frames: every pose here is in the chain's base frame; lengths in metres, angles in radians. A robot body is
one ``<collision>`` element of a link the chain moves (a movable joint's child, or a link fixed to one or to
the base) or of a link hanging below one through joints that are not in the chain (a gripper's fingers):
those joints are held at given positions (default mid-limits), so for given positions every body is rigid
in one of the chain's frames.

Disabled pairs (never checked): adjacent links always (a link and the nearest link with geometry above it);
then the SRDF's ``<disable_collisions link1= link2=>`` when one is given; otherwise the pairs MoveIt Setup
Assistant disables, computed here: in collision at the middle configuration, in collision in at least 95 %
or in none of ``samples`` random configurations (seeded). That takes about a second; the result is cached
under the per-user cache (``~/.cache/ik_neural/collision/<key>.json``), keyed by the URDF's text, the chain,
the held positions and the sampling, so the next construction reads it.

Attached objects (``AttachedBody``, made by ``CollisionChecker.attached_body``): shapes held by a link the
checker places, moving with it, given per call (``in_collision(q, attached=...)``), as MoveIt's robot
state carries them. Each is checked against the robot's links other than its own link and its
``touch_links``, against the world objects (except one of its own name: an attached object is no longer
in the world) and against objects attached to other links (as MoveIt's FCL checker does).

Shapes: ``Geometry`` (URDF's primitives and mesh files), ``TriangleMesh`` (vertices and triangles given
in memory, as shape_msgs/Mesh) and ``Plane`` (infinite, two-sided). A mesh is its surface (coal's BVH of
its triangles, as MoveIt's FCL): a solid wholly inside a closed mesh does not touch it.

A check first rejects pairs whose bounding spheres are apart (numpy, all pairs at once), then asks coal
about the rest. ``in_collision`` and ``colliding_pairs`` may be called from several threads at once; world
objects are replaced as a whole (``add_object``/``remove_object``/``clear``), never changed in place, and
attached bodies are immutable values owned by the caller.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Optional, Sequence, Union
from xml.etree import ElementTree

import coal
import numpy as np

from ik_neural.chain import KinematicChain
from ik_neural.echo import echo, echo_list
from ik_neural.joint_bounds import JointBounds
from ik_neural.kernels.cache import user_cache_dir
from ik_neural.urdf_model import (
    BOX,
    CAPSULE,
    CONE,
    CYLINDER,
    MESH,
    SPHERE,
    CONTINUOUS,
    MOVABLE_JOINT_TYPES,
    Plane,
    Shape,
    TriangleMesh,
    UrdfModel,
)

Pair = frozenset  # of two link names
MeshResolver = Callable[[str], Path]
"""Turns a mesh ``filename`` as the URDF wrote it (a path, ``file://`` or ``package://`` URI) into a file path."""

DEFAULT_SAMPLES = 10_000
"""Random configurations of the disabled-pair computation (MoveIt Setup Assistant's default density)."""
ALWAYS_FRACTION = 0.95
"""A pair in collision in at least this fraction of the samples is disabled as always colliding (MoveIt
Setup Assistant's default)."""
_CACHE_FORMAT = 1

ADJACENT, SRDF, GIVEN, DEFAULT, ALWAYS, NEVER = "adjacent", "srdf", "given", "default", "always", "never"


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
    try:
        path = (resolve or _plain_path)(geometry.filename)
    except (ValueError, RuntimeError) as exc:  # the node's resolver raises its StartupError (a RuntimeError)
        raise ValueError(f"{where}: {exc}") from exc
    if not path.is_file():
        raise ValueError(f"{where}: mesh {geometry.filename!r} not found (looked at {str(path)!r})")
    try:
        return coal.MeshLoader().load(str(path), np.asarray(geometry.size, dtype=np.float64))
    except Exception as exc:  # coal raises its own exception types for unreadable files
        raise ValueError(f"{where}: cannot load mesh {geometry.filename!r} ({str(path)!r}): {exc}") from exc


def _plain_path(filename: str) -> Path:
    if filename.startswith("package://"):
        raise ValueError(
            f"mesh {filename!r} is a package:// URI and no resolver was given "
            "(CollisionChecker.from_urdf(..., resolve=...); the node passes its own)"
        )
    return Path(filename[len("file://") :] if filename.startswith("file://") else filename).expanduser()


@dataclass(frozen=True, eq=False)
class _Solid:
    """A coal solid with its bounding sphere in its own frame (centre (3,) m, radius m)."""

    geometry: coal.CollisionGeometry
    center: np.ndarray
    radius: float

    @classmethod
    def of(cls, geometry: coal.CollisionGeometry) -> "_Solid":
        geometry.computeLocalAABB()
        center, radius = np.array(geometry.aabb_center, dtype=np.float64), float(geometry.aabb_radius)
        if not (np.isfinite(center).all() and math.isfinite(radius)):  # a plane: never rejected by its sphere
            center, radius = np.zeros(3), math.inf
        return cls(geometry, center, radius)


@dataclass(frozen=True, eq=False)
class _World:
    """The world objects, immutable: per shape (S,) its object's name, solid, pose T_base_shape (S, 4, 4)
    and bounding sphere (centres (S, 3) in the base frame, radii (S,))."""

    names: tuple[str, ...]
    solids: tuple[_Solid, ...]
    poses: np.ndarray
    centers: np.ndarray
    radii: np.ndarray
    transforms: tuple[coal.Transform3s, ...]

    @classmethod
    def of(cls, objects: Mapping[str, Sequence[tuple[_Solid, np.ndarray]]]) -> "_World":
        names = tuple(name for name, shapes in objects.items() for _ in shapes)
        solids = tuple(solid for shapes in objects.values() for solid, _ in shapes)
        poses = np.array([T for shapes in objects.values() for _, T in shapes]).reshape(-1, 4, 4)
        centers = np.array([T[:3, :3] @ s.center + T[:3, 3] for s, T in zip(solids, poses)]).reshape(-1, 3)
        radii = np.array([s.radius for s in solids])
        transforms = tuple(coal.Transform3s(T[:3, :3].copy(), T[:3, 3].copy()) for T in poses)
        return cls(names, solids, poses, centers, radii, transforms)


def _solids(shapes: Sequence[tuple[Shape, np.ndarray]], resolve: Optional[MeshResolver], where: str) -> list:
    """[(_Solid, T (4, 4))] of shapes at poses; ValueError naming ``where`` for a pose that is not a finite
    (4, 4) transform."""
    solids = []
    for geometry, T in shapes:
        T = np.array(T, dtype=np.float64)
        if T.shape != (4, 4) or not np.isfinite(T).all():
            raise ValueError(f"{where}: a shape's pose must be a finite (4, 4) transform")
        solids.append((_Solid.of(coal_geometry(geometry, resolve, where)), T))
    return solids


@dataclass(frozen=True, eq=False)
class AttachedBody:
    """An object held by robot link ``link``, made by ``CollisionChecker.attached_body`` (for that checker
    only): its solids at T_link_solid (K, 4, 4) in the link's frame, the links it may touch, and which of
    the checker's bodies (B,) it is checked against (those of links other than ``link`` and ``touch_links``)."""

    name: str
    link: str
    solids: tuple[_Solid, ...]
    T_link_solid: np.ndarray
    touch_links: frozenset[str]
    robot_mask: np.ndarray

    def may_meet(self, other: "AttachedBody") -> bool:
        """Whether this body is checked against ``other``: they hang from different links (touch links
        concern robot links only, as in MoveIt)."""
        return self.link != other.link


class CollisionChecker:
    """Is configuration q of ``chain`` free of self-collision and of the world objects? See the module
    docstring. Build with ``from_urdf``. q (dof,) in chain order (rad or m)."""

    def __init__(
        self,
        model: UrdfModel,
        chain: KinematicChain,
        elements: Sequence[tuple[str, _Solid, np.ndarray]],
        positions: Optional[Mapping[str, float]] = None,
    ) -> None:
        """Bodies ``elements``: (link, solid, T_link_solid (4, 4)); all pairs enabled but adjacent ones
        (``from_urdf`` sets the disabled pairs). ``positions``: of the URDF's movable joints outside the
        chain (default mid-limits)."""
        self.model = model
        self.chain = chain
        self._placed = model.chain_links(chain)
        self.other_joints: list[str] = [
            name
            for name in model.joint_names
            if model.robot.joint_map[name].type in MOVABLE_JOINT_TYPES and name not in chain.joint_names
        ]
        """Movable URDF joints outside the chain (a gripper's): held at ``positions`` for collision."""
        self.positions: dict[str, float] = self._full_positions(positions or {})
        self._links = [link for link, _, _ in elements]
        self._T_link_solid = np.array([T for _, _, T in elements]).reshape(-1, 4, 4)
        # Bodies of links the chain does not place (another branch of the tree) are left out.
        frames = self._anchor(self.positions)[0]
        keep = [i for i, frame in enumerate(frames) if frame is not None]
        self._links = [self._links[i] for i in keep]
        self._T_link_solid = self._T_link_solid[keep]
        self._solids = [elements[i][1] for i in keep]
        self.link_names: list[str] = sorted(set(self._links))
        """Links with collision geometry that the chain places."""
        self._center = np.array([s.center for s in self._solids]).reshape(-1, 3)
        self._radius = np.array([s.radius for s in self._solids])
        self._frame, self._T_frame_solid = self._anchor(self.positions)
        self._frame = np.array(self._frame, dtype=int)
        self.disabled_reasons: dict[Pair, str] = {pair: ADJACENT for pair in self._adjacent_pairs()}
        self.disabled_source = ADJACENT
        """Where the disabled pairs came from: 'srdf', 'given', 'computed', 'cache' (or 'adjacent' alone)."""
        self._set_pairs()
        self._world = _World.of({})
        self._objects: dict[str, list[tuple[_Solid, np.ndarray]]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_urdf(
        cls,
        model: UrdfModel,
        chain: KinematicChain,
        disabled_pairs: Optional[Iterable[Iterable[str]]] = None,
        srdf: Optional[str] = None,
        positions: Optional[Mapping[str, float]] = None,
        resolve: Optional[MeshResolver] = None,
        samples: int = DEFAULT_SAMPLES,
        random_seed: int = 0,
        cache: bool = True,
    ) -> "CollisionChecker":
        """The checker of ``chain`` (made from ``model``) on the URDF's collision geometry.

        Disabled pairs: adjacent ones, plus ``disabled_pairs`` (pairs of link names) when given, else the
        SRDF's (``srdf``: XML text or a file path) when given, else computed as MoveIt Setup Assistant does
        (``samples`` random configurations drawn with ``random_seed``), read from or written to the
        per-user cache unless ``cache`` is False. ``positions``: joints outside the chain (by name; default
        mid-limits). ``resolve`` turns mesh file names into paths (needed for ``package://``).
        ValueError for a link or joint that is not in the URDF, or a mesh that cannot be loaded."""
        elements = []
        for element in model.collisions():
            where = f"URDF ({model.origin}): link {element.link!r}"
            elements.append(
                (element.link, _Solid.of(coal_geometry(element.geometry, resolve, where)), element.T_link_geometry)
            )
        checker = cls(model, chain, elements, positions)
        if disabled_pairs is not None:
            checker._disable({_pair(*pair): GIVEN for pair in disabled_pairs}, GIVEN)
        elif srdf is not None:
            checker._disable({pair: SRDF for pair in srdf_disabled_pairs(srdf)}, SRDF)
        else:
            key = checker._cache_key(samples, random_seed)
            cached = _read_cache(key) if cache else None
            if cached is not None:
                checker._disable(cached, "cache")
            else:
                computed = checker.compute_disabled_pairs(samples, random_seed)
                checker._disable(computed, "computed")
                if cache:
                    _write_cache(key, computed)
        return checker

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

    def _anchor(self, positions: Mapping[str, float]) -> tuple[list, np.ndarray]:
        """Per body: the chain frame it is rigid in (0 the base, i + 1 joint i's; None: not placed) and
        T_frame_solid (B, 4, 4), the other joints at ``positions``."""
        frames, transforms = [], []
        memo: dict[str, tuple] = {}
        for link, T_link_solid in zip(self._links, self._T_link_solid):
            frame, T = self._link_anchor(link, positions, memo)
            frames.append(frame)
            transforms.append(np.eye(4) if T is None else T @ T_link_solid)
        return frames, np.array(transforms).reshape(-1, 4, 4)

    def _link_anchor(self, link: str, positions: Mapping[str, float], memo: dict) -> tuple:
        """(the chain frame ``link`` is rigid in, T_frame_link (4, 4)), or (None, None) for a link the
        chain does not place; the other joints at ``positions``; ``memo`` keeps the links seen."""
        if link in memo:
            return memo[link]
        robot = self.model.robot
        if link in self._placed.links:
            placed = self._placed.links[link]
            result = (placed.frame + 1, placed.T_frame_link)
        elif link in robot.parent_map:
            joint, parent = robot.parent_map[link]
            frame, T = self._link_anchor(parent, positions, memo)
            result = (
                (None, None)
                if frame is None
                else (frame, T @ self.model.joint_transform(joint, positions.get(joint, 0.0)))
            )
        else:
            result = (None, None)
        memo[link] = result
        return result

    def places(self, link: str) -> bool:
        """Whether ``link`` is placed by the chain's joints (and the held ones): a link of the chain, one
        fixed to it or to the base, or one below them through other joints (fingers)."""
        return self._link_anchor(link, self.positions, {})[0] is not None

    @property
    def placed_links(self) -> list[str]:
        """Every link ``places``, sorted."""
        return sorted(link for link in self.model.link_names if self.places(link))

    def _adjacent_pairs(self) -> set[Pair]:
        """Each link with geometry and the nearest link with geometry above it in the URDF tree."""
        robot, with_geometry = self.model.robot, set(self._links)
        pairs = set()
        for link in with_geometry:
            parent = link
            while parent in robot.parent_map:
                parent = robot.parent_map[parent][1]
                if parent in with_geometry:
                    pairs.add(_pair(link, parent))
                    break
        return pairs

    def _disable(self, reasons: Mapping[Pair, str], source: str) -> None:
        for pair in reasons:
            for link in pair:
                self.model.check_link("disabled pair link", link)
        self.disabled_reasons = {**reasons, **{pair: ADJACENT for pair in self._adjacent_pairs()}}
        self.disabled_source = source
        self._set_pairs()

    def _set_pairs(self) -> None:
        """The body pairs (P,) that are checked: bodies of different links, the pair of links not disabled."""
        I, J = [], []
        for i in range(len(self._links)):
            for j in range(i + 1, len(self._links)):
                a, b = self._links[i], self._links[j]
                if a != b and _pair(a, b) not in self.disabled_reasons:
                    I.append(i)
                    J.append(j)
        self._I, self._J = np.array(I, dtype=int), np.array(J, dtype=int)

    @property
    def disabled_pairs(self) -> set[Pair]:
        """Pairs of links never checked against each other."""
        return set(self.disabled_reasons)

    @property
    def enabled_pairs(self) -> list[tuple[str, str]]:
        """Pairs of links checked against each other, each sorted, sorted."""
        return sorted({tuple(sorted((self._links[i], self._links[j]))) for i, j in zip(self._I, self._J)})

    # ------------------------------------------------------------------ queries

    def in_collision(
        self, q: np.ndarray, positions: Optional[Mapping[str, float]] = None, attached: Sequence["AttachedBody"] = ()
    ) -> bool:
        """Whether q (dof,) collides with itself (enabled pairs) or with a world object, or an ``attached``
        body (``attached_body``) with the robot, the world or another attached body. ``positions`` of joints
        outside the chain, for this call (default: the checker's ``positions``)."""
        return bool(self._collisions(q, positions, attached, first_only=True))

    def colliding_pairs(
        self, q: np.ndarray, positions: Optional[Mapping[str, float]] = None, attached: Sequence["AttachedBody"] = ()
    ) -> list[tuple[str, str]]:
        """The colliding (link, link) pairs of q (dof,) (each sorted), (link, world object name), and for
        attached bodies (attached name, link, world object or other attached name)."""
        return sorted(set(self._collisions(q, positions, attached, first_only=False)))

    def free(self, q: np.ndarray) -> bool:
        """``not in_collision(q)``: an acceptance test for ``IKSolver`` (``IKQuery.accept``, ``accept=``)."""
        return not self._collisions(q, None, (), first_only=True)

    def body_poses(self, q: np.ndarray, positions: Optional[Mapping[str, float]] = None) -> np.ndarray:
        """T_base_solid (B, 4, 4) of every body at q (dof,)."""
        return self._body_poses(self._joint_frames(q), positions)

    def link_pose(self, q: np.ndarray, link: str, positions: Optional[Mapping[str, float]] = None) -> np.ndarray:
        """T_base_link (4, 4) of a link the checker places (``places``) at q (dof,), the other joints at
        ``positions`` (default: the checker's). ValueError for any other link."""
        full = self.positions if positions is None else self._full_positions(positions)
        frame, T_frame_link = self._link_anchor(link, full, {})
        if frame is None:
            raise ValueError(self._not_placed(link))
        return self._joint_frames(q)[frame] @ T_frame_link

    def _not_placed(self, link: str) -> str:
        return (
            f"link {echo(link)} is not placed by the chain {self.chain.base_link!r} -> {self.chain.tip_link!r} "
            f"(links placed: {echo_list(self.placed_links)})"
        )

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

    def _collisions(self, q, positions, attached: Sequence["AttachedBody"], first_only: bool) -> list[tuple[str, str]]:
        F = self._joint_frames(q)
        T = self._body_poses(F, positions)
        R, p = T[:, :3, :3], T[:, :3, 3]
        centers = (R @ self._center[..., None])[..., 0] + p
        found: list[tuple[str, str]] = []
        request = coal.CollisionRequest()
        transforms: dict[int, coal.Transform3s] = {}

        def placed(i: int) -> coal.Transform3s:
            if i not in transforms:
                transforms[i] = coal.Transform3s(R[i], p[i])
            return transforms[i]

        def collide(a: _Solid, T_a: coal.Transform3s, b: _Solid, T_b: coal.Transform3s) -> bool:
            return coal.collide(a.geometry, T_a, b.geometry, T_b, request, coal.CollisionResult())

        I, J = self._I, self._J
        d = centers[I] - centers[J]
        reach = self._radius[I] + self._radius[J]
        for k in np.flatnonzero((d * d).sum(-1) <= reach * reach).tolist():
            i, j = int(I[k]), int(J[k])
            if collide(self._solids[i], placed(i), self._solids[j], placed(j)):
                found.append(tuple(sorted((self._links[i], self._links[j]))))
                if first_only:
                    return found
        world = self._world
        held_names = {body.name for body in attached}
        if len(world.names):
            d = centers[:, None, :] - world.centers[None]
            reach = self._radius[:, None] + world.radii[None]
            for i, s in np.argwhere((d * d).sum(-1) <= reach * reach).tolist():
                if world.names[s] in held_names:
                    continue
                if collide(self._solids[i], placed(i), world.solids[s], world.transforms[s]):
                    found.append((self._links[i], world.names[s]))
                    if first_only:
                        return found
        if not attached:
            return found
        # Attached bodies: placed with their links, then against the robot, the world and each other.
        full = self.positions if positions is None else self._full_positions(positions)
        memo: dict[str, tuple] = {}
        held_bodies = []  # (body, solid, transform, centre (3,)) of every attached solid
        for body in attached:
            frame, T_frame_link = self._link_anchor(body.link, full, memo)
            for solid, T_link_solid in zip(body.solids, body.T_link_solid):
                T_base = F[frame] @ T_frame_link @ T_link_solid
                R_a, p_a = T_base[:3, :3], T_base[:3, 3]
                held_bodies.append((body, solid, coal.Transform3s(R_a, p_a), R_a @ solid.center + p_a))
        for n, (body, solid, T_a, c) in enumerate(held_bodies):
            d = centers - c
            near = ((d * d).sum(-1) <= (self._radius + solid.radius) ** 2) & body.robot_mask
            for i in np.flatnonzero(near).tolist():
                if collide(solid, T_a, self._solids[i], placed(i)):
                    found.append((body.name, self._links[i]))
                    if first_only:
                        return found
            if len(world.names):
                d = world.centers - c
                for s in np.flatnonzero((d * d).sum(-1) <= (world.radii + solid.radius) ** 2).tolist():
                    if world.names[s] not in held_names and collide(solid, T_a, world.solids[s], world.transforms[s]):
                        found.append((body.name, world.names[s]))
                        if first_only:
                            return found
            for other, other_solid, T_b, c_b in held_bodies[n + 1 :]:
                if not body.may_meet(other):
                    continue
                d = c_b - c
                if d @ d <= (solid.radius + other_solid.radius) ** 2 and collide(solid, T_a, other_solid, T_b):
                    found.append(tuple(sorted((body.name, other.name))))
                    if first_only:
                        return found
        return found

    # ------------------------------------------------------------------ attached objects

    def attached_body(
        self,
        name: str,
        link: str,
        shapes: Sequence[tuple[Shape, np.ndarray]],
        touch_links: Iterable[str] = (),
        resolve: Optional[MeshResolver] = None,
    ) -> "AttachedBody":
        """Object ``name`` held by ``link`` (one the checker ``places``): its shapes, each at T_link_shape
        (4, 4) in the link's frame; ``touch_links``: links it may touch besides ``link`` (any names, as
        MoveIt's). ValueError naming the object for another link, a pose that is not finite, or a bad mesh."""
        if not self.places(link):
            raise ValueError(f"attached object {echo(name)}: {self._not_placed(link)}")
        solids = _solids(shapes, resolve, f"attached object {echo(name)}")
        touch = frozenset(touch_links)
        excluded = touch | {link}
        return AttachedBody(
            name=name,
            link=link,
            solids=tuple(solid for solid, _ in solids),
            T_link_solid=np.array([T for _, T in solids]).reshape(-1, 4, 4),
            touch_links=touch,
            robot_mask=np.array([body_link not in excluded for body_link in self._links], dtype=bool),
        )

    # ------------------------------------------------------------------ world objects

    def add_object(
        self, name: str, shapes: Sequence[tuple[Shape, np.ndarray]], resolve: Optional[MeshResolver] = None
    ) -> None:
        """Add world object ``name`` (replacing one of that name): its shapes, each a ``Shape`` at
        T_base_shape (4, 4) in the chain's base frame. ValueError for a pose that is not finite."""
        solids = _solids(shapes, resolve, f"world object {echo(name)}")
        with self._lock:
            self._objects[name] = solids
            self._world = _World.of(self._objects)

    def remove_object(self, name: str) -> bool:
        """Remove world object ``name``; False if there was none."""
        with self._lock:
            removed = self._objects.pop(name, None) is not None
            self._world = _World.of(self._objects)
        return removed

    def clear(self) -> None:
        """Remove every world object."""
        with self._lock:
            self._objects = {}
            self._world = _World.of({})

    @property
    def object_names(self) -> list[str]:
        """Names of the world objects, sorted."""
        return sorted(self._objects)

    # ------------------------------------------------------------------ disabled pairs, as Setup Assistant

    def compute_disabled_pairs(self, samples: int = DEFAULT_SAMPLES, random_seed: int = 0) -> dict[Pair, str]:
        """The pairs MoveIt Setup Assistant disables, each with its reason: 'adjacent'; 'default' (in
        collision at the middle configuration, the other joints at ``positions``); 'always' (in collision in
        at least ``ALWAYS_FRACTION`` of ``samples`` random configurations, the other joints drawn within
        their limits too); 'never' (in none of them). World objects are not considered."""
        saved = (self.disabled_reasons, self.disabled_source, self._world)
        self._world = _World.of({})
        self.disabled_reasons = {pair: ADJACENT for pair in self._adjacent_pairs()}
        self._set_pairs()
        try:
            reasons = dict(self.disabled_reasons)
            reasons.update({_pair(*pair): DEFAULT for pair in self.colliding_pairs(self.chain.middle)})
            self.disabled_reasons = reasons
            self._set_pairs()
            rng = np.random.default_rng(random_seed)
            Q = self.chain.bounds.sample(rng, samples)
            others = [name for name in self.other_joints if self.model.robot.joint_map[name].mimic is None]
            limits = np.array([self.model.joint_limits(name) for name in others]).reshape(-1, 2)
            other_bounds = JointBounds.of_limits(others, limits[:, 0], limits[:, 1], [False] * len(others))
            P = other_bounds.sample(rng, samples)
            counts: dict[Pair, int] = {_pair(a, b): 0 for a, b in self.enabled_pairs}
            for q, p in zip(Q, P):
                for pair in self.colliding_pairs(q, dict(zip(others, p.tolist())) if others else None):
                    counts[_pair(*pair)] += 1
            for pair, count in counts.items():
                if count == 0:
                    reasons[pair] = NEVER
                elif count >= ALWAYS_FRACTION * samples:
                    reasons[pair] = ALWAYS
            return reasons
        finally:
            self.disabled_reasons, self.disabled_source, self._world = saved
            self._set_pairs()

    def _cache_key(self, samples: int, random_seed: int) -> str:
        content = {
            "format": _CACHE_FORMAT,
            "urdf": self.model.xml,
            "base": self.chain.base_link,
            "tip": self.chain.tip_link,
            "positions": sorted(self.positions.items()),
            "samples": samples,
            "seed": random_seed,
            "always": ALWAYS_FRACTION,
        }
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:24]


def _pair(a: str, b: str) -> Pair:
    return frozenset((a, b))


def cache_path(key: str) -> Path:
    """Where the disabled pairs of cache key ``key`` are kept."""
    return user_cache_dir() / "collision" / f"{key}.json"


def _read_cache(key: str) -> Optional[dict[Pair, str]]:
    try:
        content = json.loads(cache_path(key).read_text())
        if content.get("format") != _CACHE_FORMAT:
            return None
        return {_pair(a, b): reason for a, b, reason in content["pairs"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_cache(key: str, reasons: Mapping[Pair, str]) -> None:
    """Write atomically (concurrent first constructions agree); an unwritable cache is skipped."""
    path = cache_path(key)
    pairs = sorted([*sorted(pair), reason] for pair, reason in reasons.items())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as out:
            json.dump({"format": _CACHE_FORMAT, "pairs": pairs}, out)
        os.replace(out.name, path)
    except OSError:
        pass


def srdf_disabled_pairs(srdf: Union[str, os.PathLike]) -> set[Pair]:
    """The ``<disable_collisions link1= link2=>`` pairs of an SRDF (XML text or a file path)."""
    text = str(srdf)
    origin = "SRDF XML string"
    if not text.lstrip().startswith("<"):
        origin = f"SRDF file {text!r}"
        try:
            text = Path(text).read_text()
        except OSError as exc:
            raise ValueError(f"cannot read {origin}: {exc.strerror}") from exc
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        raise ValueError(f"malformed {origin}: {exc}") from exc
    pairs = set()
    for element in root.iter("disable_collisions"):
        a, b = element.get("link1"), element.get("link2")
        if not a or not b:
            raise ValueError(f"{origin}: <disable_collisions> needs link1= and link2=, got {dict(element.attrib)}")
        pairs.add(_pair(a, b))
    return pairs
