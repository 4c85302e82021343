"""Fuzzing the dataset readers (NYU, ICVL, MSRA), what they share (`raw.py`), the HDF5 store and
`convert`: any file gives valid frames or a clear error naming it (the contract of `tests/fuzzing.py`).

Inputs: NYU's joint_data.mat (MATLAB v5 and v7.3) and RGB depth PNGs, ICVL label lines, MSRA's
joint.txt and .bin, and stores, each truncated, bit-flipped, overwritten or replaced by random
bytes; labels of any values (NaN, infinite, behind the camera); a conversion over fuzzed labels.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import write_toy_store
from fuzzing import clear_outcome, fuzz_settings, mutated, timeout
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image
from test_nyu import write_joint_data, write_nyu_png

from crossingnets.camera import CAMERAS
from crossingnets.data import msra
from crossingnets.data.convert import convert_frames
from crossingnets.data.icvl import IcvlReader
from crossingnets.data.msra import MsraReader, read_joint_file
from crossingnets.data.nyu import NyuReader, read_joint_uvd
from crossingnets.data.preprocess import CropConfig
from crossingnets.data.raw import RawFrame, labelled_frame, read_image_array
from crossingnets.data.store import FIELDS, load_arrays, read_info

CROP = CropConfig(cube_mm=250.0, crop_px=16)
# Label values: mostly plausible uvd (or MSRA xyz), sometimes anything a corrupt file can hold.
LABEL_VALUES = st.one_of(st.floats(-1000, 1000), st.floats(allow_nan=True, allow_infinity=True))

pytestmark = [timeout(), pytest.mark.usefixtures("fuzz_warm")]


def _file_bytes(write, name: str, *args) -> bytes:
    """The bytes a test helper writes (it takes a path)."""
    with tempfile.TemporaryDirectory() as folder:
        write(Path(folder) / name, *args)
        return (Path(folder) / name).read_bytes()


def _frame_mm(height: int, width: int) -> np.ndarray:
    depth = np.zeros((height, width), np.float32)
    depth[height // 3 : height // 2, width // 3 : width // 2] = 700.0
    return depth


def check_frame(frame: RawFrame | ValueError, num_joints: int) -> None:
    """A frame a reader returned is what its docstring promises; an error is a BadFrameError."""
    if isinstance(frame, ValueError):
        assert type(frame).__name__ == "BadFrameError", f"{type(frame).__name__}: {frame}"
        return
    assert frame.depth_mm.dtype == np.float32 and frame.depth_mm.ndim == 2
    assert np.isfinite(frame.depth_mm).all() and frame.depth_mm.min() >= 0
    for joints in (frame.joints_uvd, frame.joints_xyz_mm):
        assert joints.shape == (num_joints, 3) and np.isfinite(joints).all()
    assert (frame.joints_uvd[:, 2] > 0).all(), "a joint at d <= 0 mm is behind the camera"


# -- NYU --------------------------------------------------------------------------------------------
JOINT_UVD = np.random.default_rng(0).uniform([200, 150, 650], [440, 330, 850], size=(3, 2, 36, 3))
MAT_BASES = {v: _file_bytes(write_joint_data, "joint_data.mat", JOINT_UVD, v) for v in ("v5", "v7.3")}
NYU_PNG = _file_bytes(write_nyu_png, "depth.png", _frame_mm(480, 640))


@fuzz_settings()
@given(version=st.sampled_from(sorted(MAT_BASES)), data=st.data())
def test_nyu_joint_data_mutated(fuzz_folder, version, data):
    path = fuzz_folder / "joint_data.mat"
    path.write_bytes(data.draw(mutated(MAT_BASES[version], header_bytes=1024)))
    uvd = clear_outcome(lambda: read_joint_uvd(path), str(path))
    if isinstance(uvd, np.ndarray):
        assert uvd.dtype == np.float64 and uvd.ndim == 3 and uvd.shape[1:] == (36, 3)


@pytest.fixture(scope="module")
def nyu_root(fuzz_folder: Path) -> Path:
    (fuzz_folder / "nyu" / "test").mkdir(parents=True)
    return fuzz_folder / "nyu"


@fuzz_settings(scale=0.5)
@given(
    labels=hnp.arrays(np.float64, (1, 2, 36, 3), elements=LABEL_VALUES),
    png=st.one_of(st.just(NYU_PNG), mutated(NYU_PNG)),
)
def test_nyu_frames_with_any_labels_and_mutated_depth(nyu_root, labels, png):
    split = nyu_root / "test"
    write_joint_data(split / "joint_data.mat", labels, "v5")
    for i in range(2):
        (split / f"depth_1_{i + 1:07d}.png").write_bytes(png)
    reader = NyuReader(nyu_root, "test")
    for i in range(len(reader)):
        check_frame(clear_outcome(lambda i=i: reader.load(i), f"depth_1_{i + 1:07d}.png"), 14)


# -- ICVL -------------------------------------------------------------------------------------------
ICVL_NAME = "seq/image_0000.png"


def _label_line(uvd: list[float]) -> str:
    return " ".join([ICVL_NAME, *(repr(x) for x in uvd)])


LABEL_LINES = st.one_of(
    st.lists(LABEL_VALUES, min_size=48, max_size=48).map(_label_line),  # a well-formed line
    st.lists(LABEL_VALUES, max_size=60).map(_label_line),  # any count of values
    st.lists(st.text(max_size=12), max_size=60).map(" ".join),  # any tokens
    st.text(),
)


@pytest.fixture(scope="module")
def icvl_root(fuzz_folder: Path) -> Path:
    depth = fuzz_folder / "icvl" / "Testing" / "Depth" / ICVL_NAME
    depth.parent.mkdir(parents=True)
    Image.fromarray(_frame_mm(240, 320).astype(np.uint16)).save(depth)
    return fuzz_folder / "icvl"


@fuzz_settings()
@given(
    text=st.one_of(
        st.tuples(st.lists(LABEL_LINES, max_size=6), st.sampled_from(["\n", "\r\n", "\r"])).map(
            lambda t: t[1].join(t[0]).encode("utf-8", "surrogatepass")
        ),
        st.binary(max_size=400),
    )
)
def test_icvl_label_lines(icvl_root, text):
    labels = icvl_root / "Testing" / "test_seq_1.txt"
    labels.write_bytes(text)
    reader = clear_outcome(lambda: IcvlReader(icvl_root, "test"), str(labels))
    if isinstance(reader, IcvlReader):
        for i in range(len(reader)):
            check_frame(clear_outcome(lambda i=i: reader.load(i), (str(labels), reader.frame_name(i))), 16)


# -- MSRA -------------------------------------------------------------------------------------------
def _msra_bin() -> bytes:
    depth = np.zeros((240, 320), np.float32)
    depth[100:120, 150:170] = 350.0
    return msra.encode_depth_bin(depth)


MSRA_BIN = _msra_bin()
XYZ_LINE = st.lists(LABEL_VALUES, min_size=63, max_size=63).map(lambda v: " ".join(repr(x) for x in v))


@fuzz_settings()
@given(
    count=st.one_of(st.integers(-2, 4).map(str), st.text(max_size=6)),
    lines=st.lists(st.one_of(XYZ_LINE, LABEL_LINES), max_size=3),
    depth=st.one_of(st.just(MSRA_BIN), mutated(MSRA_BIN, header_bytes=24)),
)
def test_msra_joint_txt_and_bin(fuzz_folder, count, lines, depth):
    gesture = fuzz_folder / "msra" / "P0" / "1"
    gesture.mkdir(parents=True, exist_ok=True)
    path = gesture / "joint.txt"
    path.write_text("\n".join([count, *lines]) + "\n", encoding="utf-8", errors="surrogatepass")
    labels = clear_outcome(lambda: read_joint_file(path), str(path))
    if isinstance(labels, ValueError):
        return
    for label in labels:
        assert isinstance(label, str) or (label.shape == (21, 3) and np.isfinite(label).all())
    for i in range(len(labels)):
        (gesture / msra.depth_file_name(i)).write_bytes(depth)
    reader = MsraReader(fuzz_folder / "msra", "test", "P0")
    for i in range(len(reader)):
        check_frame(clear_outcome(lambda i=i: reader.load(i), (str(path), msra.depth_file_name(i))), 21)


# -- what the readers share -------------------------------------------------------------------------
@fuzz_settings()
@given(data=st.one_of(mutated(NYU_PNG), st.binary(max_size=2000)))
def test_read_image_array(fuzz_folder, data):
    path = fuzz_folder / "image.png"
    path.write_bytes(data)
    pixels = clear_outcome(lambda: read_image_array(path, (640, 480)), str(path), max_mb=32)
    if isinstance(pixels, ValueError):
        assert type(pixels).__name__ == "BadFrameError"
    else:
        assert pixels.shape[:2] == (480, 640)


@fuzz_settings()
@given(
    camera=st.sampled_from(sorted(CAMERAS)),
    joints=hnp.arrays(np.float64, (14, 3), elements=LABEL_VALUES),
    labels_xyz=st.booleans(),
)
def test_labelled_frame_with_any_joints(camera, joints, labels_xyz):
    cam = CAMERAS[camera]
    depth = _frame_mm(cam.height_px, cam.width_px)
    given_joints = {"joints_xyz_mm" if labels_xyz else "joints_uvd": joints}
    check_frame(
        clear_outcome(lambda: labelled_frame("frame.png", depth, cam, **given_joints), "frame.png"), 14
    )


# -- the store --------------------------------------------------------------------------------------
STORE = _file_bytes(write_toy_store, "toy.h5", 8, 16)


@pytest.fixture(scope="module")
def store_contents(fuzz_folder: Path) -> tuple[dict, dict]:
    (fuzz_folder / "store_ok.h5").write_bytes(STORE)
    return read_info(fuzz_folder / "store_ok.h5").attrs, load_arrays(fuzz_folder / "store_ok.h5")


@fuzz_settings()
@given(data=mutated(STORE, header_bytes=2048))
def test_store_mutated_reads_back_exactly_or_not_at_all(fuzz_folder, store_contents, data):
    """Checksums (metadata, every chunk) and strings inside their attributes: damage is detected."""
    path = fuzz_folder / "store.h5"
    path.write_bytes(data)
    arrays = clear_outcome(lambda: (read_info(path).attrs, load_arrays(path)), str(path))
    if isinstance(arrays, ValueError):
        assert type(arrays).__name__ == "StoreError", f"{type(arrays).__name__}: {arrays}"
        return
    attrs, fields = arrays
    assert attrs == store_contents[0]
    assert all(np.array_equal(fields[k], store_contents[1][k]) for k in FIELDS)


# -- convert ----------------------------------------------------------------------------------------
@fuzz_settings(scale=0.5)
@given(
    labels=hnp.arrays(np.float64, (1, 2, 36, 3), elements=LABEL_VALUES),
    center=st.sampled_from(["detect", "labels"]),
)
def test_convert_skips_bad_frames_whatever_their_labels(fuzz_folder, nyu_root, labels, center):
    """`--skip-bad` leaves out what is bad: a store of the good frames, or an error if none is."""
    split = nyu_root / "test"
    write_joint_data(split / "joint_data.mat", labels, "v5")
    for i in range(2):
        (split / f"depth_1_{i + 1:07d}.png").write_bytes(NYU_PNG)
    out = fuzz_folder / "converted.h5"
    report = clear_outcome(
        lambda: convert_frames(NyuReader(nyu_root, "test"), out, CROP, {}, center=center, skip_bad=True, overwrite=True),
        str(out),
    )  # fmt: skip
    if not isinstance(report, ValueError):
        assert report.num_frames + len(report.skipped) == 2 and read_info(out).num_frames == report.num_frames


def test_mutations_start_from_files_the_readers_accept(fuzz_folder):
    """The fuzzed files are mutations of good ones (else every input would be an error)."""
    for version, data in MAT_BASES.items():
        (fuzz_folder / f"{version}.mat").write_bytes(data)
        np.testing.assert_array_equal(read_joint_uvd(fuzz_folder / f"{version}.mat"), JOINT_UVD[0])
    (fuzz_folder / "store_ok.h5").write_bytes(STORE)
    assert load_arrays(fuzz_folder / "store_ok.h5")["depth"].shape == (8, 1, 16, 16)
    assert read_info(fuzz_folder / "store_ok.h5").attrs["source"] == "toy"
    (fuzz_folder / "ok.bin").write_bytes(MSRA_BIN)
    assert msra.read_depth_bin(fuzz_folder / "ok.bin", CAMERAS["msra"]).max() == 350.0
    (fuzz_folder / "ok.png").write_bytes(NYU_PNG)
    assert read_image_array(fuzz_folder / "ok.png").shape == (480, 640, 3)
