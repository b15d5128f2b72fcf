"""JointBounds, the one home of joint-limit semantics: narrow, project, contains, sample, distance."""

import math

import numpy as np
import pytest

from ik_neural.joint_bounds import JointBounds, JointBoundsError

NAMES = ("shoulder", "wrist_roll", "slide")


@pytest.fixture
def bounds() -> JointBounds:
    # A revolute joint, a continuous one (limits ignored: a full turn), a prismatic one (m).
    return JointBounds.of_limits(NAMES, [-2.0, -10.0, 0.0], [2.0, 10.0, 0.3], [False, True, False])


def test_limits_and_full_turns(bounds):
    assert bounds.lower.tolist() == [-2.0, -math.pi, 0.0] and bounds.upper.tolist() == [2.0, math.pi, 0.3]
    assert bounds.bounded.tolist() == [True, False, True]
    with pytest.raises(ValueError):
        bounds.lower[0] = 0.0  # read-only: numba compiles per array type, writability included


def test_narrow_intersects_bounded_joints_and_sets_a_continuous_window(bounds):
    narrowed = bounds.narrow({"shoulder": (-5.0, 1.0), "wrist_roll": (3.0, 3.5), "slide": (0.1, 0.2)})
    assert narrowed.lower.tolist() == [-2.0, 3.0, 0.1] and narrowed.upper.tolist() == [1.0, 3.5, 0.2]
    assert narrowed.bounded.tolist() == [True, True, True]
    # A second window on the continuous joint, a turn away, intersects on the nearest turn.
    again = narrowed.narrow({"wrist_roll": (3.2 - 2 * math.pi, 4.0 - 2 * math.pi)})
    assert again.lower[1] == pytest.approx(3.2) and again.upper[1] == pytest.approx(3.5)
    # A window of a turn or more leaves a continuous joint a full turn.
    assert not bounds.narrow({"wrist_roll": (-4.0, 4.0)}).bounded[1]
    assert bounds.narrow({}).lower.tolist() == bounds.lower.tolist()


@pytest.mark.parametrize(
    "windows, message",
    [
        ({"elbow": (0.0, 1.0)}, r"joint 'elbow' is not one of the joints"),
        ({"shoulder": (1.0, 0.5)}, r"joint 'shoulder': window \[1, 0.5\] is not finite and ordered"),
        ({"wrist_roll": (-1e308 - 1e308, 0.0)}, r"joint 'wrist_roll': window \[-inf, 0\] is not finite"),
        ({"shoulder": (math.nan, 0.0)}, "not finite"),
        ({"shoulder": (2.5, 3.0)}, r"joint 'shoulder': window \[2.5, 3\] leaves no room within its bounds \[-2, 2\]"),
    ],
    ids=["unknown", "reversed", "overflow", "nan", "outside"],
)
def test_bad_windows_name_the_joint(bounds, windows, message):
    with pytest.raises(JointBoundsError, match=message) as error:
        bounds.narrow(windows)
    assert error.value.joint == next(iter(windows))


def test_a_window_near_the_largest_float_on_a_narrowed_continuous_joint_is_refused_not_overflowed(bounds):
    # Found by the request fuzz: the centre of [9e307, 9e307] was computed as a sum, inf, then round(inf).
    narrowed = bounds.narrow({"wrist_roll": (3.0, 3.5)})
    with pytest.raises(JointBoundsError, match="joint 'wrist_roll': .* leaves no room"):
        narrowed.narrow({"wrist_roll": (8.98846567431158e307, 8.98846567431158e307)})


def test_an_unknown_name_is_echoed_bounded(bounds):
    with pytest.raises(JointBoundsError) as error:
        bounds.narrow({"x" * 100_000: (0.0, 1.0)})
    assert len(str(error.value)) < 300 and "100002 characters" in str(error.value)


def test_project_contains_and_wrap(bounds):
    narrowed = bounds.narrow({"wrist_roll": (3.0, 3.5)})
    q = np.array([[3.0, 3.3 - 4 * math.pi, 0.5], [-1.0, 7.0, 0.1]])
    projected = narrowed.project(q)
    assert projected[0].tolist() == pytest.approx([2.0, 3.3, 0.3])
    assert projected[1, 1] == pytest.approx(3.5)  # 7 - 2 pi = 0.717 is outside 3..3.5, clamped up
    assert narrowed.contains(projected).all()
    assert narrowed.contains(np.array([0.0, 3.3 + 2 * math.pi, 0.1]))  # the same angle a turn up
    assert not narrowed.contains(np.array([0.0, 3.6, 0.1]))
    assert not narrowed.contains(np.array([0.0, 3.3, 0.3 + 1e-9]))
    assert narrowed.contains(np.array([0.0, 3.3, 0.3 + 1e-9]), tolerance=1e-8)
    assert not bounds.contains(np.array([0.0, np.nan, 0.1]))
    assert bounds.contains(np.array([0.0, 100.0, 0.1]))  # a full-turn joint takes any angle
    np.testing.assert_allclose(bounds.wrap(np.array([0.0, 3 * math.pi, 0.1])), [0.0, -math.pi, 0.1])


def test_sample_is_uniform_within_the_bounds_and_matches_numpy_uniform(bounds):
    q = bounds.sample(np.random.default_rng(3), 20_000)
    assert bounds.contains(q).all()
    assert q.mean(0) == pytest.approx([0.0, 0.0, 0.15], abs=0.03)
    expected = np.random.default_rng(3).uniform(bounds.lower, bounds.upper, size=(20_000, 3))
    np.testing.assert_array_equal(q, expected)


def test_distance_takes_continuous_joints_the_short_way(bounds):
    d = bounds.distance(np.array([1.0, math.pi - 0.1, 0.0]), np.array([0.0, -math.pi + 0.1, 0.0]))
    assert d == pytest.approx(math.hypot(1.0, 0.2))


def test_differences_take_continuous_joints_the_short_way(bounds):
    q, q_ref = np.array([1.0, math.pi - 0.1, 0.05]), np.array([0.5, -math.pi + 0.1, 0.0])
    np.testing.assert_allclose(bounds.difference(q, q_ref), [0.5, -0.2, 0.05])
    assert bounds.largest_difference(q, q_ref) == pytest.approx(0.5)
    assert bounds.largest_difference(np.stack([q, q_ref]), q_ref).tolist() == pytest.approx([0.5, 0.0])
