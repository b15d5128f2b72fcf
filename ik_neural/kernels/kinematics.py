"""Compiled FK and geometric Jacobian of one configuration of a serial chain (float64, base frame)."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit


class ChainArrays(NamedTuple):
    """A chain's constants for the kernels (n joints). Joint i's local transform is
    [R0 + sin q · R0K + (1 - cos q) · R0K², t0 + q · slide] (Rodrigues; K the axis' skew matrix).

    Callers pass it as a plain tuple (``tuple(ChainArrays(...))``) and the kernels name its fields
    inside: numba types a named tuple in Python at every call (about 0.5 µs each, a tenth of a DLS
    step), a plain tuple in C."""

    R0: np.ndarray  # (n, 3, 3) fixed rotation from the previous joint's frame
    R0K: np.ndarray  # (n, 3, 3) R0 · K (zero for prismatic joints)
    R0K2: np.ndarray  # (n, 3, 3) R0 · K²
    t0: np.ndarray  # (n, 3) fixed translation from the previous joint's frame, m
    slide: np.ndarray  # (n, 3) R0 · axis for prismatic joints, else zero
    axis: np.ndarray  # (n, 3) unit axis in the joint's own frame
    prismatic: np.ndarray  # (n,) bool
    T_last_tip: np.ndarray  # (4, 4) last joint's frame to the tip
    reach_m: float  # upper bound of the first joint's distance to the tip: scales position errors


@njit(cache=True, nogil=True)
def fk_jacobian(q, chain_fields):
    """T_base_tip (4, 4) and the geometric Jacobian (6, n), rows [linear; angular], at q (n,);
    ``chain_fields``: the chain's ``ChainArrays`` as a plain tuple."""
    return chain_fk_jacobian(q, ChainArrays(*chain_fields))


@njit(cache=True, nogil=True, inline="always")  # inlined into both loops: one definition, no call per joint
def _advance(R, t, scratch, q_i, i, chain):
    """Move the frame (R (3, 3), t (3,)), in place, to joint i's frame after its motion q_i. ``scratch``
    (2, 3, 3) holds the joint's local rotation and the product: no allocation per joint (each one costs
    about as much as the arithmetic of a joint)."""
    s, one_minus_c = math.sin(q_i), 1.0 - math.cos(q_i)
    local, product = scratch[0], scratch[1]
    for r in range(3):
        for c in range(3):
            local[r, c] = chain.R0[i, r, c] + s * chain.R0K[i, r, c] + one_minus_c * chain.R0K2[i, r, c]
    v0 = chain.t0[i, 0] + q_i * chain.slide[i, 0]
    v1 = chain.t0[i, 1] + q_i * chain.slide[i, 1]
    v2 = chain.t0[i, 2] + q_i * chain.slide[i, 2]
    for r in range(3):
        t[r] += R[r, 0] * v0 + R[r, 1] * v1 + R[r, 2] * v2
        for c in range(3):
            product[r, c] = R[r, 0] * local[0, c] + R[r, 1] * local[1, c] + R[r, 2] * local[2, c]
    R[:, :] = product


@njit(cache=True, nogil=True, inline="always")
def _tip(R, t, chain):
    """T_base_tip (4, 4) from the last joint's frame (R, t)."""
    T = np.zeros((4, 4))
    T[3, 3] = 1.0
    L = chain.T_last_tip
    for r in range(3):
        T[r, 3] = t[r] + R[r, 0] * L[0, 3] + R[r, 1] * L[1, 3] + R[r, 2] * L[2, 3]
        for c in range(3):
            T[r, c] = R[r, 0] * L[0, c] + R[r, 1] * L[1, c] + R[r, 2] * L[2, c]
    return T


@njit(cache=True, nogil=True)
def joint_frames(q, chain_fields):
    """Every joint's frame after its motion (n, 4, 4) and T_base_tip (4, 4), in the base frame, at q (n,):
    what ``KinematicChain.frames`` gives, for one pose (the collision checker places its bodies by them)."""
    chain = ChainArrays(*chain_fields)
    n = q.shape[0]
    frames = np.zeros((n, 4, 4))
    R = np.eye(3)
    t = np.zeros(3)
    scratch = np.empty((2, 3, 3))
    for i in range(n):
        _advance(R, t, scratch, q[i], i, chain)
        frames[i, :3, :3] = R
        frames[i, :3, 3] = t
        frames[i, 3, 3] = 1.0
    return frames, _tip(R, t, chain)


@njit(cache=True, nogil=True)
def place_bodies(q, chain_fields, frame, T_frame_solid, center, radius, I, J):
    """The collision checker's placement at q (n,): the base's frame then each joint's, F (n + 1, 4, 4);
    each body's pose T_base_solid (B, 4, 4), body b rigid in frame ``frame[b]`` (0 the base) at
    ``T_frame_solid[b]``; its bounding sphere's centre (B, 3) (``center[b]`` in its own frame); and which
    of the body pairs (I[k], J[k]) have overlapping spheres (radii ``radius``), as indices k (K,)."""
    frames = joint_frames(q, chain_fields)[0]
    n, B = q.shape[0], frame.shape[0]
    F = np.zeros((n + 1, 4, 4))
    for r in range(4):
        F[0, r, r] = 1.0
    F[1:] = frames
    T = np.empty((B, 4, 4))
    centers = np.empty((B, 3))
    for b in range(B):
        A, L = F[frame[b]], T_frame_solid[b]
        for r in range(4):
            for c in range(4):
                T[b, r, c] = A[r, 0] * L[0, c] + A[r, 1] * L[1, c] + A[r, 2] * L[2, c] + A[r, 3] * L[3, c]
        for r in range(3):
            centers[b, r] = (
                T[b, r, 0] * center[b, 0] + T[b, r, 1] * center[b, 1] + T[b, r, 2] * center[b, 2] + T[b, r, 3]
            )
    near = np.empty(I.shape[0], dtype=np.int64)
    count = 0
    for k in range(I.shape[0]):
        i, j = I[k], J[k]
        d0, d1, d2 = centers[i, 0] - centers[j, 0], centers[i, 1] - centers[j, 1], centers[i, 2] - centers[j, 2]
        reach = radius[i] + radius[j]
        if d0 * d0 + d1 * d1 + d2 * d2 <= reach * reach:
            near[count] = k
            count += 1
    return F, T, centers, near[:count]


@njit(cache=True, nogil=True)
def chain_tip(q, chain):
    """T_base_tip (4, 4) at q (n,) for kernels holding the ``ChainArrays``: FK alone, a third of
    ``chain_fk_jacobian``'s cost (no joint axes kept, no Jacobian)."""
    R = np.eye(3)
    t = np.zeros(3)
    scratch = np.empty((2, 3, 3))
    for i in range(q.shape[0]):
        _advance(R, t, scratch, q[i], i, chain)
    return _tip(R, t, chain)


@njit(cache=True, nogil=True)
def chain_fk_jacobian(q, chain):
    """``fk_jacobian`` for kernels holding the ``ChainArrays`` themselves."""
    n = q.shape[0]
    R = np.eye(3)
    t = np.zeros(3)
    z = np.empty((n, 3))
    origin = np.empty((n, 3))
    scratch = np.empty((2, 3, 3))
    for i in range(n):
        _advance(R, t, scratch, q[i], i, chain)
        # The joint's axis and origin in the base frame (its own motion moves neither).
        for r in range(3):
            z[i, r] = R[r, 0] * chain.axis[i, 0] + R[r, 1] * chain.axis[i, 1] + R[r, 2] * chain.axis[i, 2]
            origin[i, r] = t[r]
    T = _tip(R, t, chain)
    J = np.zeros((6, n))
    for i in range(n):
        if chain.prismatic[i]:
            J[0, i], J[1, i], J[2, i] = z[i, 0], z[i, 1], z[i, 2]
        else:
            l0, l1, l2 = T[0, 3] - origin[i, 0], T[1, 3] - origin[i, 1], T[2, 3] - origin[i, 2]
            J[0, i] = z[i, 1] * l2 - z[i, 2] * l1
            J[1, i] = z[i, 2] * l0 - z[i, 0] * l2
            J[2, i] = z[i, 0] * l1 - z[i, 1] * l0
            J[3, i], J[4, i], J[5, i] = z[i, 0], z[i, 1], z[i, 2]
    return T, J
