"""Losses against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
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


def _softplus(x: float) -> float:
    """log(1 + e^x), written out: BCE with logits is softplus(-x) for target 1, softplus(x) for 0."""
    return math.log1p(math.exp(x))


LOGITS = [-2.5, -0.7, 0.4, 1.8, 3.0]  # away from 0, where flipping a target leaves the value alone


def test_discriminator_gan_loss_by_hand_and_direction() -> None:
    """Real crops are pushed towards 1, generated ones towards 0: the loss falls as real logits
    rise and as fake logits fall."""
    real = torch.tensor(LOGITS, requires_grad=True)
    fake = torch.tensor(LOGITS[:3], requires_grad=True)
    loss = L.discriminator_gan_loss(real, fake)
    expected = np.mean([_softplus(-x) for x in LOGITS]) + np.mean([_softplus(x) for x in LOGITS[:3]])
    assert math.isclose(loss.item(), expected, rel_tol=1e-6)
    loss.backward()
    assert (real.grad < 0).all() and (fake.grad > 0).all()
    values = [L.discriminator_gan_loss(torch.tensor([x]), torch.tensor([-x])).item() for x in LOGITS]
    assert all(a > b for a, b in zip(values, values[1:], strict=False))


def test_generator_nonsaturating_loss_by_hand_and_direction() -> None:
    """-log D(G(z)) = softplus(-logit): positive, and falling as D's logit on the fake rises."""
    fake = torch.tensor(LOGITS, requires_grad=True)
    loss = L.generator_nonsaturating_loss(fake)
    assert math.isclose(loss.item(), np.mean([_softplus(-x) for x in LOGITS]), rel_tol=1e-6)
    loss.backward()
    assert (fake.grad < 0).all()
    values = [L.generator_nonsaturating_loss(torch.tensor([x])).item() for x in LOGITS]
    assert all(v > 0 for v in values) and all(a > b for a, b in zip(values, values[1:], strict=False))
    # Non-saturating: the gradient stays large where the discriminator rejects the fake confidently.
    strongly_rejected = torch.tensor([-6.0], requires_grad=True)
    L.generator_nonsaturating_loss(strongly_rejected).backward()
    assert strongly_rejected.grad.item() < -0.99


def test_feature_matching_pulls_fake_features_to_the_real_mean() -> None:
    """A gradient step on the fake features moves their batch mean towards the real one; the real
    features are targets and receive no gradient."""
    real = torch.tensor([[1.0, -2.0, 0.5], [3.0, 0.0, 0.5]], requires_grad=True)  # mean (2, -1, 0.5)
    fake = torch.tensor([[0.0, 1.0, 0.5], [0.0, 1.0, 2.5]], requires_grad=True)  # mean (0, 1, 1.5)
    loss = L.feature_matching_loss(real, fake)
    assert loss.item() == (4.0 + 4.0 + 1.0) / 3
    loss.backward()
    assert real.grad is None or (real.grad == 0).all()
    # d/d fake[b, f] of mean_f (r_f - mean_b fake)^2 = -2 (r_f - m_f) / (F * B)
    expected = -2 * torch.tensor([2.0, -2.0, -1.0]) / (3 * 2)
    torch.testing.assert_close(fake.grad, expected.expand(2, 3))
    stepped = L.feature_matching_loss(real, fake.detach() - 0.1 * fake.grad)
    assert stepped.item() < loss.item()


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


def test_masked_render_loss_classifies_the_silhouette_and_ignores_background_depth() -> None:
    real = torch.ones(1, 1, 4, 4)
    real[..., :2, :] = 0.2  # hand in the top half
    hand = real < 1
    right = torch.where(hand, 8.0, -8.0)  # confident, correct mask logits
    depth = torch.where(hand, 0.2, torch.tensor(-0.7))  # exact on the hand, anything behind it
    low = L.masked_render_loss(depth, right, real)
    assert low < 1e-3
    assert L.masked_render_loss(depth, -right, real) > 4.0  # the mask inverted
    assert L.masked_render_loss(depth + 0.1 * hand, right, real) == pytest.approx(low.item() + 0.1, abs=1e-4)


def test_losses_by_hand_with_nonzero_targets() -> None:
    """Values a sign, an exponent or a reduction axis flipped would change (found by mutation)."""
    mean, logvar = torch.tensor([[2.0]]), torch.tensor([[0.0]])
    assert L.kl_divergence(mean, logvar).item() == 0.5 * (4.0 + 1.0 - 0.0 - 1.0)
    est, target = torch.tensor([[3.0, 1.0]]), torch.tensor([[1.0, 2.0]])  # errors 2 and -1
    assert L.vae_reconstruction_loss(est, target).item() == 0.5 * 5.0
    assert L.posterior_loss(est, target).item() == 5.0
    assert L.pose_loss(est.view(1, 1, 2), target.view(1, 1, 2)).item() == 5.0


def test_joint_loss_sums_xyz_and_averages_joints_and_batch() -> None:
    """Smooth-L1 per coordinate (quadratic below beta, linear above), xyz summed, then the mean
    over batch (2) and joints (14): a sum over another axis gives another value."""
    pred = torch.zeros(2, 14, 3)
    target = torch.zeros(2, 14, 3)
    target[0, 0] = torch.tensor([1.0, 0.05, 0.0])  # beyond beta (0.1): |e| - beta/2; below: e^2/(2 beta)
    expected = ((1.0 - 0.05) + 0.05**2 / (2 * 0.1)) / (2 * 14)
    assert math.isclose(L.joint_loss(pred, target, beta=0.1).item(), expected, rel_tol=1e-6)


def test_weighted_l1_weighs_hand_pixels_only() -> None:
    """Hand pixels (real < 1) weigh 1 + fg_weight, background pixels (exactly 1) weigh 1."""
    gen = torch.tensor([[[[0.5, 0.0], [1.0, 0.75]]]])
    real = torch.tensor([[[[1.0, 0.5], [0.75, 1.0]]]])  # background, hand, hand, background
    per_pixel = [0.5 * 1, 0.5 * 4, 0.25 * 4, 0.25 * 1]
    assert L.weighted_l1_reconstruction_loss(gen, real, fg_weight=3.0).item() == sum(per_pixel) / 4


def test_masked_render_loss_on_a_crop_without_hand_is_finite() -> None:
    real = torch.ones(1, 1, 4, 4)
    loss = L.masked_render_loss(torch.zeros(1, 1, 4, 4), torch.full((1, 1, 4, 4), -20.0), real)
    assert math.isfinite(loss.item()) and loss.item() < 1e-6  # mask says background, no hand to judge


def test_convex_mixtures_mix_five_latents_by_default() -> None:
    """The authors' code mixes 5 latents: one-hot latents show how many entered each mixture."""
    mixed = L.convex_mixtures(torch.eye(256), generator=torch.Generator().manual_seed(0))
    used = (mixed > 0).sum(1)
    assert used.max().item() == 5 and (used == 5).float().mean() > 0.9
