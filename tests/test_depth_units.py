"""Depth units: parsing, scaling, the wrong-unit message, and the SR305 sample frames end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from crossingnets import cli
from crossingnets.camera import CAMERAS, PRESETS
from crossingnets.data.convert import convert_frames
from crossingnets.data.depth_units import (
    MIN_HAND_PIXELS,
    DepthUnitError,
    check_hand_range,
    parse_depth_unit,
    sensor_frame_to_mm,
    to_mm,
    unit_label,
)
from crossingnets.data.preprocess import CropConfig, NoHandError, preprocess
from crossingnets.data.raw import BadFrameError, RawFrame, labelled_frame
from crossingnets.data.store import load_arrays, read_info
from crossingnets.hand.conventions import get_convention
from crossingnets.inference import HandPoseEstimator

CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "cn-nyu-synth"
SR305_FRAMES = ("20210326-230536_30.png", "20210326-230536_90.png")


@pytest.mark.parametrize(
    ("unit", "mm"),
    [
        ("mm", 1.0), ("m", 1000.0), ("cm", 10.0), ("0.1 mm", 0.1), ("0.125 mm", 0.125), ("0.125", 0.125),
        ("0.125mm", 0.125), ("1/8 mm", 0.125), (" 1/8 ", 0.125), ("0.000125 m", 0.125), ("125 um", 0.125),
        ("M", 1000.0), ("2.5e-1", 0.25), (0.125, 0.125), (1, 1.0),
    ],
)  # fmt: skip
def test_parse_depth_unit(unit, mm):
    assert parse_depth_unit(unit) == pytest.approx(mm)


@pytest.mark.parametrize("unit", ["", "feet", "mm mm", "/8", "1/0", "-1", 0, -0.5, float("nan"), "1e999"])
def test_bad_depth_units_are_refused(unit):
    with pytest.raises(ValueError, match="depth unit"):
        parse_depth_unit(unit)


def test_unit_labels():
    assert [unit_label(u) for u in (1.0, 1000.0, 0.125, 0.05)] == ["mm", "m", "0.125 mm", "0.05 mm"]


def _hand(value: float, shape=(48, 64)) -> np.ndarray:
    """A frame with a 10x10 'hand' of the given raw value, the rest missing."""
    frame = np.zeros(shape, np.float32)
    frame[10:20, 20:30] = value
    return frame


def test_to_mm_scales_and_keeps_missing_pixels():
    depth = to_mm(_hand(4800), "0.125 mm")
    assert depth.dtype == np.float32 and depth.max() == 600 and (depth == 0).sum() == 48 * 64 - 100
    np.testing.assert_array_equal(to_mm(_hand(0.6), "m"), to_mm(_hand(600), "mm"))
    with pytest.raises(ValueError, match="NaN"):
        to_mm(np.full((4, 4), np.nan), "mm")


def test_an_sr305_frame_read_as_mm_names_the_likely_unit():
    with pytest.raises(DepthUnitError) as err:
        to_mm(_hand(4800) + np.roll(_hand(7000), 30, axis=1), "mm", "depth image a.png")
    message = str(err.value)
    assert message.startswith("depth image a.png: fewer than 20 pixels lie within 100-2,000 mm")
    assert "no hand in range" in message and "values are 4,800-7,000" in message
    # every unit that puts the values in range, the SR300/SR305's first; metres would not
    assert message.index("RealSense SR300/SR305 frame in 1/8 mm, choose 0.125 mm") < message.index("0.25 mm")
    assert "choose 0.1 mm" in message and "metres" not in message
    assert isinstance(err.value, NoHandError)  # callers that handle 'no hand' handle it


def test_a_metres_frame_read_as_mm_suggests_metres_only():
    with pytest.raises(
        DepthUnitError, match=r"values are 0\.65-0\.65.*if this is a frame in metres, choose m$"
    ):
        to_mm(_hand(0.65), "mm")


def test_the_camera_unit_comes_first_and_hopeless_frames_say_so():
    with pytest.raises(DepthUnitError) as err:  # 1,200 read in m: 1.2 km
        check_hand_range(_hand(1200) * 1000, 1000.0, camera_unit_mm=1.0)
    assert "read in m as 1,200,000-1,200,000 mm" in str(err.value)
    assert str(err.value).split(": ", 2)[-1].startswith("if this is a frame in mm (Kinect")
    frame = _hand(4800)
    with pytest.raises(DepthUnitError) as err:
        check_hand_range(frame, 1.0, camera_unit_mm=0.25)  # an L515: its own unit first
    assert str(err.value).split(": ", 2)[-1].startswith("if this is a RealSense L515 frame in 1/4 mm")
    with pytest.raises(DepthUnitError, match="no depth unit puts them there"):
        check_hand_range(_hand(5e7), 1.0)
    with pytest.raises(DepthUnitError, match="every pixel is 0"):
        check_hand_range(np.zeros((8, 8), np.float32), 1.0)


def test_a_few_stray_pixels_are_not_a_hand():
    frame = _hand(4800)
    frame[0, : MIN_HAND_PIXELS - 1] = 500.0  # flying pixels in range
    with pytest.raises(DepthUnitError):
        check_hand_range(frame, 1.0)
    frame[1, 0] = 500.0
    check_hand_range(frame, 1.0)


def test_sensor_frame_to_mm_uses_the_preset_unit_in_its_advice():
    raw = np.zeros((480, 640), np.float32)
    raw[200:260, 300:360] = 4800
    with pytest.raises(DepthUnitError) as err:
        sensor_frame_to_mm(raw, "l515", unit="mm")
    assert str(err.value).split(": ", 2)[-1].startswith("if this is a RealSense L515")
    depth, cam = sensor_frame_to_mm(raw, "sr305", unit=0.125)
    assert depth.max() == 600 and cam == PRESETS["sr305"].modes[0]


# -- the acceptance: the two SR305 frames, and a frame in metres -----------------------------


@pytest.fixture(scope="module")
def estimator() -> HandPoseEstimator:
    return HandPoseEstimator.from_pretrained(CHECKPOINT)


def test_sr305_frames_predict_with_their_unit_and_camera(shared_data, estimator, capsys):
    paths = [shared_data / "depth_samples" / "sr305_custom" / name for name in SR305_FRAMES]
    with pytest.raises(
        SystemExit, match="if this is a RealSense SR300/SR305 frame in 1/8 mm, choose 0.125 mm"
    ):
        cli.main(["predict", "--checkpoint", str(CHECKPOINT), str(paths[0]), "--camera", "sr305"])
    argv = [
        "predict",
        "--checkpoint",
        str(CHECKPOINT),
        *map(str, paths),
        "--camera",
        "sr305",
        "--depth-unit",
        "0.125",
    ]
    assert cli.main(argv) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [Path(r["image"]).name for r in records] == list(SR305_FRAMES)
    for record, path in zip(records, paths, strict=True):
        raw = np.asarray(Image.open(path), np.float64)
        u, v, d = record["com_uvd"]
        # the crop is centred on the hand: its depth is what the frame holds there, 1/8 mm -> mm
        patch = raw[int(v) - 3 : int(v) + 4, int(u) - 3 : int(u) + 4]
        assert abs(np.median(patch[patch > 0]) * 0.125 - d) < 60
        assert 500 < d < 800 and np.ptp(np.array(record["joints_xyz"])[:, 2]) < 200


def test_a_frame_in_metres_predicts_with_depth_unit_m(estimator, tmp_path):
    depth_mm = np.asarray(
        Image.open(CHECKPOINT.parents[1] / "app" / "examples" / "synthetic_nyu_0.png"), np.float32
    )
    np.save(tmp_path / "metres.npy", depth_mm / 1000)
    with pytest.raises(DepthUnitError, match="if this is a frame in metres, choose m"):
        estimator.predict_file(tmp_path / "metres.npy", "nyu")
    in_m = estimator.predict_file(tmp_path / "metres.npy", "nyu", depth_unit="m")
    in_mm = estimator.predict(depth_mm, PRESETS["nyu"].modes[0])
    np.testing.assert_allclose(in_m.joints_xyz_mm, in_mm.joints_xyz_mm, atol=0.05)
    # the estimator's own entry takes a unit too
    np.testing.assert_allclose(
        estimator.predict(depth_mm / 1000, PRESETS["nyu"].modes[0], depth_unit="m").joints_xyz_mm,
        in_mm.joints_xyz_mm,
        atol=0.05,
    )


class _MetresReader:
    """Two ICVL-size frames whose depth files were re-saved in metres."""

    convention = get_convention("icvl")
    camera = CAMERAS["icvl"]

    def __init__(self) -> None:
        v, u = np.mgrid[:240, :320]
        self.depth_mm = [
            np.where((u - 160) ** 2 + (v - 120) ** 2 < 900, 450.0 + i, 0).astype(np.float32) for i in (0, 5)
        ]
        self.uvd = np.tile([160.0, 120.0, 450.0], (16, 1))

    def __len__(self) -> int:
        return 2

    def frame_name(self, index: int) -> str:
        return f"f{index}.png"

    def load(self, index: int) -> RawFrame:
        return labelled_frame(
            self.frame_name(index), self.depth_mm[index] / 1000, self.camera, joints_uvd=self.uvd
        )


def test_convert_takes_a_depth_unit(tmp_path):
    crop = CropConfig(cube_mm=250.0, crop_px=8)
    with pytest.raises(BadFrameError, match=r"frame 0 \(f0.png\): .*if this is a frame in metres, choose m"):
        convert_frames(_MetresReader(), tmp_path / "mm.h5", crop, {"source": "fake"})
    assert not (tmp_path / "mm.h5").exists()
    report = convert_frames(_MetresReader(), tmp_path / "m.h5", crop, {"source": "fake"}, depth_unit="m")
    arrays = load_arrays(report.path)
    expected = preprocess(_MetresReader().depth_mm[1], CAMERAS["icvl"], crop).depth
    np.testing.assert_allclose(arrays["depth"][1, 0], expected, atol=1e-6)
    assert read_info(report.path).attrs["depth_unit_mm"] == 1000.0
