"""A generator that draws the hand around its own skeleton: latent -> crop keypoints -> bone maps ->
convolutions -> depth and hand mask (issue 11: fingers).

The upsampling generator has to turn a 35-d latent into the pixel layout of five fingers through
fully connected and upsampling layers; trained as a renderer it drew the mean silhouette, no
fingers. Here the latent first gives the joints' crop coordinates (a small MLP, supervised by the
labelled joints), each bone is drawn as a Gaussian of the distance to its segment with the depth
along it, and a few convolutions at half resolution turn those maps into hand surface, sub-pixel
shuffled to the crop (a keypoint bottleneck, as in Jakab et al., NeurIPS 2018, here with
supervised keypoints).

With `capsules`, each bone is also drawn at full resolution as a capsule seen orthographically
(its image is the 2-D segment grown by its radius, exactly; its near surface the axis depth less
sqrt(r^2 - d^2)), with the renderer's mean radii: a silhouette with the gaps between fingers,
which the half-resolution convolutions could not draw (there a finger is under 2 px wide and the
gap under 1). The 14 NYU joints fix a hand's silhouette to IoU 0.94 (IK fitted to them and
rendered again; session 12), so the drawing, not the pose, limited the generator.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from numba import njit
from torch import nn
from torch.nn import functional as F

from crossingnets.models.resnet import compose

# Gaussian width of a bone's map, in pixels of the half-resolution maps (a finger is ~2 px wide there).
BONE_SIGMA_PX = 1.5
# exp() of anything below this is flushed to exp(-30): subnormal floats made the convolutions ~4x slower.
MIN_EXPONENT = -30.0
# Capsules: radii (mm) of a palm bone, a finger bone and the forearm (the renderer's default hand:
# palm capsules 13, finger links 7-13, forearm 22); the sharpness of the silhouette's mask logits
# (logits per pixel of margin inside the outline).
PALM_RADIUS_MM, FINGER_RADIUS_MM, FOREARM_RADIUS_MM = 13.0, 9.0, 22.0
CAPSULE_LOGIT_PER_PX = 4.0
CAPSULE_FLOOR_PX = 3.0  # margins further outside every outline are clipped: only its rim matters


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


@torch.no_grad()
def capsule_maps(
    keypoints: torch.Tensor, bones: tuple[tuple[int, int], ...], size: int, radii: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keypoints (B, J, 3) in crop coordinates, radii (K,) in the same units -> the union of the
    K bones' capsules seen along the depth axis, (B, 1, size, size) each: the signed margin
    max_k (r_k - d_k) (> 0 inside a capsule's image; d_k the distance to its 2-D segment; floored
    at `CAPSULE_FLOOR_PX` pixels outside), and the nearest capsule surface's normalised depth (+1,
    the background, outside every capsule).

    u, v and normalised depth share one unit (the crop spans the cube), so a radius is one too.
    Nothing here is learnt (the keypoints come detached, the radii fixed): a numba kernel visits
    each capsule's box alone (7 ms for 64 crops of 64 px and 14 bones; dense torch arrays of every
    bone at every pixel took 144 ms)."""
    n = keypoints.shape[0]
    floor = -CAPSULE_FLOOR_PX * 2.0 / size
    margin = np.full((n, size, size), floor, np.float32)
    depth = np.ones((n, size, size), np.float32)
    ends = np.array(bones, np.int64).reshape(-1, 2)
    _capsule_kernel(
        keypoints.detach().cpu().double().numpy(), ends, radii.cpu().double().numpy(), floor, margin, depth
    )
    as_tensor = functools.partial(torch.as_tensor, device=keypoints.device, dtype=keypoints.dtype)
    return as_tensor(margin).unsqueeze(1), as_tensor(depth).unsqueeze(1)


@njit(cache=True)
def _capsule_kernel(keypoints, ends, radii, floor, margin, depth):  # pragma: no cover (numba)
    """`capsule_maps` into margin and depth (B, S, S), filled with `floor` and 1: each capsule
    visits the pixels of its segment's box grown by its radius and by -floor."""
    size = margin.shape[1]
    step = 2.0 / size
    for n in range(keypoints.shape[0]):
        for k in range(ends.shape[0]):
            a, b, r = keypoints[n, ends[k, 0]], keypoints[n, ends[k, 1]], radii[k]
            eu, ev, ed = b[0] - a[0], b[1] - a[1], b[2] - a[2]
            ee = max(eu * eu + ev * ev, 1e-6)
            grow = r - floor
            j0, j1 = _pixel_span(min(a[0], b[0]) - grow, max(a[0], b[0]) + grow, step, size)
            i0, i1 = _pixel_span(min(a[1], b[1]) - grow, max(a[1], b[1]) + grow, step, size)
            for i in range(i0, i1):
                rv = (i + 0.5) * step - 1.0 - a[1]
                for j in range(j0, j1):
                    ru = (j + 0.5) * step - 1.0 - a[0]
                    t = min(max((ru * eu + rv * ev) / ee, 0.0), 1.0)
                    d2 = (ru - t * eu) ** 2 + (rv - t * ev) ** 2
                    margin[n, i, j] = max(margin[n, i, j], r - math.sqrt(d2))
                    if d2 < r * r:
                        depth[n, i, j] = min(depth[n, i, j], a[2] + t * ed - math.sqrt(r * r - d2))


@njit(cache=True)
def _pixel_span(lo, hi, step, size):  # pragma: no cover (numba)
    """The pixels [first, end) whose centres ((i + 0.5) step - 1) lie in [lo, hi], clipped."""
    return max(int(math.ceil((lo + 1.0) / step - 0.5)), 0), min(
        int(math.floor((hi + 1.0) / step - 0.5)) + 1, size
    )


def _conv_bn_relu(a: int, b: int) -> list[nn.Module]:
    return [nn.Conv2d(a, b, 3, 1, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(True)]


class SkeletonGenerator(nn.Module):
    """tanh(latent) -> MLP -> J crop keypoints -> bone maps at S/2 -> 3 x [conv3x3, BN, ReLU] (w) ->
    conv3x3 (8) -> pixel shuffle -> depth and hand-mask channels (B, 2, S, S), composed into a crop.

    The pixel shuffle draws the full-resolution crop from the half-resolution features (a 3x3
    convolution with 2 outputs at full resolution ran at 5.6 GFLOP/s, the layer costing as much as
    the rest of the generator)."""

    def __init__(
        self, latent_dims: int, width: int, crop_px: int, bones: tuple[tuple[int, int], ...], num_joints: int,
        hidden: int = 256, forearm: tuple[tuple[int, ...], int, float] | None = None,
        capsules: bool = False, cube_mm: float = 300.0,
    ) -> None:  # fmt: skip
        """forearm: (wrist joints, palm joint, length in crop units): one more bone from the wrists'
        mean away from the palm, where the crops show a forearm that no joint marks. capsules: draw
        the bones as capsules at full resolution too (`capsule_maps`), for a crop of `cube_mm`."""
        super().__init__()
        if crop_px % 2:
            raise ValueError(f"crop side must be even, got {crop_px}")
        self.num_joints, self.half, self.forearm = num_joints, crop_px // 2, forearm
        self.bones = tuple(bones) + (((num_joints, num_joints + 1),) if forearm else ())
        self.keypoint_head = nn.Sequential(
            nn.Linear(latent_dims, hidden), nn.ReLU(True),
            nn.Linear(hidden, hidden), nn.ReLU(True),
            nn.Linear(hidden, 3 * num_joints),
        )  # fmt: skip
        self.body = nn.Sequential(
            *_conv_bn_relu(2 * len(self.bones) + (2 if capsules else 0), width),
            *_conv_bn_relu(width, width),
            *_conv_bn_relu(width, width),
        )
        self.out = nn.Sequential(nn.Conv2d(width, 8, 3, 1, 1), nn.PixelShuffle(2))
        self.register_buffer("radii", self._radii(bones, cube_mm) if capsules else None)

    def keypoints(self, latent: torch.Tensor) -> torch.Tensor:
        """(B, L) -> (B, J, 3) crop coordinates of the joints the generator will draw."""
        return self.keypoint_head(torch.tanh(latent)).view(-1, self.num_joints, 3)

    def draw(self, keypoints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, J, 3) crop keypoints -> hand depth in (-1, 1) and hand-mask logits, each (B, 1, S, S).

        The drawing does not move the keypoints (detached): trained through the bone maps as well,
        the keypoint head drifted to 2.9 px from the joints, where alone it learns them to 0.7 px."""
        keypoints = self._with_forearm(keypoints.detach())
        maps = bone_maps(keypoints, self.bones, self.half, BONE_SIGMA_PX * 2.0 / self.half)
        if self.radii is None:
            out = self.out(self.body(maps))
            return torch.tanh(out[:, :1]), out[:, 1:]
        margin, depth = capsule_maps(keypoints, self.bones, 2 * self.half, self.radii)
        margin = margin * (CAPSULE_LOGIT_PER_PX * self.half)  # logits: CAPSULE_LOGIT_PER_PX a pixel
        out = self.out(self.body(torch.cat([maps, F.avg_pool2d(torch.cat([margin, depth], 1), 2)], 1)))
        inside = (margin > 0).to(depth.dtype)
        return torch.tanh(out[:, :1] + inside * depth), out[:, 1:] + margin

    def _radii(self, bones: tuple[tuple[int, int], ...], cube_mm: float) -> torch.Tensor:
        """(K,) capsule radii in crop units: palm bones (those from the first bone's joint, the
        conventions' palm), finger bones, the forearm."""
        palm = bones[0][0]
        mm = [PALM_RADIUS_MM if i == palm else FINGER_RADIUS_MM for i, _ in bones]
        mm += [FOREARM_RADIUS_MM] * (len(self.bones) - len(bones))
        return torch.tensor(mm) / (0.5 * cube_mm)

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

    def forward_parts(self, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L) -> hand depth in (-1, 1) and hand-mask logits, each (B, 1, S, S)."""
        return self.draw(self.keypoints(latent))

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """(B, L) -> (B, 1, S, S) crop in (-1, 1]: the depth where the mask says hand, else background."""
        return compose(*self.forward_parts(latent), hard=not self.training)
