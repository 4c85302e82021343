"""A generator that draws the hand around its own skeleton: latent -> crop keypoints -> bone maps ->
convolutions -> depth and hand mask (issue 11: fingers).

The upsampling generator has to turn a 35-d latent into the pixel layout of five fingers through
fully connected and upsampling layers; trained as a renderer it drew the mean silhouette, no
fingers. Here the latent first gives the joints' crop coordinates (a small MLP, supervised by the
labelled joints), each bone is drawn as a Gaussian of the distance to its segment with the depth
along it, and a few convolutions at half resolution turn those maps into hand surface, sub-pixel
shuffled to the crop (a keypoint bottleneck, as in Jakab et al., NeurIPS 2018, here with
supervised keypoints).
"""

from __future__ import annotations

import torch
from torch import nn

from crossingnets import losses as L
from crossingnets.hand.crop_capsules import crop_coordinates
from crossingnets.models.generator import DepthGenerator, RenderTarget
from crossingnets.models.resnet import compose

# Gaussian width of a bone's map, in pixels of the half-resolution maps (a finger is ~2 px wide there).
BONE_SIGMA_PX = 1.5
# exp() of anything below this is flushed to exp(-30): subnormal floats made the convolutions ~4x slower.
MIN_EXPONENT = -30.0


@torch.no_grad()
def bone_maps(
    keypoints: torch.Tensor, bones: tuple[tuple[int, int], ...], size: int, sigma: float
) -> torch.Tensor:
    """Keypoints (B, J, 3) in crop coordinates (u, v in [-1, 1] across the crop, normalised depth) ->
    (B, 2K, size, size): for each of the K bones exp(-dist^2 / 2 sigma^2) to its 2-D segment, then
    that map times the depth interpolated along the segment. sigma in the same [-1, 1] units.

    No gradient reaches the keypoints (`SkeletonGenerator.draw` detaches them), so the (B, K, P)
    arrays are reused in place: each fresh one is a large allocation, which the app's heap maps and
    faults in anew (app/memory.py): there a 32-step walk's networks took 118 ms with fresh arrays,
    94 in place (51 and 50 under glibc's default heap)."""
    a = keypoints[:, [i for i, _ in bones]]  # (B, K, 3)
    b = keypoints[:, [j for _, j in bones]]
    grid = (torch.arange(size, dtype=keypoints.dtype, device=keypoints.device) + 0.5) * (2.0 / size) - 1.0
    pu, pv = grid.repeat(size).view(1, 1, -1), grid.repeat_interleave(size).view(1, 1, -1)  # row-major
    au, av, ad = a[..., 0:1], a[..., 1:2], a[..., 2:3]
    eu, ev, ed = b[..., 0:1] - au, b[..., 1:2] - av, b[..., 2:3] - ad
    ru, rv = pu - au, pv - av  # from the bone's start; below, from its nearest point
    t = (ru * eu).addcmul_(rv, ev).div_((eu * eu + ev * ev).clamp(min=1e-6)).clamp_(0.0, 1.0)
    ru.addcmul_(t, eu, value=-1.0)
    rv.addcmul_(t, ev, value=-1.0)
    near = ru.square_().addcmul_(rv, rv).mul_(-0.5 / sigma**2).clamp_(min=MIN_EXPONENT).exp_()
    n, k = a.shape[:2]
    return torch.cat([near, t.mul_(ed).add_(ad).mul_(near)], 1).view(n, 2 * k, size, size)


def _conv_bn_relu(a: int, b: int) -> list[nn.Module]:
    return [nn.Conv2d(a, b, 3, 1, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(True)]


class SkeletonGenerator(DepthGenerator):
    """tanh(latent) -> MLP -> J crop keypoints -> bone maps at S/2 -> 3 x [conv3x3, BN, ReLU] (w) ->
    conv3x3 (8) -> pixel shuffle -> depth and hand-mask channels (B, 2, S, S), composed into a crop.

    The pixel shuffle draws the full-resolution crop from the half-resolution features (a 3x3
    convolution with 2 outputs at full resolution ran at 5.6 GFLOP/s, the layer costing as much as
    the rest of the generator)."""

    def __init__(
        self, latent_dims: int, width: int, crop_px: int, bones: tuple[tuple[int, int], ...], num_joints: int,
        hidden: int = 256, forearm: tuple[tuple[int, ...], int, float] | None = None,
        view_inputs: bool = False,
    ) -> None:  # fmt: skip
        """forearm: (wrist joints, palm joint, length in crop units): one more bone from the wrists'
        mean away from the palm, where the crops show a forearm that no joint marks. view_inputs:
        the keypoint head also sees the direction of the crop's centre (`keypoints`)."""
        super().__init__()
        if crop_px % 2:
            raise ValueError(f"crop side must be even, got {crop_px}")
        self.num_joints, self.half, self.forearm, self.view_inputs = (
            num_joints,
            crop_px // 2,
            forearm,
            view_inputs,
        )
        self.bones = tuple(bones) + (((num_joints, num_joints + 1),) if forearm else ())
        self.keypoint_head = nn.Sequential(
            nn.Linear(latent_dims + (2 if view_inputs else 0), hidden), nn.ReLU(True),
            nn.Linear(hidden, hidden), nn.ReLU(True),
            nn.Linear(hidden, 3 * num_joints),
        )  # fmt: skip
        self.body = nn.Sequential(
            *_conv_bn_relu(2 * len(self.bones), width),
            *_conv_bn_relu(width, width),
            *_conv_bn_relu(width, width),
        )
        self.out = nn.Sequential(nn.Conv2d(width, 8, 3, 1, 1), nn.PixelShuffle(2))

    def keypoints(self, latent: torch.Tensor, center_mm: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L) -> (B, J, 3) crop coordinates of the joints the generator will draw.

        center_mm (B, 3): the crop centres, camera frame, whose direction (x / z, y / z) the head
        sees with `view_inputs`; None: on the optical axis. The latent holds the joints around the
        centre, but a crop beside the axis shows them moved by the perspective (1.8 px mean at
        64 px on the synthetic test), which only the centre's direction tells."""
        x = torch.tanh(latent)
        if self.view_inputs:
            view = x.new_zeros(len(x), 2) if center_mm is None else center_mm[:, :2] / center_mm[:, 2:]
            x = torch.cat([x, view.to(x.dtype)], 1)
        return self.keypoint_head(x).view(-1, self.num_joints, 3)

    def draw(self, keypoints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, J, 3) crop keypoints -> hand depth in (-1, 1) and hand-mask logits, each (B, 1, S, S).

        The drawing does not move the keypoints (detached): trained through the bone maps as well,
        the keypoint head drifted to 2.9 px from the joints, where alone it learns them to 0.7 px."""
        maps = bone_maps(
            self._with_forearm(keypoints.detach()), self.bones, self.half, BONE_SIGMA_PX * 2.0 / self.half
        )
        out = self.out(self.body(maps))
        return torch.tanh(out[:, :1]), out[:, 1:]

    def _with_forearm(self, keypoints: torch.Tensor) -> torch.Tensor:
        """(B, J, 3) -> (B, J + 2, 3) with the forearm bone's ends (the wrists' mean, and that point
        moved the forearm's length away from the palm), or unchanged without a forearm."""
        if not self.forearm:
            return keypoints
        wrists, palm, length = self.forearm
        start = keypoints[:, list(wrists)].mean(1)
        away = start - keypoints[:, palm]
        end = start + length * away / away.norm(dim=-1, keepdim=True).clamp(min=1e-6)
        return torch.cat([keypoints, start[:, None], end[:, None]], 1)

    def forward_parts(
        self, latent: torch.Tensor, center_mm: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L) -> hand depth in (-1, 1) and hand-mask logits, each (B, 1, S, S)."""
        return self.draw(self.keypoints(latent, center_mm))

    def forward(self, latent: torch.Tensor, center_mm: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L) -> (B, 1, S, S) crop in (-1, 1]: the depth where the mask says hand, else background."""
        return compose(*self.forward_parts(latent, center_mm), hard=not self.training)

    def render(self, aligned: torch.Tensor, center_mm: torch.Tensor | None = None) -> torch.Tensor:
        return self(aligned, center_mm)

    def render_with_loss(
        self, aligned: torch.Tensor, target: RenderTarget
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draws the labelled crops from their true crop keypoints (teacher forcing: drawn from its
        own, ~2 px off where the crop's perspective moves the fingers, it learnt no fingers) and
        the mixtures from its own, while its keypoint head learns the true ones from the latents."""
        b = len(target.crops)
        keypoints = self.keypoints(aligned, target.center_mm.repeat(len(aligned) // b, 1))  # mixtures too
        true = crop_coordinates(target.joints_mm, target.center_mm, target.cube_mm)
        depth, mask = self.draw(torch.cat([true, keypoints[b:]]))
        loss = L.masked_render_loss(depth[:b], mask[:b], target.crops)
        return compose(depth, mask), loss + target.w_keypoints * L.keypoint_loss(keypoints[:b], true)
