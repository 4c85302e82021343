import numpy as np
import pytest

from crossingnets.camera import CAMERAS
from crossingnets.cli import main as cli
from crossingnets.data import synthetic
from crossingnets.data.preprocess import uvd_to_crop
from crossingnets.data.store import load_arrays, read_info
from crossingnets.data.synthetic import GenerateConfig, generate

TINY = GenerateConfig(batch_frames=6, crop_px=32)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("gen") / "s.h5"
    return generate(path, 10, seed=5, cfg=TINY, progress=False)


def test_schema_and_attributes(store):
    info = read_info(store)
    assert info.num_frames == 10 and info.convention.name == "nyu"
    assert info.crop.crop_px == 32 and info.crop.cube_mm == 300.0
    assert info.camera == CAMERAS["nyu"] and info.attrs["source"] == "synthetic" and info.attrs["seed"] == 5
    a = load_arrays(store)
    assert a["depth"].shape == (10, 1, 32, 32) and a["joints_xyz"].shape == (10, 14, 3)
    assert a["depth"].min() >= -1 and a["depth"].max() == 1


def test_joints_lie_on_the_rendered_hand(store):
    """The palm joint projects onto hand pixels of the crop, at about the crop's depth there."""
    info, a = read_info(store), load_arrays(store)
    for depth, uvd, com in zip(a["depth"][:, 0], a["joints_uvd"], a["com_uvd"], strict=True):
        u, v, d = uvd_to_crop(uvd[info.convention.root], com, info.camera, info.crop)
        assert 0 <= u < 32 and 0 <= v < 32
        patch = depth[int(v) - 1 : int(v) + 2, int(u) - 1 : int(u) + 2]
        assert (patch < 1).any(), "palm joint falls on background"
        # The palm centre is inside the hand: the visible surface there is in front of it (palm or
        # back of the hand, or fingers curled over it), by less than a fist's depth.
        gap_mm = (d - patch[patch < 1].min()) * 150
        assert -10 < gap_mm < 80


def test_same_seed_gives_bitwise_identical_files(store, tmp_path):
    again = generate(tmp_path / "again.h5", 10, seed=5, cfg=TINY, progress=False)
    assert again.read_bytes() == store.read_bytes()
    other = generate(tmp_path / "other.h5", 10, seed=6, cfg=TINY, progress=False)
    assert not np.array_equal(load_arrays(other)["joints_xyz"], load_arrays(store)["joints_xyz"])


def test_interrupted_generate_leaves_nothing(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        yield from original(*args, **kwargs)
        raise KeyboardInterrupt

    original = synthetic.iter_frames
    monkeypatch.setattr(synthetic, "iter_frames", interrupted)
    with pytest.raises(KeyboardInterrupt):
        generate(tmp_path / "x.h5", 6, seed=0, cfg=TINY, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_cli_writes_store_and_contact_sheet(tmp_path):
    out, sheet = tmp_path / "c.h5", tmp_path / "sheet.png"
    argv = ["generate", "--convention", "icvl", "-n", "3", "--crop-px", "32", "--out", str(out)]
    assert cli([*argv, "--sheet", str(sheet)]) == 0
    assert read_info(out).convention.name == "icvl" and read_info(out).camera == CAMERAS["icvl"]
    assert sheet.stat().st_size > 0
    with pytest.raises(FileExistsError, match="--overwrite"):
        cli(argv)


@pytest.mark.parametrize(
    "argv, error, match",
    [
        (["-n", "0"], ValueError, "positive"),
        (["-n", "2", "--convention", "kinect"], SystemExit, "2"),
    ],
)
def test_cli_bad_input(tmp_path, argv, error, match):
    with pytest.raises(error, match=match):
        cli(["generate", "--out", str(tmp_path / "x.h5"), *argv])
    assert not (tmp_path / "x.h5").exists()


def test_unwritable_output_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        generate(tmp_path / "no" / "x.h5", 2, seed=0, cfg=TINY, progress=False)


def test_given_hands_are_rendered_in_order():
    from crossingnets.hand.kinematics import forward_kinematics, landmarks_to_joints
    from crossingnets.hand.sampler import sample_hands

    cam = CAMERAS["nyu"]
    pose, shape = sample_hands(np.random.default_rng(3), 7, cam)
    batches = list(synthetic.iter_posed_frames(pose, shape, seed=0, cfg=TINY))
    joints = np.concatenate([b["joints_xyz"] for b in batches])
    expected = landmarks_to_joints(forward_kinematics(pose, shape), synthetic.get_convention("nyu"))
    np.testing.assert_allclose(joints, expected, atol=1e-4)
    assert [len(b["depth"]) for b in batches] == [6, 1]
