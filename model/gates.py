"""The capture-quality gates' vocabulary and settings: reason codes with their hints,
``GateConfig``, a clip's ``QualityVerdict`` and the rule that turns it into an outcome.

The measures themselves are in model/quality.py. This module imports neither OpenCV nor
NumPy: the server's settings use it before `liveness serve` has set OpenCV's limits.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal, get_args

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
    min_sharpness: float = 30.0  # variance of the Laplacian of the 64 px face patch
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


def outcome(model_label: str, verdict: QualityVerdict, gates: GateConfig) -> str:
    """The result's label: the model's, unless an enforced gate fails (static or looped
    input: ``input_policy``; any other reason: inconclusive)."""
    if gates.mode != "enforce" or verdict.ok:
        return model_label
    if verdict.input_failure:
        return gates.input_policy
    return INCONCLUSIVE
