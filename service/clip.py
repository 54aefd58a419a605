"""Scoring an uploaded clip: decode from memory, the per-frame path, one result.

The clip goes through the same ``ScoringSession`` as a stream: frames are decoded and
prepared in order in the uploads' fair thread pool (service/fair.py), a chunk at a time (``upload_chunk_frames``
sampled crops), and each chunk's crops go to the micro-batcher together, so an upload never
waits ``batch_max_wait_ms`` per frame and never holds more than one chunk of crops.

Decoding runs in turns of about ``DECODE_TURN_SECONDS``: each pool task decodes and
prepares frames until its turn is over, then the upload queues again behind the others.
Between turns the upload is stopped if its client has gone (``client_disconnected``) or it
has run past ``upload_processing_seconds`` (``processing_timeout``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time
from collections.abc import Awaitable, Callable, Iterator

import numpy as np

from model.preprocess import FrameSampler
from model.video import PixelBudget, VideoDecodeError, VideoReader, VideoTooLarge
from service.engine import LivenessEngine, Prepared, ScoringSession, timed
from service.errors import ClientGone, PayloadTooLarge, ServiceError, Unprocessable
from service.fair import Share
from service.report import clip_report
from service.schemas import LivenessResult
from service.settings import Settings

DECODE_TURN_SECONDS = 0.05


def _heap_trimmer() -> Callable[[], object]:
    """glibc's malloc_trim: hands the freed heap of a finished upload (megabytes of frames,
    kept by glibc's raised mmap threshold) back to the system; a no-op elsewhere."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0)


trim_heap = _heap_trimmer()


def decode_error(exc: VideoDecodeError) -> ServiceError:
    """The answer for a video the reader refused: 413 over a budget, else 422."""
    if isinstance(exc, VideoTooLarge):
        return PayloadTooLarge(str(exc), code=exc.code)
    return Unprocessable(
        f"{exc}; send an mp4, webm, avi, mov or mkv video", code="undecodable_video"
    )


def open_video(data: bytes, settings: Settings, max_frames: int) -> VideoReader:
    """A reader on the upload's bytes, its header checked against the pixel budget."""
    budget = PixelBudget(settings.max_frame_pixels, settings.max_video_pixels)
    try:
        return VideoReader(
            data, max_side=settings.max_side, budget=budget, max_frames=max_frames, threads=1
        )
    except VideoDecodeError as exc:
        raise decode_error(exc) from exc


class ClipDecoder:
    """Pulls frames off a reader within the clip limits and prepares them (blocking)."""

    def __init__(
        self,
        reader: VideoReader,
        session: ScoringSession,
        *,
        fps: float | None,
        max_frames: int,
        max_seconds: float,
        deadline: float = float("inf"),
        processing_seconds: float = 0.0,
    ) -> None:
        self.session = session
        self.max_frames = max_frames
        self.max_seconds = max_seconds
        self.deadline = deadline  # time.monotonic() by which the clip must be scored
        self.processing_seconds = processing_seconds
        # ``fps`` thins the video before preprocessing; None keeps every frame
        self.sampler = FrameSampler(fps) if fps is not None else None
        self.reader = reader
        self._frames: Iterator[tuple[np.ndarray, float]] = iter(reader)
        # a cancelled request's pool task may still be decoding: the reader is closed
        # only between two turns, never under one
        self._lock = threading.Lock()
        self.decoded = 0
        self.done = False
        self.truncated = False

    def _next_frame(self) -> tuple[np.ndarray, float] | None:
        with timed(self.session.timing, "decode"):
            try:
                return next(self._frames, None)
            except VideoDecodeError as exc:
                raise decode_error(exc) from exc

    def check_deadline(self) -> None:
        if time.monotonic() > self.deadline:
            raise Unprocessable(
                f"scoring the clip took longer than the limit of {self.processing_seconds:g} s "
                f"({self.decoded} frames decoded)",
                code="processing_timeout",
            )

    def close(self) -> None:
        with self._lock:
            self.reader.close()

    def next_chunk(self, crops: int, turn: float | None = None) -> list[Prepared]:
        """Decode and prepare frames until ``crops`` encoder inputs are ready, the clip
        ends, or ``turn`` seconds have passed (at least one frame is taken per call)."""
        with self._lock:
            return self._next_chunk(crops, turn)

    def _next_chunk(self, crops: int, turn: float | None) -> list[Prepared]:
        until = time.monotonic() + turn if turn is not None else float("inf")
        items: list[Prepared] = []
        sampled = 0
        while sampled < crops and not self.done:
            self.check_deadline()
            if self.decoded >= self.max_frames:
                self.truncated = self._next_frame() is not None
                self.done = True
                break
            frame_t = self._next_frame()
            if frame_t is None:
                self.done = True
                break
            frame, t = frame_t
            if t > self.max_seconds:
                raise Unprocessable(
                    f"the clip is longer than the limit of {self.max_seconds:g} s "
                    f"(frame {self.decoded} is at {t:.2f} s)",
                    code="clip_too_long",
                )
            index = self.decoded
            self.decoded += 1
            if self.sampler is None or self.sampler.take(t):
                item = self.session.prepare(frame, t, index)
                items.append(item)
                sampled += item.sampled
            if time.monotonic() >= until:
                break
        return items


def _sampled(items: list[Prepared]) -> int:
    return sum(p.sampled for p in items)


async def score_video(
    engine: LivenessEngine,
    data: bytes,
    *,
    fps: float | None,
    max_frames: int,
    request_id: str,
    started: float,
    disconnected: Callable[[], Awaitable[bool]] | None = None,
) -> LivenessResult:
    """Score a whole clip held in memory; returns the result body (raises ServiceErrors).

    ``disconnected`` is asked between decoding turns: once it says the client is gone,
    the work stops with ClientGone."""
    settings = engine.settings
    deadline = time.monotonic() + settings.upload_processing_seconds

    async def still_wanted(decoder: ClipDecoder | None = None) -> None:
        if disconnected is not None and await disconnected():
            raise ClientGone("the client closed the connection; the upload was not scored")
        if decoder is not None:
            decoder.check_deadline()

    share = Share()
    reader = await engine.run_upload(share, open_video, data, settings, max_frames)
    decoder: ClipDecoder | None = None
    try:
        source_fps = reader.info.fps
        thin = fps if fps is not None and fps < source_fps else None
        session = await engine.open_session(thin or source_fps, "upload", share)
        try:
            decoder = ClipDecoder(
                reader,
                session,
                fps=thin,
                max_frames=max_frames,
                max_seconds=settings.max_clip_seconds,
                deadline=deadline,
                processing_seconds=settings.upload_processing_seconds,
            )
            chunk = settings.upload_chunk_frames
            pending: list[Prepared] = []
            while not decoder.done:
                await still_wanted(decoder)
                want = chunk - _sampled(pending)
                pending += await engine.run_upload(
                    share, decoder.next_chunk, want, DECODE_TURN_SECONDS
                )
                if pending and (decoder.done or _sampled(pending) >= chunk):
                    await session.complete(pending)
                    pending = []
            if decoder.decoded == 0:
                raise Unprocessable(
                    "the container holds no decodable video frames", code="undecodable_video"
                )
            await still_wanted(decoder)
            clip = await engine.run_upload(share, session.finish)
            body = clip_report(
                session,
                clip,
                request_id=request_id,
                frames_decoded=decoder.decoded,
                truncated=decoder.truncated,
                total_s=time.perf_counter() - started,
            )
            engine.metrics.observe_result("upload", body)
            return body
        finally:
            await engine.run_upload(share, session.close)
    finally:
        await engine.run_upload(share, decoder.close if decoder is not None else reader.close)
        await engine.run_upload(share, trim_heap)
