"""What an IK call asks for: Tolerance and IKQuery checked on construction, the keyword form's tolerance."""

import math
import threading

import numpy as np
import pytest

from ik_neural.joint_bounds import JointBounds
from ik_neural.query import IKQuery, Tolerance, tolerance_of


def test_the_public_names_are_exported():
    import ik_neural

    assert ik_neural.IKQuery is IKQuery and ik_neural.Tolerance is Tolerance
    assert {"IKQuery", "Tolerance"} <= set(ik_neural.__all__)


def test_a_tolerance_keeps_one_rotation_tolerance_per_axis():
    assert Tolerance() == Tolerance(1e-5, (1e-5, 1e-5, 1e-5))
    assert Tolerance(1e-3, 0.01).orientation_rad == (0.01, 0.01, 0.01)
    assert Tolerance(1e-3, [0.1, 0.2, math.inf]).orientation_rad == (0.1, 0.2, math.inf)
    assert Tolerance(1e-3, np.array([0.1, 0.2, 0.3])).orientation_rad == (0.1, 0.2, 0.3)
    only = Tolerance.position_only(2e-3)
    assert only == Tolerance(2e-3, math.inf) and only.is_position_only
    assert not Tolerance(1e-3, [math.inf, math.inf, 0.1]).is_position_only
    assert Tolerance.position_only().position_m == Tolerance().position_m


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(position_m=0.0), r"Tolerance.position_m must be finite and > 0 \(m\), got 0.0"),
        (dict(position_m=-1e-3), "Tolerance.position_m must be finite and > 0"),
        (dict(position_m=math.inf), "Tolerance.position_m must be finite and > 0"),
        (dict(position_m=math.nan), "Tolerance.position_m must be finite and > 0"),
        (dict(position_m="1e-3"), "Tolerance.position_m must be a number"),
        (dict(orientation_rad=0.0), r"Tolerance.orientation_rad must be > 0 about each axis \(inf: free\)"),
        (dict(orientation_rad=(0.1, -0.1, 0.1)), "Tolerance.orientation_rad must be > 0 about each axis"),
        (dict(orientation_rad=math.nan), "Tolerance.orientation_rad must be > 0 about each axis"),
        (dict(orientation_rad=(0.1, 0.1)), "Tolerance.orientation_rad must be one number or three"),
        (dict(orientation_rad="wide"), "Tolerance.orientation_rad must be one number or three"),
    ],
)
def test_a_bad_tolerance_is_refused_naming_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Tolerance(**kwargs)


def test_the_keyword_form_maps_the_older_scalar_tolerances_in_one_place():
    assert tolerance_of() == Tolerance()
    given = Tolerance(1e-3, 0.01)
    assert tolerance_of(given) is given
    assert tolerance_of(None, 1e-3, 0.01) == given
    assert tolerance_of(None, position_tolerance_m=1e-3) == Tolerance(1e-3)
    assert tolerance_of(None, orientation_tolerance_rad=0.01) == Tolerance(orientation_rad=0.01)
    assert tolerance_of(None, 1e-3, None) == Tolerance.position_only(1e-3)
    with pytest.raises(
        TypeError, match="give tolerance= or position_tolerance_m=/orientation_tolerance_rad=, not both"
    ):
        tolerance_of(given, position_tolerance_m=1e-3)
    with pytest.raises(TypeError, match="tolerance must be a Tolerance, got float"):
        tolerance_of(1e-3)


def test_a_query_checks_its_fields_and_the_keyword_form_builds_the_same_query():
    T, seed, stop = np.eye(4), np.zeros(2), threading.Event()
    bounds = JointBounds.of_limits(["a", "b"], [-1.0, -1.0], [1.0, 1.0], [False, False])
    query = IKQuery.of(T, seed=seed, timeout_s=0.1, tolerance=Tolerance(1e-3), bounds=bounds, stop=stop)
    assert (query.T_target is T, query.seed is seed, query.bounds is bounds, query.stop is stop) == (True,) * 4
    assert query.tolerance == Tolerance(1e-3) and query.timeout_s == 0.1 and not query.seed_first
    assert query.accept is None
    default = IKQuery(T)
    assert default.seed is None and default.bounds is None and default.tolerance == Tolerance()
    assert default.timeout_s == 0.005 and not default.seed_first and default.accept is None and default.stop is None
    assert IKQuery.of(T, orientation_tolerance_rad=None).tolerance.is_position_only
    with pytest.raises(ValueError, match="timeout_s must be >= 0, got -1"):
        IKQuery(T, timeout_s=-1)
    with pytest.raises(TypeError, match="IKQuery.tolerance must be a Tolerance, got float"):
        IKQuery(T, tolerance=1e-5)
    with pytest.raises(TypeError, match="IKQuery.bounds must be a JointBounds or None, got tuple"):
        IKQuery(T, bounds=(np.zeros(2), np.ones(2)))
    with pytest.raises(TypeError, match="lower"):
        IKQuery.of(T, lower=np.zeros(2))
