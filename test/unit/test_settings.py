"""NodeSettings, the node's parameters in one place: every field documented, defaults valid, bad values named."""

import dataclasses
import math

import pytest

from ik_neural.query import Tolerance
from ik_neural.solver import SolverSettings
from ik_neural.ros.settings import (
    AVOID_COLLISIONS_POLICIES,
    NodeSettings,
    SettingsError,
    choices,
    defaults,
    description,
    markdown_table,
)


def test_every_parameter_has_a_default_and_a_meaning_and_the_defaults_pass_their_checks():
    settings = NodeSettings()
    for field in dataclasses.fields(NodeSettings):
        assert getattr(settings, field.name) == defaults()[field.name]
        assert description(field.name).endswith("."), field.name
        assert f"| `{field.name}` |" in markdown_table()
    assert settings.long_solves == settings.executor_threads - 1


def test_the_tolerance_parameters_are_the_solvers_tolerance():
    settings = NodeSettings(position_tolerance_m=1e-4, orientation_tolerance_rad=1e-3)
    assert settings.tolerance == Tolerance(1e-4, 1e-3)
    position_only = dataclasses.replace(settings, position_only_ik=True)
    assert position_only.tolerance == Tolerance.position_only(1e-4) and position_only.tolerance.is_position_only


def test_a_free_rotation_axis_frees_that_axis_of_the_tolerance_and_of_the_approximate_one():
    for axis, expected in (("x", (math.inf, 1e-3, 1e-3)), ("y", (1e-3, math.inf, 1e-3)), ("z", (1e-3, 1e-3, math.inf))):
        settings = NodeSettings(orientation_tolerance_rad=1e-3, free_rotation_axis=axis)
        assert settings.tolerance == Tolerance(1e-5, expected)
    assert NodeSettings(free_rotation_axis="z", position_only_ik=True).tolerance.is_position_only
    assert choices("free_rotation_axis") == ("", "x", "y", "z")


def test_approximate_answers_are_off_by_default_and_any_rotation_from_pi_on():
    assert NodeSettings().approximate is None
    settings = NodeSettings(approximate_position_tolerance_m=0.002, approximate_orientation_tolerance_rad=0.05)
    assert settings.approximate == Tolerance(0.002, 0.05)
    free_z = dataclasses.replace(settings, free_rotation_axis="z")
    assert free_z.approximate == Tolerance(0.002, (0.05, 0.05, math.inf))
    for anything in (math.pi, 4.0, math.inf):
        any_rotation = dataclasses.replace(settings, approximate_orientation_tolerance_rad=anything)
        assert any_rotation.approximate.is_position_only and not any_rotation.tolerance.is_position_only


@pytest.mark.parametrize(
    "values, name, expected",
    [
        ({"approximate_position_tolerance_m": 0.01}, "approximate_orientation_tolerance_rad", "must be > 0 when"),
        ({"approximate_orientation_tolerance_rad": 0.1}, "approximate_position_tolerance_m", "must be > 0 when"),
        (
            {"approximate_position_tolerance_m": 1e-6, "approximate_orientation_tolerance_rad": 0.1},
            "approximate_position_tolerance_m",
            "must be at least position_tolerance_m",
        ),
        (
            {"approximate_position_tolerance_m": 0.01, "approximate_orientation_tolerance_rad": 1e-6},
            "approximate_orientation_tolerance_rad",
            "must be at least orientation_tolerance_rad",
        ),
    ],
)
def test_approximate_tolerances_come_in_pairs_and_are_looser_than_the_exact_ones(values, name, expected):
    with pytest.raises(SettingsError, match=expected) as raised:
        NodeSettings(**values)
    assert raised.value.name == name


@pytest.mark.parametrize(
    "name, value",
    [
        ("free_rotation_axis", "w"),
        ("free_rotation_axis", "Z"),
        ("approximate_position_tolerance_m", -0.1),
        ("approximate_position_tolerance_m", math.inf),
        ("approximate_orientation_tolerance_rad", -1.0),
        ("approximate_orientation_tolerance_rad", math.nan),
        ("default_timeout_s", 0.0),
        ("default_timeout_s", math.nan),
        ("max_timeout_s", -1.0),
        ("max_timeout_s", math.inf),
        ("robot_description_timeout_s", -0.1),
        ("position_tolerance_m", 0.0),
        ("orientation_tolerance_rad", -1e-5),
        ("velocity_scale", 0.0),
        ("max_step_dt_s", math.inf),
        ("step_without_velocity_limit", -0.1),
        ("max_steps_per_command", 0),
        ("command_timeout_s", 0.0),
        ("status_log_period_s", math.nan),
        ("executor_threads", 0),
        ("max_request_items", 0),
        ("avoid_collisions_policy", "maybe"),
    ],
)
def test_a_bad_value_is_refused_naming_the_parameter(name, value):
    with pytest.raises(SettingsError, match=f"parameter {name} must be") as raised:
        NodeSettings(**{name: value})
    assert raised.value.name == name


def test_max_timeout_s_must_be_at_least_the_default():
    with pytest.raises(SettingsError, match=r"max_timeout_s \(0.5\) must be at least default_timeout_s \(1.0\)"):
        NodeSettings(default_timeout_s=1.0, max_timeout_s=0.5)
    assert NodeSettings(default_timeout_s=1.0, max_timeout_s=1.0).max_timeout_s == 1.0


def test_a_policy_takes_only_its_names_and_other_strings_take_any():
    assert choices("avoid_collisions_policy") == AVOID_COLLISIONS_POLICIES
    for policy in AVOID_COLLISIONS_POLICIES:
        assert NodeSettings(avoid_collisions_policy=policy).avoid_collisions_policy == policy
    assert choices("group_name") == () and NodeSettings(group_name="any arm").group_name == "any arm"


def test_the_cost_terms_reach_the_solver_and_are_checked():
    settings = NodeSettings(displacement_weight=0.25, centring_weight=0.5)
    assert (settings.solving.displacement_weight, settings.solving.centring_weight) == (0.25, 0.5)
    assert NodeSettings().solving == SolverSettings()
    with pytest.raises(SettingsError, match=r"parameter centring_weight must be a number from 0 to 1, got 1.5"):
        NodeSettings(centring_weight=1.5)
