"""The inference network (depth crops -> joints, latent), run as fast as the CPU allows: ONNX
Runtime with a sparse kernel for the posterior's first fully connected layer, eager PyTorch as
the fallback.

Why the split: at batch 1 the release network's posterior FC (2,048 -> 1,024 inputs -> units:
8 MB of float32 weights for 2 MFLOP) is memory bound; ONNX Runtime's profile gave it half of a
pass (~600 of ~1,270 us on one loaded core). Its input is the last residual block's ReLU output,
74 % zeros on the synthetic test's crops, so a kernel that reads only the weight rows of nonzero
inputs reads a quarter of the bytes. A large batch reuses every weight row many times, so there
the whole graph runs in ONNX Runtime, whose GEMM is faster than the sparse kernel.

`load_network(model)` picks the fastest path the model and the machine allow; every path returns
the same joints as eager PyTorch to float rounding (tests: 1e-3 mm).
"""

from __future__ import annotations

import copy
import functools
import io
import logging
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numba import njit
from torch import nn

from crossingnets.files import atomic_output
from crossingnets.models import CrossingNet, LatentPoseModel
from crossingnets.models.resnet import ResNetHead

log = logging.getLogger(__name__)

INPUT_NAME = "depth"
OUTPUT_NAMES = ("joints_mm", "latent")
OPSET = 17  # supported by every onnxruntime >= 1.14
BACKENDS = ("auto", "onnx", "eager")


@dataclass(frozen=True)
class RuntimeConfig:
    backend: str = (
        "auto"  # "onnx", "eager", or "auto": ONNX Runtime where it imports and the device is the CPU
    )
    threads: int | None = None  # ONNX Runtime's intra-op threads; None: its default (one per core)
    sparse_max_batch: int = 2  # larger batches run the whole graph (crossover measured near 3)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"runtime backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"runtime threads must be >= 1 or None, got {self.threads}")


# ---------------------------------------------------------------------------------------------
# ONNX export and sessions


def _export(
    module: nn.Module, example: torch.Tensor, target, inputs: list[str], outputs: list[str], opset: int
):
    """torch.onnx.export of `module` with a dynamic batch axis on every input and output."""
    with warnings.catch_warnings():
        # torch 2.9+ deprecates the TorchScript exporter; the dynamo one needs onnxscript, which
        # is not a dependency. Both give the same graph for these static networks.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module,
            (example,),
            target,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes={name: {0: "batch"} for name in (*inputs, *outputs)},
            opset_version=opset,
            dynamo=False,
        )


def _onnx_bytes(module: nn.Module, example: torch.Tensor, inputs: list[str], outputs: list[str]) -> bytes:
    buffer = io.BytesIO()
    _export(module, example, buffer, inputs, outputs, OPSET)
    return buffer.getvalue()


def export_onnx(model: LatentPoseModel, path: str | os.PathLike, opset: int = OPSET) -> Path:
    """Write `model`'s inference path (input `depth` (B, 1, S, S); outputs `joints_mm` (B, J, 3),
    `latent` (B, L)) to `path` with a dynamic batch axis (atomic write)."""
    model = model.eval()
    s = model.config.crop_px
    path = Path(path)
    with atomic_output(path) as tmp:
        _export(model, torch.zeros(2, 1, s, s), str(tmp), [INPUT_NAME], list(OUTPUT_NAMES), opset)
    return path


def onnx_session(model: str | os.PathLike | bytes, threads: int | None = None):
    """An ONNX Runtime CPU session for an exported model (a file or its bytes), all graph
    optimisations on, `threads` intra-op threads (None: one per core) and one inter-op thread."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.inter_op_num_threads = 1
    if threads is not None:
        opts.intra_op_num_threads = threads
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])


def onnx_runtime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# networks: crops (B, 1, S, S) float32 -> joints_mm (B, J, 3), latent (B, L), numpy in and out


class Network:
    """The inference network behind one interface, whichever backend runs it."""

    backend: str  # a short name for reports: "eager", "onnx", "onnx+sparse"

    def __call__(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Crops (B, 1, S, S) float32 in [-1, 1] -> joints (B, J, 3) mm around the crop centre,
        latent (B, L)."""
        raise NotImplementedError


class EagerNetwork(Network):
    """The model itself, in eval mode and inference mode."""

    backend = "eager"

    def __init__(self, model: LatentPoseModel, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()

    @torch.inference_mode()
    def __call__(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        joints, latent = self.model(torch.as_tensor(crops, dtype=torch.float32).to(self.device))
        return joints.cpu().numpy(), latent.cpu().numpy()


class OnnxNetwork(Network):
    """The whole graph in one ONNX Runtime session."""

    backend = "onnx"

    def __init__(self, model: LatentPoseModel, threads: int | None = None) -> None:
        s = model.config.crop_px
        onnx = _onnx_bytes(model.eval(), torch.zeros(2, 1, s, s), [INPUT_NAME], list(OUTPUT_NAMES))
        self.session = onnx_session(onnx, threads)

    def __call__(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        joints, latent = self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: _float32(crops)})
        return joints, latent


class SparseTopNetwork(Network):
    """Small batches: the convolutions in ONNX Runtime (crops -> posterior features), the first
    FC with its batch norm and LeakyReLU folded into `_sparse_linear_leaky`, the rest (last FC,
    pose decoder) in a second session. Larger batches: `whole`."""

    backend = "onnx+sparse"

    def __init__(self, model: CrossingNet, threads: int | None, max_batch: int) -> None:
        disc = model.discriminator
        fc, bn, act, last = disc.posterior.top
        s = model.config.crop_px
        features = _onnx_bytes(_Features(disc).eval(), torch.zeros(2, 1, s, s), [INPUT_NAME], ["features"])
        tail = _onnx_bytes(
            _Tail(model, last).eval(), torch.zeros(2, fc.out_features), ["hidden"], list(OUTPUT_NAMES)
        )
        self.features = onnx_session(features, threads)
        self.tail = onnx_session(tail, threads)
        self.weight_t, self.bias = fold_batch_norm(fc, bn)
        self.slope = np.float32(act.negative_slope)
        self.max_batch = max_batch
        self._model, self._threads = copy.deepcopy(model), threads  # the weights as they are now
        # Batch 1, the live path, runs on buffers bound once (IO binding: no allocation per run).
        self.one_features = _Bound(self.features, {INPUT_NAME: (1, 1, s, s)}, ["features"])
        self.one_tail = _Bound(self.tail, {"hidden": (1, fc.out_features)}, list(OUTPUT_NAMES))
        self.one_lock = threading.Lock()  # one caller at a time on the bound buffers

    def __call__(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        crops = _float32(crops)
        if len(crops) == 1 and self.one_lock.acquire(blocking=False):
            try:
                return self._one(crops)
            finally:
                self.one_lock.release()
        if len(crops) > self.max_batch:
            return self.whole(crops)
        (features,) = self.features.run(["features"], {INPUT_NAME: crops})
        hidden = np.empty((len(crops), len(self.bias)), np.float32)
        _sparse_linear_leaky(features, self.weight_t, self.bias, self.slope, hidden)
        joints, latent = self.tail.run(list(OUTPUT_NAMES), {"hidden": hidden})
        return joints, latent

    @functools.cached_property
    def whole(self) -> OnnxNetwork:
        """The whole graph for large batches, exported on first use."""
        return OnnxNetwork(self._model, self._threads)

    def _one(self, crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.one_features.inputs[INPUT_NAME][:] = crop
        (features,) = self.one_features.run()
        _sparse_linear_leaky(features, self.weight_t, self.bias, self.slope, self.one_tail.inputs["hidden"])
        joints, latent = self.one_tail.run()
        return joints.copy(), latent.copy()  # the bound buffers are overwritten by the next run


class _Bound:
    """A session with float32 input and output buffers bound once (ONNX Runtime's IO binding).
    `run` returns the output buffers themselves."""

    def __init__(self, session, inputs: dict[str, tuple[int, ...]], outputs: list[str]) -> None:
        self.session = session
        self.inputs = {name: np.zeros(shape, np.float32) for name, shape in inputs.items()}
        shapes = [a.shape for a in session.run(outputs, self.inputs)]  # the outputs' shapes
        self.outputs = [np.zeros(shape, np.float32) for shape in shapes]
        self.binding = session.io_binding()
        for name, array in self.inputs.items():
            self.binding.bind_cpu_input(name, array)
        for name, array in zip(outputs, self.outputs, strict=True):
            self.binding.bind_output(name, "cpu", 0, np.float32, list(array.shape), array.ctypes.data)

    def run(self) -> list[np.ndarray]:
        self.session.run_with_iobinding(self.binding)
        return self.outputs


class _Features(nn.Module):
    """Crops -> the posterior head's flattened features (B, F), the sparse FC's input."""

    def __init__(self, discriminator: nn.Module) -> None:
        super().__init__()
        self.discriminator = discriminator

    def forward(self, depth: torch.Tensor) -> torch.Tensor:
        d = self.discriminator
        return d.posterior.forward_features(d.forward_trunk(depth))


class _Tail(nn.Module):
    """Hidden units (B, H) after the first FC -> joints mm (B, J, 3), latent (B, L)."""

    def __init__(self, model: LatentPoseModel, last: nn.Linear) -> None:
        super().__init__()
        self.model, self.last = model, last

    def forward(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        latent = self.last(hidden)
        return self.model.decode_latent(latent), latent


def _float32(crops: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(crops, dtype=np.float32)


def has_sparse_top(model: LatentPoseModel) -> bool:
    """Whether the model's posterior reads ReLU features (zeros worth skipping) through FC + BN +
    LeakyReLU + FC, the form `SparseTopNetwork` folds (the release Crossing Net's)."""
    if not isinstance(model, CrossingNet) or not isinstance(model.discriminator.posterior, ResNetHead):
        return False
    top = model.discriminator.posterior.top
    kinds = (nn.Linear, nn.BatchNorm1d, nn.LeakyReLU, nn.Linear)
    return (
        isinstance(top, nn.Sequential)
        and len(top) == len(kinds)
        and all(isinstance(m, k) for m, k in zip(top, kinds, strict=True))
    )


def fold_batch_norm(fc: nn.Linear, bn: nn.BatchNorm1d) -> tuple[np.ndarray, np.ndarray]:
    """Eval-mode BN(fc(x)) as one affine map: its transposed weight (F, H), rows by input, and bias
    (H,), float32 (folded in float64)."""
    w = fc.weight.detach().double()
    b = (
        fc.bias.detach().double()
        if fc.bias is not None
        else torch.zeros(fc.out_features, dtype=torch.float64)
    )
    scale = bn.weight.detach().double() / torch.sqrt(bn.running_var.detach().double() + bn.eps)
    bias = (b - bn.running_mean.detach().double()) * scale + bn.bias.detach().double()
    weight_t = (w * scale[:, None]).T.contiguous()
    return weight_t.float().numpy(), bias.float().numpy()


@njit(cache=True, nogil=True)
def _sparse_linear_leaky(x, weight_t, bias, slope, out):  # pragma: no cover (numba)
    """out (B, H) = LeakyReLU(x (B, F) @ weight_t (F, H) + bias), reading only the weight rows
    of nonzero inputs; each row once for the whole batch."""
    batch, n_in = x.shape
    for b in range(batch):
        out[b, :] = bias
    for i in range(n_in):
        row = weight_t[i]
        for b in range(batch):
            xi = x[b, i]
            if xi != 0.0:
                acc = out[b]
                for h in range(len(row)):
                    acc[h] += xi * row[h]
    for b in range(batch):
        acc = out[b]
        for h in range(len(acc)):
            if acc[h] < 0.0:
                acc[h] *= slope


def load_network(
    model: LatentPoseModel, config: RuntimeConfig = RuntimeConfig(), device: str | torch.device = "cpu"
) -> Network:
    """The fastest network for `model` that `config` allows: ONNX Runtime with the sparse posterior
    kernel, ONNX Runtime alone, or eager PyTorch (a GPU device, no onnxruntime, or a failed export,
    which is logged). The weights are copied: build it again after changing them."""
    model = model.eval()
    use_onnx = config.backend == "onnx" or (
        config.backend == "auto" and torch.device(device).type == "cpu" and onnx_runtime_available()
    )
    if not use_onnx:
        return EagerNetwork(model, device)
    try:
        if has_sparse_top(model):
            return SparseTopNetwork(model, config.threads, config.sparse_max_batch)
        return OnnxNetwork(model, config.threads)
    except Exception as err:  # an export or session failure must not stop inference
        if config.backend == "onnx":
            raise
        log.warning("ONNX Runtime unavailable for this model (%s); running eager PyTorch", err)
        return EagerNetwork(model, device)
