"""Capture-quality gates: per-frame measures of the face, and the clip's verdict on them.

A liveness score means something only for a capture it can judge. Before a score becomes
a verdict, the frames are checked for what makes a capture unjudgeable (no face, several
faces, a face too small, too dark, too bright, flat, blurred, turned away) and for input
no live camera produces (``static_input``: every frame the same; ``looped_input``: the same
short run of frames over and over). Each check has a setting (``GateConfig``) and a reason
code; ``REASONS`` holds the hint a person in front of the camera can act on.

Per frame, ``QualityMeter.measure`` reads what the pipeline already has: the tracked box,
the detector's face count and the size of the largest other face, its keypoints, and the
un-magnified crop. Everything is computed on small grey copies (a 64 px face patch, a
32 px thumbnail of the crop), so the gates cost a fraction of the face crop itself.
``assess`` turns a run of ``FrameQuality`` into a ``QualityVerdict``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Literal, get_args

import cv2
import numpy as np

# reason code -> what the person in front of the camera can do about it
REASONS: dict[str, str] = {
    "no_face": "No face in view: face the camera.",
    "multiple_faces": "More than one face in view: make sure only one person is in the picture.",
    "face_too_small": "Face too small: move closer to the camera.",
    "too_dark": "Too dark: move to a brighter place or turn on a light.",
    "too_bright": "Too bright: avoid direct sunlight or a bright light behind or on the face.",
    "low_contrast": "The face is washed out: improve the lighting on your face.",
    "blurred": "The picture is blurred: hold the camera still and keep the lens clean.",
    "pose_out_of_range": "Look straight at the camera.",
    "too_few_usable_frames": "Too few usable frames: keep your face in view, still and well "
    "lit, for the whole capture.",
    "static_input": "The video does not change at all from frame to frame: use a live camera.",
    "looped_input": "The video repeats the same frames over and over: use a live camera.",
}
FRAME_REASONS = (
    "no_face",
    "multiple_faces",
    "face_too_small",
    "too_dark",
    "too_bright",
    "low_contrast",
    "blurred",
    "pose_out_of_range",
)
INPUT_REASONS = ("static_input", "looped_input")  # input no live camera produces
INCONCLUSIVE = "inconclusive"  # the third outcome, beside model/labels.py's two
# enforce: a failing gate decides the outcome; observe: reasons are reported, the outcome
# is the model's (a shadow period); off: no gate runs
GateMode = Literal["enforce", "observe", "off"]
InputPolicy = Literal["spoof", "inconclusive"]  # the outcome of static or looped input

PATCH = 64  # side of the grey face patch the light and sharpness measures use, px
THUMB = 32  # side of the grey crop thumbnail the loop measure compares, px


@dataclass(frozen=True)
class GateConfig:
    """The gates' settings (the server's ``gate_*`` settings; docs/quality.md)."""

    mode: GateMode = "enforce"
    input_policy: InputPolicy = "spoof"

    min_face_px: float = 44.0  # tracked face box side below this: face_too_small
    max_other_face: float = 0.6  # another face at least this fraction of the face's side
    min_brightness: float = 20.0  # mean grey level of the face, 0-255
    max_brightness: float = 230.0
    min_contrast: float = 12.0  # grey-level standard deviation of the face
    min_sharpness: float = 15.0  # variance of the Laplacian of the 64 px face patch
    max_yaw: float = 1.0  # nose offset from the eyes' midpoint, in eye distances
    max_roll: float = 45.0  # tilt of the eye line, degrees
    min_usable_share: float = 0.5  # frames with no frame reason; fewer: inconclusive
    reason_min_share: float = 0.25  # a frame reason is named when this share of frames has it
    # static: the static_quantile of the crop's frame-to-frame change (mean |grey change|,
    # over pairs where the box stayed put) at or below static_floor: hardly a pair changes.
    # Repeated and re-encoded stills: 90th percentile 0-0.11; the stillest real clip: 0.19.
    # Duplicated frames (a slow camera read at a higher rate) change nothing and count as
    # still pairs, so up to 90 % of them pass (docs/quality.md)
    static_floor: float = 0.12
    static_quantile: float = 0.9
    loop_max_period: int = 48  # longest repeating run looked for, frames
    # looped: a frame that changed (its 32 px thumbnail by loop_min_change or more) matches
    # an earlier frame and its predecessor within loop_ratio of that change, or a frame that
    # changed by loop_exact_change or more matches within loop_exact (an exact replay).
    # Real clips: never under 0.42 of the change; replayed loops: 0-0.15
    loop_min_change: float = 0.5
    loop_ratio: float = 0.3
    loop_exact: float = 0.02
    loop_exact_change: float = 0.1
    loop_min_share: float = 0.3  # this share of changing frames repeating: looped input
    min_pairs: int = 8  # frame pairs needed before static or looped input is decided

    def __post_init__(self) -> None:
        if self.mode not in get_args(GateMode):
            raise ValueError(f"gate mode must be one of {get_args(GateMode)}, got {self.mode!r}")
        if self.input_policy not in get_args(InputPolicy):
            raise ValueError(
                f"gate input_policy must be one of {get_args(InputPolicy)}, got "
                f"{self.input_policy!r}"
            )
        for f in fields(self):
            if f.name in ("mode", "input_policy"):
                continue
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ValueError(f"gate setting {f.name} must be a number >= 0, got {value!r}")
        for name in ("min_usable_share", "reason_min_share", "static_quantile", "loop_min_share"):
            if getattr(self, name) > 1:
                raise ValueError(
                    f"gate setting {name} is a share in [0, 1], got {getattr(self, name)}"
                )
        if self.min_brightness >= self.max_brightness:
            raise ValueError("gate setting min_brightness must be below max_brightness")
        if self.loop_max_period < 2 or self.min_pairs < 1:
            raise ValueError("gate settings: loop_max_period >= 2 and min_pairs >= 1")


@dataclass(frozen=True)
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
        if self.contrast is not None and self.contrast < gates.min_contrast:
            out.append("low_contrast")
        if self.sharpness is not None and self.sharpness < gates.min_sharpness:
            out.append("blurred")
        yaw_off = self.yaw is not None and abs(self.yaw) > gates.max_yaw
        if yaw_off or (self.roll is not None and abs(self.roll) > gates.max_roll):
            out.append("pose_out_of_range")
        return out


def face_patch(crop: np.ndarray, margin: float) -> np.ndarray:
    """The grey face region (the crop without its margin), PATCH x PATCH, float32."""
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    side = grey.shape[0]
    inner = max(2, round(side / (1 + 2 * margin)))
    a = (side - inner) // 2
    face = grey[a : a + inner, a : a + inner]
    return cv2.resize(face, (PATCH, PATCH), interpolation=cv2.INTER_AREA).astype(np.float32)


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
        self._thumbs: deque[np.ndarray] = deque(maxlen=self.period + 1)

    def measure(
        self,
        crop: np.ndarray | None,
        box: Sequence[float] | None,
        faces: int,
        other_face: float = 0.0,
        keypoints: np.ndarray | None = None,
    ) -> FrameQuality:
        """The measures of one frame: ``crop`` is its un-magnified face crop (None: no face)."""
        if crop is None:
            return FrameQuality(face=False, faces=faces)
        grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        patch = face_patch(grey, self.margin)
        sharp = float(cv2.Laplacian(patch, cv2.CV_32F).var())
        # the crop's change where the box stayed put (between detector passes and inside
        # the tracker's dead-band it does): a moved box changes the crop, not the scene
        box = tuple(box or ())
        change = None
        if self._last is not None and self._last_box == box and self._last.shape == grey.shape:
            change = float(cv2.norm(grey, self._last, cv2.NORM_L1)) / grey.size
        self._last, self._last_box = grey, box
        thumb = cv2.resize(grey, (THUMB, THUMB), interpolation=cv2.INTER_AREA).astype(np.float32)
        loop_match = self._loop_match(thumb) if len(self._thumbs) >= 3 else None
        thumb_change = None
        if self._thumbs:
            thumb_change = float(np.abs(thumb - self._thumbs[-1]).mean())
        self._thumbs.append(thumb)
        yaw, roll = pose(keypoints)
        return FrameQuality(
            face=True,
            faces=faces,
            other_face=other_face,
            face_px=float(max(box[2], box[3])),
            brightness=float(patch.mean()),
            contrast=float(patch.std()),
            sharpness=sharp,
            yaw=yaw,
            roll=roll,
            change=change,
            thumb_change=thumb_change,
            loop_match=loop_match,
        )

    def _loop_match(self, thumb: np.ndarray) -> float:
        """How well this frame and the one before it match a frame and its predecessor
        ``p`` >= 2 frames back (the best ``p``): a repeated change matches closely, which a
        live camera never produces."""
        past = np.stack(self._thumbs)  # oldest first; past[-1] is the previous frame
        d_now = np.abs(past[1:-1] - thumb).mean(axis=(1, 2))  # frame i against i-p, p >= 2
        d_prev = np.abs(past[:-2] - past[-1]).mean(axis=(1, 2))  # frame i-1 against i-1-p
        return float(np.maximum(d_now, d_prev).min())


@dataclass(frozen=True)
class QualityVerdict:
    """The gates' reading of a clip (or a stream window)."""

    reasons: list[str]  # reason codes, most frequent first; empty: the capture is judgeable
    shares: dict[str, float] = field(default_factory=dict)  # reason -> share of frames
    frames: int = 0  # frames assessed
    usable: int = 0  # frames without a frame reason

    @property
    def input_failure(self) -> bool:
        """Static or looped input: no live camera produces it."""
        return any(r in INPUT_REASONS for r in self.reasons)

    @property
    def ok(self) -> bool:
        return not self.reasons


def _repeats(f: FrameQuality, gates: GateConfig) -> bool:
    """A changing frame that replays an earlier change (see GateConfig's loop settings)."""
    if f.loop_match is None or f.thumb_change is None:
        return False
    if f.thumb_change >= gates.loop_min_change:
        return f.loop_match <= max(gates.loop_exact, gates.loop_ratio * f.thumb_change)
    return f.thumb_change >= gates.loop_exact_change and f.loop_match <= gates.loop_exact


def assess(frames: Sequence[FrameQuality], gates: GateConfig) -> QualityVerdict:
    """The clip's gate reasons: static or looped input first, then the frame reasons
    (named when at least ``reason_min_share`` of the frames have them) if fewer than
    ``min_usable_share`` of the frames are usable."""
    n = len(frames)
    if n == 0:
        return QualityVerdict([], {}, 0, 0)
    counts = dict.fromkeys(FRAME_REASONS, 0)
    usable = 0
    for f in frames:
        found = f.reasons(gates)
        usable += not found
        for r in found:
            counts[r] += 1
    shares = {r: c / n for r, c in counts.items() if c}
    reasons: list[str] = []
    changes = [f.change for f in frames if f.change is not None]
    moving = [f for f in frames if (f.thumb_change or 0.0) >= gates.loop_exact_change]
    repeats = sum(_repeats(f, gates) for f in moving)
    if changes:
        shares["static_input"] = sum(c <= gates.static_floor for c in changes) / len(changes)
    if moving:
        shares["looped_input"] = repeats / len(moving)
    if (
        len(changes) >= gates.min_pairs
        and float(np.quantile(changes, gates.static_quantile)) <= gates.static_floor
    ):
        reasons.append("static_input")
    elif len(moving) >= gates.min_pairs and repeats / len(moving) >= gates.loop_min_share:
        reasons.append("looped_input")
    if usable / n < gates.min_usable_share:
        named = sorted(
            (r for r in FRAME_REASONS if shares.get(r, 0) >= gates.reason_min_share),
            key=lambda r: -shares[r],
        )
        reasons += named or ["too_few_usable_frames"]
    return QualityVerdict(reasons, {r: round(s, 4) for r, s in shares.items()}, n, usable)


def outcome(model_label: str, verdict: QualityVerdict, gates: GateConfig) -> str:
    """The result's label: the model's, unless an enforced gate fails (static or looped
    input: ``input_policy``; any other reason: inconclusive)."""
    if gates.mode != "enforce" or verdict.ok:
        return model_label
    if verdict.input_failure:
        return gates.input_policy
    return INCONCLUSIVE
