"""`crossingnets generate`: synthetic depth hands into an HDF5 store, from the fixed generator or
domain-randomised (`--randomize`: wider hand shapes, a random sensor per chunk, crops centred as
inference centres them; the release recipe's training data)."""

from __future__ import annotations

import argparse

from crossingnets.data.randomized import RandomizeConfig, generate_randomized
from crossingnets.data.synthetic import GenerateConfig, generate
from crossingnets.files import atomic_output
from crossingnets.hand.sampler import SamplerConfig


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--convention", default="nyu", choices=["nyu", "icvl", "msra"], help="joints and camera")
    p.add_argument("-n", type=int, required=True, help="number of frames")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output .h5 store")
    p.add_argument("--cube-mm", type=float, default=None, help="crop cube side (default: per convention)")
    p.add_argument("--crop-px", type=int, default=128)
    p.add_argument("--sheet", default=None, help="also write a PNG contact sheet of 32 samples")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument(
        "--randomize", action="store_true", help="domain-randomised hands, sensors and crop centres"
    )
    p.add_argument("--workers", type=int, default=1, help="--randomize: rendering processes")
    p.add_argument(
        "--max-palm-tilt-deg", type=float, default=SamplerConfig.max_palm_tilt_deg,
        help="palm normal within this of pointing at the camera (180: every side of the hand, the back too)",
    )  # fmt: skip


def main(args: argparse.Namespace) -> int:
    try:
        sampler = SamplerConfig(max_palm_tilt_deg=args.max_palm_tilt_deg)
    except ValueError as err:
        raise SystemExit(f"crossingnets generate: --max-palm-tilt-deg: {err}") from None
    cfg = GenerateConfig(
        convention=args.convention, cube_mm=args.cube_mm, crop_px=args.crop_px, sampler=sampler
    )
    if args.randomize:
        if args.sheet:
            raise SystemExit("crossingnets generate: --sheet is not available with --randomize")
        generate_randomized(
            args.out, args.n, args.seed, RandomizeConfig(base=cfg), args.workers, args.overwrite
        )
    elif args.sheet:  # the sheet is written under a temporary name too, renamed once complete
        with atomic_output(args.sheet) as sheet:
            generate(args.out, args.n, args.seed, cfg, overwrite=args.overwrite, sheet=sheet)
    else:
        generate(args.out, args.n, args.seed, cfg, overwrite=args.overwrite)
    return 0
