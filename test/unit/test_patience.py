"""When the solver gives up: the one rule on a seed, as a scalar history and on arrays of rows, and a call's
budget."""

import math
import threading
import time

import numpy as np

from ik_neural.patience import Budget, Patience, SeedHistory, exhausted


def test_a_seed_is_given_up_after_its_steps_or_when_its_error_stops_halving():
    halving = SeedHistory(Patience(max_iterations=5, window=2))
    assert [halving.push(0.5**k) for k in range(5)] == [False] * 4 + [True]  # out of steps
    crawling = SeedHistory(Patience(max_iterations=40, window=2))
    # Two steps after 1.0 the error is 0.6, not below 0.5: exhausted at the third push.
    assert [crawling.push(e) for e in (1.0, 0.8, 0.6)] == [False, False, True]
    assert not SeedHistory(Patience(40, 2)).push(math.inf)  # no error two steps before: inf


def test_the_rows_rule_is_the_scalar_rule_elementwise():
    rng = np.random.default_rng(3)
    errors = rng.uniform(0.0, 1.0, (12, 6))  # 12 steps of 6 seeds
    max_iterations, window = np.array([4, 12, 12, 8, 12, 12]), np.array([2, 3, 10, 3, 1, 4])
    for row in range(6):
        history = SeedHistory(Patience(int(max_iterations[row]), int(window[row])))
        for age, error in enumerate(errors[:, row], start=1):
            earlier = errors[age - 1 - window[row], row] if age > window[row] else math.inf
            got = exhausted(np.array([age]), np.array([error]), np.array([earlier]), max_iterations[row : row + 1])
            assert bool(got[0]) == history.push(float(error))


def test_a_budget_is_spent_at_its_deadline_or_once_stopped():
    assert Budget(time.perf_counter() - 1.0, 0.5, None).spent()
    stop = threading.Event()
    budget = Budget(time.perf_counter(), 60.0, stop)
    assert not budget.spent()
    stop.set()
    assert budget.spent()
