"""Benchmark (prints a table; not a test): the cost of a request's constraint check, once per converged
candidate, on the Panda.

    source "$(bash env/activate_checkout.sh)" && python test/benchmarks/constraint_check.py

``ConstraintTest`` calls (FK of the chain's joint frames included) on random configurations, for none (the
FK and the call alone), one
position constraint (a box, on panda_hand with an offset), one orientation constraint of each
parameterization (on panda_hand), and the position and an Euler orientation constraint together; each
configuration is accepted (the check runs to the end). Median and p95 of ``--repeats`` timed rounds of
``--configurations`` calls, µs per call.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ik_neural.constraints import (
    ROTATION_VECTOR,
    XYZ_EULER_ANGLES,
    ConstraintTest,
    OrientationConstraint,
    PositionConstraint,
    Region,
)
from ik_neural.robots import load_robot
from ik_neural.urdf_model import BOX, Geometry, UrdfModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configurations", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    robot = load_robot("panda")
    model = UrdfModel.parse(robot.urdf_path)
    chain = model.chain(robot.chain.base_link, robot.chain.tip_link)
    hand = model.chain_links(chain).links["panda_hand"]
    everywhere = (Region(Geometry(BOX, (10.0, 10.0, 10.0)), np.eye(4)),)
    position = PositionConstraint("position", hand, np.array([0.0, 0.0, 0.1034]), everywhere)
    euler = OrientationConstraint("euler", hand, np.eye(3), (np.pi,) * 3, XYZ_EULER_ANGLES)
    vector = OrientationConstraint("vector", hand, np.eye(3), (np.pi,) * 3, ROTATION_VECTOR)
    cases = {
        "none (the joint frames' FK alone)": (),
        "position (box)": (position,),
        "orientation (XYZ_EULER_ANGLES)": (euler,),
        "orientation (ROTATION_VECTOR)": (vector,),
        "position + orientation (Euler)": (position, euler),
    }
    Q = np.random.default_rng(0).uniform(chain.lower, chain.upper, (args.configurations, chain.dof))
    print(f"| constraints | median µs per check | p95 µs | ({args.repeats} rounds of {len(Q)} configurations)")
    print("|---|---|---|")
    for name, constraints in cases.items():
        test = ConstraintTest(chain, constraints)
        assert all(test(q) for q in Q)  # warm, and every check runs to its end
        rounds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            for q in Q:
                test(q)
            rounds.append((time.perf_counter() - start) / len(Q) * 1e6)
        print(f"| {name} | {np.median(rounds):.1f} | {np.percentile(rounds, 95):.1f} |")


if __name__ == "__main__":
    main()
