"""The composed Crossing Net (Wan et al., CVPR 2017) and its three training stages.

Data flow (paper Fig. 2): pose -> PoseVAE code + root offset = z_y -> Ali -> Generator -> depth
crop; depth crop -> Discriminator trunk -> posterior head -> z_y -> VAE decoder -> pose.
Inference needs only the second path.

Stages (paper Sec. 3.4): `vae` (pose VAE on labeled poses), `gan` (depth GAN on every depth
image), `joint` (warm-up of Ali and the posterior/smoothness heads, then alternating
discriminator and generator steps). The release recipe (issue 11) replaces `gan` and `joint` by
`posterior` (the posterior head through the frozen VAE decoder, and the generator as a renderer
of labeled poses: neither needs the other, so all of the budget trains them) and `adversarial`
(the paper's GAN and L_smo terms added on every k-th step, the image pool as the real side).
`render` trains the generator and Ali alone as a renderer of labeled poses (a new generator for a
trained model, or beside the posterior stage: both need only the VAE).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from crossingnets import losses as L
from crossingnets.hand.conventions import get_convention
from crossingnets.hand.crop_capsules import crop_coordinates
from crossingnets.hand.kinematics import FOREARM_LENGTH_MM
from crossingnets.models.base import CrossingNetConfig, LatentPoseModel, LossConfig, TrainStep
from crossingnets.models.batchnorm import running_stats_frozen
from crossingnets.models.discriminator import Discriminator
from crossingnets.models.generator import DepthGenerator, Generator, LatentAlign, RenderTarget
from crossingnets.models.kinematic import KinematicGenerator
from crossingnets.models.pose_vae import PoseVAE
from crossingnets.models.resnet import ResNetDiscriminator, UpsamplingGenerator
from crossingnets.models.skeleton import SkeletonGenerator
from crossingnets.rotation import turn_crops, turn_points

if TYPE_CHECKING:
    from sklearn.decomposition import PCA


class VAELatentModel(LatentPoseModel):
    """A model whose latent is the pose VAE's z_y (the Crossing Net and the scratch baseline), with
    the `vae` stage that trains the VAE alone."""

    pca_stages = ("vae",)

    def __init__(self, config: CrossingNetConfig) -> None:
        super().__init__(config)
        self.vae = PoseVAE(config.pose_dims, config.pca_dims, config.code_dims, config.vae_noise_std)

    def encode_pose(self, pose: torch.Tensor, root: torch.Tensor) -> torch.Tensor:
        return self.vae.encode_latent(pose, root)

    def decode_latent_units(self, latent: torch.Tensor) -> torch.Tensor:
        return self.vae.decode_latent(latent)

    def init_from_pca(self, poses: np.ndarray) -> PCA:
        return self.vae.init_from_pca(poses)

    def validation_joints(
        self, depth: torch.Tensor, pose: torch.Tensor, root: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Also `val_vae_mm`: the pose VAE's own reconstruction of the labels (B, 3J), (B, 3)."""
        vae = self.decode_latent(self.encode_pose(pose, root))
        return {**super().validation_joints(depth, pose, root), "val_vae_mm": vae}

    def param_groups(self, stage: str) -> dict[str, list[nn.Parameter]]:
        if stage == "vae":
            return {"vae": list(self.vae.parameters())}
        return super().param_groups(stage)

    def step_vae(self, step: TrainStep) -> dict[str, torch.Tensor]:
        """Reconstruction and KL of labeled poses."""
        pose = step.batch("labeled")["pose"]
        recon, mean, logvar = self.vae(pose, step.rng)
        out = {"recons": L.vae_reconstruction_loss(recon, pose), "kl": L.kl_divergence(mean, logvar)}
        step.optimise("vae", out["recons"] + step.cfg.kl_weight * out["kl"])
        return out


def _forearm(c: CrossingNetConfig) -> tuple[tuple[int, ...], int, float] | None:
    """The skeleton generator's forearm bone: the convention's wrist joints (NYU: two), its palm
    root, and the forearm a crop shows in crop units; None where the joints hold no wrist-palm axis."""
    conv = get_convention(c.convention)
    wrists = tuple(i for i, f in enumerate(conv.fingers) if f == "palm" and i != conv.root)
    if not wrists or conv.joint_names[conv.root] != "palm":
        return None
    return wrists, conv.root, FOREARM_LENGTH_MM / (0.5 * c.cube_mm)


def _resnet_generator(c: CrossingNetConfig) -> DepthGenerator:
    """The release networks' generator of `c.gen_arch`."""
    if c.gen_arch == "kinematic":
        return KinematicGenerator(c.latent_dims, c.crop_px, c.cube_mm, get_convention(c.convention))
    if c.gen_arch == "skeleton":
        conv = get_convention(c.convention)
        return SkeletonGenerator(
            c.latent_dims, c.gen_width, c.crop_px, conv.bones, c.num_joints, forearm=_forearm(c),
            view_inputs=c.gen_view,
        )  # fmt: skip
    return UpsamplingGenerator(c.latent_dims, c.gen_width, c.crop_px, c.gen_mask)


class CrossingNet(VAELatentModel):
    """Pose VAE + Ali + Generator + Discriminator sharing the latent z_y (B, 23 in the paper)."""

    kind = "crossingnet"
    stages = ("vae", "render", "gan", "posterior", "joint", "adversarial")

    def __init__(self, config: CrossingNetConfig) -> None:
        super().__init__(config)
        c = config
        self.align = LatentAlign(c.latent_dims)
        if c.arch == "resnet":
            self.generator: DepthGenerator = _resnet_generator(c)
            self.discriminator: nn.Module = ResNetDiscriminator(
                c.width,
                c.crop_px,
                c.latent_dims,
                c.posterior_hidden,
                c.smo_hidden,
                c.posterior_blocks,
                c.stem,
            )
        else:
            self.generator = Generator(c.latent_dims, c.gen_channels, c.feature_px, c.crop_px)
            self.discriminator = Discriminator(
                c.disc_channels, c.trunk_layers, c.head_layers, c.feature_dims, c.latent_dims, c.smo_hidden
            )

    def train(self, mode: bool = True) -> CrossingNet:
        """As nn.Module's; Ali's batch norm stays in eval mode before a kinematic generator, whose
        joints it feeds: normalised by each batch's own statistics its input varied from batch to
        batch (after 8 epochs its joints lay 8.8 mm from the labels, 6.5 with Ali's running
        statistics; session 15). Ali still trains, as an affine map."""
        super().train(mode)
        if self.generator.fixed_align_statistics:
            self.align.bn.eval()
        return self

    def estimate_latent(self, depth: torch.Tensor) -> torch.Tensor:
        d = self.discriminator
        return d.forward_posterior(d.forward_trunk(depth))

    @property
    def depth_reader(self) -> nn.Module:
        return self.discriminator

    def render(self, latent: torch.Tensor, center_mm: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L) pose latent z_y -> (B, 1, S, S) generated crop, Gen(Ali(z_y)); a generator that
        knows where the crop sits (kinematic; skeleton with `gen_view`) draws it as seen around
        `center_mm` (B, 3), camera frame (None: on the optical axis)."""
        return self.generator.render(self.align(latent), center_mm)

    def generator_keypoints(
        self, latent: torch.Tensor, center_mm: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, L) pose latents -> (B, J, 3) the crop keypoints a skeleton generator draws them from
        (around `center_mm` as `render`), or the joints where a kinematic generator's hand has them."""
        return self.generator.keypoints(self.align(latent), center_mm)

    def smoothness(self, depth_a: torch.Tensor, depth_b: torch.Tensor) -> torch.Tensor:
        """smo(a, b) = f(a) - f(b) (B, L) for crops (B, 1, S, S), which estimates z_a - z_b."""
        d = self.discriminator
        return d.forward_smoothness(d.forward_trunk(depth_a)) - d.forward_smoothness(d.forward_trunk(depth_b))

    # -- training ------------------------------------------------------------------------------
    @classmethod
    def planned_stages(cls, cfg: LossConfig) -> tuple[str, ...]:
        """The stages with epochs (the paper's or the release's); --no-gan drops the GAN stage."""
        return tuple(
            s for s in cls.stages if getattr(cfg, f"epochs_{s}", 1) > 0 and (s != "gan" or cfg.use_gan)
        )

    def param_groups(self, stage: str) -> dict[str, list[nn.Parameter]]:
        """gan: the discriminator's trunk and GAN head, the generator. joint: the discriminator,
        and Ali + generator + VAE; during the warm-up, its posterior/smoothness heads and Ali."""
        d = self.discriminator
        if stage == "render":
            return {"g": [*self.generator.parameters(), *self.align.parameters()]}
        if stage == "gan":
            return {"d": [*d.trunk.parameters(), *d.gan.parameters()], "g": list(self.generator.parameters())}
        if stage in ("posterior", "adversarial"):
            heads = (
                [*d.trunk.parameters(), *d.posterior.parameters()] if stage == "posterior" else d.parameters()
            )
            return {"d": list(heads), "g": [*self.generator.parameters(), *self.align.parameters()]}
        if stage == "joint":
            return {
                "d": list(d.parameters()),
                "g": [*self.generator.parameters(), *self.align.parameters(), *self.vae.parameters()],
                "warmup_heads": [*d.posterior.parameters(), *d.smoothness.parameters()],
                "warmup_align": list(self.align.parameters()),
            }
        return super().param_groups(stage)

    def _generator_gan_term(
        self, cfg: LossConfig, real_features: torch.Tensor, fake_map: torch.Tensor
    ) -> torch.Tensor:
        """The generator's GAN loss from the trunk map of its crops (B, C, h, h)."""
        fake_logits, fake_features = self.discriminator.forward_gan(fake_map)
        if cfg.gan_loss == "feature_matching":
            return L.feature_matching_loss(real_features, fake_features)
        return L.generator_nonsaturating_loss(fake_logits)

    def step_gan(self, step: TrainStep) -> dict[str, torch.Tensor]:
        """A discriminator step (real images vs crops generated from noise), then a generator step."""
        if not self.generator.trains_by_gan:
            raise ValueError(
                f"the gan stage needs a generator the discriminator can train (not {self.config.gen_arch})"
            )
        d = self.discriminator
        real = step.batch("images")["depth"]
        noise = torch.randn((len(real), self.config.latent_dims), generator=step.rng, device=real.device)
        fake = self.generator(noise * step.cfg.gan_noise_std).contiguous(memory_format=step.memory_format)
        real_logits, real_features = d.forward_gan(d.forward_trunk(real))
        with running_stats_frozen(d):
            fake_logits, _ = d.forward_gan(d.forward_trunk(fake.detach()))
        out = {"d_gan": L.discriminator_gan_loss(real_logits, fake_logits)}
        step.optimise("d", out["d_gan"])
        with running_stats_frozen(d):
            out["g_gan"] = self._generator_gan_term(step.cfg, real_features.detach(), d.forward_trunk(fake))
        step.optimise("g", out["g_gan"])
        return out

    def step_joint(self, step: TrainStep) -> dict[str, torch.Tensor]:
        """A discriminator step (L_pos, L_smo, GAN), then a generator step (reconstruction, L_smo,
        GAN, the VAE's own terms); the first `warmup_steps` fit only the posterior/smoothness heads
        and Ali."""
        c, d = step.cfg, self.discriminator
        warm = step.stage_step < c.warmup_steps
        gan = c.use_gan and not warm
        lab = step.batch("labeled")
        x_l, b = lab["depth"], lab["depth"].shape[0]
        mean, logvar = self.vae.encode(lab["pose"])
        code = self.vae.sample(mean, logvar, step.rng)
        z_l = torch.cat([code, lab["root"]], 1)  # (B, 23) sampled pose latents
        target = torch.cat([mean, lab["root"]], 1).detach()  # deterministic encodings, L_pos targets
        z_r = L.convex_mixtures(z_l.detach(), c.num_mixed, step.rng)
        rendered = self.render(torch.cat([z_l.detach() if warm else z_l, z_r]))  # one "fake" group (2B)
        rendered = rendered.contiguous(memory_format=step.memory_format)

        # Discriminator step (warm-up: posterior and smoothness heads only).
        out: dict[str, torch.Tensor] = {}
        h_l = d.forward_trunk(x_l)
        out["pos"] = L.posterior_loss(d.forward_posterior(h_l), target)
        total = c.w_pos * out["pos"]
        with running_stats_frozen(d):
            h_fake = d.forward_trunk(rendered.detach())
            f_fake = d.forward_smoothness(h_fake) if c.use_smo else None
            fake_logits = d.forward_gan(h_fake)[0] if gan else None
        if c.use_smo:
            f_l = d.forward_smoothness(h_l)
            out["smo"] = L.smoothness_loss(f_fake[b:], f_l, f_fake[:b], z_r, z_l)
            total = total + c.w_smo * out["smo"]
        if gan:
            real_logits, real_features = d.forward_gan(d.forward_trunk(step.batch("images")["depth"]))
            out["d_gan"] = L.discriminator_gan_loss(real_logits, fake_logits)
            total = total + c.w_gan * out["d_gan"]
        step.optimise("warmup_heads" if warm else "d", total)

        # Generator step (warm-up: Ali only, by the truncated reconstruction loss).
        out["recons"] = L.truncated_reconstruction_loss(rendered[:b], x_l)
        total = c.w_recons * out["recons"]
        if not warm:
            with running_stats_frozen(d):
                h_fake = d.forward_trunk(rendered) if c.use_smo or gan else None
                if c.use_smo:
                    f_fake = d.forward_smoothness(h_fake)
                    out["g_smo"] = L.smoothness_loss(f_fake[b:], f_l.detach(), f_fake[:b], z_r, z_l)
                    total = total + c.w_smo * out["g_smo"]
                if gan:
                    out["g_gan"] = self._generator_gan_term(c, real_features.detach(), h_fake)
                    total = total + c.w_gan * out["g_gan"]
            out["vae_recons"] = L.vae_reconstruction_loss(self.vae.decode(code), lab["pose"])
            out["kl"] = L.kl_divergence(mean, logvar)
            total = total + out["vae_recons"] + c.kl_weight * out["kl"]
        step.optimise("warmup_align" if warm else "g", total)
        return out

    # -- the release stages --------------------------------------------------------------------
    def _labeled_targets(
        self, step: TrainStep
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """This step's labeled crops (B, 1, S, S), their joints around the crop centre (B, J, 3) and
        latents z_y (B, L), pose units, and the crop centres (B, 3, mm); the VAE is frozen here."""
        lab = step.batch("labeled")
        with torch.no_grad():
            target = self.encode_pose(lab["pose"], lab["root"])
        joints = lab["pose"].unflatten(1, (-1, 3)) + lab["root"][:, None]
        return lab["depth"], joints, target, lab["center"]

    def _posterior_terms(self, cfg: LossConfig, trunk_map: torch.Tensor, joints: torch.Tensor,
                         target: torch.Tensor) -> dict[str, torch.Tensor]:  # fmt: skip
        """The decoded joints' smooth-L1 error and L_pos of the posterior head on real crops."""
        z = self.discriminator.forward_posterior(trunk_map)
        return {
            "joints": L.joint_loss(self.decode_latent_units(z), joints, cfg.joints_beta),
            "pos": L.posterior_loss(z, target),
        }

    def _with_consistency(
        self, step: TrainStep, out: dict[str, torch.Tensor], total: torch.Tensor
    ) -> torch.Tensor:
        """`total` plus (with `w_consistency`) the mean-teacher term on unlabeled crops, in `out`:
        the student's joints from each crop turned in-plane by a random angle against the
        teacher's joints from the crop as it is, turned the same way (smooth-L1, pose units). The
        unlabeled crops teach through the turns the labeled ones cannot cover. Its weight ramps up
        over `consistency_rampup` of the stage: at full weight from the first step, the untrained
        teacher's poses pulled a 2 % run's validation error to 66 mm (from 34 without the term)."""
        c = step.cfg
        if not c.w_consistency or step.teacher is None:
            return total
        crops = step.batch("images")["depth"]
        angles = (torch.rand(len(crops), generator=step.rng, device=crops.device) * 2 - 1) * c.consistency_deg
        target = turn_points(self.decode_latent_units(step.teacher(crops)), angles)
        turned = turn_crops(crops, angles).contiguous(memory_format=step.memory_format)
        out["consistency"] = L.joint_loss(
            self.decode_latent_units(self.estimate_latent(turned)), target, c.joints_beta
        )
        return total + c.w_consistency * step.rampup(c.consistency_rampup) * out["consistency"]

    def crop_keypoints(self, joints: torch.Tensor, center_mm: torch.Tensor) -> torch.Tensor:
        """Joints around the crop centre (B, J, 3), pose units, and the centre (B, 3), camera frame,
        mm -> where the crop shows them (B, J, 3): u, v across the crop in [-1, 1], depth in units
        of the cube's half side (`crop_coordinates`, camera-free: u = (x / z - cx / cz) * cz / half side).
        The perspective part (a hand beside the optical axis: 1.9 px mean at 64 px on the test set)
        depends on where the crop sits in the frame, which the latent does not hold."""
        c = self.config
        return crop_coordinates(center_mm[:, None] + joints * c.pose_unit_mm, center_mm, c.cube_mm)

    def _render_target(
        self, cfg: LossConfig, real: torch.Tensor, joints: torch.Tensor, center: torch.Tensor
    ) -> RenderTarget:
        """Real crops (B, 1, S, S), their joints (B, J, 3) around the crop centres (B, 3, mm) in pose
        units -> what the generator's render loss reads."""
        c = self.config
        return RenderTarget(real, center[:, None] + joints * c.pose_unit_mm, center, c.pose_unit_mm,
                            c.cube_mm, cfg.recons_fg_weight, cfg.w_keypoints)  # fmt: skip

    def _render_with_loss(
        self, cfg: LossConfig, latent: torch.Tensor, real: torch.Tensor, joints: torch.Tensor,
        center: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """Crops rendered from latents (B', L) and the reconstruction loss of the first B (the real
        crops, their joints and centres as `_render_target` takes them): each generator's own
        (`DepthGenerator.render_with_loss`)."""
        return self.generator.render_with_loss(
            self.align(latent), self._render_target(cfg, real, joints, center)
        )

    def _render_loss(
        self, cfg: LossConfig, latent: torch.Tensor, real: torch.Tensor, joints: torch.Tensor,
        center: torch.Tensor,
    ) -> torch.Tensor:  # fmt: skip
        """`_render_with_loss`' loss alone, where the crops are not needed (a kinematic generator's
        needs no drawing)."""
        return self.generator.render_loss(self.align(latent), self._render_target(cfg, real, joints, center))

    def step_posterior(self, step: TrainStep) -> dict[str, torch.Tensor]:
        """The posterior head (decoded joints + L_pos), then (every `render_every`-th step; never at
        0, the generator left as it is) the generator as a renderer of the same labeled poses."""
        c = step.cfg
        x, joints, target, center = self._labeled_targets(step)
        out = self._posterior_terms(c, self.discriminator.forward_trunk(x), joints, target)
        step.optimise(
            "d", self._with_consistency(step, out, c.w_joints * out["joints"] + c.w_pos * out["pos"])
        )
        if c.render_every and step.stage_step % c.render_every == 0:
            out["recons"] = self._render_loss(c, target, x, joints, center)
            step.optimise("g", c.w_recons * out["recons"])
        return out

    def step_render(self, step: TrainStep) -> dict[str, torch.Tensor]:
        """The generator and Ali alone, as a renderer of the labeled poses: they need only the
        VAE's latents, so this stage can run beside the posterior stage, or replace a generator."""
        x, joints, target, center = self._labeled_targets(step)
        out = {"recons": self._render_loss(step.cfg, target, x, joints, center)}
        step.optimise("g", step.cfg.w_recons * out["recons"])
        return out

    def step_adversarial(self, step: TrainStep) -> dict[str, torch.Tensor]:
        """`step_posterior`, with on every `gan_every`-th step the GAN terms (real side: the image pool)
        and L_smo on renders of the labeled latents and of their convex mixtures Z_r; `use_gan` and
        `use_smo` (the ablations) drop either. A generator whose drawing carries no gradient (the
        kinematic one) gets its reconstruction term alone: its GAN and L_smo terms would cost the
        trunk's forward and backward pass over the fakes and move nothing."""
        c, d = step.cfg, self.discriminator
        x, joints, target, center = self._labeled_targets(step)
        h_l = d.forward_trunk(x)
        out = self._posterior_terms(c, h_l, joints, target)
        total = self._with_consistency(step, out, c.w_joints * out["joints"] + c.w_pos * out["pos"])
        if step.stage_step % c.gan_every or not (c.use_gan or c.use_smo):
            step.optimise("d", total)
            out["recons"] = self._render_loss(c, target, x, joints, center)
            step.optimise("g", c.w_recons * out["recons"])
            return out
        b = x.shape[0]
        z_r = L.convex_mixtures(target, c.num_mixed, step.rng)
        rendered, out["recons"] = self._render_with_loss(c, torch.cat([target, z_r]), x, joints, center)
        rendered = rendered.contiguous(memory_format=step.memory_format)
        with running_stats_frozen(d):
            h_fake = d.forward_trunk(rendered.detach())
            fake_logits = d.forward_gan(h_fake)[0] if c.use_gan else None
            f_fake = d.forward_smoothness(h_fake) if c.use_smo else None
        if c.use_gan:
            real_logits, real_features = d.forward_gan(d.forward_trunk(step.batch("images")["depth"]))
            out["d_gan"] = L.discriminator_gan_loss(real_logits, fake_logits)
            total = total + c.w_gan * out["d_gan"]
        if c.use_smo:
            f_l = d.forward_smoothness(h_l)
            out["smo"] = L.smoothness_loss(f_fake[b:], f_l, f_fake[:b], z_r, target)
            total = total + c.w_smo * out["smo"]
        step.optimise("d", total)
        generator = c.w_recons * out["recons"]
        if not rendered.requires_grad:  # a kinematic generator's drawing: these terms cannot move it
            step.optimise("g", generator)
            return out
        with running_stats_frozen(d):
            h_fake = d.forward_trunk(rendered)
            if c.use_gan:
                out["g_gan"] = self._generator_gan_term(c, real_features.detach(), h_fake)
                generator = generator + c.w_gan * c.w_gan_generator * out["g_gan"]
            if c.use_smo:
                f_fake = d.forward_smoothness(h_fake)
                out["g_smo"] = L.smoothness_loss(f_fake[b:], f_l.detach(), f_fake[:b], z_r, target)
                generator = generator + c.w_smo * out["g_smo"]
        step.optimise("g", generator)
        return out
