"""A URDF's collision mesh files as convex pieces (convex_pieces.py): STL, DAE and OBJ each read, scale
applied, convex meshes as their hull, concave ones decomposed by CoACD, the pieces cached per user, meshes
that cannot be read refused or skipped with a warning; and the checker on example-robot-data's Panda (its
package:// meshes) against Pinocchio + coal on the same meshes."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import coal
import numpy as np
import pytest

from ik_neural import convex_pieces
from ik_neural.collision import CollisionChecker
from ik_neural.convex_pieces import PiecesReport, convex_solid, mesh_pieces
from ik_neural.robot_bodies import robot_geometries
from ik_neural.ros.settings import NodeSettings
from ik_neural.ros.startup import collision_checker, resolve_path
from ik_neural.urdf_model import MESH, Geometry, UrdfModel
from urdf_variants import slider_urdf

pytestmark = pytest.mark.unit

# base: a sphere far below; slider moves along x carrying ``block`` (the mesh under test) at its origin.
MESH_URDF = slider_urdf(
    base='<collision><origin xyz="0 0 -5"/><geometry><sphere radius="0.1"/></geometry></collision>',
    slider="",
    block='<collision><geometry><mesh filename="{filename}" scale="{scale}"/></geometry></collision>',
)


def _box(lower, upper, first: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A closed box's vertices (8, 3) and outward triangles (12, 3), indices from ``first``."""
    (x0, y0, z0), (x1, y1, z1) = lower, upper
    V = np.array([[x, y, z] for x in (x0, x1) for y in (y0, y1) for z in (z0, z1)], dtype=float)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    T = np.array([t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))]) + first
    return V, T


def _two_boxes() -> tuple[np.ndarray, np.ndarray]:
    """Two unit-ish cubes 0.6 apart along x: closed, concave (its hull is far bigger)."""
    V0, T0 = _box((-1.0, -0.5, -0.5), (-0.3, 0.5, 0.5))
    V1, T1 = _box((0.3, -0.5, -0.5), (1.0, 0.5, 0.5), first=8)
    return np.vstack([V0, V1]), np.vstack([T0, T1])


def write_stl(path: Path, V, T) -> Path:
    lines = ["solid m"]
    for a, b, c in T:
        lines += ["facet normal 0 0 0", " outer loop"]
        lines += [f"  vertex {x:.9g} {y:.9g} {z:.9g}" for x, y, z in (V[a], V[b], V[c])]
        lines += [" endloop", "endfacet"]
    path.write_text("\n".join(lines + ["endsolid m", ""]))
    return path


def write_obj(path: Path, V, T) -> Path:
    lines = [f"v {x:.9g} {y:.9g} {z:.9g}" for x, y, z in V] + [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in T]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_dae(path: Path, V, T) -> Path:
    positions = " ".join(f"{v:.9g}" for v in np.asarray(V).ravel())
    indices = " ".join(str(int(i)) for i in np.asarray(T).ravel())
    path.write_text(f"""<?xml version="1.0" encoding="utf-8"?>
<COLLADA xmlns="http://www.collada.org/2005/11/COLLADASchema" version="1.4.1">
  <asset><unit name="meter" meter="1"/><up_axis>Z_UP</up_axis></asset>
  <library_geometries>
    <geometry id="m" name="m"><mesh>
      <source id="m-pos"><float_array id="m-pos-array" count="{len(V) * 3}">{positions}</float_array>
        <technique_common><accessor source="#m-pos-array" count="{len(V)}" stride="3">
          <param name="X" type="float"/><param name="Y" type="float"/><param name="Z" type="float"/>
        </accessor></technique_common></source>
      <vertices id="m-vtx"><input semantic="POSITION" source="#m-pos"/></vertices>
      <triangles count="{len(T)}"><input semantic="VERTEX" source="#m-vtx" offset="0"/><p>{indices}</p></triangles>
    </mesh></geometry>
  </library_geometries>
  <library_visual_scenes><visual_scene id="s"><node id="n"><instance_geometry url="#m"/></node></visual_scene>
  </library_visual_scenes>
  <scene><instance_visual_scene url="#s"/></scene>
</COLLADA>
""")
    return path


WRITERS = {"stl": write_stl, "dae": write_dae, "obj": write_obj}


@pytest.fixture
def user_cache(tmp_path, monkeypatch) -> Path:
    """A fresh per-user cache (``$XDG_CACHE_HOME``)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "ik_neural" / "convex"


def _checker(filename: str, scale: str = "1 1 1", **kwargs) -> CollisionChecker:
    model = UrdfModel.parse(MESH_URDF.format(filename=filename, scale=scale))
    return CollisionChecker.from_urdf(model, model.chain("base", "tool"), disabled_pairs=[], **kwargs)


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_stl_dae_and_obj_are_read_scaled_and_a_convex_mesh_is_its_hull(fmt, tmp_path, user_cache):
    """A unit cube written as STL, COLLADA or OBJ, scaled (0.1, 0.2, 0.3) by the URDF: one piece, the
    scaled box (volume, extent), a coal.Convex; a ball beside it is apart, one overlapping it touches."""
    path = WRITERS[fmt](tmp_path / f"cube.{fmt}", *_box((-0.5, -0.5, -0.5), (0.5, 0.5, 0.5)))
    checker = _checker(str(path), "0.1 0.2 0.3")
    assert checker.pieces_report.meshes == checker.pieces_report.pieces == checker.pieces_report.built == 1
    assert checker.pieces_report.decomposed == 0
    (solid,) = [s for link, s in zip(checker._links, checker._solids) if link == "block"]
    assert isinstance(solid.geometry, coal.ConvexBase)
    assert solid.geometry.computeVolume() == pytest.approx(0.1 * 0.2 * 0.3, rel=1e-9)
    points = np.array(solid.geometry.points())
    assert np.allclose(points.max(0), [0.05, 0.1, 0.15]) and np.allclose(points.min(0), [-0.05, -0.1, -0.15])
    ball = coal.Sphere(0.01)
    request, here = coal.CollisionRequest(), coal.Transform3s()
    assert not coal.collide(
        solid.geometry, here, ball, coal.Transform3s(np.eye(3), np.array([0.07, 0, 0])), request, coal.CollisionResult()
    )
    assert coal.collide(
        solid.geometry,
        here,
        ball,
        coal.Transform3s(np.eye(3), np.array([0.055, 0, 0])),
        request,
        coal.CollisionResult(),
    )


def test_an_open_mesh_is_its_hull(tmp_path, user_cache):
    """A box without its top (not closed: no volume to compare) is taken as its hull, the whole box."""
    V, T = _box((0, 0, 0), (1, 1, 1))
    open_box = T[[t for t in range(12) if not (V[T[t]][:, 0] == 1).all()]]  # drop the two x = 1 triangles
    path = write_obj(tmp_path / "open.obj", V, open_box)
    (piece,) = mesh_pieces(path, (1, 1, 1))
    assert convex_solid(piece).computeVolume() == pytest.approx(1.0)


def test_a_concave_mesh_is_decomposed_once_and_the_pieces_cached(tmp_path, user_cache, monkeypatch):
    """Two boxes apart in one STL: closed, its hull 1.7 times its volume, so CoACD decomposes it; a ball in
    the gap touches no piece (it would touch the hull). The pieces go to the per-user cache (an npz keyed by
    the content, the scale and the method): a second load reads them, decomposing nothing; another scale
    is another key."""
    calls = []
    decompose = convex_pieces.decompose
    monkeypatch.setattr(convex_pieces, "decompose", lambda V, T: calls.append(1) or decompose(V, T))
    path = write_stl(tmp_path / "two.stl", *_two_boxes())
    announced = []
    first = PiecesReport(announce=announced.append)
    pieces = mesh_pieces(path, (1, 1, 1), report=first)
    assert len(calls) == 1 and first.built == first.decomposed == 1 and len(pieces) >= 2
    ((line,),) = [announced]  # said before the decomposition, naming the file
    assert line.startswith(f"convex pieces: decomposing the concave mesh {str(path)!r}")
    assert len(list(user_cache.glob("*.npz"))) == 1
    solids = [convex_solid(p) for p in pieces]
    assert sum(s.computeVolume() for s in solids) == pytest.approx(2 * 0.7, rel=0.05)
    ball, gap = coal.Sphere(0.2), coal.Transform3s(np.eye(3), np.zeros(3))
    assert not any(
        coal.collide(s, coal.Transform3s(), ball, gap, coal.CollisionRequest(), coal.CollisionResult()) for s in solids
    )
    hull = convex_solid(np.vstack(pieces))
    assert coal.collide(hull, coal.Transform3s(), ball, gap, coal.CollisionRequest(), coal.CollisionResult())

    second = PiecesReport(announce=announced.append)
    again = mesh_pieces(path, (1, 1, 1), report=second)
    assert len(calls) == 1 and second.built == 0 and second.pieces == len(pieces) and len(announced) == 1
    assert all(np.array_equal(a, b) for a, b in zip(pieces, again))
    mesh_pieces(path, (2, 2, 2))
    assert len(calls) == 2 and len(list(user_cache.glob("*.npz"))) == 2


def test_the_node_says_once_what_it_built(tmp_path, user_cache):
    """startup.collision_checker: one line naming the meshes, pieces, time and cache on the first start;
    nothing on the next (read from the cache)."""
    path = write_stl(tmp_path / "cube.stl", *_box((-0.05, -0.05, -0.05), (0.05, 0.05, 0.05)))
    model = UrdfModel.parse(MESH_URDF.format(filename=str(path), scale="1 1 1"))
    chain, said = model.chain("base", "tool"), []
    settings = NodeSettings()
    assert collision_checker(settings, model, chain, "<robot name='slider'/>", said.append, said.append)
    assert len(said) == 1 and said[0].startswith("convex pieces: 1 collision meshes -> 1 pieces (1 built now")
    assert str(user_cache) in said[0]
    assert collision_checker(settings, model, chain, "<robot name='slider'/>", said.append, said.append)
    assert len(said) == 1


def test_a_mesh_that_cannot_be_read_is_refused_naming_it_or_skipped_with_a_warning(tmp_path, user_cache):
    """A missing file and a file that is no mesh: ValueError naming the link and the file; with
    skip_unreadable_meshes the checker leaves that mesh out and the node warns, naming link and file."""
    garbage = tmp_path / "garbage.stl"
    garbage.write_bytes(b"\x00\x01 this is not a mesh")
    for filename in ("/nonexistent/block.stl", str(garbage)):
        with pytest.raises(ValueError, match=rf"link 'block'.*{filename}"):
            _checker(filename)
        checker = _checker(filename, skip_unreadable_meshes=True)
        assert checker.link_names == ["base"]
        ((link, skipped, _why),) = checker.pieces_report.skipped
        assert (link, skipped) == ("block", filename)
        model = UrdfModel.parse(MESH_URDF.format(filename=filename, scale="1 1 1"))
        warned = []
        collision_checker(
            NodeSettings(skip_unreadable_meshes=True),
            model,
            model.chain("base", "tool"),
            "<robot name='slider'/>",
            print,
            warned.append,
        )
        assert len(warned) == 1 and f"{filename!r} of link 'block' skipped" in warned[0]
    assert NodeSettings().skip_unreadable_meshes is False


def test_primitives_stay_primitives(user_cache):
    assert isinstance(robot_geometries(Geometry("box", (1.0, 2.0, 3.0)))[0], coal.Box)
    assert isinstance(robot_geometries(Geometry("sphere", (1.0,)))[0], coal.Sphere)


# ---------------------------------------------------------------- example-robot-data's Panda, its own meshes

SHARE = Path(str(importlib.metadata.distribution("example-robot-data").locate_file("cmeel.prefix/share")))
ERD_PANDA = "panda_description/urdf/panda.urdf"


def test_the_panda_on_its_meshes_agrees_with_pinocchio_and_coal(user_cache):
    """example-robot-data's Panda, its collision meshes given as package://example-robot-data/... URIs and
    resolved in package_paths (the node's resolver): over 3000 random configurations, every pair of links
    Pinocchio + coal finds colliding on the same meshes (BVH surfaces) the convex pieces find too; the
    pieces add a pair in at most 1 % of configurations (hulls within 0.05 % of each mesh's volume; a link
    wholly inside another's surface touches only as a solid). Measured: 10 in 2000."""
    from reference import MeshSelfCollisionJudge

    model = UrdfModel.parse(str(SHARE / "example-robot-data/robots" / ERD_PANDA))
    assert all(
        e.geometry.filename.startswith("package://example-robot-data/")
        for e in model.collisions()
        if e.geometry.kind == MESH
    )
    chain = model.chain("panda_link0", "panda_link8")
    settings = NodeSettings(package_paths=str(SHARE))
    checker = CollisionChecker.from_urdf(
        model, chain, disabled_pairs=[], resolve=lambda f: resolve_path(f, settings.package_folders)
    )
    assert checker.pieces_report.meshes == checker.pieces_report.pieces == 9  # each convex: its hull
    judge = MeshSelfCollisionJudge(ERD_PANDA, chain.joint_names, checker.positions)
    Q = chain.bounds.sample(np.random.default_rng(0), 3000)
    extra = colliding = 0
    for q in Q:
        ours, theirs = set(checker.colliding_pairs(q)), judge.colliding_pairs(q)
        assert theirs <= ours, (q.tolist(), theirs - ours)
        colliding += bool(theirs)
        extra += ours != theirs
    assert 0.05 * len(Q) < colliding < 0.5 * len(Q)
    assert extra <= 0.01 * len(Q), extra
