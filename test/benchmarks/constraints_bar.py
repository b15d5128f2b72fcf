"""Benchmark (prints a table; not a test): compute_ik requests carrying a position and an orientation
constraint on the tip, to the node started with its default parameters, every answer judged here.

    source "$(bash env/activate_checkout.sh)" && python test/benchmarks/constraints_bar.py --targets 200

Starts ``ik_node --ros-args --params-file config/panda.yaml`` (its own ROS_DOMAIN_ID, loopback). Per target
(FK of a random configuration), three requests with the pose in the base frame and constraints on
panda_link8 (XYZ_EULER_ANGLES): a 4 cm box around the target position and 10° per axis about the pose's
orientation turned by up to 6° per axis (satisfiable: SUCCESS expected); the same with the orientation
turned 15° about x (no answer on the pose can meet it: NO_IK_SOLUTION expected); a box 10 cm beside the
target (likewise). Each SUCCESS is judged by Pinocchio's FK: on the pose (1e-5 m, 1e-5 rad), inside the
box, within 10° per axis by the textbook x-y-z Euler angles of R_constraintᵀ R_tip.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from node_process import started_node  # noqa: E402
from reference import ReferenceChain  # noqa: E402

from ik_neural.robots import load_robot  # noqa: E402

TEN_DEGREES = math.radians(10.0)
BOX_M = 0.04


def euler_xyz_rad(R: np.ndarray) -> np.ndarray:
    """|x-y-z Euler angles| of R = Rx(a) Ry(b) Rz(c) (3, 3), rad: the textbook formula (no singularity here)."""
    return np.abs([math.atan2(-R[1, 2], R[2, 2]), math.asin(np.clip(R[0, 2], -1, 1)), math.atan2(-R[0, 1], R[0, 0])])


def turned(R: np.ndarray, angles_rad) -> np.ndarray:
    """R (3, 3) turned by Rx(a) Ry(b) Rz(c) in its own axes."""
    a, b, c = angles_rad
    Rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    Ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    Rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return R @ Rx @ Ry @ Rz


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=200)
    parser.add_argument("--random-seed", type=int, default=0)
    args = parser.parse_args()
    os.environ["ROS_DOMAIN_ID"] = str(1 + os.getpid() % 101)
    import rclpy
    from geometry_msgs.msg import Pose
    from moveit_msgs.msg import BoundingVolume, Constraints, OrientationConstraint, PositionConstraint
    from moveit_msgs.srv import GetPositionIK
    from shape_msgs.msg import SolidPrimitive

    from ik_neural.ros.messages import matrix_to_pose

    robot = load_robot("panda")
    chain = robot.chain
    reference = ReferenceChain(robot.urdf_path, chain.base_link, chain.tip_link, chain.joint_names)
    rng = np.random.default_rng(args.random_seed)
    q_targets = chain.bounds.sample(rng, args.targets)

    def constraints(box_center_m, R_constraint) -> Constraints:
        box = BoundingVolume()
        box.primitives = [SolidPrimitive(type=SolidPrimitive.BOX, dimensions=[BOX_M] * 3)]
        pose = Pose()
        pose.position.x, pose.position.y, pose.position.z = (float(v) for v in box_center_m)
        pose.orientation.w = 1.0
        box.primitive_poses = [pose]
        position = PositionConstraint(link_name=chain.tip_link, constraint_region=box, weight=1.0)
        position.header.frame_id = chain.base_link
        T = np.eye(4)
        T[:3, :3] = R_constraint
        orientation = OrientationConstraint(
            link_name=chain.tip_link,
            orientation=matrix_to_pose(T).orientation,
            absolute_x_axis_tolerance=TEN_DEGREES,
            absolute_y_axis_tolerance=TEN_DEGREES,
            absolute_z_axis_tolerance=TEN_DEGREES,
            parameterization=OrientationConstraint.XYZ_EULER_ANGLES,
            weight=1.0,
        )
        orientation.header.frame_id = chain.base_link
        return Constraints(position_constraints=[position], orientation_constraints=[orientation])

    with started_node():
        rclpy.init()
        client_node = rclpy.create_node("constraints_bar_client")
        rows = {}
        try:
            client = client_node.create_client(GetPositionIK, "/ik_neural/compute_ik")
            if not client.wait_for_service(timeout_sec=60.0):
                raise SystemExit("the node did not come up within 60 s")

            def call(T, constraint_set):
                request = GetPositionIK.Request()
                ik = request.ik_request
                ik.group_name = "panda_arm"
                ik.pose_stamped.header.frame_id = chain.base_link
                ik.pose_stamped.pose = matrix_to_pose(T)
                ik.constraints = constraint_set
                future = client.call_async(request)
                rclpy.spin_until_future_complete(client_node, future, timeout_sec=10.0)
                return future.result()

            kinds = ("satisfiable", "orientation 15° off", "box 10 cm off")
            rows = {kind: {"success": 0, "meets both": 0, "no_solution": 0, "named": 0, "other": 0} for kind in kinds}
            for q in q_targets:
                T = chain.forward(q)
                R_near = turned(T[:3, :3], rng.uniform(-math.radians(6), math.radians(6), 3))
                cases = {
                    "satisfiable": (T[:3, 3], R_near),
                    "orientation 15° off": (T[:3, 3], turned(T[:3, :3], (math.radians(15), 0.0, 0.0))),
                    "box 10 cm off": (T[:3, 3] + np.array([0.0, 0.0, 0.1]), R_near),
                }
                for kind, (center, R_constraint) in cases.items():
                    response = call(T, constraints(center, R_constraint))
                    row, code = rows[kind], response.error_code.val
                    if code == 1:
                        row["success"] += 1
                        solution = np.array(response.solution.joint_state.position[: chain.dof])
                        T_solved = reference.forward(solution)
                        on_pose = all(error < 1e-5 for error in reference.errors(solution, T))
                        in_box = (np.abs(T_solved[:3, 3] - center) <= BOX_M / 2).all()
                        within = (euler_xyz_rad(R_constraint.T @ T_solved[:3, :3]) <= TEN_DEGREES + 1e-12).all()
                        row["meets both"] += on_pose and in_box and within
                    elif code == -31:
                        row["no_solution"] += 1
                        row["named"] += "constraints." in getattr(response.error_code, "message", "")
                    else:
                        row["other"] += 1
        finally:
            client_node.destroy_node()
            rclpy.shutdown()
    print(f"Panda node, default parameters, {args.targets} targets, constraints on {chain.tip_link}")
    print(
        "| requests | SUCCESS | of them on the pose, in the box and within 10° (Pinocchio) | NO_IK_SOLUTION | "
        "of them naming a constraint | other |"
    )
    print("|---|---|---|---|---|---|")
    for kind, row in rows.items():
        print(
            f"| {kind} | {row['success']} | {row['meets both']} | {row['no_solution']} | {row['named']} | "
            f"{row['other']} |"
        )


if __name__ == "__main__":
    main()
