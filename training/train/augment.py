"""Appearance augmentation of a whole clip: another camera's look of the same motion.

``appearance(crops, rng)`` draws one set of changes and applies it to every frame alike
(a window's frames must keep their relations: the temporal cues are in the differences
between frames): colour gains per channel, brightness, gamma, grayscale, Gaussian blur,
sensor noise, JPEG recompression, a lower resolution scaled back up, and a mirror image.
Each change is drawn with its own probability, so some renderings keep most of the
original. Used by ``feature_copies`` (training/train/features.py): extra renderings of each
training clip whose frozen maps are cached beside the original's.
"""

from __future__ import annotations

import cv2
import numpy as np


def appearance(crops: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 BGR crops [N, S, S, 3] -> another rendering, uint8 [N, S, S, 3]."""
    if crops.ndim != 4 or crops.shape[-1] != 3 or crops.dtype != np.uint8:
        raise ValueError(f"expected uint8 crops [N, S, S, 3], got {crops.dtype} {crops.shape}")
    n, size = crops.shape[0], crops.shape[1]
    gains = rng.uniform(0.8, 1.2, 3).astype(np.float32)
    offset = float(rng.uniform(-0.1, 0.1) * 255.0)
    gamma = float(np.exp(rng.uniform(-0.3, 0.3)))
    gray = rng.random() < 0.2
    blur = float(rng.uniform(0.5, 1.5)) if rng.random() < 0.3 else 0.0
    noise = float(rng.uniform(2.0, 8.0)) if rng.random() < 0.3 else 0.0
    quality = int(rng.integers(30, 91)) if rng.random() < 0.5 else 0
    scale = float(rng.uniform(0.4, 0.8)) if rng.random() < 0.3 else 1.0
    flip = rng.random() < 0.5
    noise_rng = np.random.default_rng(rng.integers(2**63))

    x = crops.astype(np.float32) * gains + offset
    x = 255.0 * (np.clip(x, 0.0, 255.0) / 255.0) ** gamma
    if gray:
        luma = x @ np.array([0.114, 0.587, 0.299], np.float32)  # BGR weights
        x = np.repeat(luma[..., None], 3, axis=-1)
    out = np.empty_like(crops)
    small = max(8, round(size * scale))
    for i in range(n):
        frame = x[i]
        if scale < 1.0:
            frame = cv2.resize(frame, (small, small), interpolation=cv2.INTER_AREA)
            frame = cv2.resize(frame, (size, size), interpolation=cv2.INTER_LINEAR)
        if blur:
            frame = cv2.GaussianBlur(frame, (0, 0), blur)
        if noise:
            frame = frame + noise_rng.normal(0.0, noise, frame.shape).astype(np.float32)
        frame = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
        if quality:
            ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if ok:
                frame = cv2.imdecode(data, cv2.IMREAD_COLOR)
        out[i] = frame[:, ::-1] if flip else frame
    return out
