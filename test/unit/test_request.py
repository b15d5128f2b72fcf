"""The request logic without a ROS graph: every refusal of the README's request table, the abuse cases of
issue 11, a property-based fuzz (hypothesis) of request → problem or refusal → solver, and GetPositionFK
requests → FK problem or refusal, answered against Pinocchio.

Messages are plain Python objects here (no rclpy.init, no node). The chain is the Panda with a 'world'
frame above its base turned 45 degrees about z; the fuzz's also has a continuous first joint.
"""

import dataclasses
import math
import re
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point, Pose, PoseStamped, Quaternion, Vector3
from hypothesis import HealthCheck, given, settings, strategies as st
from moveit_msgs.msg import (
    BoundingVolume,
    Constraints,
    JointConstraint,
    MoveItErrorCodes as C,
    OrientationConstraint,
    PositionConstraint,
    PositionIKRequest,
    RobotState,
    VisibilityConstraint,
)
from moveit_msgs.srv import GetPositionFK
from sensor_msgs.msg import JointState
from shape_msgs.msg import Mesh, SolidPrimitive
from std_msgs.msg import Header

from reference import ReferenceChain
from urdf_variants import panda_urdf, with_continuous_joint, with_world_frame

from ik_neural.collision import CollisionChecker
from ik_neural.constraints import ConstraintTest
from ik_neural.query import IKQuery, Tolerance
from ik_neural.ros.messages import matrix_to_pose, seconds_to_duration
from ik_neural.ros.request import CurrentState, FKProblem, Problem, Refusal, RequestContext, fk_problem_of, problem_of
from ik_neural.ros.settings import NodeSettings
from ik_neural.solver import IKSolver
from ik_neural.urdf_model import UrdfModel

ROOT = Path(__file__).resolve().parents[2]
WORLD_XYZ, WORLD_RPY = "0.5 -0.2 0.75", f"0 0 {math.pi / 4!r}"
MAX_MESSAGE = 1000  # characters: every message the request logic writes stays under this
SETTINGS = NodeSettings(group_name="panda_arm", default_timeout_s=0.05, max_timeout_s=2.0, max_request_items=50)


def _context(urdf, settings=SETTINGS):
    model = UrdfModel.parse(urdf)
    return RequestContext.of_model(model, model.chain("panda_link0", "panda_link8"), settings)


@pytest.fixture(scope="module")
def urdf():
    return with_world_frame(panda_urdf(), WORLD_XYZ, WORLD_RPY)


@pytest.fixture(scope="module")
def context(urdf):
    return _context(urdf)


@pytest.fixture(scope="module")
def continuous_urdf():
    return with_continuous_joint(with_world_frame(panda_urdf(), WORLD_XYZ, WORLD_RPY), "panda_joint1")


@pytest.fixture(scope="module")
def continuous_context(continuous_urdf):
    return _context(continuous_urdf)


def _unknown_state(context):
    return CurrentState(context.chain.middle.copy(), False)


def _request(T=None, frame="panda_link0", link="", group="panda_arm", timeout_s=0.0, **fields):
    ik = PositionIKRequest(group_name=group, ik_link_name=link, timeout=seconds_to_duration(timeout_s), **fields)
    ik.pose_stamped.header.frame_id = frame
    ik.pose_stamped.pose = matrix_to_pose(np.eye(4) if T is None else T)
    return ik


def _T_mid(context):
    return context.chain.forward(context.chain.middle)


def _documented_codes():
    """The codes of the README's request table (the codes a refusal may have)."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("**Requests.**") : readme.index("**Seeds.**")]
    rows = "\n".join(line for line in section.splitlines() if line.startswith("|"))
    return {int(code) for code in re.findall(r"\b[A-Z_]+ \((-?\d+)\)", rows)}


_DOCUMENTED = _documented_codes()


def _refusal(outcome, code):
    assert isinstance(outcome, Refusal), outcome
    assert outcome.code == code, outcome
    assert 0 < len(outcome.message) < MAX_MESSAGE
    return outcome.message


# ---------------------------------------------------------------------- refusals, one per README row


def test_documented_codes_are_the_refusal_codes():
    assert _documented_codes() == {
        C.INVALID_GROUP_NAME,
        C.INVALID_LINK_NAME,
        C.FRAME_TRANSFORM_FAILURE,
        C.INVALID_GOAL_CONSTRAINTS,
        C.INVALID_ROBOT_STATE,
        C.FAILURE,
        C.COLLISION_CHECKING_UNAVAILABLE,
    }


def test_unknown_group_is_invalid_group_name_and_a_long_one_is_echoed_short(context):
    message = _refusal(problem_of(_request(group="right_arm"), context, _unknown_state(context)), C.INVALID_GROUP_NAME)
    assert "'right_arm'" in message and "'panda_arm'" in message
    message = _refusal(
        problem_of(_request(group="g" * 100_000), context, _unknown_state(context)), C.INVALID_GROUP_NAME
    )
    assert "100002 characters" in message


@pytest.mark.parametrize(
    "link, vector, links",
    [
        ("panda_link3", 0, []),
        ("gripper", 0, []),
        ("", 2, []),
        ("", 1, ["panda_link8", "panda_link7"]),
    ],
)
def test_links_not_fixed_to_the_tip_and_several_poses_are_invalid_link_name(context, link, vector, links):
    ik = _request(link=link)
    ik.pose_stamped_vector = [ik.pose_stamped] * vector
    ik.ik_link_names = links
    _refusal(problem_of(ik, context, _unknown_state(context)), C.INVALID_LINK_NAME)


@pytest.mark.parametrize("frame", ["camera_link", "panda_link2", "//panda_link0", "//world", "x" * 5000])
def test_frames_not_fixed_to_the_base_are_frame_transform_failure(context, frame):
    message = _refusal(problem_of(_request(frame=frame), context, _unknown_state(context)), C.FRAME_TRANSFORM_FAILURE)
    assert "no TF listener" in message


@pytest.mark.parametrize(
    "position, orientation",
    [
        ((math.nan, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0)),
        ((0.0, math.inf, 0.0), (0.0, 0.0, 0.0, 1.0)),
        ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 2.0)),
        ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0)),
        ((0.0, 0.0, 0.0), (1e308, 1e308, 0.0, 0.0)),
    ],
)
def test_bad_poses_are_invalid_goal_constraints(context, position, orientation):
    ik = _request()
    ik.pose_stamped.pose = Pose(
        position=Point(x=position[0], y=position[1], z=position[2]),
        orientation=Quaternion(x=orientation[0], y=orientation[1], z=orientation[2], w=orientation[3]),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        message = _refusal(problem_of(ik, context, _unknown_state(context)), C.INVALID_GOAL_CONSTRAINTS)
    assert message.startswith("pose_stamped.pose.")


@pytest.mark.parametrize(
    "frame, x, y",
    [
        ("world", 1.7e308, 1.7e308),  # past the largest float64 along the base's x, in the 45-degree frame
        ("panda_link0", 1e308, 0.0),  # a float64, but no float32 (which the network reads)
        ("panda_link0", 0.0, -3.5e38),
    ],
)
def test_a_position_beyond_float32_in_the_base_frame_is_invalid_goal_constraints(context, frame, x, y):
    ik = _request(frame=frame)
    ik.pose_stamped.pose.position = Point(x=x, y=y, z=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy overflow warning on the way
        message = _refusal(problem_of(ik, context, _unknown_state(context)), C.INVALID_GOAL_CONSTRAINTS)
    assert "beyond float32's range" in message


@pytest.mark.parametrize(
    "names, positions, expected",
    [
        (["elbow"], [0.1], "unknown joints ['elbow']"),
        (["panda_joint1", "panda_joint2"], [0.1], "2 names but 1 positions"),
        (["panda_joint1"], [math.nan], "'panda_joint1' is nan"),
        (["panda_joint1", "panda_joint1"], [0.1, 0.2], "repeats joint names ['panda_joint1']"),
    ],
)
def test_bad_seeds_are_invalid_robot_state(context, names, positions, expected):
    ik = _request(robot_state=RobotState(joint_state=JointState(name=names, position=positions)))
    assert expected in _refusal(problem_of(ik, context, _unknown_state(context)), C.INVALID_ROBOT_STATE)


def test_many_unknown_seed_joints_are_echoed_short(context):
    names = [f"joint_{i}" for i in range(SETTINGS.max_request_items)]
    ik = _request(robot_state=RobotState(joint_state=JointState(name=names, position=[0.0] * len(names))))
    message = _refusal(problem_of(ik, context, _unknown_state(context)), C.INVALID_ROBOT_STATE)
    assert f"({len(names)} items)" in message


@pytest.mark.parametrize(
    "constraint, expected",
    [
        (JointConstraint(joint_name="nope", tolerance_above=0.1, tolerance_below=0.1), "unknown joint 'nope'"),
        (
            JointConstraint(joint_name="panda_joint4", position=1.0, tolerance_above=0.1, tolerance_below=0.1),
            "leaves no room",
        ),
        (
            JointConstraint(joint_name="panda_joint2", position=0.0, tolerance_above=-0.1, tolerance_below=0.1),
            "tolerances must be >= 0",
        ),
        (
            JointConstraint(joint_name="panda_joint2", position=math.nan, tolerance_above=0.1, tolerance_below=0.1),
            "not finite",
        ),
        (
            JointConstraint(joint_name="panda_joint2", position=0.0, tolerance_above=math.inf, tolerance_below=0.1),
            "not finite",
        ),
    ],
)
def test_bad_joint_constraints_are_invalid_goal_constraints(context, constraint, expected):
    ik = _request(constraints=Constraints(joint_constraints=[constraint]))
    assert expected in _refusal(problem_of(ik, context, _unknown_state(context)), C.INVALID_GOAL_CONSTRAINTS)


def test_the_overflowing_window_on_a_continuous_joint_is_invalid_goal_constraints(continuous_context):
    """Issue 11's crash: finite, non-negative numbers whose window overflows to -inf."""
    constraint = JointConstraint(joint_name="panda_joint1", position=-1e308, tolerance_above=0.0, tolerance_below=1e308)
    ik = _request(constraints=Constraints(joint_constraints=[constraint]))
    context = continuous_context
    assert "not finite" in _refusal(problem_of(ik, context, _unknown_state(context)), C.INVALID_GOAL_CONSTRAINTS)


def test_negative_timeout_is_failure(context):
    ik = _request()
    ik.timeout.sec = -1
    assert "timeout is negative" in _refusal(problem_of(ik, context, _unknown_state(context)), C.FAILURE)


@pytest.mark.parametrize(
    "path",
    [
        "robot_state.joint_state.name",
        "robot_state.joint_state.velocity",
        "constraints.position_constraints",
        "ik_link_names",
        "pose_stamped_vector",
    ],
)
def test_arrays_over_max_request_items_are_failure_before_any_other_check(context, path):
    ik = _request(group="not_this_group")  # would be INVALID_GROUP_NAME, were it looked at
    owner_path, _, name = path.rpartition(".")
    owner = ik
    for part in filter(None, owner_path.split(".")):
        owner = getattr(owner, part)
    item = {
        "name": "x",
        "velocity": 0.0,
        "position_constraints": PositionConstraint(),
        "ik_link_names": "x",
        "pose_stamped_vector": PoseStamped(),
    }[name]
    setattr(owner, name, [item] * (SETTINGS.max_request_items + 1))
    message = _refusal(problem_of(ik, context, _unknown_state(context)), C.FAILURE)
    assert f"{path} has {SETTINGS.max_request_items + 1} entries" in message and "max_request_items" in message


def test_avoid_collisions_is_checked_refused_or_noted_by_policy(urdf):
    ik = _request(T=_T_mid(_context(urdf)), avoid_collisions=True)
    # 'check' (the default) where the node has no collision checker: the robot has no collision geometry.
    unchecked = _context(urdf)
    message = _refusal(problem_of(ik, unchecked, _unknown_state(unchecked)), C.COLLISION_CHECKING_UNAVAILABLE)
    assert "no collision geometry" in message
    model = UrdfModel.parse(urdf)
    chain = model.chain("panda_link0", "panda_link8")
    checking = RequestContext.of_model(
        model, chain, SETTINGS, collision=CollisionChecker.from_urdf(model, chain, disabled_pairs=[])
    )
    ik.robot_state.joint_state = JointState(name=["panda_joint1", "panda_finger_joint1"], position=[0.1, 0.03])
    problem = problem_of(ik, checking, _unknown_state(checking))
    assert isinstance(problem, Problem) and problem.avoid_collisions and problem.notes == ()
    assert problem.other_positions == {"panda_finger_joint1": 0.03} and problem.seed[0] == 0.1
    ik.robot_state.joint_state = JointState(name=["panda_finger_joint1"], position=[math.nan])
    assert "panda_finger_joint1" in _refusal(problem_of(ik, checking, _unknown_state(checking)), C.INVALID_ROBOT_STATE)
    ik.robot_state.joint_state = JointState()
    refusing = _context(urdf, NodeSettings(group_name="panda_arm", avoid_collisions_policy="refuse"))
    _refusal(problem_of(ik, refusing, _unknown_state(refusing)), C.COLLISION_CHECKING_UNAVAILABLE)
    ignoring = _context(urdf, NodeSettings(group_name="panda_arm", avoid_collisions_policy="ignore"))
    problem = problem_of(ik, ignoring, _unknown_state(ignoring))
    assert (
        isinstance(problem, Problem) and not problem.avoid_collisions and "collisions NOT checked" in problem.notes[0]
    )


# ---------------------------------------------------------------------- problems


def test_pose_in_a_fixed_frame_for_a_fixed_link_is_the_tips_pose_in_the_base(urdf, context):
    """Judged by Pinocchio: the request's world-frame pose of panda_link7 is FK's panda_link8 in the base."""
    chain = context.chain
    q = chain.middle + 0.3
    base_tip = ReferenceChain(urdf, "panda_link0", "panda_link8", chain.joint_names).forward(q)
    world_link7 = ReferenceChain(urdf, "world", "panda_link7", chain.joint_names).forward(q)
    for frame in ("world", "/world"):  # one leading '/' is ignored
        problem = problem_of(_request(T=world_link7, frame=frame, link="panda_link7"), context, _unknown_state(context))
        assert isinstance(problem, Problem), problem
        np.testing.assert_allclose(problem.T_base_tip, base_tip, atol=1e-12)


def test_empty_names_mean_base_tip_and_group_zero_timeout_the_default(context):
    T = _T_mid(context)
    problem = problem_of(_request(T=T, frame="", link="", group=""), context, _unknown_state(context))
    assert isinstance(problem, Problem)
    np.testing.assert_allclose(problem.T_base_tip, T, atol=1e-12)
    assert problem.timeout_s == SETTINGS.default_timeout_s and problem.notes == () and not problem.seed_known
    assert problem.bounds is context.chain.bounds


def test_timeout_is_kept_to_the_nanosecond_and_capped_at_max_timeout_s(context):
    ik = _request(T=_T_mid(context))
    ik.timeout.sec, ik.timeout.nanosec = 1, 234_567_891
    assert problem_of(ik, context, _unknown_state(context)).timeout_s == 1.234567891
    ik.timeout.sec = 2**31 - 1
    problem = problem_of(ik, context, _unknown_state(context))
    assert problem.timeout_s == SETTINGS.max_timeout_s
    assert any("capped to max_timeout_s" in note for note in problem.notes)


def test_seed_comes_from_the_request_then_the_current_state(context):
    chain = context.chain
    current = CurrentState(chain.middle + 0.1, True)
    ik = _request(
        T=_T_mid(context),
        robot_state=RobotState(joint_state=JointState(name=["panda_joint3", "panda_joint8"], position=[0.25, 7.0])),
    )  # panda_joint8: the robot's, not the chain's
    problem = problem_of(ik, context, current)
    expected = current.q.copy()
    expected[2] = 0.25
    np.testing.assert_array_equal(problem.seed, expected)
    assert problem.seed_known


def test_a_problem_is_the_solvers_query_field_for_field(context):
    """Problem.query: the request's target, seed, bounds and budget, the node's tolerance, acceptance test
    and stop event; seed_first only where the seed is known."""
    constraint = JointConstraint(joint_name="panda_joint2", position=0.1, tolerance_above=0.2, tolerance_below=0.05)
    ik = _request(T=_T_mid(context), timeout_s=0.2, constraints=Constraints(joint_constraints=[constraint]))
    known = CurrentState(context.chain.middle + 0.1, True)
    problem = problem_of(ik, context, known)
    stop, tolerance = threading.Event(), Tolerance.position_only(1e-4)

    def accept(q):
        return True

    query = problem.query(tolerance, seed_first=True, accept=accept, stop=stop)
    assert isinstance(query, IKQuery)
    assert query.T_target is problem.T_base_tip and query.seed is problem.seed and query.bounds is problem.bounds
    assert (query.timeout_s, query.tolerance, query.accept, query.stop) == (0.2, tolerance, accept, stop)
    assert query.seed_first and not problem.query(tolerance, False, None, None).seed_first
    unknown = problem_of(ik, context, _unknown_state(context))
    assert not unknown.seed_known and not unknown.query(tolerance, True, None, None).seed_first


def test_joint_constraints_narrow_the_bounds_and_unapplied_ones_are_noted(context, continuous_context):
    constraints = Constraints(
        joint_constraints=[
            JointConstraint(joint_name="panda_joint2", position=0.1, tolerance_above=0.2, tolerance_below=0.05),
            JointConstraint(joint_name="panda_joint8", position=0.0, tolerance_above=0.1, tolerance_below=0.1),
        ],
        visibility_constraints=[VisibilityConstraint()],
    )
    problem = problem_of(_request(T=_T_mid(context), constraints=constraints), context, _unknown_state(context))
    assert (problem.bounds.lower[1], problem.bounds.upper[1]) == (0.1 - 0.05, 0.1 + 0.2)
    assert any("outside the chain ignored: ['panda_joint8']" in note for note in problem.notes)
    assert any("unsupported constraints ignored (1 visibility)" in note for note in problem.notes)
    # A continuous joint's window may lie past pi: it becomes the joint's bounds.
    constraint = JointConstraint(joint_name="panda_joint1", position=3.3, tolerance_above=0.1, tolerance_below=0.1)
    context = continuous_context
    problem = problem_of(
        _request(T=_T_mid(context), constraints=Constraints(joint_constraints=[constraint])),
        context,
        _unknown_state(context),
    )
    assert (problem.bounds.lower[0], problem.bounds.upper[0], bool(problem.bounds.bounded[0])) == (
        3.3 - 0.1,
        3.3 + 0.1,
        True,
    )


# ---------------------------------------------------------------------- fuzz

_JOINTS = ["panda_joint1", "panda_joint2", "panda_joint4", "panda_joint7", "panda_joint8", "world_to_panda"]


def _mostly(valid, other):
    """Draws from ``valid`` about seven times in eight, so that many requests get past the early checks."""
    return st.integers(0, 7).flatmap(lambda k: valid if k else other)


_names = _mostly(st.sampled_from(_JOINTS), st.one_of(st.sampled_from(["", "nope"]), st.text(max_size=300)))
_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, 0.1, 1.0, 3.3, 1e308, -1e308])
)
_frames = _mostly(
    st.sampled_from(["", "panda_link0", "/panda_link0", "world", "/world"]),
    st.one_of(st.sampled_from(["//panda_link0", "panda_link3"]), st.text(max_size=300)),
)
_links = _mostly(
    st.sampled_from(["", "panda_link8", "panda_link7"]), st.one_of(st.just("panda_link3"), st.text(max_size=300))
)
_quaternions = _mostly(st.just(Quaternion()), st.builds(Quaternion, x=_numbers, y=_numbers, z=_numbers, w=_numbers))
_pose = st.builds(
    lambda x, y, z, orientation: Pose(position=Point(x=x, y=y, z=z), orientation=orientation),
    _numbers,
    _numbers,
    _numbers,
    _quaternions,
)
_sane_pose = st.builds(lambda x, y, z: Pose(position=Point(x=x, y=y, z=z)), *[st.floats(-1.0, 1.0)] * 3)
_pose_stamped = st.builds(
    lambda frame, pose: PoseStamped(header=Header(frame_id=frame), pose=pose), _frames, _mostly(_sane_pose, _pose)
)
_constraints = st.builds(
    JointConstraint,
    joint_name=_names,
    position=_numbers,
    tolerance_above=_numbers,
    tolerance_below=_numbers,
    weight=_numbers,
)
_constraint_links = _mostly(
    st.sampled_from(["panda_link8", "panda_hand", "panda_link3", "panda_link0", "world"]),
    st.one_of(st.sampled_from(["", "panda_leftfinger"]), st.text(max_size=300)),
)
_size = st.floats(0.0, 1.0)
_primitive = _mostly(
    st.one_of(
        st.builds(
            lambda d: SolidPrimitive(type=SolidPrimitive.BOX, dimensions=d), st.lists(_size, min_size=3, max_size=3)
        ),
        st.builds(lambda r: SolidPrimitive(type=SolidPrimitive.SPHERE, dimensions=[r]), _size),
        st.builds(lambda h, r: SolidPrimitive(type=SolidPrimitive.CYLINDER, dimensions=[h, r]), _size, _size),
    ),
    st.builds(SolidPrimitive, type=st.integers(0, 255), dimensions=st.lists(_numbers, max_size=4)),
)
_position_constraints = st.builds(
    lambda link, frame, offset, region, extra_pose, mesh: PositionConstraint(
        header=Header(frame_id=frame),
        link_name=link,
        target_point_offset=Vector3(x=offset[0], y=offset[1], z=offset[2]),
        constraint_region=BoundingVolume(
            primitives=[primitive for primitive, _ in region],
            primitive_poses=[pose for _, pose in region] + extra_pose,
            meshes=mesh,
        ),
    ),
    _constraint_links,
    _frames,
    st.tuples(*[_mostly(st.floats(-0.2, 0.2), _numbers)] * 3),
    _mostly(
        st.lists(st.tuples(_primitive, _mostly(_sane_pose, _pose)), min_size=1, max_size=3),
        st.lists(st.tuples(_primitive, _pose), max_size=1),
    ),
    _mostly(st.just([]), st.lists(_sane_pose, max_size=1)),
    _mostly(st.just([]), st.just([Mesh()])),
)
_orientation_constraints = st.builds(
    lambda link, frame, orientation, x, y, z, parameterization: OrientationConstraint(
        header=Header(frame_id=frame),
        link_name=link,
        orientation=orientation,
        absolute_x_axis_tolerance=x,
        absolute_y_axis_tolerance=y,
        absolute_z_axis_tolerance=z,
        parameterization=parameterization,
    ),
    _constraint_links,
    _frames,
    _quaternions,
    *[_mostly(st.floats(0.0, 4.0), _numbers)] * 3,
    _mostly(st.sampled_from([0, 1]), st.integers(0, 255)),
)
_state = st.builds(
    lambda pairs, extra: JointState(name=[name for name, _ in pairs], position=[q for _, q in pairs] + extra),
    st.lists(st.tuples(_names, _mostly(st.floats(-3.0, 3.0), _numbers)), max_size=SETTINGS.max_request_items + 5),
    _mostly(st.just([]), st.lists(_numbers, max_size=2)),
)
_requests = st.builds(
    lambda group, link, pose_stamped, vector, links, state, constraints, positions, orientations, avoid, sec, nanosec: (
        PositionIKRequest(
            group_name=group,
            ik_link_name=link,
            pose_stamped=pose_stamped,
            pose_stamped_vector=vector,
            ik_link_names=links,
            robot_state=RobotState(joint_state=state),
            constraints=Constraints(
                joint_constraints=constraints,
                position_constraints=positions,
                orientation_constraints=orientations,
            ),
            avoid_collisions=avoid,
            timeout=Duration(sec=sec, nanosec=nanosec),
        )
    ),
    _mostly(st.sampled_from(["", "panda_arm"]), st.text(max_size=300)),
    _links,
    _pose_stamped,
    _mostly(st.just([]), st.lists(_pose_stamped, max_size=3)),
    _mostly(st.just([]), st.lists(_links, max_size=3)),
    _mostly(st.just(JointState()), _state),
    st.lists(_constraints, max_size=4),
    _mostly(st.just([]), st.lists(_position_constraints, max_size=2)),
    _mostly(st.just([]), st.lists(_orientation_constraints, max_size=2)),
    _mostly(st.just(False), st.just(True)),
    _mostly(st.integers(0, 3), st.integers(-(2**31), 2**31 - 1)),
    st.integers(0, 2**32 - 1),
)


@pytest.fixture(scope="module")
def fuzz_cases(urdf, continuous_urdf, continuous_context):
    """(context, solver) pairs: the continuous-joint Panda numerically, refusing or ignoring collision
    requests (ignoring, the checks after that one are reached), and the Panda with its shipped network
    (float32 inference)."""
    from ik_neural.robots import load_robot

    ignoring = dataclasses.replace(SETTINGS, avoid_collisions_policy="ignore")
    continuous_solver = IKSolver(continuous_context.chain)
    panda = _context(urdf, ignoring)
    network_solver = IKSolver(panda.chain, network=load_robot("panda").network)
    for solver in (continuous_solver, network_solver):
        solver.warm_up()
    return [
        (continuous_context, continuous_solver),
        (_context(continuous_urdf, ignoring), continuous_solver),
        (panda, network_solver),
    ]


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ik=_requests, seeded=st.booleans(), case=st.sampled_from(range(3)))
def test_fuzz_any_request_is_a_problem_the_solver_takes_or_a_documented_refusal(fuzz_cases, ik, seeded, case):
    context, solver = fuzz_cases[case]
    chain = context.chain
    current = CurrentState(chain.middle + 0.2, True) if seeded else _unknown_state(context)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy warning either
        outcome = problem_of(ik, context, current)
        if isinstance(outcome, Refusal):
            assert outcome.code in _DOCUMENTED and 0 < len(outcome.message) < MAX_MESSAGE, outcome
            return
        assert isinstance(outcome, Problem)
        assert outcome.T_base_tip.shape == (4, 4) and np.isfinite(outcome.T_base_tip).all()
        assert outcome.seed.shape == (chain.dof,) and np.isfinite(outcome.seed).all()
        assert 0 < outcome.timeout_s <= SETTINGS.max_timeout_s
        assert np.all(outcome.bounds.lower <= outcome.bounds.upper)
        assert all(len(note) < MAX_MESSAGE for note in outcome.notes)
        # Whatever the request module lets through, the solver takes without raising, and its constraints'
        # test with it (an answer it calls a success meets them).
        accept = ConstraintTest(chain, outcome.constraints) if outcome.constraints else None
        query = outcome.query(SETTINGS.tolerance, seed_first=True, accept=accept, stop=None)
        result = solver.solve(dataclasses.replace(query, timeout_s=0.001))
        assert not (result.success and accept is not None and accept.violated(result.q) is not None)
    assert result.q.shape == (chain.dof,)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    positions=st.lists(_position_constraints, min_size=1, max_size=2),
    orientations=st.lists(_orientation_constraints, max_size=2),
    link=st.sampled_from(["", "panda_hand"]),
    case=st.sampled_from([0, 2]),
)
def test_fuzz_constraints_are_a_problem_whose_answers_meet_them_or_a_documented_refusal(
    fuzz_cases, positions, orientations, link, case
):
    """Requests valid but for their position and orientation constraints (the pose reachable, at
    mid-limits): a documented refusal, or a problem the solver takes with the constraints' test, every
    success meeting them; no numpy warning on the way."""
    context, solver = fuzz_cases[case]
    chain = context.chain
    T_base_link = context.chain_links.poses(chain.middle, [link or chain.tip_link])[0]
    ik = _request(T=T_base_link, link=link)
    ik.constraints = Constraints(position_constraints=positions, orientation_constraints=orientations)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        outcome = problem_of(ik, context, _unknown_state(context))
        if isinstance(outcome, Refusal):
            assert outcome.code in _DOCUMENTED and 0 < len(outcome.message) < MAX_MESSAGE, outcome
            assert "constraints." in outcome.message, outcome
            return
        assert len(outcome.constraints) == len(positions) + len(orientations)
        assert all(len(note) < MAX_MESSAGE for note in outcome.notes)
        accept = ConstraintTest(chain, outcome.constraints)
        result = solver.solve(outcome.query(SETTINGS.tolerance, True, accept, None, approximate=Tolerance(0.01, 0.1)))
        assert not result.success or accept.violated(result.q) is None


# ---------------------------------------------------------------------- forward kinematics (GetPositionFK)

PANDA_JOINTS = [f"panda_joint{i}" for i in range(1, 8)]


def _fk_request(links, q=None, frame="", names=None):
    request = GetPositionFK.Request(fk_link_names=list(links))
    request.header.frame_id = frame
    if q is not None:
        names = PANDA_JOINTS if names is None else names
        request.robot_state.joint_state = JointState(name=list(names), position=[float(v) for v in q])
    return request


@pytest.mark.parametrize(
    "frame, expected_frame",
    [
        ("", "panda_link0"),
        ("panda_link0", "panda_link0"),
        ("world", "world"),
        ("/world", "world"),
        ("panda_link3", "panda_link3"),
        ("panda_link8", "panda_link8"),
    ],
)
def test_fk_places_the_chains_links_in_the_frame_asked_as_pinocchio_does(urdf, context, frame, expected_frame):
    links = ["panda_link8", "panda_link7", "panda_link2", "panda_link0", "world", "panda_link8"]
    q = context.chain.middle + np.linspace(-0.4, 0.4, 7)
    # A full robot state as MoveIt sends it: the robot's other joints (the fixed panda_joint8) too, any order.
    problem = fk_problem_of(_fk_request(links, [*q[::-1], 0.0], frame, [*PANDA_JOINTS[::-1], "panda_joint8"]), context)
    assert isinstance(problem, FKProblem), problem
    assert problem.links == tuple(links) and problem.frame == expected_frame
    np.testing.assert_array_equal(problem.q, q)
    T = context.chain_links.poses(problem.q, problem.links, problem.frame)
    for link, T_link in zip(links, T):
        T_ref = ReferenceChain(urdf, expected_frame, link, PANDA_JOINTS).forward(q)
        assert np.abs(T_link - T_ref).max() < 1e-9, link


@pytest.mark.parametrize(
    "request_, code, expected",
    [
        (_fk_request([], np.zeros(7)), C.INVALID_LINK_NAME, "fk_link_names is empty"),
        (_fk_request(["panda_link8", "gripper"], np.zeros(7)), C.INVALID_LINK_NAME, "links ['gripper']"),
        (_fk_request(["panda_link8"], np.zeros(7), frame="camera_link"), C.FRAME_TRANSFORM_FAILURE, "'camera_link'"),
        (_fk_request(["panda_link8"], np.zeros(7), frame="//world"), C.FRAME_TRANSFORM_FAILURE, "no TF listener"),
        (_fk_request(["panda_link8"]), C.INVALID_ROBOT_STATE, "lacks the chain's joints ['panda_joint1'"),
        (
            _fk_request(["panda_link8"], np.zeros(6), names=PANDA_JOINTS[:6]),
            C.INVALID_ROBOT_STATE,
            "lacks the chain's joints ['panda_joint7']",
        ),
        (
            _fk_request(["panda_link8"], np.zeros(8), names=[*PANDA_JOINTS, "elbow"]),
            C.INVALID_ROBOT_STATE,
            "unknown joints ['elbow']",
        ),
        (_fk_request(["panda_link8"], [*np.zeros(6), math.nan]), C.INVALID_ROBOT_STATE, "'panda_joint7' is nan"),
        (
            _fk_request(["panda_link8"], np.zeros(7), names=[*PANDA_JOINTS[:6], "panda_joint1"]),
            C.INVALID_ROBOT_STATE,
            "repeats joint names ['panda_joint1']",
        ),
        (
            _fk_request(["x"] * (SETTINGS.max_request_items + 1), np.zeros(7)),
            C.FAILURE,
            f"fk_link_names has {SETTINGS.max_request_items + 1} entries",
        ),
    ],
)
def test_bad_fk_requests_are_refused_with_their_code(context, request_, code, expected):
    assert expected in _refusal(fk_problem_of(request_, context), code)


def test_fk_names_and_positions_of_different_lengths_and_long_names_are_refused_short(context):
    request = _fk_request(["panda_link8"], np.zeros(7))
    request.robot_state.joint_state.position = [0.0] * 6
    assert "7 names but 6 positions" in _refusal(fk_problem_of(request, context), C.INVALID_ROBOT_STATE)
    message = _refusal(fk_problem_of(_fk_request(["l" * 100_000], np.zeros(7)), context), C.INVALID_LINK_NAME)
    assert "(1 items)" in message  # and under MAX_MESSAGE (_refusal)
    message = _refusal(
        fk_problem_of(_fk_request(["panda_link8"], np.zeros(7), frame="f" * 100_000), context),
        C.FRAME_TRANSFORM_FAILURE,
    )
    assert "100002 characters" in message


def test_a_collision_object_as_pymoveit2_sends_it_has_its_box_at_the_objects_pose():
    """pymoveit2's add_collision_box: the box's pose in the object's ``pose``, no primitive_poses."""
    from moveit_msgs.msg import CollisionObject
    from shape_msgs.msg import SolidPrimitive
    from ik_neural.ros.messages import collision_object_shapes

    pose = Pose(position=Point(x=0.5, y=0.0, z=0.3), orientation=Quaternion(w=1.0))
    msg = CollisionObject(
        id="box", pose=pose, primitives=[SolidPrimitive(type=SolidPrimitive.BOX, dimensions=[0.2, 0.4, 0.2])]
    )
    T_frame_object, [(box, T_object_box)] = collision_object_shapes(msg)
    np.testing.assert_allclose(T_frame_object[:3, 3], [0.5, 0.0, 0.3])
    np.testing.assert_array_equal(T_object_box, np.eye(4))
    assert (box.kind, box.size) == ("box", (0.2, 0.4, 0.2))


def test_collision_object_primitives_become_geometries_in_the_objects_frame():
    from moveit_msgs.msg import CollisionObject
    from shape_msgs.msg import Mesh, Plane as ShapePlane, SolidPrimitive
    from ik_neural.ros.messages import collision_object_shapes

    pose = Pose(position=Point(x=0.1, y=0.2, z=0.3), orientation=Quaternion(w=1.0))
    msg = CollisionObject(id="thing", pose=Pose(orientation=Quaternion(x=0.0, y=0.0, z=0.0, w=0.0)))
    msg.primitives = [
        SolidPrimitive(type=SolidPrimitive.CYLINDER, dimensions=[0.5, 0.1]),
        SolidPrimitive(type=SolidPrimitive.BOX, dimensions=[1.0, 2.0, 3.0]),
    ]
    msg.primitive_poses = [pose, Pose()]
    T_frame_object, shapes = collision_object_shapes(msg)
    np.testing.assert_array_equal(T_frame_object, np.eye(4))  # an all-zero quaternion: identity, as MoveIt
    (cylinder, T_cylinder), (box, _) = shapes
    assert (cylinder.kind, cylinder.size, box.kind, box.size) == ("cylinder", (0.1, 0.5), "box", (1.0, 2.0, 3.0))
    np.testing.assert_allclose(T_cylinder[:3, 3], [0.1, 0.2, 0.3])
    msg.meshes, msg.mesh_poses = [Mesh()], [Pose(), Pose()]
    with pytest.raises(ValueError, match=r"'thing': 1 meshes but 2 mesh_poses"):
        collision_object_shapes(msg)
    msg.mesh_poses = []  # a shape without its pose is at the object's pose, as MoveIt assumes
    with pytest.raises(ValueError, match=r"'thing': meshes\[0\].triangles is empty"):
        collision_object_shapes(msg)
    msg.meshes, msg.mesh_poses = [], []
    # A plane's coefficients go to Plane as MoveIt hands them to FCL: (a, b, c) . x = d.
    msg.planes, msg.plane_poses = [ShapePlane(coef=[0.0, 0.0, 2.0, 1.0])], [pose]
    (_, _), (_, _), (plane, T_plane) = collision_object_shapes(msg)[1]
    assert (plane.normal, plane.offset) == ((0.0, 0.0, 2.0), 1.0)
    np.testing.assert_allclose(T_plane[:3, 3], [0.1, 0.2, 0.3])
    msg.planes = [ShapePlane(coef=[0.0, 0.0, 0.0, 1.0])]
    with pytest.raises(ValueError, match=r"'thing': planes\[0\]: plane normal \[0.0, 0.0, 0.0\]"):
        collision_object_shapes(msg)
    msg.planes, msg.plane_poses = [], []
    msg.primitives[1].dimensions = [1.0]
    with pytest.raises(ValueError, match=r"primitives\[1\]"):
        collision_object_shapes(msg)


# ---------------------------------------------------------------------- attached collision objects


def _attached_object(link="panda_hand", frame="", T=None, touch_links=(), mesh=None, object_id="tool"):
    """A moveit_msgs/AttachedCollisionObject: a sphere r 0.03 (or ``mesh``: (vertices, triangles)) at
    ``T`` (the object's pose) in ``frame``."""
    from moveit_msgs.msg import AttachedCollisionObject, CollisionObject
    from shape_msgs.msg import Mesh, MeshTriangle, SolidPrimitive

    msg = CollisionObject(id=object_id)
    msg.header.frame_id = frame
    msg.pose = matrix_to_pose(np.eye(4) if T is None else T)
    if mesh is None:
        msg.primitives = [SolidPrimitive(type=SolidPrimitive.SPHERE, dimensions=[0.03])]
        msg.primitive_poses = [matrix_to_pose(np.eye(4))]
    else:
        vertices, triangles = mesh
        msg.meshes = [
            Mesh(
                vertices=[Point(x=float(x), y=float(y), z=float(z)) for x, y, z in vertices],
                triangles=[MeshTriangle(vertex_indices=list(t)) for t in triangles],
            )
        ]
        msg.mesh_poses = [matrix_to_pose(np.eye(4))]
    return AttachedCollisionObject(link_name=link, object=msg, touch_links=list(touch_links))


@pytest.fixture(scope="module")
def checking(urdf):
    model = UrdfModel.parse(urdf)
    chain = model.chain("panda_link0", "panda_link8")
    return RequestContext.of_model(
        model, chain, SETTINGS, collision=CollisionChecker.from_urdf(model, chain, disabled_pairs=[])
    )


def _with_attached(context, *objects, q=None, fingers=0.02):
    ik = _request(T=_T_mid(context), avoid_collisions=True)
    q = context.chain.middle if q is None else q
    ik.robot_state.joint_state = JointState(
        name=[*context.chain.joint_names, "panda_finger_joint1"], position=[*map(float, q), fingers]
    )
    ik.robot_state.attached_collision_objects = list(objects)
    return ik


def test_attached_objects_become_bodies_on_their_links_in_the_link_frame_or_at_the_robot_states_pose(urdf, checking):
    """Frame empty or the link: the pose is relative to the link. Another placed frame (the base, the world
    above it, a finger): placed at the robot state's configuration, judged by Pinocchio's FK."""
    chain = checking.chain
    q = chain.middle + 0.2
    T_offset = np.eye(4)
    T_offset[:3, 3] = [0.0, 0.0, 0.1]
    for frame in ("", "panda_hand", "/panda_hand"):
        problem = problem_of(
            _with_attached(checking, _attached_object(frame=frame, T=T_offset, touch_links=["panda_leftfinger"]), q=q),
            checking,
            _unknown_state(checking),
        )
        assert isinstance(problem, Problem), problem
        (body,) = problem.attached
        assert (body.name, body.link, body.touch_links) == ("tool", "panda_hand", frozenset({"panda_leftfinger"}))
        np.testing.assert_allclose(body.T_link_solid[0], T_offset, atol=1e-12)
    joints = [*chain.joint_names, "panda_finger_joint1"]
    for frame in ("panda_link0", "world", "panda_link3", "panda_leftfinger"):
        T_frame_object = np.eye(4)
        T_frame_object[:3, 3] = [0.3, -0.1, 0.5]
        problem = problem_of(
            _with_attached(checking, _attached_object(frame=frame, T=T_frame_object), q=q, fingers=0.02),
            checking,
            _unknown_state(checking),
        )
        assert isinstance(problem, Problem), (frame, problem)
        T_hand_frame = ReferenceChain(urdf, "panda_hand", frame, joints).forward(np.array([*q, 0.02]))
        np.testing.assert_allclose(problem.attached[0].T_link_solid[0], T_hand_frame @ T_frame_object, atol=1e-9)
    # Without avoid_collisions the attached objects are not looked at (nothing is checked).
    unchecked = _with_attached(checking, _attached_object(link="nosuch"))
    unchecked.avoid_collisions = False
    assert isinstance(problem_of(unchecked, checking, _unknown_state(checking)), Problem)


def test_bad_attached_objects_are_refused_naming_the_object_and_field(checking):
    from moveit_msgs.msg import CollisionObject

    square = ([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], [[0, 1, 2], [1, 3, 2]])
    removed = _attached_object()
    removed.object.operation = CollisionObject.REMOVE
    cases = [
        (
            _attached_object(link="nosuch"),
            C.INVALID_ROBOT_STATE,
            r"attached_collision_objects\[1\] \(object 'tool'\): link_name: link 'nosuch' is not placed",
        ),
        (_attached_object(link="world_x"), C.INVALID_ROBOT_STATE, r"link_name: link 'world_x'"),
        (
            _attached_object(frame="camera"),
            C.FRAME_TRANSFORM_FAILURE,
            r"object.header.frame_id: link 'camera' is not placed",
        ),
        (removed, C.INVALID_ROBOT_STATE, r"object.operation b'\\x01' is not ADD"),
        (
            _attached_object(mesh=(square[0], [[0, 1, 4]])),
            C.INVALID_ROBOT_STATE,
            r"collision object 'tool': meshes\[0\].triangles\[0\] = \[0, 1, 4\] indexes past the 4 vertices",
        ),
        (_attached_object(mesh=(square[0], [])), C.INVALID_ROBOT_STATE, r"meshes\[0\].triangles is empty"),
        (
            _attached_object(mesh=([[0, 0, 0], [1, math.nan, 0], [0, 1, 0]], [[0, 1, 2]])),
            C.INVALID_ROBOT_STATE,
            r"meshes\[0\].vertices\[1\] = \[1.0, nan, 0.0\] is not finite",
        ),
        (
            _attached_object(mesh=([[0, 0, 0]] * (SETTINGS.max_request_items + 1), [[0, 0, 0]])),
            C.FAILURE,
            r"attached_collision_objects\[1\].object.meshes\[0\].vertices has 51 entries",
        ),
    ]
    for attached, code, pattern in cases:  # each after a good one: the message names the bad one's index
        message = _refusal(
            problem_of(
                _with_attached(checking, _attached_object(object_id="fine"), attached),
                checking,
                _unknown_state(checking),
            ),
            code,
        )
        assert re.search(pattern, message), (pattern, message)
    problem = problem_of(_with_attached(checking, _attached_object(mesh=square)), checking, _unknown_state(checking))
    assert isinstance(problem, Problem) and len(problem.attached[0].solids) == 1
