"""What a phone or tablet shows around a replayed video: a status bar, a browser's
address bar, a player's controls, drawn at the display's working resolution.

Every element is optional and every size, colour, theme and position is drawn per clip
(no constant bar a network could learn): light or dark themes with a random tint,
bars of random height, an address "text" of random blocks, a progress bar that advances
over time at a random rate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class ScreenUI:
    status_bar: float  # height as a share of the screen's long side, 0 = none
    address_bar: float  # browser bar height, same units, 0 = none
    player_bar: float  # player controls height, 0 = none
    theme_bgr: tuple[float, float, float]  # bar background
    ink_bgr: tuple[float, float, float]  # text, icons
    accent_bgr: tuple[float, float, float]  # progress bar
    opacity: float  # of the player controls over the video
    progress: float  # where playback is at t = 0, 0..1
    progress_rate: float  # share of the bar per second
    text_seed: int

    @classmethod
    def sample(cls, rng: np.random.Generator) -> ScreenUI:
        dark = rng.random() < 0.5
        theme = (rng.uniform(10, 50) if dark else rng.uniform(200, 250)) * rng.uniform(0.85, 1.0, 3)
        ink = (rng.uniform(190, 250) if dark else rng.uniform(20, 80)) * np.ones(3)
        return cls(
            status_bar=float(rng.uniform(0.02, 0.04) if rng.random() < 0.5 else 0.0),
            address_bar=float(rng.uniform(0.04, 0.08) if rng.random() < 0.35 else 0.0),
            player_bar=float(rng.uniform(0.05, 0.12) if rng.random() < 0.5 else 0.0),
            theme_bgr=tuple(float(c) for c in theme),
            ink_bgr=tuple(float(c) for c in ink),
            accent_bgr=tuple(float(c) for c in rng.uniform(0, 255, 3)),
            opacity=float(rng.uniform(0.4, 0.9)),
            progress=float(rng.uniform(0.0, 0.8)),
            progress_rate=float(rng.uniform(0.002, 0.03)),
            text_seed=int(rng.integers(0, 2**31 - 1)),
        )

    @classmethod
    def none(cls) -> ScreenUI:
        return cls(0.0, 0.0, 0.0, (0, 0, 0), (0, 0, 0), (0, 0, 0), 0.0, 0.0, 0.0, 0)

    def to_dict(self) -> dict:
        return asdict(self)

    def content_box(self, rows: int) -> tuple[int, int]:
        """Rows (top, bottom) left for the video between the top bars."""
        long_side = rows
        return int(round((self.status_bar + self.address_bar) * long_side)), rows

    def overlay(self, cols: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """The fixed bars: colour [rows, cols, 3] and alpha [rows, cols], 0..1."""
        colour = np.zeros((rows, cols, 3), np.float32)
        alpha = np.zeros((rows, cols), np.float32)
        rng = np.random.default_rng(self.text_seed)
        ink = np.array(self.ink_bgr, np.float32) / 255
        y = 0
        for share, kind in ((self.status_bar, "status"), (self.address_bar, "address")):
            bar = int(round(share * rows))
            if bar < 2:
                continue
            colour[y : y + bar] = np.array(self.theme_bgr, np.float32) / 255
            alpha[y : y + bar] = 1.0
            if kind == "status":  # clock on one side, signal and battery on the other
                _blocks(colour, rng, y, bar, 0.03 * cols, 0.18 * cols, ink, 3)
                _blocks(colour, rng, y, bar, 0.72 * cols, 0.95 * cols, ink, 3)
            else:  # a rounded field with the address in it
                pad = max(1, bar // 6)
                field = (np.array(self.theme_bgr, np.float32) / 255) * 0.85 + 0.07
                cv2.rectangle(
                    colour, (pad * 3, y + pad), (cols - pad * 3, y + bar - pad), field.tolist(), -1
                )
                _blocks(colour, rng, y + pad, bar - 2 * pad, 0.1 * cols, 0.75 * cols, ink, 8)
            y += bar
        return colour, alpha

    def draw_player(self, img: np.ndarray, t: float) -> None:
        """Player controls over the bottom of the video, in place (img 0..1)."""
        rows, cols = img.shape[:2]
        bar = int(round(self.player_bar * rows))
        if bar < 3:
            return
        region = img[rows - bar :]
        region *= 1 - self.opacity * 0.7  # the translucent dark gradient under controls
        ink = np.array(self.ink_bgr, np.float32) / 255
        y = rows - bar // 2
        cx = bar // 2
        tri = np.array(
            [[cx - bar // 6, y - bar // 5], [cx - bar // 6, y + bar // 5], [cx + bar // 5, y]]
        )
        cv2.fillConvexPoly(img, tri.astype(np.int32), ink.tolist())
        x0, x1 = bar, cols - bar // 2
        done = (self.progress + self.progress_rate * t) % 1.0
        thick = max(1, bar // 10)
        cv2.line(img, (x0, y), (x1, y), (ink * 0.5).tolist(), thick)
        xp = int(x0 + done * (x1 - x0))
        cv2.line(img, (x0, y), (xp, y), (np.array(self.accent_bgr) / 255).tolist(), thick)
        cv2.circle(img, (xp, y), max(1, bar // 7), (np.array(self.accent_bgr) / 255).tolist(), -1)


def _blocks(img, rng, y, height, x0, x1, ink, n) -> None:
    """Text-like blocks: ``n`` words of random width between x0 and x1."""
    x = x0
    top, bottom = y + int(height * 0.35), y + int(height * 0.65)
    for _ in range(n):
        w = rng.uniform(0.03, 0.09) * img.shape[1]
        if x + w > x1:
            break
        cv2.rectangle(img, (int(x), top), (int(x + w), bottom), ink.tolist(), -1)
        x += w + rng.uniform(0.01, 0.03) * img.shape[1]
