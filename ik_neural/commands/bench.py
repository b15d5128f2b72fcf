"""`ik_bench`: timing tables for the package's hot paths (``ros2 run ik_neural ik_bench fk --robot panda``).

``ik_bench fk``: FK and Jacobian cost per pose. ``ik_bench collision``: one self-collision check's cost. ``ik_bench ik``: the IK benchmark protocol of ``bench.protocol``
(success at three tolerance pairs, time per solve, batched throughput, the network alone), with the hybrid
solver (network + DLS), the numerical-only one and TRAC-IK (when the ``pytracik`` binding is importable) in
one run. ``ik_bench solutions``: ``IKSolver.solutions``, distinct solutions per pose. ``ik_bench stream``:
goal streams (``bench.stream``: smooth, through the wrist singularity, out of reach, a jump, an obstacle),
the ``Tracker`` against each goal solved independently and TRAC-IK seeded with its last answer. This module
holds the command line only; the benchmark is ``ik_neural.bench``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ik_neural.bench import stream, tables
from ik_neural.bench.collision import self_check_table
from ik_neural.bench.protocol import SEED_POLICIES, SolveOne, ours_solve_one, run_interleaved, seed_configurations
from ik_neural.bench.tracik import TracIK, available, tracik_solvers
from ik_neural.collision import CollisionChecker
from ik_neural.commands.chain_selection import ChosenChain, add_chain_arguments, chosen_chain
from ik_neural.kernels.cache import compiling_notice
from ik_neural.network import IKNetwork, load_network
from ik_neural.sampling import reachable_targets
from ik_neural.solver import IKSolver
from ik_neural.tracker import Tracker
from ik_neural.urdf_model import UrdfModel

HYBRID = "ik_neural (network + DLS)"
NUMERICAL = "ik_neural (DLS, numerical only)"
BATCH_CALLS = 3  # solve_batch calls per solver and batch size; the median is reported


def _run_fk(args: argparse.Namespace) -> None:
    try:
        chosen = chosen_chain(args, load_network=False)
    except ValueError as exc:
        args.parser.error(str(exc))
    print(tables.fk_report(chosen.name, chosen.chain, args.batch_size, args.seed))


def _run_collision(args: argparse.Namespace) -> None:
    try:
        chosen = chosen_chain(args, load_network=False)
        checker = CollisionChecker.from_urdf(UrdfModel.parse(chosen.urdf_path), chosen.chain)
    except ValueError as exc:
        args.parser.error(str(exc))
    Q = chosen.chain.bounds.sample(np.random.default_rng(args.seed), args.samples)
    print(f"{chosen.name}:")
    print(self_check_table([(f"{chosen.urdf_path.name} (its <collision> geometry)", checker)], Q))


def _chain_and_network(args: argparse.Namespace) -> tuple[ChosenChain, Optional[IKNetwork]]:
    """The chosen chain and the network that seeds the hybrid solver: --network, else the robot's shipped
    one; None with --no-network. ValueError naming the problem."""
    if args.no_network and args.network is not None:
        raise ValueError("--network and --no-network exclude each other")
    chosen = chosen_chain(args, load_network=not args.no_network and args.network is None)
    if args.network is None:
        return chosen, chosen.network
    try:
        return chosen, load_network(args.network, chosen.chain)
    except FileNotFoundError as exc:
        raise ValueError(str(exc)) from None


def _seed_policy(args: argparse.Namespace) -> str:
    """mid, zero or given: --seed implies given; given needs --seed. ValueError for a contradiction."""
    if args.seed is not None:
        if args.seed_policy not in (None, "given"):
            raise ValueError(f"--seed gives the seed: it cannot go with --seed-policy {args.seed_policy}")
        return "given"
    if args.seed_policy == "given":
        raise ValueError("--seed-policy given needs --seed Q1,Q2,...")
    return args.seed_policy or "mid"


def _run_ik(args: argparse.Namespace) -> None:
    parser: argparse.ArgumentParser = args.parser
    if args.targets < 1:
        parser.error("--targets must be >= 1")
    if not (args.timeout_ms > 0 and args.position_tolerance_m > 0 and args.orientation_tolerance_rad > 0):
        parser.error("--timeout-ms, --position-tolerance-m and --orientation-tolerance-rad must be > 0")
    try:
        chosen, network = _chain_and_network(args)
        policy = _seed_policy(args)
        seeds = seed_configurations(chosen.chain, policy, args.targets, args.random_seed, args.seed)
    except ValueError as exc:
        parser.error(str(exc))
    chain = chosen.chain
    timeout_s = args.timeout_ms * 1e-3
    tolerances = (args.position_tolerance_m, None if args.position_only else args.orientation_tolerance_rad)
    ours: list[tuple[str, IKSolver]] = []  # the hybrid first, where there is a network
    if network is not None:
        ours.append((HYBRID, IKSolver(chain, network=network)))
    if network is None or not args.no_numerical:
        ours.append((NUMERICAL, IKSolver(chain)))
    for _, ik in ours:
        ik.warm_up()  # no kernel compiles inside a timed call
    solver = ours[0][1]
    solvers: list[tuple[str, SolveOne]] = [(name, ours_solve_one(ik, timeout_s, tolerances)) for name, ik in ours]
    tracik_line = "TRAC-IK: not run (--no-tracik)"
    if args.position_only:
        tracik_line = "TRAC-IK: not run (--position-only: the pytracik binding takes no orientation bounds)"
    elif not args.no_tracik:
        tracik_rows, tracik_line = tracik_solvers(chain, chosen.urdf_path, timeout_s)
        solvers += tracik_rows

    print(
        tables.ik_header(
            chosen.name,
            chain,
            args.targets,
            args.random_seed,
            args.timeout_ms,
            policy,
            seeds[0],
            tolerances,
            tracik_line,
        )
    )
    _, T_targets = reachable_targets(chain, args.targets, args.random_seed)
    runs = run_interleaved(solvers, T_targets, seeds)
    print()
    print(tables.format_table(*tables.solve_table(chain, T_targets, runs, args.position_only)))
    for run in runs:
        if run.name in (HYBRID, NUMERICAL):
            note = tables.rejected_claims(chain, T_targets, run, tolerances)
            if note:
                print(note)
    if network is not None:
        print()
        print(tables.format_table(*tables.network_table(network, chain, T_targets)))
        print()
        print(tables.trade_line(solver, T_targets, tolerances))
    if args.batch_sizes:
        tables_by_solver = tables.batch_tables(
            ours, args.batch_sizes, policy, args.seed, args.random_seed, timeout_s, tolerances, BATCH_CALLS
        )
        for name, headers, rows in tables_by_solver:
            print()
            print(
                f"batched: {name}, solve_batch (compiled float64 rows), budget {args.timeout_ms:g} ms per target, "
                f"median of {BATCH_CALLS} calls per size, the solvers taking turns"
            )
            print(tables.format_table(headers, rows))


def _run_solutions(args: argparse.Namespace) -> None:
    parser: argparse.ArgumentParser = args.parser
    if args.targets < 1 or args.count < 1 or not args.timeout_ms > 0 or not args.min_distance_rad >= 0:
        parser.error("--targets and --count must be >= 1, --timeout-ms > 0, --min-distance-rad >= 0")
    try:
        chosen = chosen_chain(args)
    except ValueError as exc:
        parser.error(str(exc))
    chain = chosen.chain
    solver = IKSolver(chain, network=chosen.network)
    solver.warm_up()
    _, T_targets = reachable_targets(chain, args.targets, args.random_seed)
    seeds = seed_configurations(chain, "random", args.targets, args.random_seed)
    print(
        f"IKSolver.solutions: {chosen.name}, {chain.dof} DoF, {'network + DLS' if chosen.network else 'DLS only'}; "
        f"{args.targets} targets, each from its own random seed; budget {args.timeout_ms:g} ms; "
        f"{args.tolerance:g} m / {args.tolerance:g} rad; distinct: largest joint difference >= {args.min_distance_rad:g}"
    )
    rows = tables.solutions_table(
        solver,
        T_targets,
        seeds,
        args.count,
        args.timeout_ms * 1e-3,
        (args.tolerance, args.tolerance),
        args.min_distance_rad,
    )
    print(tables.format_table(*rows))


def _stream_tracik(chosen: ChosenChain) -> tuple[Optional[TracIK], str]:
    """TRAC-IK for the stream (``stream.TIMEOUT_S``, ``stream.TRACIK_EPSILON``), and its header line."""
    chain = chosen.chain
    how = f"TRAC-IK: pytracik, Speed, eps {stream.TRACIK_EPSILON:g}, {stream.TIMEOUT_S * 1e3:g} ms"
    if not available():
        return None, "TRAC-IK: not run (the pytracik binding is not importable)"
    try:
        solver = TracIK(
            chosen.urdf_path,
            chain.base_link,
            chain.tip_link,
            chain.lower,
            chain.upper,
            stream.TIMEOUT_S,
            stream.TRACIK_EPSILON,
        )
    except (ImportError, ValueError, RuntimeError) as exc:
        return None, f"TRAC-IK: not run ({exc})"
    return solver, f"{how}, seeded with its last answer (as MoveIt Servo uses it); no acceptance test"


def _run_stream(args: argparse.Namespace) -> None:
    parser: argparse.ArgumentParser = args.parser
    if not (args.rate_hz > 0 and args.seconds > 0):
        parser.error("--rate-hz and --seconds must be > 0")
    try:
        chosen, network = _chain_and_network(args)
        paths = stream.stream_paths(chosen.chain, args.rate_hz, args.seconds, args.paths)
    except ValueError as exc:
        parser.error(str(exc))
    chain = chosen.chain
    dt_s = 1.0 / args.rate_hz
    ik = IKSolver(chain, network=network)
    ik.warm_up()  # no kernel compiles inside a timed call
    tracker = Tracker(IKSolver(chain, network=network))
    solver_kind = "network + DLS" if network is not None else "DLS only"
    solvers: list[stream.StreamSolver] = [stream.TrackerStream(tracker), stream.IndependentStream(ik)]
    lines = [
        f"{stream.TRACKER}: steps from the last command within the step limits (default TrackerSettings, "
        f"{solver_kind}); a held command counts as none",
        f"{stream.INDEPENDENT}: IKSolver.solve ({solver_kind}), seed = the last command, seed_first, "
        f"{stream.TIMEOUT_S * 1e3:g} ms, the path's acceptance test; a failure gives no command",
    ]
    tracik_line = "TRAC-IK: not run (--no-tracik)"
    if not args.no_tracik:
        tracik, tracik_line = _stream_tracik(chosen)
        if tracik is not None:
            solvers.append(stream.TracIKStream(tracik))
    limit = tracker.largest_step
    print(tables.stream_header(chosen.name, chain, args.rate_hz, args.seconds, limit, [*lines, tracik_line]))
    stream.warm_up(solvers, paths[0], dt_s)
    for number, path in enumerate(paths, 1):
        runs = stream.run_stream(solvers, path, dt_s)
        print()
        print(f"path {number}: {path.name}: {path.description}")
        print(
            tables.format_table(
                *tables.stream_table(chain, path.q[0], path.T_goals, path.reachable, path.accept, limit, runs)
            )
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


def _add_fk_parser(commands: argparse._SubParsersAction) -> None:
    fk = commands.add_parser("fk", help="forward kinematics and Jacobian timing")
    add_chain_arguments(fk, default_robot="panda")
    fk.add_argument("--batch-size", type=int, default=4096, help="batch size of the torch rows (default: 4096)")
    fk.add_argument("--seed", type=int, default=0, help="random seed of the configurations (default: 0)")
    fk.set_defaults(run=_run_fk, parser=fk)


def _add_collision_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("collision", help="the cost of one self-collision check")
    add_chain_arguments(parser, default_robot="panda")
    parser.add_argument("--samples", type=int, default=5000, help="random configurations (default: 5000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the configurations (default: 0)")
    parser.set_defaults(run=_run_collision, parser=parser)


def _add_ik_parser(commands: argparse._SubParsersAction) -> None:
    ik = commands.add_parser(
        "ik",
        help="IK benchmark: success, ms per solve, batched solves/s; TRAC-IK rows if importable",
        description=f"IK benchmark on a shipped robot or a URDF chain. Note: {tables.DRIFT_WARNING}.",
    )
    add_chain_arguments(ik, default_robot="panda")
    ik.add_argument("--targets", type=int, default=1000, help="number of targets (default: 1000)")
    ik.add_argument("--timeout-ms", type=float, default=5.0, help="budget per solve in ms (default: 5)")
    ik.add_argument(
        "--position-tolerance-m", type=float, default=1e-6, help="ik_neural's position tolerance (default: 1e-6)"
    )
    ik.add_argument(
        "--orientation-tolerance-rad",
        type=float,
        default=1e-6,
        help="ik_neural's orientation tolerance (default: 1e-6)",
    )
    ik.add_argument(
        "--position-only",
        action="store_true",
        help="solve and judge the tip position alone, as a node with position_only_ik serves (chain20_003); "
        "TRAC-IK is then not run",
    )
    ik.add_argument(
        "--seed-policy",
        choices=SEED_POLICIES,
        help="where every solve starts: mid-limits (default), zero, given (--seed), or random (each target its own "
        "configuration uniform within the limits: PickNik's ik_benchmarking protocol, with --timeout-ms 100)",
    )
    ik.add_argument(
        "--seed",
        type=_floats,
        metavar="Q1,Q2,...",
        help="the seed, one value per joint (implies --seed-policy given; negative first value: --seed=-1,...)",
    )
    ik.add_argument("--random-seed", type=int, default=0, help="random seed of the targets (default: 0)")
    ik.add_argument(
        "--batch-sizes",
        type=_sizes,
        default=[512, 4096],
        metavar="B1,B2,...",
        help="batch sizes of the batched table (default: 512,4096; empty: none)",
    )
    ik.add_argument("--no-tracik", action="store_true", help="leave TRAC-IK out even if pytracik is importable")
    ik.add_argument("--network", type=Path, help="network model file for the chain (default: the robot's shipped one)")
    ik.add_argument("--no-network", action="store_true", help="numerical-only solver, even where a network is shipped")
    ik.add_argument(
        "--no-numerical", action="store_true", help="with a network, leave out the numerical-only solver's row"
    )
    ik.set_defaults(run=_run_ik, parser=ik)


def _add_solutions_parser(commands: argparse._SubParsersAction) -> None:
    solutions = commands.add_parser("solutions", help="several distinct solutions per pose: how many, how fast")
    add_chain_arguments(solutions, default_robot="panda")
    solutions.add_argument("--targets", type=int, default=200, help="number of targets (default: 200)")
    solutions.add_argument("--count", type=int, default=8, help="solutions asked for per pose (default: 8)")
    solutions.add_argument("--timeout-ms", type=float, default=20.0, help="budget per call in ms (default: 20)")
    solutions.add_argument(
        "--tolerance", type=float, default=1e-5, help="position (m) and orientation (rad) tolerance (default: 1e-5)"
    )
    solutions.add_argument(
        "--min-distance-rad", type=float, default=0.1, help="least largest joint difference (default: 0.1)"
    )
    solutions.add_argument(
        "--random-seed", type=int, default=0, help="random seed of the targets and seeds (default: 0)"
    )
    solutions.set_defaults(run=_run_solutions, parser=solutions)


def _path_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in stream.PATH_NAMES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"expected paths among {','.join(stream.PATH_NAMES)}, got {text!r}")
    return names


def _add_stream_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "stream",
        help="goal streams: the Tracker, each goal solved independently, TRAC-IK seeded with its last answer",
        description=f"Goal streams along paths that matter (ik_neural.bench.stream). Note: {tables.DRIFT_WARNING}.",
    )
    add_chain_arguments(parser, default_robot="panda")
    parser.add_argument("--rate-hz", type=float, default=200.0, help="goal rate, Hz: dt between goals (default: 200)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each path, s (default: 10)")
    parser.add_argument(
        "--paths",
        type=_path_names,
        default=list(stream.PATH_NAMES),
        metavar="P1,P2,...",
        help=f"paths to run (default: all: {','.join(stream.PATH_NAMES)})",
    )
    parser.add_argument("--no-tracik", action="store_true", help="leave TRAC-IK out even if pytracik is importable")
    parser.add_argument(
        "--network", type=Path, help="network model file for the chain (default: the robot's shipped one)"
    )
    parser.add_argument("--no-network", action="store_true", help="DLS alone, even where a network is shipped")
    parser.set_defaults(run=_run_stream, parser=parser)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="ik_bench", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    _add_fk_parser(commands)
    _add_collision_parser(commands)
    _add_ik_parser(commands)
    _add_solutions_parser(commands)
    _add_stream_parser(commands)
    args = parser.parse_args(argv)
    # A first run compiles the kernels for tens of seconds: said on stderr, so that the tables on stdout stay clean.
    with compiling_notice(lambda line: print(f"ik_bench: {line}", file=sys.stderr, flush=True)):
        args.run(args)


if __name__ == "__main__":
    main()
