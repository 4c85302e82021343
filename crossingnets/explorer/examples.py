"""The example frames the app ships (`app/examples/`): synthetic raw depth frames, one per format,
each with its labels.

They come from the project's own generator (`crossingnets.data.synthetic`), so they carry no
dataset licence, and are written in the formats a user uploads: 16-bit PNGs in mm and NYU's
RGB-encoded PNG (NYU camera, 640x480), and an MSRA `.bin` (MSRA camera, 320x240, the hand's box
only). Beside each frame, `<frame>.json` holds its labels: the joints of the hand the generator
drew, in the camera frame (mm), in every joint convention, so the app can show the error of each
joint of an estimate whatever convention its model has.

The shipped frames were rendered by the generator of commit 6a8cccc (it reproduces them: two
bitwise, three within 0.2 % of their pixels). Today's renderer draws fuller fingers and no body
behind the hand, so it would render other frames, but it samples the same hands from the same
seed, joint for joint (checked against that commit's code: equal to the last bit), so
`--labels-only` writes the shipped frames' labels without touching them. Regenerate everything
(new frames) with `python -m crossingnets.explorer.examples app/examples`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from crossingnets.camera import CAMERAS
from crossingnets.data import msra, nyu
from crossingnets.data.depth_file import READERS
from crossingnets.data.synthetic import GenerateConfig, render_hands
from crossingnets.files import atomic_output
from crossingnets.hand.conventions import CONVENTIONS, get_convention
from crossingnets.hand.kinematics import forward_kinematics, landmarks_to_joints
from crossingnets.hand.sampler import sample_hands

EXAMPLE_SEED = 5
LABELS_SUFFIX = ".json"  # synthetic_nyu_0.png -> synthetic_nyu_0.png.json


def example_camera(path: str | Path) -> str:
    """The camera preset of an example frame: MSRA for `.bin`, NYU for the PNGs."""
    return "msra" if Path(path).suffix.lower() == ".bin" else "nyu"


def is_depth_file(path: str | Path) -> bool:
    """A file the depth reader takes by its extension (not a frame's labels, nor anything else)."""
    return Path(path).is_file() and Path(path).suffix.lower() in READERS


def example_frames(folder: str | Path) -> list[Path]:
    """The depth frames of an examples folder, by name (labels and other files left out)."""
    return sorted(p for p in Path(folder).iterdir() if is_depth_file(p))


def labels_path(frame: str | Path) -> Path:
    return Path(frame).with_name(Path(frame).name + LABELS_SUFFIX)


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes: how an uploaded copy of an example is recognised, whatever its name."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass(frozen=True)
class FrameLabels:
    """The true joints of a frame, in the frame of the camera it was taken with (mm)."""

    camera: str  # the camera preset the frame was rendered with
    joints_xyz_mm: dict[str, np.ndarray]  # convention name -> (J, 3)

    def to_json(self, frame: str, source: str) -> dict:
        joints = {k: np.round(v.astype(np.float64), 3).tolist() for k, v in self.joints_xyz_mm.items()}
        return {"frame": frame, "camera": self.camera, "source": source, "joints_xyz_mm": joints}


def read_labels(frame: str | Path) -> FrameLabels | None:
    """The labels beside a frame (`labels_path`), or None where it has none; a labels file that
    does not hold (J, 3) joints of a known convention raises ValueError naming it."""
    path = labels_path(frame)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        joints = {name: np.asarray(xyz, np.float64) for name, xyz in record["joints_xyz_mm"].items()}
        camera = str(record["camera"])
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"labels {path.name}: not a labels file ({type(err).__name__}: {err})") from None
    for name, xyz in joints.items():
        if name not in CONVENTIONS or xyz.shape != (CONVENTIONS[name].num_joints, 3):
            raise ValueError(f"labels {path.name}: {name!r} joints of shape {xyz.shape} match no convention")
    if camera not in CAMERAS:
        raise ValueError(f"labels {path.name}: unknown camera {camera!r}; expected one of {sorted(CAMERAS)}")
    return FrameLabels(camera, joints)


@dataclass(frozen=True)
class ExampleFrame:
    name: str  # file name in the examples folder
    depth_mm: np.ndarray  # (H, W) raw frame, 0 = missing
    labels: FrameLabels


def render_examples(seed: int = EXAMPLE_SEED) -> list[ExampleFrame]:
    """The example hands, drawn and rendered as `render_batch` does (so the seed stream is the
    one the shipped frames came from): four NYU frames, then one MSRA frame."""
    rng = np.random.default_rng(seed)
    cfg = GenerateConfig()
    names = {
        "nyu": ["synthetic_nyu_0.png", "synthetic_nyu_1.png", "synthetic_nyu_2.png", "synthetic_nyu_rgb.png"],
        "msra": ["synthetic_msra.bin"],
    }
    out = []
    for camera, frame_names in names.items():
        cam = CAMERAS[camera]
        pose, shape = sample_hands(rng, len(frame_names), cam, cfg.sampler)
        depth = render_hands(rng, pose, shape, get_convention(camera), cam, cfg).depth_mm
        landmarks = forward_kinematics(pose, shape)
        joints = {
            c: np.asarray(landmarks_to_joints(landmarks, conv), np.float32) for c, conv in CONVENTIONS.items()
        }
        for i, name in enumerate(frame_names):
            labels = FrameLabels(camera, {c: j[i] for c, j in joints.items()})
            out.append(ExampleFrame(name, depth[i], labels))
    return out


def write_frame(example: ExampleFrame, path: Path) -> None:
    """A frame in its file's format: 16-bit PNG (mm), NYU's RGB PNG, or MSRA's .bin."""
    if path.suffix == ".bin":
        path.write_bytes(msra.encode_depth_bin(example.depth_mm))
    elif path.stem.endswith("_rgb"):
        Image.fromarray(nyu.encode_depth(example.depth_mm)).save(path, optimize=True)
    else:
        Image.fromarray(np.rint(example.depth_mm).astype(np.uint16)).save(path, optimize=True)


def write_examples(folder: str | Path, seed: int = EXAMPLE_SEED, frames: bool = True) -> list[Path]:
    """Write the example frames (unless `frames` is False) and their labels into `folder` -> the
    paths written (three NYU PNGs, one NYU RGB, one MSRA bin, each followed by its labels)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    source = f"crossingnets.explorer.examples, seed {seed}: the joints of the hand the generator drew"
    for example in render_examples(seed):
        path = folder / example.name
        if frames:
            write_frame(example, path)
            paths.append(path)
        with atomic_output(labels_path(path)) as tmp:
            tmp.write_text(json.dumps(example.labels.to_json(example.name, source)) + "\n")
        paths.append(labels_path(path))
    return paths


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--seed", type=int, default=EXAMPLE_SEED)
    parser.add_argument(
        "--labels-only", action="store_true", help="write the labels beside the frames there, not the frames"
    )
    args = parser.parse_args()
    for path in write_examples(args.folder, args.seed, frames=not args.labels_only):
        print(path, path.stat().st_size, "bytes")
