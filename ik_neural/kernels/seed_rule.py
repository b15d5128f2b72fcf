"""The one rule that gives a seed up (``exhausted``), in plain Python for the solver's bookkeeping
(patience.py: Python scalars, or numpy arrays of rows) and compiled (``exhausted_compiled``) for the compiled
seed loop (``dls.refine_seed``). Here, among the kernels, because their cache key hashes this folder: a
changed rule recompiles the loop."""

from __future__ import annotations

from numba import njit


def exhausted(age, error, error_window_ago, max_iterations):
    """The one rule: a seed is given up after ``max_iterations`` steps, or when its error did not halve over
    the last ``window`` steps. ``age``: its steps so far; ``error``: its latest error; ``error_window_ago``:
    its error ``window`` steps before (inf before that many). Python scalars, or numpy arrays elementwise."""
    return (age >= max_iterations) | (error > 0.5 * error_window_ago)


exhausted_compiled = njit(cache=True, nogil=True, inline="always")(exhausted)
