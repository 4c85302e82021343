"""Fuzzing the app's upload path (`crossingnets.explorer.upload`, called directly on the bundled
model): any file, camera and hand centre gives a full view (finite joints, the JSON and CSV
downloads) or a clear error, and the frame preview likewise (the contract of `tests/fuzzing.py`;
the error names the file or the field to change). The mesh download takes no user input (the
joints of the last estimate, kept on the server) and is left out: it is the slowest call.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from fuzzing import EDGE_FLOATS, clear_outcome, fuzz_settings, mutated, timeout
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from crossingnets.explorer.space import Explorer
from crossingnets.explorer.upload import CAMERA_CHOICES, preview_view, upload_view
from crossingnets_app.launch import bundled_checkpoint

EXAMPLES = Path(__file__).resolve().parents[1] / "app" / "examples"
BASES = {p.name: p.read_bytes() for p in sorted(EXAMPLES.iterdir()) if p.suffix in (".png", ".bin")}
FIELDS = ("camera", "centre", "fx", "fy", "cx", "cy", "unit")  # what a message may name besides the file
FRAME_SIZES = [(480, 640), (240, 320), (60, 80)]

pytestmark = [timeout(scale=0.4), pytest.mark.usefixtures("fuzz_warm")]


@pytest.fixture(scope="module")
def ex() -> Explorer:
    return Explorer.load(bundled_checkpoint(), EXAMPLES)


@st.composite
def depth_files(draw: st.DrawFn) -> tuple[str, bytes]:
    """(name, bytes): an example as shipped or mutated, a 16-bit PNG of a blob anywhere at any
    depth, or random bytes."""
    kind = draw(st.sampled_from(["example", "mutated", "blob", "random"]))
    if kind in ("example", "mutated"):
        name = draw(st.sampled_from(sorted(BASES)))
        return name, BASES[name] if kind == "example" else draw(mutated(BASES[name]))
    if kind == "random":
        return draw(st.sampled_from(["random.png", "random.npy", "random.bin"])), draw(
            st.binary(max_size=2048)
        )
    height, width = draw(st.sampled_from(FRAME_SIZES))
    depth = np.zeros((height, width), np.uint16)
    v, u, r = draw(st.integers(0, height - 1)), draw(st.integers(0, width - 1)), draw(st.integers(1, 60))
    depth[max(0, v - r) : v + r, max(0, u - r) : u + r] = draw(
        st.sampled_from([1, 100, 600, 1999, 2500, 65535])
    )
    buf = io.BytesIO()
    Image.fromarray(depth).save(buf, format="PNG")
    return "blob.png", buf.getvalue()


CAMERAS = st.sampled_from([*CAMERA_CHOICES, "", "kinect"])
CUSTOM = st.one_of(
    st.none(),
    st.tuples(*[EDGE_FLOATS] * 4),
    st.tuples(*[st.floats(1, 2000)] * 2, *[st.floats(-100, 800)] * 2),
)
CENTERS = st.one_of(
    st.none(),
    st.tuples(*[EDGE_FLOATS] * 3),
    st.tuples(st.floats(-10, 700), st.floats(-10, 500), st.floats(-1, 3000)),
)


def names(file_name: str) -> tuple[str, ...]:
    return (file_name, *FIELDS)


@fuzz_settings(scale=0.4)
@given(file=depth_files(), camera=CAMERAS, custom=CUSTOM, center=CENTERS)
def test_upload_view(ex, fuzz_folder, file, camera, custom, center):
    name, data = file
    path = fuzz_folder / name
    path.write_bytes(data)
    out = fuzz_folder / "out"
    out.mkdir(exist_ok=True)
    view = clear_outcome(lambda: upload_view(ex, path, camera, custom, center, out), names(name))
    if isinstance(view, ValueError):
        return
    assert view.joints_xyz_mm.shape == (ex.convention.num_joints, 3) and np.isfinite(view.joints_xyz_mm).all()
    assert np.isfinite(view.latent).all()
    record = json.loads(Path(view.files[0]).read_text())
    assert len(record["joints"]) == ex.convention.num_joints


@fuzz_settings(scale=0.4)
@given(file=depth_files(), camera=CAMERAS, custom=CUSTOM, center=CENTERS)
def test_preview_view(ex, fuzz_folder, file, camera, custom, center):
    """Only an unreadable file raises; a camera or centre that does not fit is said in the caption."""
    name, data = file
    path = fuzz_folder / name
    path.write_bytes(data)
    preview = clear_outcome(lambda: preview_view(ex, path, camera, custom, center), (name,))
    if not isinstance(preview, ValueError):
        assert preview.image.size[0] > 0 and isinstance(preview.caption, str)
