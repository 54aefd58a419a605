"""Face detectors: a frame in, face boxes out (full-frame pixels, largest first).

- ``HaarDetector``: OpenCV's frontal-face Haar cascade, bundled with the OpenCV 4.x
  wheels. The 5.x wheels ship neither the XML files nor ``CascadeClassifier``, which is
  why the project pins ``opencv-python-headless<5``.
- ``YuNetDetector``: ``cv2.FaceDetectorYN`` running a YuNet ONNX file the user supplies
  (e.g. ``face_detection_yunet_2023mar.onnx`` from the OpenCV model zoo); nothing bundled.

Frames are uint8 BGR ``[H, W, 3]``; boxes are in full-frame pixels. Tracking and the
extended crop built on these boxes are in model/face.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from model.config import CropConfig

HAAR_CASCADE = "haarcascade_frontalface_default.xml"
HAAR_WINDOW_PX = 24  # the cascade's training window: no smaller face can be found
DETECT_MIN_FACE_PX = 32  # the smallest searched face, in the downscaled detection image
# cv2.FaceDetectorYN reads these twelve outputs by name (objdetect/src/face_detect.cpp)
YUNET_OUTPUTS = tuple(f"{k}_{s}" for k in ("cls", "obj", "bbox", "kps") for s in (8, 16, 32))


class FrameError(ValueError):
    """A frame that is not an image this module can read."""


class DetectorModelError(ValueError):
    """A detector model file that exists but cannot be used."""


@dataclass(frozen=True)
class FaceBox:
    x: float  # frame pixels, top-left corner
    y: float
    w: float  # width and height, px
    h: float

    def as_list(self) -> list[float]:
        return [round(float(v), 1) for v in (self.x, self.y, self.w, self.h)]

    @property
    def area(self) -> float:
        return self.w * self.h

    def iou(self, other: FaceBox) -> float:
        """Intersection over union of the two boxes, in [0, 1]."""
        iw = min(self.x + self.w, other.x + other.w) - max(self.x, other.x)
        ih = min(self.y + self.h, other.y + other.h) - max(self.y, other.y)
        inter = max(iw, 0.0) * max(ih, 0.0)
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0


class FaceDetector(Protocol):
    def detect(self, frame: np.ndarray, min_face: float = 0.0) -> list[FaceBox]:
        """Faces in a uint8 BGR [H, W, 3] frame, full-frame pixels, largest first.

        `min_face` (px) raises the smallest face side searched above the detector's own.
        """
        ...


def as_bgr_frame(frame: np.ndarray) -> np.ndarray:
    """A uint8 [H, W, 3] BGR view of `frame`; grey [H, W] / [H, W, 1] and BGRA are converted."""
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"frame must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise FrameError(f"frame dtype must be uint8, got {frame.dtype}")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (3, 4)):
        raise FrameError(
            f"frame must be [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], got shape {frame.shape}"
        )
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise FrameError(f"frame is empty: shape {frame.shape}")
    frame = np.ascontiguousarray(frame)
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


def _largest_first(boxes: list[FaceBox]) -> list[FaceBox]:
    return sorted(boxes, key=lambda b: b.area, reverse=True)


class HaarDetector:
    """Viola-Jones frontal faces on a downscaled, histogram-equalised grey image.

    Cost is driven by the smallest face searched for, so the frame is shrunk until the
    smallest face of interest (``min_face_fraction`` x min(H, W)) is ``detect_face_px``
    wide, never enlarged.
    """

    def __init__(
        self,
        min_face_fraction: float = 0.12,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        detect_face_px: int = DETECT_MIN_FACE_PX,
    ) -> None:
        if not 0 < min_face_fraction <= 1:
            raise ValueError(f"min_face_fraction must be in (0, 1], got {min_face_fraction}")
        if detect_face_px < HAAR_WINDOW_PX:
            raise ValueError(f"detect_face_px must be >= {HAAR_WINDOW_PX}, got {detect_face_px}")
        self.min_face_fraction = min_face_fraction
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.detect_face_px = detect_face_px
        self._cascade = cv2.CascadeClassifier(_haar_cascade_path())
        if self._cascade.empty():
            raise RuntimeError(f"OpenCV could not load the Haar cascade {HAAR_CASCADE}")

    def detect(self, frame: np.ndarray, min_face: float = 0.0) -> list[FaceBox]:
        frame = as_bgr_frame(frame)
        h, w = frame.shape[:2]
        min_face = max(min_face, self.min_face_fraction * min(h, w))
        scale = min(1.0, self.detect_face_px / max(min_face, 1.0))
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        if scale < 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        grey = cv2.equalizeHist(grey)
        min_px = max(HAAR_WINDOW_PX, round(min_face * scale))
        rects = self._cascade.detectMultiScale(
            grey, self.scale_factor, self.min_neighbors, minSize=(min_px, min_px)
        )
        boxes = [FaceBox(*(float(v) / scale for v in r)) for r in np.reshape(rects, (-1, 4))]
        return _largest_first(boxes)


def _haar_cascade_path() -> str:
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    path = Path(folder or "") / HAAR_CASCADE
    if folder is None or not path.is_file():
        raise RuntimeError(
            f"{HAAR_CASCADE} is not bundled with OpenCV {cv2.__version__}: the 5.x wheels "
            "dropped the Haar cascades; install opencv-python-headless<5"
        )
    return str(path)


class YuNetDetector:
    """YuNet (libfacedetection's CNN) through ``cv2.FaceDetectorYN``.

    Frames whose longer side exceeds ``max_side`` are shrunk before detection; faces
    smaller than ``min_face_fraction`` x min(H, W) are dropped, as the Haar detector
    never finds them.
    """

    def __init__(
        self,
        model_path: str | Path,
        min_face_fraction: float = 0.12,
        score_threshold: float = 0.7,
        nms_threshold: float = 0.3,
        top_k: int = 50,
        max_side: int = 640,
    ) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"YuNet model file not found: {path}")
        self.min_face_fraction = min_face_fraction
        self.max_side = max_side
        self._input_size: tuple[int, int] | None = None
        try:
            self._net = cv2.FaceDetectorYN.create(
                str(path), "", (320, 320), score_threshold, nms_threshold, top_k
            )
            self.detect(np.zeros((32, 32, 3), np.uint8))  # fails now if outputs are wrong
        except cv2.error as err:
            reason = str(err).strip().splitlines()[-1]
            raise DetectorModelError(
                f"{path} is not a YuNet model cv2.FaceDetectorYN can run (it needs input "
                f"'input' [1, 3, H, W] and outputs {', '.join(YUNET_OUTPUTS)}): {reason}"
            ) from err

    def detect(self, frame: np.ndarray, min_face: float = 0.0) -> list[FaceBox]:
        frame = as_bgr_frame(frame)
        h, w = frame.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        if scale < 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        size = (frame.shape[1], frame.shape[0])
        if size != self._input_size:
            self._net.setInputSize(size)
            self._input_size = size
        _, faces = self._net.detect(frame)  # [N, 15]: x, y, w, h, 5 landmarks, score
        if faces is None:
            return []
        min_face = max(min_face, self.min_face_fraction * min(h, w))
        boxes = [FaceBox(*(float(v) / scale for v in f[:4])) for f in faces]
        # YuNet boxes may overhang the frame; keep those centred in it and big enough
        return _largest_first(
            [
                b
                for b in boxes
                if max(b.w, b.h) >= min_face and 0 <= b.x + b.w / 2 < w and 0 <= b.y + b.h / 2 < h
            ]
        )


def make_detector(config: CropConfig, yunet_model: str | Path | None = None) -> FaceDetector:
    """The detector `config.detector` names; "yunet" needs the user's ONNX file."""
    if config.detector == "haar":
        if yunet_model is not None:
            raise ValueError(
                f"a YuNet model ({yunet_model}) was given but the config asks for haar"
            )
        return HaarDetector(min_face_fraction=config.min_face_fraction)
    if config.detector == "yunet":
        if yunet_model is None:
            raise ValueError(
                "the config asks for the yunet detector but no YuNet ONNX file was given"
            )
        return YuNetDetector(yunet_model, min_face_fraction=config.min_face_fraction)
    raise ValueError(f"unknown face detector {config.detector!r}: expected 'haar' or 'yunet'")
