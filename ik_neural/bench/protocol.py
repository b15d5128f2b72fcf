"""The IK benchmark protocol: the same targets, seed and budget for every solver, the solvers
interleaved target by target, and every answer judged by FK, whatever the solver claims.

Targets are ``sampling.reachable_targets``; an answer succeeds at a (position m, rotation rad) pair when
its joints are within the chain's bounds (``JointBounds.contains``) and ``geometry.pose_errors`` of its
FK against the target are within both (within the position alone where the rotation is None: position-only
IK, as a robot with ``position_only_ik`` is served).
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional, Sequence

import numpy as np

from ik_neural.chain import KinematicChain
from ik_neural.geometry import pose_errors
from ik_neural.query import Tolerance
from ik_neural.solver import IKSolver

# (position m, rotation rad) pairs every answer is checked at, tightest first.
TOLERANCE_PAIRS: tuple[tuple[float, float], ...] = ((1e-6, 1e-6), (1e-5, 1e-5), (1e-3, 1e-2))
# A (position m, rotation rad) pair; rotation None: the position alone.
Tolerances = tuple[float, Optional[float]]
SEED_POLICIES = ("mid", "zero", "given", "random")
# The random seeds' stream: numpy's generator seeded [random_seed, this], apart from the targets' [random_seed].
RANDOM_SEEDS_STREAM = 1


class Answer(NamedTuple):
    """One solver call's answer: q (dof,) or None; what the solver claims; its iterations and restarts
    (None for solvers that do not report them)."""

    q: Optional[np.ndarray]
    claimed_success: bool
    iterations: Optional[int] = None
    restarts: Optional[int] = None


# A solver as the benchmark sees it: (T_target (4, 4), seed (dof,)) -> Answer.
SolveOne = Callable[[np.ndarray, np.ndarray], Answer]


@dataclass(frozen=True)
class SolverRun:
    """One solver's answers to N targets: q (N, dof) with NaN rows where it gave none, its own success claims
    (N,), seconds per call (N,), and iterations and restarts (N,) or None where the solver reports none."""

    name: str
    q: np.ndarray
    claimed_success: np.ndarray
    times_s: np.ndarray
    iterations: Optional[np.ndarray]
    restarts: Optional[np.ndarray]


def seed_configurations(
    chain: KinematicChain, policy: str, n: int, random_seed: int, given: Optional[Sequence[float]] = None
) -> np.ndarray:
    """The seeds (n, dof) the solvers start from, one per target: ``mid`` (middle of the limits, 0 for
    continuous joints: the solver's default), ``zero``, ``given`` (the values of ``given``, one per joint),
    each the same for every target; or ``random``, each target its own configuration uniform within the
    limits (PickNik's ik_benchmarking protocol), from a stream of ``random_seed`` apart from the targets'."""
    if policy == "random":
        return chain.bounds.sample(np.random.default_rng([random_seed, RANDOM_SEEDS_STREAM]), n)
    if policy == "mid":
        q = np.array(chain.middle)
    elif policy == "zero":
        q = np.zeros(chain.dof)
    elif policy == "given":
        q = np.array([] if given is None else given, dtype=np.float64)
        if q.shape != (chain.dof,) or not np.isfinite(q).all():
            raise ValueError(f"--seed needs {chain.dof} finite values, one per joint {chain.joint_names}; got {q.size}")
    else:
        raise ValueError(f"unknown seed policy {policy!r}; one of {', '.join(SEED_POLICIES)}")
    return np.tile(q, (n, 1))


def solver_tolerance(tolerances: Tolerances) -> Tolerance:
    """The pair as the solver's ``Tolerance`` (rotation None: position only)."""
    position_m, rotation_rad = tolerances
    return Tolerance.position_only(position_m) if rotation_rad is None else Tolerance(position_m, rotation_rad)


def judged_pairs(position_only: bool) -> tuple[Tolerances, ...]:
    """The pairs every answer is checked at: ``TOLERANCE_PAIRS``, or for position-only IK their positions alone."""
    return tuple((p, None) for p, _ in TOLERANCE_PAIRS) if position_only else TOLERANCE_PAIRS


def successes(
    chain: KinematicChain, T_targets: np.ndarray, q: np.ndarray, tolerances: Sequence[Tolerances]
) -> np.ndarray:
    """Success of each answer q (N, dof) (NaN rows: no answer) at each (position m, rotation rad) pair: (pairs, N).

    Judged by FK of q alone, whatever the solver said: the position error is the Euclidean distance, the
    rotation error the angle of R_target·R(q)ᵀ (not judged where the pair's rotation is None); an answer
    with a joint outside its limits fails at every pair.
    """
    answered = np.isfinite(q).all(-1)
    _, _, position_error, angle = pose_errors(T_targets, chain.forward(np.where(answered[:, None], q, 0.0)))
    valid = chain.bounds.contains(q)  # False for the NaN rows too
    return np.stack([valid & (position_error <= p) & (True if r is None else angle <= r) for p, r in tolerances])


def run_interleaved(
    solvers: Sequence[tuple[str, SolveOne]],
    T_targets: np.ndarray,
    seeds: np.ndarray,
    warmup: int = 3,
    between: Optional[Callable[[], object]] = None,
    orders: Optional[Sequence[Sequence[int]]] = None,
) -> list[SolverRun]:
    """Every solver on every target T_targets[i] from seeds[i], all solvers on one target before the next
    target, so that the machine's drift hits them alike, in a new random order for each target
    (``shuffled_orders``), so that each solver runs right after each other one equally often: what a solver
    leaves behind (warm caches and code, or TRAC-IK's second thread) then helps or slows each alike. Each
    call is timed on its own with perf_counter, failures included. ``orders``, where given, is the order of
    the solvers (indices) for each target instead.

    Beforehand every solver solves the first ``warmup`` targets once, untimed and not counted. Python's
    garbage collector is off while they run, as ``timeit`` turns it off: the answers kept here grow the heap,
    and the one full collection that follows (tens of ms) would land on whichever solver's allocation
    happened to trigger it, adding tens of µs to that solver's mean over 2000 targets.

    ``between``, where given, runs before each call, untimed: other work between solves (cold caches).
    """
    for T, seed in zip(T_targets[:warmup], seeds):
        for _, solve in solvers:
            solve(T, seed)
    n, dof = seeds.shape
    orders = shuffled_orders(len(solvers), n) if orders is None else orders
    answers: dict[str, list[Answer]] = {name: [] for name, _ in solvers}
    times = {name: np.zeros(n) for name, _ in solvers}
    collecting = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for i, (T, seed, order) in enumerate(zip(T_targets, seeds, orders)):
            for name, solve in [solvers[k] for k in order]:
                if between is not None:
                    between()
                start = time.perf_counter()
                answer = solve(T, seed)
                times[name][i] = time.perf_counter() - start
                answers[name].append(answer)
    finally:
        if collecting:
            gc.enable()
    return [_solver_run(name, answers[name], times[name], dof) for name, _ in solvers]


def shuffled_orders(k: int, n: int) -> list[list[int]]:
    """A random order of k solvers (their indices) for each of n targets, the same in every run (a fixed
    random seed). A rotation instead (a, b, c, then b, c, a, ...) puts a solver right after the same other
    one most of the time: with the hybrid, the numerical solver and two TRAC-IK solvers, the numerical one
    ran right after the hybrid three times in four, on code and data the hybrid had just warmed, and the
    hybrid always after a TRAC-IK solve."""
    rng = np.random.default_rng(0)
    return [rng.permutation(k).tolist() for _ in range(n)]


def _solver_run(name: str, answers: Sequence[Answer], times_s: np.ndarray, dof: int) -> SolverRun:
    q = np.array([np.full(dof, np.nan) if a.q is None else a.q for a in answers], dtype=np.float64)
    reports = all(a.iterations is not None and a.restarts is not None for a in answers)
    return SolverRun(
        name=name,
        q=q.reshape(len(answers), dof),
        claimed_success=np.array([a.claimed_success for a in answers], dtype=bool),
        times_s=times_s,
        iterations=np.array([a.iterations for a in answers], dtype=float) if reports else None,
        restarts=np.array([a.restarts for a in answers], dtype=float) if reports else None,
    )


def ours_solve_one(solver: IKSolver, timeout_s: float, tolerances: Tolerances) -> SolveOne:
    """``IKSolver.solve`` as the benchmark calls it; its q is judged by FK whatever ``success`` says."""

    tolerance = solver_tolerance(tolerances)

    def solve(T: np.ndarray, seed: np.ndarray) -> Answer:
        result = solver.solve(T, seed=seed, timeout_s=timeout_s, tolerance=tolerance)
        return Answer(result.q, bool(result.success), int(result.iterations), int(result.restarts))

    return solve
