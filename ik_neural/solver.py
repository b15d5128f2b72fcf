"""IK: damped least squares (Levenberg–Marquardt) from the network's guesses, the caller's seed, then random
restarts, with an FK check.

Poses are 4x4 transforms of the tip in the base frame; lengths in metres, angles in radians. What a call
asks for is an ``IKQuery`` (``query.py``). A target counts as solved only when forward kinematics of the
returned q meets its ``Tolerance``, every joint is within its (narrowed) bounds (continuous joints over a
full turn are wrapped to [-pi, pi)) and the call's acceptance test, if any, accepts q.

``solve`` serves one pose (``_OnePose``, tuned for latency: scalar bookkeeping), ``solve_batch`` many
(``batch_search.BatchSearch``, tuned for throughput: rows of seeds in one kernel call), ``solutions``
several solutions of one pose. All follow one seed schedule (``_seed_order``, then random seeds; a seed is
given up by the one rule of ``patience.py``) and one choice of answer (``batch_search.closest_converged``),
and run the same compiled step (``kernels.dls``) in float64.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Optional, Union

import numpy as np

from ik_neural.chain import KinematicChain
from ik_neural.joint_bounds import JointBounds, JointBoundsError
from ik_neural.kernels.dls import (
    NO_FREE_AXIS,
    POSITION_ONLY,
    dls_step,
    dls_step_rows,
    polish,
    ranked_guesses_of_pose,
    task_met,
    task_rows,
)
from ik_neural.batch_search import (
    PARALLEL_MIN_ROWS,
    BatchAnswers,
    BatchSearch,
    FirstSeeds,
    RankedGuesses,
    accepted_rows,
    closest_converged,
)
from ik_neural.kernels.geometry import RIGIDITY_TOLERANCE, all_rigid, rigidity_errors
from ik_neural.patience import Budget, Patience, SeedHistory
from ik_neural.query import (
    UNSET,
    AcceptanceTest,
    IKQuery,
    Tolerance,
    Unset,
    check_fields,
    query_fields,
    tolerance_of,
)

if TYPE_CHECKING:
    from ik_neural.network import IKNetwork


@dataclass(frozen=True)
class SolverSettings:
    """How the solver searches. Defaults were chosen by measurement (docs/benchmarks.md, "Solver settings:
    how the defaults were chosen")."""

    damping: float = 1e-8
    """Constant part of the LM damping, on errors normalised by the chain's reach (dimensionless). Kept
    small: near a singularity a larger one throttles the steps along the weak direction to the solution."""
    error_damping: float = 0.1
    """Part of the LM damping proportional to the squared normalised error."""
    max_iterations_per_seed: int = 40
    """DLS steps a seed gets before it is replaced by a random one."""
    max_iterations_network_seed: int = 12
    """DLS steps the network's guess gets before the next seed takes over."""
    network_stagnation_window: int = 3
    """The network's guess is also given up when its error did not halve over this many steps: a good
    guess converges quadratically, a guess on the wrong branch crawls."""
    stagnation_window: int = 10
    """A seed whose error did not halve over this many steps is replaced by a random one."""
    restart_batch_size: int = 8
    """Random seeds refined side by side (a round of one step each) once the first seeds have failed."""
    seeds_per_stuck_target: int = 4
    """In ``solve_batch``, random seeds refined at once for a target whose seed got stuck."""
    displacement_weight: float = 0.0
    """Cost term: a solution of a redundant arm is moved along its self-motion (the task's null space, so
    the pose keeps its tolerance) this share of the way towards the seed per polish step, 0 to 1 (the
    minimal-displacement goal of pick_ik and bio_ik); 0: off."""
    centring_weight: float = 0.0
    """Cost term: likewise towards the middle of the bounded joints' limits (away from them); 0: off."""
    polish_iterations: int = 5
    """Null-space steps of that polish (``solve``'s solutions only), when a cost weight is on."""
    rotation_weight_few_joints: float = 0.01
    """Weight of the rotation rows against position / reach for an arm with fewer joints than the task has
    rows (a 5-joint arm and a full pose): the step then reaches the position first and matches the rotation
    as far as the arm can (the closest reachable pose, for approximate answers); 1 weighs them alike."""
    random_seed: int = 0
    """Seed of the random restarts: a call is deterministic unless its time budget cuts it short."""


# Where a first seed comes from (``IKSolver._seed_order``).
_NETWORK, _CALLER_SEED = "the network's guesses", "the caller's seed"


@dataclass(frozen=True)
class IKResult:
    """What ``solve`` found for one pose.

    ``q`` (dof,) is the solution, or where ``success`` is False (or ``approximate``) the best configuration
    found (smallest error); the errors (m, rad) are FK's of ``q``, the orientation error the one the
    tolerance bounds (with a free axis: the angle between the tip's free axis and the target's).
    ``iterations`` counts DLS steps (a step of several seeds at once counts once); ``restarts`` counts
    random seeds drawn; ``elapsed_s`` is wall time.
    """

    q: np.ndarray
    success: bool
    position_error_m: float
    orientation_error_rad: float
    iterations: int
    restarts: int
    elapsed_s: float
    approximate: bool = False
    """No solution within the tolerance was found, and ``q`` is the best configuration found, within the
    query's ``approximate`` tolerance (and accepted): ``success`` is then True."""


@dataclass(frozen=True)
class BatchResult:
    """What ``solve_batch`` found for N poses: ``q`` (N, dof) and per target (N,) the fields of
    ``IKResult``; ``elapsed_s`` is the wall time of the whole batch."""

    q: np.ndarray
    success: np.ndarray
    position_error_m: np.ndarray
    orientation_error_rad: np.ndarray
    iterations: np.ndarray
    restarts: np.ndarray
    elapsed_s: float


@dataclass(frozen=True)
class Solutions:
    """What ``solutions`` found for one pose: M <= count distinct solutions, nearest the seed first.

    ``q`` (M, dof); per solution (M,) ``success`` (all True: each is FK-checked), ``position_error_m``,
    ``orientation_error_rad``; ``iterations`` (rounds of steps) and ``restarts`` (random seeds drawn) for
    the whole call; ``elapsed_s`` its wall time. M is 0 when none was found in the budget.
    """

    q: np.ndarray
    success: np.ndarray
    position_error_m: np.ndarray
    orientation_error_rad: np.ndarray
    iterations: int
    restarts: int
    elapsed_s: float


class _OnePose:
    """One pose's search (``solve``, and ``solutions``' seed): the answer so far (the lowest-error
    configuration, or the solution once found) and the counters, on Python scalars: for one target, numpy
    bookkeeping would cost more than a step's arithmetic."""

    # Slots: a call builds one, and the step loop reads its fields.
    __slots__ = (
        "T_target",
        "q_seed",
        "bounds",
        "step",
        "arrays",
        "accept",
        "budget",
        "best",
        "success",
        "iterations",
        "restarts",
    )

    def __init__(
        self,
        T_target: np.ndarray,
        q_seed: np.ndarray,
        bounds: JointBounds,
        step: tuple,
        arrays: tuple,
        accept: Optional[AcceptanceTest],
        budget: Budget,
    ) -> None:
        self.T_target, self.q_seed, self.bounds, self.step, self.arrays = T_target, q_seed, bounds, step, arrays
        self.accept, self.budget = accept, budget
        # The answer so far: (q, its normalised error, position error m, orientation error rad).
        self.best: tuple[np.ndarray, float, float, float] = (q_seed, math.inf, math.inf, math.inf)
        self.success, self.iterations, self.restarts = False, 0, 0

    def ranked_guesses(self, network: "IKNetwork") -> np.ndarray:
        """The network's K guesses (K, dof) ordered lowest error first, the first stepped once
        (``kernels.dls.ranked_guesses_of_pose``; an iteration)."""
        self.iterations += 1
        return ranked_guesses_of_pose(self.T_target, network.one_pose_fields, self.arrays, self.step)

    def refine(self, seeds: Iterable[tuple[np.ndarray, Patience]]) -> bool:
        """Refine each seed q (dof,) of ``seeds`` in turn, a step at a time, until its patience runs out or
        it converges: True once a candidate is accepted; False once the seeds are done (a converged one
        that is rejected is done, as if exhausted) or the budget is spent."""
        # Locals in the loop: it runs once per DLS step, and each lookup costs a share of the step.
        T_target, arrays, step, accept, spent = self.T_target, self.arrays, self.step, self.accept, self.budget.spent
        best_q, best_error, best_position, best_orientation = self.best
        accepted = False
        for q, patience in seeds:
            push, iterations = SeedHistory(patience).push, self.iterations  # ``seeds`` may count a round
            while True:
                q_next, converged, position_error, orientation_error, error = dls_step(q, T_target, arrays, step)
                iterations += 1
                accepted = converged and (accept is None or accept(q))
                if accepted or (not converged and error < best_error):
                    best_q, best_error, best_position, best_orientation = q, error, position_error, orientation_error
                if converged or push(error) or spent():
                    break
                q = q_next
            self.iterations = iterations
            if accepted or spent():
                break
        self.best, self.success = (best_q, best_error, best_position, best_orientation), accepted
        return accepted

    def refine_random_seeds(self, settings: SolverSettings, patience: Patience) -> None:
        """``restart_batch_size`` random seeds refined side by side, one kernel call a round, each replaced
        when exhausted or converged to a rejected candidate, until one is accepted (the one nearest the
        seed of its round) or the budget is spent."""
        if self.budget.spent():
            return
        k, bounds = settings.restart_batch_size, self.bounds
        rng = np.random.default_rng(settings.random_seed)
        T_rows = np.repeat(self.T_target[None], k, axis=0)
        Q = bounds.sample(rng, k)
        histories = [SeedHistory(patience) for _ in range(k)]
        self.restarts += k
        while not self.budget.spent():
            Q_next, converged, position_error, orientation_error, error = dls_step_rows(
                Q, T_rows, self.arrays, self.step
            )
            self.iterations += 1
            if converged.any():
                accepted = accepted_rows(converged, Q, self.accept)
                if accepted.any():
                    nearest = closest_converged(accepted, bounds.distance(Q, self.q_seed), np.zeros(k, int), 1)
                    i = int(np.flatnonzero(nearest)[0])
                    self.best = (Q[i].copy(), error[i], position_error[i], orientation_error[i])
                    self.success = True
                    return
                error = np.where(converged, math.inf, error)  # rejected: never the best, replaced below
            i = int(np.argmin(error))
            if error[i] < self.best[1]:
                self.best = (Q[i].copy(), error[i], position_error[i], orientation_error[i])
            for i, error_i in enumerate(error.tolist()):  # Python floats: numpy scalars cost 10x here
                if histories[i].push(error_i) or error_i == math.inf:
                    Q_next[i], histories[i] = bounds.sample(rng, 1)[0], SeedHistory(patience)
                    self.restarts += 1
            Q = Q_next

    def polish(self, settings: SolverSettings) -> None:
        """The solution moved along the arm's self-motion towards the seed and the middle of the limits by
        the settings' cost weights (``kernels.dls.polish``), kept if ``accept`` accepts it too."""
        q, error = self.best[:2]
        polished, position_error, orientation_error = polish(
            q,
            self.T_target,
            self.arrays,
            self.step,
            self.q_seed,
            settings.displacement_weight,
            settings.centring_weight,
            settings.polish_iterations,
        )
        if self.accept is None or self.accept(polished):
            self.best = (polished, error, position_error, orientation_error)

    def result(self, start_s: float, approximate_step: Optional[tuple] = None) -> IKResult:
        """The answer: the solution, else the best configuration, which counts as an approximate one where
        it meets ``approximate_step`` (a ``StepSettings`` tuple; None: none counts) and ``accept``."""
        q, _, position_error, orientation_error = self.best
        approximate = (
            not self.success
            and approximate_step is not None
            and position_error < math.inf
            and task_met(q, self.T_target, self.arrays, approximate_step)
            and (self.accept is None or self.accept(q))
        )
        return IKResult(
            q,
            self.success or approximate,
            float(position_error),
            float(orientation_error),
            self.iterations,
            self.restarts,
            time.perf_counter() - start_s,
            approximate,
        )


class _Found:
    """``solutions``' distinct solutions so far: q (M, dof) and their errors (m, rad)."""

    def __init__(
        self, bounds: JointBounds, count: int, min_distance_rad: float, accept: Optional[AcceptanceTest]
    ) -> None:
        self.bounds, self.count, self.min_distance_rad, self.accept = bounds, count, min_distance_rad, accept
        self.q = np.empty((0, bounds.dof))
        self.position_error_m: list[float] = []
        self.orientation_error_rad: list[float] = []

    @property
    def full(self) -> bool:
        return len(self.q) >= self.count

    def add(self, q: np.ndarray, position_error_m: float, orientation_error_rad: float) -> None:
        """Keep the converged candidate q (dof,) if there is room, no kept one is within min_distance_rad
        (largest joint difference) and ``accept`` accepts it (asked last: it may be costly)."""
        if self.full or (len(self.q) and self.bounds.largest_difference(self.q, q).min() < self.min_distance_rad):
            return
        if self.accept is not None and not self.accept(q):
            return
        self.q = np.vstack([self.q, q])
        self.position_error_m.append(position_error_m)
        self.orientation_error_rad.append(orientation_error_rad)

    def result(self, q_seed: np.ndarray, search: _OnePose, start_s: float) -> Solutions:
        """The solutions nearest ``q_seed`` first, with ``search``'s counters."""
        order = np.argsort(self.bounds.distance(self.q, q_seed), kind="stable")
        return Solutions(
            self.q[order],
            np.ones(len(order), dtype=bool),
            np.array(self.position_error_m)[order],
            np.array(self.orientation_error_rad)[order],
            search.iterations,
            search.restarts,
            time.perf_counter() - start_s,
        )


def checked_targets(T: np.ndarray, batched: bool) -> np.ndarray:
    """T (4, 4), or (N, 4, 4) when ``batched``, as a contiguous float64 array of rigid transforms; ValueError
    naming what is wrong (shape, NaN or inf, not a rigid transform) otherwise."""
    T = np.asarray(T, dtype=np.float64)
    name = "T_targets" if batched else "T_target"
    expected = "(N, 4, 4)" if batched else "(4, 4)"
    if T.shape[-2:] != (4, 4) or T.ndim != (3 if batched else 2):
        raise ValueError(f"{name} has shape {T.shape}; expected {expected}")
    T = np.ascontiguousarray(T)
    poses = T if batched else T[None]
    if all_rigid(poses, RIGIDITY_TOLERANCE):
        return T
    finite, orthonormality, det, bottom = rigidity_errors(poses)
    where = lambda bad: f" (first at index {int(np.flatnonzero(bad)[0])})" if batched else ""  # noqa: E731
    if not finite.all():
        raise ValueError(f"{name} has non-finite values (NaN or inf){where(~finite)}")
    bad = (orthonormality > RIGIDITY_TOLERANCE) | (det < 0) | (bottom > 0)
    if bad.any():
        raise ValueError(
            f"{name} is not a rigid transform{where(bad)}: the rotation block must be orthonormal with "
            f"det +1 (|RᵀR - I| up to {float(orthonormality.max()):.2g}) and the bottom row 0 0 0 1"
        )
    return T


class IKSolver:
    """Inverse kinematics for one chain. Seeds in order: the network's K guesses (when a network is given),
    the caller's seed (default mid-limits), then random restarts; each refined by DLS. The K guesses take
    one step side by side (one round, one iteration), then go on one at a time from where that step left
    them, the one whose guess was nearest the target first: a row of a round costs about half a one-row
    call, and one guess is usually right.

    Thread-safe: a call keeps its state to itself, so concurrent calls give the answers serial ones would.
    Call ``warm_up()`` once before time-critical calls: it compiles (or loads from numba's cache) the kernels.
    """

    def __init__(
        self,
        chain: KinematicChain,
        network: Optional["IKNetwork"] = None,
        settings: SolverSettings = SolverSettings(),
    ) -> None:
        if network is not None and network.fingerprint != chain.fingerprint:
            raise ValueError(
                f"IKSolver: the network {network.path or ''} was trained for chain fingerprint "
                f"{network.fingerprint}, not this chain's {chain.fingerprint} ({chain.base_link} -> {chain.tip_link})"
            )
        self.chain = chain
        self.network = network
        self.settings = settings
        self._seed_patience = Patience(settings.max_iterations_per_seed, settings.stagnation_window)
        self._network_patience = Patience(settings.max_iterations_network_seed, settings.network_stagnation_window)
        # Per free axis (StepSettings.free_axis): whether the chain has fewer joints than the task has rows.
        self._few_joints = {axis: chain.dof < task_rows(axis) for axis in (NO_FREE_AXIS, 0, 1, 2, POSITION_ONLY)}

    def warm_up(self) -> None:
        """Compile (or load from numba's cache) every kernel a call may reach, so that none compiles inside
        a call's time budget: the chain's one-pose FK, the one-pose step, the serial rows of restarts, the parallel rows of a batch,
        the approximate check, the polish, and a network's one-pose and few-poses forward passes."""
        chain = self.chain
        chain.warm_up()
        T_mid = chain.forward(chain.middle)
        self.solve(T_mid, timeout_s=1.0)
        self.solve_batch(np.repeat(T_mid[None], 2, axis=0), timeout_s=1.0)
        self.solve_batch(np.repeat(T_mid[None], PARALLEL_MIN_ROWS, axis=0), timeout_s=10.0)
        k, step = self.settings.restart_batch_size, self.step_settings(Tolerance(), chain.bounds)
        dls_step_rows(np.tile(chain.middle, (k, 1)), np.repeat(T_mid[None], k, axis=0), chain.arrays, step)
        # Approximate answers' check and the cost terms' polish.
        task_met(chain.middle, T_mid, chain.arrays, step)
        polish(chain.middle, T_mid, chain.arrays, step, chain.middle, 0.5, 0.5, 1)

    # ------------------------------------------------------------------ one pose

    def solve(self, query: Union[IKQuery, np.ndarray], /, **keywords: Any) -> IKResult:
        """Solve one pose: ``solve(IKQuery(T_target, ...))``, or ``solve(T_target, **keywords)`` with the
        query's fields as keywords (``query.query_fields``: also the older ``position_tolerance_m`` and
        ``orientation_tolerance_rad``, None: position only). TypeError for an IKQuery with keywords.

        Seeds: the network's ranked guesses, then the query's seed (default mid-limits), then random
        seeds; ``seed_first`` puts the seed first (the network's guesses are then computed only if it
        fails). ``accept`` is asked of each converged candidate only (no cost per iteration). Never raises
        for an unreachable target: it returns ``success=False`` with the best configuration found within
        ``timeout_s`` (or before ``stop`` was set); ``success`` means accepted and within the tolerance.
        """
        start_s = time.perf_counter()
        if not isinstance(query, IKQuery):
            return self._solve(start_s, query, *query_fields(**keywords))
        if keywords:
            raise TypeError(f"solve: an IKQuery comes alone, without keywords (got {', '.join(sorted(keywords))})")
        q = query
        return self._solve(
            start_s,
            q.T_target,
            q.seed,
            q.bounds,
            q.tolerance,
            q.timeout_s,
            q.seed_first,
            q.accept,
            q.stop,
            q.approximate,
        )

    def _solve(
        self,
        start_s: float,
        T_target: np.ndarray,
        seed: Optional[np.ndarray],
        bounds: Optional[JointBounds],
        tolerance: Tolerance,
        timeout_s: float,
        seed_first: bool,
        accept: Optional[AcceptanceTest],
        stop: Optional[threading.Event],
        approximate: Optional[Tolerance],
    ) -> IKResult:
        """``solve`` of a query's fields (``IKQuery``'s, in order), begun at ``start_s`` (perf_counter, s)."""
        T_target = checked_targets(T_target, batched=False)
        bounds = self._bounds(bounds)
        step = self.step_settings(tolerance, bounds)
        budget = Budget(start_s, timeout_s, stop)
        search = _OnePose(T_target, self._q_seed(seed, bounds), bounds, step, self.chain.arrays, accept, budget)
        if not search.refine(self._first_seeds(search, seed_first)):
            search.refine_random_seeds(self.settings, self._seed_patience)
        settings = self.settings
        if search.success and (settings.displacement_weight or settings.centring_weight):
            search.polish(settings)
        approximate_step = None if approximate is None else self.step_settings(approximate, bounds)
        return search.result(start_s, approximate_step)

    def _first_seeds(self, search: _OnePose, seed_first: bool) -> Iterator[tuple[np.ndarray, Patience]]:
        """The seeds ``solve`` refines before random ones, one at a time, in ``_seed_order``; the network's
        guesses are ranked (``_OnePose.ranked_guesses``) only when the schedule reaches them."""
        for source in self._seed_order(seed_first):
            if source is _CALLER_SEED:
                yield search.q_seed, self._seed_patience
            else:
                for q in search.ranked_guesses(self.network):
                    yield q, self._network_patience

    def solutions(
        self,
        T_target: np.ndarray,
        count: int = 8,
        *,
        seed: Optional[np.ndarray] = None,
        tolerance: Optional[Tolerance] = None,
        bounds: Optional[JointBounds] = None,
        timeout_s: float = 0.02,
        seed_first: bool = False,
        accept: Optional[AcceptanceTest] = None,
        stop: Optional[threading.Event] = None,
        min_distance_rad: float = 0.1,
        position_tolerance_m: Union[float, Unset] = UNSET,
        orientation_tolerance_rad: Union[float, None, Unset] = UNSET,
    ) -> Solutions:
        """Up to ``count`` distinct solutions of one pose T_target (4, 4), sorted by distance to ``seed``
        (dof,) (default mid-limits): no two closer than ``min_distance_rad`` in their largest joint
        difference (continuous joints the short way round; rad, or m for a prismatic joint).

        Rows of ``restart_batch_size`` (or more) seeds are refined side by side: the caller's seed and the
        network's K guesses first, then random seeds; a row that converges is replaced by a random seed,
        its candidate kept when it is far enough from those found and ``accept`` (if given) accepts it.
        ``seed_first`` refines the caller's seed alone first, so that its solution (if accepted) is found
        before any other (with ``count=1``: the solution nearest the seed, as ``solve``'s with
        ``seed_first``); the rows then start with the network's guesses. The call ends with ``count``
        solutions, or at ``timeout_s`` (or ``stop``) with those found so far. ``tolerance`` and ``bounds``
        as for ``solve`` (``IKQuery``).
        """
        start_s = time.perf_counter()
        tolerance = tolerance_of(tolerance, position_tolerance_m, orientation_tolerance_rad)
        check_fields(tolerance, bounds, timeout_s)
        T_target = checked_targets(T_target, batched=False)
        if not (isinstance(count, (int, np.integer)) and count >= 1):
            raise ValueError(f"count must be an integer >= 1, got {count!r}")
        if not min_distance_rad >= 0:
            raise ValueError(f"min_distance_rad must be >= 0, got {min_distance_rad}")
        bounds = self._bounds(bounds)
        q_seed = self._q_seed(seed, bounds)
        # Candidates are judged by ``found`` (distinct, then accepted), so the search itself accepts any.
        step, budget = self.step_settings(tolerance, bounds), Budget(start_s, timeout_s, stop)
        search = _OnePose(T_target, q_seed, bounds, step, self.chain.arrays, None, budget)
        found = _Found(bounds, count, min_distance_rad, accept)
        if seed_first and search.refine([(q_seed, self._seed_patience)]):
            q, _, position_error, orientation_error = search.best
            found.add(q, position_error, orientation_error)
        if not found.full:
            self._solution_rounds(search, found, seed_first)
        return found.result(q_seed, search, start_s)

    def _solution_rounds(self, search: _OnePose, found: _Found, seed_first: bool) -> None:
        """``solutions``' rows, refined side by side (one kernel call a round) until ``found`` is full or the
        budget is spent: the caller's seed (unless ``seed_first`` tried it already) and every head's guess
        (K heads propose different branches: different solutions), then random seeds; each converged row
        is offered to ``found`` and replaced by a random seed, as is each exhausted one."""
        bounds, T_target = search.bounds, search.T_target
        guesses = None if self.network is None else bounds.project(self.network.predict_all(T_target))
        first = [] if seed_first else [search.q_seed]
        patience = [self._seed_patience] * len(first)
        if guesses is not None:
            first, patience = first + list(guesses), patience + [self._network_patience] * len(guesses)
        rng = np.random.default_rng(self.settings.random_seed)
        k = max(self.settings.restart_batch_size, len(first))
        Q = np.vstack([np.reshape(first, (len(first), bounds.dof)), bounds.sample(rng, k - len(first))])
        histories = [SeedHistory(p) for p in patience] + [
            SeedHistory(self._seed_patience) for _ in range(k - len(first))
        ]
        T_rows = np.repeat(T_target[None], k, axis=0)
        search.restarts += k - len(first)
        while not found.full and not search.budget.spent():
            Q_next, converged, position_error, orientation_error, error = dls_step_rows(
                Q, T_rows, search.arrays, search.step
            )
            search.iterations += 1
            for i, error_i in enumerate(error.tolist()):  # Python floats: numpy scalars cost 10x here
                if converged[i]:
                    found.add(Q[i], position_error[i], orientation_error[i])
                elif not histories[i].push(error_i):
                    continue
                Q_next[i], histories[i] = bounds.sample(rng, 1)[0], SeedHistory(self._seed_patience)
                search.restarts += 1
            Q = Q_next

    # ------------------------------------------------------------------ many poses

    def solve_batch(
        self,
        T_targets: np.ndarray,
        seeds: Optional[np.ndarray] = None,
        *,
        tolerance: Optional[Tolerance] = None,
        bounds: Optional[JointBounds] = None,
        timeout_s: Optional[float] = None,
        seed_first: bool = False,
        accept: Optional[AcceptanceTest] = None,
        stop: Optional[threading.Event] = None,
        position_tolerance_m: Union[float, Unset] = UNSET,
        orientation_tolerance_rad: Union[float, None, Unset] = UNSET,
    ) -> BatchResult:
        """Solve poses T_targets (N, 4, 4), all rows at once, by the schedule of ``solve``: the network's
        guesses and ``seeds`` (N, dof), default mid-limits, then random seeds; the same ``tolerance``,
        ``bounds``, ``seed_first`` and ``accept`` for every target (as for ``solve``: ``IKQuery``). A
        converged row ``accept`` rejects is given up as an exhausted one is.

        ``timeout_s`` is the budget of the whole batch (default 5 ms per target). A target whose seeds are
        exhausted gets random seeds, up to ``seeds_per_stuck_target`` refined at once.
        """
        start_s = time.perf_counter()
        tolerance = tolerance_of(tolerance, position_tolerance_m, orientation_tolerance_rad)
        T_targets = checked_targets(T_targets, batched=True)
        n = len(T_targets)
        timeout_s = 0.005 * n if timeout_s is None else timeout_s
        check_fields(tolerance, bounds, timeout_s)
        bounds = self._bounds(bounds)
        if seeds is None:
            q_seed = np.tile(self.chain.middle, (n, 1))
        else:
            q_seed = self._check_seeds(np.asarray(seeds, dtype=np.float64), batched=True)
            if len(q_seed) != n:
                raise ValueError(f"seeds has {len(q_seed)} rows for {n} targets")
        q_seed = bounds.project(q_seed)
        answers = BatchAnswers.empty(q_seed)
        step = self.step_settings(tolerance, bounds)
        first = self._batch_first_seeds(T_targets, q_seed, step, seed_first)
        settings = self.settings
        search = BatchSearch(
            T_targets,
            first,
            q_seed,
            bounds,
            step,
            self.chain.arrays,
            accept,
            answers,
            settings.seeds_per_stuck_target,
            np.random.default_rng(settings.random_seed),
        )
        search.run(Budget(start_s, timeout_s, stop))
        return BatchResult(
            answers.q,
            answers.success,
            answers.position_error_m,
            answers.orientation_error_rad,
            answers.iterations,
            answers.restarts,
            time.perf_counter() - start_s,
        )

    def _batch_first_seeds(
        self, T_targets: np.ndarray, q_seed: np.ndarray, step: tuple, seed_first: bool
    ) -> FirstSeeds:
        """The first seeds of a batch's rows, in ``_seed_order``: the caller's seeds q_seed (N, dof) as one
        stage, the network's ranked guesses (ranked when a target first reaches them) as a stage each."""
        stages: list[tuple[np.ndarray, Patience]] = []
        network_stage, ranked = -1, None
        for source in self._seed_order(seed_first):
            if source is _CALLER_SEED:
                stages.append((q_seed[:, None, :], self._seed_patience))
            else:
                ranked = RankedGuesses(self.network.predict_all(T_targets), T_targets, self.chain.arrays, step)
                network_stage = len(stages)
                stages += [(ranked.seeds[:, k : k + 1], self._network_patience) for k in range(ranked.heads)]
        return FirstSeeds(stages, network_stage, ranked, self._seed_patience)

    # ------------------------------------------------------------------ helpers

    def _seed_order(self, seed_first: bool) -> tuple[object, ...]:
        """Where the seeds refined before random ones come from, in order: the network's guesses (when there
        is a network), then the caller's seed; ``seed_first`` puts the caller's seed first."""
        if self.network is None:
            return (_CALLER_SEED,)
        return (_CALLER_SEED, _NETWORK) if seed_first else (_NETWORK, _CALLER_SEED)

    def _bounds(self, bounds: Optional[JointBounds]) -> JointBounds:
        """A call's joint bounds: the chain's, or ``bounds`` held within them: the chain's narrowed by each
        joint's window of ``bounds`` (``JointBounds.narrow``, which gives bounds narrowed from the chain's
        back unchanged; a window with no room within the chain's limits raises JointBoundsError naming
        the joint)."""
        chain_bounds = self.chain.bounds
        if bounds is None or bounds is chain_bounds:
            return chain_bounds
        if bounds.names != chain_bounds.names:
            raise JointBoundsError(
                "", f"bounds are for the joints {list(bounds.names)}, not this chain's {list(chain_bounds.names)}"
            )
        return chain_bounds.narrow_arrays(bounds.lower, bounds.upper)

    def _q_seed(self, seed: Optional[np.ndarray], bounds: JointBounds) -> np.ndarray:
        """A one-pose call's seed (dof,): ``seed``, checked, or the chain's middle; moved into ``bounds``."""
        return bounds.project(self.chain.middle if seed is None else self._check_seeds(seed, batched=False))

    def step_settings(self, tolerance: Tolerance, bounds: JointBounds) -> tuple:
        """A call's ``StepSettings`` within ``bounds``, as the plain tuple the kernels take (``ik_bench`` times
        one step with it): the tolerance's free axis (one axis free, or all three: position only; ValueError
        for two), and the rotation weighed by ``rotation_weight_few_joints`` where the chain has fewer joints
        than the task has rows."""
        orientation_rad = tolerance.orientation_rad
        x, y, z = orientation_rad
        if x == y == z:  # the usual case, without a search (this runs once per solve)
            free_axis = POSITION_ONLY if x == math.inf else NO_FREE_AXIS
        else:
            free = [axis for axis, value in enumerate(orientation_rad) if value == math.inf]
            if len(free) == 2:
                raise ValueError(
                    f"Tolerance.orientation_rad {orientation_rad}: two free axes and one held are not supported; "
                    "leave one axis free (x, y or z) or all three (position only)"
                )
            free_axis = free[0] if free else NO_FREE_AXIS
        settings = self.settings
        # StepSettings' fields, in order, as a plain tuple: building the named tuple by keyword and converting
        # it cost about 1 µs of every one-pose solve.
        return (
            free_axis,
            tolerance.position_m,
            *orientation_rad,
            settings.rotation_weight_few_joints if self._few_joints[free_axis] else 1.0,
            settings.damping,
            settings.error_damping,
            bounds.lower,
            bounds.upper,
            bounds.bounded,
        )

    def _check_seeds(self, seed, batched: bool) -> np.ndarray:
        name = "seeds" if batched else "seed"
        q = np.asarray(seed, dtype=np.float64)
        if q.ndim != (2 if batched else 1) or q.shape[-1] != self.chain.dof:
            raise ValueError(
                f"{name} has shape {q.shape}; expected ({'N, ' if batched else ''}{self.chain.dof},) "
                f"for the joints {self.chain.joint_names}"
            )
        # One seed: Python's isfinite over its few values costs a fifth of numpy's ufunc and reduction.
        finite = np.isfinite(q).all() if batched else all(map(math.isfinite, q.tolist()))
        if not finite:
            raise ValueError(f"{name} has non-finite values (NaN or inf)")
        return q
