"""The camera side of every synthetic clip, genuine and attack alike.

Whatever is in front of the camera (a live face, a print, a screen), the recording goes
through the same steps with parameters drawn from the same sets, so no frame rate,
resolution, codec, noise level or colour cast separates the classes:

    scene frame -> resize to the output size (pixel integration) -> lens blur
    -> white balance, exposure (with slow auto-exposure hunting), tone curve
    -> sensor noise (read + shot) -> the camera's JPEG compression at a random quality
    -> the container's codec (cv2.VideoWriter, one codec for the whole data set)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from model.video import VideoWriteError

OUTPUT_SHORT_SIDES = (240, 288, 360)  # px; the long side follows the source's aspect
OUTPUT_FPS = (15.0, 20.0, 24.0, 25.0, 30.0)  # only rates the source can feed are used
CODECS = {"mp4v": ".mp4", "MJPG": ".avi"}  # fourcc -> file extension (both write on any OpenCV)


@dataclass(frozen=True)
class CameraProfile:
    width: int  # output frame size, px (even: codecs want that)
    height: int
    fps: float  # output frame rate; frames are resampled from the source by timestamp
    jpeg_quality: int  # the camera's own compression before the container's codec, 0..100
    blur_sigma: float  # lens / focus blur at the output size, px (0 = none)
    read_noise: float  # sensor read noise std, 0..255 units
    shot_noise: float  # photon noise: variance per unit of signal (0..255 units)
    wb_gains: tuple[float, float, float]  # white-balance error, BGR gains
    exposure: float  # overall gain
    tone_gamma: float  # the camera's tone curve exponent on 0..1 values
    hunt_depth: float  # auto-exposure hunting: relative gain swing
    hunt_hz: float
    hunt_phase: float
    noise_seed: int  # seeds the per-frame noise

    @classmethod
    def sample(
        cls, rng: np.random.Generator, scene_hw: tuple[int, int], source_fps: float
    ) -> CameraProfile:
        """Draw a camera for a scene of size scene_hw fed by a source at source_fps."""
        h, w = scene_hw
        sides = [s for s in OUTPUT_SHORT_SIDES if s <= min(h, w)] or [min(h, w)]
        short = int(rng.choice(sides))
        scale = short / min(h, w)
        rates = [f for f in OUTPUT_FPS if f <= source_fps + 0.5] or [min(OUTPUT_FPS)]
        return cls(
            width=_even(w * scale),
            height=_even(h * scale),
            fps=float(rng.choice(rates)),
            jpeg_quality=int(rng.integers(35, 96)),
            blur_sigma=float(rng.uniform(0.0, 0.9)),
            read_noise=float(rng.uniform(0.5, 3.5)),
            shot_noise=float(rng.uniform(0.0, 0.08)),
            wb_gains=tuple(float(g) for g in rng.uniform(0.9, 1.1, 3)),
            exposure=float(rng.uniform(0.8, 1.2)),
            tone_gamma=float(rng.uniform(0.9, 1.1)),
            hunt_depth=float(rng.uniform(0.0, 0.04)),
            hunt_hz=float(rng.uniform(0.1, 0.6)),
            hunt_phase=float(rng.uniform(0, 2 * np.pi)),
            noise_seed=int(rng.integers(0, 2**31 - 1)),
        )

    def to_dict(self) -> dict:
        return asdict(self)


def _even(x: float) -> int:
    return max(2, int(round(x / 2)) * 2)


class Camera:
    """Records scene frames with one profile; frames must come in time order (noise stream)."""

    def __init__(self, profile: CameraProfile) -> None:
        self.profile = profile
        self.noise = np.random.default_rng(profile.noise_seed)

    def capture(self, scene: np.ndarray, t: float) -> np.ndarray:
        """One scene frame [h, w, 3] BGR uint8 at time t (s) -> recorded frame [H, W, 3] uint8."""
        p = self.profile
        size = (p.width, p.height)
        if scene.shape[1::-1] != size:
            shrink = p.width < scene.shape[1]
            interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR  # pixels integrate light
            scene = cv2.resize(scene, size, interpolation=interp)
        if p.blur_sigma > 0.05:
            scene = cv2.GaussianBlur(scene, (0, 0), p.blur_sigma)
        # Gain (white balance x exposure x hunting) then tone curve, as one lookup per channel.
        hunt = 1.0 + p.hunt_depth * math.sin(2 * math.pi * p.hunt_hz * t + p.hunt_phase)
        gains = np.array(p.wb_gains) * (p.exposure * hunt)  # [3]
        levels = np.arange(256, dtype=np.float64)[:, None] * gains  # [256, 3]
        tone = 255.0 * (np.clip(levels, 0, 255) / 255.0) ** p.tone_gamma
        lut = np.clip(tone + 0.5, 0, 255).astype(np.uint8).reshape(256, 1, 3)
        frame = cv2.LUT(scene, lut)
        # Read noise plus shot noise whose variance grows with the signal.
        sigma_lut = np.sqrt(p.read_noise**2 + p.shot_noise * np.arange(256)).astype(np.float32)
        noisy = self._unit_noise(frame.shape)
        noisy *= sigma_lut[frame]
        noisy += frame
        noisy += 0.5  # round to nearest on the cast below
        frame = np.clip(noisy, 0, 255, out=noisy).astype(np.uint8)
        ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, p.jpeg_quality])
        if not ok:
            raise VideoWriteError("JPEG encoding of a frame failed")
        return cv2.imdecode(jpeg, cv2.IMREAD_COLOR)

    def _unit_noise(self, shape: tuple[int, ...]) -> np.ndarray:
        """Zero-mean, unit-variance noise: the sum of two uniforms (triangular), which after
        the JPEG step looks like Gaussian sensor noise and costs a third of the time."""
        u = self.noise.random(shape, dtype=np.float32)
        u += self.noise.random(shape, dtype=np.float32)
        u -= 1.0
        u *= math.sqrt(6.0)
        return u
