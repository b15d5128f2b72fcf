"""Benchmark (prints a table; not a test): this checkout's one-pose solver against another revision's, in one
process, interleaved target by target, so that a refactor can show it costs no speed and changes no answer.

    source "$(bash env/activate_checkout.sh)" && python test/benchmarks/solver_revisions.py --revision b27e6f2

The revision's ``ik_neural/`` and ``models/`` are taken with ``git archive`` into the per-user cache
(``~/.cache/ik_neural/revisions/<commit>/``, kept: its numba kernels compile in the first run only) and its
package renamed ``ik_neural_<commit>`` (its import lines rewritten), so both load side by side. Per robot: ``--targets`` reachable targets (``sampling``), the
mid-limits seed, a 5 ms budget, 1e-6 m and 1e-6 rad; hybrid (the shipped network) and numerical-only, each
revision warmed up, then ``bench.protocol.run_interleaved`` (a random order per target). Every
answer is judged by FK; the table gives the mean and median time per solve (warm: solves back to back),
new/old ratios, success, and on how many targets the two revisions returned the same q.
"""

from __future__ import annotations

import argparse
import importlib
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from ik_neural.bench.protocol import Answer, run_interleaved, seed_configurations, successes
from ik_neural.kernels.cache import user_cache_dir
from ik_neural.robots import load_robot
from ik_neural.sampling import reachable_targets

CHECKOUT = Path(__file__).resolve().parents[2]


def import_revision(revision: str):
    """The package ``ik_neural`` as of ``revision``, imported as ``ik_neural_<commit>`` from a folder of the
    per-user cache kept between runs, so that its numba kernels compile once, not in every run (a process
    that has just compiled runs slower for a while)."""
    commit = subprocess.run(
        ["git", "-C", str(CHECKOUT), "rev-parse", "--short=12", revision], check=True, capture_output=True, text=True
    ).stdout.strip()
    name = f"ik_neural_{commit}"
    folder = user_cache_dir() / "revisions" / commit
    if not (folder / name).is_dir():
        _extract(commit, name, folder)
    sys.path.insert(0, str(folder))
    return importlib.import_module(name)


def _extract(commit: str, name: str, folder: Path) -> None:
    """``ik_neural/`` and ``models/`` of ``commit`` into ``folder``, the package renamed ``name``."""
    folder.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(CHECKOUT), "archive", commit, "ik_neural", "models"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    for path in (folder / "ik_neural").rglob("*.py"):
        source = re.sub(r"^(\s*)(from|import) ik_neural\b", rf"\1\2 {name}", path.read_text(), flags=re.M)
        if path.name == "__init__.py":  # the lazy exports' module names
            source = re.sub(r'"ik_neural\.(\w+)"', rf'"{name}.\1"', source)
        path.write_text(source)
    (folder / "ik_neural").rename(folder / name)


def solve_one(package, solver, timeout_s: float, tolerance_m_rad: float):
    """A revision's ``IKSolver.solve`` as ``run_interleaved`` calls it, with that revision's tolerance form:
    one ``Tolerance`` for every call where it has one (as ``ik_bench`` passes it), else the scalar keywords."""
    if hasattr(package, "Tolerance"):
        tolerance = {"tolerance": package.Tolerance(tolerance_m_rad, tolerance_m_rad)}
    else:
        tolerance = {"position_tolerance_m": tolerance_m_rad, "orientation_tolerance_rad": tolerance_m_rad}

    def solve(T: np.ndarray, seed: np.ndarray) -> Answer:
        result = solver.solve(T, seed=seed, timeout_s=timeout_s, **tolerance)
        return Answer(result.q, bool(result.success), int(result.iterations), int(result.restarts))

    return solve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--revision", required=True, help="the git revision to compare against (e.g. b27e6f2)")
    parser.add_argument("--robots", nargs="+", default=["panda", "ur5e"])
    parser.add_argument("--targets", type=int, default=2000)
    parser.add_argument("--timeout-ms", type=float, default=5.0)
    parser.add_argument("--tolerance", type=float, default=1e-6, help="position (m) and rotation (rad)")
    parser.add_argument("--random-seed", type=int, default=0)
    args = parser.parse_args()
    import ik_neural

    old = import_revision(args.revision)
    print(
        f"new: {CHECKOUT} (working tree)   old: {args.revision}   {args.targets} targets, mid-limits seed, "
        f"{args.timeout_ms:g} ms, {args.tolerance:g} m / rad; warm (solves back to back), interleaved"
    )
    print(
        "| robot | solver | old mean / median ms | new mean / median ms | new/old mean | success old / new | same q |"
    )
    print("|---|---|---|---|---|---|---|")
    for robot_name in args.robots:
        for kind in ("hybrid", "numerical"):
            print(f"| {robot_name} | {kind} | {compare(ik_neural, old, robot_name, kind == 'hybrid', args)}")


def compare(new, old, robot_name: str, hybrid: bool, args) -> str:
    """One table row: both revisions' solvers of one robot on the same targets, interleaved."""
    solvers = []
    for package in (old, new):
        robot = package.load_robot(robot_name)
        solver = package.IKSolver(robot.chain, network=robot.network if hybrid else None)
        solver.warm_up()
        solvers.append(solve_one(package, solver, args.timeout_ms / 1000, args.tolerance))
    chain = load_robot(robot_name).chain
    _, T_targets = reachable_targets(chain, args.targets, args.random_seed)
    seeds = seed_configurations(chain, "mid", args.targets, args.random_seed)
    run_old, run_new = run_interleaved([("old", solvers[0]), ("new", solvers[1])], T_targets, seeds)
    pairs = [(args.tolerance, args.tolerance)]
    ok_old, ok_new = (successes(chain, T_targets, run.q, pairs)[0].mean() for run in (run_old, run_new))
    same = int(np.all(np.isclose(run_old.q, run_new.q, rtol=0, atol=1e-12), axis=1).sum())
    ms = [(1e3 * run.times_s.mean(), 1e3 * np.median(run.times_s)) for run in (run_old, run_new)]
    return (
        f"{ms[0][0]:.4f} / {ms[0][1]:.4f} | {ms[1][0]:.4f} / {ms[1][1]:.4f} | **{ms[1][0] / ms[0][0]:.3f}** | "
        f"{100 * ok_old:.1f} % / {100 * ok_new:.1f} % | {same}/{args.targets} |"
    )


if __name__ == "__main__":
    main()
