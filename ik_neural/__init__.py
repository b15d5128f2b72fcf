"""ik_neural: neural-network inverse kinematics for ROS 2 serial chains.

The public Python API (no ROS needed); see README.md. Names are imported on first use,
so that ``import ik_neural.geometry`` (say, from a launch file or the message conversions) does not load
torch, numba or the network.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "KinematicChain": "ik_neural.chain",
    "IKNetwork": "ik_neural.network",
    "load_network": "ik_neural.network",
    "Robot": "ik_neural.robots",
    "list_robots": "ik_neural.robots",
    "load_robot": "ik_neural.robots",
    "IKQuery": "ik_neural.query",
    "Tolerance": "ik_neural.query",
    "BatchResult": "ik_neural.solver",
    "IKResult": "ik_neural.solver",
    "IKSolver": "ik_neural.solver",
    "SolverSettings": "ik_neural.solver",
    "Solutions": "ik_neural.solver",
    "Tracker": "ik_neural.tracker",
    "TrackerCommand": "ik_neural.tracker",
    "TrackerSettings": "ik_neural.tracker",
}
__all__ = sorted(_EXPORTS)  # noqa: PLE0605 (a list, built from the one table of names)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ik_neural' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
