"""Demo: robot_state_publisher, joint_state_publisher, the ik_neural node and RViz.
ros2 launch ik_neural demo.launch.py [robot:=ur5e] [position_only:=false]

Goal poses on /goal_pose (geometry_msgs/PoseStamped) are solved from the displayed state. joint_state_publisher
publishes /joint_states at 10 Hz from the start (its initial state: 0, or mid-range for a joint whose range
excludes 0) and merges the node's joint commands into it, so robot_state_publisher hears a state whenever it
subscribes (no one-off publish that could come before it listens) and moves the displayed arm to each
solution. RViz's goal tool gives planar poses (z = 0, a turn about z), which an arm can rarely meet in full:
with position_only:=true (default) the arm reaches the clicked point.

Imports nothing from ik_neural: the robot's files are read from the package's share directory.
"""

from pathlib import Path

import yaml
from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

NODE_NAME = "ik_neural"


def _robot(share: Path, robot: str) -> dict:
    """models/<robot>/robot.yaml (base_link, tip_link, urdf); an unknown robot fails naming the shipped ones."""
    path = share / "models" / robot / "robot.yaml"
    if not path.is_file():
        shipped = ", ".join(sorted(p.parent.name for p in (share / "models").glob("*/robot.yaml")))
        raise RuntimeError(f"unknown robot {robot!r}: the shipped robots are {shipped}")
    return yaml.safe_load(path.read_text())


def _nodes(context):
    share = Path(get_package_share_directory("ik_neural"))
    robot = LaunchConfiguration("robot").perform(context)
    info = _robot(share, robot)
    urdf = (share / "models" / robot / info["urdf"]).read_text()
    return [
        Node(
            package="robot_state_publisher",
            executable="robot_state_publisher",
            parameters=[{"robot_description": urdf}],
            output="screen",
        ),
        # Reads the description from robot_state_publisher's latched robot_description topic.
        Node(
            package="joint_state_publisher",
            executable="joint_state_publisher",
            parameters=[{"source_list": [f"/{NODE_NAME}/joint_commands"]}],
            output="screen",
        ),
        Node(
            package="ik_neural",
            executable="ik_node",
            name=NODE_NAME,
            parameters=[
                str(share / "config" / f"{robot}.yaml"),
                {
                    "robot_description": urdf,
                    "position_only_ik": LaunchConfiguration("position_only").perform(context) == "true",
                },
            ],
            remappings=[("~/goal_pose", "/goal_pose")],
            output="screen",
        ),
        Node(
            package="rviz2",
            executable="rviz2",
            arguments=["-d", str(share / "config" / "demo.rviz"), "--fixed-frame", info["base_link"]],
        ),
    ]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            DeclareLaunchArgument("robot", default_value="panda", description="shipped robot to show"),
            DeclareLaunchArgument(
                "position_only",
                default_value="true",
                choices=["true", "false"],
                description="solve goals for their position only (RViz's goal tool sets planar poses)",
            ),
            OpaqueFunction(function=_nodes),
        ]
    )
