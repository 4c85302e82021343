"""`crossingnets convert`: a raw NYU / ICVL / MSRA dataset -> the HDF5 store, frame by frame.

Every dataset module (`nyu.py`, `icvl.py`, `msra.py`) provides a reader with the `FrameReader`
interface of `raw.py`: labels are indexed up front (they are small), depth frames are read one
at a time in `load(i)`, so a raw dataset is never held in memory. Every frame then goes through
the one preprocessing path (`crossingnets.data.preprocess.preprocess`) that `generate` uses, and
batches are appended to a `StoreWriter`, which writes to a temporary name and renames it only
when the whole conversion succeeded: an interrupted convert leaves nothing under the final name.

Usage:
    crossingnets convert nyu ROOT --split test --out nyu_test.h5 [--camera 1]
    crossingnets convert icvl ROOT --split train --out icvl_train.h5
    crossingnets convert msra ROOT --split test --subject P0 --out msra_p0_test.h5
Options: --center {detect,labels,FILE}, --limit N, --skip-bad, --cube-mm, --crop-px, --overwrite,
--depth-unit (a copy whose depth files were re-saved in another unit than the dataset's mm).
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import scipy.io
from tqdm import tqdm

from crossingnets.camera import Intrinsics, xyz_to_uvd
from crossingnets.data import icvl, msra, nyu
from crossingnets.data.depth_units import parse_depth_unit, to_mm
from crossingnets.data.preprocess import CropConfig, NoHandError, preprocess
from crossingnets.data.raw import SPLITS, BadFrameError, FrameReader, RawFrame
from crossingnets.data.store import StoreWriter
from crossingnets.files import atomic_output

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Hand centres


def labels_center_uvd(frame: RawFrame, cam: Intrinsics) -> np.ndarray:
    """Mean of all labelled joints in xyz, projected to uvd: an oracle centre for upper bounds."""
    return xyz_to_uvd(frame.joints_xyz_mm.mean(axis=0), cam)


def read_centers(path: Path) -> np.ndarray:
    """(N, 3) hand centres (u, v, d mm) from a .mat holding one (N, 3) array or a text file."""
    if not path.is_file():
        raise FileNotFoundError(f"centre file {path} not found")
    if path.suffix.lower() == ".mat":
        if h5py.is_hdf5(path):
            with h5py.File(path, "r") as f:
                arrays = {k: f[k][()].T for k in f if isinstance(f[k], h5py.Dataset)}  # MATLAB column-major
        else:
            arrays = {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
        if len(arrays) != 1:
            raise ValueError(
                f"centre file {path} holds variables {sorted(arrays)}; expected exactly one (N, 3) array"
            )
        centers = np.asarray(next(iter(arrays.values())), dtype=np.float64)
    else:
        centers = np.loadtxt(path, dtype=np.float64, ndmin=2)
    if centers.ndim != 2 or centers.shape[1] != 3 or not np.isfinite(centers).all():
        raise ValueError(
            f"centre file {path} must hold finite (N, 3) u, v, d rows, got shape {centers.shape}"
        )
    return centers


CenterFn = Callable[[int, RawFrame], "np.ndarray | None"]  # (frame index, frame) -> uvd, None = detect


def center_function(center: str, reader: FrameReader) -> CenterFn:
    """`--center`: "detect" (from the depth), "labels" (mean of the joints), or a file of N rows."""
    if center == "detect":
        return lambda index, frame: None
    if center == "labels":
        return lambda index, frame: labels_center_uvd(frame, reader.camera)
    centers = read_centers(Path(center))
    if len(centers) != len(reader):
        raise ValueError(
            f"centre file {center} has {len(centers)} rows but the split has {len(reader)} frames"
        )
    return lambda index, frame: centers[index]


# ---------------------------------------------------------------------------------------------
# The convert loop


@dataclass
class ConvertReport:
    path: Path
    num_frames: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (frame name, reason)


def convert_frames(
    reader: FrameReader,
    out: str | os.PathLike,
    crop: CropConfig,
    attrs: dict,
    center: str = "detect",
    limit: int | None = None,
    skip_bad: bool = False,
    overwrite: bool = False,
    batch_frames: int = 64,
    depth_unit: str | float = "mm",
) -> ConvertReport:
    """Preprocess frames 0..limit of `reader` into a new store at `out`.

    A bad frame (BadFrameError, or no hand pixel in the cube) stops the conversion, nothing is
    written, unless `skip_bad`: then it is logged, left out, and listed in `<out>.skipped.txt`
    (`skipped_path`), so frame i of the store need not be frame i of the split. `depth_unit`: what
    the reader's depth values are in (the datasets ship mm); each frame is scaled to mm and
    range-checked, so a copy in another unit fails with the unit that would fit
    (`crossingnets.data.depth_units`).
    """
    center_of = center_function(center, reader)
    count = len(reader) if limit is None else min(limit, len(reader))
    report = ConvertReport(path=Path(out))
    batch: dict[str, list[np.ndarray]] = {k: [] for k in ("depth", "joints_xyz", "joints_uvd", "com_uvd")}
    unit_mm = parse_depth_unit(depth_unit)
    meta = {**attrs, "center": center, "limit": -1 if limit is None else limit, "skip_bad": skip_bad}
    meta["depth_unit_mm"] = unit_mm
    with StoreWriter(out, reader.convention, reader.camera, crop, meta, overwrite=overwrite) as writer:
        bar = tqdm(range(count), desc=f"convert {reader.convention.name}", unit="frame")
        for index in bar:
            try:
                frame = reader.load(index)
                depth_mm = to_mm(frame.depth_mm, unit_mm, "depth frame", crop.max_depth_mm)
                sample = preprocess(depth_mm, reader.camera, crop, center_of(index, frame))
            except (BadFrameError, NoHandError) as err:
                if not skip_bad:
                    raise BadFrameError(f"frame {index} ({reader.frame_name(index)}): {err}") from err
                log.warning("skipping frame %d (%s): %s", index, reader.frame_name(index), err)
                report.skipped.append((reader.frame_name(index), str(err)))
                bar.set_postfix(skipped=len(report.skipped))
                continue
            batch["depth"].append(sample.depth[None])
            batch["joints_xyz"].append(frame.joints_xyz_mm)
            batch["joints_uvd"].append(frame.joints_uvd)
            batch["com_uvd"].append(sample.com_uvd)
            if len(batch["depth"]) == batch_frames:
                writer.append(**{k: np.stack(v) for k, v in batch.items()})
                batch = {k: [] for k in batch}
        if batch["depth"]:
            writer.append(**{k: np.stack(v) for k, v in batch.items()})
        if writer.num_frames == 0:
            raise ValueError(f"no frame of the {count} read could be converted; nothing written to {out}")
        report.num_frames = writer.num_frames
    if report.skipped:
        write_skipped(report)
    return report


def skipped_path(store: Path) -> Path:
    """The list of frames a `--skip-bad` conversion left out, beside its store."""
    return store.with_name(store.name + ".skipped.txt")


def write_skipped(report: ConvertReport) -> Path:
    """Write `name<TAB>reason` lines of the skipped frames, atomically; frame i of the store is
    then the i-th frame of the split that is not in this list."""
    path = skipped_path(report.path)
    text = "".join(f"{name}\t{' '.join(reason.split())}\n" for name, reason in report.skipped)
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# The subcommand

# Each dataset module's `open_reader(root, split, *, camera, subject)`.
OPEN_READER = {"nyu": nyu.open_reader, "icvl": icvl.open_reader, "msra": msra.open_reader}


def open_reader(
    dataset: str, root: Path, split: str, *, camera: int | None, subject: str | None
) -> FrameReader:
    """The reader of `dataset`; options a dataset does not have are refused, never ignored."""
    if dataset not in OPEN_READER:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {sorted(OPEN_READER)}")
    return OPEN_READER[dataset](root, split, camera=camera, subject=subject)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=sorted(OPEN_READER), help="raw dataset format")
    parser.add_argument("root", type=Path, help="dataset root folder, as the dataset ships")
    parser.add_argument("--split", choices=SPLITS, required=True)
    parser.add_argument(
        "--subject", help="MSRA: the held-out subject (P0..P8); test = it, train = the others"
    )
    parser.add_argument("--camera", type=int, help="NYU: Kinect 1, 2 or 3 (default 1, the evaluated one)")
    parser.add_argument("--out", type=Path, required=True, help="the HDF5 store to write")
    parser.add_argument(
        "--center",
        default="detect",
        help="hand centres: 'detect' (from the depth, default), 'labels' (mean of the labelled "
        "joints, for upper bounds) or a .mat/.txt file of one (u, v, d) row per frame of the split",
    )
    parser.add_argument("--cube-mm", type=float, help="crop cube side (default: the dataset convention's)")
    parser.add_argument("--crop-px", type=int, default=CropConfig.crop_px, help="crop side in pixels")
    parser.add_argument("--limit", type=int, help="convert only the first N frames, for quick looks")
    parser.add_argument("--skip-bad", action="store_true", help="log and skip bad frames instead of stopping")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument(
        "--depth-unit",
        default="mm",
        help="unit of the depth files when not the dataset's mm (m, 0.1 mm, 0.125, ...)",
    )


def main(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit <= 0:
        raise SystemExit(f"--limit must be positive, got {args.limit}")
    reader = open_reader(args.dataset, args.root, args.split, camera=args.camera, subject=args.subject)
    cube_mm = reader.convention.default_cube_mm if args.cube_mm is None else args.cube_mm
    crop = CropConfig(cube_mm=cube_mm, crop_px=args.crop_px)
    attrs = {
        "source": args.dataset,
        "split": args.split,
        "root": str(args.root),
        "reader_options": {"camera": args.camera, "subject": args.subject},  # None = not given
    }
    report = convert_frames(
        reader, args.out, crop, attrs, center=args.center, limit=args.limit,
        skip_bad=args.skip_bad, overwrite=args.overwrite, depth_unit=args.depth_unit,
    )  # fmt: skip
    log.info("wrote %d frames to %s (%d skipped)", report.num_frames, report.path, len(report.skipped))
    return 0
