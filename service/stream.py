"""``WS /v1/stream``: frames in, scores out, one final result.

Protocol (JSON text messages, frames as binary JPEG/PNG messages):

- client, optional first: ``{"type": "start", "fps": 30, "nonce": "..."}`` (default fps
  from settings; service/messages.py parses it);
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
(1003). Other closes: 1003 unreadable text message, 1008 idle/too long/protocol misuse
or refused credentials, 1009 message over ``max_message_bytes``, 1011 server fault,
1013 over capacity, over the API key's rate or stream cap, or not ready, 1001 the
server is shutting down. A client that reads nothing for ``stream_send_timeout_seconds``
while the server sends is cut off (no close handshake: it is not listening). A receiver
task takes messages off the socket into a one-slot mailbox (newest frame kept, replaced
ones counted as dropped); a processor task scores them.

A handshake whose ``Origin`` is another site's (not the server's own ``Host``, nor in
``stream_origins``) is refused with an HTTP 403 ``origin_not_allowed`` before it opens
(service/security/origins.py); clients that send no Origin are not browsers and are not
checked. Pings and pongs are limited by the protocol layer (service/security/protocols.py)
and never count as activity. Credentials (service/security/auth.py) are checked right after
the handshake; the optional ``nonce`` (``?nonce=`` or the start message's) is signed into
the result's ``verdict_token``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid

from pydantic import BaseModel
from starlette.websockets import WebSocket, WebSocketDisconnect

from service import accesslog
from service.deps import ServiceState
from service.engine import LivenessEngine, Prepared, ScoringSession, timed
from service.errors import (
    WS_NORMAL,
    PayloadTooLarge,
    ServiceError,
    StreamPolicy,
    Unprocessable,
    error_response,
)
from service.flow import Mailbox, QueuedFrame
from service.images import BadFrame, decode_frame
from service.messages import EndMessage, parse_nonce, parse_text_message
from service.report import clip_report, frame_message, ready_message
from service.schemas import DroppedMessage, ResultMessage
from service.security.access import Principal
from service.security.auth import admit_stream
from service.security.origins import OriginNotAllowed, origin_allowed
from service.security.ratelimit import TokenBucket
from service.shutdown import ShuttingDown

log = logging.getLogger("liveness.service")
CLOSE_TIMEOUT_S = 10.0  # the most a last error message and close may take
FRAME_BURST_SECONDS = 0.5  # frames a stream may send at once: half a second's worth


class SlowClient(StreamPolicy):
    code = "slow_client"


def wire_text(message: BaseModel) -> str:
    """A server message as the text frame it is sent in."""
    return json.dumps(message.model_dump(mode="json"))


async def close_with_error(
    websocket: WebSocket, exc: ServiceError, timeout: float = CLOSE_TIMEOUT_S
) -> None:
    """Send the error message and close with its code (the client may already be gone,
    or not be reading: bounded by ``timeout``)."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(timeout):
            await websocket.send_text(wire_text(exc.ws_message()))
            await websocket.close(exc.ws_close, reason=exc.message[:120])


class StreamConnection:
    """One accepted WebSocket stream, from the first message to the close."""

    def __init__(
        self,
        ws: WebSocket,
        state: ServiceState,
        engine: LivenessEngine,
        principal: Principal,
        nonce: str | None,
    ) -> None:
        self.ws = ws
        self.engine = engine
        self.settings = engine.settings
        self.metrics = engine.metrics
        self.request_id = uuid.uuid4().hex
        self.principal = principal
        self.nonce = nonce  # from ?nonce= or the start message: signed into the verdict
        self.verdict: dict | None = None  # label and score, for the access log
        self.access = state.access  # signs the result (service/security/access.py)
        self.drain = state.drain  # set when the server shuts down
        self.fps: float | None = None  # the client's frame rate: t = index / fps
        self.session: ScoringSession | None = None
        self.mailbox = Mailbox()
        self.limiter = TokenBucket.per_second(self.settings.max_stream_fps, FRAME_BURST_SECONDS)
        self.received = 0  # frames the client sent so far
        self.dropped = 0
        self.bad_in_row = 0
        self.opened = time.monotonic()
        self._send_lock = asyncio.Lock()

    async def send(self, message: BaseModel) -> None:
        async with self._send_lock:
            timeout = self.settings.stream_send_timeout_seconds
            try:
                await asyncio.wait_for(self.ws.send_text(wire_text(message)), timeout)
            except TimeoutError:
                raise SlowClient(f"the client read nothing for {timeout:g} s") from None

    # -- the connection -----------------------------------------------------------------
    async def run(self) -> str:
        """Serve the stream until it ends; returns the outcome (metrics label)."""
        receiver = asyncio.create_task(self._receive_loop())
        processor = asyncio.create_task(self._process_loop())
        draining = asyncio.create_task(self.drain.wait())
        try:
            done, _ = await asyncio.wait(
                {receiver, processor, draining}, return_when="FIRST_COMPLETED"
            )
            if draining in done:
                raise ShuttingDown(
                    "the server is shutting down: reconnect and send the frames again"
                )
            if receiver in done and receiver.result() == "end":
                await processor
                return await self._finish()
            if processor in done:
                processor.result()
            return "disconnect"
        except WebSocketDisconnect:
            return "disconnect"
        except SlowClient:
            return SlowClient.code  # it does not read: no message, no close handshake
        except ServiceError as exc:
            await self.fail(exc)
            return exc.code
        except Exception as exc:
            log.exception("stream %s failed", self.request_id)
            await self.fail(ServiceError(f"internal server error ({type(exc).__name__})"))
            return "internal_error"
        finally:
            for task in (receiver, processor, draining):
                task.cancel()
            await asyncio.gather(receiver, processor, draining, return_exceptions=True)
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
        self.metrics.observe_result("stream", body)
        body = self.access.attach_verdict(body, self.principal, self.nonce)
        accesslog.note_result(self, body)
        await self.send(ResultMessage(**dict(body), dropped=self.dropped))
        # The result is delivered; a client that hangs up before the close handshake
        # still counts as a stream that ended with its result.
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
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
        message = parse_text_message(text)
        if isinstance(message, EndMessage):
            return "end"
        if self.session is not None:
            raise StreamPolicy("'start' must be the first message", code="protocol_error")
        self.nonce = message.nonce or self.nonce
        await self._begin(message.fps or self.settings.stream_default_fps)
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
        await self.send(DroppedMessage(index=index, reason=reason, dropped=self.dropped))

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
            await self.send(exc.ws_message().model_copy(update={"index": item.index}))
            if self.bad_in_row >= self.settings.stream_max_bad_frames:
                raise BadFrame(
                    f"{self.bad_in_row} undecodable frames in a row", code="bad_frames"
                ) from None
            return
        self.bad_in_row = 0
        (result,) = await self.session.complete([prepared])
        latency = time.perf_counter() - item.received
        self.metrics.frame_seconds.observe(latency)
        # frames between encoded ones report the latest window of their face track
        window = self.session.latest_window
        message = frame_message(self.session, result, window, latency, self.dropped)
        await self.send(message)


async def refuse_origin(websocket: WebSocket, exc: OriginNotAllowed) -> None:
    """Refuse the handshake with the error as an HTTP 403 body (a close 1008 after
    accepting, where the server cannot send a denial response)."""
    scope_extensions = websocket.scope.get("extensions") or {}
    if "websocket.http.response" in scope_extensions:
        response = error_response(exc.status, exc.code, exc.message)
        with contextlib.suppress(Exception):
            await websocket.send_denial_response(response)
        return
    await websocket.accept()
    await close_with_error(websocket, exc)


async def serve_stream(websocket: WebSocket, state: ServiceState) -> None:
    """Check the Origin; accept; check credentials, readiness and capacity; run the stream;
    count and log it."""
    started = time.perf_counter()
    origin = websocket.headers.get("origin")
    allowed = state.settings.stream_origins
    if not origin_allowed(origin, websocket.headers.get("host"), allowed):
        refusal = OriginNotAllowed(
            f"a page from {origin[:100]!r} may not open this stream: only the server's own "
            "origin and LIVENESS_STREAM_ORIGINS may"
        )
        await refuse_origin(websocket, refusal)
        state.metrics.streams.labels(refusal.code).inc()
        accesslog.log_stream(
            uuid.uuid4().hex,
            None,
            refusal.code,
            frames=0,
            dropped=0,
            seconds=time.perf_counter() - started,
            verdict=None,
        )
        return
    await websocket.accept()
    conn: StreamConnection | None = None
    try:
        with admit_stream(websocket, state.access) as principal:
            engine = state.ready_engine()
            if state.drain.draining:
                raise ShuttingDown("the server is shutting down: connect to another instance")
            nonce = parse_nonce(websocket.query_params.get("nonce"))
            with engine.stream_slot():
                conn = StreamConnection(websocket, state, engine, principal, nonce)
                outcome = await conn.run()
    except ServiceError as exc:  # refused before the stream began (auth, limits, capacity)
        await close_with_error(websocket, exc)
        outcome = exc.code
    state.metrics.streams.labels(outcome).inc()
    accesslog.log_stream(
        conn.request_id if conn else uuid.uuid4().hex,
        conn.principal.name if conn else None,
        outcome,
        frames=conn.received if conn else 0,
        dropped=conn.dropped if conn else 0,
        seconds=time.perf_counter() - started,
        verdict=conn.verdict if conn else None,
    )
