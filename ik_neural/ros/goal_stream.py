"""Goal poses to joint commands, pure: the node's goal stream without the node.

Goals arrive on a topic at up to control rates; only the newest matters. ``LatestGoal`` holds the one goal
waiting: a newer goal replaces it (superseded, never queued) and the node's goal thread takes it when it is
free. ``GoalStream`` turns a goal into a command: the goal (a ``geometry_msgs/PoseStamped``) goes through
the request layer (frames, links, the same refusals as a ``compute_ik`` request), then the ``Tracker``
steps towards it from the last command, when there is a recent one, else from the joint state heard on
joint_states, within the joints' step limits; the command is collision-checked as an ``avoid_collisions``
request is under the node's policy. A goal not reached in one step is commanded ``again`` until it is (or
no step moves the arm), unless a newer goal comes first.

No node and no DDS: messages are plain Python objects. Times are monotonic seconds.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np
from geometry_msgs.msg import PoseStamped
from moveit_msgs.msg import PositionIKRequest

from ik_neural.ros.request import CurrentState, Refusal, RequestContext, problem_of
from ik_neural.ros.scene import Scene
from ik_neural.tracker import APPROXIMATE, Tracker, TrackerCommand


# A follow-up command that moves no joint farther than this (rad or m) ends the follow-ups: the arm is as
# close to an unreachable goal as it gets.
_SETTLED_STEP = 1e-6


@dataclass(frozen=True)
class Goal:
    """A goal pose as it arrived: the message and when (monotonic s)."""

    msg: PoseStamped
    arrival_s: float


class LatestGoal:
    """The newest goal not yet taken. ``put`` replaces a waiting goal (it is superseded: counted, never
    commanded); ``take`` waits for one. Thread-safe."""

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self._goal: Optional[Goal] = None
        self._closed = False
        self.superseded = 0

    def put(self, goal: Goal) -> None:
        with self._ready:
            if self._goal is not None:
                self.superseded += 1
            self._goal = goal
            self._ready.notify()

    def take(self, timeout_s: float) -> Optional[Goal]:
        """The waiting goal, or None after ``timeout_s`` or once closed."""
        with self._ready:
            self._ready.wait_for(lambda: self._goal is not None or self._closed, timeout_s)
            goal, self._goal = self._goal, None
            return goal

    def close(self) -> None:
        """Wake every ``take`` for good: the node is stopping."""
        with self._ready:
            self._closed = True
            self._goal = None
            self._ready.notify_all()


@dataclass(frozen=True)
class StreamCommand:
    """A goal's command (``TrackerCommand``) and ``dt_s``, the time since the last command the step limits
    were sized for (s; what a trajectory point's time_from_start says)."""

    command: TrackerCommand
    dt_s: float


class GoalStream:
    """Commands for the goals of one node, one goal at a time (not thread-safe: the goal thread's)."""

    def __init__(
        self,
        context: RequestContext,
        tracker: Tracker,
        scene: Optional[Scene],
        command_timeout_s: float,
    ) -> None:
        """``scene``: the node's (None: commands are not collision-checked); ``command_timeout_s``: how long
        the last command stays the start of the next step; older, the joint state is (when one was heard)."""
        self._context, self._tracker, self._scene = context, tracker, scene
        self._command_timeout_s = command_timeout_s
        settings = context.settings
        # Checked as an avoid_collisions request is, where the node can check: with the 'check' policy.
        self._check_collisions = scene is not None and settings.avoid_collisions_policy == "check"
        # One request, its pose replaced per goal: building a PositionIKRequest (a robot state, constraints and
        # their headers) cost about 20 µs of every goal.
        self._request = PositionIKRequest(avoid_collisions=self._check_collisions)
        self._last: Optional[tuple[float, float]] = None  # the last published command's goal: (arrival s, stamp s)
        self._unreached: Optional[Goal] = None  # the last goal, while its command is on the way to it

    @property
    def following(self) -> bool:
        """Whether the last goal is not reached yet and its last command moved the arm."""
        return self._unreached is not None

    def again(self, now_s: float) -> Optional[Goal]:
        """The last goal once more, as arrived at ``now_s``, while its last command was approximate and moved
        the arm more than ``_SETTLED_STEP`` (a single goal, RViz's, is followed to the end, not one step
        towards it); else None."""
        if self._unreached is None:
            return None
        return Goal(self._unreached.msg, now_s)

    def command(self, goal: Goal, current: CurrentState) -> Union[StreamCommand, Refusal]:
        """The command for ``goal``, or why the goal is refused (as a compute_ik request would be)."""
        self._request.pose_stamped = goal.msg
        problem = problem_of(self._request, self._context, current)
        if isinstance(problem, Refusal):
            return problem
        stamp_s = _stamp_s(goal.msg)
        dt_s = self._interval_s(goal.arrival_s, stamp_s)
        if dt_s > self._command_timeout_s and current.known:
            self._tracker.reset(current.q)
        accept = self._scene.collision_free((), problem.other_positions) if problem.avoid_collisions else None
        q_last = self._tracker.q
        command = self._tracker.step(problem.T_base_tip, dt_s, accept)
        if command.q is not None:  # published: a held command too is the robot's latest
            self._last = (goal.arrival_s, stamp_s)
        moved = q_last is not None and command.q is not None and np.abs(command.q - q_last).max() > _SETTLED_STEP
        self._unreached = goal if command.status == APPROXIMATE and moved else None
        return StreamCommand(command, min(dt_s, self._tracker.settings.max_step_dt_s))

    def _interval_s(self, arrival_s: float, stamp_s: float) -> float:
        """Time since the last command's goal, s: the later of the arrival times' and the stamps' difference
        (stamps where both goals have one and they increase), so that a goal delayed on the way is not held
        to a shorter step than the sender meant; inf before any command."""
        if self._last is None:
            return float("inf")
        last_arrival_s, last_stamp_s = self._last
        dt_s = arrival_s - last_arrival_s
        if stamp_s > last_stamp_s > 0:
            dt_s = max(dt_s, stamp_s - last_stamp_s)
        return max(dt_s, 0.0)


def _stamp_s(msg: PoseStamped) -> float:
    """The goal's header stamp, s (0: none given)."""
    stamp = msg.header.stamp
    return stamp.sec + 1e-9 * stamp.nanosec


def status_text(command: TrackerCommand) -> str:
    """A command in one line, for the status topic and the log: what it is, why, how far from its goal."""
    if command.q is None:
        return f"{command.status}: {command.reason}"
    errors = f"{command.position_error_m:.3g} m, {command.orientation_error_rad:.3g} rad from the goal"
    return f"{command.status}: {command.reason} ({errors})" if command.reason else f"{command.status} ({errors})"
