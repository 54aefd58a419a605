"""Clients that send an upload too slowly, or not at all, on raw sockets."""

from __future__ import annotations

import contextlib
import socket
import time
from urllib.parse import urlsplit


def _complete(answer: bytes) -> bool:
    head, sep, body = answer.partition(b"\r\n\r\n")
    if not sep:
        return False
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return len(body) >= length


def trickle(url: str, head: bytes, *, interval: float, limit: float) -> bytes:
    """Send a request head, then one body byte per ``interval`` seconds until the server
    answers; the answer (b"" if none came within ``limit`` seconds)."""
    parts = urlsplit(url)
    deadline = time.monotonic() + limit
    answer = b""
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head)
        sock.settimeout(interval)
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                if not answer:
                    with contextlib.suppress(OSError):  # closed by the server after answering
                        sock.sendall(b"\0")
                continue
            if not data:
                return answer
            answer += data
            if _complete(answer):
                return answer
    return answer
