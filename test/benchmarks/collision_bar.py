"""Benchmark (prints a table; not a test): avoid_collisions as pymoveit2 requests it, from the node started
with its default parameters, answers judged on the real Panda meshes.

    source "$(bash env/activate_checkout.sh)" && python test/benchmarks/collision_bar.py --targets 150

Starts ``ik_node --ros-args --params-file config/panda.yaml`` (its own ROS_DOMAIN_ID, loopback), then sends
pymoveit2's request (avoid_collisions true, timeout 0, the base frame, the start state with the fingers as
the seed) for targets that are FK of configurations free on example-robot-data's collision meshes; every
answer is judged by Pinocchio's FK and by Pinocchio + coal on those meshes. Second run: a box published on
collision_object as pymoveit2's add_collision_box publishes it, targets whose configuration also clears
the box. Last: the round trip with avoid_collisions true and false, interleaved target by target.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from node_process import started_node  # noqa: E402
from reference import PandaMeshJudge, ReferenceChain  # noqa: E402

from ik_neural.robots import load_robot  # noqa: E402

FINGERS = {"panda_finger_joint1": 0.0, "panda_finger_joint2": 0.0}
BOX_CENTER_M, BOX_SIZE_M = (0.5, 0.0, 0.3), (0.2, 0.4, 0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=150)
    parser.add_argument("--random-seed", type=int, default=0)
    args = parser.parse_args()
    os.environ["ROS_DOMAIN_ID"] = str(1 + os.getpid() % 101)
    import rclpy
    from geometry_msgs.msg import Pose
    from moveit_msgs.msg import CollisionObject
    from moveit_msgs.srv import GetPositionIK
    from shape_msgs.msg import SolidPrimitive

    from ik_neural.ros.messages import matrix_to_pose

    robot = load_robot("panda")
    chain = robot.chain
    judge = PandaMeshJudge(chain.joint_names, chain.middle, BOX_CENTER_M, BOX_SIZE_M)
    reference = ReferenceChain(robot.urdf_path, chain.base_link, chain.tip_link, chain.joint_names)
    rng = np.random.default_rng(args.random_seed)
    pool = [q for q in chain.bounds.sample(rng, 6 * args.targets) if not judge.self_collides(q)]
    free = pool[: args.targets]
    clear = [q for q in pool if not judge.hits_box(q)][: args.targets]
    start = {**dict(zip(chain.joint_names, chain.middle.tolist())), **FINGERS}

    with started_node():
        rclpy.init()
        client_node = rclpy.create_node("collision_bar_client")
        try:
            client = client_node.create_client(GetPositionIK, "/ik_neural/compute_ik")
            if not client.wait_for_service(timeout_sec=60.0):
                raise SystemExit("the node did not come up within 60 s")

            def call(T, avoid_collisions=True):
                request = GetPositionIK.Request()
                ik = request.ik_request
                ik.group_name, ik.avoid_collisions = "panda_arm", avoid_collisions
                ik.pose_stamped.header.frame_id = chain.base_link
                ik.pose_stamped.pose = matrix_to_pose(T)
                ik.robot_state.joint_state.name = list(start)
                ik.robot_state.joint_state.position = [float(v) for v in start.values()]
                t0 = time.perf_counter()
                future = client.call_async(request)
                rclpy.spin_until_future_complete(client_node, future, timeout_sec=10.0)
                response = future.result()
                return response, time.perf_counter() - t0

            def run(targets, box: bool):
                counts = {"success": 0, "wrong": 0, "self": 0, "box": 0, "no_solution": 0, "other": 0}
                for q in targets:
                    T = chain.forward(q)
                    response, _ = call(T)
                    code = response.error_code.val
                    if code == 1:
                        counts["success"] += 1
                        solution = np.array(response.solution.joint_state.position[: chain.dof])
                        position_error, rotation_error = reference.errors(solution, T)
                        counts["wrong"] += not (position_error < 1e-5 and rotation_error < 1e-5)
                        counts["self"] += judge.self_collides(solution)
                        counts["box"] += box and judge.hits_box(solution)
                    else:
                        counts["no_solution" if code == -31 else "other"] += 1
                return counts

            rows = [("self-collision only", len(free), run(free, False))]
            publisher = client_node.create_publisher(CollisionObject, "/collision_object", 10)
            box = CollisionObject(id="box", operation=CollisionObject.ADD)
            box.header.frame_id = chain.base_link
            pose = Pose()
            pose.position.x, pose.position.y, pose.position.z = BOX_CENTER_M
            pose.orientation.w = 1.0
            box.pose = pose  # as pymoveit2 5.0.0's add_collision_box: the object's pose, no primitive_poses
            box.primitives = [SolidPrimitive(type=SolidPrimitive.BOX, dimensions=list(BOX_SIZE_M))]
            # Published until the node has it: a pose whose tip is inside the box then has no answer.
            inside = lambda q: (np.abs(chain.forward(q)[:3, 3] - BOX_CENTER_M) < np.array(BOX_SIZE_M) / 2).all()
            T_inside = chain.forward(next(q for q in chain.bounds.sample(rng, 20000) if inside(q)))
            for _ in range(200):
                publisher.publish(box)
                if call(T_inside)[0].error_code.val != 1:
                    break
            else:
                raise SystemExit("the node never took the box")
            rows.append((f"box {BOX_SIZE_M} m at {BOX_CENTER_M}", len(clear), run(clear, True)))
            remove = CollisionObject(id="box", operation=CollisionObject.REMOVE)
            remove.header.frame_id = chain.base_link
            for _ in range(200):
                publisher.publish(remove)
                if call(T_inside)[0].error_code.val == 1:
                    break
            times = {True: [], False: []}
            for q in free:
                for avoid in (True, False):
                    times[avoid].append(call(chain.forward(q), avoid)[1])
        finally:
            client_node.destroy_node()
            rclpy.shutdown()

    print(
        f"judge: {judge.pairs} pairs of mesh objects (all but those of adjacent links and those touching at mid-limits)"
    )
    print(
        "| requests | targets | SUCCESS | NO_IK_SOLUTION | other | wrong by FK | self-colliding (meshes) | in the box |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, n, c in rows:
        print(
            f"| {name} | {n} | {c['success']} ({100 * c['success'] / n:.1f} %) | {c['no_solution']} | {c['other']} | "
            f"{c['wrong']} | {c['self']} | {c['box'] if 'box' in name else '-'} |"
        )
    for avoid in (True, False):
        t = 1e3 * np.array(times[avoid])
        print(
            f"round trip, avoid_collisions {str(avoid).lower()}: median {np.median(t):.2f} ms, mean {t.mean():.2f} ms, p95 {np.percentile(t, 95):.2f} ms"
        )


if __name__ == "__main__":
    main()
