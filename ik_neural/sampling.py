"""Reachable targets: the one way targets are drawn, for benchmarks, evaluation, the client and the tests.

A target is FK of a joint configuration drawn uniformly within the chain's limits (continuous joints over
one turn) by numpy's default generator from ``seed``, so every target is reachable and the same (chain,
n, seed) always gives the same targets.
"""

from __future__ import annotations

import numpy as np

from ik_neural.chain import KinematicChain


def reachable_targets(chain: KinematicChain, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n configurations q (n, dof) uniform within the limits and their tip poses T_base_tip (n, 4, 4)."""
    q = chain.bounds.sample(np.random.default_rng(seed), n)
    return q, chain.forward(q)
