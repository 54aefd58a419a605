"""The WebSocket handshake's ``Origin`` check: a web page of another site may not open a
stream with the credentials its visitor's browser holds (cross-site WebSocket hijacking).

A browser's ``Origin`` must be the server's own (the ``Host`` it asked for, same port)
or in ``stream_origins``; a client that sends no Origin is not a browser and is not
checked. A refused handshake is answered 403 ``origin_not_allowed`` (service/stream.py).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from service.errors import WS_POLICY, ServiceError


class OriginNotAllowed(ServiceError):
    """403 at the handshake: a web page of another origin tried to open the stream."""

    status, ws_close, code = 403, WS_POLICY, "origin_not_allowed"


_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _authority(host: str, port: int | None, scheme: str) -> tuple[str, int | None]:
    return host.lower().strip("[]"), port if port is not None else _DEFAULT_PORTS.get(scheme)


def origin_allowed(origin: str | None, host: str | None, allowed: frozenset[str]) -> bool:
    """A browser's ``Origin`` is the server's own (the ``Host`` it asked for, same port) or
    in ``allowed`` ('*': any). No Origin (not a browser): allowed."""
    if origin is None or "*" in allowed:
        return True
    origin = origin.strip().rstrip("/").lower()
    if origin in allowed:
        return True
    try:
        parts = urlsplit(origin)
        mine = urlsplit(f"{parts.scheme}://{host}") if host else None
        if mine is None or parts.scheme not in ("http", "https") or not parts.hostname:
            return False
        theirs = _authority(parts.hostname, parts.port, parts.scheme)
        return theirs == _authority(mine.hostname or "", mine.port, parts.scheme)
    except ValueError:  # a malformed Origin or Host (a bad port)
        return False
