"""Benchmark (prints a table; not a test): GetPositionIK round trips to the node beside a floor, one client.

    source "$(bash env/activate_checkout.sh)" && python test/benchmarks/round_trip_bar.py --requests 2000

The node runs as users start it (``ik_node --ros-args --params-file config/panda.yaml``, every other parameter
default). The floor is a trivial GetPositionIK service in a process of its own, on the same middleware, QoS
and executor as the node (``MultiThreadedExecutor`` with the node's ``executor_threads``): it answers SUCCESS
with a fixed joint state and does nothing else, so its round trip is what rclpy and DDS cost. One client
process sends the requests (defaults as MoveIt's clients send them: no seed, avoid_collisions false, timeout
0) to the two services in turn, target by target, each timed from send to answer as ``ik_client`` times it
(a single-threaded executor spinning until the answer). Every node answer must be SUCCESS and reach its
target by FK. Beside them, the solve alone: the same targets through ``IKSolver.solve`` in this process,
interleaved with the requests (so as cold as the node's solves). Node minus floor minus solve is what the
node's own request handling costs (parsing and checks, the FK check of the answer, the response).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

FLOOR_SERVICE = "/round_trip_floor/compute_ik"


def serve_floor() -> None:
    """The floor: a GetPositionIK service that answers SUCCESS with the Panda's mid-limits at once."""
    import rclpy
    from moveit_msgs.msg import MoveItErrorCodes
    from moveit_msgs.srv import GetPositionIK
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.node import Node

    from ik_neural.robots import load_robot
    from ik_neural.ros.qos import SERVICE_QOS
    from ik_neural.ros.settings import NodeSettings

    chain = load_robot("panda").chain
    names, middle = chain.joint_names, chain.middle.tolist()

    def answer(request, response):
        response.solution.joint_state.name, response.solution.joint_state.position = names, middle
        response.error_code.val = MoveItErrorCodes.SUCCESS
        return response

    rclpy.init()
    node = Node("round_trip_floor")
    node.create_service(GetPositionIK, FLOOR_SERVICE, answer, qos_profile=SERVICE_QOS)
    executor = MultiThreadedExecutor(num_threads=NodeSettings().executor_threads)
    executor.add_node(node)
    try:
        executor.spin()
    except KeyboardInterrupt:
        pass


def _call_s(executor, client, request) -> tuple[float, object]:
    """One request's round trip (s) and its answer."""
    sent = time.perf_counter()
    future = client.call_async(request)
    executor.spin_until_future_complete(future, timeout_sec=10.0)
    elapsed_s = time.perf_counter() - sent
    if not future.done():
        raise RuntimeError("no answer within 10 s")
    return elapsed_s, future.result()


def measure(requests: int, warmup: int) -> dict[str, list[float]]:
    """Round trips (s) to the node and the floor, and the in-process solve, interleaved target by target."""
    import rclpy
    from moveit_msgs.msg import MoveItErrorCodes
    from moveit_msgs.srv import GetPositionIK
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node

    from ik_neural.robots import load_robot
    from ik_neural.ros.messages import matrix_to_pose
    from ik_neural.ros.qos import SERVICE_QOS
    from ik_neural.sampling import reachable_targets
    from ik_neural.solver import IKSolver

    robot = load_robot("panda")
    chain = robot.chain
    solver = IKSolver(chain, network=robot.network)
    solver.warm_up()
    _, T_targets = reachable_targets(chain, warmup + requests, 1)
    rclpy.init()
    node = Node("round_trip_client")
    clients = {
        "node": node.create_client(GetPositionIK, "/ik_neural/compute_ik", qos_profile=SERVICE_QOS),
        "floor": node.create_client(GetPositionIK, FLOOR_SERVICE, qos_profile=SERVICE_QOS),
    }
    for name, client in clients.items():
        if not client.wait_for_service(timeout_sec=60.0):
            raise RuntimeError(f"{name}: service not found in 60 s")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    times = {"node": [], "floor": [], "solve": []}
    wrong = 0
    for i, T in enumerate(T_targets):
        request = GetPositionIK.Request()
        request.ik_request.group_name = "panda_arm"
        request.ik_request.pose_stamped.header.frame_id = chain.base_link
        request.ik_request.pose_stamped.pose = matrix_to_pose(T)
        order = ["node", "floor", "solve"] if i % 2 else ["floor", "solve", "node"]
        for name in order:
            if name == "solve":
                elapsed_s = solver.solve(T).elapsed_s
            else:
                elapsed_s, response = _call_s(executor, clients[name], request)
                if name == "node":
                    q = np.array(response.solution.joint_state.position[: chain.dof])
                    reached = response.error_code.val == MoveItErrorCodes.SUCCESS and np.allclose(
                        chain.forward(q), T, atol=1e-5
                    )
                    wrong += i >= warmup and not reached
            if i >= warmup:
                times[name].append(elapsed_s)
    rclpy.shutdown()
    times["wrong"] = [wrong]
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--serve-floor", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_floor:
        serve_floor()
        return 0
    from node_process import started_node

    floor = subprocess.Popen(
        [sys.executable, __file__, "--serve-floor"], cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL
    )
    try:
        with started_node():
            times = measure(args.requests, args.warmup)
    finally:
        os.killpg(floor.pid, signal.SIGINT)
        floor.wait(timeout=20)
    print(f"GetPositionIK round trips, one client, {args.requests} Panda targets after {args.warmup} (ms)")
    print(f"{'':>30} {'median':>8} {'p95':>8} {'mean':>8}")
    for name, label in (("node", "ik_neural node"), ("floor", "floor (trivial service)"), ("solve", "solve alone")):
        values = np.array(times[name]) * 1e3
        print(f"{label:>30} {np.median(values):8.3f} {np.percentile(values, 95):8.3f} {values.mean():8.3f}")
    node, floor_ms, solve = (np.median(times[k]) * 1e3 for k in ("node", "floor", "solve"))
    print(f"node's own request handling (median node - floor - solve): {node - floor_ms - solve:.3f} ms")
    print(f"answers not SUCCESS or off their target by FK: {times['wrong'][0]} of {args.requests}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
