"""Replay attacks: the live clip played on a screen that is shown to the camera.

The screen is a grid of display pixels, each three coloured sub-pixel stripes with a dark
matrix between rows. The camera's lens and pixels low-pass that grid, but not completely:
what is left above the camera's sampling rate folds down into moiré, as it does when a
real phone or monitor is filmed. The display has its own gamma, black level
and tint; its glass reflects a soft highlight that drifts; a bezel frames it; a hand
holds it (drift + tremor) or a stand keeps it still.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from training.synth.scene import (
    Hand,
    HandMotion,
    Placement,
    PoseTrack,
    composite,
    draw_hand,
    hand_margin,
    inverse_points,
    plane_homography,
    project_layer,
    room_background,
)

SCREEN_SHAPES = ("content", "16:9", "4:3")  # screen aspect; other shapes letterbox the clip
HARMONICS = (1, 2)  # Fourier terms of the sub-pixel pattern kept (the 3rd of a 1/3 stripe is 0)
MATRIX_DARKNESS = 0.85  # how much light the black matrix between pixel rows blocks


@dataclass(frozen=True)
class Display:
    """The screen's optics and electronics."""

    shape: str  # one of SCREEN_SHAPES, oriented like the clip (portrait or landscape)
    pixel_pitch: float  # display pixel period as seen by the camera, frame px (mostly < 1)
    subpixel_order: str  # "rgb" or "bgr" stripes, left to right
    grid_contrast: float  # 0 = no sub-pixel structure, 1 = pure single-colour stripes
    focus_blur: float  # lens blur on the screen plane, frame px (Gaussian sigma)
    matrix_gap: float  # fraction of each pixel row that is black matrix
    gamma: float  # display gamma (the clip was encoded for 2.2)
    black: float  # backlight leak: black level as a fraction of white
    brightness: float  # peak white relative to the room's paper-white
    tint: tuple[float, float, float]  # white point cast, BGR gains
    bezel: float  # bezel width as a fraction of the screen's short side
    bezel_bgr: tuple[float, float, float]
    flicker: float  # depth of the rolling brightness band (PWM backlight vs. rolling shutter)
    flicker_rows: float  # band period, as a fraction of screen height
    flicker_hz: float  # how fast the band rolls

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Display:
        grey = float(rng.choice([15.0, 40.0, 200.0], p=[0.6, 0.3, 0.1]))  # black, grey, white
        return cls(
            shape=str(rng.choice(SCREEN_SHAPES)),
            # A phone held at 20-40 cm or a monitor filling the view: 0.3-1.3 camera px.
            pixel_pitch=float(rng.uniform(0.3, 1.3)),
            subpixel_order=str(rng.choice(["rgb", "bgr"])),
            grid_contrast=float(rng.uniform(0.4, 0.9)),
            focus_blur=float(rng.uniform(0.1, 0.4)),
            matrix_gap=float(rng.uniform(0.1, 0.3)),
            gamma=float(rng.uniform(1.8, 2.6)),
            black=float(rng.uniform(0.02, 0.10)),
            brightness=float(rng.uniform(0.8, 1.15)),
            tint=tuple(float(g) for g in rng.uniform(0.9, 1.1, 3)),
            bezel=float(rng.uniform(0.03, 0.10)),
            bezel_bgr=tuple(float(c) for c in grey * rng.uniform(0.9, 1.1, 3)),
            flicker=float(rng.uniform(0.0, 0.03) if rng.random() < 0.5 else 0.0),
            flicker_rows=float(rng.uniform(0.2, 0.6)),
            flicker_hz=float(rng.uniform(0.5, 3.0)),
        )


@dataclass(frozen=True)
class Glare:
    """A soft specular reflection of a lamp or window on the screen's glass."""

    strength: float  # peak added brightness, 0..255
    sigma: float  # spot size, fraction of the screen's width
    start: tuple[float, float]  # centre at t = 0, fraction of screen width/height
    drift: tuple[float, float]  # drift per second, same units
    tilt_gain: float  # how far the spot moves per degree of screen tilt
    veil: float  # uniform reflection over the whole glass, 0..255

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Glare:
        return cls(
            strength=float(rng.uniform(10, 110)),
            sigma=float(rng.uniform(0.12, 0.35)),
            start=tuple(float(c) for c in rng.uniform(0.0, 1.0, 2)),
            drift=tuple(float(d) for d in rng.normal(0.0, 0.04, 2)),
            tilt_gain=float(rng.uniform(0.01, 0.04)),
            veil=float(rng.uniform(0, 15)),
        )


@dataclass(frozen=True)
class ReplayParams:
    display: Display
    glare: Glare
    placement: Placement
    motion: HandMotion
    hand: Hand | None  # drawn when the device is hand-held
    background_seed: int

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def sample(cls, rng: np.random.Generator, *, support: str | None = None) -> ReplayParams:
        motion = HandMotion.sample(rng, support=support)
        return cls(
            display=Display.sample(rng),
            glare=Glare.sample(rng),
            placement=Placement.sample(rng),
            motion=motion,
            hand=Hand.sample(rng) if motion.support == "hand" else None,
            background_seed=int(rng.integers(0, 2**31 - 1)),
        )


def screen_size(
    content_wh: tuple[int, int], frame_wh: tuple[int, int], p: ReplayParams
) -> tuple[int, int]:
    """Display resolution (columns, rows) that gives the sampled pixel pitch in the frame."""
    cw, ch = content_wh
    aspect = cw / ch
    if p.display.shape != "content":
        a, b = (int(x) for x in p.display.shape.split(":"))
        aspect = a / b if cw >= ch else b / a  # held like the clip: portrait or landscape
    rel_h = 1.0 / aspect  # screen height per unit width
    bezel = p.display.bezel * min(1.0, rel_h)
    dev_w, dev_h = 1.0 + 2 * bezel, rel_h + 2 * bezel
    fw, fh = frame_wh
    fit = (min if p.placement.edges_visible else max)(fw / dev_w, fh / dev_h)
    width_px = p.placement.cover * fit  # screen width in frame px (unit width * scale)
    cols = max(16, int(round(width_px / p.display.pixel_pitch)))
    return cols, max(16, int(round(cols * rel_h)))


class ReplayScene:
    """Renders a replay attack frame by frame: ``render(t, live)`` -> BGR uint8 frame."""

    def __init__(self, frame_hw: tuple[int, int], params: ReplayParams, duration_s: float) -> None:
        h, w = frame_hw
        self.params = params
        self.frame_wh = (w, h)
        self.cols, self.rows = screen_size((w, h), (w, h), params)
        d = params.display
        bezel = int(round(d.bezel * min(self.cols, self.rows)))
        dev_w, dev_h = self.cols + 2 * bezel, self.rows + 2 * bezel
        pad = hand_margin((dev_w, dev_h))
        colour = np.zeros((dev_h + 2 * pad, dev_w + 2 * pad, 3), np.float32)
        alpha = np.zeros(colour.shape[:2], np.float32)
        colour[pad : pad + dev_h, pad : pad + dev_w] = d.bezel_bgr
        alpha[pad : pad + dev_h, pad : pad + dev_w] = 1.0
        s0 = pad + bezel
        colour[s0 : s0 + self.rows, s0 : s0 + self.cols] = 255.0 * d.black * np.array(d.tint)
        if params.hand is not None:
            draw_hand(colour, alpha, (pad, pad, dev_w, dev_h), params.hand)
        self.colour, self.alpha = colour * alpha[..., None], alpha
        self.object_wh, self.origin, self.screen_origin = (dev_w, dev_h), (pad, pad), s0
        self.track = PoseTrack(params.motion, duration_s, min(h, w))
        self.background = room_background(params.background_seed, h, w)
        order = [2, 1, 0] if d.subpixel_order == "rgb" else [0, 1, 2]  # BGR channel per stripe
        self.stripe_channel = np.array(order)

    def display_image(self, live: np.ndarray) -> np.ndarray:
        """The clip as the screen shows it: float32 [rows, cols, 3], 0..1, letterboxed."""
        d = self.params.display
        h, w = live.shape[:2]
        s = min(self.cols / w, self.rows / h)
        cw, ch = max(1, round(w * s)), max(1, round(h * s))
        img = np.zeros((self.rows, self.cols, 3), np.float32)
        x0, y0 = (self.cols - cw) // 2, (self.rows - ch) // 2
        small = cv2.resize(live, (cw, ch), interpolation=cv2.INTER_AREA)
        img[y0 : y0 + ch, x0 : x0 + cw] = (small.astype(np.float32) / 255.0) ** (d.gamma / 2.2)
        img = d.black + (1.0 - d.black) * img * d.brightness
        return img * np.array(d.tint, np.float32)

    def render(self, t: float, live: np.ndarray) -> np.ndarray:
        pose = self.track.at(t)
        hom = plane_homography(
            self.object_wh, self.origin, self.frame_wh, self.params.placement, pose
        )
        fg, a = project_layer(self.colour, self.alpha, hom, self.frame_wh)
        out = composite(self.background, fg, a)
        box = self._screen_box(hom)
        if box is not None:
            self._draw_screen(out, box, hom, self.display_image(live), t, pose)
        return np.clip(out, 0, 255).astype(np.uint8)

    def _screen_box(self, hom: np.ndarray) -> tuple[int, int, int, int] | None:
        """Frame-pixel bounding box (x0, y0, x1, y1) of the screen, or None if off-frame."""
        s0 = self.screen_origin
        corners = np.array(
            [
                [[s0, s0]],
                [[s0 + self.cols, s0]],
                [[s0 + self.cols, s0 + self.rows]],
                [[s0, s0 + self.rows]],
            ],
            np.float64,
        )
        quad = cv2.perspectiveTransform(corners, hom)[:, 0]
        w, h = self.frame_wh
        x0, y0 = np.floor(quad.min(axis=0)).astype(int)
        x1, y1 = np.ceil(quad.max(axis=0)).astype(int) + 1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None

    def _draw_screen(self, out, box, hom, shown, t, pose) -> None:
        """Blend the lit screen into ``out`` [H, W, 3] float32 inside ``box``, in place."""
        d, g = self.params.display, self.params.glare
        x0, y0, x1, y1 = box
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        u, v = inverse_points(hom, xs, ys)
        u, v = u - self.screen_origin, v - self.screen_origin  # display px from the screen edge
        # Footprint of one camera pixel on the screen, in display px (box-filter widths).
        du = footprint(u)
        dv = footprint(v)
        cover = np.clip(
            np.minimum.reduce([u, self.cols - u, v, self.rows - v]) / np.maximum(du, dv) + 0.5, 0, 1
        )
        weight = self._subpixel_weight(u, v, du, dv)
        content = cv2.remap(
            shown,
            (u - 0.5).astype(np.float32),
            (v - 0.5).astype(np.float32),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        if d.flicker > 0:
            phase = v / (self.rows * d.flicker_rows) - d.flicker_hz * t
            content = content * (1 + d.flicker * np.sin(2 * np.pi * phase))[..., None]
        cu = g.start[0] + g.drift[0] * t + g.tilt_gain * pose[4]
        cv = g.start[1] + g.drift[1] * t + g.tilt_gain * pose[3]
        r2 = (u / self.cols - cu) ** 2 + ((v - self.rows * cv) / self.cols) ** 2
        spot = (g.strength * np.exp(-r2 / (2 * g.sigma**2)) + g.veil).astype(np.float32)
        lit = 255.0 * content * weight + spot[..., None]
        region = out[y0:y1, x0:x1]
        region[:] = region * (1 - cover[..., None]) + lit * cover[..., None]

    def _subpixel_weight(self, u, v, du, dv) -> np.ndarray:
        d = self.params.display
        return subpixel_weight(
            u, v, du, dv, d.grid_contrast, d.focus_blur, d.matrix_gap, self.stripe_channel
        )


def subpixel_weight(
    u: np.ndarray,
    v: np.ndarray,
    du: np.ndarray,
    dv: np.ndarray,
    grid_contrast: float,
    focus_blur: float,
    matrix_gap: float,
    stripe_channel: np.ndarray,
) -> np.ndarray:
    """Per-channel gain [h, w, 3] of a display's sub-pixel stripes and black matrix as the
    camera sees them, at display coordinates (u, v) (display px) whose camera pixel spans
    (du, dv) display px: each harmonic of the (mean 1) pattern is attenuated by the camera
    pixel's box filter (sinc of the footprint) and the lens (Gaussian MTF, ``focus_blur``
    camera px); what survives above the camera's Nyquist rate folds down as moiré when
    sampled at the pixel centre. ``stripe_channel``: the BGR channel of each stripe."""
    lens_u = 2 * (np.pi * focus_blur * du) ** 2  # Gaussian MTF exponent per k^2
    lens_v = 2 * (np.pi * focus_blur * dv) ** 2
    weight = np.ones((*u.shape, 3), np.float32)
    rows = np.full(u.shape, 1.0 - MATRIX_DARKNESS * matrix_gap, np.float32)  # mean left
    for k in HARMONICS:
        # Stripes: 3 x rect of width 1/3 centred on (i + 0.5) / 3 for stripe i, so the
        # k-th term is amp * cos(2 pi k (u - c_i)) = amp * (cos a cos b_i + sin a sin b_i).
        amp = grid_contrast * 6 * np.sin(np.pi * k / 3) / (np.pi * k)
        amp = amp * np.sinc(k * du) * np.exp(-lens_u * k * k)
        a = 2 * np.pi * k * u
        ca, sa = amp * np.cos(a), amp * np.sin(a)
        for stripe, channel in enumerate(stripe_channel):
            b = 2 * np.pi * k * (stripe + 0.5) / 3
            weight[..., channel] += ca * np.cos(b) + sa * np.sin(b)
        # Black matrix: a dark band of width gap at the bottom of each pixel row.
        amp = -MATRIX_DARKNESS * 2 * np.sin(np.pi * k * matrix_gap) / (np.pi * k)
        amp = amp * np.sinc(k * dv) * np.exp(-lens_v * k * k)
        rows += amp * np.cos(2 * np.pi * k * (v - (1 - matrix_gap / 2)))
    return np.clip(weight, 0, None) * rows[..., None]


def footprint(coord: np.ndarray) -> np.ndarray:
    """|d coord/dx| + |d coord/dy|: the span of one camera pixel along that screen axis."""
    gx = np.abs(np.gradient(coord, axis=1)) if coord.shape[1] > 1 else 0.0
    gy = np.abs(np.gradient(coord, axis=0)) if coord.shape[0] > 1 else 0.0
    return np.maximum(gx + gy, 1e-3)


def render_replay_attack(
    frames: np.ndarray, fps: float, rng: np.random.Generator, *, support: str | None = None
) -> tuple[np.ndarray, ReplayParams]:
    """Render a replay attack of frames [T, H, W, 3] BGR at ``fps``: same shape and timing."""
    params = ReplayParams.sample(rng, support=support)
    scene = ReplayScene(frames.shape[1:3], params, len(frames) / fps)
    return np.stack([scene.render(i / fps, frames[i]) for i in range(len(frames))]), params
