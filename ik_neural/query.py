"""What one IK call asks for: the target, where to start, the joint bounds, when a candidate counts as
reaching the target (``Tolerance``) and is acceptable (``accept``), and how long to try (``IKQuery``).

Poses are 4x4 transforms of the tip in the chain's base frame; lengths in metres, angles in radians.
``IKSolver.solve`` takes an ``IKQuery``; ``solve_batch`` and ``solutions`` take the same ``Tolerance``,
bounds and ``accept``. The ROS node's ``Problem`` maps onto an ``IKQuery`` one to one (``Problem.query``).
"""

from __future__ import annotations

import enum
import math
import numbers
import threading
from dataclasses import dataclass
from typing import Callable, Optional, Union

import numpy as np

from ik_neural.joint_bounds import JointBounds

AcceptanceTest = Callable[[np.ndarray], bool]
"""A test asked of each converged candidate q (dof,) (pick_ik's SolutionTestFn): False rejects it and the
search goes on (``CollisionChecker.free`` is one such test)."""


@dataclass(frozen=True)
class Tolerance:
    """When forward kinematics of a candidate counts as reaching the target pose.

    ``Tolerance()`` is 1e-5 m and 1e-5 rad; ``Tolerance.position_only(1e-5)`` leaves the orientation free.
    ValueError naming the field for a value out of range.
    """

    position_m: float = 1e-5
    """Largest distance of the tip from the target position, m: finite and > 0."""
    orientation_rad: Union[float, tuple[float, float, float]] = 1e-5
    """Largest rotation of the tip from the target orientation about the target frame's x, y and z axes,
    rad: three values, or one for all three (kept as three); each > 0; ``math.inf`` leaves that rotation
    free (all three inf: position only)."""

    def __post_init__(self) -> None:
        if not isinstance(self.position_m, numbers.Real):
            raise ValueError(f"Tolerance.position_m must be a number (m), got {self.position_m!r}")
        position_m = float(self.position_m)
        if not (math.isfinite(position_m) and position_m > 0):
            raise ValueError(f"Tolerance.position_m must be finite and > 0 (m), got {position_m!r}")
        # Plain Python (no numpy): a tolerance may be built per call.
        orientation = self.orientation_rad
        values = (orientation,) * 3 if isinstance(orientation, numbers.Real) else orientation
        try:
            orientation_rad = tuple(float(v) for v in values if isinstance(v, numbers.Real))
            count = len(values)
        except TypeError:  # not a sequence
            orientation_rad, count = (), 0
        if count != 3 or len(orientation_rad) != 3:
            raise ValueError(
                "Tolerance.orientation_rad must be one number or three (about the target frame's x, y, z; rad), "
                f"got {orientation!r}"
            )
        if not all(v > 0 for v in orientation_rad):  # NaN fails too
            raise ValueError(
                f"Tolerance.orientation_rad must be > 0 about each axis (inf: free), got {orientation_rad}"
            )
        object.__setattr__(self, "position_m", position_m)
        object.__setattr__(self, "orientation_rad", orientation_rad)

    @classmethod
    def position_only(cls, position_m: float = 1e-5) -> "Tolerance":
        """Within ``position_m`` (m) of the target position, any orientation."""
        return cls(position_m, math.inf)

    @property
    def is_position_only(self) -> bool:
        """Every rotation is free: the orientation of the target is ignored."""
        return all(v == math.inf for v in self.orientation_rad)


DEFAULT_TOLERANCE = Tolerance()


class Unset(enum.Enum):
    """The type of ``UNSET``."""

    UNSET = "unset"


UNSET = Unset.UNSET
"""The value of a keyword not given (for ``orientation_tolerance_rad``, None means position only)."""


def tolerance_of(
    tolerance: Optional[Tolerance] = None,
    position_tolerance_m: Union[float, Unset] = UNSET,
    orientation_tolerance_rad: Union[float, None, Unset] = UNSET,
) -> Tolerance:
    """The tolerance of a keyword-form call: ``tolerance``, else the older scalar keywords (either left out:
    ``Tolerance()``'s value; ``orientation_tolerance_rad=None``: position only), else ``Tolerance()``.
    TypeError for both kinds at once."""
    scalars = position_tolerance_m is not UNSET or orientation_tolerance_rad is not UNSET
    if tolerance is not None:
        if scalars:
            raise TypeError("give tolerance= or position_tolerance_m=/orientation_tolerance_rad=, not both")
        if not isinstance(tolerance, Tolerance):
            raise TypeError(f"tolerance must be a Tolerance, got {type(tolerance).__name__}")
        return tolerance
    default = DEFAULT_TOLERANCE
    if not scalars:
        return default
    position_m = default.position_m if position_tolerance_m is UNSET else position_tolerance_m
    if orientation_tolerance_rad is UNSET:
        return Tolerance(position_m, default.orientation_rad)
    return Tolerance(position_m, math.inf if orientation_tolerance_rad is None else orientation_tolerance_rad)


def check_timeout_s(timeout_s: float) -> None:
    """ValueError unless ``timeout_s`` (a call's budget, s) is >= 0."""
    if not timeout_s >= 0:  # NaN fails too
        raise ValueError(f"timeout_s must be >= 0, got {timeout_s}")


@dataclass(frozen=True, eq=False)
class IKQuery:
    """One pose to solve (``IKSolver.solve``). The target and seed are checked against the chain by the
    solver; the rest here (ValueError or TypeError naming the field)."""

    T_target: np.ndarray
    """(4, 4) the tip's target pose in the chain's base frame."""
    seed: Optional[np.ndarray] = None
    """(dof,) where the search starts (rad or m, chain order); None: the middle of the bounds."""
    bounds: Optional[JointBounds] = None
    """The joint bounds of this call, within the chain's (e.g. ``chain.bounds.narrow(...)``); None: the
    chain's."""
    tolerance: Tolerance = DEFAULT_TOLERANCE
    """When FK of a candidate counts as reaching ``T_target``."""
    timeout_s: float = 0.005
    """The call's budget, s (>= 0): the best configuration found by then is returned."""
    seed_first: bool = False
    """Refine ``seed`` before the network's guesses (computed only if it fails): the answer is then usually
    the solution nearest the seed, as a numerical solver's is."""
    accept: Optional[AcceptanceTest] = None
    """Asked of each converged candidate q (dof,) only: one it rejects is dropped as if its seed were
    exhausted, and the search goes on within the budget. None: every converged candidate is accepted."""
    stop: Optional[threading.Event] = None
    """Once set, ends the call as its budget would (the node's shutdown sets it)."""

    def __post_init__(self) -> None:
        if not isinstance(self.tolerance, Tolerance):
            raise TypeError(f"IKQuery.tolerance must be a Tolerance, got {type(self.tolerance).__name__}")
        if self.bounds is not None and not isinstance(self.bounds, JointBounds):
            raise TypeError(f"IKQuery.bounds must be a JointBounds or None, got {type(self.bounds).__name__}")
        check_timeout_s(self.timeout_s)

    @classmethod
    def of(
        cls,
        T_target: np.ndarray,
        seed: Optional[np.ndarray] = None,
        timeout_s: float = 0.005,
        tolerance: Optional[Tolerance] = None,
        bounds: Optional[JointBounds] = None,
        seed_first: bool = False,
        accept: Optional[AcceptanceTest] = None,
        stop: Optional[threading.Event] = None,
        position_tolerance_m: Union[float, Unset] = UNSET,
        orientation_tolerance_rad: Union[float, None, Unset] = UNSET,
    ) -> "IKQuery":
        """The query of ``IKSolver.solve``'s keyword form: the fields by name, the tolerance by
        ``tolerance_of`` (``tolerance``, or the older ``position_tolerance_m``/``orientation_tolerance_rad``)."""
        tolerance = tolerance_of(tolerance, position_tolerance_m, orientation_tolerance_rad)
        return cls(T_target, seed, bounds, tolerance, timeout_s, seed_first, accept, stop)
