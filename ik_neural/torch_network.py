"""The IK network as a torch module (``PoseToJoints``), and writing it as a model file (models/README.md, "The model file").

Training and torch tensors use this module; ``ik_neural.network`` reads the file and runs the folded
float32 weights it carries without importing torch.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from torch import nn

from ik_neural.chain import KinematicChain
from ik_neural.network import (
    INPUT_ENCODINGS,
    METADATA_ENTRY,
    POSE_INPUT,
    WEIGHTS_ENTRY,
    IKNetwork,
    NetworkWeights,
    torchscript_is_the_format,
    periodic_joints,
)

PathLike = Union[str, os.PathLike]


class PoseToJoints(nn.Module):
    """The scripted network: T_base_tip (N, 4, 4) -> q (N, dof), in metres and radians.

    With ``heads`` K > 1 the last layer proposes K joint configurations per pose: ``guesses`` gives them
    all (N, K, dof), ``forward`` the first (N, dof), so a file of any K is the same plain guesser.
    ``raw`` and ``decode`` are exposed for training (the loss needs the unclamped outputs).
    """

    def __init__(
        self,
        chain: KinematicChain,
        position_only: bool,
        output_encoding: str,
        width: int,
        depth: int,
        batch_norm: bool,
        heads: int = 1,
    ) -> None:
        super().__init__()
        if heads < 1:
            raise ValueError(f"a network needs at least one head, got heads={heads}")
        periodic = periodic_joints(chain, output_encoding)
        bounded = ~periodic
        self.position_only = position_only
        self.input_encoding = "position" if position_only else POSE_INPUT
        self.n_linear = int(bounded.sum())
        self.n_periodic = int(periodic.sum())
        self.heads = heads
        layers: list[nn.Module] = []
        n_in = INPUT_ENCODINGS[self.input_encoding]
        for _ in range(depth):
            layers.append(nn.Linear(n_in, width))
            if batch_norm:
                layers.append(nn.BatchNorm1d(width))
            layers.append(nn.SiLU())
            n_in = width
        layers.append(nn.Linear(n_in, heads * (self.n_linear + 2 * self.n_periodic)))
        self.mlp = nn.Sequential(*layers)

        # Continuous joints carry limits -pi, pi: they are wrapped into [-pi, pi), as the solver does.
        lower = torch.tensor(chain.lower, dtype=torch.float32)
        upper = torch.tensor(chain.upper, dtype=torch.float32)
        linear_index = torch.tensor(np.flatnonzero(bounded), dtype=torch.long)
        periodic_index = torch.tensor(np.flatnonzero(periodic), dtype=torch.long)
        self.register_buffer("inverse_reach", torch.tensor(1.0 / chain.reach_m))
        self.register_buffer("centre", 0.5 * (lower + upper)[linear_index])
        self.register_buffer("half_range", 0.5 * (upper - lower)[linear_index])
        # A periodic joint's angle is wrapped into [start, start + 2 pi): the turn nearest to [-pi, pi)
        # that lies within its limits.
        start = torch.minimum(torch.maximum(torch.tensor(-math.pi), lower), upper - 2 * math.pi)
        self.register_buffer("periodic_lower", start[periodic_index])
        # q = cat(linear joints, periodic joints)[:, order] puts the joints back in chain order.
        self.register_buffer("order", torch.argsort(torch.cat([linear_index, periodic_index])))

    def features(self, T: torch.Tensor) -> torch.Tensor:
        """Network input (N, 3 or 15): position / reach; unless position-only, then the columns x, y, z of R
        and Rᵀ p / reach, the position in the tip frame (``network.INPUT_ENCODINGS``)."""
        position = T[:, :3, 3] * self.inverse_reach
        if self.position_only:
            return position
        R = T[:, :3, :3]
        in_tip_frame = (R * position[:, :, None]).sum(1)
        return torch.cat([position, R[:, :, 0], R[:, :, 1], R[:, :, 2], in_tip_frame], dim=1)

    def raw(self, T: torch.Tensor) -> torch.Tensor:
        """Unscaled outputs (N, K (n_linear + 2 n_periodic)), head by head: o per bounded joint, then
        (sin, cos) pairs."""
        return self.mlp(self.features(T))

    def decode(self, raw: torch.Tensor, clamp: bool) -> torch.Tensor:
        """Joint positions (M, dof) from one head's raw outputs (M, n_linear + 2 n_periodic); ``clamp``
        keeps bounded joints within their limits."""
        o = raw[:, : self.n_linear]
        if clamp:
            o = o.clamp(-1.0, 1.0)
        linear = self.centre + self.half_range * o
        pairs = raw[:, self.n_linear :].reshape(raw.shape[0], self.n_periodic, 2)
        angle = torch.atan2(pairs[:, :, 0], pairs[:, :, 1])
        periodic = self.periodic_lower + torch.remainder(angle - self.periodic_lower, 2 * math.pi)
        return torch.cat([linear, periodic], dim=1)[:, self.order]

    def encode(self, q: torch.Tensor) -> torch.Tensor:
        """The raw outputs (N, n_linear + 2 n_periodic) that decode to q (N, dof): the supervised target."""
        q_grouped = q[:, torch.argsort(self.order)]
        o = (q_grouped[:, : self.n_linear] - self.centre) / self.half_range
        angle = q_grouped[:, self.n_linear :]
        pairs = torch.stack([torch.sin(angle), torch.cos(angle)], dim=2).reshape(q.shape[0], 2 * self.n_periodic)
        return torch.cat([o, pairs], dim=1)

    @torch.jit.export
    def guesses(self, T: torch.Tensor) -> torch.Tensor:
        """All heads' guesses (N, K, dof), clamped within the limits, head 0 first."""
        raw = self.raw(T)
        n = raw.shape[0]
        q = self.decode(raw.reshape(n * self.heads, self.n_linear + 2 * self.n_periodic), clamp=True)
        return q.reshape(n, self.heads, q.shape[1])

    def forward(self, T: torch.Tensor) -> torch.Tensor:
        """The first head's guess (N, dof)."""
        return self.guesses(T)[:, 0]


def network_weights(module: Union[PoseToJoints, torch.jit.ScriptModule]) -> NetworkWeights:
    """The float32 affine layers (each batch norm folded into its Linear) and the decoding constants of a
    ``PoseToJoints``, in eval mode, plain or scripted."""
    layers: list[tuple[np.ndarray, np.ndarray]] = []
    for child in module.mlp.children():
        kind = getattr(child, "original_name", type(child).__name__)  # a scripted child keeps its class name here
        if kind == "Linear":
            layers.append((child.weight.detach().numpy().T.copy(), child.bias.detach().numpy().copy()))
        elif kind == "BatchNorm1d":
            scale = (child.weight / torch.sqrt(child.running_var + child.eps)).detach().numpy()
            shift = child.bias.detach().numpy() - child.running_mean.numpy() * scale
            W, b = layers[-1]
            layers[-1] = (W * scale, b * scale + shift)
    return NetworkWeights(
        layers=tuple((W.astype(np.float32), b.astype(np.float32)) for W, b in layers),
        input_encoding=str(module.input_encoding),
        inverse_reach=float(module.inverse_reach),
        heads=int(module.heads),
        n_linear=int(module.n_linear),
        centre=module.centre.numpy().astype(np.float64),
        half_range=module.half_range.numpy().astype(np.float64),
        periodic_lower=module.periodic_lower.numpy().astype(np.float64),
        order=module.order.numpy().astype(np.int64),
    )


def in_memory_network(module: PoseToJoints, metadata: dict[str, Any]) -> IKNetwork:
    """An ``IKNetwork`` of a module not (yet) written to a file, e.g. during training."""
    scripted = script_module(module)
    return IKNetwork(network_weights(scripted), metadata, module=scripted)


def script_module(module: Union[PoseToJoints, torch.jit.ScriptModule]) -> torch.jit.ScriptModule:
    """``module`` scripted (and left in eval mode). TorchScript compiles a class from its source file
    on disk, once per process: a later call reuses that compilation even if the file changed since."""
    with torchscript_is_the_format():
        return torch.jit.script(module.eval())


def save_network(module: Union[PoseToJoints, torch.jit.ScriptModule], metadata: dict[str, Any], path: PathLike) -> None:
    """Script ``module`` (in eval mode) and write it to ``path`` with ``metadata`` as its JSON entry and
    its folded weights (``NetworkWeights``) as its weights entry.

    The file is written next to ``path`` and renamed into place, so a reader never sees half a file.
    """
    path = Path(path)
    was_training = module.training
    partial = path.with_name(path.name + ".partial")
    scripted = script_module(module)
    extra = {METADATA_ENTRY: json.dumps(metadata, indent=1), WEIGHTS_ENTRY: network_weights(scripted).to_npz()}
    with torchscript_is_the_format():
        torch.jit.save(scripted, str(partial), _extra_files=extra)
    module.train(was_training)
    os.replace(partial, path)
