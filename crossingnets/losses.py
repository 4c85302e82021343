"""Losses of the three training stages (paper Sec. 3) as pure functions of tensors.

Conventions: vector losses sum over their dimensions and average over the batch (as the authors'
summed squared errors, divided by the batch size); image losses average over pixels. Inputs may
be bfloat16 under autocast; every loss is computed in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _sq_sum(x: torch.Tensor) -> torch.Tensor:
    """Squared norm per sample, averaged over the batch; x (B, ...)."""
    return x.float().pow(2).flatten(1).sum(1).mean()


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)) summed over the code (B, Z), batch mean."""
    mean, logvar = mean.float(), logvar.float()
    return (0.5 * (mean.pow(2) + logvar.exp() - logvar - 1.0)).sum(1).mean()


def vae_reconstruction_loss(recon: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
    """0.5 * squared error of poses (B, 3J), the Gaussian log-likelihood of the authors' code."""
    return 0.5 * _sq_sum(recon.float() - pose.float())


def discriminator_gan_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy: real crops (B,) -> 1, generated crops (B',) -> 0."""
    real, fake = real_logits.float(), fake_logits.float()
    return F.binary_cross_entropy_with_logits(
        real, torch.ones_like(real)
    ) + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))


def generator_nonsaturating_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """-log D(G(z)) for generated crops' logits (B,)."""
    fake = fake_logits.float()
    return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))


def feature_matching_loss(real_features: torch.Tensor, fake_features: torch.Tensor) -> torch.Tensor:
    """Squared distance of the batch-mean discriminator features (B, F), averaged over F.

    Salimans et al. 2016, the generator loss of the authors' code; real features are targets.
    """
    return (real_features.float().mean(0).detach() - fake_features.float().mean(0)).pow(2).mean()


def truncated_reconstruction_loss(
    generated: torch.Tensor, real: torch.Tensor, clip: float = 1.0
) -> torch.Tensor:
    """Per-pixel squared error clipped at `clip`, averaged; crops (B, 1, S, S).

    The clip keeps pixels where the render and the real crop disagree completely (background vs
    hand) from dominating (paper Sec. 3.3).
    """
    return (generated.float() - real.float()).pow(2).clamp(max=clip).mean()


def posterior_loss(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_pos: squared error (B, L) between the posterior head's latent and the pose's encoding."""
    return _sq_sum(estimate.float() - target.float().detach())


def joint_loss(predicted: torch.Tensor, target: torch.Tensor, beta: float) -> torch.Tensor:
    """Smooth-L1 joint error (B, J, 3), summed over xyz, averaged over joints and batch: robust to
    the few frames whose joints leave the crop, and steady near zero where squared errors fade."""
    err = F.smooth_l1_loss(predicted.float(), target.float(), beta=beta, reduction="none")
    return err.sum(-1).mean()


def weighted_l1_reconstruction_loss(
    generated: torch.Tensor, real: torch.Tensor, fg_weight: float
) -> torch.Tensor:
    """L1 per pixel of crops (B, 1, S, S), hand pixels (real < 1, the background) weighted 1 + fg_weight.

    Unlike the clipped square, its gradient does not vanish where render and crop disagree on hand
    vs background, at the finger silhouettes (issue 11)."""
    weight = 1.0 + fg_weight * (real < 1.0).float()
    return ((generated.float() - real.float()).abs() * weight).mean()


def masked_render_loss(depth: torch.Tensor, mask_logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Hand-mask cross-entropy plus the L1 depth error on the real crop's hand pixels; (B, 1, S, S)
    each. The mask makes the silhouette a classification (sharp at fingers); the depth channel is
    judged only where there is a hand to measure."""
    hand = (real < 1.0).float()
    bce = F.binary_cross_entropy_with_logits(mask_logits.float(), hand)
    l1 = ((depth.float() - real.float()).abs() * hand).sum() / hand.sum().clamp(min=1.0)
    return bce + l1


def keypoint_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error of crop keypoints (B, J, 3): the skeleton generator's joints against the
    labelled ones, so its bone maps sit where the crop's fingers are from the first steps."""
    return (predicted.float() - target.float()).abs().mean()


def joint_distance_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean distance between joints (B, J, 3): the kinematic generator's joints against the
    labels (not squared: the hand's pose is fitted to all joints alike, as inverse kinematics would)."""
    return (predicted.float() - target.float()).norm(dim=-1).mean()


def pose_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared joint error (B, J, 3), pose units (the DeepPrior baseline's loss)."""
    return _sq_sum(predicted.float() - target.float())


def convex_mixtures(
    latents: torch.Tensor, num_mixed: int = 5, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Random latents Z_r (B, L): each a convex combination of `num_mixed` latents of the batch."""
    b = latents.shape[0]
    idx = torch.randint(0, b, (b, num_mixed), generator=generator, device=latents.device)
    w = torch.rand((b, num_mixed), generator=generator, device=latents.device, dtype=latents.dtype)
    w = w / w.sum(1, keepdim=True)
    return (w[..., None] * latents[idx]).sum(1)


def smoothness_loss(
    f_mixed: torch.Tensor,
    f_real: torch.Tensor,
    f_rendered: torch.Tensor,
    mixed_latents: torch.Tensor,
    latents: torch.Tensor,
) -> torch.Tensor:
    """L_smo: smo(Gen(Ali(Z_r)), x_l) = Z_r - Z_l and smo(Gen(Ali(Z_l)), x_l) = 0.

    f_* are smoothness embeddings (B, L) of the renders of Z_r, of the real labeled crops x_l and
    of the renders of their own latents Z_l; smo(a, b) = f(a) - f(b).
    """
    target = (mixed_latents - latents).float().detach()
    return _sq_sum(f_mixed.float() - f_real.float() - target) + _sq_sum(f_rendered.float() - f_real.float())
