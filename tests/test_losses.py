"""Losses against hand-computed values."""

from __future__ import annotations

import math

import torch

from crossingnets import losses as L


def test_kl_divergence_values() -> None:
    assert L.kl_divergence(torch.zeros(4, 3), torch.zeros(4, 3)).item() == 0.0
    mean, logvar = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, math.log(2.0)]])
    # 0.5 * (1 + 1 - 0 - 1) + 0.5 * (0 + 2 - log 2 - 1)
    assert math.isclose(L.kl_divergence(mean, logvar).item(), 0.5 + 0.5 * (1 - math.log(2.0)), rel_tol=1e-6)


def test_squared_errors_sum_over_dims_and_average_over_batch() -> None:
    a, b = torch.tensor([[1.0, 2.0], [0.0, 0.0]]), torch.zeros(2, 2)
    assert L.vae_reconstruction_loss(a, b).item() == 0.5 * (5.0 + 0.0) / 2
    assert L.posterior_loss(a, b).item() == 2.5
    assert L.pose_loss(a.view(2, 1, 2), b.view(2, 1, 2)).item() == 2.5


def test_truncated_reconstruction_clips_each_pixel() -> None:
    gen = torch.tensor([[[[1.0, -1.0], [0.5, 0.0]]]])
    real = torch.tensor([[[[-1.0, -1.0], [0.0, 0.0]]]])
    # per pixel: min(4, 1) + 0 + 0.25 + 0, averaged over 4 pixels
    assert L.truncated_reconstruction_loss(gen, real).item() == 1.25 / 4


def test_gan_losses() -> None:
    big = torch.full((3,), 20.0)
    assert L.discriminator_gan_loss(big, -big).item() < 1e-8
    assert math.isclose(
        L.discriminator_gan_loss(torch.zeros(2), torch.zeros(5)).item(), 2 * math.log(2), rel_tol=1e-6
    )
    assert math.isclose(L.generator_nonsaturating_loss(torch.zeros(2)).item(), math.log(2), rel_tol=1e-6)
    real, fake = torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[0.0, 0.0], [0.0, 2.0]])
    # batch means (2, 3) vs (0, 1): squared distance 8, averaged over 2 features
    assert L.feature_matching_loss(real, fake).item() == 4.0


def test_convex_mixtures_stay_in_the_hull() -> None:
    z = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    mixed = L.convex_mixtures(z, 5, torch.Generator().manual_seed(0))
    assert mixed.shape == (3, 2)
    assert (mixed >= 0).all() and (mixed.sum(1) <= 1 + 1e-6).all()
    same = L.convex_mixtures(z, 5, torch.Generator().manual_seed(0))
    assert torch.equal(mixed, same)


def test_smoothness_loss_zero_at_target() -> None:
    z, z_r, f_real = torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 3)
    assert L.smoothness_loss(f_real + z_r - z, f_real, f_real, z_r, z).abs().item() < 1e-10
    off = L.smoothness_loss(f_real + z_r - z, f_real, f_real + 1.0, z_r, z).item()
    assert math.isclose(off, 3.0, rel_tol=1e-6)  # smo(render of own latent, real) = 1 in 3 dims


def test_losses_accept_bfloat16() -> None:
    a = torch.randn(4, 3, dtype=torch.bfloat16)
    assert L.posterior_loss(a, a.float() + 1).dtype == torch.float32
