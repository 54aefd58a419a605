"""Decoding video containers into (frame, time) pairs with OpenCV.

One reader for training, evaluation and the server: files or in-memory bytes (no
temporary file: OpenCV's FFmpeg backend reads an ``io.BytesIO`` directly), frame times
from the container where it has them, oversize frames downscaled rather than rejected.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

DEFAULT_FPS = 30.0  # used when a container reports no usable frame rate
MAX_SANE_FPS = 240.0


class VideoDecodeError(ValueError):
    """The input is not a video OpenCV can decode (or holds no frames)."""


@dataclass(frozen=True)
class VideoInfo:
    fps: float  # frames per second (container's, or DEFAULT_FPS when it has none)
    frame_count: int  # as the container reports it; may be 0 or approximate
    width: int
    height: int


def downscale_to(frame: np.ndarray, max_side: int | None) -> np.ndarray:
    """Shrink a frame so its longer side is at most ``max_side`` (aspect kept)."""
    if not max_side:
        return frame
    h, w = frame.shape[:2]
    side = max(h, w)
    if side <= max_side:
        return frame
    scale = max_side / side
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


class VideoReader:
    """Iterate a video's frames as ``(frame_bgr_uint8, t_seconds)``.

    ``source`` is a path or the file's bytes. Frame times come from the container
    (``CAP_PROP_POS_MSEC``) while they increase, else from ``index / fps``.
    """

    def __init__(self, source: str | Path | bytes, *, max_side: int | None = None) -> None:
        self.max_side = max_side
        if isinstance(source, (bytes, bytearray, memoryview)):
            if len(source) == 0:
                raise VideoDecodeError("empty input: no bytes to decode")
            # OpenCV reads the stream through callbacks and does not keep the buffer
            # alive itself: hold a reference for the capture's lifetime.
            self._buffer: io.BytesIO | None = io.BytesIO(bytes(source))
            self._cap = cv2.VideoCapture(self._buffer, cv2.CAP_FFMPEG, [])
            name = "upload"
        else:
            path = Path(source)
            if not path.is_file():
                raise VideoDecodeError(f"{path}: no such file")
            self._buffer = None
            self._cap = cv2.VideoCapture(str(path))
            name = str(path)
        if not self._cap.isOpened():
            raise VideoDecodeError(f"{name}: not a video container OpenCV can open")
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        if not (math.isfinite(fps) and 0 < fps <= MAX_SANE_FPS):
            fps = DEFAULT_FPS
        self.info = VideoInfo(
            fps=float(fps),
            frame_count=max(0, int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)),
            width=int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0),
            height=int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0),
        )
        self._name = name

    def __iter__(self) -> Iterator[tuple[np.ndarray, float]]:
        fps = self.info.fps
        last_t = -math.inf
        index = 0
        try:
            while True:
                ok, frame = self._cap.read()
                if not ok or frame is None:
                    break
                pos = self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                t = pos if math.isfinite(pos) and pos > last_t and pos >= 0 else index / fps
                if t <= last_t:  # never let time run backwards
                    t = last_t + 1.0 / fps
                last_t = t
                if frame.ndim == 2:
                    frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
                yield downscale_to(frame, self.max_side), t
                index += 1
        finally:
            self.close()

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
        self._buffer = None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_frames(
    source: str | Path | bytes,
    *,
    max_frames: int | None = None,
    max_side: int | None = None,
) -> tuple[list[np.ndarray], list[float], VideoInfo]:
    """Decode a whole (short) clip into memory. Raises VideoDecodeError if it has no frames."""
    reader = VideoReader(source, max_side=max_side)
    frames: list[np.ndarray] = []
    times: list[float] = []
    for frame, t in reader:
        frames.append(frame)
        times.append(t)
        if max_frames is not None and len(frames) >= max_frames:
            break
    reader.close()
    if not frames:
        raise VideoDecodeError(f"{reader._name}: the container holds no decodable frames")
    return frames, times, reader.info
