"""TRAC-IK, the reference solver of ``ik_bench ik``, through the ``pytracik`` binding (optional dependency).

``pytracik`` (PyPI, 0.0.3; ``env/requirements-bench.txt``) is imported only when a ``TracIK`` is built, so
this module always imports; ``available()`` says whether the binding is there.

Poses are 4x4 homogeneous transforms of ``tip_link``'s frame in ``base_link``'s frame (metres, radians),
as ``KinematicChain.forward`` gives them; joint vectors are in the chain's order from base to tip (the
order of ``KinematicChain.joint_names``; pytracik builds the same KDL chain from the URDF).

pytracik 0.0.3 reads the limits of joints that carry a ``<safety_controller>`` (Franka Panda's) as zero
and then finds nothing, so the limits are always set explicitly from ``lower``/``upper``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ik_neural.bench.protocol import Answer, SolveOne
from ik_neural.chain import KinematicChain
from ik_neural.geometry import matrix_to_quaternion

# TRAC-IK's epsilon: its default (what MoveIt users get) and a tight one that competes at 1e-6. TRAC-IK
# bounds each component of the error twist by epsilon, so its Euclidean error can reach sqrt(3)·epsilon.
TRACIK_EPSILONS: tuple[float, ...] = (1e-5, 2.5e-7)


def available() -> bool:
    """Whether the ``pytracik`` binding can be imported."""
    return importlib.util.find_spec("pytracik") is not None


class TracIK:
    """TRAC-IK on the chain ``base_link`` → ``tip_link`` of the URDF at ``urdf_path``.

    ``lower``/``upper``: joint limits (rad or m), one per movable joint in chain order; they replace the
    URDF's. ``timeout_s``: TRAC-IK's time budget per solve, in seconds. ``epsilon``: its convergence
    threshold, compared with each component of the pose error twist (m for translation, rad for rotation),
    so a converged answer's Euclidean position error can reach sqrt(3)·epsilon. It runs TRAC-IK's Speed
    mode (the first solution found), what MoveIt users get by default.

    Raises ImportError without pytracik, ValueError if the chain is not found (pytracik only prints
    then) or the limits do not match its joint count.
    """

    def __init__(
        self,
        urdf_path: str | Path,
        base_link: str,
        tip_link: str,
        lower: np.ndarray,
        upper: np.ndarray,
        timeout_s: float,
        epsilon: float,
    ) -> None:
        import pytracik  # optional dependency: imported here so that the module always imports

        self._pytracik: Any = pytracik
        urdf_xml = Path(urdf_path).read_text(encoding="utf-8")
        self._solver = pytracik.TRAC_IK(
            base_link, tip_link, urdf_xml, float(timeout_s), float(epsilon), pytracik.SolveType.Speed
        )
        self.dof: int = int(pytracik.get_num_joints(self._solver))
        self.lower = np.array(lower, dtype=np.float64).reshape(-1)
        self.upper = np.array(upper, dtype=np.float64).reshape(-1)
        if self.dof == 0:
            raise ValueError(f"pytracik found no chain {base_link!r} -> {tip_link!r} in {urdf_path}")
        if self.lower.shape != (self.dof,) or self.upper.shape != (self.dof,):
            raise ValueError(
                f"limits have shapes {self.lower.shape}, {self.upper.shape}; the chain has {self.dof} joints"
            )
        pytracik.set_joint_limits(self._solver, self.lower.tolist(), self.upper.tolist())

    def solve(self, T_base_tip: np.ndarray, seed: np.ndarray) -> Optional[np.ndarray]:
        """Joint values (dof,) in chain order that reach the pose ``T_base_tip`` (4x4), or None if none found.

        ``seed`` (dof,): where the search starts. The answer is TRAC-IK's, unchecked: verify it with FK.
        """
        T = np.asarray(T_base_tip, dtype=np.float64)
        q0 = np.ascontiguousarray(seed, dtype=np.float64)
        if T.shape != (4, 4) or q0.shape != (self.dof,):
            raise ValueError(f"expected a (4, 4) pose and a ({self.dof},) seed; got {T.shape} and {q0.shape}")
        x, y, z, w = matrix_to_quaternion(T[:3, :3])
        # pytracik.ik(solver, seed, px, py, pz, qx, qy, qz, qw) -> [status, q...]; status < 0: nothing found
        result = self._pytracik.ik(self._solver, q0, T[0, 3], T[1, 3], T[2, 3], x, y, z, w)
        if result[0] < 0:
            return None
        return np.array(result[1:], dtype=np.float64)


def tracik_solve_one(solver: TracIK) -> SolveOne:
    """``TracIK.solve`` as the benchmark calls it (None: it found nothing)."""

    def solve(T: np.ndarray, seed: np.ndarray) -> Answer:
        q = solver.solve(T, seed)
        return Answer(q, q is not None)

    return solve


def tracik_solvers(chain: KinematicChain, urdf_path: Path, timeout_s: float) -> tuple[list[tuple[str, SolveOne]], str]:
    """TRAC-IK's solvers for ``chain`` of the URDF at ``urdf_path``, one per epsilon of ``TRACIK_EPSILONS``
    with the chain's limits and ``timeout_s`` per solve, and a header line saying how they run (or why not)."""
    if not available():
        return [], "TRAC-IK: not run (the pytracik binding is not importable)"
    solvers = []
    try:
        for epsilon in TRACIK_EPSILONS:
            solver = TracIK(urdf_path, chain.base_link, chain.tip_link, chain.lower, chain.upper, timeout_s, epsilon)
            solvers.append((f"TRAC-IK eps={epsilon:g}", tracik_solve_one(solver)))
    except (ImportError, ValueError, RuntimeError) as exc:
        return [], f"TRAC-IK: not run ({exc})"
    return solvers, (
        "TRAC-IK: pytracik, solve type Speed, same targets, seed and budget, limits from the chain; "
        "eps bounds each error twist component (Euclidean error up to sqrt(3)*eps)"
    )
