"""Capture-quality gates: per-frame measures of the face, and the clip's verdict on them.

A liveness score means something only for a capture it can judge. Before a score becomes
a verdict, the frames are checked for what makes a capture unjudgeable (no face, several
faces, a face too small, too dark, too bright, flat, blurred, turned away) and for input
no live camera produces (``static_input``: every frame the same; ``looped_input``: the same
short run of frames over and over). Each check has a setting (``GateConfig``) and a reason
code; ``REASONS`` holds the hint a person in front of the camera can act on (both in
model/gates.py, with the outcome rule).

Per frame, ``QualityMeter.measure`` reads what the pipeline already has: the tracked box,
the detector's face count and the size of the largest other face, its keypoints, and the
un-magnified crop. Everything is computed on small grey copies (a 64 px face patch, a
32 px thumbnail of the crop), so the gates cost a fraction of the face crop itself.
``assess`` turns a run of ``FrameQuality`` into a ``QualityVerdict``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from model.gates import (  # noqa: F401  (re-exported: the gates' names, one import away)
    FRAME_REASONS,
    INCONCLUSIVE,
    INPUT_REASONS,
    REASONS,
    GateConfig,
    QualityVerdict,
    outcome,
)

PATCH = 64  # side of the grey face patch the light and sharpness measures use, px
THUMB = 32  # side of the grey crop thumbnail the loop measure compares, px
# the frame-to-frame change is read on the grey crop at most this large, px: the static
# floor was measured at it (the default model's 112 px crops), and a 224 px crop costs
# four times as much to compare for no better reading
CHANGE = 112


@dataclass(frozen=True, slots=True)  # one per frame of a stream: kept small
class FrameQuality:
    """The measures of one frame (None where the frame has no face or no keypoints)."""

    face: bool
    faces: int = -1  # faces in the last detector pass
    other_face: float = 0.0  # the largest other face's side / the tracked face's side
    face_px: float | None = None  # tracked box side, frame px
    brightness: float | None = None
    contrast: float | None = None
    sharpness: float | None = None
    yaw: float | None = None
    roll: float | None = None
    change: float | None = None  # mean |grey change| of the crop since the last face frame
    # (None when the box moved in between)
    thumb_change: float | None = None  # the same on the 32 px thumbnails, box moved or not
    # how closely this frame and its predecessor match an earlier pair 2 or more frames
    # back (mean |grey difference| of the thumbnails, the worse of the two; None: too few)
    loop_match: float | None = None

    def reasons(self, gates: GateConfig) -> list[str]:
        """The frame reasons this frame fails, in FRAME_REASONS order."""
        if not self.face:
            return ["no_face"]
        out = []
        if self.other_face >= gates.max_other_face:
            out.append("multiple_faces")
        if self.face_px is not None and self.face_px < gates.min_face_px:
            out.append("face_too_small")
        if self.brightness is not None and self.brightness < gates.min_brightness:
            out.append("too_dark")
        if self.brightness is not None and self.brightness > gates.max_brightness:
            out.append("too_bright")
        # one cause, one hint: a face too dark or too bright is flat and soft too, and a
        # flat face has no edges to be sharp with; the first cause is the one to fix
        if out[-1:] in (["too_dark"], ["too_bright"]):
            pass
        elif self.contrast is not None and self.contrast < gates.min_contrast:
            out.append("low_contrast")
        elif self.sharpness is not None and self.sharpness < gates.min_sharpness:
            out.append("blurred")
        yaw_off = self.yaw is not None and abs(self.yaw) > gates.max_yaw
        if yaw_off or (self.roll is not None and abs(self.roll) > gates.max_roll):
            out.append("pose_out_of_range")
        return out


def face_patch(grey: np.ndarray, face: Sequence[float]) -> np.ndarray:
    """The grey face region ``face`` ([x, y, w, h] in crop pixels, clipped to the crop),
    PATCH x PATCH, float32."""
    size = grey.shape[0]
    x, y, w, h = face
    x0, y0 = min(max(int(round(x)), 0), size - 2), min(max(int(round(y)), 0), size - 2)
    x1 = max(min(int(round(x + w)), size), x0 + 2)
    y1 = max(min(int(round(y + h)), size), y0 + 2)
    region = grey[y0:y1, x0:x1]
    return cv2.resize(region, (PATCH, PATCH), interpolation=cv2.INTER_AREA).astype(np.float32)


def centred_face(size: int, margin: float) -> tuple[float, float, float, float]:
    """The face of a crop centred on it with ``margin`` on each side, in crop pixels."""
    inner = size / (1 + 2 * margin)
    a = (size - inner) / 2
    return (a, a, inner, inner)


def pose(keypoints: np.ndarray | None) -> tuple[float | None, float | None]:
    """(yaw, roll) from BlazeFace's six keypoints (right eye, left eye, nose tip, ...):
    yaw as the nose tip's offset from the eyes' midpoint along the eye line, in eye
    distances (0 facing the camera); roll as the eye line's tilt, degrees."""
    if keypoints is None or len(keypoints) < 3:
        return None, None
    right, left, nose = (np.asarray(p, np.float64) for p in keypoints[:3])
    axis = left - right
    dist = float(np.hypot(*axis))
    if dist < 1e-6:
        return None, None
    yaw = float(np.dot(nose - (left + right) / 2, axis) / dist**2)
    roll = float(np.degrees(np.arctan2(axis[1], axis[0])))
    if roll > 90:  # a left eye to the image's left: the face is mirrored or upside down
        roll -= 180
    elif roll < -90:
        roll += 180
    return yaw, roll


class QualityMeter:
    """Per-stream state of the gates' measures: the previous crop and recent thumbnails."""

    def __init__(self, margin: float, period: int = GateConfig.loop_max_period) -> None:
        self.margin = margin
        self.period = period
        self.reset()

    def reset(self) -> None:
        self._last: np.ndarray | None = None  # the previous face frame's grey crop
        self._last_box: tuple[float, ...] | None = None
        # the last ``period`` thumbnails in a ring, and the last frame's distance to each
        # by lag (index = lag; inf where none): that frame's row is this frame's "before"
        self._ring = np.zeros((self.period, THUMB, THUMB), np.float32)
        self._count = 0
        self._prev = np.full(self.period + 1, np.inf, np.float32)

    def measure(
        self,
        crop: np.ndarray | None,
        box: Sequence[float] | None,
        faces: int,
        other_face: float = 0.0,
        keypoints: np.ndarray | None = None,
        face: Sequence[float] | None = None,
    ) -> FrameQuality:
        """The measures of one frame: ``crop`` is its un-magnified face crop (None: no face),
        ``face`` the face box inside it in crop pixels (default: centred, with the margin)."""
        if crop is None:
            return FrameQuality(face=False, faces=faces)
        grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        face = face or centred_face(grey.shape[0], self.margin)
        patch = face_patch(grey, face)
        if grey.shape[0] > CHANGE:  # the change is read at one scale whatever the network's
            grey = cv2.resize(grey, (CHANGE, CHANGE), interpolation=cv2.INTER_AREA)
        mean, std = (float(v[0, 0]) for v in cv2.meanStdDev(patch))
        sharp = float(cv2.meanStdDev(cv2.Laplacian(patch, cv2.CV_32F))[1][0, 0]) ** 2
        # the crop's change where the box stayed put (between detector passes and inside
        # the tracker's dead-band it does): a moved box changes the crop, not the scene
        box = tuple(box or ())
        change = None
        if self._last is not None and self._last_box == box and self._last.shape == grey.shape:
            change = float(cv2.norm(grey, self._last, cv2.NORM_L1)) / grey.size
        self._last, self._last_box = grey, box
        thumb = cv2.resize(grey, (THUMB, THUMB), interpolation=cv2.INTER_AREA).astype(np.float32)
        thumb_change, loop_match = self._against_the_past(thumb)
        yaw, roll = pose(keypoints)
        return FrameQuality(
            face=True,
            faces=faces,
            other_face=other_face,
            face_px=float(max(box[2], box[3])),
            brightness=mean,
            contrast=std,
            sharpness=sharp,
            yaw=yaw,
            roll=roll,
            change=change,
            thumb_change=thumb_change,
            loop_match=loop_match,
        )

    def _against_the_past(self, thumb: np.ndarray) -> tuple[float | None, float | None]:
        """(the change since the last frame, the loop match): how well this frame and the
        one before it match a frame and its predecessor ``p`` >= 2 frames back, for the best
        ``p`` (a repeated change matches closely, which a live camera never produces)."""
        n = min(self._count, self.period)
        by_lag = np.full(self.period + 1, np.inf, np.float32)
        if n:
            slots = np.arange(n)
            lags = (self._count - 1 - slots) % self.period + 1  # slot -> frames back
            by_lag[lags] = np.abs(self._ring[:n] - thumb).mean(axis=(1, 2))
        self._ring[self._count % self.period] = thumb
        self._count += 1
        both = np.maximum(by_lag[2:], self._prev[2:])  # this frame at lag p, the last at p
        self._prev = by_lag
        change = float(by_lag[1]) if n else None
        best = float(both.min()) if n >= 3 else None
        return change, best if best is not None and np.isfinite(best) else None


def _repeats(f: FrameQuality, gates: GateConfig) -> bool:
    """A changing frame that replays an earlier change (see GateConfig's loop settings)."""
    if f.loop_match is None or f.thumb_change is None:
        return False
    if f.thumb_change >= gates.loop_min_change:
        return f.loop_match <= max(gates.loop_exact, gates.loop_ratio * f.thumb_change)
    return f.thumb_change >= gates.loop_exact_change and f.loop_match <= gates.loop_exact


def assess(
    frames: Sequence[FrameQuality],
    gates: GateConfig,
    reasons_of: Sequence[list[str]] | None = None,
) -> QualityVerdict:
    """The clip's gate reasons: static or looped input first, then the frame reasons
    (named when at least ``reason_min_share`` of the face frames have them) if fewer than
    ``min_usable_share`` of the face frames are usable. Frames without a face do not
    count: a capture may begin before the person is in view, and a clip with too few face
    frames to score is refused before the gates (no_face, too_few_frames). ``reasons_of``:
    each frame's ``reasons(gates)``, when the caller keeps them (a stream's windows)."""
    n = len(frames)
    if reasons_of is None:
        reasons_of = [f.reasons(gates) for f in frames]
    faces = [i for i, f in enumerate(frames) if f.face]
    if not faces:
        return QualityVerdict([], {"no_face": 1.0} if n else {}, n, 0)
    counts = dict.fromkeys(FRAME_REASONS, 0)
    usable = 0
    for i in faces:
        found = reasons_of[i]
        usable += not found
        for r in found:
            counts[r] += 1
    shares = {r: c / len(faces) for r, c in counts.items() if c}
    if n > len(faces):
        shares["no_face"] = 1 - len(faces) / n  # of all the frames: a hint, never a reason
    reasons: list[str] = []
    changes = [f.change for f in frames if f.change is not None]
    moving = [f for f in frames if (f.thumb_change or 0.0) >= gates.loop_exact_change]
    repeats = sum(_repeats(f, gates) for f in moving)
    still = sum(c <= gates.static_floor for c in changes) / len(changes) if changes else 0.0
    if changes:
        shares["static_input"] = still
    if moving:
        shares["looped_input"] = repeats / len(moving)
    if len(changes) >= gates.min_pairs and still >= gates.static_quantile:
        reasons.append("static_input")
    elif len(moving) >= gates.min_pairs and repeats / len(moving) >= gates.loop_min_share:
        reasons.append("looped_input")
    if usable / len(faces) < gates.min_usable_share:
        named = sorted(
            (
                r
                for r in FRAME_REASONS
                if r != "no_face" and shares.get(r, 0) >= gates.reason_min_share
            ),
            key=lambda r: -shares[r],
        )
        reasons += named or ["too_few_usable_frames"]
    return QualityVerdict(reasons, {r: round(s, 4) for r, s in shares.items()}, n, usable)
