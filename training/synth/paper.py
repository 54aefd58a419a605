"""Paper and ink: how a printed photo looks before the camera sees it.

Pure functions of a still frame and a ``PrintLook``: tone curve (raised blacks, dimmer
whites, gamma, a smaller gamut), a CMY halftone dot screen, paper fibre and uneven light.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class PrintLook:
    """How printer and paper render the photo."""

    black: float  # darkest ink, 0..255: prints have raised blacks
    white: float  # paper white, 0..255: and dimmer whites (compressed dynamic range)
    gamma: float  # tone curve exponent applied to 0..1 values
    saturation: float  # 1 = unchanged; prints have a smaller gamut
    tint: tuple[float, float, float]  # paper/ink colour cast, BGR gains
    halftone_period: float  # dot-screen period, px of the sheet
    halftone_angle_deg: float  # screen angle of the first ink; the others are +30°, +60°
    halftone_strength: float  # share of the binary halftone mixed into continuous tone
    texture_amp: float  # paper fibre, relative brightness std
    texture_seed: int
    light_gradient: float  # uneven light across the sheet, relative change edge to edge
    light_angle_deg: float
    margin: float  # white border around the photo, as a fraction of its short side

    @classmethod
    def sample(cls, rng: np.random.Generator) -> PrintLook:
        return cls(
            black=float(rng.uniform(12, 45)),
            white=float(rng.uniform(190, 240)),
            gamma=float(rng.uniform(0.8, 1.3)),
            saturation=float(rng.uniform(0.6, 0.95)),
            tint=tuple(float(g) for g in rng.uniform(0.94, 1.04, 3)),
            halftone_period=float(rng.uniform(2.2, 4.0)),
            halftone_angle_deg=float(rng.uniform(0, 90)),
            halftone_strength=float(rng.uniform(0.1, 0.45)),
            texture_amp=float(rng.uniform(0.01, 0.05)),
            texture_seed=int(rng.integers(0, 2**31 - 1)),
            light_gradient=float(rng.uniform(0.0, 0.15)),
            light_angle_deg=float(rng.uniform(0, 360)),
            margin=float(rng.uniform(0.03, 0.12)),
        )


def print_photo(still: np.ndarray, look: PrintLook) -> np.ndarray:
    """The photo as printed on paper: float32 [h, w, 3] in 0..255 (no border)."""
    img = still.astype(np.float32) / 255.0
    gray = img.mean(axis=2, keepdims=True)
    img = np.clip(gray + look.saturation * (img - gray), 0, 1) ** look.gamma
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for c in range(3):  # ink c absorbs channel c; each ink has its own screen angle
        a = math.radians(look.halftone_angle_deg + 30 * c)
        xr, yr = xx * math.cos(a) + yy * math.sin(a), -xx * math.sin(a) + yy * math.cos(a)
        k = 2 * math.pi / look.halftone_period
        screen = 0.5 + 0.25 * (np.cos(k * xr) + np.cos(k * yr))  # 0..1 dot threshold
        dots = ((1.0 - img[..., c]) <= screen).astype(np.float32)  # 1 = bare paper
        dots = cv2.GaussianBlur(dots, (0, 0), 0.5)  # ink spreads into the paper (dot gain)
        img[..., c] = (1 - look.halftone_strength) * img[..., c] + look.halftone_strength * dots
    return look.black + (look.white - look.black) * img


def paper_sheet(still: np.ndarray, look: PrintLook, with_border: bool) -> np.ndarray:
    """The whole sheet (photo, optional white border, fibre, light): float32 [h, w, 3]."""
    photo = print_photo(still, look)
    if with_border:
        m = int(round(look.margin * min(still.shape[:2])))
        photo = cv2.copyMakeBorder(photo, m, m, m, m, cv2.BORDER_CONSTANT, value=[look.white] * 3)
    h, w = photo.shape[:2]
    return np.clip(photo * paper_texture(h, w, look), 0, 255)


def paper_texture(h: int, w: int, look: PrintLook) -> np.ndarray:
    """Gain [h, w, 3] of a sheet's fibre, uneven light and tint (multiply the print by it)."""
    rng = np.random.default_rng(look.texture_seed)
    fibre = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 1.2)
    fibre *= look.texture_amp / max(float(fibre.std()), 1e-6)
    a = math.radians(look.light_angle_deg)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = ((xx / w - 0.5) * math.cos(a) + (yy / h - 0.5) * math.sin(a)) * look.light_gradient
    return (1.0 + fibre + ramp)[..., None] * np.array(look.tint, np.float32)
