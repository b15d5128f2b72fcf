"""Collision checking of a chain's robot: self-collision from the URDF's ``<collision>`` geometry, minus the
disabled pairs, and collision with world objects; on coal (the collision library under Pinocchio).

Frames: every pose here is in the chain's base frame; lengths in metres, angles in radians. The robot's
bodies, where they are and the cheap-then-exact check are robot_bodies.py's (``CollisionChecker`` is a
``RobotBodies``); which pairs of links are never checked (adjacent, the SRDF's, or computed as MoveIt Setup
Assistant does, and cached) is disabled_pairs.py's. Here: which pairs are checked, the world objects, the
attached objects, and the queries.

Attached objects (``AttachedBody``, made by ``CollisionChecker.attached_body``): shapes held by a link the
checker places, moving with it, given per call (``in_collision(q, attached=...)``), as MoveIt's robot
state carries them. Each is checked against the robot's links other than its own link and its
``touch_links``, against the world objects (except one of its own name: an attached object is no longer
in the world) and against objects attached to other links (as MoveIt's FCL checker does).

A robot's mesh file is its convex pieces (convex_pieces.py: a convex mesh's hull, a concave one's CoACD
decomposition, cached per user), each a body with its own bounding sphere: a solid wholly inside one
touches it. A world or attached object's mesh (shape_msgs/Mesh, or a mesh file given as its shape) is its
surface (coal's BVH of its triangles, as MoveIt's FCL): a solid wholly inside a closed one does not touch it. ``in_collision`` and ``colliding_pairs`` may be called from several threads at once;
world objects are replaced as a whole (``add_object``/``move_object``/``remove_object``/``clear``), never
changed in place, and attached bodies are immutable values owned by the caller.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Optional, Sequence

import coal
import numpy as np

from ik_neural.chain import KinematicChain
from ik_neural.convex_pieces import PiecesReport
from ik_neural.disabled_pairs import (
    ADJACENT,
    DEFAULT_SAMPLES,
    GIVEN,
    SRDF,
    adjacent_pairs,
    cache_key,
    compute_disabled_pairs,
    read_cache,
    srdf_disabled_pairs,
    write_cache,
)
from ik_neural.echo import echo
from ik_neural.robot_bodies import (
    MeshResolver,
    Pair,
    Placement,
    RobotBodies,
    Solid,
    checked_transform,
    confirm,
    pair,
    robot_geometries,
    solids_of,
    spheres_meet,
)
from ik_neural.urdf_model import MESH, Shape, UrdfModel


@dataclass(frozen=True, eq=False)
class WorldObject:
    """A world object as given: its shapes, each a ``Shape`` at T_object_shape (4, 4) in the object's frame,
    that frame at ``T_base_object`` (4, 4) in the base frame; and their solids (the same order)."""

    T_base_object: np.ndarray
    shapes: tuple[tuple[Shape, np.ndarray], ...]
    solids: tuple[Solid, ...]


@dataclass(frozen=True, eq=False)
class _World:
    """The world objects, immutable: per shape (S,) its object's name, solid, pose T_base_shape (S, 4, 4)
    and bounding sphere (centres (S, 3) in the base frame, radii (S,))."""

    names: tuple[str, ...]
    solids: tuple[Solid, ...]
    poses: np.ndarray
    centers: np.ndarray
    radii: np.ndarray
    transforms: tuple[coal.Transform3s, ...]

    @classmethod
    def of(cls, objects: Mapping[str, WorldObject]) -> "_World":
        names = tuple(name for name, item in objects.items() for _ in item.solids)
        solids = tuple(solid for item in objects.values() for solid in item.solids)
        poses = np.array([item.T_base_object @ T for item in objects.values() for _, T in item.shapes]).reshape(
            -1, 4, 4
        )
        centers = np.array([T[:3, :3] @ s.center + T[:3, 3] for s, T in zip(solids, poses)]).reshape(-1, 3)
        radii = np.array([s.radius for s in solids])
        transforms = tuple(coal.Transform3s(T[:3, :3].copy(), T[:3, 3].copy()) for T in poses)
        return cls(names, solids, poses, centers, radii, transforms)


def _check_placed(item: WorldObject, where: str) -> None:
    """ValueError naming ``where`` for a shape whose pose in the base frame overflowed once composed."""
    for _, T in item.shapes:
        checked_transform(item.T_base_object @ T, where)


@dataclass(frozen=True, eq=False)
class AttachedBody:
    """An object held by robot link ``link``, made by ``CollisionChecker.attached_body`` (for that checker
    only): its solids at T_link_solid (K, 4, 4) in the link's frame, the links it may touch, and which of
    the checker's bodies (B,) it is checked against (those of links other than ``link`` and ``touch_links``)."""

    name: str
    link: str
    solids: tuple[Solid, ...]
    T_link_solid: np.ndarray
    touch_links: frozenset[str]
    robot_mask: np.ndarray

    def may_meet(self, other: "AttachedBody") -> bool:
        """Whether this body is checked against ``other``: they hang from different links (touch links
        concern robot links only, as in MoveIt)."""
        return self.link != other.link


class CollisionChecker(RobotBodies):
    """Is configuration q of ``chain`` free of self-collision and of the world objects? See the module
    docstring. Build with ``from_urdf``. q (dof,) in chain order (rad or m)."""

    def __init__(
        self,
        model: UrdfModel,
        chain: KinematicChain,
        elements: Sequence[tuple[str, Solid, np.ndarray]],
        positions: Optional[Mapping[str, float]] = None,
    ) -> None:
        """Bodies ``elements``: (link, solid, T_link_solid (4, 4)); all pairs enabled but adjacent ones
        (``from_urdf`` sets the disabled pairs). ``positions``: of the URDF's movable joints outside the
        chain (default mid-limits)."""
        super().__init__(model, chain, elements, positions)
        self.disabled_reasons: dict[Pair, str] = {}
        self.disabled_source = ADJACENT
        """Where the disabled pairs came from: 'srdf', 'given', 'computed', 'cache' (or 'adjacent' alone)."""
        self._disable({}, ADJACENT)
        self.pieces_report = PiecesReport()
        """What ``from_urdf`` made of the mesh files (convex pieces built or read from the cache, skipped ones)."""
        self._world = _World.of({})
        self._objects: dict[str, WorldObject] = {}
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
        skip_unreadable_meshes: bool = False,
        announce: Optional[Callable[[str], None]] = None,
    ) -> "CollisionChecker":
        """The checker of ``chain`` (made from ``model``) on the URDF's collision geometry.

        Disabled pairs: adjacent ones, plus ``disabled_pairs`` (pairs of link names) when given, else the
        SRDF's (``srdf``: XML text or a file path) when given, else computed as MoveIt Setup Assistant does
        (``samples`` random configurations drawn with ``random_seed``), read from or written to the
        per-user cache unless ``cache`` is False. ``positions``: joints outside the chain (by name; default
        mid-limits). ``resolve`` turns mesh file names into paths (needed for ``package://``). Mesh files
        become convex pieces (convex_pieces.py), cached per user unless ``cache`` is False; what that did
        is ``pieces_report`` (a ``PiecesReport``: built or read, time, skipped meshes).
        ValueError for a link or joint that is not in the URDF, or a mesh that cannot be found or read,
        unless ``skip_unreadable_meshes``: then that mesh is left out and listed in
        ``pieces_report.skipped`` as (link, file, why), for the caller to warn about. ``announce`` is told
        before each concave mesh is decomposed (that takes seconds to minutes)."""
        elements = []
        report = PiecesReport(announce=announce)
        for element in model.collisions():
            where = f"URDF ({model.origin}): link {element.link!r}"
            try:
                geometries = robot_geometries(element.geometry, resolve, where, cache, report)
            except ValueError as exc:
                if not skip_unreadable_meshes or element.geometry.kind != MESH:
                    raise
                report.skipped.append((element.link, element.geometry.filename, str(exc)))
                continue
            elements.extend((element.link, Solid.of(geometry), element.T_link_geometry) for geometry in geometries)
        checker = cls(model, chain, elements, positions)
        checker.pieces_report = report
        if disabled_pairs is not None:
            checker._disable({pair(*given): GIVEN for given in disabled_pairs}, GIVEN)
        elif srdf is not None:
            checker.use_srdf(srdf)
        else:
            key = cache_key(checker, samples, random_seed)
            cached = read_cache(key) if cache else None
            if cached is not None:
                checker._disable(cached, "cache")
            else:
                computed = compute_disabled_pairs(checker, samples, random_seed)
                checker._disable(computed, "computed")
                if cache:
                    write_cache(key, computed)
        return checker

    def use_srdf(self, srdf: str) -> None:
        """Disable the pairs of the SRDF ``srdf`` (XML text or a file path) and the adjacent ones, instead of
        those disabled so far (as ``from_urdf`` with ``srdf``); ValueError, the pairs unchanged, for an SRDF
        that cannot be read or names a link the URDF does not have. Checks running on other threads finish
        with the pairs they started with."""
        self._disable({link_pair: SRDF for link_pair in srdf_disabled_pairs(srdf)}, SRDF)

    def _disable(self, reasons: Mapping[Pair, str], source: str) -> None:
        for link_pair in reasons:
            for link in link_pair:
                self.model.check_link("disabled pair link", link)
        disabled_reasons = {**reasons, **{link_pair: ADJACENT for link_pair in adjacent_pairs(self)}}
        # One attribute for the body pairs: a check in flight on another thread keeps the (I, J) it read.
        self._pairs = self.body_pairs(disabled_reasons)
        self.disabled_reasons, self.disabled_source = disabled_reasons, source

    @property
    def disabled_pairs(self) -> set[Pair]:
        """Pairs of links never checked against each other."""
        return set(self.disabled_reasons)

    @property
    def enabled_pairs(self) -> list[tuple[str, str]]:
        """Pairs of links checked against each other, each sorted, sorted."""
        return self.link_pairs(*self._pairs)

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

    def warm_up(self) -> None:
        """Compile (or load from numba's cache) the placement kernel for both kinds of q numba compiles apart:
        read-only (``chain.middle``) and writable (a goal stream's commands), and make the first check's
        imports and allocations, so that none of it happens inside a solve's budget."""
        middle = self.chain.middle
        for q in (middle, middle.copy()):
            self.in_collision(q)

    def free(self, q: np.ndarray) -> bool:
        """``not in_collision(q)``: an acceptance test for ``IKSolver`` (``IKQuery.accept``, ``accept=``)."""
        return not self._collisions(q, None, (), first_only=True)

    def compute_disabled_pairs(self, samples: int = DEFAULT_SAMPLES, random_seed: int = 0) -> dict[Pair, str]:
        """The pairs MoveIt Setup Assistant disables for this checker's bodies, each with its reason
        (``disabled_pairs.compute_disabled_pairs``); the checker's own pairs and world objects play no part."""
        return compute_disabled_pairs(self, samples, random_seed)

    def _collisions(
        self,
        q: np.ndarray,
        positions: Optional[Mapping[str, float]],
        attached: Sequence[AttachedBody],
        first_only: bool,
    ) -> list[tuple[str, str]]:
        """The colliding pairs (as ``colliding_pairs`` names them; the first alone when ``first_only``): the
        robot with itself, the robot with the world, then the attached bodies."""
        pairs = self._pairs
        placed = self.place(q, positions, pairs)
        found: list[tuple[str, str]] = []
        if self.self_collisions(placed, *pairs, found, first_only):
            return found
        world = self._world
        held_names = {body.name for body in attached}
        if len(world.names) and self._world_collisions(placed, world, held_names, found, first_only):
            return found
        if attached:
            self._attached_collisions(placed, positions, attached, world, held_names, found, first_only)
        return found

    def _world_collisions(
        self, placed: Placement, world: "_World", held_names: set[str], found: list, first_only: bool
    ) -> bool:
        """(link, world object) pairs, but objects named in ``held_names``; True when done (``confirm``)."""
        solids, links, count = self._solids, self._links, len(world.names)

        def collide(k: int) -> bool:
            i, s = divmod(k, count)
            return world.names[s] not in held_names and placed.collide(
                solids[i], placed.transform(i), world.solids[s], world.transforms[s]
            )

        def label(k: int) -> tuple[str, str]:
            i, s = divmod(k, count)
            return (links[i], world.names[s])

        near = spheres_meet(placed.centers[:, None, :], self._radius[:, None], world.centers[None], world.radii[None])
        return confirm(near, collide, label, found, first_only)

    def _attached_collisions(
        self,
        placed: Placement,
        positions: Optional[Mapping[str, float]],
        attached: Sequence[AttachedBody],
        world: "_World",
        held_names: set[str],
        found: list,
        first_only: bool,
    ) -> bool:
        """Each attached solid, placed with its link, against the robot (but its link and touch links), the
        world (but held objects) and solids held by other links; True when done (``confirm``)."""
        full = self.positions if positions is None else self._full_positions(positions)
        memo: dict = {}
        held = []  # (body, solid, transform, centre (3,)) of every attached solid
        for body in attached:
            anchor = self.chain_links.anchor(body.link, full, memo)
            T_base_link = placed.F[anchor.frame + 1] @ anchor.T_frame_link
            for solid, T_link_solid in zip(body.solids, body.T_link_solid):
                T_base = T_base_link @ T_link_solid
                R, p = T_base[:3, :3], T_base[:3, 3]
                held.append((body, solid, coal.Transform3s(R, p), R @ solid.center + p))
        return any(
            self._held_solid_collisions(placed, held[n], held[n + 1 :], world, held_names, found, first_only)
            for n in range(len(held))
        )

    def _held_solid_collisions(
        self,
        placed: Placement,
        one: tuple,
        later: Sequence[tuple],
        world: "_World",
        held_names: set[str],
        found: list,
        first_only: bool,
    ) -> bool:
        """Attached solid ``one`` (body, solid, transform, centre (3,)) against the robot, the world and the
        ``later`` attached solids; True when done (``confirm``)."""
        body, solid, T_a, c = one
        near_robot = spheres_meet(placed.centers, self._radius, c, solid.radius) & body.robot_mask
        if confirm(
            near_robot,
            lambda i: placed.collide(solid, T_a, self._solids[i], placed.transform(i)),
            lambda i: (body.name, self._links[i]),
            found,
            first_only,
        ):
            return True
        if len(world.names) and confirm(
            spheres_meet(world.centers, world.radii, c, solid.radius),
            lambda s: (
                world.names[s] not in held_names and placed.collide(solid, T_a, world.solids[s], world.transforms[s])
            ),
            lambda s: (body.name, world.names[s]),
            found,
            first_only,
        ):
            return True
        near_held = [
            body.may_meet(other) and spheres_meet(c_b, other_solid.radius, c, solid.radius)
            for other, other_solid, _, c_b in later
        ]
        return confirm(
            np.array(near_held, dtype=bool),
            lambda m: placed.collide(solid, T_a, later[m][1], later[m][2]),
            lambda m: tuple(sorted((body.name, later[m][0].name))),
            found,
            first_only,
        )

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
        solids = solids_of(shapes, resolve, f"attached object {echo(name)}")
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
        self,
        name: str,
        shapes: Sequence[tuple[Shape, np.ndarray]],
        resolve: Optional[MeshResolver] = None,
        T_base_object: Optional[np.ndarray] = None,
    ) -> None:
        """Add world object ``name`` (replacing one of that name): its shapes, each a ``Shape`` at
        T_object_shape (4, 4) in the object's frame, which is at ``T_base_object`` (4, 4) in the chain's base
        frame (default identity: the shapes' poses are in the base frame). ValueError for a pose that is not
        finite, alone or composed."""
        where = f"world object {echo(name)}"
        T_base_object = np.eye(4) if T_base_object is None else checked_transform(T_base_object, where)
        solids = solids_of(shapes, resolve, where)
        item = WorldObject(
            T_base_object, tuple((g, T) for (g, _), (_, T) in zip(shapes, solids)), tuple(s for s, _ in solids)
        )
        _check_placed(item, where)
        with self._lock:
            self._objects[name] = item
            self._world = _World.of(self._objects)

    def move_object(self, name: str, T_base_object: np.ndarray) -> bool:
        """Put world object ``name`` (its shapes as they are in its frame) at ``T_base_object`` (4, 4) in the
        base frame; False if there is none. ValueError for a pose that is not finite, alone or composed."""
        where = f"world object {echo(name)}"
        T_base_object = checked_transform(T_base_object, where)
        with self._lock:
            item = self._objects.get(name)
            if item is None:
                return False
            moved = dataclasses.replace(item, T_base_object=T_base_object)
            _check_placed(moved, where)
            self._objects[name] = moved
            self._world = _World.of(self._objects)
        return True

    def world_object(self, name: str) -> Optional[WorldObject]:
        """World object ``name`` as given (its shapes and pose), None if there is none."""
        return self._objects.get(name)

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
