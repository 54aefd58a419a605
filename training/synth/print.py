"""Print attacks: a still frame printed on paper and shown to the camera.

Three kinds share one renderer:

* ``print``  -- a flat rigid sheet, held (drift + tremor) or propped up (static);
* ``warp``   -- the same sheet bent around its vertical axis, the bend changing over time;
* ``cutout`` -- a flat sheet with the eyes cut out and a live face behind the holes, so
  the eyes blink and move while the rest of the face is paper.

The sheet's content never moves relative to the sheet: whatever the camera sees of the
face is a fixed image under a homography (plus, for ``warp``, a smooth bend), except
through a cutout's holes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from training.synth.paper import PrintLook, paper_sheet
from training.synth.scene import (
    Hand,
    HandMotion,
    Placement,
    PoseTrack,
    composite,
    detect_face,
    draw_hand,
    hand_margin,
    inverse_points,
    plane_homography,
    project_layer,
    room_background,
)

STILL_CANDIDATES = 4  # frames tried (with a face detector) when choosing the printed still


@dataclass(frozen=True)
class Bend:
    """A sheet bent around its vertical axis (kind ``warp``)."""

    curvature: float  # mean bend: half-width arc angle, radians (> 0 bulges toward the camera)
    swing: float  # amplitude of its change over time, radians
    swing_hz: float  # how fast the hands flex the sheet
    swing_phase: float
    shading: float  # brightness change across the curve (light from one side)

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Bend:
        return cls(
            curvature=float(rng.choice([-1, 1]) * rng.uniform(0.2, 0.7)),
            swing=float(rng.uniform(0.1, 0.35)),
            swing_hz=float(rng.uniform(0.2, 0.8)),
            swing_phase=float(rng.uniform(0, 2 * np.pi)),
            shading=float(rng.uniform(0.05, 0.2)),
        )

    def at(self, t: float) -> float:
        k = self.curvature + self.swing * math.sin(
            2 * math.pi * self.swing_hz * t + self.swing_phase
        )
        return float(np.clip(k, -1.0, 1.0))


@dataclass(frozen=True)
class Cutout:
    """Eye holes cut in the print, a live face behind them (kind ``cutout``)."""

    face_box: tuple[int, int, int, int]  # the face in the still, px (x, y, w, h)
    hole_scale: float  # hole size relative to a typical eye opening
    offset: tuple[float, float]  # misalignment of the face behind, fraction of face width
    shadow: float  # the face behind is in the sheet's shade: brightness factor

    @classmethod
    def sample(cls, rng: np.random.Generator, face_box: tuple[int, int, int, int]) -> Cutout:
        return cls(
            face_box=face_box,
            hole_scale=float(rng.uniform(0.8, 1.1)),
            offset=tuple(float(o) for o in rng.normal(0.0, 0.02, 2)),
            shadow=float(rng.uniform(0.7, 0.95)),
        )


@dataclass(frozen=True)
class PrintParams:
    still_index: int  # which input frame was printed
    look: PrintLook
    placement: Placement
    motion: HandMotion
    hand: Hand | None  # drawn when the sheet is hand-held
    background_seed: int
    bend: Bend | None = None
    cutout: Cutout | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def choose_still(
    frames: np.ndarray, rng: np.random.Generator
) -> tuple[int, tuple[int, int, int, int] | None]:
    """Pick the frame to print: the first of a few random candidates that shows a face."""
    candidates = rng.permutation(len(frames))[:STILL_CANDIDATES]
    for i in candidates:
        box = detect_face(frames[i])
        if box is not None:
            return int(i), box
    return int(candidates[0]), None


def sample_print_params(
    kind: str, frames: np.ndarray, rng: np.random.Generator, *, support: str | None = None
) -> PrintParams:
    """Draw every parameter of a print-type attack (``print``, ``warp`` or ``cutout``)."""
    if kind not in ("print", "warp", "cutout"):
        raise ValueError(f"not a print-type attack kind: {kind!r}")
    still_index, face = choose_still(frames, rng)
    # Bending a sheet takes hands: a warped print is never on a stand.
    motion = HandMotion.sample(rng, support="hand" if kind == "warp" else support)
    h, w = frames.shape[1:3]
    if face is None:  # no face found: assume a centred head, as in most selfie footage
        face = (int(0.3 * w), int(0.25 * h), int(0.4 * w), int(0.4 * w))
    return PrintParams(
        still_index=still_index,
        look=PrintLook.sample(rng),
        placement=Placement.sample(rng),
        motion=motion,
        hand=Hand.sample(rng) if motion.support == "hand" else None,
        background_seed=int(rng.integers(0, 2**31 - 1)),
        bend=Bend.sample(rng) if kind == "warp" else None,
        cutout=Cutout.sample(rng, face) if kind == "cutout" else None,
    )


def eye_holes(shape: tuple[int, int], cut: Cutout) -> np.ndarray:
    """Mask [h, w] float32 of the two eye holes, in photo pixels."""
    x, y, w, h = cut.face_box
    mask = np.zeros(shape, np.uint8)
    axes = (int(0.12 * w * cut.hole_scale), int(0.065 * h * cut.hole_scale))
    for fx in (0.3, 0.7):  # eye centres in a frontal face box (Haar: eyes at ~0.38 height)
        cv2.ellipse(mask, (int(x + fx * w), int(y + 0.38 * h)), axes, 0, 0, 360, 255, -1)
    return mask.astype(np.float32) / 255.0


class PrintScene:
    """Renders a print-type attack frame by frame: ``render(t, live)`` -> BGR uint8 frame."""

    def __init__(self, still: np.ndarray, params: PrintParams, duration_s: float) -> None:
        h, w = still.shape[:2]
        self.params = params
        self.still = still
        self.frame_wh = (w, h)
        look, place = params.look, params.placement
        sheet = paper_sheet(still, look, with_border=place.edges_visible)
        border = (sheet.shape[0] - h) // 2  # photo offset inside the sheet
        sh, sw = sheet.shape[:2]
        pad = hand_margin((sw, sh))
        colour = np.zeros((sh + 2 * pad, sw + 2 * pad, 3), np.float32)
        alpha = np.zeros(colour.shape[:2], np.float32)
        colour[pad : pad + sh, pad : pad + sw] = sheet
        alpha[pad : pad + sh, pad : pad + sw] = 1.0
        self.holes: np.ndarray | None = None
        if params.cutout is not None:
            self._cut_holes(colour, params.cutout, (pad + border, pad + border), (h, w))
        if params.hand is not None:
            draw_hand(colour, alpha, (pad, pad, sw, sh), params.hand)
        self.colour = colour * alpha[..., None]  # premultiplied
        self.alpha = alpha
        self.object_wh = (sw, sh)
        self.origin = (pad, pad)
        self.track = PoseTrack(params.motion, duration_s, min(h, w))
        self.background = room_background(params.background_seed, h, w)
        fit = (min if place.edges_visible else max)(w / sw, h / sh)
        # Camera distance in layer px (focal 1.2x long side, as in plane_homography).
        self.depth = 1.2 * max(w, h) / (place.cover * fit)

    def _cut_holes(
        self, colour: np.ndarray, cut: Cutout, at: tuple[int, int], hw: tuple[int, int]
    ) -> None:
        holes = eye_holes(hw, cut)
        x0, y0 = at
        ring = cv2.dilate(holes, np.ones((5, 5), np.uint8)) - holes  # shadow of the cut edge
        region = colour[y0 : y0 + hw[0], x0 : x0 + hw[1]]
        region *= (1.0 - holes)[..., None] * (1.0 - 0.4 * ring)[..., None]
        self.holes, self.holes_at = holes, at
        self._prev: np.ndarray | None = None  # last live frame, for face tracking
        self._shift = (0.0, 0.0)

    def homography(self, t: float) -> np.ndarray:
        """Layer px -> frame px at time t (before any bend)."""
        pose = self.track.at(t)
        return plane_homography(
            self.object_wh, self.origin, self.frame_wh, self.params.placement, pose
        )

    def render(self, t: float, live: np.ndarray | None = None) -> np.ndarray:
        colour = self.colour
        if self.holes is not None:
            if live is None:
                raise ValueError("a cutout attack needs the live frame behind its holes")
            colour = self._fill_holes(live)
        hom = self.homography(t)
        if self.params.bend is None:
            fg, a = project_layer(colour, self.alpha, hom, self.frame_wh)
        else:
            fg, a = self._project_bent(colour, hom, self.params.bend.at(t))
        return np.clip(composite(self.background, fg, a), 0, 255).astype(np.uint8)

    def _fill_holes(self, live: np.ndarray) -> np.ndarray:
        """Layer colour with the live face (kept aligned to the printed one) behind the holes."""
        cut = self.params.cutout
        fx, fy, fw, fh = cut.face_box
        self._follow_face(live)
        dx = float(np.clip(self._shift[0], -0.3 * fw, 0.3 * fw)) + cut.offset[0] * fw
        dy = float(np.clip(self._shift[1], -0.3 * fh, 0.3 * fh)) + cut.offset[1] * fw
        shift = np.array([[1, 0, dx], [0, 1, dy]], np.float32)  # dst(p) = live(p + shift)
        h, w = live.shape[:2]
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        behind = cv2.warpAffine(live, shift, (w, h), flags=flags, borderMode=cv2.BORDER_REFLECT)
        colour = self.colour.copy()
        x0, y0 = self.holes_at
        colour[y0 : y0 + h, x0 : x0 + w] += (
            behind.astype(np.float32) * cut.shadow * self.holes[..., None]
        )
        return colour

    def _follow_face(self, live: np.ndarray) -> None:
        """Track where the live face is relative to the printed one (frames come in order).

        The first frame is placed by the face detector (phase correlation if it finds
        nothing); later ones add the frame-to-frame shift, which is small and reliable.
        """
        box = self.params.cutout.face_box
        if self._prev is None:
            found = detect_face(live)
            if found is not None:
                self._shift = (
                    found[0] + found[2] / 2 - (box[0] + box[2] / 2),
                    found[1] + found[3] / 2 - (box[1] + box[3] / 2),
                )
            else:
                self._shift = _face_shift(self.still, live, box, (0.0, 0.0))
        else:
            step = _face_shift(self._prev, live, box, self._shift)
            self._shift = (self._shift[0] + step[0], self._shift[1] + step[1])
        self._prev = live

    def _project_bent(
        self, colour: np.ndarray, hom: np.ndarray, k: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Remap the layer as a sheet bent around its vertical centre line, then projected."""
        w, h = self.frame_wh
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
        u_v, v_v = inverse_points(hom, xs, ys)  # coordinates on the (virtual) flat sheet
        cx = self.origin[0] + self.object_wh[0] / 2
        cy = self.origin[1] + self.object_wh[1] / 2
        half = self.object_wh[0] / 2
        reach = half + self.origin[0]
        s = np.linspace(-reach, reach, 1024)  # arc length along the sheet from its centre line
        if abs(k) < 1e-3:
            seen, z = s, np.zeros_like(s)
        else:
            radius = half / abs(k)
            theta = s / radius
            z = -np.sign(k) * radius * (1 - np.cos(theta))  # < 0: nearer the camera
            seen = radius * np.sin(theta) * self.depth / (self.depth + z)
        seen = np.maximum.accumulate(seen)  # keep it invertible at the far curl
        arc = np.interp(u_v - cx, seen, s)
        depth = self.depth + np.interp(arc, s, z)
        map_x = (cx + arc).astype(np.float32)
        map_y = (cy + (v_v - cy) * depth / self.depth).astype(np.float32)
        fg = cv2.remap(colour, map_x, map_y, cv2.INTER_LINEAR, borderValue=0)
        a = cv2.remap(self.alpha, map_x, map_y, cv2.INTER_LINEAR, borderValue=0)
        light = 1.0 + self.params.bend.shading * np.sin(arc / half * abs(k)) * np.sign(k)
        return fg * light[..., None].astype(np.float32), a


def _face_shift(
    ref: np.ndarray, live: np.ndarray, box: tuple[int, int, int, int], at: tuple[float, float]
) -> tuple[float, float]:
    """Translation (dx, dy) of the face in ``live`` relative to ``ref`` (phase correlation
    over the face box, moved by ``at``)."""
    h, w = ref.shape[:2]
    x = int(np.clip(box[0] + at[0], 0, w - 8))
    y = int(np.clip(box[1] + at[1], 0, h - 8))
    x1, y1 = min(x + box[2], w), min(y + box[3], h)
    a = cv2.cvtColor(ref[y:y1, x:x1], cv2.COLOR_BGR2GRAY).astype(np.float32)
    b = cv2.cvtColor(live[y:y1, x:x1], cv2.COLOR_BGR2GRAY).astype(np.float32)
    if min(a.shape) < 8:
        return 0.0, 0.0
    window = cv2.createHanningWindow(a.shape[::-1], cv2.CV_32F)
    (dx, dy), _ = cv2.phaseCorrelate(a, b, window)
    return float(dx), float(dy)


def render_print_attack(
    kind: str,
    frames: np.ndarray,
    fps: float,
    rng: np.random.Generator,
    *,
    support: str | None = None,
) -> tuple[np.ndarray, PrintParams]:
    """Render a print-type attack (``print``/``warp``/``cutout``) of frames [T, H, W, 3] BGR.

    Frames are the live clip at ``fps``; the output has the same shape and timing. The
    printed still is one of them; ``cutout`` also shows the live frames through its holes.
    """
    params = sample_print_params(kind, frames, rng, support=support)
    scene = PrintScene(frames[params.still_index], params, len(frames) / fps)
    return np.stack([scene.render(i / fps, frames[i]) for i in range(len(frames))]), params
