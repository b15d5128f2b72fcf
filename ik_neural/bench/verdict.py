"""Whether a network pays: the verdict ``ik_train`` prints when it has written one.

The hybrid solver (the network's guesses, then DLS) and the numerical solver alone solve the same held-out
targets (random configurations' poses, never a training sample) from mid-limits seeds, what the node uses
when a request gives no seed, interleaved target by target (``run_interleaved``), twice: warm (solves
back to back) and cold (a read of ``EVICT_BYTES`` between solves, as a node's other work between
requests evicts the caches). Each answer is judged by FK at ``TOLERANCES``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ik_neural.bench.protocol import SolverRun, ours_solve_one, run_interleaved, seed_configurations, successes
from ik_neural.chain import KinematicChain
from ik_neural.network import IKNetwork
from ik_neural.sampling import reachable_targets
from ik_neural.solver import IKSolver

VERDICT_TARGETS = 300
"""Held-out targets of the verdict (``ik_train --verdict-targets``)."""
TOLERANCES = (1e-6, 1e-6)
"""(position m, rotation rad) each answer is judged at, as ``ik_bench ik``'s default."""
TIMEOUT_S = 0.005
"""Budget per solve, s, as ``ik_bench ik``'s default."""
EVICT_BYTES = 16 * 2**20
"""What the cold run reads between solves: more than this machine's caches hold."""
RANDOM_SEED = 20261207
"""The held-out targets' random stream (training draws its samples from its own)."""
PAYS_BELOW = 1.0
"""Mean solve time over the numerical solver's below which the network pays."""


@dataclass(frozen=True)
class Verdict:
    """``targets`` held-out targets; mean time per solve of the hybrid over the numerical solver alone,
    warm and cold; the share of each solver's answers within ``TOLERANCES`` (FK-judged, both runs)."""

    targets: int
    warm_ratio: float
    cold_ratio: float
    hybrid_success: float
    numerical_success: float

    @property
    def pays(self) -> bool:
        return self.warm_ratio < PAYS_BELOW and self.cold_ratio < PAYS_BELOW

    def line(self) -> str:
        """One line for a user: the ratios, and whether to ship the network or train longer."""
        figures = (
            f"{self.warm_ratio:.2f}x the numerical time warm, {self.cold_ratio:.2f}x cold, on {self.targets} "
            f"held-out targets ({self.hybrid_success:.1%} solved within 1e-6, numerical alone "
            f"{self.numerical_success:.1%})"
        )
        if self.pays:
            return f"solving takes {figures} with this network"
        return f"this network does not pay yet: solving takes {figures}; train longer (e.g. twice the --minutes)"

    def as_dict(self) -> dict:
        return {**self.__dict__, "pays": self.pays, "line": self.line()}


def network_verdict(
    chain: KinematicChain, network: IKNetwork, targets: int = VERDICT_TARGETS, position_only: bool = False
) -> Verdict:
    """The hybrid with ``network`` against the numerical solver alone on ``targets`` held-out targets of
    ``chain``, warm and cold; ``position_only`` as the network was trained (positions alone judged)."""
    tolerances = (TOLERANCES[0], None if position_only else TOLERANCES[1])
    hybrid, numerical = IKSolver(chain, network=network), IKSolver(chain)
    for solver in (hybrid, numerical):
        solver.warm_up()  # no kernel compiles inside a timed call
    solvers = [
        (name, ours_solve_one(solver, TIMEOUT_S, tolerances))
        for name, solver in (("hybrid", hybrid), ("numerical", numerical))
    ]
    _, T_targets = reachable_targets(chain, targets, RANDOM_SEED)
    seeds = seed_configurations(chain, "mid", targets, RANDOM_SEED)
    other_work = np.ones(EVICT_BYTES // 8)
    warm_hybrid, warm_numerical = run_interleaved(solvers, T_targets, seeds)
    cold_hybrid, cold_numerical = run_interleaved(solvers, T_targets, seeds, between=other_work.sum)

    def solved(*runs: SolverRun) -> float:
        return float(np.mean([successes(chain, T_targets, run.q, [tolerances])[0] for run in runs]))

    def ratio(hybrid_run: SolverRun, numerical_run: SolverRun) -> float:
        return float(np.mean(hybrid_run.times_s) / np.mean(numerical_run.times_s))

    return Verdict(
        targets=targets,
        warm_ratio=ratio(warm_hybrid, warm_numerical),
        cold_ratio=ratio(cold_hybrid, cold_numerical),
        hybrid_success=solved(warm_hybrid, cold_hybrid),
        numerical_success=solved(warm_numerical, cold_numerical),
    )
