"""ik_neural: neural-network inverse kinematics for ROS 2 serial chains.

The public Python API (no ROS needed); see README.md and design.md §10.
"""

from ik_neural.kinematics import KinematicChain

__all__ = ["KinematicChain"]
