"""Scoring an uploaded clip: decode from memory, the per-frame path, one result.

The clip goes through the same ``ScoringSession`` as a stream: frames are decoded and
prepared in order in the thread pool, a chunk at a time (``upload_chunk_frames`` sampled
crops), and each chunk's crops go to the micro-batcher together, so an upload never
waits ``batch_max_wait_ms`` per frame and never holds more than one chunk of crops.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np

from model.preprocess import FrameSampler
from model.video import VideoDecodeError, VideoReader
from service.engine import LivenessEngine, Prepared, ScoringSession, timed
from service.errors import Unprocessable
from service.report import clip_report


def open_video(data: bytes, max_side: int) -> VideoReader:
    try:
        return VideoReader(data, max_side=max_side)
    except VideoDecodeError as exc:
        raise Unprocessable(
            f"{exc}; send an mp4, webm, avi, mov or mkv video", code="undecodable_video"
        ) from exc


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
    ) -> None:
        self.session = session
        self.max_frames = max_frames
        self.max_seconds = max_seconds
        # ``fps`` thins the video before preprocessing; None keeps every frame
        self.sampler = FrameSampler(fps) if fps is not None else None
        self._frames: Iterator[tuple[np.ndarray, float]] = iter(reader)
        self.decoded = 0
        self.done = False
        self.truncated = False

    def _next_frame(self) -> tuple[np.ndarray, float] | None:
        with timed(self.session.timing, "decode"):
            return next(self._frames, None)

    def next_chunk(self, crops: int) -> list[Prepared]:
        """Decode and prepare frames until ``crops`` encoder inputs are ready or the clip ends."""
        items: list[Prepared] = []
        sampled = 0
        while sampled < crops and not self.done:
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
            if self.sampler is not None and not self.sampler.take(t):
                continue
            item = self.session.prepare(frame, t, index)
            items.append(item)
            sampled += item[1] is not None
        return items


async def score_video(
    engine: LivenessEngine,
    data: bytes,
    *,
    fps: float | None,
    max_frames: int,
    request_id: str,
    started: float,
) -> dict:
    """Score a whole clip held in memory; returns the result body (raises ServiceErrors)."""
    settings = engine.settings
    reader = await engine.run_cpu(open_video, data, settings.max_side)
    try:
        source_fps = reader.info.fps
        thin = fps if fps is not None and fps < source_fps else None
        session = await engine.open_session(thin or source_fps, "upload")
        try:
            decoder = ClipDecoder(
                reader,
                session,
                fps=thin,
                max_frames=max_frames,
                max_seconds=settings.max_clip_seconds,
            )
            while not decoder.done:
                items = await engine.run_cpu(decoder.next_chunk, settings.upload_chunk_frames)
                if items:
                    await session.complete(items)
            if decoder.decoded == 0:
                raise Unprocessable(
                    "the container holds no decodable video frames", code="undecodable_video"
                )
            clip = await engine.run_cpu(session.finish)
            return clip_report(
                session,
                clip,
                request_id=request_id,
                frames_decoded=decoder.decoded,
                truncated=decoder.truncated,
                total_s=time.perf_counter() - started,
            )
        finally:
            await engine.run_cpu(session.close)
    finally:
        await engine.run_cpu(reader.close)
