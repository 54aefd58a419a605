"""One structured access-log line per HTTP request and per stream (logger ``liveness.access``).

A line is a JSON object: ``event`` ("http" or "stream"), ``request_id`` (also sent as
the ``X-Request-ID`` header and, for results, the body's ``request_id``), ``client``
(the API key's name), sizes, timings, the status or outcome, and a result's ``label``
and ``score``. Never headers, query strings (a stream's ``?token=``), bodies, frames,
face crops, keys or tokens: the route is logged as its template.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.schemas import LivenessResult

log = logging.getLogger("liveness.access")
# '"WebSocket /v1/stream?token=..."' or '"GET /x?y HTTP/1.1"' in uvicorn's own lines
_REQUEST_LINE_QUERY = re.compile(
    r'("(?:WebSocket|GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) [^"?\s]*)\?[^"\s]*'
)


class RedactQueryStrings(logging.Filter):
    """Drops query strings from the request lines uvicorn logs (its WebSocket handshake
    line prints the URL, and a stream's ?token= with it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _REQUEST_LINE_QUERY.sub(r"\1", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def request_id_of(request: Request) -> str:
    """The id the access log gives this request (a fresh one outside the middleware)."""
    return getattr(request.state, "request_id", None) or uuid.uuid4().hex


def note_result(state: Any, body: LivenessResult) -> None:
    """Remember a result's verdict for the request's access-log line."""
    state.verdict = {"label": body.label, "score": round(body.score, 4)}


def _client(state: Mapping[str, Any]) -> str | None:
    principal = state.get("principal")
    return getattr(principal, "name", None)


def write(fields: dict[str, Any]) -> None:
    log.info(json.dumps({k: v for k, v in fields.items() if v is not None}, sort_keys=False))


def log_stream(
    request_id: str,
    client: str | None,
    outcome: str,
    *,
    frames: int,
    dropped: int,
    seconds: float,
    verdict: Mapping[str, Any] | None,
) -> None:
    write(
        {
            "event": "stream",
            "request_id": request_id,
            "client": client,
            "outcome": outcome,
            "frames": frames,
            "dropped": dropped,
            "ms": round(seconds * 1000, 1),
            **(verdict or {}),
        }
    )


class AccessLogMiddleware:
    """Pure ASGI middleware: a request id per HTTP request and its access-log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id = uuid.uuid4().hex
        sizes = {"in": 0, "out": 0}
        status = 500

        async def counting_receive() -> Message:
            message = await receive()
            sizes["in"] += len(message.get("body", b""))
            return message

        async def tagging_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                sizes["out"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, tagging_send)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            write(
                {
                    "event": "http",
                    "request_id": request_id,
                    "client": _client(state),
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "bytes_in": sizes["in"],
                    "bytes_out": sizes["out"],
                    "ms": round((time.perf_counter() - start) * 1000, 1),
                    **(state.get("verdict") or {}),
                }
            )
