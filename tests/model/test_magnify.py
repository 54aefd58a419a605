"""The streaming Eulerian magnifier against linear theory and a batch scipy twin.

Gains are measured on exactly shifted synthetic textures (fixtures_evm_motion.py) and
compared with the oracle |1 + alpha_eff * H(f)|, where H is the magnifier's own temporal
filter and alpha_eff = <P f_x, f_x> / |f_x|^2 uses its own pyramid and per-level alphas.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.signal import freqz, lfilter, lfilter_zi

from model.config import MagnifierConfig
from model.magnify import (
    Magnifier,
    collapse_pyramid,
    laplacian_pyramid,
    level_alphas,
    magnify_clip,
    pass_band,
    temporal_filter,
    weighted_laplacian,
)


def _load_fixtures():
    path = Path(__file__).with_name("fixtures_evm_motion.py")
    spec = importlib.util.spec_from_file_location("fixtures_evm_motion", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


evm = _load_fixtures()

SIZE, FPS = 224, 30.0
SETTLE = 90  # frames skipped before measuring: > 7 time constants of the 0.4 Hz pole
N_FRAMES = 240  # 150 measured frames (5 s) after settling


def _config(alpha: float, **changes) -> MagnifierConfig:
    # 224 px test frames: 5 band levels (224 .. 14) and a 7x7 residual, lambda_c = 16 px
    return MagnifierConfig(**{"alpha": alpha, "lambda_c": 16.0, "n_levels": 5, **changes})


@functools.cache
def _texture(name: str) -> np.ndarray:
    """Seeded 224 px textures: band<L> isotropic, stripes<L> 1-D, natural 1/f."""
    seeds = {"band32": 1, "stripes32": 2, "band4": 3, "band8": 4, "natural": 5}
    if name == "natural":
        return evm.natural_texture(SIZE, seeds[name])
    stripes = name.startswith("stripes")
    wavelength = int(name.removeprefix("stripes" if stripes else "band"))
    return evm.band_texture(SIZE, wavelength, seeds[name], stripes=stripes)


@functools.cache
def _meter(name: str):
    return evm.TranslationMeter(_texture(name))


def _oracle(name: str, config: MagnifierConfig, freq: float, fps: float) -> float:
    """|1 + alpha_eff * H(f)| for this texture, from the magnifier's own operators."""
    meter, fx = _meter(name), evm.gradient_x(_texture(name))
    p_fx = weighted_laplacian(fx, level_alphas(config))[meter.crop]
    alpha_eff = np.sum(p_fx * meter.fx) / np.sum(meter.fx**2)
    b, a = temporal_filter(config, fps)
    _, response = freqz(b, a, worN=[freq], fs=fps)
    return float(abs(1 + alpha_eff * response[0]))


def _measure(name, amplitude, freq, config, fps=FPS, n_frames=N_FRAMES, settle=SETTLE):
    """Magnify a moving texture through `process` (uint8 BGR) and meter the output."""
    frames, _ = evm.moving_frames(_texture(name), amplitude, freq, fps, n_frames)
    magnifier = Magnifier(config, fps)
    outputs = [magnifier.process(frame)[..., 0] for frame in frames]  # grey in, grey out
    luma = np.stack(outputs[settle:]).astype(np.float64)
    meter = _meter(name)
    d_ls = np.r_[np.zeros(settle), meter.fit(luma)]
    d_lin = np.r_[np.zeros(settle), meter.first_order(luma)]
    return {
        "ls": evm.sinusoid_amplitude(d_ls, freq, fps, settle) / amplitude,
        "lin": evm.sinusoid_amplitude(d_lin, freq, fps, settle) / amplitude,
        "residual": float(np.mean(meter.residual(luma, d_ls[settle:]))),
        # inputs stay within [19, 251] (band4, band8): an output at 0 or 255 saturated
        "clipped": float(np.mean((luma == 0) | (luma == 255))),
        "oracle": _oracle(name, config, freq, fps),
    }


def _batch_luma(luma: np.ndarray, config: MagnifierConfig, fps: float, zero_state=False):
    """Batch twin: scipy lfilter along time on stacked pyramids, float64 [N, H, W]."""
    alphas, (b, a) = level_alphas(config), temporal_filter(config, fps)
    pyramids = [laplacian_pyramid(y, config.n_levels) for y in luma]
    filtered = []
    for lvl in range(config.n_levels):
        stack = np.stack([p[lvl] for p in pyramids])
        if zero_state:
            filtered.append(lfilter(b, a, stack, axis=0))
        else:
            zi = lfilter_zi(b, a)[:, None, None] * stack[0]
            filtered.append(lfilter(b, a, stack, axis=0, zi=zi)[0])
    zeros = np.zeros_like(pyramids[0][-1])
    return np.stack(
        [
            luma[t] + collapse_pyramid([alphas[i] * f[t] for i, f in enumerate(filtered)] + [zeros])
            for t in range(len(luma))
        ]
    )


def _moving_luma(n_frames=90, amplitude=0.5, name="natural") -> np.ndarray:
    frames, _ = evm.moving_frames(_texture(name), amplitude, 1.0, FPS, n_frames)
    return frames[..., 0].astype(np.float64)


# --- per-level gains and the pass band -------------------------------------------------


def test_level_alphas_follow_the_lambda_c_rule():
    # 112 px defaults: lambda_l = 2.83, 5.66, 11.3, 22.6 px; (lambda_l/16) * 11 - 1, clipped
    np.testing.assert_allclose(level_alphas(MagnifierConfig()), [0, 2.889, 6.778, 10], atol=1e-3)
    doubled = level_alphas(MagnifierConfig(exaggeration=2.0))
    np.testing.assert_allclose(doubled, 2 * level_alphas(MagnifierConfig()))
    # MIT's rule goes negative here (5.66/120 * 21 - 1 = -0.01); ours clips at 0
    steep = level_alphas(MagnifierConfig(alpha=20, lambda_c=120, n_levels=6))
    assert (
        steep[1] == 0
        and np.all(steep >= 0)
        and steep[5] == pytest.approx(2 * np.sqrt(2) * 32 / 120 * 21 - 1)
    )
    assert level_alphas(MagnifierConfig(lambda_c=1e-6), n_levels=3).tolist() == [0, 10, 10]
    assert not np.any(level_alphas(MagnifierConfig(alpha=0)))
    with pytest.raises(ValueError, match="lambda_c"):
        level_alphas(MagnifierConfig(lambda_c=0))


def test_pass_band_is_clamped_below_nyquist_and_bad_rates_are_rejected():
    assert pass_band(MagnifierConfig(), 30) == (0.4, 3.0)
    assert pass_band(MagnifierConfig(), 5) == pytest.approx((0.4, 2.25))
    b, a = temporal_filter(MagnifierConfig(), 5)
    assert np.all(np.abs(np.roots(a)) < 1)  # stable
    _, h = freqz(b, a, worN=[0.4, 2.25], fs=5)
    np.testing.assert_allclose(np.abs(h), [1 / np.sqrt(2), 1 / np.sqrt(2)], atol=1e-6)  # -3 dB
    freqs, h = freqz(b, a, worN=np.linspace(0.05, 2.45, 49), fs=5)
    assert (
        np.abs(h).max() == pytest.approx(1.0, abs=1e-3) and 0.4 < freqs[np.abs(h).argmax()] < 2.25
    )
    for fps in (0, -30, float("nan")):
        with pytest.raises(ValueError, match="frame rate"):
            Magnifier(MagnifierConfig(), fps)
    with pytest.raises(ValueError, match="empty pass band"):
        Magnifier(MagnifierConfig(), 0.8)  # f_hi -> 0.36 Hz < f_lo = 0.4 Hz
    with pytest.raises(ValueError, match="empty pass band"):
        Magnifier(MagnifierConfig(f_lo=3.0, f_hi=2.0), 30)


# --- T1, T2: identity and no start-up transient ------------------------------------------


def test_t1_alpha_zero_and_disabled_are_the_identity():
    luma = _moving_luma(20)
    for dtype in (np.float64, np.float32):
        m = Magnifier(_config(0.0), FPS)
        for y in luma.astype(dtype):
            out = m.process_luma(y)
            assert out.dtype == dtype and np.array_equal(out, y) and out is not y
    frames, _ = evm.moving_frames(_texture("natural"), 0.5, 1.0, FPS, 20)
    assert np.array_equal(magnify_clip(frames, FPS, _config(0.0)), frames)
    off = Magnifier(_config(20.0, enabled=False), FPS)
    for frame in frames:
        out = off.process(frame)
        assert np.array_equal(out, frame) and not np.shares_memory(out, frame)


def test_t2_static_scene_is_unchanged_from_the_first_frame():
    still = np.repeat(_moving_luma(1)[:1], 60, axis=0)  # natural texture, no motion
    frames = np.repeat(still.astype(np.uint8)[..., None], 3, axis=3)
    config = _config(20.0, exaggeration=2.0)
    assert np.array_equal(magnify_clip(frames, FPS, config), frames)  # every frame, frame 0 too
    m = Magnifier(config, FPS)
    assert max(np.abs(m.process_luma(y) - y).max() for y in still) < 1e-9
    # The check has teeth: a zero-state filter (PyEVM-style) rings by tens of grey levels.
    transient = np.abs(_batch_luma(still, config, FPS, zero_state=True) - still)
    assert transient.max() > 50


# --- T3, T5: gain against linear theory --------------------------------------------------


def test_meter_reads_the_raw_input_as_unit_gain():
    for name in ("band32", "stripes32"):
        frames, _ = evm.moving_frames(_texture(name), 0.1, 1.0, FPS, N_FRAMES)
        luma = frames[SETTLE:, :, :, 0].astype(np.float64)
        d = np.r_[np.zeros(SETTLE), _meter(name).fit(luma)]
        assert evm.sinusoid_amplitude(d, 1.0, FPS, SETTLE) / 0.1 == pytest.approx(1.0, abs=0.002)


@pytest.mark.parametrize(
    ("name", "alpha", "amplitude"),
    [
        ("band32", 5, 0.1),
        ("band32", 10, 0.1),
        ("band32", 20, 0.1),
        ("stripes32", 5, 0.1),
        ("stripes32", 10, 0.1),
        ("stripes32", 20, 0.1),
        ("band32", 50, 0.05),  # 0.1 px would break the bound: 51 * 0.1 px > 32 / 8 px
    ],
)
def test_t3_in_band_gain_matches_linear_theory(name, alpha, amplitude):
    r = _measure(name, amplitude, 1.0, _config(alpha))
    assert r["oracle"] > 0.7 * (1 + alpha)  # the texture sits in fully amplified levels
    assert r["lin"] == pytest.approx(r["oracle"], rel=0.03)
    assert 0.92 * r["oracle"] <= r["ls"] <= 1.01 * r["oracle"]
    assert r["residual"] < 0.1


@pytest.mark.parametrize(("freq", "n_frames"), [(6.0, N_FRAMES), (0.15, SETTLE + 240)])
def test_t5_out_of_band_gain_follows_the_real_filter_not_one(freq, n_frames):
    config = _config(20.0)
    r = _measure("band32", 0.1, freq, config, n_frames=n_frames)
    # A 1st-order band-pass has a weak stop band: |H| is 0.37 at 6 Hz, 0.32 at 0.15 Hz.
    assert 4.0 < r["oracle"] < 8.0
    assert r["lin"] == pytest.approx(r["oracle"], rel=0.03)
    assert 0.92 * r["oracle"] <= r["ls"] <= 1.01 * r["oracle"]


# --- T7: fine texture does not blow up ---------------------------------------------------


def test_t7_fine_texture_does_not_blow_up():
    small = _measure("band4", 0.1, 1.0, _config(20.0))
    assert small["clipped"] == 0 and small["residual"] <= 0.35
    assert small["ls"] <= 1.05 * small["oracle"]
    large = _measure("band4", 1.0, 1.0, _config(20.0))  # 21 px nominal >> lambda / 8 = 0.5 px
    assert large["clipped"] <= 0.001 and large["residual"] <= 0.35
    assert large["ls"] <= 1.05 * large["oracle"]
    band8 = _measure("band8", 1.0, 1.0, _config(20.0))
    assert band8["clipped"] <= 0.02 and band8["residual"] <= 1.0
    # Without the lambda_c rule (every level but the finest at alpha) band8 blows up.
    flat = _measure("band8", 1.0, 1.0, _config(20.0, lambda_c=1e-6))
    assert flat["clipped"] > 0.1 and flat["residual"] > 1.5


# --- T8, T9, T10: streaming, chunking, per-stream state ----------------------------------


def test_t8_streaming_equals_batch_lfilter():
    luma, config = _moving_luma(90), _config(20.0)
    reference = _batch_luma(luma, config, FPS)
    m = Magnifier(config, FPS)
    streamed = np.stack([m.process_luma(y) for y in luma])
    assert np.array_equal(streamed, reference)  # float64: bit-exact
    m32 = Magnifier(config, FPS)
    streamed32 = np.stack([m32.process_luma(y) for y in luma.astype(np.float32)])
    assert streamed32.dtype == np.float32
    assert np.abs(streamed32 - _batch_luma(luma.astype(np.float32), config, FPS)).max() <= 1e-4
    assert np.abs(streamed - luma).max() > 5  # and it does magnify


def test_t9_chunking_and_prefixes_do_not_change_the_output():
    frames, _ = evm.moving_frames(_texture("natural"), 0.5, 1.0, FPS, 90)
    times = np.arange(90) / FPS
    whole = magnify_clip(frames, FPS, _config(20.0), times=times)
    assert np.array_equal(magnify_clip(frames[:37], FPS, _config(20.0)), whole[:37])  # causal
    for chunk in (1, 7, 90):
        m, parts = Magnifier(_config(20.0), FPS), []
        for i in range(0, 90, chunk):
            pairs = zip(frames[i : i + chunk], times[i : i + chunk], strict=True)
            parts.append(np.stack([m.process(f, t) for f, t in pairs]))
        assert np.array_equal(np.concatenate(parts), whole)
    with pytest.raises(ValueError, match="timestamps"):
        magnify_clip(frames[:5], FPS, _config(20.0), times=times[:4])


def test_t10_streams_have_separate_state_and_reset_restarts():
    a, _ = evm.moving_frames(_texture("natural"), 0.5, 1.0, FPS, 60)
    b, _ = evm.moving_frames(_texture("band8"), 0.3, 2.0, FPS, 60, seed=1)
    alone_a, alone_b = magnify_clip(a, FPS, _config(20.0)), magnify_clip(b, FPS, _config(20.0))
    ma, mb, shared = (Magnifier(_config(20.0), FPS) for _ in range(3))
    mixed_a = []
    for i, (fa, fb) in enumerate(zip(a, b, strict=True)):  # interleaved a, b, a, b, ...
        assert np.array_equal(ma.process(fa), alone_a[i])
        assert np.array_equal(mb.process(fb), alone_b[i])
        mixed_a.append(shared.process(fa))
        shared.process(fb)
    worst = np.abs(np.stack(mixed_a).astype(int) - alone_a).max()
    assert worst > 20  # anti-test: one state fed two streams is wrong by far
    assert ma.state_bytes > 0
    ma.reset()
    assert ma.state_bytes == 0
    assert np.array_equal(ma.process(a[30]), a[30])  # a restart: the first frame is unchanged


# --- T11: frame rate, timestamps and other restarts --------------------------------------


def test_t11_gain_is_set_in_hertz_whatever_the_frame_rate():
    config = _config(10.0)
    at_30 = _measure("band32", 0.1, 1.0, config, fps=30.0)
    at_15 = _measure("band32", 0.1, 1.0, config, fps=15.0, n_frames=120, settle=45)
    assert at_15["lin"] == pytest.approx(at_30["lin"], rel=0.02)
    assert at_15["lin"] == pytest.approx(at_15["oracle"], rel=0.03)


def test_t11_timestamp_gaps_and_size_changes_restart_the_filter():
    frames, _ = evm.moving_frames(_texture("natural"), 0.5, 1.0, FPS, 40)
    m = Magnifier(_config(20.0), FPS)
    for i in range(20):
        m.process(frames[i], i / FPS)
    # a gap of exactly 2 frame periods (one dropped frame) keeps the state...
    assert not np.array_equal(m.process(frames[21], 21 / FPS), frames[21])
    # ...a longer one restarts: that frame comes out unchanged
    assert np.array_equal(m.process(frames[24], 23.5 / FPS), frames[24])
    for i in range(25, 30):
        m.process(frames[i], (i - 0.5) / FPS)
    assert np.array_equal(m.process(frames[30], 0.5), frames[30])  # back in time: new stream
    small = np.ascontiguousarray(frames[31, :112, :112])
    assert np.array_equal(m.process(small, 1.0 + 1 / FPS), small)
    with pytest.raises(ValueError, match="finite"):
        m.process(frames[32], float("inf"))


# --- colour, saturation, state size, bad input -------------------------------------------


def _colour_frames(n_frames: int) -> np.ndarray:
    """A moving texture with different content per channel (uint8 [N, 224, 224, 3])."""
    planes = [
        evm.moving_frames(_texture(name), 0.4, 1.0, FPS, n_frames, seed=i)[0][..., 0]
        for i, name in enumerate(("natural", "band32", "band8"))
    ]
    return np.stack(planes, axis=3)


def test_luminance_only_leaves_chroma_alone_and_colour_mode_magnifies_each_channel():
    frames = _colour_frames(60)
    out = magnify_clip(frames, FPS, _config(20.0))
    change = out.astype(int) - frames
    assert np.abs(change).max() > 10  # Y moved...
    assert (change.max(axis=3) - change.min(axis=3)).max() <= 1  # ...by the same dY in B, G, R
    crcb = [
        cv2.cvtColor(f.reshape(-1, SIZE, 3), cv2.COLOR_BGR2YCrCb)[..., 1:].astype(int)
        for f in (frames, out)
    ]
    assert np.abs(crcb[1] - crcb[0]).max() <= 1  # chroma untouched up to rounding
    colour = magnify_clip(frames, FPS, _config(20.0, luminance_only=False))
    for c in range(3):  # each channel magnified on its own, like process_luma
        m = Magnifier(_config(20.0), FPS)
        expected = [m.process_luma(f[..., c].astype(np.float32)) for f in frames]
        expected = np.clip(np.rint(np.stack(expected)), 0, 255)
        assert np.abs(colour[..., c] - expected).max() <= 1


def test_saturated_output_is_clipped():
    frames, _ = evm.moving_frames(_texture("band8"), 1.0, 1.0, FPS, 60)
    contrasty = np.clip(2 * frames.astype(int) - 128, 0, 255).astype(np.uint8)  # std 50
    config = _config(20.0, lambda_c=1e-6)  # no lambda_c rule: overshoots far past [0, 255]
    m, twin = Magnifier(config, FPS), Magnifier(config, FPS)
    lowest, highest, saturated = 255.0, 0.0, 0.0
    for frame in contrasty:
        out = m.process(frame)
        y = twin.process_luma(frame[..., 0].astype(np.float32))  # the same Y, unclipped
        assert np.abs(out[..., 0].astype(int) - np.clip(np.rint(y), 0, 255)).max() <= 1
        lowest, highest = min(lowest, y.min()), max(highest, y.max())
        saturated = max(saturated, float(np.mean((y < 0) | (y > 255))))
    # the checks above saw real saturation, far past both ends
    assert saturated > 0.05 and lowest < -50 and highest > 305


def test_state_holds_two_registers_per_amplified_level():
    m = Magnifier(MagnifierConfig(), FPS)  # 112 px: levels 1..3 (56, 28, 14 px) amplified
    assert m.state_bytes == 0
    m.process(np.zeros((112, 112, 3), np.uint8))
    assert m.state_bytes == 2 * 4 * (56**2 + 28**2 + 14**2)
    colour = Magnifier(MagnifierConfig(luminance_only=False), FPS)
    colour.process(np.zeros((112, 112, 3), np.uint8))
    assert colour.state_bytes == 3 * m.state_bytes


def test_bad_input_is_rejected_with_a_reason():
    m = Magnifier(MagnifierConfig(), FPS)
    with pytest.raises(TypeError, match="uint8"):
        m.process(np.zeros((112, 112, 3), np.float32))
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        m.process(np.zeros((112, 112), np.uint8))
    with pytest.raises(ValueError, match="too small"):
        m.process(np.zeros((12, 40, 3), np.uint8))  # 4 levels need a 16 px side
    with pytest.raises(TypeError, match="float32 or float64"):
        m.process_luma(np.zeros((112, 112), np.uint8))
    with pytest.raises(ValueError, match="at least one frame"):
        magnify_clip([], FPS, MagnifierConfig())
