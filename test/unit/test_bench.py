"""The `ik_bench` command (ik_neural/commands/bench.py, ik_neural/bench/): its tables, its FK-judged success
counting, its errors.

Timings are printed, never asserted on.
"""

from __future__ import annotations

import re
from collections import Counter

import numba
import numpy as np
import pytest

from ik_neural.bench import tracik
from ik_neural.bench.tables import STREAM_COLUMNS
from ik_neural.bench.protocol import TOLERANCE_PAIRS, Answer, judged_pairs, run_interleaved, successes
from ik_neural.bench.verdict import Verdict
from ik_neural.commands import bench
from ik_neural.robots import load_robot, robot_chain
from ik_neural.sampling import reachable_targets
from ik_neural.solver import IKSolver
from ik_neural.tracker import Tracker

SOLVE_COLUMNS = [
    "solver",
    "ok@1e-06",
    "ok@1e-05",
    "ok@0.001m/0.01rad",
    "mean ms",
    "median ms",
    "p95 ms",
    "iterations",
    "restarts",
    "mean time / ours",
]
BATCH_COLUMNS = ["batch", "solves/s", "wall s", "ok@1e-06"]


def _cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def _tables(out: str) -> list[list[list[str]]]:
    """The tables of bench's output: each a list of rows of cells, headers first (the rule line dropped)."""
    lines = out.splitlines()
    tables = []
    for i, line in enumerate(lines):
        if i + 1 < len(lines) and re.fullmatch(r"-+( +-+)*", lines[i + 1]):
            rows = [_cells(line)]
            for row in lines[i + 2 :]:
                if not row.strip():
                    break
                rows.append(_cells(row))
            tables.append(rows)
    return tables


def test_bench_ik_prints_the_protocol_table(capsys):
    bench.main(["ik", "--robot", "ur5e", "--targets", "20", "--timeout-ms", "50", "--batch-sizes", "16", "--no-tracik"])
    out = capsys.readouterr().out
    assert "ur5e, 6 DoF" in out
    assert "targets: 20" in out and "budget 50 ms" in out
    assert "seed policy: mid-limits" in out
    assert "1e-06 m / 1e-06 rad" in out
    assert "drift" in out
    assert "TRAC-IK: not run (--no-tracik)" in out

    solve, network, batched_hybrid, batched_numerical = _tables(out)
    assert solve[0] == SOLVE_COLUMNS
    assert [row[0] for row in solve[1:]] == [bench.HYBRID, bench.NUMERICAL]
    hybrid, numerical = (dict(zip(SOLVE_COLUMNS, row)) for row in solve[1:])
    assert hybrid["ok@0.001m/0.01rad"] == numerical["ok@0.001m/0.01rad"] == "100.0%"
    assert hybrid["mean time / ours"] == "1.00"
    for column in ("mean ms", "median ms", "p95 ms", "iterations", "restarts", "mean time / ours"):
        assert float(hybrid[column]) >= 0.0 and float(numerical[column]) >= 0.0
    # The shipped network alone, on the same targets.
    assert network[0][0] == "network alone" and network[1][0].endswith("models/ur5e/ik_network.pt")
    assert all(float(v) > 0.0 for v in network[1][1:])
    # What a guess costs against a step, so the trade shows in every run.
    trade = re.search(r"network guess \(8 heads\) costs ([\d.]+) µs, one DLS step ([\d.]+) µs: .* ([\d.]+) steps", out)
    assert trade and float(trade[1]) > 0 and float(trade[2]) > 0  # the shipped UR5e network has 8 heads
    assert float(trade[3]) == pytest.approx(float(trade[1]) / float(trade[2]), rel=0.05, abs=0.06)

    # Batched: the hybrid's table, then the numerical solver's, measured taking turns in this run.
    assert re.findall(r"batched: (.+?), solve_batch", out) == [bench.HYBRID, bench.NUMERICAL]
    for batched in (batched_hybrid, batched_numerical):
        assert batched[0] == BATCH_COLUMNS
        assert [row[0] for row in batched[1:]] == ["16"]
        assert float(batched[1][1]) > 0 and batched[1][3] == "100.0%"


def test_interleaving_runs_each_solver_after_each_other_equally_often():
    chain = load_robot("rrr_3dof").chain
    q, T = reachable_targets(chain, 1200, seed=2)
    calls: list[tuple[str, int]] = []

    def solver(name):
        def solve(T_target, seed):
            calls.append((name, len(calls) // 3))  # the target, by the rule checked below
            np.testing.assert_array_equal(T_target, T[calls[-1][1]])
            return Answer(q[calls[-1][1]], True)

        return solve

    runs = run_interleaved([("a", solver("a")), ("b", solver("b")), ("c", solver("c"))], T, q, warmup=0)
    # Each target by all three before the next ...
    names = [name for name, _ in calls]
    assert all(sorted(names[3 * i : 3 * i + 3]) == list("abc") for i in range(1200))
    # ... in orders that put each solver first, and right after each other one, about equally often.
    firsts = Counter(names[::3])
    after = Counter(zip(names, names[1:]))
    assert set(firsts) == set("abc") and max(firsts.values()) < 1.2 * min(firsts.values())
    pairs = [(x, y) for x in "abc" for y in "abc" if x != y]
    assert set(after) - set(pairs) <= {("a", "a"), ("b", "b"), ("c", "c")}  # (only across targets)
    assert max(after[p] for p in pairs) < 1.2 * min(after[p] for p in pairs)
    assert [run.name for run in runs] == ["a", "b", "c"]
    np.testing.assert_array_equal(runs[1].q, q)  # answers stay with their targets
    # The same orders in every run; given orders are followed.
    calls.clear()
    run_interleaved([("a", solver("a")), ("b", solver("b")), ("c", solver("c"))], T, q, warmup=0)
    assert [name for name, _ in calls] == names
    calls.clear()
    run_interleaved(
        [("a", solver("a")), ("b", solver("b")), ("c", solver("c"))], T[:2], q[:2], warmup=0, orders=[[2, 0, 1]] * 2
    )
    assert [name for name, _ in calls] == list("cabcab")


def test_successes_are_judged_by_fk_and_limits():
    chain = load_robot("ur5e").chain
    q, T = reachable_targets(chain, 4, seed=1)
    answers = q.copy()
    # tool0 lies on the last joint's axis: turning it by 5e-6 rad is a pure 5e-6 rad rotation error.
    answers[1, -1] += 5e-6
    answers[2, 0] = chain.upper[0] + 1e-3  # outside the limits: a failure, whatever FK says
    answers[3] = np.nan  # no answer
    ok = successes(chain, T, answers, TOLERANCE_PAIRS)
    assert ok.tolist() == [
        [True, False, False, False],
        [True, True, False, False],
        [True, True, False, False],
    ]
    # Position-only IK: the rotation error of answer 1 no longer counts; the limits still do.
    assert successes(chain, T, answers, judged_pairs(position_only=True)).tolist() == [[True, True, False, False]] * 3


def test_bench_ik_given_seed_on_a_small_robot(capsys):
    bench.main(
        ["ik", "--robot", "rrr_3dof", "--targets", "5", "--seed=0.1,-0.2,0.3", "--batch-sizes", "", "--no-tracik"]
    )
    out = capsys.readouterr().out
    assert "seed policy: given: [0.1, -0.2, 0.3]" in out
    tables = _tables(out)  # the solve table and the network alone; no batch sizes, no batched table
    assert [table[0][0] for table in tables] == ["solver", "network alone"]


def test_bench_ik_position_only_solves_and_judges_the_position_alone(capsys):
    """chain20_003's node serves position-only IK (its config), with a position-only network: the bench
    measures it so, at 1e-6 m whatever the tip's orientation."""
    bench.main(["ik", "--robot", "chain20_003", "--targets", "20", "--batch-sizes", "16", "--position-only"])
    out = capsys.readouterr().out
    assert "solves for the position alone at 1e-06 m" in out
    assert "TRAC-IK: not run (--position-only" in out
    solve, _, batched_hybrid, batched_numerical = _tables(out)
    assert solve[0][:4] == ["solver", "ok@1e-06m", "ok@1e-05m", "ok@0.001m"]
    assert [row[0] for row in solve[1:]] == [bench.HYBRID, bench.NUMERICAL]
    assert all(row[1] == "100.0%" for row in solve[1:])
    for batched in (batched_hybrid, batched_numerical):
        assert batched[0] == ["batch", "solves/s", "wall s", "ok@1e-06m"] and batched[1][3] == "100.0%"
    # The solvers were asked for the position alone: from the network's position-only guesses that takes
    # far fewer steps than the whole pose, whose orientation the guesses do not aim at.
    bench.main(["ik", "--robot", "chain20_003", "--targets", "20", "--batch-sizes", "", "--no-tracik"])
    pose_solve = _tables(capsys.readouterr().out)[0]
    assert pose_solve[0][1] == "ok@1e-06" and pose_solve[1][1] == "100.0%"
    iterations = SOLVE_COLUMNS.index("iterations")
    assert float(solve[1][iterations]) < 0.7 * float(pose_solve[1][iterations]), (solve[1], pose_solve[1])


def test_bench_ik_seed_of_the_wrong_length_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["ik", "--robot", "rrr_3dof", "--targets", "5", "--seed", "0.1,0.2", "--no-tracik"])
    assert exc.value.code == 2
    assert "--seed needs 3 finite values" in capsys.readouterr().err


def _usage_error(capsys, argv: list[str]) -> str:
    """The one error line of a command line that ik_bench refuses with status 2."""
    with pytest.raises(SystemExit) as exc:
        bench.main(argv)
    assert exc.value.code == 2
    (line,) = [line for line in capsys.readouterr().err.splitlines() if ": error: " in line]
    return line


def test_bench_ik_bad_link_names_it(capsys):
    urdf = str(load_robot("ur5e").urdf_path)
    line = _usage_error(
        capsys, ["ik", "--urdf", urdf, "--base", "base_link", "--tip", "no_such_link", "--targets", "2"]
    )
    assert line.startswith("ik_bench ik: error: ") and "no_such_link" in line and "tip_link" in line


def test_bench_ik_missing_urdf_names_it(capsys, tmp_path):
    missing = tmp_path / "missing.urdf"
    assert str(missing) in _usage_error(capsys, ["ik", "--urdf", str(missing), "--base", "a", "--tip", "b"])


def test_bench_ik_runs_tracik_rows(capsys):
    # pytracik is part of the test environment (env/requirements-bench.txt): its absence is a failure.
    bench.main(["ik", "--robot", "panda", "--targets", "5", "--batch-sizes", ""])
    out = capsys.readouterr().out
    solve, _network_alone = _tables(out)
    assert [row[0] for row in solve[1:]] == [bench.HYBRID, bench.NUMERICAL, "TRAC-IK eps=1e-05", "TRAC-IK eps=2.5e-07"]
    for row in solve[3:]:
        assert row[SOLVE_COLUMNS.index("iterations")] == "-"
        assert float(row[SOLVE_COLUMNS.index("mean time / ours")]) > 0.0


def test_tracik_messages_go_to_stderr_filled_in_and_once(capfd, monkeypatch, tmp_path):
    """pytracik prints on stdout, a message's argument after its text ("The root link %s has an inertia ...
    URDF.base_link"): building TracIK says it on stderr, filled in, once for the two solvers ik_bench builds."""
    monkeypatch.setattr(tracik, "_said", set())
    chain, urdf_path = robot_chain("rrr_3dof")
    inertia = '<inertial><mass value="1"/><inertia ixx="1" ixy="0" ixz="0" iyy="1" iyz="0" izz="1"/></inertial>'
    urdf = tmp_path / "heavy_root.urdf"
    urdf.write_text(
        urdf_path.read_text().replace('<link name="base_link"/>', f'<link name="base_link">{inertia}</link>')
    )
    for epsilon in tracik.TRACIK_EPSILONS:
        tracik.TracIK(urdf, "base_link", "tool0", chain.lower, chain.upper, 0.005, epsilon)
    out, err = capfd.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "pytracik: The root link base_link has an inertia specified in the URDF, but KDL does not support a root "
        "link with an inertia.  As a workaround, you can add an extra dummy link to your URDF."
    ]


def test_bench_says_on_stderr_when_it_compiles_kernels(capsys, monkeypatch):
    """A first run compiles the kernels for tens of seconds: ik_bench says so once, on stderr, not among its
    tables (the node's notice, kernels.cache.compiling_notice)."""

    def compiles_twice(_args):
        numba.njit(lambda x: x + 1)(1)  # a new function always compiles
        numba.njit(lambda x: x + 2)(1)
        print("table")

    monkeypatch.setattr(bench, "_run_fk", compiles_twice)
    bench.main(["fk"])
    captured = capsys.readouterr()
    assert captured.out == "table\n"
    (line,) = captured.err.splitlines()
    assert line.startswith("ik_bench: compiling the numba kernels for this machine (about ")


def test_bench_ik_numerical_only_and_network_options(capsys):
    bench.main(["ik", "--robot", "panda", "--targets", "5", "--batch-sizes", "", "--no-tracik", "--no-network"])
    (solve,) = _tables(capsys.readouterr().out)
    assert [row[0] for row in solve[1:]] == [bench.NUMERICAL]
    line = _usage_error(
        capsys,
        ["ik", "--robot", "ur5e", "--targets", "2", "--no-tracik", "--network", str(load_robot("panda").network.path)],
    )
    assert "trained for chain fingerprint" in line


def test_bench_fk_takes_a_urdf_chain_like_ik(capsys):
    urdf = load_robot("ur5e").urdf_path
    bench.main(["fk", "--urdf", str(urdf), "--base", "base_link", "--tip", "tool0", "--batch-size", "8"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"FK timing: {urdf} (6 DoF)")
    assert [line.split()[0] for line in lines[2:]] == ["numpy", "torch", "torch"]
    assert "give either --robot or --urdf" in _usage_error(capsys, ["fk", "--robot", "ur5e", "--urdf", str(urdf)])


def test_bench_ik_random_seed_policy_gives_each_target_its_own_seed(capsys):
    from ik_neural.bench.protocol import seed_configurations

    chain = load_robot("rrr_3dof").chain
    seeds = seed_configurations(chain, "random", 50, random_seed=3)
    assert chain.bounds.contains(seeds).all() and len(np.unique(seeds[:, 0])) == 50
    np.testing.assert_array_equal(seeds, seed_configurations(chain, "random", 50, random_seed=3))
    assert not np.allclose(seeds, reachable_targets(chain, 50, 3)[0])  # a stream apart from the targets'
    bench.main(
        ["ik", "--robot", "rrr_3dof", "--targets", "8", "--seed-policy", "random", "--batch-sizes", "16", "--no-tracik"]
    )
    out = capsys.readouterr().out
    assert "seed policy: random, each target its own" in out
    tables = _tables(out)
    assert [table[0][0] for table in tables] == ["solver", "network alone", "batch", "batch"]
    assert all(cell == "100.0%" for row in tables[0][2:] for cell in row[1:4])


def test_bench_solutions_counts_distinct_checked_solutions(capsys):
    bench.main(["solutions", "--robot", "panda", "--targets", "5", "--count", "6", "--timeout-ms", "200"])
    out = capsys.readouterr().out
    assert "IKSolver.solutions: panda, 7 DoF, network + DLS" in out
    headers, row = _tables(out)[0]
    values = dict(zip(headers, row))
    assert values["targets"] == "5" and float(values["mean found"]) >= 4 and values["rejected"] == "0"


def test_bench_stream_tracker_stays_within_its_step_limits(capsys):
    from ik_neural.bench import stream

    bench.main(["stream", "--robot", "panda", "--seconds", "0.5", "--no-tracik"])
    out = capsys.readouterr().out
    assert "Goal streams: panda, 7 DoF" in out and "goals at 200 Hz (dt 5 ms), 0.5 s per path" in out
    assert "TRAC-IK: not run (--no-tracik)" in out
    tables = _tables(out)
    assert re.findall(r"^path \d: ([\w-]+): ", out, flags=re.M) == list(stream.PATH_NAMES)
    assert len(tables) == len(stream.PATH_NAMES)
    chain = load_robot("panda").chain
    largest_limit = float(Tracker(IKSolver(chain)).largest_step.max())
    for name, table in zip(stream.PATH_NAMES, tables):
        assert table[0] == list(STREAM_COLUMNS)
        rows = {row[0]: dict(zip(STREAM_COLUMNS, row)) for row in table[1:]}
        assert list(rows) == [stream.TRACKER, stream.INDEPENDENT]
        tracker = rows[stream.TRACKER]
        assert tracker["goals"] == "100"
        assert tracker["over limit"] == "0", (name, tracker)
        # Printed to 5 decimals; "over limit" is the exact check, joint by joint.
        assert 0.0 < float(tracker["largest step rad"]) <= largest_limit + 1e-5, (name, tracker)
        assert tracker["collisions"] == ("0" if name == "obstacle" else "-")
    # On the smooth path every goal is answered exactly enough by both.
    smooth = {row[0]: dict(zip(STREAM_COLUMNS, row)) for row in tables[0][1:]}
    for row in smooth.values():
        assert row["commands"] == "100" and float(row["max mm"]) < 0.1
    # The independent solve jumps to the goal out of reach's return: more than a step limit.
    out_of_reach = {row[0]: dict(zip(STREAM_COLUMNS, row)) for row in tables[2][1:]}
    assert int(out_of_reach[stream.INDEPENDENT]["commands"]) < 100


def test_stream_paths_move_no_joint_faster_than_the_path_speed():
    from ik_neural.bench import stream

    chain = load_robot("panda").chain
    for rate_hz in (200.0, 50.0):
        paths = stream.stream_paths(chain, rate_hz, 2.0, stream.PATH_NAMES)
        for path in paths:
            assert path.q.shape == (round(2 * rate_hz), chain.dof) and chain.bounds.contains(path.q).all()
            assert np.abs(np.diff(path.q, axis=0)).max() <= 0.006 * 200 / rate_hz, path.name
            assert 0 < path.reachable.sum() <= len(path.q)
    by_name = {path.name: path for path in paths}
    # The wrist path crosses the Panda's wrist singularity (joint6 near 3.3 rad).
    j, value = stream.wrist_singularity(chain, stream.path_centre(chain))
    assert chain.joint_names[j] == "panda_joint6"
    sweep = by_name["wrist-singularity"].q[:, j]
    assert sweep.min() < value < sweep.max()
    # The obstacle: the first goal outside, some goals inside, and the test refuses a tip inside it.
    obstacle = by_name["obstacle"]
    assert obstacle.reachable[0] and not obstacle.reachable.all()
    inside = obstacle.q[np.flatnonzero(~obstacle.reachable)[0]]
    assert obstacle.accept(obstacle.q[0]) and not obstacle.accept(inside)
    with pytest.raises(ValueError, match="unknown path"):
        stream.stream_paths(chain, 200.0, 1.0, ["nowhere"])


def test_the_verdict_says_whether_a_network_pays_warm_and_cold():
    pays = Verdict(targets=300, warm_ratio=0.62, cold_ratio=0.85, hybrid_success=1.0, numerical_success=0.99)
    assert pays.pays and pays.line().startswith("solving takes 0.62x the numerical time warm, 0.85x cold")
    slow_cold = Verdict(targets=300, warm_ratio=0.62, cold_ratio=1.09, hybrid_success=1.0, numerical_success=1.0)
    assert not slow_cold.pays
    assert slow_cold.line().startswith("this network does not pay yet") and "train longer" in slow_cold.line()


def test_bench_collision_times_the_robots_own_checker(capsys):
    """``ik_bench collision``: the shipped UR5e's checker (its convex pieces), its link pairs and the share of
    configurations in collision as Pinocchio + coal judge them on the same URDF and pairs."""
    from reference import PinocchioCollisionJudge

    from ik_neural.collision import CollisionChecker
    from ik_neural.urdf_model import UrdfModel

    bench.main(["collision", "--robot", "ur5e", "--samples", "300", "--seed", "4"])
    row = capsys.readouterr().out.splitlines()[-1].split()
    robot = load_robot("ur5e")
    checker = CollisionChecker.from_urdf(UrdfModel.parse(robot.urdf_path), robot.chain)
    assert row[0] == "ur5e.urdf" and int(row[-4]) == len(checker.enabled_pairs) == 13
    assert 0 < float(row[-3]) <= float(row[-2])  # median, p90 µs
    judge = PinocchioCollisionJudge(robot.urdf_path, checker.enabled_pairs, robot.chain.joint_names)
    Q = robot.chain.bounds.sample(np.random.default_rng(4), 300)
    judged = np.mean([judge.collides(q) for q in Q])
    assert float(row[-1].rstrip("%")) == pytest.approx(100 * judged, abs=0.05)
