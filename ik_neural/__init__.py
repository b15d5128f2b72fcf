"""ik_neural: neural-network inverse kinematics for ROS 2 serial chains.

The public Python API (no ROS needed); see README.md and design.md §10.
"""

from ik_neural.kinematics import KinematicChain
from ik_neural.robots import Robot, list_robots, load_robot

__all__ = ["KinematicChain", "Robot", "list_robots", "load_robot"]
