"""The explorer index (`crossingnets explorer-index`) and the nearest training frames it gives the app."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from crossingnets.camera import uvd_to_xyz
from crossingnets.checkpoint import LatentStats
from crossingnets.cli import main as cli_main
from crossingnets.data.store import load_arrays, read_info
from crossingnets.explorer.index import (
    INDEX_ENV,
    INDEX_FILE,
    ExplorerIndex,
    build_index,
    crops_from_thumbnails,
    load_index,
    main,
    thumbnails_from_crops,
)
from crossingnets.explorer.nearest import caption, nearest_frames, thumbnail
from crossingnets.inference import HandPoseEstimator
from crossingnets.models import PRESETS, CrossingNet

FRAMES = 200  # toy store: its chunks hold 64 frames (the store writer's default)


@pytest.fixture(scope="module")
def store(tmp_path_factory, toy_store):
    return toy_store(tmp_path_factory.mktemp("store") / "toy.h5", FRAMES, crop_px=32, convention="nyu")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny NYU Crossing Net reading the toy store's 32 px / 250 mm crops."""
    torch.manual_seed(0)
    latents = np.random.default_rng(0).standard_normal((64, 23))
    folder = tmp_path_factory.mktemp("tiny")
    return CrossingNet(PRESETS["tiny"]).save_pretrained(folder, latent_stats=LatentStats.fit(latents))


def test_thumbnails_round_trip_to_a_millimetre():
    crops = np.array([[[-1.0, -0.3], [0.999, 1.0]]], np.float32)
    thumbs = thumbnails_from_crops(crops)
    assert thumbs.dtype == np.uint8 and thumbs[0, 1, 1] == 255 and thumbs[0, 0, 0] == 0
    back = crops_from_thumbnails(thumbs)
    assert back[0, 1, 1] == 1.0  # the background stays exactly background
    np.testing.assert_allclose(back[0].ravel()[:3], crops[0].ravel()[:3], atol=1 / 254)  # 1.2 mm of 300


def test_build_index_reads_whole_chunks_and_encodes_the_labels(store, checkpoint):
    estimator = HandPoseEstimator.from_pretrained(checkpoint)
    index = build_index(estimator, checkpoint, store, frames=100, seed=3)
    assert (
        len(index.frames) == 100 and index.thumbs.shape == (100, 32, 32) and index.latents.shape == (100, 23)
    )
    assert np.all(np.diff(index.frames) > 0) and index.frames[0] % 64 == 0  # starts a chunk
    arrays = load_arrays(store)
    np.testing.assert_array_equal(index.thumbs, thumbnails_from_crops(arrays["depth"][index.frames, 0]))
    # the latents are the pose VAE's encodings of the labels: their last 3 are the root joint's
    # offset from the crop centre, in pose units
    info = read_info(store)
    root = arrays["joints_xyz"][index.frames, info.convention.root]
    offset = (root - uvd_to_xyz(arrays["com_uvd"][index.frames], info.camera)) / PRESETS["tiny"].pose_unit_mm
    np.testing.assert_allclose(index.latents[:, -3:], offset, atol=1e-4)
    assert index.cube_mm == 250.0 and index.store == "toy.h5" and len(index.model_sha256) == 64
    assert len(build_index(estimator, checkpoint, store, frames=10_000).frames) == FRAMES  # all there is


def test_build_index_refuses_a_store_of_other_crops(tmp_path, toy_store, checkpoint):
    icvl = toy_store(tmp_path / "icvl.h5", 8, crop_px=32)
    estimator = HandPoseEstimator.from_pretrained(checkpoint)
    with pytest.raises(ValueError, match="holds ICVL crops of 32 px / 250 mm; the model .* reads NYU"):
        build_index(estimator, checkpoint, icvl)


def test_command_writes_where_the_app_looks_and_refuses_other_weights(
    store, checkpoint, tmp_path, monkeypatch
):
    monkeypatch.delenv(INDEX_ENV, raising=False)
    assert (
        cli_main(["explorer-index", "--checkpoint", str(checkpoint), "--data", str(store), "--frames", "70"])
        == 0
    )
    index, note = load_index(checkpoint, 23)
    assert note == "" and len(index.frames) == 70 and (checkpoint / INDEX_FILE).is_file()
    # the same index with other weights (a retrained model in the same folder) is refused
    other = CrossingNet(PRESETS["tiny"]).save_pretrained(
        tmp_path / "other", latent_stats=LatentStats.fit(np.eye(23))
    )
    (other / INDEX_FILE).write_bytes((checkpoint / INDEX_FILE).read_bytes())
    index, note = load_index(other, 23)
    assert index is None and "written for other weights" in note and "crossingnets explorer-index" in note
    # an explicit file, or one named by the environment, wins; a broken one is said
    (tmp_path / "broken.npz").write_bytes(b"not an npz")
    assert "not a readable explorer index" in load_index(checkpoint, 23, tmp_path / "broken.npz")[1]
    monkeypatch.setenv(INDEX_ENV, str(tmp_path / "missing.npz"))
    assert load_index(checkpoint, 23)[1].startswith(f"no explorer index at {tmp_path / 'missing.npz'}")


def test_command_errors_are_one_line(store, tmp_path):
    args = argparse.Namespace(checkpoint=tmp_path / "none", data=store, out=None, frames=10, seed=0)
    with pytest.raises(SystemExit, match="explorer-index: "):
        main(args)


def test_nearest_frames_and_their_pictures(store, checkpoint):
    index = build_index(HandPoseEstimator.from_pretrained(checkpoint), checkpoint, store, frames=64)
    near = nearest_frames(index, index.latents[17] + 1e-4, 5)
    assert near.rows[0] == 17 and near.distances[0] < 1e-3
    assert np.all(np.diff(near.distances) >= 0) and len(near.rows) == 5
    expected = np.sort(np.linalg.norm(index.latents - index.latents[17], axis=1))[:5]
    np.testing.assert_allclose(near.distances, expected, atol=1e-3)
    with pytest.raises(ValueError, match="at least 1"):
        nearest_frames(index, index.latents[0], 0)
    image = thumbnail(index, 17)
    assert image.size == (64, 64)
    pixels = np.asarray(image).reshape(-1, 3)
    assert (pixels == 255).all(axis=1).any() and not (pixels == 255).all(axis=1).all()  # hand on white
    assert caption(index, 17, 0.123) == f"0.12 · #{index.frames[17]}"


def test_index_save_load_round_trip(tmp_path):
    index = ExplorerIndex(
        thumbs=np.zeros((2, 4, 4), np.uint8),
        latents=np.ones((2, 3), np.float32),
        frames=np.array([5, 9]),
        store="s.h5",
        cube_mm=300.0,
        model_sha256="ab" * 32,
    )
    back = ExplorerIndex.load(index.save(tmp_path / "i.npz"))
    assert back.store == "s.h5" and back.cube_mm == 300.0 and back.model_sha256 == "ab" * 32
    np.testing.assert_array_equal(back.frames, [5, 9])
    assert [p.name for p in tmp_path.iterdir()] == ["i.npz"]  # written atomically, no temporary left
    np.savez(tmp_path / "old.npz", thumbs=index.thumbs)
    with pytest.raises(ValueError, match="not an explorer index of format 1"):
        ExplorerIndex.load(tmp_path / "old.npz")
