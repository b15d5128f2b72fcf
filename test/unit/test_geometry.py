"""The rotation math: ik_neural.geometry (numpy) against Pinocchio, and its compiled twin against it."""

import math

import numpy as np
import pinocchio
import pytest

from ik_neural import geometry
from ik_neural.kernels import geometry as kernels

import reference


def random_rotations(n: int, seed: int) -> np.ndarray:
    """n rotations (n, 3, 3) about uniformly random axes by angles uniform in [0, pi)."""
    rng = np.random.default_rng(seed)
    axes = rng.normal(size=(n, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    return np.stack([pinocchio.exp3(axis * angle) for axis, angle in zip(axes, rng.uniform(0, math.pi, n))])


def rotations_at_hard_angles() -> np.ndarray:
    """Rotations by 0, 1e-12 … 1e-4, and pi minus 1e-12 … 1e-3 about a fixed tilted axis."""
    axis = np.array([0.3, -0.5, 0.81])
    axis /= np.linalg.norm(axis)
    angles = [0.0, 1e-12, 1e-9, 1e-8, 1e-6, 1e-4, math.pi - 1e-3, math.pi - 1e-6, math.pi - 1e-9, math.pi]
    return np.stack([pinocchio.exp3(axis * a) for a in angles]), np.array(angles)


def test_log_map_matches_pinocchio_and_is_exact_at_small_angles_and_near_pi():
    R = np.concatenate([random_rotations(500, 1), rotations_at_hard_angles()[0]])
    omega, angle = geometry.log_map(R)
    expected = np.stack([pinocchio.log3(r) for r in R])
    near_pi = angle > math.pi - 1e-6
    # At pi, omega and -omega are the same rotation.
    sign = np.where(near_pi & ((omega * expected).sum(-1) < 0), -1.0, 1.0)
    np.testing.assert_allclose(omega * sign[:, None], expected, atol=1e-9)
    _, angles = rotations_at_hard_angles()
    np.testing.assert_allclose(geometry.log_map(rotations_at_hard_angles()[0])[1], angles, rtol=1e-6, atol=1e-15)
    # The arccos of the trace reads 0 at 1e-8 and 1.00004e-6 at 1e-6; the log map does not.
    assert geometry.log_map(rotations_at_hard_angles()[0][3])[1] == pytest.approx(1e-8, rel=1e-6)


def test_compiled_pose_error_equals_the_numpy_one():
    rng = np.random.default_rng(2)
    R = np.concatenate([random_rotations(300, 3), rotations_at_hard_angles()[0]])
    T_target = np.stack([geometry.transform(r, rng.normal(size=3)) for r in R])
    T = np.stack([geometry.transform(r, rng.normal(size=3)) for r in random_rotations(len(R), 4)])
    T[-10:] = T_target[-10:] @ geometry.transform(p=[1e-3, 0.0, 0.0])  # small errors: rotation exact 0
    dp, omega, position, angle = geometry.pose_errors(T_target, T)
    for k in range(len(R)):
        dp_k, omega_k, position_k, angle_k = kernels.pose_error(T_target[k], T[k])
        np.testing.assert_allclose(dp_k, dp[k], atol=1e-15)
        np.testing.assert_allclose(omega_k, omega[k], atol=1e-12)
        assert position_k == pytest.approx(position[k], abs=1e-15)
        assert angle_k == pytest.approx(angle[k], abs=1e-12)
    # And both against the independent reference.
    ref_position, ref_angle = reference.pose_errors(T_target, T)
    np.testing.assert_allclose(position, ref_position, atol=1e-15)
    np.testing.assert_allclose(angle, ref_angle, atol=1e-12)


def test_quaternions_and_rpy_round_trip_and_match_pinocchio():
    for R in random_rotations(200, 5):
        x, y, z, w = geometry.matrix_to_quaternion(R)
        coefficients = pinocchio.Quaternion(R).coeffs()  # (x, y, z, w)
        sign = 1.0 if np.dot([x, y, z, w], coefficients) >= 0 else -1.0
        np.testing.assert_allclose(sign * np.array([x, y, z, w]), coefficients, atol=1e-12)
        np.testing.assert_allclose(geometry.quaternion_to_matrix(x, y, z, w), R, atol=1e-12)
        rpy = geometry.matrix_to_rpy(R)
        np.testing.assert_allclose(geometry.rpy_to_matrix(rpy), R, atol=1e-12)
        np.testing.assert_allclose(geometry.rpy_to_matrix(rpy), pinocchio.rpy.rpyToMatrix(*rpy), atol=1e-12)


def test_rigidity_check_measures_what_it_says():
    R = random_rotations(3, 6)
    T = np.stack([geometry.transform(r, [0.1, 0.2, 0.3]) for r in R])
    T[1, :3, :3] *= 1.01  # scaled
    T[2, 3, 2] = 0.5  # bottom row
    T = np.concatenate([T, np.full((1, 4, 4), np.nan)])
    finite, orthonormality, det, bottom = kernels.rigidity_errors(T)
    assert finite.tolist() == [True, True, True, False]
    assert orthonormality[0] < 1e-12 and orthonormality[1] == pytest.approx(1.01**2 - 1, rel=1e-9)
    assert det[0] == pytest.approx(1.0) and det[1] == pytest.approx(1.01**3)
    assert bottom.tolist()[:3] == [0.0, 0.0, 0.5]
    # The one-call verdict the solver asks first agrees pose by pose.
    assert [bool(kernels.all_rigid(T[i : i + 1], 1e-6)) for i in range(4)] == [True, False, False, False]
    assert kernels.all_rigid(T[:1].repeat(5, axis=0), 1e-6) and not kernels.all_rigid(T, 1e-6)
