"""The trainer's validation error against hand-computed values: a model whose estimates are known
exactly, on frames whose crop centres lie far from the camera origin."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crossingnets.data.training import Frames
from crossingnets.models import CrossingNet, model_config
from crossingnets.validation import validate

CFG = model_config("tiny", convention="icvl")
J = CFG.num_joints
# The joints every estimate returns, mm about the crop centre.
KNOWN_MM = torch.tensor(np.random.default_rng(0).normal(0.0, 40.0, (J, 3)), dtype=torch.float32)
# Crop centres 500-750 mm away: an error that forgets them is hundreds of mm off.
CENTERS_MM = torch.tensor([[20.0, -30.0, 600.0], [-50.0, 10.0, 750.0], [0.0, 0.0, 500.0]])
# Truth = centre + known joints + these offsets, of lengths 5, 12 and 10 mm: a mean error of 9 mm.
OFFSETS_MM = torch.tensor([[3.0, 4.0, 0.0], [0.0, 0.0, 12.0], [6.0, 0.0, -8.0]])


def known_model() -> CrossingNet:
    """A tiny Crossing Net whose estimation path and pose VAE both return KNOWN_MM, whatever the
    crop or the pose."""
    model = CrossingNet(CFG)
    unit = CFG.pose_unit_mm
    model.estimate_latent = lambda depth: torch.zeros(len(depth), CFG.latent_dims)
    model.encode_pose = lambda pose, root: torch.zeros(len(pose), CFG.latent_dims)
    model.decode_latent_units = lambda latent: (KNOWN_MM / unit).expand(len(latent), J, 3)
    return model


def frames() -> Frames:
    n = len(CENTERS_MM)
    return Frames(
        depth=torch.rand(n, 1, CFG.crop_px, CFG.crop_px) * 2 - 1,
        pose=torch.randn(n, 3 * J),
        root=torch.randn(n, 3),
        center_xyz=CENTERS_MM,
        joints_xyz=CENTERS_MM[:, None] + KNOWN_MM + OFFSETS_MM[:, None],
    )


@pytest.mark.parametrize("batch", [1, 2, 256])
def test_validation_error_is_measured_in_the_camera_frame(batch: int) -> None:
    out = validate(known_model(), frames(), batch=batch)
    assert out.keys() == {"val_mm", "val_vae_mm"}
    assert out["val_mm"] == pytest.approx((5 + 12 + 10) / 3, abs=1e-4)
    assert out["val_vae_mm"] == pytest.approx((5 + 12 + 10) / 3, abs=1e-4)


def test_exact_estimates_score_zero() -> None:
    f = frames()
    f.joints_xyz = CENTERS_MM[:, None] + KNOWN_MM.expand(len(CENTERS_MM), J, 3)
    out = validate(known_model(), f)
    assert out["val_mm"] == pytest.approx(0.0, abs=1e-4) and out["val_vae_mm"] == pytest.approx(0.0, abs=1e-4)


def test_latent_stats_describe_the_labeled_poses_latents() -> None:
    """latent_stats encodes the labeled training poses: its mean, spread and range are theirs."""
    from crossingnets.data.training import TrainData
    from crossingnets.validation import latent_stats

    model = CrossingNet(CFG)
    train = frames()
    latents = torch.arange(3 * CFG.latent_dims, dtype=torch.float32).view(3, -1) ** 1.5
    model.encode_pose = lambda pose, root: latents[: len(pose)]
    data = TrainData(info=None, train=train, labeled=torch.tensor([0, 1, 2]), images=train.depth, val=None)
    stats = latent_stats(model, data)
    np.testing.assert_allclose(stats.mean, latents.numpy().mean(0), rtol=1e-6)
    np.testing.assert_allclose(stats.max, latents.numpy().max(0))
    np.testing.assert_allclose(stats.std, latents.numpy().std(0), rtol=1e-6)
