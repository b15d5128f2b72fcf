"""Goal streams: each goal solved from the last command, within the joints' step limits, never a jump.

A ``Tracker`` turns a stream of tip poses (4x4, base frame) into a stream of joint commands a robot can
follow. Each command starts from the previous one and moves no joint farther than its step limit: its
velocity limit (the URDF's, rad/s or m/s) scaled by ``velocity_scale`` times the time since the last
command (counted at most ``max_step_dt_s``), or ``step_without_velocity_limit`` (rad or m) per command
where the URDF gives none. Within that window a few damped-least-squares steps go towards the goal: the
command is exact when they reach it, else the configuration of the window that brings the tip closest
(position over the reach, plus rotation), so the arm keeps moving towards a goal that is out of reach, on
another branch or beyond a singularity, and is exact again once the goal is within reach of the window. A
command the caller's acceptance test refuses (a collision) is not given: the arm holds.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ik_neural.kernels.dls import dls_steps
from ik_neural.query import AcceptanceTest, Tolerance
from ik_neural.solver import IKSolver, checked_targets

EXACT, APPROXIMATE, HELD, UNSOLVED = "exact", "approximate", "held", "unsolved"
"""What a command is: within the tolerances of its goal; the closest the window allows; the last command
again (the step was refused); no command (no previous command or state, and the goal was not solved)."""

# Why a command is approximate: what held the closest configuration of the window back.
STEP_LIMIT = "step limit: the goal moved faster than the joints may"
JOINT_LIMIT = "joint limits"
OUT_OF_REACH = "out of reach (or not reached at a singularity): the closest pose"
COLLISION = "the step collides"

DEFAULT_TOLERANCE = Tolerance()
"""1e-5 m and 1e-5 rad, as the solver's."""


@dataclass(frozen=True)
class TrackerSettings:
    """How far a command may move from the last one, and how hard it tries to reach its goal."""

    velocity_scale: float = 1.0
    """Fraction of each joint's velocity limit (the URDF's ``<limit velocity>``) a command may use."""
    max_step_dt_s: float = 0.05
    """Longest time since the last command a step limit counts, s: after a pause, the first command moves
    no farther than this much time at full velocity allows."""
    step_without_velocity_limit: float = 0.05
    """Step limit per command of a joint whose URDF gives no velocity limit, rad (m for a prismatic joint)."""
    max_steps: int = 8
    """DLS steps per command towards the goal, within the window."""
    first_timeout_s: float = 0.05
    """Budget of the first command's full solve (no previous command or state to step from), s."""

    def __post_init__(self) -> None:
        positive = {
            "velocity_scale": self.velocity_scale,
            "max_step_dt_s": self.max_step_dt_s,
            "step_without_velocity_limit": self.step_without_velocity_limit,
            "first_timeout_s": self.first_timeout_s,
        }
        for name, value in positive.items():
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"TrackerSettings.{name} must be a positive number, got {value!r}")
        if self.max_steps < 1:
            raise ValueError(f"TrackerSettings.max_steps must be at least 1, got {self.max_steps!r}")


@dataclass(frozen=True)
class TrackerCommand:
    """One command of a goal stream.

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
        # The step's tolerances and damping, checked once (per-axis tolerances are refused here); each
        # command appends its window.
        self._step_prefix = solver.step_settings(tolerance, chain.bounds)[:5]
        limited = np.isfinite(chain.velocity_limits)
        # step limit (dof,) = rate * dt + fixed: rad/s (m/s) where the URDF gives a velocity, else per command.
        self._rate = np.where(limited, settings.velocity_scale * np.where(limited, chain.velocity_limits, 0.0), 0.0)
        self._fixed = np.where(limited, 0.0, settings.step_without_velocity_limit)
        # Continuous joints have no limits: the window alone bounds them, on the turn they are on.
        self._lower = np.where(chain.is_continuous, -math.inf, chain.lower)
        self._upper = np.where(chain.is_continuous, math.inf, chain.upper)
        self._bounded = np.ones(chain.dof, dtype=bool)
        self._bounded.setflags(write=False)  # as every bounds array the kernels see (one compiled variant)
        self._q: Optional[np.ndarray] = None

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
        self._q = q

    def step(self, T_target: np.ndarray, dt_s: float, accept: Optional[AcceptanceTest] = None) -> TrackerCommand:
        """The next command towards T_target (4, 4), the tip's pose in the base frame, ``dt_s`` seconds after
        the last command (inf: long ago; counted at most ``max_step_dt_s``). ``accept`` (q -> bool, e.g. a collision test) is asked of the command; refused, the
        arm holds. The command becomes the start of the next step (a HELD or UNSOLVED one changes nothing)."""
        if not dt_s >= 0:  # NaN fails too
            raise ValueError(f"dt_s must be a number of seconds >= 0 (inf: long ago), got {dt_s!r}")
        T_target = checked_targets(T_target, batched=False)
        if self._q is None:
            return self._first(T_target, accept)
        q_last = self._q
        lower, upper = self.window(q_last, dt_s)
        step = (*self._step_prefix, lower, upper, self._bounded)
        q, converged, position_error, orientation_error, steps = dls_steps(
            q_last, T_target, self.solver.chain.arrays, step, self.settings.max_steps
        )
        if accept is not None and not accept(q):
            return TrackerCommand(q_last, HELD, COLLISION, position_error, orientation_error, steps)
        self._q = q
        if converged:
            return TrackerCommand(q, EXACT, "", position_error, orientation_error, steps)
        return TrackerCommand(
            q, APPROXIMATE, self._held_back_by(q, lower, upper), position_error, orientation_error, steps
        )

    def window(self, q_last: np.ndarray, dt_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Where the next command may go from ``q_last`` (dof,) after ``dt_s``: (lower, upper) (dof,), the
        step limits within the joint limits. A joint found beyond its limits may only move back towards them."""
        step = self._rate * min(dt_s, self.settings.max_step_dt_s) + self._fixed
        lower = np.maximum(q_last - step, np.minimum(self._lower, q_last))
        upper = np.minimum(q_last + step, np.maximum(self._upper, q_last))
        lower.setflags(write=False)
        upper.setflags(write=False)
        return lower, upper

    def _held_back_by(self, q: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> str:
        """Why the closest configuration q of the window [lower, upper] is not exact."""
        at_lower, at_upper = q <= lower, q >= upper
        if (at_lower & (lower > self._lower)).any() or (at_upper & (upper < self._upper)).any():
            return STEP_LIMIT
        if (at_lower | at_upper).any():
            return JOINT_LIMIT
        return OUT_OF_REACH

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
