"""Benchmark (prints a table; not a test): goal-pose streams into the node started with its Panda defaults,
each command judged against the goal it answers.

    source "$(bash env/activate_checkout.sh | tail -1)" && python test/benchmarks/stream_bar.py --service-under-stream

Starts ``ik_node --ros-args --params-file config/panda.yaml`` (its own ROS_DOMAIN_ID, loopback), then, for
each stream (smooth, through the wrist singularity, out of reach and back), rate and echo setting, publishes
goals (FK of a joint path, at most 0.006 rad per joint between goals) on ``/ik_neural/goal_pose`` at a fixed
rate and collects the commands on ``/ik_neural/joint_commands``. A command answers the recently published
goal whose position is nearest its FK; its latency is its arrival minus that goal's publishing. With echo, a
"robot" republishes each command on ``joint_states`` at once. Every stream starts with its first
configuration published on ``joint_states``. ``--service-under-stream``: compute_ik called back to back for
random reachable poses with no other traffic, then while a 500 Hz smooth stream runs; ``--flood-hz 1000``: the same under a flood of
junk goals and joint_states. Answers are judged by test/reference.py's FK.

The script's own nodes each spin a SingleThreadedExecutor in a thread of their own: rclpy's
MultiThreadedExecutor can stall a subscription for hundreds of ms at these rates (ik_neural/ros/topic_thread.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from node_process import started_node  # noqa: E402
from reference import ReferenceChain, jacobian, pose_errors  # noqa: E402

from ik_neural.robots import load_robot  # noqa: E402

STEP_RAD = 0.005  # largest joint change between consecutive goals (the bar: 0.006)
TOLERANCE = 1e-5  # m and rad
OUT_OF_REACH_SCALE = 1.5
RECENT_GOALS = 500  # goals a command may answer: the last ones published before it arrived


def smooth_path(middle: np.ndarray, n: int) -> np.ndarray:
    """(n, dof): a slow sine of 0.3 rad around ``middle`` on every joint, phases apart, <= STEP_RAD a goal."""
    amplitude, period = 0.3, 2 * np.pi * 0.3 / STEP_RAD
    k = np.arange(n)[:, None]
    return middle + amplitude * np.sin(2 * np.pi * k / period + np.arange(len(middle)) * 0.9)


def wrist_singular_angle(reference: ReferenceChain, q: np.ndarray, lower: float, upper: float) -> float:
    """Joint 6's angle, at least 0.3 rad inside its limits, where the axes of joints 5 and 7 are parallel."""

    def axes_angle(q6: float) -> float:
        reference.forward(np.r_[q[:5], q6, q[6:]])
        z5, z7 = (reference.data.oMi[reference.joint_ids[i]].rotation[:, 2] for i in (4, 6))
        return float(np.arccos(min(1.0, abs(z5 @ z7))))

    grid = np.linspace(lower + 0.3, upper - 0.3, 20001)
    return float(grid[np.argmin([axes_angle(q6) for q6 in grid])])


def wrist_path(middle: np.ndarray, q6_singular: float, n: int) -> np.ndarray:
    """(n, dof): ``middle`` with joint 6 swept back and forth through ``q6_singular`` (+-0.3 rad), STEP_RAD a goal."""
    phase = np.arange(n) * STEP_RAD / 0.3  # one unit: 0.3 rad
    triangle = 2 * np.abs((phase + 0.5) % 2 - 1) - 1  # in [-1, 1], starts at 0
    path = np.tile(middle, (n, 1))
    path[:, 5] = q6_singular + 0.3 * triangle
    return path


def stream_goals(name: str, chain, reference: ReferenceChain, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(joint path (n, dof), goal poses (n, 4, 4), reachable (n,)) of one stream."""
    if name == "wrist":
        path = wrist_path(
            chain.middle, wrist_singular_angle(reference, chain.middle, chain.lower[5], chain.upper[5]), n
        )
    else:
        path = smooth_path(chain.middle, n)
    goals = reference.forward(path)
    reachable = np.ones(n, bool)
    if name == "out_of_reach":
        reachable[n // 3 : 2 * n // 3] = False
        goals[~reachable, :3, 3] *= OUT_OF_REACH_SCALE
    return path, goals, reachable


def spin(executor) -> None:
    """``executor.spin()`` until rclpy shuts down."""
    from rclpy.executors import ExternalShutdownException

    try:
        executor.spin()
    except ExternalShutdownException:
        pass


class Bench:
    """The script's ROS side: goal and joint_states publishers, the command subscription (optionally echoed
    on joint_states), and a compute_ik client, each node spun by its own SingleThreadedExecutor thread."""

    def __init__(self, joint_names: list[str]) -> None:
        import rclpy
        from geometry_msgs.msg import PoseStamped
        from moveit_msgs.srv import GetPositionIK
        from rclpy.executors import SingleThreadedExecutor
        from sensor_msgs.msg import JointState

        from ik_neural.ros.qos import GOAL_QOS

        self.joint_names = joint_names
        self.node = rclpy.create_node("stream_bar")
        self.client_node = rclpy.create_node("stream_bar_client")
        self.goals = self.node.create_publisher(PoseStamped, "/ik_neural/goal_pose", GOAL_QOS)
        self.joint_states = self.node.create_publisher(JointState, "/joint_states", 10)
        self.node.create_subscription(JointState, "/ik_neural/joint_commands", self._on_command, 1000)
        self.client = self.client_node.create_client(GetPositionIK, "/ik_neural/compute_ik")
        self.echo = False
        self.commands: list[tuple[float, np.ndarray]] = []  # (arrival, perf_counter s; positions)
        self.executors = []
        for node in (self.node, self.client_node):
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            threading.Thread(target=spin, args=(executor,), daemon=True).start()
            self.executors.append(executor)

    def _on_command(self, msg) -> None:
        """Record a command; with echo, republish it on joint_states at once."""
        self.commands.append((time.perf_counter(), np.array(msg.position)))
        if self.echo:
            self.joint_states.publish(msg)

    def publish_state(self, q: np.ndarray, times: int = 5) -> None:
        """The robot at ``q``: published on joint_states a few times."""
        from sensor_msgs.msg import JointState

        for _ in range(times):
            msg = JointState(name=self.joint_names, position=[float(v) for v in q])
            msg.header.stamp = self.node.get_clock().now().to_msg()
            self.joint_states.publish(msg)
            time.sleep(0.02)

    def stream(self, goals: np.ndarray, rate_hz: float) -> np.ndarray:
        """Publish ``goals`` at ``rate_hz``, each at its deadline (not sleep(period)); publish times (perf_counter s)."""
        from geometry_msgs.msg import PoseStamped

        from ik_neural.ros.messages import matrix_to_pose

        messages = [PoseStamped(pose=matrix_to_pose(T)) for T in goals]
        for msg in messages:
            msg.header.frame_id = "panda_link0"
        sent = np.empty(len(goals))
        start = time.perf_counter()
        for k, msg in enumerate(messages):
            delay = start + k / rate_hz - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            msg.header.stamp = self.node.get_clock().now().to_msg()
            sent[k] = time.perf_counter()
            self.goals.publish(msg)
        return sent

    def call_ik(self, T: np.ndarray, timeout_s: float = 1.0):
        """compute_ik for pose ``T`` (group panda_arm, frame panda_link0): (response or None if lost, round trip s)."""
        from moveit_msgs.srv import GetPositionIK

        from ik_neural.ros.messages import matrix_to_pose

        request = GetPositionIK.Request()
        request.ik_request.group_name = "panda_arm"
        request.ik_request.pose_stamped.header.frame_id = "panda_link0"
        request.ik_request.pose_stamped.pose = matrix_to_pose(T)
        done = threading.Event()
        start = time.perf_counter()
        future = self.client.call_async(request)
        future.add_done_callback(lambda _: done.set())
        if not done.wait(timeout_s):
            self.client.remove_pending_request(future)
            return None, timeout_s
        return future.result(), time.perf_counter() - start


def judge_stream(commands, sent, goals, reachable, reference: ReferenceChain, dof: int) -> dict:
    """The row of one stream: commands matched to goals (nearest FK position among the recently published)."""
    row = {"sent": len(sent), "commands": len(commands)}
    if not commands:
        return row
    arrivals = np.array([t for t, _ in commands])
    q = np.array([p[:dof] for _, p in commands])
    T = reference.forward(q)
    matched = np.empty(len(q), int)
    for i, (arrival, position) in enumerate(zip(arrivals, T[:, :3, 3])):
        last = np.searchsorted(sent, arrival)  # goals published before the command arrived
        window = np.arange(max(0, last - RECENT_GOALS), max(last, 1))
        distance = np.linalg.norm(goals[window, :3, 3] - position, axis=1)
        matched[i] = window[distance <= distance.min() + 1e-6][-1]  # a path revisits poses: the newest
    latency_ms = 1e3 * (arrivals - sent[matched])
    position_error, rotation_error = pose_errors(T, goals[matched])
    answered_reachable = reachable[matched]
    steps = np.abs(np.diff(q, axis=0)).max(axis=1) if len(q) > 1 else np.zeros(1)
    row.update(
        p50=np.percentile(latency_ms, 50),
        p99=np.percentile(latency_ms, 99),
        largest_step=steps.max(),
        big_steps=int((steps > 0.25).sum()),
        off=int((answered_reachable & ((position_error > TOLERANCE) | (rotation_error > TOLERANCE))).sum()),
        last_error=float(np.linalg.norm(T[-1, :3, 3] - goals[-1, :3, 3])),
    )
    return row


def service_calls(bench: Bench, chain, reference: ReferenceChain, seed: int, load) -> dict:
    """compute_ik back to back from a thread for random reachable poses while ``load()`` (returning its
    achieved rate, Hz) runs on this one; the calls' round trips, lost and wrong answers."""
    rng = np.random.default_rng(seed)
    stop, results = threading.Event(), []

    def caller() -> None:
        while not stop.is_set():
            T = reference.forward(chain.bounds.sample(rng, 1)[0])
            response, round_trip = bench.call_ik(T)
            results.append((T, response, round_trip))

    thread = threading.Thread(target=caller)
    thread.start()
    achieved_hz = load()
    stop.set()
    thread.join()
    answered = [(T, r, t) for T, r, t in results if r is not None]
    wrong = 0
    for T, response, _ in answered:
        if response.error_code.val == 1:
            solution = np.array(response.solution.joint_state.position[: chain.dof])
            position_error, rotation_error = reference.errors(solution, T)
            wrong += not (position_error <= TOLERANCE and rotation_error <= TOLERANCE)
    round_trips_ms = 1e3 * np.array([t for _, _, t in answered]) if answered else np.full(1, np.nan)
    return {
        "calls": len(results),
        "success": sum(r.error_code.val == 1 for _, r, _ in answered),
        "lost": len(results) - len(answered),
        "wrong": wrong,
        "median": np.median(round_trips_ms),
        "p99": np.percentile(round_trips_ms, 99),
        "achieved_hz": achieved_hz,
    }


def smooth_stream_load(bench: Bench, chain, reference: ReferenceChain, duration_s: float):
    """A 500 Hz smooth goal stream, as a ``service_calls`` load."""
    _, goals, _ = stream_goals("smooth", chain, reference, int(500 * duration_s))

    def load() -> float:
        sent = bench.stream(goals, 500.0)
        return (len(sent) - 1) / (sent[-1] - sent[0])

    return load


def flood_load(bench: Bench, chain, reference: ReferenceChain, duration_s: float, rate_hz: float):
    """Goals (in turn: one in an unknown frame, one out of reach, one reachable) and joint_states (every
    joint, one unknown and NaN), each at ``rate_hz``, as a ``service_calls`` load: what a runaway
    teleoperation node and a driver might send at once."""
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import JointState

    from ik_neural.ros.messages import matrix_to_pose

    T_reachable = reference.forward(chain.middle)
    T_far = T_reachable.copy()
    T_far[:3, 3] = [4.0, 0.0, 0.0]
    goals = [PoseStamped(pose=matrix_to_pose(T)) for T in (T_reachable, T_far, T_reachable)]
    for goal, frame in zip(goals, ("nowhere", "panda_link0", "panda_link0")):
        goal.header.frame_id = frame
    state = JointState(name=[*bench.joint_names, "unknown"], position=[*map(float, chain.middle), float("nan")])

    def load() -> float:
        count, start = int(rate_hz * duration_s), time.perf_counter()
        for k in range(count):
            delay = start + k / rate_hz - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            bench.goals.publish(goals[k % 3])
            bench.joint_states.publish(state)
        return (count - 1) / (time.perf_counter() - start)

    return load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[50.0, 200.0, 500.0])
    parser.add_argument("--duration-s", type=float, default=10.0, help="per stream")
    parser.add_argument("--streams", nargs="*", default=["smooth", "wrist", "out_of_reach"])
    parser.add_argument("--echo", choices=["no", "yes", "both"], default="both")
    parser.add_argument("--service-under-stream", action="store_true")
    parser.add_argument(
        "--flood-hz", type=float, default=0.0, help="also: compute_ik under a flood of goals and joint_states (Hz)"
    )
    parser.add_argument("--random-seed", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 101))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    import rclpy

    robot = load_robot("panda")
    chain = robot.chain
    reference = ReferenceChain(robot.urdf_path, chain.base_link, chain.tip_link, chain.joint_names)
    q6 = wrist_singular_angle(reference, chain.middle, chain.lower[5], chain.upper[5])
    sigma = [
        np.linalg.svd(jacobian(reference, np.r_[chain.middle[:5], v, chain.middle[6:]]), compute_uv=False)[-1]
        for v in (q6, q6 - 0.3)
    ]
    print(
        f"wrist: axes 5 and 7 parallel at panda_joint6 = {q6:.4f} rad; smallest singular value of J there "
        f"{sigma[0]:.4f}, 0.3 rad away {sigma[1]:.4f}"
    )

    with started_node():
        rclpy.init()
        rows, services = [], []
        try:
            bench = Bench(list(chain.joint_names))
            if not bench.client.wait_for_service(timeout_sec=60.0):
                raise SystemExit("the node did not come up within 60 s")
            echoes = {"no": [False], "yes": [True], "both": [False, True]}[args.echo]
            for name in args.streams:
                for rate in args.rates:
                    path, goals, reachable = stream_goals(name, chain, reference, int(rate * args.duration_s))
                    for echo in echoes:
                        bench.echo = False
                        bench.publish_state(path[0])
                        time.sleep(0.3)
                        bench.commands, bench.echo = [], echo
                        sent = bench.stream(goals, rate)
                        time.sleep(0.5)  # the last answers
                        bench.echo = False
                        row = judge_stream(list(bench.commands), sent, goals, reachable, reference, chain.dof)
                        row.update(name=name, rate=rate, echo=echo, achieved=(len(sent) - 1) / (sent[-1] - sent[0]))
                        rows.append(row)
                        print(f"  {name} {rate:g} Hz echo {echo}: {row['commands']}/{row['sent']}", flush=True)
            loads = []
            if args.service_under_stream:
                loads.append(("no other traffic (the baseline)", lambda: time.sleep(args.duration_s) or 0.0))
                loads.append(("a 500 Hz smooth stream", smooth_stream_load(bench, chain, reference, args.duration_s)))
            if args.flood_hz:
                flood = flood_load(bench, chain, reference, args.duration_s, args.flood_hz)
                loads.append((f"a {args.flood_hz:g} Hz flood of goals and joint_states", flood))
            for what, load in loads:
                bench.publish_state(chain.middle)
                services.append((what, service_calls(bench, chain, reference, args.random_seed, load)))
        finally:
            rclpy.shutdown()

    print(
        "| stream | rate Hz (achieved) | echo | goals | commands | latency p50 / p99 ms | largest step rad "
        "| steps > 0.25 rad | reachable off > 1e-5 | last command to last goal m |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        judged = "p50" in r
        print(
            f"| {r['name']} | {r['rate']:g} ({r['achieved']:.1f}) | {'yes' if r['echo'] else 'no'} | {r['sent']} | "
            f"{r['commands']} | "
            + (
                f"{r['p50']:.1f} / {r['p99']:.1f} | {r['largest_step']:.3f} | {r['big_steps']} | {r['off']} | "
                if judged
                else "- | - | - | - | "
            )
            + (f"{r['last_error']:.2e} |" if judged and r["name"] == "out_of_reach" else "- |")
        )
    for what, s in services:
        print(
            f"compute_ik under {what} (achieved {s['achieved_hz']:.1f} Hz): {s['calls']} calls, "
            f"{s['success']} SUCCESS, round trip median {s['median']:.2f} ms, p99 {s['p99']:.2f} ms, "
            f"lost (no answer in 1 s) {s['lost']}, wrong {s['wrong']}"
        )


if __name__ == "__main__":
    main()
