"""``ik_train`` (``ros2 run ik_neural ik_train``): learn an IK network for a chain from its URDF, or for a
shipped robot by name.

Writes the TorchScript model (``--out``), and beside it the evaluation report: ``<stem>.report.json``
and the PNGs ``<stem>.curve.png``, ``<stem>.error_map.png``, ``<stem>.histograms.png``. Its last line is
the verdict (``ik_neural.bench.verdict``): how long solving takes with the network against the numerical
solver alone, warm and cold, and whether the network pays. Ctrl-C stops
training and still writes the best model so far (exit status 130); ``--resume`` continues from the
checkpoint ``<out>.ckpt``.

Under torchrun (``WORLD_SIZE`` in the environment) it trains data-parallel, one process per rank: gloo on
the CPU, nccl on CUDA (one GPU per process, by ``LOCAL_RANK``); rank 0 writes the model and report.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.distributed as dist
import yaml

from ik_neural.bench.verdict import VERDICT_TARGETS, network_verdict
from ik_neural.chain import KinematicChain
from ik_neural.commands.chain_selection import add_chain_arguments, chosen_chain
from ik_neural.evaluation import report_figures, write_plots
from ik_neural.network import OUTPUT_ENCODINGS, load_network
from ik_neural.robots import NETWORK_FILE, models_dir
from ik_neural.training import Obstacle, Trainer, TrainingConfig, training_device

DEFAULTS = TrainingConfig()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ik_train",
        description="Train an IK network for a kinematic chain (unsupervised, through differentiable FK); "
        "data-parallel when started by torchrun.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_chain_arguments(p, default_robot=None)
    p.add_argument(
        "--out",
        type=Path,
        help=f"model file to write (default for --robot: models/<robot>/{NETWORK_FILE}; required with --urdf)",
    )
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, default=DEFAULTS.minutes, help="training time budget")
    budget.add_argument("--steps", type=int, default=DEFAULTS.steps, help="optimiser steps (overrides --minutes)")
    p.add_argument("--position-only", action="store_true", help="learn the tip position only")
    p.add_argument(
        "--verdict-targets",
        type=int,
        default=VERDICT_TARGETS,
        help="held-out targets of the closing verdict (the hybrid against the numerical solver alone, warm and "
        "cold); 0: no verdict",
    )
    p.add_argument("--supervised", action="store_true", help="baseline: loss on joint angles instead of through FK")
    p.add_argument(
        "--output-encoding",
        choices=OUTPUT_ENCODINGS,
        default=DEFAULTS.output_encoding,
        help="biternion: (sin, cos) for joints that turn a full circle; linear: all limit-scaled",
    )
    p.add_argument("--width", type=int, default=DEFAULTS.width, help="hidden layer width")
    p.add_argument("--depth", type=int, default=DEFAULTS.depth, help="hidden layers")
    p.add_argument("--batch-norm", action=argparse.BooleanOptionalAction, default=DEFAULTS.batch_norm)
    p.add_argument(
        "--heads",
        type=int,
        default=DEFAULTS.heads,
        help="guesses per pose (K > 1: trained multiple-choice, refined one at a time by the solver)",
    )
    p.add_argument(
        "--head-mean-weight",
        type=float,
        default=DEFAULTS.head_mean_weight,
        help="with --heads > 1, weight of the mean of the heads' losses (so that no head starves)",
    )
    p.add_argument(
        "--head-spread",
        type=float,
        default=DEFAULTS.head_spread,
        help="with --heads > 1, RMS distance of raw outputs below which two heads are pushed apart (0: off)",
    )
    p.add_argument("--head-spread-weight", type=float, default=DEFAULTS.head_spread_weight, help="weight of that push")
    p.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    p.add_argument("--max-lr", type=float, default=DEFAULTS.max_lr, help="peak learning rate (1cycle, Adam)")
    p.add_argument("--rotation-weight", type=float, default=DEFAULTS.rotation_weight)
    p.add_argument("--limit-weight", type=float, default=DEFAULTS.limit_weight)
    p.add_argument(
        "--hard-fraction",
        type=float,
        default=DEFAULTS.hard_fraction,
        help="share of each batch from the pool of highest-error samples (0: fresh samples only)",
    )
    p.add_argument(
        "--hard-start",
        type=float,
        default=DEFAULTS.hard_start,
        help="progress (0 to 1) from which batches include hard samples",
    )
    p.add_argument(
        "--obstacle",
        nargs=4,
        type=float,
        action="append",
        metavar=("X", "Y", "Z", "R"),
        help="sphere to keep the joints clear of: centre (m, base frame) and radius (m); repeatable",
    )
    p.add_argument(
        "--obstacles",
        type=Path,
        metavar="YAML",
        help="obstacles file: 'obstacles: [{center: [x, y, z], radius: r}, ...]' (m, base frame)",
    )
    p.add_argument("--obstacle-margin", type=float, default=DEFAULTS.obstacle_margin_m, help="clearance (m)")
    p.add_argument("--obstacle-weight", type=float, default=DEFAULTS.obstacle_weight)
    p.add_argument("--seed", type=int, default=DEFAULTS.seed)
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where to train; auto: cuda when a GPU is available, else cpu",
    )
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint <out>.ckpt")
    p.add_argument(
        "--init-from",
        type=Path,
        metavar="MODEL",
        help="start from the weights of this model file (same chain and architecture): fine-tuning",
    )
    return p


def _obstacles(args: argparse.Namespace) -> tuple[Obstacle, ...]:
    obstacles = [Obstacle(tuple(o[:3]), o[3]) for o in args.obstacle or []]
    if args.obstacles:
        try:
            content = yaml.safe_load(args.obstacles.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as error:
            raise ValueError(f"cannot read obstacles file {args.obstacles}: {error}") from None
        entries = content.get("obstacles") if isinstance(content, dict) else None
        if not isinstance(entries, list):
            raise ValueError(f"obstacles file {args.obstacles}: expected a list under 'obstacles'")
        for i, entry in enumerate(entries):
            try:
                center = [float(c) for c in entry["center"]]
                if len(center) != 3:
                    raise ValueError
                obstacles.append(Obstacle(tuple(center), float(entry["radius"])))
            except (KeyError, TypeError, ValueError):
                raise ValueError(
                    f"obstacles file {args.obstacles}: entry {i} needs 'center: [x, y, z]' and 'radius' in metres"
                ) from None
    return tuple(obstacles)


def _chain_and_out(args: argparse.Namespace) -> tuple[KinematicChain, Path]:
    """The chain to train for and the model file to write; ValueError naming the problem."""
    # The robot's shipped network is not loaded: it is what this run may replace.
    chosen = chosen_chain(args, load_network=False)
    if args.out is not None:
        return chosen.chain, args.out
    if chosen.robot is None:
        raise ValueError("--out is required with --urdf")
    return chosen.chain, models_dir() / chosen.robot / NETWORK_FILE


def _start_distributed(device: torch.device) -> torch.device:
    """Join torchrun's process group; the device of this rank (its own GPU on CUDA)."""
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.verdict_targets < 0:
        parser.error("--verdict-targets must be >= 0 (0: no verdict)")
    out = args.out  # the OSError message names it; for --robot the default replaces None below
    try:
        chain, out = _chain_and_out(args)
        config = TrainingConfig(
            steps=args.steps,
            minutes=args.minutes,
            position_only=args.position_only,
            supervised=args.supervised,
            output_encoding=args.output_encoding,
            width=args.width,
            depth=args.depth,
            batch_norm=args.batch_norm,
            heads=args.heads,
            head_mean_weight=args.head_mean_weight,
            head_spread=args.head_spread,
            head_spread_weight=args.head_spread_weight,
            batch_size=args.batch_size,
            max_lr=args.max_lr,
            rotation_weight=args.rotation_weight,
            limit_weight=args.limit_weight,
            hard_fraction=args.hard_fraction,
            hard_start=args.hard_start,
            obstacles=_obstacles(args),
            obstacle_margin_m=args.obstacle_margin,
            obstacle_weight=args.obstacle_weight,
            seed=args.seed,
            init_from=str(args.init_from or ""),
        )
        device = training_device(args.device)
        if "WORLD_SIZE" in os.environ:  # started by torchrun
            device = _start_distributed(device)
        result = Trainer(chain, config, device=device).run(out, resume=args.resume)
    except (ValueError, FileNotFoundError) as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    except OSError as error:
        parser.exit(2, f"{parser.prog}: error: cannot write {out}: {error}\n")
    finally:
        if dist.is_initialized():
            # DistributedDataParallel's state sits in reference cycles: collected now, it goes while its process
            # group and the interpreter are whole, not at interpreter exit, where torch can abort a rank
            # ("terminate called without an active exception", seen once in CI at rank 1's exit).
            gc.collect()
            dist.destroy_process_group()
    if result is None:
        return 0  # a rank other than 0: rank 0 wrote the model and writes the report
    stem = result.path.with_suffix("")
    report_path = Path(f"{stem}.report.json")
    report = report_figures(result.metadata)
    report["validation_curve"] = result.curve
    verdict = None
    if args.verdict_targets > 0:
        print(f"[train] judging the network: {args.verdict_targets} held-out targets, hybrid against numerical only")
        verdict = network_verdict(chain, load_network(result.path, chain), args.verdict_targets, config.position_only)
        report["verdict"] = verdict.as_dict()
    report_path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    plots = write_plots(chain, result.module, result.curve, stem, config.position_only)
    figures = result.metadata["evaluation"]
    print(
        f"[train] wrote {result.path} ({result.path.stat().st_size / 1e6:.1f} MB), {report_path}, "
        + ", ".join(str(p) for p in plots)
    )
    print(
        f"[train] network alone on {figures['test_targets']} test targets: position median "
        f"{figures['position_error_mm_median']:.2f} mm (p95 {figures['position_error_mm_p95']:.1f}), rotation median "
        f"{figures['orientation_error_deg_median']:.2f} deg (p95 {figures['orientation_error_deg_p95']:.1f}); "
        f"{result.metadata['training']['steps_done']} steps in {result.metadata['training']['seconds'] / 60:.1f} min"
    )
    if "best_of_heads" in figures:
        best = figures["best_of_heads"]
        print(
            f"[train] best of the {config.heads} guesses per target: position median {best['position_error_mm_median']:.2f} mm, "
            f"rotation median {best['orientation_error_deg_median']:.2f} deg"
        )
    if verdict is not None:
        print(f"[train] verdict: {verdict.line()}")
    return 130 if result.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
