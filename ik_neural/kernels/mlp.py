"""The IK network's forward pass for one pose, compiled (float32), and its joint decoding for rows.

A one-row forward through TorchScript costs ~100 µs of dispatch, and through numpy ~1 µs per array
operation; this kernel does the arithmetic alone. The weights are one contiguous float32 buffer
(``pack_layers``): layer by layer W (in, out) row-major, then b (out,), so the inner loop (one input
times a row of W, added to the outputs) runs over contiguous memory and vectorises without reordering
any sum.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


def pack_layers(layers: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """(params float32 (P,), sizes int64 (L + 1,)) of affine layers [(W (in, out), b (out,)), ...]:
    sizes are n_in, then each layer's n_out."""
    params = np.concatenate([np.concatenate([W.ravel(), b]) for W, b in layers]).astype(np.float32)
    sizes = np.array([layers[0][0].shape[0]] + [W.shape[1] for W, _ in layers], dtype=np.int64)
    return params, sizes


@njit(cache=True, nogil=True)
def features(T, inverse_reach, n_inputs):
    """Network inputs (R, n_inputs) float32 of poses T (R, 4, 4), as ``PoseToJoints.features``; the count
    names the encoding (``network.INPUT_ENCODINGS``): 3 position / reach (dimensionless); 9 that, then
    columns x and y of R; 15 position / reach, columns x, y, z of R, then Rᵀ p / reach."""
    rows = T.shape[0]
    x = np.empty((rows, n_inputs), dtype=np.float32)
    for r in range(rows):
        for i in range(3):
            x[r, i] = T[r, i, 3] * inverse_reach
            if n_inputs >= 9:
                x[r, 3 + i] = T[r, i, 0]
                x[r, 6 + i] = T[r, i, 1]
            if n_inputs == 15:
                x[r, 9 + i] = T[r, i, 2]
                x[r, 12 + i] = (
                    T[r, 0, i] * T[r, 0, 3] + T[r, 1, i] * T[r, 1, 3] + T[r, 2, i] * T[r, 2, 3]
                ) * inverse_reach
    return x


@njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def mlp_forward(x, params, sizes):
    """Raw outputs (sizes[-1],) float32 of the MLP at input x (sizes[0],) float32: affine layers with SiLU
    between them (none after the last).

    SiLU is x · sigmoid(x) with exp of -|x| only (no overflow for large |x|). Each output sums its terms
    in input order; ``fastmath`` lets the loop over outputs vectorise (and fuse multiply-adds), ~5x
    faster for Panda's 4x512 than the same loop without it (which LLVM leaves scalar).
    """
    n_layers = sizes.shape[0] - 1
    a = np.empty(sizes.max(), dtype=np.float32)
    z = np.empty(sizes.max(), dtype=np.float32)
    one = np.float32(1.0)
    a[: sizes[0]] = x
    offset = 0
    for layer in range(n_layers):
        n_in, n_out = sizes[layer], sizes[layer + 1]
        W = params[offset : offset + n_in * n_out].reshape((n_in, n_out))
        b = params[offset + n_in * n_out : offset + n_in * n_out + n_out]
        for j in range(n_out):
            z[j] = b[j]
        for i in range(n_in):
            ai = a[i]
            W_i = W[i]
            for j in range(n_out):
                z[j] += ai * W_i[j]
        offset += n_in * n_out + n_out
        if layer < n_layers - 1:
            for j in range(n_out):
                zj = z[j]
                e = np.float32(math.exp(-abs(zj)))
                a[j] = zj / (one + e) if zj >= 0 else zj * e / (one + e)
        else:
            for j in range(n_out):
                a[j] = z[j]
    return a[: sizes[n_layers]].copy()


@njit(cache=True, nogil=True)
def mlp_forward_rows(X, params, sizes):
    """``mlp_forward`` of each row of X (R, sizes[0]) float32: raw outputs (R, sizes[-1]) float32."""
    out = np.empty((X.shape[0], sizes[sizes.shape[0] - 1]), dtype=np.float32)
    for r in range(X.shape[0]):
        out[r] = mlp_forward(X[r], params, sizes)
    return out


@njit(cache=True, nogil=True)
def decode_rows(raw, n_linear, centre, half_range, periodic_lower, order):
    """Joint positions (R, dof) float64 of raw outputs (R, n_linear + 2 n_periodic): bounded joints
    centre + half_range · clamp(o, -1, 1), periodic ones atan2(sin, cos) wrapped into
    [periodic_lower, periodic_lower + 2π), then put in chain order (``order``), as ``PoseToJoints.decode``."""
    rows = raw.shape[0]
    n_periodic = periodic_lower.shape[0]
    dof = n_linear + n_periodic
    q = np.empty((rows, dof))
    grouped = np.empty(dof)
    for r in range(rows):
        for k in range(n_linear):
            grouped[k] = centre[k] + half_range[k] * min(max(np.float64(raw[r, k]), -1.0), 1.0)
        for k in range(n_periodic):
            angle = math.atan2(np.float64(raw[r, n_linear + 2 * k]), np.float64(raw[r, n_linear + 2 * k + 1]))
            grouped[n_linear + k] = periodic_lower[k] + (angle - periodic_lower[k]) % (2 * math.pi)
        for k in range(dof):
            q[r, k] = grouped[order[k]]
    return q


@njit(cache=True, nogil=True)
def guesses_of_pose(
    T, inverse_reach, n_inputs, params, sizes, heads, n_linear, centre, half_range, periodic_lower, order
):
    """The K = ``heads`` guesses (K, dof) float64 for one pose T (4, 4): ``features``, ``mlp_forward`` and
    ``decode_rows`` in one call (a call from Python costs about a µs; the one-pose guess made three)."""
    x = features(T.reshape((1, 4, 4)), inverse_reach, n_inputs)
    raw = mlp_forward(x[0], params, sizes)
    return decode_rows(raw.reshape((heads, -1)), n_linear, centre, half_range, periodic_lower, order)
