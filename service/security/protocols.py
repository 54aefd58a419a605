"""uvicorn's HTTP and WebSocket protocols with the connection limits the service needs.

``LimitedHttpProtocol`` (httptools, uvicorn's fast parser, plus two limits it lacks):

- a **header timeout**: a connection must deliver its whole request line and headers
  within ``header_timeout_seconds`` of connecting (on a kept-alive connection: of the next
  request's first byte). Past it, a partial request is answered ``408 header_timeout``
  and the connection closed; a connection that sent nothing is closed silently.
- a **header size limit**: a request line plus headers over ``max_header_bytes`` is
  answered ``431 header_too_large`` and the connection closed, before the request
  reaches the application. httptools itself keeps any size. Parsed lines are counted
  exactly (the parser is stopped from its callback); a line still incomplete, which
  httptools holds until it ends, is bounded by the bytes received, so what is held is
  the limit plus one read (at most 256 KiB).

``GuardedWebSocketProtocol`` (uvicorn's websockets-sansio protocol) makes control frames
count. The stock protocol answers every ping with a pong written straight to the
transport, whether or not the client reads, and reads on: a client that floods pings
and never reads grows the server's write buffer without bound, and closing such a
connection waits forever for that buffer to drain. Here:

- pings and pongs from the client are limited to ``ws_max_control_frames_per_second``
  (bursts of two seconds' worth); over it the connection is closed with 1008: the
  close frame is sent, the server's side shut, and what the client still sends is read
  and dropped (so the close is not lost to a reset) until the client closes, or for at
  most two seconds, when the connection is dropped;
- no pong is queued while the transport's write buffer is over its high-water mark
  (the client is not reading): RFC 6455 asks for a pong "as soon as is practical";
- a connection whose write buffer stays over the high-water mark for twice
  ``stream_send_timeout_seconds`` is aborted (the stream's own send timeout, which
  answers ``slow_client``, comes first for its answers; this also covers pongs and
  closes nobody reads);
- when the application is done with a connection and its buffer has not drained two
  seconds later, the connection is aborted, so its memory is freed.

Pings never reset a stream's idle timer (only messages do): a client that only pings is
closed as idle.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from service.errors import error_body
from service.security.ratelimit import TokenBucket
from service.settings import Settings

log = logging.getLogger("liveness.service")
CONTROL_BURST_SECONDS = 2.0  # control frames allowed at once: two seconds' worth
CLOSE_GRACE_SECONDS = 2.0  # after a close, how long an undrained connection is kept


class _HeaderTooLarge(Exception):
    """Raised from a parser callback to stop httptools at the header size limit."""


class LimitedHttpProtocol(HttpToolsProtocol):
    """httptools with a header timeout and a header size limit (class attributes set by
    ``http_protocol``)."""

    header_timeout = 10.0
    max_header_bytes = 64 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._in_head = True  # between a request's start (or the connection's) and its header end
        self._head_bytes = 0  # bytes received since then (a bound while a header is incomplete)
        self._head_size = 0  # the request line and header lines parsed so far
        self._oversize = False

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # uvicorn's HttpToolsProtocol.data_received, with the header limits around the parser
        if self._in_head:
            self._head_bytes += len(data)
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            if self._oversize:
                self._refuse_oversize()
            else:
                msg = "Invalid HTTP request received."
                self.logger.warning(msg)
                self.send_400_response(msg)
            return
        # a header still incomplete (httptools holds a header line until it ends)
        if self._in_head and self._head_bytes > self.max_header_bytes:
            self._refuse_oversize()

    # parser callbacks --------------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_size = True, 0
        if self._head_timer is None:  # the first request's deadline runs from the connection
            self._arm_head_timer()

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)  # "name: value\r\n", at least
        super().on_header(name, value)

    def _count_head(self, size: int) -> None:
        """The complete part of the header, exactly: stops the parser past the limit, before
        the request reaches the application."""
        self._head_size += size
        if self._head_size > self.max_header_bytes:
            self._oversize = True
            raise _HeaderTooLarge

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._head_bytes = True, 0

    # the limits ---------------------------------------------------------------------------
    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or not self._in_head:
            return
        if self._head_bytes == 0 and (self.cycle is None or self.cycle.response_complete):
            self.transport.close()  # nothing was asked: nothing to answer
            return
        self._refuse(
            408,
            "header_timeout",
            f"the request header was not complete within {self.header_timeout:g} s",
        )

    def _refuse_oversize(self) -> None:
        self._refuse(
            431,
            "header_too_large",
            f"the request line and headers are over {self.max_header_bytes} bytes",
        )

    def _refuse(self, status: int, code: str, message: str) -> None:
        self._in_head = False
        self._cancel_head_timer()
        if self.transport.is_closing():
            return
        log.info("HTTP %s: %d %s, closed", _peer(self.client), status, code)
        if self.cycle is not None and not self.cycle.response_complete:
            # a pipelined request's header while the previous answer is still being sent:
            # no answer can go in between, so the connection is dropped
            self.transport.abort()
            return
        body = json.dumps(error_body(code, message)).encode()
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"x-content-type-options: nosniff\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()


class GuardedWebSocketProtocol(WebSocketsSansIOProtocol):
    """websockets-sansio with control frames rate-limited and write stalls bounded
    (class attributes set by ``websocket_protocol``)."""

    max_control_per_second = 5.0
    stall_seconds = 20.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._control = TokenBucket.per_second(
            self.max_control_per_second, CONTROL_BURST_SECONDS, clock=self.loop.time
        )
        self._write_paused = False
        self._stall_timer: asyncio.TimerHandle | None = None
        self._failed = False
        self._gone = False  # the connection is lost

    # control frames ----------------------------------------------------------------------
    def handle_ping(self) -> None:
        if self._failed:
            return
        if not self._control.allow():
            self._fail_policy("ping frames over the limit")
            return
        if self._write_paused:
            self.conn.data_to_send()  # the client is not reading: its pong is not queued
            return
        super().handle_ping()

    def handle_pong(self, event) -> None:
        if self._failed:
            return
        if not self._control.allow():
            self._fail_policy("pong frames over the limit")
            return
        super().handle_pong(event)

    def _fail_policy(self, reason: str) -> None:
        """Close 1008, stop reading, tell the application; drop the connection if the client
        does not take the close within the grace period."""
        self._failed = True
        self.stop_keepalive()
        log.info("WebSocket %s: %s, closing (1008)", _peer(self.client), reason)
        if not self.disconnected:
            self.disconnected = True  # the application's sends end (ClientDisconnected)
            self.queue.put_nowait({"type": "websocket.disconnect", "code": 1008, "reason": reason})
        # the close frame, then end-of-stream; from here the connection's parser drops
        # what the client sends (RFC 6455 7.1.7)
        self.conn.fail(1008, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        # A lingering close: only our side is shut (after the close frame is written) and
        # what the client still sends is read and dropped until it closes or the grace
        # period ends. Closing the socket with the client's frames unread would make the
        # kernel answer with a reset, which can destroy the close frame before the client
        # reads it, so the client would never learn why it was closed.
        if self.transport.can_write_eof():
            self.transport.write_eof()
        else:  # pragma: no cover - TCP transports can half-close
            self.transport.close()
        self.transport.resume_reading()
        # uvicorn closes the transport when the application returns unless a close timer
        # is set: this one ends the lingering close instead
        if self.close_timer is not None:
            self.close_timer.cancel()
        self.close_timer = self.loop.call_later(CLOSE_GRACE_SECONDS, self._abort_if_open)

    # write stalls ----------------------------------------------------------------------------
    def pause_writing(self) -> None:
        super().pause_writing()
        self._write_paused = True
        if self._stall_timer is None:
            self._stall_timer = self.loop.call_later(self.stall_seconds, self._stalled)

    def resume_writing(self) -> None:
        super().resume_writing()
        self._write_paused = False
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None

    def _stalled(self) -> None:
        self._stall_timer = None
        if self._write_paused and not self._gone:
            log.info(
                "WebSocket %s: the client read nothing for %g s, dropped",
                _peer(self.client),
                self.stall_seconds,
            )
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone = True
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None
        super().connection_lost(exc)

    def on_task_complete(self, task: asyncio.Task[None]) -> None:
        super().on_task_complete(task)
        # the application is done; a close that nobody reads must not hold the buffer
        # (after a policy close its own timer already ends the connection)
        if not self._failed:
            self.loop.call_later(CLOSE_GRACE_SECONDS, self._abort_if_open)

    def _abort_if_open(self) -> None:
        if self._gone or self.transport is None:
            return
        if self.transport.get_write_buffer_size() or self._failed:
            self.transport.abort()
        elif not self.transport.is_closing():
            self.transport.close()


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "?"


def http_protocol(settings: Settings) -> type[LimitedHttpProtocol]:
    """The HTTP protocol class for ``uvicorn.Config(http=...)`` with these settings' limits."""
    return type(
        "LimitedHttpProtocol",
        (LimitedHttpProtocol,),
        {
            "header_timeout": settings.header_timeout_seconds,
            "max_header_bytes": settings.max_header_bytes,
        },
    )


def websocket_protocol(settings: Settings) -> type[GuardedWebSocketProtocol]:
    """The WebSocket protocol class for ``uvicorn.Config(ws=...)``."""
    return type(
        "GuardedWebSocketProtocol",
        (GuardedWebSocketProtocol,),
        {
            "max_control_per_second": settings.ws_max_control_frames_per_second,
            "stall_seconds": 2 * settings.stream_send_timeout_seconds,
        },
    )
