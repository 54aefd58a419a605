"""Training: config resolution, the joint loss, data draws, seeding, resume, early stopping,
the ablation variants and a VGG-16 run, on a tiny real data set."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from liveness.cli import main
from model.config import MOTION_DIM, NetworkConfig
from model.network import LivenessOutput, build_network
from tests.training.train_fixtures import tiny_config, tiny_dataset
from training.cache import PreprocessCache
from training.config import (
    VARIANTS,
    ConfigError,
    TrainConfig,
    load_config,
    parse_set,
    resolve_config,
    variant_of,
)
from training.datasets import load_dataset
from training.train.data import Augmentation, WindowPool, load_clips
from training.train.loop import METRICS_NAME, TEST_METRICS_NAME, train
from training.train.state import (
    BEST_NAME,
    LAST_NAME,
    CheckpointError,
    EarlyStopping,
    joint_loss,
    load_checkpoint,
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, real_clip_paths):
    return tiny_dataset(tmp_path_factory.getbasetemp(), real_clip_paths)


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory):
    return tmp_path_factory.mktemp("train_cache")


def _lines(run_dir):
    return [json.loads(line) for line in (run_dir / METRICS_NAME).read_text().splitlines()]


def _same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- config --------------------------------------------------------------------------------
def test_config_layers_apply_in_order(tmp_path):
    base = resolve_config("smoke")
    assert base.preprocess.crop.input_size == 32 and base.network.input_size == 32
    assert base.preprocess.window.length == 4 and base.epochs == 2
    assert base.lr == TrainConfig().lr  # not listed in smoke.toml: the default
    over = resolve_config("smoke", "cnn-lstm-m", ["network.hidden=24", "lr=3e-4", "seed=7"])
    assert (over.network.hidden, over.lr, over.seed) == (24, 3e-4, 7)
    assert over.network.attention is False and over.preprocess.magnifier.enabled is True
    assert parse_set("preprocess.magnifier.alpha=20") == {
        "preprocess": {"magnifier": {"alpha": 20}}
    }
    assert parse_set("train_data=/data/x?split=train") == {"train_data": "/data/x?split=train"}
    vgg = resolve_config("vgg16")
    assert vgg.network.backbone == "vgg16" and vgg.network.input_size == 224
    with pytest.raises(ConfigError, match="unknown training config keys"):
        resolve_config(sets=["epoch=3"])
    with pytest.raises(ConfigError, match="must be int"):
        resolve_config(sets=["epochs=1.5"])
    # the input size is declared once: the crop follows network.input_size
    small = resolve_config(sets=["network.input_size=64"])
    assert small.preprocess.crop.input_size == 64
    assert "input_size" not in small.to_dict()["preprocess"]["crop"]
    with pytest.raises(ConfigError, match="set that instead"):
        resolve_config(sets=["preprocess.crop.input_size=64"])
    both = ["preprocess.crop.input_size=64", "network.input_size=64"]  # the older habit
    assert resolve_config(sets=both) == small
    legacy = {**small.to_dict(), "preprocess": dataclasses.asdict(small.preprocess)}
    assert TrainConfig.from_dict(legacy) == small  # a run config.json carrying both
    with pytest.raises(ConfigError, match="no config file"):
        resolve_config("no-such-config")
    # the motion descriptor reads the face at the centre of its crop
    assert resolve_config(sets=["network.motion=flow"]).network.motion == "flow"
    with pytest.raises(ConfigError, match="needs preprocess.crop.border 'replicate'"):
        resolve_config(sets=["network.motion=flow", "preprocess.crop.border=shift"])


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_each_variant_builds_its_network(variant):
    config = resolve_config("smoke", variant)
    temporal, attention, magnify = VARIANTS[variant]
    assert config.network.temporal == temporal
    assert config.network.attention == attention
    assert config.preprocess.magnifier.enabled == magnify
    assert variant_of(config) == variant
    net = build_network(config.network)
    if temporal == "none":
        assert net.head is None  # clip score = mean of frame scores
    else:
        assert net.head is not None and (net.head.attention is not None) == attention
    out = net.eval()(torch.zeros(2, 4, 3, 32, 32))
    assert out.logits.shape == (2, 2) and out.frame_logits.shape == (2, 4, 2)
    if not attention:
        torch.testing.assert_close(out.attention, torch.full((2, 4), 0.25))


# -- loss and data -------------------------------------------------------------------------
def test_joint_loss_equals_a_hand_computation():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.25]])  # B = 2
    frame_logits = torch.tensor([[[1.0, 0.0], [0.0, 3.0]], [[-2.0, 2.0], [0.0, 0.0]]])  # T = 2
    targets = torch.tensor([0, 1])
    out = LivenessOutput(logits, torch.full((2, 2), 0.5), frame_logits)

    def ce(z, y):  # -log softmax(z)[y]
        return float(np.log(np.exp(z).sum()) - z[y])

    seq = (ce(np.array([2.0, -1.0]), 0) + ce(np.array([0.5, 0.25]), 1)) / 2
    frames = [ce(np.array(z), y) for z, y in [([1, 0], 0), ([0, 3], 0), ([-2, 2], 1), ([0, 0], 1)]]
    loss = joint_loss(out, targets, frame_loss_weight=0.3)
    assert loss.sequence.item() == pytest.approx(seq, rel=1e-6)
    assert loss.frame.item() == pytest.approx(np.mean(frames), rel=1e-6)
    assert loss.total.item() == pytest.approx(seq + 0.3 * np.mean(frames), rel=1e-6)
    assert joint_loss(out, targets, 0.0).total.item() == pytest.approx(seq, rel=1e-6)


def test_augmentation_is_the_same_for_every_frame():
    rng = np.random.default_rng(0)
    window = rng.integers(20, 230, size=(3, 8, 8, 3)).astype(np.uint8)
    flipped = Augmentation(True, 0.0, 1.0).apply(window)
    np.testing.assert_array_equal(flipped, window[:, :, ::-1])
    brighter = Augmentation(False, 0.05, 1.0).apply(window)
    assert np.all(brighter.astype(int) - window == round(0.05 * 255))  # one offset for all
    stretched = Augmentation(False, 0.0, 1.2).apply(window).astype(float)
    mean = window.astype(float).mean()
    expected = np.clip(np.rint((window - mean) * 1.2 + mean), 0, 255)  # one mean: the window's
    np.testing.assert_allclose(stretched, expected, atol=0.5)


@pytest.fixture(scope="module")
def pool(dataset, cache_root):
    config = tiny_config(dataset, cache_root)
    train_records = load_dataset(config.train_data)
    cache = PreprocessCache(cache_root, config.preprocess)
    cache.build(train_records, progress=False)
    clips = load_clips(train_records, cache)
    pool = WindowPool(clips, train_records, 4, config.window_stride)
    pool.records = train_records  # for tests that regroup the clips
    return config, pool


def test_draws_are_seeded_and_class_balanced(pool):
    config, windows = pool
    aug = {"flip_prob": 0.5, "brightness": 0.1, "contrast": 0.1}
    a = windows.draw_epoch(3, 1, 4, balance=True, augment=aug)
    b = windows.draw_epoch(3, 1, 4, balance=True, augment=aug)
    c = windows.draw_epoch(3, 2, 4, balance=True, augment=aug)
    assert np.array_equal(a.windows, b.windows) and a.augmentations == b.augmentations
    assert not np.array_equal(a.windows, c.windows)
    assert len(a) % 4 == 0 and len(a) >= len(windows) - 3
    # One genuine clip among all the attacks: a minority, yet drawn about half the time.
    first_genuine = next(i for i, r in enumerate(windows.records) if r.is_genuine)
    keep = [i for i, r in enumerate(windows.records) if not r.is_genuine or i == first_genuine]
    lopsided = WindowPool(
        [windows.clips[i] for i in keep], [windows.records[i] for i in keep], 4, 2
    )
    counts = lopsided.class_counts()
    assert 3 * counts["genuine"] < counts["spoof"]
    many = lopsided.draw_epoch(0, 0, 4000, balance=True, augment=None)
    assert abs(np.mean(lopsided.targets[many.windows] == 1) - 0.5) < 0.05
    plain = lopsided.draw_epoch(0, 0, 4, balance=False, augment=None)  # a shuffle:
    assert len(set(plain.windows.tolist())) == len(plain) == len(lopsided) // 4 * 4  # no repeats
    frames, _, targets = windows.batch(a, [0, 1, 2, 3], config.network)
    assert frames.shape == (4, 4, 3, 32, 32) and frames.dtype == torch.float32
    assert targets.tolist() == windows.targets[a.windows[:4]].tolist()


@pytest.mark.training
def test_training_steps_fit_a_fixed_batch(pool):
    config, windows = pool
    torch.manual_seed(0)
    torch.set_num_threads(1)
    net = build_network(config.network)
    draws = windows.draw_epoch(0, 0, 8, balance=True, augment=None)
    frames, _, targets = windows.batch(draws, range(8), config.network)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        loss = joint_loss(net(frames), targets, 1.0).total
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


# -- runs ------------------------------------------------------------------------------------
@pytest.mark.training
def test_seeded_runs_are_identical(tmp_path, dataset, cache_root):
    results = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        config = tiny_config(dataset, cache_root, "max_steps=3", f"seed={seed}")
        results[name] = train(config, tmp_path / name)
    a, b, c = (load_checkpoint(tmp_path / n / LAST_NAME)["model"] for n in "abc")
    assert _same_state(a, b)
    assert not _same_state(a, c)
    assert results["a"].steps == 3 and results["a"].stopped == "max_steps"
    drop = ("seconds", "step_seconds")
    la = [{k: v for k, v in x.items() if k not in drop} for x in _lines(tmp_path / "a")]
    lb = [{k: v for k, v in x.items() if k not in drop} for x in _lines(tmp_path / "b")]
    assert la == lb


class SimulatedCrash(RuntimeError):
    pass


def _crash_after_first_epoch(log):
    if log["epoch"] == 1:
        raise SimulatedCrash


@pytest.mark.training
def test_resume_continues_where_the_run_stopped(tmp_path, dataset, cache_root):
    config = tiny_config(dataset, cache_root, "epochs=2")
    whole = train(config, tmp_path / "whole")
    with pytest.raises(SimulatedCrash):
        train(config, tmp_path / "split", callbacks=[_crash_after_first_epoch])
    assert load_checkpoint(tmp_path / "split" / LAST_NAME)["epoch"] == 1
    with pytest.raises(CheckpointError, match="already holds a run"):
        train(config, tmp_path / "split")
    with pytest.raises(CheckpointError, match="config differs"):
        train(
            tiny_config(dataset, cache_root, "epochs=2", "lr=0.1"), tmp_path / "split", resume=True
        )
    resumed = train(config, tmp_path / "split", resume=True)
    assert [h["epoch"] for h in resumed.history] == [2]
    assert (resumed.epochs, resumed.steps) == (whole.epochs, whole.steps)
    one = load_checkpoint(tmp_path / "whole" / LAST_NAME)
    two = load_checkpoint(tmp_path / "split" / LAST_NAME)
    assert _same_state(one["model"], two["model"])
    assert one["optimizer"]["state"].keys() == two["optimizer"]["state"].keys()
    for k, s in one["optimizer"]["state"].items():
        assert all(torch.equal(s[n], two["optimizer"]["state"][k][n]) for n in s)
    assert one["scheduler"] == two["scheduler"] and one["stopper"] == two["stopper"]
    assert _lines(tmp_path / "split")[-1]["dev_eer"] == _lines(tmp_path / "whole")[-1]["dev_eer"]


def test_early_stopping_rule():
    stopper = EarlyStopping(patience=2, min_delta=0.01)
    assert stopper.update(1, 0.30, 0.7)  # first epoch is the best so far
    assert not stopper.should_stop
    assert stopper.update(2, 0.295, 0.8)  # a lower EER is the best epoch, but within
    assert stopper.stale_epochs == 1  # min_delta of 0.30 it does not reset the patience
    assert stopper.update(3, 0.20, 0.6) and stopper.stale_epochs == 0
    assert stopper.update(4, 0.20, 0.5)  # same EER, lower loss: best, but still stale
    assert stopper.stale_epochs == 1 and not stopper.should_stop
    assert not stopper.update(5, 0.25, 0.4)
    assert stopper.should_stop and stopper.best_epoch == 4
    assert not EarlyStopping(patience=0).should_stop


@pytest.mark.training
def test_early_stopping_ends_a_run(tmp_path, dataset, cache_root):
    # min_delta 1: no EER can improve on the first epoch's, so it stops after 1 + patience.
    # The dev clips double as test clips: best.pt is then scored on them once at the end.
    config = tiny_config(
        dataset, cache_root, "epochs=6", "patience=2", "min_delta=1.0", "max_steps=0",
        test_data=f"{dataset}?split=dev",
    )  # fmt: skip
    result = train(config, tmp_path / "run")
    assert result.stopped == "early_stop" and result.epochs == 3
    lines = _lines(tmp_path / "run")
    assert [x["epoch"] for x in lines] == [1, 2, 3]
    assert [x["finished"] for x in lines] == [None, None, "early_stop"]
    assert load_checkpoint(tmp_path / "run" / LAST_NAME)["finished"] == "early_stop"
    best = load_checkpoint(tmp_path / "run" / BEST_NAME)
    assert best["epoch"] == result.best_epoch
    assert best["dev"]["dev_eer"] == min(x["dev_eer"] for x in lines)
    test = json.loads((tmp_path / "run" / TEST_METRICS_NAME).read_text())
    assert test["epoch"] == best["epoch"]
    assert test["threshold"] == pytest.approx(best["dev"]["dev_threshold"], abs=1e-12)
    assert test["hter"] == pytest.approx(best["dev"]["dev_hter"], abs=1e-12)
    assert test["n_genuine"] + test["n_spoof"] == 4
    for x in lines:
        assert 0.0 <= x["dev_eer"] <= 1.0 and x["dev_clips"] == 4
        assert x["dev_hter"] >= 0 and np.isfinite(x["train_loss"])


@pytest.mark.training
def test_cli_variant_run_and_vgg16_run(tmp_path, dataset, cache_root):
    common = ["--data", str(dataset), "--quiet", "--set", f'cache_root="{cache_root}"']
    common += ["--set", "num_threads=1", "--set", "max_steps=2", "--set", 'device="cpu"']
    rc = main(["train", "smoke", "--variant", "cnn", "--out", str(tmp_path / "cnn"), *common])
    assert rc == 0
    saved = load_config(tmp_path / "cnn")
    assert variant_of(saved) == "cnn" and saved.network.temporal == "none"
    assert saved.train_data == f"{dataset}?split=train" and saved.test_data == ""
    # The paper's VGG-16 encoder through the same command, shrunk to 32 px crops.
    vgg = ["--set", "network.input_size=32"]
    vgg += ["--set", "preprocess.window.length=4", "--set", "preprocess.magnifier.n_levels=2"]
    rc = main(["train", "vgg16", "--out", str(tmp_path / "vgg"), *common, *vgg])
    assert rc == 0
    best = load_checkpoint(tmp_path / "vgg" / BEST_NAME)
    assert best["config"]["network"]["backbone"] == "vgg16" and best["step"] == 2
    assert any(k.startswith("encoder.features.") for k in best["model"])
    assert _lines(tmp_path / "vgg")[0]["finished"] == "max_steps"
    rc = main(["train", "--out", str(tmp_path / "bad"), "--set", "epochs=0", "--quiet"])
    assert rc == 2


@pytest.mark.training
def test_mobilenet_v2_run_from_a_torchvision_checkpoint_with_frozen_blocks(
    tmp_path, dataset, cache_root
):
    from model.backbones import MobileNetV2

    torch.manual_seed(3)
    start = MobileNetV2(num_classes=2).state_dict()  # a user's torchvision-named checkpoint
    weights = tmp_path / "user_mobilenet_v2.pth"
    torch.save(start, weights)
    common = ["--data", str(dataset), "--quiet", "--set", f'cache_root="{cache_root}"']
    common += ["--set", "num_threads=1", "--set", "max_steps=2", "--set", 'device="cpu"']
    common += ["--set", "network.input_size=32"]
    common += ["--set", "preprocess.window.length=4", "--set", "preprocess.magnifier.n_levels=2"]
    common += ["--set", f'init_weights="{weights}"', "--set", "freeze_blocks=4"]
    rc = main(["train", "mobilenet_v2", "--out", str(tmp_path / "mnv2"), *common])
    assert rc == 0
    last = load_checkpoint(tmp_path / "mnv2" / LAST_NAME)
    assert last["config"]["network"]["backbone"] == "mobilenet_v2" and last["step"] == 2
    model = last["model"]
    for i in range(4):  # frozen: weights and BatchNorm statistics exactly as loaded
        keys = [k for k in start if k.startswith(f"features.{i}.")]
        assert keys and all(torch.equal(model[f"encoder.{k}"], start[k]) for k in keys)
    moved = [k for k in start if k.startswith("features.17.") and k.endswith("weight")]
    assert any(not torch.equal(model[f"encoder.{k}"], start[k]) for k in moved)
    # freeze_blocks past the 19 modules, or ImageNet weights for the light stack: refused.
    bad = [*common[:-2], "--set", "freeze_blocks=20"]
    assert main(["train", "mobilenet_v2", "--out", str(tmp_path / "b1"), *bad]) == 2
    with pytest.raises(ConfigError, match="mobilenet_v2"):
        tiny_config(dataset, cache_root, 'init_weights="imagenet"')


def test_the_motion_stream_can_have_its_own_loss():
    """motion_loss_weight adds the motion stream's own cross-entropy to the total; it is
    refused for a network without a motion stream."""
    torch.manual_seed(0)
    net = build_network(NetworkConfig(backbone="light", input_size=32, motion="flow_stream"))
    out = net(torch.randn(4, 5, 3, 32, 32), torch.randn(4, 5, MOTION_DIM) - 5)
    targets = torch.tensor([0, 1, 0, 1])
    plain, weighted = joint_loss(out, targets, 1.0), joint_loss(out, targets, 1.0, 2.0)
    own = torch.nn.functional.cross_entropy(out.motion_logits, targets)
    torch.testing.assert_close(weighted.total, plain.total + 2.0 * own)
    torch.testing.assert_close(weighted.sequence, plain.sequence)
    with pytest.raises(ConfigError, match="needs network.motion 'flow_stream'"):
        resolve_config(sets=["network.motion=flow", "motion_loss_weight=1.0"])
    with pytest.raises(ConfigError, match="must not be negative"):
        resolve_config(sets=["network.motion=flow_stream", "motion_loss_weight=-1.0"])
