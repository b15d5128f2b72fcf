"""IK: damped least squares (Levenberg–Marquardt) from the network's guesses, the caller's seed, then random
restarts, with an FK check (design.md §7).

Poses are 4x4 transforms of the tip in the base frame; lengths in metres, angles in radians. A target
counts as solved only when forward kinematics of the returned q meets both tolerances and every joint is
within its (narrowed) bounds (continuous joints over a full turn are wrapped to [-pi, pi)).

``solve`` serves one pose (tuned for latency: scalar bookkeeping), ``solve_batch`` many (tuned for
throughput: rows of seeds in one kernel call). Both follow one seed schedule (``_seed_order``, then random
seeds; a seed is given up by ``Patience``) and one choice of answer (``_closest_converged``), and run the
same compiled step (``kernels.dls``) in float64.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np

from ik_neural.chain import KinematicChain
from ik_neural.joint_bounds import JointBounds
from ik_neural.kernels.dls import (
    StepSettings,
    dls_step,
    dls_step_rows,
    dls_step_rows_serial,
    ranked_steps,
    ranked_steps_serial,
)
from ik_neural.kernels.geometry import all_rigid, rigidity_errors

if TYPE_CHECKING:
    from ik_neural.network import IKNetwork

# Beyond this the rotation block of a target is not a rotation (it is checked as ||RᵀR - I||, det R).
_RIGIDITY_TOLERANCE = 1e-6
# Below this many rows a step runs on one thread: waking a thread pool costs more than it saves, and far
# more when other processes hold the cores (spinning threads then wait for a time slice). Measured, Panda,
# 4096 targets, 2 cores: hybrid 61 000 solves/s at 64 or 128, 58 600 at 256, 46 300 at 512.
_PARALLEL_MIN_ROWS = 128
# Rows kept busy when only a few hard targets are left (a batch's tail): a near-singular target may need
# hundreds of random seeds, and a step's bookkeeping costs as much as a few hundred rows of arithmetic.
# Measured on UR5e's hardest of 4096 targets: 1766 steps at 32 rows, 136 at 512 (1.8x the batch's rate).
_TAIL_ROWS = 512


@dataclass(frozen=True)
class SolverSettings:
    """How the solver searches. Defaults were chosen by measurement (README, "Solver")."""

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
    random_seed: int = 0
    """Seed of the random restarts: a call is deterministic unless its time budget cuts it short."""


@dataclass(frozen=True)
class Patience:
    """When a seed is given up: after ``max_iterations`` steps, or when its error did not halve over the
    last ``window`` steps. The one rule of both solve paths (scalars or arrays alike)."""

    max_iterations: int
    window: int

    def exhausted(self, age, error, error_window_ago):
        """Given up after ``age`` steps at ``error``; ``error_window_ago`` is inf before ``window`` steps."""
        return (age >= self.max_iterations) | (error > 0.5 * error_window_ago)


# Where a first seed comes from (``IKSolver._seed_order``).
_NETWORK, _CALLER_SEED = "the network's guesses", "the caller's seed"


class _RankedGuesses:
    """The network's K guesses for N targets, ranked per target when its schedule first reaches them: each
    guess stepped once, side by side, and the results ordered lowest error first (``kernels.dls.ranked_steps``)."""

    def __init__(self, guesses: np.ndarray, T_targets: np.ndarray, chain: KinematicChain, step: tuple) -> None:
        self._guesses, self._T_targets, self._arrays, self._step = guesses, T_targets, chain.arrays, step
        self.seeds = np.empty_like(guesses)  # (N, K, dof): the ranked guesses, rows of targets ranked so far
        self._ranked = np.zeros(len(guesses), dtype=bool)

    @property
    def heads(self) -> int:
        return self._guesses.shape[1]

    def rank(self, targets: np.ndarray) -> np.ndarray:
        """Rank the guesses of those of ``targets`` not ranked yet (one round of steps each); returns them."""
        new = np.unique(targets[~self._ranked[targets]])
        if len(new):
            kernel = ranked_steps if len(new) * self.heads >= _PARALLEL_MIN_ROWS else ranked_steps_serial
            self.seeds[new] = kernel(self._guesses[new], self._T_targets[new], self._arrays, self._step)
            self._ranked[new] = True
        return new


@dataclass(frozen=True)
class IKResult:
    """What ``solve`` found for one pose.

    ``q`` (dof,) is the solution, or where ``success`` is False the best configuration found (smallest
    error); the errors (m, rad) are FK's of ``q``. ``iterations`` counts DLS steps (a step of several seeds
    at once counts once); ``restarts`` counts random seeds drawn; ``elapsed_s`` is wall time.
    """

    q: np.ndarray
    success: bool
    position_error_m: float
    orientation_error_rad: float
    iterations: int
    restarts: int
    elapsed_s: float


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


@dataclass
class _Answers:
    """Per target (N,): the answer so far (best configuration, or the solution once found) and counters."""

    q: np.ndarray
    position_error_m: np.ndarray
    orientation_error_rad: np.ndarray
    error: np.ndarray  # normalised error norm of q, the quantity "best" minimises
    success: np.ndarray
    iterations: np.ndarray
    restarts: np.ndarray

    @classmethod
    def empty(cls, q_seed: np.ndarray) -> "_Answers":
        n = len(q_seed)
        return cls(
            q_seed.copy(),
            np.full(n, math.inf),
            np.full(n, math.inf),
            np.full(n, math.inf),
            np.zeros(n, dtype=bool),
            np.zeros(n, dtype=int),
            np.zeros(n, dtype=int),
        )

    def record(self, rows: np.ndarray, target: np.ndarray, Q, position_error, orientation_error, error) -> None:
        """Write the selected rows into their targets' answers."""
        t = target[rows]
        self.q[t] = Q[rows]
        self.position_error_m[t] = position_error[rows]
        self.orientation_error_rad[t] = orientation_error[rows]
        self.error[t] = error[rows]


def _closest_converged(converged: np.ndarray, distance: np.ndarray, target: np.ndarray, n: int) -> np.ndarray:
    """Of rows (R,) aimed at targets ``target`` (R,) of n, the converged row nearest its target's seed (by
    ``distance`` (R,)): a mask (R,) with one row per target that has any converged."""
    distance = np.where(converged, distance, math.inf)
    closest = np.full(n, math.inf)
    np.minimum.at(closest, target, distance)
    return converged & (distance == closest[target])


def _accepted(
    converged: np.ndarray, Q: np.ndarray, collision_free: Optional[Callable[[np.ndarray], bool]]
) -> np.ndarray:
    """The converged rows (R,) of Q (R, dof) that ``collision_free`` accepts (all of them without one)."""
    if collision_free is None:
        return converged
    return np.array([bool(c) and bool(collision_free(q)) for c, q in zip(converged, Q)])


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

    def warm_up(self) -> None:
        """Compile (or load from numba's cache) every kernel a call may reach, so that none compiles inside
        a call's time budget: the one-pose step, the serial rows of restarts, the parallel rows of a batch,
        and a network's one-pose and few-poses forward passes."""
        chain = self.chain
        T_mid = chain.forward(chain.middle)
        self.solve(T_mid, timeout_s=1.0)
        self.solve_batch(np.repeat(T_mid[None], 2, axis=0), timeout_s=1.0)
        self.solve_batch(np.repeat(T_mid[None], _PARALLEL_MIN_ROWS, axis=0), timeout_s=10.0)
        k = self.settings.restart_batch_size
        dls_step_rows_serial(
            np.tile(chain.middle, (k, 1)),
            np.repeat(T_mid[None], k, axis=0),
            chain.arrays,
            self.step_settings(1e-5, 1e-5, chain.bounds),
        )

    # ------------------------------------------------------------------ one pose

    def solve(
        self,
        T_target: np.ndarray,
        seed: Optional[np.ndarray] = None,
        timeout_s: float = 0.005,
        position_tolerance_m: float = 1e-5,
        orientation_tolerance_rad: Optional[float] = 1e-5,
        lower: Optional[np.ndarray] = None,
        upper: Optional[np.ndarray] = None,
        seed_first: bool = False,
        stop: Optional[threading.Event] = None,
        collision_free: Optional[Callable[[np.ndarray], bool]] = None,
    ) -> IKResult:
        """Solve one pose T_target (4, 4) (tip in base frame): from the network's ranked guesses, then
        ``seed`` (dof,), default mid-limits, then random seeds. ``seed_first`` tries ``seed`` before the
        network's guesses (which are then computed only if it fails): the answer is then usually the
        solution nearest the seed, as a numerical solver's is.

        ``orientation_tolerance_rad=None`` solves for position only. ``lower``/``upper`` (dof,) narrow the
        joint bounds for this call (``JointBounds.narrow``). ``stop``, once set, ends the call as its time
        budget would. Never raises for an unreachable target: it returns ``success=False`` with the best
        configuration found within ``timeout_s``.

        ``collision_free`` (e.g. ``CollisionChecker.free``), when given, is asked about each converged
        candidate q (dof,) only (no cost per iteration): a candidate it rejects is dropped as if its seed were
        exhausted, and the search goes on with the next seed within the budget; success means it accepted q.
        """
        start = time.perf_counter()
        T_target = self._check_targets(np.asarray(T_target, dtype=np.float64), batched=False)
        self._check_tolerances(timeout_s, position_tolerance_m, orientation_tolerance_rad)
        bounds = self._bounds(lower, upper)
        q_seed = bounds.project(self.chain.middle if seed is None else self._check_seeds(seed, batched=False))
        deadline = start + timeout_s
        step = self.step_settings(position_tolerance_m, orientation_tolerance_rad, bounds)
        arrays = self.chain.arrays

        def out_of_time() -> bool:
            return time.perf_counter() > deadline or (stop is not None and stop.is_set())

        # The answer so far: the lowest-error configuration, or the solution once found.
        best_q, best_error, best_position, best_orientation = q_seed, math.inf, math.inf, math.inf
        success, iterations, restarts = False, 0, 0

        def first_seeds():
            """The seeds refined before random ones, one row at a time (``_seed_order``); the network's
            guesses are ranked (one round, counted as an iteration) only when the schedule reaches them."""
            nonlocal iterations
            for source in self._seed_order(seed_first):
                if source is _CALLER_SEED:
                    yield q_seed, self._seed_patience
                else:
                    ranked = ranked_steps_serial(self.network.predict_all(T_target)[None], T_target[None], arrays, step)
                    iterations += 1
                    for q in ranked[0]:
                        yield q, self._network_patience

        # The first seeds, then random restarts.
        for q, patience in first_seeds():
            errors: list[float] = []
            while True:
                q_next, converged, position_error, orientation_error, error = dls_step(q, T_target, arrays, step)
                iterations += 1
                accepted = converged and (collision_free is None or collision_free(q))
                if accepted or (not converged and error < best_error):
                    best_q, best_error, best_position, best_orientation = q, error, position_error, orientation_error
                if accepted:
                    success = True
                    break
                if converged:  # rejected by collision_free: this seed is done
                    break
                errors.append(error)
                earlier = errors[-1 - patience.window] if len(errors) > patience.window else math.inf
                if out_of_time() or patience.exhausted(len(errors), error, earlier):
                    break
                q = q_next
            if success or out_of_time():
                break

        # Then restart_batch_size random seeds refined together, one kernel call a round, each replaced
        # when exhausted. (The bookkeeping stays on scalars: for one target, solve_batch's numpy
        # bookkeeping would cost more than the round's arithmetic.)
        if not success and not out_of_time():
            k = self.settings.restart_batch_size
            rng = np.random.default_rng(self.settings.random_seed)
            T_rows = np.repeat(T_target[None], k, axis=0)
            Q = bounds.sample(rng, k)
            histories: list[list[float]] = [[] for _ in range(k)]
            restarts += k
            patience = self._seed_patience
            while not out_of_time():
                Q_next, converged, position_error, orientation_error, error = dls_step_rows_serial(
                    Q, T_rows, arrays, step
                )
                iterations += 1
                if converged.any():
                    accepted = _accepted(converged, Q, collision_free)
                    if accepted.any():
                        i = int(
                            np.flatnonzero(
                                _closest_converged(accepted, bounds.distance(Q, q_seed), np.zeros(k, int), 1)
                            )[0]
                        )
                        best_q, best_position, best_orientation = Q[i].copy(), position_error[i], orientation_error[i]
                        success = True
                        break
                    error = np.where(converged, math.inf, error)  # rejected: never the best, replaced below
                i = int(np.argmin(error))
                if error[i] < best_error:
                    best_q, best_error = Q[i].copy(), error[i]
                    best_position, best_orientation = position_error[i], orientation_error[i]
                for i, error_i in enumerate(error.tolist()):  # Python floats: numpy scalars cost 10x here
                    history = histories[i]
                    history.append(error_i)
                    earlier = history[-1 - patience.window] if len(history) > patience.window else math.inf
                    if patience.exhausted(len(history), error_i, earlier) or error_i == math.inf:
                        Q_next[i], histories[i] = bounds.sample(rng, 1)[0], []
                        restarts += 1
                Q = Q_next
        return IKResult(
            best_q,
            success,
            float(best_position),
            float(best_orientation),
            iterations,
            restarts,
            time.perf_counter() - start,
        )

    def solutions(
        self,
        T_target: np.ndarray,
        count: int = 8,
        seed: Optional[np.ndarray] = None,
        timeout_s: float = 0.02,
        position_tolerance_m: float = 1e-5,
        orientation_tolerance_rad: Optional[float] = 1e-5,
        min_distance_rad: float = 0.1,
        lower: Optional[np.ndarray] = None,
        upper: Optional[np.ndarray] = None,
        stop: Optional[threading.Event] = None,
    ) -> Solutions:
        """Up to ``count`` distinct solutions of one pose T_target (4, 4), sorted by distance to ``seed``
        (dof,) (default mid-limits): no two closer than ``min_distance_rad`` in their largest joint
        difference (continuous joints the short way round; rad, or m for a prismatic joint).

        Rows of ``restart_batch_size`` (or more) seeds are refined side by side: the caller's seed and the
        network's K guesses first, then random seeds; a row that converges (FK within both tolerances, within the bounds)
        is kept when it is far enough from those found, and replaced by a new random seed either way. The
        call ends with ``count`` solutions, or at ``timeout_s`` with those found so far. ``lower``/``upper``
        and ``stop`` as for ``solve``.
        """
        start = time.perf_counter()
        T_target = self._check_targets(np.asarray(T_target, dtype=np.float64), batched=False)
        self._check_tolerances(timeout_s, position_tolerance_m, orientation_tolerance_rad)
        if not (isinstance(count, (int, np.integer)) and count >= 1):
            raise ValueError(f"count must be an integer >= 1, got {count!r}")
        if not min_distance_rad >= 0:
            raise ValueError(f"min_distance_rad must be >= 0, got {min_distance_rad}")
        bounds = self._bounds(lower, upper)
        q_seed = bounds.project(self.chain.middle if seed is None else self._check_seeds(seed, batched=False))
        deadline = start + timeout_s
        step = self.step_settings(position_tolerance_m, orientation_tolerance_rad, bounds)
        rng = np.random.default_rng(self.settings.random_seed)
        guesses = None if self.network is None else bounds.project(self.network.predict_all(T_target))
        # The caller's seed first: its solution is the nearest one, the first a caller wants; then every
        # head's guess (K heads propose different branches: different solutions).
        first = q_seed[None] if guesses is None else np.vstack([q_seed[None], guesses])
        patience = [self._seed_patience] + [self._network_patience] * (len(first) - 1)
        k = max(self.settings.restart_batch_size, len(first))
        Q = np.vstack([first, bounds.sample(rng, k - len(first))])
        patience += [self._seed_patience] * (k - len(first))
        histories: list[list[float]] = [[] for _ in range(k)]
        T_rows = np.repeat(T_target[None], k, axis=0)
        found_q, found_position, found_orientation = np.empty((0, self.chain.dof)), [], []
        iterations, restarts = 0, k - len(first)
        while len(found_q) < count and time.perf_counter() <= deadline and not (stop is not None and stop.is_set()):
            Q_next, converged, position_error, orientation_error, error = dls_step_rows_serial(
                Q, T_rows, self.chain.arrays, step
            )
            iterations += 1
            for i, error_i in enumerate(error.tolist()):  # Python floats: numpy scalars cost 10x here
                if converged[i]:
                    distinct = len(found_q) == 0 or bounds.largest_difference(found_q, Q[i]).min() >= min_distance_rad
                    if distinct and len(found_q) < count:
                        found_q = np.vstack([found_q, Q[i]])
                        found_position.append(position_error[i])
                        found_orientation.append(orientation_error[i])
                    replace = True
                else:
                    history = histories[i]
                    history.append(error_i)
                    earlier = history[-1 - patience[i].window] if len(history) > patience[i].window else math.inf
                    replace = patience[i].exhausted(len(history), error_i, earlier)
                if replace:
                    Q_next[i], histories[i], patience[i] = bounds.sample(rng, 1)[0], [], self._seed_patience
                    restarts += 1
            Q = Q_next
        order = np.argsort(bounds.distance(found_q, q_seed), kind="stable")
        return Solutions(
            found_q[order],
            np.ones(len(order), dtype=bool),
            np.array(found_position)[order],
            np.array(found_orientation)[order],
            iterations,
            restarts,
            time.perf_counter() - start,
        )

    # ------------------------------------------------------------------ many poses

    def solve_batch(
        self,
        T_targets: np.ndarray,
        seeds: Optional[np.ndarray] = None,
        timeout_s: Optional[float] = None,
        position_tolerance_m: float = 1e-5,
        orientation_tolerance_rad: Optional[float] = 1e-5,
        lower: Optional[np.ndarray] = None,
        upper: Optional[np.ndarray] = None,
        seed_first: bool = False,
        stop: Optional[threading.Event] = None,
    ) -> BatchResult:
        """Solve poses T_targets (N, 4, 4), all rows at once, by the schedule of ``solve``: the network's
        guesses and ``seeds`` (N, dof), default mid-limits, then random seeds; the same ``lower``/``upper``
        and ``seed_first`` for every target.

        ``timeout_s`` is the budget of the whole batch (default 5 ms per target). A target whose seeds are
        exhausted gets random seeds, up to ``seeds_per_stuck_target`` refined at once.
        """
        start = time.perf_counter()
        T_targets = self._check_targets(np.asarray(T_targets, dtype=np.float64), batched=True)
        n = len(T_targets)
        timeout_s = 0.005 * n if timeout_s is None else timeout_s
        self._check_tolerances(timeout_s, position_tolerance_m, orientation_tolerance_rad)
        bounds = self._bounds(lower, upper)
        if seeds is None:
            q_seed = np.tile(self.chain.middle, (n, 1))
        else:
            q_seed = self._check_seeds(np.asarray(seeds, dtype=np.float64), batched=True)
            if len(q_seed) != n:
                raise ValueError(f"seeds has {len(q_seed)} rows for {n} targets")
        q_seed = bounds.project(q_seed)
        answers = _Answers.empty(q_seed)
        step = self.step_settings(position_tolerance_m, orientation_tolerance_rad, bounds)
        ranked = (
            None
            if self.network is None
            else _RankedGuesses(self.network.predict_all(T_targets), T_targets, self.chain, step)
        )
        self._refine(T_targets, ranked, seed_first, q_seed, answers, bounds, step, start + timeout_s, stop)
        return BatchResult(
            answers.q,
            answers.success,
            answers.position_error_m,
            answers.orientation_error_rad,
            answers.iterations,
            answers.restarts,
            time.perf_counter() - start,
        )

    # ------------------------------------------------------------------ the search

    def _seed_order(self, seed_first: bool) -> tuple[object, ...]:
        """Where the seeds refined before random ones come from, in order: the network's guesses (when there
        is a network), then the caller's seed; ``seed_first`` puts the caller's seed first."""
        if self.network is None:
            return (_CALLER_SEED,)
        return (_CALLER_SEED, _NETWORK) if seed_first else (_NETWORK, _CALLER_SEED)

    def _refine(
        self,
        T_targets: np.ndarray,
        ranked: Optional["_RankedGuesses"],
        seed_first: bool,
        q_seed: np.ndarray,
        answers: _Answers,
        bounds: JointBounds,
        step: tuple,
        deadline: float,
        stop: Optional[threading.Event],
    ) -> None:
        """Refine one row per target through its first seeds (``_seed_order``: the network's ranked guesses,
        a stage each, and the caller's seed ``q_seed`` (N, dof)), each until its patience runs out, then
        random ones, until every target is solved or the deadline passes; answers (per target) are
        updated in place."""
        settings = self.settings
        n = len(T_targets)
        # A stage: seeds (N, 1, dof) and their patience; the network's are views of ``ranked``'s buffer,
        # filled per target when it enters the first of them (``enter``).
        first_seeds: list[tuple[np.ndarray, Patience]] = []
        network_stage = -1
        for source in self._seed_order(seed_first):
            if source is _CALLER_SEED:
                first_seeds.append((q_seed[:, None, :], self._seed_patience))
            else:
                network_stage = len(first_seeds)
                first_seeds += [(ranked.seeds[:, k : k + 1], self._network_patience) for k in range(ranked.heads)]

        def enter(s: int, targets: np.ndarray) -> None:
            """``targets`` enter stage s: rank their guesses first if s is the network's first stage."""
            if s == network_stage:
                answers.iterations[ranked.rank(targets)] += 1

        rng = np.random.default_rng(settings.random_seed)
        # A row's stage: the index of its first seed, or len(first_seeds) once on random seeds.
        patiences = [patience for _, patience in first_seeds] + [self._seed_patience]
        windows = np.array([p.window for p in patiences])
        max_iterations = np.array([p.max_iterations for p in patiences])
        random_stage = len(first_seeds)
        target = np.arange(n)
        enter(0, target)
        Q = first_seeds[0][0][:, 0].copy()
        stage = np.zeros(len(target), dtype=int)
        age = np.zeros(len(target), dtype=int)
        history = np.full((int(windows.max()) + 1, len(target)), math.inf)  # errors of the last steps, newest last
        while len(target) and time.perf_counter() <= deadline and not (stop is not None and stop.is_set()):
            kernel = dls_step_rows if len(target) >= _PARALLEL_MIN_ROWS else dls_step_rows_serial
            Q_next, converged, position_error, orientation_error, error = kernel(
                Q, T_targets[target], self.chain.arrays, step
            )
            answers.iterations[np.unique(target)] += 1

            # Each target keeps its lowest-error configuration (its answer if it never converges) ...
            best = answers.error.copy()
            np.minimum.at(best, target, error)
            answers.record(
                (error == best[target]) & (error < answers.error[target]),
                target,
                Q,
                position_error,
                orientation_error,
                error,
            )
            # ... and, once rows converge, the solution closest to its seed.
            if converged.any():
                winners = _closest_converged(converged, bounds.distance(Q, q_seed[target]), target, n)
                answers.record(winners, target, Q, position_error, orientation_error, error)
                answers.success[target[winners]] = True

            history = np.roll(history, -1, axis=0)
            history[-1] = error
            age += 1
            window = windows[stage]
            earlier = history[-1 - window, np.arange(len(window))]
            exhausted = (age >= max_iterations[stage]) | (error > 0.5 * earlier)
            keep = ~answers.success[target]
            target, Q, age, history, exhausted = (
                target[keep],
                Q_next[keep],
                age[keep],
                history[:, keep],
                exhausted[keep],
            )
            stage = stage[keep]
            if exhausted.any():
                # A target has one row while on its first seeds: an exhausted one moves on to the next
                # stage, the last to random seeds.
                stage[exhausted] = np.minimum(stage[exhausted] + 1, random_stage)
                for s, (seeds, _) in enumerate(first_seeds):
                    rows = np.flatnonzero(exhausted & (stage == s))
                    if len(rows):
                        enter(s, target[rows])
                        Q[rows] = seeds[target[rows], 0]
                to_random = exhausted & (stage == random_stage)
                Q[to_random] = bounds.sample(rng, int(to_random.sum()))
                age[exhausted] = 0
                history[:, exhausted] = math.inf
                answers.restarts += np.bincount(target[to_random], minlength=n)
                # Hard targets are a batch's tail: give each stuck one more rows, the more the fewer are
                # left, so that a step's fixed cost is spread over enough seeds.
                stuck = np.unique(target[to_random])
                rows_each = max(settings.seeds_per_stuck_target, _TAIL_ROWS // len(np.unique(target)))
                extra = np.maximum(rows_each - np.bincount(target, minlength=n)[stuck], 0)
                new = np.repeat(stuck, extra)
                if len(new):
                    answers.restarts += np.bincount(new, minlength=n)
                    target = np.concatenate([target, new])
                    Q = np.concatenate([Q, bounds.sample(rng, len(new))])
                    stage = np.concatenate([stage, np.full(len(new), random_stage)])
                    age = np.concatenate([age, np.zeros(len(new), dtype=int)])
                    history = np.concatenate([history, np.full((history.shape[0], len(new)), math.inf)], axis=1)

    # ------------------------------------------------------------------ helpers

    def _bounds(self, lower: Optional[np.ndarray], upper: Optional[np.ndarray]) -> JointBounds:
        """The call's joint bounds: the chain's, narrowed by ``lower``/``upper`` when given."""
        if lower is None and upper is None:
            return self.chain.bounds
        return self.chain.bounds.narrow_arrays(lower, upper)

    def step_settings(
        self, position_tolerance_m: float, orientation_tolerance_rad: Optional[float], bounds: JointBounds
    ) -> tuple:
        """A call's ``StepSettings`` within ``bounds``, as the plain tuple the kernels take (``ik_bench`` times
        one step with it)."""
        return tuple(
            StepSettings(
                position_only=orientation_tolerance_rad is None,
                position_tolerance_m=float(position_tolerance_m),
                orientation_tolerance_rad=float(orientation_tolerance_rad or 0.0),
                damping=self.settings.damping,
                error_damping=self.settings.error_damping,
                lower=bounds.lower,
                upper=bounds.upper,
                bounded=bounds.bounded,
            )
        )

    def _check_targets(self, T: np.ndarray, batched: bool) -> np.ndarray:
        name = "T_targets" if batched else "T_target"
        expected = "(N, 4, 4)" if batched else "(4, 4)"
        if T.shape[-2:] != (4, 4) or T.ndim != (3 if batched else 2):
            raise ValueError(f"{name} has shape {T.shape}; expected {expected}")
        T = np.ascontiguousarray(T)
        poses = T if batched else T[None]
        if all_rigid(poses, _RIGIDITY_TOLERANCE):
            return T
        finite, orthonormality, det, bottom = rigidity_errors(poses)
        where = lambda bad: f" (first at index {int(np.flatnonzero(bad)[0])})" if batched else ""  # noqa: E731
        if not finite.all():
            raise ValueError(f"{name} has non-finite values (NaN or inf){where(~finite)}")
        bad = (orthonormality > _RIGIDITY_TOLERANCE) | (det < 0) | (bottom > 0)
        if bad.any():
            raise ValueError(
                f"{name} is not a rigid transform{where(bad)}: the rotation block must be orthonormal with "
                f"det +1 (|RᵀR - I| up to {float(orthonormality.max()):.2g}) and the bottom row 0 0 0 1"
            )
        return T

    def _check_seeds(self, seed, batched: bool) -> np.ndarray:
        name = "seeds" if batched else "seed"
        q = np.asarray(seed, dtype=np.float64)
        if q.ndim != (2 if batched else 1) or q.shape[-1] != self.chain.dof:
            raise ValueError(
                f"{name} has shape {q.shape}; expected ({'N, ' if batched else ''}{self.chain.dof},) "
                f"for the joints {self.chain.joint_names}"
            )
        if not np.isfinite(q).all():
            raise ValueError(f"{name} has non-finite values (NaN or inf)")
        return q

    @staticmethod
    def _check_tolerances(timeout_s, position_tolerance_m, orientation_tolerance_rad) -> None:
        if not timeout_s >= 0:
            raise ValueError(f"timeout_s must be >= 0, got {timeout_s}")
        if not position_tolerance_m > 0:
            raise ValueError(f"position_tolerance_m must be > 0, got {position_tolerance_m}")
        if orientation_tolerance_rad is not None and not orientation_tolerance_rad > 0:
            raise ValueError(
                f"orientation_tolerance_rad must be > 0 (or None for position only), got {orientation_tolerance_rad}"
            )
