"""`bench`: timing tables for the package's hot paths (``ros2 run ik_neural bench fk --robot panda``).

``bench fk``: FK and Jacobian cost per pose. ``bench ik``: the IK benchmark protocol of design.md §8 (success
at three tolerance pairs, time per solve, batched throughput, the network alone), with the hybrid solver
(network + DLS), the numerical-only one and TRAC-IK (when the ``pytracik`` binding is importable) in one run.

Timings on shared machines drift by tens of percent from minute to minute: compare rows of one
run, not figures from different runs.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple, Optional, Sequence

import numpy as np
import torch

from ik_neural import tracik
from ik_neural.evaluation import network_errors, summary
from ik_neural.chain import KinematicChain
from ik_neural.network import IKNetwork, load_network
from ik_neural.robots import list_robots, load_robot
from ik_neural.geometry import pose_errors
from ik_neural.solver import IKSolver

# (position m, rotation rad) pairs every answer is checked at, tightest first.
TOLERANCE_PAIRS: tuple[tuple[float, float], ...] = ((1e-6, 1e-6), (1e-5, 1e-5), (1e-3, 1e-2))
# TRAC-IK's epsilon: its default (what MoveIt users get) and a tight one that competes at 1e-6. TRAC-IK
# bounds each component of the error twist by epsilon, so its Euclidean error can reach sqrt(3)·epsilon.
TRACIK_EPSILONS: tuple[float, ...] = (1e-5, 2.5e-7)
HYBRID = "ik_neural (network + DLS)"
NUMERICAL = "ik_neural (DLS, numerical only)"
DRIFT_WARNING = (
    "timings drift by tens of percent from minute to minute on shared machines: compare rows of this run "
    "only (solvers interleaved target by target)"
)


def _best_time_s(run: Callable[[], object], repeats: int, calls: int) -> float:
    """Best of ``repeats`` mean wall times of ``calls`` calls, in seconds per call."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            run()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def fk_table(chain: KinematicChain, batch_size: int, seed: int) -> list[tuple[str, int, float, float]]:
    """Rows (path, batch size, FK µs per pose, FK + Jacobian µs per pose)."""
    rng = np.random.default_rng(seed)
    q_one = rng.uniform(chain.lower, chain.upper)
    q_batch = torch.from_numpy(rng.uniform(chain.lower, chain.upper, size=(batch_size, chain.dof)))
    rows = []
    for name, q, size, calls in (
        ("numpy float64, one pose", q_one, 1, 2000),
        ("torch float64, batched", q_batch, batch_size, 20),
        ("torch float32, batched", q_batch.float(), batch_size, 20),
    ):
        fk_s = _best_time_s(lambda: chain.forward(q), repeats=5, calls=calls)
        fk_jac_s = _best_time_s(lambda: chain.forward_and_jacobian(q), repeats=5, calls=calls)
        rows.append((name, size, fk_s / size * 1e6, fk_jac_s / size * 1e6))
    return rows


def _run_fk(args: argparse.Namespace) -> None:
    chain = load_robot(args.robot).chain
    print(f"FK timing: {args.robot} ({chain.dof} DoF), torch threads {torch.get_num_threads()}, best of 5")
    print(f"{'path':<26} {'batch':>6} {'FK µs/pose':>11} {'FK+J µs/pose':>13}")
    for name, size, fk_us, fk_jac_us in fk_table(chain, args.batch_size, args.seed):
        print(f"{name:<26} {size:>6} {fk_us:>11.2f} {fk_jac_us:>13.2f}")


# ---------------------------------------------------------------------------------------------- bench ik


@dataclass(frozen=True)
class BenchChain:
    """What ``bench ik`` solves on: a display name, the chain, the URDF it came from (for TRAC-IK) and the
    network that seeds the hybrid solver (None: numerical only)."""

    name: str
    chain: KinematicChain
    urdf_path: Path
    network: Optional[IKNetwork]


class Answer(NamedTuple):
    """One solver call's answer: q (dof,) or None; what the solver claims; its iterations and restarts
    (None for solvers that do not report them)."""

    q: Optional[np.ndarray]
    claimed_success: bool
    iterations: Optional[int] = None
    restarts: Optional[int] = None


# A solver as the benchmark sees it: (T_target (4, 4), seed (dof,)) -> Answer.
SolveOne = Callable[[np.ndarray, np.ndarray], Answer]


@dataclass(frozen=True)
class SolverRun:
    """One solver's answers to N targets: q (N, dof) with NaN rows where it gave none, its own success claims
    (N,), seconds per call (N,), and iterations and restarts (N,) or None where the solver reports none."""

    name: str
    q: np.ndarray
    claimed_success: np.ndarray
    times_s: np.ndarray
    iterations: Optional[np.ndarray]
    restarts: Optional[np.ndarray]


def draw_targets(chain: KinematicChain, n: int, random_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n configurations drawn uniformly within the limits (continuous joints in [-pi, pi]) and their poses.

    Returns (q (n, dof), T (n, 4, 4)); the same (chain, n, random_seed) always gives the same targets.
    """
    q = np.random.default_rng(random_seed).uniform(chain.lower, chain.upper, size=(n, chain.dof))
    return q, chain.forward(torch.from_numpy(q)).numpy()


def seed_configuration(chain: KinematicChain, policy: str, given: Optional[Sequence[float]] = None) -> np.ndarray:
    """The seed (dof,) every solver starts from: ``mid`` (middle of the limits, 0 for continuous joints: the
    solver's default), ``zero``, or ``given`` (the values of ``given``, one per joint)."""
    if policy == "mid":
        return np.array(chain.middle)
    if policy == "zero":
        return np.zeros(chain.dof)
    if policy == "given":
        q = np.array([] if given is None else given, dtype=np.float64)
        if q.shape != (chain.dof,) or not np.isfinite(q).all():
            raise ValueError(f"--seed needs {chain.dof} finite values, one per joint {chain.joint_names}; got {q.size}")
        return q
    raise ValueError(f"unknown seed policy {policy!r}; one of mid, zero, given")


def within_limits(chain: KinematicChain, q: np.ndarray) -> np.ndarray:
    """Whether each configuration of q (..., dof) has every bounded joint within its limits: (...).

    Continuous joints have no limits; a NaN (no answer) is never within them.
    """
    inside = (q >= chain.lower) & (q <= chain.upper)
    return (inside | (chain.is_continuous & np.isfinite(q))).all(-1)


def successes(
    chain: KinematicChain, T_targets: np.ndarray, q: np.ndarray, tolerances: Sequence[tuple[float, float]]
) -> np.ndarray:
    """Success of each answer q (N, dof) (NaN rows: no answer) at each (position m, rotation rad) pair: (pairs, N).

    Judged by FK of q alone, whatever the solver said: the position error is the Euclidean distance, the
    rotation error the angle of R_target·R(q)ᵀ; an answer with a joint outside its limits fails at every pair.
    """
    answered = np.isfinite(q).all(-1)
    T = chain.forward(torch.from_numpy(np.where(answered[:, None], q, 0.0))).numpy()
    _, _, position_error, angle = pose_errors(T_targets, T)
    valid = answered & within_limits(chain, q)
    return np.stack([valid & (position_error <= p) & (angle <= r) for p, r in tolerances])


def run_interleaved(
    solvers: Sequence[tuple[str, SolveOne]], T_targets: np.ndarray, seed: np.ndarray, warmup: int = 3
) -> list[SolverRun]:
    """Every solver on every target, all solvers on one target before the next target, so that the machine's
    drift hits them alike. Each call is timed on its own with perf_counter, failures included.

    Beforehand every solver solves the first ``warmup`` targets once, untimed and not counted.
    """
    for T in T_targets[:warmup]:
        for _, solve in solvers:
            solve(T, seed)
    n, dof = len(T_targets), len(seed)
    answers: dict[str, list[Answer]] = {name: [] for name, _ in solvers}
    times = {name: np.zeros(n) for name, _ in solvers}
    for i, T in enumerate(T_targets):
        for name, solve in solvers:
            start = time.perf_counter()
            answer = solve(T, seed)
            times[name][i] = time.perf_counter() - start
            answers[name].append(answer)
    return [_solver_run(name, answers[name], times[name], dof) for name, _ in solvers]


def _solver_run(name: str, answers: Sequence[Answer], times_s: np.ndarray, dof: int) -> SolverRun:
    q = np.array([np.full(dof, np.nan) if a.q is None else a.q for a in answers], dtype=np.float64)
    reports = all(a.iterations is not None and a.restarts is not None for a in answers)
    return SolverRun(
        name=name,
        q=q.reshape(len(answers), dof),
        claimed_success=np.array([a.claimed_success for a in answers], dtype=bool),
        times_s=times_s,
        iterations=np.array([a.iterations for a in answers], dtype=float) if reports else None,
        restarts=np.array([a.restarts for a in answers], dtype=float) if reports else None,
    )


def ours_solve_one(solver: IKSolver, timeout_s: float, tolerances: tuple[float, float]) -> SolveOne:
    """``IKSolver.solve`` as the benchmark calls it; its q is judged by FK whatever ``success`` says."""

    def solve(T: np.ndarray, seed: np.ndarray) -> Answer:
        result = solver.solve(
            T, seed=seed, timeout_s=timeout_s, position_tolerance_m=tolerances[0],
            orientation_tolerance_rad=tolerances[1],
        )  # fmt: skip
        return Answer(result.q, bool(result.success), int(result.iterations), int(result.restarts))

    return solve


def tracik_solve_one(solver: tracik.TracIK) -> SolveOne:
    """``TracIK.solve`` as the benchmark calls it (None: it found nothing)."""

    def solve(T: np.ndarray, seed: np.ndarray) -> Answer:
        q = solver.solve(T, seed)
        return Answer(q, q is not None)

    return solve


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned, two spaces apart, a rule below
    the headers."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join([cells[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:])])

    return "\n".join([line(headers), "  ".join("-" * w for w in widths)] + [line(row) for row in rows])


def _percent(fraction: float) -> str:
    return f"{100.0 * fraction:.1f}%"


def tolerance_label(position_m: float, rotation_rad: float) -> str:
    """Column header of success at a tolerance pair: ``ok@1e-06`` or ``ok@0.001m/0.01rad``."""
    if position_m == rotation_rad:
        return f"ok@{position_m:g}"
    return f"ok@{position_m:g}m/{rotation_rad:g}rad"


def solve_table(chain: KinematicChain, T_targets: np.ndarray, runs: Sequence[SolverRun]) -> tuple[list, list]:
    """Headers and one row per solver: success at each tolerance pair, ms per solve (mean, median, p95),
    mean iterations and restarts, and mean time relative to the first run's (ours)."""
    headers = [
        "solver", *(tolerance_label(p, r) for p, r in TOLERANCE_PAIRS),
        "mean ms", "median ms", "p95 ms", "iterations", "restarts", "mean time / ours",
    ]  # fmt: skip
    ours_mean_s = float(np.mean(runs[0].times_s))
    rows = []
    for run in runs:
        ms = run.times_s * 1e3
        rows.append([
            run.name, *(_percent(f) for f in successes(chain, T_targets, run.q, TOLERANCE_PAIRS).mean(-1)),
            f"{np.mean(ms):.3f}", f"{np.median(ms):.3f}", f"{np.percentile(ms, 95):.3f}",
            "-" if run.iterations is None else f"{np.mean(run.iterations):.2f}",
            "-" if run.restarts is None else f"{np.mean(run.restarts):.2f}",
            f"{np.mean(run.times_s) / ours_mean_s:.2f}",
        ])  # fmt: skip
    return headers, rows


def batch_table(
    solver: IKSolver,
    batch_sizes: Sequence[int],
    seed: np.ndarray,
    random_seed: int,
    timeout_s: float,
    tolerances: tuple[float, float],
) -> tuple[list, list]:
    """Headers and one row per batch size B: ``solve_batch`` on B targets drawn as for the per-solve table
    (budget B·timeout_s, one call after an untimed warm-up); solves/s = B / wall time of the call; success
    judged by FK at the tightest pair."""
    chain = solver.chain
    tight = TOLERANCE_PAIRS[0]
    _, T_warm = draw_targets(chain, 8, random_seed + 1)
    solver.solve_batch(T_warm, np.tile(seed, (8, 1)), 8 * timeout_s, *tolerances)
    rows = []
    for size in batch_sizes:
        _, T = draw_targets(chain, size, random_seed)
        start = time.perf_counter()
        result = solver.solve_batch(T, np.tile(seed, (size, 1)), size * timeout_s, *tolerances)
        wall_s = time.perf_counter() - start
        ok = successes(chain, T, result.q, [tight])[0].mean()
        rows.append([str(size), f"{size / wall_s:.0f}", f"{wall_s:.3f}", _percent(ok)])
    return ["batch", "solves/s", "wall s", tolerance_label(*tight)], rows


def network_table(network: IKNetwork, chain: KinematicChain, T_targets: np.ndarray) -> tuple[list, list]:
    """Headers and one row: the network alone (its guess, no refinement) on the benchmark's targets."""
    position_error, rotation_error = network_errors(chain, network.predict(T_targets), T_targets)
    f = summary(position_error, rotation_error)
    headers = ["network alone", "median mm", "mean mm", "p95 mm", "median deg", "mean deg", "p95 deg"]
    row = [str(network.path or "in memory"), *(f"{f[f'{k}_{s}']:.2f}" for k in ("position_error_mm", "orientation_error_deg")
                                                  for s in ("median", "mean", "p95"))]  # fmt: skip
    return headers, [row]


def _bench_chain(args: argparse.Namespace, parser: argparse.ArgumentParser) -> BenchChain:
    """The chain of --robot, or of --urdf/--base/--tip, and its network (--network, else the shipped one;
    none with --no-network); a bad URDF, link or network file exits naming the problem."""
    if args.no_network and args.network is not None:
        parser.error("--network and --no-network exclude each other")
    if args.urdf is None:
        if args.base is not None or args.tip is not None:
            parser.error("--base and --tip go with --urdf")
        robot = load_robot(args.robot or "panda")
        bench = BenchChain(robot.name, robot.chain, robot.urdf_path, robot.network)
    else:
        bench = _urdf_chain(args, parser)
    network = None if args.no_network else bench.network
    if args.network is not None:
        try:
            network = load_network(args.network, bench.chain)
        except (ValueError, FileNotFoundError) as exc:
            raise SystemExit(f"bench ik: {exc}") from None
    return BenchChain(bench.name, bench.chain, bench.urdf_path, network)


def _urdf_chain(args: argparse.Namespace, parser: argparse.ArgumentParser) -> BenchChain:
    if args.robot is not None:
        parser.error("give --robot or --urdf, not both")
    if args.base is None or args.tip is None:
        parser.error("--urdf needs --base LINK and --tip LINK")
    path = Path(args.urdf)
    if not path.is_file():
        raise SystemExit(f"bench ik: no URDF file at {str(path)!r}")
    try:
        chain = KinematicChain.from_urdf(path, args.base, args.tip)
    except ValueError as exc:
        raise SystemExit(f"bench ik: {exc}") from None
    return BenchChain(str(path), chain, path, None)


def _tracik_solvers(bench: BenchChain, timeout_s: float) -> tuple[list[tuple[str, SolveOne]], str]:
    """TRAC-IK's solvers, one per epsilon, and a header line saying how they run (or why they do not)."""
    if not tracik.available():
        return [], "TRAC-IK: not run (the pytracik binding is not importable)"
    chain = bench.chain
    solvers = []
    try:
        for epsilon in TRACIK_EPSILONS:
            solver = tracik.TracIK(
                bench.urdf_path, chain.base_link, chain.tip_link, chain.lower, chain.upper, timeout_s, epsilon
            )
            solvers.append((f"TRAC-IK eps={epsilon:g}", tracik_solve_one(solver)))
    except (ImportError, ValueError, RuntimeError) as exc:
        return [], f"TRAC-IK: not run ({exc})"
    return solvers, (
        "TRAC-IK: pytracik, solve type Speed, same targets, seed and budget, limits from the chain; "
        "eps bounds each error twist component (Euclidean error up to sqrt(3)*eps)"
    )


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"batch sizes must be >= 1, got {text!r}")
    return sizes


def _seed_policy(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    """mid, zero or given: --seed implies given; given needs --seed."""
    if args.seed is not None:
        if args.seed_policy not in (None, "given"):
            parser.error(f"--seed gives the seed: it cannot go with --seed-policy {args.seed_policy}")
        return "given"
    if args.seed_policy == "given":
        parser.error("--seed-policy given needs --seed Q1,Q2,...")
    return args.seed_policy or "mid"


def _print_header(bench: BenchChain, args: argparse.Namespace, policy: str, seed: np.ndarray, tracik_line: str) -> None:
    chain = bench.chain
    policy_text = {"mid": "mid-limits (continuous joints 0)", "zero": "zero", "given": "given"}[policy]
    print(f"IK benchmark: {bench.name}, {chain.dof} DoF, {chain.base_link} -> {chain.tip_link}")
    print(
        f"targets: {args.targets}, FK of configurations uniform within the limits (random seed {args.random_seed}); "
        f"budget {args.timeout_ms:g} ms per solve"
    )
    outside = [name for name, v, lo, hi in zip(chain.joint_names, seed, chain.lower, chain.upper) if not lo <= v <= hi]
    note = f" (outside the limits of {', '.join(outside)})" if outside else ""
    print(f"seed policy: {policy_text}: [{', '.join(f'{v:.4g}' for v in seed)}]{note}")
    print(
        f"tolerances: ik_neural solves at {args.position_tolerance_m:g} m / {args.orientation_tolerance_rad:g} rad; "
        "every answer is judged by FK (Euclidean position error, rotation angle) and must be within the limits"
    )
    print(tracik_line)
    print(f"{DRIFT_WARNING[0].upper()}{DRIFT_WARNING[1:]}")


def _run_ik(args: argparse.Namespace) -> None:
    parser: argparse.ArgumentParser = args.parser
    if args.targets < 1:
        parser.error("--targets must be >= 1")
    if not (args.timeout_ms > 0 and args.position_tolerance_m > 0 and args.orientation_tolerance_rad > 0):
        parser.error("--timeout-ms, --position-tolerance-m and --orientation-tolerance-rad must be > 0")
    bench = _bench_chain(args, parser)
    chain = bench.chain
    policy = _seed_policy(args, parser)
    try:
        seed = seed_configuration(chain, policy, args.seed)
    except ValueError as exc:
        parser.error(str(exc))
    timeout_s = args.timeout_ms * 1e-3
    tolerances = (args.position_tolerance_m, args.orientation_tolerance_rad)
    numerical = IKSolver(chain)
    numerical.warm_up()
    solvers: list[tuple[str, SolveOne]] = []
    solver = numerical
    if bench.network is not None:
        solver = IKSolver(chain, network=bench.network)
        solver.warm_up()
        solvers.append((HYBRID, ours_solve_one(solver, timeout_s, tolerances)))
    if bench.network is None or not args.no_numerical:
        solvers.append((NUMERICAL, ours_solve_one(numerical, timeout_s, tolerances)))
    tracik_line = "TRAC-IK: not run (--no-tracik)"
    if not args.no_tracik:
        tracik_solvers, tracik_line = _tracik_solvers(bench, timeout_s)
        solvers += tracik_solvers

    _print_header(bench, args, policy, seed, tracik_line)
    _, T_targets = draw_targets(chain, args.targets, args.random_seed)
    runs = run_interleaved(solvers, T_targets, seed)
    print()
    print(format_table(*solve_table(chain, T_targets, runs)))
    for run in runs:
        if run.name in (HYBRID, NUMERICAL):
            rejected = int((run.claimed_success & ~successes(chain, T_targets, run.q, [tolerances])[0]).sum())
            if rejected:
                print(f"note: {run.name} claimed success on {rejected} targets that the FK check rejects at its tolerance")
    if bench.network is not None:
        print()
        print(format_table(*network_table(bench.network, chain, T_targets)))
    if args.batch_sizes:
        print()
        print(
            f"batched: {solvers[0][0]}, solve_batch (compiled float64 rows), budget {args.timeout_ms:g} ms per "
            "target, one call per size"
        )
        print(format_table(*batch_table(solver, args.batch_sizes, seed, args.random_seed, timeout_s, tolerances)))


def _add_ik_parser(commands: argparse._SubParsersAction) -> None:
    ik = commands.add_parser(
        "ik",
        help="IK benchmark (design.md §8): success, ms per solve, batched solves/s; TRAC-IK rows if importable",
        description="IK benchmark on a shipped robot or a URDF chain (design.md §8). Note: " + DRIFT_WARNING + ".",
    )
    ik.add_argument("--robot", choices=list_robots(), help="a shipped robot (default: panda)")
    ik.add_argument("--urdf", help="a URDF file instead of --robot (with --base and --tip)")
    ik.add_argument("--base", help="base link of the --urdf chain")
    ik.add_argument("--tip", help="tip link of the --urdf chain")
    ik.add_argument("--targets", type=int, default=1000, help="number of targets (default: 1000)")
    ik.add_argument("--timeout-ms", type=float, default=5.0, help="budget per solve in ms (default: 5)")
    ik.add_argument(
        "--position-tolerance-m", type=float, default=1e-6, help="ik_neural's position tolerance (default: 1e-6)"
    )
    ik.add_argument(
        "--orientation-tolerance-rad", type=float, default=1e-6,
        help="ik_neural's orientation tolerance (default: 1e-6)",
    )  # fmt: skip
    ik.add_argument(
        "--seed-policy", choices=("mid", "zero", "given"),
        help="where every solve starts: mid-limits (default), zero, or given (--seed)",
    )  # fmt: skip
    ik.add_argument(
        "--seed", type=_floats, metavar="Q1,Q2,...",
        help="the seed, one value per joint (implies --seed-policy given; negative first value: --seed=-1,...)",
    )  # fmt: skip
    ik.add_argument("--random-seed", type=int, default=0, help="random seed of the targets (default: 0)")
    ik.add_argument(
        "--batch-sizes", type=_sizes, default=[512, 4096], metavar="B1,B2,...",
        help="batch sizes of the batched table (default: 512,4096; empty: none)",
    )  # fmt: skip
    ik.add_argument("--no-tracik", action="store_true", help="leave TRAC-IK out even if pytracik is importable")
    ik.add_argument("--network", type=Path, help="network model file for the chain (default: the robot's shipped one)")
    ik.add_argument("--no-network", action="store_true", help="numerical-only solver, even where a network is shipped")
    ik.add_argument(
        "--no-numerical", action="store_true", help="with a network, leave out the numerical-only solver's row"
    )
    ik.set_defaults(run=_run_ik, parser=ik)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fk = commands.add_parser("fk", help="forward kinematics and Jacobian timing")
    fk.add_argument("--robot", default="panda", choices=list_robots(), help="a shipped robot (default: panda)")
    fk.add_argument("--batch-size", type=int, default=4096, help="batch size of the torch rows (default: 4096)")
    fk.add_argument("--seed", type=int, default=0, help="random seed of the configurations (default: 0)")
    fk.set_defaults(run=_run_fk)
    _add_ik_parser(commands)
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
