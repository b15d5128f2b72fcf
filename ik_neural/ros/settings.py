"""The node's parameters: one typed settings object, each field declared once with its default, meaning
(units) and check. The node declares every field as a read-only ROS parameter of the same name; the
README's parameter table is ``markdown_table()``, and a test holds the two equal.

Imports no ROS: the request logic and its unit tests use these settings too.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from ik_neural.query import Tolerance
from ik_neural.solver import SolverSettings
from ik_neural.tracker import TrackerSettings

AVOID_COLLISIONS_POLICIES = ("check", "refuse", "ignore")
FREE_ROTATION_AXES = ("", "x", "y", "z")
_TRACKING = TrackerSettings()  # the goal stream's defaults, kept in one place
_SOLVING = SolverSettings()  # the solver's

Check = Callable[[Any], Optional[str]]
"""A value check: None when the value is fine, else what it must be ("a positive number")."""


class SettingsError(ValueError):
    """A parameter value that cannot be used; ``name`` is the parameter."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


def _positive(value: float) -> Optional[str]:
    return None if math.isfinite(value) and value > 0 else "a positive number"


def _non_negative(value: float) -> Optional[str]:
    return None if math.isfinite(value) and value >= 0 else "a positive number or 0"


def _non_negative_or_inf(value: float) -> Optional[str]:
    return None if value >= 0 else "a positive number, 0 or .inf"  # NaN fails too


def _share(value: float) -> Optional[str]:
    return None if 0 <= value <= 1 else "a number from 0 to 1"


def _positive_integer(value: int) -> Optional[str]:
    return None if value >= 1 else "an integer of at least 1"


def _folders(paths: str) -> list[str]:
    """The folders of a ':'-separated list (empty entries skipped)."""
    return [folder for folder in paths.split(":") if folder]


def _existing_folders(paths: str) -> Optional[str]:
    missing = [folder for folder in _folders(paths) if not Path(folder).expanduser().is_dir()]
    return f"folders that exist, separated by ':' ({missing[0]!r} is not one)" if missing else None


def one_of(choices: tuple[str, ...]) -> str:
    """What a parameter taking only ``choices`` must be, as errors say it: "one of 'a', 'b'"."""
    return f"one of {', '.join(map(repr, choices))}"


def _check_one_of(choices: tuple[str, ...]) -> Check:
    def check(value: str) -> Optional[str]:
        return None if value in choices else one_of(choices)

    return check


def _setting(default: Any, description: str, check: Optional[Check] = None, choices: tuple[str, ...] = ()) -> Any:
    """A field of NodeSettings: its default, its meaning with units (the README and the ROS parameter
    descriptor show it) and its check; ``choices``: the only values a string takes (its check, and what
    start-up errors list)."""
    if choices:
        check = _check_one_of(choices)
    return field(default=default, metadata={"description": description, "check": check, "choices": choices})


@dataclass(frozen=True)
class NodeSettings:
    """Every parameter of the node, read as attributes. ``NodeSettings(**values)`` checks each value and
    raises SettingsError naming the parameter."""

    robot_description: str = _setting("", "URDF XML. Empty: urdf_path, then the robot_description topic.")
    robot_description_timeout_s: float = _setting(
        2.0,
        "How long to wait for the robot_description topic when the parameter and urdf_path are empty, s.",
        _non_negative,
    )
    urdf_path: str = _setting(
        "", "URDF file, used when the robot_description parameter is empty (before the topic). package:// URIs work."
    )
    package_paths: str = _setting(
        "",
        "Folders to find packages in for package:// URIs (URDF, SRDF, model, collision meshes), separated by ':', "
        "each holding <package>/ folders (or being one), searched after the ament index (installed and sourced "
        "packages). E.g. '/home/me/ws/src' for package://my_robot_description/meshes/link1.stl.",
        _existing_folders,
    )
    base_link: str = _setting("", "Base link of the chain. Empty: the model's.")
    tip_link: str = _setting("", "Tip link of the chain. Empty: the model's.")
    model_path: str = _setting(
        "", "TorchScript network (ik_train's output). Empty: numerical-only solving, with a warning."
    )
    group_name: str = _setting(
        "manipulator", "The planning group requests must name (an empty group_name is accepted too)."
    )
    seed_first: bool = _setting(
        True,
        "When a seed is known (the request's robot_state, or joint_states), refine it before the network's guess, "
        "so that the solution is the one nearest the seed, as with KDL or TRAC-IK. False: the network's guess first.",
    )
    default_timeout_s: float = _setting(
        0.05,
        "Solve budget of a request whose timeout is zero, and of a goal stream's first goal when no command or "
        "joint state is known (a full solve), s.",
        _positive,
    )
    max_timeout_s: float = _setting(
        5.0,
        "Largest solve budget a request may ask for, s: a longer timeout is cut to it (the answer's message says so). "
        "At least default_timeout_s.",
        _positive,
    )
    max_request_items: int = _setting(
        10_000,
        "Largest number of entries of any array in a request (joint names and positions, constraints, poses, links); "
        "a request with more is refused (FAILURE) before any other work.",
        _positive_integer,
    )
    position_tolerance_m: float = _setting(1e-5, "Largest position error of a solution, m.", _positive)
    orientation_tolerance_rad: float = _setting(1e-5, "Largest orientation error of a solution, rad.", _positive)
    position_only_ik: bool = _setting(
        False, "Solve for the position alone; the orientation of the pose is ignored (as MoveIt's KDL plugin's)."
    )
    free_rotation_axis: str = _setting(
        "",
        "Axis of the tip frame ('x', 'y' or 'z') about which the tip may turn freely in every answer and goal-stream "
        "command (a symmetric gripper, a drill): that axis of the pose must be met within orientation_tolerance_rad, "
        "the rotation about it is free. Empty: none. A request's orientation constraint on its IK link can free an "
        "axis for that request.",
        choices=FREE_ROTATION_AXES,
    )
    approximate_position_tolerance_m: float = _setting(
        0.0,
        "Approximate answers of compute_ik: when no solution within position_tolerance_m and orientation_tolerance_rad "
        "is found in the budget, the best configuration found is answered SUCCESS if it is within this position error "
        "(m) and approximate_orientation_tolerance_rad (and meets the request's constraints and collision check), its "
        "message saying it is approximate and how far (mm, degrees). 0: off (both must be 0, or both > 0); at least "
        "position_tolerance_m.",
        _non_negative,
    )
    approximate_orientation_tolerance_rad: float = _setting(
        0.0,
        "Approximate answers' largest rotation error, rad, about each axis (free_rotation_axis stays free); pi or "
        "more (or .inf): any rotation. 0: off, with approximate_position_tolerance_m; at least "
        "orientation_tolerance_rad.",
        _non_negative_or_inf,
    )
    displacement_weight: float = _setting(
        _SOLVING.displacement_weight,
        "Cost term of compute_ik on a redundant arm: each solution is moved along the arm's self-motion (never off "
        "the pose's tolerance) this share of the way towards the seed per polish round, 0 to 1 (minimal "
        "displacement). 0: off.",
        _share,
    )
    centring_weight: float = _setting(
        _SOLVING.centring_weight,
        "Cost term of compute_ik on a redundant arm: likewise towards the middle of the joint limits (centring), 0 to "
        "1. 0: off.",
        _share,
    )
    avoid_collisions_policy: str = _setting(
        "check",
        "Requests with avoid_collisions=true: 'check' (SUCCESS only for a solution free of self-collision, by the "
        "URDF's collision geometry; COLLISION_CHECKING_UNAVAILABLE for a robot without any), 'refuse' "
        "(COLLISION_CHECKING_UNAVAILABLE) or 'ignore' (solve without a collision check; the response message says so).",
        choices=AVOID_COLLISIONS_POLICIES,
    )
    skip_unreadable_meshes: bool = _setting(
        False,
        "A URDF collision mesh file that cannot be found or read: false, the node refuses to start, naming the file; "
        "true, that mesh is left out of the collision check, with a warning naming the link and the file.",
    )
    robot_description_semantic: str = _setting(
        "",
        "SRDF XML (as MoveIt's parameter of that name): its disable_collisions pairs are not checked. Empty: the file "
        "srdf_path, then the robot_description_semantic topic, then the pairs computed as MoveIt Setup Assistant does, "
        "once per URDF, and cached.",
    )
    srdf_path: str = _setting(
        "",
        "SRDF file, used when robot_description_semantic is empty. package:// URIs work. Empty: the "
        "robot_description_semantic topic, then computed pairs.",
    )
    robot_description_semantic_timeout_s: float = _setting(
        0.0,
        "How long to wait before serving for the robot_description_semantic topic (latched, as move_group "
        "publishes it) when robot_description_semantic and srdf_path are empty and avoid_collisions_policy is "
        "'check', s; waited for together with the robot_description topic. 0: serve at once with computed pairs. "
        "Either way, an SRDF the topic brings later (move_group started after this node) replaces them.",
        _non_negative,
    )
    velocity_scale: float = _setting(
        _TRACKING.velocity_scale,
        "Goal streams: fraction of each joint's URDF velocity limit a joint command may use: a command moves no "
        "joint farther than this velocity times the time since the last command, plus what earlier commands left "
        "unused (at most max_step_dt_s worth).",
        _positive,
    )
    max_step_dt_s: float = _setting(
        _TRACKING.max_step_dt_s,
        "Goal streams: most time one command's step limit counts, s: the time since the last command plus what "
        "earlier commands left unused (after a pause, a command moves a joint at most this long at its scaled "
        "velocity).",
        _positive,
    )
    step_without_velocity_limit: float = _setting(
        _TRACKING.step_without_velocity_limit,
        "Goal streams: step limit per command of a joint whose URDF gives no velocity limit, rad (m for a "
        "prismatic joint).",
        _positive,
    )
    max_steps_per_command: int = _setting(
        _TRACKING.max_steps,
        "Goal streams: damped-least-squares steps towards a goal within the step limits, per command.",
        _positive_integer,
    )
    command_timeout_s: float = _setting(
        0.5,
        "Goal streams: a goal is solved from the last command when it is at most this old, s; else from "
        "joint_states (when heard), else from the last command anyway.",
        _positive,
    )
    follow_up_period_s: float = _setting(
        0.01,
        "Goal streams: while the last goal is not reached (its command was approximate and moved the arm) and no "
        "newer goal comes, it is commanded again this often, s: a single goal is followed to the end.",
        _positive,
    )
    status_log_period_s: float = _setting(
        1.0,
        "Goal streams: shortest time between two log lines about commands that are not exact, s (every command's "
        "status is on ~/command_status).",
        _positive,
    )
    executor_threads: int = _setting(
        4,
        "Threads serving requests in parallel. At most executor_threads - 1 requests at once get a budget above "
        "default_timeout_s; a request beyond that is cut to default_timeout_s (its message says so), so one thread "
        "is always free within default_timeout_s.",
        _positive_integer,
    )

    def __post_init__(self) -> None:
        for setting in fields(self):
            check = setting.metadata["check"]
            value = getattr(self, setting.name)
            problem = check(value) if check is not None else None
            if problem is not None:
                raise SettingsError(setting.name, f"parameter {setting.name} must be {problem}, got {value!r}")
        if self.max_timeout_s < self.default_timeout_s:
            raise SettingsError(
                "max_timeout_s",
                f"parameter max_timeout_s ({self.max_timeout_s}) must be at least default_timeout_s ({self.default_timeout_s})",
            )
        position, orientation = self.approximate_position_tolerance_m, self.approximate_orientation_tolerance_rad
        if (position > 0) != (orientation > 0):
            off, on = (
                ("approximate_orientation_tolerance_rad", "approximate_position_tolerance_m")
                if position > 0
                else ("approximate_position_tolerance_m", "approximate_orientation_tolerance_rad")
            )
            raise SettingsError(
                off, f"parameter {off} must be > 0 when {on} is ({getattr(self, on)}): approximate answers take both"
            )
        for approximate, exact in (
            ("approximate_position_tolerance_m", "position_tolerance_m"),
            ("approximate_orientation_tolerance_rad", "orientation_tolerance_rad"),
        ):
            if 0 < getattr(self, approximate) < getattr(self, exact):
                raise SettingsError(
                    approximate,
                    f"parameter {approximate} ({getattr(self, approximate)}) must be at least {exact} "
                    f"({getattr(self, exact)}), or 0 (off)",
                )

    @property
    def package_folders(self) -> tuple[Path, ...]:
        """package_paths as folders, in order."""
        return tuple(Path(folder).expanduser() for folder in _folders(self.package_paths))

    @functools.cached_property  # every request asks: built once (the settings are frozen)
    def tolerance(self) -> Tolerance:
        """The solver's tolerance of every request: position_tolerance_m, and orientation_tolerance_rad about
        every axis but free_rotation_axis (free), unless position_only_ik (then the orientation is free)."""
        return self._tolerance(self.position_tolerance_m, self.orientation_tolerance_rad)

    @functools.cached_property
    def approximate(self) -> Optional[Tolerance]:
        """The solver's tolerance of approximate answers (``IKQuery.approximate``), the rotation free about
        free_rotation_axis, every axis free from pi on; None: off (approximate_position_tolerance_m is 0)."""
        if self.approximate_position_tolerance_m == 0:
            return None
        return self._tolerance(self.approximate_position_tolerance_m, self.approximate_orientation_tolerance_rad)

    def _tolerance(self, position_m: float, orientation_rad: float) -> Tolerance:
        if self.position_only_ik or orientation_rad >= math.pi:  # no rotation error is above pi
            return Tolerance.position_only(position_m)
        rotation = [orientation_rad] * 3
        if self.free_rotation_axis:
            rotation["xyz".index(self.free_rotation_axis)] = math.inf
        return Tolerance(position_m, tuple(rotation))

    @property
    def solving(self) -> SolverSettings:
        """The solver's settings: its defaults, with the cost terms' weights."""
        return SolverSettings(displacement_weight=self.displacement_weight, centring_weight=self.centring_weight)

    @property
    def tracking(self) -> TrackerSettings:
        """The goal stream's tracker settings; its first command's full solve has default_timeout_s."""
        return TrackerSettings(
            velocity_scale=self.velocity_scale,
            max_step_dt_s=self.max_step_dt_s,
            step_without_velocity_limit=self.step_without_velocity_limit,
            max_steps=self.max_steps_per_command,
            first_timeout_s=self.default_timeout_s,
        )

    @property
    def long_solves(self) -> int:
        """How many requests may hold a budget above default_timeout_s at once: every thread but one."""
        return self.executor_threads - 1


def defaults() -> Mapping[str, Any]:
    """name -> default of every parameter, in declaration order."""
    return {setting.name: setting.default for setting in fields(NodeSettings)}


def description(name: str) -> str:
    """The meaning (with units) of parameter ``name``."""
    return NodeSettings.__dataclass_fields__[name].metadata["description"]


def choices(name: str) -> tuple[str, ...]:
    """The only values string parameter ``name`` takes (a policy's names); () where any string will do."""
    return NodeSettings.__dataclass_fields__[name].metadata["choices"]


def _shown(value: Any) -> str:
    """A default as the README shows it: YAML-like (true, "text", 1e-05)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def markdown_table() -> str:
    """The README's parameter table (a test holds the README's copy equal to this)."""
    rows = ["| parameter | default | meaning |", "|---|---|---|"]
    rows += [f"| `{name}` | `{_shown(default)}` | {description(name)} |" for name, default in defaults().items()]
    return "\n".join(rows)
