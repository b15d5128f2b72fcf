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


@njit(cache=True, nogil=True, inline="always")  # inlined into every loop: one definition, no call per joint
def _advance(T, q_i, i, chain):
    """Move the frame T (4, 4), in place, to joint i's frame after its motion q_i. The joint's local
    rotation is held in scalars and each row of R is replaced once read: no allocation per joint (one
    costs about as much as a joint's arithmetic)."""
    s, one_minus_c = math.sin(q_i), 1.0 - math.cos(q_i)
    A, B, C = chain.R0[i], chain.R0K[i], chain.R0K2[i]
    l00, l01, l02 = (
        A[0, 0] + s * B[0, 0] + one_minus_c * C[0, 0],
        A[0, 1] + s * B[0, 1] + one_minus_c * C[0, 1],
        A[0, 2] + s * B[0, 2] + one_minus_c * C[0, 2],
    )
    l10, l11, l12 = (
        A[1, 0] + s * B[1, 0] + one_minus_c * C[1, 0],
        A[1, 1] + s * B[1, 1] + one_minus_c * C[1, 1],
        A[1, 2] + s * B[1, 2] + one_minus_c * C[1, 2],
    )
    l20, l21, l22 = (
        A[2, 0] + s * B[2, 0] + one_minus_c * C[2, 0],
        A[2, 1] + s * B[2, 1] + one_minus_c * C[2, 1],
        A[2, 2] + s * B[2, 2] + one_minus_c * C[2, 2],
    )
    v0 = chain.t0[i, 0] + q_i * chain.slide[i, 0]
    v1 = chain.t0[i, 1] + q_i * chain.slide[i, 1]
    v2 = chain.t0[i, 2] + q_i * chain.slide[i, 2]
    for r in range(3):
        a, b, c = T[r, 0], T[r, 1], T[r, 2]
        T[r, 3] += a * v0 + b * v1 + c * v2
        T[r, 0] = a * l00 + b * l10 + c * l20
        T[r, 1] = a * l01 + b * l11 + c * l21
        T[r, 2] = a * l02 + b * l12 + c * l22


@njit(cache=True, nogil=True, inline="always")
def _to_tip(T, chain):
    """Move the last joint's frame T (4, 4), in place, to the tip (T_last_tip)."""
    L = chain.T_last_tip
    for r in range(3):
        a, b, c = T[r, 0], T[r, 1], T[r, 2]
        T[r, 3] = T[r, 3] + a * L[0, 3] + b * L[1, 3] + c * L[2, 3]
        for k in range(3):
            T[r, k] = a * L[0, k] + b * L[1, k] + c * L[2, k]


@njit(cache=True, nogil=True)
def joint_frames(q, chain_fields):
    """Every joint's frame after its motion (n, 4, 4) and T_base_tip (4, 4), in the base frame, at q (n,):
    what ``KinematicChain.frames`` gives, for one pose (the collision checker places its bodies by them)."""
    chain = ChainArrays(*chain_fields)
    n = q.shape[0]
    frames = np.empty((n, 4, 4))
    T = np.eye(4)
    for i in range(n):
        _advance(T, q[i], i, chain)
        frames[i] = T
    _to_tip(T, chain)
    return frames, T


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
    """T_base_tip (4, 4) at q (n,) for kernels holding the ``ChainArrays``: FK alone, about 0.6x
    ``chain_fk_jacobian``'s cost."""
    T = np.eye(4)
    for i in range(q.shape[0]):
        _advance(T, q[i], i, chain)
    _to_tip(T, chain)
    return T


@njit(cache=True, nogil=True)
def chain_fk_jacobian(q, chain):
    """``fk_jacobian`` for kernels holding the ``ChainArrays`` themselves."""
    n = q.shape[0]
    T = np.eye(4)
    J = np.empty((6, n))
    for i in range(n):
        _advance(T, q[i], i, chain)
        # The joint's axis (rows 3-5) and origin (rows 0-2, until the tip is known) in the base frame.
        for r in range(3):
            J[3 + r, i] = T[r, 0] * chain.axis[i, 0] + T[r, 1] * chain.axis[i, 1] + T[r, 2] * chain.axis[i, 2]
            J[r, i] = T[r, 3]
    _to_tip(T, chain)
    for i in range(n):
        z0, z1, z2 = J[3, i], J[4, i], J[5, i]
        if chain.prismatic[i]:
            J[0, i], J[1, i], J[2, i] = z0, z1, z2
            J[3, i] = J[4, i] = J[5, i] = 0.0
        else:
            l0, l1, l2 = T[0, 3] - J[0, i], T[1, 3] - J[1, i], T[2, 3] - J[2, i]
            J[0, i] = z1 * l2 - z2 * l1
            J[1, i] = z2 * l0 - z0 * l2
            J[2, i] = z0 * l1 - z1 * l0
    return T, J
