"""Benchmark 4: the streaming magnifier against a reference linear EVM, speed and gain.

Input: a periodic, isotropic band-limited texture (wavelengths 28-36 px, mean 128, std
25) at 224x224 and 30 fps, shifted exactly (Fourier phase ramp) by
delta(t) = 0.1 px * sin(2 pi 1 Hz t): small enough that (1 + alpha) * delta stays inside
the linear bound lambda / 8, so the expected gain is known.

Reference, written here: the textbook batch EVM (Wu et al. 2012): Laplacian pyramid of
every frame, an ideal band-pass over the whole clip (FFT along time, a two-sided mask on
|f| in [f_lo, f_hi]), the same per-level gains, collapse and add.

Gain meter: the first-order displacement d(t) = -<g_t - f, f_x> / <f_x, f_x> on the
central 160x160 (f the unshifted texture, g_t the output), fitted with a sinusoid at
1 Hz over the steady second half of the clip; gain = its amplitude / 0.1 px. Expected:
|1 + alpha_eff H(1 Hz)| with H the implementation's temporal filter (1 for the ideal
one) and alpha_eff = <P f_x, f_x> / <f_x, f_x>, P that implementation's own weighted
pyramid operator (research/evm.md §4).
"""

from __future__ import annotations

import sys
import time

import cv2
import numpy as np
from scipy.signal import freqz

from bench.common import BenchContext, Summary, Table, fmt, opencv_threads, ratio

FPS = 30.0
MOTION_HZ = 1.0
AMPLITUDE = 0.1  # px
WAVELENGTH = 32.0  # px, centre of the texture's band
TARGET_MS = 1.0  # ours, per 224x224 frame, one core


def band_texture(size: int, wavelength: float, seed: int = 0) -> np.ndarray:
    """Fourier coefficients [size, size] of an isotropic texture with |k| in a narrow band."""
    rng = np.random.default_rng(seed)
    k = np.fft.fftfreq(size)
    radius = np.hypot(*np.meshgrid(k, k, indexing="ij"))
    band = (radius >= 1 / (1.125 * wavelength)) & (radius <= 1 / (0.875 * wavelength))
    spectrum = band * np.exp(2j * np.pi * rng.random((size, size)))
    image = np.fft.ifft2(spectrum).real
    return np.fft.fft2(image * (25.0 / image.std()))  # Hermitian: real shifts stay real


def shifted(spectrum: np.ndarray, dx: float) -> np.ndarray:
    """The texture moved right by dx px (exact, periodic), mean 128: float64 [H, W]."""
    kx = np.fft.fftfreq(spectrum.shape[1])[None, :]
    return 128.0 + np.fft.ifft2(spectrum * np.exp(-2j * np.pi * kx * dx)).real


# -- the reference: batch linear EVM with an ideal FFT band-pass ---------------------------


def _pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    out, g = [], image
    for _ in range(levels):
        down = cv2.pyrDown(g)
        out.append(g - cv2.pyrUp(down, dstsize=(g.shape[1], g.shape[0])))
        g = down
    return [*out, g]


def _collapse(levels: list[np.ndarray]) -> np.ndarray:
    acc = levels[-1]
    for band in reversed(levels[:-1]):
        acc = cv2.pyrUp(acc, dstsize=(band.shape[1], band.shape[0])) + band
    return acc


def reference_evm(clip: np.ndarray, fps: float, band: tuple[float, float], alphas) -> np.ndarray:
    """clip float32 [N, H, W] luma -> magnified [N, H, W] (the whole clip at once)."""
    n, levels = len(clip), len(alphas)
    pyramids = [_pyramid(frame, levels) for frame in clip]
    freqs = np.abs(np.fft.fftfreq(n, d=1.0 / fps))
    mask = ((freqs >= band[0]) & (freqs <= band[1]))[:, None, None]  # both signs of f
    amplified = []
    for lvl, alpha in enumerate(alphas):
        stack = np.stack([p[lvl] for p in pyramids])  # [N, h, w]
        if alpha == 0:
            amplified.append(np.zeros_like(stack))
            continue
        passed = np.fft.ifft(np.fft.fft(stack, axis=0) * mask, axis=0).real
        amplified.append((alpha * passed).astype(np.float32))
    residual = np.zeros_like(pyramids[0][-1])
    return np.stack([clip[i] + _collapse([a[i] for a in amplified] + [residual]) for i in range(n)])


def reference_operator(image: np.ndarray, alphas) -> np.ndarray:
    levels = _pyramid(image, len(alphas))
    return _collapse([a * b for a, b in zip(alphas, levels[:-1], strict=True)] + [0 * levels[-1]])


# -- the meter ------------------------------------------------------------------------------


def _centre(x: np.ndarray, margin: int) -> np.ndarray:
    return x[..., margin:-margin, margin:-margin]


def measured_gain(outputs: np.ndarray, still: np.ndarray, start: int, margin: int) -> float:
    """Amplitude of the 1 Hz sinusoid in the first-order displacement, / AMPLITUDE."""
    fx = _centre(np.gradient(still, axis=1), margin)
    diffs = _centre(outputs.astype(np.float64) - still, margin)[start:]
    d = -np.tensordot(diffs, fx, axes=([1, 2], [0, 1])) / np.sum(fx * fx)
    t = np.arange(start, len(outputs)) / FPS
    design = np.stack(
        [np.sin(2 * np.pi * MOTION_HZ * t), np.cos(2 * np.pi * MOTION_HZ * t), np.ones_like(t)], 1
    )
    (a, b, _), *_ = np.linalg.lstsq(design, d, rcond=None)
    return float(np.hypot(a, b) / AMPLITUDE)


def alpha_eff(operator, still: np.ndarray, margin: int) -> float:
    fx = np.gradient(still, axis=1)
    p = _centre(operator(fx), margin)
    fx = _centre(fx, margin)
    return float(np.sum(p * fx) / np.sum(fx * fx))


# -- the benchmark ---------------------------------------------------------------------------


def _measure(ctx: BenchContext, size: int, n_frames: int) -> dict:
    from model.config import MagnifierConfig
    from model.magnify import Magnifier, level_alphas, temporal_filter, weighted_laplacian

    config = MagnifierConfig()
    alphas = level_alphas(config)
    spectrum = band_texture(size, WAVELENGTH)
    t = np.arange(n_frames) / FPS
    luma = np.stack([shifted(spectrum, AMPLITUDE * np.sin(2 * np.pi * MOTION_HZ * s)) for s in t])
    still = shifted(spectrum, 0.0)
    frames_u8 = [cv2.merge([np.clip(np.rint(y), 0, 255).astype(np.uint8)] * 3) for y in luma]
    luma32 = luma.astype(np.float32)

    def timed_stream(process, inputs) -> tuple[list[float], list[np.ndarray]]:
        samples, outputs = [], []
        for x in inputs:
            t0 = time.perf_counter()
            outputs.append(process(x))
            samples.append(time.perf_counter() - t0)
        return samples, outputs

    ours_u8_s, ours_u8 = timed_stream(Magnifier(config, FPS).process, frames_u8)
    ours_f32_s, ours_f32 = timed_stream(Magnifier(config, FPS).process_luma, luma32)
    m64 = Magnifier(config, FPS)
    ours_f64 = np.stack([m64.process_luma(y) for y in luma])
    band = (config.f_lo, config.f_hi)
    ref_s = []
    for _ in range(2 if ctx.quick else 3):
        t0 = time.perf_counter()
        ref = reference_evm(luma32, FPS, band, alphas)
        ref_s.append((time.perf_counter() - t0) / n_frames)
    b, a = temporal_filter(config, FPS)
    _, h = freqz(b, a, worN=[MOTION_HZ], fs=FPS)
    margin = size // 7
    ours_alpha = alpha_eff(lambda x: weighted_laplacian(x, alphas), still, margin)
    ref_alpha = alpha_eff(lambda x: reference_operator(x.astype(np.float32), alphas), still, margin)
    grey = np.stack([cv2.cvtColor(o, cv2.COLOR_BGR2GRAY) for o in ours_u8])
    start = n_frames // 2
    return {
        "ours_u8": (ours_u8_s, measured_gain(grey, still, start, margin), abs(1 + ours_alpha * h[0])),
        "ours_f32": (ours_f32_s, measured_gain(np.stack(ours_f32), still, start, margin), abs(1 + ours_alpha * h[0])),
        "ours_f64": (None, measured_gain(ours_f64, still, start, margin), abs(1 + ours_alpha * h[0])),
        "reference": (ref_s, measured_gain(ref, still, start, margin), 1 + ref_alpha),
        "input": (None, measured_gain(luma, still, start, margin), 1.0),
    }  # fmt: skip


ROWS = [  # key, implementation, input
    ("ours_u8", "ours: Magnifier.process (served path)", "uint8 BGR, streaming"),
    ("ours_f32", "ours: Magnifier.process_luma", "float32 luma, streaming"),
    ("ours_f64", "ours: Magnifier.process_luma", "float64 luma, streaming"),
    ("reference", "reference: ideal FFT band-pass EVM", "float32 luma, whole clip"),
    ("input", "no magnification (meter check)", "float64 luma"),
]


def run(ctx: BenchContext) -> list[Table]:
    size, n_frames = (64, 60) if ctx.quick else (224, 300)
    table = Table(
        f"Magnifier at {size}x{size}, {n_frames} frames at {FPS:g} fps, one core",
        ["implementation", "input", "ms/frame, median (p10–p90)", "x ours (served)", "expected gain", "measured gain", "error"],
    )  # fmt: skip
    with opencv_threads(1):  # the target is for one core
        result = ctx.gated(table, "magnifier", lambda: _measure(ctx, size, n_frames))
    base = Summary.of(result["ours_u8"][0]).median
    for key, name, kind in ROWS:
        samples, gain, expected = result[key]
        s = Summary.of(samples) if samples else None
        table.add(name, kind, str(s) if s else "–", ratio(s.median, base) if s else "–",
                  fmt(expected), fmt(gain), f"{100 * (gain / expected - 1):+.1f} %")  # fmt: skip
    table.notes += [
        f"texture: isotropic band at {WAVELENGTH:g} px (±12.5 %), shifted {AMPLITUDE:g} px x "
        f"sin(2 pi {MOTION_HZ:g} Hz t); default MagnifierConfig (alpha 10, lambda_c 16, "
        "0.4–3 Hz, 4 levels); gains over the second half of the clip",
        f"target: ours <= {TARGET_MS:g} ms/frame at 224x224 on one core (cv2.setNumThreads(1)); "
        "the reference's ms/frame is its whole-clip time / frames (it cannot stream)",
    ]
    return [table]


if __name__ == "__main__":
    from bench.cli import main

    sys.exit(main(["magnifier", *sys.argv[1:]]))
