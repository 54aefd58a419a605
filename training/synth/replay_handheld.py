"""The ``replay_handheld`` attack kind: renders training/synth/device.py's phone or
tablet, frame by frame, in front of another person's room.

Coordinates: the device lives in centimetres (training/synth/held.py); its display image
is drawn at a working resolution (at most the native one, 1.25 image pixels per
frame pixel of screen), and the sub-pixel pattern is evaluated at native display
pixels. ``content_homography(t)`` maps the live frame's pixels to the camera frame: on a
neutral panel (no UI, glare, reflection, grid, tone change) the screen shows exactly the
live frame under that homography.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from training.synth.backdrop import Backdrop
from training.synth.device import DeviceParams, sample_device_params
from training.synth.hands import composite_held, draw_hands
from training.synth.held import HeldTrack
from training.synth.replay import footprint, subpixel_weight
from training.synth.scene import inverse_points, project_layer, room_background

LAYER_OVERSAMPLE = 1.5  # body layer px per frame px
WORK_OVERSAMPLE = 1.25  # display image px per frame px of screen, at most native
CENTRE = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])  # pixel-centre -> continuous coords


def _rounded_rect(img: np.ndarray, x0, y0, x1, y1, r, colour) -> None:
    r = int(max(0, min(r, (x1 - x0) / 2, (y1 - y0) / 2)))
    x0, y0, x1, y1 = int(x0), int(y0), int(x1), int(y1)
    cv2.rectangle(img, (x0 + r, y0), (x1 - r, y1), colour, -1)
    cv2.rectangle(img, (x0, y0 + r), (x1, y1 - r), colour, -1)
    for cx, cy in ((x0 + r, y0 + r), (x1 - r, y0 + r), (x1 - r, y1 - r), (x0 + r, y1 - r)):
        cv2.circle(img, (cx, cy), r, colour, -1, cv2.LINE_AA)


class DeviceScene:
    """What the camera sees at time t: ``render(t, live)`` -> BGR uint8 frame."""

    def __init__(
        self,
        frame_hw: tuple[int, int],
        params: DeviceParams,
        duration_s: float,
        room: np.ndarray | None,
    ) -> None:
        h, w = frame_hw
        self.params, self.frame_wh = params, (w, h)
        self.track = HeldTrack(params.pose, (w, h), duration_s)
        self.room = room if room is not None else room_background(params.room_seed, h, w)
        body = params.body
        self.layer_px = LAYER_OVERSAMPLE * params.pose.px_per_cm  # layer px per cm
        self._build_body()
        sw, sh = body.screen_cm
        cols = int(min(body.native[0], math.ceil(WORK_OVERSAMPLE * sw * params.pose.px_per_cm)))
        self.work = (max(cols, 8), max(8, round(cols * body.native[1] / body.native[0])))
        self.ui = params.ui.overlay(*self.work)
        if body.feature == "punch_hole":  # the front camera, in the screen's top
            cv2.circle(
                self.ui[1],
                (self.work[0] // 2, max(2, self.work[1] // 40)),
                max(1, self.work[0] // 40),
                1.0,
                -1,
            )
        rng = np.random.default_rng(params.room_seed)
        tex = cv2.resize(self.room[:, ::-1], (32, 32), interpolation=cv2.INTER_AREA) / 255.0
        for _ in range(int(rng.integers(0, 3))):  # windows and lamps behind the camera
            x, y = rng.integers(0, 28, 2)
            tex[y : y + rng.integers(3, 10), x : x + rng.integers(3, 10)] += rng.uniform(0.5, 1.5)
        self.reflection = cv2.GaussianBlur(tex.astype(np.float32), (0, 0), 2.0)

    def _build_body(self) -> None:
        b, k = self.params.body, self.layer_px
        dw, dh = b.size_cm
        lw, lh = int(math.ceil(dw * k)) + 2, int(math.ceil(dh * k)) + 2
        colour = np.zeros((lh, lw, 3), np.float32)
        alpha = np.zeros((lh, lw), np.float32)
        r = b.corner_cm * k
        if b.case_cm > 0:
            _rounded_rect(colour, 1, 1, dw * k, dh * k, r + b.case_cm * k, b.case_bgr)
        c = b.case_cm * k
        _rounded_rect(colour, 1 + c, 1 + c, dw * k - c, dh * k - c, r, b.body_bgr)
        _rounded_rect(alpha, 1, 1, dw * k, dh * k, r + c, 1.0)
        rim = np.zeros_like(alpha)
        _rounded_rect(rim, 1 + c, 1 + c, dw * k - c, dh * k - c, r, 1.0)
        inner = cv2.erode(rim, np.ones((3, 3), np.uint8), iterations=max(1, int(0.06 * k)))
        colour *= (1 + b.rim * (rim - inner))[..., None]  # the edge catches or loses light
        sheen = np.linspace(0.93, 1.07, lw, dtype=np.float32)[None, :, None]
        colour *= sheen
        x0, y0 = b.screen_origin_cm
        sx, sy = (x0 + dw / 2) * k, (y0 + dh / 2) * k
        cv2.rectangle(
            colour,
            (int(sx), int(sy)),
            (int(sx + b.screen_cm[0] * k), int(sy + b.screen_cm[1] * k)),
            (6.0, 6.0, 6.0),
            -1,
        )
        if b.feature == "home_button":
            centre = (int(lw / 2), int((dh - b.case_cm - b.bezel_cm[2] / 2) * k))
            cv2.circle(
                colour,
                centre,
                max(1, int(b.bezel_cm[2] * 0.3 * k)),
                [v * 0.8 for v in b.body_bgr],
                -1,
                cv2.LINE_AA,
            )
        alpha = cv2.GaussianBlur(alpha, (0, 0), 0.5)
        self.body = (colour * alpha[..., None], alpha)
        self.to_cm = np.array([[1 / k, 0, -dw / 2 - 1 / k], [0, 1 / k, -dh / 2 - 1 / k], [0, 0, 1]])

    def display_homography(self, t: float) -> np.ndarray:
        """Display image continuous coords (0..cols, 0..rows) -> frame px."""
        b = self.params.body
        x0, y0 = b.screen_origin_cm
        cols, rows = self.work
        to_cm = np.array(
            [[b.screen_cm[0] / cols, 0, x0], [0, b.screen_cm[1] / rows, y0], [0, 0, 1]]
        )
        return self.track.homography(t) @ to_cm

    def content_affine(self, live_wh: tuple[int, int]) -> np.ndarray:
        """Live frame pixel centres -> display image pixel centres (3x3)."""
        lw, lh = live_wh
        cols, rows = self.work
        top, bottom = self.params.ui.content_box(rows)
        fit = (max if self.params.panel.fill else min)(cols / lw, (bottom - top) / lh)
        ox, oy = (cols - fit * lw) / 2, top + (bottom - top - fit * lh) / 2
        return np.array([[fit, 0, ox + 0.5 * fit - 0.5], [0, fit, oy + 0.5 * fit - 0.5], [0, 0, 1]])

    def content_homography(self, t: float, live_wh: tuple[int, int]) -> np.ndarray:
        """Live frame px -> camera frame px at time t: where the screen shows the clip."""
        return self.display_homography(t) @ CENTRE @ self.content_affine(live_wh)

    def display_image(self, live: np.ndarray, t: float) -> np.ndarray:
        """What the panel emits: float32 [rows, cols, 3], 0..1 of its peak white."""
        p, (cols, rows) = self.params.panel, self.work
        m = self.content_affine(live.shape[1::-1])[:2].astype(np.float32)
        img = cv2.warpAffine(
            live.astype(np.float32) / 255, m, (cols, rows), flags=cv2.INTER_LINEAR, borderValue=0
        )
        img[: self.params.ui.content_box(rows)[0]] = 0
        self.params.ui.draw_player(img, t)
        colour, alpha = self.ui
        img = img * (1 - alpha[..., None]) + colour * alpha[..., None]
        grey = img.mean(axis=2, keepdims=True)
        img = np.clip(grey + p.saturation * (img - grey), 0, 1) ** (p.gamma / 2.2)
        return (p.black + (1 - p.black) * img * p.brightness) * np.array(p.tint, np.float32)

    def render(self, t: float, live: np.ndarray) -> np.ndarray:
        w, h = self.frame_wh
        hom = self.track.homography(t)
        fg, a = project_layer(*self.body, hom @ self.to_cm, self.frame_wh)
        disp = self.display_homography(t)
        cols, rows = self.work
        quad = cv2.perspectiveTransform(
            np.array([[[0, 0]], [[cols, 0]], [[cols, rows]], [[0, rows]]], np.float64), disp
        )[:, 0]
        x0, y0 = np.maximum(np.floor(quad.min(axis=0)).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(quad.max(axis=0)).astype(int) + 1, (w, h))
        if x1 > x0 and y1 > y0:
            self._draw_screen(fg, (x0, y0, x1, y1), disp, self.display_image(live, t), t)
        room = self.room
        if self.track.shake is not None:
            room = cv2.warpPerspective(
                room, self.track.shake_homography(t), (w, h), borderMode=cv2.BORDER_REFLECT
            )
        hands = draw_hands(
            self.frame_wh,
            self.params.grips,
            self.params.hand,
            lambda p: self.track.project(np.c_[p, np.zeros(len(p))], t),
        )
        return np.clip(composite_held(room, hands, fg, a) + 0.5, 0, 255).astype(np.uint8)

    def _draw_screen(self, fg, box, disp, shown, t) -> None:
        p, g, (cols, rows) = self.params.panel, self.params.glare, self.work
        x0, y0, x1, y1 = box
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64)
        u, v = inverse_points(disp, xs, ys)  # display image continuous coords
        scale = self.params.body.native[0] / cols  # native px per work px
        du, dv = footprint(u * scale), footprint(v * scale)
        edge = np.minimum.reduce([u, cols - u, v, rows - v]) / np.maximum(du, dv) * scale
        cover = np.clip(edge + 0.5, 0, 1).astype(np.float32)
        content = cv2.remap(
            shown,
            (u - 0.5).astype(np.float32),
            (v - 0.5).astype(np.float32),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        order = [2, 1, 0] if p.subpixel_order == "rgb" else [0, 1, 2]
        weight = subpixel_weight(
            u * scale,
            v * scale,
            du,
            dv,
            p.grid_contrast,
            p.focus_blur,
            p.matrix_gap,
            np.array(order),
        )
        pose = self.track.track.at(t)
        cu = g.start[0] + g.drift[0] * t + g.tilt_gain * pose[4]
        cv = g.start[1] + g.drift[1] * t + g.tilt_gain * pose[3]
        r2 = (u / cols - cu) ** 2 + ((v - rows * cv) / cols) ** 2
        spot = g.strength * np.exp(-r2 / (2 * g.sigma**2)) + g.veil
        shift = 0.02 * pose[3:5]  # the reflection slides as the glass tilts
        tex = self.reflection
        mx = ((u / cols + shift[1]) * tex.shape[1]).astype(np.float32)
        my = ((v / rows + shift[0]) * tex.shape[0]).astype(np.float32)
        mirror = cv2.remap(tex, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        lit = 255.0 * (content * weight + p.reflection * mirror) + spot[..., None]
        region = fg[y0:y1, x0:x1]
        region[:] = region * (1 - cover[..., None]) + lit.astype(np.float32) * cover[..., None]


def render_replay_handheld(
    frames: np.ndarray, fps: float, rng: np.random.Generator, *, backdrop: Backdrop | None = None
) -> tuple[np.ndarray, DeviceParams]:
    """Render a device replay of live frames [T, H, W, 3] BGR at ``fps`` (same shape and
    timing) in front of ``backdrop`` (another person's room; a drawn room if None)."""
    hw = frames.shape[1:3]
    params = sample_device_params(hw, len(frames), fps, rng, backdrop)
    scene = DeviceScene(hw, params, len(frames) / fps, None if backdrop is None else backdrop.image)
    return np.stack([scene.render(i / fps, frames[i]) for i in range(len(frames))]), params
