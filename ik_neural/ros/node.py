"""The ROS 2 node ``ik_neural``: MoveIt's GetPositionIK on ``~/compute_ik`` and GetPositionFK on
``~/compute_fk``, goal poses in, joint commands out.

The node wires ROS to the rest: its parameters are ``NodeSettings`` (settings.py), a request becomes a
problem or a refusal in request.py, the solver solves. Poses reach the solver as the tip link's pose in the
chain's base frame (metres, radians).

No request may end the process or hold it: every callback has one catch-all (FAILURE with the reason), a
request's budget is capped at ``max_timeout_s``, at most ``executor_threads - 1`` requests at once may use
more than ``default_timeout_s``, and every solve ends at its next step once the node stops (SIGINT/SIGTERM).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import math
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Iterator, Optional, TypeVar

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from moveit_msgs.msg import AttachedCollisionObject, CollisionObject, MoveItErrorCodes, PositionIKRequest
from moveit_msgs.srv import GetPositionFK, GetPositionIK
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.exceptions import InvalidParameterTypeException
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Header, String
from trajectory_msgs.msg import JointTrajectory

from ik_neural.collision import AttachedBody, CollisionChecker
from ik_neural.echo import echo
from ik_neural.kernels.cache import compiling_notice
from ik_neural.network import load_network, read_network_metadata
from ik_neural.robots import models_dir
from ik_neural.ros.messages import (
    collision_object_shapes,
    joint_state,
    joint_trajectory,
    matrix_to_pose,
    object_pose_to_matrix,
)
from ik_neural.ros.qos import DESCRIPTION_QOS, GOAL_QOS, SERVICE_QOS
from ik_neural.ros.request import (
    CurrentState,
    HeldObject,
    Problem,
    Refusal,
    RequestContext,
    fk_problem_of,
    held_object_of,
    problem_of,
)
from ik_neural.ros.settings import NodeSettings, SettingsError, defaults, description
from ik_neural.solver import IKResult, IKSolver
from ik_neural.urdf_model import UrdfModel

NODE_NAME = "ik_neural"
SOURCE = "ik_neural"
_ERROR_CODES_HAVE_MESSAGE = "message" in MoveItErrorCodes.get_fields_and_field_types()
RCLError = _rclpy.RCLError
Response = TypeVar("Response", GetPositionIK.Response, GetPositionFK.Response)


class StartupError(RuntimeError):
    """The node cannot start; the message is one line naming the cause."""


def _answer(response: Response, code: int, message: str) -> Response:
    """The (IK or FK) response with its error code, and its message and source where the type has them (moveit_msgs
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
    package, _, relative = path[len(prefix) :].partition("/")
    if package == NODE_NAME:
        return models_dir().parent / relative
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        return Path(get_package_share_directory(package)) / relative
    except PackageNotFoundError:
        raise StartupError(f"{echo(path)}: package {echo(package)} is not installed") from None


def _describe(result: IKResult) -> str:
    verdict = "solved" if result.success else "no solution within the timeout; best effort"
    return (
        f"{verdict}: position error {result.position_error_m:.3g} m, orientation error "
        f"{result.orientation_error_rad:.3g} rad, {result.iterations} iterations, {1e3 * result.elapsed_s:.2f} ms"
    )


class IKNode(Node):
    """Serves IK for one chain. ``StartupError`` from the constructor: the node cannot serve."""

    def __init__(self, **node_options: Any) -> None:
        super().__init__(NODE_NAME, **node_options)
        # Set when the node stops: every solve in flight ends at its next step (as at its budget's end).
        self._stop = threading.Event()
        try:
            self._start()
        except StartupError:
            self.destroy_node()
            raise

    def _start(self) -> None:
        self.settings = self._declare_settings()
        settings = self.settings
        urdf, urdf_origin, srdf, self._srdf_origin = self._descriptions()
        try:
            metadata = read_network_metadata(resolve_path(settings.model_path)) if settings.model_path else {}
            base_link = settings.base_link or metadata.get("base_link", "")
            tip_link = settings.tip_link or metadata.get("tip_link", "")
            if not base_link or not tip_link:
                raise StartupError("parameters base_link and tip_link must be set when no model_path gives them")
            model = UrdfModel.parse(urdf)
            self.chain = model.chain(base_link, tip_link)
            network = load_network(resolve_path(settings.model_path), self.chain) if settings.model_path else None
            self.collision = self._collision_checker(model, srdf)
            self._request_context = RequestContext.of_model(model, self.chain, settings, collision=self.collision)
            self.solver = IKSolver(self.chain, network=network)
            # Inside the error handling: a chain whose numbers break the kernels fails here, in one line.
            with compiling_notice(self.get_logger().info):
                self.solver.warm_up()
        except StartupError:
            raise
        except (ValueError, OSError, RuntimeError) as error:  # torch reports a broken model as RuntimeError
            self.get_logger().debug(traceback.format_exc())
            raise StartupError(f"{error} (robot description from {urdf_origin})") from None
        if network is None:
            self.get_logger().warning("no model_path: numerical-only solving (slower on average)")

        self._joint_index = {name: i for i, name in enumerate(self.chain.joint_names)}
        self._current = self.chain.middle.copy()  # the chain's joints as last heard on joint_states
        self._current_known = False  # whether joint_states gave any of them
        self._current_lock = threading.Lock()
        # Budgets above default_timeout_s are held by at most executor_threads - 1 requests at once.
        self._long_solves = threading.BoundedSemaphore(settings.long_solves)

        requests = ReentrantCallbackGroup()
        self.create_service(
            GetPositionIK, "~/compute_ik", self._compute_ik, qos_profile=SERVICE_QOS, callback_group=requests
        )
        self.create_service(
            GetPositionFK, "~/compute_fk", self._compute_fk, qos_profile=SERVICE_QOS, callback_group=requests
        )
        self.create_subscription(JointState, "joint_states", self._on_joint_states, 10, callback_group=requests)
        # The world, as move_group hears it: objects by id, each (T_base_object, [(Geometry, T_object_shape)]).
        self._world_objects: dict[str, tuple[np.ndarray, list]] = {}
        self._world_lock = threading.Lock()
        # Objects the robot holds, as move_group hears them on attached_collision_object: by id, each with its
        # checker body (an immutable value, replaced as a whole), checked in every avoid_collisions request.
        self._held: dict[str, tuple[HeldObject, AttachedBody]] = {}
        if self.collision is not None:
            self.create_subscription(
                CollisionObject, "collision_object", self._on_collision_object, 100, callback_group=requests
            )
            self.create_subscription(
                AttachedCollisionObject,
                "attached_collision_object",
                self._on_attached_collision_object,
                100,
                callback_group=requests,
            )
        # Goals one at a time, in arrival order; with a history of one, the next solved is the newest.
        goals = MutuallyExclusiveCallbackGroup()
        self.create_subscription(PoseStamped, "~/goal_pose", self._on_goal, GOAL_QOS, callback_group=goals)
        self._commands = self.create_publisher(JointState, "~/joint_commands", 10)
        self._trajectories = (
            self.create_publisher(JointTrajectory, "~/joint_trajectory", 10) if settings.publish_trajectory else None
        )
        self.get_logger().info(self.summary())

    def _collision_checker(self, model: UrdfModel, srdf: Optional[str]) -> Optional[CollisionChecker]:
        """The self-collision checker of requests with avoid_collisions (policy 'check'), its disabled pairs
        from ``srdf`` (XML or a file path; None: computed): None where the policy is another or the chain's
        links have no collision geometry."""
        if self.settings.avoid_collisions_policy != "check" or not model.collisions():
            return None
        checker = CollisionChecker.from_urdf(model, self.chain, srdf=srdf, resolve=resolve_path)
        if not checker.link_names:
            return None
        checker.in_collision(self.chain.middle)  # the first call's imports and allocations, outside any budget
        return checker

    def stop(self) -> None:
        """End every solve in flight at its next step; later solves end at once (the node is stopping)."""
        self._stop.set()

    def destroy_node(self) -> None:
        self.stop()
        super().destroy_node()

    # ------------------------------------------------------------------ start-up

    def _declare_settings(self) -> NodeSettings:
        """Every NodeSettings field declared as a read-only parameter, then checked as a whole."""
        # Read-only: every value is checked and used once, at start-up; `ros2 param set` is refused.
        values: dict[str, Any] = {}
        for name, default in defaults().items():
            try:
                values[name] = self.declare_parameter(
                    name, default, ParameterDescriptor(description=description(name), read_only=True)
                ).value
            except InvalidParameterTypeException:  # its message repeats the value whole: not echoed
                hint = " (a float is written with a point: 1.0, not 1)" if isinstance(default, float) else ""
                raise StartupError(
                    f"parameter {name}: the value given is not a {type(default).__name__}, as its default {default!r} is{hint}"
                ) from None
        try:
            return NodeSettings(**values)
        except SettingsError as error:
            raise StartupError(str(error)) from None

    def _descriptions(self) -> tuple[str, str, Optional[str], str]:
        """(URDF XML or file path, where it came from, SRDF XML or file path or None, where it came from).
        The URDF: the parameter, else the topic, else urdf_path. The SRDF (for collision checking): the
        parameter, else srdf_path, else the topic, else None (computed pairs). Both topics are waited for at once."""
        settings = self.settings
        waits = {}
        if not settings.robot_description and settings.robot_description_timeout_s > 0:
            waits["robot_description"] = settings.robot_description_timeout_s
        srdf_topic = (
            settings.avoid_collisions_policy == "check"
            and not settings.robot_description_semantic
            and not settings.srdf_path
            and settings.robot_description_semantic_timeout_s > 0
        )
        if srdf_topic:
            waits["robot_description_semantic"] = settings.robot_description_semantic_timeout_s
        published = self._wait_for_latched(waits)
        if settings.robot_description:
            urdf = settings.robot_description, "parameter robot_description"
        elif "robot_description" in published:
            urdf = published["robot_description"], "topic robot_description"
        elif settings.urdf_path:
            path = resolve_path(settings.urdf_path)
            urdf = str(path), f"urdf_path {echo(str(path))}"
        else:
            raise StartupError(
                f"no robot description: parameter robot_description and urdf_path are empty and nothing was published "
                f"on {self.resolve_topic_name('robot_description')} within {settings.robot_description_timeout_s} s"
            )
        if settings.robot_description_semantic:
            srdf = settings.robot_description_semantic, "parameter robot_description_semantic"
        elif settings.srdf_path:
            path = resolve_path(settings.srdf_path)
            srdf = str(path), f"srdf_path {echo(str(path))}"
        elif "robot_description_semantic" in published:
            srdf = published["robot_description_semantic"], "topic robot_description_semantic"
        else:
            srdf = None, ""
        return (*urdf, *srdf)

    def _wait_for_latched(self, waits: dict[str, float]) -> dict[str, str]:
        """topic -> the string latched on it (transient local, as robot_state_publisher and move_group publish
        descriptions), for each topic of ``waits`` (topic -> longest wait, s) heard within its wait."""
        received: dict[str, str] = {}
        if not waits:
            return received
        subscriptions = [
            self.create_subscription(
                String, topic, lambda msg, topic=topic: received.setdefault(topic, msg.data), DESCRIPTION_QOS
            )
            for topic in waits
        ]
        executor = SingleThreadedExecutor(context=self.context)
        executor.add_node(self)
        start = time.monotonic()
        try:
            while True:
                left = [start + wait - time.monotonic() for topic, wait in waits.items() if topic not in received]
                if not left or max(left) <= 0:
                    break
                executor.spin_once(timeout_sec=min(0.1, max(left)))
        finally:
            executor.remove_node(self)
            executor.shutdown()
            for subscription in subscriptions:
                self.destroy_subscription(subscription)
        return {topic: data for topic, data in received.items() if data}

    def summary(self) -> str:
        """What the node serves, in one line."""
        chain, settings = self.chain, self.settings
        mode = f"network {settings.model_path}" if self.solver.network is not None else "numerical only (no model)"
        if self.collision is not None:
            checker = self.collision
            pairs = f"the SRDF of {self._srdf_origin}" if checker.disabled_source == "srdf" else checker.disabled_source
            mode += (
                f"; avoid_collisions checks self-collision of {len(checker.link_names)} links, "
                f"{len(checker.enabled_pairs)} pairs (disabled pairs: {pairs})"
            )
        return (
            f"serving {self.resolve_service_name('~/compute_ik')} (moveit_msgs/srv/GetPositionIK) and "
            f"{self.resolve_service_name('~/compute_fk')} (moveit_msgs/srv/GetPositionFK) for group "
            f"{settings.group_name!r}: {chain.base_link} -> {chain.tip_link}, {chain.dof} joints "
            f"{chain.joint_names}, {mode}; goals on {self.resolve_topic_name('~/goal_pose')} -> commands on "
            f"{self.resolve_topic_name('~/joint_commands')}"
        )

    # ------------------------------------------------------------------ callbacks

    def _unexpected(self, where: str, error: Exception) -> str:
        """Log an exception that escaped the request logic (one line; the traceback at debug); its reason."""
        reason = f"internal error: {type(error).__name__}: {echo(str(error))}"
        self.get_logger().error(f"{where}: {reason}")
        self.get_logger().debug(traceback.format_exc())
        return reason

    def _compute_ik(self, request: GetPositionIK.Request, response: GetPositionIK.Response) -> GetPositionIK.Response:
        # The catch-all: rclpy's executor re-raises a callback's exception, which would end the process.
        try:
            return self._serve(request.ik_request, response)
        except Exception as error:
            return _answer(GetPositionIK.Response(), MoveItErrorCodes.FAILURE, self._unexpected("compute_ik", error))

    def _serve(self, ik: PositionIKRequest, response: GetPositionIK.Response) -> GetPositionIK.Response:
        outcome = problem_of(ik, self._request_context, self._current_state())
        if isinstance(outcome, Refusal):
            self.get_logger().warning(f"compute_ik refused ({outcome.code}): {outcome.message}")
            return _answer(response, outcome.code, outcome.message)
        with self._budget(outcome) as problem:
            result = self._solve(problem)
        response.solution.joint_state = joint_state(self.chain.joint_names, result.q, self.get_clock().now().to_msg())
        for note in problem.notes:
            self.get_logger().warning(f"compute_ik: {note}")
        code = MoveItErrorCodes.SUCCESS if result.success else MoveItErrorCodes.NO_IK_SOLUTION
        checked = ("free of self-collision (checked)",) if problem.avoid_collisions and result.success else ()
        return _answer(response, code, "; ".join((_describe(result), *checked, *problem.notes)))

    def _compute_fk(self, request: GetPositionFK.Request, response: GetPositionFK.Response) -> GetPositionFK.Response:
        try:
            return self._serve_fk(request, response)
        except Exception as error:
            return _answer(GetPositionFK.Response(), MoveItErrorCodes.FAILURE, self._unexpected("compute_fk", error))

    def _serve_fk(self, request: GetPositionFK.Request, response: GetPositionFK.Response) -> GetPositionFK.Response:
        outcome = fk_problem_of(request, self._request_context)
        if isinstance(outcome, Refusal):
            self.get_logger().warning(f"compute_fk refused ({outcome.code}): {outcome.message}")
            return _answer(response, outcome.code, outcome.message)
        T_frame_links = self._request_context.chain_links.poses(outcome.q, outcome.links, outcome.frame)
        stamp = self.get_clock().now().to_msg()
        response.pose_stamped = [
            PoseStamped(header=Header(frame_id=outcome.frame, stamp=stamp), pose=matrix_to_pose(T))
            for T in T_frame_links
        ]
        response.fk_link_names = list(outcome.links)
        placed = f"{len(outcome.links)} link{'s' if len(outcome.links) > 1 else ''}"
        return _answer(response, MoveItErrorCodes.SUCCESS, f"{placed} placed in the frame of {outcome.frame!r}")

    @contextlib.contextmanager
    def _budget(self, problem: Problem) -> Iterator[Problem]:
        """The problem with the budget it may use: above default_timeout_s only while one of the
        executor_threads - 1 long-solve slots is free, else cut to default_timeout_s (noted). So one thread
        is always free again within default_timeout_s, whatever the other requests asked for."""
        default_s = self.settings.default_timeout_s
        if problem.timeout_s <= default_s:
            yield problem
        elif self._long_solves.acquire(blocking=False):
            try:
                yield problem
            finally:
                self._long_solves.release()
        else:
            note = (
                f"timeout cut to default_timeout_s = {default_s:g} s: {self.settings.long_solves} requests with "
                f"longer budgets are already being solved"
            )
            yield dataclasses.replace(problem, timeout_s=default_s, notes=(*problem.notes, note))

    def _solve(self, problem: Problem) -> IKResult:
        settings = self.settings
        accept = None
        if problem.avoid_collisions:
            checker, positions = self.collision, problem.other_positions or None

            # The request's robot state's objects, then those held by attached_collision_object (not named there).
            named = {body.name for body in problem.attached}
            with self._world_lock:
                held = [body for name, (_, body) in self._held.items() if name not in named]
            attached = (*problem.attached, *held)

            def accept(q: np.ndarray) -> bool:
                """Collision-free: the acceptance test of an avoid_collisions request."""
                return not checker.in_collision(q, positions, attached)

        return self.solver.solve(problem.query(settings.tolerance, settings.seed_first, accept, self._stop))

    def _current_state(self) -> CurrentState:
        with self._current_lock:
            return CurrentState(self._current.copy(), self._current_known)

    def _on_joint_states(self, msg: JointState) -> None:
        try:
            with self._current_lock:
                for name, position in zip(msg.name, msg.position):
                    j = self._joint_index.get(name)
                    if j is not None and math.isfinite(position):
                        self._current[j] = position
                        self._current_known = True
        except Exception as error:
            self._unexpected("joint_states", error)

    def _on_collision_object(self, msg: CollisionObject) -> None:
        """ADD (replace), REMOVE (an empty id: all), APPEND (shapes added to the object) or MOVE (a new pose)
        a world object of primitives and meshes; its frame must be the base or a frame fixed to it (there is
        no TF listener)."""
        try:
            frame = msg.header.frame_id[1:] if msg.header.frame_id.startswith("/") else msg.header.frame_id
            T_base_frame = self._request_context.T_base_frame.get(frame or self.chain.base_link)
            if T_base_frame is None:
                raise ValueError(
                    f"collision object {echo(msg.id)}: frame {echo(msg.header.frame_id)} is not the base "
                    f"{self.chain.base_link!r} or a frame fixed to it; this node has no TF listener"
                )
            with self._world_lock:
                objects = self._world_objects
                if msg.operation == CollisionObject.REMOVE:
                    if msg.id:
                        objects.pop(msg.id, None)
                        self.collision.remove_object(msg.id)
                    else:
                        objects.clear()
                        self.collision.clear()
                    return
                if msg.operation == CollisionObject.MOVE:
                    if msg.id not in objects:
                        raise ValueError(f"MOVE of collision object {echo(msg.id)}, which was never added")
                    T_base_object, shapes = T_base_frame @ object_pose_to_matrix(msg.pose), objects[msg.id][1]
                elif msg.operation in (CollisionObject.ADD, CollisionObject.APPEND):
                    T_frame_object, shapes = collision_object_shapes(msg)
                    T_base_object = T_base_frame @ T_frame_object
                    if msg.operation == CollisionObject.APPEND and msg.id in objects:
                        T_base_old, old = objects[msg.id]
                        T_old_new = np.linalg.inv(T_base_old) @ T_base_object
                        T_base_object, shapes = T_base_old, old + [(g, T_old_new @ T) for g, T in shapes]
                else:
                    raise ValueError(f"collision object {echo(msg.id)}: unknown operation {msg.operation}")
                self.collision.add_object(msg.id, [(g, T_base_object @ T) for g, T in shapes])
                objects[msg.id] = (T_base_object, shapes)
        except ValueError as error:
            self.get_logger().warning(f"collision_object ignored: {error}")
        except Exception as error:  # a subscription callback's exception would end the process
            self._unexpected("collision_object", error)

    def _on_attached_collision_object(self, msg: AttachedCollisionObject) -> None:
        """As move_group: ADD with shapes holds a new object on link_name; ADD without shapes takes world object
        object.id off the world onto link_name where it is now (pymoveit2's attach_collision_object); REMOVE
        puts object.id (empty: every object of link_name, or every object) back into the world where it is
        now. "Now" is the current joint state (joint_states; mid-limits for joints never heard)."""
        try:
            current = self._current_state()
            checker, object_id = self.collision, msg.object.id
            with self._world_lock:
                if msg.object.operation == CollisionObject.REMOVE:
                    names = (
                        [object_id]
                        if object_id
                        else [name for name, (held, _) in self._held.items() if msg.link_name in ("", held.link)]
                    )
                    for name in names:
                        held, _ = self._held.pop(name, (None, None))
                        if held is None:
                            raise ValueError(f"attached object {echo(name)} is not held")
                        T_base_object = checker.link_pose(current.q, held.link) @ held.T_link_object
                        checker.add_object(name, [(g, T_base_object @ T) for g, T in held.shapes])
                        self._world_objects[name] = (T_base_object, held.shapes)
                    return
                if msg.object.operation != CollisionObject.ADD:
                    raise ValueError(
                        f"attached object {echo(object_id)}: operation {msg.object.operation!r} is not ADD or REMOVE"
                    )
                has_shapes = msg.object.primitives or msg.object.meshes or msg.object.planes
                if has_shapes:
                    outcome = held_object_of(msg, self._request_context, current)
                    if isinstance(outcome, Refusal):
                        raise ValueError(outcome.message)
                    held = outcome
                else:
                    if object_id not in self._world_objects:
                        raise ValueError(
                            f"attached object {echo(object_id)} has no shapes and no world object has that id"
                        )
                    if not checker.places(msg.link_name):
                        raise ValueError(
                            f"attached object {echo(object_id)}: link_name {echo(msg.link_name)} is not a link this "
                            f"node places"
                        )
                    if len(msg.touch_links) > self.settings.max_request_items:
                        raise ValueError(
                            f"attached object {echo(object_id)}: {len(msg.touch_links)} touch_links, more than "
                            f"max_request_items ({self.settings.max_request_items})"
                        )
                    T_base_object, shapes = self._world_objects[object_id]
                    T_link_object = np.linalg.inv(checker.link_pose(current.q, msg.link_name)) @ T_base_object
                    held = HeldObject(object_id, msg.link_name, T_link_object, shapes, tuple(msg.touch_links))
                self._held[object_id] = (held, held.body(checker))
                self._world_objects.pop(object_id, None)  # an attached object is no longer in the world
                checker.remove_object(object_id)
        except ValueError as error:
            self.get_logger().warning(f"attached_collision_object ignored: {error}")
        except Exception as error:  # a subscription callback's exception would end the process
            self._unexpected("attached_collision_object", error)

    def _on_goal(self, msg: PoseStamped) -> None:
        """Solve a goal pose from the current joint state; publish the solution as a joint command."""
        try:
            self._solve_goal(msg)
        except Exception as error:
            self._unexpected("goal_pose", error)

    def _solve_goal(self, msg: PoseStamped) -> None:
        outcome = problem_of(PositionIKRequest(pose_stamped=msg), self._request_context, self._current_state())
        if isinstance(outcome, Refusal):
            self.get_logger().warning(f"goal pose refused ({outcome.code}): {outcome.message}")
            return
        result = self._solve(outcome)
        if not result.success:
            self.get_logger().warning(f"goal pose: {_describe(result)}; no command published")
            return
        stamp = self.get_clock().now().to_msg()
        self._commands.publish(joint_state(self.chain.joint_names, result.q, stamp))
        if self._trajectories is not None:
            self._trajectories.publish(
                joint_trajectory(self.chain.joint_names, result.q, self.settings.trajectory_time_from_start_s, stamp)
            )
        self.get_logger().debug(f"goal pose: {_describe(result)}; command published")


def _empty_parameter_rule(argv: list[str]) -> Optional[str]:
    """The first ``-p name:=`` without a value among the ROS arguments, else None. rcl cannot parse one (it
    logs its own line and raises); an empty string is written ``-p "name:=''"``."""
    in_ros_args = False
    for i, token in enumerate(argv):
        if token == "--ros-args":
            in_ros_args = True
        elif token == "--":
            in_ros_args = False
        elif in_ros_args and token in ("-p", "--param") and i + 1 < len(argv) and argv[i + 1].endswith(":="):
            return argv[i + 1]
    return None


def main(args: Optional[list[str]] = None) -> int:
    """``ik_node``: run the node until Ctrl-C or SIGTERM. Exit 1, with one error line, when it cannot start."""
    logger = rclpy.logging.get_logger(NODE_NAME)
    empty = _empty_parameter_rule(sys.argv if args is None else args)
    if empty is not None:
        logger.error(
            f"cannot start: parameter rule {echo(empty)} has no value (an empty string is written -p \"NAME:=''\")"
        )
        return 1
    try:
        rclpy.init(args=args)
    except RCLError as error:  # other arguments rcl cannot parse (it has logged its own line too)
        logger.error(f"cannot start: bad ROS arguments: {echo(' '.join(str(error).split()))}")
        return 1
    try:
        try:
            node = IKNode()
        except StartupError as error:
            logger.error(f"cannot start: {' '.join(str(error).split())}")
            return 1
        except Exception:
            if rclpy.ok():
                raise
            return 0  # Ctrl-C during start-up: rclpy shut the context down under the constructor
        # The ~265 000 objects of start-up (torch, the model, rclpy) made every full garbage collection
        # a 160 ms pause inside some request's time budget; frozen, they are never scanned again.
        gc.freeze()
        executor = MultiThreadedExecutor(num_threads=node.settings.executor_threads)
        executor.add_node(node)
        try:
            executor.spin()
        finally:
            # Solves in flight end at their next step, so the threads are free to be joined at once.
            node.stop()
            executor.shutdown()
            node.destroy_node()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
