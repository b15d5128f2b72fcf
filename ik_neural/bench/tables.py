"""The benchmark's tables and header lines: what each table measures and how it is printed.

Other people compare these tables across versions: their columns and number formats stay as they are.
Timings on shared machines drift by tens of percent from minute to minute: compare rows of one run,
not figures from different runs.
"""

from __future__ import annotations

import time
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from ik_neural.bench.protocol import (
    RANDOM_SEEDS_STREAM,
    SolverRun,
    Tolerances,
    judged_pairs,
    seed_configurations,
    solver_tolerance,
    successes,
)
from ik_neural.bench.stream import arm_commands
from ik_neural.chain import KinematicChain
from ik_neural.evaluation import best_guess_errors, head_errors, summary
from ik_neural.geometry import pose_errors
from ik_neural.kernels.dls import dls_step
from ik_neural.network import IKNetwork
from ik_neural.sampling import reachable_targets
from ik_neural.solver import IKSolver

DRIFT_WARNING = (
    "timings drift by tens of percent from minute to minute on shared machines: compare rows of this run "
    "only (solvers interleaved target by target)"
)
SEED_POLICY_TEXT = {
    "mid": "mid-limits (continuous joints 0)",
    "zero": "zero",
    "given": "given",
    "random": "random, each target its own, uniform within the limits",
}


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned, two spaces apart, a rule below
    the headers."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join([cells[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:])])

    return "\n".join([line(headers), "  ".join("-" * w for w in widths)] + [line(row) for row in rows])


def _percent(fraction: float) -> str:
    return f"{100.0 * fraction:.1f}%"


def tolerance_label(position_m: float, rotation_rad: Optional[float]) -> str:
    """Column header of success at a tolerance pair: ``ok@1e-06``, ``ok@0.001m/0.01rad``, or for the
    position alone ``ok@1e-06m``."""
    if rotation_rad is None:
        return f"ok@{position_m:g}m"
    if position_m == rotation_rad:
        return f"ok@{position_m:g}"
    return f"ok@{position_m:g}m/{rotation_rad:g}rad"


# ---------------------------------------------------------------------------------------------- ik_bench fk


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
    """Rows (path, batch size, FK µs per pose, FK + Jacobian µs per pose) on configurations uniform within
    the limits, drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    q_one = chain.bounds.sample(rng, 1)[0]
    q_batch = torch.from_numpy(chain.bounds.sample(rng, batch_size))
    rows = []
    for name, q, size, calls in (
        ("numpy float64, one pose", q_one, 1, 2000),
        ("torch float64, batched", q_batch, batch_size, 20),
        ("torch float32, batched", q_batch.float(), batch_size, 20),
    ):
        fk_s = _best_time_s(lambda q=q: chain.forward(q), repeats=5, calls=calls)
        fk_jac_s = _best_time_s(lambda q=q: chain.forward_and_jacobian(q), repeats=5, calls=calls)
        rows.append((name, size, fk_s / size * 1e6, fk_jac_s / size * 1e6))
    return rows


def fk_report(name: str, chain: KinematicChain, batch_size: int, seed: int) -> str:
    """``ik_bench fk``'s output: a header line and the FK timing table of ``fk_table``."""
    lines = [
        f"FK timing: {name} ({chain.dof} DoF), torch threads {torch.get_num_threads()}, best of 5",
        f"{'path':<26} {'batch':>6} {'FK µs/pose':>11} {'FK+J µs/pose':>13}",
    ]
    for path, size, fk_us, fk_jac_us in fk_table(chain, batch_size, seed):
        lines.append(f"{path:<26} {size:>6} {fk_us:>11.2f} {fk_jac_us:>13.2f}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- ik_bench ik


def ik_header(
    name: str,
    chain: KinematicChain,
    targets: int,
    random_seed: int,
    timeout_ms: float,
    policy: str,
    seed: np.ndarray,
    tolerances: Tolerances,
    tracik_line: str,
) -> str:
    """The lines above ``ik_bench ik``'s tables: the chain, the targets, the seed, the tolerances, TRAC-IK's
    setup (``tracik_line``) and the drift warning."""
    if policy == "random":
        seed_line = f"seed policy: {SEED_POLICY_TEXT[policy]} (random seed {random_seed}, stream {RANDOM_SEEDS_STREAM})"
    else:
        # Row j: mid-limits (always within the bounds) with joint j at the seed's value, so that ``contains``
        # judges each joint of the seed on its own.
        alone = np.where(np.eye(chain.dof, dtype=bool), seed, chain.middle)
        outside = [joint for joint, inside in zip(chain.joint_names, chain.bounds.contains(alone)) if not inside]
        note = f" (outside the limits of {', '.join(outside)})" if outside else ""
        seed_line = f"seed policy: {SEED_POLICY_TEXT[policy]}: [{', '.join(f'{v:.4g}' for v in seed)}]{note}"
    return "\n".join(
        [
            f"IK benchmark: {name}, {chain.dof} DoF, {chain.base_link} -> {chain.tip_link}",
            f"targets: {targets}, FK of configurations uniform within the limits (random seed {random_seed}); "
            f"budget {timeout_ms:g} ms per solve",
            seed_line,
            f"tolerances: ik_neural solves at {tolerances[0]:g} m / {tolerances[1]:g} rad; "
            "every answer is judged by FK (Euclidean position error, rotation angle) and must be within the limits"
            if tolerances[1] is not None
            else f"tolerances: ik_neural solves for the position alone at {tolerances[0]:g} m (the targets' orientation "
            "is not asked for); every answer is judged by FK (Euclidean position error) and must be within the limits",
            tracik_line,
            f"{DRIFT_WARNING[0].upper()}{DRIFT_WARNING[1:]}",
        ]
    )


def solve_table(
    chain: KinematicChain, T_targets: np.ndarray, runs: Sequence[SolverRun], position_only: bool = False
) -> tuple[list, list]:
    """Headers and one row per solver: success at each tolerance pair (``judged_pairs``), ms per solve
    (mean, median, p95), mean iterations and restarts, and mean time relative to the first run's (ours)."""
    pairs = judged_pairs(position_only)
    headers = [
        "solver",
        *(tolerance_label(p, r) for p, r in pairs),
        "mean ms",
        "median ms",
        "p95 ms",
        "iterations",
        "restarts",
        "mean time / ours",
    ]
    ours_mean_s = float(np.mean(runs[0].times_s))
    rows = []
    for run in runs:
        ms = run.times_s * 1e3
        rows.append(
            [
                run.name,
                *(_percent(f) for f in successes(chain, T_targets, run.q, pairs).mean(-1)),
                f"{np.mean(ms):.3f}",
                f"{np.median(ms):.3f}",
                f"{np.percentile(ms, 95):.3f}",
                "-" if run.iterations is None else f"{np.mean(run.iterations):.2f}",
                "-" if run.restarts is None else f"{np.mean(run.restarts):.2f}",
                f"{np.mean(run.times_s) / ours_mean_s:.2f}",
            ]
        )
    return headers, rows


def rejected_claims(chain: KinematicChain, T_targets: np.ndarray, run: SolverRun, tolerances: Tolerances) -> str | None:
    """A note when ``run`` claimed success on targets that the FK check rejects at ``tolerances`` (the
    tolerances that solver was asked for), else None."""
    rejected = int((run.claimed_success & ~successes(chain, T_targets, run.q, [tolerances])[0]).sum())
    if not rejected:
        return None
    return f"note: {run.name} claimed success on {rejected} targets that the FK check rejects at its tolerance"


def network_table(network: IKNetwork, chain: KinematicChain, T_targets: np.ndarray) -> tuple[list, list]:
    """Headers and rows: the network alone (its guess, no refinement) on the benchmark's targets; for a
    K-head network also the best of its K guesses per target (least position error / reach + rotation
    error: ``evaluation.head_errors``)."""
    position, rotation, score = head_errors(chain, network.predict_all(T_targets), T_targets, position_only=False)
    labelled = [(str(network.path or "in memory"), position[:, 0], rotation[:, 0])]
    if network.heads > 1:
        labelled.append((f"best of its {network.heads} guesses", *best_guess_errors(position, rotation, score)))
    headers = ["network alone", "median mm", "mean mm", "p95 mm", "median deg", "mean deg", "p95 deg"]
    rows = []
    for label, position_error, rotation_error in labelled:
        f = summary(position_error, rotation_error)
        rows.append(
            [
                label,
                *(
                    f"{f[f'{k}_{s}']:.2f}"
                    for k in ("position_error_mm", "orientation_error_deg")
                    for s in ("median", "mean", "p95")
                ),
            ]
        )
    return headers, rows


def trade_line(solver: IKSolver, T_targets: np.ndarray, tolerances: Tolerances) -> str:
    """What the hybrid's network costs against what it saves: one pose's guesses (all K heads) and one DLS
    step (one row, from the guess), each the best of 5 means of 200 calls, in µs."""
    chain, network = solver.chain, solver.network
    T = T_targets[0]
    q = chain.bounds.project(network.predict(T))
    step = solver.step_settings(solver_tolerance(tolerances), chain.bounds)
    guess_s = _best_time_s(lambda: network.predict_all(T), 5, 200)
    step_s = _best_time_s(lambda: dls_step(q, T, chain.arrays, step), 5, 200)
    return (
        f"trade: one pose's network guess ({network.heads} head{'s' if network.heads > 1 else ''}) costs "
        f"{guess_s * 1e6:.1f} µs, one DLS step {step_s * 1e6:.1f} µs: a guess pays when it saves "
        f"{guess_s / step_s:.1f} steps or more"
    )


def batch_tables(
    solvers: Sequence[tuple[str, IKSolver]],
    batch_sizes: Sequence[int],
    policy: str,
    given: Optional[Sequence[float]],
    random_seed: int,
    timeout_s: float,
    tolerances: Tolerances,
    calls: int,
) -> list[tuple[str, list, list]]:
    """Per solver, its name, headers and one row per batch size B: ``solve_batch`` on B targets and seeds drawn
    as for the per-solve table (budget B·timeout_s, after an untimed warm-up); the solvers take turns, ``calls``
    calls each per size, so their rows compare within this run; solves/s = B / median wall time; success judged
    by FK at the tightest pair (``judged_pairs``), on the last call."""
    chain = solvers[0][1].chain
    tight = judged_pairs(tolerances[1] is None)[0]
    tolerance = solver_tolerance(tolerances)
    _, T_warm = reachable_targets(chain, 8, random_seed + 1)
    seeds_warm = seed_configurations(chain, policy, 8, random_seed + 1, given)
    for _, solver in solvers:
        solver.solve_batch(T_warm, seeds_warm, timeout_s=8 * timeout_s, tolerance=tolerance)
    rows: list[list] = [[] for _ in solvers]
    for size in batch_sizes:
        _, T = reachable_targets(chain, size, random_seed)
        seeds = seed_configurations(chain, policy, size, random_seed, given)
        walls_s: list[list[float]] = [[] for _ in solvers]
        last_q: list[np.ndarray] = [np.empty(0)] * len(solvers)
        for _ in range(calls):
            for i, (_, solver) in enumerate(solvers):
                start = time.perf_counter()
                last_q[i] = solver.solve_batch(T, seeds, timeout_s=size * timeout_s, tolerance=tolerance).q
                walls_s[i].append(time.perf_counter() - start)
        for i, wall in enumerate(walls_s):
            wall_s = float(np.median(wall))
            ok = successes(chain, T, last_q[i], [tight])[0].mean()
            rows[i].append([str(size), f"{size / wall_s:.0f}", f"{wall_s:.3f}", _percent(ok)])
    headers = ["batch", "solves/s", "wall s", tolerance_label(*tight)]
    return [(name, headers, solver_rows) for (name, _), solver_rows in zip(solvers, rows)]


def solutions_table(
    solver: IKSolver,
    T_targets: np.ndarray,
    seeds: np.ndarray,
    count: int,
    timeout_s: float,
    tolerances: tuple[float, float],
    min_distance_rad: float,
) -> tuple[list, list]:
    """Headers and one row: ``IKSolver.solutions`` on each target from its seed; how many distinct solutions
    per pose (mean, min, share with at least half of ``count``), ms per call (mean, p95), and how many
    solutions the checks here reject (FK at the tolerances, the limits, two closer than min_distance_rad)."""
    chain = solver.chain
    found, times_ms, rejected = [], [], 0
    for T, seed in zip(T_targets, seeds):
        start = time.perf_counter()
        sols = solver.solutions(
            T,
            count=count,
            seed=seed,
            timeout_s=timeout_s,
            tolerance=solver_tolerance(tolerances),
            min_distance_rad=min_distance_rad,
        )
        times_ms.append(1e3 * (time.perf_counter() - start))
        found.append(len(sols.q))
        rejected += int((~successes(chain, np.repeat(T[None], len(sols.q), axis=0), sols.q, [tolerances])[0]).sum())
        for i in range(len(sols.q)):
            rejected += int(
                (chain.bounds.largest_difference(np.delete(sols.q, i, axis=0), sols.q[i]) < min_distance_rad).any()
            )
    found_a = np.array(found)
    headers = [
        "solutions",
        "targets",
        "mean found",
        "min found",
        f">= {(count + 1) // 2}",
        "mean ms",
        "p95 ms",
        "rejected",
    ]
    row = [
        f"count={count}",
        str(len(T_targets)),
        f"{found_a.mean():.2f}",
        str(found_a.min()),
        _percent(float((found_a >= (count + 1) // 2).mean())),
        f"{np.mean(times_ms):.3f}",
        f"{np.percentile(times_ms, 95):.3f}",
        str(rejected),
    ]
    return headers, [row]


# ------------------------------------------------------------------------------------------ ik_bench stream


def stream_header(
    name: str,
    chain: KinematicChain,
    rate_hz: float,
    seconds: float,
    step_limit: np.ndarray,
    solver_lines: Sequence[str],
) -> str:
    """The lines above ``ik_bench stream``'s tables: the chain, the goal rate, the step limit, how each solver
    runs (``solver_lines``), what the columns measure, and the drift warning."""
    return "\n".join(
        [
            f"Goal streams: {name}, {chain.dof} DoF, {chain.base_link} -> {chain.tip_link}",
            f"goals at {rate_hz:g} Hz (dt {1e3 / rate_hz:g} ms), {seconds:g} s per path; every solver starts at the "
            "path's first configuration; solvers interleaved goal by goal, the order rotating",
            f"largest step one command may make (velocity limit x max_step_dt_s, rad): "
            f"[{', '.join(f'{v:.4g}' for v in step_limit)}]",
            *solver_lines,
            "commands: goals answered (no command: the arm keeps the last one); largest step: between consecutive "
            "commands, the start included, rad; over limit: steps with a joint beyond the largest step one command may make; "
            "median/max mm: position error (FK) of the arm's command vs its goal over the reachable goals; "
            "final mm: at the last goal; collisions: commands the path's acceptance test refuses",
            f"{DRIFT_WARNING[0].upper()}{DRIFT_WARNING[1:]}",
        ]
    )


STREAM_COLUMNS = (
    "solver",
    "goals",
    "commands",
    "largest step rad",
    "over limit",
    "median mm",
    "max mm",
    "final mm",
    "collisions",
    "p50 µs",
    "p99 µs",
)
"""The columns of ``ik_bench stream``'s tables."""


def stream_table(
    chain: KinematicChain,
    q0: np.ndarray,
    T_goals: np.ndarray,
    reachable: np.ndarray,
    accept: Optional[Callable[[np.ndarray], bool]],
    step_limit: np.ndarray,
    runs: Sequence[SolverRun],
) -> tuple[list, list]:
    """Headers and one row per solver of one path: goals, commands, largest joint step (rad), steps over
    ``step_limit`` (dof,), median and max position error (mm) over the ``reachable`` goals and at the last
    goal, commands ``accept`` refuses ("-" without a test), µs per call p50 and p99.

    The arm's command after goal i is the solver's answer, or its last answer (q0 before the first) where
    it gave none: steps and errors are the arm's, judged by FK whatever the solver said."""
    headers = list(STREAM_COLUMNS)
    rows = []
    for run in runs:
        given = np.isfinite(run.q).all(-1)
        arm = arm_commands(q0, run.q)
        steps = np.abs(np.diff(np.concatenate([np.asarray(q0)[None], arm]), axis=0))
        over = int((steps > step_limit * (1 + 1e-9) + 1e-12).any(-1).sum())
        _, _, position_error, _ = pose_errors(T_goals, chain.forward(arm))
        error_mm = position_error * 1e3
        tracked = error_mm[reachable]
        collisions = "-" if accept is None else str(sum(not accept(q) for q in run.q[given]))
        us = run.times_s * 1e6
        rows.append(
            [
                run.name,
                str(len(T_goals)),
                str(int(given.sum())),
                f"{steps.max():.5f}",
                str(over),
                f"{np.median(tracked):.3f}" if tracked.size else "-",
                f"{tracked.max():.3f}" if tracked.size else "-",
                f"{error_mm[-1]:.3f}",
                collisions,
                f"{np.percentile(us, 50):.0f}",
                f"{np.percentile(us, 99):.0f}",
            ]
        )
    return headers, rows
