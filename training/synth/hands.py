"""Hands that hold a phone, a tablet or a photo up to the camera, drawn in frame space.

A hand is fingers, a palm and a forearm. Fingertips lie over the object's front (a
thumb over a phone's edge, fingers wrapping round from behind); the palm and the arm are
behind it and show around it, the arm running out of the frame. Each finger is anchored
to a point of the object's edge in object centimetres and projected every frame, so the
grip moves with the object. Parts are shaded as cylinders (darker at their sides), have
soft edges, nails on the fingertips, and front fingers cast a soft shadow on the object.
Skin tones span light to dark; sizes are in centimetres and follow the object's scale.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

# Skin tones from light to dark (BGR): a tone is drawn between two neighbours.
SKIN_TONES = np.array(
    [
        [196, 222, 250],
        [160, 192, 234],
        [120, 156, 205],
        [80, 118, 168],
        [52, 80, 120],
        [34, 50, 78],
    ],
    np.float32,
)
EDGES = ("left", "right", "top", "bottom")
SHIFT = 4  # fixed-point bits for sub-pixel drawing


@dataclass(frozen=True)
class HandLook:
    skin_bgr: tuple[float, float, float]
    shading: float  # darkening at a part's sides relative to its middle
    nail_bgr: tuple[float, float, float]
    sleeve_bgr: tuple[float, float, float] | None  # clothing over the forearm, or bare
    finger_cm: float  # finger width
    softness: float  # edge blur, fraction of a finger's width (focus, motion)
    shadow: float  # darkening of the object under a front finger's shadow
    shadow_offset: tuple[float, float]  # shadow shift, finger widths (light direction)

    @classmethod
    def sample(cls, rng: np.random.Generator) -> HandLook:
        tone = rng.uniform(0, len(SKIN_TONES) - 1)
        i = min(int(tone), len(SKIN_TONES) - 2)
        skin = SKIN_TONES[i] + (tone - i) * (SKIN_TONES[i + 1] - SKIN_TONES[i])
        skin = skin * rng.uniform(0.92, 1.08, 3)
        nail = skin + rng.uniform(15, 40) * np.array([0.8, 0.7, 1.0])
        if rng.random() < 0.1:  # painted nails
            nail = rng.uniform(20, 230, 3)
        sleeve = rng.uniform(15, 220) * rng.uniform(0.6, 1.0, 3) if rng.random() < 0.7 else None
        angle = rng.uniform(0, 2 * math.pi)
        return cls(
            skin_bgr=tuple(float(c) for c in np.clip(skin, 0, 255)),
            shading=float(rng.uniform(0.2, 0.45)),
            nail_bgr=tuple(float(c) for c in np.clip(nail, 0, 255)),
            sleeve_bgr=None if sleeve is None else tuple(float(c) for c in sleeve),
            finger_cm=float(rng.uniform(1.5, 2.0)),
            softness=float(rng.uniform(0.02, 0.07)),
            shadow=float(rng.uniform(0.15, 0.45)),
            shadow_offset=(float(0.3 * math.cos(angle)), float(0.3 * math.sin(angle))),
        )


@dataclass(frozen=True)
class Finger:
    at: tuple[float, float]  # where it crosses the object's edge, object cm
    out: tuple[float, float]  # unit direction from tip to base, object cm
    reach_cm: float  # how far it lies over the object's front
    length_cm: float  # how far it shows outside the edge
    width: float  # relative to HandLook.finger_cm (a thumb is wider)


@dataclass(frozen=True)
class Grip:
    """One hand: its fingers over the front, its palm and forearm behind."""

    fingers: tuple[Finger, ...]
    palm: tuple[float, float]  # palm centre, object cm
    palm_cm: float  # palm radius
    arm_angle_deg: float  # direction the forearm leaves in the frame (90 = straight down)


def edge_point(
    edge: str, along: float, size_cm: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """A point of an edge of a w x h object centred at 0 (``along`` 0..1) and the outward normal."""
    w, h = size_cm
    if edge in ("left", "right"):
        sign = -1.0 if edge == "left" else 1.0
        return np.array([sign * w / 2, -h / 2 + along * h]), np.array([sign, 0.0])
    sign = -1.0 if edge == "top" else 1.0
    return np.array([-w / 2 + along * w, sign * h / 2]), np.array([0.0, sign])


def sample_finger(
    rng: np.random.Generator, edge: str, along: float, size_cm: tuple[float, float], thumb: bool
) -> Finger:
    at, normal = edge_point(edge, along, size_cm)
    a = math.radians(rng.uniform(-30, 30))
    out = np.array(
        [
            normal[0] * math.cos(a) - normal[1] * math.sin(a),
            normal[0] * math.sin(a) + normal[1] * math.cos(a),
        ]
    )
    return Finger(
        at=(float(at[0]), float(at[1])),
        out=(float(out[0]), float(out[1])),
        reach_cm=float(rng.uniform(0.6, 2.0) if thumb else rng.uniform(0.3, 1.2)),
        length_cm=float(rng.uniform(2.5, 4.5) if thumb else rng.uniform(0.6, 1.4)),
        width=float(rng.uniform(1.1, 1.25) if thumb else rng.uniform(0.8, 1.0)),
    )


def sample_grip(
    rng: np.random.Generator, size_cm: tuple[float, float], style: str, side: str = "left"
) -> Grip:
    """A hand holding a w x h cm object. ``style``: "wrap" (one hand behind it, thumb on
    one side and fingertips round the other), "side" (thumb on one side, palm beside it)
    or "bottom" (fingertips over the bottom edge, palm below)."""
    w, h = size_cm
    other = "right" if side == "left" else "left"
    sx = -1.0 if side == "left" else 1.0
    if style == "wrap":
        fingers = [sample_finger(rng, side, rng.uniform(0.45, 0.8), size_cm, True)]
        start, n = rng.uniform(0.3, 0.55), int(rng.integers(1, 4))
        step = 1.05 * 1.8 / h
        fingers += [
            sample_finger(rng, other, min(start + k * step, 0.97), size_cm, False) for k in range(n)
        ]
        palm = (sx * w * rng.uniform(0.0, 0.2), h / 2 - rng.uniform(0.0, 0.25) * h)
        return Grip(
            tuple(fingers),
            (float(palm[0]), float(palm[1])),
            float(rng.uniform(4.0, 4.8)),
            float(rng.uniform(70, 110)),
        )
    if style == "side":
        along = rng.uniform(0.35, 0.8)
        fingers = (sample_finger(rng, side, along, size_cm, True),)
        at, _ = edge_point(side, along, size_cm)
        palm = (at[0] + sx * rng.uniform(3.0, 4.5), at[1] + rng.uniform(1.5, 3.5))
        angle = 90 + sx * rng.uniform(10, 55)
        return Grip(
            fingers, (float(palm[0]), float(palm[1])), float(rng.uniform(4.0, 4.8)), float(angle)
        )
    along = rng.uniform(0.3, 0.7)
    fingers = tuple(
        sample_finger(rng, "bottom", along + d, size_cm, k == 0)
        for k, d in enumerate([0.0, *(rng.uniform(0.12, 0.25, int(rng.integers(0, 2))))])
    )
    palm = (-w / 2 + along * w, h / 2 + rng.uniform(2.5, 4.0))
    return Grip(
        fingers,
        (float(palm[0]), float(palm[1])),
        float(rng.uniform(4.0, 4.8)),
        float(rng.uniform(70, 110)),
    )


@dataclass
class HandLayers:
    """A frame's hands: premultiplied colour [H, W, 3] and alpha [H, W] behind and in
    front of the object, and the front fingers' shadow [H, W] (0..1) to darken it by."""

    behind: tuple[np.ndarray, np.ndarray]
    front: tuple[np.ndarray, np.ndarray]
    shadow: np.ndarray


Project = Callable[[np.ndarray], np.ndarray]  # object cm [N, 2] -> frame px [N, 2]


def _capsule(shape: tuple[int, int], a: np.ndarray, b: np.ndarray, width: float) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    p = [tuple(int(round(c * (1 << SHIFT))) for c in pt) for pt in (a, b)]
    cv2.line(mask, p[0], p[1], 255, max(1, int(round(width))), cv2.LINE_8, SHIFT)
    return mask


def _shaded(mask: np.ndarray, half: float, look: HandLook) -> tuple[np.ndarray, np.ndarray]:
    """Shade profile (1 in the middle, darker at the sides) and soft alpha of a part."""
    dist = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
    shade = 1.0 - look.shading * (1.0 - np.sqrt(np.clip(dist / max(half, 1.0), 0, 1)))
    soft = cv2.GaussianBlur(
        mask.astype(np.float32) / 255, (0, 0), max(0.4, look.softness * 2 * half)
    )
    return shade, soft


def _over(layer: tuple[np.ndarray, np.ndarray], colour: np.ndarray, alpha: np.ndarray) -> None:
    col, a = layer
    col *= 1 - alpha[..., None]
    col += colour * alpha[..., None]
    a *= 1 - alpha
    a += alpha


def _roi(points, pad: float, w: int, h: int) -> tuple[int, int, int, int] | None:
    """Bounding box (x0, y0, x1, y1) of points grown by ``pad``, clipped to the frame."""
    pts = np.array(points, np.float64)
    x0, y0 = np.floor(pts.min(axis=0) - pad).astype(int)
    x1, y1 = np.ceil(pts.max(axis=0) + pad).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _sub(layer, box):
    x0, y0, x1, y1 = box
    return tuple(arr[y0:y1, x0:x1] for arr in layer)


def draw_hands(
    frame_wh: tuple[int, int], grips: tuple[Grip, ...], look: HandLook, project: Project
) -> HandLayers:
    """The hands of one frame; ``project`` maps object cm to frame px at that instant.
    Each part is drawn in its own bounding box (cheap even for a small hand)."""
    w, h = frame_wh
    shape = (h, w)
    behind = (np.zeros((h, w, 3), np.float32), np.zeros(shape, np.float32))
    front = (np.zeros((h, w, 3), np.float32), np.zeros(shape, np.float32))
    shadow = np.zeros(shape, np.float32)
    skin = np.array(look.skin_bgr, np.float32)
    for grip in grips:
        palm = np.array(grip.palm)
        c, right = project(np.array([palm, palm + [1.0, 0.0]]))
        px_cm = float(np.linalg.norm(right - c))  # frame px per cm here
        a = math.radians(grip.arm_angle_deg)
        far = c + 2.0 * (w + h) * np.array([math.cos(a), math.sin(a)])
        arm_w = 6.5 * px_cm
        wrist = c + 1.6 * grip.palm_cm * px_cm * np.array([math.cos(a), math.sin(a)])
        for start, end, width, colour in (
            (wrist, far, arm_w * 1.15, look.sleeve_bgr or look.skin_bgr),
            (c, wrist, arm_w, look.skin_bgr),
            (c, c, 2 * grip.palm_cm * px_cm, look.skin_bgr),
        ):
            box = _roi([start, end], width + 4, w, h)
            if box is None:
                continue
            off = np.array(box[:2], np.float64)
            mask = _capsule((box[3] - box[1], box[2] - box[0]), start - off, end - off, width)
            shade, soft = _shaded(mask, width / 2, look)
            _over(_sub(behind, box), np.array(colour, np.float32) * shade[..., None] * 0.9, soft)
        for f in grip.fingers:
            at, out = np.array(f.at), np.array(f.out)
            tip, base = project(np.array([at - out * f.reach_cm, at + out * f.length_cm]))
            width = look.finger_cm * f.width * px_cm
            box = _roi([tip, base], 2.5 * width + 4, w, h)
            if box is None:
                continue
            off = np.array(box[:2], np.float64)
            tip, base = tip - off, base - off
            roi = (box[3] - box[1], box[2] - box[0])
            mask = _capsule(roi, tip, base, width)
            shade, soft = _shaded(mask, width / 2, look)
            colour = skin * shade[..., None]
            axis = (base - tip) / max(float(np.linalg.norm(base - tip)), 1e-6)
            nail = np.zeros(roi, np.uint8)
            centre = tip + axis * 0.45 * width
            angle = math.degrees(math.atan2(axis[1], axis[0]))
            axes = (max(1, int(0.4 * width)), max(1, int(0.3 * width)))
            cv2.ellipse(nail, tuple(int(v) for v in centre), axes, angle, 0, 360, 255, -1)
            nail_soft = cv2.GaussianBlur(nail.astype(np.float32) / 255, (0, 0), 0.6) * soft
            nail_colour = np.array(look.nail_bgr, np.float32) * shade[..., None]
            colour = colour + 0.8 * nail_soft[..., None] * (nail_colour - colour)
            _over(_sub(front, box), colour, soft)
            dx, dy = (np.array(look.shadow_offset) * width).tolist()
            moved = cv2.warpAffine(soft, np.float32([[1, 0, dx], [0, 1, dy]]), roi[::-1])
            blurred = cv2.GaussianBlur(moved, (0, 0), 0.3 * width + 0.5) * look.shadow
            x0, y0, x1, y1 = box
            np.maximum(shadow[y0:y1, x0:x1], blurred, out=shadow[y0:y1, x0:x1])
    return HandLayers(behind, front, shadow)


def composite_held(
    background: np.ndarray,
    hands: HandLayers | None,
    obj_colour: np.ndarray,
    obj_alpha: np.ndarray,
) -> np.ndarray:
    """Room, then the arms and palms, then the object (premultiplied), its shadow, then the
    fingertips in front: float32 [H, W, 3]."""
    out = background.astype(np.float32, copy=True)
    if hands is not None:
        out = out * (1 - hands.behind[1][..., None]) + hands.behind[0]
    out = out * (1 - obj_alpha[..., None]) + obj_colour
    if hands is not None:
        out *= 1 - (hands.shadow * obj_alpha)[..., None]
        out = out * (1 - hands.front[1][..., None]) + hands.front[0]
    return out
