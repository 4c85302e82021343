"""The skeleton generator: bone maps at the right pixels and depths, keypoints in crop units."""

from __future__ import annotations

import math

import pytest
import torch

from crossingnets import losses as L
from crossingnets.camera import CAMERAS, xyz_to_uvd
from crossingnets.data.preprocess import CropConfig, uvd_to_crop
from crossingnets.models import CrossingNet, CrossingNetConfig, model_config
from crossingnets.models.skeleton import MIN_EXPONENT, SkeletonGenerator, bone_maps

BONE = ((0, 1),)


def _keypoints(*points: tuple[float, float, float]) -> torch.Tensor:
    return torch.tensor([points], dtype=torch.float32)  # (1, J, 3)


def test_bone_map_lights_the_segment_with_depth_along_it() -> None:
    """A horizontal bone across the left half, 8 px maps: near 1 on its pixels, fading off it,
    the depth channel interpolating its ends' depths."""
    size, sigma = 8, 0.25
    maps = bone_maps(_keypoints((-0.875, -0.125, 0.2), (-0.125, -0.125, 0.6)), BONE, size, sigma)
    assert maps.shape == (1, 2, size, size)
    near, depth = maps[0, 0], maps[0, 1]
    # pixel centres are at -0.875, -0.625, ... ; the bone runs along row 3 (v = -0.125), columns 0-3
    torch.testing.assert_close(near[3, :4], torch.ones(4))
    assert near[3, 7] < near[3, 5] < near[3, 4] < 1.0  # past its end, fading with the distance
    dist = 0.25  # one row away
    torch.testing.assert_close(near[2, 1], torch.tensor(math.exp(-0.5 * (dist / sigma) ** 2)))
    torch.testing.assert_close(depth[3, :4], torch.tensor([0.2, 0.2 + 0.4 / 3, 0.2 + 0.8 / 3, 0.6]))
    torch.testing.assert_close(depth[3, 6], 0.6 * near[3, 6])  # beyond the end: the end's depth


def test_bone_map_orientation_u_is_columns_v_is_rows() -> None:
    maps = bone_maps(_keypoints((0.8, -0.8, 0.0), (0.9, -0.8, 0.0)), BONE, 16, 0.1)[0, 0]
    row, col = divmod(int(maps.argmax()), 16)
    assert col >= 14 and row <= 1  # right (u = +0.8..0.9), top (v = -0.8)


def test_bone_maps_stay_normal_floats_and_leave_the_keypoints_alone() -> None:
    """Far from every bone the map is exp(MIN_EXPONENT), not a subnormal float (which made the
    convolutions several times slower); the maps are computed in place, yet the keypoints they
    read are unchanged and get no gradient (the generator draws from detached keypoints)."""
    kp = _keypoints((-0.9, -0.9, 0.0), (-0.8, -0.9, 0.0)).requires_grad_()
    before = kp.detach().clone()
    maps = bone_maps(kp, BONE, 32, 0.05)
    assert maps[0, 0].min().item() == pytest.approx(math.exp(MIN_EXPONENT), rel=1e-3)
    assert (maps[0, 0] >= torch.finfo(torch.float32).tiny).all()
    assert not maps.requires_grad
    torch.testing.assert_close(kp.detach(), before, rtol=0, atol=0)


def test_generator_draws_a_mask_and_depth_from_its_keypoints() -> None:
    torch.manual_seed(0)
    gen = SkeletonGenerator(latent_dims=11, width=4, crop_px=16, bones=((0, 1), (1, 2)), num_joints=3)
    latent = torch.randn(5, 11)
    kp = gen.keypoints(latent)
    assert kp.shape == (5, 3, 3)
    depth, mask = gen.forward_parts(latent)
    assert depth.shape == mask.shape == (5, 1, 16, 16) and depth.abs().max() < 1.0
    torch.testing.assert_close(gen.draw(kp)[1], mask)
    gen.eval()
    depth, mask = gen.forward_parts(latent)
    torch.testing.assert_close(gen(latent), torch.where(mask > 0, depth, torch.ones_like(depth)))  # hard mask
    with pytest.raises(ValueError, match="even"):
        SkeletonGenerator(11, 4, 15, ((0, 1),), 2)


def test_view_inputs_move_the_keypoints_with_the_crop_centre() -> None:
    """`gen_view`: the keypoint head sees the centre's direction; no centre is the optical axis;
    the training targets and `render` take their keypoints from the same place."""
    torch.manual_seed(0)
    net = CrossingNet(model_config("tiny-release", gen_arch="skeleton", gen_view=True, convention="nyu"))
    gen = net.generator
    assert gen.keypoint_head[0].in_features == net.config.latent_dims + 2
    z = torch.randn(4, net.config.latent_dims)
    axis = torch.tensor([[0.0, 0.0, 600.0]]).repeat(4, 1)
    beside = torch.tensor([[300.0, -150.0, 600.0]]).repeat(4, 1)
    torch.testing.assert_close(net.generator_keypoints(z), net.generator_keypoints(z, axis))
    assert not torch.allclose(net.generator_keypoints(z), net.generator_keypoints(z, beside))
    view = torch.tensor([[0.5, -0.25]]).repeat(4, 1)  # beside's direction: x / z, y / z
    head_input = torch.cat([torch.tanh(net.align(z)), view], 1)
    torch.testing.assert_close(
        net.generator_keypoints(z, beside), gen.keypoint_head(head_input).view(4, -1, 3)
    )
    net.eval()
    torch.testing.assert_close(net.render(z, beside), gen(net.align(z), beside))
    plain = CrossingNet(model_config("tiny-release", gen_arch="skeleton", convention="nyu"))
    assert plain.generator.keypoint_head[0].in_features == net.config.latent_dims
    torch.testing.assert_close(plain.generator_keypoints(z, beside), plain.generator_keypoints(z))


def test_config_picks_and_checks_the_generator() -> None:
    net = CrossingNet(model_config("tiny-release", gen_arch="skeleton", convention="nyu"))
    assert isinstance(net.generator, SkeletonGenerator) and len(net.generator.bones) == 13 + 1  # + forearm
    with pytest.raises(ValueError, match="gen_arch must be one of"):
        CrossingNetConfig(arch="resnet", gen_arch="transposed")
    with pytest.raises(ValueError, match="needs arch resnet"):
        CrossingNetConfig(gen_arch="skeleton")  # the paper's networks
    with pytest.raises(ValueError, match="needs arch resnet"):
        CrossingNetConfig(arch="resnet", gen_mask=False, gen_arch="skeleton")


def test_crop_keypoints_are_where_the_crop_shows_the_joints() -> None:
    """Against the crop geometry itself (`uvd_to_crop` through a camera), for a centre on the
    optical axis and one far beside it, where perspective moves the joints off the orthographic guess."""
    net = CrossingNet(model_config("tiny-release", gen_arch="skeleton", cube_mm=300.0, pose_unit_mm=50.0))
    cam, crop = CAMERAS["nyu"], CropConfig(cube_mm=300.0, crop_px=64)
    joints = torch.tensor([[[1.0, 0.5, 0.0], [-2.0, 1.0, -1.5], [0.5, -2.5, 2.0]]]).repeat(
        2, 1, 1
    )  # pose units
    center = torch.tensor([[0.0, 0.0, 600.0], [220.0, -150.0, 500.0]])
    got = net.crop_keypoints(joints, center)
    torch.testing.assert_close(got[0, 0], torch.tensor([1 / 3, 1 / 6, 0.0]))  # 50 mm of a 150 mm half side
    for i in range(2):
        com_uvd = xyz_to_uvd(center[i].double().numpy(), cam)
        uvd = xyz_to_uvd((center[i] + 50.0 * joints[i]).double().numpy(), cam)
        want = uvd_to_crop(uvd, com_uvd, cam, crop)
        want[:, :2] = (want[:, :2] - (64 - 1) / 2) / (64 / 2)
        torch.testing.assert_close(got[i].double(), torch.from_numpy(want), atol=1e-5, rtol=0)
    orthographic = joints[1] * (50.0 / 150.0)
    assert (got[1, :, :2] - orthographic[:, :2]).abs().max() > 0.05  # > 1.6 px: why it is not used


def test_keypoint_loss_is_the_mean_absolute_error() -> None:
    a = torch.zeros(2, 3, 3)
    b = torch.zeros(2, 3, 3)
    b[0, 0, 0], b[1, 2, 1] = 0.9, -0.3
    assert L.keypoint_loss(a, a) == 0
    assert L.keypoint_loss(a, b) == pytest.approx(1.2 / 18)


def test_drawing_leaves_the_keypoints_to_their_own_loss() -> None:
    """The render loss trains the drawing, not the keypoint head (which only its L1 moves)."""
    torch.manual_seed(0)
    gen = SkeletonGenerator(latent_dims=11, width=4, crop_px=16, bones=((0, 1), (1, 2)), num_joints=3)
    depth, mask = gen.forward_parts(torch.randn(5, 11))
    (depth.sum() + mask.sum()).backward()
    assert all(p.grad is None for p in gen.keypoint_head.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in gen.body.parameters())


def test_forearm_bone_continues_the_palm_wrist_axis() -> None:
    """NYU: a forearm bone from the wrists' mean, 130 mm (crop units) further from the palm; ICVL
    (no wrist joints) draws none."""
    net = CrossingNet(model_config("tiny-release", gen_arch="skeleton", convention="nyu", cube_mm=300.0))
    gen = net.generator
    wrists, palm, length = gen.forearm
    assert (wrists, palm, length) == ((11, 12), 13, pytest.approx(130.0 / 150.0))
    kp = torch.zeros(1, 14, 3)
    kp[0, 11], kp[0, 12], kp[0, 13] = torch.tensor([0.1, 0.3, 0.0]), torch.tensor([-0.1, 0.3, 0.0]), 0.0
    ext = gen._with_forearm(kp)
    torch.testing.assert_close(ext[0, 14], torch.tensor([0.0, 0.3, 0.0]))
    torch.testing.assert_close(ext[0, 15], torch.tensor([0.0, 0.3 + 130.0 / 150.0, 0.0]))
    assert gen.bones[-1] == (14, 15) and gen.body[0].in_channels == 2 * 14
    icvl = CrossingNet(model_config("tiny-release", gen_arch="skeleton", convention="icvl")).generator
    assert icvl.forearm is None and icvl._with_forearm(torch.zeros(1, 16, 3)).shape == (1, 16, 3)
