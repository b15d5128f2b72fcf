"""ik_neural: neural-network inverse kinematics for ROS 2 serial chains.

The public Python API (no ROS needed); see README.md and design.md §10.
"""

from ik_neural.kinematics import KinematicChain
from ik_neural.network import IKNetwork, load_network
from ik_neural.robots import Robot, list_robots, load_robot
from ik_neural.solver import IKResult, IKSolver, SolverSettings

__all__ = [
    "IKNetwork", "IKResult", "IKSolver", "KinematicChain", "Robot", "SolverSettings", "list_robots",
    "load_network", "load_robot",
]  # fmt: skip
