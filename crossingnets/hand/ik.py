"""Inverse kinematics: fit the kinematic hand (angles, rotation, translation, shape) to 3D joints.

Batched gradient descent (Adam) on the torch forward kinematics. Each frame starts from a few
articulation templates (open, half-curled, fist), each rigidly aligned to the labels by Kabsch;
all starts run together as one batch and each frame keeps its best. Joint angles stay inside the
anatomical limits (projected after every step); shape may move away from the default hand, at a
quadratic cost, within bounds that keep it a plausible hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from crossingnets.hand.conventions import Convention
from crossingnets.hand.kinematics import (
    DEFAULT_LINKS_MM,
    DEFAULT_PALM_MM,
    JOINT_LIMITS_RAD,
    PALM_POINTS,
    HandPose,
    HandShape,
    convention_landmark_indices,
    default_shape,
    forward_kinematics,
)

# Articulation templates the fit starts from, as fractions of each angle's upper limit for the
# flexions (abduction and twist start at 0): open hand, half-curled, fist.
_START_CURLS = (0.0, 0.4, 0.8)
# Mirror of x, the map between a left hand and the right-hand model.
_MIRROR_X = np.array([-1.0, 1.0, 1.0])


@dataclass(frozen=True)
class IKConfig:
    lr_angle_rad: float = 0.05  # Adam step sizes, decayed by a cosine to 5 % at the end
    lr_rotation_rad: float = 0.03
    lr_translation_mm: float = 2.0
    lr_shape_mm: float = 0.5
    lr_log_scale: float = 0.01
    shape_sd_mm: float = 5.0  # prior: 1 mm^2 of mean squared joint error buys this much shape change
    log_scale_sd: float = 0.15  # prior on log(scale); natural hands are 0.85-1.15
    max_palm_offset_mm: float = 20.0  # bounds on the shape's departure from the default hand
    max_link_change: float = 0.35  # relative
    scale_range: tuple[float, float] = (0.7, 1.4)
    # Share of the iterations run from every start before each frame keeps only its best: enough
    # for the starts to separate, and the rest costs a third.
    explore_fraction: float = 0.25


class IKResult(NamedTuple):
    pose: HandPose  # numpy float32; wrist_rad is 0 (joints do not see the forearm)
    shape: HandShape  # numpy float32; thickness is 1 (joints do not see it)
    joints_fit_xyz: np.ndarray  # (B, J, 3) float32 mm, the fitted model's joints
    residual_mm: np.ndarray  # (B, J) float32 distance label -> fitted joint


def _skew(v: torch.Tensor) -> torch.Tensor:
    zero = torch.zeros_like(v[..., 0])
    x, y, z = v.unbind(-1)
    rows = [torch.stack(r, -1) for r in ((zero, -z, y), (z, zero, -x), (-y, x, zero))]
    return torch.stack(rows, -2)


def axis_angle_to_matrix(rotvec: torch.Tensor) -> torch.Tensor:
    """(..., 3) axis * angle (rad) -> (..., 3, 3) rotation (Rodrigues), smooth through 0."""
    theta = torch.sqrt((rotvec * rotvec).sum(-1) + 1e-12)[..., None, None]
    k = _skew(rotvec) / theta
    eye = torch.eye(3, dtype=rotvec.dtype).expand(k.shape)
    return eye + torch.sin(theta) * k + (1 - torch.cos(theta)) * (k @ k)


def kabsch(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rigid (R (B, 3, 3), t (B, 3)) minimising |R @ source + t - target|^2 over (B, N, 3) points."""
    mu_s, mu_t = source.mean(1, keepdims=True), target.mean(1, keepdims=True)
    cov = (target - mu_t).transpose(0, 2, 1) @ (source - mu_s)
    u, _, vt = np.linalg.svd(cov)
    fix = np.ones((len(source), 3))
    fix[:, 2] = np.sign(np.linalg.det(u @ vt))  # no reflections
    rot = (u * fix[:, None]) @ vt
    return rot, (mu_t - mu_s @ rot.transpose(0, 2, 1))[:, 0]


def _start_angles(n: int, curl: float) -> np.ndarray:
    angles = np.zeros((n, 5, 5))
    flex = [0, 3, 4]
    angles[:, :, flex] = curl * JOINT_LIMITS_RAD[None, :, flex, 1]
    return angles


class _Params(NamedTuple):
    """The free variables of a batch of fits, all leaf tensors."""

    angles_rad: torch.Tensor  # (B, 5, 5)
    rotvec: torch.Tensor  # (B, 3) applied after the start rotation
    translation_mm: torch.Tensor  # (B, 3)
    palm_delta_mm: torch.Tensor  # (B, 9, 3)
    link_delta_mm: torch.Tensor  # (B, 5, 3)
    log_scale: torch.Tensor  # (B,)


def _model(params: _Params, start_rotation: torch.Tensor) -> tuple[HandPose, HandShape]:
    n = len(params.angles_rad)
    dtype = params.angles_rad.dtype
    pose = HandPose(
        angles_rad=params.angles_rad,
        rotation=start_rotation @ axis_angle_to_matrix(params.rotvec),
        translation_mm=params.translation_mm,
        wrist_rad=torch.zeros(n, 2, dtype=dtype),
    )
    shape = HandShape(
        scale=params.log_scale.exp(),
        palm_mm=torch.as_tensor(DEFAULT_PALM_MM, dtype=dtype) + params.palm_delta_mm,
        links_mm=torch.as_tensor(DEFAULT_LINKS_MM, dtype=dtype) + params.link_delta_mm,
        thickness=torch.ones(n, dtype=dtype),
    )
    return pose, shape


def _objective(
    params: _Params, start_rotation: torch.Tensor, target: torch.Tensor, index: np.ndarray, cfg: IKConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame objective (B,) = mean squared joint error + shape prior, and the (B, J) errors."""
    pose, shape = _model(params, start_rotation)
    fit = forward_kinematics(pose, shape)[:, index]
    err = (fit - target).norm(dim=-1)
    prior = (
        params.palm_delta_mm.square().sum((1, 2)) + params.link_delta_mm.square().sum((1, 2))
    ) / cfg.shape_sd_mm**2
    prior = prior + (params.log_scale / cfg.log_scale_sd).square()
    return err.square().mean(1) + prior / index.size, err


def _project(params: _Params, lo: torch.Tensor, hi: torch.Tensor, cfg: IKConfig) -> None:
    """Keep angles inside the joint limits and shape inside its bounds (in place)."""
    with torch.no_grad():
        params.angles_rad.copy_(torch.maximum(torch.minimum(params.angles_rad, hi), lo))
        params.palm_delta_mm.clamp_(-cfg.max_palm_offset_mm, cfg.max_palm_offset_mm)
        params.palm_delta_mm[:, PALM_POINTS.index("palm")] = 0.0  # the palm point is the origin
        max_link = torch.as_tensor(DEFAULT_LINKS_MM * cfg.max_link_change, dtype=params.link_delta_mm.dtype)
        params.link_delta_mm.copy_(torch.maximum(torch.minimum(params.link_delta_mm, max_link), -max_link))
        params.log_scale.clamp_(*np.log(cfg.scale_range))


def _init(target: np.ndarray, index: np.ndarray) -> tuple[_Params, torch.Tensor]:
    """One start per template and frame, template-major: (S * B) fits, rigidly pre-aligned."""
    n = len(target)
    all_params, rotations = [], []
    for curl in _START_CURLS:
        angles = _start_angles(n, curl)
        pose = HandPose(angles, np.broadcast_to(np.eye(3), (n, 3, 3)), np.zeros((n, 3)), np.zeros((n, 2)))
        model_joints = forward_kinematics(pose, default_shape(n))[:, index]
        rot, trans = kabsch(model_joints, target)
        all_params.append((angles, trans))
        rotations.append(rot)
    angles = np.concatenate([a for a, _ in all_params])
    translation = np.concatenate([t for _, t in all_params])
    m = len(angles)
    as_t = lambda a: torch.tensor(a, dtype=torch.float32, requires_grad=True)  # noqa: E731
    params = _Params(
        angles_rad=as_t(angles),
        rotvec=as_t(np.zeros((m, 3))),
        translation_mm=as_t(translation),
        palm_delta_mm=as_t(np.zeros((m, 9, 3))),
        link_delta_mm=as_t(np.zeros((m, 5, 3))),
        log_scale=as_t(np.zeros(m)),
    )
    return params, torch.tensor(np.concatenate(rotations), dtype=torch.float32)


def _descend(
    params: _Params,
    start_rotation: torch.Tensor,
    target: torch.Tensor,
    index: np.ndarray,
    steps: range,
    iterations: int,
    cfg: IKConfig,
) -> None:
    """Adam on `params` (in place) for the given steps of a cosine schedule of `iterations` steps
    that decays every step size to 5 %."""
    lo, hi = (torch.tensor(JOINT_LIMITS_RAD[..., k], dtype=torch.float32) for k in (0, 1))
    lrs = (
        cfg.lr_angle_rad,
        cfg.lr_rotation_rad,
        cfg.lr_translation_mm,
        cfg.lr_shape_mm,
        cfg.lr_shape_mm,
        cfg.lr_log_scale,
    )
    opt = torch.optim.Adam([{"params": [p], "lr": lr} for p, lr in zip(params, lrs, strict=True)])
    for step in steps:
        decay = 0.05 + 0.475 * (1 + np.cos(np.pi * step / iterations))
        for group, lr in zip(opt.param_groups, lrs, strict=True):
            group["lr"] = lr * decay
        opt.zero_grad(set_to_none=True)
        loss, _ = _objective(params, start_rotation, target, index, cfg)
        loss.sum().backward()
        opt.step()
        _project(params, lo, hi, cfg)


def _best_start(
    params: _Params, start_rotation: torch.Tensor, target: torch.Tensor, index: np.ndarray, cfg: IKConfig
) -> tuple[_Params, torch.Tensor, torch.Tensor]:
    """Keep each frame's best start: (S * B) fits -> B fits (fresh leaf tensors), rotations, targets."""
    with torch.no_grad():
        loss, _ = _objective(params, start_rotation, target, index, cfg)
    n = len(loss) // len(_START_CURLS)
    best = loss.view(len(_START_CURLS), n).argmin(0) * n + torch.arange(n)
    kept = _Params(*(p.detach()[best].clone().requires_grad_(True) for p in params))
    return kept, start_rotation[best], target[best]


def _fit_batch(
    target_np: np.ndarray, index: np.ndarray, iterations: int, cfg: IKConfig
) -> tuple[HandPose, HandShape, np.ndarray]:
    """Fit one batch: all starts for the first cfg.explore_fraction of the iterations, then only
    each frame's best. Returns pose, shape (numpy float32) and the (B, J) errors."""
    params, start_rotation = _init(target_np, index)
    target = torch.tensor(np.tile(target_np, (len(_START_CURLS), 1, 1)), dtype=torch.float32)
    explore = int(cfg.explore_fraction * iterations)
    _descend(params, start_rotation, target, index, range(explore), iterations, cfg)
    params, start_rotation, target = _best_start(params, start_rotation, target, index, cfg)
    _descend(params, start_rotation, target, index, range(explore, iterations), iterations, cfg)
    with torch.no_grad():
        _, err = _objective(params, start_rotation, target, index, cfg)
        pose, shape = _model(params, start_rotation)
    to_np = lambda nt: type(nt)(*(t.detach().numpy().astype(np.float32) for t in nt))  # noqa: E731
    return to_np(pose), to_np(shape), err.numpy()


def fit_ik(
    joints_xyz: np.ndarray,
    convention: Convention,
    iterations: int = 300,
    left_hand: bool = False,
    batch_size: int = 4096,
    cfg: IKConfig = IKConfig(),
) -> IKResult:
    """Fit the right-hand model to (B, J, 3) camera-frame joints (mm) in `convention`'s order.

    left_hand: the labels are of a left hand (ICVL's are): the model is fitted to their mirror
    image (x -> -x), so pose and shape describe that mirrored right hand, while joints_fit_xyz
    and residual_mm are in the labels' own frame. Frames are fitted `batch_size` at a time.
    """
    joints_xyz = np.asarray(joints_xyz, dtype=np.float64)
    if joints_xyz.ndim != 3 or joints_xyz.shape[1:] != (convention.num_joints, 3):
        raise ValueError(
            f"joints_xyz must be (B, {convention.num_joints}, 3) for {convention.name}, got {joints_xyz.shape}"
        )
    if not np.isfinite(joints_xyz).all():
        raise ValueError("joints_xyz holds NaN or inf")
    mirror = _MIRROR_X if left_hand else np.ones(3)
    target = joints_xyz * mirror
    index = convention_landmark_indices(convention)
    parts = [
        _fit_batch(target[i : i + batch_size], index, iterations, cfg)
        for i in range(0, len(target), batch_size)
    ]
    pose = HandPose(*(np.concatenate(f) for f in zip(*(p for p, _, _ in parts), strict=True)))
    shape = HandShape(*(np.concatenate(f) for f in zip(*(s for _, s, _ in parts), strict=True)))
    residual = np.concatenate([e for _, _, e in parts])
    joints_fit = forward_kinematics(pose, shape)[:, index] * mirror.astype(np.float32)
    return IKResult(pose, shape, joints_fit.astype(np.float32), residual.astype(np.float32))
