"""LBP and LBP-TOP baselines on synthetic clips whose classes differ in texture or in time."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from training.evaluate.baselines import (
    LBP_BINS,
    BaselineError,
    LbpSvm,
    LbpTopSvm,
    lbp_histogram,
    lbp_top_histogram,
    load_baseline,
)
from training.evaluate.metrics import roc_auc

SIZE, FRAMES = 32, 10  # face crop side in pixels, frames per clip


def _smooth_field(rng: np.random.Generator, size: int) -> np.ndarray:
    """Zero-mean, unit-variance low-pass noise [size, size]: a skin-like smooth texture."""
    f = cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), 2.0)
    return (f - f.mean()) / (f.std() + 1e-6)


def _sensor_noise(rng: np.random.Generator) -> np.ndarray:
    return rng.normal(0, 2, (SIZE, SIZE))


def _u8(frames: list[np.ndarray]) -> np.ndarray:
    return np.clip(np.stack(frames), 0, 255).astype(np.uint8)  # [T, S, S]


def live_clip(rng: np.random.Generator) -> np.ndarray:
    """Smooth texture drifting right and down over time."""
    big = 128 + 40 * _smooth_field(rng, SIZE + FRAMES + 4)
    ox, oy = rng.integers(0, 4, 2)
    return _u8(
        [
            big[oy + t // 2 : oy + t // 2 + SIZE, ox + t : ox + t + SIZE] + _sensor_noise(rng)
            for t in range(FRAMES)
        ]
    )


def print_clip(rng: np.random.Generator) -> np.ndarray:
    """A static smooth face printed through a fine periodic halftone dot screen."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    screen = 60 * np.cos(np.pi * xx / 1.5) * np.cos(np.pi * yy / 1.5)  # dots every 3 px
    printed = 128 + 40 * _smooth_field(rng, SIZE) + screen
    return _u8([printed + _sensor_noise(rng) for _ in range(FRAMES)])


def drifting_or_still_clip(rng: np.random.Generator, moving: bool) -> np.ndarray:
    """Same texture statistics in every frame; only whether it moves differs."""
    big = 128 + 40 * _smooth_field(rng, SIZE + FRAMES + 4)
    ox, oy = rng.integers(0, 4, 2)
    return _u8(
        [
            big[oy : oy + SIZE, ox + (t if moving else 0) : ox + (t if moving else 0) + SIZE]
            + _sensor_noise(rng)
            for t in range(FRAMES)
        ]
    )


def _dataset(seed: int, n_per_class: int, genuine, spoof) -> tuple[list[np.ndarray], list[int]]:
    rng = np.random.default_rng(seed)
    clips = [genuine(rng) for _ in range(n_per_class)] + [spoof(rng) for _ in range(n_per_class)]
    return clips, [1] * n_per_class + [0] * n_per_class


@pytest.fixture(scope="module")
def halftone_data():
    return _dataset(0, 12, live_clip, print_clip), _dataset(1, 15, live_clip, print_clip)


def test_lbp_histogram_of_a_flat_frame_is_one_pattern():
    # every interior pixel of a flat frame has all 8 neighbours >= centre: one code
    hist = lbp_histogram(np.full((8, 8), 90, np.uint8))
    assert hist.shape == (LBP_BINS,)
    assert hist.sum() == pytest.approx(1.0)
    assert np.count_nonzero(hist) == 1
    # noise spreads over many codes
    noisy = np.random.default_rng(0).integers(0, 256, (32, 32), dtype=np.uint8)
    assert np.count_nonzero(lbp_histogram(noisy)) > 20


def test_lbp_top_xy_third_is_the_mean_frame_histogram_of_inner_frames():
    volume = drifting_or_still_clip(np.random.default_rng(5), moving=True)
    top = lbp_top_histogram(volume)
    assert top.shape == (3 * LBP_BINS,)
    np.testing.assert_allclose(top.reshape(3, LBP_BINS).sum(axis=1), 1.0)
    inner = np.mean([lbp_histogram(f) for f in volume[1:-1]], axis=0)
    np.testing.assert_allclose(top[:LBP_BINS], inner)
    # still and drifting versions of one texture differ in the time planes
    still = drifting_or_still_clip(np.random.default_rng(5), moving=False)
    time_planes = slice(LBP_BINS, None)
    assert np.abs(lbp_top_histogram(still)[time_planes] - top[time_planes]).sum() > 0.5


def test_lbp_svm_separates_halftone_prints_from_live_texture_on_held_out_clips(halftone_data):
    (train, train_y), (test, test_y) = halftone_data
    model = LbpSvm().fit(train, train_y)
    scores = model.score_many(test)
    assert np.all((scores > 0) & (scores < 1))
    assert roc_auc(scores, test_y) > 0.9


def test_lbp_top_uses_time_where_per_frame_lbp_cannot():
    def still(rng):
        return drifting_or_still_clip(rng, moving=False)

    def moving(rng):
        return drifting_or_still_clip(rng, moving=True)

    train, train_y = _dataset(10, 16, moving, still)
    test, test_y = _dataset(11, 30, moving, still)
    top_auc = roc_auc(LbpTopSvm().fit(train, train_y).score_many(test), test_y)
    lbp_auc = roc_auc(LbpSvm().fit(train, train_y).score_many(test), test_y)
    assert top_auc > 0.95
    # every frame is drawn from the same texture distribution: chance level
    assert 0.3 < lbp_auc < 0.7


def test_lbp_top_per_block_scores_each_block(halftone_data):
    (train, train_y), (test, test_y) = halftone_data
    model = LbpTopSvm(block_frames=5).fit(train, train_y)
    assert model.clip_features(test[0]).shape == (FRAMES // 5, 3 * LBP_BINS)
    assert model.sample_scores(test[0]).shape == (2,)
    assert roc_auc(model.score_many(test), test_y) > 0.9


def test_fitting_is_deterministic_and_bgr_equals_grey(halftone_data):
    (train, train_y), (test, _) = halftone_data
    a = LbpSvm().fit(train, train_y).score_many(test)
    b = LbpSvm().fit(train, train_y).score_many(test)
    np.testing.assert_array_equal(a, b)
    model = LbpSvm().fit(train, train_y)
    grey = test[0]
    bgr = np.stack([cv2.cvtColor(f, cv2.COLOR_GRAY2BGR) for f in grey])
    assert model.score(bgr) == model.score(grey)


@pytest.mark.parametrize("cls", [LbpSvm, LbpTopSvm])
def test_save_load_round_trip(tmp_path, halftone_data, cls):
    (train, train_y), (test, _) = halftone_data
    model = cls(c=2.0).fit(train, train_y)
    path = model.save(tmp_path / "baseline.joblib")
    loaded = cls.load(path)
    assert type(loaded) is cls and loaded.params() == model.params()
    np.testing.assert_array_equal(loaded.score_many(test), model.score_many(test))
    assert type(load_baseline(path)) is cls
    other = LbpTopSvm if cls is LbpSvm else LbpSvm
    with pytest.raises(BaselineError, match="not"):
        other.load(path)


def test_error_paths(tmp_path, halftone_data):
    (train, train_y), _ = halftone_data
    with pytest.raises(BaselineError, match="not fitted"):
        LbpSvm().score(train[0])
    with pytest.raises(BaselineError, match="both genuine and spoof"):
        LbpSvm().fit(train[:3], [1, 1, 1])
    with pytest.raises(BaselineError, match="length mismatch"):
        LbpSvm().fit(train, train_y[:-1])
    with pytest.raises(BaselineError, match="uint8"):
        LbpSvm().fit([c.astype(np.float32) for c in train], train_y)
    with pytest.raises(BaselineError, match=r"\[T, H, W\]"):
        LbpSvm().fit([c[0] for c in train], train_y)
    with pytest.raises(BaselineError, match="frames"):
        lbp_top_histogram(train[0][:2])
    junk = tmp_path / "junk.joblib"
    junk.write_bytes(b"not a model")
    with pytest.raises(BaselineError, match="not a readable baseline"):
        load_baseline(junk)
    with pytest.raises(BaselineError, match="no such"):
        load_baseline(tmp_path / "missing.joblib")
