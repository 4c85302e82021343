"""The accuracy instruments (benchmarks/pose_accuracy.py, generator.py, time_to_accuracy.py): their
pure functions against hand-computed values, and each script once end to end on toy data."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
from benchmark_scripts import load_script
from PIL import Image

from crossingnets.camera import uvd_to_xyz
from crossingnets.data.store import load_arrays, read_info
from crossingnets.data.training import frames_from_arrays
from crossingnets.inference import HandPoseEstimator
from crossingnets.models import CrossingNet, model_config
from crossingnets.validation import validate


@pytest.fixture(scope="module")
def pa():
    return load_script("pose_accuracy")


@pytest.fixture(scope="module")
def gen():
    return load_script("generator")


@pytest.fixture(scope="module")
def tta():
    return load_script("time_to_accuracy")


def tiny_model(seed: int = 0) -> CrossingNet:
    """A random tiny Crossing Net reading the toy store's crops (32 px, 250 mm, icvl)."""
    torch.manual_seed(seed)
    return CrossingNet(model_config("tiny", convention="icvl")).eval()


# -- generator: silhouettes and foreground depth ------------------------------------------------


def test_iou_and_foreground_error_by_hand(gen):
    real = np.ones((1, 4, 4))
    real[0, 0, :4] = 0.0  # hand: the top row
    generated = np.full((1, 4, 4), 0.999)  # tanh's background: below 1, above the threshold
    generated[0, 0, :2] = 0.1  # overlaps two hand pixels, 0.1 (15 mm at a 300 mm cube) too far
    generated[0, 1, :2] = -0.5  # two pixels of hand where the real crop has none
    iou = gen.silhouette_iou(generated, real)
    assert iou == pytest.approx([2 / 6])
    assert gen.foreground_error_mm(generated, real, cube_mm=300.0) == pytest.approx([15.0])
    # a threshold at 1 would call every generated pixel hand
    assert gen.silhouette_iou(generated, real, threshold=1.0) == pytest.approx([4 / 16])


def test_frames_without_common_hand_are_left_out(gen):
    real = np.ones((2, 3, 3))
    real[:, 1, 1] = 0.0
    generated = np.ones((2, 3, 3))
    generated[0, 1, 1] = 0.2  # frame 0: 30 mm off at a 300 mm cube; frame 1: no hand drawn
    fg = gen.foreground_error_mm(generated, real, 300.0)
    assert fg[0] == pytest.approx(30.0) and np.isnan(fg[1])
    assert gen.silhouette_iou(generated, real) == pytest.approx([1.0, 0.0])
    assert gen.summary(fg) == {"mean": pytest.approx(30.0), "median": pytest.approx(30.0), "frames": 1}
    both_empty = gen.silhouette_iou(np.ones((1, 2, 2)), np.ones((1, 2, 2)))
    assert both_empty == pytest.approx([1.0])


def test_ignored_pixels_leave_both_figures(gen):
    real = np.ones((1, 2, 3))
    real[0, 0] = 0.0  # hand: the top row; its last pixel will be forearm
    generated = np.ones((1, 2, 3))
    generated[0, 0, :2] = 0.1  # 15 mm too far on the hand
    generated[0, 0, 2] = 0.5  # 75 mm too far on the forearm
    generated[0, 1, 2] = 0.0  # a generated forearm over real background still counts
    forearm = np.zeros((1, 2, 3), bool)
    forearm[0, 0, 2] = True
    assert gen.silhouette_iou(generated, real) == pytest.approx([3 / 4])
    assert gen.silhouette_iou(generated, real, ignore=forearm) == pytest.approx([2 / 3])
    assert gen.foreground_error_mm(generated, real, 300.0) == pytest.approx([35.0])
    assert gen.foreground_error_mm(generated, real, 300.0, ignore=forearm) == pytest.approx([15.0])


def test_forearm_masks_cover_part_of_the_hands_pixels(gen, toy_store, tmp_path):
    """The masks of fresh renders: the forearm stub is the last two capsules, and what it covers
    lies within the sensed hand's pixels, a part of them."""
    from crossingnets.hand.kinematics import FOREARM_RADIUS_MM, hand_capsules
    from crossingnets.hand.sampler import sample_hands

    info = read_info(toy_store(tmp_path / "toy.h5", 2))
    pose, shape = sample_hands(np.random.default_rng(0), 4, info.camera)
    radius = hand_capsules(pose, shape).radius_mm
    arm = radius[:, -gen.FOREARM_CAPSULES :] / (shape.scale * shape.thickness)[:, None]
    np.testing.assert_allclose(arm, np.full_like(arm, FOREARM_RADIUS_MM), rtol=1e-5)
    assert not np.isclose(radius[:, -gen.FOREARM_CAPSULES - 1], radius[:, -1]).any()
    arrays, forearm = gen.hands_and_forearms(6, seed=3, info=info)
    s = info.crop.crop_px
    assert forearm.shape == (6, s, s) and arrays["depth"].shape == (6, 1, s, s)
    assert forearm.any(axis=(1, 2)).mean() >= 0.5  # most crops show some forearm
    hand = gen.foreground(arrays["depth"][:, 0])
    assert (
        forearm & ~hand
    ).sum() < 0.25 * forearm.sum()  # the arm is where the sensor sees hand (dropout aside)
    share = forearm.sum() / hand.sum()
    assert 0.1 < share < 0.7, share  # a 130 mm stub in the crop's cube, not the whole hand


def test_ik_ceiling_draws_the_joints_hand_again(gen, toy_store, tmp_path):
    """The IK fit of a hand's joints, drawn again, covers the hand nearly as it was (the pose fixes
    its silhouette), and the figures are computed over the sensed crops' frames."""
    info = read_info(toy_store(tmp_path / "toy.h5", 2))
    c = gen.ik_ceiling(4, seed=5, info=info, threshold=gen.FG_THRESHOLD)
    assert c["frames"] == 4 and c["ik_residual_mm"] < 2.0
    assert 0.8 < c["iou"]["mean"] <= 1.0 and c["fg_error_mm"]["mean"] < 10.0


def test_difference_image_colours(gen):
    real = np.array([[0.0, 0.0], [1.0, 1.0]])
    generated = np.array([[0.0, 1.0], [0.0, 1.0]])
    rgb = gen.difference_image(generated, real, cube_mm=300.0, threshold=0.9)
    assert tuple(rgb[0, 0]) == tuple(gen._VIRIDIS[0].astype(np.uint8))  # both hand, 0 mm
    assert tuple(rgb[0, 1]) == gen.REAL_ONLY_RGB
    assert tuple(rgb[1, 0]) == gen.GEN_ONLY_RGB
    assert tuple(rgb[1, 1]) == (0, 0, 0)


def test_generator_script_end_to_end(gen, toy_store, tmp_path):
    store = toy_store(tmp_path / "toy.h5", 12)
    tiny_model().save_pretrained(tmp_path / "model")
    args = gen.get_args_parser().parse_args(
        ["--checkpoint", str(tmp_path / "model"), "--store", str(store), "--n", "10"]
    )
    args.sheet = tmp_path / "sheet.png"
    result = gen.main(args)
    assert result["frames"] == 10 and 0.0 <= result["iou"]["mean"] <= 1.0
    assert Image.open(args.sheet).size[1] > 8 * 32 * gen.SHEET_SCALE


# -- pose accuracy: the mean-pose predictor and agreement with the trainer's validation ------


def test_mean_pose_predictor_on_a_toy_store(pa, toy_store, tmp_path):
    path = toy_store(tmp_path / "toy.h5", 16)
    info, arrays = read_info(path), load_arrays(path)
    rel = arrays["joints_xyz"] - uvd_to_xyz(arrays["com_uvd"], info.camera)[:, None]
    mean = pa.mean_pose(arrays, info)
    np.testing.assert_allclose(mean, rel.mean(axis=0), atol=1e-4)
    # frames posed exactly as the mean pose around their centres score zero
    exact = dict(arrays, joints_xyz=(uvd_to_xyz(arrays["com_uvd"], info.camera)[:, None] + mean))
    assert pa.mean_pose_errors(mean, pa.TestSet("exact", info, exact)).max() == pytest.approx(0.0, abs=1e-6)
    # moving every joint 10 mm along x costs 10 mm; all frames within 20 mm, none within 5
    shifted = dict(exact, joints_xyz=exact["joints_xyz"] + [10.0, 0.0, 0.0])
    errors = pa.mean_pose_errors(mean, pa.TestSet("shifted", info, shifted))
    assert errors == pytest.approx(np.full_like(errors, 10.0))
    assert pa.figures(errors) == {"mean_mm": pytest.approx(10.0), "success_20mm": 1.0, "success_40mm": 1.0}


def test_model_and_vae_errors_agree_with_training_validation(pa, toy_store, tmp_path):
    """The benchmark's path (predict_crops; encode_pose -> decode_latent) measures what the trainer's
    validation measures on the same frames."""
    path = toy_store(tmp_path / "toy.h5", 20)
    info, arrays = read_info(path), load_arrays(path)
    model = tiny_model()
    test = pa.TestSet("toy", info, arrays)
    out = pa.evaluate_set(HandPoseEstimator(model), test, pa.mean_pose(arrays, info))
    val = validate(model, frames_from_arrays(arrays, info, model.config.pose_unit_mm))
    assert out["model"]["mean_mm"] == pytest.approx(val["val_mm"], rel=1e-4)
    assert out["vae_mm"] == pytest.approx(val["val_vae_mm"], rel=1e-4)
    assert out["model_over_mean_pose"] == pytest.approx(out["model"]["mean_mm"] / out["mean_pose"]["mean_mm"])


def test_pose_accuracy_script_skips_missing_sets(pa, toy_store, tmp_path, capsys):
    bench = tmp_path / "bench"
    bench.mkdir()
    toy_store(bench / "train.h5", 16, seed=1)
    toy_store(bench / "test.h5", 8, seed=2)
    tiny_model().save_pretrained(tmp_path / "model")
    result = pa.main(
        pa.get_args_parser().parse_args(["--checkpoint", str(tmp_path / "model"), "--bench", str(bench)])
    )
    assert set(result["sets"]) == {"synthetic_test"}
    assert set(result["skipped"]) == {*pa.STORE_SETS, pa.REAL_FRAME} - {"synthetic_test"}
    lines = capsys.readouterr().out.strip().splitlines()
    assert "skipped nyu_poses" in "\n".join(lines) and json.loads(lines[-1]) == result
    # --sets: those alone, none of the others reported as skipped; an unknown name is refused
    argv = [
        "--checkpoint",
        str(tmp_path / "model"),
        "--bench",
        str(bench),
        "--sets",
        "nyu_poses",
        "synthetic_test",
    ]
    only = pa.main(pa.get_args_parser().parse_args(argv))
    assert set(only["sets"]) == {"synthetic_test"} and set(only["skipped"]) == {"nyu_poses"}
    with pytest.raises(SystemExit, match="unknown test sets"):
        pa.main(pa.get_args_parser().parse_args([*argv[:4], "--sets", "synthetic"]))
    # --first: each store's first frames alone, the same estimates as in the whole set
    first = pa.main(pa.get_args_parser().parse_args([*argv, "--first", "3"]))["sets"]["synthetic_test"]
    test = pa.load_store_set("synthetic_test", bench / "test.h5")
    errors = pa.model_errors(HandPoseEstimator.from_pretrained(tmp_path / "model"), test)
    assert first["frames"] == 3 and first["model"]["mean_mm"] == pytest.approx(errors[:3].mean(), rel=1e-5)
    with pytest.raises(SystemExit, match="--first must be >= 1"):
        pa.main(pa.get_args_parser().parse_args([*argv, "--first", "0"]))


# -- time to accuracy: reading logs, the target ------------------------------------------------

TRAINER_LOG = [
    {"stage": "vae", "epoch": 1, "elapsed_s": 60.0, "val_mm": 80.0, "val_vae_mm": 4.0},
    {"stage": "vae", "epoch": 2, "elapsed_s": 120.0, "val_mm": 79.0, "val_vae_mm": 3.0},
    {"stage": "joint", "epoch": 1, "elapsed_s": 300.0, "val_mm": 20.0, "gen_iou": 0.5},
    {"stage": "joint", "epoch": 2, "elapsed_s": 480.0, "val_mm": 11.5},
    {"stage": "joint", "epoch": 3, "elapsed_s": 600.0, "val_mm": 9.0},
]


def test_time_to_target_and_stages_on_a_toy_log(tta):
    records = tta.parse_records([json.dumps(d) for d in TRAINER_LOG] + [""])
    assert tta.time_to_target(records, 12.0) == 480.0
    assert tta.time_to_target(records, 11.5) == 480.0  # at or below
    assert tta.time_to_target(records, 5.0) is None
    assert tta.stage_spans(records) == [("vae", 0.0, 120.0), ("joint", 120.0, 600.0)]
    assert records[0].vae_mm == 4.0 and records[2].gen_iou == 0.5


def test_prototype_keys_and_resumed_runs(tta):
    lines = [
        {"phase": "vae", "step": 6000, "elapsed_s": 50.0, "val_mm": 78.0, "vae_mm": 1.8},
        {"phase": "sup", "step": 500, "elapsed_s": 340.0, "loss": 1.5},  # no validation: time only
        {"phase": "sup", "step": 1000, "elapsed_s": 600.0, "val_mm": 30.0},
        {"phase": "sup", "step": 500, "elapsed_s": 340.0, "val_mm": 44.0},  # resumed: replaces the above
    ]
    records = tta.parse_records([json.dumps(d) for d in lines])
    assert [(r.stage, r.elapsed_s, r.val_mm) for r in records] == [("vae", 50.0, 78.0), ("sup", 340.0, 44.0)]
    assert records[0].vae_mm == 1.8
    with pytest.raises(ValueError, match="line 2: no numeric elapsed_s"):
        tta.parse_records(['{"elapsed_s": 1}', '{"val_mm": 3}'], "log")


def test_time_to_accuracy_script_end_to_end(tta, tmp_path):
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(d) + "\n" for d in TRAINER_LOG))
    out = tmp_path / "tta.png"
    result = tta.main(argparse.Namespace(run=tmp_path, out=out, target=12.0))
    assert (result["final_val_mm"], result["total_wall_s"], result["time_to_target_s"]) == (9.0, 600.0, 480.0)
    assert Image.open(out).size == tta.SIZE_PX


def test_time_to_accuracy_puts_a_pipelines_stages_on_one_clock(tta, tmp_path):
    """Stores and finished stages by their recorded wall times; the running stage as far as it got."""
    stages = [{"stage": s, "data": ["a"], "flags": []} for s in ("vae", "posterior", "adversarial")]
    state = {"settings": {"config": {"stages": stages}},
             "steps": {"data/a": {"wall_s": 100.0}, "data/b": {"wall_s": 20.0}, "vae": {"wall_s": 60.0}}}  # fmt: skip
    (tmp_path / "pipeline.json").write_text(json.dumps(state))
    for stage, lines in (("vae", [(50.0, 70.0)]), ("posterior", [(300.0, 30.0), (600.0, 11.0)])):
        (tmp_path / stage).mkdir()
        (tmp_path / stage / "metrics.jsonl").write_text(
            "".join(json.dumps({"stage": stage, "elapsed_s": t, "val_mm": v}) + "\n" for t, v in lines)
        )
    records = tta.pipeline_records(tmp_path)
    assert [(r.stage, r.elapsed_s, r.val_mm) for r in records] == [
        ("data", 100.0, None), ("data", 120.0, None), ("vae", 170.0, 70.0), ("vae", 180.0, None),
        ("posterior", 480.0, 30.0), ("posterior", 780.0, 11.0)]  # fmt: skip
    assert tta.stage_spans(records) == [
        ("data", 0.0, 120.0),
        ("vae", 120.0, 180.0),
        ("posterior", 180.0, 780.0),
    ]
    result = tta.main(argparse.Namespace(run=tmp_path, out=tmp_path / "tta.png", target=12.0))
    assert (result["final_val_mm"], result["total_wall_s"], result["time_to_target_s"]) == (
        11.0,
        780.0,
        780.0,
    )


# -- palm_tilt: the angle of the palm from the camera, binned errors --------------------------------


def test_palm_tilt_and_its_bins_by_hand():
    pt = load_script("palm_tilt")
    hands = np.zeros((3, 14, 3))
    hands[:, pt.PALM] = (0.0, 0.0, 500.0)
    for i, (index, little) in enumerate(
        [((0, 1, 0), (1, 0, 0)), ((1, 0, 0), (0, 0, 1)), ((1, 0, 0), (0, 1, 0))]
    ):
        hands[i, pt.INDEX_ROOT] = hands[i, pt.PALM] + index
        hands[i, pt.LITTLE_ROOT] = hands[i, pt.PALM] + little
    tilt = pt.palm_tilt_deg(hands)  # normal towards the camera (-z), sideways, away (+z)
    np.testing.assert_allclose(tilt, [0.0, 90.0, 180.0], atol=1e-6)
    bins = pt.by_bin(tilt, np.array([1.0, 2.0, 4.0]))
    assert bins == {"0-30": [1, 1.0], "90-120": [1, 2.0], "150-180": [1, 4.0]}  # 180 falls in the last


def test_true_keypoints_draw_the_pose_and_measure_the_heads_distance(gen, toy_store, tmp_path):
    """`draw_from_true_keypoints` draws from the pose's crop keypoints, not the generator's own,
    and reports how far its own lie from them, in pixels: a keypoint head that returns the true
    keypoints moved 0.1 across the crop in u lies 0.1 * S / 2 px away and draws what the true
    keypoints draw, not what the moved ones draw."""
    store = toy_store(tmp_path / "toy.h5", 6)
    torch.manual_seed(0)
    model = CrossingNet(model_config("tiny-release", convention="icvl", gen_arch="skeleton")).eval()
    info = read_info(store)
    frames = frames_from_arrays(load_arrays(store), info, model.config.pose_unit_mm)
    true = model.crop_keypoints(frames.pose.unflatten(1, (-1, 3)) + frames.root[:, None], frames.center_xyz)
    shift = torch.tensor([0.1, 0.0, 0.0])
    model.generator.keypoints = lambda latent, view=None: true + shift  # the batch is the whole store
    drawn, px = gen.draw_from_true_keypoints(model, frames)
    assert px == pytest.approx(0.1 * model.config.crop_px / 2, rel=1e-5)
    with torch.no_grad():
        want = gen.compose(*model.generator.draw(true), hard=True)[:, 0].numpy()
        moved = gen.compose(*model.generator.draw(true + shift), hard=True)[:, 0].numpy()
    np.testing.assert_array_equal(drawn, want)
    assert not np.array_equal(drawn, moved)


def test_kinematic_hand_figures_measure_its_joints_in_mm_and_in_the_crop(gen, toy_store, tmp_path):
    """`kinematic_joint_figures`: a hand whose joints are the labels moved 10 mm along x lies 10 mm
    from them, and where the crop shows them at about 10 mm x S / cube px (exactly so on the axis)."""
    store = toy_store(tmp_path / "toy.h5", 6)
    model = CrossingNet(model_config("tiny-release", convention="icvl", gen_arch="kinematic")).eval()
    info = read_info(store)
    frames = frames_from_arrays(load_arrays(store), info, model.config.pose_unit_mm)
    moved = frames.joints_xyz + torch.tensor([10.0, 0.0, 0.0])
    model.generator.joints_mm = lambda latent, center=None: moved  # the batch is the whole store
    figures = gen.kinematic_joint_figures(model, frames)
    assert figures["joint_error_mm"] == pytest.approx(10.0, rel=1e-5)
    per_px = model.config.crop_px / model.config.cube_mm  # at the centre's depth
    assert figures["keypoint_error_px"] == pytest.approx(10.0 * per_px, rel=0.25)
