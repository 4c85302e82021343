"""The whole app through its API: gradio_client against a server started here on 127.0.0.1.

Every endpoint, and every bad input of the issue, which must come back as a clear message (the
server stays up and answers the next request).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from crossingnets.camera import CAMERAS
from crossingnets_app.launch import OFFLINE_ENV, bundled_checkpoint, running_app

os.environ.update(OFFLINE_ENV)  # before gradio_client (and huggingface_hub) are imported
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "app" / "examples"
NYU = CAMERAS["nyu"]
NYU_CAMERA = (NYU.fx, NYU.fy, NYU.cx, NYU.cy)
NO_CENTER = (0, 0, 0)
ENDPOINTS = {
    "/estimate", "/mesh", "/move_pca", "/move_raw", "/random_latent", "/reset_latent", "/latent_from_upload", "/walk",
}  # fmt: skip
# The bundled model's latent size (release: 32-d code + 3-d root offset).
L = json.loads((bundled_checkpoint() / "config.json").read_text())["config"]["code_dims"] + 3
LATENT_OUTPUTS = 1 + 8 + L + 2 - 1  # state is not returned: 8 PCA + L raw sliders, plot, image


@pytest.fixture(scope="module")
def server_url():
    with running_app(bundled_checkpoint()) as url:
        yield url


@pytest.fixture
def client(server_url) -> Client:
    """A fresh session (its own upload state)."""
    return Client(server_url, verbose=False)


def estimate(client: Client, path: Path, camera: str = "nyu", intrinsics=NYU_CAMERA, center=NO_CENTER):
    return client.predict(handle_file(str(path)), camera, *intrinsics, *center, api_name="/estimate")


def test_every_endpoint_is_public(client):
    api = client.view_api(print_info=False, return_format="dict")
    assert ENDPOINTS <= set(api["named_endpoints"])


def test_upload_then_mesh_latent_and_walk(client):
    overlay, generated, plot, summary, files = estimate(client, EXAMPLES / "synthetic_nyu_0.png")
    assert Image.open(overlay).size == Image.open(generated).size == (256, 256)
    figure = json.loads(plot["plot"])
    assert len(figure["data"]) == 6 and figure["layout"]["scene"]["xaxis"]["title"]["text"].endswith("(mm)")
    assert "ms** server side" in summary
    record = json.loads(Path(files[0]).read_text())
    assert len(record["joints"]) == 14 and len(record["latent"]) == L
    assert Path(files[1]).read_text().startswith("joint,name,finger,x_mm")

    glb = client.predict(api_name="/mesh")
    assert len(trimesh.load(glb, force="mesh").vertices) > 1000

    from_upload = client.predict(api_name="/latent_from_upload")
    assert len(from_upload) == LATENT_OUTPUTS
    # raw sliders show its latent (clipped to their ranges, so an unusual latent may sit at an end)
    assert np.isclose(from_upload[8 : 8 + L], record["latent"], atol=1e-3).mean() > 0.5

    summary, html, smo_plot, gif, gif_file = client.predict(
        "uploaded image -> random sample", 4, 0, None, None, api_name="/walk"
    )
    assert "4 steps" in summary and html.startswith("<iframe") and Path(gif).suffix == ".gif"
    assert len(json.loads(smo_plot["plot"])["data"][0]["x"]) == 3


def test_examples_in_other_formats(client):
    *_, summary, files = estimate(client, EXAMPLES / "synthetic_msra.bin", "msra")
    assert "ms** server side" in summary and len(files) == 2
    *_, summary, _ = estimate(client, EXAMPLES / "synthetic_nyu_rgb.png")
    assert "ms** server side" in summary


def test_latent_sliders_and_buttons(client):
    reset = client.predict(api_name="/reset_latent")
    assert len(reset) == LATENT_OUTPUTS and reset[:8] == pytest.approx([0.0] * 8, abs=1e-3)
    # a PCA slider moves z along its direction: the raw sliders follow (the PCA ones are the user's)
    moved = client.predict(2.0, *reset[1:8], api_name="/move_pca")  # L raw sliders, plot, image
    raw, plot = list(moved[:L]), moved[L]
    assert raw != reset[8 : 8 + L] and json.loads(plot["plot"])["data"]
    # a raw slider: the PCA sliders follow
    raw[0] += 0.5
    sigmas = client.predict(*raw, api_name="/move_raw")[:8]
    assert len(sigmas) == 8 and sigmas != pytest.approx([2.0, *reset[1:8]], abs=1e-4)
    sample = client.predict(api_name="/random_latent")
    assert len(sample) == LATENT_OUTPUTS and json.loads(sample[8 + L]["plot"])["data"]


@pytest.mark.parametrize("mode", ["two random samples", "two examples", "random walk"])
def test_walk_modes(client, mode):
    summary, html, _, gif, _ = client.predict(
        mode, 4, 1, "synthetic_nyu_0.png", "synthetic_nyu_1.png", api_name="/walk"
    )
    assert "4 steps" in summary and "plotly.min.js" in html
    with Image.open(gif) as im:
        assert im.n_frames == 4


def test_state_dependent_calls_before_an_upload(client):
    with pytest.raises(AppError, match="upload a depth image first"):
        client.predict(api_name="/latent_from_upload")
    with pytest.raises(AppError, match="estimate a pose first"):
        client.predict(api_name="/mesh")
    with pytest.raises(AppError, match="upload a depth image first"):
        client.predict("uploaded image -> random sample", 4, 0, None, None, api_name="/walk")


BAD_FILES = {
    "rgb_photo": ("photo.png", lambda p: Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8)).save(p), "RGB photo"),
    "8bit": ("gray.png", lambda p: Image.fromarray(np.full((48, 64), 90, np.uint8)).save(p), "8-bit image"),
    "empty_file": ("empty.png", lambda p: p.write_bytes(b""), "empty file"),
    "all_zero": ("zeros.png", lambda p: Image.fromarray(np.zeros((480, 640), np.uint16)).save(p), "every pixel is 0"),
    "no_hand": ("wall.png", lambda p: Image.fromarray(np.full((480, 640), 4000, np.uint16)).save(p), "no hand in range"),
    "huge_image": ("huge.png", lambda p: Image.new("1", (10_000, 10_000)).save(p), "larger than the limit"),
    "50MB_file": ("big.npy", lambda p: p.open("wb").truncate(50 * 2**20), "larger than the limit of 16 MB"),
    "corrupt": ("corrupt.png", lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4), "not a readable image"),
    "nans": ("nan.npy", lambda p: np.save(p, np.full((480, 640), np.nan, np.float32)), "NaN"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_upload_gives_a_clear_message(client, tmp_path, case):
    name, writer, expected = BAD_FILES[case]
    writer(tmp_path / name)
    with pytest.raises(AppError) as err:
        estimate(client, tmp_path / name)
    assert expected in str(err.value) and name in str(err.value)
    assert "Traceback" not in str(err.value)


def test_bad_camera_and_center(client):
    path = EXAMPLES / "synthetic_nyu_1.png"
    with pytest.raises(AppError, match="fx and fy must be > 0"):
        estimate(client, path, "custom", (0.0, 587.0, 320.0, 240.0))
    with pytest.raises(AppError, match="NYU camera is 640x480"):
        estimate(client, EXAMPLES / "synthetic_msra.bin", "nyu")
    with pytest.raises(AppError, match="inside the 640x480 frame"):
        estimate(client, path, center=(900, 100, 0))
    # after every bad input the app still answers
    *_, summary, _ = estimate(client, path, "custom", NYU_CAMERA)
    assert "ms** server side" in summary


def test_a_given_center_is_used(client):
    """A centre away from the detected one comes back as the crop centre (not the detected one)."""
    path = EXAMPLES / "synthetic_nyu_0.png"
    *_, files = estimate(client, path)
    u, v, d = json.loads(Path(files[0]).read_text())["com_uvd"]
    center = (u + 6.0, v - 4.0, d + 25.0)
    *_, summary, files = estimate(client, path, center=center)
    np.testing.assert_allclose(json.loads(Path(files[0]).read_text())["com_uvd"], center, atol=1e-3)
    assert f"u={center[0]:.0f} px, v={center[1]:.0f} px, d={center[2]:.0f} mm" in summary
