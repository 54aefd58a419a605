"""The preprocessing cache: the serving path's crops, computed once, keyed by config;
and the training / tile windows cut from them."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

from model.config import MOTION_DIM, WindowConfig
from model.preprocess import Preprocessor
from model.video import VideoReader
from tests.helpers import real_frames, write_clip
from tests.training.train_fixtures import tiny_config, tiny_dataset
from training.cache import (
    CachedClip,
    CacheError,
    PreprocessCache,
    load_clip,
    preprocess_clip,
    tile_windows,
    training_windows,
)
from training.datasets import load_dataset
from training.records import ClipRecord


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, real_clip_paths):
    return tiny_dataset(tmp_path_factory.getbasetemp(), real_clip_paths)


@pytest.fixture(scope="module")
def records(dataset):
    return load_dataset(str(dataset))


def _mtimes(folder):
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.npz")}


def test_cache_is_built_once_and_holds_the_serving_paths_crops(tmp_path, dataset, records):
    config = tiny_config(dataset, tmp_path)
    cache = PreprocessCache(tmp_path, config.preprocess)
    assert cache.build(records, progress=False) == len(records)
    assert cache.folder == tmp_path / config.preprocess.digest()
    assert len(list(cache.folder.glob("*.npz"))) == len(records)
    assert not list(cache.folder.glob("*.tmp")), "temporary files must be renamed away"
    before = _mtimes(cache.folder)
    assert cache.build(records, progress=False) == 0  # second build: nothing recomputed
    assert PreprocessCache(tmp_path, config.preprocess).build(records, progress=False) == 0
    assert _mtimes(cache.folder) == before

    # An entry equals running the per-frame serving path (VideoReader -> Preprocessor).
    record = records[0]
    cached = cache.load(record)
    reader = VideoReader(record.path)
    pre = Preprocessor(config.preprocess, reader.info.fps)
    prepared = [p for p in (pre.process(f, t) for f, t in reader) if p.sampled]
    assert cached.n_encoded == len(prepared) > config.preprocess.window.length
    np.testing.assert_array_equal(cached.crops, np.stack([p.crop for p in prepared]))
    assert cached.index.tolist() == [p.index for p in prepared]
    assert cached.segments.tolist() == [p.segment for p in prepared]
    np.testing.assert_allclose(cached.times, [p.t for p in prepared])
    np.testing.assert_allclose(cached.boxes, [p.box for p in prepared], atol=1e-4)
    assert cached.fps == reader.info.fps and cached.frames > cached.n_encoded


def test_cache_key_changes_with_the_preprocess_config(tmp_path, dataset, records):
    config = tiny_config(dataset, tmp_path)
    louder = tiny_config(dataset, tmp_path, "preprocess.magnifier.alpha=25.0")
    assert louder.preprocess.digest() != config.preprocess.digest()
    some = records[:2]
    first = PreprocessCache(tmp_path, config.preprocess)
    second = PreprocessCache(tmp_path, louder.preprocess)
    assert first.build(some, progress=False) == 2
    assert second.build(some, progress=False) == 2  # another key: computed again
    assert first.folder != second.folder
    a, b = first.load(some[0]), second.load(some[0])
    assert a.index.tolist() == b.index.tolist()  # same frames sampled ...
    assert np.abs(a.crops.astype(int) - b.crops.astype(int)).max() > 0  # ... magnified more


def test_worker_processes_fill_the_same_entries(tmp_path, dataset, records):
    config = tiny_config(dataset, tmp_path)
    some = records[:2]
    serial = PreprocessCache(tmp_path / "serial", config.preprocess)
    pooled = PreprocessCache(tmp_path / "pooled", config.preprocess)
    serial.build(some, progress=False)
    assert pooled.build(some, workers=2, progress=False) == 2
    for record in some:
        np.testing.assert_array_equal(serial.load(record).crops, pooled.load(record).crops)


def test_unreadable_or_missing_entries_raise(tmp_path, dataset, records):
    config = tiny_config(dataset, tmp_path)
    cache = PreprocessCache(tmp_path, config.preprocess)
    with pytest.raises(CacheError, match="not cached yet"):
        cache.load(records[0])
    entry = cache.entry(records[0].path)
    entry.parent.mkdir(parents=True)
    entry.write_bytes(b"not an npz")
    with pytest.raises(CacheError, match="unreadable"):
        load_clip(entry)
    with pytest.raises(CacheError, match="no such clip"):
        cache.entry(tmp_path / "missing.mp4")


def _clip(segments: list[int]) -> CachedClip:
    n = len(segments)
    return CachedClip(
        crops=np.zeros((n, 4, 4, 3), np.uint8),
        index=np.arange(n) * 2,
        times=np.arange(n) / 15.0,
        segments=np.asarray(segments, np.int64),
        boxes=np.zeros((n, 4), np.float32),
        fps=30.0,
        frames=2 * n,
        motion=np.zeros((n, MOTION_DIM), np.float32),
    )


def test_training_and_tile_windows_by_hand():
    clip = _clip([0] * 5 + [1] * 7)  # segment 0: positions 0-4, segment 1: 5-11
    got = [w.tolist() for w in training_windows(clip, length=4, stride=2)]
    assert got == [[0, 1, 2, 3], [5, 6, 7, 8], [7, 8, 9, 10]]
    assert [w.tolist() for w in training_windows(clip, 4, 1)] == [
        [0, 1, 2, 3], [1, 2, 3, 4], [5, 6, 7, 8], [6, 7, 8, 9], [7, 8, 9, 10], [8, 9, 10, 11],
    ]  # fmt: skip
    # Tiles as model/runtime.py: [0, T), [T, 2T) ... plus the last T when frames are left.
    window = WindowConfig(length=4, min_length=2)
    tiles = [w.tolist() for w in tile_windows(clip, window)]
    assert tiles == [[0, 1, 2, 3], [1, 2, 3, 4], [5, 6, 7, 8], [8, 9, 10, 11]]
    # No full window anywhere: the first longest segment, if it reaches min_length.
    short = _clip([0, 0, 1, 1, 1, 2, 2, 2])
    assert [w.tolist() for w in tile_windows(short, window)] == [[2, 3, 4]]
    assert tile_windows(short, dataclasses.replace(window, min_length=4)) == []
    assert training_windows(short, 4, 1) == []
    assert tile_windows(_clip([]), window) == [] and training_windows(_clip([]), 4, 1) == []


def test_windows_never_span_two_face_tracks(tmp_path, real_clip_paths, dataset):
    # A real face, then 20 frames without one (the track is lost), then the face again.
    frames, fps = real_frames(next(p for p in real_clip_paths if "d11" in p.name), 30, 240)
    blank = [np.full_like(frames[0], 90) for _ in range(20)]
    path = write_clip(tmp_path / "gap.avi", frames[:15] + blank + frames[15:], fps, "MJPG")
    config = tiny_config(dataset, tmp_path)
    clip = preprocess_clip(path, config.preprocess)
    assert sorted(set(clip.segments.tolist())) == [0, 1]
    assert np.all(np.diff(clip.segments) >= 0)
    T = config.preprocess.window.length
    windows = training_windows(clip, T, stride=1)
    tiles = tile_windows(clip, config.preprocess.window)
    assert windows and tiles
    for w in windows + tiles:
        assert len(set(clip.segments[w].tolist())) == 1, "a window mixes two face tracks"
        assert np.all(np.diff(w) == 1)
    runs = [np.sum(clip.segments == s) for s in (0, 1)]
    assert len(windows) == sum(n - T + 1 for n in runs if n >= T)
    assert {int(clip.segments[t[0]]) for t in tiles} == {0, 1}


def test_a_clip_without_a_face_caches_no_frames(tmp_path, dataset):
    path = write_clip(
        tmp_path / "empty.avi", [np.full((120, 160, 3), 70, np.uint8)] * 12, 15.0, "MJPG"
    )
    config = tiny_config(dataset, tmp_path)
    cache = PreprocessCache(tmp_path / "cache", config.preprocess)
    record = ClipRecord(path=path, label="spoof", attack="print")
    assert cache.build([record], progress=False) == 1
    clip = cache.load(record)
    assert clip.n_encoded == 0 and clip.frames == 12
    assert clip.crops.shape == (0, 32, 32, 3)
    assert tile_windows(clip, config.preprocess.window) == []
    assert os.path.getsize(cache.entry(path)) > 0
