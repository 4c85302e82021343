"""`crossingnets pseudo-label` and `train --pseudo`: which frames get pseudo-labels, which are kept,
and how a run trains on them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from crossingnets import cli
from crossingnets.checkpoint import LatentStats
from crossingnets.data.store import load_arrays, read_info
from crossingnets.data.training import labeled_subset, load_data
from crossingnets.inference import HandPoseEstimator
from crossingnets.models import CrossingNet, model_config
from crossingnets.pseudo_labels import pseudo_label, unlabeled_frames

SPLIT = {"seed": 3, "label_fraction": 0.25, "val_fraction": 0.2}


@pytest.fixture(scope="module")
def stores(tmp_path_factory, toy_store):
    folder = tmp_path_factory.mktemp("pseudo")
    data, pool = toy_store(folder / "toy.h5", 40), toy_store(folder / "pool.h5", 12, seed=5)
    torch.manual_seed(0)
    model = CrossingNet(model_config("tiny", convention="icvl", crop_px=32, cube_mm=250.0))
    latents = np.random.default_rng(0).standard_normal((64, model.config.latent_dims))
    model.save_pretrained(folder / "model", latent_stats=LatentStats.fit(latents))
    return folder, data, pool


def test_the_unlabeled_frames_are_the_run_s_unread_labels_and_the_pool(stores):
    folder, data, pool = stores
    frames = unlabeled_frames([data], pool, **SPLIT)
    d = load_data([data], None, None, 1.0, **SPLIT)
    assert len(d.train) == 32 and len(d.labeled) == 8  # 40 frames, 8 held out, a quarter of 32 labelled
    assert len(frames["depth"]) == 32 - 8 + 12
    unread = np.setdiff1d(np.arange(32), labeled_subset(32, 0.25, 3))
    np.testing.assert_array_equal(frames["depth"][:24], d.train.depth[unread].numpy())
    np.testing.assert_allclose(frames["joints_xyz"][:24], d.train.joints_xyz[unread].numpy())
    np.testing.assert_array_equal(frames["depth"][24:], load_arrays(pool)["depth"])
    np.testing.assert_allclose(frames["com_uvd"][24:], load_arrays(pool)["com_uvd"], rtol=1e-6)


def test_kept_labels_are_the_rotation_averaged_estimates_that_agree(stores):
    folder, data, pool = stores
    frames = unlabeled_frames([data], pool, **SPLIT)
    estimator = HandPoseEstimator.from_pretrained(folder / "model", rotations=5)
    pred, spread = estimator.predict_crops_with_spread(
        frames["depth"], frames["com_uvd"], read_info(data).camera
    )
    assert spread.shape == (36,) and (spread > 0).all()
    limit = float(np.median(spread))
    summary = pseudo_label(folder / "model", [data], folder / "pl.h5", unlabeled=pool, **SPLIT,
                           max_spread_mm=limit, rotations=5, score=True, progress=False)  # fmt: skip
    keep = spread <= limit
    assert summary["frames"] == 36 and summary["kept"] == keep.sum() == 18
    written = load_arrays(folder / "pl.h5")
    np.testing.assert_array_equal(written["depth"], frames["depth"][keep])
    np.testing.assert_allclose(written["joints_xyz"], pred.joints_xyz_mm[keep], atol=1e-4)
    np.testing.assert_allclose(written["com_uvd"], frames["com_uvd"][keep], rtol=1e-6)
    errors = np.linalg.norm(pred.joints_xyz_mm - frames["joints_xyz"], axis=-1).mean(axis=1)
    assert summary["error_mm"] == {
        "all": round(float(errors.mean()), 2),
        "kept": round(float(errors[keep].mean()), 2),
    }
    # one estimate per crop has no spread: every frame is kept, labelled with the plain estimate
    one = HandPoseEstimator.from_pretrained(folder / "model", rotations=1)
    plain = one.predict_crops_with_spread(frames["depth"][:4], frames["com_uvd"][:4], read_info(data).camera)
    assert (plain[1] == 0).all()


def test_nothing_kept_is_an_error_and_no_store(stores):
    folder, data, pool = stores
    with pytest.raises(ValueError, match="nothing to write"):
        pseudo_label(
            folder / "model", [data], folder / "none.h5", **SPLIT, max_spread_mm=1e-6, progress=False
        )
    assert not (folder / "none.h5").exists()
    with pytest.raises(SystemExit, match="max_spread_mm must be > 0"):
        cli.main(["pseudo-label", "--model", str(folder / "model"), "--data", str(data), "--out", str(folder / "x.h5"),
                  "--max-spread-mm", "0"])  # fmt: skip


def test_a_run_trains_on_pseudo_labels_as_labelled_frames(stores, tmp_path, capsys):
    folder, data, pool = stores
    out = folder / "cli.h5"
    argv = ["pseudo-label", "--model", str(folder / "model"), "--data", str(data), "--unlabeled", str(pool),
            "--out", str(out), "--seed", "3", "--label-fraction", "0.25", "--val-fraction", "0.2",
            "--max-spread-mm", "1e6", "--rotations", "3"]  # fmt: skip
    assert cli.main(argv) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["kept"] == 36
    plain, with_pseudo = (
        load_data([data], None, None, 50.0, **SPLIT),
        load_data([data], None, None, 50.0, **SPLIT, pseudo=out),
    )
    assert len(with_pseudo.train) == 32 + 36 and len(with_pseudo.labeled) == 8 + 36
    assert torch.equal(with_pseudo.labeled[8:], torch.arange(32, 68))
    assert torch.equal(with_pseudo.images, plain.images)  # their crops were already real images
    np.testing.assert_allclose(with_pseudo.train.joints_xyz[32:].numpy(), load_arrays(out)["joints_xyz"])
    run = tmp_path / "run"
    train = ["train", "--data", str(data), "--out", str(run), "--preset", "tiny-release", "--no-progress",
             "--seed", "3", "--label-fraction", "0.25", "--val-fraction", "0.2", "--pseudo", str(out),
             "--stage", "vae"]  # fmt: skip
    assert cli.main(train) == 0
    meta = json.loads((run / "config.json").read_text())
    assert meta["paths"]["pseudo"] == str(out) and meta["num_labeled"] == 44 and meta["num_train"] == 68


def test_a_kept_fraction_keeps_the_most_consistent_frames(stores):
    folder, data, pool = stores
    summary = pseudo_label(folder / "model", [data], folder / "quarter.h5", unlabeled=pool, **SPLIT,
                           keep_fraction=0.25, rotations=5, progress=False)  # fmt: skip
    frames = unlabeled_frames([data], pool, **SPLIT)
    estimator = HandPoseEstimator.from_pretrained(folder / "model", rotations=5)
    _, spread = estimator.predict_crops_with_spread(
        frames["depth"], frames["com_uvd"], read_info(data).camera
    )
    limit = np.quantile(spread, 0.25)
    assert (
        summary["max_spread_mm"] == round(float(limit), 3) and summary["kept"] == (spread <= limit).sum() == 9
    )
    np.testing.assert_array_equal(
        load_arrays(folder / "quarter.h5")["depth"], frames["depth"][spread <= limit]
    )
    with pytest.raises(ValueError, match=r"keep_fraction in \(0, 1\]"):
        pseudo_label(folder / "model", [data], folder / "x.h5", **SPLIT, keep_fraction=0.0, progress=False)


def test_refined_labels_are_the_estimator_s_refined_estimates_of_a_seeded_subset(tmp_path, toy_store):
    """`refine_iterations`: each label is the generator-refined estimate (not the plain average);
    `max_frames`: a subset drawn with the run's seed, the same each time."""
    data = toy_store(tmp_path / "toy.h5", 40, convention="nyu")
    torch.manual_seed(0)
    model = CrossingNet(model_config("tiny-release", gen_arch="kinematic", convention="nyu", crop_px=32,
                                     cube_mm=250.0))  # fmt: skip
    latents = np.random.default_rng(0).standard_normal((64, model.config.latent_dims))
    model.save_pretrained(tmp_path / "model", latent_stats=LatentStats.fit(latents))
    common = {**SPLIT, "rotations": 3, "max_spread_mm": 1e6, "max_frames": 10, "progress": False}
    summary = pseudo_label(tmp_path / "model", [data], tmp_path / "r.h5", refine_iterations=3, **common)
    assert (summary["frames"], summary["kept"], summary["refine_iterations"]) == (10, 10, 3)
    written = load_arrays(tmp_path / "r.h5")
    frames = unlabeled_frames([data], None, **SPLIT)
    pick = np.sort(np.random.default_rng(SPLIT["seed"]).choice(24, 10, replace=False))
    np.testing.assert_array_equal(written["depth"], frames["depth"][pick])
    camera = read_info(data).camera
    refined = HandPoseEstimator.from_pretrained(tmp_path / "model", rotations=3, refine_iterations=3)
    expected = refined.predict_crops(frames["depth"][pick], frames["com_uvd"][pick], camera)
    np.testing.assert_allclose(written["joints_xyz"], expected.joints_xyz_mm, atol=1e-3)
    plain = pseudo_label(tmp_path / "model", [data], tmp_path / "p.h5", **common)
    assert plain["refine_iterations"] == 0
    assert np.abs(load_arrays(tmp_path / "p.h5")["joints_xyz"] - written["joints_xyz"]).max() > 0.1
    with pytest.raises(ValueError, match="max_frames"):
        pseudo_label(tmp_path / "model", [data], tmp_path / "x.h5", **{**common, "max_frames": 0})


def test_refined_labels_need_a_model_that_draws_hands(stores):
    folder, data, _ = stores
    with pytest.raises(ValueError, match="kinematic"):
        pseudo_label(
            folder / "model", [data], folder / "nope.h5", **SPLIT, refine_iterations=2, progress=False
        )
    assert not (folder / "nope.h5").exists()
