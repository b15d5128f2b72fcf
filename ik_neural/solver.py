"""IK: damped least squares (Levenberg–Marquardt) from the network's guess, the caller's seed, then random
restarts, with an FK check (design.md §7).

Poses are 4x4 transforms of the tip in the base frame; lengths in metres, angles in radians. A target
counts as solved only when forward kinematics of the returned q meets both tolerances and every joint is
within its limits (continuous joints are wrapped to [-pi, pi)).

``solve`` serves one pose (tuned for latency), ``solve_batch`` many (tuned for throughput). Both run the
same compiled DLS step (``single_pose.dls_step``) in float64, on one configuration or on rows of them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import NamedTuple, Optional, Union

import numpy as np
import torch

from ik_neural import single_pose
from ik_neural.kinematics import KinematicChain
from ik_neural.network import IKNetwork

Array = Union[np.ndarray, torch.Tensor]

# Beyond this the rotation block of a target is not a rotation (it is checked as ||RᵀR - I||, det R).
_RIGIDITY_TOLERANCE = 1e-6


@dataclass(frozen=True)
class SolverSettings:
    """How the solver searches. Defaults were chosen by measurement (README, "Solver")."""

    damping: float = 1e-6
    """Constant part of the LM damping, on errors normalised by the chain's reach (dimensionless)."""
    error_damping: float = 0.1
    """Part of the LM damping proportional to the squared normalised error."""
    max_iterations_per_seed: int = 40
    """DLS steps a seed gets before it is replaced by a random one."""
    max_iterations_network_seed: int = 12
    """DLS steps the network's guess gets before the caller's seed takes over."""
    network_stagnation_window: int = 3
    """The network's guess is also given up when its error did not halve over this many steps: a good
    guess converges quadratically, a guess on the wrong branch crawls."""
    stagnation_window: int = 10
    """A seed whose error did not halve over this many steps is replaced by a random one."""
    restart_batch_size: int = 8
    """Random seeds refined side by side (a round of one step each) once the first seed has failed."""
    seeds_per_stuck_target: int = 4
    """In ``solve_batch``, random seeds refined at once for a target whose seed got stuck."""
    random_seed: int = 0
    """Seed of the random restarts: a call is deterministic unless its time budget cuts it short."""


class JointBounds(NamedTuple):
    """The joint limits a call searches within: ``lower``, ``upper`` (dof,) in rad or m, and ``bounded``
    (dof,), False for a continuous joint searched over a full turn (wrapped to [lower, lower + 2 pi))."""

    lower: np.ndarray
    upper: np.ndarray
    bounded: np.ndarray


@dataclass(frozen=True)
class IKResult:
    """What a solve found: for ``solve`` scalars and q (dof,); for ``solve_batch`` arrays (N,) and q (N, dof).

    ``q`` is the solution, or where ``success`` is False the best configuration found (smallest error).
    ``iterations`` counts DLS steps (a step of several seeds at once counts once); ``restarts`` counts
    random seeds drawn; ``elapsed_s`` is wall time (for a batch, of the whole batch).
    """

    q: np.ndarray
    success: Union[bool, np.ndarray]
    position_error_m: Union[float, np.ndarray]
    orientation_error_rad: Union[float, np.ndarray]
    iterations: Union[int, np.ndarray]
    restarts: Union[int, np.ndarray]
    elapsed_s: float


def _ops(a: Array) -> SimpleNamespace:
    """The few array functions pose_errors needs, spelled once for numpy and torch."""
    if isinstance(a, torch.Tensor):
        return SimpleNamespace(
            atan2=torch.atan2, where=torch.where, stack=torch.stack, swap=lambda x: x.transpose(-1, -2),
            eye=lambda n, dtype: torch.eye(n, dtype=dtype, device=a.device),
            arange=lambda n: torch.arange(n, device=a.device),
        )  # fmt: skip
    return SimpleNamespace(
        atan2=np.arctan2, where=np.where, stack=np.stack, swap=lambda x: np.swapaxes(x, -1, -2),
        eye=lambda n, dtype: np.eye(n, dtype=dtype), arange=np.arange,
    )  # fmt: skip


def pose_errors(T_target: Array, T: Array) -> tuple[Array, Array, Array, Array]:
    """Errors of poses T against targets, both (..., 4, 4) in the base frame.

    Returns (position error vector (..., 3) in m; rotation error vector (..., 3) in rad, the log map of
    R_target·Rᵀ; position error (...) in m; rotation angle (...) in rad).
    """
    xp = _ops(T)
    dp = T_target[..., :3, 3] - T[..., :3, 3]
    E = T_target[..., :3, :3] @ xp.swap(T[..., :3, :3])
    v = 0.5 * xp.stack([E[..., 2, 1] - E[..., 1, 2], E[..., 0, 2] - E[..., 2, 0], E[..., 1, 0] - E[..., 0, 1]], -1)
    sine = (v * v).sum(-1) ** 0.5
    cosine = 0.5 * (E[..., 0, 0] + E[..., 1, 1] + E[..., 2, 2] - 1.0)
    angle = xp.atan2(sine, cosine)
    # ω = angle · axis = angle / sin(angle) · v; the ratio tends to 1 at small angles.
    tiny = sine <= 1e-9
    omega = v * xp.where(tiny, 1.0, angle / (sine + tiny))[..., None]
    near_pi = (sine < 1e-6) & (cosine < 0)
    if bool(near_pi.any()):
        # At pi, v vanishes but E + I = 2 axis axisᵀ: its largest column is along the axis.
        C = E + xp.eye(3, dtype=E.dtype)
        best = (C * C).sum(-2).argmax(-1)
        axis = (C * (best[..., None] == xp.arange(3))[..., None, :]).sum(-1)
        axis = axis / ((axis * axis).sum(-1) ** 0.5)[..., None]
        omega = xp.where(near_pi[..., None], axis * angle[..., None], omega)
    return dp, omega, (dp * dp).sum(-1) ** 0.5, angle


# Below this many rows a step runs on one thread: waking a thread pool costs more than it saves, and far
# more when other processes hold the cores (spinning threads then wait for a time slice).
_PARALLEL_MIN_ROWS = 512
# Rows kept busy when only a few hard targets are left (a batch's tail): a near-singular target may need
# hundreds of random seeds, and a step's bookkeeping costs as much as a few hundred rows of arithmetic.
# Measured on UR5e's hardest of 4096 targets: 1766 steps at 32 rows, 136 at 512 (1.8x the batch's rate).
_TAIL_ROWS = _PARALLEL_MIN_ROWS


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
            q_seed.copy(), np.full(n, math.inf), np.full(n, math.inf), np.full(n, math.inf),
            np.zeros(n, dtype=bool), np.zeros(n, dtype=int), np.zeros(n, dtype=int),
        )  # fmt: skip

    def record(self, rows: np.ndarray, target: np.ndarray, Q, position_error, orientation_error, error) -> None:
        """Write the selected rows into their targets' answers."""
        t = target[rows]
        self.q[t] = Q[rows]
        self.position_error_m[t] = position_error[rows]
        self.orientation_error_rad[t] = orientation_error[rows]
        self.error[t] = error[rows]


class IKSolver:
    """Inverse kinematics for one chain. Seeds in order: the network's guess (when a network is given),
    the caller's seed (default mid-limits), then random restarts; each refined by DLS.

    Thread-safe: a call keeps its state to itself, so concurrent calls give the answers serial ones would.
    """

    def __init__(
        self,
        chain: KinematicChain,
        network: Optional[IKNetwork] = None,
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
        self._bounded = ~np.asarray(chain.is_continuous)
        self._limits = JointBounds(chain.lower, chain.upper, self._bounded)
        # Compile (or load from numba's cache) the kernels now, not inside a first call's time budget.
        T_mid = chain.forward(self.chain.middle)
        self.solve(T_mid, timeout_s=1.0)
        self.solve_batch(np.repeat(T_mid[None], _PARALLEL_MIN_ROWS, axis=0), timeout_s=10.0)
        # The random restarts' kernel, which a target solved at once never reaches.
        k = settings.restart_batch_size
        single_pose.dls_step_rows_serial(
            np.tile(chain.middle, (k, 1)), np.repeat(T_mid[None], k, axis=0),
            self._kernel_constants(1e-5, 1e-5, self._limits),
        )  # fmt: skip

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
    ) -> IKResult:
        """Solve one pose T_target (4, 4) (tip in base frame): from the network's guess, then ``seed``
        (dof,), default mid-limits, then random seeds. ``seed_first`` tries ``seed`` before the network's
        guess: the answer is then usually the solution nearest the seed, as a numerical solver's is.

        ``orientation_tolerance_rad=None`` solves for position only. ``lower``/``upper`` (dof,) narrow the
        joint limits for this call: a bounded joint's must lie within its limits; a continuous joint is
        searched between them when they span less than a full turn. Never raises for an unreachable
        target: it returns ``success=False`` with the best configuration found within ``timeout_s``.
        """
        start = time.perf_counter()
        T_target = self._check_targets(np.asarray(T_target, dtype=np.float64), batched=False)
        self._check_tolerances(timeout_s, position_tolerance_m, orientation_tolerance_rad)
        bounds = self._limits if lower is None and upper is None else self._narrowed(lower, upper)
        q_seed = self._project(self.chain.middle if seed is None else self._check_seeds(seed, batched=False), bounds)
        deadline = start + timeout_s
        constants = self._kernel_constants(position_tolerance_m, orientation_tolerance_rad, bounds)

        # The answer so far: the lowest-error configuration, or the solution once found.
        best_q, best_error, best_position, best_orientation = q_seed, math.inf, math.inf, math.inf
        success, iterations, restarts = False, 0, 0

        # The network's guess, then the caller's seed, each alone with the least overhead a step: most
        # targets converge from the first.
        settings = self.settings
        first_seeds = [(q_seed, settings.max_iterations_per_seed, settings.stagnation_window)]
        if self.network is not None:
            first_seeds.insert(len(first_seeds) if seed_first else 0, (
                self._project(self.network.predict(T_target), bounds), settings.max_iterations_network_seed,
                settings.network_stagnation_window,
            ))  # fmt: skip
        for q, max_iterations, window in first_seeds:
            errors: list[float] = []
            while True:
                q_next, converged, position_error, orientation_error, error = single_pose.dls_step(
                    q, T_target, *constants
                )
                iterations += 1
                if converged or error < best_error:
                    best_q, best_error, best_position, best_orientation = q, error, position_error, orientation_error
                if converged:
                    success = True
                    break
                errors.append(error)
                if time.perf_counter() > deadline or self._seed_exhausted(errors, max_iterations, window):
                    break
                q = q_next
            if success or time.perf_counter() > deadline:
                break

        # Then restart_batch_size random seeds refined together, one kernel call a round, each replaced
        # when exhausted. (The bookkeeping stays on scalars: for one target, solve_batch's numpy
        # bookkeeping would cost more than the round's arithmetic.)
        k = self.settings.restart_batch_size
        if not success:
            rng = np.random.default_rng(self.settings.random_seed)
            T_rows = np.repeat(T_target[None], k, axis=0)
            Q = self._random(rng, k, bounds)
            histories: list[list[float]] = [[] for _ in range(k)]
            restarts += k
        while not success and time.perf_counter() <= deadline:
            Q_next, converged, position_error, orientation_error, error = single_pose.dls_step_rows_serial(
                Q, T_rows, constants
            )
            iterations += 1
            if converged.any():
                # Of the solutions of this round, the one closest to the caller's seed.
                found = np.flatnonzero(converged)
                i = found[np.argmin(self._distance(Q[found], q_seed))]
                best_q, best_position, best_orientation = Q[i].copy(), position_error[i], orientation_error[i]
                success = True
                break
            i = int(np.argmin(error))
            if error[i] < best_error:
                best_q, best_error = Q[i].copy(), error[i]
                best_position, best_orientation = position_error[i], orientation_error[i]
            for i in range(k):
                histories[i].append(error[i])
                if self._seed_exhausted(histories[i], settings.max_iterations_per_seed, settings.stagnation_window):
                    Q_next[i], histories[i] = self._random(rng, 1, bounds)[0], []
                    restarts += 1
            Q = Q_next
        return IKResult(
            best_q, success, float(best_position), float(best_orientation), iterations, restarts,
            time.perf_counter() - start,
        )  # fmt: skip

    # ------------------------------------------------------------------ many poses

    def solve_batch(
        self,
        T_targets: Union[np.ndarray, torch.Tensor],
        seeds: Optional[Union[np.ndarray, torch.Tensor]] = None,
        timeout_s: Optional[float] = None,
        position_tolerance_m: float = 1e-5,
        orientation_tolerance_rad: Optional[float] = 1e-5,
    ) -> IKResult:
        """Solve poses T_targets (N, 4, 4), all rows at once: from the network's guesses, then ``seeds``
        (N, dof), default mid-limits, then random seeds.

        ``timeout_s`` is the budget of the whole batch (default 5 ms per target). A target whose seeds are
        exhausted gets random seeds, up to ``seeds_per_stuck_target`` refined at once.
        """
        start = time.perf_counter()
        T_targets = self._check_targets(np.asarray(T_targets, dtype=np.float64), batched=True)
        n = len(T_targets)
        timeout_s = 0.005 * n if timeout_s is None else timeout_s
        self._check_tolerances(timeout_s, position_tolerance_m, orientation_tolerance_rad)
        if seeds is None:
            q_seed = np.tile(self.chain.middle, (n, 1))
        else:
            q_seed = self._project(self._check_seeds(np.asarray(seeds, dtype=np.float64), batched=True), self._limits)
            if len(q_seed) != n:
                raise ValueError(f"seeds has {len(q_seed)} rows for {n} targets")
        answers = _Answers.empty(q_seed)
        rng = np.random.default_rng(self.settings.random_seed)
        q_first = q_seed.copy() if self.network is None else self._project(self.network.predict(T_targets), self._limits)
        self._refine(
            T_targets, np.arange(n), q_first, q_seed, answers, start + timeout_s,
            self.settings.seeds_per_stuck_target, rng,
            self._kernel_constants(position_tolerance_m, orientation_tolerance_rad, self._limits),
            caller_seed_next=self.network is not None,
        )  # fmt: skip
        return IKResult(
            answers.q, answers.success, answers.position_error_m, answers.orientation_error_rad,
            answers.iterations, answers.restarts, time.perf_counter() - start,
        )  # fmt: skip

    # ------------------------------------------------------------------ the search

    def _refine(
        self, T_targets, target, Q, q_seed, answers: _Answers, deadline: float, rows_per_stuck_target: int,
        rng: np.random.Generator, constants: tuple, caller_seed_next: bool,
    ) -> None:  # fmt: skip
        """Refine rows Q (R, dof), row r aimed at T_targets[target[r]], until every target is solved or
        the deadline passes; answers (per target) are updated in place. An exhausted row is replaced by
        its target's caller seed (q_seed) if ``caller_seed_next`` and not done yet, else by a random one."""
        settings = self.settings
        n = len(T_targets)
        age = np.zeros(len(target), dtype=int)
        seed_next = np.full(len(target), caller_seed_next)
        history = np.full((max(settings.stagnation_window, settings.network_stagnation_window) + 1, len(target)), math.inf)
        while len(target) and time.perf_counter() <= deadline:
            step = single_pose.dls_step_rows if len(target) >= _PARALLEL_MIN_ROWS else single_pose.dls_step_rows_serial
            Q_next, converged, position_error, orientation_error, error = step(Q, T_targets[target], constants)
            answers.iterations[np.unique(target)] += 1

            # Each target keeps its lowest-error configuration (its answer if it never converges) ...
            best = answers.error.copy()
            np.minimum.at(best, target, error)
            answers.record((error == best[target]) & (error < answers.error[target]), target, Q,
                           position_error, orientation_error, error)  # fmt: skip
            # ... and, once rows converge, the solution closest to its seed.
            if converged.any():
                distance = np.where(converged, self._distance(Q, q_seed[target]), math.inf)
                closest = np.full(n, math.inf)
                np.minimum.at(closest, target, distance)
                winners = converged & (distance == closest[target])
                answers.record(winners, target, Q, position_error, orientation_error, error)
                answers.success[target[winners]] = True

            history = np.roll(history, -1, axis=0)
            history[-1] = error
            age += 1
            # Rows still on the network's guess (seed_next) have their own, shorter patience.
            window = np.where(seed_next, settings.network_stagnation_window, settings.stagnation_window)
            max_age = np.where(seed_next, settings.max_iterations_network_seed, settings.max_iterations_per_seed)
            earlier = history[-1 - window, np.arange(len(window))]
            exhausted = (age >= max_age) | ((age > window) & (error > 0.5 * earlier))
            keep = ~answers.success[target]
            target, Q, age, history, exhausted = target[keep], Q_next[keep], age[keep], history[:, keep], exhausted[keep]
            seed_next = seed_next[keep]
            if exhausted.any():
                to_seed, to_random = exhausted & seed_next, exhausted & ~seed_next
                Q[to_seed] = q_seed[target[to_seed]]
                seed_next[to_seed] = False
                Q[to_random] = self._random(rng, int(to_random.sum()), self._limits)
                age[exhausted] = 0
                history[:, exhausted] = math.inf
                answers.restarts += np.bincount(target[to_random], minlength=n)
                # Hard targets are a batch's tail: give each stuck one more rows, the more the fewer are
                # left, so that a step's fixed cost is spread over enough seeds.
                stuck = np.unique(target[exhausted])
                rows_each = max(rows_per_stuck_target, _TAIL_ROWS // len(np.unique(target)))
                extra = np.maximum(rows_each - np.bincount(target, minlength=n)[stuck], 0)
                new = np.repeat(stuck, extra)
                if len(new):
                    answers.restarts += np.bincount(new, minlength=n)
                    target = np.concatenate([target, new])
                    Q = np.concatenate([Q, self._random(rng, len(new), self._limits)])
                    age = np.concatenate([age, np.zeros(len(new), dtype=int)])
                    seed_next = np.concatenate([seed_next, np.zeros(len(new), dtype=bool)])
                    history = np.concatenate([history, np.full((history.shape[0], len(new)), math.inf)], axis=1)

    # ------------------------------------------------------------------ helpers

    def _kernel_constants(
        self, position_tolerance_m: float, orientation_tolerance_rad: Optional[float], bounds: JointBounds
    ) -> tuple:
        """The arguments of single_pose.dls_step after (q, T_target)."""
        chain, settings = self.chain, self.settings
        return (
            *chain.kernel_constants, chain.reach_m, orientation_tolerance_rad is None, position_tolerance_m,
            orientation_tolerance_rad or 0.0, settings.damping, settings.error_damping, *bounds,
        )  # fmt: skip

    def _narrowed(self, lower: Optional[np.ndarray], upper: Optional[np.ndarray]) -> JointBounds:
        """A call's joint bounds from its ``lower``/``upper`` (either may be None: the chain's limits)."""
        chain = self.chain
        lower = chain.lower if lower is None else np.asarray(lower, dtype=np.float64)
        upper = chain.upper if upper is None else np.asarray(upper, dtype=np.float64)
        for name, values in (("lower", lower), ("upper", upper)):
            if values.shape != (chain.dof,) or not np.isfinite(values).all():
                raise ValueError(f"{name} must be {chain.dof} finite numbers for the joints {chain.joint_names}")
        for j, joint in enumerate(chain.joint_names):
            outside = self._bounded[j] and (lower[j] < chain.lower[j] or upper[j] > chain.upper[j])
            if lower[j] > upper[j] or outside:
                raise ValueError(
                    f"joint {joint!r}: bounds [{lower[j]:.6g}, {upper[j]:.6g}] are empty or outside its limits "
                    f"[{chain.lower[j]:.6g}, {chain.upper[j]:.6g}]"
                )
        # A continuous joint stays unbounded only when the window is still a full turn.
        bounded = self._bounded | (upper - lower < 2 * math.pi)
        bounds = JointBounds(lower.copy(), np.where(bounded, upper, lower + 2 * math.pi), bounded)
        # Read-only like the chain's limits: numba compiles per array type, and writability is part of it.
        for array in (bounds.lower, bounds.upper):
            array.setflags(write=False)
        return bounds

    @staticmethod
    def _random(rng: np.random.Generator, n: int, bounds: JointBounds) -> np.ndarray:
        """n configurations drawn uniformly within the bounds (one turn for continuous joints): (n, dof)."""
        return rng.uniform(bounds.lower, bounds.upper, size=(n, len(bounds.lower)))

    def _project(self, q: np.ndarray, bounds: JointBounds) -> np.ndarray:
        """Clamp q (..., dof) into the bounds; continuous joints first turned into [lower, lower + 2 pi)."""
        turned = np.where(self._bounded, q, bounds.lower + (q - bounds.lower) % (2 * math.pi))
        return np.where(bounds.bounded, np.clip(turned, bounds.lower, bounds.upper), turned)

    def _distance(self, q: np.ndarray, q_seed: np.ndarray) -> np.ndarray:
        """Joint-space distance (..., dof) -> (...), continuous joints the short way round."""
        d = q - q_seed
        d = np.where(self._bounded, d, (d + math.pi) % (2 * math.pi) - math.pi)
        return np.linalg.norm(d, axis=-1)

    @staticmethod
    def _seed_exhausted(errors: list, max_iterations: int, window: int) -> bool:
        """A seed is replaced after max_iterations steps, or when its error did not halve over ``window``."""
        return len(errors) >= max_iterations or (len(errors) > window and errors[-1] > 0.5 * errors[-1 - window])

    def _check_targets(self, T: np.ndarray, batched: bool) -> np.ndarray:
        name = "T_targets" if batched else "T_target"
        expected = "(N, 4, 4)" if batched else "(4, 4)"
        if T.shape[-2:] != (4, 4) or T.ndim != (3 if batched else 2):
            raise ValueError(f"{name} has shape {T.shape}; expected {expected}")
        T = np.ascontiguousarray(T)
        finite, orthonormality, det, bottom = single_pose.rigidity_errors(T if batched else T[None])
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
