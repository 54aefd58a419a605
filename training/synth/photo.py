"""Photo prints (kind ``print_photo``): a printed photo of the person, held up in a hand or
propped on a stand, in front of another person's room, often bent.

The sheet is a real print size (10x15 cm to A4, portrait or landscape) with or without a
border of a random paper colour, the photo cropped to it around the face (so the face can
fill much of it), printed through training/synth/paper.py's tone curve, CMY halftone,
fibre and uneven light. It fills 20 % to more than the whole frame. It is bent around an
axis (vertical or horizontal) into a cylinder whose curvature a holding hand changes over
time; every frame is ray-traced onto that cylinder (held.py's pose and camera), so lines
along the axis stay straight and lines across it curve, and each point is lit by the
angle of its surface to a light (Lambert shading plus, on glossy paper, a sheen).
Hands hold it by its edges (training/synth/hands.py) or it stands still.
"""

from __future__ import annotations

import dataclasses as dc
import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from training.synth.backdrop import Backdrop
from training.synth.hands import Grip, HandLook, sample_grip
from training.synth.held import HeldPose
from training.synth.paper import PrintLook, paper_texture, print_photo
from training.synth.print import choose_still
from training.synth.scene import HandMotion
from training.synth.still import SHAKE_SHARE, camera_shake

PRINT_SIZES_CM = ((10.0, 15.0), (13.0, 18.0), (15.0, 21.0), (20.0, 25.0), (21.0, 29.7))
FRAME_SHARE = (0.2, 1.4)  # sheet area / frame area before perspective (> 1: it fills it)
BORDER_SHARE = 0.35  # share of prints with a border
TEXTURE_MAX = 1400  # px, long side of the sheet texture
MAX_MAGNIFICATION = 1.15  # the printed frame's size in the camera frame, at most


@dataclass(frozen=True)
class Sheet:
    size_cm: tuple[float, float]
    border_cm: tuple[float, float, float, float]  # left, top, right, bottom; zeros: borderless
    paper_bgr: tuple[float, float, float]  # the border's paper colour
    zoom: float  # crop of the frame around the face, 1 = the whole frame
    gloss: float  # peak specular sheen, 0..255 (0: matte)
    gloss_width: float  # angular width of the sheen

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Sheet:
        w, h = PRINT_SIZES_CM[int(rng.integers(len(PRINT_SIZES_CM)))]
        if rng.random() < 0.4:
            w, h = h, w
        border = (
            rng.uniform(0.3, 1.3) * rng.uniform(0.7, 1.3, 4)
            if rng.random() < BORDER_SHARE
            else np.zeros(4)
        )
        paper = rng.uniform(205, 250) * np.array(
            [rng.uniform(0.85, 1.0), rng.uniform(0.93, 1.0), 1.0]
        )
        return cls(
            size_cm=(float(w), float(h)),
            border_cm=tuple(float(b) for b in border),
            paper_bgr=tuple(float(c) for c in paper),
            zoom=float(rng.uniform(1.0, 1.8)),
            gloss=float(rng.uniform(20, 90) if rng.random() < 0.5 else 0.0),
            gloss_width=float(rng.uniform(0.01, 0.05)),
        )


@dataclass(frozen=True)
class Bend:
    axis: str  # "vertical" or "horizontal": the line the sheet is bent around
    curvature: float  # half-arc angle across the sheet, radians; > 0: edges toward the camera
    swing: float  # change over time (hands flexing it), radians; 0 on a stand
    swing_hz: float
    swing_phase: float
    light: tuple[float, float, float]  # unit direction to the light, camera axes
    ambient: float  # share of light that does not depend on the surface's angle

    @classmethod
    def sample(cls, rng: np.random.Generator, held: bool) -> Bend:
        light = np.array([rng.normal(0, 0.6), rng.normal(-0.3, 0.5), -1.0])
        return cls(
            axis=str(rng.choice(["vertical", "horizontal"], p=[0.7, 0.3])),
            curvature=float(rng.choice([-1, 1]) * rng.uniform(0.0, 0.8)),
            swing=float(rng.uniform(0.05, 0.3)) if held else 0.0,
            swing_hz=float(rng.uniform(0.2, 0.8)),
            swing_phase=float(rng.uniform(0, 2 * math.pi)),
            light=tuple(float(c) for c in light / np.linalg.norm(light)),
            ambient=float(rng.uniform(0.3, 0.7)),
        )

    def at(self, t: float) -> float:
        k = self.curvature + self.swing * math.sin(
            2 * math.pi * self.swing_hz * t + self.swing_phase
        )
        return float(np.clip(k, -1.2, 1.2))


@dataclass(frozen=True)
class PhotoParams:
    still_index: int
    focus: tuple[float, float]  # the still's point the print is centred on (the face), px
    look: PrintLook
    sheet: Sheet
    bend: Bend
    pose: HeldPose
    grips: tuple[Grip, ...]  # empty on a stand
    hand: HandLook | None
    backdrop: dict | None  # the other person's room, or None: a drawn room
    room_seed: int

    def to_dict(self) -> dict:
        return asdict(self)


def sample_photo_params(
    frames: np.ndarray,
    rng: np.random.Generator,
    backdrop: Backdrop | None,
    *,
    support: str | None = None,
) -> PhotoParams:
    h, w = frames.shape[1:3]
    still_index, face = choose_still(frames, rng)
    # The print is cropped around the face (a centred head where none is found).
    focus = (w / 2, 0.45 * h) if face is None else (face[0] + face[2] / 2, face[1] + face[3] / 2)
    motion = HandMotion.sample(rng, support=support)
    held = motion.support == "hand"
    sheet = Sheet.sample(rng)
    share = float(rng.uniform(*FRAME_SHARE))
    hole = backdrop.hole_center if backdrop is not None and share < 0.8 else (w / 2, h / 2)
    jitter = rng.normal(0, 0.06, 2) * (w, h)
    sw, sh = sheet.size_cm
    px_per_cm = math.sqrt(share * w * h / (sw * sh))
    # The printed frame, as the camera sees it, at most MAX_MAGNIFICATION times the live
    # frame: a print may fill the view, but the face on it stays in view.
    left, top, right, bottom = sheet.border_cm
    fit = max((sw - left - right) / w, (sh - top - bottom) / h) * px_per_cm  # at zoom 1
    px_per_cm *= min(1.0, MAX_MAGNIFICATION / fit)
    sheet = dc.replace(
        sheet, zoom=float(np.clip(sheet.zoom, 1.0, max(1.0, MAX_MAGNIFICATION / fit)))
    )
    pose = HeldPose(
        size_cm=sheet.size_cm,
        px_per_cm=px_per_cm,
        center=(
            float(np.clip(hole[0] + jitter[0], 0.3 * w, 0.7 * w)),
            float(np.clip(hole[1] + jitter[1], 0.3 * h, 0.7 * h)),
        ),
        roll_deg=float(rng.normal(0, 5)),
        tilt_x_deg=float(rng.normal(0, 10)),
        tilt_y_deg=float(rng.normal(0, 10)),
        motion=motion,
        shake=camera_shake(rng) if rng.random() < SHAKE_SHARE else None,
    )
    grips: tuple[Grip, ...] = ()
    if held:
        side = str(rng.choice(["left", "right"]))
        style = str(rng.choice(["side", "bottom"], p=[0.75, 0.25]))
        grips = (sample_grip(rng, sheet.size_cm, style, side),)
        if style == "side" and rng.random() < 0.5:
            grips += (
                sample_grip(rng, sheet.size_cm, "side", "right" if side == "left" else "left"),
            )
    return PhotoParams(
        still_index=still_index,
        focus=(float(focus[0]), float(focus[1])),
        look=PrintLook.sample(rng),
        sheet=sheet,
        bend=Bend.sample(rng, held),
        pose=pose,
        grips=grips,
        hand=HandLook.sample(rng) if held else None,
        backdrop=None if backdrop is None else backdrop.to_dict(),
        room_seed=int(rng.integers(0, 2**31 - 1)),
    )


def sheet_texture(still: np.ndarray, p: PhotoParams, px_per_cm: float) -> np.ndarray:
    """The printed sheet, float32 [rows, cols, 3] 0..255, ``px_per_cm`` texture px per cm."""
    s = p.sheet
    cols, rows = (max(8, round(c * px_per_cm)) for c in s.size_cm)
    left, top, right, bottom = (round(b * px_per_cm) for b in s.border_cm)
    pw, ph = max(4, cols - left - right), max(4, rows - top - bottom)
    fh, fw = still.shape[:2]
    scale = max(pw / fw, ph / fh) * s.zoom  # cover the photo area, then crop to it
    # Centred on the face, as far as the frame allows (no reflected edge in the print).
    cx = float(np.clip(p.focus[0], pw / 2 / scale, fw - pw / 2 / scale))
    cy = float(np.clip(p.focus[1], ph / 2 / scale, fh - ph / 2 / scale))
    m = np.float32([[scale, 0, pw / 2 - cx * scale], [0, scale, ph / 2 - cy * scale]])
    photo = cv2.warpAffine(
        still,
        m,
        (pw, ph),
        flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT,
    )
    sheet = np.empty((rows, cols, 3), np.float32)
    sheet[:] = np.array(s.paper_bgr, np.float32)
    sheet[top : top + ph, left : left + pw] = print_photo(photo, p.look)[
        : rows - top, : cols - left
    ]
    return np.clip(sheet * paper_texture(rows, cols, p.look), 0, 255)
