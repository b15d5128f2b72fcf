"""The IK network of a model file: target poses to joint positions, without torch (models/README.md, "The model file").

A model file is a TorchScript archive (``ik_neural.torch_network`` writes it) of ``PoseToJoints``:
T_base_tip (N, 4, 4) -> q (N, dof) within the joint limits, so the file alone is a usable IK guesser
(``torch.jit.load(path)(T)``). Two extra entries ride in it:

- ``METADATA_ENTRY``, JSON: format version, chain fingerprint, joint names and limits, links, encodings,
  architecture, training configuration and evaluation figures;
- ``WEIGHTS_ENTRY`` (format 3 on), an ``.npz`` of the MLP's float32 layers with batch norm folded in and
  the constants that decode its outputs (``NetworkWeights``): what ``IKNetwork`` runs, read with
  ``zipfile`` and numpy alone, so a node or solver that only predicts never imports torch (~220 MB).

Encodings: the input (``INPUT_ENCODINGS``) is the tip position divided by the chain's reach
(dimensionless), then, unless position-only, the three columns of R and the position in the tip frame
(Rᵀ p / reach; files before format 4: the first two columns of R alone); the output a limit-scaled value o per
bounded joint, q = centre + half_range · o (clamped to [-1, 1]), and with the "biternion" encoding a
(sin, cos) pair per joint that turns a full circle, q = atan2 wrapped into the limits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import json
import math
import os
import sys
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator, Optional, Union

import numba
import numpy as np
from threadpoolctl import ThreadpoolController

from ik_neural.chain import KinematicChain
from ik_neural.kernels.mlp import decode_rows, features, guesses_of_pose, mlp_forward, mlp_forward_rows, pack_layers

FORMAT_VERSION = 4
"""Version 2 added ``architecture.heads`` (K guesses per pose), version 3 the weights entry, version 4 its
``input_encoding``. Files of versions 1 and 2 (no weights entry; none shipped since 2026-12-02) are refused
by name: train the network again."""
READ_VERSIONS = (3, 4)
METADATA_ENTRY = "ik_neural.json"
WEIGHTS_ENTRY = "ik_neural_weights.npz"
OUTPUT_ENCODINGS = ("biternion", "linear")
POSE_INPUT = "position+rotation9+tip_frame_position"
"""What networks trained for the pose take since format 4 (earlier: "position+rotation6")."""
INPUT_ENCODINGS = {"position": 3, "position+rotation6": 9, POSE_INPUT: 15}
"""Network inputs by name, and how many numbers each is (``kernels.mlp.features`` tells them apart by that
count): position / reach; then columns x and y of R; or all three columns and Rᵀ p / reach, the position
in the tip frame (with which the first layer can form any point fixed in the tip frame, such as a wrist
centre: at equal training, Panda's first guess 37 mm median against 45 mm with the six columns)."""


def input_encoding_before_format_4(position_only: bool) -> str:
    """The input of a file written before format 4, which recorded only whether it was position-only."""
    return "position" if position_only else "position+rotation6"


PathLike = Union[str, os.PathLike]
# From this many poses numpy's (BLAS) matrix products beat the compiled row-by-row forward pass (measured:
# a batch of 8 for rrr_3dof took 40 ms with BLAS threads under load, against 0.1 ms for the kernel).
_BLAS_MIN_ROWS = 64


# Rows per thread from which a batch's products are split over the cores (each part on one BLAS thread).
_ROWS_PER_THREAD = 256


@functools.cache
def _blas() -> ThreadpoolController:
    """The process's BLAS thread pools. Each product runs on one BLAS thread: OpenBLAS's own threads spin
    on after a product, which kept the cores from the DLS rows that follow (Panda, 4096 targets: 30 000
    hybrid solves/s with two BLAS threads, 44 500 with one)."""
    return ThreadpoolController()


@functools.cache
def _row_threads() -> ThreadPoolExecutor:
    """Threads that run parts of a batch's products side by side (numpy releases the GIL in them), as many
    as the solver's parallel kernels use (numba's thread count)."""
    return ThreadPoolExecutor(max_workers=numba.get_num_threads(), thread_name_prefix="ik_network_rows")


def periodic_joints(chain: KinematicChain, output_encoding: str) -> np.ndarray:
    """Which joints (dof,) the network outputs as (sin, cos): none for "linear"; for "biternion" the
    joints that turn a full circle (continuous, or limits at least 2π apart)."""
    if output_encoding not in OUTPUT_ENCODINGS:
        raise ValueError(f"output encoding {output_encoding!r} is not one of {OUTPUT_ENCODINGS}")
    if output_encoding == "linear":
        return np.zeros(chain.dof, dtype=bool)
    return chain.upper - chain.lower >= 2 * math.pi - 1e-9  # continuous joints span exactly 2 pi


@dataclasses.dataclass(frozen=True)
class NetworkWeights:
    """What the forward pass needs: the MLP's affine layers (W (in, out), b (out,)) float32, batch norm
    folded in, SiLU between them; and how its raw outputs decode to joint positions (rad, or m for
    prismatic joints), head by head, as ``PoseToJoints.decode``."""

    layers: tuple[tuple[np.ndarray, np.ndarray], ...]
    input_encoding: str
    """A key of ``INPUT_ENCODINGS``."""
    inverse_reach: float
    """1 / the chain's reach, 1/m."""
    heads: int
    n_linear: int
    """Bounded joints, decoded as centre + half_range · clamp(o, -1, 1); they come first."""
    centre: np.ndarray
    half_range: np.ndarray
    periodic_lower: np.ndarray
    """(n_periodic,) start of the turn each periodic joint's atan2 is wrapped into."""
    order: np.ndarray
    """(dof,) int64: q = grouped[order] puts the joints back in chain order."""

    def to_npz(self) -> bytes:
        """The weights entry of a model file."""
        arrays: dict[str, np.ndarray] = {f"W{i}": W for i, (W, _) in enumerate(self.layers)}
        arrays.update({f"b{i}": b for i, (_, b) in enumerate(self.layers)})
        buffer = io.BytesIO()
        np.savez(
            buffer,
            **arrays,
            input_encoding=np.str_(self.input_encoding),
            inverse_reach=np.float64(self.inverse_reach),
            heads=np.int64(self.heads),
            n_linear=np.int64(self.n_linear),
            centre=self.centre,
            half_range=self.half_range,
            periodic_lower=self.periodic_lower,
            order=self.order,
        )
        return buffer.getvalue()

    @classmethod
    def from_npz(cls, data: bytes) -> NetworkWeights:
        """Read a weights entry; KeyError or ValueError for a malformed one (no pickle is ever loaded)."""
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            if "input_encoding" in arrays.files:
                input_encoding = str(arrays["input_encoding"])
            else:
                input_encoding = input_encoding_before_format_4(bool(arrays["position_only"]))
            n_layers = sum(1 for name in arrays.files if name.startswith("W"))
            layers = tuple(
                (arrays[f"W{i}"].astype(np.float32), arrays[f"b{i}"].astype(np.float32)) for i in range(n_layers)
            )
            weights = cls(
                layers=layers,
                input_encoding=input_encoding,
                inverse_reach=float(arrays["inverse_reach"]),
                heads=int(arrays["heads"]),
                n_linear=int(arrays["n_linear"]),
                centre=arrays["centre"].astype(np.float64),
                half_range=arrays["half_range"].astype(np.float64),
                periodic_lower=arrays["periodic_lower"].astype(np.float64),
                order=arrays["order"].astype(np.int64),
            )
        if input_encoding not in INPUT_ENCODINGS:
            raise ValueError(f"unknown input encoding {input_encoding!r} (known: {', '.join(INPUT_ENCODINGS)})")
        if n_layers and layers[0][0].shape[0] != INPUT_ENCODINGS[input_encoding]:
            raise ValueError(
                f"the first layer takes {layers[0][0].shape[0]} inputs, input encoding {input_encoding!r} "
                f"gives {INPUT_ENCODINGS[input_encoding]}"
            )
        chained = n_layers > 0 and all(a[0].shape[1] == b[0].shape[0] for a, b in zip(layers, layers[1:]))
        n_out = weights.heads * (weights.n_linear + 2 * len(weights.periodic_lower))
        if (
            not chained
            or layers[-1][0].shape[1] != n_out
            or len(weights.order) != weights.n_linear + len(weights.periodic_lower)
        ):
            raise ValueError("the layers' shapes do not chain into the decoded joints")
        return weights


class IKNetwork:
    """A loaded IK network for one chain: ``predict`` maps target poses to joint positions.

    numpy poses go through the file's folded float32 weights: few through the compiled forward pass
    (``kernels.mlp``), many through numpy's matrix products; torch is never imported for them. torch
    tensors go through ``module``, the scripted ``PoseToJoints`` (loaded with torch when first needed).
    ``metadata`` is the file's JSON.
    """

    def __init__(
        self,
        weights: NetworkWeights,
        metadata: dict[str, Any],
        path: Optional[Path] = None,
        module: Optional[Any] = None,
    ) -> None:
        self.weights = weights
        self.metadata = metadata
        self.path = path
        self.fingerprint: str = metadata["fingerprint"]
        self.joint_names: list[str] = list(metadata["joint_names"])
        self.heads: int = weights.heads
        self._module = module
        self._params, self._sizes = pack_layers(list(weights.layers))
        self._n_inputs = INPUT_ENCODINGS[weights.input_encoding]
        self._decoding = (weights.n_linear, weights.centre, weights.half_range, weights.periodic_lower, weights.order)
        self.one_pose_fields: tuple = (
            weights.inverse_reach,
            self._n_inputs,
            self._params,
            self._sizes,
            self.heads,
            *self._decoding,
        )
        """What ``kernels.mlp.guesses_of_pose`` takes after the pose: the compiled one-pose guess's weights."""

    def __repr__(self) -> str:
        return f"IKNetwork({self.path or 'in memory'}, fingerprint {self.fingerprint}, {len(self.joint_names)} joints)"

    @property
    def module(self) -> Any:
        """The scripted ``PoseToJoints`` (torch.jit.ScriptModule, eval mode), read from ``path`` on first use."""
        if self._module is None:
            if self.path is None:
                raise ValueError("this in-memory IKNetwork has no TorchScript module")
            self._module = load_scripted(self.path)
        return self._module

    def predict(self, T_target: Any) -> Any:
        """The network's (first) guess: T_target (..., 4, 4) tip in base frame -> q (..., dof), within the
        limits. numpy in gives float64 numpy out; torch in gives torch out (float32, no gradient)."""
        return self.predict_all(T_target)[..., 0, :]

    def predict_all(self, T_target: Any) -> Any:
        """All K heads' guesses: T_target (..., 4, 4) -> q (..., K, dof), head 0 (``predict``'s) first;
        K = ``heads``, 1 for a single-head network. Types as ``predict``."""
        shape = tuple(T_target.shape)
        if shape[-2:] != (4, 4):
            raise ValueError(f"T_target has shape {shape}; expected (..., 4, 4)")
        torch = sys.modules.get("torch")  # a torch tensor exists only once torch is imported
        if torch is not None and isinstance(T_target, torch.Tensor):
            T = T_target.reshape(-1, 4, 4).to(torch.float32)
            with torch.inference_mode():
                q = self.module.guesses(T) if self.heads > 1 else self.module(T)[:, None]
            return q.reshape(shape[:-2] + q.shape[1:])
        if shape == (4, 4):  # one pose (the solver's hot path): one compiled call
            return guesses_of_pose(np.ascontiguousarray(T_target, dtype=np.float64), *self.one_pose_fields)
        T = np.ascontiguousarray(T_target, dtype=np.float64).reshape(-1, 4, 4)
        raw = self._raw(features(T, self.weights.inverse_reach, self._n_inputs))
        q = decode_rows(raw.reshape(len(T) * self.heads, -1), *self._decoding)
        return q.reshape(shape[:-2] + (self.heads, q.shape[-1]))

    def _raw(self, x: np.ndarray) -> np.ndarray:
        """The MLP's raw outputs (R, n_out) float32 at inputs x (R, n_in) float32: few rows by the compiled
        kernel on the calling thread, more by numpy's (BLAS) matrix products, split over the cores."""
        if len(x) == 1:
            return mlp_forward(x[0], self._params, self._sizes)[None]
        if len(x) < _BLAS_MIN_ROWS:
            return mlp_forward_rows(x, self._params, self._sizes)
        parts = min(numba.get_num_threads(), len(x) // _ROWS_PER_THREAD)
        with _blas().limit(limits=1, user_api="blas"):
            if parts <= 1:
                return self._products(x)
            return np.concatenate(list(_row_threads().map(self._products, np.array_split(x, parts))))

    def _products(self, x: np.ndarray) -> np.ndarray:
        """``_raw`` of rows x (R, n_in) float32 by numpy's matrix products, on the calling thread."""
        last = len(self.weights.layers) - 1
        for i, (W, b) in enumerate(self.weights.layers):
            x = x @ W + b
            if i < last:
                x = x * (0.5 + 0.5 * np.tanh(0.5 * x))  # SiLU; sigmoid as tanh: no overflow for large |x|
        return x


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


def read_network_metadata(path: PathLike) -> dict[str, Any]:
    """The metadata of the model file at ``path`` (e.g. its ``base_link`` and ``tip_link``), for any chain.

    Raises as ``load_network`` does, but for the fingerprint.
    """
    return _read(Path(path))[0]


def load_network(path: PathLike, chain: KinematicChain) -> IKNetwork:
    """Load the network at ``path`` for ``chain`` from its metadata and weights entries (never with pickle,
    never with torch).

    Raises FileNotFoundError for a missing file and ValueError, naming the file, for one that is not a
    TorchScript model, has no or unreadable metadata or weights, an unknown format version, or was
    trained for another chain (both fingerprints named).
    """
    path = Path(path)
    metadata, weights_entry = _read(path)
    if metadata.get("fingerprint") != chain.fingerprint:
        raise ValueError(
            f"IK network file {path} was trained for chain fingerprint {metadata.get('fingerprint')} "
            f"({metadata.get('base_link')} -> {metadata.get('tip_link')}), but the chain "
            f"{chain.base_link} -> {chain.tip_link} has fingerprint {chain.fingerprint}"
        )
    try:
        weights = NetworkWeights.from_npz(weights_entry)
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as error:
        raise ValueError(f"IK network file {path} has an unreadable {WEIGHTS_ENTRY} entry: {error}") from None
    if len(weights.order) != chain.dof:
        raise ValueError(f"IK network file {path} decodes {len(weights.order)} joints, the chain has {chain.dof}")
    return IKNetwork(weights, metadata, path)


@contextlib.contextmanager
def torchscript_is_the_format() -> Iterator[None]:
    """Silences torch's deprecation notices for torch.jit: TorchScript is our file format (loadable from
    C++ and without pickle)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.jit")
        yield


def load_scripted(path: Path) -> Any:
    """The TorchScript module (torch.jit.ScriptModule, eval mode, CPU) of the model file at ``path``;
    ValueError naming the file for one torch cannot read. Imports torch: only for torch inputs and training."""
    import torch

    try:
        with torchscript_is_the_format():
            return torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as error:  # torch reports a damaged archive as RuntimeError, or worse
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"IK network file {path} is not a readable TorchScript model: {first_line}") from None


def _read(path: Path) -> tuple[dict[str, Any], bytes]:
    """(metadata, weights entry) of a model file, checked to be an ik_neural model of a version this
    package reads."""
    if not path.is_file():
        raise FileNotFoundError(f"IK network file {path} does not exist")
    try:
        with zipfile.ZipFile(path) as archive:
            # A TorchScript archive holds <name>/data.pkl, <name>/code/... and <name>/extra/<entry>.
            names = archive.namelist()
            top = {name.split("/", 1)[0] for name in names}
            if len(top) != 1 or f"{next(iter(top))}/data.pkl" not in names:
                raise zipfile.BadZipFile("not a TorchScript archive")
            extra = f"{next(iter(top))}/extra/"
            metadata_entry = archive.read(extra + METADATA_ENTRY) if extra + METADATA_ENTRY in names else b""
            weights_entry = archive.read(extra + WEIGHTS_ENTRY) if extra + WEIGHTS_ENTRY in names else None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise ValueError(f"IK network file {path} is not a readable TorchScript model: {error}") from None
    try:
        metadata = json.loads(metadata_entry)
    except (json.JSONDecodeError, UnicodeDecodeError):
        metadata = None
    if not isinstance(metadata, dict):
        raise ValueError(f"IK network file {path} has no readable {METADATA_ENTRY} metadata: not an ik_neural model")
    version = metadata.get("format_version")
    if version not in READ_VERSIONS:
        retrain = "; train it again with ik_train" if version in (1, 2) else ""
        raise ValueError(
            f"IK network file {path} has format version {version!r}; this ik_neural reads versions "
            f"{', '.join(map(str, READ_VERSIONS))}{retrain}"
        )
    if weights_entry is None:
        raise ValueError(f"IK network file {path} is format version {version} but has no {WEIGHTS_ENTRY} entry")
    return metadata, weights_entry
