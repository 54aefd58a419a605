"""Decoding video containers into (frame, time) pairs with PyAV (FFmpeg).

One reader for training, evaluation and the server: files or in-memory bytes (no
temporary file), frame times from the container where it has them, oversize frames
downscaled rather than rejected.

The input is hostile until proven otherwise. Its container is recognised from its first
bytes (model/container.py) and that demuxer is forced, so FFmpeg never probes; FFmpeg
may open nothing but the one buffer (no nested file or URL: ``io_open`` refuses, the
protocol whitelist matches no protocol, QuickTime data references are off); the decoder
itself refuses frames over ``max_pixels`` even when the container's header lies; and a
``PixelBudget`` refuses, from the header, frames too large and clips too costly to decode
before the first frame is decoded, then counts what is decoded. Frames are converted to
BGR by swscale with OpenCV's own choice (bicubic), so they equal what OpenCV's FFmpeg
backend returns; a frame over ``max_side`` is scaled down by swscale in the same pass,
never copied at full size in BGR.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import av.logging
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter

from model.container import HEAD_BYTES, VideoDecodeError, sniff_container

__all__ = [
    "DEFAULT_FPS",
    "PixelBudget",
    "VideoDecodeError",
    "VideoInfo",
    "VideoReader",
    "VideoTooLarge",
    "VideoWriteError",
    "downscale_to",
    "read_frames",
    "write_clip",
]

DEFAULT_FPS = 30.0  # used when a container reports no usable frame rate
MAX_SANE_FPS = 240.0
# FFmpeg's own messages never reach stderr (errors arrive as exceptions instead).
av.logging.set_level(None)

# Container options: no nested opens of any kind, bounded probing.
_CONTAINER_OPTIONS = {
    "protocol_whitelist": "none",  # no protocol is called "none": every nested open fails
    "enable_drefs": "0",  # mov: never follow data references to other files
    "use_absolute_path": "0",
    "probesize": str(5 * 1024 * 1024),
    # avformat_find_stream_info probes with a decoder of its own: it may parse headers but
    # decodes no frame, so no frame is allocated before the budget has seen the header
    # (and a decoder refusing an oversize probe would leave the size unknown)
    "skip_frame": "all",
}


def _refuse_nested_open(url: str, flags: int, options: dict) -> BinaryIO:
    raise PermissionError(f"the decoder may not open {url!r}")


def open_container(file: BinaryIO, demuxer: str) -> av.container.InputContainer:
    """``file`` opened by FFmpeg's ``demuxer`` (no probing), which may open nothing else."""
    return av.open(file, format=demuxer, options=_CONTAINER_OPTIONS, io_open=_refuse_nested_open)


class VideoTooLarge(VideoDecodeError):
    """Frames or total pixel work over the reader's ``PixelBudget`` (``code`` says which)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code  # "frame_too_large" or "pixel_budget_exceeded"


@dataclass(frozen=True)
class PixelBudget:
    """Most pixels in one frame, and in all the frames of one video together."""

    max_frame_pixels: int
    max_total_pixels: int

    def check_header(self, width: int, height: int, frames: int | None) -> None:
        pixels = width * height
        if pixels > self.max_frame_pixels:
            raise VideoTooLarge(
                f"the video's frames are {width}x{height} ({pixels} pixels), over the limit "
                f"of {self.max_frame_pixels} pixels per frame",
                "frame_too_large",
            )
        if frames and pixels * frames > self.max_total_pixels:
            raise VideoTooLarge(
                f"decoding {frames} frames of {width}x{height} is {pixels * frames} pixels, "
                f"over the limit of {self.max_total_pixels} pixels per video",
                "pixel_budget_exceeded",
            )


@dataclass(frozen=True)
class VideoInfo:
    fps: float  # frames per second (container's, or DEFAULT_FPS when it has none)
    frame_count: int  # as the container reports it; may be 0 or approximate
    width: int
    height: int


def _scaled_size(width: int, height: int, max_side: int | None) -> tuple[int, int] | None:
    """The (w, h) ``downscale_to`` shrinks a frame to, or None when it stays as it is."""
    side = max(width, height)
    if not max_side or side <= max_side:
        return None
    scale = max_side / side
    return max(1, round(width * scale)), max(1, round(height * scale))


def downscale_to(frame: np.ndarray, max_side: int | None) -> np.ndarray:
    """Shrink a frame so its longer side is at most ``max_side`` (aspect kept)."""
    size = _scaled_size(frame.shape[1], frame.shape[0], max_side)
    if size is None:
        return frame
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def upright(image: np.ndarray, rotation: float) -> np.ndarray:
    """``image`` turned as the container's display matrix says it is shown. Phones record
    the sensor's landscape frames and store how to turn them (a portrait clip: -90, i.e.
    90 degrees clockwise); FFmpeg hands the angle out as ``frame.rotation``, counter-
    clockwise, which is np.rot90's sense. Rounded to a quarter turn (phones write
    nothing else); mirroring in the matrix is not applied."""
    quarter = round(rotation / 90.0) % 4 if rotation else 0
    return np.ascontiguousarray(np.rot90(image, quarter)) if quarter else image


class VideoReader:
    """Iterate a video's frames as ``(frame_bgr_uint8, t_seconds)``, turned upright as the
    container's display matrix says they are shown (a phone's portrait clip; ``upright``).

    ``source`` is a path or the file's bytes. Frame times are the frames' presentation
    times from the container (relative to the stream's start) while they increase, else
    ``index / fps``. ``budget`` refuses oversize and over-costly videos with
    VideoTooLarge (from the header, then while decoding); ``max_frames`` is how many
    frames the caller will take at most: the budget counts no more than that, and the
    reader yields one frame more at most (so a caller can tell the video went on).
    ``threads`` is the decoder's thread count (0: FFmpeg's choice, one per core).
    """

    def __init__(
        self,
        source: str | Path | bytes,
        *,
        max_side: int | None = None,
        budget: PixelBudget | None = None,
        max_frames: int | None = None,
        threads: int = 0,
    ) -> None:
        self.max_side = max_side
        self.budget = budget
        self.max_frames = max_frames
        self.decoded_pixels = 0
        self._container = None
        if isinstance(source, (bytes, bytearray, memoryview)):
            if len(source) == 0:
                raise VideoDecodeError("empty input: no bytes to decode")
            self._file: BinaryIO = io.BytesIO(bytes(source))
            name = "upload"
        else:
            path = Path(source)
            if not path.is_file():
                raise VideoDecodeError(f"{path}: no such file")
            self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
            name = str(path)
        self._name = name
        try:
            self._open(max_frames, threads)
        except BaseException:
            self.close()
            raise

    def _open(self, max_frames: int | None, threads: int) -> None:
        try:
            kind = sniff_container(self._file.read(HEAD_BYTES))
        except VideoDecodeError as exc:
            raise VideoDecodeError(f"{self._name}: {exc}") from None
        self._file.seek(0)
        try:
            self._container = open_container(self._file, kind)
        except (av.FFmpegError, PermissionError, ValueError, OSError) as exc:
            raise VideoDecodeError(
                f"{self._name}: not a {kind} container that can be read: {exc}"
            ) from exc
        if not self._container.streams.video:
            raise VideoDecodeError(f"{self._name}: the container holds no video stream")
        stream = self._container.streams.video[0]
        stream.codec_context.thread_count = threads
        if self.budget is not None:
            stream.codec_context.options = {"max_pixels": str(self.budget.max_frame_pixels)}
        self._stream = stream
        rate = stream.average_rate
        fps = float(rate) if rate else 0.0
        if not (math.isfinite(fps) and 0 < fps <= MAX_SANE_FPS):
            fps = DEFAULT_FPS
        frames = int(stream.frames or 0)
        if frames <= 0 and stream.duration and stream.time_base:
            frames = math.ceil(float(stream.duration * stream.time_base) * fps)
        elif frames <= 0 and self._container.duration:
            frames = math.ceil(self._container.duration / av.time_base * fps)
        width, height = stream.codec_context.width, stream.codec_context.height
        self.info = VideoInfo(fps=fps, frame_count=frames, width=width, height=height)
        if self.budget is not None:
            counted = min(frames, max_frames) if max_frames and frames else frames
            self.budget.check_header(width, height, counted)
        # one converter for every frame: it keeps its swscale context while the size stays
        self._reformatter = VideoReformatter()
        self._time_base: Fraction | None = stream.time_base
        self._start = stream.start_time or 0

    def _seconds(self, pts: int) -> float:
        # OpenCV's arithmetic (milliseconds in double, then back), so times are equal to
        # the last bit to those OpenCV's FFmpeg backend reported for the same file
        tb = self._time_base
        per_tick = tb.numerator / tb.denominator if tb else 0.0
        return float(pts - self._start) * per_tick * 1000.0 / 1000.0

    def _bgr(self, frame: av.VideoFrame) -> np.ndarray:
        size = _scaled_size(frame.width, frame.height, self.max_side)
        if size is None:
            width, height, interpolation = frame.width, frame.height, "BICUBIC"
        else:
            (width, height), interpolation = size, "AREA"
        bgr = self._reformatter.reformat(frame, width, height, "bgr24", interpolation=interpolation)
        return upright(bgr.to_ndarray(), frame.rotation)

    def _count(self, frame: av.VideoFrame) -> None:
        if self.budget is None:
            return
        width, height = frame.width, frame.height
        self.budget.check_header(width, height, None)  # a stream may change size midway
        self.decoded_pixels += width * height
        if self.decoded_pixels > self.budget.max_total_pixels:
            raise VideoTooLarge(
                f"the video's frames add up to more than the limit of "
                f"{self.budget.max_total_pixels} pixels per video",
                "pixel_budget_exceeded",
            )

    def _decoded(self) -> Iterator[av.VideoFrame]:
        """The decoded frames; a decoding error after the first frame ends the video (a
        damaged tail) unless the decoder refused a new frame size (VideoTooLarge), before
        it the video is undecodable."""
        assert self._container is not None
        count = 0
        frames = self._container.decode(self._stream)
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                return
            except (av.FFmpegError, PermissionError, ValueError, OSError) as exc:
                if count == 0:
                    raise VideoDecodeError(
                        f"{self._name}: the first frame cannot be decoded: {exc}"
                    ) from exc
                codec = self._stream.codec_context
                if self.budget is not None and codec.width == 0 and codec.height == 0:
                    # FFmpeg zeroes the size it refused (max_pixels): the stream grew past
                    # the frame limit midway, which is a bomb, not a damaged tail
                    raise VideoTooLarge(
                        f"frame {count + 1} changes the video's size to one over the limit "
                        f"of {self.budget.max_frame_pixels} pixels per frame",
                        "frame_too_large",
                    ) from exc
                return
            count += 1
            yield frame

    def __iter__(self) -> Iterator[tuple[np.ndarray, float]]:
        fps = self.info.fps
        last_t = -math.inf
        index = 0
        try:
            for frame in self._decoded():
                if self.max_frames is not None and index > self.max_frames:
                    break
                if self.max_frames is None or index < self.max_frames:
                    self._count(frame)
                pts = frame.pts
                t = self._seconds(pts) if pts is not None else -1.0
                if not (math.isfinite(t) and t > last_t and t >= 0):
                    t = index / fps
                if t <= last_t:  # never let time run backwards
                    t = last_t + 1.0 / fps
                last_t = t
                yield self._bgr(frame), t
                index += 1
        finally:
            self.close()

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
        self._file.close()

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


class VideoWriteError(RuntimeError):
    """OpenCV could not write a clip (codec missing, path not writable, no frames)."""


def write_clip(
    path: str | Path, frames: Iterable[np.ndarray], fps: float, fourcc: str = "mp4v"
) -> Path:
    """Write BGR uint8 frames of one size with OpenCV's ``fourcc`` codec (the tools' and
    the tests' writer; serving never writes video). Frames may come from a generator."""
    path = Path(path)
    writer: cv2.VideoWriter | None = None
    try:
        for frame in frames:
            if writer is None:
                h, w = frame.shape[:2]
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
                if not writer.isOpened():
                    raise VideoWriteError(f"{path}: OpenCV cannot write {fourcc!r} video here")
            writer.write(frame)
    finally:
        if writer is not None:
            writer.release()
    if writer is None:
        raise VideoWriteError(f"{path}: no frames to write")
    return path
