"""The example frames the app ships (`app/examples/`): synthetic raw depth frames, one per format.

They come from the project's own generator (`crossingnets.data.synthetic.render_batch`), so they
carry no dataset licence, and are written in the formats a user uploads: 16-bit PNGs in mm and
NYU's RGB-encoded PNG (NYU camera, 640x480), and an MSRA `.bin` (MSRA camera, 320x240, the hand's
box only). Regenerate with `python -m crossingnets.explorer.examples app/examples`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from crossingnets.camera import CAMERAS
from crossingnets.data import msra, nyu
from crossingnets.data.synthetic import GenerateConfig, render_batch
from crossingnets.hand.conventions import get_convention

EXAMPLE_SEED = 5


def example_camera(path: str | Path) -> str:
    """The camera preset of an example frame: MSRA for `.bin`, NYU for the PNGs."""
    return "msra" if Path(path).suffix.lower() == ".bin" else "nyu"


def write_examples(folder: str | Path, seed: int = EXAMPLE_SEED) -> list[Path]:
    """Write the example frames into `folder` -> their paths (three NYU PNGs, one NYU RGB, one MSRA bin)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cfg = GenerateConfig()
    nyu_frames = render_batch(rng, 4, get_convention("nyu"), CAMERAS["nyu"], cfg).depth_mm
    msra_frame = render_batch(rng, 1, get_convention("msra"), CAMERAS["msra"], cfg).depth_mm[0]
    paths = []
    for i, depth in enumerate(nyu_frames[:3]):
        paths.append(folder / f"synthetic_nyu_{i}.png")
        Image.fromarray(np.rint(depth).astype(np.uint16)).save(paths[-1], optimize=True)
    paths.append(folder / "synthetic_nyu_rgb.png")
    Image.fromarray(nyu.encode_depth(nyu_frames[3])).save(paths[-1], optimize=True)
    paths.append(folder / "synthetic_msra.bin")
    paths[-1].write_bytes(msra.encode_depth_bin(msra_frame))
    return paths


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--seed", type=int, default=EXAMPLE_SEED)
    args = parser.parse_args()
    for path in write_examples(args.folder, args.seed):
        print(path, path.stat().st_size, "bytes")
