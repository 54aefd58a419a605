"""Scene geometry shared by the attack renderers.

An attack is a planar object (a printed sheet, a phone or monitor) in front of a fixed
camera, in a room. This module holds what every kind needs: where the object sits in the
frame, how a hand moves it over time (slow random walk + physiological tremor) or a stand
keeps it still, the homography that maps the object's own pixels into the frame, the room
behind it and the hand that holds it.

Conventions: frames are BGR ``uint8`` ``[H, W, 3]``; float images are ``float32`` in
0..255; a *layer* is the object drawn in its own pixel grid as premultiplied colour
``[h, w, 3]`` plus alpha ``[h, w]`` in 0..1.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from model.detectors import HaarDetector

SUPPORTS = ("hand", "fixed")  # held in a hand, or standing on a desk / stand
POSE_DIMS = 6  # dx, dy (px), roll, tilt_x, tilt_y (deg), log-scale
POSE_RATE_HZ = 100.0  # time grid of the random walk; poses between grid points are interpolated


@dataclass(frozen=True)
class Placement:
    """Where the object rests in the frame before any hand motion."""

    edges_visible: bool  # True: the object fits inside the frame and its border shows
    cover: float  # scale relative to fitting inside (edges visible) or filling the frame
    center_x: float  # object centre, as a fraction of frame width
    center_y: float  # ... of frame height
    roll_deg: float  # in-plane rotation
    tilt_x_deg: float  # rotation about the horizontal axis (top leaning away if > 0)
    tilt_y_deg: float  # rotation about the vertical axis

    @classmethod
    def sample(cls, rng: np.random.Generator, *, p_edges: float = 0.65) -> Placement:
        edges = bool(rng.random() < p_edges)
        # Inside: 62-92 % of the frame, so desk/wall shows around it. Filling: 8-25 % larger
        # than the frame so no border is seen even while it trembles.
        cover = float(rng.uniform(0.62, 0.92) if edges else rng.uniform(1.08, 1.25))
        slack = (1.0 - cover) / 2 if edges else (cover - 1.0) / 4
        return cls(
            edges_visible=edges,
            cover=cover,
            center_x=float(0.5 + rng.uniform(-0.8, 0.8) * slack),
            center_y=float(0.5 + rng.uniform(-0.8, 0.8) * slack),
            roll_deg=float(rng.normal(0.0, 3.0 if edges else 1.0)),
            tilt_x_deg=float(rng.normal(0.0, 8.0 if edges else 3.0)),
            tilt_y_deg=float(rng.normal(0.0, 8.0 if edges else 3.0)),
        )


@dataclass(frozen=True)
class HandMotion:
    """How the object moves: a hand's slow drift and tremor, or nothing (a stand)."""

    support: str  # "hand" or "fixed"
    drift_px: float  # std of the slow position walk, as px per 100 px of frame short side
    drift_deg: float  # std of the slow roll/tilt walk, degrees
    drift_tau_s: float  # correlation time of the walk (Ornstein-Uhlenbeck), s
    tremor_px: float  # amplitude of each tremor component, px per 100 px of frame short side
    tremor_hz: tuple[float, ...]  # component frequencies of physiological tremor (4-12 Hz)
    tremor_phase: tuple[float, ...]  # their phases, radians (x uses these, y a quarter turn on)
    walk_seed: int  # seeds the walk's increments

    @classmethod
    def sample(cls, rng: np.random.Generator, *, support: str | None = None) -> HandMotion:
        support = support or str(rng.choice(SUPPORTS, p=[0.7, 0.3]))
        if support not in SUPPORTS:
            raise ValueError(f"support must be one of {SUPPORTS}, got {support!r}")
        still = support == "fixed"
        return cls(
            support=support,
            drift_px=0.0 if still else float(rng.uniform(0.4, 1.8)),
            drift_deg=0.0 if still else float(rng.uniform(0.3, 1.5)),
            drift_tau_s=float(rng.uniform(0.5, 2.5)),
            tremor_px=0.0 if still else float(rng.uniform(0.05, 0.25)),
            tremor_hz=tuple(float(f) for f in rng.uniform(4.0, 12.0, size=3)),
            tremor_phase=tuple(float(p) for p in rng.uniform(0.0, 2 * np.pi, size=3)),
            walk_seed=int(rng.integers(0, 2**31 - 1)),
        )


class PoseTrack:
    """Pose offsets of a held object at any time in [0, duration].

    The drift is an Ornstein-Uhlenbeck walk (a random walk pulled back to rest) drawn on a
    fixed 100 Hz grid, so the pose at time t does not depend on which frames are asked for.
    """

    def __init__(self, motion: HandMotion, duration_s: float, frame_short_side: int) -> None:
        self.motion = motion
        self.px = frame_short_side / 100.0  # motion amplitudes are per 100 px of short side
        n = int(math.ceil(max(duration_s, 0.0) * POSE_RATE_HZ)) + 2
        self.grid_t = np.arange(n) / POSE_RATE_HZ
        rng = np.random.default_rng(motion.walk_seed)
        decay = math.exp(-1.0 / (POSE_RATE_HZ * motion.drift_tau_s))
        kick = math.sqrt(1.0 - decay * decay)
        steps = rng.standard_normal((n, POSE_DIMS))
        walk = np.empty((n, POSE_DIMS))
        walk[0] = steps[0]
        for i in range(1, n):  # unit-variance stationary OU process
            walk[i] = decay * walk[i - 1] + kick * steps[i]
        # dx, dy in px; roll, tilt_x, tilt_y in degrees; log-scale (moving to/from the camera)
        scale = np.array(
            [motion.drift_px * self.px] * 2 + [motion.drift_deg] * 3 + [motion.drift_deg * 0.01]
        )
        self.grid = walk * scale  # [n, 6]

    def at(self, t: float) -> np.ndarray:
        """Pose offset [6] at time t (s)."""
        pose = np.array([np.interp(t, self.grid_t, self.grid[:, d]) for d in range(POSE_DIMS)])
        m = self.motion
        if m.tremor_px > 0:
            amp = m.tremor_px * self.px
            for f, ph in zip(m.tremor_hz, m.tremor_phase, strict=True):
                pose[0] += amp * math.sin(2 * math.pi * f * t + ph)
                pose[1] += amp * math.sin(2 * math.pi * f * t + ph + math.pi / 2)
        return pose


def _rotation(roll: float, tilt_x: float, tilt_y: float) -> np.ndarray:
    """3x3 rotation from angles in degrees (Rz @ Ry @ Rx)."""
    a, b, c = np.deg2rad([tilt_x, tilt_y, roll])
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def plane_homography(
    object_wh: tuple[float, float],
    layer_origin: tuple[float, float],
    frame_wh: tuple[int, int],
    place: Placement,
    pose: np.ndarray,
) -> np.ndarray:
    """3x3 homography from layer pixels to frame pixels.

    object_wh is the object's size inside its layer (the layer may be larger, to hold the
    fingers that stick out); layer_origin is the object's top-left corner in the layer.
    The object is a plane in 3-D at the distance where its unrotated scale is right, seen
    by a pinhole camera whose focal length is 1.2x the frame's long side (a webcam's ~45°).
    """
    ow, oh = object_wh
    fw, fh = frame_wh
    fit = (min if place.edges_visible else max)(fw / ow, fh / oh)
    s = place.cover * fit * math.exp(pose[5])
    rot = _rotation(
        place.roll_deg + pose[2], place.tilt_x_deg + pose[3], place.tilt_y_deg + pose[4]
    )
    focal = 1.2 * max(fw, fh)
    corners = np.array([[0, 0], [ow, 0], [ow, oh], [0, oh]], dtype=np.float64)
    centred = np.c_[(corners - [ow / 2, oh / 2]) * s, np.zeros(4)]  # [4, 3] in frame px units
    cam = centred @ rot.T + [0.0, 0.0, focal]
    cx = place.center_x * fw + pose[0]
    cy = place.center_y * fh + pose[1]
    dst = np.c_[focal * cam[:, 0] / cam[:, 2] + cx, focal * cam[:, 1] / cam[:, 2] + cy]
    src = corners + np.asarray(layer_origin, dtype=np.float64)
    return cv2.getPerspectiveTransform(src.astype(np.float32), dst.astype(np.float32))


def project_layer(
    colour: np.ndarray, alpha: np.ndarray, homography: np.ndarray, frame_wh: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Warp a premultiplied layer into the frame: (colour [H, W, 3], alpha [H, W])."""
    flags = cv2.INTER_LINEAR
    col = cv2.warpPerspective(colour, homography, frame_wh, flags=flags, borderValue=0)
    a = cv2.warpPerspective(alpha, homography, frame_wh, flags=flags, borderValue=0)
    return col, a


def composite(background: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Premultiplied 'over': background float [H, W, 3] under colour/alpha."""
    return background * (1.0 - alpha[..., None]) + colour


def room_background(seed: int, height: int, width: int) -> np.ndarray:
    """A plausible out-of-focus room behind the object: float32 [H, W, 3] in 0..255.

    A muted wall with uneven light, a few furniture-like blocks and sometimes a desk edge,
    drawn from ``seed`` alone so a clip's sidecar only needs to record the seed.
    """
    rng = np.random.default_rng(seed)
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(10, 80), rng.uniform(90, 210)]]])
    wall = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR).astype(np.float32)[0, 0]
    img = np.empty((height, width, 3), np.float32)
    img[:] = wall
    for _ in range(int(rng.integers(0, 4))):  # shelves, door frames, pictures: muted colours
        x0, x1 = sorted(rng.uniform(0, width, 2).astype(int))
        y0, y1 = sorted(rng.uniform(0, height, 2).astype(int))
        mix = rng.uniform(0.2, 0.6)
        img[y0 : y1 + 1, x0 : x1 + 1] = (1 - mix) * wall + mix * rng.uniform(30, 220, 3)
    if rng.random() < 0.5:  # a desk or table top along the bottom: wood or grey tones
        y = int(height * rng.uniform(0.7, 0.92))
        wood = np.array([60.0, 100.0, 150.0]) * rng.uniform(0.5, 1.3)
        img[y:] = wood if rng.random() < 0.6 else rng.uniform(60, 200) * np.ones(3)
    # Surface texture (plaster, wood grain) before the light falls on it.
    img *= (
        1.0
        + cv2.GaussianBlur(rng.normal(0, 0.04, (height, width)).astype(np.float32), (0, 0), 2.0)[
            ..., None
        ]
    )
    # Uneven light: a coarse random field upsampled, times a vertical gradient.
    field = rng.uniform(0.85, 1.15, (4, 4)).astype(np.float32)
    light = cv2.resize(field, (width, height), interpolation=cv2.INTER_CUBIC)
    light *= np.linspace(rng.uniform(0.85, 1.15), 1.0, height, dtype=np.float32)[:, None]
    img *= light[..., None]
    sigma = float(rng.uniform(1.0, 3.0)) * max(height, width) / 360  # focus is on the object
    return np.clip(cv2.GaussianBlur(img, (0, 0), sigma), 0, 255)


@dataclass(frozen=True)
class Hand:
    """A holding hand in layer coordinates: fingers behind the object, a thumb in front."""

    side: str  # edge it holds: "left", "right" or "bottom"
    along: float  # position of the thumb along that edge, 0..1
    skin_bgr: tuple[float, float, float]
    thumb_size: float  # thumb length as a fraction of the object's short side

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Hand:
        tone = rng.uniform(0.0, 1.0)  # dark to light skin, in BGR
        skin = np.array([60, 85, 140]) * (1 - tone) + np.array([150, 180, 225]) * tone
        return cls(
            side=str(rng.choice(["left", "right", "bottom"])),
            along=float(rng.uniform(0.3, 0.7)),
            skin_bgr=tuple(float(c) for c in skin * rng.uniform(0.9, 1.1, 3)),
            thumb_size=float(rng.uniform(0.14, 0.22)),
        )


def hand_margin(object_wh: tuple[int, int]) -> int:
    """Layer border (px) around an object, room for the fingers outside its edge."""
    return int(0.25 * min(object_wh))


def draw_hand(
    colour: np.ndarray, alpha: np.ndarray, object_box: tuple[int, int, int, int], hand: Hand
) -> None:
    """Paint the hand into a (non-premultiplied) layer in place.

    Fingers and palm go *behind* the object (only drawn where alpha is still 0); the thumb
    goes on top, overlapping the object's edge as a thumb gripping a sheet or phone does.
    """
    x, y, w, h = object_box
    short = min(w, h)
    tl = hand.thumb_size * short
    if hand.side == "bottom":
        cx, cy, out = x + hand.along * w, y + h, (0.0, 1.0)
    else:
        cx, cy = (x if hand.side == "left" else x + w), y + hand.along * h
        out = (-1.0, 0.0) if hand.side == "left" else (1.0, 0.0)
    skin = np.array(hand.skin_bgr, np.float32)
    behind = np.zeros(alpha.shape, np.uint8)
    palm = (int(cx + out[0] * 1.1 * tl), int(cy + out[1] * 1.1 * tl))
    axes = (
        (int(1.4 * tl), int(1.4 * tl)) if hand.side == "bottom" else (int(1.2 * tl), int(1.8 * tl))
    )
    cv2.ellipse(behind, palm, axes, 0, 0, 360, 255, -1)
    free = (behind > 0) & (alpha == 0)
    colour[free] = skin * 0.85  # in the object's shadow
    alpha[free] = 1.0
    thumb = np.zeros(alpha.shape, np.uint8)
    tip = (int(cx - out[0] * 0.45 * tl), int(cy - out[1] * 0.45 * tl))
    angle = 90 if hand.side == "bottom" else 0
    cv2.ellipse(thumb, tip, (int(0.6 * tl), int(0.28 * tl)), angle, 0, 360, 255, -1)
    soft = cv2.GaussianBlur(thumb.astype(np.float32) / 255, (0, 0), max(tl * 0.05, 0.5))
    colour[:] = colour * (1 - soft[..., None]) + skin * soft[..., None]
    np.maximum(alpha, soft, out=alpha)


def inverse_points(
    homography: np.ndarray, xs: np.ndarray, ys: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Map frame points back to layer coordinates with the inverse homography (the result
    has the points' dtype)."""
    hi = np.linalg.inv(homography.astype(np.float64)).astype(xs.dtype)
    den = hi[2, 0] * xs + hi[2, 1] * ys + hi[2, 2]
    u = (hi[0, 0] * xs + hi[0, 1] * ys + hi[0, 2]) / den
    v = (hi[1, 0] * xs + hi[1, 1] * ys + hi[1, 2]) / den
    return u, v


@functools.cache
def _face_detector() -> HaarDetector:
    return HaarDetector()


def detect_face(frame: np.ndarray) -> tuple[int, int, int, int] | None:
    """The largest frontal face (x, y, w, h) in frame pixels, or None: the model's Haar
    detector (model/detectors.py), whose boxes reach the forehead as the renderers expect."""
    boxes = _face_detector().detect(frame)
    if not boxes:
        return None
    b = boxes[0]
    return int(b.x), int(b.y), int(b.w), int(b.h)
