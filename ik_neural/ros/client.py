"""``ik_client``: send GetPositionIK requests to the node and check every answer by forward kinematics.

Targets are FK of joint configurations drawn uniformly within the limits (seeded), or one ``--pose``.
For each answer it prints the solution, its position and orientation errors as computed here (an
independent FK check of what the node returned) and the round-trip latency; then a summary.
Requests name the tip the answers are checked against (``ik_link_name``), so a node serving another tip
answers INVALID_LINK_NAME rather than a solution for its own tip. Exit status 0 when every request was
answered, at least one succeeded and no SUCCESS answer failed the check; 1 otherwise, the last line saying
why.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
import rclpy
from geometry_msgs.msg import Pose
from moveit_msgs.msg import MoveItErrorCodes
from moveit_msgs.srv import GetPositionIK
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.utilities import remove_ros_args

from ik_neural.chain import KinematicChain
from ik_neural.commands.chain_selection import add_chain_arguments, chosen_chain
from ik_neural.geometry import pose_errors
from ik_neural.ros.messages import matrix_to_pose, pose_to_matrix, seconds_to_duration
from ik_neural.ros.qos import SERVICE_QOS
from ik_neural.sampling import reachable_targets

CODE_NAMES = {
    value: name for name, value in vars(MoveItErrorCodes).items() if name.isupper() and isinstance(value, int)
}


def _arguments(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ik_client", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--service", default="/ik_neural/compute_ik", help="GetPositionIK service (default %(default)s)"
    )
    add_chain_arguments(parser, default_robot="panda")
    parser.add_argument("--count", type=int, default=5, help="requests to send, one at a time (default %(default)s)")
    parser.add_argument(
        "--pose",
        type=float,
        nargs=7,
        metavar=("X", "Y", "Z", "QX", "QY", "QZ", "QW"),
        help="one target pose of the tip in the base frame (m; quaternion x y z w) instead of random ones",
    )
    parser.add_argument("--group", default="", help="group_name of the requests (default: empty, accepted by the node)")
    parser.add_argument(
        "--timeout-ms", type=float, default=0.0, help="the requests' timeout, ms (0: the node's default)"
    )
    parser.add_argument(
        "--avoid-collisions",
        action="store_true",
        help="send avoid_collisions = true (as pymoveit2 and MoveIt do): SUCCESS only collision-free",
    )
    parser.add_argument("--random-seed", type=int, default=0, help="seed of the random targets (default %(default)s)")
    parser.add_argument(
        "--position-tolerance-m", type=float, default=1e-5, help="check of SUCCESS answers (default %(default)s)"
    )
    parser.add_argument(
        "--orientation-tolerance-rad", type=float, default=1e-5, help="check of SUCCESS answers (default %(default)s)"
    )
    parser.add_argument(
        "--wait-s", type=float, default=30.0, help="how long to wait for the service (default %(default)s)"
    )
    parser.add_argument(
        "--response-timeout-s",
        type=float,
        default=5.0,
        help="a request unanswered after this is lost (default %(default)s)",
    )
    parser.add_argument("--quiet", action="store_true", help="only the summary")
    parser.add_argument("--json", type=Path, help="also write the summary to this file as JSON")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error(f"--count must be at least 1, got {args.count}")
    return args


def _targets(chain: KinematicChain, args: argparse.Namespace) -> np.ndarray:
    """(count, 4, 4) target poses of the tip in the base frame."""
    if args.pose is not None:
        pose = Pose()
        pose.position.x, pose.position.y, pose.position.z = args.pose[:3]
        pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = args.pose[3:]
        return np.repeat(pose_to_matrix(pose)[None], args.count, axis=0)
    return reachable_targets(chain, args.count, args.random_seed)[1]


def _request(chain: KinematicChain, T: np.ndarray, args: argparse.Namespace) -> GetPositionIK.Request:
    request = GetPositionIK.Request()
    ik = request.ik_request
    ik.group_name, ik.avoid_collisions = args.group, args.avoid_collisions
    ik.ik_link_name = chain.tip_link  # the link _check places: a node with another tip refuses (INVALID_LINK_NAME)
    ik.pose_stamped.header.frame_id = chain.base_link
    ik.pose_stamped.pose = matrix_to_pose(T)
    ik.timeout = seconds_to_duration(args.timeout_ms / 1e3)
    return request


def _percentile_ms(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1e3 if values else float("nan")


def main(argv: Optional[list[str]] = None) -> int:
    """``ik_client`` (``argv``: the arguments, without the program name; ROS arguments allowed)."""
    argv = sys.argv[1:] if argv is None else argv
    args = _arguments(remove_ros_args(["ik_client", *argv])[1:])
    try:
        chain = chosen_chain(args, load_network=False).chain
        targets = _targets(chain, args)
        chain.forward(chain.middle)  # compiles (or loads) the FK kernel now, not inside the first check
    except ValueError as error:
        print(f"ik_client: {error}", file=sys.stderr)
        return 2
    rclpy.init(args=["ik_client", *argv])
    try:
        node = Node("ik_client")
        client = node.create_client(GetPositionIK, args.service, qos_profile=SERVICE_QOS)
        if not client.wait_for_service(timeout_sec=args.wait_s):
            print(f"ik_client: no service {args.service} after {args.wait_s} s (is ik_node running?)", file=sys.stderr)
            return 1
        if not _reply_path_ready(node, client, _request(chain, targets[0], args), args.wait_s):
            print(f"ik_client: {args.service} never answered within {args.wait_s} s", file=sys.stderr)
            return 1
        gc.freeze()  # start-up's objects (torch among them): no 0.1 s collections inside the timed requests
        summary = _run(node, client, chain, targets, args)
    except (KeyboardInterrupt, ExternalShutdownException):
        return 130
    except Exception:
        if rclpy.ok():
            raise
        return 130  # a signal shut the context down under a call into rclpy
    finally:
        rclpy.try_shutdown()
    _print_summary(summary, args.service)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    failures = _failures(summary)
    if failures:
        sys.stdout.flush()  # the summary before the verdict, also where both streams go to one pipe
        print(f"ik_client: failed: {'; '.join(failures)}", file=sys.stderr)
        return 1
    return 0


def _reply_path_ready(node: Node, client, request: GetPositionIK.Request, wait_s: float) -> bool:
    """Send ``request`` until one answer comes back (not counted, not timed), for up to ``wait_s``. The
    service shows up as available once its request path is matched; the reply path to this new client
    can match later, and a request answered before it does is lost (seen under load with Fast DDS)."""
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            future = client.call_async(request)
            executor.spin_until_future_complete(future, timeout_sec=min(1.0, max(deadline - time.monotonic(), 0.01)))
            if not rclpy.ok():
                raise ExternalShutdownException()
            if future.done():
                return True
            client.remove_pending_request(future)
        return False
    finally:
        executor.remove_node(node)
        executor.shutdown()


def _run(node: Node, client, chain: KinematicChain, targets: np.ndarray, args: argparse.Namespace) -> dict:
    """Send every target in turn; the counts and latencies of the answers."""
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    codes: dict[str, int] = {}
    first_failure = ""  # the first answer other than SUCCESS: its code and the node's message
    latencies_s: list[float] = []
    wrong = lost = 0
    started, started_unix_s = time.perf_counter(), time.time()
    for i, T in enumerate(targets):
        request = _request(chain, T, args)
        sent = time.perf_counter()
        future = client.call_async(request)
        executor.spin_until_future_complete(future, timeout_sec=args.response_timeout_s)
        if not rclpy.ok():  # SIGINT or SIGTERM: rclpy's handlers shut the context down
            raise ExternalShutdownException()
        if not future.done():
            client.remove_pending_request(future)
            lost += 1
            print(f"#{i + 1}: no answer within {args.response_timeout_s} s", file=sys.stderr)
            continue
        latencies_s.append(time.perf_counter() - sent)
        response = future.result()
        code = CODE_NAMES.get(response.error_code.val, str(response.error_code.val))
        codes[code] = codes.get(code, 0) + 1
        if response.error_code.val != MoveItErrorCodes.SUCCESS and not first_failure:
            message = getattr(response.error_code, "message", "")  # Humble's moveit_msgs has none
            first_failure = f"{code}: {message}" if message else code
        verdict, line = _check(chain, T, response, args)
        wrong += verdict == "WRONG"
        if not args.quiet or verdict == "WRONG":
            print(
                f"#{i + 1} {code}{' ' + verdict if verdict else ''}: {line}, round trip {latencies_s[-1] * 1e3:.2f} ms"
            )
    elapsed_s = time.perf_counter() - started
    return {
        "requests": len(targets),
        "answered": len(latencies_s),
        "lost": lost,
        "wrong": wrong,
        "codes": codes,
        "first_failure": first_failure,
        "latency_median_ms": _percentile_ms(latencies_s, 50),
        "latency_p95_ms": _percentile_ms(latencies_s, 95),
        "latency_max_ms": _percentile_ms(latencies_s, 100),
        "elapsed_s": elapsed_s,
        "requests_per_s": len(latencies_s) / elapsed_s,
        "started_unix_s": started_unix_s,
    }


def _check(chain: KinematicChain, T: np.ndarray, response, args: argparse.Namespace) -> tuple[str, str]:
    """('' or 'WRONG', a description): FK here of the returned joints against the target."""
    state = response.solution.joint_state
    positions = dict(zip(state.name, state.position))
    if not set(chain.joint_names) <= set(positions):
        if response.error_code.val == MoveItErrorCodes.SUCCESS:
            return "WRONG", f"SUCCESS without the chain's joints (got {list(state.name)})"
        return "", response.error_code.message
    q = np.array([positions[name] for name in chain.joint_names])
    _, _, position_error, orientation_error = pose_errors(T, chain.forward(q))
    within = position_error <= args.position_tolerance_m and orientation_error <= args.orientation_tolerance_rad
    in_limits = bool(chain.bounds.contains(q))
    verdict = "WRONG" if response.error_code.val == MoveItErrorCodes.SUCCESS and not (within and in_limits) else ""
    joints = "[" + ", ".join(f"{v:.4f}" for v in q) + "]"
    return (
        verdict,
        f"q = {joints}, position error {position_error:.2e} m, orientation error {orientation_error:.2e} rad",
    )


def _failures(summary: dict) -> list[str]:
    """Why the run failed (empty: it did not): requests lost, answers wrong by the FK check, or no SUCCESS
    at all (with the first other answer's code and message)."""
    failures = []
    if summary["lost"]:
        failures.append(f"{summary['lost']} of {summary['requests']} requests lost")
    if summary["wrong"]:
        failures.append(f"{summary['wrong']} SUCCESS answers failed the FK check")
    if not summary["codes"].get("SUCCESS"):
        failures.append(
            "no request succeeded" + (f" (first answer {summary['first_failure']})" if summary["first_failure"] else "")
        )
    return failures


def _print_summary(summary: dict, service: str) -> None:
    codes = ", ".join(f"{name} {count}" for name, count in sorted(summary["codes"].items()))
    print(
        f"\n{service}: {summary['requests']} requests, {summary['answered']} answered ({codes}), "
        f"{summary['lost']} lost, {summary['wrong']} wrong by FK check\n"
        f"round trip: median {summary['latency_median_ms']:.2f} ms, p95 {summary['latency_p95_ms']:.2f} ms, "
        f"max {summary['latency_max_ms']:.2f} ms; {summary['requests_per_s']:.0f} requests/s"
    )


if __name__ == "__main__":
    sys.exit(main())
