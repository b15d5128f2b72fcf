"""The ik_neural node for a robot: ros2 launch ik_neural ik_neural.launch.py robot:=ur5e

Parameters come from config/<robot>.yaml (or config:=FILE); any argument given non-empty overrides that
file's value. The description comes from robot_description:=XML, else urdf_path (the shipped robots' config
files name one), else the robot_description topic (as robot_state_publisher publishes it). Imports nothing from ik_neural (no torch, numba or
model load in the launch process): files are found in the package's share directory.
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

# Launch arguments that override the config file's parameter of the same name when not empty.
OVERRIDES = {
    "robot_description": "URDF XML (empty: urdf_path, then the robot_description topic)",
    "urdf_path": "URDF file (package:// URIs work)",
    "base_link": "base link of the chain",
    "tip_link": "tip link of the chain",
    "model_path": "TorchScript network from `ik_train`",
    "group_name": "planning group the requests must name",
}


def _robot_config(share: Path, robot: str) -> str:
    """config/<robot>.yaml in the share directory; an unknown robot fails naming the shipped ones."""
    path = share / "config" / f"{robot}.yaml"
    if not path.is_file():
        shipped = ", ".join(sorted(p.stem for p in (share / "config").glob("*.yaml")))
        raise RuntimeError(f"unknown robot {robot!r}: the shipped robots are {shipped} (or give config:=FILE)")
    return str(path)


def _controller_remappings(context) -> list[tuple[str, str]]:
    """Goal commands straight to ros2_control controllers named by the launch arguments (empty: not)."""
    position = LaunchConfiguration("position_controller").perform(context)
    trajectory = LaunchConfiguration("trajectory_controller").perform(context)
    remappings = [("~/position_commands", f"/{position.strip('/')}/commands")] if position else []
    if trajectory:
        remappings.append(("~/joint_trajectory", f"/{trajectory.strip('/')}/joint_trajectory"))
    return remappings


def _node(context):
    share = Path(get_package_share_directory("ik_neural"))
    config = LaunchConfiguration("config").perform(context)
    if config and not Path(config).is_file():
        # launch_ros would only warn and drop it; the node would then fail for want of a description.
        raise RuntimeError(f"config:={config} is not a file")
    config = config or _robot_config(share, LaunchConfiguration("robot").perform(context))
    overrides = {name: LaunchConfiguration(name).perform(context) for name in OVERRIDES}
    return [
        Node(
            package="ik_neural",
            executable="ik_node",
            name="ik_neural",
            namespace=LaunchConfiguration("namespace"),
            parameters=[config, {name: value for name, value in overrides.items() if value}],
            remappings=[
                ("~/compute_ik", LaunchConfiguration("compute_ik_service")),
                ("~/compute_fk", LaunchConfiguration("compute_fk_service")),
                *_controller_remappings(context),
            ],
            output="screen",
        )
    ]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "robot", default_value="panda", description="shipped robot whose config/<robot>.yaml is used"
            ),
            DeclareLaunchArgument(
                "config", default_value="", description="parameter file (empty: config/<robot>.yaml)"
            ),
            DeclareLaunchArgument("namespace", default_value="", description="namespace of the node"),
            DeclareLaunchArgument(
                "compute_ik_service",
                default_value="~/compute_ik",
                description="GetPositionIK service name (/compute_ik stands in for move_group's)",
            ),
            DeclareLaunchArgument(
                "compute_fk_service",
                default_value="~/compute_fk",
                description="GetPositionFK service name (/compute_fk stands in for move_group's)",
            ),
            DeclareLaunchArgument(
                "position_controller",
                default_value="",
                description="forward_command_controller (JointGroupPositionController) fed the goal commands "
                "(~/position_commands remapped to /<name>/commands); empty: none",
            ),
            DeclareLaunchArgument(
                "trajectory_controller",
                default_value="",
                description="joint_trajectory_controller fed the goal commands (~/joint_trajectory remapped to "
                "/<name>/joint_trajectory); empty: none",
            ),
            *(DeclareLaunchArgument(name, default_value="", description=text) for name, text in OVERRIDES.items()),
            OpaqueFunction(function=_node),
        ]
    )
