"""Request constraints over a real (loopback) ROS graph: GetPositionIK with position and orientation
constraints, as MoveIt clients send them, to the ik_neural node.

Every answer is judged here, independently of the code under test: Pinocchio places the links (test/reference.py),
the regions and the orientation errors are computed with plain numpy (the Euler angles by the textbook
formula, the rotation vector by Pinocchio's log3).
"""

import math

import numpy as np
import pinocchio
import pytest

from reference import ReferenceChain
from test_node import (
    PANDA_JOINTS,
    _Graph,
    _message,
    _namespace,
    _panda_description_with_world,
    panda_graph,
    T_WORLD_BASE,
)

from ik_neural.robots import load_robot
from ik_neural.sampling import reachable_targets

FINGERTIP = np.array([0.0, 0.0, 0.1034])  # the Panda's fingertip centre in panda_hand's frame
TEN_DEGREES = math.radians(10.0)
TOL = 1e-5


@pytest.fixture(scope="module")
def graph(module_context):
    """The Panda node, its description given as a parameter with a 'world' frame above the base."""
    yield from panda_graph(module_context, "constraints")


@pytest.fixture(scope="module")
def panda():
    return load_robot("panda").chain


@pytest.fixture(scope="module")
def urdf():
    return _panda_description_with_world()


@pytest.fixture(scope="module")
def tip(urdf):
    """The judge of the tip: Pinocchio's FK of panda_link8 in panda_link0."""
    return ReferenceChain(urdf, "panda_link0", "panda_link8", PANDA_JOINTS)


@pytest.fixture(scope="module")
def hand(urdf):
    """The judge of the hand: Pinocchio's FK of panda_hand in panda_link0."""
    return ReferenceChain(urdf, "panda_link0", "panda_hand", PANDA_JOINTS)


# ---------------------------------------------------------------------- requests and judges


def _T(R=None, p=(0.0, 0.0, 0.0)):
    T = np.eye(4)
    T[:3, :3] = np.eye(3) if R is None else R
    T[:3, 3] = p
    return T


def _ik_request(T, frame="panda_link0", link="", seed=None, timeout_s=0.0, avoid_collisions=False):
    from moveit_msgs.srv import GetPositionIK
    from ik_neural.ros.messages import matrix_to_pose, seconds_to_duration

    request = GetPositionIK.Request()
    ik = request.ik_request
    ik.group_name, ik.ik_link_name, ik.avoid_collisions = "panda_arm", link, avoid_collisions
    ik.pose_stamped.header.frame_id = frame
    ik.pose_stamped.pose = matrix_to_pose(T)
    ik.timeout = seconds_to_duration(timeout_s)
    if seed is not None:
        ik.robot_state.joint_state.name = list(PANDA_JOINTS)
        ik.robot_state.joint_state.position = [float(v) for v in seed]
    return request


def _position_constraint(link, kind, dimensions, T_frame_region, frame="panda_link0", offset=(0.0, 0.0, 0.0)):
    from geometry_msgs.msg import Vector3
    from moveit_msgs.msg import PositionConstraint
    from shape_msgs.msg import SolidPrimitive
    from ik_neural.ros.messages import matrix_to_pose

    constraint = PositionConstraint(link_name=link, weight=1.0)
    constraint.header.frame_id = frame
    constraint.target_point_offset = Vector3(x=float(offset[0]), y=float(offset[1]), z=float(offset[2]))
    constraint.constraint_region.primitives = [SolidPrimitive(type=kind, dimensions=[float(d) for d in dimensions])]
    constraint.constraint_region.primitive_poses = [matrix_to_pose(T_frame_region)]
    return constraint


def _orientation_constraint(link, R_frame_target, tolerances, frame="panda_link0", parameterization=0):
    from moveit_msgs.msg import OrientationConstraint
    from ik_neural.ros.messages import matrix_to_pose

    constraint = OrientationConstraint(link_name=link, weight=1.0, parameterization=parameterization)
    constraint.header.frame_id = frame
    constraint.orientation = matrix_to_pose(_T(R_frame_target)).orientation
    x, y, z = (float(t) for t in tolerances)
    constraint.absolute_x_axis_tolerance, constraint.absolute_y_axis_tolerance = x, y
    constraint.absolute_z_axis_tolerance = z
    return constraint


def _solution(response):
    state = response.solution.joint_state
    assert list(state.name) == PANDA_JOINTS
    return np.array(state.position)


def _euler_xyz(R):
    """Intrinsic x-y-z Euler angles of R = Rx(a)·Ry(b)·Rz(c), the textbook way (regular rotations only)."""
    return np.array([math.atan2(-R[1, 2], R[2, 2]), math.asin(np.clip(R[0, 2], -1, 1)), math.atan2(-R[0, 1], R[0, 0])])


def _euler_errors(R_target, R_link):
    """MoveIt's XYZ_EULER_ANGLES error of R_link against R_target: the angles of R_targetᵀ·R_link, absolute."""
    return np.abs(_euler_xyz(R_target.T @ R_link))


def _rotation_vector_errors(R_frame_target, R_target, R_link):
    """MoveIt's ROTATION_VECTOR error of R_link against R_target (both in the base frame), the target given
    as R_frame_target in its frame: log3 of R_targetᵀ·R_link, turned into that frame's axes, absolute."""
    return np.abs(R_frame_target @ pinocchio.log3(R_target.T @ R_link))


def _in_box(point, T_box, size):
    local = T_box[:3, :3].T @ (point - T_box[:3, 3])
    return bool(np.all(np.abs(local) <= 0.5 * np.asarray(size)))


# ---------------------------------------------------------------------- tests


def _box_and_ten_degrees(T, q, hand, rng, avoid_collisions=False):
    """A request for the tip's pose T (reached at q) with a 2 cm box around the fingertip point (on the hand,
    a link fixed to the tip; the offset in its frame), not centred on it, and 10 degrees per axis about T's
    orientation on the tip, both given in 'world' (above the base). Returns (request, T_base_box)."""
    T_hand = hand.forward(q)
    fingertip = T_hand[:3, :3] @ FINGERTIP + T_hand[:3, 3]
    T_box = _T(T_hand[:3, :3], fingertip + rng.uniform(-0.005, 0.005, 3))
    request = _ik_request(T, avoid_collisions=avoid_collisions)
    request.ik_request.constraints.position_constraints = [
        _position_constraint("panda_hand", 1, (0.02, 0.02, 0.02), T_WORLD_BASE @ T_box, frame="world", offset=FINGERTIP)
    ]
    request.ik_request.constraints.orientation_constraints = [
        _orientation_constraint("panda_link8", T_WORLD_BASE[:3, :3] @ T[:3, :3], (TEN_DEGREES,) * 3, frame="world")
    ]
    return request, T_box


def test_a_box_and_a_10_degree_orientation_constraint_hold_on_every_answer(graph, panda, tip, hand):
    """SUCCESS, and the answer is inside the box, within 10 degrees per axis and on the pose, judged by
    Pinocchio; also with avoid_collisions (the constraints and the collision check together)."""
    from moveit_msgs.msg import MoveItErrorCodes

    q_true, targets = reachable_targets(panda, 8, seed=11)
    rng = np.random.default_rng(12)
    # The last one near mid-limits, where the Panda is free of self-collision, with avoid_collisions.
    cases = [(q, T, False) for q, T in zip(q_true, targets)] + [(panda.middle, panda.forward(panda.middle), True)]
    for q, T, avoid_collisions in cases:
        request, T_box = _box_and_ten_degrees(T, q, hand, rng, avoid_collisions)
        response = graph.call(request)
        assert response.error_code.val == MoveItErrorCodes.SUCCESS, _message(response)
        q_solved = _solution(response)
        T_hand = hand.forward(q_solved)
        assert _in_box(T_hand[:3, :3] @ FINGERTIP + T_hand[:3, 3], T_box, (0.02, 0.02, 0.02))
        assert np.all(_euler_errors(T[:3, :3], tip.forward(q_solved)[:3, :3]) <= TEN_DEGREES)
        assert tip.errors(q_solved, T)[0] <= TOL
        message = _message(response)
        assert message is None or "2 position and orientation constraints hold (checked)" in message
        assert message is None or not avoid_collisions or "free of self-collision (checked)" in message


def test_a_region_no_solution_reaches_is_no_ik_solution_naming_it(graph, panda, hand):
    from moveit_msgs.msg import MoveItErrorCodes

    q_true, targets = reachable_targets(panda, 3, seed=13)
    for q, T in zip(q_true, targets):
        T_hand = hand.forward(q)
        far = _T(p=T_hand[:3, 3] + np.array([0.0, 0.0, 0.3]))  # 30 cm above where the pose puts the hand
        request = _ik_request(T, timeout_s=0.1)
        request.ik_request.constraints.position_constraints = [
            _position_constraint("panda_hand", 2, (0.05,), far)  # a sphere
        ]
        response = graph.call(request)
        assert response.error_code.val == MoveItErrorCodes.NO_IK_SOLUTION, _message(response)
        message = _message(response)
        assert message is None or "constraints.position_constraints[0] (link 'panda_hand') rejected" in message


@pytest.mark.parametrize("parameterization", [0, 1])
def test_each_parameterization_decides_as_the_independent_error_says(graph, panda, tip, hand, parameterization):
    """The pose fixes the hand's orientation (within 1e-5 rad); the constraint on the hand asks for an
    orientation turned from it, given in 'world'. Tolerances 2 mrad above the independently computed error
    on every axis: SUCCESS; 2 mrad below on the axis of the largest error: NO_IK_SOLUTION naming it. The
    Euler and rotation-vector errors of one rotation differ (axes of the link, axes of 'world'), so each
    parameterization is held to its own."""
    from moveit_msgs.msg import MoveItErrorCodes

    q_true, targets = reachable_targets(panda, 4, seed=14 + parameterization)
    offsets = [(0.2, -0.1, 0.05), (-0.05, 0.15, -0.25), (0.3, 0.02, 0.1), (0.0, -0.2, 0.2)]
    for q, T, (a, b, c) in zip(q_true, targets, offsets):
        R_hand = hand.forward(q)[:3, :3]
        turn = (
            pinocchio.exp3(np.array([a, 0, 0]))
            @ pinocchio.exp3(np.array([0, b, 0]))
            @ pinocchio.exp3(np.array([0, 0, c]))
        )
        R_wanted = R_hand @ turn.T
        R_world_wanted = T_WORLD_BASE[:3, :3] @ R_wanted
        if parameterization == 0:
            errors = _euler_errors(R_wanted, R_hand)
        else:
            errors = _rotation_vector_errors(R_world_wanted, R_wanted, R_hand)
        worst = int(np.argmax(errors))
        for margin, expected in ((2e-3, MoveItErrorCodes.SUCCESS), (-2e-3, MoveItErrorCodes.NO_IK_SOLUTION)):
            tolerances = errors + 2e-3
            tolerances[worst] = errors[worst] + margin
            request = _ik_request(T, seed=q, timeout_s=0.05)
            request.ik_request.constraints.orientation_constraints = [
                _orientation_constraint("panda_hand", R_world_wanted, tolerances, "world", parameterization)
            ]
            response = graph.call(request)
            assert response.error_code.val == expected, (parameterization, errors, _message(response))
            message = _message(response)
            if expected == MoveItErrorCodes.NO_IK_SOLUTION and message is not None:
                assert "constraints.orientation_constraints[0] (link 'panda_hand') rejected" in message
            else:
                position_error, rotation_error = tip.errors(_solution(response), T)
                assert position_error <= TOL and rotation_error <= TOL


def test_an_orientation_constraint_on_the_tip_matching_the_pose_frees_the_rotation_about_its_z(graph, panda, tip):
    """The pose is a reachable one turned 1 rad about the tip's z; the constraint (the pose's orientation,
    0.01 rad about x and y, pi about z) frees that rotation: SUCCESS from the seed that reaches the
    unturned pose, the answer's z axis on the pose's, and the message says the tolerance was widened."""
    from moveit_msgs.msg import MoveItErrorCodes

    q_true, targets = reachable_targets(panda, 5, seed=16)
    for q, T_true in zip(q_true, targets):
        T = T_true @ _T(pinocchio.exp3(np.array([0.0, 0.0, 1.0])))
        request = _ik_request(T, seed=q, timeout_s=0.2)
        request.ik_request.constraints.orientation_constraints = [
            _orientation_constraint("panda_link8", T[:3, :3], (0.01, 0.01, math.pi))
        ]
        response = graph.call(request)
        assert response.error_code.val == MoveItErrorCodes.SUCCESS, _message(response)
        T_solved = tip.forward(_solution(response))
        z_angle = math.acos(np.clip(T_solved[:3, 2] @ T[:3, 2], -1.0, 1.0))
        assert z_angle <= 0.01 * math.sqrt(2) + 1e-9
        assert np.all(_euler_errors(T[:3, :3], T_solved[:3, :3])[:2] <= 0.01 + 1e-9)
        assert np.linalg.norm(T_solved[:3, 3] - T[:3, 3]) <= TOL
        message = _message(response)
        assert message is None or "widened to x 0.01 rad, y 0.01 rad, z free" in message


@pytest.mark.parametrize(
    "link, expected",
    [
        ("gripper", "link_name 'gripper' is not a link of the robot"),
        ("panda_leftfinger", "link_name 'panda_leftfinger' is not placed by the chain"),
    ],
)
def test_a_constraint_on_a_link_the_chain_does_not_place_is_refused_naming_it(graph, panda, link, expected):
    from moveit_msgs.msg import MoveItErrorCodes

    T = panda.forward(panda.middle)
    for kind in ("position", "orientation"):
        request = _ik_request(T)
        if kind == "position":
            request.ik_request.constraints.position_constraints = [_position_constraint(link, 2, (0.1,), T)]
        else:
            request.ik_request.constraints.orientation_constraints = [
                _orientation_constraint(link, T[:3, :3], (0.1,) * 3)
            ]
        response = graph.call(request)
        assert response.error_code.val == MoveItErrorCodes.INVALID_GOAL_CONSTRAINTS
        message = _message(response)
        assert message is None or (f"constraints.{kind}_constraints[0].{expected}" in message), message


# ---------------------------------------------------------------------- a free axis and approximate answers by parameter

APPROXIMATE_M, APPROXIMATE_RAD = 0.005, 0.05


@pytest.fixture(scope="module")
def loose_graph(module_context):
    """The Panda node with free_rotation_axis 'z' and approximate answers within 5 mm and 0.05 rad."""
    graph = _Graph(
        module_context,
        _namespace("loose"),
        default_timeout_s=1.0,
        free_rotation_axis="z",
        approximate_position_tolerance_m=APPROXIMATE_M,
        approximate_orientation_tolerance_rad=APPROXIMATE_RAD,
    )
    yield graph
    graph.close()


def test_free_rotation_axis_frees_the_rotation_about_the_tips_z_in_every_answer(loose_graph, panda, tip):
    from moveit_msgs.msg import MoveItErrorCodes

    q_true, targets = reachable_targets(panda, 5, seed=17)
    for q, T_true in zip(q_true, targets):
        T = T_true @ _T(pinocchio.exp3(np.array([0.0, 0.0, 1.0])))  # turned 1 rad about the tip's z
        response = loose_graph.call(_ik_request(T, seed=q, timeout_s=0.2))
        assert response.error_code.val == MoveItErrorCodes.SUCCESS, _message(response)
        T_solved = tip.forward(_solution(response))
        assert math.acos(np.clip(T_solved[:3, 2] @ T[:3, 2], -1.0, 1.0)) <= TOL
        assert np.linalg.norm(T_solved[:3, 3] - T[:3, 3]) <= TOL


def _narrowed_away(request, q, offset_rad=0.003, width_rad=1e-3):
    """Joint constraints holding joints 1-6 in windows beside q (q + offset_rad, width_rad wide): the pose
    of q is then out of exact reach by about a millimetre, but near."""
    from moveit_msgs.msg import JointConstraint

    request.ik_request.constraints.joint_constraints = [
        JointConstraint(
            joint_name=name,
            position=float(value) + offset_rad,
            tolerance_below=0.0,
            tolerance_above=width_rad,
            weight=1.0,
        )
        for name, value in zip(PANDA_JOINTS[:6], q[:6])
    ]
    return request


def test_approximate_answers_say_how_far_they_are_and_are_off_by_default(graph, loose_graph, panda, tip, hand):
    """A pose out of exact reach by about a millimetre: SUCCESS from the node with approximate answers,
    within their tolerances by Pinocchio (the distance the message gives in mm is Pinocchio's); the node
    with the defaults answers NO_IK_SOLUTION; a constraint the approximate answer breaks makes it
    NO_IK_SOLUTION too."""
    import re
    from moveit_msgs.msg import MoveItErrorCodes

    q_true, targets = reachable_targets(panda, 4, seed=18)
    for q, T in zip(q_true, targets):
        response = loose_graph.call(_narrowed_away(_ik_request(T, timeout_s=0.1), q))
        assert response.error_code.val == MoveItErrorCodes.SUCCESS, _message(response)
        q_solved = _solution(response)
        T_solved = tip.forward(q_solved)
        position_error = np.linalg.norm(T_solved[:3, 3] - T[:3, 3])
        z_angle = math.acos(np.clip(T_solved[:3, 2] @ T[:3, 2], -1.0, 1.0))  # z is free: its axis is what counts
        assert TOL < position_error <= APPROXIMATE_M and z_angle <= APPROXIMATE_RAD, (position_error, z_angle)
        message = _message(response)
        if message is not None:
            found = re.match(r"approximate: ([0-9.e+-]+) mm and ([0-9.e+-]+) deg from the pose", message)
            assert found, message
            assert math.isclose(float(found.group(1)), 1e3 * position_error, rel_tol=6e-3, abs_tol=1e-6)  # 3 digits
            assert math.isclose(float(found.group(2)), math.degrees(z_angle), rel_tol=6e-3, abs_tol=1e-3)
        response = graph.call(_narrowed_away(_ik_request(T, timeout_s=0.1), q))
        assert response.error_code.val == MoveItErrorCodes.NO_IK_SOLUTION, _message(response)
        request = _narrowed_away(_ik_request(T, timeout_s=0.1), q)
        T_hand = hand.forward(q)
        request.ik_request.constraints.position_constraints = [
            _position_constraint("panda_hand", 2, (0.05,), _T(p=T_hand[:3, 3] + np.array([0.0, 0.0, 0.3])))
        ]
        response = loose_graph.call(request)
        assert response.error_code.val == MoveItErrorCodes.NO_IK_SOLUTION, _message(response)


# ---------------------------------------------------------------------- cost terms by parameter


@pytest.fixture(scope="module")
def centring_graph(module_context):
    """The Panda node with the centring cost term at full weight."""
    graph = _Graph(module_context, _namespace("centring"), default_timeout_s=1.0, centring_weight=1.0)
    yield graph
    graph.close()


def test_the_centring_weight_moves_answers_towards_the_middle_of_the_limits(graph, centring_graph, panda, tip):
    """The same requests to the node with the defaults and to one with centring_weight 1: the latter's
    answers lie nearer the middle of the joint limits (most of them; the distance in rad), each within the
    tolerance by Pinocchio."""
    from moveit_msgs.msg import MoveItErrorCodes

    _, targets = reachable_targets(panda, 12, seed=19)
    nearer = 0
    for T in targets:
        offsets = []
        for node in (graph, centring_graph):
            response = node.call(_ik_request(T, timeout_s=0.2))
            assert response.error_code.val == MoveItErrorCodes.SUCCESS, _message(response)
            q = _solution(response)
            position_m, rotation_rad = tip.errors(q, T)
            assert position_m <= TOL and rotation_rad <= TOL
            offsets.append(np.linalg.norm(q - panda.middle))
        nearer += offsets[1] < offsets[0]
    assert nearer >= 11
