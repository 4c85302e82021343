"""The fast inference runtime: every backend and batch path gives eager PyTorch's outputs."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from crossingnets import runtime
from crossingnets.camera import CAMERAS
from crossingnets.data.depth_file import load_depth
from crossingnets.data.preprocess import preprocess
from crossingnets.inference import HandPoseEstimator
from crossingnets.models import MODELS, model_config
from crossingnets.runtime import (
    EagerNetwork,
    RuntimeConfig,
    SparseTopNetwork,
    fold_batch_norm,
    has_sparse_top,
    load_network,
)

pytest.importorskip("onnxruntime")

REPO = Path(__file__).resolve().parents[1]


def _trained_like(model: nn.Module) -> nn.Module:
    """Non-trivial batch-norm statistics, then eval mode."""
    model.train()
    with torch.no_grad():
        model(torch.rand(16, 1, model.config.crop_px, model.config.crop_px) * 2 - 1)
    return model.eval()


def _model(kind: str, preset: str) -> nn.Module:
    torch.manual_seed(0)
    return _trained_like(MODELS[kind](model_config(preset, convention="nyu")))


def _crops(n: int, s: int = 32) -> np.ndarray:
    """Crop-like inputs: a background of +1 around a hand-sized blob of nearer depths."""
    rng = np.random.default_rng(n)
    crops = np.ones((n, 1, s, s), np.float32)
    crops[:, :, s // 4 : 3 * s // 4, s // 4 : 3 * s // 4] = rng.uniform(-0.6, 0.4, (n, 1, s // 2, s // 2))
    return crops


@pytest.mark.parametrize(
    "kind, preset, backend",
    [
        ("crossingnet", "tiny-release", "onnx+sparse"),
        ("crossingnet", "tiny", "onnx"),
        ("scratch", "tiny", "onnx"),
    ],
)
def test_each_backend_and_batch_path_equals_eager(kind: str, preset: str, backend: str) -> None:
    model = _model(kind, preset)
    crops = _crops(7)
    ref = EagerNetwork(model)(crops)
    net = load_network(model, RuntimeConfig(threads=1))
    assert net.backend == backend
    for batch in (1, 2, 7):  # bound batch-1 buffers, the sparse kernel's batch, the whole graph
        out = [net(crops[i : i + batch]) for i in range(0, len(crops), batch)]
        for got, want in zip(zip(*out, strict=True), ref, strict=True):
            np.testing.assert_allclose(np.concatenate(got), want, rtol=0, atol=1e-4)


def test_batch_one_results_are_not_overwritten_by_the_next_run() -> None:
    net = load_network(_model("crossingnet", "tiny-release"), RuntimeConfig(threads=1))
    crops = _crops(2)
    first = net(crops[:1])
    kept = [a.copy() for a in first]
    net(crops[1:])
    for a, b in zip(first, kept, strict=True):
        np.testing.assert_array_equal(a, b)


def test_concurrent_callers_get_their_own_results() -> None:
    model = _model("crossingnet", "tiny-release")
    net = load_network(model, RuntimeConfig(threads=1))
    crops = _crops(8)
    ref = EagerNetwork(model)(crops)[0]
    errors = []

    def work(i: int) -> None:
        for _ in range(30):
            joints, _ = net(crops[i : i + 1])
            errors.append(float(np.abs(joints - ref[i : i + 1]).max()))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 240 and max(errors) < 1e-4


def test_sparse_kernel_is_the_dense_layer() -> None:
    torch.manual_seed(1)
    fc, bn, act = nn.Linear(40, 24), nn.BatchNorm1d(24), nn.LeakyReLU(0.2)
    with torch.no_grad():
        nn.Sequential(fc, bn).train()(torch.randn(32, 40))  # non-trivial running statistics
    bn.eval()
    x = torch.relu(torch.randn(5, 40))  # ReLU features: about half zeros
    with torch.no_grad():
        want = act(bn(fc(x))).numpy()
    weight_t, bias = fold_batch_norm(fc, bn)
    got = np.empty((5, 24), np.float32)
    runtime._sparse_linear_leaky(x.numpy(), weight_t, bias, np.float32(0.2), got)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_fallbacks_and_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _model("crossingnet", "tiny-release")
    assert has_sparse_top(model) and not has_sparse_top(_model("crossingnet", "tiny"))
    assert load_network(model, RuntimeConfig(backend="eager")).backend == "eager"
    monkeypatch.setattr(runtime, "onnx_runtime_available", lambda: False)
    assert load_network(model).backend == "eager"  # auto without onnxruntime
    assert isinstance(load_network(model, RuntimeConfig(backend="onnx", threads=1)), SparseTopNetwork)

    def broken(*args, **kwargs):
        raise RuntimeError("no exporter")

    monkeypatch.setattr(runtime, "onnx_runtime_available", lambda: True)
    monkeypatch.setattr(runtime, "_onnx_bytes", broken)
    assert load_network(model).backend == "eager"  # auto survives a failed export
    with pytest.raises(RuntimeError, match="no exporter"):
        load_network(model, RuntimeConfig(backend="onnx"))


@pytest.mark.parametrize(
    "kwargs, match", [({"backend": "tvm"}, "backend must be one of"), ({"threads": 0}, "threads must be")]
)
def test_bad_config(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RuntimeConfig(**kwargs)


def test_bundled_model_on_a_real_crop_to_a_hundredth_of_a_millimetre() -> None:
    est = HandPoseEstimator.from_pretrained(REPO / "checkpoints" / "cn-nyu-synth")
    crop = preprocess(load_depth(REPO / "app" / "examples" / "synthetic_nyu_0.png"), CAMERAS["nyu"], est.crop)
    x = crop.depth[None, None]
    net = load_network(est.model, RuntimeConfig(threads=1))
    assert net.backend == "onnx+sparse"
    want = EagerNetwork(est.model)(x)
    for got, ref in zip(net(x), want, strict=True):
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-2)


def test_the_network_keeps_the_weights_it_was_built_with() -> None:
    """Both the batch-1 path and the lazily exported whole graph answer for the weights at build."""
    model = _model("crossingnet", "tiny-release")
    crops = _crops(5)
    ref = EagerNetwork(model)(crops)[0]
    net = load_network(model, RuntimeConfig(threads=1))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5)
    np.testing.assert_allclose(net(crops[:1])[0], ref[:1], rtol=0, atol=1e-4)
    np.testing.assert_allclose(net(crops)[0], ref, rtol=0, atol=1e-4)
