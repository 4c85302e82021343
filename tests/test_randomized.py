"""Domain-randomised frames: seeded by chunk (the same frames whatever the worker count), centred
where inference centres crops, and written to a store through `generate --randomize`."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from crossingnets import cli
from crossingnets.camera import get_camera, uvd_to_xyz
from crossingnets.data.randomized import RandomizeConfig, chunk_config, iter_randomized_frames, render_chunk
from crossingnets.data.store import load_arrays, read_info
from crossingnets.data.synthetic import GenerateConfig

CFG = RandomizeConfig(base=GenerateConfig(convention="nyu", crop_px=32, cube_mm=300.0, batch_frames=4),
                      chunk_frames=4)  # fmt: skip


def _frames(n: int, workers: int) -> dict[str, np.ndarray]:
    chunks = list(iter_randomized_frames(n, 5, CFG, workers))
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


@pytest.mark.slow
def test_frames_do_not_depend_on_the_worker_count() -> None:
    one, two = _frames(10, 1), _frames(10, 2)
    assert len(one["depth"]) == 10
    for k in one:
        np.testing.assert_array_equal(one[k], two[k])


def test_each_chunk_draws_its_own_sensor_and_keeps_the_crops_near_the_hand() -> None:
    a, b = chunk_config(np.random.default_rng([5, 0]), CFG), chunk_config(np.random.default_rng([5, 1]), CFG)
    assert a.sensor != b.sensor and a.sampler.thickness_range == CFG.thickness_range
    chunk = render_chunk(5, 0, dataclasses.replace(CFG, palm_center_prob=1.0, center_jitter_mm=0.0))
    palm = chunk["joints_xyz"][:, 13]  # NYU's root joint, the palm
    np.testing.assert_allclose(uvd_to_xyz(chunk["com_uvd"], get_camera("nyu")), palm, atol=1e-3)
    assert (chunk["depth"] < 1).any(axis=(1, 2, 3)).all()  # every crop shows some hand


def test_generate_randomize_writes_a_store(tmp_path) -> None:
    out = tmp_path / "rand.h5"
    args = ["generate", "--randomize", "-n", "5", "--seed", "3", "--crop-px", "32", "--cube-mm", "300",
            "--out", str(out)]  # fmt: skip
    assert cli.main(args) == 0
    info = read_info(out)
    assert info.num_frames == 5 and info.crop.crop_px == 32 and info.attrs["source"] == "synthetic-randomized"
    assert np.isfinite(load_arrays(out)["joints_xyz"]).all()


def test_generate_max_palm_tilt_reaches_the_back_of_the_hand(tmp_path) -> None:
    """`--max-palm-tilt-deg 180` lets the palm turn away from the camera (the back of the hand
    shows, as in many NYU frames); the default keeps it facing the camera; the value is recorded."""
    stores = {}
    for tilt in ("90", "180"):
        stores[tilt] = tmp_path / f"tilt{tilt}.h5"
        args = ["generate", "--randomize", "-n", "24", "--seed", "3", "--crop-px", "32", "--cube-mm", "300",
                "--max-palm-tilt-deg", tilt, "--out", str(stores[tilt])]  # fmt: skip
        assert cli.main(args) == 0
    assert (
        json.loads(read_info(stores["180"]).attrs["randomize"])["base"]["sampler"]["max_palm_tilt_deg"] == 180
    )
    away = {}
    for tilt, path in stores.items():
        j = load_arrays(path)["joints_xyz"].astype(np.float64)
        normal = np.cross(j[:, 7] - j[:, 13], j[:, 1] - j[:, 13])  # index root, pinky root, palm
        cos_to_camera = -normal[:, 2] / np.linalg.norm(normal, axis=1)
        away[tilt] = (cos_to_camera < np.cos(np.radians(120))).mean()  # the back of the hand shows
    assert away["90"] < 0.1 < 0.2 < away["180"], away


def test_generate_refuses_a_tilt_outside_the_sphere(tmp_path) -> None:
    with pytest.raises(SystemExit, match="max-palm-tilt-deg"):
        cli.main(["generate", "-n", "2", "--max-palm-tilt-deg", "200", "--out", str(tmp_path / "x.h5")])
