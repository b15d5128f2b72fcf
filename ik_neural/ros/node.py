"""The ROS 2 node ``ik_neural``: MoveIt's GetPositionIK on ``~/compute_ik`` and GetPositionFK on
``~/compute_fk``, goal poses in, joint commands out.

The node wires ROS to the rest: its parameters are ``NodeSettings`` (settings.py), start-up decisions are
startup.py's, a request becomes a problem or a refusal in request.py, the solver solves, and the
collision_object and attached_collision_object topics change the planning scene of scene.py. Goal poses
become commands in goal_stream.py (the ``Tracker``), on a goal thread of the node's own. Every topic is on
a companion node spun by a thread of its own (topic_thread.py says why); the services are on this node,
spun by whoever spins it (``ik_node``: a multi-threaded executor). Poses reach the solver as the tip
link's pose in the chain's base frame (metres, radians).

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
from typing import Any, Iterator, Optional

import rclpy
from geometry_msgs.msg import PoseStamped
from moveit_msgs.msg import AttachedCollisionObject, CollisionObject, MoveItErrorCodes, PositionIKRequest
from moveit_msgs.srv import GetPositionFK, GetPositionIK
from rcl_interfaces.msg import ParameterDescriptor
from rcl_interfaces.srv import ListParameters
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.exceptions import InvalidParameterTypeException
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, Header, String
from trajectory_msgs.msg import JointTrajectory

from ik_neural.constraints import ConstraintTest
from ik_neural.echo import echo, echo_list
from ik_neural.kernels.cache import compiling_notice
from ik_neural.network import load_network, read_network_metadata
from ik_neural.ros.goal_stream import Goal, GoalStream, LatestGoal, StreamCommand, status_text
from ik_neural.ros.messages import answer, describe, joint_state, joint_trajectory, matrix_to_pose
from ik_neural.ros.qos import COMMAND_QOS, DESCRIPTION_QOS, GOAL_QOS, SERVICE_QOS
from ik_neural.ros.request import (
    CurrentState,
    Problem,
    Refusal,
    RequestContext,
    fk_problem_of,
    problem_of,
)
from ik_neural.ros.scene import Scene
from ik_neural.ros.topic_thread import ShutdownWaker, TopicThread
from ik_neural.ros.startup import (
    NODE_NAME,
    Descriptions,
    StartupError,
    collision_checker,
    description_waits,
    descriptions,
    empty_parameter_rule,
    refuse_unknown_parameters,
    resolve_path,
    summary,
    wrong_type,
)
from ik_neural.ros.settings import NodeSettings, SettingsError, defaults, description
from ik_neural.solver import IKResult, IKSolver
from ik_neural.tracker import EXACT, Tracker
from ik_neural.urdf_model import UrdfModel

RCLError = _rclpy.RCLError


class IKNode(Node):
    """Serves IK for one chain. ``StartupError`` from the constructor: the node cannot serve."""

    def __init__(self, **node_options: Any) -> None:
        super().__init__(NODE_NAME, **node_options)
        # Set when the node stops: every solve in flight ends at its next step (as at its budget's end).
        self._stop = threading.Event()
        try:
            self._start()
        except BaseException:  # a start-up error, or Ctrl-C: the threads started so far end with the node
            self.destroy_node()
            raise

    def _start(self) -> None:
        self.settings = self._declare_settings()
        settings = self.settings
        urdf, urdf_origin, srdf, self._srdf_origin = self._descriptions()
        self._srdf_heard = srdf if self._srdf_origin.startswith("topic") else None  # the topic's SRDF in use
        try:
            model_file = resolve_path(settings.model_path, settings.package_folders) if settings.model_path else None
            metadata = read_network_metadata(model_file) if model_file else {}
            base_link = settings.base_link or metadata.get("base_link", "")
            tip_link = settings.tip_link or metadata.get("tip_link", "")
            if not base_link or not tip_link:
                raise StartupError("parameters base_link and tip_link must be set when no model_path gives them")
            model = UrdfModel.parse(urdf)
            self.chain = model.chain(base_link, tip_link)
            network = load_network(model_file, self.chain) if model_file else None
            # Inside the error handling: a chain whose numbers break the kernels fails here, in one line. The
            # collision checker's first check runs a kernel too.
            with compiling_notice(self.get_logger().info):
                self.collision = collision_checker(
                    settings, model, self.chain, srdf, self.get_logger().info, self.get_logger().warning
                )
                self._request_context = RequestContext.of_model(model, self.chain, settings, collision=self.collision)
                self.solver = IKSolver(self.chain, network=network, settings=settings.solving)
                self._tracker = Tracker(self.solver, settings.tolerance, settings.tracking, stop=self._stop)
                self.solver.warm_up()
                self._tracker.warm_up()
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

        # The world objects and the objects the robot holds, as move_group hears them (None: nothing to check).
        self._scene = Scene(self._request_context) if self.collision is not None else None
        # Goals: the subscription only keeps the newest (LatestGoal); one thread of its own commands them.
        self._goals = LatestGoal()
        self._next_goal_log_s = 0.0  # monotonic s: no log line about a goal before (status_log_period_s)
        self._stream = GoalStream(self._request_context, self._tracker, self._scene, settings.command_timeout_s)
        self._topics = self._create_topics()
        self._goal_thread = threading.Thread(target=self._command_goals, name="ik_neural goals", daemon=True)
        self._goal_thread.start()
        self._topics.start()
        # The services last, the summary just before them: whoever finds the services finds the node ready
        # and its log already saying what it serves.
        self.get_logger().info(self.summary())
        requests = ReentrantCallbackGroup()
        self.create_service(
            GetPositionIK, "~/compute_ik", self._compute_ik, qos_profile=SERVICE_QOS, callback_group=requests
        )
        self.create_service(
            GetPositionFK, "~/compute_fk", self._compute_fk, qos_profile=SERVICE_QOS, callback_group=requests
        )

    def _create_topics(self) -> TopicThread:
        """Every subscription and publisher, on the topic thread (topic_thread.py says why)."""
        topics = TopicThread(self)
        topics.subscription(JointState, "joint_states", self._on_joint_states, 10)
        if self._scene is not None:
            topics.subscription(CollisionObject, "collision_object", self._on_collision_object, 100)
            topics.subscription(
                AttachedCollisionObject, "attached_collision_object", self._on_attached_collision_object, 100
            )
        topics.subscription(PoseStamped, "~/goal_pose", self._on_goal, GOAL_QOS)
        if self.collision is not None and not (self.settings.robot_description_semantic or self.settings.srdf_path):
            topics.subscription(String, "robot_description_semantic", self._on_srdf, DESCRIPTION_QOS)
        self._commands = topics.publisher(JointState, "~/joint_commands", COMMAND_QOS)
        self._trajectories = topics.publisher(JointTrajectory, "~/joint_trajectory", COMMAND_QOS)
        self._positions = topics.publisher(Float64MultiArray, "~/position_commands", COMMAND_QOS)
        self._status = topics.publisher(String, "~/command_status", COMMAND_QOS)
        return topics

    def _on_srdf(self, msg: String) -> None:
        """An SRDF latched on robot_description_semantic once serving (move_group started after this node, or
        restarted): its disabled pairs replace the checker's. One that cannot be used is logged and ignored."""
        if not msg.data or msg.data == self._srdf_heard:
            return
        topic = self.resolve_topic_name("robot_description_semantic")
        try:
            self.collision.use_srdf(msg.data)
        except ValueError as error:
            self.get_logger().warning(
                f"SRDF on {topic} ignored (disabled pairs kept: {self.collision.disabled_source}): {echo(str(error))}"
            )
            return
        self._srdf_heard, self._srdf_origin = msg.data, "topic robot_description_semantic"
        self.get_logger().info(
            f"avoid_collisions now disables the pairs of the SRDF on {topic}: "
            f"{len(self.collision.enabled_pairs)} pairs checked"
        )

    def stop(self) -> None:
        """End every solve in flight at its next step; later solves end at once (the node is stopping)."""
        self._stop.set()
        if hasattr(self, "_goals"):  # not when start-up failed before the goal stream was made
            self._goals.close()

    def destroy_node(self) -> None:
        self.stop()
        if hasattr(self, "_goal_thread"):
            self._goal_thread.join(timeout=1.0)
        if hasattr(self, "_topics"):
            self._topics.close()
        super().destroy_node()

    # ------------------------------------------------------------------ start-up

    def _declare_settings(self) -> NodeSettings:
        """Every NodeSettings field declared as a read-only parameter, then checked as a whole; StartupError
        for a parameter the node does not have, or a value of another type."""
        # rclpy has no public accessor of the values it holds for a node (none up to Kilted's 9.1). Its
        # _parameter_overrides (so named since Dashing, rclpy#363) is where Node.__init__ gathers them: the -p
        # rules, the params files' sections rcl matched to this node's name (/** included) and the
        # parameter_overrides argument; declare_parameter reads its value there, so these are exactly the
        # values that take effect once their name is declared.
        given = self._parameter_overrides
        own = self.list_parameters([], ListParameters.Request.DEPTH_RECURSIVE).names  # rclpy's: use_sim_time, ...
        ignored = refuse_unknown_parameters(given, [*defaults(), *own])
        if ignored:
            shown = echo_list(sorted(ignored))
            self.get_logger().info(f"parameters of other components ignored (this node has no dotted names): {shown}")
        # Read-only: every value is checked and used once, at start-up; `ros2 param set` is refused.
        values: dict[str, Any] = {}
        for name, default in defaults().items():
            try:
                values[name] = self.declare_parameter(
                    name, default, ParameterDescriptor(description=description(name), read_only=True)
                ).value
            except InvalidParameterTypeException:  # its message repeats the value whole; wrong_type cuts it
                raise StartupError(wrong_type(name, given[name].value)) from None
        try:
            return NodeSettings(**values)
        except SettingsError as error:
            raise StartupError(str(error)) from None

    def _descriptions(self) -> Descriptions:
        """The robot descriptions (startup.descriptions), both latched topics waited for at once."""
        published = self._wait_for_latched(description_waits(self.settings))
        return descriptions(self.settings, published, self.resolve_topic_name("robot_description"))

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
        names = {name: self.resolve_service_name(name) for name in ("~/compute_ik", "~/compute_fk")}
        names.update({name: self.resolve_topic_name(name) for name in ("~/goal_pose", "~/joint_commands")})
        network_loaded = self.solver.network is not None
        return summary(self.settings, self.chain, network_loaded, self.collision, self._srdf_origin, names)

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
            return answer(GetPositionIK.Response(), MoveItErrorCodes.FAILURE, self._unexpected("compute_ik", error))

    def _serve(self, ik: PositionIKRequest, response: GetPositionIK.Response) -> GetPositionIK.Response:
        outcome = problem_of(ik, self._request_context, self._current_state())
        if isinstance(outcome, Refusal):
            self.get_logger().warning(f"compute_ik refused ({outcome.code}): {outcome.message}")
            return answer(response, outcome.code, outcome.message)
        with self._budget(outcome) as problem:
            result, constraints = self._solve(problem)
        response.solution.joint_state = joint_state(self.chain.joint_names, result.q, self.get_clock().now().to_msg())
        for note in problem.notes:
            self.get_logger().warning(f"compute_ik: {note}")
        success, said = result.success, [describe(result)]
        if constraints is not None:
            # The constraints are the solve's acceptance test: a SUCCESS (exact or approximate) passed it.
            if success:
                said.append(f"{len(constraints.constraints)} position and orientation constraints hold (checked)")
            elif constraints.rejected:
                said.append(constraints.rejections())
        if problem.avoid_collisions and success:
            said.append("free of self-collision (checked)")
        code = MoveItErrorCodes.SUCCESS if success else MoveItErrorCodes.NO_IK_SOLUTION
        return answer(response, code, "; ".join((*said, *problem.remarks, *problem.notes)))

    def _compute_fk(self, request: GetPositionFK.Request, response: GetPositionFK.Response) -> GetPositionFK.Response:
        try:
            return self._serve_fk(request, response)
        except Exception as error:
            return answer(GetPositionFK.Response(), MoveItErrorCodes.FAILURE, self._unexpected("compute_fk", error))

    def _serve_fk(self, request: GetPositionFK.Request, response: GetPositionFK.Response) -> GetPositionFK.Response:
        outcome = fk_problem_of(request, self._request_context)
        if isinstance(outcome, Refusal):
            self.get_logger().warning(f"compute_fk refused ({outcome.code}): {outcome.message}")
            return answer(response, outcome.code, outcome.message)
        T_frame_links = self._request_context.chain_links.poses(outcome.q, outcome.links, outcome.frame)
        stamp = self.get_clock().now().to_msg()
        response.pose_stamped = [
            PoseStamped(header=Header(frame_id=outcome.frame, stamp=stamp), pose=matrix_to_pose(T))
            for T in T_frame_links
        ]
        response.fk_link_names = list(outcome.links)
        placed = f"{len(outcome.links)} link{'s' if len(outcome.links) > 1 else ''}"
        return answer(response, MoveItErrorCodes.SUCCESS, f"{placed} placed in the frame of {outcome.frame!r}")

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

    def _solve(self, problem: Problem) -> tuple[IKResult, Optional[ConstraintTest]]:
        """The solve of ``problem`` and the test of its constraints (None: it has none), which counts the
        candidates each constraint rejected."""
        settings = self.settings
        # avoid_collisions is set only where the node has a checker, and so a scene.
        accept = (
            self._scene.collision_free(problem.attached, problem.other_positions) if problem.avoid_collisions else None
        )
        constraints = None
        if problem.constraints:
            # The constraints first (µs) and the collision check (far dearer) only for what they accept.
            constraints = ConstraintTest(self.chain, problem.constraints, then=accept)
            accept = constraints
        query = problem.query(settings.tolerance, settings.seed_first, accept, self._stop, settings.approximate)
        result = self.solver.solve(query)
        return result, constraints

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
        """A world object added, appended to, moved or removed (``Scene.collision_object``)."""
        try:
            self._ignored("collision_object", self._scene.collision_object(msg))
        except Exception as error:  # a subscription callback's exception would end the process
            self._unexpected("collision_object", error)

    def _on_attached_collision_object(self, msg: AttachedCollisionObject) -> None:
        """An object held, taken off the world or put back into it where it is now, at the current joint state
        (``Scene.attached_collision_object``)."""
        try:
            self._ignored(
                "attached_collision_object", self._scene.attached_collision_object(msg, self._current_state())
            )
        except Exception as error:  # a subscription callback's exception would end the process
            self._unexpected("attached_collision_object", error)

    def _ignored(self, topic: str, reason: Optional[str]) -> None:
        if reason is not None:
            self.get_logger().warning(f"{topic} ignored: {reason}")

    def _on_goal(self, msg: PoseStamped) -> None:
        """Keep the newest goal for the goal thread (an older one waiting is superseded)."""
        self._goals.put(Goal(msg, time.monotonic()))

    def _command_goals(self) -> None:
        """The goal thread: each newest goal commanded in turn (``GoalStream``), and a goal not reached yet
        again every follow_up_period_s while no newer one comes, until the node stops."""
        while not self._stop.is_set():
            wait_s = self.settings.follow_up_period_s if self._stream.following else 0.5
            goal = self._goals.take(timeout_s=wait_s) or self._stream.again(time.monotonic())
            if goal is None:
                continue
            try:
                self._command_goal(goal)
            except Exception as error:  # the goal thread must outlive any goal
                self._unexpected("goal_pose", error)

    def _command_goal(self, goal: Goal) -> None:
        outcome = self._stream.command(goal, self._current_state())
        if isinstance(outcome, Refusal):
            text = f"refused ({outcome.code}): {outcome.message}"
        else:
            text = status_text(outcome.command)
            if outcome.command.q is not None:
                self._publish_command(outcome)
        self._status.publish(String(data=text))
        now_s = time.monotonic()
        if (isinstance(outcome, Refusal) or outcome.command.status != EXACT) and now_s >= self._next_goal_log_s:
            # Throttled here: rclpy's own throttle inspects the caller's frame on every call (about 0.5 ms).
            self._next_goal_log_s = now_s + self.settings.status_log_period_s
            self.get_logger().warning(f"goal pose: {text}")

    def _publish_command(self, outcome: StreamCommand) -> None:
        """The command on every output: JointState, a one-point JointTrajectory reached in the step's time,
        and the positions alone in chain order (Float64MultiArray, as forward_command_controller takes)."""
        names, q = self.chain.joint_names, outcome.command.q
        stamp = self.get_clock().now().to_msg()
        self._commands.publish(joint_state(names, q, stamp))
        self._trajectories.publish(joint_trajectory(names, q, outcome.dt_s, stamp))
        self._positions.publish(Float64MultiArray(data=q.tolist()))


def serve(node: IKNode) -> None:
    """Spin ``node`` until Ctrl-C or SIGTERM; every thread of the node's has ended when this returns."""
    executor = None
    try:
        # The ~265 000 objects of start-up (torch, the model, rclpy) made every full garbage collection
        # a 160 ms pause inside some request's time budget; frozen, they are never scanned again.
        gc.freeze()
        executor = MultiThreadedExecutor(num_threads=node.settings.executor_threads)
        executor.add_node(node)
        waker = ShutdownWaker(node.context, executor)
        try:
            executor.spin()
        finally:
            waker.close()
    finally:
        # Solves in flight end at their next step, so the threads are free to be joined at once.
        node.stop()
        if executor is not None:
            executor.shutdown()
        node.destroy_node()


def main(args: Optional[list[str]] = None) -> int:
    """``ik_node``: run the node until Ctrl-C or SIGTERM. Exit 1, with one error line, when it cannot start."""
    logger = rclpy.logging.get_logger(NODE_NAME)
    empty = empty_parameter_rule(sys.argv if args is None else args)
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
    started = False
    try:
        try:
            node = IKNode()
        except StartupError as error:
            logger.error(f"cannot start: {' '.join(str(error).split())}")
            return 1
        except Exception:
            if rclpy.ok():
                raise
            raise ExternalShutdownException() from None  # rclpy shut the context down under the constructor
        started = True
        serve(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        if not started:
            logger.info("stopped during start-up")
    finally:
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
