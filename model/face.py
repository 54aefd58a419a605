"""Face tracking and the extended square crop (paper §4.1).

The network sees a square crop larger than the face (``CropConfig.margin`` on each
side): relative motion between face and background is a liveness cue, so background
must be in the crop. The crop box must also stay still: the magnifier downstream
amplifies any crop jitter as if it were motion. So detections are smoothed (EMA plus a
dead-band that swallows detector noise) and between detector passes the box stays put.

The detectors themselves are in model/detectors.py (re-exported here).

Frames are uint8 BGR ``[H, W, 3]``; boxes are in full-frame pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from model.config import CROP_BORDERS, CropConfig
from model.detectors import (  # noqa: F401  (re-exported: callers import them from here)
    BLAZEFACE_MIN_SCORE,
    DETECT_MIN_FACE_PX,
    HAAR_CASCADE,
    HAAR_WINDOW_PX,
    YUNET_OUTPUTS,
    DetectorModelError,
    FaceBox,
    FaceDetector,
    FrameError,
    HaarDetector,
    YuNetDetector,
    as_bgr_frame,
    make_detector,
)

# a detection this close to the track moves nothing (fraction of the track's side): Haar
# boxes jitter by ~1 % (centre) and ~2 % (size) between frames of a still face, p90 2-5 %
DEADBAND_CENTRE = 0.03
DEADBAND_SIZE = 0.05
TRACK_MIN_IOU = 0.1  # a detection overlapping the track at least this much continues it
# while a face is tracked, passes look only for faces at least this fraction of its side
# (Haar cost grows with (frame / smallest face)^2; a far smaller face is a bystander)
TRACKED_MIN_FACE = 0.5
# ...and only around it: the box grown by this many sides on each side (a 3x square),
# which costs a fraction of a full-frame pass; every FULL_PASS_EVERY-th pass on a held
# track still searches the whole frame, so bystanders are counted
ROI_MARGIN = 1.0
FULL_PASS_EVERY = 6
OTHER_FACE_MIN_SCORE = BLAZEFACE_MIN_SCORE  # a second face must be a confident detection


@dataclass(frozen=True)
class CropResult:
    box: FaceBox | None  # smoothed tracked face box, None = no face
    crop: np.ndarray | None  # uint8 [S, S, 3] BGR, S = config.input_size; None = no face
    new_track: bool  # True on the first frame of a new track (magnifier resets)
    faces_detected: int  # faces seen by the last detector pass (-1 if none ran yet)
    detected: bool  # whether the detector ran on this frame
    other_face: float = 0.0  # largest other face's side / the tracked face's (0: none)
    keypoints: np.ndarray | None = None  # the tracked face's last detected keypoints [K, 2]


@dataclass(frozen=True)
class TrackUpdate:
    box: FaceBox | None  # the tracked box after this frame, None = no face
    new_track: bool  # this frame started a track
    faces_detected: int  # faces in the last detector pass, -1 before the first
    detected: bool  # the detector ran on this frame
    other_face: float = 0.0  # largest other face's side / the tracked face's (0: none)
    keypoints: np.ndarray | None = None  # the tracked face's last keypoints, frame px


class FaceTracker:
    """Follows one face: detection every `detect_every` frames, a still box in between.

    The detector runs on every frame while no face is tracked and after a missed pass;
    passes on a held track skip faces under TRACKED_MIN_FACE of its side and search only
    a region around it (ROI_MARGIN), except every FULL_PASS_EVERY-th, which searches the
    whole frame; passes without a track search everything down to the detector's minimum.
    A pass whose faces do not overlap the track counts as a miss; after more than
    `max_missed` consecutive missed frames the track is lost, and the largest face (if
    any) starts a new one.
    """

    def __init__(self, config: CropConfig, detector: FaceDetector) -> None:
        if config.detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {config.detect_every}")
        if not 0 <= config.smoothing < 1:
            raise ValueError(f"smoothing must be in [0, 1), got {config.smoothing}")
        if config.max_missed < 0:
            raise ValueError(f"max_missed must be >= 0, got {config.max_missed}")
        self.config = config
        self.detector = detector
        self.reset()

    def reset(self) -> None:
        self._box: FaceBox | None = None
        self._missed = 0  # consecutive frames whose detector pass missed the track
        self._since_detect = 0  # frames since the last detector pass
        self._tracked_passes = 0  # detector passes on the held track
        self._frame_faces = -1  # faces in the last whole-frame pass
        self._faces = -1
        self._frame_other = 0.0  # largest other face / track side, last whole-frame pass
        self._other = 0.0
        self._keypoints: np.ndarray | None = None

    def _state(self, new_track: bool, detected: bool) -> TrackUpdate:
        if self._box is None:
            return TrackUpdate(None, new_track, self._faces, detected)
        return TrackUpdate(
            self._box, new_track, self._faces, detected, self._other, self._keypoints
        )

    def update(self, frame: np.ndarray) -> TrackUpdate:
        due = self._box is None or self._missed > 0
        if not due and self._since_detect < self.config.detect_every:
            self._since_detect += 1
            return self._state(False, False)
        tracked = self._box if self._missed == 0 else None
        # while a track is held, weaker detections may continue it (detector hysteresis)
        held = self._box is not None
        if tracked is None:
            full, boxes = True, self.detector.detect(frame, held=held)
            points = _keypoints(self.detector, boxes)
        else:
            min_face = TRACKED_MIN_FACE * max(tracked.w, tracked.h)
            full = self._tracked_passes % FULL_PASS_EVERY == FULL_PASS_EVERY - 1
            self._tracked_passes += 1
            if full:
                boxes = self.detector.detect(frame, min_face=min_face, held=True)
                points = _keypoints(self.detector, boxes)
            else:
                boxes, points = _detect_around(self.detector, frame, tracked, min_face)
        self._since_detect = 1
        new_track = False
        match = self._match(boxes) if self._box is not None else None
        if full:
            self._frame_faces = len(boxes)
        # a pass around a face it still finds cannot see bystanders: the last full pass
        # counts them; a pass that lost the face reports only what it saw
        found = full or match is not None
        self._faces = max(len(boxes), self._frame_faces) if found else len(boxes)
        if match is not None:
            self._box, self._missed = self._smooth(match), 0
        elif self._box is not None:
            self._missed += 1
            if self._missed > self.config.max_missed:
                self._box, self._missed = None, 0
        if self._box is None and boxes and not held:  # a new track needs a confident face
            self._box, new_track, match = boxes[0], True, boxes[0]
        if match is not None:
            self._note_faces(boxes, points, match, full)
        return self._state(new_track, True)

    def _note_faces(
        self, boxes: list[FaceBox], points: list[np.ndarray | None], match: FaceBox, full: bool
    ) -> None:
        """Keep the tracked face's keypoints and how large the largest other face is."""
        i = next(k for k, b in enumerate(boxes) if b is match)
        self._keypoints = points[i]
        side = max(match.w, match.h)
        # another face counts only where the detector is confident of it (a held track
        # lets weaker detections continue it, and a blurred poster can reach those)
        scores = getattr(self.detector, "last_scores", None)
        sure = (
            [True] * len(boxes)
            if scores is None or len(scores) != len(boxes)
            else [s >= OTHER_FACE_MIN_SCORE for s in scores]
        )
        others = [max(b.w, b.h) / side for k, b in enumerate(boxes) if k != i and sure[k]]
        seen = max(others, default=0.0)
        if full:
            self._frame_other = seen
        self._other = seen if full else max(seen, self._frame_other)

    def _match(self, boxes: list[FaceBox]) -> FaceBox | None:
        """The detection overlapping the track most, if any overlaps enough."""
        assert self._box is not None
        scored = [(self._box.iou(b), b) for b in boxes]
        best = max(scored, key=lambda s: s[0], default=(0.0, None))
        return best[1] if best[0] >= TRACK_MIN_IOU else None

    def _smooth(self, det: FaceBox) -> FaceBox:
        """EMA of centre and size; components within the dead-band do not move."""
        cur, s = self._box, self.config.smoothing
        assert cur is not None
        side = max(cur.w, cur.h)

        def step(old: float, new: float, band: float) -> float:
            return old if abs(new - old) <= band * side else s * old + (1 - s) * new

        cx = step(cur.x + cur.w / 2, det.x + det.w / 2, DEADBAND_CENTRE)
        cy = step(cur.y + cur.h / 2, det.y + det.h / 2, DEADBAND_CENTRE)
        w, h = step(cur.w, det.w, DEADBAND_SIZE), step(cur.h, det.h, DEADBAND_SIZE)
        return FaceBox(cx - w / 2, cy - h / 2, w, h)


def _keypoints(detector: FaceDetector, boxes: list[FaceBox]) -> list[np.ndarray | None]:
    """The keypoints of the detector's last boxes (BlazeFace keeps them), else Nones."""
    points = getattr(detector, "last_keypoints", None)
    if points is None or len(points) != len(boxes):
        return [None] * len(boxes)
    return list(points)


def _detect_around(
    detector: FaceDetector, frame: np.ndarray, box: FaceBox, min_face: float
) -> tuple[list[FaceBox], list[np.ndarray | None]]:
    """Detect in the region around ``box`` (ROI_MARGIN sides on each side): the boxes and
    their keypoints, in frame pixels."""
    height, width = frame.shape[:2]
    grow = ROI_MARGIN * max(box.w, box.h)
    x0, y0 = max(0, int(box.x - grow)), max(0, int(box.y - grow))
    x1 = min(width, int(np.ceil(box.x + box.w + grow)))
    y1 = min(height, int(np.ceil(box.y + box.h + grow)))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return [], []
    found = detector.detect(frame[y0:y1, x0:x1], min_face=min_face, held=True)
    points = [None if k is None else k + (x0, y0) for k in _keypoints(detector, found)]
    return [FaceBox(b.x + x0, b.y + y0, b.w, b.h) for b in found], points


def crop_square(box: FaceBox, width: int, height: int, config: CropConfig) -> tuple[int, int, int]:
    """(x0, y0, side): the square of the frame that ``crop_face`` takes around ``box``,
    in frame pixels (it may reach outside the frame with the "replicate" border)."""
    if not (box.w > 0 and box.h > 0):
        raise ValueError(f"face box must have positive size, got {box}")
    side = max(1, round((1 + 2 * config.margin) * max(box.w, box.h)))
    x0 = round(box.x + box.w / 2 - side / 2)
    y0 = round(box.y + box.h / 2 - side / 2)
    if config.border == "shift":  # inside the frame: shrunk to fit, then moved in
        if not (box.x < width and box.y < height and box.x + box.w > 0 and box.y + box.h > 0):
            raise ValueError(f"crop of {box} lies outside the {width}x{height} frame")
        fit = min(side, width, height)
        x0 = min(max(round(box.x + box.w / 2 - fit / 2), 0), width - fit)
        y0 = min(max(round(box.y + box.h / 2 - fit / 2), 0), height - fit)
        side = fit
    return x0, y0, side


def face_in_crop(
    box: FaceBox, width: int, height: int, config: CropConfig
) -> tuple[float, float, float, float]:
    """The face box inside its crop, in crop pixels [x, y, w, h] (the crop's centre with
    the "replicate" border; off centre near an edge with "shift")."""
    x0, y0, side = crop_square(box, width, height, config)
    scale = config.input_size / side
    return ((box.x - x0) * scale, (box.y - y0) * scale, box.w * scale, box.h * scale)


def crop_face(frame: np.ndarray, box: FaceBox, config: CropConfig) -> np.ndarray:
    """The extended square crop around `box`, resized to [S, S, 3], S = config.input_size.

    Side (1 + 2 * margin) * max(w, h), centred on the box and snapped to whole pixels.
    Parts outside the frame repeat the nearest edge pixel (border replication): unlike a
    constant fill, no hard artificial edge appears in the network input. With
    ``config.border == "shift"`` the square is instead moved inside the frame (and shrunk
    to its short side if larger), as Silent-Face crops: the face is then off centre near
    an edge, and every pixel is the frame's. Only the part
    inside the frame is resized (to its place in the output, in whole pixels), and the
    border is replicated after, at the output's size: the padded pixels cost nothing.
    """
    frame = as_bgr_frame(frame)
    height, width = frame.shape[:2]
    x0, y0, side = crop_square(box, width, height, config)
    x1, y1 = x0 + side, y0 + side
    if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
        raise ValueError(f"crop of {box} lies outside the {width}x{height} frame")
    region = frame[max(y0, 0) : min(y1, height), max(x0, 0) : min(x1, width)]
    pads = (max(0, -y0), max(0, y1 - height), max(0, -x0), max(0, x1 - width))
    size = config.input_size
    if side == size:
        if any(pads):
            return cv2.copyMakeBorder(region, *pads, cv2.BORDER_REPLICATE)
        return region.copy()  # never a view into the caller's frame
    scale = size / side
    top, left = (min(size - 1, round(p * scale)) for p in (pads[0], pads[2]))
    bottom = max(top + 1, size - round(pads[1] * scale))
    right = max(left + 1, size - round(pads[3] * scale))
    inner = _resize(region, (right - left, bottom - top), shrink=side > size)
    if top or left or bottom < size or right < size:
        inner = cv2.copyMakeBorder(
            inner, top, size - bottom, left, size - right, cv2.BORDER_REPLICATE
        )
    return inner


def _resize(region: np.ndarray, size: tuple[int, int], shrink: bool) -> np.ndarray:
    """Area averaging down, bilinear up. A shrink by k >= 2 is done as a bilinear step
    to k x the size, then area averaging by the whole factor k, OpenCV's fast path: 2-3x
    cheaper than area averaging by a fractional factor, and within 0.1-0.3 grey levels
    of it on average (tests/model/test_face.py)."""
    if not shrink:
        return cv2.resize(region, size, interpolation=cv2.INTER_LINEAR)
    k = min(region.shape[1] // size[0], region.shape[0] // size[1])
    if k >= 2:
        mid = (size[0] * k, size[1] * k)
        if mid != (region.shape[1], region.shape[0]):
            region = cv2.resize(region, mid, interpolation=cv2.INTER_LINEAR)
    return cv2.resize(region, size, interpolation=cv2.INTER_AREA)


class FaceCropper:
    """Per-stream face tracking and extended crop: one instance per video or stream.

    A change of frame size mid-stream restarts tracking (the old box means nothing).
    """

    def __init__(self, config: CropConfig, detector: FaceDetector | None = None) -> None:
        if config.border not in CROP_BORDERS:
            raise ValueError(f"crop border {config.border!r} is not one of {CROP_BORDERS}")
        self.config = config
        self.detector = detector if detector is not None else make_detector(config)
        self._tracker = FaceTracker(config, self.detector)
        self._frame_shape: tuple[int, ...] | None = None

    def process(self, frame: np.ndarray) -> CropResult:
        frame = as_bgr_frame(frame)
        if frame.shape != self._frame_shape:
            self._tracker.reset()
            self._frame_shape = frame.shape
        update = self._tracker.update(frame)
        crop = None if update.box is None else crop_face(frame, update.box, self.config)
        return CropResult(
            update.box,
            crop,
            update.new_track,
            update.faces_detected,
            update.detected,
            update.other_face,
            update.keypoints,
        )

    def reset(self) -> None:
        self._tracker.reset()
        self._frame_shape = None
