"""The one preprocessing path: frame -> tracked face crop -> magnified crop -> encoder input.

Training (the preprocessing cache), evaluation and the server all run a ``Preprocessor``
per stream, frame by frame, in order. Its state (face track, magnifier filter, frame
sampler) belongs to that one stream; nothing is shared between streams.

Per frame:
1. ``FaceCropper``: detect every k frames, track and smooth the box, square crop with
   background margin, resized to the network input (model/face.py);
2. ``Magnifier``: causal Eulerian magnification of the crop sequence, run on *every*
   frame that has a face, so its temporal filter sees the stream at its real rate
   (model/magnify.py);
3. ``FrameSampler``: picks, by timestamp, the frames that enter the encoder at the
   window rate (``WindowConfig.fps``); skipping happens only here, before the CNN.

A new face track (first face, or a face found again after being lost) starts a new
*segment*: the magnifier and sampler restart and the temporal head never mixes frames
from two segments in one window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.config import NetworkConfig, PreprocessConfig
from model.face import FaceCropper, FaceDetector, crop_square, face_in_crop
from model.gates import GateConfig
from model.magnify import Magnifier
from model.motion import MotionMeter
from model.quality import FrameQuality, QualityMeter


def to_network_input(crops: np.ndarray | list[np.ndarray], network: NetworkConfig) -> np.ndarray:
    """uint8 BGR crops [N, S, S, 3] -> float32 normalised [N, 3, S, S], channels in the
    network's ``channel_order`` (RGB unless it says "bgr")."""
    batch = np.asarray(crops)
    if batch.ndim == 3:
        batch = batch[None]
    if batch.ndim != 4 or batch.shape[-1] != 3 or batch.dtype != np.uint8:
        raise ValueError(f"expected uint8 crops [N, S, S, 3], got {batch.dtype} {batch.shape}")
    if network.channel_order != "bgr":
        batch = batch[..., ::-1]  # BGR -> RGB
    x = batch.astype(np.float32) * np.float32(1.0 / 255.0)  # [0, 1]
    mean = np.asarray(network.mean, dtype=np.float32)
    std = np.asarray(network.std, dtype=np.float32)
    x = (x - mean) / std
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


class FrameSampler:
    """Choose frames for the encoder at ``fps`` from a stream with arbitrary timestamps.

    A frame is taken when its time reaches the next due time; due times advance by one
    period, so a 30 fps stream sampled at 15 fps takes every second frame and a 25 fps
    stream takes 15 of every 25 frames, evenly. A stream slower than ``fps`` has every
    frame taken.
    """

    def __init__(self, fps: float) -> None:
        if fps <= 0:
            raise ValueError(f"sampling rate must be positive, got {fps}")
        self.period = 1.0 / fps
        self._due: float | None = None

    def reset(self) -> None:
        self._due = None

    def take(self, t: float) -> bool:
        # A small tolerance keeps float rounding of frame times from skipping a frame.
        eps = 1e-6
        if self._due is None or t >= self._due - eps:
            if self._due is None or t - self._due >= self.period:
                self._due = t + self.period  # first frame, or fell behind: restart the grid
            else:
                self._due += self.period
            return True
        return False


@dataclass(frozen=True)
class PreparedFrame:
    index: int  # frame index in the stream, counting every frame pushed
    t: float  # seconds
    box: list[float] | None  # tracked face box [x, y, w, h] in frame pixels, None = no face
    faces: int  # faces seen by the last detector pass (-1 before the first pass)
    segment: int  # segment id (increments on every new face track); -1 while no face
    new_segment: bool  # this frame starts a segment
    crop: np.ndarray | None  # magnified crop uint8 [S, S, 3] BGR when sampled, else None
    face_crop: np.ndarray | None = None  # the crop before magnification, every face frame
    quality: FrameQuality | None = None  # the capture-quality gates' measures (model/quality.py)
    # the motion descriptor (model/motion.py) of the frames since the last sampled one,
    # float32 [MOTION_DIM], on sampled frames when the Preprocessor measures motion
    motion: np.ndarray | None = None

    @property
    def sampled(self) -> bool:
        return self.crop is not None


class Preprocessor:
    """Per-stream preprocessing state; call ``process`` on every frame in order."""

    def __init__(
        self,
        config: PreprocessConfig,
        fps: float,
        *,
        detector: FaceDetector | None = None,
        loop_period: int = GateConfig.loop_max_period,
        motion: bool = False,
    ) -> None:
        """``motion``: measure the motion descriptor (model/motion.py) of every face frame
        and hand it out with each sampled one (for networks that read it: model/config.py ``reads_motion``)."""
        if not fps or fps <= 0:
            raise ValueError(f"stream frame rate must be positive, got {fps}")
        self.config = config
        self.fps = float(fps)
        self.cropper = FaceCropper(config.crop, detector=detector)
        self.magnifier = Magnifier(config.magnifier, self.fps)
        self.sampler = FrameSampler(min(config.window.fps, self.fps))
        self.meter = QualityMeter(config.crop.margin, loop_period)
        self.motion = MotionMeter(config.crop.margin) if motion else None
        self._index = 0
        self._segment = -1

    def reset(self) -> None:
        self.cropper.reset()
        self.magnifier.reset()
        self.sampler.reset()
        self.meter.reset()
        if self.motion is not None:
            self.motion.reset()
        self._index = 0
        self._segment = -1

    def process(self, frame: np.ndarray, t: float | None = None) -> PreparedFrame:
        index = self._index
        self._index += 1
        t = index / self.fps if t is None else float(t)
        res = self.cropper.process(frame)
        if res.crop is None or res.box is None:
            quality = self.meter.measure(None, None, res.faces_detected)
            return PreparedFrame(
                index, t, None, res.faces_detected, -1, False, None, quality=quality
            )
        height, width = frame.shape[:2]
        face = face_in_crop(res.box, width, height, self.config.crop)
        quality = self.meter.measure(
            res.crop, res.box.as_list(), res.faces_detected, res.other_face, res.keypoints, face
        )
        new_segment = res.new_track or self._segment < 0
        if new_segment:
            self._segment += 1
            self.magnifier.reset()
            self.sampler.reset()
            if self.motion is not None:
                self.motion.reset()
        if self.motion is not None:
            square = crop_square(res.box, width, height, self.config.crop)
            self.motion.measure(res.crop, square, self.fps)
        magnified = self.magnifier.process(res.crop)
        crop = magnified if self.sampler.take(t) else None
        motion = self.motion.take() if crop is not None and self.motion is not None else None
        return PreparedFrame(
            index,
            t,
            res.box.as_list(),
            res.faces_detected,
            self._segment,
            new_segment,
            crop,
            res.crop,
            quality,
            motion,
        )
