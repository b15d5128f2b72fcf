"""Benchmark (prints one line; not a test): the shipped Panda's self-collision check, CollisionChecker.in_collision
on 1000 random configurations within the limits (fingers at mid-range), the median time per call.

    source "$(bash env/activate_checkout.sh)" && python test/benchmarks/self_check_timing.py [URDF]

URDF: a Panda URDF file to check instead of the shipped one (e.g. an older revision's, to compare geometry).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from ik_neural.collision import CollisionChecker
from ik_neural.robots import load_robot
from ik_neural.ros.startup import resolve_path
from ik_neural.urdf_model import UrdfModel


def main() -> None:
    robot = load_robot("panda")
    urdf = sys.argv[1] if len(sys.argv) > 1 else robot.urdf_path
    checker = CollisionChecker.from_urdf(UrdfModel.parse(urdf), robot.chain, resolve=resolve_path)
    Q = robot.chain.bounds.sample(np.random.default_rng(0), 1000)
    checker.in_collision(Q[0])
    times = []
    for q in Q:
        start = time.perf_counter()
        checker.in_collision(q)
        times.append(time.perf_counter() - start)
    print(f"{urdf}: {len(checker.enabled_pairs)} pairs checked, in_collision median {np.median(times) * 1e6:.1f} us")


if __name__ == "__main__":
    main()
