"""Training: it learns (FK loss down, better than untrained), is deterministic, resumable, survives Ctrl-C,
honours the obstacle loss; the network's errors are the solver's metric; and the `ik_train` command's outputs
and errors."""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from reference import ReferenceChain

import ik_neural
from ik_neural import IKSolver, load_robot
from ik_neural.chain import KinematicChain
from ik_neural.evaluation import evaluate_network, network_errors
from ik_neural.network import FORMAT_VERSION, load_network
from ik_neural.sampling import reachable_targets
from ik_neural.training import Obstacle, Trainer, TrainingConfig, training_device

SMALL = dict(width=64, depth=2, batch_size=256, validation_targets=500, validation_every_steps=50)


def _planar_elbow_arm() -> KinematicChain:
    """Two revolute links (1.0 m, 0.8 m) about parallel z axes, full turns: every reachable point but the
    boundary has an elbow-left and an elbow-right solution."""
    return KinematicChain.from_dh([1.0, 0.8], [0.0, 0.0], [0.0, 0.0], lower=[-math.pi] * 2, upper=[math.pi] * 2)


def test_a_short_training_lowers_the_fk_loss_and_beats_the_untrained_net(tmp_path):
    robot = load_robot("dh6_experiments")
    chain = robot.chain
    config = TrainingConfig(steps=600, max_lr=3e-3, **SMALL)
    trainer = Trainer(chain, config, log=lambda _: None)
    untrained = evaluate_network(chain, trainer.model, position_only=False, n_targets=2000)
    result = trainer.run(tmp_path / "net.pt")
    trained = result.metadata["evaluation"]
    losses = [c["loss"] for c in result.curve]
    assert losses[-1] < 0.5 * losses[0], losses
    assert trained["position_error_mm_median"] < 0.5 * untrained["position_error_mm_median"]
    assert trained["orientation_error_deg_median"] < 0.5 * untrained["orientation_error_deg_median"]
    # The exported file is the evaluated network: its figures are reproduced from the file, judged by the
    # reference FK and pose error.
    net = load_network(result.path, chain)
    _, T = reachable_targets(chain, trained["test_targets"], trained["test_seed"])
    reference = ReferenceChain(robot.urdf_path, chain.base_link, chain.tip_link, chain.joint_names)
    position_error, rotation_error = reference.errors(net.predict(T), T)
    assert math.isclose(1e3 * float(np.median(position_error)), trained["position_error_mm_median"], rel_tol=1e-3)
    assert math.isclose(
        math.degrees(float(np.median(rotation_error))), trained["orientation_error_deg_median"], rel_tol=1e-3
    )


def test_network_errors_read_small_rotations_as_the_solver_does():
    # tool0 lies on UR5e's last joint axis: turning that joint by d is a pure rotation error of d, which
    # the arccos of the trace reads as 1.00004e-6 for 1e-6 and as 0 for 1e-8.
    chain = load_robot("ur5e").chain
    q, T = reachable_targets(chain, 3, seed=2)
    turns = np.array([1e-6, 1e-8, 0.0])
    answers = q.copy()
    answers[:, -1] += turns
    position_error, rotation_error = network_errors(chain, answers, T)
    np.testing.assert_allclose(rotation_error, turns, rtol=1e-6, atol=1e-15)
    assert (position_error < 1e-12).all()


@pytest.mark.parametrize("heads", [1, 4])
def test_training_is_deterministic_for_a_seed(tmp_path, heads):
    chain = load_robot("rrr_3dof").chain
    config = TrainingConfig(steps=60, seed=7, heads=heads, **SMALL)
    runs = [Trainer(chain, config, log=lambda _: None).run(tmp_path / f"run{i}.pt") for i in range(2)]
    first, second = (r.module.state_dict() for r in runs)
    assert all(torch.equal(first[k], second[k]) for k in first)
    other = Trainer(chain, TrainingConfig(steps=60, seed=8, **SMALL), log=lambda _: None).run(tmp_path / "other.pt")
    assert not torch.equal(other.module.state_dict()["mlp.0.weight"], first["mlp.0.weight"])


def test_a_four_head_network_trains_loads_and_seeds_the_solver(tmp_path):
    robot = load_robot("dh6_experiments")
    chain = robot.chain
    result = Trainer(chain, TrainingConfig(steps=300, heads=4, **SMALL), log=lambda _: None).run(tmp_path / "k4.pt")
    net = load_network(result.path, chain)
    assert (
        net.heads == 4
        and net.metadata["architecture"]["heads"] == 4
        and net.metadata["format_version"] == FORMAT_VERSION
    )
    _, T = reachable_targets(chain, 400, seed=21)
    guesses = net.predict_all(T)
    assert (
        guesses.shape == (400, 4, 6) and chain.bounds.contains(guesses.reshape(-1, 6), tolerance=1e-6).all()
    )  # float32 limits
    np.testing.assert_array_equal(net.predict(T), guesses[:, 0])
    # Multiple choice: the other heads win where head 0 is worst, so the best of the four is well ahead.
    reference = ReferenceChain(robot.urdf_path, chain.base_link, chain.tip_link, chain.joint_names)
    position_error = np.stack([reference.errors(guesses[:, k], T)[0] for k in range(4)], axis=1)
    assert np.median(position_error.min(1)) < 0.8 * np.median(position_error[:, 0]), np.median(position_error, 0)
    # The report says so too, on its 10 000 test targets (best by position / reach + rotation: on this
    # 0.12 m arm mostly the rotation).
    evaluation, best = result.metadata["evaluation"], result.metadata["evaluation"]["best_of_heads"]
    assert best["position_error_mm_median"] < evaluation["position_error_mm_median"], (best, evaluation)
    assert best["orientation_error_deg_median"] < 0.8 * evaluation["orientation_error_deg_median"], (best, evaluation)
    # The solver refines the four guesses one by one, head 0 first; every answer checked by the reference FK.
    solver = IKSolver(chain, network=net)
    solver.warm_up()  # no kernel compiles inside a solve's 0.5 s
    batch = solver.solve_batch(T[:100], timeout_s=10.0, position_tolerance_m=1e-6, orientation_tolerance_rad=1e-6)
    one = [solver.solve(t, timeout_s=0.5, position_tolerance_m=1e-6, orientation_tolerance_rad=1e-6) for t in T[:100]]
    for q in (batch.q, np.stack([r.q for r in one])):
        position_m, rotation_rad = reference.errors(q, T[:100])
        assert position_m.max() <= 1e-6 and rotation_rad.max() <= 1e-6
        assert chain.bounds.contains(q).all()
    assert batch.success.all() and all(r.success for r in one)


def test_head_spread_keeps_the_heads_apart_without_losing_the_best_guess(tmp_path):
    chain = load_robot("dh6_experiments").chain
    _, T = reachable_targets(chain, 400, seed=21)
    pairs = np.triu_indices(4, 1)
    spread_rad, best_m = {}, {}
    for head_spread in (0.0, 0.4):
        config = TrainingConfig(steps=300, heads=4, head_spread=head_spread, **SMALL)
        net = load_network(Trainer(chain, config, log=lambda _: None).run(tmp_path / f"{head_spread}.pt").path, chain)
        guesses = net.predict_all(T)
        # Per target, the closest two heads (max absolute joint difference, rad); its 10th percentile.
        closest = np.abs(guesses[:, pairs[0]] - guesses[:, pairs[1]]).max(2).min(1)
        spread_rad[head_spread] = np.percentile(closest, 10)
        best_m[head_spread] = np.median(np.stack([network_errors(chain, guesses[:, k], T)[0] for k in range(4)]).min(0))
    assert spread_rad[0.4] > 0.3 and spread_rad[0.4] > 1.3 * spread_rad[0.0], spread_rad
    assert best_m[0.4] < 1.25 * best_m[0.0], best_m


def test_the_default_rotation_weight_trades_rotation_for_a_six_joint_arms_positions(tmp_path):
    # At rotation weight 1 a network of a 6-joint arm fits the rotation and gives up the position
    # (docs/benchmarks.md, "Why a new arm's positions learned slowly"); the default weighs it less.
    chain = load_robot("dh6_experiments").chain
    default_weight = TrainingConfig().rotation_weight
    assert default_weight < 1.0
    figures = {}
    for weight in (1.0, default_weight):
        config = TrainingConfig(steps=1000, heads=4, rotation_weight=weight, **SMALL)
        figures[weight] = (
            Trainer(chain, config, log=lambda _: None).run(tmp_path / f"{weight}.pt").metadata["evaluation"]
        )
    position_mm = {w: f["position_error_mm_median"] for w, f in figures.items()}
    rotation_deg = {w: f["orientation_error_deg_median"] for w, f in figures.items()}
    assert position_mm[default_weight] < 0.8 * position_mm[1.0], position_mm
    assert rotation_deg[default_weight] > rotation_deg[1.0], rotation_deg


def test_init_from_starts_where_the_file_left_off_and_refuses_another_network(tmp_path):
    chain = load_robot("dh6_experiments").chain
    parent = Trainer(chain, TrainingConfig(steps=300, heads=4, **SMALL), log=lambda _: None).run(tmp_path / "parent.pt")
    # A run of one step at a negligible learning rate from the parent exports the parent's network.
    config = TrainingConfig(steps=1, heads=4, max_lr=1e-12, seed=5, init_from=str(parent.path), **SMALL)
    child = Trainer(chain, config, log=lambda _: None).run(tmp_path / "child.pt")
    _, T = reachable_targets(chain, 400, seed=21)
    np.testing.assert_allclose(
        load_network(child.path, chain).predict_all(T), load_network(parent.path, chain).predict_all(T), atol=1e-5
    )
    assert child.metadata["training"]["init_from"] == str(parent.path)
    scratch = Trainer(chain, TrainingConfig(steps=1, heads=4, seed=5, **SMALL), log=lambda _: None).run(
        tmp_path / "s.pt"
    )
    assert (
        child.metadata["evaluation"]["position_error_mm_median"]
        < 0.5 * scratch.metadata["evaluation"]["position_error_mm_median"]
    )
    # Another architecture or another chain is refused, naming the file and what differs.
    with pytest.raises(ValueError, match=r"init-from .*parent.pt is a 2x64 network with 4 head.*trains 2x32"):
        Trainer(chain, TrainingConfig(steps=1, heads=4, init_from=str(parent.path), **{**SMALL, "width": 32}))
    with pytest.raises(ValueError, match=r"parent.pt was trained for chain fingerprint"):
        Trainer(load_robot("ur5e").chain, config)


def test_the_validation_score_counts_the_best_head_as_well_as_head_0(tmp_path):
    chain = load_robot("dh6_experiments").chain
    trainer = Trainer(chain, TrainingConfig(steps=1, heads=4, **SMALL), log=lambda _: None)
    figures = trainer._validate()
    guesses = trainer.model.guesses(torch.from_numpy(trainer.T_validation).float()).detach().double().numpy()
    errors = [network_errors(chain, guesses[:, k], trainer.T_validation) for k in range(4)]
    score = np.stack([position_m / chain.reach_m + rotation_rad for position_m, rotation_rad in errors], axis=1)
    assert math.isclose(figures["score"], 0.5 * (score[:, 0].mean() + score.min(1).mean()), rel_tol=1e-9)
    best = score.argmin(1)
    best_position_m = network_errors(chain, guesses[np.arange(len(best)), best], trainer.T_validation)[0]
    assert math.isclose(figures["best_position_error_mm_median"], 1e3 * np.median(best_position_m), rel_tol=1e-9)


def test_supervised_baseline_learns_the_joint_angles(tmp_path):
    chain = load_robot("planar_2link").chain  # one solution per point: supervised learning is well posed
    config = TrainingConfig(steps=400, supervised=True, position_only=True, max_lr=3e-3, **SMALL)
    trainer = Trainer(chain, config, log=lambda _: None)
    before = evaluate_network(chain, trainer.model, position_only=True, n_targets=2000)
    after = trainer.run(tmp_path / "sup.pt").metadata["evaluation"]
    assert after["position_error_mm_median"] < 0.2 * before["position_error_mm_median"]


def test_obstacle_loss_keeps_the_joints_out_of_a_sphere_the_plain_net_crosses(tmp_path):
    chain = _planar_elbow_arm()
    # A sphere on the circle the elbow moves on: one of the two elbow solutions of many targets is inside.
    obstacle = Obstacle((0.0, 1.0, 0.0), 0.2)
    _, T = reachable_targets(chain, 4000, 5)
    clear = np.linalg.norm(T[:, :3, 3] - np.array(obstacle.center_m), axis=1) > obstacle.radius_m + 0.3
    T = T[clear]  # targets the arm can reach with both its elbow and its tip outside the sphere

    def elbow_inside(result) -> float:
        with torch.no_grad():
            q = result.module(torch.from_numpy(T).float()).double()
        elbow = chain.frames(q)[0][:, 1, :3, 3].numpy()
        return float((np.linalg.norm(elbow - obstacle.center_m, axis=1) < obstacle.radius_m).mean())

    common = dict(
        steps=1500,
        position_only=True,
        max_lr=3e-3,
        width=64,
        depth=3,
        batch_size=256,
        validation_targets=500,
        validation_every_steps=100,
    )
    plain = Trainer(chain, TrainingConfig(**common), log=lambda _: None).run(tmp_path / "plain.pt")
    avoiding = Trainer(
        chain,
        TrainingConfig(**common, obstacles=(obstacle,), obstacle_margin_m=0.05, obstacle_weight=3.0),
        log=lambda _: None,
    ).run(tmp_path / "avoiding.pt")
    inside_plain, inside_avoiding = elbow_inside(plain), elbow_inside(avoiding)
    assert inside_plain > 0.03, inside_plain  # the plain net does put its elbow in the sphere
    assert inside_avoiding < 0.25 * inside_plain, (inside_plain, inside_avoiding)
    # ... while it still reaches its targets.
    assert avoiding.metadata["evaluation"]["position_error_mm_median"] < 50.0


def _train_command(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from ik_neural.commands.train import main; sys.exit(main())", *args]


def test_train_command_writes_model_and_report(tmp_path):
    out = tmp_path / "rrr.pt"
    done = subprocess.run(
        _train_command(
            "--robot", "rrr_3dof", "--out", str(out), "--steps", "100", "--width", "32", "--depth", "2",
            "--verdict-targets", "40",
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "network alone on 10000 test targets" in done.stdout
    net = load_network(out, load_robot("rrr_3dof").chain)
    assert net.metadata["training"]["steps_done"] == 100 and not net.metadata["training"]["interrupted"]
    report = json.loads((tmp_path / "rrr.report.json").read_text())
    assert report["evaluation"] == net.metadata["evaluation"]
    # The closing verdict: the hybrid against the numerical solver alone on held-out targets, in the report
    # and as the last line.
    verdict = report["verdict"]
    assert verdict["targets"] == 40 and verdict["warm_ratio"] > 0 and verdict["cold_ratio"] > 0
    assert 0 <= verdict["hybrid_success"] <= 1 and 0.9 <= verdict["numerical_success"] <= 1  # a 3-joint arm
    assert done.stdout.rstrip().splitlines()[-1] == f"[train] verdict: {verdict['line']}"
    assert verdict["line"].startswith("solving takes" if verdict["pays"] else "this network does not pay yet")
    assert report["validation_curve"][-1]["step"] == 100
    for name in ("curve", "error_map", "histograms"):
        png = (tmp_path / f"rrr.{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 5000
    assert not (tmp_path / "rrr.pt.ckpt").exists()  # finished runs leave no checkpoint
    assert net.metadata["training"]["device"] == training_device("auto").type  # the default, --device auto


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_without_a_gpu_auto_trains_on_the_cpu_and_cuda_is_refused(tmp_path):
    assert training_device("auto") == torch.device("cpu")
    done = subprocess.run(
        _train_command("--robot", "rrr_3dof", "--out", str(tmp_path / "x.pt"), "--device", "cuda"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert done.stderr.startswith("ik_train: error: device cuda: CUDA is not available")
    assert not (tmp_path / "x.pt").exists()


def test_ctrl_c_writes_the_best_model_and_resume_checks_the_settings(tmp_path):
    out = tmp_path / "interrupted.pt"
    args = ("--robot", "rrr_3dof", "--out", str(out), "--steps", "100000", "--width", "32", "--depth", "2")
    # SIGINT as a terminal's Ctrl-C delivers it; a shell without job control (CI) starts its background
    # jobs with SIGINT ignored, and Python then never raises KeyboardInterrupt: restore the default.
    process = subprocess.Popen(
        _train_command(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        for line in process.stdout:
            if "steps of" in line:  # the loop starts right after this line
                break
        time.sleep(3.0)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, output
    assert "interrupted at step" in output
    chain = load_robot("rrr_3dof").chain
    training = load_network(out, chain).metadata["training"]
    assert training["interrupted"] and 0 < training["steps_done"] < 100000
    assert (tmp_path / "interrupted.pt.ckpt").is_file()

    # --resume picks up at the interrupted step (a shorter run of the same settings is refused).
    refused = subprocess.run(
        _train_command(*args[:4], "--steps", "50", *args[6:], "--resume"), capture_output=True, text=True, timeout=120
    )
    assert refused.returncode == 2 and "other settings: steps" in refused.stderr


def test_a_run_exports_the_network_it_started_with_when_the_source_changes_meanwhile(tmp_path):
    # TorchScript compiles from the source file on disk: a run whose torch_network.py is edited while it
    # trains (lines shifted, here) must still write the network it trained.
    package = tmp_path / "ik_neural"
    shutil.copytree(Path(ik_neural.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    script = f"""
import math
from pathlib import Path
import numpy as np
import torch
from ik_neural.chain import KinematicChain
from ik_neural.network import load_network
from ik_neural.sampling import reachable_targets
from ik_neural.training import Trainer, TrainingConfig
chain = KinematicChain.from_dh([1.0, 0.8], [0.0, 0.0], [0.0, 0.0], lower=[-math.pi] * 2, upper=[math.pi] * 2)
trainer = Trainer(chain, TrainingConfig(steps=20, width=16, depth=1, validation_targets=50), log=lambda _: None)
source = Path({str(package / "torch_network.py")!r})
source.write_text("# edited while training\\n" * 7 + source.read_text().replace("def ", "def  ", 3))
result = trainer.run(Path({str(tmp_path / "net.pt")!r}))
_, T = reachable_targets(chain, 10, seed=3)
with torch.inference_mode():
    expected = result.module.eval()(torch.from_numpy(T).float()).double().numpy()
assert np.allclose(load_network(result.path, chain).predict(T), expected, atol=1e-5)
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_resumed_run_equals_an_uninterrupted_one(tmp_path):
    chain = load_robot("rrr_3dof").chain
    config = TrainingConfig(steps=120, **SMALL)
    straight = Trainer(chain, config, log=lambda _: None).run(tmp_path / "straight.pt")

    class StopAt(Trainer):
        """Ctrl-C after step 70, as the signal would raise it."""

        steps_taken = 0

        def _step(self, optimizer, lr, mine):
            if self.steps_taken == 70:
                raise KeyboardInterrupt
            self.steps_taken += 1
            return super()._step(optimizer, lr, mine)

    first = StopAt(chain, config, log=lambda _: None).run(tmp_path / "resumed.pt")
    assert first.interrupted and first.metadata["training"]["steps_done"] == 70
    resumed = Trainer(chain, config, log=lambda _: None).run(tmp_path / "resumed.pt", resume=True)
    assert not resumed.interrupted and resumed.metadata["training"]["steps_done"] == 120
    a, b = straight.module.state_dict(), resumed.module.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_train_command_names_bad_input(tmp_path):
    def run(*args):
        return subprocess.run(_train_command(*args), capture_output=True, text=True, timeout=120)

    done = run("--urdf", str(tmp_path / "none.urdf"), "--base", "a", "--tip", "b", "--out", str(tmp_path / "x.pt"))
    assert done.returncode == 2 and done.stderr.startswith("ik_train: error: ") and "none.urdf" in done.stderr
    done = run("--urdf", str(load_robot("panda").urdf_path), "--base", "panda_link0", "--tip", "panda_link8")
    assert done.returncode == 2 and "--out is required with --urdf" in done.stderr
    done = run("--robot", "rrr_3dof", "--urdf", str(load_robot("panda").urdf_path), "--out", str(tmp_path / "x.pt"))
    assert done.returncode == 2 and "either --robot or --urdf" in done.stderr
    done = run("--urdf", str(load_robot("panda").urdf_path), "--out", str(tmp_path / "x.pt"))
    assert done.returncode == 2 and "--base LINK and --tip LINK" in done.stderr
    done = run(
        "--urdf",
        str(load_robot("panda").urdf_path),
        "--base",
        "panda_link0",
        "--tip",
        "hand",
        "--out",
        str(tmp_path / "x.pt"),
    )
    assert done.returncode == 2 and "'hand'" in done.stderr
    bad_yaml = tmp_path / "obstacles.yaml"
    bad_yaml.write_text("obstacles:\n  - center: [0, 0]\n    radius: 0.1\n")
    done = run("--robot", "rrr_3dof", "--out", str(tmp_path / "x.pt"), "--obstacles", str(bad_yaml))
    assert done.returncode == 2 and "entry 0" in done.stderr
    done = run("--robot", "rrr_3dof", "--out", str(tmp_path / "x.pt"), "--width", "0")
    assert done.returncode == 2 and "width must be > 0" in done.stderr
    done = run("--robot", "rrr_3dof", "--out", str(tmp_path / "x.pt"), "--head-spread", "-0.1")
    assert done.returncode == 2 and "head_spread" in done.stderr
    assert not (tmp_path / "x.pt").exists()
