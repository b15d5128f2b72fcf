"""Benchmark (prints tables; not a test): partial goals, every answer judged by Pinocchio's FK.

    source "$(bash env/activate_checkout.sh)" && python test/benchmarks/partial_goals_bar.py free-axis
    python test/benchmarks/partial_goals_bar.py five-joints --robot so101
    python test/benchmarks/partial_goals_bar.py five-joints --urdf so100.urdf --base base --tip gripper \\
        --network so100.pt

free-axis: the Panda (its shipped network), targets that are FK of random configurations, each solved with
the whole pose and with the rotation about the tool's z free, interleaved target by target (warm: solves
back to back): solved, judged within 1e-5 m and 1e-5 rad (the whole rotation, or the tool z axis'
angle), mean and median time, the ratio of the means.

five-joints: a 5-joint arm, targets FK of random configurations (solved exactly?), then the same
positions with the rotation turned by a random rotation vector of about ``--perturb-rad`` per axis,
asked with ``approximate=Tolerance(1 mm, any rotation)``: answers flagged approximate, position within 1 mm
(Pinocchio), the rotation left.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reference import ReferenceChain, axis_angle_rad, perturbed  # noqa: E402

from ik_neural.chain import KinematicChain  # noqa: E402
from ik_neural.network import load_network  # noqa: E402
from ik_neural.query import Tolerance  # noqa: E402
from ik_neural.robots import load_robot  # noqa: E402
from ik_neural.solver import IKSolver  # noqa: E402

FULL = Tolerance(1e-5, 1e-5)
FREE_Z = Tolerance(1e-5, (1e-5, 1e-5, math.inf))
APPROXIMATE = Tolerance(1e-3, math.inf)


def free_axis(targets: int, seed: int, timeout_s: float) -> None:
    robot = load_robot("panda")
    chain = robot.chain
    reference = ReferenceChain(robot.urdf_path, chain.base_link, chain.tip_link, chain.joint_names)
    solver = IKSolver(chain, robot.network)
    solver.warm_up()
    T = chain.forward(chain.bounds.sample(np.random.default_rng(seed), targets))
    runs = {"whole pose": FULL, "z free": FREE_Z}
    elapsed_s = {name: [] for name in runs}
    answers = {name: [] for name in runs}
    for k, T_k in enumerate(T):
        for name in list(runs)[:: 1 if k % 2 == 0 else -1]:  # interleaved, alternating who goes first
            start_s = time.perf_counter()
            result = solver.solve(T_k, tolerance=runs[name], timeout_s=timeout_s)
            elapsed_s[name].append(time.perf_counter() - start_s)
            answers[name].append(result)
    print(f"Panda, {targets} targets (FK of random configurations), {timeout_s * 1e3:g} ms, warm, interleaved")
    print("| tolerance | solved | judged (Pinocchio) | max position m | max rotation rad | mean ms | median ms |")
    print("|---|---|---|---|---|---|---|")
    for name in runs:
        q = np.array([result.q for result in answers[name]])
        position_m, rotation_rad = reference.errors(q, T)
        if name == "z free":
            rotation_rad = axis_angle_rad(reference.forward(q)[:, :3, :3], T[:, :3, :3], 2)
        judged = (position_m <= 1e-5) & (rotation_rad <= 1e-5)
        solved = sum(result.success for result in answers[name])
        times_ms = np.array(elapsed_s[name]) * 1e3
        print(
            f"| {name} | {solved}/{targets} | {judged.mean():.1%} | {position_m.max():.2e} | {rotation_rad.max():.2e}"
            f" | {times_ms.mean():.4f} | {np.median(times_ms):.4f} |"
        )
    ratio = np.mean(elapsed_s["z free"]) / np.mean(elapsed_s["whole pose"])
    print(f"z free / whole pose, mean time: {ratio:.2f}x")


def five_joints(args: argparse.Namespace) -> None:
    if args.robot:
        robot = load_robot(args.robot)
        chain, network, urdf = robot.chain, robot.network, robot.urdf_path
    else:
        chain, urdf = KinematicChain.from_urdf(args.urdf, args.base, args.tip), args.urdf
        network = load_network(args.network, chain) if args.network else None
    reference = ReferenceChain(urdf, chain.base_link, chain.tip_link, chain.joint_names)
    solver = IKSolver(chain, network)
    solver.warm_up()
    rng = np.random.default_rng(args.seed)
    q_true = chain.bounds.sample(rng, args.targets)
    T = chain.forward(q_true)
    exact = [solver.solve(T_k, tolerance=FULL, timeout_s=args.timeout_s) for T_k in T]
    position_m, rotation_rad = reference.errors(np.array([r.q for r in exact]), T)
    judged = (position_m <= 1e-5) & (rotation_rad <= 1e-5)
    name = args.robot or Path(args.urdf).name
    print(f"{name} ({chain.dof} joints, {chain.base_link} -> {chain.tip_link}), network: {network is not None}")
    print(f"exact, FK of {args.targets} random configurations: solved {sum(r.success for r in exact)}, judged within")
    print(
        f"1e-5 m / 1e-5 rad by Pinocchio {judged.mean():.1%}; mean {np.mean([r.elapsed_s for r in exact]) * 1e3:.3f} ms"
    )
    far = perturbed(T, rng, args.perturb_rad)
    perturbation_rad = reference.errors(q_true, far)[1]  # what the configurations the poses came from leave
    answers = [solver.solve(T_k, approximate=APPROXIMATE, timeout_s=args.timeout_s) for T_k in far]
    q = np.array([r.q for r in answers])
    position_m, rotation_rad = reference.errors(q, far)
    flagged = np.array([r.success and r.approximate for r in answers])
    within = position_m <= 1e-3
    print(
        f"rotation perturbed by ~{args.perturb_rad} rad per axis, approximate=Tolerance(1 mm, any rotation), "
        f"{args.timeout_s * 1e3:g} ms:"
    )
    print(
        "| answers | exact | approximate | position <= 1 mm (Pinocchio) | median position | p95 position | median rotation left | median perturbation |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| {len(answers)} | {sum(r.success and not r.approximate for r in answers)} | {flagged.sum()} | "
        f"{within.mean():.1%} | {np.median(position_m) * 1e3:.3f} mm | {np.percentile(position_m, 95) * 1e3:.3f} mm | "
        f"{math.degrees(np.median(rotation_rad)):.1f}° | {math.degrees(np.median(perturbation_rad)):.1f}° |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="bar", required=True)
    free = sub.add_parser("free-axis")
    free.add_argument("--targets", type=int, default=500)
    free.add_argument("--seed", type=int, default=2026)
    free.add_argument("--timeout-s", type=float, default=0.005)
    five = sub.add_parser("five-joints")
    five.add_argument("--robot")
    five.add_argument("--urdf")
    five.add_argument("--base")
    five.add_argument("--tip")
    five.add_argument("--network")
    five.add_argument("--targets", type=int, default=1000)
    five.add_argument("--seed", type=int, default=2026)
    five.add_argument("--timeout-s", type=float, default=0.005)
    five.add_argument("--perturb-rad", type=float, default=0.2)
    args = parser.parse_args()
    if args.bar == "free-axis":
        free_axis(args.targets, args.seed, args.timeout_s)
    else:
        five_joints(args)


if __name__ == "__main__":
    main()
