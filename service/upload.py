"""Reading an uploaded video into memory, streaming, under a byte cap.

Two shapes of request body are accepted: ``multipart/form-data`` with the video in the
field ``file``, parsed chunk by chunk with python-multipart's streaming parser (never
spooled to a temporary file: frames must not touch disk), or the raw video as the body
with a video content type. A ``Content-Length`` over the cap is refused before a byte is
read; a body without one is refused as soon as the count passes the cap.

A body must keep coming: no gap longer than ``idle_seconds`` between two chunks, and once
``idle_seconds`` have passed since its first byte was awaited, an average of at least
``min_rate`` bytes per second. A slower body is answered 408 ``upload_timeout`` at the
moment it falls behind, so a client that trickles a byte every few seconds holds an upload
slot for ``idle_seconds`` at most, not for as long as it likes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from service.errors import BadRequest, PayloadTooLarge, RequestTimeout, UnsupportedMediaType

FILE_FIELD = "file"
VIDEO_CONTENT_TYPES = (
    "video/mp4",
    "video/webm",
    "video/x-msvideo",
    "video/avi",
    "video/quicktime",
    "video/x-matroska",
    "application/octet-stream",
)
MULTIPART = "multipart/form-data"


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the upload exceeds the limit of {limit} bytes")


def check_content_length(request: Request, limit: int) -> None:
    raw = request.headers.get("content-length")
    if raw is None:
        return
    try:
        length = int(raw)
    except ValueError:
        raise BadRequest(f"invalid Content-Length {raw!r}", code="bad_request") from None
    if length > limit:
        raise _too_large(limit)


class _FilePart:
    """Multipart callbacks that keep the bytes of the ``file`` field in memory."""

    def __init__(self) -> None:
        self.data: bytearray | None = None
        self._field: list[bytes] = []
        self._value: list[bytes] = []
        self._headers: dict[bytes, bytes] = {}
        self._in_file = False
        self.ended = False  # the closing boundary was seen

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, a, b: self._field.append(d[a:b]),
            "on_header_value": lambda d, a, b: self._value.append(d[a:b]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_end": self._end,
        }

    def _end(self) -> None:
        self.ended = True

    def _part_begin(self) -> None:
        self._headers = {}
        self._in_file = False

    def _header_end(self) -> None:
        self._headers[b"".join(self._field).strip().lower()] = b"".join(self._value).strip()
        self._field, self._value = [], []

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition"))
        name = options.get(b"name", b"").decode("latin-1")
        self._in_file = name == FILE_FIELD and self.data is None
        if self._in_file:
            self.data = bytearray()

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file and self.data is not None:
            self.data += data[start:end]


@dataclass(frozen=True)
class BodyPace:
    """How fast an upload body must arrive (see the module docstring)."""

    idle_seconds: float = 10.0
    min_rate: float = 8192.0  # bytes per second; 0: no rate

    def wait_limit(self, started: float, received: int, now: float) -> float:
        """Seconds the next chunk may take before the body is too slow."""
        wait = self.idle_seconds
        if self.min_rate > 0:
            behind_at = started + self.idle_seconds + received / self.min_rate
            wait = min(wait, behind_at - now)
        return max(0.0, wait)

    def timeout(self, received: int, elapsed: float) -> RequestTimeout:
        return RequestTimeout(
            f"the upload body arrived too slowly ({received} bytes in {elapsed:.1f} s): send "
            f"at least {self.min_rate:g} bytes/s after the first {self.idle_seconds:g} s, and "
            f"never pause for {self.idle_seconds:g} s"
        )


async def _paced(chunks: AsyncIterator[bytes], pace: BodyPace) -> AsyncIterator[bytes]:
    """``chunks`` while they keep ``pace``; RequestTimeout once they fall behind."""
    started = time.monotonic()
    received = 0
    while True:
        now = time.monotonic()
        try:
            chunk = await asyncio.wait_for(anext(chunks), pace.wait_limit(started, received, now))
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise pace.timeout(received, time.monotonic() - started) from None
        received += len(chunk)
        yield chunk


async def _read_capped(request: Request, limit: int, sink, pace: BodyPace) -> None:
    """Feed the body to ``sink`` chunk by chunk; stop with 413 once it passes ``limit``,
    with 408 once it falls behind ``pace``."""
    received = 0
    try:
        async for chunk in _paced(request.stream(), pace):
            received += len(chunk)
            if received > limit:
                raise _too_large(limit)
            if chunk:
                sink(chunk)
    except ClientDisconnect:
        raise BadRequest(
            "the client disconnected before the upload ended", code="incomplete_upload"
        ) from None


async def read_video_body(request: Request, limit: int, pace: BodyPace | None = None) -> bytes:
    """The uploaded video's bytes (raises 400/408/413/415 ServiceErrors)."""
    pace = pace or BodyPace()
    mime, params = parse_options_header(request.headers.get("content-type"))
    mime_type = mime.decode("latin-1").lower()
    check_content_length(request, limit)
    if mime_type == MULTIPART:
        data = await _read_multipart(request, params.get(b"boundary"), limit, pace)
    elif mime_type in VIDEO_CONTENT_TYPES:
        body = bytearray()
        await _read_capped(request, limit, body.extend, pace)
        data = bytes(body)
    else:
        shown = mime_type or "none"
        raise UnsupportedMediaType(
            f"content type {shown!r} is not accepted: send multipart/form-data with the video "
            f"in the field '{FILE_FIELD}', or the raw video as one of {', '.join(VIDEO_CONTENT_TYPES)}"
        )
    if not data:
        raise BadRequest("the uploaded video is empty", code="empty_upload")
    return data


async def _read_multipart(
    request: Request, boundary: bytes | None, limit: int, pace: BodyPace
) -> bytes:
    if not boundary:
        raise BadRequest("multipart/form-data without a boundary parameter", code="bad_multipart")
    part = _FilePart()
    try:
        parser = MultipartParser(boundary, part.callbacks())
        await _read_capped(request, limit, parser.write, pace)
        parser.finalize()
    except FormParserError as exc:
        raise BadRequest(f"malformed multipart body: {exc}", code="bad_multipart") from exc
    if not part.ended:
        raise BadRequest(
            "the multipart body ended before its closing boundary", code="bad_multipart"
        )
    if part.data is None:
        raise BadRequest(
            f"the multipart body has no field named '{FILE_FIELD}' holding the video",
            code="missing_file",
        )
    return bytes(part.data)
