"""A URDF's collision mesh file as convex pieces: what the collision checker keeps of a ``<mesh>``.

A mesh file (STL, DAE or OBJ, read by coal's assimp loader, ``scale`` applied) becomes:

- its convex hull when the mesh is convex: closed (every edge, once coincident vertices are merged, shared
  by exactly two triangles) and its hull's volume within ``CONVEX_TOLERANCE`` (1 %) of its own volume;
- its convex hull as well when the mesh is not closed: an open surface has no inside to measure, and the
  hull covers it (a conservative answer: the checker may call a configuration colliding that the surface
  alone would not);
- otherwise (closed and concave) CoACD's approximate convex decomposition, concavity threshold
  ``COACD_THRESHOLD`` (seeded: the same pieces every time).

Each piece is a ``coal.Convex`` (its hull, with its triangles, so coal's support function walks neighbours
instead of every vertex). A decomposition takes seconds to minutes (2 cores, 2026-12-07: the SO-101's
maker meshes in example-robot-data, closed and concave: waveshare_mounting_plate, 1.3k triangles, 9 s, 16
pieces; sts3215_03a, 19k, 46 s, 51 pieces; base_so101_v2, 9.4k, 61 s, 145 pieces; the whole arm, 12 such
files: some ten minutes, estimated from these), so the pieces' vertices are cached per user, once per mesh file, in
``~/.cache/ik_neural/convex/<key>.npz`` (``$XDG_CACHE_HOME`` honoured), keyed (``cache_key``) by the file's
content, the scale and the method (``METHOD_VERSION``, the tolerance, the threshold, CoACD's version): a
later load only recomputes the hulls (about a millisecond a piece).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import coal
import numpy as np

from ik_neural.kernels.cache import user_cache_dir

CONVEX_TOLERANCE = 0.01
"""A closed mesh whose convex hull's volume exceeds its own by at most this fraction is taken as convex."""
COACD_THRESHOLD = 0.05
"""CoACD's concavity threshold for concave meshes (its default): lower gives more, tighter pieces."""
COACD_SEED = 0
METHOD_VERSION = 1
"""Bumped whenever what a mesh file becomes changes: older cached pieces are then not read."""
_MERGE_DIGITS = 9
"""Vertices equal to 1e-9 m are one vertex when deciding whether a mesh is closed."""


def read_mesh(path: Path, scale: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3) m (``scale`` applied) and triangles (T, 3) of a mesh file, through coal's loader
    (assimp: STL, DAE, OBJ and more). ValueError where the file cannot be read or has no triangles."""
    try:
        bvh = coal.MeshLoader().load(str(path), np.asarray(scale, dtype=np.float64))
    except Exception as exc:  # coal raises its own exception types for unreadable files
        raise ValueError(str(exc).strip() or type(exc).__name__) from exc
    vertices = np.array(bvh.vertices(), dtype=np.float64).reshape(-1, 3)
    triangles = np.array(
        [[t[0], t[1], t[2]] for t in (bvh.tri_indices(i) for i in range(bvh.num_tris))], dtype=np.int64
    ).reshape(-1, 3)
    if not len(triangles):
        raise ValueError("no triangles in it")
    return vertices, triangles


def merged(vertices: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mesh with coincident vertices made one (assimp splits a vertex per normal or texture coordinate)."""
    unique, inverse = np.unique(np.round(vertices, _MERGE_DIGITS), axis=0, return_inverse=True)
    return unique, inverse.reshape(-1)[triangles]


def is_closed(triangles: np.ndarray) -> bool:
    """Whether every edge of the (merged) triangles is shared by exactly two of them."""
    edges = np.sort(np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    return bool(len(counts)) and bool((counts == 2).all())


def volume(vertices: np.ndarray, triangles: np.ndarray) -> float:
    """The volume a closed mesh encloses, m³ (the divergence theorem; orientation-free: absolute value)."""
    a, b, c = vertices[triangles[:, 0]], vertices[triangles[:, 1]], vertices[triangles[:, 2]]
    return abs(float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum()) / 6.0)


def convex_solid(points: np.ndarray) -> coal.ConvexBase:
    """coal's convex hull of points (N, 3), with its triangles."""
    cloud = coal.StdVec_Vec3s()
    for p in np.asarray(points, dtype=np.float64).reshape(-1, 3):
        cloud.append(p)
    try:
        return coal.Convex.convexHull(cloud, True, None)
    except RuntimeError:  # a hull vertex with more neighbours than coal keeps (255): without the triangles
        return coal.Convex.convexHull(cloud, False, None)


def is_convex(vertices: np.ndarray, triangles: np.ndarray) -> bool:
    """The module docstring's rule: not closed, or closed with its hull within ``CONVEX_TOLERANCE``."""
    vertices, triangles = merged(vertices, triangles)
    if not is_closed(triangles):
        return True
    own = volume(vertices, triangles)
    return convex_solid(vertices).computeVolume() <= (1.0 + CONVEX_TOLERANCE) * own


def decompose(vertices: np.ndarray, triangles: np.ndarray) -> list[np.ndarray]:
    """CoACD's convex pieces of a concave mesh: each piece's vertices (N, 3)."""
    try:
        import coacd  # imported on first need: the convex meshes never need it
    except ImportError as exc:
        raise ValueError(
            "the mesh is concave and decomposing it needs CoACD, which is not installed (pip install coacd==1.0.7)"
        ) from exc

    coacd.set_log_level("error")
    mesh = coacd.Mesh(np.asarray(vertices, dtype=np.float64), np.asarray(triangles, dtype=np.int32))
    parts = coacd.run_coacd(mesh, threshold=COACD_THRESHOLD, seed=COACD_SEED)
    return [np.asarray(part_vertices, dtype=np.float64).reshape(-1, 3) for part_vertices, _ in parts]


def _coacd_version() -> str:
    try:
        return importlib.metadata.version("coacd")
    except importlib.metadata.PackageNotFoundError:
        return "none"


def cache_key(content: bytes, scale: Sequence[float]) -> str:
    """24 hex digits of a mesh file's content, the scale and the method (the module docstring)."""
    digest = hashlib.sha256(content)
    method = {
        "version": METHOD_VERSION,
        "scale": [float(s) for s in scale],
        "tolerance": CONVEX_TOLERANCE,
        "threshold": COACD_THRESHOLD,
        "seed": COACD_SEED,
        "coacd": _coacd_version(),
    }
    digest.update(json.dumps(method, sort_keys=True).encode())
    return digest.hexdigest()[:24]


def cache_dir() -> Path:
    """Where the pieces of every mesh file are kept."""
    return user_cache_dir() / "convex"


def _read_cache(path: Path) -> Optional[tuple[list[np.ndarray], bool]]:
    try:
        with np.load(path) as data:
            count = int(data["count"])
            pieces = [np.asarray(data[f"piece_{k}"], dtype=np.float64).reshape(-1, 3) for k in range(count)]
            return pieces, bool(data["decomposed"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_cache(path: Path, pieces: Sequence[np.ndarray], decomposed: bool) -> None:
    """Atomically (concurrent first starts agree); an unwritable cache is skipped."""
    arrays = {f"piece_{k}": piece for k, piece in enumerate(pieces)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".tmp") as out:
            np.savez(out, count=len(pieces), decomposed=decomposed, **arrays)
        os.replace(out.name, path)
    except OSError:
        pass


@dataclass
class PiecesReport:
    """What loading a robot's mesh files did: meshes, pieces, those built now (not read from the cache),
    those decomposed (concave), the seconds spent building, and meshes skipped (link, file, why)."""

    meshes: int = 0
    pieces: int = 0
    built: int = 0
    decomposed: int = 0
    seconds: float = 0.0
    skipped: list[tuple[str, str, str]] = field(default_factory=list)
    announce: Optional[Callable[[str], None]] = None
    """Told, before a concave mesh is decomposed, which one and that it takes a while (once: cached)."""

    def line(self) -> str:
        """The one line the node logs when any mesh was built."""
        return (
            f"convex pieces: {self.meshes} collision meshes -> {self.pieces} pieces ({self.built} built now, "
            f"{self.decomposed} of them decomposed) in {self.seconds:.1f} s, cached in {cache_dir()}"
        )


def mesh_pieces(
    path: Path, scale: Sequence[float], cache: bool = True, report: Optional[PiecesReport] = None
) -> list[np.ndarray]:
    """The convex pieces' vertices (N, 3) of mesh file ``path`` at ``scale`` (the module docstring), from
    the per-user cache when there (and written there otherwise, unless ``cache`` is False). ValueError
    where the file cannot be read."""
    try:
        content = Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(exc.strerror or str(exc)) from exc
    where = cache_dir() / f"{cache_key(content, scale)}.npz"
    cached = _read_cache(where) if cache else None
    if cached is not None:
        pieces, decomposed = cached
    else:
        started = time.perf_counter()
        vertices, triangles = read_mesh(path, scale)
        decomposed = not is_convex(vertices, triangles)
        if decomposed and report is not None and report.announce is not None:
            report.announce(
                f"convex pieces: decomposing the concave mesh {str(path)!r} ({len(triangles)} triangles) with "
                "CoACD: seconds to minutes, once (cached per user)"
            )
        pieces = decompose(vertices, triangles) if decomposed else [merged(vertices, triangles)[0]]
        if cache:
            _write_cache(where, pieces, decomposed)
        if report is not None:
            report.built += 1
            report.decomposed += int(decomposed)
            report.seconds += time.perf_counter() - started
    if report is not None:
        report.meshes += 1
        report.pieces += len(pieces)
    return pieces
