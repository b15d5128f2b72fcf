"""`bench`: timing tables for the package's hot paths (``ros2 run ik_neural bench fk --robot panda``).

Timings on shared machines drift by tens of percent from minute to minute: compare rows of one
run, not figures from different runs.
"""

from __future__ import annotations

import argparse
import time
from typing import Callable, Sequence

import numpy as np
import torch

from ik_neural.kinematics import KinematicChain
from ik_neural.robots import list_robots, load_robot


def _best_time_s(run: Callable[[], object], repeats: int, calls: int) -> float:
    """Best of ``repeats`` mean wall times of ``calls`` calls, in seconds per call."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            run()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def fk_table(chain: KinematicChain, batch_size: int, seed: int) -> list[tuple[str, int, float, float]]:
    """Rows (path, batch size, FK µs per pose, FK + Jacobian µs per pose)."""
    rng = np.random.default_rng(seed)
    q_one = rng.uniform(chain.lower, chain.upper)
    q_batch = torch.from_numpy(rng.uniform(chain.lower, chain.upper, size=(batch_size, chain.dof)))
    rows = []
    for name, q, size, calls in (
        ("numpy float64, one pose", q_one, 1, 2000),
        ("torch float64, batched", q_batch, batch_size, 20),
        ("torch float32, batched", q_batch.float(), batch_size, 20),
    ):
        fk_s = _best_time_s(lambda: chain.forward(q), repeats=5, calls=calls)
        fk_jac_s = _best_time_s(lambda: chain.forward_and_jacobian(q), repeats=5, calls=calls)
        rows.append((name, size, fk_s / size * 1e6, fk_jac_s / size * 1e6))
    return rows


def _run_fk(args: argparse.Namespace) -> None:
    chain = load_robot(args.robot).chain
    print(f"FK timing: {args.robot} ({chain.dof} DoF), torch threads {torch.get_num_threads()}, best of 5")
    print(f"{'path':<26} {'batch':>6} {'FK µs/pose':>11} {'FK+J µs/pose':>13}")
    for name, size, fk_us, fk_jac_us in fk_table(chain, args.batch_size, args.seed):
        print(f"{name:<26} {size:>6} {fk_us:>11.2f} {fk_jac_us:>13.2f}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fk = commands.add_parser("fk", help="forward kinematics and Jacobian timing")
    fk.add_argument("--robot", default="panda", choices=list_robots(), help="a shipped robot (default: panda)")
    fk.add_argument("--batch-size", type=int, default=4096, help="batch size of the torch rows (default: 4096)")
    fk.add_argument("--seed", type=int, default=0, help="random seed of the configurations (default: 0)")
    fk.set_defaults(run=_run_fk)
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
