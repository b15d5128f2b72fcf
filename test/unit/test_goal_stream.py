"""The node's goal stream without a ROS graph: the newest-goal mailbox, goals through the request layer
into the Tracker (start state, step time from stamps and arrivals, refusals), the collision check under the
node's policy. Every command is judged by Pinocchio's FK (test/reference.py)."""

import math
import threading
import time

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from moveit_msgs.msg import CollisionObject
from shape_msgs.msg import SolidPrimitive

from reference import ReferenceChain
from urdf_variants import PANDA_URDF, panda_urdf

from ik_neural.collision import CollisionChecker
from ik_neural.geometry import transform
from ik_neural.robots import load_robot
from ik_neural.ros.goal_stream import Goal, GoalStream, LatestGoal, StreamCommand, status_text
from ik_neural.ros.messages import matrix_to_pose
from ik_neural.ros.request import CurrentState, Refusal, RequestContext
from ik_neural.ros.scene import Scene
from ik_neural.ros.settings import NodeSettings
from ik_neural.solver import IKSolver
from ik_neural.tracker import APPROXIMATE, EXACT, HELD, Tracker
from ik_neural.urdf_model import UrdfModel

SETTINGS = NodeSettings(group_name="panda_arm")
TOL = 1e-5


@pytest.fixture(scope="module")
def context():
    model = UrdfModel.parse(panda_urdf())
    chain = model.chain("panda_link0", "panda_link8")
    # Few samples: the pairs only need to leave the configurations used here free of self-collision.
    checker = CollisionChecker.from_urdf(model, chain, samples=300, cache=False)
    return RequestContext.of_model(model, chain, SETTINGS, collision=checker)


@pytest.fixture(scope="module")
def solver(context):
    return IKSolver(context.chain, network=load_robot("panda").network)


@pytest.fixture(scope="module")
def reference(context):
    chain = context.chain
    return ReferenceChain(PANDA_URDF, chain.base_link, chain.tip_link, chain.joint_names)


def _stream(context, solver, scene=None, command_timeout_s=0.5):
    tracker = Tracker(solver, SETTINGS.tolerance, SETTINGS.tracking)
    return GoalStream(context, tracker, scene, command_timeout_s)


def _centre(chain):
    q = chain.middle.copy()
    q[3], q[5] = -1.5, 1.9
    return q


def _goal(T, arrival_s, frame="panda_link0", stamp_s=0.0):
    msg = PoseStamped(pose=matrix_to_pose(T))
    msg.header.frame_id = frame
    msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp_s), round((stamp_s % 1) * 1e9)
    return Goal(msg, arrival_s)


def test_a_newer_goal_supersedes_the_one_waiting_and_close_wakes_a_taker():
    goals = LatestGoal()
    for arrival_s in (1.0, 2.0, 3.0):
        goals.put(Goal(PoseStamped(), arrival_s))
    assert goals.take(timeout_s=0.1).arrival_s == 3.0 and goals.superseded == 2
    assert goals.take(timeout_s=0.01) is None
    taken = []
    taker = threading.Thread(target=lambda: taken.append(goals.take(timeout_s=10.0)))
    taker.start()
    time.sleep(0.05)
    goals.close()
    taker.join(timeout=2.0)
    assert not taker.is_alive() and taken == [None]


def test_goals_are_stepped_from_the_joint_state_then_from_the_last_command(context, solver, reference):
    chain = context.chain
    stream = _stream(context, solver)
    q_state = _centre(chain)
    q_goal = q_state + 0.002
    first = stream.command(_goal(reference.forward(q_goal), 10.0), CurrentState(q_state, True))
    assert isinstance(first, StreamCommand) and first.command.status == EXACT
    assert np.abs(first.command.q - q_state).max() < 0.01  # near the joint state, not any solution
    assert max(reference.errors(first.command.q, reference.forward(q_goal))) <= TOL
    # A recent last command is the start, whatever joint_states says (a robot that lags its commands).
    second = stream.command(_goal(reference.forward(q_goal + 0.002), 10.005), CurrentState(q_state - 0.3, True))
    assert second.command.exact and np.abs(second.command.q - first.command.q).max() < 0.01
    assert second.dt_s == pytest.approx(0.005)
    # Older than command_timeout_s: the joint state again (the robot was moved meanwhile).
    q_moved = q_state - 0.3
    third = stream.command(_goal(reference.forward(q_moved + 0.002), 20.0), CurrentState(q_moved, True))
    assert third.command.exact and np.abs(third.command.q - q_moved).max() < 0.01
    assert third.dt_s == SETTINGS.max_step_dt_s


def test_the_step_time_is_the_later_of_the_arrivals_and_the_stamps_difference(context, solver, reference):
    chain = context.chain
    stream = _stream(context, solver)
    q = _centre(chain)
    T = reference.forward(q)
    stream.command(_goal(T, 5.0, stamp_s=100.0), CurrentState(q, True))
    # Arrived 1 ms after the last, sent 4 ms after it: the sender's 4 ms count.
    assert stream.command(_goal(T, 5.001, stamp_s=100.004), CurrentState(q, True)).dt_s == pytest.approx(0.004)
    # A goal without a stamp: the arrivals alone.
    assert stream.command(_goal(T, 5.003), CurrentState(q, True)).dt_s == pytest.approx(0.002)


def test_a_goal_the_request_layer_refuses_is_refused_naming_the_frame(context, solver, reference):
    stream = _stream(context, solver)
    q = _centre(context.chain)
    refusal = stream.command(_goal(reference.forward(q), 1.0, frame="nowhere"), CurrentState(q, True))
    assert isinstance(refusal, Refusal) and "'nowhere'" in refusal.message


def test_a_command_into_a_world_object_is_held(context, solver, reference):
    """A box around the path's next tip position: the step is refused, the arm holds, the status says so."""
    context.collision.clear()
    scene = Scene(context)
    stream = _stream(context, solver, scene)
    q = _centre(context.chain)
    q_next = q + 0.005
    T_next = reference.forward(q_next)
    box = CollisionObject(id="box", operation=CollisionObject.ADD)
    box.header.frame_id = "panda_link0"
    box.pose = matrix_to_pose(transform(np.eye(3), T_next[:3, 3]))
    box.primitives = [SolidPrimitive(type=SolidPrimitive.BOX, dimensions=[0.05, 0.05, 0.05])]
    box.primitive_poses = [matrix_to_pose(np.eye(4))]
    assert scene.collision_object(box) is None
    try:
        command = stream.command(_goal(T_next, 1.0), CurrentState(q, True)).command
        assert command.status == HELD and np.array_equal(command.q, q)
        assert status_text(command).startswith("held: the step collides")
        # Held for longer than command_timeout_s: a held command is published, so it stays the start (a
        # stale joint state elsewhere does not move the arm).
        for arrival_s in (1.4, 1.8, 2.2):
            held = stream.command(_goal(T_next, arrival_s), CurrentState(q - 0.3, True)).command
            assert held.status == HELD and np.array_equal(held.q, q)
    finally:
        context.collision.clear()
    free = stream.command(_goal(T_next, 2.205), CurrentState(q, True)).command
    assert free.exact and max(reference.errors(free.q, T_next)) <= TOL


def test_an_unreachable_goal_is_approximate_and_the_status_says_why(context, solver, reference):
    stream = _stream(context, solver)
    q = _centre(context.chain)
    T_far = reference.forward(q)
    T_far[:3, 3] *= 3.0
    command = stream.command(_goal(T_far, 1.0), CurrentState(q, True)).command
    assert command.status == APPROXIMATE
    assert status_text(command).startswith("approximate: ") and " m, " in status_text(command)
    assert math.isfinite(command.position_error_m) and command.position_error_m > 1.0


def test_a_goal_not_reached_in_one_step_is_followed_again_until_it_is(context, solver, reference):
    """One goal 0.5 rad away (RViz's goal tool): commanded again every follow-up until exact; then no more."""
    stream = _stream(context, solver)
    q = _centre(context.chain)
    q_goal = q + 0.5
    T_goal = reference.forward(q_goal)
    command = stream.command(_goal(T_goal, 1.0), CurrentState(q, True)).command
    assert command.status == APPROXIMATE and stream.following
    now_s, commands = 1.0, 1
    while stream.following and commands < 1000:
        now_s += SETTINGS.follow_up_period_s
        command = stream.command(stream.again(now_s), CurrentState(q, True)).command
        commands += 1
    assert command.exact and not stream.following and stream.again(now_s) is None
    assert max(reference.errors(command.q, T_goal)) <= TOL
    # At the joints' velocity limits, not faster: 0.5 rad at 2.175-2.61 rad/s takes about 0.2 s.
    assert now_s - 1.0 >= 0.5 / 2.61 - SETTINGS.max_step_dt_s
