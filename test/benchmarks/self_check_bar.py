"""Benchmark (prints a table; not a test): one self-collision check of the Panda, ``in_collision(q)`` on random
configurations, with the geometry it may have.

    source "$(bash env/activate_checkout.sh | tail -1)" && python test/benchmarks/self_check_bar.py --samples 5000

Rows, all on the same configurations in one run: the shipped Panda (models/panda, whatever its URDF holds);
a Panda URDF given with ``--also`` (e.g. ``git show d5fc70e:models/panda/panda.urdf``, the fitted capsules and
boxes); example-robot-data's Panda on its collision meshes as convex pieces
(what a URDF's mesh files become: convex_pieces.py), its disabled pairs computed; and, for reference, the
same meshes as coal BVHs of their triangles (what mesh files were before), the same pairs. Each row: the
bodies, pairs checked, median and 90th percentile µs per check, and the fraction of configurations in
collision.
"""

from __future__ import annotations

import argparse
import importlib.metadata
from pathlib import Path

import coal
import numpy as np

from ik_neural.bench.collision import self_check_table
from ik_neural.collision import CollisionChecker
from ik_neural.robot_bodies import Solid, coal_geometry
from ik_neural.robots import load_robot
from ik_neural.ros.startup import resolve_path
from ik_neural.urdf_model import MESH, UrdfModel

SHARE = Path(str(importlib.metadata.distribution("example-robot-data").locate_file("cmeel.prefix/share")))
ERD_PANDA = SHARE / "example-robot-data/robots/panda_description/urdf/panda.urdf"


def _bvh_checker(model: UrdfModel, chain, pieces: CollisionChecker) -> CollisionChecker:
    """The same URDF with every mesh file as coal's BVH of its triangles, ``pieces``' disabled pairs."""
    resolve = lambda filename: resolve_path(filename, (SHARE,))  # noqa: E731
    elements = []
    for element in model.collisions():
        geometry = element.geometry
        if geometry.kind == MESH:
            solid = coal.MeshLoader().load(str(resolve(geometry.filename)), np.asarray(geometry.size, dtype=float))
        else:
            solid = coal_geometry(geometry)
        elements.append((element.link, Solid.of(solid), element.T_link_geometry))
    checker = CollisionChecker(model, chain, elements, pieces.positions)
    checker._disable(dict(pieces.disabled_reasons), pieces.disabled_source)
    return checker


def _also(urdf: str, chain) -> CollisionChecker:
    model = UrdfModel.parse(urdf)
    return CollisionChecker.from_urdf(model, model.chain(chain.base_link, chain.tip_link), resolve=resolve_path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--random-seed", type=int, default=0)
    parser.add_argument(
        "--also", metavar="URDF", help="a Panda URDF to time as well (e.g. an older revision's, with capsules)"
    )
    args = parser.parse_args()

    robot = load_robot("panda")
    shipped = CollisionChecker.from_urdf(UrdfModel.parse(robot.urdf_path), robot.chain, resolve=resolve_path)
    model = UrdfModel.parse(str(ERD_PANDA))
    chain = model.chain("panda_link0", "panda_link8")
    pieces = CollisionChecker.from_urdf(model, chain, resolve=lambda filename: resolve_path(filename, (SHARE,)))
    bvh = _bvh_checker(model, chain, pieces)
    Q = robot.chain.bounds.sample(np.random.default_rng(args.random_seed), args.samples)
    assert robot.chain.joint_names == chain.joint_names
    rows = [
        ("shipped models/panda", shipped),
        ("example-robot-data meshes, convex pieces", pieces),
        ("example-robot-data meshes, BVH (before)", bvh),
    ]
    if args.also:
        rows.insert(1, (f"{Path(args.also).name} (--also)", _also(args.also, robot.chain)))
    print(f"the Panda's geometries, seed {args.random_seed}")
    print(self_check_table(rows, Q))


if __name__ == "__main__":
    main()
