"""`crossingnets evaluate`: the community text format, published numbers, JSON, plots, checkpoints."""

from __future__ import annotations

import json
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from crossingnets import cli
from crossingnets.camera import CAMERAS, uvd_to_xyz, xyz_to_uvd
from crossingnets.data.preprocess import CropConfig
from crossingnets.data.store import StoreWriter
from crossingnets.evaluate import evaluate_uvd
from crossingnets.files import UvdTextError, read_uvd_text, write_uvd_text
from crossingnets.hand.conventions import ICVL, NYU
from crossingnets.plots import per_joint_error_figure, success_rate_figure

# Mean errors (mm) published for the files in shared/data, which the community metric reproduces.
PUBLISHED = [
    ("nyu", "CVWW15_NYU_Prior.txt", 20.750),
    ("nyu", "ICCVW17_NYU_DeepPrior++.txt", 12.238),
    ("nyu", "ICIP17_NYU_Guo_Basic.txt", 14.588),
    ("nyu", "CVPR18_NYU_V2V_PoseNet.txt", 8.419),
    ("nyu", "joint_pos_murauer_n100_wacv_uvd.txt", 12.172),
    ("nyu", "joint_pos_murauer_n1000_wacv_uvd.txt", 10.900),
    ("icvl", "CVPR18_ICVL_V2V_PoseNet.txt", 6.284),
]
CONVENTIONS = {"nyu": NYU, "icvl": ICVL}


def _uvd(rng: np.random.Generator, frames: int, joints: int) -> np.ndarray:
    return rng.uniform([100, 80, 600], [500, 400, 900], size=(frames, joints, 3))


@pytest.fixture(scope="module")
def ground_truth(shared_data: Path) -> dict[str, np.ndarray]:
    return {
        name: read_uvd_text(
            shared_data / name / f"{name}_test_groundtruth_label.txt", c.num_joints
        ).joints_uvd
        for name, c in CONVENTIONS.items()
    }


@pytest.mark.parametrize(("dataset", "file", "published_mm"), PUBLISHED)
def test_reproduces_published_mean_errors(shared_data, ground_truth, dataset, file, published_mm):
    path = shared_data / dataset / "results" / file
    pred = read_uvd_text(path, CONVENTIONS[dataset].num_joints).joints_uvd
    result = evaluate_uvd(file, str(path), pred, ground_truth[dataset], CAMERAS[dataset])
    assert round(result.summary.mean_error_mm, 3) == published_mm


def test_icvl_deepprior_covers_sequence_a_only(shared_data, ground_truth):
    """702 frames against 1,596 labels is an error; against test_seq_1.txt (named, CRLF) it scores."""
    path = shared_data / "icvl" / "results" / "CVWW15_ICVL_Prior.txt"
    pred = read_uvd_text(path, ICVL.num_joints).joints_uvd
    with pytest.raises(ValueError, match="702 frames but the ground truth has 1596"):
        evaluate_uvd("DeepPrior", str(path), pred, ground_truth["icvl"], CAMERAS["icvl"])
    seq_a = read_uvd_text(shared_data / "icvl" / "test_seq_1.txt", ICVL.num_joints)
    assert seq_a.names[0] == "test_seq_1/image_0000.png" and len(seq_a.names) == 702
    np.testing.assert_array_equal(seq_a.joints_uvd, ground_truth["icvl"][:702])
    result = evaluate_uvd("DeepPrior", str(path), pred, seq_a.joints_uvd, CAMERAS["icvl"])
    assert round(result.summary.mean_error_mm, 3) == 10.427


def test_read_tolerates_crlf_cr_blank_lines_and_names(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_bytes(b"a.png 1 2 3 4 5 6\r\n\r\nb.png 7 8 9 10 11 12\r\rc.png 0 0 1 0 0 1\n")
    text = read_uvd_text(path, num_joints=2)
    assert text.names == ("a.png", "b.png", "c.png")
    np.testing.assert_array_equal(text.joints_uvd[1], [[7, 8, 9], [10, 11, 12]])


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("1 2 3 4 5 6\n1 2 3\n", "line 2: 3 values, expected 6"),
        ("1 2 3 4 5\n", "line 1: 5 values, expected 6"),
        ("1 2 3 4 5 nan\n", "line 1: NaN or infinite"),
        ("1 2 3 4 5 x\n", "line 1: not a number"),
        ("\n\n", "holds no frames"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path, content, match):
    path = tmp_path / "pred.txt"
    path.write_text(content)
    with pytest.raises(UvdTextError, match=match) as err:
        read_uvd_text(path, num_joints=2)
    assert str(path) in str(err.value)


def test_joint_count_must_agree_between_lines_without_a_given_count(tmp_path):
    path = tmp_path / "pred.txt"
    path.write_text("1 2 3 4 5 6\n1 2 3\n")
    with pytest.raises(UvdTextError, match="line 2: 1 joints"):
        read_uvd_text(path)


def test_write_read_round_trip_is_atomic(tmp_path, rng):
    uvd = np.round(_uvd(rng, 5, 14), 4)
    path = write_uvd_text(tmp_path / "ours.txt", uvd)
    np.testing.assert_allclose(read_uvd_text(path, 14).joints_uvd, uvd, atol=1e-9)
    assert [p.name for p in tmp_path.iterdir()] == ["ours.txt"]
    with pytest.raises(ValueError, match="NaN"):
        write_uvd_text(tmp_path / "bad.txt", np.full((1, 14, 3), np.nan))
    assert [p.name for p in tmp_path.iterdir()] == ["ours.txt"]


@pytest.fixture
def nyu_files(tmp_path, rng) -> tuple[Path, Path, Path]:
    """Ground truth and two predictions whose every joint is 10 / 30 mm too deep (in xyz)."""
    cam = CAMERAS["nyu"]
    gt_xyz = uvd_to_xyz(_uvd(rng, 6, NYU.num_joints), cam)
    paths = tmp_path / "gt.txt", tmp_path / "a.txt", tmp_path / "b.txt"
    for path, dz_mm in zip(paths, (0, 10, 30), strict=True):
        write_uvd_text(path, xyz_to_uvd(gt_xyz + [0, 0, dz_mm], cam))
    return paths


def test_cli_json(nyu_files, capsys):
    gt, a, b = nyu_files
    argv = ["evaluate", "--dataset", "nyu", "--gt", str(gt), "--pred", str(a), str(b), "--names", "A", "B"]
    assert cli.main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in out["methods"]] == ["A", "B"]
    a_out = out["methods"][0]
    assert a_out["mean_error_mm"] == pytest.approx(10.0, abs=1e-3)
    assert set(a_out["per_joint_error_mm"]) == set(NYU.joint_names)
    rates = a_out["success_rate"]["fraction_of_frames"]
    assert rates[9] == 0.0 and rates[11] == 1.0 and len(rates) == 81


def test_cli_table_and_errors(nyu_files, tmp_path, capsys):
    gt, a, _ = nyu_files
    assert cli.main(["evaluate", "--dataset", "nyu", "--gt", str(gt), "--pred", str(a)]) == 0
    assert "10.000" in capsys.readouterr().out
    short = tmp_path / "short.txt"
    short.write_text("".join(a.read_text().splitlines(keepends=True)[:3]))
    with pytest.raises(ValueError, match="short.txt has 3 frames but the ground truth has 6"):
        cli.main(["evaluate", "--dataset", "nyu", "--gt", str(gt), "--pred", str(short)])
    with pytest.raises(UvdTextError, match="expected 48"):  # NYU files scored as ICVL
        cli.main(["evaluate", "--dataset", "icvl", "--gt", str(gt), "--pred", str(a)])


def test_cli_plot_html(nyu_files, tmp_path):
    gt, a, b = nyu_files
    out = tmp_path / "eval.html"
    cli.main(["evaluate", "--dataset", "nyu", "--gt", str(gt), "--pred", str(a), str(b), "--plot", str(out)])
    html = out.read_text()
    assert "success rate" in html and "mean error per joint" in html and "pinky_tip" in html


@pytest.mark.slow
@pytest.mark.skipif(
    not (shutil.which("chromium") or shutil.which("google-chrome")),
    reason="PNG export needs a local Chromium",
)
def test_cli_plot_png(nyu_files, tmp_path):
    gt, a, b = nyu_files
    out = tmp_path / "eval.png"
    cli.main(["evaluate", "--dataset", "nyu", "--gt", str(gt), "--pred", str(a), str(b), "--plot", str(out)])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".png"] == ["eval.png"]


class _FakeEstimator:
    """Stands in for crossingnets.inference.HandPoseEstimator: returns the centre + 5 mm in d."""

    def __init__(self, num_joints: int) -> None:
        self.num_joints = num_joints

    @classmethod
    def from_pretrained(cls, path, rotations=None, refine_iterations=None):
        assert (rotations, refine_iterations) == (3, 0)  # --rotations, --refine-iterations reach it
        return cls(int(Path(path).read_text()))

    def predict_crops(self, depth, com_uvd, cam):
        assert depth.dtype == np.float32 and depth.ndim == 4
        uvd = np.repeat(com_uvd[:, None, :], self.num_joints, axis=1) + [0, 0, 5]
        return types.SimpleNamespace(joints_uvd=uvd)  # the part of a Prediction evaluate reads


def test_checkpoint_on_store_writes_predictions(tmp_path, monkeypatch, capsys):
    """The checkpoint path against the agreed inference interface (a fake model here)."""
    monkeypatch.setitem(
        sys.modules, "crossingnets.inference", types.SimpleNamespace(HandPoseEstimator=_FakeEstimator)
    )
    n, crop = 5, CropConfig(cube_mm=250.0, crop_px=8)
    com = np.tile([[160.0, 120.0, 700.0]], (n, 1))  # on the optical axis: +5 mm in d is 5 mm
    gt_uvd = np.repeat(com[:, None], ICVL.num_joints, axis=1)
    store = tmp_path / "icvl.h5"
    with StoreWriter(store, ICVL, CAMERAS["icvl"], crop, {"source": "test"}) as w:
        w.append(depth=np.zeros((n, 1, 8, 8)), joints_xyz=gt_uvd, joints_uvd=gt_uvd, com_uvd=com)
    ckpt = tmp_path / "ckpt"
    ckpt.write_text(str(ICVL.num_joints))
    pred_txt = tmp_path / "ours.txt"
    argv = [
        "evaluate",
        "--checkpoint",
        str(ckpt),
        "--data",
        str(store),
        "--batch-size",
        "2",
        "--rotations",
        "3",
        "--refine-iterations",
        "0",
    ]
    assert cli.main([*argv, "--write-pred", str(pred_txt), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dataset"] == "icvl" and out["methods"][0]["mean_error_mm"] == pytest.approx(5.0, abs=1e-3)
    np.testing.assert_allclose(
        read_uvd_text(pred_txt, ICVL.num_joints).joints_uvd, gt_uvd + [0, 0, 5], atol=1e-4
    )


def test_single_panel_figures(nyu_files):
    gt, a, b = (read_uvd_text(p, NYU.num_joints).joints_uvd for p in nyu_files)
    cam = CAMERAS["nyu"]
    summaries = {name: evaluate_uvd(name, name, pred, gt, cam).summary for name, pred in (("A", a), ("B", b))}
    curves = success_rate_figure(summaries)
    assert [t.name for t in curves.data] == ["A (10.00 mm)", "B (30.00 mm)"]
    bars = per_joint_error_figure(summaries, NYU.joint_names)
    assert list(bars.data[0].x) == [*NYU.joint_names, "mean"] and len(bars.data) == 2
    with pytest.raises(ValueError, match="A: 14 joints, expected 16"):
        per_joint_error_figure(summaries, ICVL.joint_names)
