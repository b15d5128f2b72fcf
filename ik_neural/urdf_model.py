"""A URDF's kinematic tree, parsed once: the chains, rigidly attached frames and joint names it yields,
and its links' ``<collision>`` geometry.

For the tree only link names and joints are read (visuals, collisions, transmissions and gazebo tags are
dropped before ``urdf_parser_py`` sees them, so a dialect it does not know cannot fail the chain); the
``<collision>`` elements are read from the XML by ``collisions()``, only when asked for. Every joint's
origin and axis must be finite. Lengths in metres, angles in radians.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from dataclasses import dataclass
from typing import Iterable, Mapping, NamedTuple, Optional, Union
from xml.etree import ElementTree

import numpy as np
from urdf_parser_py.urdf import URDF
from urdf_parser_py.xml_reflection.core import ParseError as URDFParseError

from ik_neural.chain import CONTINUOUS, MOVABLE_JOINT_TYPES, PRISMATIC, REVOLUTE, Joint, KinematicChain
from ik_neural.geometry import axis_rotation, rpy_to_matrix, transform

UrdfSource = Union[str, os.PathLike]

BOX, SPHERE, CYLINDER, CAPSULE, CONE, MESH = "box", "sphere", "cylinder", "capsule", "cone", "mesh"
PRIMITIVES = (BOX, SPHERE, CYLINDER, CAPSULE, CONE)


@dataclass(frozen=True)
class Geometry:
    """A solid in its own frame, as URDF's ``<geometry>`` (and shape_msgs) describe them; metres.

    ``size``: box (x, y, z) edge lengths, centred; sphere (radius,); cylinder, capsule and cone
    (radius, length), centred, the axis along z (a capsule's length is that of its cylinder part, the
    hemispheres' centres ``length`` apart); mesh (x, y, z) scale of the file ``filename`` (a path or a
    ``package://`` URI, as the URDF wrote it).
    """

    kind: str
    size: tuple[float, ...]
    filename: str = ""

    def __post_init__(self) -> None:
        counts = {BOX: 3, SPHERE: 1, CYLINDER: 2, CAPSULE: 2, CONE: 2, MESH: 3}
        if self.kind not in counts:
            raise ValueError(f"geometry kind {self.kind!r} is not one of {sorted(counts)}")
        if len(self.size) != counts[self.kind]:
            raise ValueError(f"{self.kind} takes {counts[self.kind]} numbers, got {list(self.size)}")
        if not all(math.isfinite(v) and v >= 0 for v in self.size):
            raise ValueError(f"{self.kind} size {list(self.size)} must be finite and >= 0")
        if self.kind == MESH and not self.filename:
            raise ValueError("a mesh geometry needs a filename")


@dataclass(frozen=True, eq=False)
class TriangleMesh:
    """A triangle mesh given in memory (shape_msgs/Mesh): ``vertices`` (V, 3) m in the shape's frame,
    ``triangles`` (T, 3) indices into them. ValueError naming the field for no triangle, an index out of
    range, a vertex that is not finite, or arrays of other shapes."""

    vertices: np.ndarray
    triangles: np.ndarray

    def __post_init__(self) -> None:
        vertices = np.asarray(self.vertices, dtype=np.float64)
        triangles = np.asarray(self.triangles)
        if vertices.ndim != 2 or vertices.shape[1] != 3:
            raise ValueError(f"vertices must be (V, 3), got shape {vertices.shape}")
        if triangles.size == 0:
            raise ValueError("triangles is empty: a mesh needs at least one triangle")
        if triangles.ndim != 2 or triangles.shape[1] != 3 or not np.issubdtype(triangles.dtype, np.integer):
            raise ValueError(
                f"triangles must be (T, 3) vertex indices, got shape {triangles.shape} of {triangles.dtype}"
            )
        bad = np.flatnonzero(~np.isfinite(vertices).all(axis=1))
        if len(bad):
            raise ValueError(f"vertices[{bad[0]}] = {vertices[bad[0]].tolist()} is not finite")
        out = np.flatnonzero(((triangles < 0) | (triangles >= len(vertices))).any(axis=1))
        if len(out):
            raise ValueError(
                f"triangles[{out[0]}] = {triangles[out[0]].tolist()} indexes past the {len(vertices)} vertices"
            )
        object.__setattr__(self, "vertices", vertices)
        object.__setattr__(self, "triangles", triangles.astype(np.int64))


@dataclass(frozen=True)
class Plane:
    """An infinite plane, two-sided (a solid touches it where it crosses it, on either side): the points x
    of the shape's frame with ``normal`` · x = ``offset`` (m), as coal's and FCL's Plane. ValueError for a
    normal that is zero or not finite, or an offset that is not finite."""

    normal: tuple[float, float, float]
    offset: float

    def __post_init__(self) -> None:
        if len(self.normal) != 3 or not all(math.isfinite(v) for v in self.normal) or not any(self.normal):
            raise ValueError(f"plane normal {list(self.normal)} must be 3 finite numbers, not all 0")
        if not math.isfinite(self.offset):
            raise ValueError(f"plane offset {self.offset} is not finite")


Shape = Union[Geometry, TriangleMesh, Plane]
"""A solid in its own frame: URDF-style geometry, a mesh given in memory, or a plane."""


@dataclass(frozen=True, eq=False)
class CollisionElement:
    """One ``<collision>`` of a URDF link: its geometry at ``T_link_geometry`` (4, 4) in the link's frame."""

    link: str
    geometry: Geometry
    T_link_geometry: np.ndarray


class ChainLink(NamedTuple):
    """Where forward kinematics of a chain places a link: in ``frame``, -1 for the chain's base or i for
    movable joint i's frame after its motion (its child link's frame), at ``T_frame_link`` (4, 4), fixed."""

    frame: int
    T_frame_link: np.ndarray


class ChainLinks:
    """Where the links of ``chain`` are. Forward kinematics places, at any q, the links fixed to the base (a
    ``world`` above it too) and each movable joint's child link with the links fixed to it (the tip among
    them): ``links``, ``names``, ``poses``. ``anchor`` also places the links hanging below those through
    joints outside the chain (a gripper's fingers), for given positions of those joints. Made by
    ``UrdfModel.chain_links``. Lengths in metres."""

    def __init__(self, chain: KinematicChain, links: dict[str, ChainLink], model: "UrdfModel") -> None:
        self.chain = chain
        self.links = links
        self.model = model

    def __contains__(self, link: object) -> bool:
        return link in self.links

    @property
    def names(self) -> list[str]:
        """Every link placed, sorted."""
        return sorted(self.links)

    def poses(self, q: np.ndarray, links: Iterable[str], frame: Optional[str] = None) -> np.ndarray:
        """T_frame_link (n, 4, 4) of each of ``links`` at q (dof,) (rad or m, chain order), in the frame of
        link ``frame`` (default: the chain's base). KeyError for a link that is not placed."""
        links = list(links)
        T_base_joint = self.chain.frames(q)[0]  # (dof, 4, 4): each joint's frame after its motion

        def T_base(link: str) -> np.ndarray:
            placed = self.links[link]
            return placed.T_frame_link if placed.frame < 0 else T_base_joint[placed.frame] @ placed.T_frame_link

        T_frame_base = np.eye(4) if frame is None else np.linalg.inv(T_base(frame))
        return np.stack([T_frame_base @ T_base(link) for link in links]) if links else np.empty((0, 4, 4))

    def anchor(
        self, link: str, positions: Mapping[str, float], memo: Optional[dict[str, Optional[ChainLink]]] = None
    ) -> Optional[ChainLink]:
        """Where ``link`` is rigid: its ``ChainLink`` if forward kinematics places it; for a link below one
        through joints outside the chain, that link's frame and T_frame_link (4, 4) with those joints at
        ``positions`` (by name, rad or m; 0 for one not given); None for a link the chain does not move
        (another branch of the tree). ``memo`` (link -> answer, for the same positions) spares walking the
        tree again for each of many links."""
        memo = {} if memo is None else memo
        if link not in memo:
            memo[link] = self._anchor_of(link, positions, memo)
        return memo[link]

    def _anchor_of(self, link: str, positions: Mapping[str, float], memo: dict) -> Optional[ChainLink]:
        if link in self.links:
            return self.links[link]
        if link not in self.model.robot.parent_map:
            return None
        joint, parent = self.model.robot.parent_map[link]
        above = self.anchor(parent, positions, memo)
        if above is None:
            return None
        return ChainLink(above.frame, above.T_frame_link @ self.model.joint_transform(joint, positions.get(joint, 0.0)))


class UrdfModel:
    """A parsed URDF. ``UrdfModel.parse(urdf)`` with a file path or an XML string; ValueError, naming where
    it came from, for an unreadable or malformed one."""

    def __init__(self, robot: URDF, origin: str, xml: str = "") -> None:
        self.robot = robot
        self.origin = origin  # where it came from, for error messages
        self.xml = xml  # the full text, for what the kinematic tree leaves out (collisions())
        self.name: str = robot.name
        self.link_names: frozenset[str] = frozenset(link.name for link in robot.links)
        self.joint_names: list[str] = [joint.name for joint in robot.joints]  # every joint, in file order
        for joint in robot.joints:
            _check_finite(joint, origin)

    @classmethod
    def parse(cls, urdf: UrdfSource) -> "UrdfModel":
        xml, origin = _read(urdf)
        kinematic = _kinematic_elements(xml, origin)
        try:
            robot = URDF.from_xml_string(kinematic)
        except (URDFParseError, ValueError, AttributeError) as exc:
            raise ValueError(f"malformed URDF ({origin}): {exc}") from exc
        return cls(robot, origin, xml)

    def collisions(self) -> list[CollisionElement]:
        """Every ``<collision>`` element of every link, in file order. ValueError naming the link for a
        geometry that is missing, unknown or has bad dimensions."""
        root = ElementTree.fromstring(self.xml) if self.xml else ElementTree.Element("robot")
        elements = []
        for link in root.iter("link"):
            name = link.get("name", "")
            for collision in link.findall("collision"):
                try:
                    geometry = _geometry(collision.find("geometry"))
                    T = _origin_element(collision.find("origin"))
                except ValueError as exc:
                    raise ValueError(f"URDF ({self.origin}): link {name!r}: <collision>: {exc}") from None
                elements.append(CollisionElement(name, geometry, T))
        return elements

    def joint_transform(self, joint_name: str, position: float) -> np.ndarray:
        """T_parent_child (4, 4) of URDF joint ``joint_name`` at ``position`` (rad or m; ignored for fixed
        joints; floating and planar joints are taken at their origin)."""
        joint = self.robot.joint_map[joint_name]
        T = _origin(joint.origin)
        if joint.type in (REVOLUTE, CONTINUOUS):
            T = T @ transform(axis_rotation(_unit_axis(joint), position))
        elif joint.type == PRISMATIC:
            T = T @ transform(p=_unit_axis(joint) * position)
        return T

    def joint_limits(self, joint_name: str) -> tuple[float, float]:
        """(lower, upper) of a movable URDF joint (continuous: -pi, pi); ValueError if it has none."""
        return _joint_limits(self.robot.joint_map[joint_name])

    def check_link(self, role: str, link: str) -> None:
        """ValueError naming ``role`` unless ``link`` is a link of the URDF."""
        if link not in self.link_names:
            raise ValueError(
                f"{role} {link!r} is not a link of URDF robot {self.name!r} ({self.origin}); "
                f"links: {sorted(self.link_names)}"
            )

    def chain(self, base_link: str, tip_link: str) -> KinematicChain:
        """The serial chain from ``base_link`` to ``tip_link``."""
        robot = self.robot
        self.check_link("base_link", base_link)
        self.check_link("tip_link", tip_link)
        # Walk up from the tip: in a URDF tree each link has at most one parent joint.
        path = []
        link = tip_link
        while link != base_link:
            if link not in robot.parent_map or len(path) > len(robot.joints):
                # No parent: the top of the tree was reached. More steps than joints: a cycle.
                raise ValueError(
                    f"no path from base_link {base_link!r} to tip_link {tip_link!r} in URDF "
                    f"robot {self.name!r} ({self.origin}): {tip_link!r} is not below {base_link!r}"
                )
            joint_name, link = robot.parent_map[link]
            path.append(robot.joint_map[joint_name])
        path.reverse()

        joints: list[Joint] = []
        T_pending = np.eye(4)  # fixed transforms since the last movable joint
        for urdf_joint in path:
            T_origin = _origin(urdf_joint.origin)
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
            T_prev_joint, velocity = T_pending @ T_origin, _velocity_limit(urdf_joint)
            joints.append(
                Joint(urdf_joint.name, urdf_joint.type, _unit_axis(urdf_joint), T_prev_joint, lower, upper, velocity)
            )
            T_pending = np.eye(4)
        return KinematicChain(joints, T_pending, base_link, tip_link)

    def attached_frames(self, link: str) -> dict[str, np.ndarray]:
        """Every link joined to ``link`` by fixed joints only (up or down the tree), ``link`` itself
        included: name -> T_link_frame (4, 4), that frame's pose in ``link``'s frame."""
        self.check_link("link", link)
        # Fixed joints as edges both ways: T_parent_child one way, its inverse the other.
        edges: dict[str, list[tuple[str, np.ndarray]]] = {}
        for joint in self.robot.joints:
            if joint.type == "fixed":
                T_parent_child = _origin(joint.origin)
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

    def chain_links(self, chain: KinematicChain) -> ChainLinks:
        """The links of this URDF that forward kinematics of ``chain`` (made from this URDF) places: the
        links fixed to its base, and each movable joint's child link with the links fixed to it."""
        links = {name: ChainLink(-1, T) for name, T in self.attached_frames(chain.base_link).items()}
        for i, joint_name in enumerate(chain.joint_names):
            child = self.robot.joint_map[joint_name].child
            links.update({name: ChainLink(i, T) for name, T in self.attached_frames(child).items()})
        return ChainLinks(chain, links, self)


def _read(urdf: UrdfSource) -> tuple[str, str]:
    """(XML text, a short description of where it came from for error messages)."""
    if isinstance(urdf, str) and urdf.lstrip().startswith("<"):
        return urdf, "XML string"
    path = Path(urdf)
    try:
        return path.read_text(), str(path)
    except OSError as exc:
        raise ValueError(f"cannot read URDF file {str(path)!r}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"cannot read URDF file {str(path)!r}: not UTF-8 text ({exc.reason})") from exc


def _kinematic_elements(xml: str, origin: str) -> str:
    """The URDF reduced to link names and joints, the only parts a chain needs."""
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


def _numbers(element, attribute: str, count: int, default: Optional[str] = None) -> tuple[float, ...]:
    text = element.get(attribute, default)
    if text is None:
        raise ValueError(f"<{element.tag}> has no {attribute}=")
    try:
        values = tuple(float(v) for v in text.split())
    except ValueError:
        raise ValueError(f"<{element.tag} {attribute}={text!r}> is not {count} numbers") from None
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise ValueError(f"<{element.tag} {attribute}={text!r}> is not {count} finite numbers")
    return values


def _geometry(element) -> Geometry:
    """The ``Geometry`` of a URDF ``<geometry>`` element."""
    if element is None or len(element) == 0:
        raise ValueError("no <geometry> shape")
    shape = element[0]
    if shape.tag == BOX:
        return Geometry(BOX, _numbers(shape, "size", 3))
    if shape.tag == SPHERE:
        return Geometry(SPHERE, _numbers(shape, "radius", 1))
    if shape.tag in (CYLINDER, CAPSULE):
        return Geometry(shape.tag, _numbers(shape, "radius", 1) + _numbers(shape, "length", 1))
    if shape.tag == MESH:
        return Geometry(MESH, _numbers(shape, "scale", 3, "1 1 1"), shape.get("filename", ""))
    raise ValueError(f"unknown geometry <{shape.tag}> (supported: box, sphere, cylinder, capsule, mesh)")


def _origin_element(element) -> np.ndarray:
    """T (4, 4) of a URDF ``<origin xyz= rpy=>`` element (None: identity)."""
    if element is None:
        return np.eye(4)
    return transform(rpy_to_matrix(_numbers(element, "rpy", 3, "0 0 0")), _numbers(element, "xyz", 3, "0 0 0"))


def _check_finite(joint, origin: str) -> None:
    """ValueError naming the joint if its origin or axis holds NaN or inf."""
    values = {"axis": joint.axis or []}
    if joint.origin is not None:
        values["origin xyz"] = joint.origin.xyz or []
        values["origin rpy"] = joint.origin.rpy or []
    for what, numbers in values.items():
        if not all(math.isfinite(float(v)) for v in numbers):
            raise ValueError(f"URDF ({origin}): joint {joint.name!r} has a non-finite {what} {list(numbers)}")


def _origin(origin) -> np.ndarray:
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


def _velocity_limit(urdf_joint) -> float:
    """The joint's ``<limit velocity=...>`` (rad/s, m/s for a prismatic joint), or ``math.inf`` where there is
    none, or it is 0, negative or not a number (kinematics-only URDFs write 0): a URDF that MoveIt loads is
    never refused for it."""
    limit = urdf_joint.limit
    velocity = None if limit is None else limit.velocity
    if velocity is None:
        return math.inf
    velocity = float(velocity)
    return velocity if math.isfinite(velocity) and velocity > 0 else math.inf
