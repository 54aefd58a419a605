"""``WS /v1/stream``: frames in, scores out, one final result.

Protocol (JSON text messages, frames as binary JPEG/PNG messages):

- client, optional first: ``{"type": "start", "fps": 30}`` (default fps from settings);
  server: ``{"type": "ready", ...}`` with the model, the window and the stream's limits
  (sent before the first frame's answer when the client sends no start);
- client: frames; server, one answer per frame: ``{"type": "frame", "index", "t", "box",
  "faces", "score", "label", "attention", "window", "latency_ms", "dropped"}`` for a
  processed frame (score, label, attention and window are null until the face track's
  first window is full; then each frame reports the track's latest window), ``{"type": "dropped", "index", "reason": "busy"|"rate", "dropped"}`` for a frame
  dropped, or an error for an undecodable one. ``t`` = index / fps, where index counts
  every frame the client sent, dropped ones included;
- client: ``{"type": "end"}``; server: ``{"type": "result", ...}`` (the upload's result
  body plus ``dropped``) and a normal close (1000). When the frames cannot be scored
  the server sends an error (``no_face``/``too_few_frames``) instead, then closes 1000.

Errors are ``{"type": "error", "code", "message"}``. An undecodable frame gets one
(``bad_frame``) and the stream goes on; ``stream_max_bad_frames`` in a row close it
(1003). Other closes: 1003 unreadable text message, 1008 idle/too long/protocol misuse,
1009 message over ``max_message_bytes``, 1011 server fault, 1013 over capacity or not
ready. A receiver task takes messages off the socket into a one-slot mailbox (newest
frame kept, replaced ones counted as dropped); a processor task scores them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
import uuid

from starlette.websockets import WebSocket, WebSocketDisconnect

from model.runtime import WindowScore
from service.engine import LivenessEngine, Prepared, ScoringSession, timed
from service.errors import (
    WS_NORMAL,
    NotReady,
    OverCapacity,
    PayloadTooLarge,
    ServiceError,
    StreamPolicy,
    Unprocessable,
    UnsupportedMediaType,
)
from service.flow import Mailbox, QueuedFrame, RateLimiter
from service.images import BadFrame, decode_frame
from service.report import clip_report, frame_message, ready_message

log = logging.getLogger("liveness.service")
MAX_FPS = 240.0


class BadMessage(UnsupportedMediaType):
    code = "bad_message"


async def close_with_error(websocket: WebSocket, exc: ServiceError) -> None:
    """Send the error message and close with its code (the client may already be gone)."""
    with contextlib.suppress(Exception):
        await websocket.send_text(json.dumps(exc.ws_message()))
        await websocket.close(exc.ws_close, reason=exc.message[:120])


class StreamConnection:
    """One accepted WebSocket stream, from the first message to the close."""

    def __init__(self, ws: WebSocket, engine: LivenessEngine) -> None:
        self.ws = ws
        self.engine = engine
        self.settings = engine.settings
        self.metrics = engine.metrics
        self.request_id = uuid.uuid4().hex
        self.fps: float | None = None  # the client's frame rate: t = index / fps
        self.session: ScoringSession | None = None
        self.mailbox = Mailbox()
        self.limiter = RateLimiter(self.settings.max_stream_fps)
        self.received = 0  # frames the client sent so far
        self.dropped = 0
        self.bad_in_row = 0
        self.last_window: WindowScore | None = None
        self.opened = time.monotonic()
        self._send_lock = asyncio.Lock()

    async def send(self, payload: dict) -> None:
        async with self._send_lock:
            await self.ws.send_text(json.dumps(payload))

    # -- the connection -----------------------------------------------------------------
    async def run(self) -> str:
        """Serve the stream until it ends; returns the outcome (metrics label)."""
        receiver = asyncio.create_task(self._receive_loop())
        processor = asyncio.create_task(self._process_loop())
        try:
            done, _ = await asyncio.wait({receiver, processor}, return_when="FIRST_COMPLETED")
            if receiver in done and receiver.result() == "end":
                await processor
                return await self._finish()
            if processor in done:
                processor.result()
            return "disconnect"
        except WebSocketDisconnect:
            return "disconnect"
        except ServiceError as exc:
            await self.fail(exc)
            return exc.code
        except Exception as exc:
            log.exception("stream %s failed", self.request_id)
            await self.fail(ServiceError(f"internal server error ({type(exc).__name__})"))
            return "internal_error"
        finally:
            for task in (receiver, processor):
                task.cancel()
            await asyncio.gather(receiver, processor, return_exceptions=True)
            if self.session is not None:
                await self.engine.run_cpu(self.session.close)

    async def fail(self, exc: ServiceError) -> None:
        async with self._send_lock:
            await close_with_error(self.ws, exc)

    async def _finish(self) -> str:
        try:
            if self.session is None:
                raise Unprocessable("the stream ended before any frame", code="too_few_frames")
            clip = await self.engine.run_cpu(self.session.finish)
        except Unprocessable as exc:  # no_face / too_few_frames: the stream itself went fine
            await self.send(exc.ws_message())
            await self.ws.close(WS_NORMAL)
            return exc.code
        body = clip_report(
            self.session,
            clip,
            request_id=self.request_id,
            frames_decoded=self.received,
            truncated=False,
            total_s=self.session.elapsed(),
        )
        await self.send({"type": "result", **body, "dropped": self.dropped})
        await self.ws.close(WS_NORMAL)
        return "result"

    # -- receiving --------------------------------------------------------------------------
    async def _receive(self) -> dict:
        deadline = self.opened + self.settings.stream_max_seconds
        timeout = min(self.settings.stream_idle_seconds, deadline - time.monotonic())
        try:
            if timeout <= 0:
                raise TimeoutError
            return await asyncio.wait_for(self.ws.receive(), timeout)
        except TimeoutError:
            if time.monotonic() >= deadline - 1e-3:
                raise StreamPolicy(
                    f"the stream reached its limit of {self.settings.stream_max_seconds:g} s",
                    code="stream_too_long",
                ) from None
            raise StreamPolicy(
                f"no message for {self.settings.stream_idle_seconds:g} s", code="idle_timeout"
            ) from None

    async def _receive_loop(self) -> str:
        while True:
            message = await self._receive()
            if message["type"] == "websocket.disconnect":
                return "disconnect"
            data, text = message.get("bytes"), message.get("text")
            size = len(data) if data is not None else len(text or "")
            if size > self.settings.max_message_bytes:
                raise PayloadTooLarge(
                    f"a message of {size} bytes is over the limit of "
                    f"{self.settings.max_message_bytes}",
                    code="message_too_big",
                )
            if data is not None:
                await self._on_frame(data)
            elif text is not None and await self._on_text(text) == "end":
                self.mailbox.close()
                return "end"

    async def _on_text(self, text: str) -> str | None:
        try:
            message = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadMessage(f"a text message must be JSON: {exc}") from None
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "end":
            return "end"
        if kind != "start":
            raise BadMessage(f"unknown message type {kind!r}: expected 'start' or 'end'")
        if self.session is not None:
            raise StreamPolicy("'start' must be the first message", code="protocol_error")
        fps = message.get("fps", self.settings.stream_default_fps)
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps):
            raise StreamPolicy(f"fps must be a number, got {fps!r}", code="bad_parameters")
        if not 0 < fps <= MAX_FPS:
            raise StreamPolicy(f"fps must be in (0, {MAX_FPS:g}], got {fps}", code="bad_parameters")
        await self._begin(float(fps))
        return None

    async def _begin(self, fps: float) -> None:
        self.fps = fps
        self.session = await self.engine.open_session(
            min(fps, self.settings.max_stream_fps), "stream"
        )
        await self.send(ready_message(self.request_id, self.fps, self.session))

    async def _on_frame(self, data: bytes) -> None:
        if self.session is None:
            await self._begin(self.settings.stream_default_fps)
        index = self.received
        self.received += 1
        if not self.limiter.allow():
            await self._drop(index, "rate")
            return
        replaced = self.mailbox.put(QueuedFrame(index, data, time.perf_counter()))
        if replaced is not None:
            await self._drop(replaced.index, "busy")

    async def _drop(self, index: int, reason: str) -> None:
        """Count a dropped frame and tell the client, so every frame gets one answer."""
        self.dropped += 1
        self.metrics.dropped.labels(reason).inc()
        await self.send(
            {"type": "dropped", "index": index, "reason": reason, "dropped": self.dropped}
        )

    # -- processing -------------------------------------------------------------------------
    async def _process_loop(self) -> None:
        while (item := await self.mailbox.get()) is not None:
            await self._process(item)

    def _decode_and_prepare(self, item: QueuedFrame) -> Prepared:
        assert self.session is not None and self.fps is not None
        with timed(self.session.timing, "decode"):
            frame = decode_frame(item.data, self.settings.max_side)
        return self.session.prepare(frame, item.index / self.fps, item.index)

    async def _process(self, item: QueuedFrame) -> None:
        assert self.session is not None
        try:
            prepared = await self.engine.run_cpu(self._decode_and_prepare, item)
        except BadFrame as exc:
            self.bad_in_row += 1
            await self.send({**exc.ws_message(), "index": item.index})
            if self.bad_in_row >= self.settings.stream_max_bad_frames:
                raise BadFrame(
                    f"{self.bad_in_row} undecodable frames in a row", code="bad_frames"
                ) from None
            return
        self.bad_in_row = 0
        (result,) = await self.session.complete([prepared])
        # frames between encoded ones report the latest window of their face track
        if prepared[0].box is None or prepared[0].new_segment:
            self.last_window = None
        self.last_window = result.window or self.last_window
        latency = time.perf_counter() - item.received
        self.metrics.frame_seconds.observe(latency)
        message = frame_message(self.session, result, self.last_window, latency, self.dropped)
        await self.send(message)


async def serve_stream(websocket: WebSocket) -> None:
    """Accept, check readiness and capacity, run the stream, count the outcome."""
    await websocket.accept()
    app = websocket.app
    engine: LivenessEngine | None = getattr(app.state, "engine", None)
    metrics = app.state.metrics
    if engine is None:
        exc: ServiceError = NotReady(f"the model is not loaded: {app.state.not_ready_reason}")
        await close_with_error(websocket, exc)
        metrics.streams.labels(exc.code).inc()
        return
    try:
        with engine.stream_slot():
            outcome = await StreamConnection(websocket, engine).run()
    except OverCapacity as exc:
        await close_with_error(websocket, exc)
        outcome = exc.code
    metrics.streams.labels(outcome).inc()
