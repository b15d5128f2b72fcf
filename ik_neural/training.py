"""Training an IK network for a chain, on the CPU or a CUDA GPU, in one process or data-parallel over
several (torchrun): the method of Stephan et al., "On Learning of Inverse Kinematics for Highly
Redundant Robots with Neural Networks".

Every step draws a fresh batch of joint configurations uniformly within the limits, takes their tip poses
by forward kinematics as targets, and (unsupervised, the default) minimises the error of
FK(network(pose)) against the pose: position error / reach plus a weight (``rotation_weight``) times the
distance between the first two columns of the rotations. Redundant robots thereby never see contradictory
samples. The supervised mode (loss on the joint encodings of the sampled q, as Al-Sharif et al. and
Nathan train theirs) is the baseline.

Extra losses: joint limits (bounded outputs beyond [-1, 1]), unit-length biternions, and spherical
obstacles (Stephan et al., Eq. 5). A pool of the highest-error samples seen so far supplies part of every batch
(hard-example mining), for better coverage where the network is worst.

The learning rate follows a 1cycle schedule (Adam) over the run's progress: steps done / ``steps``, or,
with a time budget, wall time / ``minutes``. A validation set tracks progress; the best validation model is what gets
exported, also when training is interrupted (Ctrl-C). Checkpoints make a run resumable.

Under torch.distributed (a process group initialised by the caller, e.g. ``ik_train`` under torchrun) the
model is wrapped in DistributedDataParallel: every rank draws its share of each batch from its own
generator, DDP averages the gradients, the schedule's progress is the same on every rank (rank 0's clock
for a time budget), and rank 0 alone validates, logs and exports.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.distributed as dist

from ik_neural.chain import KinematicChain
from ik_neural.evaluation import best_guess_errors, evaluate_network, head_errors
from ik_neural.geometry import pose_errors
from ik_neural.network import chain_metadata, load_scripted, read_network_metadata
from ik_neural.sampling import reachable_targets
from ik_neural.torch_network import PoseToJoints, save_network, script_module

# Validation and test targets come from their own seeds, apart from the training stream.
VALIDATION_SEED = 1_000_003


@dataclass(frozen=True)
class Obstacle:
    """A sphere in the base frame the arm's joints should keep clear of (by the config's margin)."""

    center_m: tuple[float, float, float]
    radius_m: float


@dataclass(frozen=True)
class TrainingConfig:
    """How a network is trained. Defaults were chosen by measurement (docs/benchmarks.md, "Training: how the defaults were chosen")."""

    steps: int = 0
    """Optimiser steps (deterministic for a seed); 0 = train for ``minutes`` of wall time instead."""
    minutes: float = 10.0
    """Training time budget when ``steps`` is 0 (the schedule then follows the clock: not deterministic)."""
    position_only: bool = False
    """Train (and take input) for the tip position only."""
    supervised: bool = False
    """Baseline: loss on the joint encodings of the sampled configurations instead of through FK."""
    output_encoding: str = "biternion"
    """"biternion": (sin, cos) for joints that turn a full circle, limit-scaled for the rest; "linear": all limit-scaled."""
    width: int = 128
    depth: int = 3
    batch_norm: bool = False
    heads: int = 4
    """Guesses per pose (K). K > 1 trains multiple-choice: every sample's loss is head 0's (the guess
    ``predict`` gives, trained as a single-head network is), plus the least of the K heads' losses (the
    other heads win where they beat head 0: other IK branches), plus ``head_mean_weight`` times their
    mean (so that no head starves)."""
    head_mean_weight: float = 0.1
    head_spread: float = 0.0
    """K > 1: two heads whose raw outputs (limit-scaled joints, biternions) are closer than this RMS
    distance (dimensionless) are pushed apart, so that the heads do not all take one branch; 0 disables."""
    head_spread_weight: float = 0.25
    """Weight of that push: the mean over head pairs of how far each pair is inside ``head_spread``."""
    batch_size: int = 512
    max_lr: float = 3e-3
    """Peak learning rate of the 1cycle schedule."""
    rotation_weight: float = 0.2
    """Weight of the rotation term (column distance) against position error / reach. Below 1: at 1 the
    network trades position for rotation (on five arms, 3 minutes each, the median position error was 2
    to 12 times 0.2's; docs/benchmarks.md, "Why a new arm's positions learned slowly")."""
    limit_weight: float = 1.0
    """Weight of the joint-limit loss (how far bounded outputs leave [-1, 1])."""
    hard_fraction: float = 0.0
    """Share of every batch drawn from the pool of the highest-error samples; 0 disables mining."""
    hard_start: float = 0.5
    """Progress (0 to 1) from which batches include hard samples: early on every sample is hard."""
    hard_pool_batches: int = 8
    """Size of that pool, in batches."""
    obstacles: tuple[Obstacle, ...] = ()
    obstacle_margin_m: float = 0.1
    """Clearance kept between every joint origin (and the tip) and each obstacle's surface."""
    obstacle_weight: float = 1.0
    seed: int = 0
    init_from: str = ""
    """Model file whose weights the run starts from (fine-tuning: same chain and architecture); empty:
    random initialisation."""
    validation_targets: int = 2000
    validation_every_steps: int = 250
    checkpoint_every_s: float = 60.0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainingConfig":
        values = dict(values)
        values["obstacles"] = tuple(
            Obstacle(tuple(o["center_m"]), float(o["radius_m"])) for o in values.get("obstacles", ())
        )
        return cls(**values)

    def check(self) -> None:
        """ValueError naming the first setting that cannot be trained with."""
        positive = {
            "width": self.width,
            "depth": self.depth,
            "heads": self.heads,
            "batch_size": self.batch_size,
            "max_lr": self.max_lr,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"training setting {name} must be > 0, got {value}")
        for name, value in {"head_spread": self.head_spread, "head_spread_weight": self.head_spread_weight}.items():
            if not value >= 0:
                raise ValueError(f"training setting {name} must be >= 0, got {value}")
        if self.steps < 0 or (self.steps == 0 and not self.minutes > 0):
            raise ValueError(
                f"training needs steps > 0 or minutes > 0 (got steps={self.steps}, minutes={self.minutes})"
            )
        if not 0.0 <= self.hard_fraction < 1.0:
            raise ValueError(f"hard_fraction must be in [0, 1), got {self.hard_fraction}")
        if not 0.0 <= self.hard_start <= 1.0:
            raise ValueError(f"hard_start must be in [0, 1], got {self.hard_start}")
        for o in self.obstacles:
            if len(o.center_m) != 3 or not all(math.isfinite(c) for c in o.center_m) or not o.radius_m > 0:
                raise ValueError(f"obstacle {o} needs a finite centre (x, y, z) in metres and a radius > 0")


@dataclass
class TrainingResult:
    """What ``train`` produced: the model file, its metadata, and the validation curve."""

    path: Path
    module: PoseToJoints
    metadata: dict
    curve: list[dict] = field(default_factory=list)
    interrupted: bool = False


def training_device(name: str) -> torch.device:
    """The device for ``name``: "cpu", "cuda", or "auto" (cuda where available, else cpu)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device cuda: CUDA is not available to this torch {torch.__version__}")
    return torch.device(name)


class _HardPool:
    """The highest-error joint configurations seen so far (per-sample loss), to be trained on again."""

    def __init__(self, size: int, dof: int, device: torch.device) -> None:
        self.size = size
        self.q = torch.empty(0, dof, device=device)
        self.error = torch.empty(0, device=device)

    def draw(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """n configurations from the pool (fewer while it fills) and their pool indices."""
        if len(self.q) < max(n, 1):
            return self.q[:0], torch.empty(0, dtype=torch.long, device=self.q.device)
        index = torch.randint(len(self.q), (n,), generator=generator).to(self.q.device)
        return self.q[index], index

    def update(self, index: torch.Tensor, q_fresh: torch.Tensor, error: torch.Tensor) -> None:
        """Re-score the drawn entries, then keep the ``size`` worst of pool and fresh samples."""
        n_hard = len(index)
        self.error[index] = error[len(error) - n_hard :]
        q = torch.cat([self.q, q_fresh])
        e = torch.cat([self.error, error[: len(error) - n_hard]])
        if len(q) > self.size:
            keep = torch.topk(e, self.size).indices
            q, e = q[keep], e[keep]
        self.q, self.error = q, e

    def state(self) -> dict:
        return {"q": self.q, "error": self.error}

    def load(self, state: dict) -> None:
        self.q, self.error = state["q"].to(self.q.device), state["error"].to(self.q.device)


def _print_now(line: str) -> None:
    print(line, flush=True)  # progress must reach a log file while training, not at exit


class _RawOutputs(torch.nn.Module):
    """The network with ``raw`` as its forward: DistributedDataParallel syncs only what goes through forward."""

    def __init__(self, model: PoseToJoints) -> None:
        super().__init__()
        self.model = model

    def forward(self, T: torch.Tensor) -> torch.Tensor:
        return self.model.raw(T)


class Trainer:
    """One training run of a network for ``chain``; ``run`` trains, exports and returns the result.

    ``device`` holds the model and batches (the exported model is on the CPU). It is not part of the
    configuration: a checkpoint made on one device resumes on another. Under torch.distributed each rank
    trains on ``config.batch_size / world size`` samples a step, so the settings mean the same training
    for any number of processes.
    """

    def __init__(
        self,
        chain: KinematicChain,
        config: TrainingConfig,
        log: Callable[[str], None] = _print_now,
        device: torch.device = torch.device("cpu"),
    ) -> None:
        config.check()
        self.chain = chain
        self.config = config
        self.log = log
        self.device = device
        self.rank, self.world_size = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
        if config.batch_size % self.world_size:
            raise ValueError(f"batch size {config.batch_size} does not split evenly over {self.world_size} processes")
        self.batch_size = config.batch_size // self.world_size
        torch.manual_seed(config.seed)
        self.model = PoseToJoints(
            chain,
            config.position_only,
            config.output_encoding,
            config.width,
            config.depth,
            config.batch_norm,
            config.heads,
        ).to(device)
        # Compiled now, so that the export at the end uses the source the run started with (an edit of
        # torch_network.py during a long run would otherwise break it) and a module that cannot be
        # scripted fails before the budget is spent.
        script_module(self.model)
        if config.init_from:
            self._load_initial_weights(Path(config.init_from))
        self.model.train()
        # Buffers are constants (batch norm's running statistics aside: rank 0's are the ones exported).
        self.raw = (
            torch.nn.parallel.DistributedDataParallel(_RawOutputs(self.model), broadcast_buffers=False)
            if dist.is_initialized()
            else self.model.raw
        )
        # Each rank its own stream of batches from the seed (rank 0's is the single-process one).
        self.generator = torch.Generator().manual_seed(config.seed + self.rank * 2**48)
        self.inverse_reach = 1.0 / chain.reach_m
        self.obstacle_centers = torch.tensor(
            [o.center_m for o in config.obstacles], dtype=torch.float32, device=device
        ).reshape(-1, 3)
        self.obstacle_radii = torch.tensor([o.radius_m for o in config.obstacles], dtype=torch.float32, device=device)
        self.n_hard = int(config.hard_fraction * self.batch_size)
        self.pool = _HardPool(config.hard_pool_batches * self.batch_size, chain.dof, device)
        _, self.T_validation = reachable_targets(chain, config.validation_targets, VALIDATION_SEED)

    def _load_initial_weights(self, path: Path) -> None:
        """Start from the weights of the model file at ``path``; ValueError naming the file and what differs
        (chain, or layer shapes: another width, depth, head count or input)."""
        metadata = read_network_metadata(path)  # refuses a file that is not an ik_neural model, naming it
        if metadata.get("fingerprint") != self.chain.fingerprint:
            raise ValueError(
                f"--init-from {path} was trained for chain fingerprint {metadata.get('fingerprint')}, "
                f"not this chain's {self.chain.fingerprint}"
            )
        theirs = load_scripted(path).state_dict()
        ours = self.model.state_dict()
        differing = sorted(
            k for k in set(ours) | set(theirs) if k not in ours or k not in theirs or theirs[k].shape != ours[k].shape
        )
        if differing:
            a = metadata.get("architecture", {})
            raise ValueError(
                f"--init-from {path} is a {a.get('depth', '?')}x{a.get('width', '?')} network with {a.get('heads', 1)} "
                f"head(s) and input {metadata.get('input', {}).get('encoding', '?')}; this run trains "
                f"{self.config.depth}x{self.config.width} with {self.config.heads} and input "
                f"{self.model.input_encoding} (differing: {', '.join(differing)})"
            )
        self.model.load_state_dict({k: v.to(self.device) for k, v in theirs.items()})

    # ------------------------------------------------------------------ one step

    def _sample(self, n: int) -> torch.Tensor:
        """n configurations (n, dof) uniform within the limits, float32, from the run's torch generator
        (its state is checkpointed, so a resumed run draws what the uninterrupted one would)."""
        u = torch.rand(n, self.chain.dof, generator=self.generator)  # on the CPU: the same draws on any device
        return self.chain.bounds.at_fraction(u.to(self.device))

    def losses(self, q_sampled: torch.Tensor) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """Per-sample loss (N,) for configurations q_sampled (N, dof), and the position (m) and rotation
        (rad) errors (N,) of the network's (first) answers to their poses by ``geometry.pose_errors``
        (for progress: the metric the solver and the evaluation use)."""
        config, model = self.config, self.model
        k = config.heads
        T_pose = self.chain.forward(q_sampled)
        # K heads: K rows per sample, head by head; each row is judged against its sample's pose.
        raw = self.raw(T_pose).reshape(len(q_sampled) * k, -1)
        T_target = T_pose.repeat_interleave(k, dim=0)
        q = model.decode(raw, clamp=False)
        frames, T = self.chain.frames(q)
        if config.supervised:
            loss = ((raw - model.encode(q_sampled).repeat_interleave(k, dim=0)) ** 2).mean(1)
        else:
            loss = torch.linalg.vector_norm(T[:, :3, 3] - T_target[:, :3, 3], dim=1) * self.inverse_reach
            if not config.position_only:
                columns = (T[:, :3, :2] - T_target[:, :3, :2]).flatten(1)
                loss = loss + config.rotation_weight * torch.linalg.vector_norm(columns, dim=1)
        o = raw[:, : model.n_linear]
        loss = loss + config.limit_weight * torch.relu(o.abs() - 1.0).sum(1)
        if model.n_periodic:
            pairs = raw[:, model.n_linear :].reshape(len(raw), model.n_periodic, 2)
            loss = loss + ((torch.linalg.vector_norm(pairs, dim=2) - 1.0) ** 2).sum(1)
        if len(self.obstacle_radii):
            # Stephan et al., Eq. 5: how far the closest point (joint origins and tip) is inside sphere + margin.
            points = torch.cat([frames[:, :, :3, 3], T[:, None, :3, 3]], dim=1)
            distance = torch.cdist(points, self.obstacle_centers[None].expand(len(points), -1, -1))
            clearance = distance - self.obstacle_radii - config.obstacle_margin_m
            loss = loss + config.obstacle_weight * self.inverse_reach * torch.relu(-clearance.amin(1)).sum(1)
        first = slice(None, None, k)
        _, _, position_error, rotation_error = pose_errors(T_pose.cpu().numpy(), T[first].detach().cpu().numpy())
        if k > 1:
            per_head = loss.reshape(len(q_sampled), k)
            loss = per_head[:, 0] + per_head.amin(1) + config.head_mean_weight * per_head.mean(1)
            if config.head_spread > 0:
                by_head = raw.reshape(len(q_sampled), k, -1)
                i, j = torch.triu_indices(k, k, 1, device=raw.device)
                # (+1e-12: the square root has no gradient at 0, where collapsed heads sit)
                rms = torch.sqrt(((by_head[:, i] - by_head[:, j]) ** 2).mean(2) + 1e-12)
                loss = loss + config.head_spread_weight * torch.relu(config.head_spread - rms).mean(1)
        return loss, position_error, rotation_error

    def _step(self, optimizer: torch.optim.Optimizer, lr: float, mine: bool) -> tuple[float, float, float]:
        """One optimiser step at learning rate ``lr`` on a fresh batch (plus hard samples if ``mine``);
        returns (loss, median position error m, median rotation error rad) of the batch."""
        q_hard, index = self.pool.draw(self.n_hard if mine else 0, self.generator)
        q_fresh = self._sample(self.batch_size - len(q_hard))
        loss, position_error, rotation_error = self.losses(torch.cat([q_fresh, q_hard]))
        optimizer.zero_grad(set_to_none=True)
        loss.mean().backward()
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.step()
        if self.n_hard:
            self.pool.update(index, q_fresh, loss.detach())
        return float(loss.detach().mean()), float(np.median(position_error)), float(np.median(rotation_error))

    # ------------------------------------------------------------------ the run

    def _validate(self) -> dict:
        """Head 0's errors on the validation targets (mm, degrees), the best head's medians, and the score
        that picks the model to export: the mean of head 0's and of the best head's score
        (``evaluation.head_errors``), as the multiple-choice loss weighs them (K = 1: head 0's alone)."""
        self.model.eval()
        with torch.inference_mode():
            guesses = self.model.guesses(torch.from_numpy(self.T_validation).to(self.device, torch.float32))
        self.model.train()
        position_error, rotation_error, score = head_errors(
            self.chain, guesses.double().cpu().numpy(), self.T_validation, self.config.position_only
        )
        best_position_error, best_rotation_error = best_guess_errors(position_error, rotation_error, score)
        position_error, rotation_error = position_error[:, 0], rotation_error[:, 0]
        return {
            "position_error_mm_median": 1e3 * float(np.median(position_error)),
            "position_error_mm_p95": 1e3 * float(np.percentile(position_error, 95)),
            "orientation_error_deg_median": math.degrees(float(np.median(rotation_error))),
            "orientation_error_deg_p95": math.degrees(float(np.percentile(rotation_error, 95))),
            "best_position_error_mm_median": 1e3 * float(np.median(best_position_error)),
            "best_orientation_error_deg_median": math.degrees(float(np.median(best_rotation_error))),
            "score": float(0.5 * (score[:, 0].mean() + score.min(1).mean())),
        }

    def run(
        self, out_path: Path, checkpoint_path: Optional[Path] = None, resume: bool = False
    ) -> Optional[TrainingResult]:
        """Train, then write the best validation model to ``out_path`` (also after Ctrl-C) and return it.

        ``checkpoint_path`` (default ``out_path`` + ".ckpt") is written every ``checkpoint_every_s``;
        ``resume`` continues from it (same chain and configuration required). Under torch.distributed
        rank 0 exports and returns the result, the other ranks None once it is written; there are no
        checkpoints (each rank's batch stream would have to be saved), and ``resume`` is refused.
        """
        config = self.config
        if resume and self.world_size > 1:
            raise ValueError(f"cannot resume a run of {self.world_size} processes: checkpoints are single-process only")
        lead = self.rank == 0
        out_path = Path(out_path)
        checkpoint_path = Path(checkpoint_path) if checkpoint_path else out_path.with_name(out_path.name + ".ckpt")
        if lead:
            out_path.parent.mkdir(parents=True, exist_ok=True)
        state = self._load_checkpoint(checkpoint_path) if resume else None
        optimizer = torch.optim.Adam(self.model.parameters(), lr=config.max_lr)
        step, elapsed_before, curve = 0, 0.0, []
        best_state, best_score = copy.deepcopy(self.model.state_dict()), math.inf
        if state:
            self.model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            self.generator.set_state(state["generator"])
            self.pool.load(state["pool"])
            step, elapsed_before, curve = state["step"], state["elapsed_s"], state["curve"]
            best_state, best_score = state["best_model"], state["best_score"]
            self.log(f"[train] resuming {checkpoint_path} at step {step}, {elapsed_before / 60:.1f} min in")
        budget = f"{config.steps} steps" if config.steps else f"{config.minutes:g} min"
        processes = f" over {self.world_size} processes" if self.world_size > 1 else ""
        if lead:
            self.log(
                f"[train] {self.chain.base_link} -> {self.chain.tip_link} ({self.chain.dof} joints): {budget} of "
                f"batches of {config.batch_size}{processes} on {self.device}, {config.depth}x{config.width} MLP, "
                f"{'supervised' if config.supervised else 'unsupervised'}, "
                f"{'position only' if config.position_only else 'position + orientation'}"
            )
        start = time.perf_counter()
        progress = _Progress(start - elapsed_before, self.log)
        last_checkpoint = start
        interrupted = False

        def done_fraction() -> float:
            """Progress after ``step`` steps, the same on every rank (collective under a time budget)."""
            if config.steps:
                return step / config.steps
            elapsed = elapsed_before + time.perf_counter() - start
            done = torch.tensor(min(1.0, elapsed / (60.0 * config.minutes)), dtype=torch.float64)
            if self.world_size > 1:
                dist.broadcast(done, 0)  # rank 0's clock decides: the ranks stop at the same step
            return float(done)

        try:
            progress_now = done_fraction()
            while progress_now < 1.0:
                loss, position_m, rotation_rad = self._step(
                    optimizer, one_cycle_lr(config.max_lr, progress_now), progress_now >= config.hard_start
                )
                step += 1
                progress_now = done_fraction()
                if not lead:
                    continue
                if step % config.validation_every_steps == 0 or progress_now >= 1.0:
                    figures = self._validate()
                    curve.append({"step": step, "loss": loss, **figures})
                    if figures["score"] < best_score:
                        best_score, best_state = figures["score"], copy.deepcopy(self.model.state_dict())
                progress.show(step, progress_now, loss, position_m, rotation_rad, curve[-1] if curve else None)
                if self.world_size == 1 and time.perf_counter() - last_checkpoint > config.checkpoint_every_s:
                    last_checkpoint = time.perf_counter()
                    self._save_checkpoint(
                        checkpoint_path,
                        optimizer,
                        step,
                        elapsed_before + last_checkpoint - start,
                        curve,
                        best_state,
                        best_score,
                    )
        except KeyboardInterrupt:
            interrupted = True
            progress.end()
            if lead:
                self.log(f"[train] interrupted at step {step}: writing the best model so far")
            if self.world_size == 1:
                self._save_checkpoint(
                    checkpoint_path,
                    optimizer,
                    step,
                    elapsed_before + time.perf_counter() - start,
                    curve,
                    best_state,
                    best_score,
                )
        progress.end()
        # After an interrupt a rank may be inside a collective: no barrier then, rank 0 just writes its model.
        if not lead:
            if not interrupted:
                dist.barrier()
            return None
        elapsed_s = elapsed_before + time.perf_counter() - start
        self.model.load_state_dict(best_state)
        self.model.to("cpu").eval()
        metadata = {
            **chain_metadata(self.chain),
            "input": {"encoding": self.model.input_encoding, "position_scale_m": self.chain.reach_m},
            "output": {"encoding": config.output_encoding},
            "architecture": {
                "width": config.width,
                "depth": config.depth,
                "batch_norm": config.batch_norm,
                "heads": config.heads,
                "activation": "SiLU",
            },
            "training": {
                **config.to_dict(),
                "steps_done": step,
                "seconds": elapsed_s,
                "interrupted": interrupted,
                "device": str(self.device),
                "world_size": self.world_size,
                "torch": torch.__version__,
            },
            "evaluation": evaluate_network(self.chain, self.model, config.position_only),
        }
        save_network(self.model, metadata, out_path)
        if not interrupted and checkpoint_path.exists():
            checkpoint_path.unlink()  # finished: nothing to resume
        if self.world_size > 1 and not interrupted:
            dist.barrier()  # the other ranks wait for the model file
        return TrainingResult(out_path, self.model, metadata, curve, interrupted)

    # ------------------------------------------------------------------ checkpoints

    def _save_checkpoint(self, path: Path, optimizer, step, elapsed_s, curve, best_state, best_score):
        state = {
            "fingerprint": self.chain.fingerprint,
            "config": self.config.to_dict(),
            "step": step,
            "elapsed_s": elapsed_s,
            "curve": curve,
            "model": self.model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "pool": self.pool.state(),
            "best_model": best_state,
            "best_score": best_score,
        }
        partial = path.with_name(path.name + ".partial")
        torch.save(state, partial)
        partial.replace(path)

    def _load_checkpoint(self, path: Path) -> dict:
        """The checkpoint at ``path``, refused unless it is for this chain and configuration."""
        if not path.is_file():
            raise FileNotFoundError(f"cannot resume: checkpoint {path} does not exist")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain data only
        except Exception as error:
            raise ValueError(f"checkpoint {path} is not readable: {str(error).splitlines()[0]}") from None
        if state.get("fingerprint") != self.chain.fingerprint:
            raise ValueError(
                f"checkpoint {path} is for chain fingerprint {state.get('fingerprint')}, not {self.chain.fingerprint}"
            )
        ours, theirs = self.config.to_dict(), state.get("config", {})
        differing = sorted(k for k in ours if ours[k] != theirs.get(k))
        if differing:
            raise ValueError(f"checkpoint {path} was made with other settings: {', '.join(differing)}")
        return state


def one_cycle_lr(
    max_lr: float, progress: float, warmup: float = 0.3, start_div: float = 25.0, end_div: float = 1e4
) -> float:
    """1cycle learning rate at ``progress`` in [0, 1]: cosine up from max_lr / start_div to max_lr over the
    first ``warmup`` of the run, then cosine down to max_lr / (start_div · end_div)."""
    low, high, end = max_lr / start_div, max_lr, max_lr / (start_div * end_div)
    if progress < warmup:
        a, b, t = low, high, progress / warmup
    else:
        a, b, t = high, end, (progress - warmup) / (1.0 - warmup)
    return b + (a - b) * 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))


class _Progress:
    """A one-line progress bar on a terminal (live loss and errors in mm and degrees), else a line every 30 s."""

    def __init__(self, start: float, log: Callable[[str], None]) -> None:
        self.log = log
        self.tty = sys.stderr.isatty()
        self.start = start
        self.last = 0.0
        self.open = False

    def show(
        self, step: int, done: float, loss: float, position_m: float, rotation_rad: float, validation: Optional[dict]
    ) -> None:
        now = time.perf_counter()
        if now - self.last < (0.5 if self.tty else 30.0) and done < 1.0:
            return
        self.last = now
        elapsed = now - self.start
        left = elapsed / max(done, 1e-9) * (1.0 - done)
        bar = "#" * int(20 * done) + "-" * (20 - int(20 * done))
        line = (
            f"[{bar}] step {step} loss {loss:.4f} batch median {1e3 * position_m:.1f} mm "
            f"{math.degrees(rotation_rad):.2f} deg"
        )
        if validation:
            line += (
                f" | val median {validation['position_error_mm_median']:.1f} mm "
                f"{validation['orientation_error_deg_median']:.2f} deg, best head "
                f"{validation['best_position_error_mm_median']:.1f} mm {validation['best_orientation_error_deg_median']:.2f} deg"
            )
        line += f" | {elapsed / 60:.1f} min, {left / 60:.1f} left"
        if self.tty:
            sys.stderr.write("\r" + line + "\033[K")
            sys.stderr.flush()
            self.open = True
        else:
            self.log(line)

    def end(self) -> None:
        if self.open:
            sys.stderr.write("\n")
            self.open = False
