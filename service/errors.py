"""Typed errors and the JSON shape every failure is answered with.

HTTP: ``{"error": {"code": "...", "message": "..."}}`` with the status of the error.
WebSocket: ``{"type": "error", "code": "...", "message": "..."}`` then a close code
(for errors that end the stream).

Statuses: 400 bad parameters or a malformed body, 401 missing or invalid credentials and
403 refused ones (service/security/access.py), 404 a page or file that is not there
(``not_found``), 408 an upload body that arrives too slowly (``upload_timeout``), 413 too large (``payload_too_large``, and from the video's header
``frame_too_large``, ``pixel_budget_exceeded``), 415 unsupported media type, 422 a video
that cannot be scored (``undecodable_video``, ``clip_too_long``, ``no_face``,
``too_few_frames``, ``processing_timeout``), 429 over an API key's rate
(service/security/ratelimit.py), 499 in the access log for an upload whose client went away
(``client_disconnected``: nobody reads the answer), 503 not ready or over capacity, 500
only for faults of the server itself (``internal_error``).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.schemas import ErrorDetail, ErrorMessage, ErrorResponse

log = logging.getLogger("liveness.service")

# WebSocket close codes (RFC 6455 §7.4.1 and the IANA registry)
WS_NORMAL = 1000
WS_UNSUPPORTED_DATA = 1003
WS_POLICY = 1008
WS_TOO_BIG = 1009
WS_SERVER_ERROR = 1011
WS_TRY_AGAIN_LATER = 1013


class ServiceError(Exception):
    """A failure the client is told about: HTTP status, WebSocket close code, stable code."""

    status = 500
    ws_close = WS_SERVER_ERROR
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def ws_message(self) -> ErrorMessage:
        return ErrorMessage(code=self.code, message=self.message)

    def headers(self) -> dict[str, str] | None:
        """Extra response headers (Retry-After, WWW-Authenticate)."""
        return {"Retry-After": "1"} if self.status == 503 else None


class BadRequest(ServiceError):
    status, ws_close, code = 400, WS_POLICY, "bad_request"


class RequestTimeout(ServiceError):
    """An upload body that stopped or slowed below the minimum rate (its slot is freed)."""

    status, ws_close, code = 408, WS_POLICY, "upload_timeout"


class ClientGone(ServiceError):
    """The client closed its connection: the work for it stops (status for the log only)."""

    status, ws_close, code = 499, WS_POLICY, "client_disconnected"


class NotFound(ServiceError):
    """404: a page, file or endpoint that is not there (or turned off)."""

    status, ws_close, code = 404, WS_POLICY, "not_found"


class PayloadTooLarge(ServiceError):
    status, ws_close, code = 413, WS_TOO_BIG, "payload_too_large"


class UnsupportedMediaType(ServiceError):
    status, ws_close, code = 415, WS_UNSUPPORTED_DATA, "unsupported_media_type"


class Unprocessable(ServiceError):
    """The input arrived whole but cannot be scored (codes: undecodable_video, ...)."""

    status, ws_close, code = 422, WS_UNSUPPORTED_DATA, "unprocessable"


class NotReady(ServiceError):
    status, ws_close, code = 503, WS_TRY_AGAIN_LATER, "not_ready"


class OverCapacity(ServiceError):
    status, ws_close, code = 503, WS_TRY_AGAIN_LATER, "over_capacity"


class StreamPolicy(ServiceError):
    """A stream broke a limit or the protocol (idle, too long, start out of order)."""

    status, ws_close, code = 400, WS_POLICY, "policy_violation"


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    """An HTTP error's body (``ErrorResponse``) as JSON-ready data."""
    return ErrorResponse(error=ErrorDetail(code=code, message=message)).model_dump()


def error_response(status: int, code: str, message: str, headers=None) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return error_response(exc.status, exc.code, exc.message, exc.headers())


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body"))
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return error_response(400, "bad_parameters", "; ".join(parts) or "invalid request")


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    code = codes.get(exc.status_code, f"http_{exc.status_code}")
    return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", f"internal server error ({type(exc).__name__})")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
