"""What moves in the crop, and how: the motion descriptor the temporal head can read.

A face in front of a camera moves in ways a picture of one cannot: the eyes blink, the
mouth and cheeks move, the head turns in depth (the nose moves against the ears), and the
head moves against the room behind it. A photo, held or on a stand, or a screen moves as
one plane: everything in it follows one homography, however the hand or the camera
shakes. The paper's cue is this motion; a frame encoder that sees one magnified crop at a
time cannot measure it. So, per face frame, the stream's dense optical flow between the
previous frame and this one is read in the square around the face (the previous frame
recut where the current box lies, so the tracker's own moves are not motion), and summarised in
``MOTION_DIM`` numbers:

====  ==================================================================================
0     how much the face moves (RMS flow over the face)
1     how much the margin around it moves (RMS flow over the ring outside the face)
2     how far the face is from moving with its surroundings as one plane (RMS residual,
      over the face, of one affine motion fitted to the whole square)
3     how far the face is from moving rigidly on its own (RMS residual of an affine motion
      fitted to the face alone: blinks, mouth, expression, turns in depth)
4     how differently the face and its margin move (RMS difference, over the face, of the
      affine motions fitted to each)
5     the change of the face left when the previous frame is moved by the whole square's
      affine motion (mean absolute grey difference, relative to the face's contrast)
6     the raw change of the face (mean absolute grey difference, relative to contrast)
7     the raw change of the margin (the same)
====  ==================================================================================

Flows are in fractions of the face's side per 1/15 s (the stream's frame interval
rescaled), so a face's size and the stream's frame rate do not change the numbers; each
is stored as log(eps + value). The descriptor of an encoded frame is the mean of those of
the stream's frames since the previous encoded frame, so a 30 fps stream encoded at 15 fps
loses none of its frame pairs. The first face frame of a segment has no predecessor: its
descriptor is the "nothing measured" row (every entry log(eps)), and so is any frame that
follows it before a pair was read.

Everything runs on a ``SIDE`` px grey square: DIS optical flow (OpenCV, ultra-fast
preset) and three small least-squares fits cost about half a millisecond a frame
(docs/benchmarks.md).
"""

from __future__ import annotations

import cv2
import numpy as np

from model.config import MOTION_DIM

__all__ = ["EMPTY", "MOTION_DIM", "SIDE", "MotionMeter", "describe"]


SIDE = 96  # side of the grey square the flow is read on, px
RATE = 15.0  # flows are rescaled to this frame interval (1 / RATE s)
FLOW_EPS = 1e-3  # floor of the flow measures, in face sides per 1/RATE s
CHANGE_EPS = 1e-3  # floor of the grey-change measures, relative to the face's contrast
FACE_SHRINK = 0.9  # the face region is the central square of this share of the face side
RING_GROW = 1.3  # the margin region starts outside the central square this much larger
STEP = 2  # the fits read every STEP-th pixel in each direction
EMPTY = np.log(np.array([FLOW_EPS] * 5 + [CHANGE_EPS] * 3, dtype=np.float32))


def _design(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel positions under ``mask`` (every STEP-th) and the pseudo-inverse of their
    affine design matrix [x, y, 1]: flow (N, 2) -> affine parameters (3, 2)."""
    sub = np.zeros_like(mask)
    sub[::STEP, ::STEP] = mask[::STEP, ::STEP]
    ys, xs = np.nonzero(sub)
    scale = mask.shape[0] / 2.0
    design = np.stack([(xs - scale) / scale, (ys - scale) / scale, np.ones(xs.size)], axis=1)
    return np.flatnonzero(sub.ravel()), design.astype(np.float32)


class _Geometry:
    """The regions of the square and the fits' matrices, fixed for one margin."""

    def __init__(self, margin: float) -> None:
        self.face_side = SIDE / (1 + 2 * margin)  # the face box's side in the square, px
        centre = (SIDE - 1) / 2.0
        yy, xx = np.mgrid[0:SIDE, 0:SIDE]
        dist = np.maximum(np.abs(xx - centre), np.abs(yy - centre))
        self.face = dist <= FACE_SHRINK * self.face_side / 2
        self.ring = dist > min(RING_GROW * self.face_side / 2, SIDE / 2 - 4)
        self.all_index, all_design = _design(np.ones_like(self.face))
        self.face_index, face_design = _design(self.face)
        self.ring_index, ring_design = _design(self.ring)
        self.all_pinv = np.linalg.pinv(all_design)
        self.face_pinv = np.linalg.pinv(face_design)
        self.ring_pinv = np.linalg.pinv(ring_design)
        self.all_design, self.face_design = all_design, face_design
        # the face's positions inside the whole square's sample, for its residual there
        self.face_in_all = np.isin(self.all_index, self.face_index)


class MotionMeter:
    """Per-stream: ``measure`` every face frame in order, ``take`` at each encoded frame."""

    def __init__(self, margin: float) -> None:
        self.geometry = _Geometry(margin)
        self.flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        self._previous: np.ndarray | None = None  # the previous face frame's grey square
        self._square: tuple[int, int, int] | None = None  # and where it lay in its frame
        self._sum = np.zeros(MOTION_DIM, dtype=np.float64)
        self._count = 0

    def reset(self) -> None:
        """A new segment: the next frame has no predecessor."""
        self._previous = None
        self._square = None
        self._sum[:] = 0.0
        self._count = 0

    def measure(self, crop: np.ndarray, square: tuple[int, int, int], fps: float) -> None:
        """Read the motion between the previous face frame and this one. ``crop`` is this
        frame's un-magnified face crop (BGR, any size), cut from the frame square
        ``square`` = (x0, y0, side) in frame pixels (model/face.py's ``crop_square``)."""
        now = cv2.cvtColor(
            cv2.resize(crop, (SIDE, SIDE), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY
        )
        previous, before_square = self._previous, self._square
        self._previous, self._square = now, square
        if previous is None or before_square is None:
            return
        before = _recut(previous, before_square, square)
        self._sum += describe(before, now, self.geometry, fps, self.flow)
        self._count += 1

    def take(self) -> np.ndarray:
        """The descriptor of the frames measured since the last call (EMPTY if none)."""
        if self._count == 0:
            return EMPTY.copy()
        out = (self._sum / self._count).astype(np.float32)
        self._sum[:] = 0.0
        self._count = 0
        return out


def _recut(grey: np.ndarray, was: tuple[int, int, int], now: tuple[int, int, int]) -> np.ndarray:
    """A SIDE px square cut from frame square ``was``, moved to frame square ``now``: the
    previous frame as the current box would have cut it (pixel centres mapped exactly; the
    part outside ``was`` repeats its edge). Unchanged when the box did not move."""
    if was == now:
        return grey
    (x0, y0, side0), (x1, y1, side1) = was, now
    scale = side1 / side0
    mx = np.array(
        [
            [scale, 0.0, (x1 - x0) * SIDE / side0 + 0.5 * scale - 0.5],
            [0.0, scale, (y1 - y0) * SIDE / side0 + 0.5 * scale - 0.5],
        ],
        dtype=np.float32,
    )
    return cv2.warpAffine(
        grey,
        mx,
        (SIDE, SIDE),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )


def describe(
    before: np.ndarray,
    now: np.ndarray,
    geometry: _Geometry,
    fps: float,
    flow_engine: cv2.DISOpticalFlow | None = None,
) -> np.ndarray:
    """The MOTION_DIM measures of one pair of grey SIDE x SIDE squares (log scale)."""
    g = geometry
    engine = flow_engine or cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
    flow = engine.calc(before, now, None)  # [S, S, 2] px of this frame interval
    # to face sides per 1/RATE s
    flow = flow.reshape(-1, 2) * np.float32(fps / RATE / g.face_side)

    def rms(v: np.ndarray) -> float:
        return float(np.sqrt(np.mean(np.sum(v * v, axis=1)))) if v.size else 0.0

    face_flow = flow[g.face_index]
    ring_flow = flow[g.ring_index]
    all_flow = flow[g.all_index]
    all_fit = g.all_pinv @ all_flow  # [3, 2]
    face_fit = g.face_pinv @ face_flow
    ring_fit = g.ring_pinv @ ring_flow
    residual_all = (all_flow - g.all_design @ all_fit)[g.face_in_all]
    residual_face = face_flow - g.face_design @ face_fit
    relative = g.face_design @ (face_fit - ring_fit)

    # "now" moved back by the whole square's affine motion: OpenCV's flow says
    # before(x) ~ now(x + flow(x)), so now(x + fit(x)) is what the plane predicts of before
    a = all_fit * np.float32(g.face_side * RATE / fps)  # px of this frame interval
    half = SIDE / 2.0
    # fit(x) = a^T [u, v, 1] with u = (x - half) / half, v = (y - half) / half
    mx = np.array(
        [
            [1 + a[0, 0] / half, a[1, 0] / half, a[2, 0] - a[0, 0] - a[1, 0]],
            [a[0, 1] / half, 1 + a[1, 1] / half, a[2, 1] - a[0, 1] - a[1, 1]],
        ],
        dtype=np.float32,
    )
    warped = cv2.warpAffine(
        now,
        mx,
        (SIDE, SIDE),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    ).astype(np.float32)
    before_f, now_f = before.astype(np.float32), now.astype(np.float32)
    face_before = before_f[g.face]
    contrast = float(face_before.std()) + 1.0
    moved = float(np.mean(np.abs(warped[g.face] - face_before))) / contrast
    raw_face = float(np.mean(np.abs(now_f[g.face] - face_before))) / contrast
    raw_ring = float(np.mean(np.abs(now_f[g.ring] - before_f[g.ring]))) / contrast
    values = np.array(
        [
            rms(face_flow) + FLOW_EPS,
            rms(ring_flow) + FLOW_EPS,
            rms(residual_all) + FLOW_EPS,
            rms(residual_face) + FLOW_EPS,
            rms(relative) + FLOW_EPS,
            moved + CHANGE_EPS,
            raw_face + CHANGE_EPS,
            raw_ring + CHANGE_EPS,
        ]
    )
    return np.log(values).astype(np.float32)
