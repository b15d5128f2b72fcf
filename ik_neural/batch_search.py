"""Many poses at once (``IKSolver.solve_batch``): rows of seeds stepped together, a few steps per kernel
call, a row per target through its first seeds, then random ones, the hard targets of a batch's tail
given more rows. Also the two rules for rows of candidates that the one-pose restarts share: which
converged row a target keeps (``closest_converged``) and which the acceptance test takes
(``accepted_rows``).

Poses are 4x4 transforms of the tip in the base frame; lengths in metres, angles in radians. Seeds are
given up by the one rule of ``patience.py``, applied to arrays of rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ik_neural.joint_bounds import JointBounds
from ik_neural.kernels.dls import dls_steps_rows, dls_steps_rows_serial, ranked_guesses, ranked_guesses_serial
from ik_neural.patience import Budget, Patience, exhausted
from ik_neural.query import AcceptanceTest

# Below this many rows a round runs on one thread: waking a thread pool costs more than it saves, and far
# more when other processes hold the cores (spinning threads then wait for a time slice). Measured, 2 cores,
# four draws of 4096 targets at 1e-6, rounds of six steps: Panda 230 ms at 128 rows, 206 at 64, 209 at 32,
# 203 at 16; UR5e 258, 255, 248, 252 (with one step a round, 128 was best: 61 000 solves/s, 46 300 at 512).
PARALLEL_MIN_ROWS = 32
# Rows kept busy when only a few hard targets are left (a batch's tail): a near-singular target may need
# hundreds of random seeds, and a round's bookkeeping costs as much as many rows' steps. With rounds of
# several steps, fewer rows pay: four draws of 4096 targets at 1e-6, Panda 213 ms at 128 rows, 212 at
# 256, 224 at 512; UR5e 270, 290, 288 (one run each; 1024 rows: Panda 1.2x the time of 256).
_TAIL_ROWS = 128
# Steps a round takes per row in one kernel call (a row stopping where it converges): a round's bookkeeping
# in Python costs as much as a few hundred rows' steps, and most targets need two or three steps from the
# network's guess. Measured, Panda, 4096 targets, four draws, 1e-5: six steps 232 ms in all, four 252,
# eight 242, one step while 600 rows or more and six below 248; one step a round throughout 1.2x that
# last (one draw).
_STEPS_PER_ROUND = 6


class RankedGuesses:
    """The network's K guesses for N targets, ranked per target when its schedule first reaches them: ordered
    lowest error first, the first stepped once (``kernels.dls.ranked_guesses``)."""

    def __init__(self, guesses: np.ndarray, T_targets: np.ndarray, arrays: tuple, step: tuple) -> None:
        self._guesses, self._T_targets, self._arrays, self._step = guesses, T_targets, arrays, step
        self.seeds = np.empty_like(guesses)  # (N, K, dof): the ranked guesses, rows of targets ranked so far
        self._ranked = np.zeros(len(guesses), dtype=bool)

    @property
    def heads(self) -> int:
        return self._guesses.shape[1]

    def rank(self, targets: np.ndarray) -> np.ndarray:
        """Rank the guesses of those of ``targets`` not ranked yet (one call: the guesses' FK errors, a step
        of the best); returns them."""
        new = np.unique(targets[~self._ranked[targets]])
        if len(new):
            kernel = ranked_guesses if len(new) * self.heads >= PARALLEL_MIN_ROWS else ranked_guesses_serial
            self.seeds[new] = kernel(self._guesses[new], self._T_targets[new], self._arrays, self._step)
            self._ranked[new] = True
        return new


@dataclass(frozen=True)
class FirstSeeds:
    """The seeds each target's row goes through before random ones, in order: ``stages`` of seeds
    (N, 1, dof), each with its patience; the network's are views of ``ranked``'s buffer (filled per target
    when it enters the first of them, ``network_stage``; -1 without a network). Random seeds then go by
    ``random_patience``."""

    stages: list[tuple[np.ndarray, Patience]]
    network_stage: int
    ranked: Optional[RankedGuesses]
    random_patience: Patience


@dataclass
class BatchAnswers:
    """Per target (N,): the answer so far (best configuration, or the solution once found) and counters."""

    q: np.ndarray
    position_error_m: np.ndarray
    orientation_error_rad: np.ndarray
    error: np.ndarray  # normalised error norm of q, the quantity "best" minimises
    success: np.ndarray
    iterations: np.ndarray
    restarts: np.ndarray

    @classmethod
    def empty(cls, q_seed: np.ndarray) -> "BatchAnswers":
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


def closest_converged(converged: np.ndarray, distance: np.ndarray, target: np.ndarray, n: int) -> np.ndarray:
    """Of rows (R,) aimed at targets ``target`` (R,) of n, the converged row nearest its target's seed (by
    ``distance`` (R,)): a mask (R,) with one row per target that has any converged."""
    distance = np.where(converged, distance, math.inf)
    closest = np.full(n, math.inf)
    np.minimum.at(closest, target, distance)
    return converged & (distance == closest[target])


def accepted_rows(converged: np.ndarray, Q: np.ndarray, accept: Optional[AcceptanceTest]) -> np.ndarray:
    """The converged rows (R,) of Q (R, dof) that ``accept`` accepts (all of them without one)."""
    if accept is None:
        return converged
    return np.array([bool(c) and bool(accept(q)) for c, q in zip(converged, Q)])


class _BatchRows:
    """``solve_batch``'s rows, each refining one seed for one target: target (R,), Q (R, dof), stage (R,)
    (the index of its first seed, or ``BatchSearch.random_stage``), age (R,) (steps on its seed) and
    history (window + 1, R) (the errors of its last steps, newest last)."""

    def __init__(self, target: np.ndarray, Q: np.ndarray, stage: np.ndarray, history_length: int) -> None:
        self.target, self.Q, self.stage = target, Q, stage
        self.age = np.zeros(len(target), dtype=int)
        self.history = np.full((history_length, len(target)), math.inf)

    def push(self, errors: np.ndarray, windows: np.ndarray, max_iterations: np.ndarray) -> np.ndarray:
        """Record a call's errors (steps, R), step by step; which rows are exhausted (R,) after any of them,
        by ``exhausted`` with the patience of each row's stage (``windows``, ``max_iterations``, by stage)."""
        window, limit = windows[self.stage], max_iterations[self.stage]
        columns = np.arange(len(window))
        done = np.zeros(len(window), dtype=bool)
        for error in errors:
            self.history = np.roll(self.history, -1, axis=0)
            self.history[-1] = error
            self.age += 1
            done |= exhausted(self.age, error, self.history[-1 - window, columns], limit)
        return done

    def keep(self, keep: np.ndarray, Q_next: np.ndarray) -> None:
        """Go on with the rows ``keep`` (R,) (bool), at their next configurations Q_next (R, dof)."""
        self.target, self.Q, self.stage = self.target[keep], Q_next[keep], self.stage[keep]
        self.age, self.history = self.age[keep], self.history[:, keep]

    def restart(self, rows: np.ndarray) -> None:
        """The rows ``rows`` (bool) start on new seeds."""
        self.age[rows] = 0
        self.history[:, rows] = math.inf

    def add(self, target: np.ndarray, Q: np.ndarray, stage: int) -> None:
        """New rows for targets ``target`` (k,) at Q (k, dof), all on ``stage``."""
        k = len(target)
        self.target, self.Q = np.concatenate([self.target, target]), np.concatenate([self.Q, Q])
        self.stage = np.concatenate([self.stage, np.full(k, stage)])
        self.age = np.concatenate([self.age, np.zeros(k, dtype=int)])
        self.history = np.concatenate([self.history, np.full((self.history.shape[0], k), math.inf)], axis=1)


class BatchSearch:
    """One ``solve_batch`` call's search: a row per target through its first seeds (``FirstSeeds``: the
    network's ranked guesses, a stage each, and the caller's seed, in the solver's order), each until its
    patience runs out, then random seeds, until every target is solved or the budget is spent."""

    def __init__(
        self,
        T_targets: np.ndarray,
        first: FirstSeeds,
        q_seed: np.ndarray,
        bounds: JointBounds,
        step: tuple,
        arrays: tuple,
        accept: Optional[AcceptanceTest],
        answers: BatchAnswers,
        rows_per_stuck_target: int,
        rng: np.random.Generator,
    ) -> None:
        """N targets T_targets (N, 4, 4) from their ``first`` seeds, ``q_seed`` (N, dof) their callers' (the
        answers' distance is to it), within ``bounds``; the call's kernel settings ``step`` and the chain's
        ``arrays``; ``answers`` (per target) updated in place; random seeds from ``rng``."""
        self.T_targets, self.ranked, self.q_seed, self.bounds, self.step = T_targets, first.ranked, q_seed, bounds, step
        self.accept, self.answers, self.n, self.arrays = accept, answers, len(T_targets), arrays
        self.seeds_per_stuck_target, self.rng = rows_per_stuck_target, rng
        self.stages, self.network_stage = first.stages, first.network_stage
        self.random_stage = len(self.stages)  # the stage of the rows on random seeds
        patiences = [patience for _, patience in self.stages] + [first.random_patience]
        self.windows = np.array([p.window for p in patiences])
        self.max_iterations = np.array([p.max_iterations for p in patiences])

    def run(self, budget: Budget) -> None:
        answers, target = self.answers, np.arange(self.n)
        self.enter(0, target)
        rows = _BatchRows(target, self.stages[0][0][:, 0].copy(), np.zeros(self.n, dtype=int), self.windows.max() + 1)
        while len(rows.target) and not budget.spent():
            rows.Q, Q_next, converged, position_error, orientation_error, errors = self.step_rows(rows)
            error, rejected = errors[-1], None
            if self.accept is not None and converged.any():
                # A rejected candidate is never an answer, and its seed is done (as if exhausted).
                rejected = converged & ~accepted_rows(converged, rows.Q, self.accept)
                converged, error = converged & ~rejected, np.where(rejected, math.inf, error)
            self.record(rows, converged, position_error, orientation_error, error)
            done = rows.push(errors, self.windows, self.max_iterations)
            if rejected is not None:
                done |= rejected
            keep = ~answers.success[rows.target]
            rows.keep(keep, Q_next)
            done = done[keep]
            if done.any():
                self.move_on(rows, done)

    def step_rows(self, rows: _BatchRows) -> tuple:
        """A round: each row stepped up to ``_STEPS_PER_ROUND`` times (``kernels.dls.dls_steps_rows``), the
        targets' iterations counted. Returns the kernel's outputs but ``taken``: (Q_judged, Q_next,
        converged, position errors, orientation errors, errors (steps, R))."""
        kernel = dls_steps_rows if len(rows.target) >= PARALLEL_MIN_ROWS else dls_steps_rows_serial
        *outputs, taken = kernel(rows.Q, self.T_targets[rows.target], self.arrays, self.step, _STEPS_PER_ROUND)
        steps_of_target = np.zeros(self.n, dtype=int)  # a target's rows step side by side: its most count
        np.maximum.at(steps_of_target, rows.target, taken)
        self.answers.iterations += steps_of_target
        return tuple(outputs)

    def enter(self, stage: int, targets: np.ndarray) -> None:
        """``targets`` enter ``stage``: their guesses are ranked first if it is the network's first stage
        (a round: an iteration)."""
        if stage == self.network_stage:
            self.answers.iterations[self.ranked.rank(targets)] += 1

    def record(self, rows: _BatchRows, converged, position_error, orientation_error, error) -> None:
        """Of a step's rows (R,): each target keeps its lowest-error configuration (its answer if it never
        converges) and, once rows converge, the solution closest to its seed."""
        answers, target = self.answers, rows.target
        best = answers.error.copy()
        np.minimum.at(best, target, error)
        lower = (error == best[target]) & (error < answers.error[target])
        answers.record(lower, target, rows.Q, position_error, orientation_error, error)
        if converged.any():
            distance = np.full(len(target), math.inf)  # measured for the converged rows only
            distance[converged] = self.bounds.distance(rows.Q[converged], self.q_seed[target[converged]])
            winners = closest_converged(converged, distance, target, self.n)
            answers.record(winners, target, rows.Q, position_error, orientation_error, error)
            answers.success[target[winners]] = True

    def move_on(self, rows: _BatchRows, done: np.ndarray) -> None:
        """The rows ``done`` (bool) take new seeds. A target has one row while on its first seeds: it takes
        the next stage's seed; past the last, a random one, and a stuck target more rows (``add_tail_rows``)."""
        stage = rows.stage
        stage[done] = np.minimum(stage[done] + 1, self.random_stage)
        for s, (seeds, _) in enumerate(self.stages):
            moved = np.flatnonzero(done & (stage == s))
            if len(moved):
                self.enter(s, rows.target[moved])
                rows.Q[moved] = seeds[rows.target[moved], 0]
        to_random = done & (stage == self.random_stage)
        rows.Q[to_random] = self.bounds.sample(self.rng, int(to_random.sum()))
        rows.restart(done)
        self.answers.restarts += np.bincount(rows.target[to_random], minlength=self.n)
        self.add_tail_rows(rows, np.unique(rows.target[to_random]))

    def add_tail_rows(self, rows: _BatchRows, stuck: np.ndarray) -> None:
        """Hard targets are a batch's tail: each ``stuck`` target gets more rows of random seeds, the more
        the fewer targets are left, so that a step's fixed cost is spread over enough seeds."""
        rows_each = max(self.seeds_per_stuck_target, _TAIL_ROWS // len(np.unique(rows.target)))
        extra = np.maximum(rows_each - np.bincount(rows.target, minlength=self.n)[stuck], 0)
        new = np.repeat(stuck, extra)
        if len(new):
            self.answers.restarts += np.bincount(new, minlength=self.n)
            rows.add(new, self.bounds.sample(self.rng, len(new)), self.random_stage)
