"""When the solver gives up: on a seed (``exhausted``, the one rule, with its parameters ``Patience`` and a
seed's errors so far ``SeedHistory``), and on a call (``Budget``: its deadline or its stop event).

The one-pose paths keep this bookkeeping on Python scalars (a list and floats, no numpy per step: a DLS
step costs a few µs, and numpy's per-call overhead would be a large share of it); the batch path keeps
arrays of rows and applies the same rule to them elementwise.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from time import perf_counter
from typing import Optional


def exhausted(age, error, error_window_ago, max_iterations):
    """The one rule: a seed is given up after ``max_iterations`` steps, or when its error did not halve over
    the last ``window`` steps. ``age``: its steps so far; ``error``: its latest error; ``error_window_ago``:
    its error ``window`` steps before (inf before that many). Python scalars, or numpy arrays elementwise."""
    return (age >= max_iterations) | (error > 0.5 * error_window_ago)


@dataclass(frozen=True)
class Patience:
    """How long a seed is refined (``exhausted``): at most ``max_iterations`` steps, and while its error
    halves at least every ``window`` steps."""

    max_iterations: int
    window: int


class SeedHistory:
    """One seed's errors so far, newest last: ``push`` each step's error to learn whether the seed is
    exhausted (by ``exhausted``). A list and floats: a push is a few list operations."""

    __slots__ = ("_errors", "_max_iterations", "_window")

    def __init__(self, patience: Patience) -> None:
        self._errors: list[float] = []
        self._max_iterations, self._window = patience.max_iterations, patience.window

    def push(self, error: float) -> bool:
        """Record a step's ``error`` (a Python float); True when the seed is now exhausted."""
        errors, window = self._errors, self._window
        errors.append(error)
        age = len(errors)
        return exhausted(age, error, errors[-1 - window] if age > window else math.inf, self._max_iterations)


class Budget:
    """A call's end: ``timeout_s`` after ``start_s`` (``time.perf_counter``, s), or once ``stop`` is set."""

    __slots__ = ("_deadline_s", "_stop")

    def __init__(self, start_s: float, timeout_s: float, stop: Optional[threading.Event]) -> None:
        self._deadline_s, self._stop = start_s + timeout_s, stop

    def spent(self) -> bool:
        """The deadline has passed or the stop event is set."""
        return perf_counter() > self._deadline_s or (self._stop is not None and self._stop.is_set())
