"""How good a network is on its own: errors on test targets, and the report plots of a training run.

Targets come from ``sampling.reachable_targets`` (FK of configurations uniform within the limits, a fixed
seed), so every one is reachable. Errors are judged by float64 FK of the network's answer
and ``geometry.pose_errors``, the metric the solver is judged by: position error in metres (reported in
mm), rotation error the angle of R_target·R(q)ᵀ by the log map, in radians (reported in degrees).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ik_neural.chain import KinematicChain
from ik_neural.geometry import pose_errors
from ik_neural.sampling import reachable_targets

TEST_SEED = 20_261_121
TEST_TARGETS = 10_000


def network_errors(chain: KinematicChain, q: np.ndarray, T_target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position (m) and rotation (rad) errors (N,) of configurations q (N, dof) against T_target (N, 4, 4)."""
    _, _, position_error, rotation_error = pose_errors(T_target, chain.forward(np.asarray(q, dtype=np.float64)))
    return position_error, rotation_error


def head_errors(
    chain: KinematicChain, guesses: np.ndarray, T_target: np.ndarray, position_only: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Position (m) and rotation (rad) errors (N, K) of K guesses per target (N, K, dof) against T_target
    (N, 4, 4), and their scores (N, K): position error / reach + rotation error (position-only: the first
    term alone): the balance of the solver's error [dp / reach; ω], whatever rotation weight a run trained
    with. A target's best guess is its least score."""
    n, k, dof = guesses.shape
    position_error, rotation_error = network_errors(chain, guesses.reshape(n * k, dof), np.repeat(T_target, k, axis=0))
    position_error, rotation_error = position_error.reshape(n, k), rotation_error.reshape(n, k)
    score = position_error / chain.reach_m + (0.0 if position_only else rotation_error)
    return position_error, rotation_error, score


def best_guess_errors(
    position_error: np.ndarray, rotation_error: np.ndarray, score: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Position and rotation errors (N,) of each target's best guess: the least score of ``head_errors``'s."""
    pick = np.arange(len(score)), score.argmin(1)
    return position_error[pick], rotation_error[pick]


def _guesses(module: torch.nn.Module, T: np.ndarray) -> np.ndarray:
    """All heads' guesses (N, K, dof) of a ``PoseToJoints`` (plain or scripted) for T (N, 4, 4)."""
    module.eval()
    with torch.inference_mode():
        return module.guesses(torch.from_numpy(T).to(torch.float32)).double().numpy()


def _predict(module: torch.nn.Module, T: np.ndarray) -> np.ndarray:
    return _guesses(module, T)[:, 0]


def summary(position_error_m: np.ndarray, rotation_error_rad: np.ndarray) -> dict:
    """Median, mean, p95 and max of both errors, in mm and degrees."""
    figures = {}
    for name, values in (
        ("position_error_mm", 1e3 * position_error_m),
        ("orientation_error_deg", np.degrees(rotation_error_rad)),
    ):
        figures[f"{name}_median"] = float(np.median(values))
        figures[f"{name}_mean"] = float(np.mean(values))
        figures[f"{name}_p95"] = float(np.percentile(values, 95))
        figures[f"{name}_max"] = float(np.max(values))
    return figures


def evaluate_network(
    chain: KinematicChain,
    module: torch.nn.Module,
    position_only: bool,
    n_targets: int = TEST_TARGETS,
    seed: int = TEST_SEED,
) -> dict:
    """The network alone on ``n_targets`` test targets: head 0's summary figures (mm, degrees), for K > 1
    heads also the best guess's per target (``best_of_heads``), and the setup.

    For a position-only network the orientation figures are reported but are not what it was trained for.
    """
    _, T_target = reachable_targets(chain, n_targets, seed)
    position_error, rotation_error, score = head_errors(chain, _guesses(module, T_target), T_target, position_only)
    figures = {
        "test_targets": n_targets,
        "test_seed": seed,
        "reach_m": chain.reach_m,
        "position_only": position_only,
        **summary(position_error[:, 0], rotation_error[:, 0]),
    }
    if position_error.shape[1] > 1:
        figures["best_of_heads"] = summary(*best_guess_errors(position_error, rotation_error, score))
    return figures


# ---------------------------------------------------------------------- report plots


def write_plots(
    chain: KinematicChain, module: torch.nn.Module, curve: list[dict], prefix: Path, position_only: bool
) -> list[Path]:
    """The report's PNGs next to the model: ``<prefix>.curve.png`` (validation errors over training),
    ``<prefix>.error_map.png`` (sample density and network position error over a slice of the
    workspace, as Fig. 2 of Stephan et al.'s paper does) and ``<prefix>.histograms.png``. Returns their paths."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    from matplotlib import pyplot as plt

    paths = [Path(f"{prefix}.{name}.png") for name in ("curve", "error_map", "histograms")]
    _plot_curve(plt, curve, paths[0], position_only)
    _plot_error_map(plt, chain, lambda T: _predict(module, T), paths[1])
    _, T_target = reachable_targets(chain, TEST_TARGETS, TEST_SEED)
    position_error, rotation_error = network_errors(chain, _predict(module, T_target), T_target)
    _plot_histograms(plt, position_error, rotation_error, paths[2], position_only)
    return paths


def _plot_curve(plt, curve: list[dict], path: Path, position_only: bool) -> None:
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    steps = [c["step"] for c in curve]
    for axis, key, unit in ((axes[0], "position_error_mm", "mm"), (axes[1], "orientation_error_deg", "deg")):
        axis.plot(steps, [c[f"{key}_median"] for c in curve], label="median")
        axis.plot(steps, [c[f"{key}_p95"] for c in curve], label="p95")
        axis.set_yscale("log")
        axis.set_xlabel("step")
        axis.set_ylabel(f"validation {key.split('_')[0]} error ({unit})")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    if position_only:
        axes[1].set_title("(not trained for orientation)")
    figure.suptitle("Network alone on the validation targets during training")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def _plot_error_map(
    plt,
    chain: KinematicChain,
    predict: Callable[[np.ndarray], np.ndarray],
    path: Path,
    n_samples: int = 400_000,
    bins: int = 60,
) -> None:
    """Density of uniformly sampled tip positions and the network's mean position error, over the slab
    of the workspace around the median tip height (5 % of the reach thick), binned in x-y."""
    _, T = reachable_targets(chain, n_samples, TEST_SEED + 1)
    z = T[:, 2, 3]
    z_mid, half = float(np.median(z)), 0.025 * chain.reach_m
    T = T[np.abs(z - z_mid) <= half]
    position_error, _ = network_errors(chain, predict(T), T)
    extent = chain.reach_m
    edges = np.linspace(-extent, extent, bins + 1)
    count, _, _ = np.histogram2d(T[:, 0, 3], T[:, 1, 3], bins=[edges, edges])
    total, _, _ = np.histogram2d(T[:, 0, 3], T[:, 1, 3], bins=[edges, edges], weights=1e3 * position_error)
    mean_error = np.where(count >= 3, total / np.maximum(count, 1), np.nan)
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    shown = [
        (axes[0], np.where(count > 0, count, np.nan), "samples per cell"),
        (axes[1], mean_error, "mean position error (mm)"),
    ]
    for axis, values, label in shown:
        image = axis.imshow(values.T, origin="lower", extent=(-extent, extent, -extent, extent), cmap="viridis")
        axis.plot(0, 0, "r.", markersize=6)
        axis.set_xlabel("x (m)")
        axis.set_ylabel("y (m)")
        figure.colorbar(image, ax=axis, label=label)
    figure.suptitle(
        f"Workspace slice z in [{z_mid - half:.3f}, {z_mid + half:.3f}] m ({len(T)} of {n_samples} uniform samples)"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def _plot_histograms(
    plt, position_error: np.ndarray, rotation_error: np.ndarray, path: Path, position_only: bool
) -> None:
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, values, label in (
        (axes[0], 1e3 * position_error, "position error (mm)"),
        (axes[1], np.degrees(rotation_error), "rotation error (deg)"),
    ):
        values = np.maximum(values, 1e-6)
        axis.hist(values, bins=np.logspace(math.log10(values.min()), math.log10(values.max()), 60))
        axis.set_xscale("log")
        axis.axvline(np.median(values), color="k", linestyle="--", label=f"median {np.median(values):.3g}")
        axis.axvline(np.percentile(values, 95), color="r", linestyle=":", label=f"p95 {np.percentile(values, 95):.3g}")
        axis.set_xlabel(label)
        axis.set_ylabel("test targets")
        axis.legend()
    if position_only:
        axes[1].set_title("(not trained for orientation)")
    figure.suptitle(f"Network alone on {len(position_error)} test targets")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def report_figures(metadata: dict) -> dict:
    """The report JSON: the model's evaluation figures plus what it was trained with and for."""
    keys = (
        "fingerprint",
        "base_link",
        "tip_link",
        "joint_names",
        "input",
        "output",
        "architecture",
        "training",
        "evaluation",
    )
    return {k: metadata[k] for k in keys if k in metadata}
