"""Test-time refinement: the search finds latents whose drawing explains the crop better, the same
for a frame alone and in a batch, and the estimator uses it only where asked."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crossingnets.models import model_config
from crossingnets.models.crossingnet import CrossingNet
from crossingnets.refinement import RefineConfig, refine_latents

CENTERS = torch.tensor([[0.0, 0.0, 600.0], [40.0, -30.0, 500.0], [-60.0, 20.0, 700.0], [0.0, 50.0, 650.0]])


@pytest.fixture(scope="module")
def net() -> CrossingNet:
    torch.manual_seed(0)
    return CrossingNet(model_config("tiny-release", gen_arch="kinematic", crop_px=32, cube_mm=300.0)).eval()


def _fit(net: CrossingNet, latent: torch.Tensor, crops: torch.Tensor) -> torch.Tensor:
    return (net.render(latent, CENTERS[: len(latent)]) - crops).abs().mean((1, 2, 3))


def test_refinement_moves_the_latent_towards_the_one_that_drew_the_crop(net: CrossingNet) -> None:
    """Crops drawn from known latents; the search from a disturbed start draws them more closely
    and lands nearer the true latents (no consistency term: the tiny VAE is untrained)."""
    gen = torch.Generator().manual_seed(1)
    truth = torch.randn((4, net.config.latent_dims), generator=gen)
    with torch.no_grad():
        crops = net.render(truth, CENTERS)
    start = truth + 0.5 * torch.randn(truth.shape, generator=gen)
    std = torch.ones(net.config.latent_dims)
    cfg = RefineConfig(
        iterations=15, population=24, elite=6, sigma=0.3, truncate=0.2, w_consistency=0.0, w_prior=0.0
    )
    refined = refine_latents(net, crops, CENTERS, start, std, cfg)
    with torch.no_grad():
        before, after = _fit(net, start, crops), _fit(net, refined, crops)
    assert (after < before).all(), (before, after)
    assert after.mean() < 0.5 * before.mean()
    assert (refined - truth).norm(dim=1).mean() < (start - truth).norm(dim=1).mean()


def test_refinement_is_deterministic_and_does_not_depend_on_the_batch(net: CrossingNet) -> None:
    gen = torch.Generator().manual_seed(2)
    latents = torch.randn((4, net.config.latent_dims), generator=gen)
    with torch.no_grad():
        crops = net.render(latents.flip(0), CENTERS)
    std, cfg = torch.ones(net.config.latent_dims), RefineConfig(iterations=4, population=8, elite=3)
    batch = refine_latents(net, crops, CENTERS, latents, std, cfg)
    assert torch.equal(batch, refine_latents(net, crops, CENTERS, latents, std, cfg))
    alone = refine_latents(net, crops[2:3], CENTERS[2:3], latents[2:3], std, cfg)
    torch.testing.assert_close(alone, batch[2:3])
    assert not torch.equal(batch, latents)
    assert torch.equal(refine_latents(net, crops, CENTERS, latents, std, RefineConfig(iterations=0)), latents)


def test_refinement_never_returns_a_costlier_latent_than_its_start(net: CrossingNet) -> None:
    """The start is the best-so-far until a candidate beats it: from the true latents with no
    prior term, nothing drawn can be closer, so every latent comes back as it went in."""
    gen = torch.Generator().manual_seed(3)
    truth = torch.randn((4, net.config.latent_dims), generator=gen)
    with torch.no_grad():
        crops = net.render(truth, CENTERS)
    cfg = RefineConfig(iterations=3, population=8, elite=3, w_consistency=0.0, w_prior=0.0)
    out = refine_latents(net, crops, CENTERS, truth, torch.ones(net.config.latent_dims), cfg)
    assert torch.equal(out, truth)


def test_refinement_needs_a_kinematic_generator_and_matching_shapes(net: CrossingNet) -> None:
    other = CrossingNet(model_config("tiny-release", gen_arch="skeleton", crop_px=32)).eval()
    z, crops, std = (
        torch.zeros(2, net.config.latent_dims),
        torch.ones(2, 1, 32, 32),
        torch.ones(net.config.latent_dims),
    )
    with pytest.raises(ValueError, match="kinematic"):
        refine_latents(other, crops, CENTERS[:2], z, std, RefineConfig())
    with pytest.raises(ValueError, match="centres"):
        refine_latents(net, crops, CENTERS[:3], z, std, RefineConfig())
    for bad in ({"elite": 0}, {"elite": 40}, {"population": 1}, {"sigma": 0.0}, {"smoothing": 1.0}):
        with pytest.raises(ValueError, match="refinement needs"):
            RefineConfig(**bad)


def test_refine_results_are_finite(net: CrossingNet) -> None:
    """A crop of background alone (no hand to explain) still gives finite latents."""
    z = torch.zeros(2, net.config.latent_dims)
    out = refine_latents(
        net,
        torch.ones(2, 1, 32, 32),
        CENTERS[:2],
        z,
        torch.ones(net.config.latent_dims),
        RefineConfig(iterations=3),
    )
    assert np.isfinite(out.numpy()).all()


def test_the_estimator_refines_its_final_estimate_only_where_asked(net: CrossingNet) -> None:
    """`refine_iterations` 0 is the plain estimate; with iterations the joints are the decoded
    refined latent, which the prediction carries; a baseline or a config without a kinematic
    generator refuses them."""
    from crossingnets.camera import get_camera
    from crossingnets.inference import HandPoseEstimator
    from crossingnets.models.baselines import ScratchRegressor

    cam = get_camera("nyu")
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():
        crops = net.render(torch.randn((3, net.config.latent_dims), generator=gen), CENTERS[:3]).numpy()
    centers = np.array([[320.0, 240.0, 600.0], [350.0, 200.0, 500.0], [280.0, 260.0, 700.0]])
    plain = HandPoseEstimator(net, rotations=1).predict_crops(crops, centers, cam)
    unasked = HandPoseEstimator(net, rotations=1).predict_crops(crops, centers, cam, rotate=False)
    est = HandPoseEstimator(net, rotations=1, refine_iterations=3)
    refined = est.predict_crops(crops, centers, cam)
    assert not np.allclose(refined.joints_xyz_mm, plain.joints_xyz_mm)
    np.testing.assert_allclose(
        est.decode_latent(refined.latent) + refined.center_xyz_mm[:, None], refined.joints_xyz_mm, atol=1e-3
    )
    np.testing.assert_array_equal(
        est.predict_crops(crops, centers, cam, rotate=False).joints_xyz_mm, unasked.joints_xyz_mm
    )
    with pytest.raises(TypeError, match="refinement"):
        HandPoseEstimator(ScratchRegressor(model_config("tiny-release")), refine_iterations=2)
    with pytest.raises(ValueError, match="kinematic"):
        model_config("tiny-release", refine_iterations=2)
