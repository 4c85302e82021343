"""Does the generator draw the hand of a pose? Gen(Ali(z)) against the stored crop of the same pose.

For test poses: the latent of the pose (`encode_pose(pose, root)`, the pose VAE's deterministic
code and the root offset, pose units as the trainer's `frames_from_arrays`) -> `render` (Gen(Ali(z)),
a (S, S) crop in [-1, 1]) -> compared with the store's crop of that pose:
- hand-silhouette IoU, foreground = normalised depth < --fg-threshold in each crop;
- mean absolute depth error (mm) over the pixels foreground in both (normalised depth x cube_mm / 2);
each per frame, then mean and median over frames. A sheet shows (real crop, generated crop,
|difference| in mm) for a few poses.

The crops show a 130 mm forearm stub whose bend at the wrist the renderer draws at random (+-35 deg)
and no joint holds, so no generator of the pose can place it. `--hand-only N` renders N more hands
of the fixed renderer here, each also without sensor effects, with and without its forearm, cropped
at the sensed crop's centre; the pixels where the forearm is what the sensor sees are left out of
both figures (the hand-silhouette IoU). A generated forearm where the real crop has background
still counts against the generator.

For a kinematic generator, `kinematic_hand` gives how far its hand's joints lie from the labels.
For a skeleton generator, `true_keypoints` draws the same poses from their true crop keypoints
instead of its own: what the drawing alone achieves, and how far its keypoints lie from them.

`--ik-ceiling N` draws N fresh hands again from the inverse-kinematics fit of their joints (clean,
forearm left out): how much of the silhouette the pose itself fixes, the reference for the IoU goal.

    python benchmarks/generator.py --checkpoint checkpoints/cn-nyu-synth [--store bench/test.h5] [--hand-only 500]

Prints one JSON line with the figures.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from tqdm import tqdm

from crossingnets.camera import xyz_to_uvd
from crossingnets.data.preprocess import NoHandError, preprocess
from crossingnets.data.store import StoreInfo, load_arrays, read_info
from crossingnets.data.synthetic import GenerateConfig, render_hands
from crossingnets.data.training import Frames, frames_from_arrays
from crossingnets.draw import font
from crossingnets.files import atomic_output
from crossingnets.hand.capsules import Capsules
from crossingnets.hand.conventions import get_convention
from crossingnets.hand.crop_capsules import crop_coordinates
from crossingnets.hand.ik import fit_ik
from crossingnets.hand.kinematics import FOREARM_CAPSULES, hand_capsules
from crossingnets.hand.render import render_depth
from crossingnets.hand.sampler import sample_hands
from crossingnets.inference import resolve_model_folder
from crossingnets.models import CrossingNet, LatentPoseModel
from crossingnets.models.kinematic import KinematicGenerator
from crossingnets.models.resnet import compose
from crossingnets.models.skeleton import SkeletonGenerator

# Stored crops put the background at exactly +1 (`crossingnets.data.preprocess.BACKGROUND`), but the
# generator ends in tanh, which never reaches 1: a threshold at 1 would call every generated pixel
# hand. 0.9 (135 mm behind the centre of a 300 mm cube) is below the generator's background level
# and behind the hand.
FG_THRESHOLD = 0.9
FOREARM_TOL_MM = 2.0  # a pixel is the forearm's where the hand alone is this much deeper, or absent
SHEET_ROWS = 8
SHEET_SCALE = 4  # sheet pixels per crop pixel
DIFF_MAX_MM = 50.0  # top of the difference colour map; larger errors saturate
# Difference panel: pixels that are hand in only one crop have no depth difference to show.
REAL_ONLY_RGB = (230, 40, 40)  # hand in the real crop, background in the generated one
GEN_ONLY_RGB = (150, 150, 150)  # hand drawn where the real crop has background
# viridis at 0, 1/4, 1/2, 3/4, 1: dark purple (0 mm) -> yellow (DIFF_MAX_MM)
_VIRIDIS = np.array([(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)], float)


def foreground(crops: np.ndarray, threshold: float = FG_THRESHOLD) -> np.ndarray:
    """Crops (..., S, S) in [-1, 1] -> hand mask, normalised depth < threshold."""
    return np.asarray(crops) < threshold


def silhouette_iou(
    generated: np.ndarray, real: np.ndarray, threshold: float = FG_THRESHOLD, ignore: np.ndarray | None = None
) -> np.ndarray:
    """Crops (N, S, S) and (N, S, S) -> (N,) IoU of the hand masks (1 where both are empty), over
    the pixels not in `ignore` (N, S, S) where given."""
    g, r = foreground(generated, threshold), foreground(real, threshold)
    if ignore is not None:
        g, r = g & ~ignore, r & ~ignore
    inter = (g & r).sum(axis=(-2, -1))
    union = (g | r).sum(axis=(-2, -1))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def foreground_error_mm(
    generated: np.ndarray,
    real: np.ndarray,
    cube_mm: float,
    threshold: float = FG_THRESHOLD,
    ignore: np.ndarray | None = None,
) -> np.ndarray:
    """Crops (N, S, S), (N, S, S) -> (N,) mean |depth difference| in mm over the pixels that are
    hand in both (and not in `ignore`); NaN for a frame where none is."""
    both = foreground(generated, threshold) & foreground(real, threshold)
    if ignore is not None:
        both &= ~ignore
    diff = np.abs(np.asarray(generated, np.float64) - real) * (cube_mm / 2)
    count = both.sum(axis=(-2, -1))
    total = np.where(both, diff, 0.0).sum(axis=(-2, -1))
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def summary(values: np.ndarray) -> dict[str, float | int | None]:
    """Mean and median over frames (NaN frames left out, and counted)."""
    ok = values[np.isfinite(values)]
    return {
        "mean": float(ok.mean()) if len(ok) else None,
        "median": float(np.median(ok)) if len(ok) else None,
        "frames": int(len(ok)),
    }


def agreement(
    generated: np.ndarray,
    real: np.ndarray,
    cube_mm: float,
    threshold: float,
    ignore: np.ndarray | None = None,
) -> dict[str, dict]:
    """The IoU and foreground error summaries of crops drawn against the real ones."""
    return {
        "iou": summary(silhouette_iou(generated, real, threshold, ignore)),
        "fg_error_mm": summary(foreground_error_mm(generated, real, cube_mm, threshold, ignore)),
    }


def hands_and_forearms(n: int, seed: int, info: StoreInfo) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """`n` hands of the fixed renderer (`crossingnets generate`'s defaults at the store's crop) as
    store arrays, and (n, S, S) masks of the crop pixels where the sensor sees their forearm."""
    cfg = GenerateConfig(
        convention=info.convention.name, cube_mm=info.crop.cube_mm, crop_px=info.crop.crop_px
    )
    convention, cam, crop = get_convention(cfg.convention), info.camera, cfg.crop()
    near_mm = FOREARM_TOL_MM / (crop.cube_mm / 2)  # in normalised crop depth
    rng = np.random.default_rng(seed)
    rows, masks = [], []
    while len(rows) < n:
        pose, shape = sample_hands(rng, cfg.batch_frames, cam, cfg.sampler)
        sensed = render_hands(rng, pose, shape, convention, cam, cfg)  # as `generate` draws them
        caps = hand_capsules(pose, shape)
        clean = render_depth(caps, cam)
        hand = render_depth(Capsules(*(a[:, :-FOREARM_CAPSULES] for a in caps)), cam)
        joints = sensed.joints_xyz
        for b in range(len(joints)):
            try:
                c = preprocess(sensed.depth_mm[b], cam, crop)
            except NoHandError:
                continue
            with_arm = preprocess(clean[b], cam, crop, center_uvd=c.com_uvd).depth
            without = preprocess(hand[b], cam, crop, center_uvd=c.com_uvd).depth
            masks.append((with_arm < 1.0) & (without - with_arm > near_mm))
            rows.append((c.depth[None], joints[b], xyz_to_uvd(joints[b], cam), c.com_uvd))
    names = ("depth", "joints_xyz", "joints_uvd", "com_uvd")
    arrays = {
        k: np.stack(v[:n]).astype(np.float32) for k, v in zip(names, zip(*rows, strict=True), strict=True)
    }
    return arrays, np.stack(masks[:n])


@torch.inference_mode()
def draw_from_true_keypoints(
    model: CrossingNet, frames: Frames, batch: int = 256
) -> tuple[np.ndarray, float]:
    """A skeleton generator's drawing of each frame from the pose's true crop keypoints, not from
    its own (Ali and the keypoint head): (N, S, S) crops, and the mean distance in pixels between its
    keypoints and the true ones. It separates the drawing's error from the keypoints' (the latent
    holds the joints around the crop centre, not where the crop sits in the frame: perspective)."""
    device = next(model.parameters()).device
    out, px = [], []
    for s in range(0, len(frames), batch):
        f = frames.subset(np.arange(s, min(s + batch, len(frames))))
        pose, root = f.pose.to(device), f.root.to(device)
        true = model.crop_keypoints(pose.unflatten(1, (-1, 3)) + root[:, None], f.center_xyz.to(device))
        own = model.generator_keypoints(model.encode_pose(pose, root), f.center_xyz.to(device))
        px.append(((own - true)[..., :2].norm(dim=-1) * model.config.crop_px / 2).flatten())
        out.append(compose(*model.generator.draw(true), hard=True)[:, 0].float().cpu().numpy())
    return np.concatenate(out), float(torch.cat(px).mean())


def true_keypoint_figures(
    model: CrossingNet, frames: Frames, real: np.ndarray, threshold: float, ignore: np.ndarray | None = None
) -> dict:
    """`draw_from_true_keypoints`' crops against the real ones, and the keypoints' distance."""
    drawn, px = draw_from_true_keypoints(model, frames)
    return {"keypoint_error_px": px, **agreement(drawn, real, model.config.cube_mm, threshold, ignore)}


@torch.inference_mode()
def kinematic_joint_figures(model: CrossingNet, frames: Frames, batch: int = 256) -> dict[str, float]:
    """A kinematic generator's hand against the labels: the mean distance of its joints (mm) and of
    where the crop shows them (px), for the frames' poses through their latents (Gen(Ali(z)))."""
    device = next(model.parameters()).device
    mm, px = [], []
    for s in range(0, len(frames), batch):
        f = frames.subset(np.arange(s, min(s + batch, len(frames))))
        pose, root, center = f.pose.to(device), f.root.to(device), f.center_xyz.to(device)
        own = model.generator.joints_mm(model.align(model.encode_pose(pose, root)), center)
        mm.append((own - f.joints_xyz.to(device)).norm(dim=-1).flatten())
        true = model.crop_keypoints(pose.unflatten(1, (-1, 3)) + root[:, None], center)
        kp = crop_coordinates(own, center, model.config.cube_mm)
        px.append(((kp - true)[..., :2].norm(dim=-1) * model.config.crop_px / 2).flatten())
    return {"joint_error_mm": float(torch.cat(mm).mean()), "keypoint_error_px": float(torch.cat(px).mean())}


@torch.inference_mode()
def generate_from_poses(model: CrossingNet, frames: Frames, batch: int = 256) -> np.ndarray:
    """Frames' poses -> (N, S, S) crops the generator draws from their latents, Gen(Ali(z)) (a
    generator with `gen_view` around the frames' crop centres)."""
    device = next(model.parameters()).device
    out = []
    for s in tqdm(range(0, len(frames), batch), desc="generate", unit="batch"):
        f = frames.subset(np.arange(s, min(s + batch, len(frames))))
        latent = model.encode_pose(f.pose.to(device), f.root.to(device))
        out.append(model.render(latent, f.center_xyz.to(device))[:, 0].float().cpu().numpy())
    return np.concatenate(out)


def _viridis(t: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (any shape) -> RGB (..., 3) float."""
    x = np.clip(t, 0.0, 1.0) * (len(_VIRIDIS) - 1)
    i = np.minimum(x.astype(int), len(_VIRIDIS) - 2)
    w = (x - i)[..., None]
    return _VIRIDIS[i] * (1 - w) + _VIRIDIS[i + 1] * w


def difference_image(
    generated: np.ndarray, real: np.ndarray, cube_mm: float, threshold: float, max_mm: float = DIFF_MAX_MM
) -> np.ndarray:
    """(S, S), (S, S) crops -> (S, S, 3) uint8: |difference| in mm on the colour map where both are
    hand, REAL_ONLY_RGB / GEN_ONLY_RGB where one is, black where neither is."""
    g, r = foreground(generated, threshold), foreground(real, threshold)
    diff_mm = np.abs(np.asarray(generated, np.float64) - real) * (cube_mm / 2)
    rgb = np.zeros((*real.shape, 3))
    rgb[g & r] = _viridis(diff_mm[g & r] / max_mm)
    rgb[r & ~g] = REAL_ONLY_RGB
    rgb[g & ~r] = GEN_ONLY_RGB
    return rgb.astype(np.uint8)


def depth_gray(crop: np.ndarray, lo: float, hi: float, threshold: float) -> np.ndarray:
    """(S, S) crop -> (S, S) uint8 on a fixed depth range [lo, hi] (near bright), so a real and a
    generated crop drawn with the same range compare; background (>= threshold) black."""
    t = np.clip((np.asarray(crop) - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    return np.where(crop < threshold, 255 - 205 * t, 0).astype(np.uint8)


def sheet(
    real: np.ndarray,
    generated: np.ndarray,
    iou: np.ndarray,
    fg_mm: np.ndarray,
    indices: np.ndarray,
    cube_mm: float,
    threshold: float = FG_THRESHOLD,
    max_mm: float = DIFF_MAX_MM,
) -> Image.Image:
    """One row per frame index: real crop | generated crop | |difference| (mm), with its IoU and
    error, titles on top and the colour key below."""
    s = real.shape[-1] * SHEET_SCALE
    label_w, title_h, key_h, pad = 150, 28, 84, 6
    width = label_w + 3 * (s + pad)
    img = Image.new("RGB", (width, title_h + len(indices) * (s + pad) + key_h), "white")
    draw = ImageDraw.Draw(img)
    big, small = font(16), font(13)
    for c, title in enumerate(("real crop", "generated Gen(Ali(z))", "|difference| (mm)")):
        draw.text((label_w + c * (s + pad) + 4, 6), title, fill="black", font=big)
    for row, i in enumerate(indices):
        y = title_h + row * (s + pad)
        hand = real[i][foreground(real[i], threshold)]
        lo, hi = (float(hand.min()), float(hand.max())) if hand.size else (-1.0, threshold)
        tiles = [
            Image.fromarray(depth_gray(real[i], lo, hi, threshold)).convert("RGB"),
            Image.fromarray(depth_gray(generated[i], lo, hi, threshold)).convert("RGB"),
            Image.fromarray(difference_image(generated[i], real[i], cube_mm, threshold, max_mm)),
        ]
        for c, tile in enumerate(tiles):
            img.paste(tile.resize((s, s), Image.NEAREST), (label_w + c * (s + pad), y))
        fg = "-" if not np.isfinite(fg_mm[i]) else f"{fg_mm[i]:.1f} mm"
        draw.text((6, y + 6), f"frame {i}\nIoU {iou[i]:.2f}\nfg {fg}", fill="black", font=small, spacing=4)
    # colour key
    y = title_h + len(indices) * (s + pad) + 8
    x0, bar_w = label_w, 2 * s
    ramp = _viridis(np.linspace(0, 1, bar_w))[None].repeat(14, axis=0).astype(np.uint8)
    img.paste(Image.fromarray(ramp), (x0, y))
    for t in np.linspace(0, max_mm, 6):
        x = x0 + int(t / max_mm * (bar_w - 1))
        draw.line([(x, y + 14), (x, y + 18)], fill="black")
        draw.text((x - 6, y + 19), f"{t:g}", fill="black", font=small)
    draw.text((x0 + bar_w + 10, y), f"mm, both hand (saturates at {max_mm:g})", fill="black", font=small)
    for k, (rgb, text) in enumerate(
        ((REAL_ONLY_RGB, "hand only in the real crop"), (GEN_ONLY_RGB, "hand only in the generated crop"))
    ):
        yy = y + 38 + 16 * (k % 2)
        xx = x0 + (k // 2) * 300
        draw.rectangle([xx, yy, xx + 12, yy + 12], fill=rgb)
        draw.text((xx + 18, yy - 1), text, fill="black", font=small)
    draw.text((6, y), f"fg: depth < {threshold:g}", fill="black", font=small)
    return img


def hand_only_figures(model: CrossingNet, info: StoreInfo, n: int, seed: int, threshold: float) -> dict:
    """IoU and foreground error of `n` fresh hands with and without their forearm's pixels."""
    arrays, forearm = hands_and_forearms(n, seed, info)
    frames = frames_from_arrays(arrays, info, model.config.pose_unit_mm)
    real = frames.depth[:, 0].numpy()
    generated = generate_from_poses(model, frames)
    result = {
        "frames": len(real),
        "seed": seed,
        "forearm_share": float(
            (forearm.sum((-2, -1)) / np.maximum(foreground(real, threshold).sum((-2, -1)), 1)).mean()
        ),
        "iou_with_forearm": summary(silhouette_iou(generated, real, threshold)),
        **agreement(generated, real, model.config.cube_mm, threshold, forearm),
    }
    if isinstance(model.generator, SkeletonGenerator):
        result["true_keypoints"] = true_keypoint_figures(model, frames, real, threshold, forearm)
    return result


def ik_ceiling(n: int, seed: int, info: StoreInfo, threshold: float) -> dict:
    """How much of a hand's silhouette its joints fix: `n` fresh hands of the fixed renderer, clean
    and without their forearm, cropped at the sensed crop's centre, against the hand that inverse
    kinematics fits to the same joints (its pose and shape; `fit_ik`, 300 iterations) drawn alike.
    What a generator of the pose alone could reach, were its drawing as exact as the renderer."""
    cfg = GenerateConfig(
        convention=info.convention.name, cube_mm=info.crop.cube_mm, crop_px=info.crop.crop_px
    )
    convention, cam, crop = get_convention(cfg.convention), info.camera, cfg.crop()
    pose, shape = sample_hands(np.random.default_rng(seed), n, cam, cfg.sampler)
    sensed = render_hands(np.random.default_rng(seed + 1), pose, shape, convention, cam, cfg)
    fit = fit_ik(sensed.joints_xyz, convention, iterations=300)

    def hand_only(pose, shape) -> np.ndarray:
        return render_depth(Capsules(*(a[:, :-FOREARM_CAPSULES] for a in hand_capsules(pose, shape))), cam)

    true, refit, pairs = hand_only(pose, shape), hand_only(fit.pose, fit.shape), []
    for b in range(n):
        try:
            center = preprocess(sensed.depth_mm[b], cam, crop).com_uvd
        except NoHandError:
            continue
        pairs.append([preprocess(x[b], cam, crop, center_uvd=center).depth for x in (refit, true)])
    drawn, real = np.array(pairs).transpose(1, 0, 2, 3)
    return {"frames": len(real), "seed": seed, "ik_residual_mm": float(fit.residual_mm.mean()),
            **agreement(drawn, real, info.crop.cube_mm, threshold)}  # fmt: skip


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="released Crossing Net folder (or a run folder)")
    p.add_argument("--store", type=Path, default=Path("bench/test.h5"), help="test store: poses and crops")
    p.add_argument("--n", type=int, default=500, help="first N frames of the store")
    p.add_argument("--sheet", type=Path, help="write the sheet PNG here (e.g. docs/generator.png)")
    p.add_argument(
        "--fg-threshold",
        type=float,
        default=FG_THRESHOLD,
        help="hand = normalised depth below this; not 1: tanh outputs never reach the crops' +1 background",
    )
    p.add_argument(
        "--hand-only", type=int, default=0, metavar="N",
        help="also N hands rendered here, their forearm's pixels left out (hand-silhouette IoU)",
    )  # fmt: skip
    p.add_argument(
        "--ik-ceiling", type=int, default=0, metavar="N",
        help="also N hands drawn again from the IK fit of their joints: how much of the silhouette the pose fixes",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=7, help="--hand-only / --ik-ceiling: the hands' seed")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")
    return p


def main(args: argparse.Namespace) -> dict:
    if args.n <= 0:
        raise ValueError(f"--n must be positive, got {args.n}")
    model = LatentPoseModel.from_pretrained(resolve_model_folder(args.checkpoint), args.device)
    if not isinstance(model, CrossingNet):
        raise TypeError(f"{args.checkpoint} holds a {model.kind} model, which has no generator")
    info = read_info(args.store)
    cfg = model.config
    if (info.crop.crop_px, info.crop.cube_mm, info.convention.name) != (
        cfg.crop_px,
        cfg.cube_mm,
        cfg.convention,
    ):
        raise ValueError(
            f"{args.store}: {info.crop.crop_px} px crops of {info.crop.cube_mm:g} mm, {info.convention.name} "
            f"joints; the model draws {cfg.crop_px} px of {cfg.cube_mm:g} mm, {cfg.convention}"
        )
    arrays = {k: v[: args.n] for k, v in load_arrays(args.store).items()}
    frames = frames_from_arrays(arrays, info, cfg.pose_unit_mm)
    real = frames.depth[:, 0].numpy()
    generated = generate_from_poses(model, frames)
    iou = silhouette_iou(generated, real, args.fg_threshold)
    fg_mm = foreground_error_mm(generated, real, cfg.cube_mm, args.fg_threshold)
    result = {
        "benchmark": "generator",
        "checkpoint": str(args.checkpoint),
        "store": str(args.store),
        "frames": len(real),
        "fg_threshold": args.fg_threshold,
        "iou": summary(iou),
        "fg_error_mm": summary(fg_mm),  # frames: those with hand pixels in both crops
    }
    if isinstance(model.generator, SkeletonGenerator):
        result["true_keypoints"] = true_keypoint_figures(model, frames, real, args.fg_threshold)
    if isinstance(model.generator, KinematicGenerator):
        result["kinematic_hand"] = kinematic_joint_figures(model, frames)
    if args.hand_only > 0:
        result["hand_only"] = hand_only_figures(model, info, args.hand_only, args.seed, args.fg_threshold)
    if args.ik_ceiling > 0:
        result["ik_ceiling"] = ik_ceiling(args.ik_ceiling, args.seed, info, args.fg_threshold)
    if args.sheet is not None:
        rows = np.linspace(0, len(real) - 1, min(SHEET_ROWS, len(real))).round().astype(int)
        with atomic_output(args.sheet) as tmp:
            sheet(real, generated, iou, fg_mm, rows, cfg.cube_mm, args.fg_threshold).save(tmp, format="PNG")
        result["sheet"] = str(args.sheet)
    print(
        f"IoU mean {result['iou']['mean']:.3f} median {result['iou']['median']:.3f}; "
        f"foreground error mean {result['fg_error_mm']['mean']} mm median {result['fg_error_mm']['median']} mm"
    )
    if "true_keypoints" in result:
        t = result["true_keypoints"]
        print(f"drawn from the true keypoints (its own lie {t['keypoint_error_px']:.2f} px from them): "
              f"IoU mean {t['iou']['mean']:.3f}; foreground error mean {t['fg_error_mm']['mean']} mm")  # fmt: skip
    if "kinematic_hand" in result:
        k = result["kinematic_hand"]
        print(f"the generator's hand: its joints {k['joint_error_mm']:.2f} mm from the labels, "
              f"{k['keypoint_error_px']:.2f} px in the crop")  # fmt: skip
    if "hand_only" in result:
        h = result["hand_only"]
        print(f"hand only ({h['frames']} fresh hands, forearm {h['forearm_share']:.0%} of the real hand pixels): "
              f"IoU mean {h['iou']['mean']:.3f} (with the forearm {h['iou_with_forearm']['mean']:.3f}); "
              f"foreground error mean {h['fg_error_mm']['mean']} mm")  # fmt: skip
    if "ik_ceiling" in result:
        c = result["ik_ceiling"]
        print(f"the same {c['frames']} hands drawn from the IK fit of their joints (hand only, clean): "
              f"IoU mean {c['iou']['mean']:.3f}; foreground error mean {c['fg_error_mm']['mean']} mm")  # fmt: skip
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(get_args_parser().parse_args())
