"""Data-parallel training: `ik_train` under torchrun, two CPU processes on gloo (loopback only), against a
single-process run of the same settings."""

import os
import socket
import subprocess
import sys

import torch

from ik_neural import load_robot
from ik_neural.evaluation import evaluate_network
from ik_neural.network import load_network
from ik_neural.training import Trainer, TrainingConfig

SETTINGS = ("--robot", "rrr_3dof", "--width", "64", "--depth", "2", "--batch-size", "256", "--seed", "3")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(out, *args: str, processes: int = 1) -> subprocess.CompletedProcess:
    """``ik_train`` in one process, or under torchrun in ``processes`` on the CPU."""
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    launcher = (
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            f"--nproc_per_node={processes}",
            "--master_addr=127.0.0.1",
            f"--master_port={_free_port()}",
        ]
        if processes > 1
        else [sys.executable]
    )
    command = [*launcher, "-m", "ik_neural.commands.train", *SETTINGS, "--device", "cpu", "--out", str(out), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env={**env, "MASTER_ADDR": "127.0.0.1"})


def test_two_processes_learn_as_one_does_and_rerun_bit_identically(tmp_path):
    chain = load_robot("rrr_3dof").chain
    untrained = Trainer(chain, TrainingConfig(width=64, depth=2, seed=3), log=lambda _: None).model
    before = evaluate_network(chain, untrained, position_only=False)
    single = _train(tmp_path / "single.pt", "--steps", "60")
    assert single.returncode == 0, single.stderr
    runs = [_train(tmp_path / f"ddp{i}.pt", "--steps", "60", processes=2) for i in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stdout + run.stderr
        assert run.stdout.count("network alone on") == 1  # rank 0 alone reports
    one, two = (load_network(tmp_path / name, chain) for name in ("single.pt", "ddp0.pt"))
    assert one.metadata["training"]["world_size"] == 1 and two.metadata["training"]["world_size"] == 2
    assert two.metadata["training"]["steps_done"] == 60 and two.metadata["training"]["device"] == "cpu"
    for net in (one, two):
        figures = net.metadata["evaluation"]
        assert figures["position_error_mm_median"] < 0.5 * before["position_error_mm_median"]
        assert figures["orientation_error_deg_median"] < 0.5 * before["orientation_error_deg_median"]
    # The split batches are other samples than one process draws, to the same effect.
    ratio = (
        two.metadata["evaluation"]["position_error_mm_median"] / one.metadata["evaluation"]["position_error_mm_median"]
    )
    assert 0.5 < ratio < 2.0, ratio
    # --steps is deterministic for a world size: the rerun has the same weights.
    a, b = (load_network(tmp_path / f"ddp{i}.pt", chain).module.state_dict() for i in range(2))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "ddp0.report.json").is_file() and not (tmp_path / "ddp0.pt.ckpt").exists()


def test_two_processes_stop_together_on_rank_0s_clock(tmp_path):
    done = _train(tmp_path / "timed.pt", "--minutes", "0.05", processes=2)
    assert done.returncode == 0, done.stdout + done.stderr
    training = load_network(tmp_path / "timed.pt", load_robot("rrr_3dof").chain).metadata["training"]
    assert training["world_size"] == 2 and training["steps_done"] > 0 and not training["interrupted"]


def test_resume_is_refused_under_torchrun(tmp_path):
    done = _train(tmp_path / "r.pt", "--steps", "60", "--resume", processes=2)
    assert done.returncode != 0
    assert "ik_train: error: cannot resume a run of 2 processes" in done.stderr
