"""The ik_neural node over a real (loopback) ROS graph: GetPositionIK in one process and across processes,
GetPositionFK, every error code, bad requests, abuse (a crash case, starvation, a burst of goals, Ctrl-C of a busy node),
start-up refusals, goal poses to joint commands, and a load test.

Every answer is judged by the independent reference (Pinocchio FK and limits, test/reference.py). Each node
gets a namespace of its own (pid and tag), so parallel test runs sharing a ROS domain by chance never answer
each other.
"""

import importlib.util
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from reference import ReferenceChain, pose_errors
from urdf_variants import (
    PANDA_URDF as PANDA_URDF_FILE,
    panda_urdf,
    with_continuous_joint,
    with_joint_origin,
    with_world_frame,
)

from ik_neural.robots import load_robot
from ik_neural.sampling import reachable_targets

ROOT = Path(__file__).resolve().parents[2]
PANDA_URDF = "package://ik_neural/models/panda/panda.urdf"
PANDA_MODEL = "package://ik_neural/models/panda/ik_network.pt"
UR5E_MODEL = "package://ik_neural/models/ur5e/ik_network.pt"
PANDA_JOINTS = [f"panda_joint{i}" for i in range(1, 8)]
TOL = 1e-5
SECONDS_TO_DISCOVER = 30.0
SECONDS_TO_ANSWER = 30.0
# The world frame that the in-process node's description adds above the Panda's base.
T_WORLD_BASE = np.array([[0.0, -1.0, 0.0, 0.5], [1.0, 0.0, 0.0, -0.2], [0.0, 0.0, 1.0, 0.75], [0, 0, 0, 1]])


def _message(response):
    """error_code.message, or None where moveit_msgs has no such field (before 2.4, e.g. Humble's)."""
    return getattr(response.error_code, "message", None)


def _namespace(tag):
    return f"/ik_test_{os.getpid()}_{tag}"


def _panda_description_with_world():
    """Panda's URDF with a link 'world' above panda_link0 (fixed, T_WORLD_BASE)."""
    from ik_neural.geometry import matrix_to_rpy

    xyz = " ".join(repr(float(v)) for v in T_WORLD_BASE[:3, 3])
    rpy = " ".join(repr(float(v)) for v in matrix_to_rpy(T_WORLD_BASE[:3, :3]))
    return with_world_frame(panda_urdf(), xyz, rpy)


def _panda_parameters(**overrides):
    from rclpy.parameter import Parameter

    values = {
        "urdf_path": PANDA_URDF,
        "model_path": PANDA_MODEL,
        "group_name": "panda_arm",
        "robot_description_timeout_s": 0.0,
        "robot_description_semantic_timeout_s": 0.0,
        **overrides,
    }
    return [Parameter(name, value=value) for name, value in values.items()]


class _Graph:
    """An ik_neural node and a client node in one process, spun by a multi-threaded executor."""

    def __init__(self, context, namespace, cli_args=None, **overrides):
        """The node's parameters: ``cli_args`` (e.g. a params file) when given, else the Panda's and ``overrides``."""
        from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor
        from rclpy.node import Node
        from moveit_msgs.srv import GetPositionFK, GetPositionIK
        from ik_neural.ros.node import IKNode

        self.namespace = namespace
        parameters = {"cli_args": cli_args} if cli_args else {"parameter_overrides": _panda_parameters(**overrides)}
        self.node = IKNode(context=context, namespace=namespace, **parameters)
        self.helper = Node("ik_test_helper", context=context, namespace=namespace)
        self.client = self.helper.create_client(GetPositionIK, f"{namespace}/ik_neural/compute_ik")
        self.fk_client = self.helper.create_client(GetPositionFK, f"{namespace}/ik_neural/compute_fk")
        self._publishers = {}
        # The node's services on a multi-threaded executor, as ik_node spins them; the helper's clients and
        # subscriptions on a single-threaded one (a multi-threaded executor falls behind a fast topic:
        # ik_neural/ros/topic_thread.py says why).
        self.executor = MultiThreadedExecutor(num_threads=4, context=context)
        self.executor.add_node(self.node)
        self.helper_executor = SingleThreadedExecutor(context=context)
        self.helper_executor.add_node(self.helper)
        self.threads = [
            threading.Thread(target=executor.spin, daemon=True) for executor in (self.executor, self.helper_executor)
        ]
        for thread in self.threads:
            thread.start()
        assert self.client.wait_for_service(timeout_sec=SECONDS_TO_DISCOVER), "compute_ik not discovered"

    def publisher(self, msg_type, topic):
        """The helper's publisher of ``msg_type`` on ``<namespace>/<topic>``, made once and kept: destroying
        one while the executor thread waits on the helper's entities can kill that thread (rclpy's
        InvalidHandle, "destruction was requested"; seen once in make test), and every later call hangs."""
        key = (msg_type, topic)
        if key not in self._publishers:
            self._publishers[key] = self.helper.create_publisher(msg_type, f"{self.namespace}/{topic}", 10)
        return self._publishers[key]

    def call(self, request, client=None):
        done = threading.Event()
        future = (client or self.client).call_async(request)
        future.add_done_callback(lambda _: done.set())
        assert done.wait(SECONDS_TO_ANSWER), "no answer in time"
        return future.result()

    def call_fk(self, request):
        if not self.fk_client.service_is_ready():
            assert self.fk_client.wait_for_service(timeout_sec=SECONDS_TO_DISCOVER), "compute_fk not discovered"
        return self.call(request, self.fk_client)

    def close(self):
        for executor, thread in zip((self.executor, self.helper_executor), self.threads):
            executor.shutdown()
            thread.join(timeout=10)
        self.helper.destroy_node()
        self.node.destroy_node()


@pytest.fixture(scope="module")
def graph(module_context):
    """The Panda node, its description given as a parameter with a 'world' frame above the base."""
    yield from panda_graph(module_context, "graph")


def panda_graph(module_context, tag: str):
    """The Panda node (``_Graph``, its namespace tagged ``tag``), its description given as a parameter with a
    'world' frame above the base; closed when the module ends."""
    # A generous default budget: a garbage collection of the test process can pause a solve for 0.2 s, and
    # these tests are about answers, not speed.
    graph = _Graph(
        module_context,
        _namespace(tag),
        robot_description=_panda_description_with_world(),
        urdf_path="",
        default_timeout_s=1.0,
    )
    yield graph
    graph.close()


@pytest.fixture(scope="module")
def commands(graph):
    """Every JointState the node publishes on ~/joint_commands and JointTrajectory on ~/joint_trajectory."""
    from sensor_msgs.msg import JointState
    from trajectory_msgs.msg import JointTrajectory

    received = {"commands": [], "trajectories": []}
    graph.helper.create_subscription(
        JointState, f"{graph.namespace}/ik_neural/joint_commands", received["commands"].append, 10
    )
    graph.helper.create_subscription(
        JointTrajectory, f"{graph.namespace}/ik_neural/joint_trajectory", received["trajectories"].append, 10
    )
    return received


def _request(T, frame="panda_link0", link="", group="panda_arm", seed=None, timeout_s=0.0):
    from moveit_msgs.srv import GetPositionIK
    from ik_neural.ros.messages import matrix_to_pose, seconds_to_duration

    request = GetPositionIK.Request()
    ik = request.ik_request
    ik.group_name, ik.ik_link_name = group, link
    ik.pose_stamped.header.frame_id = frame
    ik.pose_stamped.pose = matrix_to_pose(T)
    ik.timeout = seconds_to_duration(timeout_s)
    if seed is not None:
        ik.robot_state.joint_state.name, ik.robot_state.joint_state.position = (
            list(seed),
            [float(v) for v in seed.values()],
        )
    return request


def _solution(response, chain):
    state = response.solution.joint_state
    assert list(state.name) == chain.joint_names
    return np.array(state.position)


def _assert_within_limits(reference, q):
    """q within the URDF's limits as Pinocchio read them (continuous joints have none)."""
    model = reference.model
    for (index, nq), value in zip(reference.slots, q):
        if nq == 1:
            assert model.lowerPositionLimit[index] <= value <= model.upperPositionLimit[index], (index, value)


def _assert_reaches(reference, q, T_base_tip):
    position_error, rotation_error = reference.errors(q, T_base_tip)
    assert position_error <= TOL and rotation_error <= TOL, (position_error, rotation_error)
    _assert_within_limits(reference, q)


@pytest.fixture(scope="module")
def panda():
    return load_robot("panda").chain


@pytest.fixture(scope="module")
def reference():
    """The judge of every Panda answer: Pinocchio's FK of panda_link8 in panda_link0."""
    return ReferenceChain(PANDA_URDF_FILE, "panda_link0", "panda_link8", PANDA_JOINTS)


def _unreachable(x=5.0):
    T = np.eye(4)
    T[0, 3] = x
    return T


# ---------------------------------------------------------------------- answers


def test_solves_reachable_poses_checked_by_fk(graph, panda, reference, commands):
    from moveit_msgs.msg import MoveItErrorCodes

    _, targets = reachable_targets(panda, 20, seed=1)
    for T in targets:
        response = graph.call(_request(T))
        assert response.error_code.val == MoveItErrorCodes.SUCCESS, _message(response)
        if _message(response) is not None:
            assert response.error_code.source == "ik_neural"
            assert _message(response).startswith("solved: position error")
        assert response.solution.joint_state.header.stamp.sec > 0
        _assert_reaches(reference, _solution(response, panda), T)
    # Service answers never move the robot.
    assert commands["commands"] == [] and commands["trajectories"] == []


def test_solution_is_near_the_requests_seed(graph, panda, reference):
    q_true, targets = reachable_targets(panda, 10, seed=2)
    rng = np.random.default_rng(3)
    for q, T in zip(q_true, targets):
        seed = np.clip(q + rng.uniform(-0.05, 0.05, panda.dof), panda.lower, panda.upper)
        # Extra joints of the robot (none here but panda_joint8, fixed) are allowed in a full robot state.
        response = graph.call(_request(T, seed=dict(zip(panda.joint_names, seed))))
        q_solved = _solution(response, panda)
        _assert_reaches(reference, q_solved, T)
        assert np.abs(q_solved - q).max() < 0.1


def test_pose_in_a_frame_fixed_to_the_base_for_a_link_fixed_to_the_tip(graph, panda, reference):
    T_tip_link7 = ReferenceChain(PANDA_URDF_FILE, "panda_link8", "panda_link7", PANDA_JOINTS).forward(np.zeros(7))
    _, targets = reachable_targets(panda, 5, seed=4)
    for T_base_tip in targets:
        T_world_link7 = T_WORLD_BASE @ T_base_tip @ T_tip_link7
        response = graph.call(_request(T_world_link7, frame="world", link="panda_link7"))
        assert response.error_code.val == 1, _message(response)
        _assert_reaches(reference, _solution(response, panda), T_base_tip)
    # A leading slash (tf1 style) names the same frame; a one-entry pose_stamped_vector stands for pose_stamped.
    request = _request(np.eye(4))
    request.ik_request.pose_stamped.pose.position.x = math.nan  # unused: the vector wins
    request.ik_request.pose_stamped_vector = [
        _request(T_WORLD_BASE @ targets[0], frame="/world").ik_request.pose_stamped
    ]
    request.ik_request.ik_link_names = ["panda_link8"]
    response = graph.call(request)
    assert response.error_code.val == 1, _message(response)
    _assert_reaches(reference, _solution(response, panda), targets[0])


def test_joint_constraints_narrow_the_bounds(graph, panda, reference):
    from moveit_msgs.msg import JointConstraint, VisibilityConstraint

    q_true, targets = reachable_targets(panda, 5, seed=5)
    for q, T in zip(q_true, targets):
        request = _request(T)
        window = (q[0] - 0.02, q[0] + 0.03)
        request.ik_request.constraints.joint_constraints = [
            JointConstraint(
                joint_name="panda_joint1", position=q[0], tolerance_below=0.02, tolerance_above=0.03, weight=1.0
            )
        ]
        request.ik_request.constraints.visibility_constraints = [VisibilityConstraint()]
        response = graph.call(request)
        assert response.error_code.val == 1, _message(response)
        assert _message(response) is None or "unsupported constraints ignored (1 visibility)" in _message(response)
        q_solved = _solution(response, panda)
        _assert_reaches(reference, q_solved, T)
        assert window[0] <= q_solved[0] <= window[1]


def test_timeout_is_honoured_to_the_millisecond(graph, panda):
    from moveit_msgs.msg import MoveItErrorCodes

    unreachable = np.eye(4)
    unreachable[0, 3] = 5.0
    sent = time.perf_counter()
    response = graph.call(_request(unreachable, timeout_s=0.1205))
    round_trip_s = time.perf_counter() - sent
    assert response.error_code.val == MoveItErrorCodes.NO_IK_SOLUTION
    # MoveIt's own service would have cut this to 0 s, i.e. its default; this node's default is 1 s here.
    assert 0.1205 <= round_trip_s < 1.0


def test_requests_are_served_in_parallel(graph, panda):
    """Four unreachable poses, 0.4 s budget each, sent at once: answered together (serially: 1.6 s)."""
    from moveit_msgs.msg import MoveItErrorCodes

    far = np.eye(4)
    far[:3, 3] = [0.0, 4.0, 0.5]
    done = threading.Event()
    sent = time.perf_counter()
    futures = [graph.client.call_async(_request(far, timeout_s=0.4)) for _ in range(4)]
    for future in futures:
        future.add_done_callback(lambda _: done.set() if all(f.done() for f in futures) else None)
    assert done.wait(SECONDS_TO_ANSWER)
    assert time.perf_counter() - sent < 1.2
    assert [f.result().error_code.val for f in futures] == [MoveItErrorCodes.NO_IK_SOLUTION] * 4


# ---------------------------------------------------------------------- forward kinematics


def _fk_request(links, q=None, frame="", names=PANDA_JOINTS):
    from moveit_msgs.srv import GetPositionFK

    request = GetPositionFK.Request(fk_link_names=list(links))
    request.header.frame_id = frame
    if q is not None:
        request.robot_state.joint_state.name = list(names)
        request.robot_state.joint_state.position = [float(v) for v in q]
    return request


@pytest.mark.parametrize(
    "frame, expected_frame",
    [
        ("", "panda_link0"),
        ("panda_link0", "panda_link0"),
        ("world", "world"),
        ("/world", "world"),
        ("panda_link3", "panda_link3"),
    ],
)
def test_compute_fk_places_links_as_pinocchio_does_in_the_frame_asked(graph, panda, frame, expected_frame):
    """compute_fk against the independent reference, to 1e-9 m and 1e-9 rad, in the base and in other frames."""
    from moveit_msgs.msg import MoveItErrorCodes

    urdf = _panda_description_with_world()
    links = ["panda_link8", "panda_link7", "panda_link3", "panda_link0", "world"]
    references = {link: ReferenceChain(urdf, expected_frame, link, PANDA_JOINTS) for link in links}
    q_all, _ = reachable_targets(panda, 5, seed=11)
    for q in q_all:
        # A full robot state as MoveIt sends it (the fixed panda_joint8 too), in its own order.
        response = graph.call_fk(_fk_request(links, [0.0, *q[::-1]], frame, ["panda_joint8", *PANDA_JOINTS[::-1]]))
        assert response.error_code.val == MoveItErrorCodes.SUCCESS, _message(response)
        assert _message(response) is None or response.error_code.source == "ik_neural"
        assert list(response.fk_link_names) == links and len(response.pose_stamped) == len(links)
        for link, pose_stamped in zip(links, response.pose_stamped):
            assert pose_stamped.header.frame_id == expected_frame and pose_stamped.header.stamp.sec > 0
            position_m, rotation_rad = pose_errors(_matrix(pose_stamped.pose), references[link].forward(q))
            assert position_m <= 1e-9 and rotation_rad <= 1e-9, (link, position_m, rotation_rad)


def _matrix(pose):
    from ik_neural.ros.messages import pose_to_matrix

    return pose_to_matrix(pose)


def test_bad_compute_fk_requests_get_their_error_code_and_the_node_keeps_serving(graph, panda, monkeypatch):
    from moveit_msgs.msg import MoveItErrorCodes as C

    q = panda.middle
    cases = [
        ("unknown link", _fk_request(["panda_link8", "gripper"], q), C.INVALID_LINK_NAME),
        ("no link", _fk_request([], q), C.INVALID_LINK_NAME),
        ("missing joint", _fk_request(["panda_link8"], q[:6], names=PANDA_JOINTS[:6]), C.INVALID_ROBOT_STATE),
        ("no robot state", _fk_request(["panda_link8"]), C.INVALID_ROBOT_STATE),
        (
            "unknown joint name",
            _fk_request(["panda_link8"], [*q, 0.0], names=[*PANDA_JOINTS, "elbow"]),
            C.INVALID_ROBOT_STATE,
        ),
        ("unknown frame", _fk_request(["panda_link8"], q, frame="camera_link"), C.FRAME_TRANSFORM_FAILURE),
    ]
    for what, request, code in cases:
        response = graph.call_fk(request)
        assert response.error_code.val == code, (what, response.error_code.val, _message(response))
        assert list(response.pose_stamped) == [] and list(response.fk_link_names) == [], what
        assert _message(response) is None or (_message(response) and response.error_code.source == "ik_neural"), what
        assert graph.call_fk(_fk_request(["panda_link8"], q)).error_code.val == C.SUCCESS, what
    # An exception past the request logic: FAILURE with the reason, and the node serves on.
    monkeypatch.setattr(graph.node._request_context.chain_links, "poses", lambda *args: 1 / 0)
    response = graph.call_fk(_fk_request(["panda_link8"], q))
    assert response.error_code.val == C.FAILURE
    assert _message(response) is None or _message(response).startswith("internal error: ZeroDivisionError")
    monkeypatch.undo()
    assert graph.call_fk(_fk_request(["panda_link8"], q)).error_code.val == C.SUCCESS


# ---------------------------------------------------------------------- refusals


def _bad_requests(panda):
    """(what, request, expected error code)."""
    from moveit_msgs.msg import JointConstraint, MoveItErrorCodes as C

    T = panda.forward(panda.middle)

    def request(**changes):
        r = _request(T, **{k: v for k, v in changes.items() if k in ("frame", "link", "group", "seed", "timeout_s")})
        for path, value in changes.get("set", {}).items():
            owner = r.ik_request
            *parents, last = path.split(".")
            for part in parents:
                owner = getattr(owner, part)
            setattr(owner, last, value)
        return r

    far = np.eye(4)
    far[:3, 3] = [3.0, 0.0, 0.5]
    two_poses = request()
    two_poses.ik_request.pose_stamped_vector = [two_poses.ik_request.pose_stamped] * 2
    return [
        ("unknown group", request(group="right_arm"), C.INVALID_GROUP_NAME),
        ("link not fixed to the tip", request(link="panda_link3"), C.INVALID_LINK_NAME),
        ("unknown link", request(link="gripper"), C.INVALID_LINK_NAME),
        ("two poses", two_poses, C.INVALID_LINK_NAME),
        ("unknown frame", request(frame="camera_link"), C.FRAME_TRANSFORM_FAILURE),
        ("frame not fixed to the base", request(frame="panda_link2"), C.FRAME_TRANSFORM_FAILURE),
        ("seed with unknown joint", request(seed={"elbow": 0.1}), C.INVALID_ROBOT_STATE),
        (
            "seed lengths differ",
            request(
                set={
                    "robot_state.joint_state.name": ["panda_joint1", "panda_joint2"],
                    "robot_state.joint_state.position": [0.1],
                }
            ),
            C.INVALID_ROBOT_STATE,
        ),
        ("seed NaN", request(seed={"panda_joint1": math.nan}), C.INVALID_ROBOT_STATE),
        ("NaN position", request(set={"pose_stamped.pose.position.y": math.nan}), C.INVALID_GOAL_CONSTRAINTS),
        (
            "quaternion norm 2",
            request(
                set={
                    "pose_stamped.pose.orientation.w": 2.0,
                    "pose_stamped.pose.orientation.x": 0.0,
                    "pose_stamped.pose.orientation.y": 0.0,
                    "pose_stamped.pose.orientation.z": 0.0,
                }
            ),
            C.INVALID_GOAL_CONSTRAINTS,
        ),
        (
            "zero quaternion",
            request(set={f"pose_stamped.pose.orientation.{a}": 0.0 for a in "xyzw"}),
            C.INVALID_GOAL_CONSTRAINTS,
        ),
        (
            "constraint on unknown joint",
            request(
                set={
                    "constraints.joint_constraints": [
                        JointConstraint(joint_name="nope", tolerance_above=0.1, tolerance_below=0.1)
                    ]
                }
            ),
            C.INVALID_GOAL_CONSTRAINTS,
        ),
        (
            "constraint outside limits",
            request(
                set={
                    "constraints.joint_constraints": [
                        JointConstraint(
                            joint_name="panda_joint4", position=1.0, tolerance_above=0.1, tolerance_below=0.1
                        )
                    ]
                }
            ),
            C.INVALID_GOAL_CONSTRAINTS,
        ),
        ("negative timeout", request(set={"timeout.sec": -1}), C.FAILURE),
        ("unreachable pose", request(set={"pose_stamped.pose": _pose(far)}), C.NO_IK_SOLUTION),
    ]


def _pose(T):
    from ik_neural.ros.messages import matrix_to_pose

    return matrix_to_pose(T)


def test_bad_requests_get_their_error_code_and_the_node_keeps_serving(graph, panda, reference, commands):
    from moveit_msgs.msg import MoveItErrorCodes

    for what, request, code in _bad_requests(panda):
        response = graph.call(request)
        assert response.error_code.val == code, (what, response.error_code.val, _message(response))
        assert _message(response) is None or (_message(response) and response.error_code.source == "ik_neural"), what
        if code == MoveItErrorCodes.NO_IK_SOLUTION:
            # The best effort: the chain's joints, within limits, and the message says so.
            q = _solution(response, panda)
            _assert_within_limits(reference, q)
            assert _message(response) is None or "best effort" in _message(response)
        # The node still serves a good request after each bad one.
        T = panda.forward(panda.middle + 0.1)
        good = graph.call(_request(T))
        assert good.error_code.val == MoveItErrorCodes.SUCCESS, what
        _assert_reaches(reference, _solution(good, panda), T)
    assert commands["commands"] == [] and commands["trajectories"] == []


def test_zero_timeout_means_the_default_and_empty_names_mean_base_tip_and_group(graph, panda, reference):
    T = panda.forward(panda.middle - 0.2)
    response = graph.call(_request(T, frame="", link="", group="", timeout_s=0.0))
    assert response.error_code.val == 1, _message(response)
    _assert_reaches(reference, _solution(response, panda), T)
    # The default budget (1 s here) is what an unreachable pose with a zero timeout runs for.
    far = np.eye(4)
    far[0, 3] = 5.0
    sent = time.perf_counter()
    response = graph.call(_request(far, timeout_s=0.0))
    assert response.error_code.val == -31
    assert time.perf_counter() - sent >= 1.0


def test_avoid_collisions_policy_ignore_solves_and_says_collisions_were_not_checked(module_context, panda, reference):
    graph = _Graph(
        module_context,
        _namespace("ignore"),
        avoid_collisions_policy="ignore",
        model_path="",
        base_link="panda_link0",
        tip_link="panda_link8",
        default_timeout_s=1.0,
    )
    try:
        T = panda.forward(panda.middle + 0.2)
        request = _request(T)
        request.ik_request.avoid_collisions = True
        response = graph.call(request)
        assert response.error_code.val == 1
        assert _message(response) is None or "collisions NOT checked" in _message(response)
        _assert_reaches(reference, _solution(response, panda), T)
        # No model: numerical only, said at start-up.
        assert graph.node.solver.network is None and "numerical only" in graph.node.summary()
    finally:
        graph.close()


# ---------------------------------------------------------------------- topics


def _centre(chain):
    """A Panda configuration away from limits, singularities and (capsule) self-collision."""
    q = chain.middle.copy()
    q[3], q[5] = -1.5, 1.9
    return q


def _sine_path(q_centre, steps, dt_s, amplitude_rad=0.3, period_s=3.0):
    """A slow joint-space sine around q_centre, one row every dt_s."""
    t = np.arange(steps)[:, None] * dt_s
    return q_centre + amplitude_rad * np.sin(2 * np.pi * t / period_s + np.arange(q_centre.size))


class _Outputs:
    """What the node publishes for goals, as the helper hears it: commands (JointState), trajectories,
    positions (Float64MultiArray) and status lines; with ``echo``, every command is sent back on
    joint_states at once, as a robot that follows its commands reports them."""

    def __init__(self, graph, echo=False):
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray, String
        from trajectory_msgs.msg import JointTrajectory

        self.commands, self.trajectories, self.positions, self.status = [], [], [], []
        self.echo = echo
        joint_states = graph.publisher(JointState, "joint_states")

        def on_command(msg):
            self.commands.append(np.array(msg.position))
            if self.echo:
                joint_states.publish(msg)

        ns = f"{graph.namespace}/ik_neural"
        self._subscriptions = [
            graph.helper.create_subscription(JointState, f"{ns}/joint_commands", on_command, 1000),
            graph.helper.create_subscription(JointTrajectory, f"{ns}/joint_trajectory", self.trajectories.append, 1000),
            graph.helper.create_subscription(Float64MultiArray, f"{ns}/position_commands", self.positions.append, 1000),
            graph.helper.create_subscription(
                String, f"{ns}/command_status", lambda m: self.status.append(m.data), 1000
            ),
        ]
        self._graph = graph

    def close(self):
        for subscription in self._subscriptions:
            self._graph.helper.destroy_subscription(subscription)

    def wait_quiet(self, quiet_s=1.0):
        """Until no status came for quiet_s (every goal taken has its status)."""
        deadline, count, since = time.monotonic() + SECONDS_TO_ANSWER, -1, time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - since < quiet_s:
            time.sleep(0.05)
            if len(self.status) != count:
                count, since = len(self.status), time.monotonic()


def _stream_goals(graph, T_goals, rate_hz, frame="panda_link0"):
    """Publish the goals at rate_hz (deadline-paced), each stamped with the time it is meant for: goals
    sent late in a burst (this process also runs the node) still say how far apart they are."""
    from geometry_msgs.msg import PoseStamped
    from rclpy.time import Duration

    goals = graph.publisher(PoseStamped, "ik_neural/goal_pose")
    _wait_for_subscriber(goals)
    start, start_stamp = time.monotonic(), graph.helper.get_clock().now()
    for i, T in enumerate(T_goals):
        goal = _goal(T, frame)
        goal.header.stamp = (start_stamp + Duration(nanoseconds=round(i * 1e9 / rate_hz))).to_msg()
        goals.publish(goal)
        time.sleep(max(0.0, start + (i + 1) / rate_hz - time.monotonic()))


def _assert_continuous(commands, chain, dt_s):
    """No joint moves between two commands farther than its velocity limit allows in max_step_dt_s."""
    from ik_neural.ros.settings import NodeSettings

    steps = np.abs(np.diff(np.array(commands), axis=0))
    limit = chain.velocity_limits * NodeSettings().max_step_dt_s
    bad = np.flatnonzero((steps > limit + 1e-9).any(axis=1))
    assert steps.size == 0 or (steps <= limit + 1e-9).all(), (
        bad,
        steps.max(axis=0),
        [np.round(commands[i], 3) for i in bad[:2]],
        [np.round(commands[i + 1], 3) for i in bad[:2]],
    )


def _nearest_goal_errors(reference, q, T_goals):
    """The reference's (position m, rotation rad) errors of q to the goal it is nearest."""
    return min((reference.errors(q, T) for T in T_goals), key=lambda e: e[0])


def test_a_goal_stream_with_an_echoing_robot_is_followed_exactly_on_every_output(graph, panda, reference):
    """100 Hz goals along a smooth path; the robot echoes each command on joint_states. Every command is
    exact for a goal of the path, near the robot's state, continuous; the trajectory and the positions
    carry the same command, the trajectory point timed to the step."""
    from sensor_msgs.msg import JointState

    from ik_neural.ros.settings import NodeSettings

    path = _sine_path(_centre(panda), 150, 0.01)
    T_goals = panda.forward(path)
    outputs = _Outputs(graph, echo=True)
    try:
        joint_states = graph.publisher(JointState, "joint_states")
        time.sleep(NodeSettings().command_timeout_s)  # any earlier command is stale: the joint state is the start
        for _ in range(3):
            joint_states.publish(JointState(name=panda.joint_names, position=path[0].tolist()))
            time.sleep(0.05)
        _stream_goals(graph, T_goals, rate_hz=100.0)
        outputs.wait_quiet()
    finally:
        outputs.close()
    assert outputs.commands and len(outputs.status) == len(outputs.commands)
    assert all(text.startswith("exact") for text in outputs.status), [
        (i, t) for i, t in enumerate(outputs.status) if t[0] != "e"
    ][:5] + [len(outputs.status)]
    assert np.abs(outputs.commands[0] - path[0]).max() < 0.05
    for q in outputs.commands:
        assert max(_nearest_goal_errors(reference, q, T_goals)) <= TOL
    _assert_continuous(outputs.commands, panda, 0.01)
    _assert_reaches(reference, outputs.commands[-1], T_goals[-1])
    last_point = outputs.trajectories[-1].points[0]
    assert list(outputs.trajectories[-1].joint_names) == panda.joint_names
    assert np.array_equal(last_point.positions, outputs.commands[-1])
    assert np.array_equal(outputs.positions[-1].data, outputs.commands[-1])
    time_from_start_s = last_point.time_from_start.sec + 1e-9 * last_point.time_from_start.nanosec
    assert 0.0 < time_from_start_s <= NodeSettings().max_step_dt_s


def test_without_joint_states_the_first_goal_is_solved_in_full_then_tracked_through_the_wrist(
    module_context, panda, reference
):
    """A node that never heard joint_states: the first goal is solved in full, the rest are stepped from the
    last command, continuous, along a path that takes joint 6 through the wrist singularity (the Jacobian's
    smallest singular value near 0) and back."""
    centre = _centre(panda)
    sweep_rad = np.linspace(2.8, 3.7, 91)
    smallest = [
        np.linalg.svd(panda.jacobian(np.r_[centre[:5], j6, centre[6:]]), compute_uv=False)[-1] for j6 in sweep_rad
    ]
    singular_rad = sweep_rad[int(np.argmin(smallest))]
    assert min(smallest) < 0.02
    path = _sine_path(centre, 200, 0.01, amplitude_rad=0.05)
    path[:, 5] = singular_rad - 0.35 * np.cos(np.linspace(0.0, 2 * np.pi, 200))  # up through it and back
    graph = _Graph(module_context, _namespace("nostate"))
    outputs = _Outputs(graph)
    try:
        _stream_goals(graph, panda.forward(path), rate_hz=100.0)
        outputs.wait_quiet()
    finally:
        outputs.close()
        graph.close()
    assert outputs.status[0].startswith("exact")
    _assert_reaches(reference, outputs.commands[0], panda.forward(path[0]))
    _assert_continuous(outputs.commands, panda, 0.01)
    _assert_reaches(reference, outputs.commands[-1], panda.forward(path[-1]))


def test_an_unreachable_stretch_is_approximate_and_exact_again_once_back_in_reach(graph, panda, reference):
    path = _sine_path(_centre(panda), 160, 0.01)
    T_goals = panda.forward(path)
    T_goals[40:80, :3, 3] *= 1.6  # beyond the Panda's reach
    T_goals = np.concatenate([T_goals, np.repeat(T_goals[-1:], 40, axis=0)])  # then rest at the last goal
    outputs = _Outputs(graph)
    try:
        time.sleep(0.6)
        _stream_goals(graph, T_goals, rate_hz=100.0)
        outputs.wait_quiet()
    finally:
        outputs.close()
    assert any(text.startswith("approximate: ") for text in outputs.status)
    _assert_continuous(outputs.commands, panda, 0.01)
    _assert_reaches(reference, outputs.commands[-1], T_goals[-1])


def test_commands_never_enter_a_world_object_in_the_way(graph, panda, reference):
    """A box over the tip's path: the arm holds before it (status 'held'), judged on the real meshes."""
    from moveit_msgs.msg import CollisionObject
    from shape_msgs.msg import SolidPrimitive

    from reference import PandaMeshJudge

    from ik_neural.geometry import transform

    path = _sine_path(_centre(panda), 150, 0.01)
    T_goals = panda.forward(path)
    box_center_m, box_size_m = T_goals[100, :3, 3], (0.08, 0.08, 0.08)
    judge = PandaMeshJudge(panda.joint_names, panda.middle, box_center_m, box_size_m)
    assert judge.hits_box(path[100]) and not judge.hits_box(path[0])
    objects = graph.publisher(CollisionObject, "collision_object")
    box = CollisionObject(id="stream_box", operation=CollisionObject.ADD)
    box.header.frame_id = "panda_link0"
    box.pose = _pose(np.eye(4))
    box.primitives = [SolidPrimitive(type=SolidPrimitive.BOX, dimensions=list(box_size_m))]
    box.primitive_poses = [_pose(transform(np.eye(3), box_center_m))]
    outputs = _Outputs(graph)
    try:
        _wait_for_subscriber(objects)
        objects.publish(box)
        time.sleep(0.6)
        _stream_goals(graph, T_goals, rate_hz=100.0)
        outputs.wait_quiet()
    finally:
        outputs.close()
        objects.publish(CollisionObject(id="stream_box", operation=CollisionObject.REMOVE))
        time.sleep(0.2)
    assert any(text.startswith("held: the step collides") for text in outputs.status)
    assert not any(judge.hits_box(q) for q in outputs.commands)
    _assert_continuous(outputs.commands, panda, 0.01)


def test_a_flood_of_goals_and_joint_states_leaves_the_service_answering(graph, panda, reference):
    """Junk and valid goals and joint states as fast as one thread sends them, while compute_ik is called:
    every request is answered, right."""
    from geometry_msgs.msg import PoseStamped
    from moveit_msgs.msg import MoveItErrorCodes
    from sensor_msgs.msg import JointState

    goals = graph.publisher(PoseStamped, "ik_neural/goal_pose")
    joint_states = graph.publisher(JointState, "joint_states")
    _, targets = reachable_targets(panda, 20, seed=21)
    far = np.eye(4)
    far[0, 3] = 5.0
    junk = [_goal(targets[0], frame="nowhere"), _goal(far), _goal(targets[1])]
    state = JointState(name=[*panda.joint_names, "unknown"], position=[*panda.middle, math.nan])
    stop = threading.Event()

    def flood():
        while not stop.is_set():
            for goal in junk:
                goals.publish(goal)
                joint_states.publish(state)

    flooder = threading.Thread(target=flood, daemon=True)
    flooder.start()
    try:
        for T in targets:
            response = graph.call(_request(T))
            assert response.error_code.val == MoveItErrorCodes.SUCCESS, _message(response)
            _assert_reaches(reference, _solution(response, panda), T)
    finally:
        stop.set()
        flooder.join(timeout=5)


def test_robot_description_from_the_topic(module_context, panda):
    from rclpy.node import Node
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String
    from ik_neural.ros.node import IKNode

    namespace = _namespace("topic")
    publisher_node = Node("robot_state_publisher", context=module_context, namespace=namespace)
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
    publisher = publisher_node.create_publisher(String, "robot_description", latched)
    publisher.publish(String(data=load_robot("panda").urdf_path.read_text()))
    try:
        node = IKNode(
            context=module_context,
            namespace=namespace,
            parameter_overrides=_panda_parameters(urdf_path="", robot_description_timeout_s=20.0),
        )
        assert node.chain.fingerprint == panda.fingerprint
        node.destroy_node()
    finally:
        publisher_node.destroy_node()


# ---------------------------------------------------------------------- abuse


def _wait_all(futures, timeout_s):
    deadline = time.monotonic() + timeout_s
    while not all(f.done() for f in futures) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(f.done() for f in futures), "not all answered in time"
    return [f.result() for f in futures]


def test_an_overflowing_window_on_a_continuous_joint_is_refused_and_the_node_keeps_serving(module_context):
    """Issue 11's crash: the window of {-1e308, above 0, below 1e308} overflows to -inf; once, that ended the node."""
    from moveit_msgs.msg import JointConstraint, MoveItErrorCodes

    urdf = with_continuous_joint(panda_urdf(), "panda_joint1")
    graph = _Graph(
        module_context,
        _namespace("continuous"),
        robot_description=urdf,
        urdf_path="",
        model_path="",
        base_link="panda_link0",
        tip_link="panda_link8",
        default_timeout_s=1.0,
    )
    reference = ReferenceChain(urdf, "panda_link0", "panda_link8", PANDA_JOINTS)
    try:
        chain = graph.node.chain
        request = _request(chain.forward(chain.middle))
        request.ik_request.constraints.joint_constraints = [
            JointConstraint(joint_name="panda_joint1", position=-1e308, tolerance_above=0.0, tolerance_below=1e308)
        ]
        response = graph.call(request)
        assert response.error_code.val == MoveItErrorCodes.INVALID_GOAL_CONSTRAINTS, _message(response)
        # The next request is answered; a window past pi on the continuous joint is searched where it lies.
        q = chain.middle + 0.1
        q[0] = 3.3
        T = reference.forward(q)
        request = _request(T)
        request.ik_request.constraints.joint_constraints = [
            JointConstraint(joint_name="panda_joint1", position=3.3, tolerance_above=0.1, tolerance_below=0.1)
        ]
        response = graph.call(request)
        assert response.error_code.val == MoveItErrorCodes.SUCCESS, _message(response)
        q_solved = _solution(response, chain)
        _assert_reaches(reference, q_solved, T)
        assert 3.2 <= q_solved[0] <= 3.4
    finally:
        graph.close()


def test_endless_unreachable_requests_leave_a_thread_for_a_valid_one(graph, panda, reference):
    """Four unreachable poses asking for 2**31 - 1 s each: capped at max_timeout_s (5 s), and only three
    (executor_threads - 1) keep a budget above default_timeout_s (1 s here); a valid request sent meanwhile
    is answered within its own budget + 1 s."""
    from moveit_msgs.msg import MoveItErrorCodes

    endless = _request(_unreachable())
    endless.ik_request.timeout.sec = 2**31 - 1
    futures = [graph.client.call_async(endless) for _ in range(4)]
    time.sleep(0.5)  # all four taken by the node's threads
    T = panda.forward(panda.middle + 0.05)
    sent = time.perf_counter()
    response = graph.call(_request(T, timeout_s=1.0))
    waited_s = time.perf_counter() - sent
    assert response.error_code.val == MoveItErrorCodes.SUCCESS, _message(response)
    _assert_reaches(reference, _solution(response, panda), T)
    assert waited_s <= 1.0 + 1.0, waited_s
    answers = _wait_all(futures, SECONDS_TO_ANSWER)
    assert [a.error_code.val for a in answers] == [MoveItErrorCodes.NO_IK_SOLUTION] * 4
    if _message(answers[0]) is not None:
        messages = [_message(a) for a in answers]
        assert all("capped to max_timeout_s = 5 s" in m for m in messages), messages
        assert sum("cut to default_timeout_s = 1 s" in m for m in messages) == 1, messages


def test_an_unexpected_error_is_answered_failure_and_the_node_keeps_serving(
    graph, panda, reference, commands, monkeypatch
):
    from geometry_msgs.msg import PoseStamped
    from moveit_msgs.msg import MoveItErrorCodes

    def broken_solve(*args, **kwargs):
        raise RuntimeError("x" * 100_000)

    monkeypatch.setattr(graph.node.solver, "solve", broken_solve)
    T = panda.forward(panda.middle + 0.15)
    response = graph.call(_request(T))
    assert response.error_code.val == MoveItErrorCodes.FAILURE
    assert _message(response) is None or (
        _message(response).startswith("internal error: RuntimeError") and len(_message(response)) < 1000
    )
    # A goal meets such an error in the goal stream: nothing is published, and the node lives on.
    monkeypatch.setattr(graph.node._tracker, "step", broken_solve)
    published = len(commands["commands"])
    goals = graph.publisher(PoseStamped, "ik_neural/goal_pose")
    _wait_for_subscriber(goals)
    goals.publish(_goal(T))
    time.sleep(1.0)
    assert len(commands["commands"]) == published
    monkeypatch.undo()
    response = graph.call(_request(T))
    assert response.error_code.val == MoveItErrorCodes.SUCCESS, _message(response)
    _assert_reaches(reference, _solution(response, panda), T)


def _goal(T, frame="panda_link0"):
    from geometry_msgs.msg import PoseStamped

    goal = PoseStamped()
    goal.header.frame_id = frame
    goal.pose = _pose(T)
    return goal


def _wait_for_subscriber(publisher):
    deadline = time.monotonic() + SECONDS_TO_DISCOVER
    while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert publisher.get_subscription_count() > 0, "no subscriber discovered"


# ---------------------------------------------------------------------- start-up


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (
            {"model_path": UR5E_MODEL, "base_link": "panda_link0", "tip_link": "panda_link8"},
            r"trained for chain fingerprint \w+ .* has fingerprint \w+",
        ),
        ({"tip_link": "panda_gripper"}, r"tip_link 'panda_gripper' is not a link"),
        ({"urdf_path": "/nonexistent/robot.urdf"}, r"cannot read URDF file '/nonexistent/robot.urdf'"),
        ({"robot_description": '<robot name="broken"><link name="a"/><joint'}, r"malformed URDF XML"),
        ({"urdf_path": ""}, r"no robot description"),
        ({"model_path": "/nonexistent/net.pt"}, r"IK network file /nonexistent/net.pt does not exist"),
        ({"model_path": "", "base_link": ""}, r"base_link and tip_link must be set"),
        ({"default_timeout_s": -1.0}, r"default_timeout_s must be a positive number"),
        ({"avoid_collisions_policy": "maybe"}, r"avoid_collisions_policy must be one of"),
        ({"default_timeout_s": 1}, r"default_timeout_s must be a float, written with a point \(1.0, not 1\)"),
        ({"max_timeout_s": 0.01}, r"max_timeout_s \(0.01\) must be at least default_timeout_s"),
        ({"executor_threads": 0}, r"executor_threads must be an integer of at least 1"),
        ({"max_request_items": 0}, r"max_request_items must be an integer of at least 1"),
        (
            {"urdf_path": "", "robot_description": with_joint_origin(panda_urdf(), "panda_joint3", "nan 0 0")},
            r"joint 'panda_joint3' has a non-finite origin xyz",
        ),
    ],
)
def test_start_up_refusals_name_the_problem(module_context, overrides, expected):
    from ik_neural.ros.node import IKNode, StartupError

    if "model_path" in overrides and overrides["model_path"] == "":
        overrides = {**overrides, "tip_link": "panda_link8"}
    with pytest.raises(StartupError, match=expected):
        IKNode(
            context=module_context, namespace=_namespace("refused"), parameter_overrides=_panda_parameters(**overrides)
        )


def test_an_error_in_the_solvers_warm_up_is_a_start_up_refusal(module_context, monkeypatch):
    from ik_neural.ros.node import IKNode, StartupError
    from ik_neural.solver import IKSolver

    def broken_warm_up(self):
        raise ValueError("a kernel met a number it cannot take")

    monkeypatch.setattr(IKSolver, "warm_up", broken_warm_up)
    with pytest.raises(StartupError, match="a kernel met a number it cannot take"):
        IKNode(context=module_context, namespace=_namespace("warm_up"), parameter_overrides=_panda_parameters())


def _start_node(namespace, *ros_args):
    """ik_node in its own process (and process group) with config/panda.yaml."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ik_neural.ros.node",
            "--ros-args",
            "--params-file",
            str(ROOT / "config" / "panda.yaml"),
            "-r",
            f"__ns:={namespace}",
            "-p",
            "robot_description_timeout_s:=0.0",
            "-p",
            "robot_description_semantic_timeout_s:=0.0",
            *ros_args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _stop(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.stdout.read()


@pytest.mark.parametrize(
    "case",
    ["fingerprint", "empty value", "non-finite URDF", "misspelt -p", "misspelt in a params file", "policy off"],
)
def test_start_up_refusal_in_its_own_process_is_one_error_line_and_exit_1(case, tmp_path):
    broken_urdf = tmp_path / "panda_inf.urdf"
    broken_urdf.write_text(with_joint_origin(panda_urdf(), "panda_joint2", "0 inf 0"))
    namespace = _namespace("refusal")
    # A section for the node by its full name and one for every node (/**): rclpy applies both to it.
    typos = tmp_path / "typos.yaml"
    typos.write_text(
        f"{namespace}/ik_neural:\n  ros__parameters:\n    modle_path: x.pt\n"
        "/**:\n  ros__parameters:\n    grup_name: arm\n"
    )
    ros_args, expected = {
        "fingerprint": (["-p", f"model_path:={UR5E_MODEL}"], ["fingerprint"]),
        "empty value": (["-p", "model_path:="], ["model_path:="]),  # rcl takes no empty value: quotes are needed
        "non-finite URDF": (
            ["-p", f"urdf_path:={broken_urdf}"],
            ["joint 'panda_joint2' has a non-finite origin xyz"],
        ),
        "misspelt -p": (
            # rclpy's own parameter is no mistake, nor another component's dotted one (MoveIt's launch files)
            ["-p", "model_pth:=x.pt", "-p", "use_sim_time:=false", "-p", "planning_pipelines.pipeline_names:=[ompl]"],
            ["unknown parameter 'model_pth' (did you mean 'model_path'?)"],
        ),
        "misspelt in a params file": (
            ["--params-file", str(typos)],
            [
                "unknown parameters ",
                "'modle_path' (did you mean 'model_path'?)",
                "'grup_name' (did you mean 'group_name'?)",
            ],
        ),
        "policy off": (  # YAML's off is a bool
            ["-p", "avoid_collisions_policy:=off"],
            [
                "avoid_collisions_policy must be one of 'check', 'refuse', 'ignore', got the bool false",
                "quote a string: -p \"avoid_collisions_policy:='check'\"",
            ],
        ),
    }[case]
    process = _start_node(namespace, *ros_args)
    try:
        process.wait(timeout=120)
    finally:
        output = _stop(process)
    assert process.returncode == 1, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and "[ERROR]" in lines[0] and "cannot start" in lines[0], output
    assert all(fragment in lines[0] for fragment in expected), output


def _box_stl(half_extents_m) -> str:
    """An ASCII STL of a box centred at the origin (12 triangles), as a mesh file of a URDF's collision."""
    hx, hy, hz = half_extents_m
    corners = [(sx * hx, sy * hy, sz * hz) for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]
    faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    facets = []
    for a, b, c, d in faces:
        for triangle in ((a, b, c), (a, c, d)):
            vertices = "".join(f"   vertex {x} {y} {z}\n" for x, y, z in (corners[i] for i in triangle))
            facets.append(f" facet normal 0 0 0\n  outer loop\n{vertices}  endloop\n endfacet\n")
    return "solid box\n" + "".join(facets) + "endsolid box\n"


def test_package_meshes_resolve_from_package_paths_and_a_missing_package_names_the_parameter(tmp_path):
    """A URDF whose link1 collides as a package:// mesh of a package that is not installed: with the folder
    holding it in package_paths the node starts and checks self-collision with it, saying once that it made
    the mesh its convex piece (its cached pieces removed first); without, one error line names the package
    and the parameter. A mesh file missing from the package stops the start naming the file, or with
    skip_unreadable_meshes is left out with a warning naming the link and the file."""
    from ik_neural.convex_pieces import cache_dir, cache_key

    meshes = tmp_path / "src" / "test_meshes" / "meshes"
    meshes.mkdir(parents=True)
    (meshes / "link1.stl").write_text(_box_stl((0.06, 0.06, 0.1)))
    (cache_dir() / f"{cache_key((meshes / 'link1.stl').read_bytes(), (1.0, 1.0, 1.0))}.npz").unlink(missing_ok=True)
    urdf = re.sub(
        r'(<link name="panda_link1">).*?(</link>)',
        r'\1<collision><origin xyz="0 -0.03 -0.07"/><geometry>'
        r'<mesh filename="package://test_meshes/meshes/link1.stl"/></geometry></collision>\2',
        panda_urdf(),
        count=1,
        flags=re.S,
    )
    urdf_file = tmp_path / "panda_meshes.urdf"
    urdf_file.write_text(urdf)
    namespace = _namespace("package_paths")
    served = _start_node(namespace, "-p", f"urdf_path:={urdf_file}", "-p", f"package_paths:={tmp_path / 'src'}")
    try:
        deadline, output = time.monotonic() + 120, ""
        while "serving" not in output and served.poll() is None and time.monotonic() < deadline:
            output += served.stdout.readline()
    finally:
        output += _stop(served)
    assert "avoid_collisions checks self-collision of 11 links" in output and "[ERROR]" not in output, output
    assert re.search(
        r"convex pieces: \d+ collision meshes -> \d+ pieces \(1 built now, 0 of them decomposed\)", output
    ), output
    refused = _start_node(namespace, "-p", f"urdf_path:={urdf_file}")
    try:
        refused.wait(timeout=120)
    finally:
        output = _stop(refused)
    assert refused.returncode == 1, output
    assert "package 'test_meshes' is not in the ament index" in output and "package_paths" in output, output

    missing_file = tmp_path / "panda_missing_mesh.urdf"
    missing_file.write_text(urdf.replace("meshes/link1.stl", "meshes/nosuch.stl"))
    package_paths = f"package_paths:={tmp_path / 'src'}"
    refused = _start_node(namespace, "-p", f"urdf_path:={missing_file}", "-p", package_paths)
    try:
        refused.wait(timeout=120)
    finally:
        output = _stop(refused)
    assert refused.returncode == 1 and "package://test_meshes/meshes/nosuch.stl" in output, output
    skipped = _start_node(
        namespace, "-p", f"urdf_path:={missing_file}", "-p", package_paths, "-p", "skip_unreadable_meshes:=true"
    )
    try:
        deadline, output = time.monotonic() + 120, ""
        while "serving" not in output and skipped.poll() is None and time.monotonic() < deadline:
            output += skipped.stdout.readline()
    finally:
        output += _stop(skipped)
    assert "[WARN]" in output and "serving" in output, output
    assert "'package://test_meshes/meshes/nosuch.stl' of link 'panda_link1' skipped" in output, output


def _client(namespace, *args):
    """ik_client in its own process (and process group), asking the node of ``namespace``."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ik_neural.ros.client",
            "--service",
            f"{namespace}/ik_neural/compute_ik",
            "--wait-s",
            str(SECONDS_TO_DISCOVER),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _load_client(namespace, count, seed, json_path):
    """ik_client sending ``count`` random Panda poses (``seed``), its summary written to ``json_path``."""
    # A generous budget: 4 clients share 2 cores here, and this test is about answers, not speed.
    return _client(
        namespace,
        *("--robot", "panda", "--group", "panda_arm", "--count", str(count), "--random-seed", str(seed)),
        *("--quiet", "--json", str(json_path), "--timeout-ms", "1000"),
    )


def test_ik_client_avoid_collisions_gets_checked_answers(tmp_path):
    """ik_client --avoid-collisions against the node as config/panda.yaml starts it: every answer is
    SUCCESS (right by the client's FK check) or NO_IK_SOLUTION, most SUCCESS, from a node that checks."""
    namespace = _namespace("client_collisions")
    node = _start_node(namespace)
    try:
        client = _client(
            namespace,
            *("--robot", "panda", "--count", "30", "--group", "panda_arm", "--avoid-collisions"),
            *("--json", str(tmp_path / "out.json")),
        )
        out, _ = client.communicate(timeout=300)
    finally:
        node_output = _stop(node)
    summary = json.loads((tmp_path / "out.json").read_text())
    assert client.returncode == 0 and (summary["answered"], summary["wrong"]) == (30, 0), out
    assert set(summary["codes"]) <= {"SUCCESS", "NO_IK_SOLUTION"} and summary["codes"].get("SUCCESS", 0) >= 20, summary
    assert "avoid_collisions checks self-collision" in node_output, node_output


def test_ik_client_fails_saying_why_when_no_request_succeeds(tmp_path):
    """Another group, or another tip than the node's (the client names its tip, panda_link6, in ik_link_name):
    every answer is a refusal (INVALID_LINK_NAME, not a solution for the node's tip judged WRONG), and
    ik_client exits 1, its last line saying why."""
    namespace = _namespace("client_refused")
    node = _start_node(namespace)
    try:
        wrong_group = _client(namespace, "--robot", "panda", "--count", "2", "--group", "other_arm", "--quiet")
        group_out, _ = wrong_group.communicate(timeout=300)
        other_tip = _client(
            namespace,
            *("--urdf", str(PANDA_URDF_FILE), "--base", "panda_link0", "--tip", "panda_link6", "--group", "panda_arm"),
            *("--count", "2", "--json", str(tmp_path / "tip.json")),
        )
        tip_out, _ = other_tip.communicate(timeout=300)
    finally:
        node_output = _stop(node)
    assert wrong_group.returncode == 1, group_out
    assert group_out.splitlines()[-1].startswith(
        "ik_client: failed: no request succeeded (first answer INVALID_GROUP_NAME: group_name 'other_arm'"
    ), group_out
    assert other_tip.returncode == 1, tip_out
    assert json.loads((tmp_path / "tip.json").read_text())["codes"] == {"INVALID_LINK_NAME": 2}, tip_out
    assert tip_out.splitlines()[-1].startswith(
        "ik_client: failed: no request succeeded (first answer INVALID_LINK_NAME: ik_link_name 'panda_link6' is not "
        "the tip 'panda_link8'"
    ), tip_out
    assert "compute_ik refused (-18): ik_link_name 'panda_link6'" in node_output, node_output  # MoveIt's code


def _rss_kib(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))


def test_separate_processes_four_clients_by_1000_requests(tmp_path):
    """The node and its clients in separate processes: nothing lost, every answer right, memory flat."""
    namespace = _namespace("load")
    # The clients' 1 s budget is the node's default: the test is about answers, not the long-solve cap.
    node = _start_node(namespace, "-p", "default_timeout_s:=1.0")
    clients = []
    try:
        warm = _load_client(namespace, 500, 100, tmp_path / "warm.json")
        out, _ = warm.communicate(timeout=600)
        assert warm.returncode == 0, out
        assert json.loads((tmp_path / "warm.json").read_text())["codes"] == {"SUCCESS": 500}
        rss_before = _rss_kib(node.pid)

        clients = [_load_client(namespace, 1000, seed, tmp_path / f"client{seed}.json") for seed in range(4)]
        outputs = [client.communicate(timeout=900)[0] for client in clients]
        rss_after = _rss_kib(node.pid)
        for seed, (client, out) in enumerate(zip(clients, outputs)):
            summary = json.loads((tmp_path / f"client{seed}.json").read_text())
            assert client.returncode == 0, out
            # Every request answered, SUCCESS, and its own answer: FK of it reaches this client's target.
            assert (summary["answered"], summary["lost"], summary["wrong"]) == (1000, 0, 0), summary
            assert summary["codes"] == {"SUCCESS": 1000}, summary
        assert node.poll() is None, "the node died"
        # Memory: the 4000 requests after warm-up grow the node by less than 8 MiB (~2 KiB a request).
        assert rss_after - rss_before < 8 * 1024, (rss_before, rss_after)
    finally:
        for client in clients:
            if client.poll() is None:
                os.killpg(client.pid, signal.SIGKILL)
        log = _stop(node)
    assert node.returncode == 0, log
    assert "serving " in log and "compute_ik" in log


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_ends_a_node_busy_with_long_solves_within_3_s(module_context, signal_number):
    """Every thread inside a 600 s solve of an unreachable pose: the signal still ends the node at once."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from moveit_msgs.srv import GetPositionIK

    namespace = _namespace(f"busy_{signal_number}")
    process = _start_node(namespace, "-p", "default_timeout_s:=600.0", "-p", "max_timeout_s:=600.0")
    helper = Node("ik_test_busy_client", context=module_context, namespace=namespace)
    executor = SingleThreadedExecutor(context=module_context)
    executor.add_node(helper)
    spinning = threading.Thread(target=executor.spin, daemon=True)
    spinning.start()
    try:
        client = helper.create_client(GetPositionIK, f"{namespace}/ik_neural/compute_ik")
        assert client.wait_for_service(timeout_sec=120), "compute_ik not discovered"
        futures = [client.call_async(_request(_unreachable())) for _ in range(4)]  # timeout 0: 600 s
        time.sleep(2.0)
        assert not any(f.done() for f in futures) and process.poll() is None
        os.killpg(process.pid, signal_number)
        sent = time.perf_counter()
        process.wait(timeout=30)
        ended_s = time.perf_counter() - sent
    finally:
        log = _stop(process)
        executor.shutdown()
        spinning.join(timeout=10)
        helper.destroy_node()
    assert process.returncode == 0, log
    assert ended_s < 3.0, (ended_s, log)
    assert "Traceback" not in log, log


# ---------------------------------------------------------------------- configuration


def _config_files():
    return sorted((ROOT / "config").glob("*.yaml"))


def test_every_shipped_robot_has_a_complete_config_and_the_node_starts_from_it(module_context):
    """Complete: the robot's own parameters (at most 10), every other one is NodeSettings' default."""
    import yaml
    from ik_neural.ros.node import IKNode
    from ik_neural.ros.settings import defaults
    from ik_neural.robots import list_robots

    assert [path.stem for path in _config_files()] == list_robots()
    for path in _config_files():
        text = path.read_text()
        parameters = yaml.safe_load(text)["/**"]["ros__parameters"]
        assert {"urdf_path", "base_link", "tip_link", "model_path", "group_name"} <= set(parameters), path.name
        assert set(parameters) <= set(defaults()) and len(parameters) <= 10, path.name
        assert "README.md" in text.split("/**:")[0], path.name  # the header points to the parameter table
        node = IKNode(
            context=module_context,
            namespace=_namespace(f"config_{path.stem}"),
            cli_args=[
                "--ros-args",
                "--params-file",
                str(path),
                "-p",
                "robot_description_timeout_s:=0.0",
                "-p",
                "robot_description_semantic_timeout_s:=0.0",
            ],
        )
        try:
            robot = load_robot(path.stem)
            assert node.chain.fingerprint == robot.chain.fingerprint, path.name
            assert (node.solver.network is None) == (robot.network is None), path.name
        finally:
            node.destroy_node()


def test_readme_documents_every_parameter_with_its_default():
    """The README's table is NodeSettings' own (regenerate it with ik_neural.ros.settings.markdown_table())."""
    from ik_neural.ros.settings import markdown_table

    readme = (ROOT / "README.md").read_text()
    assert markdown_table() in readme, "README parameter table differs from NodeSettings: paste markdown_table()"


def test_parameters_are_read_only_once_started(graph):
    from rclpy.parameter import Parameter

    results = graph.node.set_parameters([Parameter("group_name", value="other_arm")])
    assert not results[0].successful
    assert graph.node.get_parameter("group_name").value == "panda_arm"


def test_launch_arguments_name_real_node_parameters():
    """The launch files are not run here (no launch package in the registry), but what they pass must exist."""
    import ast
    from ik_neural.ros.settings import defaults

    tree = ast.parse((ROOT / "launch" / "ik_neural.launch.py").read_text())
    overrides = next(
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "OVERRIDES"
    )
    names = [key.value for key in overrides.keys]
    assert names and set(names) <= set(defaults()), set(names) - set(defaults())
    for launch_file in ("ik_neural.launch.py", "demo.launch.py"):
        text = (ROOT / "launch" / launch_file).read_text()
        # Remapped names are the node's own; parameter files are shipped ones.
        for remapped in re.findall(r'\("(~/\w+)", ', text):
            assert remapped in (
                "~/compute_ik",
                "~/compute_fk",
                "~/goal_pose",
                "~/joint_commands",
                "~/joint_trajectory",
                "~/position_commands",
                "~/command_status",
            ), remapped
        assert "config" in text and "ik_node" in text
    assert (ROOT / "config" / "demo.rviz").is_file()


def test_launch_files_import_nothing_from_ik_neural():
    """No torch, numba or model load in the launch process: the launch files import launch, yaml and paths only."""
    import ast

    for launch_file in ("ik_neural.launch.py", "demo.launch.py"):
        tree = ast.parse((ROOT / "launch" / launch_file).read_text())
        modules = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        modules |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert modules and not {m for m in modules if m.split(".")[0] == "ik_neural"}, (launch_file, modules)
        assert "__import__" not in (ROOT / "launch" / launch_file).read_text() and "importlib" not in modules


def _launch_module(launch_file, monkeypatch):
    """A launch file loaded as a module, with stand-ins for launch and launch_ros (not in the registry): its
    own functions run as they are."""
    import importlib.util
    import types

    class Stand_in:
        def __init__(self, *args, **kwargs):
            pass

    for name, attributes in {
        "launch": ["LaunchDescription"],
        "launch.actions": ["DeclareLaunchArgument", "OpaqueFunction"],
        "launch.substitutions": ["LaunchConfiguration"],
        "launch_ros": [],
        "launch_ros.actions": ["Node"],
    }.items():
        module = types.ModuleType(name)
        for attribute in attributes:
            setattr(module, attribute, Stand_in)
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location(launch_file.replace(".", "_"), ROOT / "launch" / launch_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_launch_files_refuse_an_unknown_robot_naming_the_shipped_ones(monkeypatch):
    """robot:=nosuch: each launch file raises, naming every shipped robot (launch then exits 1; measured with
    the real launch 3.7.1: '[ERROR] [launch]: Caught exception in launch ...: unknown robot 'nosuch': the shipped
    robots are chain10_003, ...', exit status 1). The source tree stands for the share directory."""
    from ik_neural.robots import list_robots

    node_launch = _launch_module("ik_neural.launch.py", monkeypatch)
    demo_launch = _launch_module("demo.launch.py", monkeypatch)
    assert node_launch._robot_config(ROOT, "panda") == str(ROOT / "config" / "panda.yaml")
    assert demo_launch._robot(ROOT, "panda")["tip_link"] == "panda_link8"
    for refuse in (lambda: node_launch._robot_config(ROOT, "nosuch"), lambda: demo_launch._robot(ROOT, "nosuch")):
        with pytest.raises(RuntimeError, match=r"unknown robot 'nosuch': the shipped robots are ") as refused:
            refuse()
        assert str(refused.value).split("are ")[1].startswith(", ".join(list_robots())), refused.value


def test_topics_are_named_and_remapped_as_the_nodes_own(module_context):
    """The topics live on the companion node <name>_topics, but a remap given to the node applies to them
    (as `ros2 run ... -r ~/goal_pose:=/goal_pose` and the launch arguments give them)."""
    from ik_neural.ros.node import IKNode

    namespace = _namespace("remap")
    remaps = ["-r", f"~/goal_pose:={namespace}/goal", "-r", f"~/position_commands:={namespace}/controller/commands"]
    node = IKNode(
        context=module_context,
        namespace=namespace,
        cli_args=["--ros-args", *remaps],
        parameter_overrides=_panda_parameters(),
    )
    try:
        topics = node._topics.node
        name = topics.get_name()
        subscribed = {topic for topic, _ in topics.get_subscriber_names_and_types_by_node(name, namespace)}
        published = {topic for topic, _ in topics.get_publisher_names_and_types_by_node(name, namespace)}
    finally:
        node.destroy_node()
    assert name == "ik_neural_topics"
    assert {f"{namespace}/goal", f"{namespace}/joint_states", f"{namespace}/collision_object"} <= subscribed, subscribed
    assert {f"{namespace}/controller/commands", f"{namespace}/ik_neural/joint_commands"} <= published, published


def test_launch_arguments_point_the_goal_commands_at_controllers(monkeypatch):
    """position_controller:= and trajectory_controller:= remap the node's outputs to the topics
    forward_command_controller and joint_trajectory_controller read; empty, nothing is remapped."""
    node_launch = _launch_module("ik_neural.launch.py", monkeypatch)

    class Configuration:  # LaunchConfiguration.perform, reading the arguments from a dict
        def __init__(self, name):
            self.name = name

        def perform(self, context):
            return context[self.name]

    monkeypatch.setattr(node_launch, "LaunchConfiguration", Configuration)
    arguments = {"position_controller": "forward_position_controller", "trajectory_controller": "/arm_controller/"}
    assert node_launch._controller_remappings(arguments) == [
        ("~/position_commands", "/forward_position_controller/commands"),
        ("~/joint_trajectory", "/arm_controller/joint_trajectory"),
    ]
    assert node_launch._controller_remappings({"position_controller": "", "trajectory_controller": ""}) == []


@pytest.mark.skipif(
    not shutil.which("ros2") or importlib.util.find_spec("launch_ros") is None,
    reason="no ros2 launch here (no launch package in the registry)",
)
def test_ros2_launch_of_an_unknown_robot_fails_naming_the_shipped_ones():
    """Where ROS 2 is installed (colcon test): the real `ros2 launch`, its exit status and message."""
    from ik_neural.robots import list_robots

    result = subprocess.run(
        ["ros2", "launch", "ik_neural", "ik_neural.launch.py", "robot:=nosuch"],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode != 0, result.stdout + result.stderr
    assert f"the shipped robots are {', '.join(list_robots())}" in result.stdout + result.stderr


# ---------------------------------------------------------------------- avoid_collisions (policy 'check')


def _pymoveit2_request(T, start):
    """What pymoveit2's MoveIt2.compute_ik sends: avoid_collisions true, timeout zero, the base frame, the
    start state (every joint, fingers too) as the seed, the group's name."""
    request = _request(T, frame="panda_link0", seed=start, timeout_s=0.0)
    request.ik_request.avoid_collisions = True
    return request


def test_avoid_collisions_as_pymoveit2_sends_it_gets_collision_free_answers(graph, panda, reference):
    from moveit_msgs.msg import MoveItErrorCodes as C
    from ik_neural.robots import load_robot
    from reference import PinocchioCollisionJudge

    checker = graph.node.collision
    assert checker is not None and "self-collision" in graph.node.summary()
    judge = PinocchioCollisionJudge(load_robot("panda").urdf_path, checker.enabled_pairs, panda.joint_names)
    rng = np.random.default_rng(11)
    free = [q for q in panda.bounds.sample(rng, 200) if not judge.collides(q)][:20]
    colliding = [q for q in panda.bounds.sample(rng, 200) if judge.collides(q)][:10]
    start = {
        **dict(zip(panda.joint_names, panda.middle.tolist())),
        "panda_finger_joint1": 0.0,
        "panda_finger_joint2": 0.0,
    }
    successes = 0
    for q in free:
        response = graph.call(_pymoveit2_request(panda.forward(q), start))
        if response.error_code.val == 1:
            successes += 1
            solution = _solution(response, panda)
            _assert_reaches(reference, solution, panda.forward(q))
            assert not judge.collides(solution)
            assert _message(response) is None or "free of self-collision" in _message(response)
        else:
            assert response.error_code.val == -31
    assert successes >= 18
    # Seeded with a colliding solution of the very pose: a collision-free other one, or NO_IK_SOLUTION.
    for q in colliding:
        seed = {**start, **dict(zip(panda.joint_names, q.tolist()))}
        response = graph.call(_pymoveit2_request(panda.forward(q), seed))
        assert response.error_code.val in (1, -31)
        if response.error_code.val == 1:
            solution = _solution(response, panda)
            _assert_reaches(reference, solution, panda.forward(q))
            assert not judge.collides(solution)
    # Names in no URDF joint are still refused; the fingers (URDF joints outside the chain) are not.
    response = graph.call(_pymoveit2_request(panda.forward(panda.middle), {**start, "nosuch_joint": 0.0}))
    assert response.error_code.val == C.INVALID_ROBOT_STATE


def test_avoid_collisions_refuse_policy(module_context, panda):
    from moveit_msgs.msg import MoveItErrorCodes as C

    graph = _Graph(
        module_context,
        _namespace("refuse"),
        avoid_collisions_policy="refuse",
        model_path="",
        base_link="panda_link0",
        tip_link="panda_link8",
        default_timeout_s=1.0,
    )
    try:
        assert graph.node.collision is None
        start = dict(zip(panda.joint_names, panda.middle.tolist()))
        response = graph.call(_pymoveit2_request(panda.forward(panda.middle), start))
        assert response.error_code.val == C.COLLISION_CHECKING_UNAVAILABLE and "refuse" in (
            _message(response) or "refuse"
        )
    finally:
        graph.close()


def _collision_box(object_id, center, size, operation="ADD", frame="panda_link0"):
    """A moveit_msgs/CollisionObject as pymoveit2 5.0.0's add_collision_box publishes it: the box's pose in
    the object's ``pose``, one box primitive, no primitive_poses. ``operation``: the constant's name (the
    field is a byte, bytes in Python)."""
    from moveit_msgs.msg import CollisionObject
    from shape_msgs.msg import SolidPrimitive
    from geometry_msgs.msg import Pose

    msg = CollisionObject(id=object_id, operation=getattr(CollisionObject, operation))
    msg.header.frame_id = frame
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in center)
    pose.orientation.w = 1.0
    msg.pose = pose
    msg.primitives = [SolidPrimitive(type=SolidPrimitive.BOX, dimensions=[float(v) for v in size])]
    return msg


def _publish_until(graph, msg, done, timeout_s=10.0, topic="collision_object"):
    publisher = graph.publisher(type(msg), topic)
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        publisher.publish(msg)
        time.sleep(0.05)
    assert done(), f"the node did not take the {topic} message"


def test_an_obstacle_on_collision_object_is_avoided_and_remove_frees_its_space(graph, panda, reference):
    """A box around the flange's target position: every solution puts the hand there, so with the box
    published the answer is NO_IK_SOLUTION; REMOVE makes the pose solvable again."""
    checker = graph.node.collision
    q = panda.middle + 0.3
    assert not checker.in_collision(q)
    T = panda.forward(q)
    start = {**dict(zip(panda.joint_names, panda.middle.tolist())), "panda_finger_joint1": 0.0}
    box = _collision_box("box", T[:3, 3], [0.1, 0.1, 0.1])
    _publish_until(graph, box, lambda: checker.object_names == ["box"])
    try:
        response = graph.call(_pymoveit2_request(T, start))
        assert response.error_code.val == -31
        # The same request not asking for collision checking is solved (through the box).
        unchecked = _pymoveit2_request(T, start)
        unchecked.ik_request.avoid_collisions = False
        assert graph.call(unchecked).error_code.val == 1
        # MOVE it away (1 m up): the pose is solvable, and the answer is clear of the box.
        moved = _collision_box("box", T[:3, 3] + [0.0, 0.0, 1.0], [0.1, 0.1, 0.1], operation="MOVE")
        moved.primitives = []  # MOVE: a new pose for the object, no shapes
        _publish_until(graph, moved, lambda: abs(checker._world.centers[0][2] - (T[2, 3] + 1.0)) < 1e-9)
        response = graph.call(_pymoveit2_request(T, start))
        assert response.error_code.val == 1
        _assert_reaches(reference, _solution(response, panda), T)
    finally:
        _publish_until(
            graph,
            _collision_box("box", [0, 0, 0], [0.1, 0.1, 0.1], operation="REMOVE"),
            lambda: checker.object_names == [],
        )
    response = graph.call(_pymoveit2_request(T, start))
    assert response.error_code.val == 1
    _assert_reaches(reference, _solution(response, panda), T)


def _cube_mesh(edge):
    """A closed shape_msgs/Mesh cube of edge ``edge`` centred at its origin (8 vertices, 12 triangles)."""
    from geometry_msgs.msg import Point
    from shape_msgs.msg import Mesh, MeshTriangle

    h = edge / 2
    vertices = [Point(x=x, y=y, z=z) for x in (-h, h) for y in (-h, h) for z in (-h, h)]
    faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    triangles = [MeshTriangle(vertex_indices=list(t)) for a, b, c, d in faces for t in ((a, b, c), (a, c, d))]
    return Mesh(vertices=vertices, triangles=triangles)


def _held(object_id, T_frame_object, frame="", link="panda_hand", touch_links=(), mesh_edge=None, radius=0.03):
    """A moveit_msgs/AttachedCollisionObject held by ``link``: a sphere of ``radius`` (or a mesh cube of
    ``mesh_edge``) at the object's pose ``T_frame_object`` in ``frame``."""
    from moveit_msgs.msg import AttachedCollisionObject, CollisionObject
    from shape_msgs.msg import SolidPrimitive

    msg = CollisionObject(id=object_id, operation=CollisionObject.ADD, pose=_pose(T_frame_object))
    msg.header.frame_id = frame
    if mesh_edge is None:
        msg.primitives, msg.primitive_poses = (
            [SolidPrimitive(type=SolidPrimitive.SPHERE, dimensions=[radius])],
            [_pose(np.eye(4))],
        )
    else:
        msg.meshes, msg.mesh_poses = [_cube_mesh(mesh_edge)], [_pose(np.eye(4))]
    return AttachedCollisionObject(link_name=link, object=msg, touch_links=list(touch_links))


def test_attached_objects_move_with_the_hand_and_world_meshes_are_obstacles(graph, panda, reference):
    """A pose of the flange fixes where the hand is in every solution. A world box 0.35 m ahead of the hand
    (along its z) is clear of the robot, so the pose is solved; a tool held by the hand that reaches the
    box makes it NO_IK_SOLUTION, whether given in the hand's frame, as a mesh, or in the base frame at the
    robot state's pose; a ball between the fingers collides with them unless they are its touch links; an
    attached object on a link the chain does not place is refused; a world mesh cube at the flange
    target is an obstacle as a box is."""
    from moveit_msgs.msg import MoveItErrorCodes as C

    checker = graph.node.collision
    q = panda.middle + 0.3
    T = panda.forward(q)
    T_link8_hand = ReferenceChain(PANDA_URDF_FILE, "panda_link8", "panda_hand", PANDA_JOINTS).forward(np.zeros(7))
    T_base_hand = T @ T_link8_hand
    ahead = np.eye(4)
    ahead[2, 3] = 0.35
    box = _collision_box("ahead", (T_base_hand @ ahead)[:3, 3], [0.06, 0.06, 0.06])
    _publish_until(graph, box, lambda: checker.object_names == ["ahead"])
    start = {**dict(zip(panda.joint_names, q.tolist())), "panda_finger_joint1": 0.02, "panda_finger_joint2": 0.02}

    def ask(*held):
        request = _pymoveit2_request(T, start)
        request.ik_request.robot_state.attached_collision_objects = list(held)
        return graph.call(request)

    try:
        response = ask()
        assert response.error_code.val == C.SUCCESS, _message(response)
        _assert_reaches(reference, _solution(response, panda), T)
        tool_at = np.eye(4)
        tool_at[2, 3] = 0.3
        for held in (
            _held("tool", tool_at, radius=0.04),
            _held("tool", tool_at, frame="panda_hand", mesh_edge=0.08),
            _held("tool", T_base_hand @ tool_at, frame="panda_link0", radius=0.04),
        ):
            assert ask(held).error_code.val == C.NO_IK_SOLUTION, held.object.header.frame_id
        tool_short = np.eye(4)
        tool_short[2, 3] = 0.2  # 0.15 m short of the box: solved
        response = ask(_held("tool", tool_short, radius=0.04))
        assert response.error_code.val == C.SUCCESS, _message(response)
        between = np.eye(4)
        between[2, 3] = 0.1
        assert ask(_held("ball", between)).error_code.val == C.NO_IK_SOLUTION
        fingers = ["panda_leftfinger", "panda_rightfinger"]
        assert ask(_held("ball", between, touch_links=fingers)).error_code.val == C.SUCCESS
        refused = ask(_held("ball", between, link="nosuch"))
        assert refused.error_code.val == C.INVALID_ROBOT_STATE
        assert _message(refused) is None or "link 'nosuch' is not placed" in _message(refused)
        unknown_frame = ask(_held("ball", between, frame="camera"))
        assert unknown_frame.error_code.val == C.FRAME_TRANSFORM_FAILURE, _message(unknown_frame)
    finally:
        _publish_until(
            graph, _collision_box("ahead", [0, 0, 0], [1, 1, 1], operation="REMOVE"), lambda: checker.object_names == []
        )
    from moveit_msgs.msg import CollisionObject

    cube = CollisionObject(id="mesh_cube", operation=CollisionObject.ADD, pose=_pose(np.eye(4)))
    cube.header.frame_id = "panda_link0"
    cube.meshes, cube.mesh_poses = [_cube_mesh(0.1)], [_pose(T)]
    _publish_until(graph, cube, lambda: checker.object_names == ["mesh_cube"])
    try:
        assert ask().error_code.val == C.NO_IK_SOLUTION
    finally:
        _publish_until(
            graph,
            _collision_box("mesh_cube", [0, 0, 0], [1, 1, 1], operation="REMOVE"),
            lambda: checker.object_names == [],
        )
    assert ask().error_code.val == C.SUCCESS


def _srdf(link1, link2):
    return f'<robot name="panda"><disable_collisions link1="{link1}" link2="{link2}" reason="Never"/></robot>'


def test_the_srdf_comes_from_the_parameter_then_srdf_path_then_the_topic(module_context, tmp_path):
    """Each source in turn, the start-up line naming it. Without a wait for the topic, the node serves at once
    with the computed (cached) pairs, and the SRDF latched on the topic replaces them once heard."""
    from rclpy.node import Node
    from std_msgs.msg import String
    from ik_neural.ros.node import IKNode, StartupError
    from ik_neural.ros.qos import DESCRIPTION_QOS

    srdf_file = tmp_path / "panda.srdf"
    srdf_file.write_text(_srdf("panda_link0", "panda_link6"))
    namespace = _namespace("srdf")
    publisher_node = Node("move_group", context=module_context, namespace=namespace)
    publisher = publisher_node.create_publisher(String, "robot_description_semantic", DESCRIPTION_QOS)
    publisher.publish(String(data=_srdf("panda_link0", "panda_link5")))
    numerical = {"model_path": "", "base_link": "panda_link0", "tip_link": "panda_link8"}

    def node_with(node_namespace=namespace, **overrides):
        return IKNode(
            context=module_context,
            namespace=node_namespace,
            parameter_overrides=_panda_parameters(**numerical, **overrides),
        )

    def started(**overrides):
        node = node_with(**overrides)
        try:
            return node.collision, node.summary()
        finally:
            node.destroy_node()

    try:
        cases = [
            (
                dict(
                    robot_description_semantic=_srdf("panda_link0", "panda_link7"),
                    srdf_path=str(srdf_file),
                    robot_description_semantic_timeout_s=20.0,
                ),
                "panda_link7",
                "the SRDF of parameter robot_description_semantic",
            ),
            (
                dict(srdf_path=str(srdf_file), robot_description_semantic_timeout_s=20.0),
                "panda_link6",
                f"the SRDF of srdf_path '{srdf_file}'",
            ),
            (
                dict(robot_description_semantic_timeout_s=20.0),
                "panda_link5",
                "the SRDF of topic robot_description_semantic",
            ),
        ]
        for overrides, link, source in cases:
            checker, summary = started(**overrides)
            assert checker.disabled_source == "srdf" and f"(disabled pairs: {source})" in summary, summary
            assert frozenset(("panda_link0", link)) in checker.disabled_pairs
            others = {"panda_link5", "panda_link6", "panda_link7"} - {link}
            assert not any(frozenset(("panda_link0", other)) in checker.disabled_pairs for other in others)
        # The topic is not waited for (timeout 0, the default): computed pairs at start, in a namespace where
        # nothing is published yet; then move_group comes and latches its SRDF, which replaces them.
        late = _namespace("srdf_late")
        node = node_with(late)
        try:
            summary = node.summary()
            assert "(disabled pairs: computed)" in summary or "(disabled pairs: cache)" in summary, summary
            late_publisher = publisher_node.create_publisher(
                String, f"{late}/robot_description_semantic", DESCRIPTION_QOS
            )
            late_publisher.publish(String(data=_srdf("panda_link0", "panda_link5")))
            deadline = time.monotonic() + SECONDS_TO_DISCOVER
            while node.collision.disabled_source != "srdf" and time.monotonic() < deadline:
                time.sleep(0.05)
            assert frozenset(("panda_link0", "panda_link5")) in node.collision.disabled_pairs
            assert "(disabled pairs: the SRDF of topic robot_description_semantic)" in node.summary()
        finally:
            node.destroy_node()
        with pytest.raises(StartupError, match=r"cannot read SRDF file '/nonexistent/panda.srdf'"):
            started(srdf_path="/nonexistent/panda.srdf")
    finally:
        publisher_node.destroy_node()


def _srv_kinematics_plugin_request(T, seed):
    """What MoveIt 2's srv_kinematics_plugin sends (moveit_kinematics' srv_kinematics_plugin.cpp, searchPositionIK):
    avoid_collisions true, the group's name, the whole robot state of MoveIt's model at the seed (every
    variable in model order: the arm's joints, then both finger joints at their default 0; no velocities),
    the pose in the parent link of the group's first link (panda_link0) for the tip frame panda_link8, the
    timeout left zero (its timeout argument is ignored)."""
    from moveit_msgs.srv import GetPositionIK

    request = GetPositionIK.Request()
    ik = request.ik_request
    ik.group_name, ik.avoid_collisions = "panda_arm", True
    ik.robot_state.joint_state.name = [*PANDA_JOINTS, "panda_finger_joint1", "panda_finger_joint2"]
    ik.robot_state.joint_state.position = [*map(float, seed), 0.0, 0.0]
    ik.pose_stamped.header.frame_id = "panda_link0"
    ik.pose_stamped.pose = _pose(T)
    ik.ik_link_name = "panda_link8"
    return request


def test_srv_kinematics_plugin_requests_to_the_default_node_get_right_collision_free_answers(
    module_context, panda, reference
):
    """The node as config/panda.yaml starts it (every other parameter its default: the network, 50 ms budget,
    collisions checked), asked as srv_kinematics_plugin asks, seeded with another free configuration (MoveIt's
    current state): answers SUCCESS or NO_IK_SOLUTION only; every SUCCESS right by Pinocchio's FK and free by
    Pinocchio + coal on the URDF's geometry; most targets solved within the default budget."""
    from moveit_msgs.msg import MoveItErrorCodes as C
    from reference import PinocchioCollisionJudge

    graph = _Graph(
        module_context,
        _namespace("srv_kinematics"),
        cli_args=[
            "--ros-args",
            "--params-file",
            str(ROOT / "config" / "panda.yaml"),
            "-p",
            "robot_description_timeout_s:=0.0",
            "-p",
            "robot_description_semantic_timeout_s:=0.0",
        ],
    )
    try:
        assert graph.node.settings.default_timeout_s == 0.05 and graph.node.solver.network is not None
        judge = PinocchioCollisionJudge(
            load_robot("panda").urdf_path, graph.node.collision.enabled_pairs, panda.joint_names
        )
        rng = np.random.default_rng(21)
        free = [q for q in panda.bounds.sample(rng, 400) if not judge.collides(q)][:31]
        solved = 0
        for seed, q in zip(free, free[1:]):
            T = panda.forward(q)
            response = graph.call(_srv_kinematics_plugin_request(T, seed))
            assert response.error_code.val in (C.SUCCESS, C.NO_IK_SOLUTION), _message(response)
            if response.error_code.val == C.SUCCESS:
                solved += 1
                solution = _solution(response, panda)
                _assert_reaches(reference, solution, T)
                assert not judge.collides(solution), solution
        assert solved >= 24, solved  # of 30
    finally:
        graph.close()


def _attached_sphere(object_id, link, radius_m=None, operation="ADD"):
    """A moveit_msgs/AttachedCollisionObject as pymoveit2 publishes it on attached_collision_object: with a
    sphere in the link's frame (radius given), or none (attach_collision_object: take the world object)."""
    from moveit_msgs.msg import AttachedCollisionObject, CollisionObject
    from shape_msgs.msg import SolidPrimitive
    from geometry_msgs.msg import Pose

    msg = AttachedCollisionObject(link_name=link)
    msg.object = CollisionObject(id=object_id, operation=getattr(CollisionObject, operation))
    msg.object.header.frame_id = link
    if radius_m is not None:
        pose = Pose()
        pose.orientation.w = 1.0
        msg.object.primitives = [SolidPrimitive(type=SolidPrimitive.SPHERE, dimensions=[radius_m])]
        msg.object.primitive_poses = [pose]
    return msg


def test_attached_collision_object_holds_detaches_and_takes_world_objects(graph, panda, reference):
    """attached_collision_object as move_group hears it. A 0.3 m sphere held by the hand meets panda_link7 in
    every configuration: nothing is solvable. REMOVE puts it in the world where the hand is now (mid-limits,
    no joint_states heard): the middle pose is blocked, a pose with the hand 0.6 m away is solved. ADD
    without shapes (pymoveit2's attach_collision_object) takes it off the world onto the hand again."""
    from moveit_msgs.msg import MoveItErrorCodes as C
    from moveit_msgs.msg import CollisionObject
    from ik_neural.robots import load_robot
    from reference import PinocchioCollisionJudge

    checker = graph.node.collision
    judge = PinocchioCollisionJudge(load_robot("panda").urdf_path, checker.enabled_pairs, panda.joint_names)
    start = {
        **dict(zip(panda.joint_names, panda.middle.tolist())),
        "panda_finger_joint1": 0.0,
        "panda_finger_joint2": 0.0,
    }
    T_mid = panda.forward(panda.middle)
    hand_mid = T_mid[:3, 3]
    rng = np.random.default_rng(4)
    q_far = next(
        q
        for q in panda.bounds.sample(rng, 2000)
        if np.linalg.norm(panda.forward(q)[:3, 3] - hand_mid) > 0.6 and not judge.collides(q)
    )
    T_far = panda.forward(q_far)
    code = lambda T: graph.call(_pymoveit2_request(T, start)).error_code.val
    assert code(T_mid) == C.SUCCESS and code(T_far) == C.SUCCESS

    _publish_until(
        graph,
        _attached_sphere("ball", "panda_hand", 0.3),
        lambda: code(T_mid) == C.NO_IK_SOLUTION,
        topic="attached_collision_object",
    )
    assert code(T_far) == C.NO_IK_SOLUTION
    try:
        _publish_until(
            graph,
            _attached_sphere("ball", "panda_hand", operation="REMOVE"),
            lambda: code(T_far) == C.SUCCESS,
            topic="attached_collision_object",
        )
        assert code(T_mid) == C.NO_IK_SOLUTION and checker.object_names == ["ball"]  # now a world object
        response = graph.call(_pymoveit2_request(T_far, start))
        solution = _solution(response, panda)
        _assert_reaches(reference, solution, T_far)
        assert not judge.collides(solution)

        _publish_until(
            graph,
            _attached_sphere("ball", "panda_hand"),
            lambda: code(T_far) == C.NO_IK_SOLUTION,
            topic="attached_collision_object",
        )
        assert checker.object_names == []  # held again, no longer in the world
    finally:
        _publish_until(
            graph,
            _attached_sphere("", "", operation="REMOVE"),
            lambda: checker.object_names == ["ball"],
            topic="attached_collision_object",
        )
        remove = CollisionObject(id="ball", operation=CollisionObject.REMOVE)
        _publish_until(graph, remove, lambda: checker.object_names == [])
    assert code(T_mid) == C.SUCCESS
