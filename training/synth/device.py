"""Device replays (kind ``replay_handheld``): the clip played on a phone or tablet held
up in a hand in front of the camera, in a real room.

The device is a rigid plane (training/synth/held.py): a body with a bezel, rounded
corners, sometimes a case, a punch-hole camera or a home button, held by a hand whose
thumb and fingertips lie over its edges (training/synth/hands.py), moved by the hand's
walk and tremor. Behind it is another person's room (training/synth/backdrop.py). The
screen covers 15-60 % of the frame (``SCREEN_SHARE``), so the face on it is small. The
screen shows the live clip through the panel's own gamma, black level, gamut, white
point and brightness (different from the room's light), fitted or filling, under an
optional status bar, browser bar and player controls (training/synth/screen_ui.py);
its sub-pixel stripes and black matrix are rendered at the display's native resolution
and leave what moiré the camera's sampling lets through (training/synth/replay.py's
``subpixel_weight``); its glass reflects a drifting glare spot and a dim, blurred room.
"""

from __future__ import annotations

import dataclasses as dc
import math
from dataclasses import asdict, dataclass

import numpy as np

from training.synth.backdrop import Backdrop
from training.synth.hands import Grip, HandLook, sample_grip
from training.synth.held import HeldPose, HeldTrack, visible_share
from training.synth.replay import Glare
from training.synth.scene import HandMotion
from training.synth.screen_ui import ScreenUI
from training.synth.still import SHAKE_SHARE, camera_shake

SCREEN_SHARE = (0.15, 0.60)  # share of the frame the screen covers, every frame
DEVICES = {  # screen diagonal (cm), long/short aspect, native short side (px)
    "phone": ((12.5, 17.5), (16 / 9, 20 / 9), (720, 1440)),
    "tablet": ((20.0, 33.0), (4 / 3, 16 / 10), (768, 2048)),
}


@dataclass(frozen=True)
class DeviceBody:
    kind: str  # "phone" or "tablet"
    screen_cm: tuple[float, float]  # width, height as held
    native: tuple[int, int]  # display columns, rows as held
    bezel_cm: tuple[float, float, float]  # sides, top, bottom
    corner_cm: float
    body_bgr: tuple[float, float, float]
    rim: float  # brightness of the edge highlight, -1..1
    case_cm: float  # case thickness around the body, 0 = none
    case_bgr: tuple[float, float, float]
    feature: str  # "none", "punch_hole" or "home_button"

    @classmethod
    def sample(cls, rng: np.random.Generator, landscape: bool) -> DeviceBody:
        kind = "tablet" if rng.random() < 0.3 else "phone"
        diag, aspect, native = DEVICES[kind]
        d, a = rng.uniform(*diag), rng.uniform(*aspect)
        short = d / math.hypot(1, a)
        short_px = int(rng.uniform(*native))
        size, px = (short * a, short), (int(short_px * a), short_px)
        if not landscape:
            size, px = size[::-1], px[::-1]
        side = rng.uniform(0.15, 0.5) if kind == "phone" else rng.uniform(0.5, 2.0)
        ends = side * rng.uniform(1.0, 2.5, 2)
        colour = rng.choice(["black", "white", "grey", "colour"], p=[0.55, 0.15, 0.15, 0.15])
        base = {
            "black": rng.uniform(8, 40),
            "white": rng.uniform(190, 245),
            "grey": rng.uniform(80, 170),
        }
        body = np.full(3, base.get(colour, 0.0)) if colour != "colour" else rng.uniform(30, 200, 3)
        body = body * rng.uniform(0.9, 1.1, 3)
        return cls(
            kind=kind,
            screen_cm=(float(size[0]), float(size[1])),
            native=(int(px[0]), int(px[1])),
            bezel_cm=(float(side), float(ends[0]), float(ends[1])),
            corner_cm=float(rng.uniform(0.3, 1.2)),
            body_bgr=tuple(float(c) for c in np.clip(body, 0, 255)),
            rim=float(rng.uniform(-0.3, 0.5)),
            case_cm=float(rng.uniform(0.15, 0.5) if rng.random() < 0.4 else 0.0),
            case_bgr=tuple(float(c) for c in rng.uniform(10, 220) * rng.uniform(0.5, 1.0, 3)),
            feature=str(rng.choice(["none", "punch_hole", "home_button"], p=[0.5, 0.35, 0.15])),
        )

    @property
    def size_cm(self) -> tuple[float, float]:
        (w, h), (s, top, bottom), c = self.screen_cm, self.bezel_cm, self.case_cm
        return w + 2 * s + 2 * c, h + top + bottom + 2 * c

    @property
    def screen_origin_cm(self) -> tuple[float, float]:
        """Top-left corner of the screen in device cm (centre at 0)."""
        w, h = self.size_cm
        return -w / 2 + self.case_cm + self.bezel_cm[0], -h / 2 + self.case_cm + self.bezel_cm[1]


@dataclass(frozen=True)
class Panel:
    """The display's electronics and optics, apart from the room's light."""

    gamma: float  # the clip was encoded for 2.2
    black: float  # black level, share of white
    brightness: float  # peak white relative to the room's white
    saturation: float  # gamut: < 1 washed out, > 1 vivid (OLED)
    tint: tuple[float, float, float]  # white point, BGR gains
    fill: bool  # video cropped to fill the screen, else fitted with black bars
    subpixel_order: str
    grid_contrast: float
    focus_blur: float  # camera px
    matrix_gap: float
    reflection: float  # strength of the room reflected in the glass, 0..1

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Panel:
        cool = rng.uniform(0.0, 0.12)
        return cls(
            gamma=float(rng.uniform(1.8, 2.6)),
            black=float(rng.uniform(0.0, 0.08)),
            brightness=float(rng.uniform(0.55, 1.5)),
            saturation=float(rng.uniform(0.75, 1.35)),
            tint=tuple(
                float(g) for g in np.array([1 + cool, 1.0, 1 - cool]) * rng.uniform(0.94, 1.06, 3)
            ),
            fill=bool(rng.random() < 0.5),
            subpixel_order=str(rng.choice(["rgb", "bgr"])),
            grid_contrast=float(rng.uniform(0.3, 0.9)),
            focus_blur=float(rng.uniform(0.1, 0.6)),
            matrix_gap=float(rng.uniform(0.05, 0.3)),
            reflection=float(rng.uniform(0.02, 0.18)),
        )


@dataclass(frozen=True)
class DeviceParams:
    body: DeviceBody
    panel: Panel
    ui: ScreenUI
    glare: Glare
    pose: HeldPose
    grips: tuple[Grip, ...]
    hand: HandLook
    screen_share: float  # target share of the frame the screen covers
    backdrop: dict | None  # the other person's room, or None: a drawn room
    room_seed: int  # the drawn room (no other source) and the reflection's texture

    def to_dict(self) -> dict:
        return {**asdict(self), "backdrop": self.backdrop}


def _fit_scale(pose: HeldPose, body: DeviceBody, frame_wh, times, target: float) -> HeldPose:
    """Scale the device so its screen covers ``target`` of the frame on average and
    SCREEN_SHARE's range at every instant of the clip."""
    lo, hi = SCREEN_SHARE[0] * 1.02, SCREEN_SHARE[1] * 0.98
    for _ in range(12):
        track = HeldTrack(pose, frame_wh, times[-1] + 1e-3)
        shares = [visible_share(screen_quad(track, body, t), frame_wh) for t in times]
        low, high, mean = min(shares), max(shares), float(np.mean(shares))
        if lo <= low and high <= hi and abs(mean / target - 1) < 0.05:
            break
        gain = hi / high if high > hi else lo / low if low < lo else target / mean
        pose = dc.replace(pose, px_per_cm=pose.px_per_cm * math.sqrt(gain))
    return pose


def screen_quad(track: HeldTrack, body: DeviceBody, t: float) -> np.ndarray:
    x0, y0 = body.screen_origin_cm
    w, h = body.screen_cm
    pts = np.array([[x0, y0, 0], [x0 + w, y0, 0], [x0 + w, y0 + h, 0], [x0, y0 + h, 0]])
    return track.project(pts, t)


def sample_device_params(
    frame_hw: tuple[int, int],
    n_frames: int,
    fps: float,
    rng: np.random.Generator,
    backdrop: Backdrop | None,
) -> DeviceParams:
    h, w = frame_hw
    body = DeviceBody.sample(rng, landscape=bool(rng.random() < 0.35))
    share = float(rng.uniform(SCREEN_SHARE[0] + 0.01, SCREEN_SHARE[1] - 0.03))
    hole = backdrop.hole_center if backdrop is not None else (w / 2, h * 0.45)
    jitter = rng.normal(0, 0.08, 2) * (w, h)
    center = (
        float(np.clip(hole[0] + jitter[0], 0.3 * w, 0.7 * w)),
        float(np.clip(hole[1] + jitter[1], 0.3 * h, 0.7 * h)),
    )
    sw, sh = body.screen_cm
    pose = HeldPose(
        size_cm=body.size_cm,
        px_per_cm=math.sqrt(share * w * h / (sw * sh)),
        center=center,
        roll_deg=float(rng.normal(0, 6)),
        tilt_x_deg=float(rng.normal(0, 12)),
        tilt_y_deg=float(rng.normal(0, 12)),
        motion=HandMotion.sample(rng, support="hand"),
        shake=camera_shake(rng) if rng.random() < SHAKE_SHARE else None,
    )
    times = [i / fps for i in range(n_frames)]
    pose = _fit_scale(pose, body, (w, h), times, share)
    side = str(rng.choice(["left", "right"]))
    style = str(rng.choice(["wrap", "side", "bottom"], p=[0.5, 0.25, 0.25]))
    grips = [sample_grip(rng, body.size_cm, style, side)]
    if body.kind == "tablet" and style == "side" and rng.random() < 0.6:  # two hands
        grips.append(sample_grip(rng, body.size_cm, "side", "right" if side == "left" else "left"))
    return DeviceParams(
        body=body,
        panel=Panel.sample(rng),
        ui=ScreenUI.sample(rng),
        glare=Glare.sample(rng),
        pose=pose,
        grips=tuple(grips),
        hand=HandLook.sample(rng),
        screen_share=share,
        backdrop=None if backdrop is None else backdrop.to_dict(),
        room_seed=int(rng.integers(0, 2**31 - 1)),
    )
