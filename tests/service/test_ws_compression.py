"""The stream's WebSocket offers no compression: a client that asks for permessage-deflate
gets a plain connection (frames are JPEG or PNG; inflating a small message to the size
limit costs the server CPU that other streams wait for)."""

from __future__ import annotations

import base64
import os
import socket
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.server


def _handshake(url: str, extensions: str | None) -> bytes:
    port = urlsplit(url).port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        nonce = base64.b64encode(os.urandom(16)).decode()
        offer = f"Sec-WebSocket-Extensions: {extensions}\r\n" if extensions else ""
        sock.sendall(
            "GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {nonce}\r\n"
            f"Sec-WebSocket-Version: 13\r\n{offer}\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(1)
            if not chunk:
                break
            head += chunk
    return head


def test_a_client_asking_for_deflate_gets_an_uncompressed_stream(server):
    head = _handshake(server.url, "permessage-deflate; client_max_window_bits")
    assert head.startswith(b"HTTP/1.1 101"), head
    assert b"sec-websocket-extensions" not in head.lower(), head
    plain = _handshake(server.url, None)  # and without the offer, the same handshake
    assert plain.startswith(b"HTTP/1.1 101"), plain
