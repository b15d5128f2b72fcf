"""Goal streams: each goal solved from the last command, within the joints' step limits, never a jump.

A ``Tracker`` turns a stream of tip poses (4x4, base frame) into a stream of joint commands a robot can
follow. Each command starts from the previous one and moves no joint farther than its step limit: its
velocity limit (the URDF's, rad/s or m/s) scaled by ``velocity_scale`` times the time since the last
command, plus what the joint left unused of the earlier commands' limits, at most ``max_step_dt_s`` worth
in all (so goals that arrive in a burst are not held back, and no run of commands moves a joint faster on
average than its limit); or ``step_without_velocity_limit`` (rad or m) per command where the URDF gives
no velocity. Within that window a few damped-least-squares steps go towards the goal: the command is exact
when they reach it, else the configuration of the window that brings the tip closest (position over the
reach, plus rotation), so the arm keeps moving towards a goal that is out of reach, on another branch or
beyond a singularity, and is exact again once the goal is within reach of the window. Where the steps stall
short of the goal (a local minimum, not a step limit), a short full solve looks for a solution and the
arm moves towards it in joint space, within the step limits. A command the caller's acceptance test
refuses (a collision) is not given: the arm holds.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import NamedTuple, Optional

import numpy as np

from ik_neural.kernels.tracking import (
    HELD_BY_JOINT_LIMIT,
    HELD_BY_REACH,
    HELD_BY_STEP_LIMIT,
    NOT_HELD,
    dls_steps,
    step_window,
    track,
    within_window,
)
from ik_neural.joint_bounds import frozen
from ik_neural.query import AcceptanceTest, Tolerance
from ik_neural.solver import IKSolver, checked_targets

EXACT, APPROXIMATE, HELD, UNSOLVED = "exact", "approximate", "held", "unsolved"
"""What a command is: within the tolerances of its goal; the closest the window allows; the last command
again (the step was refused); no command (no previous command or state, and the goal was not solved)."""

# Why a command is approximate: what held the closest configuration of the window back.
STEP_LIMIT = "step limit: the goal moved faster than the joints may"
JOINT_LIMIT = "joint limits"
OUT_OF_REACH = "out of reach (or not reached at a singularity): the closest pose"
TO_SOLUTION = "moving within the step limits to a solution the local steps did not reach"
COLLISION = "the step collides"
_REASONS = {NOT_HELD: "", HELD_BY_STEP_LIMIT: STEP_LIMIT, HELD_BY_JOINT_LIMIT: JOINT_LIMIT, HELD_BY_REACH: OUT_OF_REACH}

# Steps that leave more than this fraction of the error they started from have stalled (a local minimum, or
# the closest pose to a goal out of reach): a full solve looks for a solution.
_STALLED = 0.99

# After a full solve that found nothing (most often: the goal is out of reach), the next one waits 2, 4, ...
# commands, at most this many: a stream that stays out of reach costs a solve's budget now and then, not
# on every command.
_MOST_COMMANDS_BETWEEN_RESCUES = 64

DEFAULT_TOLERANCE = Tolerance()
"""1e-5 m and 1e-5 rad, as the solver's."""


@dataclass(frozen=True)
class TrackerSettings:
    """How far a command may move from the last one, and how hard it tries to reach its goal."""

    velocity_scale: float = 1.0
    """Fraction of each joint's velocity limit (the URDF's ``<limit velocity>``) a command may use."""
    max_step_dt_s: float = 0.02
    """Most time a step limit counts, s: the time since the last command plus what earlier commands left
    unused. After a pause, or after slow tracking, a command moves a joint at most this long at its
    (scaled) velocity."""
    step_without_velocity_limit: float = 0.05
    """Step limit per command of a joint whose URDF gives no velocity limit, rad (m for a prismatic joint)."""
    max_steps: int = 8
    """DLS steps per command towards the goal, within the window."""
    centring_gain: float = 0.005
    """Fraction of the way to the middle of the joint limits each command moves the joints along the arm's
    self-motion (the null space of the tip's Jacobian; only a redundant arm has one), within half its step
    limit: without it a 7-joint arm's commands drift towards joint limits over a long stream. 0: none."""
    first_timeout_s: float = 0.05
    """Budget of the first command's full solve (no previous command or state to step from), s."""
    rescue_timeout_s: float = 0.0002
    """Budget of the full solve tried when the steps stall short of the goal (not at a step limit), s. After
    one that found nothing, the next is tried 2, 4, ... up to 64 commands later."""

    def __post_init__(self) -> None:
        positive = {
            "velocity_scale": self.velocity_scale,
            "max_step_dt_s": self.max_step_dt_s,
            "step_without_velocity_limit": self.step_without_velocity_limit,
            "first_timeout_s": self.first_timeout_s,
            "rescue_timeout_s": self.rescue_timeout_s,
        }
        for name, value in positive.items():
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"TrackerSettings.{name} must be a positive number, got {value!r}")
        if not (math.isfinite(self.centring_gain) and 0 <= self.centring_gain <= 1):
            raise ValueError(f"TrackerSettings.centring_gain must be within [0, 1], got {self.centring_gain!r}")
        if self.max_steps < 1:
            raise ValueError(f"TrackerSettings.max_steps must be at least 1, got {self.max_steps!r}")


class TrackerCommand(NamedTuple):
    """One command of a goal stream (immutable; a named tuple: cheap to make, 1 kHz loops make many).

    ``q`` (dof,) the joint command (None only when ``status`` is UNSOLVED); ``status`` EXACT, APPROXIMATE,
    HELD or UNSOLVED; ``reason`` why it is not exact ("" when it is); ``position_error_m`` and
    ``orientation_error_rad`` FK's errors of ``q`` to the goal (inf for UNSOLVED); ``steps`` DLS steps taken.
    """

    q: Optional[np.ndarray]
    status: str
    reason: str
    position_error_m: float
    orientation_error_rad: float
    steps: int

    @property
    def exact(self) -> bool:
        return self.status == EXACT


class Tracker:
    """Joint commands for a stream of goal poses, from ``solver``'s chain. Not thread-safe: one stream, one
    tracker (``step`` and ``reset`` from one thread at a time)."""

    def __init__(
        self,
        solver: IKSolver,
        tolerance: Tolerance = DEFAULT_TOLERANCE,
        settings: TrackerSettings = TrackerSettings(),
        stop: Optional[threading.Event] = None,
    ) -> None:
        chain = solver.chain
        self.solver, self.tolerance, self.settings, self._stop = solver, tolerance, settings, stop
        # Continuous joints have no limits: the window alone bounds them, on the turn they are on.
        self._lower = frozen(np.where(chain.is_continuous, -math.inf, chain.lower))
        self._upper = frozen(np.where(chain.is_continuous, math.inf, chain.upper))
        bounded = frozen(np.ones(chain.dof), dtype=bool)
        # The step's task, tolerances, damping and joint limits; each command adds its window.
        self._step = (*solver.step_settings(tolerance, chain.bounds)[:-3], self._lower, self._upper, bounded)
        limited = np.isfinite(chain.velocity_limits)
        # step limit (dof,) = rate * dt + fixed: rad/s (m/s) where the URDF gives a velocity, else per command.
        self._rate = np.where(limited, settings.velocity_scale * np.where(limited, chain.velocity_limits, 0.0), 0.0)
        self._fixed = np.where(limited, 0.0, settings.step_without_velocity_limit)
        self._centre = chain.middle.copy()  # writable, as every command is (numba compiles per array type)
        self._q: Optional[np.ndarray] = None
        self._unused = np.zeros(chain.dof)  # step limit left unused by earlier commands, rad or m
        self._heading: Optional[np.ndarray] = None  # the solution a stalled stream is moving to (dof,)
        self._failed_rescues = 0  # full solves in a row that found nothing
        self._commands_to_next_rescue = 0
        # track's arguments after the command's own, gathered once: a 1 kHz loop has no time to spare.
        self._track_constants = (
            chain.arrays,
            self._step,
            self._rate,
            self._fixed,
            settings.max_step_dt_s,
            self._centre,
            settings.centring_gain,
            settings.max_steps,
        )
        # Where the first joint is (base frame, m): no tip is farther from it than the chain's reach.
        self._first_joint_m = chain.joints[0].T_prev_joint[:3, 3].copy()

    def warm_up(self) -> None:
        """Compile (or load from numba's cache) the step's kernel, so that the first goal does not wait for it."""
        chain = self.solver.chain
        q = chain.middle.copy()  # writable, as every command is (numba compiles per array type)
        track(q, chain.forward(q), 0.0, self._unused, *self._track_constants)
        lower, upper = self.window(q, 0.0)
        within_window(q, q, lower, upper)
        self._errors(q, chain.forward(q), lower, upper)

    @property
    def q(self) -> Optional[np.ndarray]:
        """The last command (dof,), or the state given to ``reset``; None before either."""
        return self._q

    def reset(self, q: Optional[np.ndarray]) -> None:
        """Step from ``q`` (dof,), a measured state, next; None: forget the last command (the next goal is
        solved in full)."""
        if q is not None:
            q = np.array(q, dtype=np.float64)
            if q.shape != (self.solver.chain.dof,) or not np.isfinite(q).all():
                raise ValueError(
                    f"reset: q must be {self.solver.chain.dof} finite joint values for {self.solver.chain.joint_names}"
                )
        self._q, self._heading = q, None
        self._failed_rescues = self._commands_to_next_rescue = 0
        self._unused[:] = 0.0

    def step(self, T_target: np.ndarray, dt_s: float, accept: Optional[AcceptanceTest] = None) -> TrackerCommand:
        """The next command towards T_target (4, 4), the tip's pose in the base frame, ``dt_s`` seconds after
        the last command (inf: long ago). ``accept`` (q -> bool, e.g. a collision test) is asked of the
        command; refused, the arm holds. The command becomes the start of the next step (a HELD or UNSOLVED
        one changes nothing)."""
        if not dt_s >= 0:  # NaN fails too
            raise ValueError(f"dt_s must be a number of seconds >= 0 (inf: long ago), got {dt_s!r}")
        # The kernel takes a writable, C-contiguous float64 (4, 4) array as it is (numba would compile another
        # variant for any other array type); anything else is checked and copied into one first.
        if not (
            type(T_target) is np.ndarray
            and T_target.dtype == np.float64
            and T_target.shape == (4, 4)
            and T_target.flags.c_contiguous
            and T_target.flags.writeable
        ):
            T_target = np.array(checked_targets(T_target, batched=False))
        if self._q is None:
            return self._first(T_target, accept)
        q_last = self._q
        q, rigid, converged, position_error, orientation_error, steps, remaining, held_by, unused = track(
            q_last, T_target, dt_s, self._unused, *self._track_constants
        )
        if not rigid:
            checked_targets(T_target, batched=False)  # raises, naming what is wrong with T_target
        refused = accept is not None and not accept(q)
        if converged and not refused:  # the usual command, first and with as little work as can be
            self._q, self._unused, self._heading = q, unused[0], None
            self._failed_rescues = self._commands_to_next_rescue = 0
            return TrackerCommand(q, EXACT, "", position_error, orientation_error, steps)
        reason = _REASONS[held_by]
        if converged:
            self._heading = None
        stalled = not converged and held_by != HELD_BY_STEP_LIMIT and remaining > _STALLED
        if (refused or stalled or (self._heading is not None and not converged)) and self._may_rescue(T_target):
            # Blocked, or stalled short of the goal (a local minimum): towards a solution found anew (an
            # accepted one), and on towards it while the steps do not reach the goal.
            rescued = self._towards_a_solution(q_last, T_target, dt_s, accept)
            if rescued is not None and (accept is None or accept(rescued[0])):
                q, converged, position_error, orientation_error, _, _ = rescued
                reason, refused = ("" if converged else TO_SOLUTION), False
                unused[0] = np.maximum(unused[1] - np.abs(q - q_last), 0.0)
        if refused:
            self._unused = unused[1]
            return TrackerCommand(q_last, HELD, COLLISION, position_error, orientation_error, steps)
        self._q, self._unused = q, unused[0]
        status = EXACT if converged else APPROXIMATE
        return TrackerCommand(q, status, reason, position_error, orientation_error, steps)

    @property
    def largest_step(self) -> np.ndarray:
        """The most one command may move each joint (dof,), rad or m: its scaled velocity limit times
        ``max_step_dt_s``, or ``step_without_velocity_limit``."""
        return self._rate * self.settings.max_step_dt_s + self._fixed

    def window(self, q_last: np.ndarray, dt_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Where the next command may go from ``q_last`` (dof,) ``dt_s`` after the last command: (lower,
        upper) (dof,), the step limits within the joint limits. A joint found beyond its limits may only move
        back towards them."""
        longest_s = self.settings.max_step_dt_s
        limits = (self._lower, self._upper)
        _, lower, upper = step_window(q_last, dt_s, self._unused, self._rate, self._fixed, longest_s, *limits)
        return lower, upper

    def _errors(self, q: np.ndarray, T_target: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> tuple:
        """q's errors to T_target as ``kernels.tracking.dls_steps`` gives them with no step taken (q, converged,
        position error m, orientation error rad, 0, remaining), within the window [lower, upper]."""
        return dls_steps(q, T_target, self.solver.chain.arrays, self._step, lower, upper, 0, np.zeros_like(q))

    def _may_rescue(self, T_target: np.ndarray) -> bool:
        """Whether a full solve may look for a solution now: not while an earlier one that found nothing
        waits out its commands, nor where the target is certainly out of reach (farther from the first
        joint than the chain's reach, an upper bound)."""
        if self._commands_to_next_rescue > 0:
            self._commands_to_next_rescue -= 1
            return False
        return float(np.linalg.norm(T_target[:3, 3] - self._first_joint_m)) <= self.solver.chain.reach_m

    def _towards_a_solution(
        self, q_last: np.ndarray, T_target: np.ndarray, dt_s: float, accept: Optional[AcceptanceTest]
    ) -> Optional[tuple[np.ndarray, bool, float, float, int, float]]:
        """Where the steps stalled short of the goal: a short full solve (from the solution the stream is
        already moving to, else from q_last) and, if it finds one, the move from q_last straight towards it
        in joint space, shortened to the window of ``dt_s``, with its errors (``_errors``); None
        when no solution was found (the goal may be out of reach)."""
        result = self.solver.solve(
            T_target,
            seed=q_last if self._heading is None else self._heading,
            seed_first=True,
            tolerance=self.tolerance,
            timeout_s=self.settings.rescue_timeout_s,
            accept=accept,
            stop=self._stop,
        )
        if not result.success:
            self._heading = None
            self._failed_rescues += 1
            self._commands_to_next_rescue = min(2**self._failed_rescues, _MOST_COMMANDS_BETWEEN_RESCUES)
            return None
        self._heading, self._failed_rescues = result.q, 0
        lower, upper = self.window(q_last, dt_s)
        q = within_window(q_last, result.q, lower, upper)
        return self._errors(q, T_target, lower, upper)

    def _first(self, T_target: np.ndarray, accept: Optional[AcceptanceTest]) -> TrackerCommand:
        """With nothing to step from: a full solve, nearest mid-limits (no step limit can hold)."""
        result = self.solver.solve(
            T_target,
            tolerance=self.tolerance,
            timeout_s=self.settings.first_timeout_s,
            accept=accept,
            stop=self._stop,
        )
        if not result.success:
            reason = "no previous command or state to step from, and the goal was not solved"
            return TrackerCommand(None, UNSOLVED, reason, math.inf, math.inf, result.iterations)
        self._q = result.q
        return TrackerCommand(
            result.q, EXACT, "", result.position_error_m, result.orientation_error_rad, result.iterations
        )
