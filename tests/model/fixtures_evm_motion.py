"""Exactly known moving textures and a least-squares translation meter for magnifier tests.

A periodic band-limited texture f is made in the Fourier domain (seeded) and each frame is
f(x - delta_t), shifted exactly by a Fourier phase ramp along x. The meter measures how far
a (magnified) frame g has moved:
- `fit`: argmin_d |g - f(. - d)|^2 on the central crop (grid search, then Gauss-Newton);
- `first_order`: d_lin = -<g - f, f_x> / <f_x, f_x>, exactly what linear EVM scales;
- `residual`: RMS(g - f(. - d)) / std(f), how far g is from a pure translation.
"""

from __future__ import annotations

import numpy as np

MEAN, STD = 128.0, 25.0  # grey level statistics of every texture


def _normalise(texture: np.ndarray) -> np.ndarray:
    return MEAN + STD * (texture - texture.mean()) / texture.std()


def band_texture(size: int, wavelength: float, seed: int, *, stripes: bool = False) -> np.ndarray:
    """Isotropic (or 1-D, x only) texture with wavelengths in wavelength * [0.875, 1.125].

    Returns float64 [size, size], mean 128, std 25, periodic in x and y.
    """
    k = np.fft.fftfreq(size)  # cycles per pixel
    ky, kx = np.meshgrid(k, k, indexing="ij")
    radius = np.abs(kx) if stripes else np.hypot(kx, ky)
    mask = (radius >= 1 / (1.125 * wavelength)) & (radius <= 1 / (0.875 * wavelength))
    if stripes:
        mask &= ky == 0
    return _spectrum_texture(mask.astype(np.float64), seed)


def natural_texture(size: int, seed: int) -> np.ndarray:
    """1/f amplitude spectrum over wavelengths 3..size px (float64 [size, size])."""
    k = np.fft.fftfreq(size)
    radius = np.hypot(*np.meshgrid(k, k, indexing="ij"))
    amplitude = np.zeros_like(radius)
    band = (radius >= 1 / size) & (radius <= 1 / 3)
    amplitude[band] = 1.0 / radius[band]
    return _spectrum_texture(amplitude, seed)


def _spectrum_texture(amplitude: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, amplitude.shape)
    return _normalise(np.real(np.fft.ifft2(amplitude * np.exp(1j * phase))))


def shifted(texture: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """f(x - d) for each d in shifts: float64 [len(shifts), H, W] (exact, periodic)."""
    width = texture.shape[1]
    spectrum = np.fft.rfft(texture, axis=1)  # [H, W//2+1]
    ramp = np.exp(-2j * np.pi * np.fft.rfftfreq(width) * np.asarray(shifts)[:, None])
    return np.fft.irfft(spectrum[None] * ramp[:, None, :], n=width, axis=2)


def gradient_x(texture: np.ndarray) -> np.ndarray:
    """Exact d f / d x of a periodic texture (float64 [H, W])."""
    width = texture.shape[1]
    spectrum = np.fft.rfft(texture, axis=1) * (2j * np.pi * np.fft.rfftfreq(width))
    return np.fft.irfft(spectrum, n=width, axis=1)


def moving_frames(
    texture: np.ndarray, amplitude: float, freq: float, fps: float, n_frames: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 grey BGR frames [N, H, W, 3] of f(x - A sin(2 pi f t)), and the shifts [N].

    Rounding is dithered (seeded) so quantisation error is not locked to the texture:
    without it, a 1-D texture moving 0.1 px reads 4.5 % too far on the raw input itself.
    """
    delta = amplitude * np.sin(2 * np.pi * freq * np.arange(n_frames) / fps)
    rng = np.random.default_rng(seed)
    frames = np.empty((n_frames, *texture.shape, 3), np.uint8)
    for start in range(0, n_frames, 32):  # chunks keep the float64 intermediates small
        chunk = shifted(texture, delta[start : start + 32])
        chunk += rng.random(chunk.shape, dtype=np.float32)  # floor(v + U[0, 1)): dithered round
        frames[start : start + 32] = np.clip(np.floor(chunk), 0, 255)[..., None]
    return frames, delta


def sinusoid_amplitude(signal: np.ndarray, freq: float, fps: float, start: int) -> float:
    """Amplitude of the least-squares fit c0 + c1 sin + c2 cos at freq over signal[start:]."""
    t = np.arange(start, len(signal)) / fps
    basis = np.stack([np.ones_like(t), np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)])
    coef, *_ = np.linalg.lstsq(basis.T, signal[start:], rcond=None)
    return float(np.hypot(coef[1], coef[2]))


class TranslationMeter:
    """Global x-translation of frames against a known texture, on the central crop."""

    def __init__(self, texture: np.ndarray, margin: int = 32, radius: float = 8.0):
        self.rows = texture[margin:-margin]  # [h, W]: only these rows are ever compared
        self.cols = slice(margin, -margin)
        self.crop = (slice(margin, -margin), self.cols)
        self.f = texture[self.crop]
        self.fx = gradient_x(texture)[self.crop]
        self.grid = np.arange(-radius, radius + 1e-9, 0.25)
        candidates = shifted(self.rows, self.grid)[:, :, self.cols]
        self.candidates = candidates.reshape(len(self.grid), -1)  # [K, P]

    def _model(self, d: np.ndarray, derivative: bool = False) -> np.ndarray:
        """f(x - d) (or its d/dd) on the crop: [N, h, w]."""
        rows = gradient_x(self.rows) if derivative else self.rows
        sign = -1.0 if derivative else 1.0
        return sign * shifted(rows, d)[:, :, self.cols]

    def first_order(self, frames: np.ndarray) -> np.ndarray:
        """d_lin per frame: frames float [N, H, W] -> [N]."""
        diff = frames[(slice(None), *self.crop)] - self.f
        return -np.einsum("nij,ij->n", diff, self.fx) / np.sum(self.fx**2)

    def fit(self, frames: np.ndarray, iterations: int = 3) -> np.ndarray:
        """argmin_d |g - f(. - d)|^2 per frame: grid (0.25 px) then Gauss-Newton -> [N]."""
        g = frames[(slice(None), *self.crop)]
        flat = g.reshape(len(g), -1)
        sse = -2 * flat @ self.candidates.T + np.sum(self.candidates**2, axis=1)  # + |g|^2
        d = self.grid[np.argmin(sse, axis=1)]
        for _ in range(iterations):
            r, slope = g - self._model(d), self._model(d, derivative=True)
            d = d + np.einsum("nij,nij->n", r, slope) / np.einsum("nij,nij->n", slope, slope)
        return d

    def residual(self, frames: np.ndarray, d: np.ndarray) -> np.ndarray:
        """RMS(g - f(. - d)) / std(f) per frame -> [N]; 0.011 is the uint8 floor."""
        r = frames[(slice(None), *self.crop)] - self._model(d)
        return np.sqrt(np.mean(r**2, axis=(1, 2))) / STD
