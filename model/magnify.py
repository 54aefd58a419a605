"""Streaming linear Eulerian motion magnification of face crops (paper §3.1).

Per frame: Laplacian pyramid of the luminance -> causal temporal band-pass per pixel and
level -> per-level gain alpha_l -> collapse -> Y' = Y + collapse(alpha_l * B_l). For a
small translation delta(t) of a pattern with wavelength lambda the output moves by about
|1 + alpha_l * H(f)| * delta, as long as (1 + alpha) * delta < lambda / 8 (Wu et al. 2012);
past that bound the output overshoots instead of moving further, so alpha_l is attenuated
for short wavelengths (the lambda_c rule in `level_alphas`).

The filter is causal and keeps explicit per-stream state, so a frame's output depends only
on earlier frames of the same stream: a clip fed frame by frame (`magnify_clip`) and the
same frames streamed give identical results. The state is initialised from the first frame
as if that frame had always been there (steady state), so a still scene comes out unchanged
from the very first frame instead of ringing.

Temporal filter: a 1st-order Butterworth band-pass (one 2nd-order section, Direct Form II
transposed, two registers per pixel and level). Its stop band is weak: at 6 Hz with a
0.4-3 Hz band, |H| = 0.37, so out-of-band motion is still amplified by |1 + alpha_l * H|.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import cv2
import numpy as np
from scipy.signal import butter, lfilter_zi

from model.config import MagnifierConfig

MAX_BAND_FRACTION = 0.45  # f_hi is clamped to this fraction of the frame rate (Nyquist is 0.5)
GAP_PERIODS = 2.0  # a timestamp gap longer than this many frame periods restarts the filter


def level_wavelengths(n_levels: int) -> np.ndarray:
    """Representative wavelength of each Laplacian band, px: 2*sqrt(2)*2**l (l = 0 finest).

    The band of a binomial Laplacian pyramid at level l is centred near this wavelength.
    """
    return 2.0 * math.sqrt(2.0) * 2.0 ** np.arange(n_levels, dtype=np.float64)


def _check_config(config: MagnifierConfig) -> None:
    if config.n_levels < 1:
        raise ValueError(f"MagnifierConfig.n_levels must be >= 1, got {config.n_levels}")
    if not config.alpha >= 0:
        raise ValueError(f"MagnifierConfig.alpha must be >= 0, got {config.alpha}")
    if not config.lambda_c > 0:
        raise ValueError(f"MagnifierConfig.lambda_c must be > 0 px, got {config.lambda_c}")
    if not config.exaggeration >= 0:
        raise ValueError(f"MagnifierConfig.exaggeration must be >= 0, got {config.exaggeration}")


def level_alphas(config: MagnifierConfig, n_levels: int | None = None) -> np.ndarray:
    """Gain of each Laplacian band, finest first: [n_levels] float64.

    alpha_l = clip((lambda_l / lambda_c) * (1 + alpha) - 1, 0, alpha) * exaggeration, the
    largest gain that keeps a motion of lambda_c / (8 * (1 + alpha)) px inside the linear
    bound at wavelength lambda_l. The finest level (mostly sensor noise and aliasing) is
    never amplified; nor is the low-pass residual, which is not part of this array.
    """
    _check_config(config)
    n = config.n_levels if n_levels is None else n_levels
    if n < 1:
        raise ValueError(f"n_levels must be >= 1, got {n}")
    lam = level_wavelengths(n)
    alphas = np.clip((lam / config.lambda_c) * (1.0 + config.alpha) - 1.0, 0.0, config.alpha)
    alphas *= config.exaggeration
    alphas[0] = 0.0
    return alphas


def pass_band(config: MagnifierConfig, fps: float) -> tuple[float, float]:
    """The temporal pass band (f_lo, f_hi) in Hz actually used at this frame rate.

    f_hi is clamped to 0.45 * fps so it stays below Nyquist (at 5 fps, 3 Hz becomes
    2.25 Hz). Raises ValueError for fps <= 0 or when f_lo >= f_hi after clamping.
    """
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"frame rate must be a positive number of frames per second, got {fps}")
    if not config.f_lo > 0:
        raise ValueError(f"MagnifierConfig.f_lo must be > 0 Hz, got {config.f_lo}")
    f_hi = min(config.f_hi, MAX_BAND_FRACTION * fps)
    if config.f_lo >= f_hi:
        raise ValueError(
            f"empty pass band at {fps:g} fps: f_lo={config.f_lo:g} Hz >= f_hi={f_hi:g} Hz "
            f"(f_hi is clamped to {MAX_BAND_FRACTION} * fps)"
        )
    return float(config.f_lo), float(f_hi)


def temporal_filter(config: MagnifierConfig, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """(b, a) of the 1st-order Butterworth band-pass at this frame rate; a[0] == 1."""
    f_lo, f_hi = pass_band(config, fps)
    b, a = butter(1, [f_lo, f_hi], btype="bandpass", fs=fps)
    return np.asarray(b, np.float64), np.asarray(a, np.float64)


def _check_pyramid_size(shape: tuple[int, ...], n_levels: int) -> None:
    if min(shape[:2]) < 2**n_levels:
        raise ValueError(
            f"frame {shape[1]}x{shape[0]} is too small for {n_levels} pyramid levels "
            f"(needs a side of at least {2**n_levels} px)"
        )


def laplacian_pyramid(image: np.ndarray, n_levels: int) -> list[np.ndarray]:
    """Band levels finest first, then the low-pass residual: n_levels + 1 float arrays.

    image: float32/float64 [H, W]; level l is [ceil(H / 2**l), ceil(W / 2**l)].
    """
    _check_pyramid_size(image.shape, n_levels)
    levels = []
    gauss = image
    for _ in range(n_levels):
        down = cv2.pyrDown(gauss)
        levels.append(gauss - cv2.pyrUp(down, dstsize=(gauss.shape[1], gauss.shape[0])))
        gauss = down
    levels.append(gauss)
    return levels


def collapse_pyramid(levels: Sequence[np.ndarray]) -> np.ndarray:
    """Inverse of `laplacian_pyramid`: upsample from the residual and add each band."""
    acc = levels[-1]
    for band in reversed(levels[:-1]):
        acc = cv2.pyrUp(acc, dstsize=(band.shape[1], band.shape[0])) + band
    return acc


def weighted_laplacian(image: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """The magnifier's spatial operator: collapse(alpha_l * L_l(image)), residual dropped.

    The magnifier adds exactly this operator applied to the band-passed frames, so for a
    gradient image f_x, <weighted_laplacian(f_x), f_x> / |f_x|^2 is the effective gain
    of a small translation (the linear-theory oracle used by the tests).
    """
    levels = laplacian_pyramid(image, len(alphas))
    weighted = [a * band for a, band in zip(alphas, levels[:-1], strict=True)]
    return collapse_pyramid([*weighted, np.zeros_like(levels[-1])])


class _PlaneFilter:
    """Band-pass registers of one image plane: DF2T state (z0, z1) per amplified level."""

    def __init__(self, plane: np.ndarray, b: np.ndarray, a: np.ndarray, alphas: np.ndarray):
        self.alphas = [float(x) for x in alphas]
        self.active = {lvl for lvl, x in enumerate(self.alphas) if x != 0.0}
        self.top = max(self.active)  # coarsest amplified level; coarser ones are never built
        self.b0, self.b1, self.b2 = (float(x) for x in b)
        self.a1, self.a2 = float(a[1]), float(a[2])
        self.sizes = [_level_size(plane.shape, lvl) for lvl in range(self.top + 1)]
        # Steady state for a constant input (as if the first frame had always been there),
        # exactly what lfilter(b, a, x, zi=lfilter_zi(b, a) * x[0]) starts from; the first
        # frame then goes through `step` like any other, so its band-pass output is ~0.
        zi = [float(z) for z in lfilter_zi(b, a)]
        bands = self._bands(plane)
        self.z0 = {lvl: zi[0] * bands[lvl] for lvl in self.active}
        self.z1 = {lvl: zi[1] * bands[lvl] for lvl in self.active}

    @property
    def nbytes(self) -> int:
        return sum(z.nbytes for z in self.z0.values()) + sum(z.nbytes for z in self.z1.values())

    def _bands(self, plane: np.ndarray) -> dict[int, np.ndarray]:
        """Laplacian bands of the amplified levels only (level l: [H / 2**l, W / 2**l])."""
        bands, gauss = {}, plane
        for lvl in range(self.top + 1):
            down = cv2.pyrDown(gauss)
            if lvl in self.active:
                size = (gauss.shape[1], gauss.shape[0])
                bands[lvl] = gauss - cv2.pyrUp(down, dstsize=size)
            gauss = down
        return bands

    def _band_pass(self, lvl: int, x: np.ndarray) -> np.ndarray:
        """One DF2T step, the same arithmetic as scipy.signal.lfilter (bit-exact in float64)."""
        z0, z1 = self.z0[lvl], self.z1[lvl]
        y = x * self.b0 + z0
        # z0 <- z1 + b1*x - a1*y; z1 <- b2*x - a2*y  (b1 is 0 for this band-pass)
        np.subtract(z1 + x * self.b1, y * self.a1, out=z0)
        np.subtract(x * self.b2, y * self.a2, out=z1)
        return y

    def step(self, plane: np.ndarray) -> np.ndarray:
        """collapse(alpha_l * B_l) for this frame: the displacement image to add, [H, W]."""
        bands = self._bands(plane)
        acc = None
        for lvl in range(self.top, -1, -1):
            if acc is not None:
                acc = cv2.pyrUp(acc, dstsize=self.sizes[lvl])
            if lvl in bands:
                term = self.alphas[lvl] * self._band_pass(lvl, bands[lvl])
                acc = term if acc is None else acc + term
        return acc


def _level_size(shape: tuple[int, ...], lvl: int) -> tuple[int, int]:
    """(width, height) of pyramid level lvl for a plane of this shape (pyrDown rounds up)."""
    h, w = shape[:2]
    for _ in range(lvl):
        h, w = (h + 1) // 2, (w + 1) // 2
    return w, h


class Magnifier:
    """Causal Eulerian magnifier for one stream (one face track); never share between streams.

    The filter restarts (state taken from the incoming frame, whose output then equals its
    input) on `reset()`, on a change of frame size or luma dtype, and, when timestamps are
    given, on a gap longer than 2 frame periods or a timestamp that goes backwards.

    Colour: with ``luminance_only`` (default) only Y of YCrCb is amplified and chroma is
    untouched; since YCrCb -> BGR adds Y with weight 1 to each of B, G and R, this is done
    as out_c = in_c + dY for each channel c, which avoids a lossy uint8 colour round trip.
    With ``luminance_only=False`` Y, Cr and Cb are all amplified with the same alpha_l,
    which (the colour transform being affine) is computed as B, G and R each amplified.
    """

    def __init__(self, config: MagnifierConfig, fps: float) -> None:
        self.config = config
        self.fps = float(fps)
        self.b, self.a = temporal_filter(config, self.fps)  # validates fps and the band
        self.alphas = level_alphas(config)
        self._planes: list[_PlaneFilter] = []
        self._key: tuple | None = None  # (plane shape, dtype, plane count) of the state
        self._last_t: float | None = None

    @property
    def state_bytes(self) -> int:
        """Bytes held by the filter registers (0 before the first frame)."""
        return sum(p.nbytes for p in self._planes)

    def reset(self) -> None:
        """Forget the stream: the next frame restarts the filter and comes out unchanged."""
        self._planes, self._key, self._last_t = [], None, None

    def _check_time(self, t: float | None) -> None:
        """Restart on a timestamp gap > GAP_PERIODS frame periods or a step backwards."""
        if t is None:
            self._last_t = None
            return
        t = float(t)
        if not math.isfinite(t):
            raise ValueError(f"frame timestamp must be a finite number of seconds, got {t}")
        if self._last_t is not None:
            gap = t - self._last_t
            if gap < 0 or gap * self.fps > GAP_PERIODS + 1e-6:  # 1e-6: float round-off
                self.reset()
        self._last_t = t

    def _deltas(self, planes: list[np.ndarray], t: float | None) -> list[np.ndarray] | None:
        """Per plane collapse(alpha_l * B_l), [H, W] each; None when every alpha_l is 0."""
        self._check_time(t)
        key = (planes[0].shape, planes[0].dtype, len(planes))
        if key != self._key:  # first frame, reset, or a new size: restart from this frame
            _check_pyramid_size(planes[0].shape, self.config.n_levels)
            self._key = key
            self._planes = []
            if np.any(self.alphas):
                self._planes = [_PlaneFilter(p, self.b, self.a, self.alphas) for p in planes]
        if not self._planes:
            return None
        return [f.step(p) for f, p in zip(self._planes, planes, strict=True)]

    def process(self, frame: np.ndarray, t: float | None = None) -> np.ndarray:
        """Magnify one frame. frame: uint8 [H, W, 3] BGR -> a new uint8 [H, W, 3] BGR.

        t: capture time in seconds (optional); used only to detect gaps. Output values are
        rounded and saturated to [0, 255].
        """
        if not (isinstance(frame, np.ndarray) and frame.ndim == 3 and frame.shape[2] == 3):
            raise ValueError(f"expected a BGR frame [H, W, 3], got {_describe(frame)}")
        if frame.dtype != np.uint8:
            raise TypeError(f"expected a uint8 BGR frame, got dtype {frame.dtype}")
        if not self.config.enabled:
            return frame.copy()
        bgr = frame.astype(np.float32)
        if self.config.luminance_only:
            planes = [cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)]  # Y = .299R + .587G + .114B
        else:
            planes = list(cv2.split(bgr))
        deltas = self._deltas(planes, t)
        if deltas is None:
            return frame.copy()
        delta = cv2.merge([deltas[0]] * 3 if self.config.luminance_only else deltas)
        return cv2.add(frame, delta, dtype=cv2.CV_8U)  # rounds and saturates

    def process_luma(self, y: np.ndarray, t: float | None = None) -> np.ndarray:
        """Magnify one luminance plane: float32/float64 [H, W] -> same dtype, NOT clipped.

        The exact linear operator, for tests and analysis; shares this stream's state.
        """
        if not (isinstance(y, np.ndarray) and y.ndim == 2):
            raise ValueError(f"expected a luminance plane [H, W], got {_describe(y)}")
        if y.dtype not in (np.float32, np.float64):
            raise TypeError(f"expected float32 or float64 luminance, got dtype {y.dtype}")
        if not self.config.enabled:
            return y.copy()
        deltas = self._deltas([y], t)
        if deltas is None:
            return y.copy()
        return y + deltas[0]


def _describe(x: object) -> str:
    if isinstance(x, np.ndarray):
        return f"array of shape {x.shape} and dtype {x.dtype}"
    return type(x).__name__


def magnify_clip(
    frames: Iterable[np.ndarray],
    fps: float,
    config: MagnifierConfig,
    times: Sequence[float] | None = None,
) -> np.ndarray:
    """Magnify a whole clip: a fresh `Magnifier` fed frame by frame -> [N, H, W, 3] uint8.

    frames: uint8 [H, W, 3] BGR each; times: optional capture times in seconds, one per frame.
    """
    magnifier = Magnifier(config, fps)
    out = []
    for i, frame in enumerate(frames):
        if times is not None and i >= len(times):
            raise ValueError(f"more frames than timestamps ({len(times)})")
        out.append(magnifier.process(frame, None if times is None else times[i]))
    if not out:
        raise ValueError("magnify_clip needs at least one frame")
    if times is not None and len(times) != len(out):
        raise ValueError(f"{len(times)} timestamps for {len(out)} frames")
    return np.stack(out)
