"""The trainer: stages on a toy store, label subsets, determinism, resume, flags."""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest
import torch

from crossingnets import cli, losses
from crossingnets import train as T
from crossingnets.checkpoint import load_latent_stats, load_training_state
from crossingnets.data.training import labeled_subset, load_data
from crossingnets.distributed import Dist
from crossingnets.inference import HandPoseEstimator
from crossingnets.models import CrossingNet, CrossingNetConfig, LatentPoseModel, TrainStep, model_config
from crossingnets.models.batchnorm import recompute_running_stats, running_stats_frozen, trains_batch_norm
from crossingnets.recipes import TrainConfig, data_options, train_config
from crossingnets.trainer import CHECKPOINT_FILE, METRICS_FILE, NonFiniteLossError, Trainer


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, toy_store) -> Path:
    return toy_store(tmp_path_factory.mktemp("data") / "toy.h5", 40)


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / METRICS_FILE).read_text().splitlines()]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_training_state(run / CHECKPOINT_FILE)["model"]


def _tiny_trainer(cfg: TrainConfig, store: Path, out: Path, unlabeled: Path | None = None) -> Trainer:
    """A Trainer of a tiny Crossing Net on the toy store, without running it."""
    data = load_data(store, unlabeled, None, 50.0, **data_options(cfg))
    return Trainer(
        cfg, data, out, CrossingNet(model_config("tiny", convention="icvl")), Dist(), {}, progress=False
    )


@pytest.fixture(scope="module")
def full_run(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All three stages of the tiny preset, uninterrupted."""
    torch.set_num_threads(1)  # module fixtures run before conftest's per-test thread setting
    out = tmp_path_factory.mktemp("runs") / "full"
    summary = T.train(train_config("tiny", label_fraction=0.5), store, out, progress=False)
    assert summary["finished"] and summary["global_step"] == 20
    return out


def test_all_stages_write_run_folder(full_run: Path) -> None:
    lines = _metrics(full_run)
    assert [(m["stage"], m["epoch"]) for m in lines] == [
        ("vae", 1), ("vae", 2), ("gan", 1), ("joint", 1), ("joint", 2)
    ]  # fmt: skip
    assert all(math.isfinite(m["val_mm"]) and m["val_mm"] > 0 for m in lines)
    assert {"loss_pos", "loss_smo", "loss_d_gan", "loss_recons", "loss_g_smo", "loss_g_gan"} <= set(lines[-1])
    meta = json.loads((full_run / "config.json").read_text())
    assert meta["model_config"]["crop_px"] == 32 and meta["train_config"]["preset"] == "tiny"
    assert (meta["num_train"], meta["num_labeled"], meta["num_images"], meta["num_val"]) == (32, 16, 32, 8)
    state = torch.load(full_run / CHECKPOINT_FILE, weights_only=True)
    assert state["stage_index"] == 3 and state["model_config"]["convention"] == "icvl"
    model = CrossingNet.from_pretrained(full_run / "model")
    assert model.config == CrossingNetConfig.from_dict(state["model_config"])
    assert load_latent_stats(full_run / "model").components.shape == (16, 23)
    est = HandPoseEstimator.from_pretrained(full_run)  # a run folder resolves to its model/
    assert est.latent_stats is not None and est.convention.name == "icvl"


def test_same_seed_same_weights_other_seed_differs(store: Path, tmp_path: Path) -> None:
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        cfg = train_config("tiny", label_fraction=0.5, stage="gan", seed=seed)
        T.train(cfg, store, tmp_path / name, progress=False)
    a, b, c = (_weights(tmp_path / n) for n in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["generator.fc.0.weight"], c["generator.fc.0.weight"])


def test_killed_run_resumes_to_identical_weights(
    store: Path, full_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kill a run at step 14 (the last checkpoint is at step 12), resume, finish: bitwise equal."""
    original = Trainer.train_step

    def killed(self: Trainer, stage: str):
        if self.global_step == 14:
            raise KeyboardInterrupt
        return original(self, stage)

    monkeypatch.setattr(Trainer, "train_step", killed)
    with pytest.raises(KeyboardInterrupt):
        T.train(train_config("tiny", label_fraction=0.5), store, tmp_path, progress=False)
    monkeypatch.setattr(Trainer, "train_step", original)
    killed_state = load_training_state(tmp_path / CHECKPOINT_FILE)
    assert killed_state["global_step"] == 12 and killed_state["elapsed_s"] > 0
    with pytest.raises(FileExistsError, match="--resume"):
        T.train(train_config("tiny"), store, tmp_path, progress=False)
    summary = T.resume(tmp_path, progress=False)
    assert summary["finished"] and summary["global_step"] == 20
    # wall time adds up over resumes (the summary rounds to 0.1 s, and rounding keeps the order)
    assert summary["elapsed_s"] >= round(killed_state["elapsed_s"], 1)
    ref, got = _weights(full_run), _weights(tmp_path)
    assert ref.keys() == got.keys() and all(torch.equal(ref[k], got[k]) for k in ref)
    assert _metrics(tmp_path)[-1]["val_mm"] == _metrics(full_run)[-1]["val_mm"]


@pytest.mark.parametrize(
    ("model", "stage", "keys", "preset"),
    [
        ("crossingnet", "vae", ("recons", "kl"), "tiny"),
        ("crossingnet", "gan", ("d_gan",), "tiny"),
        ("crossingnet", "joint", ("pos", "recons", "smo"), "tiny"),
        ("scratch", "supervised", ("pos",), "tiny"),
        ("deepprior", "supervised", ("pose",), "tiny"),
        ("deepprior", "supervised", ("joints",), "tiny-release"),  # the release networks' DeepPrior
    ],
)
def test_each_stage_loss_falls_on_one_fixed_batch(
    tmp_path: Path, model: str, stage: str, keys: tuple[str, ...], preset: str, toy_store
) -> None:
    """One batch holding every frame, labeled and unlabeled alike: each epoch is one step."""
    store = toy_store(tmp_path / "one.h5", 8)
    cfg = train_config(
        preset, model=model, stage=stage, batch_size=8, val_fraction=0.0, warmup_steps=3, save_every=1000, lr=3e-3,
        **{f"epochs_{stage}": 30},
    )  # fmt: skip
    T.train(cfg, store, tmp_path / "run", progress=False)
    lines = _metrics(tmp_path / "run")
    for k in keys:
        first = np.mean([m[f"loss_{k}"] for m in lines[:5] if f"loss_{k}" in m])
        last = np.mean([m[f"loss_{k}"] for m in lines[-5:]])
        assert last < 0.7 * first, (k, first, last)


def test_label_fraction_and_image_pools(store: Path, tmp_path: Path, toy_store) -> None:
    a = labeled_subset(100, 0.3, seed=0)
    assert len(a) == 30 and np.array_equal(a, labeled_subset(100, 0.3, seed=0))
    assert not np.array_equal(a, labeled_subset(100, 0.3, seed=1))
    assert len(labeled_subset(10, 0.01, seed=0)) == 1
    extra = toy_store(tmp_path / "extra.h5", 12, seed=3)
    cfg = train_config("tiny", label_fraction=0.25)
    d = load_data(store, extra, None, 50.0, **data_options(cfg))
    assert (len(d.train), len(d.labeled), len(d.val)) == (32, 8, 8)
    assert len(d.images) == 32 + 12  # every training frame plus the unlabeled pool
    d = load_data(store, extra, None, 50.0, **data_options(replace(cfg, use_unlabeled=False)))
    assert torch.equal(d.images, d.train.depth[d.labeled])
    d = load_data(store, None, extra, 50.0, **data_options(cfg))
    assert (len(d.train), len(d.val)) == (40, 12)
    # Poses: joints relative to the root, the root relative to the crop centre, in 50 mm units.
    t = d.train
    joints = (t.pose.view(len(t), -1, 3) + t.root[:, None]) * 50.0 + t.center_xyz[:, None]
    torch.testing.assert_close(joints, t.joints_xyz, atol=1e-3, rtol=0)
    assert t.pose.view(len(t), -1, 3)[:, 0].abs().max() == 0  # ICVL's root is joint 0


def test_mismatched_stores_are_refused(store: Path, tmp_path: Path, toy_store) -> None:
    other = toy_store(tmp_path / "big.h5", 4, crop_px=64)
    with pytest.raises(ValueError, match="64 px crops"):
        load_data(store, other, None, 50.0, **data_options(train_config("tiny")))


def test_several_training_stores_are_concatenated(store: Path, tmp_path: Path, toy_store, capsys) -> None:
    extra = toy_store(tmp_path / "extra.h5", 12, seed=3)
    cfg = train_config("tiny", val_fraction=0.0)
    one, both = (load_data(s, None, None, 50.0, **data_options(cfg)) for s in (store, [store, extra]))
    assert len(both.train) == len(one.train) + 12
    torch.testing.assert_close(both.train.joints_xyz[: len(one.train)], one.train.joints_xyz)
    torch.testing.assert_close(
        both.train.joints_xyz[len(one.train) :],
        load_data(extra, None, None, 50.0, **data_options(cfg)).train.joints_xyz,
    )
    with pytest.raises(ValueError, match="64 px crops"):
        load_data(
            [store, toy_store(tmp_path / "big.h5", 4, crop_px=64)], None, None, 50.0, **data_options(cfg)
        )
    out = tmp_path / "run"
    args = ["train", "--data", str(store), str(extra), "--preset", "tiny", "--no-progress", "--stage", "vae",
            "--out", str(out), "--max-steps", "1"]  # fmt: skip
    assert cli.main(args) == 0
    assert json.loads((out / "config.json").read_text())["paths"]["data"] == [str(store), str(extra)]
    assert (
        cli.main(["train", "--out", str(out), "--resume", "--no-progress"]) == 0
    )  # the run reads both again
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["finished"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"use_smo": False},
        {"use_gan": False},
        {"use_unlabeled": False},
        {"gan_loss": "nonsaturating"},
        {"bf16": True, "channels_last": True},
    ],
)
def test_joint_stage_options_run(store: Path, tmp_path: Path, overrides: dict) -> None:
    cfg = train_config("tiny", stage="joint", label_fraction=0.5, **overrides)
    summary = T.train(cfg, store, tmp_path, progress=False, max_steps=3)
    assert not summary["finished"] and summary["global_step"] == 3
    state = load_training_state(tmp_path / CHECKPOINT_FILE)
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_config_plans_and_errors() -> None:
    assert train_config("paper").stages == ("vae", "gan", "joint")
    assert train_config("paper", use_gan=False).stages == ("vae", "joint")
    assert train_config("paper", model="scratch").stages == ("vae", "supervised")
    assert train_config("paper", model="deepprior").stages == ("supervised",)
    with pytest.raises(ValueError, match="not 'gan'"):
        train_config("paper", model="deepprior", stage="gan")
    with pytest.raises(ValueError, match="contradicts"):
        train_config("paper", stage="gan", use_gan=False)
    with pytest.raises(ValueError, match="label_fraction"):
        train_config("paper", label_fraction=0.0)


def test_non_finite_loss_stops_the_run(store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(losses, "kl_divergence", lambda mean, logvar: torch.tensor(float("nan")))
    with pytest.raises(NonFiniteLossError, match="non-finite kl loss .* stage vae, epoch 1, step 1"):
        T.train(train_config("tiny", stage="vae"), store, tmp_path, progress=False)


def test_cli_stages_chain_through_init(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`--stage vae`, then `--stage gan --init` the first run: the VAE weights carry over."""
    base = ["train", "--data", str(store), "--preset", "tiny", "--no-progress"]
    assert cli.main([*base, "--out", str(tmp_path / "a"), "--stage", "vae", "--label-fraction", "0.5"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["finished"]
    args = [
        *base,
        "--out",
        str(tmp_path / "b"),
        "--stage",
        "gan",
        "--init",
        str(tmp_path / "a"),
        "--max-steps",
        "2",
    ]
    assert cli.main(args) == 0
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert torch.equal(a["vae.dec_out.weight"], b["vae.dec_out.weight"])
    assert not torch.equal(a["generator.fc.0.weight"], b["generator.fc.0.weight"])
    with pytest.raises(SystemExit, match="drop --lr"):
        cli.main(["train", "--out", str(tmp_path / "b"), "--resume", "--lr", "0.1"])
    assert cli.main(["train", "--out", str(tmp_path / "b"), "--resume", "--no-progress"]) == 0
    assert load_training_state(tmp_path / "b" / CHECKPOINT_FILE)["stage_index"] == 1
    with pytest.raises(ValueError, match="holds a crossingnet model"):
        cli.main([*base, "--out", str(tmp_path / "c"), "--model", "deepprior", "--init", str(tmp_path / "a")])


def test_tensorboard_flag_fails_clearly_without_tensorboard(store: Path, tmp_path: Path) -> None:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="pip install tensorboard"):
            T.train(train_config("tiny", stage="vae"), store, tmp_path, progress=False, tensorboard=True)
    else:
        T.train(
            train_config("tiny", stage="vae"),
            store,
            tmp_path,
            progress=False,
            tensorboard=True,
            max_steps=1,
        )
        assert (tmp_path / "tensorboard").is_dir()


def test_generated_crops_leave_running_statistics_alone() -> None:
    bn = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2)).train()
    before = bn[1].running_mean.clone()
    with running_stats_frozen(bn):
        out = bn(torch.randn(4, 1, 8, 8) + 5.0)
    assert torch.equal(bn[1].running_mean, before) and bn[1].momentum == 0.1
    assert out.mean().abs() < 1e-5  # still normalised by the batch's own statistics
    bn(torch.randn(4, 1, 8, 8) + 5.0)
    assert not torch.equal(bn[1].running_mean, before)


def test_batch_norm_statistics_are_re_estimated_on_real_crops(store: Path, tmp_path: Path) -> None:
    """After an epoch of a stage that trains batch norm (not the VAE's), the depth reader's running
    statistics are those of the final weights on real crops; the generator's are not touched (it
    never reads depth)."""
    cfg = train_config("tiny", stage="gan", epochs_gan=1, bn_frames=16, val_fraction=0.0)
    trainer = _tiny_trainer(cfg, store, tmp_path)
    model, data = trainer.model, trainer.data
    assert trains_batch_norm(model, model.param_groups("gan")["d"])
    assert not trains_batch_norm(model, model.param_groups("vae")["vae"])
    norms = [m for m in model.modules() if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d))]
    for m in norms:
        m.running_mean.fill_(100.0)
    recompute_running_stats(
        model.depth_reader, data.images, cfg.bn_frames, cfg.batch_size, torch.device("cpu")
    )
    images = data.images[torch.linspace(0, len(data.images) - 1, 16).long()]  # two equal batches of 8
    with torch.no_grad():
        conv_out = model.discriminator.trunk[0](images)
    torch.testing.assert_close(model.discriminator.trunk[1].running_mean, conv_out.mean((0, 2, 3)))
    assert all((m.running_mean < 100).all() for m in model.discriminator.modules() if m in norms)
    assert all(
        (m.running_mean == 100).all()
        for m in (*model.generator.modules(), *model.align.modules())
        if m in norms
    )


def test_epochs_take_the_same_steps_at_every_label_fraction_and_pool(
    store: Path, toy_store, tmp_path: Path
) -> None:
    extra = toy_store(tmp_path / "extra.h5", 24, seed=3)
    steps = set()
    for fraction, unlabeled in ((0.1, None), (1.0, None), (0.1, extra)):
        cfg = train_config("tiny", label_fraction=fraction)
        steps.add(_tiny_trainer(cfg, store, tmp_path, unlabeled).steps_per_epoch())
    assert steps == {4}  # 32 training frames, batches of 8


def test_epoch_losses_average_over_the_steps_that_report_them(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The joint warm-up has no GAN terms: they must not be averaged as zeros over its steps."""

    def fake_step(self: CrossingNet, step: TrainStep) -> dict[str, torch.Tensor]:
        gan = {"d_gan": torch.tensor(3.0)} if step.stage_step >= 2 else {}
        return {"pos": torch.tensor(float(step.stage_step)), **gan}

    monkeypatch.setattr(CrossingNet, "step_joint", fake_step)
    T.train(train_config("tiny", stage="joint", epochs_joint=1), store, tmp_path, progress=False)
    [line] = _metrics(tmp_path)
    assert (line["loss_pos"], line["loss_d_gan"]) == (1.5, 3.0)  # steps 0..3; steps 2, 3


def test_every_config_field_is_a_flag_and_the_old_spellings_work() -> None:
    parser = argparse.ArgumentParser()
    T.add_arguments(parser)
    helps = {a.dest: a.help for a in parser._actions if a.help}
    assert all(helps.get(f.name) for f in fields(TrainConfig))  # each field's comment is its help
    old = ["--no-smo", "--no-gan", "--no-unlabeled", "--bf16", "--channels-last", "--gan-loss", "nonsaturating",
           "--stage", "joint", "--model", "crossingnet", "--preset", "tiny", "--lr", "0.01"]  # fmt: skip
    new = ["--kl-weight", "0.5", "--bn-frames", "7", "--beta1", "0.9"]
    cfg = T.config_from_args(parser.parse_args(["--out", "x", *old, *new]))
    assert (cfg.use_smo, cfg.use_gan, cfg.use_unlabeled, cfg.bf16, cfg.channels_last) == (
        False,
        False,
        False,
        True,
        True,
    )
    assert (cfg.gan_loss, cfg.stage, cfg.lr, cfg.batch_size) == ("nonsaturating", "joint", 0.01, 8)
    assert (cfg.kl_weight, cfg.bn_frames, cfg.beta1) == (0.5, 7, 0.9)
    assert parser.parse_args(["--out", "x", "--use-gan"]).use_gan is True
    assert parser.parse_args(["--out", "x"]).use_gan is None  # unset: the preset's value
    with pytest.raises(SystemExit):
        parser.parse_args(["--out", "x", "--bf16", "--no-bf16"])


def test_release_recipe_runs_its_stages_and_ends_on_the_moving_average(toy_store, tmp_path) -> None:
    """tiny-release: vae -> posterior -> adversarial; each stage ends on the EMA of its weights,
    with batch norm re-estimated for it and validated (one metrics line marked ema)."""
    store = toy_store(tmp_path / "toy.h5", 40)
    cfg = train_config("tiny-release")
    assert cfg.stages == ("vae", "posterior", "adversarial")
    summary = T.train(cfg, store, tmp_path / "run", progress=False)
    assert summary["finished"] and math.isfinite(summary["val_mm"])
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [x["stage"] for x in lines if x.get("ema")] == ["vae", "posterior", "adversarial"]
    adversarial = [x for x in lines if x["stage"] == "adversarial" and not x.get("ema")]
    assert {"loss_d_gan", "loss_g_gan", "loss_smo", "loss_joints"} <= set(adversarial[0])
    model = LatentPoseModel.from_pretrained(tmp_path / "run" / "model")
    assert model.config.arch == "resnet"


def test_one_cycle_learning_rate_warms_up_then_decays_to_zero() -> None:
    cfg = train_config("tiny-release", warmup_fraction=0.25)
    lrs = [cfg.lr_at("posterior", i, 8) for i in range(8)]
    assert lrs[:2] == pytest.approx([cfg.lr / 2, cfg.lr])
    assert all(a > b for a, b in zip(lrs[2:], lrs[3:], strict=False)) and lrs[-1] < 0.1 * cfg.lr
    assert train_config("paper").lr_at("joint", 5, 8) == train_config("paper").lr


def test_rotation_augmentation_turns_each_crop_with_its_joints(store: Path, tmp_path: Path) -> None:
    """`rotate_deg`: a labeled batch's crops and joints turn together, by angles the step seeds."""
    plain = _tiny_trainer(train_config("tiny"), store, tmp_path / "a")
    turned = _tiny_trainer(train_config("tiny", rotate_deg=30.0), store, tmp_path / "b")
    a, b = plain._batch("labeled"), turned._batch("labeled")
    joints = lambda x: x["pose"].unflatten(1, (-1, 3)) + x["root"][:, None]  # noqa: E731
    ja, jb = joints(a), joints(b)
    # a turn about the crop centre's z axis: xy distances to the centre and depths are kept
    torch.testing.assert_close(ja[..., :2].norm(dim=-1), jb[..., :2].norm(dim=-1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ja[..., 2], jb[..., 2])
    angle = torch.atan2(ja[..., 1], ja[..., 0]) - torch.atan2(jb[..., 1], jb[..., 0])
    angle = torch.rad2deg(torch.remainder(angle + math.pi, 2 * math.pi) - math.pi)  # per joint
    per_frame = angle.median(dim=1).values
    assert per_frame.abs().max() <= 30.0 + 1e-3 and per_frame.abs().max() > 1.0
    torch.testing.assert_close(angle, per_frame[:, None].expand_as(angle), atol=1e-3, rtol=0)  # rigid
    # the crop turned by the same angle: turned back it is far closer to the unturned crop than
    # turned the wrong way
    from crossingnets.rotation import turn_crops

    centre = slice(8, 24)
    gap = lambda x: (x[..., centre, centre] - a["depth"][..., centre, centre]).abs().mean()  # noqa: E731
    assert gap(turn_crops(b["depth"], -per_frame)) < 0.5 * gap(turn_crops(b["depth"], per_frame))
    torch.testing.assert_close(turned._batch("labeled")["depth"], b["depth"])  # seeded by the step


def test_new_generator_replaces_only_the_generator_and_render_trains_only_it(
    store: Path, tmp_path: Path, toy_store
) -> None:
    """`--stage render --init A --new-generator skeleton` on another store: A's VAE and
    discriminator (its batch-norm statistics too) carry over bit for bit, a fresh skeleton
    generator and Ali learn to draw the labeled crops."""
    base = ["--preset", "tiny-release", "--no-progress", "--lr", "3e-3"]
    a, b = tmp_path / "a", tmp_path / "b"
    assert cli.main(["train", "--data", str(store), *base, "--out", str(a), "--stage", "vae"]) == 0
    other = toy_store(tmp_path / "other.h5", 40, seed=7)
    base = ["train", "--data", str(other), *base]
    render = [*base, "--out", str(b), "--stage", "render", "--epochs-render", "12", "--init", str(a)]
    assert (
        cli.main(
            [*render, "--new-generator", "skeleton", "--new-generator-width", "6", "--new-generator-view"]
        )
        == 0
    )
    wa, wb = _weights(a), _weights(b)
    assert not any(k.startswith("generator.keypoint_head") for k in wa)
    assert wb["generator.body.0.weight"].shape[0] == 6
    for k, v in wa.items():
        if k.startswith(("vae.", "discriminator.")):
            assert torch.equal(v, wb[k]), k
    assert not torch.equal(wa["align.fc.weight"], wb["align.fc.weight"])
    lines = [m for m in _metrics(b) if not m.get("ema")]
    assert lines[-1]["loss_recons"] < 0.8 * lines[0]["loss_recons"]
    released = LatentPoseModel.from_pretrained(b / "model")
    assert released.config.gen_arch == "skeleton" and released.config.gen_view
    for k, v in LatentPoseModel.from_pretrained(a / "model").state_dict().items():
        if k.startswith(("vae.", "discriminator.")):  # batch-norm statistics too: the crops read alike
            assert torch.equal(v, released.state_dict()[k]), k
    with pytest.raises(SystemExit, match="give --init"):
        cli.main([*base, "--out", str(tmp_path / "c"), "--new-generator", "skeleton"])
    with pytest.raises(SystemExit, match="needs --new-generator"):
        cli.main([*base, "--out", str(tmp_path / "c"), "--init", str(a), "--new-generator-width", "4"])
    with pytest.raises(SystemExit, match="needs --new-generator"):
        cli.main([*base, "--out", str(tmp_path / "c"), "--init", str(a), "--new-generator-view"])


def test_posterior_stage_with_render_every_0_leaves_generator_and_ali_alone(
    store: Path, tmp_path: Path
) -> None:
    """`--render-every 0`: the posterior stage trains the depth reader only; the generator and Ali
    (weights and batch-norm statistics) stay bit for bit as `--init` had them (with 1, they learn)."""
    a = tmp_path / "a"
    base = ["train", "--data", str(store), "--preset", "tiny-release", "--no-progress"]
    assert cli.main([*base, "--out", str(a), "--stage", "vae"]) == 0
    for every, same in (("0", True), ("1", False)):
        b = tmp_path / f"b{every}"
        cmd = [*base, "--out", str(b), "--stage", "posterior", "--init", str(a), "--render-every", every]
        assert cli.main(cmd) == 0
        wa, wb = _weights(a), _weights(b)
        kept = [torch.equal(v, wb[k]) for k, v in wa.items() if k.startswith(("generator.", "align."))]
        assert all(kept) if same else not all(kept)
        posterior = [torch.equal(v, wb[k]) for k, v in wa.items() if k.startswith("discriminator.posterior.")]
        assert posterior and not all(posterior)


@pytest.mark.parametrize(("flag", "dropped", "kept"), [
    ("use_gan", {"loss_d_gan", "loss_g_gan"}, {"loss_smo", "loss_g_smo"}),
    ("use_smo", {"loss_smo", "loss_g_smo"}, {"loss_d_gan", "loss_g_gan"}),
])  # fmt: skip
def test_adversarial_stage_ablations_drop_their_terms(toy_store, tmp_path, flag, dropped, kept) -> None:
    """The release recipe's adversarial stage honours --no-gan and --no-smo (issue 12's ablations)."""
    store = toy_store(tmp_path / "toy.h5", 40)
    T.train(train_config("tiny-release", **{flag: False}), store, tmp_path / "run", progress=False)
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    adversarial = [x for x in lines if x["stage"] == "adversarial" and not x.get("ema")][0]
    assert not dropped & set(adversarial) and kept <= set(adversarial)


def test_mean_teacher_reads_with_the_moving_average_and_puts_the_weights_back(
    store: Path, tmp_path: Path
) -> None:
    """The teacher is the weights' moving average, its batch norm on the batch's own statistics;
    the weights and the running statistics are left as they were."""
    trainer = _tiny_trainer(train_config("tiny-release"), store, tmp_path / "run")
    model = trainer.model.train()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    stats = {n: b.clone() for n, b in model.named_buffers()}
    trainer.ema = {n: 0.5 * p.detach() for n, p in model.named_parameters() if n.startswith("discriminator.")}
    crops = trainer.data.train.depth[:6]
    reference = CrossingNet(model.config)
    reference.load_state_dict(model.state_dict())
    with torch.no_grad():
        for n, p in reference.named_parameters():
            if n in trainer.ema:
                p.copy_(trainer.ema[n])
        expected = reference.train().estimate_latent(crops)
        on_running_stats = reference.eval().estimate_latent(crops)
    got = trainer._teacher(crops)
    torch.testing.assert_close(got, expected)
    assert not torch.allclose(got, on_running_stats, atol=1e-3)
    assert not got.requires_grad and model.training
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    assert all(torch.equal(b, stats[n]) for n, b in model.named_buffers() if "num_batches" not in n)


@pytest.mark.parametrize("warmup", [False, True])
def test_a_warming_average_is_the_plain_mean_until_its_decay_is_the_slower(store, tmp_path, warmup) -> None:
    """`ema_warmup`: decay min(ema_decay, 1 - 1 / (1 + step)): after k updates of weights w_0..w_k
    the average is their mean (while 1 / (k + 1) > 1 - ema_decay); without it, w_0 decays slowly."""
    cfg = train_config("tiny-release", ema_decay=0.9, ema_warmup=warmup)
    trainer = _tiny_trainer(cfg, store, tmp_path / "run")
    trainer._make_optimizers("posterior")
    params = trainer._trained_parameters()
    name, p = next(iter(params.items()))
    seen = []
    for k in range(12):
        with torch.no_grad():
            p.fill_(float(k))
        seen.append(float(k))
        trainer._update_ema(k)
        if k <= 8 and warmup:  # 1 / (k + 1) >= 0.1 up to k = 9
            torch.testing.assert_close(trainer.ema[name], torch.full_like(p, np.mean(seen)))
    plain = 0.0
    for k in range(1, 12):
        plain = 0.9 * plain + 0.1 * k
    if not warmup:
        torch.testing.assert_close(trainer.ema[name], torch.full_like(p, plain))
    else:  # the mean of 0..9 (k = 9: decay exactly 0.9), then two steps at 0.9
        torch.testing.assert_close(
            trainer.ema[name], torch.full_like(p, 0.9 * (0.9 * 4.5 + 0.1 * 10) + 0.1 * 11)
        )


def test_consistency_term_trains_on_unlabeled_crops(toy_store, tmp_path) -> None:
    """`w_consistency`: the posterior and adversarial stages add the mean-teacher term (reported as
    loss_consistency); it falls as the student learns to agree with its teacher under turns."""
    store = toy_store(tmp_path / "toy.h5", 40)
    cfg = train_config("tiny-release", w_consistency=1.0, epochs_posterior=6)
    T.train(cfg, store, tmp_path / "run", progress=False)
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    terms = [
        x["loss_consistency"]
        for x in lines
        if x["stage"] in ("posterior", "adversarial") and not x.get("ema")
    ]
    assert len(terms) == 7 and all(math.isfinite(t) for t in terms)
    assert min(terms[1:6]) < terms[0]
    with pytest.raises(ValueError, match="consistency_deg"):
        train_config("tiny-release", consistency_deg=0.0)


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_optimisers_are_fused_on_the_cpu_and_step_as_the_loop_does(store, tmp_path, optimizer) -> None:
    """The trainer's optimisers take the fused kernel on the CPU; a step moves the weights as the
    per-tensor loop does."""
    cfg = train_config("tiny-release", optimizer=optimizer)
    trainer = _tiny_trainer(cfg, store, tmp_path / "run")
    trainer._make_optimizers("posterior")
    for opt in trainer.optimizers.values():
        assert opt.defaults["fused"] is True
        params = [p for g in opt.param_groups for p in g["params"]]
        before = [p.detach().clone() for p in params]
        copies = [p.detach().clone().requires_grad_() for p in params]
        d = opt.defaults
        loop = type(opt)(copies, lr=d["lr"], betas=d["betas"], weight_decay=d["weight_decay"], foreach=False)
        for p, q in zip(params, copies, strict=True):
            p.grad = torch.full_like(p, 0.5)
            q.grad = torch.full_like(q, 0.5)
        opt.step()
        loop.step()
        assert not torch.equal(params[0], before[0])
        for p, q in zip(params, copies, strict=True):
            torch.testing.assert_close(p, q)


def test_kinematic_generator_through_the_release_stages(store: Path, tmp_path: Path) -> None:
    """`--new-generator kinematic` trains in the render stage (only the generator and Ali move, its
    joints' loss falls) and then through the adversarial stage, whose GAN and L_smo terms it cannot
    follow (its drawing has no gradient) while its joint loss still trains it."""
    base = ["train", "--data", str(store), "--preset", "tiny-release", "--no-progress"]
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert cli.main([*base, "--out", str(a), "--stage", "vae"]) == 0
    render = ["--stage", "render", "--epochs-render", "6", "--lr", "3e-3"]
    assert cli.main([*base, "--out", str(b), *render, "--init", str(a), "--new-generator", "kinematic"]) == 0
    wa, wb = _weights(a), _weights(b)
    assert any(k.startswith("generator.head.") for k in wb)
    for k, v in wa.items():
        if k.startswith(("vae.", "discriminator.")):
            assert torch.equal(v, wb[k]), k
    lines = [m for m in _metrics(b) if not m.get("ema")]
    assert lines[-1]["loss_recons"] < 0.8 * lines[0]["loss_recons"]
    assert cli.main([*base, "--out", str(c), "--stage", "adversarial", "--init", str(b)]) == 0
    adversarial = [m for m in _metrics(c) if m["stage"] == "adversarial" and not m.get("ema")]
    # the discriminator learns from its drawings; the generator's own GAN and L_smo terms, which
    # could not move it, are not computed
    assert {"loss_d_gan", "loss_smo", "loss_recons"} <= set(adversarial[0])
    assert not {"loss_g_gan", "loss_g_smo"} & set(adversarial[0])
    assert all(math.isfinite(m["loss_recons"]) for m in adversarial)
    wc = _weights(c)
    assert not torch.equal(wb["generator.head.0.weight"], wc["generator.head.0.weight"])
    assert LatentPoseModel.from_pretrained(c / "model").config.gen_arch == "kinematic"
