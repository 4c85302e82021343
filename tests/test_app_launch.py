"""`crossingnets app`: its options, the bundled model it finds, a clear exit on a folder that
holds no model; importing the UI starts nothing."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from crossingnets.cli import build_parser, main
from crossingnets_app.launch import BUNDLED_MODEL, OFFLINE_ENV, bundled_checkpoint, launch_options


def test_defaults_serve_the_bundled_checkpoint_on_loopback():
    args = build_parser(["app"]).parse_args(["app"])
    assert args.checkpoint == bundled_checkpoint() and (args.checkpoint / "config.json").is_file()
    assert args.checkpoint.name == BUNDLED_MODEL
    assert (args.host, args.port, args.share) == ("127.0.0.1", None, False)
    assert args.refine_iterations is None  # the model's own
    options = launch_options(args.host, 7860)
    assert (
        options["server_name"] == "127.0.0.1"
        and options["share"] is False
        and options["run_history"] is False
    )


def test_missing_checkpoint_exits_with_a_message(tmp_path):
    with pytest.raises(SystemExit, match="no model at"):
        main(["app", "--checkpoint", str(tmp_path)])


def test_negative_refinement_exits_with_a_message():
    with pytest.raises(SystemExit, match="--refine-iterations must be 0 or more"):
        main(["app", "--refine-iterations", "-1"])


def test_importing_the_app_loads_no_model_and_starts_no_server():
    code = (
        "import sys, crossingnets_app.ui, crossingnets_app.launch\n"
        "assert 'crossingnets.inference' not in sys.modules and 'crossingnets.models' not in sys.modules\n"
        "import threading; assert threading.active_count() == 1, threading.enumerate()\n"
    )
    env = {**os.environ, **OFFLINE_ENV}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)


def test_old_event_folders_are_pruned_and_new_ones_kept(tmp_path):
    """The events' own output folders are deleted once older than the file lifetime (the soak
    found them growing by ~13 files a second under load)."""
    import os
    import time

    from crossingnets_app.ui import prune_old

    old, new = tmp_path / "old", tmp_path / "new"
    for folder in (old, new):
        folder.mkdir()
        (folder / "image.png").write_bytes(b"x")
    past = time.time() - 700
    for entry in (old / "image.png", old):
        os.utime(entry, (past, past))
    prune_old(tmp_path, 600)
    assert not old.exists() and (new / "image.png").exists()


def test_gradio_cache_loses_what_is_older_than_the_lifetime(tmp_path):
    """Gradio's schedule left cached outputs and empty upload temp files behind (the soak); they go
    once older than the lifetime, folders by the newest of their files."""
    import os
    import time

    from crossingnets_app.ui import prune_old

    old, fresh, touched = tmp_path / "a1b2", tmp_path / "e5f6", tmp_path / "c3d4"
    for folder in (old, fresh, touched):
        folder.mkdir()
        (folder / "image.png").write_bytes(b"x")
    stray, new_stray = tmp_path / "tmpq1w2e3", tmp_path / "tmpz9x8c7"
    stray.write_bytes(b"")
    new_stray.write_bytes(b"")
    past = time.time() - 700
    for entry in (old, old / "image.png", stray, touched):
        os.utime(entry, (past, past))  # `touched`: an old folder whose file was written just now
    prune_old(tmp_path, 600)
    assert not old.exists() and not stray.exists()
    assert (fresh / "image.png").exists() and (touched / "image.png").exists() and new_stray.exists()
