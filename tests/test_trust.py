"""Trust boundaries: what a checkpoint folder can make us do, who can reach the app, and what the
app's file routes and uploads let a client reach.

- Loading never runs code from a folder: a training checkpoint holding a pickled object (one that
  would run a command when unpickled) is refused by `torch.load(weights_only=True)`, a weights
  file that is not safetensors is refused, config.json is JSON checked field by field; unknown
  kinds, foreign or nested config fields, weights of other shapes or sizes are refused with a message.
- The app listens on 127.0.0.1 unless told otherwise, and says who can reach it when told.
- No file route of the running app serves a file outside what it was given (traversal, encoded
  traversal, absolute paths, neighbours of its one static file); uploads above the size limit are
  refused by Gradio (64 MB) and by the explorer (16 MB) with a message.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
import torch

from crossingnets import cli
from crossingnets.checkpoint import (
    CONFIG_FILE,
    LATENT_FILE,
    WEIGHTS_FILE,
    CheckpointError,
    check_weights,
    load_latent_stats,
    load_training_state,
)
from crossingnets.data.depth_file import DEFAULT_LIMITS, DepthImageError, load_depth
from crossingnets.models import MODELS, LatentPoseModel, model_config
from crossingnets_app import launch
from crossingnets_app.launch import OFFLINE_ENV, bundled_checkpoint, exposure_warning, running_app

REPO = Path(__file__).resolve().parents[1]


class RunsCode:
    """Unpickling this writes a file: what a malicious checkpoint would do with a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code ran"))


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny released model folder (config.json, model.safetensors, latent_stats.safetensors)."""
    from crossingnets.pca import LatentStats

    torch.manual_seed(0)
    model = MODELS["crossingnet"](model_config("tiny"))
    stats = LatentStats.fit(np.random.default_rng(0).normal(size=(50, model.config.latent_dims)))
    return model.save_pretrained(tmp_path_factory.mktemp("released") / "model", latent_stats=stats)


def copy_folder(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


# -- loading runs no code ---------------------------------------------------------------------------
def test_a_training_checkpoint_with_objects_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "marker.txt"
    torch.save({"format_version": 1, "model": {}, "payload": RunsCode(marker)}, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="besides tensors and primitives; refused"):
        load_training_state(tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="could run code"):
        cli.main(["train", "--out", str(tmp_path), "--resume", "--no-progress"])
    assert not marker.exists()


def test_a_pickle_as_weights_is_refused_and_runs_nothing(tmp_path, released):
    folder = copy_folder(released, tmp_path / "model")
    marker = tmp_path / "marker.txt"
    torch.save({"w": RunsCode(marker)}, folder / WEIGHTS_FILE)
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        LatentPoseModel.from_pretrained(folder)
    assert not marker.exists()


def test_a_truncated_checkpoint_names_the_file(tmp_path):
    data = torch.nn.Linear(2, 2).state_dict()
    torch.save({"format_version": 1, "model": data}, tmp_path / "checkpoint.pt")
    whole = (tmp_path / "checkpoint.pt").read_bytes()
    (tmp_path / "checkpoint.pt").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(CheckpointError, match="checkpoint.pt is not a readable training checkpoint"):
        load_training_state(tmp_path / "checkpoint.pt")


# -- config.json ------------------------------------------------------------------------------------
def edited_config(released: Path, tmp_path: Path, edit) -> Path:
    folder = copy_folder(released, tmp_path / "model")
    meta = json.loads((folder / CONFIG_FILE).read_text())
    edit(meta)
    (folder / CONFIG_FILE).write_text(json.dumps(meta))
    return folder


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(kind="os.system"), "unknown model kind 'os.system'"),
        (lambda m: m.update(kind=["crossingnet"]), "needs a model kind \\(string\\)"),
        (lambda m: m["config"].update(exec="print(1)"), "unknown model config fields \\['exec'\\]"),
        (
            lambda m: m["config"].update(crop_px={"__class__": "x"}),
            "config fields \\['crop_px'\\] are not numbers",
        ),
        (lambda m: m.update(format_version=99), "format 99, expected 1"),
        (lambda m: m["config"].update(convention="nyu-evil"), "nyu-evil"),
    ],
    ids=[
        "unknown_kind",
        "kind_not_a_string",
        "unknown_field",
        "nested_value",
        "format",
        "unknown_convention",
    ],
)
def test_config_json_is_checked_field_by_field(tmp_path, released, edit, message):
    folder = edited_config(released, tmp_path, edit)
    with pytest.raises(ValueError, match=message):
        LatentPoseModel.from_pretrained(folder)


def test_config_json_that_is_not_json_or_huge_is_refused(tmp_path, released):
    folder = copy_folder(released, tmp_path / "model")
    (folder / CONFIG_FILE).write_bytes(b"\x80\x04K\x01.")  # a pickle
    with pytest.raises(CheckpointError, match="config.json is not JSON"):
        LatentPoseModel.from_pretrained(folder)
    (folder / CONFIG_FILE).write_text(" " * (2 << 20))
    with pytest.raises(CheckpointError, match="bytes, not a model config"):
        LatentPoseModel.from_pretrained(folder)


def meta_shapes(**config) -> dict[str, tuple[int, ...]]:
    """Names and shapes of a tiny Crossing Net's tensors, built on the meta device: no memory is
    allocated, whatever the sizes."""
    with torch.device("meta"):
        model = MODELS["crossingnet"](model_config("tiny", **config))
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize(
    "config",
    [{"gen_channels": 16}, {"gen_channels": 1_000_000, "disc_channels": 1_000_000}, {"convention": "msra"}],
    ids=["wrong_shapes", "absurd_sizes_terabytes", "other_joints"],
)
def test_weights_are_checked_against_the_config_before_anything_is_allocated(released, config):
    check_weights(released, meta_shapes())  # the model's own config fits its weights
    with pytest.raises(
        CheckpointError, match=r"model.safetensors does not fit its config.json: .* the config makes"
    ):
        check_weights(released, meta_shapes(**config))


def test_weights_with_missing_or_extra_tensors_are_refused(released):
    shapes = meta_shapes()
    name = next(iter(shapes))
    with pytest.raises(CheckpointError, match=f"unexpected {re.escape(name)}"):
        check_weights(released, {k: v for k, v in shapes.items() if k != name})
    with pytest.raises(CheckpointError, match="missing extra.weight"):
        check_weights(released, {**shapes, "extra.weight": (1,)})


def test_inconsistent_latent_statistics_are_refused(tmp_path, released):
    from safetensors.torch import load_file, save_file

    folder = copy_folder(released, tmp_path / "model")
    tensors = load_file(folder / LATENT_FILE)
    save_file({**tensors, "mean": tensors["mean"][:-1]}, folder / LATENT_FILE)
    with pytest.raises(CheckpointError, match=r"inconsistent shapes \(\['mean'\]\)"):
        load_latent_stats(folder)
    save_file({k: v for k, v in tensors.items() if k != "std"}, folder / LATENT_FILE)
    with pytest.raises(CheckpointError, match="'std'"):
        load_latent_stats(folder)
    save_file({**tensors, "min": torch.full_like(tensors["min"], float("nan"))}, folder / LATENT_FILE)
    with pytest.raises(CheckpointError, match="non-finite"):
        load_latent_stats(folder)


# -- who can reach the app --------------------------------------------------------------------------
def test_the_app_binds_loopback_unless_told_and_then_says_so(monkeypatch, caplog):
    assert cli.build_parser(["app"]).parse_args(["app"]).host == "127.0.0.1"
    assert exposure_warning("127.0.0.1", False) is None and exposure_warning("localhost", False) is None
    assert "'0.0.0.0' (--host)" in exposure_warning("0.0.0.0", False)
    assert "share link" in exposure_warning("127.0.0.1", True)
    launched = {}

    class Demo:
        def launch(self, **options):
            launched.update(options)

    monkeypatch.setattr(
        launch, "create_app", lambda checkpoint, lifetime, temp_dir, refine_iterations: Demo()
    )
    with caplog.at_level(logging.WARNING, logger=launch.__name__):
        launch.main(cli.build_parser(["app"]).parse_args(["app", "--host", "0.0.0.0"]))
    assert launched["server_name"] == "0.0.0.0"
    assert "without authentication" in caplog.text and "0.0.0.0" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=launch.__name__):
        launch.main(cli.build_parser(["app"]).parse_args(["app"]))
    assert launched["server_name"] == "127.0.0.1" and not caplog.text


# -- file routes and uploads of the running app -----------------------------------------------------
SECRETS = {  # file -> a piece of its content that must never come back
    Path("/etc/passwd"): "root:",
    REPO / "app" / "launch.py": "FILE_LIFETIME_S",
    bundled_checkpoint() / CONFIG_FILE: '"format_version"',
}


@pytest.fixture(scope="module")
def server():
    os.environ.update(OFFLINE_ENV)
    with running_app(bundled_checkpoint()) as url:
        yield urllib.parse.urlparse(url)


def get(server, path: str) -> tuple[int, str]:
    """A GET of `path` exactly as written (no normalisation of `..` or of escapes)."""
    conn = http.client.HTTPConnection(server.hostname, server.port, timeout=30)
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read().decode("latin-1")


def traversals(target: Path) -> list[str]:
    """Ways to name `target` in a URL path: absolute, climbing, percent-encoded, double-encoded."""
    up = "../" * 12 + str(target).lstrip("/")
    encoded = [
        up.replace("/", "%2F"),
        up.replace(".", "%2e"),
        up.replace(".", "%252e"),
        up.replace("/", "%5C"),
    ]
    return [str(target), up, *encoded, "%2F" + str(target).lstrip("/")]


def path_routes() -> set[str]:
    """Every GET route of Gradio's server that takes a parameter (file paths, URLs, names), routers
    included in it too; read from the app Gradio builds around any Blocks."""
    import gradio as gr
    from gradio.routes import App

    with gr.Blocks() as blocks:
        gr.Markdown()
    found, stack = set(), list(App.create_app(blocks).routes)
    while stack:
        route = stack.pop()
        inner = getattr(route, "routes", None) or getattr(
            getattr(route, "original_router", None), "routes", None
        )
        if inner:
            stack.extend(inner)
        elif "{" in getattr(route, "path", "") and "GET" in (getattr(route, "methods", None) or ()):
            found.add(route.path)
    return {r for r in found if not EVENT_STREAMS.search(r)}


EVENT_STREAMS = re.compile(r"/heartbeat/|/call/")  # server-sent events of a session, files of none


def test_no_file_route_serves_a_file_outside_the_app(server):
    """Each parameter of each route gets each traversal of each secret; the app's one static file
    (plotly.min.js) is served, its neighbours are not."""
    from crossingnets_app.ui import PLOTLY_JS

    routes = path_routes()
    assert {
        "/gradio_api/file={path_or_url:path}",
        "/gradio_api/file/{path:path}",
        "/static/{path:path}",
    } <= routes
    secrets = {**SECRETS, PLOTLY_JS.parent / ".." / "__init__.py": "plotly"}
    served, tried = [], 0
    for route in sorted(routes):
        params = re.findall(r"\{[^}]*\}", route)
        for target, content in secrets.items():
            for name in [*traversals(target), f"file://{target}"]:
                for i in range(len(params)):  # the payload in one parameter, "x" in the others
                    path = route
                    for j, param in enumerate(params):
                        path = path.replace(param, name if i == j else "x", 1)
                    status, body = get(server, path)
                    tried += 1
                    if status == 200 and content in body:
                        served.append(path)
    assert not served, f"served files outside the app: {served[:5]}"
    assert tried > 500
    status, body = get(server, f"/gradio_api/file={PLOTLY_JS}")
    assert status == 200 and "plotly" in body[:2000]


def post_upload(server, size: int) -> tuple[int, str]:
    boundary = "crossingnetsboundary"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.npy"\r\nContent-Type: application/octet-stream\r\n\r\n'
    body = head.encode() + b"\0" * size + f"\r\n--{boundary}--\r\n".encode()
    conn = http.client.HTTPConnection(server.hostname, server.port, timeout=120)
    conn.request(
        "POST", "/gradio_api/upload", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    response = conn.getresponse()
    return response.status, response.read().decode("latin-1")


def test_uploads_above_the_limits_are_refused_with_a_message(server, tmp_path):
    status, body = post_upload(server, 64 * 2**20 + 1)
    assert status == 413 and "maximum allowed size" in body
    status, body = post_upload(server, 1000)
    assert status == 200 and "big.npy" in body  # the route works below the limit
    path = tmp_path / "big.npy"
    with path.open("wb") as f:
        f.truncate(DEFAULT_LIMITS.max_bytes + 1)
    with pytest.raises(DepthImageError, match="larger than the limit of 16 MB"):
        load_depth(path)
