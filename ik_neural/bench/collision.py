"""``ik_bench collision``: the cost of one self-collision check (``CollisionChecker.in_collision``) on random
configurations within the chain's limits, each row a checker of the same chain, timed on the same
configurations after a warm-up (kernels, first allocations). Times in µs, one thread, warm."""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from ik_neural.collision import CollisionChecker

WARM_UP_CHECKS = 200


def self_check_times(checker: CollisionChecker, Q: np.ndarray) -> tuple[np.ndarray, float]:
    """(µs of each ``in_collision`` of Q (N, dof), the fraction of Q in collision)."""
    times, hits = np.empty(len(Q)), 0
    for k, q in enumerate(Q):
        started = time.perf_counter()
        hits += checker.in_collision(q)
        times[k] = time.perf_counter() - started
    return times * 1e6, hits / len(Q)


def self_check_table(rows: Sequence[tuple[str, CollisionChecker]], Q: np.ndarray) -> str:
    """A table of each named checker's cost on Q (N, dof): link pairs checked, median and p90 µs, colliding."""
    for _, checker in rows:
        self_check_times(checker, Q[:WARM_UP_CHECKS])
    lines = [
        f"self-collision check, {len(Q)} random configurations, one thread, warm",
        f"{'geometry':44} {'link pairs':>10} {'median µs':>10} {'p90 µs':>7} {'colliding':>9}",
    ]
    for name, checker in rows:
        times, colliding = self_check_times(checker, Q)
        lines.append(
            f"{name:44} {len(checker.enabled_pairs):10d} {np.median(times):10.1f} {np.percentile(times, 90):7.1f} "
            f"{colliding:9.1%}"
        )
    return "\n".join(lines)
