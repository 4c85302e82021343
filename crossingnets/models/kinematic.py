"""A generator that poses the renderer's own hand: latent -> kinematic hand -> capsules -> crop
(issue 11: a generator that draws fingers).

The skeleton generator (skeleton.py) learns to draw a hand around 14 joints with a few
convolutions and stayed at silhouette IoU 0.59-0.65 (r5-r7), while the hand that inverse
kinematics fits to the same 14 joints, drawn as capsules, reaches 0.94 (session 12's ceiling): the
drawing, not the pose, held it back. Here an MLP gives the kinematic hand's parameters (joint
angles inside the anatomical limits, a 6-d rotation, the palm's offset from the crop centre, an
overall scale), forward kinematics gives its landmarks, and its capsules (forearm left out: no
joint holds the forearm's bend, and a guessed one covers background) are drawn straight into the
crop (`crossingnets.hand.crop_capsules`). The joints the hand has in the pose convention are
supervised against the labels, so the MLP learns the inverse kinematics of the latent: the middle
joints no label holds come from the model's joint limits and bone lengths.

The drawing carries no gradient: the MLP learns from the joints alone, and the discriminator's
terms (GAN, L_smo) train the discriminator on these drawings but cannot move the generator.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from crossingnets import losses as L
from crossingnets.hand.conventions import Convention
from crossingnets.hand.crop_capsules import capsules_in_crop, crop_coordinates, draw_crop_capsules
from crossingnets.hand.kinematics import (
    DEFAULT_LINKS_MM,
    DEFAULT_PALM_MM,
    JOINT_LIMITS_RAD,
    HandPose,
    HandShape,
    capsule_segments,
    convention_landmark_indices,
    forward_kinematics,
)
from crossingnets.models.generator import DepthGenerator, RenderTarget

# Where the crop centre is taken to be when none is given (the app's latent tab): on the optical
# axis, in the middle of the renderer's 300-900 mm range (`SamplerConfig.distance_mm`).
NOMINAL_CENTER_MM = (0.0, 0.0, 600.0)
PALM_OFFSET_MM = 50.0  # the MLP's palm offset is in this unit (crops centre within ~50 mm of the palm)
LOG_SCALE_RANGE = 0.2  # overall hand scale within exp(+-0.2) = 0.82-1.22 (natural hands: 0.85-1.15)
_ANGLES = 25  # 5 digits x 5 angles (`HandPose.angles_rad`)
_PARAMS = _ANGLES + 6 + 3 + 1  # angles, 6-d rotation, palm offset, log scale


def rotation_from_6d(x: torch.Tensor) -> torch.Tensor:
    """(B, 6) -> (B, 3, 3) rotations by Gram-Schmidt of two vectors (Zhou et al., CVPR 2019: a
    continuous representation, where axis-angle and quaternions are not)."""
    a = x[:, :3] / x[:, :3].norm(dim=1, keepdim=True).clamp_min(1e-6)
    b = x[:, 3:] - (x[:, 3:] * a).sum(1, keepdim=True) * a
    b = b / b.norm(dim=1, keepdim=True).clamp_min(1e-6)
    return torch.stack([a, b, torch.cross(a, b, dim=1)], 2)


class KinematicGenerator(DepthGenerator):
    """tanh(latent) and the crop centre's direction -> MLP -> kinematic hand -> (B, 1, S, S) crop."""

    trains_by_gan = False  # its drawing carries no gradient
    # Ali's batch statistics made the joints it feeds vary from batch to batch (CrossingNet.train)
    fixed_align_statistics = True

    def __init__(
        self, latent_dims: int, crop_px: int, cube_mm: float, convention: Convention, hidden: int = 512
    ) -> None:
        super().__init__()
        self.crop_px, self.cube_mm = crop_px, cube_mm
        self.head = nn.Sequential(
            nn.Linear(latent_dims + 2, hidden), nn.ReLU(True),
            nn.Linear(hidden, hidden), nn.ReLU(True),
            nn.Linear(hidden, hidden), nn.ReLU(True),
            nn.Linear(hidden, _PARAMS),
        )  # fmt: skip
        limits = torch.as_tensor(JOINT_LIMITS_RAD, dtype=torch.float32)
        self.register_buffer("angle_lo", limits[..., 0].clone(), persistent=False)
        self.register_buffer("angle_span", (limits[..., 1] - limits[..., 0]).clone(), persistent=False)
        self.register_buffer(
            "palm_mm", torch.as_tensor(DEFAULT_PALM_MM, dtype=torch.float32), persistent=False
        )
        self.register_buffer(
            "links_mm", torch.as_tensor(DEFAULT_LINKS_MM, dtype=torch.float32), persistent=False
        )
        # the identity's first two columns: a fresh head starts from the hand frame's own orientation
        self.register_buffer("rotation_bias", torch.tensor([1.0, 0, 0, 0, 1, 0]), persistent=False)
        self.register_buffer(
            "joint_landmarks", torch.as_tensor(convention_landmark_indices(convention)), persistent=False
        )

    def centers(self, latent: torch.Tensor, center_mm: torch.Tensor | None) -> torch.Tensor:
        """The crop centres (B, 3), camera frame, mm: as given, or NOMINAL_CENTER_MM."""
        if center_mm is not None:
            return center_mm.to(latent.dtype)
        return latent.new_tensor(NOMINAL_CENTER_MM).expand(len(latent), 3)

    def hand(self, latent: torch.Tensor, center_mm: torch.Tensor | None = None) -> tuple[HandPose, HandShape]:
        """(B, L) generator latents -> the kinematic hand they pose, camera frame around the crop
        centres `center_mm` (B, 3) (None: NOMINAL_CENTER_MM); the wrist straight, thickness 1."""
        center = self.centers(latent, center_mm)
        p = self.head(torch.cat([torch.tanh(latent), center[:, :2] / center[:, 2:]], 1))
        b = len(p)
        angles = self.angle_lo + self.angle_span * torch.sigmoid(p[:, :_ANGLES].view(b, 5, 5))
        rotation = rotation_from_6d(p[:, _ANGLES : _ANGLES + 6] + self.rotation_bias)
        palm = center + PALM_OFFSET_MM * p[:, _ANGLES + 6 : _ANGLES + 9]
        scale = torch.exp(LOG_SCALE_RANGE * torch.tanh(p[:, -1]))
        pose = HandPose(angles, rotation, palm, p.new_zeros(b, 2))
        shape = HandShape(
            scale, self.palm_mm.expand(b, -1, -1), self.links_mm.expand(b, -1, -1), p.new_ones(b)
        )
        return pose, shape

    def joints_mm(self, latent: torch.Tensor, center_mm: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L) -> (B, J, 3) the convention's joints of the posed hand, camera frame, mm."""
        return forward_kinematics(*self.hand(latent, center_mm))[:, self.joint_landmarks]

    def keypoints(self, latent: torch.Tensor, center_mm: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L) -> (B, J, 3) where the crop shows those joints (`crop_coordinates`)."""
        center = self.centers(latent, center_mm)
        return crop_coordinates(self.joints_mm(latent, center), center, self.cube_mm)

    @torch.no_grad()
    def forward(self, latent: torch.Tensor, center_mm: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L) -> (B, 1, S, S) crop in [-1, 1], background +1: the hand's capsules (forearm left
        out) drawn around the crop centres."""
        center = self.centers(latent, center_mm)
        return self._draw(*self.hand(latent, center), center, latent)

    def render(self, aligned: torch.Tensor, center_mm: torch.Tensor | None = None) -> torch.Tensor:
        return self(aligned, center_mm)

    def render_with_loss(
        self, aligned: torch.Tensor, target: RenderTarget
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The mixtures are drawn around the batch's centres; the loss is `render_loss`'."""
        b = len(target.crops)
        drawn = self(aligned, target.center_mm.repeat(len(aligned) // b, 1))
        return drawn, self.render_loss(aligned[:b], target)

    def render_loss(self, aligned: torch.Tensor, target: RenderTarget) -> torch.Tensor:
        """The hand's joints against the labels: their mean distance, in pose units (the MLP learns
        from the joints alone; no drawing needed)."""
        return (
            L.joint_distance_loss(self.joints_mm(aligned, target.center_mm), target.joints_mm)
            / target.unit_mm
        )

    @torch.no_grad()
    def drawn_hand(
        self, latent: torch.Tensor, center_mm: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`forward`'s crops (B, 1, S, S) and `joints_mm`'s joints (B, J, 3) of the same hands, posed
        once (test-time refinement asks for both of every candidate)."""
        center = self.centers(latent, center_mm)
        pose, shape = self.hand(latent, center)
        landmarks = forward_kinematics(pose, shape)
        return self._draw(pose, shape, center, latent, landmarks), landmarks[:, self.joint_landmarks]

    def _draw(
        self, pose: HandPose, shape: HandShape, center: torch.Tensor, like: torch.Tensor,
        landmarks: torch.Tensor | None = None,
    ) -> torch.Tensor:  # fmt: skip
        """The posed hands' capsules, forearm left out, drawn into crops around `center` (B, 3) ->
        (B, 1, S, S) on `like`'s device and dtype (`landmarks`: the hands' forward kinematics, if
        the caller has them)."""
        hand = (x.float() for x in capsule_segments(pose, shape, landmarks, forearm=False))
        in_crop = capsules_in_crop(*hand, center.float(), self.cube_mm)
        depth = draw_crop_capsules(*(x.cpu().numpy() for x in in_crop), self.crop_px)
        crop = np.clip(depth, -1.0, 1.0, out=depth)  # the background's +inf becomes +1
        return torch.from_numpy(crop[:, None]).to(device=like.device, dtype=like.dtype)
