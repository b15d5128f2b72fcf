"""The ROS 2 node ``ik_neural``: MoveIt's GetPositionIK on ``~/compute_ik``, goal poses in, joint commands out.

Parameters are listed in ``PARAMETERS`` (defaults and meaning; README "The node" documents the same).
Poses reach the solver as the tip link's pose in the chain's base frame (metres, radians); requests may
name the tip or any link fixed to it, and the base or any frame fixed to it.
"""

from __future__ import annotations

import gc
import math
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from moveit_msgs.msg import MoveItErrorCodes, PositionIKRequest
from moveit_msgs.srv import GetPositionIK
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.exceptions import InvalidParameterTypeException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory

from ik_neural.urdf_model import UrdfModel
from ik_neural.ros.messages import duration_to_seconds, joint_state, joint_trajectory, pose_to_matrix
from ik_neural.network import load_network, read_network_metadata
from ik_neural.robots import models_dir
from ik_neural.solver import IKResult, IKSolver

NODE_NAME = "ik_neural"
SOURCE = "ik_neural"
AVOID_COLLISIONS_POLICIES = ("refuse", "ignore")
_ERROR_CODES_HAVE_MESSAGE = "message" in MoveItErrorCodes.get_fields_and_field_types()
# ROS's default service QoS keeps the last 10 samples. All clients of a service share its request topic and
# its response topic (each client takes every response and keeps its own), so with several busy clients on
# a loaded machine a request or a response could be pushed out of a reader's history before it was taken:
# measured here, 1 to 3 responses lost in 4000 from 4 clients. The node and ik_client keep 1000; other
# clients under such load should too. Reliable and volatile, as the default.
SERVICE_QOS = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)

# name -> (default, description). The README's parameter table and every config/*.yaml list the same.
PARAMETERS: dict[str, tuple[Any, str]] = {
    "robot_description": ("", "URDF XML. Empty: the robot_description topic, then urdf_path."),
    "robot_description_timeout_s": (2.0, "How long to wait for the robot_description topic when the parameter is empty, s."),
    "urdf_path": ("", "URDF file, used when no robot description was given or published. package:// URIs work."),
    "base_link": ("", "Base link of the chain. Empty: the model's."),
    "tip_link": ("", "Tip link of the chain. Empty: the model's."),
    "model_path": ("", "TorchScript network (train's output). Empty: numerical-only solving, with a warning."),
    "group_name": ("manipulator", "The planning group requests must name (an empty group_name is accepted too)."),
    "seed_first": (
        True,
        "When a seed is known (the request's robot_state, or joint_states), refine it before the network's guess, "
        "so that the solution is the one nearest the seed, as with KDL or TRAC-IK. False: the network's guess first.",
    ),
    "default_timeout_s": (0.05, "Solve budget of a request whose timeout is zero, and of goal poses, s."),
    "position_tolerance_m": (1e-5, "Largest position error of a solution, m."),
    "orientation_tolerance_rad": (1e-5, "Largest orientation error of a solution, rad."),
    "position_only_ik": (False, "Solve for the position alone; the orientation of the pose is ignored (as MoveIt's KDL plugin's)."),
    "avoid_collisions_policy": (
        "refuse",
        "Requests with avoid_collisions=true: 'refuse' (COLLISION_CHECKING_UNAVAILABLE) or 'ignore' "
        "(solve without a collision check; the response message says so). This node has no planning scene.",
    ),
    "publish_trajectory": (False, "Also publish goal solutions on ~/joint_trajectory (a ros2_control trajectory)."),
    "trajectory_time_from_start_s": (2.0, "time_from_start of the published trajectory point, s."),
    "executor_threads": (4, "Threads serving requests in parallel."),
}  # fmt: skip


class StartupError(RuntimeError):
    """The node cannot start; the message is one line naming the cause."""


class _Refusal(Exception):
    """A request answered with an error code and a message, without solving."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class _Problem:
    """A request, checked and expressed for the solver: the tip's pose in the base frame, seed, bounds."""

    T_base_tip: np.ndarray
    seed: np.ndarray
    seed_known: bool  # from the request or joint_states, not only the mid-limits default
    lower: Optional[np.ndarray]
    upper: Optional[np.ndarray]
    timeout_s: float
    notes: tuple[str, ...]


def _answer(response: GetPositionIK.Response, code: int, message: str) -> GetPositionIK.Response:
    """The response with its error code, and its message and source where the type has them (moveit_msgs
    from 2.4 on; Humble's has only the code)."""
    response.error_code.val = code
    if _ERROR_CODES_HAVE_MESSAGE:
        response.error_code.message, response.error_code.source = message, SOURCE
    return response


def resolve_path(path: str) -> Path:
    """A file path, or a ``package://<package>/<path>`` URI resolved in that package's share directory
    (for ik_neural also its source tree)."""
    prefix = "package://"
    if not path.startswith(prefix):
        return Path(path).expanduser()
    package, _, relative = path[len(prefix):].partition("/")
    if package == NODE_NAME:
        return models_dir().parent / relative
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        return Path(get_package_share_directory(package)) / relative
    except PackageNotFoundError:
        raise StartupError(f"{path}: package {package!r} is not installed") from None


class IKNode(Node):
    """Serves IK for one chain. ``StartupError`` from the constructor: the node cannot serve."""

    def __init__(self, **node_options: Any) -> None:
        super().__init__(NODE_NAME, **node_options)
        try:
            self._start()
        except StartupError:
            self.destroy_node()
            raise

    def _start(self) -> None:
        # Read-only: every value is checked and used once, at start-up; `ros2 param set` is refused.
        self._settings: dict[str, Any] = {}
        for name, (default, description) in PARAMETERS.items():
            try:
                self._settings[name] = self.declare_parameter(
                    name, default, ParameterDescriptor(description=description, read_only=True)
                ).value
            except InvalidParameterTypeException as error:
                raise StartupError(f"parameter {name}: {error}") from None
        self._check_parameters()
        urdf, urdf_origin = self._robot_description()
        model_path = self._param("model_path")
        try:
            metadata = read_network_metadata(resolve_path(model_path)) if model_path else {}
            base_link = self._param("base_link") or metadata.get("base_link", "")
            tip_link = self._param("tip_link") or metadata.get("tip_link", "")
            if not base_link or not tip_link:
                raise StartupError("parameters base_link and tip_link must be set when no model_path gives them")
            model = UrdfModel.parse(urdf)
            self.chain = model.chain(base_link, tip_link)
            network = load_network(resolve_path(model_path), self.chain) if model_path else None
            # Frames a request may name: T_base_frame for the pose's frame, T_link_tip for its link.
            self._T_base_frame = model.attached_frames(base_link)
            self._T_link_tip = {
                link: np.linalg.inv(T_tip_link) for link, T_tip_link in model.attached_frames(tip_link).items()
            }
            self._robot_joints = set(model.joint_names)
        except (ValueError, FileNotFoundError) as error:
            raise StartupError(f"{error} (robot description from {urdf_origin})") from None
        if network is None:
            self.get_logger().warning("no model_path: numerical-only solving (slower on average)")
        self.solver = IKSolver(self.chain, network=network)
        self.solver.warm_up()

        self._joint_index = {name: i for i, name in enumerate(self.chain.joint_names)}
        self._current = self.chain.middle.copy()  # the chain's joints as last heard on joint_states
        self._current_known = False  # whether joint_states gave any of them
        self._current_lock = threading.Lock()

        group = ReentrantCallbackGroup()
        self.create_service(
            GetPositionIK, "~/compute_ik", self._compute_ik, qos_profile=SERVICE_QOS, callback_group=group
        )
        self.create_subscription(PoseStamped, "~/goal_pose", self._on_goal, 10, callback_group=group)
        self.create_subscription(JointState, "joint_states", self._on_joint_states, 10, callback_group=group)
        self._commands = self.create_publisher(JointState, "~/joint_commands", 10)
        self._trajectories = (
            self.create_publisher(JointTrajectory, "~/joint_trajectory", 10) if self._param("publish_trajectory") else None
        )
        self.get_logger().info(self.summary())

    # ------------------------------------------------------------------ start-up

    def _param(self, name: str) -> Any:
        return self._settings[name]

    def _check_parameters(self) -> None:
        for name, least in (("robot_description_timeout_s", 0), ("default_timeout_s", None),
                            ("position_tolerance_m", None), ("orientation_tolerance_rad", None),
                            ("trajectory_time_from_start_s", None), ("executor_threads", None)):  # fmt: skip
            value = self._param(name)
            if not (math.isfinite(value) and (value > 0 or value == least)):
                what = "a positive number" if least is None else f"a positive number or {least}"
                raise StartupError(f"parameter {name} must be {what}, got {value!r}")
        policy = self._param("avoid_collisions_policy")
        if policy not in AVOID_COLLISIONS_POLICIES:
            raise StartupError(f"parameter avoid_collisions_policy must be one of {AVOID_COLLISIONS_POLICIES}, got {policy!r}")

    def _robot_description(self) -> tuple[str, str]:
        """(URDF XML or file path, where it came from): the parameter, else the topic, else urdf_path."""
        if self._param("robot_description"):
            return self._param("robot_description"), "parameter robot_description"
        timeout_s = self._param("robot_description_timeout_s")
        published = self._wait_for_description(timeout_s) if timeout_s > 0 else ""
        if published:
            return published, "topic robot_description"
        if self._param("urdf_path"):
            path = resolve_path(self._param("urdf_path"))
            return str(path), f"urdf_path {path}"
        raise StartupError(
            f"no robot description: parameter robot_description and urdf_path are empty and nothing was "
            f"published on {self.resolve_topic_name('robot_description')} within {timeout_s} s"
        )

    def _wait_for_description(self, timeout_s: float) -> str:
        """The URDF latched on the robot_description topic (transient local, as robot_state_publisher), or ''."""
        received: list[str] = []
        qos = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
        subscription = self.create_subscription(String, "robot_description", lambda msg: received.append(msg.data), qos)
        executor = SingleThreadedExecutor(context=self.context)
        executor.add_node(self)
        deadline = time.monotonic() + timeout_s
        try:
            while not received and time.monotonic() < deadline:
                executor.spin_once(timeout_sec=min(0.1, max(deadline - time.monotonic(), 0.0)))
        finally:
            executor.remove_node(self)
            executor.shutdown()
            self.destroy_subscription(subscription)
        return received[0] if received else ""

    def summary(self) -> str:
        """What the node serves, in one line."""
        chain = self.chain
        mode = f"network {self._param('model_path')}" if self.solver.network is not None else "numerical only (no model)"
        return (
            f"serving {self.resolve_service_name('~/compute_ik')} (moveit_msgs/srv/GetPositionIK) for group "
            f"{self._param('group_name')!r}: {chain.base_link} -> {chain.tip_link}, {chain.dof} joints "
            f"{chain.joint_names}, {mode}; goals on {self.resolve_topic_name('~/goal_pose')} -> commands on "
            f"{self.resolve_topic_name('~/joint_commands')}"
        )

    # ------------------------------------------------------------------ the service

    def _compute_ik(self, request: GetPositionIK.Request, response: GetPositionIK.Response) -> GetPositionIK.Response:
        try:
            problem = self._problem(request.ik_request)
        except _Refusal as refusal:
            self.get_logger().warning(f"compute_ik refused ({refusal.code}): {refusal}")
            return _answer(response, refusal.code, str(refusal))
        result = self._solve(problem)
        response.solution.joint_state = joint_state(self.chain.joint_names, result.q, self.get_clock().now().to_msg())
        for note in problem.notes:
            self.get_logger().warning(f"compute_ik: {note}")
        code = MoveItErrorCodes.SUCCESS if result.success else MoveItErrorCodes.NO_IK_SOLUTION
        return _answer(response, code, "; ".join((self._describe(result), *problem.notes)))

    def _solve(self, problem: _Problem) -> IKResult:
        return self.solver.solve(
            problem.T_base_tip, seed=problem.seed, timeout_s=problem.timeout_s,
            position_tolerance_m=self._param("position_tolerance_m"),
            orientation_tolerance_rad=None if self._param("position_only_ik") else self._param("orientation_tolerance_rad"),
            lower=problem.lower, upper=problem.upper, seed_first=self._param("seed_first") and problem.seed_known,
        )  # fmt: skip

    @staticmethod
    def _describe(result: IKResult) -> str:
        verdict = "solved" if result.success else "no solution within the timeout; best effort"
        return (
            f"{verdict}: position error {result.position_error_m:.3g} m, orientation error "
            f"{result.orientation_error_rad:.3g} rad, {result.iterations} iterations, {1e3 * result.elapsed_s:.2f} ms"
        )

    def _problem(self, ik: PositionIKRequest) -> _Problem:
        """The request checked and turned into the solver's terms; _Refusal names what is wrong."""
        group = self._param("group_name")
        if ik.group_name not in ("", group):
            raise _Refusal(MoveItErrorCodes.INVALID_GROUP_NAME, f"group_name {ik.group_name!r}: this node serves {group!r}")
        notes: list[str] = []
        if ik.avoid_collisions:
            if self._param("avoid_collisions_policy") == "refuse":
                raise _Refusal(
                    MoveItErrorCodes.COLLISION_CHECKING_UNAVAILABLE,
                    "avoid_collisions is true, but this node has no planning scene to check collisions against "
                    "(send avoid_collisions=false, or set avoid_collisions_policy to 'ignore')",
                )
            notes.append("collisions NOT checked: this node has no planning scene")
        link, pose_stamped = self._link_and_pose(ik)
        T_frame_link = self._pose(pose_stamped)
        frame = pose_stamped.header.frame_id.lstrip("/") or self.chain.base_link
        if frame not in self._T_base_frame:
            raise _Refusal(
                MoveItErrorCodes.FRAME_TRANSFORM_FAILURE,
                f"pose frame {frame!r} is not the base {self.chain.base_link!r} or a frame fixed to it "
                f"({sorted(self._T_base_frame)}); this node has no TF listener",
            )
        timeout_s = duration_to_seconds(ik.timeout)
        if timeout_s < 0:
            raise _Refusal(MoveItErrorCodes.FAILURE, f"timeout is negative ({timeout_s} s)")
        lower, upper = self._bounds(ik, notes)
        return _Problem(
            T_base_tip=self._T_base_frame[frame] @ T_frame_link @ self._T_link_tip[link],
            **self._seed(ik.robot_state.joint_state),
            lower=lower, upper=upper,
            timeout_s=timeout_s or self._param("default_timeout_s"),
            notes=tuple(notes),
        )  # fmt: skip

    def _link_and_pose(self, ik: PositionIKRequest) -> tuple[str, PoseStamped]:
        """The link to place and its pose; a one-entry pose_stamped_vector stands for pose_stamped."""
        link, pose_stamped = ik.ik_link_name, ik.pose_stamped
        if ik.pose_stamped_vector or ik.ik_link_names:
            if len(ik.pose_stamped_vector) != 1 or len(ik.ik_link_names) > 1:
                raise _Refusal(
                    MoveItErrorCodes.INVALID_LINK_NAME,
                    f"{len(ik.pose_stamped_vector)} poses for links {list(ik.ik_link_names)}: this node places one "
                    f"link, the tip {self.chain.tip_link!r} or a link fixed to it",
                )
            pose_stamped = ik.pose_stamped_vector[0]
            link = ik.ik_link_names[0] if ik.ik_link_names else link
        link = link or self.chain.tip_link
        if link not in self._T_link_tip:
            raise _Refusal(
                MoveItErrorCodes.INVALID_LINK_NAME,
                f"ik_link_name {link!r} is not the tip {self.chain.tip_link!r} or a link fixed to it "
                f"({sorted(self._T_link_tip)})",
            )
        return link, pose_stamped

    @staticmethod
    def _pose(pose_stamped: PoseStamped) -> np.ndarray:
        try:
            return pose_to_matrix(pose_stamped.pose)
        except ValueError as error:
            raise _Refusal(MoveItErrorCodes.INVALID_GOAL_CONSTRAINTS, f"pose_stamped.{error}") from None

    def _seed(self, state: JointState) -> dict[str, Any]:
        """``seed`` (dof,): the request's positions by joint name, the rest the current joint state (else
        mid-limits); ``seed_known``: whether any of it came from the request or joint_states."""
        if len(state.position) != len(state.name):
            raise _Refusal(
                MoveItErrorCodes.INVALID_ROBOT_STATE,
                f"robot_state.joint_state has {len(state.name)} names but {len(state.position)} positions",
            )
        unknown = sorted(set(state.name) - self._robot_joints)
        if unknown or len(set(state.name)) != len(state.name):
            what = f"unknown joints {unknown}" if unknown else "repeated joint names"
            raise _Refusal(
                MoveItErrorCodes.INVALID_ROBOT_STATE,
                f"robot_state.joint_state has {what}; the chain's joints are {self.chain.joint_names}",
            )
        with self._current_lock:
            seed, known = self._current.copy(), self._current_known
        for name, position in zip(state.name, state.position):
            if name in self._joint_index:
                if not math.isfinite(position):
                    raise _Refusal(MoveItErrorCodes.INVALID_ROBOT_STATE, f"robot_state: joint {name!r} is {position}")
                seed[self._joint_index[name]] = position
                known = True
        return {"seed": seed, "seed_known": known}

    def _bounds(self, ik: PositionIKRequest, notes: list[str]) -> tuple[Optional[np.ndarray], Optional[np.ndarray]]:
        """Joint bounds narrowed by constraints.joint_constraints, or (None, None); unsupported kinds noted."""
        constraints = ik.constraints
        unsupported = [
            f"{len(kind)} {name}" for name, kind in (
                ("position", constraints.position_constraints), ("orientation", constraints.orientation_constraints),
                ("visibility", constraints.visibility_constraints),
            ) if kind
        ]  # fmt: skip
        if unsupported:
            notes.append(f"unsupported constraints ignored ({', '.join(unsupported)}): only joint constraints are applied")
        if not constraints.joint_constraints:
            return None, None
        lower, upper = self.chain.lower.copy(), self.chain.upper.copy()
        continuous = self.chain.is_continuous
        for constraint in constraints.joint_constraints:
            name = constraint.joint_name
            numbers = (constraint.position, constraint.tolerance_above, constraint.tolerance_below)
            if name not in self._robot_joints:
                raise _Refusal(MoveItErrorCodes.INVALID_GOAL_CONSTRAINTS, f"joint constraint on unknown joint {name!r}")
            if not all(math.isfinite(v) for v in numbers) or min(numbers[1:]) < 0:
                raise _Refusal(
                    MoveItErrorCodes.INVALID_GOAL_CONSTRAINTS,
                    f"joint constraint on {name!r}: position and tolerances must be finite, tolerances >= 0",
                )
            if name not in self._joint_index:
                notes.append(f"joint constraint on {name!r} ignored: not a joint of the chain")
                continue
            j = self._joint_index[name]
            low, high = constraint.position - constraint.tolerance_below, constraint.position + constraint.tolerance_above
            if continuous[j] and upper[j] - lower[j] >= 2 * math.pi:
                # A continuous joint's window may lie anywhere on the circle: it replaces the full turn.
                lower[j], upper[j] = low, min(high, low + 2 * math.pi)
            else:
                lower[j], upper[j] = max(lower[j], low), min(upper[j], high)
            if lower[j] > upper[j]:
                raise _Refusal(
                    MoveItErrorCodes.INVALID_GOAL_CONSTRAINTS,
                    f"joint constraint on {name!r} leaves no room: [{low:.6g}, {high:.6g}] against limits "
                    f"[{self.chain.lower[j]:.6g}, {self.chain.upper[j]:.6g}]",
                )
        return lower, upper

    # ------------------------------------------------------------------ topics

    def _on_joint_states(self, msg: JointState) -> None:
        with self._current_lock:
            for name, position in zip(msg.name, msg.position):
                if name in self._joint_index and math.isfinite(position):
                    self._current[self._joint_index[name]] = position
                    self._current_known = True

    def _on_goal(self, msg: PoseStamped) -> None:
        """Solve a goal pose from the current joint state; publish the solution as a joint command."""
        ik = PositionIKRequest(pose_stamped=msg)
        try:
            problem = self._problem(ik)
        except _Refusal as refusal:
            self.get_logger().warning(f"goal pose refused ({refusal.code}): {refusal}")
            return
        result = self._solve(problem)
        if not result.success:
            self.get_logger().warning(f"goal pose: {self._describe(result)}; no command published")
            return
        stamp = self.get_clock().now().to_msg()
        self._commands.publish(joint_state(self.chain.joint_names, result.q, stamp))
        if self._trajectories is not None:
            self._trajectories.publish(
                joint_trajectory(self.chain.joint_names, result.q, self._param("trajectory_time_from_start_s"), stamp)
            )
        self.get_logger().debug(f"goal pose: {self._describe(result)}; command published")


def main(args: Optional[list[str]] = None) -> int:
    """``ik_node``: run the node until Ctrl-C. Exit 1, with one error line, when it cannot start."""
    rclpy.init(args=args)
    try:
        try:
            node = IKNode()
        except StartupError as error:
            rclpy.logging.get_logger(NODE_NAME).error(f"cannot start: {' '.join(str(error).split())}")
            return 1
        except Exception:
            if rclpy.ok():
                raise
            return 0  # Ctrl-C during start-up: rclpy shut the context down under the constructor
        # The ~265 000 objects of start-up (torch, the model, rclpy) made every full garbage collection
        # a 160 ms pause inside some request's time budget; frozen, they are never scanned again.
        gc.freeze()
        executor = MultiThreadedExecutor(num_threads=node._param("executor_threads"))
        executor.add_node(node)
        try:
            executor.spin()
        finally:
            executor.shutdown()
            node.destroy_node()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
