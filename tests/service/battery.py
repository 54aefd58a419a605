"""Tools of the bad-input battery (test_bad_inputs.py): media builders, raw-socket HTTP and
WebSocket clients, and ``Battery``, one handle on the secured server for every case."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import cv2
import httpx
import numpy as np

from tests.helpers import write_clip
from tests.service.secured import KEYS, RunningServer
from tests.service.support import Closed, LoopbackWs, jpeg, png


# -- media ------------------------------------------------------------------------------------
def upscaled_onto(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """``frame`` enlarged (aspect kept) and centred on a grey canvas of width x height."""
    scale = min(width / frame.shape[1], height / frame.shape[0])
    big = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    canvas = np.full((height, width, 3), 110, np.uint8)
    y, x = (height - big.shape[0]) // 2, (width - big.shape[1]) // 2
    canvas[y : y + big.shape[0], x : x + big.shape[1]] = big
    return canvas


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small JPEG whose start-of-frame header says width x height."""
    data = bytearray(jpeg(np.full((8, 8, 3), 100, np.uint8)))
    i = 2
    while data[i + 1] not in (0xC0, 0xC2):  # walk the markers to the SOF
        i += 2 + struct.unpack(">H", data[i + 2 : i + 4])[0]
    data[i + 5 : i + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def rgba_png(frame: np.ndarray) -> bytes:
    alpha = np.full(frame.shape[:2], 200, np.uint8)
    return png(np.dstack([frame, alpha]))


def grey_jpeg(frame: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    assert ok
    return buf.tobytes()


def empty_container(path: Path) -> bytes:
    """An AVI with its headers written and no frame in it."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 64))
    writer.release()
    return path.read_bytes()


def long_clip(path: Path, minutes: float = 10.0) -> bytes:
    """``minutes`` of tiny frames at 1 fps: cheap to make, over any sane duration limit."""
    frames = [np.full((48, 64, 3), (i * 7) % 255, np.uint8) for i in range(int(minutes * 60))]
    return write_clip(path, frames, 1.0).read_bytes()


# -- media: frame headers a lenient parser would skip, and real variants that must decode -------
def with_stray_byte(data: bytes, before: bytes = b"\xff\xdb") -> bytes:
    """``data`` with one 0x00 byte before its first ``before`` marker (DQT): libjpeg skips
    it with a warning and decodes the rest."""
    i = data.index(before)
    return data[:i] + b"\x00" + data[i:]


def jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def camera_jpeg(frame: np.ndarray) -> bytes:
    """A progressive JPEG with restart markers, an EXIF APP1, an APP13, an ICC APP2-sized
    APP2 and a comment before its tables, as camera and phone files have."""
    ok, buf = cv2.imencode(
        ".jpg",
        frame,
        [cv2.IMWRITE_JPEG_PROGRESSIVE, 1, cv2.IMWRITE_JPEG_RST_INTERVAL, 8],
    )
    assert ok
    data = buf.tobytes()
    tiff = b"MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x01\x00\x00"
    extra = (
        jpeg_segment(0xE1, b"Exif\x00\x00" + tiff + b"\xff\xd8\xff\xc0" * 8)  # markers inside
        + jpeg_segment(0xE2, b"ICC_PROFILE\x00\x01\x01" + bytes(3000))
        + jpeg_segment(0xED, b"Photoshop 3.0\x00" + bytes(64))
        + jpeg_segment(0xFE, b"a comment")
    )
    return data[:2] + extra + data[2:]


def png16(frame: np.ndarray) -> bytes:
    return png(frame.astype(np.uint16) * 257)


def grey_png(frame: np.ndarray) -> bytes:
    return png(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))


def rss_mib(pid: int) -> float:
    """A process's resident memory, MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


# -- raw sockets -------------------------------------------------------------------------------
def read_http_response(sock: socket.socket) -> bytes:
    answer = b""
    while True:
        head, sep, body = answer.partition(b"\r\n\r\n")
        if sep:
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            if len(body) >= length:
                return answer
        data = sock.recv(65536)
        if not data:
            return answer
        answer += data


def raw_exchange(url: str, head: bytes, body_chunks=()) -> bytes:
    """Send a request head and some body chunks (never the whole body); the answer."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=20) as s:
        s.sendall(head)
        for chunk in body_chunks:
            s.sendall(chunk)
        return read_http_response(s)


def raw_outcome(answer: bytes) -> str:
    """'413 payload_too_large' from a raw HTTP response."""
    head, _, body = answer.partition(b"\r\n\r\n")
    return f"{head.split(b' ')[1].decode()} {json.loads(body)['error']['code']}"


def ws_frame(opcode: int, payload: bytes) -> bytes:
    """One client frame (FIN, masked with a zero key: valid, and no per-byte work)."""
    n = len(payload)
    if n < 126:
        size = bytes([0x80 | n])
    elif n < 65536:
        size = bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        size = bytes([0x80 | 127]) + struct.pack(">Q", n)
    return bytes([0x80 | opcode]) + size + b"\0\0\0\0" + payload


@contextmanager
def deaf_websocket(server: RunningServer, key: str) -> Iterator[socket.socket]:
    """A WebSocket handshake by hand on a socket with a tiny receive buffer; the caller
    sends frames (ws_frame) and never reads an answer."""
    port = urlsplit(server.url).port
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    try:
        nonce = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            "GET /v1/stream HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {nonce}\r\n"
            f"Sec-WebSocket-Version: 13\r\nX-API-Key: {key}\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head
        yield sock
    finally:
        sock.close()


# -- the server, as the cases see it -----------------------------------------------------------
def outcome(r: httpx.Response) -> str:
    """'422 no_face', or '200 scored' for a result."""
    if r.status_code == 200:
        return "200 scored"
    return f"{r.status_code} {r.json()['error']['code']}"


def events(ws: LoopbackWs, limit: int = 500, timeout: float = 30.0) -> list[str]:
    """The answers up to the close, one word each: 'frame', 'dropped:rate', 'bad_frame'
    (an error's code), 'close 1003'."""
    seen: list[str] = []
    for _ in range(limit):
        m = ws.recv(timeout=timeout)
        if isinstance(m, Closed):
            return [*seen, f"close {m.code}"]
        kind = m["type"]
        seen.append(
            m["code"]
            if kind == "error"
            else f"dropped:{m['reason']}"
            if kind == "dropped"
            else kind
        )
    return seen


@dataclass
class Battery:
    server: RunningServer
    http: httpx.Client
    frames: list[np.ndarray]  # a real face clip, 256 px
    fps: float
    workdir: Path
    baseline: dict = field(default_factory=dict)  # the good clip's result before any case
    last_answer: dict = field(default_factory=dict)  # a case's last stream answer

    def post(self, body: bytes, ctype: str = "video/mp4", key: str | None = "main", **kw):
        headers = {"content-type": ctype, **(kw.pop("headers", None) or {})}
        if key is not None:
            headers["X-API-Key"] = KEYS[key]
        return self.http.post("/v1/liveness", content=body, headers=headers, **kw)

    def clip(self, name: str, frames: list[np.ndarray], fps: float | None = None) -> bytes:
        return write_clip(self.workdir / name, frames, fps or self.fps).read_bytes()

    @contextmanager
    def ws(self, key: str | None = "main", query: str = "", headers=None) -> Iterator[LoopbackWs]:
        from websockets.sync.client import connect

        extra = dict(headers or {})
        if key is not None:
            extra["X-API-Key"] = KEYS[key]
        url = self.server.ws_url + query
        with connect(url, additional_headers=extra, max_size=None, open_timeout=10) as conn:
            yield LoopbackWs(conn)

    def started(self, ws: LoopbackWs, **start) -> dict:
        ws.send_json({"type": "start", "fps": self.fps, **start})
        ready = ws.recv()
        assert ready["type"] == "ready", ready
        return ready

    def metric(self, sample: str) -> float:
        for line in self.http.get("/metrics").text.splitlines():
            if line.startswith(sample + " "):
                return float(line.split()[-1])
        return 0.0


def stream_events(battery: Battery, messages: list[bytes | str | dict], **ws) -> list[str]:
    """Send ``messages`` (frames, raw text, or JSON objects) then read to the close."""
    with battery.ws(**ws) as conn:
        for m in messages:
            if isinstance(m, dict):
                conn.send_json(m)
            elif isinstance(m, str):
                conn.conn.send(m)
            else:
                conn.send_bytes(m)
        return events(conn)
