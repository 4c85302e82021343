"""Pose estimation with released weights: one path from a depth frame to joints.

The CLI (`crossingnets.predict`), the explorer, `evaluate --checkpoint` and the benchmarks all take
it, each entering where its data starts: `HandPoseEstimator.predict_file` (a depth file: read) ->
`predict_raw` (a frame in its sensor's unit, with a camera named as a preset, a file or custom
intrinsics, and a given centre) -> `predict` (frames: depth unit -> mm, checked; a left hand
mirrored in; hand centre, metric-cube crop, `crossingnets.data.preprocess`) -> `predict_crops`
(crops as stores hold them: trunk -> posterior head -> VAE decoder; with the model's
`refine_iterations`, the latent then refined against the crop by the generator,
`crossingnets.refinement`). Each returns a `Prediction`:
joints in camera-frame mm and in uvd, the crop, its centre, the latent. The app's latent-space
tools (`decode_latent`, `generate_depth`, `smoothness_distance`) live here too.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch

from crossingnets.camera import HANDEDNESS, Handedness, Intrinsics, uvd_to_xyz, xyz_to_uvd
from crossingnets.checkpoint import WEIGHTS_FILE, LatentStats, load_latent_stats
from crossingnets.data.depth_file import DEFAULT_LIMITS, UploadLimits, load_depth, parse_center
from crossingnets.data.depth_units import sensor_frame_to_mm, to_mm
from crossingnets.data.preprocess import CropConfig, NoHandError, preprocess
from crossingnets.hand.conventions import Convention, get_convention
from crossingnets.models import CrossingNet, LatentPoseModel
from crossingnets.refinement import RefineConfig, refine_latents
from crossingnets.rotation import rotation_angles_deg, turn_index_maps, turn_points
from crossingnets.runtime import Network, load_network

_FLIP_U = np.array([-1.0, 1.0, 1.0])  # uvd and xyz: u -> (W - 1) - u, x -> -x


def resolve_model_folder(path: str | os.PathLike) -> Path:
    """A released-weights folder, or a training run folder holding one under `model/`."""
    path = Path(path)
    if not (path / WEIGHTS_FILE).is_file() and (path / "model" / WEIGHTS_FILE).is_file():
        return path / "model"
    return path


def joints_from_crop_frame(
    joints_mm: np.ndarray, com_uvd: np.ndarray, cam: Intrinsics
) -> tuple[np.ndarray, np.ndarray]:
    """Joints (B, J, 3) in mm relative to the crop centres com_uvd (B, 3) -> camera-frame xyz mm
    (B, J, 3) and full-frame uvd (B, J, 3)."""
    joints_xyz = joints_mm + uvd_to_xyz(com_uvd, cam)[:, None]
    return joints_xyz.astype(np.float32), xyz_to_uvd(joints_xyz, cam).astype(np.float32)


@dataclass(frozen=True)
class Prediction:
    """The estimate for one frame; for a batch every array gains a leading B axis.

    Joints and centre are in the frame of `camera` (x right, y down, z forward). The crop is what
    the network saw, so a caller draws on it (`crossingnets.data.preprocess.uvd_to_crop`) without
    preprocessing the frame again.
    """

    joints_xyz_mm: np.ndarray  # (J, 3) float32, camera frame
    joints_uvd: np.ndarray  # (J, 3) float32, full-frame px, px and depth mm
    crop: np.ndarray  # (S, S) float32 network input in [-1, 1], background +1
    center_uvd: np.ndarray  # (3,) float64 crop centre, px, px, mm
    center_xyz_mm: np.ndarray  # (3,) float64 crop centre, camera frame
    latent: np.ndarray  # (L,) float32 shared latent z_y
    camera: Intrinsics  # one for the whole batch

    def frame(self, i: int) -> Prediction:
        """Frame i of a batch."""
        arrays = (f.name for f in fields(self) if f.name != "camera")
        return replace(self, **{name: getattr(self, name)[i] for name in arrays})

    def mirrored(self, camera: Intrinsics) -> Prediction:
        """This prediction seen in the left-right mirror image, whose camera is `camera` (u -> W-1-u,
        x -> -x, the crop flipped). The latent stays: it describes the hand the network saw."""
        shift_u = np.array([camera.width_px - 1, 0.0, 0.0])
        return replace(
            self,
            joints_xyz_mm=(self.joints_xyz_mm * _FLIP_U).astype(np.float32),
            joints_uvd=(self.joints_uvd * _FLIP_U + shift_u).astype(np.float32),
            crop=np.ascontiguousarray(self.crop[..., ::-1]),
            center_uvd=self.center_uvd * _FLIP_U + shift_u,
            center_xyz_mm=self.center_xyz_mm * _FLIP_U,
            camera=camera,
        )


class HandPoseEstimator:
    """A trained model with its crop settings, on a device, in eval mode."""

    def __init__(
        self,
        model: LatentPoseModel,
        latent_stats: LatentStats | None = None,
        device: str | torch.device = "cpu",
        rotations: int | None = None,
        refine_iterations: int | None = None,
    ) -> None:
        """`rotations`: test-time in-plane rotations averaged (`crossingnets.rotation`); default
        the model's `test_rotations`, 1 for the fastest estimate. `refine_iterations`: the
        analysis-by-synthesis search after them (`crossingnets.refinement`); default the model's
        `refine_iterations`, 0 for none."""
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.latent_stats = latent_stats
        self.rotation_angles_deg = rotation_angles_deg(rotations or model.config.test_rotations)
        iterations = model.config.refine_iterations if refine_iterations is None else refine_iterations
        if iterations:
            self._crossingnet("refinement")  # a baseline has no generator to draw with
        self.refine = RefineConfig(iterations=iterations)

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike,
        device: str | torch.device = "cpu",
        rotations: int | None = None,
        refine_iterations: int | None = None,
    ) -> HandPoseEstimator:
        """Load released weights (or a run folder's `model/`) with their latent statistics."""
        folder = resolve_model_folder(path)
        model = LatentPoseModel.from_pretrained(folder)
        return cls(model, load_latent_stats(folder), device, rotations, refine_iterations)

    @functools.cached_property
    def network(self) -> Network:
        """The inference network as `crossingnets.runtime` runs it fastest (ONNX Runtime with the
        sparse posterior kernel; eager PyTorch as the fallback), built on first use from the
        weights as they are then."""
        return load_network(self.model, device=self.device)

    @property
    def crop(self) -> CropConfig:
        return CropConfig(cube_mm=self.model.config.cube_mm, crop_px=self.model.config.crop_px)

    @property
    def convention(self) -> Convention:
        return get_convention(self.model.config.convention)

    def _tensor(self, x: np.ndarray | torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(x, dtype=torch.float32).to(self.device)

    @torch.inference_mode()
    def predict_crops(
        self,
        crops: np.ndarray | torch.Tensor,
        center_uvd: np.ndarray,
        camera: Intrinsics,
        batch_size: int = 256,
        rotate: bool = True,
    ) -> Prediction:
        """Network crops (B, 1, S, S) (or (B, S, S)) in [-1, 1] with their centres (B, 3) uvd -> the
        batch's Prediction.

        Runs `batch_size` crops at a time (a whole test set fits in memory as crops, not as
        activations). The joints average the estimator's test-time rotations unless `rotate` is
        False; the latent is the unturned crop's, or with refinement (`refine_iterations`; not
        without `rotate`, a pass that only finds the palm) the refined one, which the joints decode.
        """
        return self._predict_crops(crops, center_uvd, camera, batch_size, rotate)[0]

    @torch.inference_mode()
    def predict_crops_with_spread(
        self,
        crops: np.ndarray | torch.Tensor,
        center_uvd: np.ndarray,
        camera: Intrinsics,
        batch_size: int = 256,
    ) -> tuple[Prediction, np.ndarray]:
        """`predict_crops`, and how far each frame's turned estimates spread: (B,) mm, the mean
        distance of their joints from the average (0 with one rotation). The turned crops are
        partly independent views: where they disagree, the average is a doubtful label."""
        return self._predict_crops(crops, center_uvd, camera, batch_size, True)

    def _predict_crops(
        self,
        crops: np.ndarray | torch.Tensor,
        center_uvd: np.ndarray,
        camera: Intrinsics,
        batch_size: int,
        rotate: bool,
    ) -> tuple[Prediction, np.ndarray]:
        x = torch.as_tensor(crops, dtype=torch.float32).cpu().numpy()
        if x.ndim == 3:
            x = x[:, None]
        s = self.crop.crop_px
        if x.ndim != 4 or x.shape[1:] != (1, s, s):
            raise ValueError(f"crops must have shape (B, 1, {s}, {s}), got {tuple(x.shape)}")
        center_uvd = np.asarray(center_uvd, dtype=np.float64).reshape(-1, 3)
        if len(center_uvd) != len(x):
            raise ValueError(f"got {len(x)} crops but {len(center_uvd)} centres")
        angles = self.rotation_angles_deg if rotate else self.rotation_angles_deg[:1]
        chunks = [self._estimate(x[i : i + batch_size], angles) for i in range(0, len(x), batch_size)]
        joints_mm, latent, spread = (np.concatenate(parts) for parts in zip(*chunks, strict=True))
        center_xyz = uvd_to_xyz(center_uvd, camera)
        if rotate and self.refine.iterations:
            joints_mm, latent = self._refine(x, center_xyz, joints_mm)
        joints_xyz, joints_uvd = joints_from_crop_frame(joints_mm, center_uvd, camera)
        prediction = Prediction(
            joints_xyz_mm=joints_xyz,
            joints_uvd=joints_uvd,
            crop=x[:, 0],
            center_uvd=center_uvd,
            center_xyz_mm=center_xyz,
            latent=latent,
            camera=camera,
        )
        return prediction, spread

    def _estimate(
        self, crops: np.ndarray, angles_deg: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Crops (B, 1, S, S) -> joints (B, J, 3) mm averaged over the crops turned by `angles_deg`
        (the first is 0), the unturned crops' latents (B, L) and the estimates' spread (B,) mm."""
        if len(angles_deg) == 1:
            return *self.network(crops), np.zeros(len(crops), np.float32)
        b, k, s = len(crops), len(angles_deg), crops.shape[-1]
        maps = self._turn_maps(s, tuple(angles_deg))
        flat = crops.reshape(b, 1, s * s)
        turned = np.where(maps >= 0, np.take_along_axis(flat, np.maximum(maps, 0)[None], 2), 1.0)
        joints, latent = self.network(turned.transpose(1, 0, 2).reshape(k * b, 1, s, s).astype(np.float32))
        angles = torch.as_tensor(angles_deg, dtype=torch.float32).repeat_interleave(b)
        back = turn_points(torch.from_numpy(joints), -angles).numpy().reshape(k, b, *joints.shape[1:])
        mean = back.mean(0)  # each estimate turned back, then averaged
        spread = np.linalg.norm(back - mean, axis=-1).mean(axis=(0, 2))
        return mean, latent[:b], spread.astype(np.float32)

    def _refine(
        self, crops: np.ndarray, center_xyz_mm: np.ndarray, joints_mm: np.ndarray, chunk: int = 64
    ) -> tuple[np.ndarray, np.ndarray]:
        """Crops (B, 1, S, S), their centres (B, 3) mm and estimated joints (B, J, 3) about them ->
        the joints decoded from the refined latents, and those latents (B, L)."""
        model = self._crossingnet("refinement")
        start = self._tensor(self.encode_joints(joints_mm))
        std = self._tensor(
            self.latent_stats.std if self.latent_stats is not None else np.ones(start.shape[1])
        )
        latent = torch.cat([
            refine_latents(model, self._tensor(crops[i : i + chunk]), self._tensor(center_xyz_mm[i : i + chunk]),
                           start[i : i + chunk], std, self.refine)
            for i in range(0, len(crops), chunk)
        ])  # fmt: skip
        return model.decode_latent(latent).cpu().numpy(), latent.cpu().numpy()

    @staticmethod
    @functools.cache
    def _turn_maps(size: int, angles_deg: tuple[float, ...]) -> np.ndarray:
        return turn_index_maps(size, np.array(angles_deg))

    def predict(
        self,
        depth_mm: np.ndarray,
        camera: Intrinsics,
        center_uvd: np.ndarray | None = None,
        *,
        depth_unit: str | float = "mm",
        handedness: Handedness = "right",
    ) -> Prediction:
        """Raw depth frame(s), (H, W) or (B, H, W), 0 = missing, in `depth_unit` (mm unless told:
        `crossingnets.data.depth_units`) -> their Prediction, without the batch axis for a single
        frame. Each frame is range-checked, so a frame in the wrong unit raises DepthUnitError
        naming the likely one. `center_uvd` (3,) or (B, 3), px and mm whatever the depth unit, skips
        the hand detection; a detected centre is moved to the predicted palm `recenter_passes`
        times (the model's config): the detection is pulled toward the forearm, 48 mm from the palm
        on average. A left hand is mirrored in and its prediction mirrored back
        (`Prediction.mirrored`): the models know right hands."""
        depth_mm = np.asarray(depth_mm)
        single = depth_mm.ndim == 2
        frames = depth_mm[None] if single else depth_mm
        if frames.ndim != 3:
            raise ValueError(f"depth must be (H, W) or (B, H, W) in mm, got shape {depth_mm.shape}")
        frames = [to_mm(f, depth_unit, max_depth_mm=self.crop.max_depth_mm) for f in frames]  # no copy in mm
        centers = None if center_uvd is None else np.asarray(center_uvd, float).reshape(len(frames), 3)
        out = self._predict_frames(frames, camera, centers, handedness)
        return out.frame(0) if single else out

    def _predict_frames(
        self,
        frames: Sequence[np.ndarray],
        camera: Intrinsics,
        centers: np.ndarray | None,
        handedness: Handedness,
    ) -> Prediction:
        """B frames (H, W) in mm, checked, with their centres (B, 3) uvd or None (detect) -> the
        batch's Prediction; a left hand goes through the mirror image."""
        if handedness not in HANDEDNESS:
            raise ValueError(f"handedness must be one of {HANDEDNESS}, got {handedness!r}")
        cam = camera
        if handedness == "left":
            frames, cam = [np.ascontiguousarray(f[:, ::-1]) for f in frames], camera.mirrored()
            centers = None if centers is None else centers * _FLIP_U + [camera.width_px - 1, 0.0, 0.0]
        passes = self.model.config.recenter_passes if centers is None else 0  # a given centre is kept
        out = self._predict_centred(
            frames, cam, [None] * len(frames) if centers is None else centers, not passes
        )
        for i in range(passes):  # a detected centre moves to the palm; the last pass is the estimate
            out = self._predict_centred(frames, cam, out.joints_uvd[:, self.convention.root], i == passes - 1)
        return out.mirrored(camera) if handedness == "left" else out

    def _predict_centred(
        self, frames: Sequence[np.ndarray], camera: Intrinsics, centers: Sequence, rotate: bool
    ) -> Prediction:
        """B frames (H, W) in mm cropped around their centres (B of (3,) uvd, or None: detected);
        `rotate`: average the test-time rotations (a pass that only finds the palm does not)."""
        crops = [preprocess(f, camera, self.crop, c) for f, c in zip(frames, centers, strict=True)]
        return self.predict_crops(
            np.stack([c.depth for c in crops]), np.stack([c.com_uvd for c in crops]), camera, rotate=rotate
        )

    def predict_raw(
        self,
        raw: np.ndarray,
        camera: str | os.PathLike | Intrinsics,
        custom: tuple[float, float, float, float] | None = None,
        center: tuple[float, float, float] | None = None,
        *,
        depth_unit: str | float = "mm",
        handedness: Handedness = "right",
        name: str = "depth frame",
    ) -> Prediction:
        """One (H, W) frame as its sensor stores it -> its Prediction.

        camera: a preset (`crossingnets.camera.PRESETS`) or camera file checked against the frame's
        size (scaled where the frame is an exact multiple), an Intrinsics, or "custom" with
        `custom` = (fx, fy, cx, cy) px; depth_unit: mm per stored unit or a name ("mm", "m",
        "0.125 mm"); center: (u px, v px, d mm) read by `parse_center` (d <= 0: from the image),
        None or zeros to detect; handedness: "left" mirrors the frame in and the joints out; name:
        what messages call the frame. Raises DepthImageError, NoHandError (DepthUnitError for a
        frame in the wrong unit) or ValueError, each naming what was wrong.
        """
        depth, cam = sensor_frame_to_mm(raw, camera, custom, depth_unit, name, self.crop.max_depth_mm)
        centers = parse_center(center, depth)
        try:
            return self._predict_frames(
                [depth], cam, None if centers is None else centers[None], handedness
            ).frame(0)
        except NoHandError as err:
            raise NoHandError(f"{name}: {err}") from None

    def predict_file(
        self,
        path: str | os.PathLike,
        camera: str | os.PathLike | Intrinsics,
        custom: tuple[float, float, float, float] | None = None,
        center: tuple[float, float, float] | None = None,
        limits: UploadLimits = DEFAULT_LIMITS,
        *,
        depth_unit: str | float = "mm",
        handedness: Handedness = "right",
    ) -> Prediction:
        """A depth file (`crossingnets.data.depth_file.load_depth`'s formats) -> its Prediction;
        the other arguments as `predict_raw` reads them."""
        name = f"depth image {Path(path).name}"
        return self.predict_raw(
            load_depth(path, limits),
            camera,
            custom,
            center,
            depth_unit=depth_unit,
            handedness=handedness,
            name=name,
        )

    @torch.inference_mode()
    def decode_latent(self, latent: np.ndarray | torch.Tensor) -> np.ndarray:
        """Latents (B, L) -> joints (B, J, 3) in mm relative to the crop centre: the public decoder
        (the model's pose units stay inside the model)."""
        return self.model.decode_latent(self._tensor(latent)).cpu().numpy()

    @torch.inference_mode()
    def encode_joints(self, joints_mm: np.ndarray) -> np.ndarray:
        """(B, J, 3) joints, mm about the crop centre -> (B, L) float64 latents: the pose VAE's
        encoding (the inverse of `decode_latent` up to the VAE's reconstruction error)."""
        joints = np.asarray(joints_mm, np.float64)
        root = joints[:, self.convention.root]
        unit = self.model.config.pose_unit_mm
        pose = ((joints - root[:, None]) / unit).reshape(len(joints), -1)
        z = self.model.encode_pose(self._tensor(pose), self._tensor(root / unit))
        return z.cpu().numpy().astype(np.float64)

    def _crossingnet(self, what: str) -> CrossingNet:
        if not isinstance(self.model, CrossingNet):
            raise TypeError(f"{what} needs a Crossing Net; this is a {self.model.kind} baseline")
        return self.model

    @torch.inference_mode()
    def generate_depth(
        self, latent: np.ndarray | torch.Tensor, center_xyz_mm: np.ndarray | None = None
    ) -> np.ndarray:
        """Latents (B, L) -> generated crops (B, S, S) in [-1, 1], Gen(Ali(z)); a generator that sees
        the crop centre (kinematic, `gen_view`) draws around `center_xyz_mm` (B, 3), camera frame
        (None: on the optical axis), with the perspective of a crop taken there."""
        center = None if center_xyz_mm is None else self._tensor(np.reshape(center_xyz_mm, (-1, 3)))
        return self._crossingnet("generate_depth").render(self._tensor(latent), center)[:, 0].cpu().numpy()

    @torch.inference_mode()
    def smoothness_distance(self, crop_a: np.ndarray, crop_b: np.ndarray) -> np.ndarray:
        """smo(a, b) = f(a) - f(b) (B, L) for crops (B, S, S) or (B, 1, S, S): the smoothness head's
        estimate of z_a - z_b; its norm is the distance."""
        a, b = (self._tensor(c).reshape(-1, 1, *np.shape(c)[-2:]) for c in (crop_a, crop_b))
        return self._crossingnet("smoothness_distance").smoothness(a, b).cpu().numpy()
