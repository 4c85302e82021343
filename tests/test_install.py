"""`pip install .` (a wheel, not editable) into a fresh virtual environment: from another folder,
`crossingnets app` finds the bundled model and the example frames inside the installed package."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

from crossingnets_app.launch import OFFLINE_ENV

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "requirements.txt", "crossingnets", "app", "checkpoints")

# Run by the installed interpreter from a folder outside the checkout.
PROBE = """
import json
import crossingnets, crossingnets_app
from crossingnets_app.launch import bundled_checkpoint, create_app
from crossingnets_app.ui import EXAMPLES_DIR
from crossingnets.cli import build_parser
args = build_parser(["app"]).parse_args(["app"])
create_app(args.checkpoint)  # loads the model and builds the UI with its examples; no server
print(json.dumps({
    "crossingnets": crossingnets.__file__,
    "crossingnets_app": crossingnets_app.__file__,
    "checkpoint": str(args.checkpoint),
    "bundled": str(bundled_checkpoint()),
    "files": sorted(p.name for p in args.checkpoint.iterdir()),
    "examples": sorted(p.name for p in EXAMPLES_DIR.iterdir()),
}))
"""


@pytest.mark.slow
def test_wheel_install_finds_the_bundled_checkpoint_from_another_folder(tmp_path):
    src = tmp_path / "src"  # a copy: pip builds in the source tree, which must stay clean
    src.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, src / name)
    env_dir = tmp_path / "venv"
    # System site-packages provide torch, gradio, pip and setuptools (offline, fast); the venv's
    # own crossingnets comes first on its path, so the installed wheel is what runs.
    venv.create(env_dir, system_site_packages=True)
    python, pip_install = env_dir / "bin" / "python", ("-m", "pip", "install", "--quiet")
    _run(python, *pip_install, "--no-deps", "--no-build-isolation", "--no-index", src)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    found = json.loads(_run(python, "-c", PROBE, cwd=elsewhere).splitlines()[-1])
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    for key in ("crossingnets", "crossingnets_app", "checkpoint"):
        assert Path(found[key]).is_relative_to(site), f"{key} at {found[key]}, not installed in {site}"
    assert found["checkpoint"] == found["bundled"]
    assert {"config.json", "model.safetensors", "latent_stats.safetensors"} <= set(found["files"])
    assert found["examples"] == sorted(p.name for p in (REPO / "app" / "examples").iterdir())
    assert "--checkpoint" in _run(env_dir / "bin" / "crossingnets", "app", "--help", cwd=elsewhere)


def _run(*cmd: str | Path, cwd: Path | None = None) -> str:
    """Stdout of a command run offline, without this checkout on PYTHONPATH."""
    env = {**os.environ, **OFFLINE_ENV, "PYTHONPATH": ""}
    done = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout
