"""The ik_neural node over a real (loopback) ROS graph: GetPositionIK in one process and across processes,
every error code, bad requests, start-up refusals, goal poses to joint commands, and a load test.

Every answer is checked by forward kinematics here. Each node gets a namespace of its own (pid and tag), so
parallel test runs sharing a ROS domain by chance never answer each other.
"""

import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from ik_neural.robots import load_robot
from ik_neural.geometry import pose_errors

ROOT = Path(__file__).resolve().parents[2]
PANDA_URDF = 'package://ik_neural/models/panda/panda.urdf'
PANDA_MODEL = 'package://ik_neural/models/panda/ik_network.pt'
UR5E_MODEL = 'package://ik_neural/models/ur5e/ik_network.pt'
TOL = 1e-5
SECONDS_TO_DISCOVER = 30.0
SECONDS_TO_ANSWER = 30.0
# The world frame that the in-process node's description adds above the Panda's base.
T_WORLD_BASE = np.array([[0.0, -1.0, 0.0, 0.5], [1.0, 0.0, 0.0, -0.2], [0.0, 0.0, 1.0, 0.75], [0, 0, 0, 1]])


def _message(response):
    """error_code.message, or None where moveit_msgs has no such field (before 2.4, e.g. Humble's)."""
    return getattr(response.error_code, 'message', None)


def _namespace(tag):
    return f'/ik_test_{os.getpid()}_{tag}'


def _panda_description_with_world():
    """Panda's URDF with a link 'world' above panda_link0 (fixed, T_WORLD_BASE)."""
    from ik_neural.geometry import matrix_to_rpy

    urdf = load_robot('panda').urdf_path.read_text()
    xyz = ' '.join(repr(float(v)) for v in T_WORLD_BASE[:3, 3])
    rpy = ' '.join(repr(float(v)) for v in matrix_to_rpy(T_WORLD_BASE[:3, :3]))
    world = (f'<link name="world"/><joint name="world_to_panda" type="fixed"><parent link="world"/>'
             f'<child link="panda_link0"/><origin xyz="{xyz}" rpy="{rpy}"/></joint>')
    return re.sub(r'(<robot[^>]*>)', lambda m: m.group(1) + world, urdf, count=1)


def _panda_parameters(**overrides):
    from rclpy.parameter import Parameter

    values = {'urdf_path': PANDA_URDF, 'model_path': PANDA_MODEL, 'group_name': 'panda_arm',
              'robot_description_timeout_s': 0.0, **overrides}
    return [Parameter(name, value=value) for name, value in values.items()]


class _Graph:
    """An ik_neural node and a client node in one process, spun by a multi-threaded executor."""

    def __init__(self, context, namespace, **overrides):
        from rclpy.executors import MultiThreadedExecutor
        from rclpy.node import Node
        from moveit_msgs.srv import GetPositionIK
        from ik_neural.ros.node import IKNode

        self.namespace = namespace
        self.node = IKNode(context=context, namespace=namespace, parameter_overrides=_panda_parameters(**overrides))
        self.helper = Node('ik_test_helper', context=context, namespace=namespace)
        self.client = self.helper.create_client(GetPositionIK, f'{namespace}/ik_neural/compute_ik')
        self.executor = MultiThreadedExecutor(num_threads=4, context=context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.helper)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()
        assert self.client.wait_for_service(timeout_sec=SECONDS_TO_DISCOVER), 'compute_ik not discovered'

    def call(self, request):
        done = threading.Event()
        future = self.client.call_async(request)
        future.add_done_callback(lambda _: done.set())
        assert done.wait(SECONDS_TO_ANSWER), 'no answer in time'
        return future.result()

    def close(self):
        self.executor.shutdown()
        self.thread.join(timeout=10)
        self.helper.destroy_node()
        self.node.destroy_node()


@pytest.fixture(scope='module')
def module_context():
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context)
    yield context
    rclpy.shutdown(context=context)


@pytest.fixture(scope='module')
def graph(module_context):
    """The Panda node, its description given as a parameter with a 'world' frame above the base."""
    # A generous default budget: a garbage collection of the test process can pause a solve for 0.2 s, and
    # these tests are about answers, not speed.
    graph = _Graph(module_context, _namespace('graph'), robot_description=_panda_description_with_world(),
                   urdf_path='', publish_trajectory=True, trajectory_time_from_start_s=1.5, default_timeout_s=1.0)
    yield graph
    graph.close()


@pytest.fixture(scope='module')
def commands(graph):
    """Every JointState the node publishes on ~/joint_commands and JointTrajectory on ~/joint_trajectory."""
    from sensor_msgs.msg import JointState
    from trajectory_msgs.msg import JointTrajectory

    received = {'commands': [], 'trajectories': []}
    graph.helper.create_subscription(JointState, f'{graph.namespace}/ik_neural/joint_commands',
                                     received['commands'].append, 10)
    graph.helper.create_subscription(JointTrajectory, f'{graph.namespace}/ik_neural/joint_trajectory',
                                     received['trajectories'].append, 10)
    return received


def _request(T, frame='panda_link0', link='', group='panda_arm', seed=None, timeout_s=0.0):
    from moveit_msgs.srv import GetPositionIK
    from ik_neural.ros.messages import matrix_to_pose, seconds_to_duration

    request = GetPositionIK.Request()
    ik = request.ik_request
    ik.group_name, ik.ik_link_name = group, link
    ik.pose_stamped.header.frame_id = frame
    ik.pose_stamped.pose = matrix_to_pose(T)
    ik.timeout = seconds_to_duration(timeout_s)
    if seed is not None:
        ik.robot_state.joint_state.name, ik.robot_state.joint_state.position = list(seed), [float(v) for v in seed.values()]
    return request


def _solution(response, chain):
    state = response.solution.joint_state
    assert list(state.name) == chain.joint_names
    return np.array(state.position)


def _assert_reaches(chain, q, T_base_tip):
    _, _, position_error, orientation_error = pose_errors(T_base_tip, chain.forward(q))
    assert position_error <= TOL and orientation_error <= TOL, (position_error, orientation_error)
    assert np.all(q >= chain.lower) and np.all(q <= chain.upper)


@pytest.fixture(scope='module')
def panda():
    return load_robot('panda').chain


def _targets(chain, n, seed):
    q = np.random.default_rng(seed).uniform(chain.lower, chain.upper, size=(n, chain.dof))
    return q, chain.forward(q)


# ---------------------------------------------------------------------- answers


def test_solves_reachable_poses_checked_by_fk(graph, panda, commands):
    from moveit_msgs.msg import MoveItErrorCodes

    _, targets = _targets(panda, 20, seed=1)
    for T in targets:
        response = graph.call(_request(T))
        assert response.error_code.val == MoveItErrorCodes.SUCCESS, _message(response)
        if _message(response) is not None:
            assert response.error_code.source == 'ik_neural'
            assert _message(response).startswith('solved: position error')
        assert response.solution.joint_state.header.stamp.sec > 0
        _assert_reaches(panda, _solution(response, panda), T)
    # Service answers never move the robot.
    assert commands['commands'] == [] and commands['trajectories'] == []


def test_solution_is_near_the_requests_seed(graph, panda):
    q_true, targets = _targets(panda, 10, seed=2)
    rng = np.random.default_rng(3)
    for q, T in zip(q_true, targets):
        seed = np.clip(q + rng.uniform(-0.05, 0.05, panda.dof), panda.lower, panda.upper)
        # Extra joints of the robot (none here but panda_joint8, fixed) are allowed in a full robot state.
        response = graph.call(_request(T, seed=dict(zip(panda.joint_names, seed))))
        q_solved = _solution(response, panda)
        _assert_reaches(panda, q_solved, T)
        assert np.abs(q_solved - q).max() < 0.1


def test_pose_in_a_frame_fixed_to_the_base_for_a_link_fixed_to_the_tip(graph, panda):
    from ik_neural.urdf_model import UrdfModel

    T_tip_link7 = UrdfModel.parse(load_robot('panda').urdf_path).attached_frames('panda_link8')['panda_link7']
    _, targets = _targets(panda, 5, seed=4)
    for T_base_tip in targets:
        T_world_link7 = T_WORLD_BASE @ T_base_tip @ T_tip_link7
        response = graph.call(_request(T_world_link7, frame='world', link='panda_link7'))
        assert response.error_code.val == 1, _message(response)
        _assert_reaches(panda, _solution(response, panda), T_base_tip)
    # A leading slash (tf1 style) names the same frame; a one-entry pose_stamped_vector stands for pose_stamped.
    request = _request(np.eye(4))
    request.ik_request.pose_stamped.pose.position.x = math.nan  # unused: the vector wins
    request.ik_request.pose_stamped_vector = [_request(T_WORLD_BASE @ targets[0], frame='/world').ik_request.pose_stamped]
    request.ik_request.ik_link_names = ['panda_link8']
    response = graph.call(request)
    assert response.error_code.val == 1, _message(response)
    _assert_reaches(panda, _solution(response, panda), targets[0])


def test_joint_constraints_narrow_the_bounds(graph, panda):
    from moveit_msgs.msg import JointConstraint, PositionConstraint

    q_true, targets = _targets(panda, 5, seed=5)
    for q, T in zip(q_true, targets):
        request = _request(T)
        window = (q[0] - 0.02, q[0] + 0.03)
        request.ik_request.constraints.joint_constraints = [
            JointConstraint(joint_name='panda_joint1', position=q[0], tolerance_below=0.02, tolerance_above=0.03,
                            weight=1.0)]
        request.ik_request.constraints.position_constraints = [PositionConstraint()]
        response = graph.call(request)
        assert response.error_code.val == 1, _message(response)
        assert _message(response) is None or 'unsupported constraints ignored (1 position)' in _message(response)
        q_solved = _solution(response, panda)
        _assert_reaches(panda, q_solved, T)
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


# ---------------------------------------------------------------------- refusals


def _bad_requests(panda):
    """(what, request, expected error code)."""
    from moveit_msgs.msg import JointConstraint, MoveItErrorCodes as C

    T = panda.forward(panda.middle)

    def request(**changes):
        r = _request(T, **{k: v for k, v in changes.items() if k in ('frame', 'link', 'group', 'seed', 'timeout_s')})
        for path, value in changes.get('set', {}).items():
            owner = r.ik_request
            *parents, last = path.split('.')
            for part in parents:
                owner = getattr(owner, part)
            setattr(owner, last, value)
        return r

    far = np.eye(4)
    far[:3, 3] = [3.0, 0.0, 0.5]
    two_poses = request()
    two_poses.ik_request.pose_stamped_vector = [two_poses.ik_request.pose_stamped] * 2
    return [
        ('unknown group', request(group='right_arm'), C.INVALID_GROUP_NAME),
        ('link not fixed to the tip', request(link='panda_link3'), C.INVALID_LINK_NAME),
        ('unknown link', request(link='gripper'), C.INVALID_LINK_NAME),
        ('two poses', two_poses, C.INVALID_LINK_NAME),
        ('unknown frame', request(frame='camera_link'), C.FRAME_TRANSFORM_FAILURE),
        ('frame not fixed to the base', request(frame='panda_link2'), C.FRAME_TRANSFORM_FAILURE),
        ('seed with unknown joint', request(seed={'elbow': 0.1}), C.INVALID_ROBOT_STATE),
        ('seed lengths differ', request(set={'robot_state.joint_state.name': ['panda_joint1', 'panda_joint2'],
                                             'robot_state.joint_state.position': [0.1]}), C.INVALID_ROBOT_STATE),
        ('seed NaN', request(seed={'panda_joint1': math.nan}), C.INVALID_ROBOT_STATE),
        ('NaN position', request(set={'pose_stamped.pose.position.y': math.nan}), C.INVALID_GOAL_CONSTRAINTS),
        ('quaternion norm 2', request(set={'pose_stamped.pose.orientation.w': 2.0,
                                           'pose_stamped.pose.orientation.x': 0.0, 'pose_stamped.pose.orientation.y': 0.0,
                                           'pose_stamped.pose.orientation.z': 0.0}), C.INVALID_GOAL_CONSTRAINTS),
        ('zero quaternion', request(set={f'pose_stamped.pose.orientation.{a}': 0.0 for a in 'xyzw'}),
         C.INVALID_GOAL_CONSTRAINTS),
        ('constraint on unknown joint', request(set={'constraints.joint_constraints': [
            JointConstraint(joint_name='nope', tolerance_above=0.1, tolerance_below=0.1)]}), C.INVALID_GOAL_CONSTRAINTS),
        ('constraint outside limits', request(set={'constraints.joint_constraints': [
            JointConstraint(joint_name='panda_joint4', position=1.0, tolerance_above=0.1, tolerance_below=0.1)]}),
         C.INVALID_GOAL_CONSTRAINTS),
        ('negative timeout', request(set={'timeout.sec': -1}), C.FAILURE),
        ('collision checking asked for', request(set={'avoid_collisions': True}), C.COLLISION_CHECKING_UNAVAILABLE),
        ('unreachable pose', request(set={'pose_stamped.pose': _pose(far)}), C.NO_IK_SOLUTION),
    ]


def _pose(T):
    from ik_neural.ros.messages import matrix_to_pose

    return matrix_to_pose(T)


def test_bad_requests_get_their_error_code_and_the_node_keeps_serving(graph, panda, commands):
    from moveit_msgs.msg import MoveItErrorCodes

    for what, request, code in _bad_requests(panda):
        response = graph.call(request)
        assert response.error_code.val == code, (what, response.error_code.val, _message(response))
        assert _message(response) is None or (_message(response) and response.error_code.source == 'ik_neural'), what
        if code == MoveItErrorCodes.NO_IK_SOLUTION:
            # The best effort: the chain's joints, within limits, and the message says so.
            q = _solution(response, panda)
            assert np.all(q >= panda.lower) and np.all(q <= panda.upper)
            assert _message(response) is None or 'best effort' in _message(response)
        # The node still serves a good request after each bad one.
        T = panda.forward(panda.middle + 0.1)
        good = graph.call(_request(T))
        assert good.error_code.val == MoveItErrorCodes.SUCCESS, what
        _assert_reaches(panda, _solution(good, panda), T)
    assert commands['commands'] == [] and commands['trajectories'] == []


def test_zero_timeout_means_the_default_and_empty_names_mean_base_tip_and_group(graph, panda):
    T = panda.forward(panda.middle - 0.2)
    response = graph.call(_request(T, frame='', link='', group='', timeout_s=0.0))
    assert response.error_code.val == 1, _message(response)
    _assert_reaches(panda, _solution(response, panda), T)
    # The default budget (1 s here) is what an unreachable pose with a zero timeout runs for.
    far = np.eye(4)
    far[0, 3] = 5.0
    sent = time.perf_counter()
    response = graph.call(_request(far, timeout_s=0.0))
    assert response.error_code.val == -31
    assert time.perf_counter() - sent >= 1.0


def test_avoid_collisions_policy_ignore_solves_and_says_collisions_were_not_checked(module_context, panda):
    graph = _Graph(module_context, _namespace('ignore'), avoid_collisions_policy='ignore', model_path='',
                   base_link='panda_link0', tip_link='panda_link8', default_timeout_s=1.0)
    try:
        T = panda.forward(panda.middle + 0.2)
        request = _request(T)
        request.ik_request.avoid_collisions = True
        response = graph.call(request)
        assert response.error_code.val == 1
        assert _message(response) is None or 'collisions NOT checked' in _message(response)
        _assert_reaches(panda, _solution(response, panda), T)
        # No model: numerical only, said at start-up.
        assert graph.node.solver.network is None and 'numerical only' in graph.node.summary()
    finally:
        graph.close()


# ---------------------------------------------------------------------- topics


def test_goal_pose_is_solved_from_the_joint_state_and_published_as_commands(graph, panda, commands):
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import JointState

    joint_states = graph.helper.create_publisher(JointState, f'{graph.namespace}/joint_states', 10)
    goals = graph.helper.create_publisher(PoseStamped, f'{graph.namespace}/ik_neural/goal_pose', 10)
    q_true, targets = _targets(panda, 3, seed=6)
    rng = np.random.default_rng(7)
    deadline = time.monotonic() + SECONDS_TO_DISCOVER
    while (goals.get_subscription_count() == 0 or joint_states.get_subscription_count() == 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    for i, (q, T) in enumerate(zip(q_true, targets)):
        current = np.clip(q + rng.uniform(-0.05, 0.05, panda.dof), panda.lower, panda.upper)
        # The current state as a robot driver publishes it: all joints, the gripper's too.
        joint_states.publish(JointState(name=panda.joint_names + ['panda_finger_joint1'], position=[*current, 0.02]))
        time.sleep(0.3)
        goal = PoseStamped()
        goal.header.frame_id = 'world'
        goal.pose = _pose(T_WORLD_BASE @ T)
        goals.publish(goal)
        deadline = time.monotonic() + SECONDS_TO_ANSWER
        while len(commands['trajectories']) <= i and time.monotonic() < deadline:
            time.sleep(0.02)
        command, trajectory = commands['commands'][i], commands['trajectories'][i]
        q_command = np.array(command.position)
        assert list(command.name) == panda.joint_names
        _assert_reaches(panda, q_command, T)
        assert np.abs(q_command - q).max() < 0.1  # near the current state, not any solution
        assert list(trajectory.joint_names) == panda.joint_names
        assert np.array_equal(trajectory.points[0].positions, q_command)
        tfs = trajectory.points[0].time_from_start
        assert (tfs.sec, tfs.nanosec) == (1, 500_000_000)
    # An unreachable goal publishes nothing.
    far = np.eye(4)
    far[0, 3] = 4.0
    goal = PoseStamped()
    goal.header.frame_id = 'panda_link0'
    goal.pose = _pose(far)
    goals.publish(goal)
    time.sleep(1.0)
    assert len(commands['commands']) == len(q_true)


def test_robot_description_from_the_topic(module_context, panda):
    from rclpy.node import Node
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String
    from ik_neural.ros.node import IKNode

    namespace = _namespace('topic')
    publisher_node = Node('robot_state_publisher', context=module_context, namespace=namespace)
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
    publisher = publisher_node.create_publisher(String, 'robot_description', latched)
    publisher.publish(String(data=load_robot('panda').urdf_path.read_text()))
    try:
        node = IKNode(context=module_context, namespace=namespace,
                      parameter_overrides=_panda_parameters(urdf_path='', robot_description_timeout_s=20.0))
        assert node.chain.fingerprint == panda.fingerprint
        node.destroy_node()
    finally:
        publisher_node.destroy_node()


# ---------------------------------------------------------------------- start-up


@pytest.mark.parametrize('overrides, expected', [
    ({'model_path': UR5E_MODEL, 'base_link': 'panda_link0', 'tip_link': 'panda_link8'},
     r'trained for chain fingerprint \w+ .* has fingerprint \w+'),
    ({'tip_link': 'panda_hand'}, r"tip_link 'panda_hand' is not a link"),
    ({'urdf_path': '/nonexistent/robot.urdf'}, r"cannot read URDF file '/nonexistent/robot.urdf'"),
    ({'robot_description': '<robot name="broken"><link name="a"/><joint'}, r'malformed URDF XML'),
    ({'urdf_path': ''}, r'no robot description'),
    ({'model_path': '/nonexistent/net.pt'}, r'IK network file /nonexistent/net.pt does not exist'),
    ({'model_path': '', 'base_link': ''}, r'base_link and tip_link must be set'),
    ({'default_timeout_s': -1.0}, r'default_timeout_s must be a positive number'),
    ({'avoid_collisions_policy': 'maybe'}, r"avoid_collisions_policy must be one of"),
    ({'default_timeout_s': 1}, r'parameter default_timeout_s'),
])
def test_start_up_refusals_name_the_problem(module_context, overrides, expected):
    from ik_neural.ros.node import IKNode, StartupError

    if 'model_path' in overrides and overrides['model_path'] == '':
        overrides = {**overrides, 'tip_link': 'panda_link8'}
    with pytest.raises(StartupError, match=expected):
        IKNode(context=module_context, namespace=_namespace('refused'), parameter_overrides=_panda_parameters(**overrides))


def _start_node(namespace, *ros_args):
    """ik_node in its own process (and process group) with config/panda.yaml."""
    return subprocess.Popen(
        [sys.executable, '-m', 'ik_neural.ros.node', '--ros-args', '--params-file', str(ROOT / 'config' / 'panda.yaml'),
         '-r', f'__ns:={namespace}', '-p', 'robot_description_timeout_s:=0.0', *ros_args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _stop(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.stdout.read()


def test_start_up_refusal_in_its_own_process_is_one_error_line_and_exit_1():
    process = _start_node(_namespace('refusal'), '-p', f'model_path:={UR5E_MODEL}')
    try:
        process.wait(timeout=120)
    finally:
        output = _stop(process)
    assert process.returncode == 1, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and '[ERROR]' in lines[0] and 'cannot start' in lines[0] and 'fingerprint' in lines[0], output


def _client(namespace, count, seed, json_path):
    return subprocess.Popen(
        [sys.executable, '-m', 'ik_neural.ros.client', '--service', f'{namespace}/ik_neural/compute_ik', '--robot', 'panda',
         '--count', str(count), '--random-seed', str(seed), '--quiet', '--json', str(json_path),
         '--wait-s', str(SECONDS_TO_DISCOVER), '--group', 'panda_arm',
         # A generous budget: 4 clients share 2 cores here, and this test is about answers, not speed.
         '--timeout-ms', '1000'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _rss_kib(pid):
    status = Path(f'/proc/{pid}/status').read_text()
    return int(re.search(r'VmRSS:\s+(\d+) kB', status).group(1))


def test_separate_processes_four_clients_by_1000_requests(tmp_path):
    """The node and its clients in separate processes: nothing lost, every answer right, memory flat."""
    namespace = _namespace('load')
    node = _start_node(namespace)
    clients = []
    try:
        warm = _client(namespace, 500, 100, tmp_path / 'warm.json')
        out, _ = warm.communicate(timeout=600)
        assert warm.returncode == 0, out
        assert json.loads((tmp_path / 'warm.json').read_text())['codes'] == {'SUCCESS': 500}
        rss_before = _rss_kib(node.pid)

        clients = [_client(namespace, 1000, seed, tmp_path / f'client{seed}.json') for seed in range(4)]
        outputs = [client.communicate(timeout=900)[0] for client in clients]
        rss_after = _rss_kib(node.pid)
        for seed, (client, out) in enumerate(zip(clients, outputs)):
            summary = json.loads((tmp_path / f'client{seed}.json').read_text())
            assert client.returncode == 0, out
            # Every request answered, SUCCESS, and its own answer: FK of it reaches this client's target.
            assert (summary['answered'], summary['lost'], summary['wrong']) == (1000, 0, 0), summary
            assert summary['codes'] == {'SUCCESS': 1000}, summary
        assert node.poll() is None, 'the node died'
        # Memory: the 4000 requests after warm-up grow the node by less than 8 MiB (~2 KiB a request).
        assert rss_after - rss_before < 8 * 1024, (rss_before, rss_after)
    finally:
        for client in clients:
            if client.poll() is None:
                os.killpg(client.pid, signal.SIGKILL)
        log = _stop(node)
    assert node.returncode == 0, log
    assert 'serving ' in log and 'compute_ik' in log


# ---------------------------------------------------------------------- configuration


def _config_files():
    return sorted((ROOT / 'config').glob('*.yaml'))


def test_every_shipped_robot_has_a_complete_config_and_the_node_starts_from_it(module_context):
    import yaml
    from ik_neural.ros.node import IKNode, PARAMETERS
    from ik_neural.robots import list_robots

    assert [path.stem for path in _config_files()] == list_robots()
    for path in _config_files():
        parameters = yaml.safe_load(path.read_text())['/**']['ros__parameters']
        assert list(parameters) == list(PARAMETERS), path.name
        node = IKNode(context=module_context, namespace=_namespace(f'config_{path.stem}'),
                      cli_args=['--ros-args', '--params-file', str(path), '-p', 'robot_description_timeout_s:=0.0'])
        try:
            robot = load_robot(path.stem)
            assert node.chain.fingerprint == robot.chain.fingerprint, path.name
            assert (node.solver.network is None) == (robot.network is None), path.name
        finally:
            node.destroy_node()


def test_readme_documents_every_parameter_with_its_default():
    from ik_neural.ros.node import PARAMETERS

    readme = (ROOT / 'README.md').read_text()
    rows = dict(re.findall(r'^\| `(\w+)` \| `([^`]*)` \|', readme, flags=re.MULTILINE))
    for name, (default, _) in PARAMETERS.items():
        assert name in rows, f'README has no row for parameter {name}'
        shown = json.dumps(default) if isinstance(default, str) else str(default).lower() if isinstance(default, bool) else repr(default)
        assert rows[name] == shown, (name, rows[name], shown)


def test_parameters_are_read_only_once_started(graph):
    from rclpy.parameter import Parameter

    results = graph.node.set_parameters([Parameter('group_name', value='other_arm')])
    assert not results[0].successful
    assert graph.node.get_parameter('group_name').value == 'panda_arm'


def test_launch_arguments_name_real_node_parameters():
    """The launch files are not run here (no launch package in the registry), but what they pass must exist."""
    import ast
    from ik_neural.ros.node import PARAMETERS

    tree = ast.parse((ROOT / 'launch' / 'ik_neural.launch.py').read_text())
    overrides = next(node.value for node in ast.walk(tree)
                     if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', '') == 'OVERRIDES')
    names = [key.value for key in overrides.keys]
    assert names and set(names) <= set(PARAMETERS), set(names) - set(PARAMETERS)
    for launch_file in ('ik_neural.launch.py', 'demo.launch.py'):
        text = (ROOT / 'launch' / launch_file).read_text()
        # Remapped names are the node's own; parameter files are shipped ones.
        for remapped in re.findall(r'\("(~/\w+)", ', text):
            assert remapped in ('~/compute_ik', '~/goal_pose', '~/joint_commands', '~/joint_trajectory'), remapped
        assert 'config' in text and 'ik_node' in text
    assert (ROOT / 'config' / 'demo.rviz').is_file()
