"""The README's Python example runs as written, on the bundled checkpoint."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_python_example_runs(monkeypatch):
    monkeypatch.chdir(README.parent)  # the example's paths are relative to the repo root
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no Python example"
    scope: dict = {}
    exec(blocks[0], scope)
    assert scope["pose"].joints_xyz_mm.shape == (14, 3)
    assert scope["depth_mm"].shape == (480, 640)
