"""Convex collision pieces of the makers' collision meshes of the shipped Panda and UR5e (run once by hand).

Usage (from the repository root)::

    python tools/convex_pieces.py panda MESH_DIR   # MESH_DIR: example-robot-data's panda_description/meshes/collision
    python tools/convex_pieces.py ur5e MESH_DIR    # MESH_DIR: Universal_Robots_ROS2_Description's meshes/ur5e/collision

Sources. Panda: the collision meshes (link0-7.stl, hand.stl) of franka_description as example-robot-data ships
them (``robots/panda_description/meshes/collision``, Apache-2.0); its URDF places them at the link frames with
no offset. UR5e: ``meshes/ur5e/collision/*.stl`` of Universal_Robots_ROS2_Description 2.4.5 (BSD-3-Clause),
placed by the collision origins of its ``urdf/ur_macro.xacro`` (the PLACEMENT table below).

Each mesh is moved into its link's frame and replaced by its convex hull (qhull, through coal): margin 0, every
mesh vertex lies in the hull (checked; float32 rounding of the written corners, < 1e-6 m, aside). Every one of
these 16 meshes is convex already (hull volume / mesh volume 1.00, printed per link), so the hull is the same
solid and no link needs a convex decomposition; the script stops on a mesh whose hull is more than 1 % larger
(a concave mesh: decompose it, e.g. with CoACD, and hold every triangle in some piece). Writes
``models/<robot>/collision/<mesh>_0.stl`` (binary STL, one convex piece, outward normals); the URDFs' ``<collision>``
elements name them as ``package://ik_neural/models/<robot>/collision/<file>``, with no origin.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import coal
import numpy as np

from ik_neural.geometry import rpy_to_matrix

PI = np.pi
# link -> (mesh file, xyz, rpy): the maker's collision origin of the mesh in the link frame.
PLACEMENT = {
    "panda": {
        **{f"panda_link{i}": (f"link{i}.stl", (0, 0, 0), (0, 0, 0)) for i in range(8)},
        "panda_hand": ("hand.stl", (0, 0, 0), (0, 0, 0)),
    },
    "ur5e": {
        "base_link_inertia": ("base.stl", (0, 0, 0), (0, 0, PI)),
        "shoulder_link": ("shoulder.stl", (0, 0, 0), (0, 0, PI)),
        "upper_arm_link": ("upperarm.stl", (0, 0, 0.138), (PI / 2, 0, -PI / 2)),
        "forearm_link": ("forearm.stl", (0, 0, 0.007), (PI / 2, 0, -PI / 2)),
        "wrist_1_link": ("wrist1.stl", (0, 0, -0.127), (PI / 2, 0, 0)),
        "wrist_2_link": ("wrist2.stl", (0, 0, -0.0997), (0, 0, 0)),
        "wrist_3_link": ("wrist3.stl", (0, 0, -0.0989), (PI / 2, 0, 0)),
    },
}
CONCAVE = 1.01  # hull volume / mesh volume above which one hull would fill the mesh's concavities


def read_stl(path: Path) -> np.ndarray:
    """The triangles (N, 3, 3) of a binary or ASCII STL file."""
    data = path.read_bytes()
    count = int(np.frombuffer(data, np.uint32, 1, 80)[0]) if len(data) >= 84 else -1
    if len(data) == 84 + 50 * count:
        record = np.dtype([("normal", "<f4", 3), ("v", "<f4", (3, 3)), ("attr", "<u2")])
        return np.frombuffer(data, record, count, 84)["v"].astype(np.float64)
    words = data.decode("ascii").split()
    vertices = [[float(w) for w in words[i + 1 : i + 4]] for i, w in enumerate(words) if w == "vertex"]
    return np.array(vertices).reshape(-1, 3, 3)


def write_stl(path: Path, triangles: np.ndarray) -> None:
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    normal = np.cross(b - a, c - a)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    record = np.dtype([("normal", "<f4", 3), ("v", "<f4", (3, 3)), ("attr", "<u2")])
    out = np.zeros(len(triangles), record)
    out["normal"], out["v"] = normal, triangles
    path.write_bytes(
        b"convex piece, ik_neural tools/convex_pieces.py".ljust(80, b" ")
        + np.uint32(len(triangles)).tobytes()
        + out.tobytes()
    )


def hull(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (V, 3), triangles (F, 3) indices, outward) of the convex hull of points (N, 3)."""
    vector = coal.StdVec_Vec3s()
    for p in np.unique(points, axis=0):
        vector.append(p)
    convex = coal.ConvexBase.convexHull(vector, True, "Qt")
    vertices = np.array(convex.points())
    faces = np.array([[convex.polygons(i)[k] for k in range(3)] for i in range(convex.num_polygons)])
    used = np.unique(faces)
    remap = np.full(len(vertices), -1)
    remap[used] = np.arange(len(used))
    vertices, faces = vertices[used], remap[faces]
    center = vertices.mean(0)
    tri = vertices[faces]
    outward = np.einsum("ij,ij->i", np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), tri[:, 0] - center) > 0
    faces[~outward] = faces[~outward][:, ::-1]
    return vertices, faces


def volume(triangles: np.ndarray) -> float:
    return abs(float(np.einsum("ij,ij->i", triangles[:, 0], np.cross(triangles[:, 1], triangles[:, 2])).sum()) / 6)


def depth(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Per point: the largest signed distance to the hull's face planes (<= 0 inside)."""
    tri = vertices[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    return ((points[:, None, :] - tri[None, :, 0]) * n[None]).sum(-1).max(1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("robot", choices=sorted(PLACEMENT))
    parser.add_argument("mesh_dir", type=Path, help="the folder of the maker's collision STL files")
    parser.add_argument("--out", type=Path, help="default: models/<robot>/collision")
    args = parser.parse_args(argv)
    out = args.out or Path(__file__).resolve().parent.parent / "models" / args.robot / "collision"
    out.mkdir(parents=True, exist_ok=True)
    for link, (mesh, xyz, rpy) in PLACEMENT[args.robot].items():
        triangles = read_stl(args.mesh_dir / mesh) @ rpy_to_matrix(rpy).T + np.asarray(xyz, float)
        vertices, faces = hull(triangles.reshape(-1, 3))
        ratio = volume(vertices[faces]) / volume(triangles)
        if ratio > CONCAVE:
            raise SystemExit(f"{link}: {mesh} is concave (hull / mesh volume {ratio:.3f}): one hull would fill it")
        assert (depth(triangles.reshape(-1, 3), vertices, faces) <= 1e-9).all(), link  # holds every vertex
        name = f"{Path(mesh).stem}_0.stl"
        write_stl(out / name, vertices[faces])
        print(
            f"{link}: {mesh}, {len(triangles)} triangles, hull/mesh volume {ratio:.4f}: {name}, {len(vertices)} vertices"
        )


if __name__ == "__main__":
    sys.exit(main())
