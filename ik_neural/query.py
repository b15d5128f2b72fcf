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
from typing import Any, Callable, Optional, Union

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
        # Built per call by the keyword form: plain floats take the fast path (an ABC isinstance costs ~1 µs).
        position_m = self.position_m
        if not (type(position_m) is float or isinstance(position_m, numbers.Real)):
            raise ValueError(f"Tolerance.position_m must be a number (m), got {position_m!r}")
        position_m = float(position_m)
        if not (math.isfinite(position_m) and position_m > 0):
            raise ValueError(f"Tolerance.position_m must be finite and > 0 (m), got {position_m!r}")
        orientation_rad = _three_rotations(self.orientation_rad)
        if not (orientation_rad[0] > 0 and orientation_rad[1] > 0 and orientation_rad[2] > 0):  # NaN fails too
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


def _three_rotations(orientation: object) -> tuple[float, float, float]:
    """``Tolerance.orientation_rad`` as three floats (x, y, z); ValueError unless one number or three."""
    if type(orientation) is float or isinstance(orientation, numbers.Real):
        value = float(orientation)
        return value, value, value
    try:
        values = tuple(orientation)
    except TypeError:  # not a sequence
        values = ()
    if len(values) != 3 or not all(isinstance(v, numbers.Real) for v in values):
        raise ValueError(
            "Tolerance.orientation_rad must be one number or three (about the target frame's x, y, z; rad), "
            f"got {orientation!r}"
        )
    return float(values[0]), float(values[1]), float(values[2])


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


def check_fields(
    tolerance: Tolerance, bounds: Optional[JointBounds], timeout_s: float, approximate: Optional[Tolerance] = None
) -> None:
    """What a call's fields must be, whatever the entry point (``IKQuery``, ``solve_batch``, ``solutions``;
    the solver checks the targets and seeds against its chain): TypeError or ValueError naming the field."""
    if not isinstance(tolerance, Tolerance):
        raise TypeError(f"IKQuery.tolerance must be a Tolerance, got {type(tolerance).__name__}")
    if approximate is not None and not isinstance(approximate, Tolerance):
        raise TypeError(f"IKQuery.approximate must be a Tolerance or None, got {type(approximate).__name__}")
    if bounds is not None and not isinstance(bounds, JointBounds):
        raise TypeError(f"IKQuery.bounds must be a JointBounds or None, got {type(bounds).__name__}")
    if not timeout_s >= 0:  # NaN fails too
        raise ValueError(f"timeout_s must be >= 0, got {timeout_s}")


def query_fields(
    seed: Optional[np.ndarray] = None,
    timeout_s: float = 0.005,
    tolerance: Optional[Tolerance] = None,
    bounds: Optional[JointBounds] = None,
    seed_first: bool = False,
    accept: Optional[AcceptanceTest] = None,
    stop: Optional[threading.Event] = None,
    approximate: Optional[Tolerance] = None,
    position_tolerance_m: Union[float, Unset] = UNSET,
    orientation_tolerance_rad: Union[float, None, Unset] = UNSET,
) -> tuple:
    """The keyword form of a query: ``IKQuery``'s fields after ``T_target``, in order, checked as it checks
    them, the tolerance by ``tolerance_of`` (``tolerance``, or the older ``position_tolerance_m`` and
    ``orientation_tolerance_rad``). ``IKQuery.of`` builds a query of them; ``IKSolver.solve`` solves them
    as they are (building a frozen dataclass costs a few µs, a share of a one-pose solve)."""
    tolerance = tolerance_of(tolerance, position_tolerance_m, orientation_tolerance_rad)
    check_fields(tolerance, bounds, timeout_s, approximate)
    return seed, bounds, tolerance, timeout_s, seed_first, accept, stop, approximate


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
    approximate: Optional[Tolerance] = None
    """A looser tolerance (pick_ik's approximate solutions): when no candidate meets ``tolerance`` within
    the budget, the best configuration found is the answer, flagged ``IKResult.approximate``, if it meets
    this one and ``accept``. None: only exact answers succeed."""

    def __post_init__(self) -> None:
        check_fields(self.tolerance, self.bounds, self.timeout_s, self.approximate)

    @classmethod
    def of(cls, T_target: np.ndarray, **keywords: Any) -> "IKQuery":
        """The query of ``IKSolver.solve``'s keyword form: T_target (4, 4) and the fields by name
        (``query_fields``, which also takes the older scalar tolerances)."""
        return cls(T_target, *query_fields(**keywords))
