"""Benchmark (prints a table; not a test): how the order of the solvers in ``ik_bench ik``'s interleaved run moves
the cold ratio of the hybrid to the numerical solver.

    source "$(bash env/activate_checkout.sh)" && python test/benchmarks/cold_orders.py --rounds 2

``ik_bench ik --robot panda --targets 2000 --batch-sizes ""``'s solvers (the hybrid, the numerical solver,
TRAC-IK at eps 1e-5 and 2.5e-7; mid-limits seed, 5 ms, 1e-6 m and 1e-6 rad) on its targets, by
``bench.protocol.run_interleaved`` under three orders of the four solvers on each target:

- rotation: hybrid, numerical, TRAC-IK, TRAC-IK, then rotated by one per target (``ik_bench`` until
  2026-12-07): the numerical solver runs right after the hybrid on three targets in four, the hybrid
  always after a TRAC-IK solve;
- random: a random order per target (``shuffled_orders``, what ``ik_bench`` does now);
- after TRAC-IK: TRAC-IK, ours, TRAC-IK, ours, which of each at random: every solve of ours follows a
  TRAC-IK solve (each starts cold).

The orders take turns (``--rounds`` times each); the table gives each run's mean and median ms of both
solvers, their ratios (below 1: the hybrid ahead) and how many of their answers FK puts within 1e-6.
"""

from __future__ import annotations

import argparse

import numpy as np

from ik_neural.bench.protocol import ours_solve_one, run_interleaved, seed_configurations, shuffled_orders, successes
from ik_neural.bench.tracik import tracik_solvers
from ik_neural.robots import load_robot
from ik_neural.sampling import reachable_targets
from ik_neural.solver import IKSolver

HYBRID, NUMERICAL, TRACIK_LOOSE, TRACIK_TIGHT = range(4)  # the solvers' indices in the run


def rotation_orders(n: int) -> list[list[int]]:
    """The four solvers in a fixed order rotated by one per target."""
    return [[(first + k) % 4 for k in range(4)] for first in (i % 4 for i in range(n))]


def after_tracik_orders(n: int) -> list[list[int]]:
    """TRAC-IK, ours, TRAC-IK, ours, for each target: which TRAC-IK and which of ours first at random."""
    rng = np.random.default_rng(0)
    orders = []
    for _ in range(n):
        tracik, ours = rng.permutation([TRACIK_LOOSE, TRACIK_TIGHT]), rng.permutation([HYBRID, NUMERICAL])
        orders.append([int(tracik[0]), int(ours[0]), int(tracik[1]), int(ours[1])])
    return orders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--robot", default="panda")
    parser.add_argument("--targets", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2, help="runs of each order, taking turns")
    args = parser.parse_args()
    robot = load_robot(args.robot)
    chain = robot.chain
    timeout_s, tolerances = 0.005, (1e-6, 1e-6)
    ours = [IKSolver(chain, network=robot.network), IKSolver(chain)]
    for solver in ours:
        solver.warm_up()
    tracik, line = tracik_solvers(chain, robot.urdf_path, timeout_s)
    if len(tracik) != 2:
        raise SystemExit(f"this benchmark needs TRAC-IK's two solvers: {line}")
    solvers = [("hybrid", ours_solve_one(ours[0], timeout_s, tolerances))]
    solvers += [("numerical", ours_solve_one(ours[1], timeout_s, tolerances)), *tracik]
    _, T_targets = reachable_targets(chain, args.targets, 0)
    seeds = seed_configurations(chain, "mid", args.targets, 0, None)
    order_sets = {
        "rotation": rotation_orders(args.targets),
        "random": shuffled_orders(4, args.targets),
        "after TRAC-IK": after_tracik_orders(args.targets),
    }
    print(f"{args.robot}, {args.targets} targets, mid-limits seed, 5 ms, 1e-6 m / rad; hybrid / numerical, cold")
    print("| order | hybrid mean / median ms | numerical mean / median ms | mean ratio | median ratio | within 1e-6 |")
    print("|---|---|---|---|---|---|")
    for _ in range(args.rounds):
        for name, orders in order_sets.items():
            runs = run_interleaved(solvers, T_targets, seeds, orders=orders)
            hybrid, numerical = runs[HYBRID], runs[NUMERICAL]
            solved = [int(successes(chain, T_targets, run.q, [tolerances]).sum()) for run in (hybrid, numerical)]
            h, m = hybrid.times_s * 1e3, numerical.times_s * 1e3
            print(
                f"| {name} | {h.mean():.3f} / {np.median(h):.3f} | {m.mean():.3f} / {np.median(m):.3f} "
                f"| {h.mean() / m.mean():.2f}x | {np.median(h) / np.median(m):.2f}x | {solved[0]} / {solved[1]} |"
            )


if __name__ == "__main__":
    main()
