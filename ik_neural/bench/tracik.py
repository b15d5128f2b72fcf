"""TRAC-IK, the reference solver of ``ik_bench ik``, through the ``pytracik`` binding (optional dependency).

``pytracik`` (PyPI, 0.0.3; ``env/requirements-bench.txt``) is imported only when a ``TracIK`` is built, so
this module always imports; ``available()`` says whether the binding is there.

Poses are 4x4 homogeneous transforms of ``tip_link``'s frame in ``base_link``'s frame (metres, radians),
as ``KinematicChain.forward`` gives them; joint vectors are in the chain's order from base to tip (the
order of ``KinematicChain.joint_names``; pytracik builds the same KDL chain from the URDF).

pytracik 0.0.3 reads the limits of joints that carry a ``<safety_controller>`` (Franka Panda's) as zero
and then finds nothing, so the limits are always set explicitly from ``lower``/``upper``.

pytracik 0.0.3 prints the messages of TRAC-IK and of its URDF parsers on stdout (C++ ``std::cout``), where
they would land among ``ik_bench``'s tables, and prints a message's arguments after its text instead of in
it: "The root link %s has an inertia ...URDF.base_footprint". A ``TracIK`` is built with those messages
caught and said on stderr, filled in (``_tracik_messages_to_stderr``).
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np

from ik_neural.bench.protocol import Answer, SolveOne
from ik_neural.chain import KinematicChain
from ik_neural.geometry import matrix_to_quaternion

# TRAC-IK's epsilon: its default (what MoveIt users get) and a tight one that competes at 1e-6. TRAC-IK
# bounds each component of the error twist by epsilon, so its Euclidean error can reach sqrt(3)·epsilon.
TRACIK_EPSILONS: tuple[float, ...] = (1e-5, 2.5e-7)

# The messages pytracik 0.0.3 can print while a solver is built that take an argument (one each; in its
# binary): printed as this text, then the argument.
_MESSAGES_WITH_AN_ARGUMENT = (
    "The root link %s has an inertia specified in the URDF, but KDL does not support a root link with an inertia.  "
    "As a workaround, you can add an extra dummy link to your URDF.",
    "Converting unknown joint type of joint '%s' into a fixed joint",
)
_said: set[str] = set()  # each message once: ik_bench builds a solver per epsilon, from the same URDF


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
        with _tracik_messages_to_stderr():
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


@contextlib.contextmanager
def _tracik_messages_to_stderr() -> Iterator[None]:
    """Within: what C++ code writes to stdout (file descriptor 1) is caught, then said on stderr, a line at
    a time, as ``pytracik: <message>`` with its argument in place (``_MESSAGES_WITH_AN_ARGUMENT``), each
    message once a process."""
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 1)
        try:
            yield
        finally:
            ctypes.CDLL(None).fflush(None)  # std::cout goes through C's stdout, which may still hold the text
            os.dup2(saved, 1)
            os.close(saved)
            caught.seek(0)
            for line in caught.read().decode(errors="replace").splitlines():
                if line not in _said:
                    _said.add(line)
                    print(f"pytracik: {_filled_in(line)}", file=sys.stderr, flush=True)


def _filled_in(line: str) -> str:
    """A message as pytracik prints it (its text, then its argument) with the argument in its place."""
    for text in _MESSAGES_WITH_AN_ARGUMENT:
        if line.startswith(text) and len(line) > len(text):
            return text.replace("%s", line[len(text) :], 1)
    return line


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
