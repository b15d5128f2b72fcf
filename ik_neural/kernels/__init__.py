"""Compiled (numba) kernels, float64 but for ``mlp``, for the per-iteration hot path: one pose, or rows of poses.

For one pose, vectorised numpy spends its time in per-call overhead (about 1 µs for each of ~100 small
array operations a step); compiled loops do the same arithmetic in a few µs. numba's linear algebra
needs scipy, so the 3x3 products and the Cholesky solve are written out. Everything here works on plain
arrays and named tuples of them: ``KinematicChain`` and ``IKSolver`` own the API.

- ``geometry``: the compiled twin of ``ik_neural.geometry`` (pose error by the log map), rigidity check;
- ``kinematics``: a chain's FK and geometric Jacobian (``ChainArrays``), the collision checker's body placement;
- ``dls``: one damped-least-squares step and rows of steps (``StepSettings``);
- ``tracking``: a goal stream's command (the step window, the pull along the self-motion, steps within it);
- ``mlp`` (float32): the IK network's forward pass for one pose, its input features and joint decoding.

Compiled code is cached per user, keyed by these sources, and seeded from an install's prebuilt copy (``cache``).
"""

from ik_neural.kernels.cache import kernel_cache

# Each @njit(cache=True) picks its cache folder when its module is imported: all of them here, at once.
with kernel_cache():
    from ik_neural.kernels import dls, geometry, kinematics, mlp, tracking  # noqa: F401
