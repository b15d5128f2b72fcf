"""Position and orientation constraints without a ROS graph: the regions, MoveIt's orientation errors (XYZ
Euler angles, rotation vectors) and the acceptance test on the Panda, each judged by independent code
(plain numpy, Pinocchio's FK and log3); then the request layer: moveit_msgs/Constraints to constraints in the
base frame, every refusal naming its field, and the orientation constraint that widens the pose's own
rotation tolerance.

Messages are plain Python objects here (no rclpy.init, no node). The chain is the Panda (panda_link0 ->
panda_link8) with a 'world' frame above its base turned 45 degrees about z.
"""

import math
import warnings

import numpy as np
import pinocchio
import pytest
from geometry_msgs.msg import Quaternion, Vector3
from moveit_msgs.msg import (
    Constraints,
    MoveItErrorCodes as C,
    OrientationConstraint as OrientationConstraintMsg,
    PositionConstraint as PositionConstraintMsg,
    PositionIKRequest,
    VisibilityConstraint,
)
from shape_msgs.msg import Mesh, SolidPrimitive

from reference import ReferenceChain
from urdf_variants import panda_urdf, with_world_frame

from ik_neural import geometry
from ik_neural.constraints import (
    ROTATION_VECTOR,
    XYZ_EULER_ANGLES,
    ConstraintTest,
    OrientationConstraint,
    PositionConstraint,
    Region,
)
from ik_neural.query import Tolerance
from ik_neural.ros.messages import matrix_to_pose, seconds_to_duration
from ik_neural.ros.request import CurrentState, Problem, Refusal, RequestContext, problem_of
from ik_neural.ros.settings import NodeSettings
from ik_neural.urdf_model import BOX, CYLINDER, SPHERE, ChainLink, Geometry, UrdfModel

WORLD_XYZ, WORLD_RPY = "0.5 -0.2 0.75", f"0 0 {math.pi / 4!r}"
SETTINGS = NodeSettings(group_name="panda_arm", max_request_items=50)
JOINTS = [f"panda_joint{i}" for i in range(1, 8)]


# ---------------------------------------------------------------------- independent helpers


def _rx(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _ry(b):
    c, s = math.cos(b), math.sin(b)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rz(c_):
    c, s = math.cos(c_), math.sin(c_)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _T(R=None, p=(0.0, 0.0, 0.0)):
    T = np.eye(4)
    T[:3, :3] = np.eye(3) if R is None else R
    T[:3, 3] = p
    return T


def _random_rotations(n, seed):
    rng = np.random.default_rng(seed)
    axes = rng.normal(size=(n, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    return [pinocchio.exp3(axis * angle) for axis, angle in zip(axes, rng.uniform(0, math.pi, n))]


# ---------------------------------------------------------------------- regions


def test_regions_hold_points_as_shape_msgs_sizes_say_boundaries_inside():
    """Box dimensions are full edge lengths, a cylinder is [height, radius] with its axis along z, both
    centred on their pose; a point on the boundary is inside."""
    T = _T(_rz(0.7) @ _rx(0.3), (0.4, -0.1, 0.6))

    def at(x, y, z):  # a point given in the region's frame, in the base frame
        return (T @ np.array([x, y, z, 1.0]))[:3]

    box = Region(Geometry(BOX, (0.2, 0.4, 0.6)), T)
    assert box.contains(at(0.1 - 1e-12, 0.2 - 1e-12, -0.3 + 1e-12)) and box.contains(at(0, 0, 0))
    assert not box.contains(at(0.1 + 1e-9, 0, 0)) and not box.contains(at(0, 0.2 + 1e-9, 0))
    assert not box.contains(at(0, 0, -0.3 - 1e-9))
    sphere = Region(Geometry(SPHERE, (0.25,)), T)
    assert sphere.contains(at(0.15, 0.2 - 1e-12, 0)) and not sphere.contains(at(0.15, 0.2 + 1e-9, 0))
    cylinder = Region(Geometry(CYLINDER, (0.1, 0.6)), T)  # radius 0.1, length 0.6 along z
    assert cylinder.contains(at(0.06, 0.08 - 1e-12, 0.3 - 1e-12)) and cylinder.contains(at(0, 0, -0.29))
    assert not cylinder.contains(at(0, 0, 0.3 + 1e-9)) and not cylinder.contains(at(0.0707, 0.0708, 0))
    with pytest.raises(ValueError, match="box, sphere or cylinder"):
        Region(Geometry("cone", (0.1, 0.2)), T)


# ---------------------------------------------------------------------- orientation errors


def test_xyz_euler_angles_rebuild_the_rotation_and_put_the_singularity_in_x():
    rng = np.random.default_rng(1)
    for a, b, c in rng.uniform([-math.pi, -math.pi / 2, -math.pi], [math.pi, math.pi / 2, math.pi], (200, 3)):
        R = _rx(a) @ _ry(b) @ _rz(c)
        a2, b2, c2, regular = geometry.xyz_euler_angles(R)
        assert regular and np.allclose(_rx(a2) @ _ry(b2) @ _rz(c2), R, atol=1e-12)
        assert np.allclose((a2, b2, c2), (a, b, c), atol=1e-9)
    for b in (math.pi / 2, -math.pi / 2):
        R = _rx(0.3) @ _ry(b) @ _rz(0.2)
        a2, b2, c2, regular = geometry.xyz_euler_angles(R)
        assert not regular and c2 == 0.0 and math.isclose(b2, b)
        assert np.allclose(_rx(a2) @ _ry(b2), R, atol=1e-12)  # the whole rotation in a


def test_rotation_vector_is_pinocchios_log3():
    for R in _random_rotations(200, seed=2):
        assert np.allclose(geometry.rotation_vector(R), pinocchio.log3(R), atol=1e-9)
    axis = np.array([0.3, -0.5, 0.81]) / np.linalg.norm([0.3, -0.5, 0.81])
    for angle in (0.0, 1e-12, 1e-8, 1e-4, math.pi - 1e-6):
        assert np.allclose(geometry.rotation_vector(pinocchio.exp3(axis * angle)), axis * angle, atol=1e-12)
    # At pi the axis' sign is either: the rotation is the same.
    omega = np.array(geometry.rotation_vector(pinocchio.exp3(axis * math.pi)))
    assert np.allclose(np.abs(omega), np.abs(axis * math.pi), atol=1e-7)


def _orientation(tolerances, parameterization=XYZ_EULER_ANGLES, R_base_target=None, R_frame_target=None):
    R = np.eye(3) if R_base_target is None else R_base_target
    return OrientationConstraint(
        "o", ChainLink(-1, np.eye(4)), R, tolerances, parameterization, R if R_frame_target is None else R_frame_target
    )


def test_euler_errors_are_the_angles_wrapped_and_the_singularity_goes_to_z_when_z_cannot_hold_it():
    constraint = _orientation((0.1, 0.1, 0.1))
    assert np.allclose(constraint.errors(_rx(0.05) @ _ry(-0.07) @ _rz(0.02)), (0.05, 0.07, 0.02))
    assert np.allclose(constraint.errors(_rx(-3.0)), (3.0, 0.0, 0.0))
    singular = _rx(0.3) @ _ry(math.pi / 2)
    assert np.allclose(constraint.errors(singular), (0.0, math.pi / 2, 0.3))  # 0.3 > z's 0.1: taken about z
    assert np.allclose(_orientation((0.1, 0.1, 0.5)).errors(singular), (0.3, math.pi / 2, 0.0))


def test_rotation_vector_errors_are_in_the_axes_of_the_frame_the_target_was_given_in():
    """MoveIt turns the rotation vector of R_targetᵀ·R_link by the target's rotation as given (in its
    header frame): its components are about that frame's axes. Judged with Pinocchio's log3."""
    R_base_frame = _rz(math.pi / 4)
    for R_frame_target, R_target_link in zip(_random_rotations(20, seed=3), _random_rotations(20, seed=4)):
        constraint = _orientation(
            (0.1, 0.1, 0.1), ROTATION_VECTOR, R_base_frame @ R_frame_target, R_frame_target=R_frame_target
        )
        expected = np.abs(R_frame_target @ pinocchio.log3(R_target_link))
        assert np.allclose(constraint.errors(R_target_link), expected, atol=1e-9)


# ---------------------------------------------------------------------- the acceptance test on the Panda


@pytest.fixture(scope="module")
def urdf():
    return with_world_frame(panda_urdf(), WORLD_XYZ, WORLD_RPY)


@pytest.fixture(scope="module")
def context(urdf):
    model = UrdfModel.parse(urdf)
    return RequestContext.of_model(model, model.chain("panda_link0", "panda_link8"), SETTINGS)


@pytest.fixture(scope="module")
def hand(urdf):
    """Pinocchio's FK of panda_hand in panda_link0 (the judge)."""
    return ReferenceChain(urdf, "panda_link0", "panda_hand", JOINTS)


def test_the_acceptance_test_decides_on_the_hands_pose_as_pinocchio_places_it(context, hand):
    chain = context.chain
    placed = context.chain_links.links["panda_hand"]
    offset = np.array([0.0, 0.0, 0.1034])  # the Panda's fingertip centre
    rng = np.random.default_rng(5)
    asked = []

    def then(q):
        asked.append(q)
        return True

    for q in rng.uniform(chain.lower, chain.upper, (20, chain.dof)):
        T_hand = hand.forward(q)
        point = T_hand[:3, :3] @ offset + T_hand[:3, 3]
        inside = PositionConstraint("p", placed, offset, (Region(Geometry(SPHERE, (1e-6,)), _T(p=point)),))
        beside = PositionConstraint(
            "b", placed, offset, (Region(Geometry(BOX, (0.02, 0.02, 0.02)), _T(p=point + 0.0101)),)
        )
        tilted = _orientation((0.06, 0.06, 0.06), R_base_target=T_hand[:3, :3] @ _rx(0.05).T)
        tilted = OrientationConstraint("t", placed, tilted.R_base_target, (0.06, 0.06, 0.06))
        too_far = OrientationConstraint("f", placed, tilted.R_base_target, (0.04, 0.06, 0.06))
        asked.clear()
        test = ConstraintTest(chain, (inside, tilted), then=then)
        assert test(q) and len(asked) == 1
        test = ConstraintTest(chain, (inside, beside, too_far), then=then)
        assert not test(q) and not test(q) and len(asked) == 1  # `then` only for what the constraints accept
        assert test.rejected == {"b": 2} and test.rejections() == "b rejected 2 candidates"
        assert ConstraintTest(chain, (too_far,)).violated(q) is too_far


# ---------------------------------------------------------------------- the request layer


def _request(T, link="", constraints=None, frame=""):
    ik = PositionIKRequest(group_name="panda_arm", ik_link_name=link, timeout=seconds_to_duration(0.0))
    ik.pose_stamped.header.frame_id = frame
    ik.pose_stamped.pose = matrix_to_pose(T)
    ik.constraints = constraints or Constraints()
    return ik


def _box_constraint(link, T_frame_box, size=(0.02, 0.02, 0.02), frame="panda_link0", offset=(0.0, 0.0, 0.0)):
    msg = PositionConstraintMsg(link_name=link, target_point_offset=Vector3(x=offset[0], y=offset[1], z=offset[2]))
    msg.header.frame_id = frame
    msg.constraint_region.primitives = [SolidPrimitive(type=SolidPrimitive.BOX, dimensions=list(size))]
    msg.constraint_region.primitive_poses = [matrix_to_pose(T_frame_box)]
    return msg


def _orientation_constraint(link, R, tolerances, frame="panda_link0", parameterization=XYZ_EULER_ANGLES):
    msg = OrientationConstraintMsg(link_name=link, parameterization=parameterization)
    msg.header.frame_id = frame
    msg.orientation = matrix_to_pose(_T(R)).orientation
    msg.absolute_x_axis_tolerance, msg.absolute_y_axis_tolerance, msg.absolute_z_axis_tolerance = tolerances
    return msg


def _problem(ik, context):
    outcome = problem_of(ik, context, CurrentState(context.chain.middle.copy(), False))
    assert isinstance(outcome, Problem), outcome
    return outcome


def test_request_constraints_in_another_frame_decide_as_pinocchio_places_the_link(context, hand):
    """A box around the hand's fingertip point and an orientation constraint, both given in the 'world'
    frame above the base: the problem's test accepts the configuration they were made from and rejects
    another; the labels name the field and the link."""
    chain = context.chain
    T_world_base = np.linalg.inv(context.T_base_frame["world"])
    rng = np.random.default_rng(6)
    q, q_other = rng.uniform(chain.lower, chain.upper, (2, chain.dof))
    T_hand = hand.forward(q)
    T_box = _T(p=T_hand[:3, :3] @ [0, 0, 0.1] + T_hand[:3, 3])
    constraints = Constraints(
        position_constraints=[_box_constraint("panda_hand", T_world_base @ T_box, frame="world", offset=(0, 0, 0.1))],
        orientation_constraints=[
            _orientation_constraint("panda_hand", T_world_base[:3, :3] @ T_hand[:3, :3], (0.01,) * 3, frame="/world")
        ],
    )
    problem = _problem(_request(chain.forward(q), constraints=constraints), context)
    assert [c.label for c in problem.constraints] == [
        "constraints.position_constraints[0] (link 'panda_hand')",
        "constraints.orientation_constraints[0] (link 'panda_hand')",
    ]
    assert problem.orientation_tolerance_rad is None  # on the hand, not on the IK link
    test = ConstraintTest(chain, problem.constraints)
    assert test(q) and not test(q_other)


@pytest.mark.parametrize(
    "edit, code, expected",
    [
        (
            lambda p, o: setattr(p, "link_name", "gripper"),
            C.INVALID_GOAL_CONSTRAINTS,
            "link_name 'gripper' is not a link",
        ),
        (
            lambda p, o: setattr(o, "link_name", "panda_leftfinger"),
            C.INVALID_GOAL_CONSTRAINTS,
            "orientation_constraints[0].link_name 'panda_leftfinger' is not placed by the chain",
        ),
        (
            lambda p, o: setattr(p.header, "frame_id", "panda_link3"),
            C.FRAME_TRANSFORM_FAILURE,
            "position_constraints[0].header.frame_id 'panda_link3' is not the base",
        ),
        (
            lambda p, o: setattr(o.header, "frame_id", "camera"),
            C.FRAME_TRANSFORM_FAILURE,
            "orientation_constraints[0].header.frame_id 'camera'",
        ),
        (
            lambda p, o: setattr(p.constraint_region, "meshes", [Mesh()]),
            C.INVALID_GOAL_CONSTRAINTS,
            "position_constraints[0].constraint_region.meshes: mesh regions are not supported",
        ),
        (
            lambda p, o: (
                setattr(p.constraint_region, "primitives", []),
                setattr(p.constraint_region, "primitive_poses", []),
            ),
            C.INVALID_GOAL_CONSTRAINTS,
            "constraint_region has no primitives",
        ),
        (
            lambda p, o: setattr(p.constraint_region, "primitive_poses", []),
            C.INVALID_GOAL_CONSTRAINTS,
            "1 primitives but 0 primitive_poses",
        ),
        (
            lambda p, o: setattr(p.constraint_region.primitives[0], "type", SolidPrimitive.CONE),
            C.INVALID_GOAL_CONSTRAINTS,
            "primitives[0]: type 4 with dimensions [0.02, 0.02, 0.02] is not",
        ),
        (
            lambda p, o: setattr(
                p.constraint_region, "primitives", [SolidPrimitive(type=SolidPrimitive.CONE, dimensions=[0.1, 0.1])]
            ),
            C.INVALID_GOAL_CONSTRAINTS,
            "primitives[0]: a cone region is not supported",
        ),
        (
            lambda p, o: setattr(p.constraint_region.primitives[0], "dimensions", [0.1, -0.1, 0.1]),
            C.INVALID_GOAL_CONSTRAINTS,
            "primitives[0]: box size [0.1, -0.1, 0.1] must be finite and >= 0",
        ),
        (
            lambda p, o: setattr(p.constraint_region.primitive_poses[0].position, "x", 1e308),
            C.INVALID_GOAL_CONSTRAINTS,
            "primitive_poses[0]: the position is beyond float32's range",
        ),
        (
            lambda p, o: setattr(p.target_point_offset, "x", math.nan),
            C.INVALID_GOAL_CONSTRAINTS,
            "target_point_offset [nan, 0.0, 0.0] is not finite",
        ),
        (
            lambda p, o: setattr(p.constraint_region, "primitive_poses", [p.constraint_region.primitive_poses[0]] * 51),
            C.FAILURE,
            "constraints.position_constraints[0].constraint_region.primitive_poses has 51 entries",
        ),
        (
            lambda p, o: setattr(o, "absolute_y_axis_tolerance", math.nan),
            C.INVALID_GOAL_CONSTRAINTS,
            "orientation_constraints[0].absolute_y_axis_tolerance is NaN",
        ),
        (
            lambda p, o: setattr(o, "orientation", Quaternion(x=0.0, y=0.0, z=0.0, w=0.0)),
            C.INVALID_GOAL_CONSTRAINTS,
            "orientation_constraints[0].orientation (x, y, z, w) = [0.0, 0.0, 0.0, 0.0] has norm 0",
        ),
    ],
)
def test_bad_constraints_are_refused_naming_the_field(context, edit, code, expected):
    position = _box_constraint("panda_hand", np.eye(4))
    orientation = _orientation_constraint("panda_link8", np.eye(3), (0.1, 0.1, 0.1))
    edit(position, orientation)
    ik = _request(
        np.eye(4), constraints=Constraints(position_constraints=[position], orientation_constraints=[orientation])
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy overflow warning on the way
        outcome = problem_of(ik, context, CurrentState(context.chain.middle.copy(), False))
    assert isinstance(outcome, Refusal) and outcome.code == code, outcome
    assert expected in outcome.message, outcome.message


def test_a_link_above_the_base_moved_by_a_joint_outside_the_chain_is_refused(urdf):
    model = UrdfModel.parse(urdf)
    context = RequestContext.of_model(model, model.chain("panda_link1", "panda_link8"), SETTINGS)
    constraints = Constraints(position_constraints=[_box_constraint("panda_link0", np.eye(4), frame="panda_link1")])
    outcome = problem_of(
        _request(np.eye(4), constraints=constraints), context, CurrentState(context.chain.middle, False)
    )
    assert isinstance(outcome, Refusal) and outcome.code == C.INVALID_GOAL_CONSTRAINTS
    assert "link_name 'panda_link0' is not placed by the chain 'panda_link1' -> 'panda_link8' alone" in outcome.message


def test_visibility_constraints_are_noted_as_not_applied(context):
    constraints = Constraints(visibility_constraints=[VisibilityConstraint()])
    problem = _problem(_request(context.chain.forward(context.chain.middle), constraints=constraints), context)
    assert problem.constraints == ()
    assert any("unsupported constraints ignored (1 visibility)" in note for note in problem.notes)


def test_an_orientation_constraint_on_the_ik_link_matching_the_pose_widens_its_rotation_tolerance(context):
    chain = context.chain
    T = chain.forward(chain.middle)
    default = Tolerance(1e-5, 1e-5)
    # On the tip, Euler angles: the tolerances per axis, pi or more free; the node's where the constraint's is narrower.
    on_tip = Constraints(
        orientation_constraints=[_orientation_constraint("panda_link8", T[:3, :3], (0.2, 1e-6, math.pi))]
    )
    problem = _problem(_request(T, constraints=on_tip), context)
    assert problem.orientation_tolerance_rad == (0.2, 1e-6, math.inf)
    assert problem.tolerance(default) == Tolerance(1e-5, (0.2, 1e-5, math.inf))
    assert problem.query(default, False, None, None).tolerance == problem.tolerance(default)
    assert any(
        "widened to x 0.2 rad, y 1e-05 rad, z free by constraints.orientation_constraints[0]" in remark
        for remark in problem.remarks
    )
    assert not any("widened" in note for note in problem.notes)  # asked for: said, not logged as a warning
    # The IK link is the hand, turned -45 degrees about z from the tip: z is still z; x and y are not the tip's
    # axes, so both take the constraint's narrowest.
    T_hand = context.chain_links.poses(chain.middle, ["panda_hand"])[0]
    on_hand = Constraints(
        orientation_constraints=[_orientation_constraint("panda_hand", T_hand[:3, :3], (0.2, 0.3, 4.0))]
    )
    problem = _problem(_request(T_hand, link="panda_hand", constraints=on_hand), context)
    assert problem.orientation_tolerance_rad == (0.2, 0.2, math.inf)
    # A rotation vector's axes are its frame's: the base's z is the tip's -z when the tip points down.
    T_down = _T(_rx(math.pi), (0.5, 0.0, 0.3))
    vector = _orientation_constraint("panda_link8", T_down[:3, :3], (0.1, 0.1, 10.0), parameterization=ROTATION_VECTOR)
    problem = _problem(_request(T_down, constraints=Constraints(orientation_constraints=[vector])), context)
    assert problem.orientation_tolerance_rad == (0.1, 0.1, math.inf)
    # Not matching (turned 1e-4 rad) or on another link: the constraint is only checked.
    for link, R in (("panda_link8", T[:3, :3] @ _rz(1e-4)), ("panda_hand", T[:3, :3])):
        other = Constraints(orientation_constraints=[_orientation_constraint(link, R, (0.2, 0.2, math.pi))])
        problem = _problem(_request(T, constraints=other), context)
        assert problem.orientation_tolerance_rad is None and problem.tolerance(default) is default
        assert len(problem.constraints) == 1


def test_two_free_axes_and_one_held_become_one_free_and_the_approximate_tolerance_is_never_narrower(context):
    """The solver frees one axis or all three: a constraint freeing x and y on the tip holds them at its z
    tolerance (the node's free axis, if any, stays free); the approximate tolerance is the node's, never
    narrower than the request's exact one."""
    chain = context.chain
    T = chain.forward(chain.middle)
    on_tip = Constraints(orientation_constraints=[_orientation_constraint("panda_link8", T[:3, :3], (4.0, 4.0, 0.1))])
    problem = _problem(_request(T, constraints=on_tip), context)
    assert problem.orientation_tolerance_rad == (math.inf, math.inf, 0.1)
    assert problem.tolerance(Tolerance(1e-5, 1e-5)) == Tolerance(1e-5, (0.1, 0.1, 0.1))
    assert any("two free axes and one held cannot be solved for" in remark for remark in problem.remarks)
    free_x = Tolerance(1e-5, (math.inf, 1e-5, 1e-5))
    assert problem.tolerance(free_x) == Tolerance(1e-5, (math.inf, 0.1, 0.1))
    approximate = problem.query(
        free_x, False, None, None, approximate=Tolerance(1e-3, (math.inf, 0.05, 0.2))
    ).approximate
    assert approximate == Tolerance(1e-3, (math.inf, 0.1, 0.2))
    assert problem.query(free_x, False, None, None).approximate is None
