"""The kinematic generator: capsules drawn into the crop where the renderer draws them, a hand
posed inside the model's limits, joints that learn and a drawing that does not move them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from crossingnets import losses as L
from crossingnets.camera import CAMERAS, uvd_to_xyz
from crossingnets.data.preprocess import CropConfig, preprocess
from crossingnets.hand.capsules import Capsules
from crossingnets.hand.conventions import get_convention
from crossingnets.hand.crop_capsules import capsules_in_crop, crop_coordinates, draw_crop_capsules
from crossingnets.hand.kinematics import (
    FOREARM_CAPSULES,
    JOINT_LIMITS_RAD,
    capsule_segments,
    hand_capsules,
)
from crossingnets.hand.render import render_depth
from crossingnets.hand.sampler import sample_hands
from crossingnets.models import CrossingNet, CrossingNetConfig, model_config
from crossingnets.models.kinematic import NOMINAL_CENTER_MM, KinematicGenerator, rotation_from_6d


def _capsule(
    a: tuple[float, float, float], b: tuple[float, float, float], r: float
) -> tuple[np.ndarray, ...]:
    return np.array([[a]]), np.array([[b]]), np.array([[r]])


def test_a_capsule_across_the_crop_is_drawn_with_its_round_front() -> None:
    """A capsule along u through the crop centre, 32 px (pixel centres at +-1/32, +-3/32, ...): its
    surface is sqrt(r^2 - v^2) in front of its axis, its caps round, nothing outside its outline."""
    size, r = 32, 0.25
    depth = draw_crop_capsules(*_capsule((-0.5, 0.0, 0.1), (0.5, 0.0, 0.1), r), size)[0]
    v = 1 / 32  # rows 15 and 16
    assert depth[16, 16] == pytest.approx(0.1 - math.sqrt(r * r - v * v), abs=1e-6)
    assert depth[15, 16] == pytest.approx(depth[16, 16], abs=1e-6)  # symmetric about the axis
    col = 25  # u = 0.59375: 0.09375 past the end, on its cap
    assert depth[16, col] == pytest.approx(0.1 - math.sqrt(r * r - (0.09375**2 + v * v)), abs=1e-6)
    assert np.isinf(depth[16, 28]) and np.isinf(depth[24, 16])  # u = 0.78 beyond the cap; v = 0.53
    area = np.isfinite(depth).sum() * (2 / size) ** 2
    assert area == pytest.approx(2 * r * 1.0 + math.pi * r * r, rel=0.05)


def test_u_is_columns_v_is_rows_and_the_nearest_surface_wins() -> None:
    start = np.array([[[0.8, -0.8, 0.5], [0.8, -0.8, -0.5]]])
    end = start.copy()  # two spheres on the same ray, the second nearer
    depth = draw_crop_capsules(start, end, np.array([[0.1, 0.1]]), 16)[0]
    row, col = np.unravel_index(np.nanargmin(np.where(np.isfinite(depth), depth, np.nan)), depth.shape)
    assert col >= 13 and row <= 2  # right (u = +0.8), top (v = -0.8)
    assert depth[row, col] == pytest.approx(
        -0.5 - math.sqrt(0.1**2 - 2 * 0.0125**2), abs=1e-6
    )  # (0.8125, -0.8125)
    flipped = draw_crop_capsules(start[:, ::-1], end[:, ::-1], np.array([[0.1, 0.1]]), 16)[0]
    np.testing.assert_array_equal(flipped, depth)  # order of the capsules does not matter


def test_a_capsule_along_the_ray_is_a_disc_at_its_nearer_end() -> None:
    depth = draw_crop_capsules(*_capsule((0.0, 0.0, 0.3), (0.0, 0.0, -0.2), 0.2), 20)[0]
    nearest = math.sqrt(2 * 0.05**2)  # pixel centres at +-0.05 around the axis
    assert np.nanmin(np.where(np.isfinite(depth), depth, np.nan)) == pytest.approx(
        -0.2 - math.sqrt(0.2**2 - nearest**2), abs=1e-6
    )
    area = np.isfinite(depth).sum() * (2 / 20) ** 2
    assert area == pytest.approx(math.pi * 0.04, rel=0.1)


def test_bad_capsule_arrays_are_refused() -> None:
    with pytest.raises(ValueError, match="start, end"):
        draw_crop_capsules(np.zeros((1, 2, 3)), np.zeros((1, 3, 3)), np.zeros((1, 2)), 8)


def test_drawing_in_the_crop_matches_the_renderer_ray_casting_the_same_hands() -> None:
    """Sampled hands (forearm left out) ray-cast by the renderer at 640 x 480 and cropped, against
    the same capsules projected into the crop and drawn there: the orthographic rays inside the
    cube cost little (silhouette IoU and the depth on the shared pixels)."""
    cam, crop = CAMERAS["nyu"], CropConfig(cube_mm=300.0, crop_px=64)
    pose, shape = sample_hands(np.random.default_rng(4), 6, cam)
    caps = hand_capsules(pose, shape)
    hand = Capsules(*(a[:, :-FOREARM_CAPSULES] for a in caps))
    frames = render_depth(hand, cam)
    for b in range(len(frames)):
        real = preprocess(frames[b], cam, crop)
        center = torch.as_tensor(uvd_to_xyz(real.com_uvd, cam), dtype=torch.float32)[None]
        one = (torch.as_tensor(x[b : b + 1]) for x in hand)
        drawn = draw_crop_capsules(*(x.numpy() for x in capsules_in_crop(*one, center, crop.cube_mm)), 64)[0]
        mine, theirs = np.isfinite(drawn), real.depth < 1.0
        assert (mine & theirs).sum() / (mine | theirs).sum() > 0.9
        shared = mine & theirs
        assert np.abs(drawn[shared] - real.depth[shared]).mean() * 150.0 < 3.0  # mm


def _generator() -> KinematicGenerator:
    torch.manual_seed(0)
    return KinematicGenerator(latent_dims=7, crop_px=32, cube_mm=300.0, convention=get_convention("nyu"))


def test_the_posed_hand_stays_inside_the_joint_limits_with_a_proper_rotation() -> None:
    gen = _generator()
    pose, shape = gen.hand(100.0 * torch.randn(16, 7))  # latents far outside the training range
    lo, hi = (torch.as_tensor(JOINT_LIMITS_RAD[..., i], dtype=torch.float32) for i in (0, 1))
    assert ((pose.angles_rad >= lo - 1e-6) & (pose.angles_rad <= hi + 1e-6)).all()
    rot = pose.rotation
    torch.testing.assert_close(rot @ rot.transpose(1, 2), torch.eye(3).expand(16, 3, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(rot), torch.ones(16), atol=1e-5, rtol=0)
    assert ((shape.scale > 0.8) & (shape.scale < 1.25)).all()
    torch.testing.assert_close(rotation_from_6d(torch.tensor([[1.0, 0, 0, 0, 1, 0]])), torch.eye(3)[None])


def test_keypoints_are_the_joints_where_the_crop_shows_them_and_the_centre_moves_them() -> None:
    gen = _generator()
    z = torch.randn(3, 7)
    center = torch.tensor([[150.0, -80.0, 450.0]]).expand(3, 3)
    joints = gen.joints_mm(z, center)
    assert joints.shape == (3, 14, 3)
    torch.testing.assert_close(gen.keypoints(z, center), crop_coordinates(joints, center, 300.0))
    nominal = torch.tensor(NOMINAL_CENTER_MM).expand(3, 3)
    torch.testing.assert_close(gen.keypoints(z), gen.keypoints(z, nominal))
    assert not torch.allclose(gen.keypoints(z), gen.keypoints(z, center))


def test_forward_draws_the_hand_without_its_forearm_and_without_gradients() -> None:
    gen = _generator()
    z = torch.randn(2, 7, requires_grad=True)
    crops = gen(z)
    assert crops.shape == (2, 1, 32, 32) and not crops.requires_grad
    assert ((crops >= -1) & (crops <= 1)).all() and (crops < 1).any()
    start, end, radius = capsule_segments(*gen.hand(z.detach()))
    center = torch.tensor(NOMINAL_CENTER_MM).expand(2, 3)
    in_crop = capsules_in_crop(start, end, radius, center, 300.0)
    with_arm = draw_crop_capsules(*(x.detach().numpy() for x in in_crop), 32)
    assert (
        np.isfinite(with_arm).sum((1, 2)) > (crops[:, 0] < 1).sum((1, 2)).numpy()
    ).all()  # the arm is more


def test_the_joints_learn_from_their_loss() -> None:
    gen = _generator()
    z, center = torch.randn(8, 7), torch.tensor([[0.0, 0.0, 500.0]]).expand(8, 3)
    target = gen.joints_mm(torch.randn(8, 7), center).detach()
    opt = torch.optim.Adam(gen.parameters(), 1e-3)
    first = None
    for _ in range(60):
        loss = L.joint_distance_loss(gen.joints_mm(z, center), target)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


def test_joint_distance_loss_is_the_mean_euclidean_distance() -> None:
    a = torch.zeros(1, 2, 3)
    b = torch.tensor([[[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]]])
    assert L.joint_distance_loss(a, b).item() == pytest.approx(3.0)


def test_the_model_builds_it_and_refuses_what_it_cannot_do() -> None:
    net = CrossingNet(model_config("tiny-release", gen_arch="kinematic", convention="nyu", cube_mm=300.0))
    assert isinstance(net.generator, KinematicGenerator)
    z = torch.randn(2, net.config.latent_dims)
    center = torch.tensor([[100.0, 50.0, 400.0], [100.0, 50.0, 400.0]])
    torch.testing.assert_close(
        net.generator_keypoints(z, center), net.generator.keypoints(net.align(z), center)
    )
    assert not torch.equal(net.render(z, center), net.render(z))  # drawn around the given centre
    with pytest.raises(ValueError, match="needs arch resnet"):
        CrossingNetConfig(gen_arch="kinematic")
    with pytest.raises(ValueError, match="gen_view"):
        CrossingNetConfig(arch="resnet", gen_arch="kinematic", gen_view=True)


def test_alis_batch_norm_uses_its_running_statistics_before_a_kinematic_generator() -> None:
    """In training mode too: a batch's own statistics would make the generator's joints depend on
    the batch; the rest of the model trains as usual."""
    net = CrossingNet(model_config("tiny-release", gen_arch="kinematic", convention="nyu")).train()
    assert not net.align.bn.training and net.discriminator.training and net.align.fc.training
    z = torch.randn(6, net.config.latent_dims)
    torch.testing.assert_close(net.align(z)[:2], net.align(z[:2]))  # the same, whatever the batch
    other = CrossingNet(model_config("tiny-release", gen_arch="skeleton", convention="nyu")).train()
    assert other.align.bn.training


def test_release_stages_step_their_groups_and_the_weights_round_trip(tmp_path) -> None:
    """render, posterior (a generator step every step) and adversarial (GAN terms every step) back
    finite losses into their own groups with a kinematic generator; saved and loaded, the model
    draws and places its joints as before."""
    from crossingnets.models import LatentPoseModel
    from crossingnets.models.base import LossConfig, TrainStep

    torch.manual_seed(0)
    net = CrossingNet(model_config("tiny-release", gen_arch="kinematic", convention="nyu", cube_mm=300.0))
    center = torch.tensor([0.0, 0.0, 600.0]) + 50 * torch.randn(4, 3)
    batch = {"depth": torch.rand(4, 1, 32, 32) * 2 - 1, "pose": torch.randn(4, net.config.pose_dims),
             "root": 0.2 * torch.randn(4, 3), "center": center}  # fmt: skip
    used: list[str] = []

    def optimise(name: str, loss: torch.Tensor) -> None:
        assert torch.isfinite(loss)
        used.append(name)
        net.zero_grad()
        loss.backward()

    net.train()
    for stage in ("render", "posterior", "adversarial"):
        used.clear()
        step = TrainStep(LossConfig(render_every=1, gan_every=1), lambda _: batch,
                         torch.Generator().manual_seed(0), optimise, 1, torch.contiguous_format)  # fmt: skip
        losses = net.training_step(stage, step)
        assert used and set(used) <= set(net.param_groups(stage)), (stage, used)
        assert all(torch.isfinite(v) for v in losses.values())
    net.eval().save_pretrained(tmp_path)
    again = LatentPoseModel.from_pretrained(tmp_path)
    z = torch.randn(3, net.config.latent_dims)
    torch.testing.assert_close(again.render(z, center[:3]), net.render(z, center[:3]))
    torch.testing.assert_close(again.generator_keypoints(z), net.generator_keypoints(z))


def test_the_paper_gan_stage_refuses_a_kinematic_generator() -> None:
    """Its drawing has no gradient, so a stage that trains the generator by the discriminator
    alone could not move it: refused with why, before any work."""
    from crossingnets.models.base import LossConfig, TrainStep

    net = CrossingNet(model_config("tiny-release", gen_arch="kinematic", convention="nyu"))
    step = TrainStep(
        LossConfig(), lambda _: {}, torch.Generator(), lambda *_: None, 0, torch.contiguous_format
    )
    with pytest.raises(ValueError, match="not kinematic"):
        net.step_gan(step)
