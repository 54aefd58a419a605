"""Face detectors: a frame in, face boxes out (full-frame pixels, largest first).

- ``BlazeFaceDetector`` (the default): Google's BlazeFace short-range model
  (``face_detection_short_range.tflite``, Apache-2.0) run by LiteRT (``ai-edge-litert``),
  with the SSD anchor decoding and weighted NMS written here. The file is not committed:
  ``scripts/fetch_detector_weights.py`` (run by ``make install-serve``/``install-dev``)
  takes it out of the pinned ``mediapipe==0.10.21`` wheel and checks its sha256, and this
  module checks it again when it loads it. It finds rolled heads (±45°) that Haar misses.
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

from model.config import DETECTORS, CropConfig

HAAR_CASCADE = "haarcascade_frontalface_default.xml"
HAAR_WINDOW_PX = 24  # the cascade's training window: no smaller face can be found
DETECT_MIN_FACE_PX = 32  # the smallest searched face, in the downscaled detection image
BLAZEFACE_FILE = Path(__file__).resolve().parent / "weights" / "blazeface" / "face_detection_short_range.tflite"  # fmt: skip
BLAZEFACE_SHA256 = "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"
# where the file comes from, as the manifest and docs/face-detection.md record it
BLAZEFACE_ORIGIN = {
    "file": "face_detection_short_range.tflite",
    "bytes": 229714,
    "sha256": BLAZEFACE_SHA256,
    "package": "mediapipe==0.10.21 (PyPI), mediapipe/modules/face_detection/",
    "licence": "Apache-2.0",
}
BLAZEFACE_INPUT = 128  # the model's square RGB input, px
# A face is found at 0.65, not MediaPipe's 0.5: blurred noise reaches 0.60 (the best of 180
# frames), and the best face of 120 real-clip frames never scored under 0.68. A held track
# goes on down to 0.5 (an extreme close-up scores 0.61-0.68 frame to frame).
BLAZEFACE_MIN_SCORE = 0.65
BLAZEFACE_HELD_SCORE = 0.5
TILE_ASPECT = 1.3  # frames this much longer than wide (or the reverse) are also searched in tiles
MAX_TILES = 3  # ...of at most this many squares (16:9 takes 2)
# BlazeFace boxes are tight (brow to chin, cheek to cheek); Haar's include the forehead.
# Boxes are grown to Haar's geometry, so a crop margin means the same crop with either
# detector: on 674 frames of the real clips where both find one face, Haar side /
# BlazeFace side = 1.09 (median, IQR 1.02-1.18) and Haar's centre sits 0.13 of its side
# higher (the "geometry" line of scripts/detector_table.py).
BLAZEFACE_BOX_SCALE = 1.10
BLAZEFACE_CENTRE_SHIFT = -0.12  # fraction of the grown side, + = down
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
    def detect(self, frame: np.ndarray, min_face: float = 0.0, held: bool = False) -> list[FaceBox]:
        """Faces in a uint8 BGR [H, W, 3] frame, full-frame pixels, largest first.

        `min_face` (px) raises the smallest face side searched above the detector's own.
        `held`: a face is tracked here, so a detector with a score may accept weaker
        detections (hysteresis: BlazeFace); Haar and YuNet ignore it.
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

    def detect(self, frame: np.ndarray, min_face: float = 0.0, held: bool = False) -> list[FaceBox]:
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


def _blazeface_anchors() -> np.ndarray:
    """[896, 2] anchor centres in [0, 1]: a 16x16 grid with 2 anchors per cell (stride 8),
    then an 8x8 grid with 6 (three stride-16 layers merged), row by row (MediaPipe's
    SsdAnchorsCalculator with fixed anchor size, as the short-range model was trained)."""
    rows = []
    for grid, per_cell in ((16, 2), (8, 6)):
        c = (np.arange(grid, dtype=np.float32) + 0.5) / grid
        yy, xx = np.meshgrid(c, c, indexing="ij")
        centres = np.stack([xx.ravel(), yy.ravel()], axis=1)
        rows.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(rows)


def _weighted_nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[np.ndarray]:
    """MediaPipe's blending NMS: each kept detection is the score-weighted mean of the
    ones it suppresses (steadier than keeping one). boxes [N, 4+] x0 y0 x1 y1 ...; returns
    the blended rows, best first, each with its best score appended."""
    order = np.argsort(-scores)
    boxes, scores = boxes[order], scores[order]
    out = []
    while len(scores):
        x0 = np.maximum(boxes[0, 0], boxes[:, 0])
        y0 = np.maximum(boxes[0, 1], boxes[:, 1])
        x1 = np.minimum(boxes[0, 2], boxes[:, 2])
        y1 = np.minimum(boxes[0, 3], boxes[:, 3])
        inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        overlap = inter / np.maximum(area[0] + area - inter, 1e-9)
        group = overlap > iou
        weights = scores[group][:, None]
        blended = (boxes[group] * weights).sum(0) / weights.sum()
        out.append(np.append(blended, scores[0]))
        boxes, scores = boxes[~group], scores[~group]
    return out


def check_blazeface_file(path: Path) -> Path:
    """``path`` if it holds the pinned BlazeFace bytes; DetectorModelError saying what to do."""
    from model.manifest import sha256_file

    fix = "run `make install-serve` (or python scripts/fetch_detector_weights.py) to restore it"
    if not path.is_file():
        raise DetectorModelError(f"the BlazeFace weights {path} are missing: {fix}")
    digest = sha256_file(path)
    if digest != BLAZEFACE_SHA256:
        raise DetectorModelError(
            f"{path}: sha256 {digest} is not the pinned {BLAZEFACE_SHA256}; refusing to run "
            f"it: {fix}"
        )
    return path


class BlazeFaceDetector:
    """BlazeFace short-range on a letterboxed 128x128 copy of the frame, through LiteRT.

    The frame is shrunk (or enlarged) so its longer side is 128 px and padded to a square
    with black, as MediaPipe does; faces under about a fifth of that side are beyond the
    short-range model, which is meant for faces within 2 m of a camera. Boxes are grown to
    Haar's geometry (BLAZEFACE_BOX_SCALE); ``last_keypoints`` keeps the six landmarks
    (eyes, nose, mouth, ears) of the last call's boxes, in frame pixels.
    """

    def __init__(
        self,
        min_face_fraction: float = 0.12,
        score_threshold: float = BLAZEFACE_MIN_SCORE,
        held_threshold: float = BLAZEFACE_HELD_SCORE,
        nms_threshold: float = 0.3,
        num_threads: int = 1,
        model_path: str | Path = BLAZEFACE_FILE,
        box_scale: float = BLAZEFACE_BOX_SCALE,
        centre_shift: float = BLAZEFACE_CENTRE_SHIFT,
    ) -> None:
        if not 0 < min_face_fraction <= 1:
            raise ValueError(f"min_face_fraction must be in (0, 1], got {min_face_fraction}")
        from ai_edge_litert.interpreter import Interpreter

        path = check_blazeface_file(Path(model_path))
        self.min_face_fraction = min_face_fraction
        self.score_logit = float(np.log(score_threshold / (1 - score_threshold)))
        self.held_logit = float(np.log(held_threshold / (1 - held_threshold)))
        self.nms_threshold = nms_threshold
        self.box_scale, self.centre_shift = box_scale, centre_shift
        self._it = Interpreter(model_path=str(path), num_threads=num_threads)
        self._it.allocate_tensors()
        (inp,) = self._it.get_input_details()
        if tuple(inp["shape"]) != (1, BLAZEFACE_INPUT, BLAZEFACE_INPUT, 3):
            raise DetectorModelError(f"{path}: unexpected input shape {inp['shape']}")
        self._input = inp["index"]
        outs = {o["name"]: o["index"] for o in self._it.get_output_details()}
        self._reg, self._cls = outs["regressors"], outs["classificators"]
        self._anchors = _blazeface_anchors()
        self._canvas = np.zeros((BLAZEFACE_INPUT, BLAZEFACE_INPUT, 3), np.uint8)
        self.last_keypoints: list[np.ndarray] = []
        self.last_scores: list[float] = []  # the face score of each of the last boxes

    def detect(self, frame: np.ndarray, min_face: float = 0.0, held: bool = False) -> list[FaceBox]:
        """Faces in the whole frame; where a wide (or tall) frame shows none, its square
        tiles (side = the short side, spread evenly) are searched too, so a face that is
        small in a 16:9 frame is seen at up to 1.8x the size."""
        frame = as_bgr_frame(frame)
        logit = self.held_logit if held else self.score_logit
        found = self._detect(frame, min_face, logit)
        h, w = frame.shape[:2]
        side, long = min(h, w), max(h, w)
        tiles = -(-long // side)  # ceil: overlapping squares covering the frame
        # a strip (a 16000x40 frame) is never tiled: at most 1 + MAX_TILES passes a frame
        if found or long < TILE_ASPECT * side or tiles > MAX_TILES:
            return found
        keypoints: list[np.ndarray] = []
        scores: list[float] = []
        for i in range(tiles):
            off = round(i * (long - side) / (tiles - 1))
            tile = frame[:, off : off + side] if w > h else frame[off : off + side]
            boxes = self._detect(tile, min_face, logit)
            for box, kps, score in zip(boxes, self.last_keypoints, self.last_scores, strict=True):
                dx, dy = (off, 0) if w > h else (0, off)
                found.append(FaceBox(box.x + dx, box.y + dy, box.w, box.h))
                keypoints.append(kps + (dx, dy))
                scores.append(score)
        # a face in the overlap of two tiles is found twice: keep the larger of a pair
        order = sorted(range(len(found)), key=lambda i: found[i].area, reverse=True)
        kept = [
            i for k, i in enumerate(order) if all(found[i].iou(found[j]) < 0.3 for j in order[:k])
        ]
        self.last_keypoints = [keypoints[i] for i in kept]
        self.last_scores = [scores[i] for i in kept]
        return [found[i] for i in kept]

    def _detect(self, frame: np.ndarray, min_face: float, logit: float) -> list[FaceBox]:
        h, w = frame.shape[:2]
        n = BLAZEFACE_INPUT
        scale = n / max(h, w)
        sw, sh = min(n, max(1, round(w * scale))), min(n, max(1, round(h * scale)))
        canvas = self._canvas
        canvas[:] = 0
        # bilinear, as MediaPipe's own image-to-tensor step: INTER_AREA would cost 0.3-1 ms
        # more a frame (0.40 vs 0.05 ms from 640x480, 1.0 ms from 528x592)
        canvas[:sh, :sw] = cv2.resize(frame, (sw, sh), interpolation=cv2.INTER_LINEAR)
        x = cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB).astype(np.float32)
        x = x * np.float32(1 / 127.5) - np.float32(1.0)
        self._it.set_tensor(self._input, x[None])
        self._it.invoke()
        logits = self._it.get_tensor(self._cls)[0, :, 0]
        keep = logits >= logit
        self.last_keypoints, self.last_scores = [], []
        if not keep.any():
            return []
        reg = self._it.get_tensor(self._reg)[0][keep] / np.float32(n)
        anchors = self._anchors[keep]
        centre = reg[:, :2] + anchors
        half = reg[:, 2:4] / 2
        kps = reg[:, 4:16].reshape(-1, 6, 2) + anchors[:, None, :]
        rows = np.concatenate([centre - half, centre + half, kps.reshape(-1, 12)], axis=1)
        scores = 1 / (1 + np.exp(-logits[keep].astype(np.float64)))
        sx, sy = n * w / sw, n * h / sh  # [0, 1] of the input square -> frame px
        min_face = max(min_face, self.min_face_fraction * min(h, w))
        found = []
        for row in _weighted_nms(rows, scores, self.nms_threshold):
            bw, bh = (row[2] - row[0]) * sx, (row[3] - row[1]) * sy
            cx, cy = (row[0] + row[2]) / 2 * sx, (row[1] + row[3]) / 2 * sy
            side_w, side_h = bw * self.box_scale, bh * self.box_scale
            cy += self.centre_shift * side_h
            if max(side_w, side_h) < min_face or not (0 <= cx < w and 0 <= cy < h):
                continue
            box = FaceBox(*(float(v) for v in (cx - side_w / 2, cy - side_h / 2, side_w, side_h)))
            found.append((box, row[4:16].reshape(6, 2) * (sx, sy), float(row[-1])))
        found.sort(key=lambda item: item[0].area, reverse=True)
        self.last_keypoints = [k for _, k, _ in found]
        self.last_scores = [c for _, _, c in found]
        return [b for b, _, _ in found]


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

    def detect(self, frame: np.ndarray, min_face: float = 0.0, held: bool = False) -> list[FaceBox]:
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


def detector_record(name: str) -> dict[str, object]:
    """What a model's manifest records about the face detector it was trained with."""
    if name == "blazeface":
        return {"name": name, **BLAZEFACE_ORIGIN}
    if name == "haar":
        return {
            "name": name,
            "file": HAAR_CASCADE,
            "package": f"opencv-python-headless {cv2.__version__} (PyPI), cv2.data.haarcascades",
            "licence": "Apache-2.0 (OpenCV 4.5+); the cascade file: Intel License Agreement (BSD-style)",
        }
    if name == "yunet":
        return {"name": name, "file": "supplied by the user (LIVENESS_YUNET_MODEL)"}
    raise ValueError(f"unknown face detector {name!r}")


def make_detector(config: CropConfig, yunet_model: str | Path | None = None) -> FaceDetector:
    """The detector `config.detector` names; "yunet" needs the user's ONNX file."""
    if config.detector in ("haar", "blazeface") and yunet_model is not None:
        raise ValueError(
            f"a YuNet model ({yunet_model}) was given but the config asks for {config.detector}"
        )
    if config.detector == "blazeface":
        return BlazeFaceDetector(min_face_fraction=config.min_face_fraction)
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
    expected = ", ".join(repr(d) for d in DETECTORS)
    raise ValueError(f"unknown face detector {config.detector!r}: expected one of {expected}")
