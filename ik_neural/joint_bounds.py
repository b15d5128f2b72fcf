"""Joint bounds: the one home of joint-limit semantics (narrow, project, sample, contains, distance).

Values are rad for revolute and continuous joints, m for prismatic ones, one per joint in chain order.
A bounded joint stays within [lower, upper]. A continuous joint is either searched over a full turn
(``bounded`` False: any value is allowed and is wrapped to [lower, lower + 2 pi) with lower = -pi), or,
once a window narrower than a turn is asked for, bounded by that window, on the turn it was given on
(a window of 3 to 3.5 rad is answered in it, past pi).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Mapping, Sequence, Union

import numpy as np

from ik_neural.echo import echo

TWO_PI = 2.0 * math.pi
ArrayLike = Union[np.ndarray, Sequence[float]]


class JointBoundsError(ValueError):
    """A joint window that cannot be used; ``joint`` names the joint."""

    def __init__(self, joint: str, message: str) -> None:
        super().__init__(message)
        self.joint = joint


def frozen(values: ArrayLike, dtype=np.float64) -> np.ndarray:
    """A read-only copy of ``values``: a bounds object is immutable, and numba compiles per array type,
    writability included, so every bounds array the kernels see is read-only alike."""
    array = np.array(values, dtype=dtype)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class JointBounds:
    """The joint limits a search stays within; arrays (dof,) in chain order, read-only."""

    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    bounded: np.ndarray  # bool: False for a continuous joint searched over a full turn
    continuous: np.ndarray  # bool: the joint is continuous in the chain (its angle is periodic)

    @classmethod
    def of_limits(
        cls, names: Sequence[str], lower: ArrayLike, upper: ArrayLike, continuous: ArrayLike
    ) -> "JointBounds":
        """A chain's limits: continuous joints over a full turn [-pi, pi)."""
        continuous = np.asarray(continuous, dtype=bool)
        lower = np.where(continuous, -math.pi, np.asarray(lower, dtype=np.float64))
        upper = np.where(continuous, math.pi, np.asarray(upper, dtype=np.float64))
        return cls(tuple(names), frozen(lower), frozen(upper), frozen(~continuous, bool), frozen(continuous, bool))

    @property
    def dof(self) -> int:
        return len(self.names)

    def narrow(self, windows: Mapping[str, tuple[float, float]]) -> "JointBounds":
        """These bounds with each named joint kept within its window (low, high), by joint name.

        A bounded joint keeps the intersection of its bounds and the window; a continuous joint over a
        full turn takes a window narrower than a turn as its bounds (a wider one leaves it a full turn);
        an already narrowed continuous joint intersects the window moved to its nearest turn.
        JointBoundsError naming the joint for an unknown name, a non-finite or reversed window, or an
        empty intersection.
        """
        lower, upper, bounded = self.lower.copy(), self.upper.copy(), self.bounded.copy()
        index = {name: j for j, name in enumerate(self.names)}
        for name, (low, high) in windows.items():
            if name not in index:
                raise JointBoundsError(name, f"joint {echo(name)} is not one of the joints {list(self.names)}")
            j = index[name]
            low, high = float(low), float(high)
            if not (math.isfinite(low) and math.isfinite(high)) or low > high:
                raise JointBoundsError(
                    name, f"joint {name!r}: window [{low:.6g}, {high:.6g}] is not finite and ordered"
                )
            if not bounded[j]:
                if high - low < TWO_PI:
                    lower[j], upper[j], bounded[j] = low, high, True
                continue
            if self.continuous[j]:
                # Move the window by whole turns to where its centre is nearest the current window's.
                # Halves first: the sum of two windows' ends near the largest float overflows to inf.
                turns = round((0.5 * lower[j] + 0.5 * upper[j] - (0.5 * low + 0.5 * high)) / TWO_PI)
                low, high = low + TWO_PI * turns, high + TWO_PI * turns
            new_lower, new_upper = max(lower[j], low), min(upper[j], high)
            if new_lower > new_upper:
                raise JointBoundsError(
                    name,
                    f"joint {name!r}: window [{low:.6g}, {high:.6g}] leaves no room within its bounds "
                    f"[{lower[j]:.6g}, {upper[j]:.6g}]",
                )
            lower[j], upper[j] = new_lower, new_upper
        return JointBounds(self.names, frozen(lower), frozen(upper), frozen(bounded, bool), self.continuous)

    def narrow_arrays(self, lower: ArrayLike | None, upper: ArrayLike | None) -> "JointBounds":
        """``narrow`` with a window for every joint, from arrays (dof,); None: these bounds' own."""
        lower = self.lower if lower is None else np.asarray(lower, dtype=np.float64)
        upper = self.upper if upper is None else np.asarray(upper, dtype=np.float64)
        for label, values in (("lower", lower), ("upper", upper)):
            if values.shape != (self.dof,):
                raise JointBoundsError(
                    "", f"{label} has shape {values.shape}; expected ({self.dof},) for {list(self.names)}"
                )
        return self.narrow({name: (lower[j], upper[j]) for j, name in enumerate(self.names)})

    def wrap(self, q: np.ndarray) -> np.ndarray:
        """q (..., dof) with continuous joints turned into [lower, lower + 2 pi); the rest unchanged."""
        return np.where(self.continuous, self.lower + np.mod(q - self.lower, TWO_PI), q)

    def project(self, q: np.ndarray) -> np.ndarray:
        """The nearest point of the bounds to q (..., dof): continuous joints wrapped, then bounded joints clamped."""
        q = np.asarray(q, dtype=np.float64)
        if self._none_continuous:  # most arms: a clamp alone (two ufuncs, not seven: the solver's hot path)
            return np.minimum(np.maximum(q, self.lower), self.upper)
        turned = self.wrap(q)
        return np.where(self.bounded, np.clip(turned, self.lower, self.upper), turned)

    @cached_property
    def _none_continuous(self) -> bool:
        """No joint is continuous (revolute or prismatic only): wrapping is the identity and every joint is clamped."""
        return not self.continuous.any()

    def contains(self, q: np.ndarray, tolerance: float = 0.0) -> np.ndarray:
        """Whether each configuration of q (..., dof) lies within the bounds (± tolerance): (...).
        A non-finite value (no answer) never does."""
        q = np.asarray(q, dtype=np.float64)
        finite = np.isfinite(q)
        turned = self.wrap(np.where(finite, q, 0.0))
        inside = (turned >= self.lower - tolerance) & (turned <= self.upper + tolerance)
        return (finite & (inside | ~self.bounded)).all(-1)

    def at_fraction(self, u):
        """The configurations at fractions u (..., dof) in [0, 1) of each joint's range (one turn for a
        continuous joint): lower + (upper - lower) · u. numpy or torch in, the same out (u's dtype)."""
        if isinstance(u, np.ndarray):
            return self.lower + (self.upper - self.lower) * u
        lower = u.new_tensor(self.lower)
        return lower + (u.new_tensor(self.upper) - lower) * u

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n configurations (n, dof) drawn uniformly within the bounds."""
        return self.at_fraction(rng.random((n, self.dof)))

    def difference(self, q: np.ndarray, q_ref: np.ndarray) -> np.ndarray:
        """q - q_ref (..., dof), continuous joints the short way round (in [-pi, pi))."""
        d = np.asarray(q, dtype=np.float64) - q_ref
        return np.where(self.continuous, np.mod(d + math.pi, TWO_PI) - math.pi, d)

    def distance(self, q: np.ndarray, q_ref: np.ndarray) -> np.ndarray:
        """Euclidean joint-space distance (..., dof) -> (...), continuous joints the short way round."""
        d = self.difference(q, q_ref)
        return np.sqrt((d * d).sum(-1))

    def largest_difference(self, q: np.ndarray, q_ref: np.ndarray) -> np.ndarray:
        """The largest absolute joint difference (..., dof) -> (...), continuous joints the short way round:
        how far apart two solutions are for ``IKSolver.solutions``."""
        return np.abs(self.difference(q, q_ref)).max(-1)
