"""Demo: robot_state_publisher, the ik_neural node and RViz. ros2 launch ik_neural demo.launch.py [robot:=ur5e]

Goal poses on /goal_pose (geometry_msgs/PoseStamped) are solved from the displayed state; the node's joint
commands are remapped to /joint_states, so robot_state_publisher moves the displayed arm to each solution.
The arm starts at mid-limits, published once. RViz's goal tool gives planar poses (z = 0, a turn about z),
which an arm can rarely meet in full: with position_only:=true (default) the arm reaches the clicked point.
"""

from pathlib import Path

import yaml
from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction, TimerAction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from ik_neural.robots import load_robot


def _nodes(context):
    share = Path(get_package_share_directory("ik_neural"))
    robot = load_robot(LaunchConfiguration("robot").perform(context))
    urdf = robot.urdf_path.read_text()
    start = {"name": robot.chain.joint_names, "position": robot.chain.middle.tolist()}
    return [
        Node(package="robot_state_publisher", executable="robot_state_publisher",
             parameters=[{"robot_description": urdf}], output="screen"),
        Node(
            package="ik_neural", executable="ik_node", name="ik_neural",
            parameters=[
                str(share / "config" / f"{robot.name}.yaml"),
                {"robot_description": urdf, "position_only_ik": LaunchConfiguration("position_only").perform(context) == "true"},
            ],
            remappings=[("~/goal_pose", "/goal_pose"), ("~/joint_commands", "/joint_states")],
            output="screen",
        ),
        Node(package="rviz2", executable="rviz2", arguments=["-d", str(share / "config" / "demo.rviz"),
                                                             "--fixed-frame", robot.chain.base_link]),
        # The arm's first state, once robot_state_publisher listens: mid-limits.
        TimerAction(period=2.0, actions=[ExecuteProcess(cmd=[
            "ros2", "topic", "pub", "--once", "/joint_states", "sensor_msgs/msg/JointState",
            yaml.safe_dump(start, default_flow_style=True, width=float("inf")).strip(),
        ])]),
    ]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument("robot", default_value="panda", description="shipped robot to show"),
        DeclareLaunchArgument(
            "position_only", default_value="true", choices=["true", "false"],
            description="solve goals for their position only (RViz's goal tool sets planar poses)",
        ),
        OpaqueFunction(function=_nodes),
    ])
