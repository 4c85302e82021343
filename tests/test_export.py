"""ONNX export of the inference path: outputs equal PyTorch's within 1e-4."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from crossingnets import cli
from crossingnets.export import OUTPUT_NAMES, export_onnx, max_difference, onnx_session
from crossingnets.models import MODELS, model_config

pytest.importorskip("onnxruntime")


def _model(kind: str):
    torch.manual_seed(0)
    model = MODELS[kind](model_config("tiny", convention="nyu"))
    model.train()
    model(torch.rand(8, 1, 32, 32))  # non-trivial batch-norm statistics
    return model.eval()


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_onnx_outputs_equal_pytorch(kind: str, tmp_path: Path) -> None:
    model = _model(kind)
    path = export_onnx(model, tmp_path / "m.onnx")
    depth = np.random.default_rng(0).uniform(-1, 1, (3, 1, 32, 32)).astype(np.float32)
    assert max_difference(model, path, depth) < 1e-4
    joints, latent = onnx_session(path, threads=1).run(list(OUTPUT_NAMES), {"depth": depth[:1]})
    assert joints.shape == (1, 14, 3) and latent.shape[0] == 1  # dynamic batch axis


def test_export_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _model("crossingnet").save_pretrained(tmp_path / "model")
    assert cli.main(["export-onnx", "--checkpoint", str(tmp_path), "--out", str(tmp_path / "m.onnx")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["max_abs_difference"] < 1e-4 and (tmp_path / "m.onnx").is_file()
