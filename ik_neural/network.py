"""The IK network: an MLP from a target pose to joint positions, and its TorchScript model file.

The scripted module takes T_base_tip (N, 4, 4) and returns q (N, dof) within the joint limits, so the
file alone is a usable IK guesser (``torch.jit.load(path)(T)``). Encodings (design.md §6):

- input: the tip position divided by the chain's reach (dimensionless), then, unless position-only, the
  first two columns of R (6 numbers);
- output: a limit-scaled value o per bounded joint, q = centre + half_range · o (o in [-1, 1] spans the
  limits; clamped at inference), and with the "biternion" encoding a (sin, cos) pair per joint that turns
  a full circle (continuous, or limits at least 2π apart), q = atan2 wrapped into the limits.

The model file holds a JSON metadata entry (``METADATA_ENTRY``): format version, chain fingerprint, joint
names and limits, links, encodings, architecture, training configuration and evaluation figures.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any, Iterator, Optional, Union

import numpy as np
import torch
from torch import nn

from ik_neural.chain import KinematicChain
from ik_neural.kernels.mlp import decode_rows, features, mlp_forward, mlp_forward_rows, pack_layers

FORMAT_VERSION = 2
"""Version 2 adds ``architecture.heads`` (K guesses per pose); version 1 files (one head) read unchanged."""
READ_VERSIONS = (1, 2)
METADATA_ENTRY = "ik_neural.json"
OUTPUT_ENCODINGS = ("biternion", "linear")

PathLike = Union[str, os.PathLike]
# From this many poses numpy's (threaded BLAS) matrix products beat the compiled row-by-row forward pass;
# below it BLAS threads cost more than the rows, and far more when other processes hold the cores
# (measured: a batch of 8 for rrr_3dof took 40 ms under load, against 0.1 ms for the kernel).
_BLAS_MIN_ROWS = 64


def periodic_joints(chain: KinematicChain, output_encoding: str) -> np.ndarray:
    """Which joints (dof,) the network outputs as (sin, cos): none for "linear"; for "biternion" the
    joints that turn a full circle (continuous, or limits at least 2π apart)."""
    if output_encoding not in OUTPUT_ENCODINGS:
        raise ValueError(f"output encoding {output_encoding!r} is not one of {OUTPUT_ENCODINGS}")
    if output_encoding == "linear":
        return np.zeros(chain.dof, dtype=bool)
    return chain.upper - chain.lower >= 2 * math.pi - 1e-9  # continuous joints span exactly 2 pi


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
        self.n_linear = int(bounded.sum())
        self.n_periodic = int(periodic.sum())
        self.heads = heads
        layers: list[nn.Module] = []
        n_in = 3 if position_only else 9
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
        """Network input (N, 3 or 9): position / reach, then columns x and y of R."""
        position = T[:, :3, 3] * self.inverse_reach
        if self.position_only:
            return position
        return torch.cat([position, T[:, :3, 0], T[:, :3, 1]], dim=1)

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


class IKNetwork:
    """A loaded IK network for one chain: ``predict`` maps target poses to joint positions.

    ``module`` is the scripted :class:`PoseToJoints` (float32, eval mode); ``metadata`` the file's JSON.
    numpy poses go through float32 copies of the weights (batch norm folded in): one pose through the
    compiled forward pass (``kernels.mlp``), several through numpy's matrix products; no TorchScript
    call, so no shape of input ever makes it re-specialise inside a solver's budget. torch tensors go
    through the module.
    """

    def __init__(self, module: torch.jit.ScriptModule, metadata: dict[str, Any], path: Optional[Path] = None):
        self.module = module.eval()
        self.metadata = metadata
        self.path = path
        self.fingerprint: str = metadata["fingerprint"]
        self.joint_names: list[str] = list(metadata["joint_names"])
        self.heads: int = int(module.heads) if hasattr(module, "heads") else 1  # version 1 files: one head
        self._layers = _folded_layers(module)
        self._params, self._sizes = pack_layers(self._layers)
        self._position_only = bool(module.position_only)
        self._inverse_reach = float(module.inverse_reach)
        self._decoding = (
            int(module.n_linear), module.centre.numpy().astype(np.float64), module.half_range.numpy().astype(np.float64),
            module.periodic_lower.numpy().astype(np.float64), module.order.numpy().astype(np.int64),
        )  # fmt: skip

    def __repr__(self) -> str:
        return f"IKNetwork({self.path or 'in memory'}, fingerprint {self.fingerprint}, {len(self.joint_names)} joints)"

    def predict(self, T_target: Union[np.ndarray, torch.Tensor]) -> Union[np.ndarray, torch.Tensor]:
        """The network's (first) guess: T_target (..., 4, 4) tip in base frame -> q (..., dof), within the
        limits. numpy in gives float64 numpy out; torch in gives torch out (float32, no gradient)."""
        return self.predict_all(T_target)[..., 0, :]

    def predict_all(self, T_target: Union[np.ndarray, torch.Tensor]) -> Union[np.ndarray, torch.Tensor]:
        """All K heads' guesses: T_target (..., 4, 4) -> q (..., K, dof), head 0 (``predict``'s) first;
        K = ``heads``, 1 for a single-head network. Types as ``predict``."""
        shape = tuple(T_target.shape)
        if shape[-2:] != (4, 4):
            raise ValueError(f"T_target has shape {shape}; expected (..., 4, 4)")
        if isinstance(T_target, torch.Tensor):
            T = T_target.reshape(-1, 4, 4).to(torch.float32)
            with torch.inference_mode():
                q = self.module.guesses(T) if self.heads > 1 else self.module(T)[:, None]
            return q.reshape(shape[:-2] + q.shape[1:])
        T = np.ascontiguousarray(T_target, dtype=np.float64).reshape(-1, 4, 4)
        raw = self._raw(features(T, self._inverse_reach, self._position_only))
        q = decode_rows(raw.reshape(len(T) * self.heads, -1), *self._decoding)
        return q.reshape(shape[:-2] + (self.heads, q.shape[-1]))

    def _raw(self, x: np.ndarray) -> np.ndarray:
        """The MLP's raw outputs (R, n_out) float32 at inputs x (R, n_in) float32: few rows by the compiled
        kernel on the calling thread, more by numpy's (BLAS) matrix products."""
        if len(x) == 1:
            return mlp_forward(x[0], self._params, self._sizes)[None]
        if len(x) < _BLAS_MIN_ROWS:
            return mlp_forward_rows(x, self._params, self._sizes)
        last = len(self._layers) - 1
        for i, (W, b) in enumerate(self._layers):
            x = x @ W + b
            if i < last:
                x = x * (0.5 + 0.5 * np.tanh(0.5 * x))  # SiLU; sigmoid as tanh: no overflow for large |x|
        return x


def _folded_layers(module: torch.jit.ScriptModule) -> list[tuple[np.ndarray, np.ndarray]]:
    """The MLP's affine layers as float32 (W (in, out), b (out,)), each batch norm folded into its Linear."""
    layers: list[tuple[np.ndarray, np.ndarray]] = []
    for child in module.mlp.children():
        kind = child.original_name
        if kind == "Linear":
            layers.append((child.weight.detach().numpy().T.copy(), child.bias.detach().numpy().copy()))
        elif kind == "BatchNorm1d":
            scale = (child.weight / torch.sqrt(child.running_var + child.eps)).detach().numpy()
            shift = child.bias.detach().numpy() - child.running_mean.numpy() * scale
            W, b = layers[-1]
            layers[-1] = (W * scale, b * scale + shift)
    return [(W.astype(np.float32), b.astype(np.float32)) for W, b in layers]


def chain_metadata(chain: KinematicChain) -> dict[str, Any]:
    """What the model file records of the chain it was trained for."""
    return {
        "format_version": FORMAT_VERSION,
        "fingerprint": chain.fingerprint,
        "base_link": chain.base_link,
        "tip_link": chain.tip_link,
        "joint_names": list(chain.joint_names),
        "lower": chain.lower.tolist(),
        "upper": chain.upper.tolist(),
    }


@contextlib.contextmanager
def _torchscript_is_the_format() -> Iterator[None]:
    """Silences torch's deprecation notices for torch.jit: TorchScript is our file format
    (design.md §5), loadable from C++ and without pickle."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.jit")
        yield


def save_network(module: PoseToJoints, metadata: dict[str, Any], path: PathLike) -> None:
    """Script ``module`` (in eval mode) and write it to ``path`` with ``metadata`` as its JSON entry.

    The file is written next to ``path`` and renamed into place, so a reader never sees half a file.
    """
    path = Path(path)
    was_training = module.training
    partial = path.with_name(path.name + ".partial")
    with _torchscript_is_the_format():
        scripted = torch.jit.script(module.eval())
        torch.jit.save(scripted, str(partial), _extra_files={METADATA_ENTRY: json.dumps(metadata, indent=1)})
    module.train(was_training)
    os.replace(partial, path)


def read_network_metadata(path: PathLike) -> dict[str, Any]:
    """The metadata of the model file at ``path`` (e.g. its ``base_link`` and ``tip_link``), for any chain.

    Raises as ``load_network`` does, but for the fingerprint.
    """
    return _read(Path(path))[1]


def load_network(path: PathLike, chain: KinematicChain) -> IKNetwork:
    """Load the network at ``path`` for ``chain`` (TorchScript, never pickle).

    Raises FileNotFoundError for a missing file and ValueError, naming the file, for one that is not a
    TorchScript model, has no or unreadable metadata, an unknown format version, or was trained for
    another chain (both fingerprints named).
    """
    path = Path(path)
    module, metadata = _read(path)
    if metadata.get("fingerprint") != chain.fingerprint:
        raise ValueError(
            f"IK network file {path} was trained for chain fingerprint {metadata.get('fingerprint')} "
            f"({metadata.get('base_link')} -> {metadata.get('tip_link')}), but the chain "
            f"{chain.base_link} -> {chain.tip_link} has fingerprint {chain.fingerprint}"
        )
    return IKNetwork(module, metadata, path)


def _read(path: Path) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    """(module, metadata) of a model file, checked to be an ik_neural model of this format version."""
    if not path.is_file():
        raise FileNotFoundError(f"IK network file {path} does not exist")
    extra = {METADATA_ENTRY: ""}
    try:
        with _torchscript_is_the_format():
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as error:  # torch reports a damaged archive as RuntimeError, or worse
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"IK network file {path} is not a readable TorchScript model: {first_line}") from None
    try:
        metadata = json.loads(extra[METADATA_ENTRY])
    except (json.JSONDecodeError, UnicodeDecodeError):
        metadata = None
    if not isinstance(metadata, dict):
        raise ValueError(f"IK network file {path} has no readable {METADATA_ENTRY} metadata: not an ik_neural model")
    version = metadata.get("format_version")
    if version not in READ_VERSIONS:
        raise ValueError(
            f"IK network file {path} has format version {version!r}; this ik_neural reads versions "
            f"{', '.join(map(str, READ_VERSIONS))}"
        )
    return module, metadata
