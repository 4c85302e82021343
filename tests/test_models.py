"""Shapes, parameter counts and basic behaviour of every network, over presets and options."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from crossingnets.models import (
    MODELS,
    PRESETS,
    CrossingNet,
    CrossingNetConfig,
    Discriminator,
    Generator,
    LossConfig,
    PoseVAE,
    TrainStep,
    model_config,
)


def test_paper_architecture_sizes() -> None:
    """The paper preset is the issue's architecture: 128 px crops, 23-d latent, 512-d features."""
    cfg = PRESETS["paper"]
    assert (cfg.crop_px, cfg.latent_dims, cfg.feature_dims, cfg.head_layers) == (128, 23, 512, 3)
    net = CrossingNet(cfg)
    counts = {name: sum(p.numel() for p in m.parameters()) for name, m in net.named_children()}
    # Hand-counted from the layer list (NYU, J = 14: 3J = 42).
    vae = (42 * 40 + 40) + 2 * (40 * 20 + 20) + (20 * 40 + 40) + (40 * 42 + 42)
    align = 23 * 23 + 23 + 2 * 23
    conv_t = 32 * 32 * 36
    gen = 23 * 512 + 2 * 512 + 4 * (conv_t + 2 * 32) + (32 * 36 + 1)
    conv = lambda cin: cin * 32 * 36 + 2 * 32  # noqa: E731
    head_convs = 3 * conv(32)
    disc = (conv(1) + conv(32)) + 3 * head_convs + (512 + 1)
    disc += (512 * 23 + 23 + 2 * 23 + 23 * 23 + 23) + (512 * 512 + 512 + 2 * 512 + 512 * 23 + 23)
    assert counts == {"vae": vae, "align": align, "generator": gen, "discriminator": disc}


@pytest.mark.parametrize("preset", ["tiny", "paper"])
@pytest.mark.parametrize("convention", ["nyu", "icvl"])
def test_crossingnet_shapes(preset: str, convention: str) -> None:
    cfg = model_config(preset, convention=convention)
    net = CrossingNet(cfg).eval()
    b, s, j, lat = 3, cfg.crop_px, cfg.num_joints, cfg.latent_dims
    depth = torch.rand(b, 1, s, s) * 2 - 1
    joints, latent = net(depth)
    assert joints.shape == (b, j, 3) and latent.shape == (b, lat)
    assert net.render(latent).shape == (b, 1, s, s)
    # smo(a, b) = f(a) - f(b) with f the smoothness head: antisymmetric, and per pair of crops
    other = depth.flip(0)  # rows 0 and 2 pair different crops, row 1 a crop with itself
    smo = net.smoothness(depth, other)
    d = net.discriminator
    f_depth, f_other = (d.forward_smoothness(d.forward_trunk(x)) for x in (depth, other))
    torch.testing.assert_close(smo, f_depth - f_other)
    torch.testing.assert_close(net.smoothness(other, depth), -smo)
    torch.testing.assert_close(net.smoothness(depth[:1], other[:1]), smo[:1])
    assert smo.shape == (b, lat) and (smo[[0, 2]].abs().amax(1) > 0).all() and smo[1].abs().max() < 1e-5
    pose, root = torch.randn(b, 3 * j), torch.randn(b, 3)
    assert net.encode_pose(pose, root).shape == (b, lat)
    d = net.discriminator
    h = d.forward_trunk(depth)
    assert h.shape == (b, cfg.disc_channels, s // 4, s // 4)
    logits, feats = d.forward_gan(h)
    assert logits.shape == (b,) and feats.shape == (b, cfg.feature_dims)


@pytest.mark.parametrize("kind", sorted(MODELS))
@pytest.mark.parametrize(("crop_px", "feature_px"), [(16, 2), (32, 4), (64, 4)])
def test_every_model_over_crop_sizes(kind: str, crop_px: int, feature_px: int) -> None:
    cfg = model_config("tiny", crop_px=crop_px, feature_px=feature_px, convention="msra")
    model = MODELS[kind](cfg)
    depth = torch.rand(4, 1, crop_px, crop_px)
    joints, latent = model(depth)  # training mode: batch statistics
    assert joints.shape == (4, 21, 3)
    (joints.square().mean() + latent.square().mean()).backward()
    assert all(
        p.grad is not None
        for p in model.parameters()
        if p.requires_grad and _on_inference_path(kind, p, model)
    )
    model.eval()
    a, b = model(depth), model(depth)
    assert torch.equal(a[0], b[0])


def _on_inference_path(kind: str, p: torch.nn.Parameter, model: torch.nn.Module) -> bool:
    off_path = []
    if kind == "crossingnet":
        d = model.discriminator
        off_path = [
            model.generator,
            model.align,
            d.gan,
            d.smoothness,
            model.vae.enc_fc,
            model.vae.enc_mean,
            model.vae.enc_logvar,
        ]
    elif kind == "scratch":
        off_path = [model.vae.enc_fc, model.vae.enc_mean, model.vae.enc_logvar]
    return not any(p is q for m in off_path for q in m.parameters())


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_each_stage_steps_only_its_own_optimiser_groups(kind: str) -> None:
    """Every stage a model names has optimiser groups of its own parameters, and its training step
    backs finite, named scalar losses into those groups only (the joint warm-up, then full steps)."""
    torch.manual_seed(0)
    model = MODELS[kind](model_config("tiny", convention="icvl")).train()
    params = {id(p) for p in model.parameters()}
    batch = {"depth": torch.rand(4, 1, 32, 32) * 2 - 1, "pose": torch.randn(4, model.config.pose_dims),
             "root": torch.randn(4, 3), "center": torch.tensor([0.0, 0.0, 600.0]) + 50 * torch.randn(4, 3)}  # fmt: skip
    used: list[str] = []

    def optimise(name: str, loss: torch.Tensor) -> None:
        used.append(name)
        model.zero_grad()
        loss.backward()

    for stage in model.stages:
        groups = model.param_groups(stage)
        assert groups and all(ps and {id(p) for p in ps} <= params for ps in groups.values())
        for stage_step in (0, 10):  # the joint stage's warm-up (5 steps here), then full steps
            used.clear()
            rng = torch.Generator().manual_seed(0)
            step = TrainStep(
                LossConfig(warmup_steps=5),
                lambda _: batch,
                rng,
                optimise,
                stage_step,
                torch.contiguous_format,
            )
            losses = model.training_step(stage, step)
            assert used and set(used) <= set(groups), (stage, used)
            assert losses and all(v.ndim == 0 and torch.isfinite(v) for v in losses.values())
    with pytest.raises(ValueError, match="has stages"):
        model.param_groups("nope")


def test_generator_and_discriminator_resample_by_two() -> None:
    g = Generator(latent_dims=23, channels=4, feature_px=2, crop_px=32)
    z = torch.randn(2, 23)
    assert g.forward_features(z).shape == (2, 4, 2, 2)
    assert g(z).shape == (2, 1, 32, 32) and g(z).abs().max() < 1
    d = Discriminator(
        channels=4, trunk_layers=2, head_layers=2, feature_dims=16, latent_dims=23, smo_hidden=8
    )
    h = d.forward_trunk(torch.zeros(2, 1, 32, 32))
    assert d.forward_posterior(h).shape == (2, 23) and d.forward_smoothness(h).shape == (2, 23)


def test_vae_pca_init_and_noise() -> None:
    rng = np.random.default_rng(0)
    poses = rng.normal(size=(200, 3)) @ rng.normal(size=(3, 12)) + 5.0
    vae = PoseVAE(pose_dims=12, pca_dims=6, code_dims=4, noise_std=0.05)
    pca = vae.init_from_pca(poses)
    x = torch.as_tensor(poses[:5], dtype=torch.float32)
    proj = vae.enc_fc(x)[:, : pca.n_components_]
    expected = torch.as_tensor(pca.transform(poses[:5]), dtype=torch.float32)
    torch.testing.assert_close(proj, expected, atol=1e-4, rtol=1e-4)
    # The decoder's last layer maps PCA coefficients back to poses.
    back = vae.dec_out.weight[:, : pca.n_components_] @ expected.T + vae.dec_out.bias[:, None]
    torch.testing.assert_close(back.T, x, atol=1e-3, rtol=1e-3)
    mean, logvar = vae.encode(x)
    vae.eval()
    assert torch.equal(vae.sample(mean, logvar), mean)  # no noise at test time
    vae.train()
    noisy = vae.sample(mean, logvar, torch.Generator().manual_seed(0))
    assert 0 < (noisy - mean).abs().max() < 1.0


def test_vae_pca_init_with_fewer_poses_than_components() -> None:
    vae = PoseVAE(pose_dims=12, pca_dims=6, code_dims=4, noise_std=0.05)
    vae.init_from_pca(np.random.default_rng(0).normal(size=(3, 12)))
    assert torch.isfinite(vae.enc_fc.weight).all() and (vae.dec_out.weight[:, 3:] == 0).all()


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="power of 2"):
        CrossingNetConfig(crop_px=100)
    with pytest.raises(ValueError, match="no head layer"):
        CrossingNetConfig(crop_px=16, feature_px=4)
    with pytest.raises(ValueError, match="unknown convention"):
        CrossingNetConfig(convention="kinect")
    with pytest.raises(ValueError, match="unknown model preset"):
        model_config("huge")
    cfg = model_config("tiny", convention="icvl")
    assert CrossingNetConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("gen_mask", [True, False])
def test_release_generator_with_and_without_its_mask_channel(gen_mask: bool) -> None:
    """The mask generator composes depth over the background +1; the depth-only one (run r1's) is tanh."""
    torch.manual_seed(0)
    model = CrossingNet(replace(PRESETS["tiny-release"], gen_mask=gen_mask)).eval()
    crop = model.render(torch.randn(3, model.config.latent_dims))
    assert crop.shape == (3, 1, 32, 32) and crop.min() >= -1 and crop.max() <= 1
    if gen_mask:  # in eval mode the mask decides each pixel: depth or the background +1
        z = torch.randn(3, model.config.latent_dims)
        depth, mask = model.generator.forward_parts(model.align(z))
        assert depth.shape == mask.shape == (3, 1, 32, 32)
        torch.testing.assert_close(model.render(z), torch.where(mask > 0, depth, torch.ones_like(depth)))
    else:
        with pytest.raises(ValueError, match="no hand mask"):
            model.generator.forward_parts(torch.zeros(1, model.config.latent_dims))


def test_mean_teacher_rampup_rises_from_almost_nothing_to_full_weight() -> None:
    """Tarvainen & Valpola's exp(-5 (1 - t)^2) over a fraction of the stage; 1 without a length."""

    def step(i: int, total: int) -> TrainStep:
        return TrainStep(LossConfig(), lambda _: {}, torch.Generator(), lambda *_: None, i, torch.contiguous_format,
                         None, total)  # fmt: skip

    assert step(0, 100).rampup(0.5) == pytest.approx(math.exp(-5.0))
    assert step(25, 100).rampup(0.5) == pytest.approx(math.exp(-1.25))
    assert step(50, 100).rampup(0.5) == 1.0 == step(90, 100).rampup(0.5)
    assert step(0, 0).rampup(0.5) == 1.0 == step(0, 100).rampup(0.0)
    with pytest.raises(ValueError, match="consistency_rampup"):
        LossConfig(consistency_rampup=-1.0)


def test_adversarial_generator_loss_weighs_its_gan_term_by_w_gan_generator() -> None:
    """The generator's loss in a GAN step of the adversarial stage is recons + w_gan * scale * g_gan
    + w_smo * g_smo; the discriminator's loss does not depend on the scale."""
    d_losses = []
    for scale in (0.0, 0.2):
        torch.manual_seed(0)
        model = CrossingNet(model_config("tiny", convention="icvl")).train()
        batch = {"depth": torch.rand(4, 1, 32, 32) * 2 - 1, "pose": torch.randn(4, model.config.pose_dims),
                 "root": torch.randn(4, 3), "center": torch.tensor([0.0, 0.0, 600.0]) + 50 * torch.randn(4, 3)}  # fmt: skip
        losses: dict[str, list[float]] = {"d": [], "g": []}

        def optimise(name: str, loss: torch.Tensor, losses=losses, model=model) -> None:
            losses[name].append(loss.item())
            model.zero_grad()
            loss.backward()

        cfg = LossConfig(w_gan=0.5, w_smo=0.25, w_gan_generator=scale)
        rng = torch.Generator().manual_seed(0)
        out = model.step_adversarial(
            TrainStep(cfg, lambda _, b=batch: b, rng, optimise, 0, torch.contiguous_format)
        )
        want = out["recons"] + 0.5 * scale * out["g_gan"] + 0.25 * out["g_smo"]
        assert losses["g"] == [pytest.approx(want.item(), rel=1e-5)]
        assert out["g_gan"].item() > 0.01  # the term is there, weighed
        d_losses.append(losses["d"])
    assert d_losses[0] == d_losses[1]
    with pytest.raises(ValueError, match="w_gan_generator"):
        LossConfig(w_gan_generator=-1.0)


def test_deeper_posterior_head_keeps_one_block_models_and_their_weights() -> None:
    """`posterior_blocks` adds stride-1 residual blocks to the posterior head alone: a config
    without the field (bundles r1-r6) builds the same weights; two blocks add one block per
    resolution, keep every other weight's name and shape and the latent's shape."""
    one = CrossingNet(PRESETS["tiny-release"])
    old = PRESETS["tiny-release"].to_dict()
    del old["posterior_blocks"]
    assert CrossingNetConfig.from_dict(old).posterior_blocks == 1
    two = CrossingNet(replace(PRESETS["tiny-release"], posterior_blocks=2))
    a, b = one.state_dict(), two.state_dict()
    assert {k: v.shape for k, v in a.items() if "posterior" not in k} == {
        k: v.shape for k, v in b.items() if "posterior" not in k
    }
    blocks = {len(m.discriminator.posterior.convs) for m in (one, two)}
    assert blocks == {1, 2}  # 32 px: one resolution of the head (8 -> 4)
    assert isinstance(two.discriminator.posterior.convs[1].skip, torch.nn.Identity)  # stride 1
    x = torch.randn(2, 1, 32, 32)
    two.eval()
    assert two.discriminator.forward_posterior(two.discriminator.forward_trunk(x)).shape == (2, 11)
    with pytest.raises(ValueError, match="posterior_blocks"):
        replace(PRESETS["tiny-release"], posterior_blocks=0)


@pytest.mark.parametrize("stem, first_map_px", [("full", 32), ("residual", 16)])
def test_discriminator_stems_keep_the_trunk_map_and_the_bundled_weights(stem: str, first_map_px: int) -> None:
    """The stems change only the trunk's first layers: the trunk map keeps its shape (so every
    head is the same), a config without the field (bundles r1-r6) is the strided stem, and the
    `full` stem's first convolution keeps the crop's resolution."""
    old = PRESETS["tiny-release"].to_dict()
    del old["stem"]
    assert CrossingNetConfig.from_dict(old).stem == "strided"
    strided = CrossingNet(PRESETS["tiny-release"])
    other = CrossingNet(replace(PRESETS["tiny-release"], stem=stem))
    a, b = strided.state_dict(), other.state_dict()
    assert {k for k in a if "trunk" not in k} == {k for k in b if "trunk" not in k}
    assert sum(v.numel() for v in b.values()) > sum(v.numel() for v in a.values())
    x = torch.randn(2, 1, 32, 32)
    for m in (strided, other):
        m.eval()
        assert m.discriminator.forward_trunk(x).shape == (2, 8, 8, 8)  # 2w channels at S / 4
    after_first = other.discriminator.trunk[:3](x)
    assert after_first.shape[-1] == first_map_px
    with pytest.raises(ValueError, match="stem"):
        replace(PRESETS["tiny-release"], stem="wide")


def test_release_deepprior_is_the_crossing_nets_estimator_path_with_a_linear_prior() -> None:
    """With the release networks the DeepPrior baseline reads crops with the discriminator's own
    trunk and posterior head (the supervised control's network), ending in the prior's K
    coefficients and the root instead of the VAE's latent."""
    cfg = model_config("tiny-release", convention="nyu")
    dp, cn = MODELS["deepprior"](cfg), MODELS["crossingnet"](cfg)

    def shapes(module: torch.nn.Module) -> list[tuple[int, ...]]:
        return [tuple(p.shape) for p in module.parameters()]

    assert shapes(dp.trunk) == shapes(cn.discriminator.trunk)
    assert shapes(dp.head)[:-2] == shapes(cn.discriminator.posterior)[:-2]  # all but the last layer
    assert dp.estimate_latent(torch.zeros(2, 1, cfg.crop_px, cfg.crop_px)).shape == (2, cfg.prior_dims + 3)
