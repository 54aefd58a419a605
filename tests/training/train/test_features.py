"""cache_features: the frozen part of the encoder computed once, the rest trained on it
(training/train/features.py), against the same run computed frame by frame."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from model.network import build_network
from tests.training.train_fixtures import tiny_config, tiny_dataset
from training.cache import PreprocessCache
from training.config import ConfigError
from training.datasets import load_dataset
from training.train.data import DataError, WindowPool, load_clips, score_clips
from training.train.features import FeatureClip, FrozenTail, encode_clips
from training.train.loop import METRICS_NAME, train
from training.train.state import LAST_NAME, load_checkpoint

FROZEN = ("freeze_blocks=2", "augment=false")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, real_clip_paths):
    return tiny_dataset(tmp_path_factory.getbasetemp(), real_clip_paths)


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory):
    return tmp_path_factory.mktemp("features_cache")


@pytest.fixture(scope="module")
def clips(dataset, cache_root):
    config = tiny_config(dataset, cache_root)
    records = load_dataset(config.train_data)
    cache = PreprocessCache(cache_root, config.preprocess)
    cache.build(records, progress=False)
    return config, records, load_clips(records, cache)


def _lines(run_dir):
    return [json.loads(line) for line in (run_dir / METRICS_NAME).read_text().splitlines()]


def test_the_tail_on_frozen_maps_is_the_network_on_frames(clips):
    config, _, cached = clips
    torch.manual_seed(0)
    net = build_network(config.network).eval()
    encoded = encode_clips(net, cached[:3], config.network, 2, torch.device("cpu"))
    assert [e.n_encoded for e in encoded] == [c.n_encoded for c in cached[:3]]
    assert encoded[0].maps.dtype == np.float16 and encoded[0].maps.ndim == 4
    window = config.preprocess.window
    direct = score_clips(net, cached[:3], window, config.network, torch.device("cpu"))
    tail = FrozenTail(net, 2).eval()
    via_maps = score_clips(tail, encoded, window, config.network, torch.device("cpu"))
    assert all(s is not None for s in direct)
    np.testing.assert_allclose(via_maps, direct, atol=2e-3)
    # a tail past the wrong number of blocks does not see what the frozen stack made
    with pytest.raises(RuntimeError):
        score_clips(FrozenTail(net, 3).eval(), encoded, window, config.network, torch.device("cpu"))


def test_a_cached_run_trains_what_the_frame_by_frame_run_trains(
    tmp_path, dataset, cache_root, monkeypatch
):
    # float32 maps: then the only difference is the order of float operations
    monkeypatch.setattr("training.train.features.MAP_DTYPE", np.float32)
    plain = tiny_config(dataset, cache_root, "max_steps=4", *FROZEN)
    cached = tiny_config(dataset, cache_root, "max_steps=4", *FROZEN, "cache_features=true")
    train(plain, tmp_path / "plain")
    train(cached, tmp_path / "cached")
    a = load_checkpoint(tmp_path / "plain" / LAST_NAME)["model"]
    b = load_checkpoint(tmp_path / "cached" / LAST_NAME)["model"]
    assert a.keys() == b.keys()
    frozen = [k for k in a if k.startswith(("encoder.features.0.", "encoder.features.1."))]
    assert frozen and all(torch.equal(a[k], b[k]) for k in frozen)
    trained = [k for k in a if k.startswith("head.") and a[k].is_floating_point()]
    start = build_network(plain.network).state_dict()
    assert any(not torch.allclose(b[k], start[k]) for k in trained)
    for k in a:  # the same updates
        if a[k].is_floating_point():
            torch.testing.assert_close(b[k], a[k], atol=1e-4, rtol=1e-4)
    la, lb = _lines(tmp_path / "plain")[0], _lines(tmp_path / "cached")[0]
    assert lb["train_loss"] == pytest.approx(la["train_loss"], rel=1e-4)
    assert lb["dev_eer"] == la["dev_eer"]


def test_cache_features_needs_frozen_blocks_and_no_augmentation(dataset, cache_root):
    with pytest.raises(ConfigError, match="freeze_blocks"):
        tiny_config(dataset, cache_root, "cache_features=true", "augment=false")
    with pytest.raises(ConfigError, match="augment"):
        tiny_config(dataset, cache_root, "cache_features=true", "freeze_blocks=2")


def test_frozen_maps_refuse_augmented_draws(clips):
    config, records, cached = clips
    net = build_network(config.network).eval()
    encoded = encode_clips(net, cached, config.network, 2, torch.device("cpu"))
    assert all(isinstance(e, FeatureClip) for e in encoded)
    pool = WindowPool(encoded, records, config.preprocess.window.length, config.window_stride)
    plain = pool.draw_epoch(0, 0, 4, balance=True, augment=None)
    maps, _, targets = pool.batch(plain, range(4), config.network)
    assert maps.shape[:2] == (4, config.preprocess.window.length)
    assert tuple(maps.shape[2:]) == encoded[0].maps.shape[1:] and targets.shape == (4,)
    augment = {"flip_prob": 1.0, "brightness": 0.1, "contrast": 0.1}
    augmented = pool.draw_epoch(0, 0, 4, balance=True, augment=augment)
    with pytest.raises(DataError, match="augment"):
        pool.batch(augmented, range(4), config.network)


def test_maps_are_stored_once_per_frozen_stack(tmp_path, clips):
    config, _, cached = clips
    torch.manual_seed(0)
    net = build_network(config.network).eval()
    cpu = torch.device("cpu")
    first = encode_clips(net, cached[:2], config.network, 2, cpu, store=tmp_path)
    folders = list((tmp_path / "maps").iterdir())
    assert len(folders) == 1 and len(list(folders[0].glob("*.npy"))) == 2
    # read back, not recomputed: an entry altered on disk comes back as stored
    entry = sorted(folders[0].glob("*.npy"))[0]
    marked = np.load(entry)
    marked[0, 0, 0, 0] = 123.0
    np.save(entry, marked)
    again = encode_clips(net, cached[:2], config.network, 2, cpu, store=tmp_path)
    assert sum(bool((a.maps == 123.0).any()) for a in again) == 1
    assert [a.maps.shape for a in again] == [f.maps.shape for f in first]
    # another frozen stack (other weights) or a damaged entry: computed, not reused
    torch.manual_seed(1)
    other = build_network(config.network).eval()
    encode_clips(other, cached[:2], config.network, 2, cpu, store=tmp_path)
    assert len(list((tmp_path / "maps").iterdir())) == 2
    entry.write_bytes(b"not an array")
    fixed = encode_clips(net, cached[:2], config.network, 2, cpu, store=tmp_path)
    assert not any(bool((f.maps == 123.0).any()) for f in fixed)
    assert any(np.array_equal(np.load(entry), f.maps) for f in fixed)


def test_appearance_renders_a_whole_clip_alike_and_reproducibly(clips):
    from training.train.augment import appearance

    _, _, cached = clips
    crops = cached[0].crops
    a = appearance(crops, np.random.default_rng(5))
    assert a.shape == crops.shape and a.dtype == np.uint8
    assert np.array_equal(a, appearance(crops, np.random.default_rng(5)))
    renderings = [appearance(crops, np.random.default_rng(s)) for s in range(8)]
    changes = [np.abs(r.astype(int) - crops).mean() for r in renderings]
    assert min(changes) > 1.0  # every rendering looks different
    assert len({r.tobytes() for r in renderings}) == 8
    # one still frame repeated stays (nearly) still: the changes are the clip's, not a frame's
    still = np.repeat(crops[:1], 4, axis=0)
    for s in range(8):
        r = appearance(still, np.random.default_rng(s)).astype(int)
        assert np.abs(r[1:] - r[:1]).mean() < 12.0  # at most sensor noise between frames
    with pytest.raises(ValueError, match="uint8"):
        appearance(crops.astype(np.float32), np.random.default_rng(0))


def test_feature_copies_train_on_augmented_renderings(tmp_path, dataset, clips):
    config, records, cached = clips
    sets = ("max_steps=2", *FROZEN, "cache_features=true", "feature_copies=2")
    run = tiny_config(dataset, tmp_path, *sets)
    train(run, tmp_path / "run")
    folders = list((tmp_path / "maps").iterdir())
    n_train = len(load_dataset(run.train_data))
    n_dev = len(load_dataset(run.dev_data))
    assert len(folders) == 1 and len(list(folders[0].glob("*.npy"))) == 3 * n_train + n_dev
    net = build_network(config.network).eval()
    encoded = encode_clips(net, cached, config.network, 2, torch.device("cpu"), copies=2, seed=0)
    assert all(len(e.copies) == 2 for e in encoded)
    assert not np.array_equal(encoded[0].copies[0], encoded[0].maps)
    pool = WindowPool(encoded, records, config.preprocess.window.length, 1)
    draws = pool.draw_epoch(0, 0, 8, balance=False, augment=None, copies=2)
    assert draws.copies is not None and set(draws.copies.tolist()) <= {0, 1, 2}
    plain = pool.draw_epoch(0, 0, 8, balance=False, augment=None)
    assert np.array_equal(plain.windows, draws.windows)  # copies do not move the other draws
    k = int(np.flatnonzero(draws.copies > 0)[0])
    maps, _, _ = pool.batch(draws, [k], config.network)
    clip_no, positions = pool.windows[int(draws.windows[k])]
    copy = encoded[clip_no].copies[int(draws.copies[k]) - 1]
    assert np.array_equal(maps[0].numpy(), copy[positions].astype(np.float32))
    with pytest.raises(ConfigError, match="feature_copies"):
        tiny_config(dataset, tmp_path, "feature_copies=2")
