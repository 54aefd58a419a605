"""The bad-input battery: every malformed, oversized, hostile or odd input against a real
``liveness serve`` process, each with the response the table in docs/security.md documents.

One parametrised test runs the cases in order against one secured server
(tests/service/secured.py); then the server must still answer /healthz, score the good
clip exactly as before, have logged no traceback, and have written nothing to its
TMPDIR or working directory.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import select
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest

from service.security.access import AccessControl, Principal
from service.security.tokens import InvalidToken, verify_verdict
from service.settings import Settings
from tests.helpers import write_clip
from tests.service.battery import (
    Battery,
    camera_jpeg,
    deaf_websocket,
    empty_container,
    events,
    grey_jpeg,
    grey_png,
    jpeg_claiming,
    long_clip,
    outcome,
    png16,
    raw_exchange,
    raw_outcome,
    rgba_png,
    rss_mib,
    stream_events,
    upscaled_onto,
    with_stray_byte,
    ws_frame,
)
from tests.service.secured import KEYS, SECURED, SIGNING_KEY, secured_server  # noqa: F401
from tests.service.slow_clients import trickle
from tests.service.support import LIMITS, REPO_ROOT, Closed, jpeg, wait_until_no_streams
from tests.video_media import encode_with_pyav, mjpeg_avi_claiming, mjpeg_avi_growing

MiB = 1024 * 1024
UPLOAD_LIMIT = LIMITS["max_upload_bytes"]
MESSAGE_LIMIT = SECURED["max_message_bytes"]


@dataclass(frozen=True)
class Case:
    name: str  # the docs table's first column (docs/security.md, Bad inputs)
    expect: str  # its second column: what the server answers
    run: Callable[[Battery], str]  # returns what the server did answer


CASES: list[Case] = []


def case(name: str, expect: str):
    def register(fn: Callable[[Battery], str]) -> Callable[[Battery], str]:
        CASES.append(Case(name, expect, fn))
        return fn

    return register


# -- uploads -----------------------------------------------------------------------------------
@case("empty body", "400 empty_upload")
def _(b):
    return outcome(b.post(b""))


@case("random bytes", "422 undecodable_video")
def _(b):
    return outcome(b.post(np.random.default_rng(1).bytes(100_000)))


@case("truncated mp4 (first 60 %)", "422 undecodable_video")
def _(b):
    data = b.clip("whole.mp4", b.frames)
    return outcome(b.post(data[: int(len(data) * 0.6)]))


@case("text file named .mp4", "422 undecodable_video")
def _(b):
    files = {"file": ("clip.mp4", b"this is not a video\n" * 50, "video/mp4")}
    return outcome(b.http.post("/v1/liveness", files=files, headers={"X-API-Key": KEYS["main"]}))


@case("zero-frame video", "422 undecodable_video")
def _(b):
    return outcome(b.post(empty_container(b.workdir / "empty.avi"), "video/x-msvideo"))


@case("one-frame video", "422 too_few_frames")
def _(b):
    return outcome(b.post(b.clip("one.mp4", b.frames[:1])))


@case("video with no face", "422 no_face")
def _(b):
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 255, (120, 160, 3), np.uint8) for _ in range(20)]
    return outcome(b.post(b.clip("noise.mp4", noise)))


@case("two faces in every frame", "200 scored")
def _(b):
    pairs = [np.hstack([f, f[:, ::-1]]) for f in b.frames]
    r = b.post(b.clip("two.mp4", pairs))
    frames = r.json()["frames"]
    assert max(f["faces"] for f in frames) == 2  # both seen, one tracked:
    assert len({f["box"][0] < 256 for f in frames if f["box"]}) == 1
    return outcome(r)


@case("10-minute clip (1 fps, 64x48)", "422 clip_too_long")
def _(b):
    r = b.post(long_clip(b.workdir / "long.mp4"))
    assert "frame 7 is at 7.00 s" in r.text  # refused once decoding passed 6 s, not at 600
    return outcome(r)


@case("Content-Length over the byte limit", "413 payload_too_large")
def _(b):
    head = (
        "POST /v1/liveness HTTP/1.1\r\nHost: t\r\nContent-Type: video/mp4\r\n"
        f"X-API-Key: {KEYS['main']}\r\nContent-Length: {UPLOAD_LIMIT * 100}\r\n\r\n"
    )
    # 64 KiB of the promised 300 MiB: the answer comes while the client still has the rest
    return raw_outcome(raw_exchange(b.server.url, head.encode(), [b"\0" * 65536]))


@case("chunked upload passing the byte limit", "413 payload_too_large")
def _(b):
    head = (
        "POST /v1/liveness HTTP/1.1\r\nHost: t\r\nContent-Type: video/mp4\r\n"
        f"X-API-Key: {KEYS['main']}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"%x\r\n" % 65536 + b"\0" * 65536 + b"\r\n"
    return raw_outcome(
        raw_exchange(b.server.url, head.encode(), [chunk] * (UPLOAD_LIMIT // 65536 + 2))
    )


@case("wrong content type (text/plain)", "415 unsupported_media_type")
def _(b):
    return outcome(b.post(b.clip("ok.mp4", b.frames[:8]), "text/plain"))


@case("multipart without the file field", "400 missing_file")
def _(b):
    files = {"video": ("clip.mp4", b.clip("ok.mp4", b.frames[:8]), "video/mp4")}
    return outcome(b.http.post("/v1/liveness", files=files, headers={"X-API-Key": KEYS["main"]}))


@case("query parameter out of range (fps=0)", "400 bad_parameters")
def _(b):
    return outcome(b.post(b"x", params={"fps": 0}))


@case("fps below the magnifier's band (fps=0.3)", "422 frame_rate_too_low")
def _(b):
    return outcome(b.post(b.clip("ok.mp4", b.frames[:8]), params={"fps": 0.3}))


# -- hostile containers, pixel and time budgets -----------------------------------------------
@contextmanager
def video_beside_the_server(b: Battery) -> Iterator[None]:
    """The good clip in the server's working directory, under the names the payloads use;
    removed afterwards (the directory must end the battery empty)."""
    data = b.clip("victim.mp4", b.frames)
    placed = [b.server.workdir / n for n in ("victim.mp4", "victim001.png", "sub/clip.mp4")]
    try:
        for path in placed:
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(data)
        yield
    finally:
        for path in placed:
            path.unlink(missing_ok=True)
        (b.server.workdir / "sub").rmdir()


def outcomes(b: Battery, payloads: list[bytes]) -> str:
    """The one answer every payload got, raw and as a multipart file, or all of them."""
    seen = set()
    with video_beside_the_server(b):
        for body in payloads:
            seen.add(outcome(b.post(body, "application/octet-stream")))
            files = {"file": ("clip.mp4", body, "video/mp4")}
            headers = {"X-API-Key": KEYS["main"]}
            seen.add(outcome(b.http.post("/v1/liveness", files=files, headers=headers)))
    return ", ".join(sorted(seen))


@case("ffconcat list naming a video beside the server", "422 undecodable_video")
def _(b):
    return outcomes(
        b,
        [
            b"ffconcat version 1.0\nfile victim.mp4\n",
            b"ffconcat version 1.0\nfile sub/clip.mp4\n",
            b"ffconcat version 1.0\nfile proc/self/fd/1\n",
        ],
    )


@case("HLS playlist naming a video beside the server", "422 undecodable_video")
def _(b):
    playlist = b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nvictim.mp4\n#EXT-X-ENDLIST\n"
    return outcomes(b, [playlist])


@case("concat:, subfile: and image-pattern names as the body", "422 undecodable_video")
def _(b):
    names = [b"concat:victim.mp4|victim.mp4", b"subfile,,start,0,end,0,,:victim.mp4"]
    return outcomes(b, [*names, b"victim%03d.png", b"file:victim.mp4"])


@case("mp4 box header followed by an ffconcat list", "422 undecodable_video")
def _(b):
    return outcomes(b, [b"\x00\x00\x00\x08ftyp" + b"ffconcat version 1.0\nfile victim.mp4\n"])


@case("the good clip as webm (VP8) and as avi (MJPG)", "200 scored, 200 scored")
def _(b):
    webm = encode_with_pyav("webm", "libvpx", b.frames, fps=round(b.fps))
    avi = write_clip(b.workdir / "good.avi", b.frames, b.fps, fourcc="MJPG").read_bytes()
    answers = [b.post(webm, "video/webm"), b.post(avi, "video/x-msvideo")]
    assert all(len(r.json()["windows"]) == len(b.baseline["windows"]) for r in answers)
    return ", ".join(outcome(r) for r in answers)


def quickly(b: Battery, body: bytes, within: float = 5.0) -> httpx.Response:
    start = time.monotonic()
    r = b.post(body)
    assert time.monotonic() - start < within, "refused, but not before decoding"
    return r


@case("8K grey clip (7680x4320, 5 frames)", "413 frame_too_large")
def _(b):
    grey = [np.full((4320, 7680, 3), 128, np.uint8)] * 5
    r = quickly(b, b.clip("8k.mp4", grey, 10.0))
    assert "7680x4320 (33177600 pixels), over the limit of 16777216 pixels" in r.text
    return outcome(r)


@case("16000x16000 clip (crafted AVI and JPEG headers)", "413 frame_too_large")
def _(b):
    r = quickly(b, mjpeg_avi_claiming(b.workdir, (16000, 16000), (16000, 16000)))
    assert "over the limit of 16777216 pixels per frame" in r.text
    return outcome(r)


@case("JPEGs claiming 16000x16000 behind a 64x48 AVI header", "422 undecodable_video")
def _(b):
    r = quickly(b, mjpeg_avi_claiming(b.workdir, (64, 48), (16000, 16000)))
    assert "first frame cannot be decoded" in r.text  # the decoder's max_pixels refused it
    return outcome(r)


@case("MJPEG AVI growing from 64x48 to 5000x4000 at frame 11", "413 frame_too_large")
def _(b):
    r = quickly(b, mjpeg_avi_growing((64, 48), (5000, 4000), 10, 2))
    assert "frame 11 changes the video's size to one over the limit of 16777216" in r.text
    return outcome(r)


@case("clip over the pixel budget (640x480, 300 frames)", "413 pixel_budget_exceeded")
def _(b):
    grey = [np.full((480, 640, 3), 100 + i % 50, np.uint8) for i in range(300)]
    r = quickly(b, b.clip("budget.mp4", grey, 60.0))
    assert "over the limit of 60000000 pixels per video" in r.text
    return outcome(r)


@case("live webm over the pixel budget (no frame count in its header)", "413 pixel_budget_exceeded")
def _(b):
    grey = [np.full((720, 1280, 3), 100 + i % 50, np.uint8) for i in range(70)]
    r = quickly(b, encode_with_pyav("webm", "libvpx", grey, seekable=False), within=20)
    assert "add up to more than the limit of 60000000 pixels" in r.text  # counted, decoding
    return outcome(r)


@case("body trickled at 1 byte per second", "408 upload_timeout")
def _(b):
    head = (
        "POST /v1/liveness HTTP/1.1\r\nHost: t\r\nContent-Type: video/mp4\r\n"
        f"X-API-Key: {KEYS['main']}\r\nContent-Length: 1000000\r\n\r\n"
    )
    start = time.monotonic()
    answer = trickle(b.server.url, head.encode(), interval=1.0, limit=20.0)
    assert time.monotonic() - start < 8  # upload_idle_seconds is 2
    return raw_outcome(answer)


# -- credentials -------------------------------------------------------------------------------
@case("missing API key", "401 unauthorized")
def _(b):
    r = b.post(b"x", key=None)
    assert r.headers["www-authenticate"].startswith("Bearer")
    return outcome(r)


@case("invalid API key", "401 unauthorized")
def _(b):
    return outcome(b.post(b"x", key=None, headers={"X-API-Key": "not-a-key-0123456789"}))


@case("revoked API key", "403 forbidden")
def _(b):
    return outcome(b.post(b"x", key="revoked"))


@case("expired access token", "401 token_expired")
def _(b):
    access = AccessControl(Settings(api_keys=SECURED["api_keys"]))
    old = access.issue_access_token(Principal("main", "key"), now=time.time() - 600).token
    return outcome(b.post(b"x", key=None, headers={"Authorization": f"Bearer {old}"}))


@case("access token used to make a token", "403 forbidden")
def _(b):
    token = b.http.post("/v1/token", headers={"X-API-Key": KEYS["main"]}).json()["token"]
    return outcome(b.http.post("/v1/token", headers={"Authorization": f"Bearer {token}"}))


@case("tampered verdict token", "refused offline; 401 invalid_token")
def _(b):
    head, payload, sig = b.baseline["verdict_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "==="))
    forged = base64.urlsafe_b64encode(json.dumps({**claims, "score": 0.999}).encode())
    tampered = f"{head}.{forged.rstrip(b'=').decode()}.{sig}"
    with pytest.raises(InvalidToken, match="bad signature"):
        verify_verdict(tampered, SIGNING_KEY)
    r = b.post(b"x", key=None, headers={"Authorization": f"Bearer {tampered}"})
    return "refused offline; " + outcome(r)


# -- streams -----------------------------------------------------------------------------------
@case("corrupt JPEG frame", "bad_frame, frame")
def _(b):
    data = jpeg(b.frames[0])
    with b.ws() as ws:
        b.started(ws)
        ws.send_bytes(data[: len(data) // 2])
        ws.send_bytes(data)
        return ", ".join(m.get("code", m["type"]) for m in (ws.recv(), ws.recv()))


@case("random bytes as frames", "bad_frame, bad_frame, bad_frame, bad_frames, close 1003")
def _(b):
    with b.ws() as ws:
        b.started(ws)
        answers = []
        for i in range(2):  # one at a time: a frame sent before the last is answered may be dropped
            ws.send_bytes(np.random.default_rng(i).bytes(5000))
            answers.append(ws.recv()["code"])
        ws.send_bytes(np.random.default_rng(2).bytes(5000))  # the third in a row ends it
        return ", ".join(answers + events(ws))


@case("frame header claiming 20000x20000 px", "bad_frame")
def _(b):
    with b.ws() as ws:
        b.started(ws)
        ws.send_bytes(jpeg_claiming(20000, 20000))
        m = ws.recv()
    assert "over 36000000 pixels" in m["message"]  # refused before decoding
    return m["code"]


def face_frame_answer(b: Battery, data: bytes) -> str:
    with b.ws() as ws:
        b.started(ws)
        ws.send_bytes(data)
        m = b.last_answer = ws.recv()
    assert m["type"] == "frame" and m["box"] is not None and m["faces"] >= 1, m
    return "frame, face found"


@case("PNG with alpha", "frame, face found")
def _(b):
    return face_frame_answer(b, rgba_png(b.frames[0]))


@case("grayscale JPEG", "frame, face found")
def _(b):
    return face_frame_answer(b, grey_jpeg(b.frames[0]))


@case("8K frame (7680x4320 JPEG)", "frame, face found")
def _(b):
    data = jpeg(upscaled_onto(b.frames[0], 7680, 4320), quality=80)
    assert len(data) < MESSAGE_LIMIT
    answer = face_frame_answer(b, data)
    x, y, w, h = b.last_answer["box"]  # in the downscaled frame's pixels (max_side 1280)
    assert x + w <= 1280 and y + h <= 720 and w > 200
    return answer


@case("text message that is not JSON", "bad_message, close 1003")
def _(b):
    return ", ".join(stream_events(b, ["hello"]))


@case("JSON of the wrong shape", "bad_message, close 1003")
def _(b):
    return ", ".join(stream_events(b, ["[1, 2, 3]"]))


@case('start with "fps": "fast"', "bad_parameters, close 1008")
def _(b):
    return ", ".join(stream_events(b, [{"type": "start", "fps": "fast"}]))


@case('start with "fps": 0.3', "frame_rate_too_low, close 1003")
def _(b):
    return ", ".join(stream_events(b, [{"type": "start", "fps": 0.3}]))


@case("start with a nonce of spaces", "bad_parameters, close 1008")
def _(b):
    return ", ".join(stream_events(b, [{"type": "start", "nonce": "a b c"}]))


@case("start after frames", "ready, frame, protocol_error, close 1008")
def _(b):
    with b.ws() as ws:
        ws.send_bytes(jpeg(b.frames[0]))
        answers = [ws.recv()["type"], ws.recv()["type"]]
        ws.send_json({"type": "start", "fps": 10})
        return ", ".join(answers + events(ws))


@case("binary message over the size limit", "message_too_big, close 1009")
def _(b):
    return ", ".join(stream_events(b, [b"\xff\xd8\xff" + b"\0" * MESSAGE_LIMIT]))


@case("message over twice the size limit", "close 1009")
def _(b):
    return ", ".join(stream_events(b, [b"\0" * (2 * MESSAGE_LIMIT + 1)]))


@case("frames faster than the accepted rate", "every frame answered, some dropped:rate")
def _(b):
    tiny = jpeg(np.full((32, 32, 3), 90, np.uint8))
    with b.ws() as ws:
        b.started(ws)
        for _ in range(60):  # 30 fps allowed, bursts of 15
            ws.send_bytes(tiny)
        answers = [ws.recv() for _ in range(60)]
    assert sorted(m["index"] for m in answers) == list(range(60))
    rate = [m for m in answers if m["type"] == "dropped" and m["reason"] == "rate"]
    assert 30 <= len(rate) <= 50
    return "every frame answered, some dropped:rate"


@case("client that never reads", "cut off (slow_client), slot freed")
def _(b):
    sample = 'liveness_streams_total{outcome="slow_client"}'
    before = b.metric(sample)
    with deaf_websocket(b.server, KEYS["second"]) as sock:
        sock.settimeout(1.0)
        frame = ws_frame(2, jpeg(np.full((16, 16, 3), 128, np.uint8)))
        deadline = time.monotonic() + 60
        while b.metric(sample) == before and time.monotonic() < deadline:
            try:
                for _ in range(2000):
                    sock.sendall(frame)
            except (TimeoutError, OSError):
                time.sleep(0.5)  # the server stopped reading: it waits on its own sends
    outcomes = [x for x in b.http.get("/metrics").text.splitlines() if "streams_total{" in x]
    streams = [x for x in b.server.log().splitlines() if "stream" in x.lower()][-8:]
    assert b.metric(sample) == before + 1, (outcomes, streams)
    freed = b.metric("liveness_active_streams") == 0
    return f"cut off (slow_client), slot {'freed' if freed else 'held'}"


@case("connection that goes idle", "idle_timeout, close 1008")
def _(b):
    with b.ws() as ws:
        b.started(ws)
        started = time.monotonic()
        seen = events(ws)
    assert 1.5 < time.monotonic() - started < 10  # stream_idle_seconds is 2
    return ", ".join(seen)


@case("stream without a key", "unauthorized, close 1008")
def _(b):
    return ", ".join(stream_events(b, [], key=None))


@case("API key in the stream URL", "forbidden, close 1008")
def _(b):
    return ", ".join(stream_events(b, [], key=None, query=f"?token={KEYS['main']}"))


@case("stream with a revoked key", "forbidden, close 1008")
def _(b):
    return ", ".join(stream_events(b, [], key="revoked"))


@case("more streams than the key may open", "too_many_streams, close 1013")
def _(b):
    with b.ws("streams") as one, b.ws("streams") as two:
        b.started(one)
        b.started(two)
        return ", ".join(stream_events(b, [], key="streams"))


# -- connections: header limits, control frames, frame headers, origins, failed credentials,
# docs and headers ------------------------------------------------------------------------------
HEADER_TIMEOUT = SECURED["header_timeout_seconds"]
MAX_FAILURES = SECURED["auth_max_failures"]


def server_fds(b: Battery) -> int:
    return len(os.listdir(f"/proc/{b.server.pid}/fd"))


def read_all(sock: socket.socket) -> bytes:
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


@case("200 connections that send half a request header", "408 header_timeout, all closed")
def _(b):
    port = urlsplit(b.server.url).port
    fds = server_fds(b)
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(200)]
    started = time.monotonic()
    for s in socks:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Half: ")
    answers = set()
    for s in socks:
        s.settimeout(max(0.1, started + HEADER_TIMEOUT + 10 - time.monotonic()))
        try:
            data = read_all(s)
            answers.add(raw_outcome(data) if data.startswith(b"HTTP/") else "closed, no answer")
        except TimeoutError:
            answers.add("held open")
        s.close()
    assert time.monotonic() - started < HEADER_TIMEOUT + 10
    deadline = time.monotonic() + 5
    while server_fds(b) > fds + 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    closed = "all closed" if server_fds(b) <= fds + 5 else "descriptors held"
    return ", ".join([*sorted(answers), closed])


@case("one request with a 64 MiB header", "431 header_too_large, RSS flat")
def _(b):
    port = urlsplit(b.server.url).port
    before = rss_mib(b.server.pid)
    sent, answer = 0, b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: ")
        try:
            while sent < 64 * MiB and not select.select([s], [], [], 0)[0]:
                s.sendall(b"a" * 65536)
                sent += 65536
        except OSError:  # refused while sending: what it answered is still readable
            pass
        answer = read_all(s)
    assert sent < 16 * MiB, f"{sent} bytes of header were taken"
    grew = rss_mib(b.server.pid) - before
    return f"{raw_outcome(answer)}, RSS {'flat' if grew < 20 else f'+{grew:.0f} MiB'}"


@case("WebSocket client flooding pings, never reading", "dropped, RSS flat, slot freed")
def _(b):
    before = rss_mib(b.server.pid)
    pings = ws_frame(9, b"p" * 125) * 200
    started, outcome = time.monotonic(), "held open"
    with deaf_websocket(b.server, KEYS["second"]) as sock:
        sock.settimeout(0.5)
        while time.monotonic() - started < 30:
            try:
                sock.sendall(pings)
            except TimeoutError:  # the server stopped reading it
                continue
            except OSError:
                outcome = "dropped"
                break
    grew = rss_mib(b.server.pid) - before
    wait_until_no_streams(b.http)
    assert time.monotonic() - started < 10
    return f"{outcome}, RSS {'flat' if grew < 20 else f'+{grew:.0f} MiB'}, slot freed"


@case("pings below the limit and no message", "idle_timeout, close 1008")
def _(b):
    from websockets.exceptions import ConnectionClosed

    seen: list[str] = []
    with b.ws() as ws:
        b.started(ws)
        started = time.monotonic()
        while time.monotonic() - started < 15:
            with contextlib.suppress(ConnectionClosed):
                ws.conn.ping()  # 2 a second, under the limit of 5: they keep nothing alive
            try:
                m = ws.recv(timeout=0.5)
            except TimeoutError:
                continue
            if isinstance(m, Closed):
                seen.append(f"close {m.code}")
                break
            seen.append(m.get("code", m["type"]))
    assert 1.5 < time.monotonic() - started < 10  # stream_idle_seconds is 2
    return ", ".join(seen)


@case("JPEG with a stray byte, header claiming 20000x20000 px", "bad_frame, RSS flat")
def _(b):
    before = rss_mib(b.server.pid)
    with b.ws() as ws:
        b.started(ws)
        ws.send_bytes(with_stray_byte(jpeg_claiming(20000, 20000)))
        m = ws.recv()
    assert "not a marker" in m["message"], m
    grew = rss_mib(b.server.pid) - before
    return f"{m['code']}, RSS {'flat' if grew < 50 else f'+{grew:.0f} MiB'}"


@case("two streams sending a 30000x30000 JPEG with a stray byte", "bad_frame, bad_frame, RSS flat")
def _(b):
    before = rss_mib(b.server.pid)
    data = with_stray_byte(jpeg_claiming(30000, 30000))
    with b.ws() as one, b.ws("second") as two:
        b.started(one)
        b.started(two)
        one.send_bytes(data)
        two.send_bytes(data)
        codes = [one.recv()["code"], two.recv()["code"]]
    grew = rss_mib(b.server.pid) - before
    return ", ".join([*codes, f"RSS {'flat' if grew < 50 else f'+{grew:.0f} MiB'}"])


@case("progressive JPEG with EXIF, APPn and restart markers", "frame, face found")
def _(b):
    return face_frame_answer(b, camera_jpeg(b.frames[0]))


@case("16-bit PNG", "frame, face found")
def _(b):
    return face_frame_answer(b, png16(b.frames[0]))


@case("grayscale PNG", "frame, face found")
def _(b):
    return face_frame_answer(b, grey_png(b.frames[0]))


def native_log_line(line: str) -> bool:
    """``WARNING:  {"event": "native", ...}``: a line of the service's JSON logger."""
    m = re.fullmatch(r"[A-Z]+:\s+(\{.*\})", line)
    return bool(m) and json.loads(m[1]).get("event") == "native"


@case("JPEG frame whose scan ends early", "frame, libjpeg's warning logged as JSON")
def _(b):
    data = jpeg(b.frames[0])
    data = data[: len(data) * 9 // 10] + b"\xff\xd9"  # "Corrupt JPEG data: premature end ..."
    with b.ws() as ws:
        b.started(ws)
        ws.send_bytes(data)
        answer = ws.recv()["type"]
    deadline = time.monotonic() + 5
    while "Corrupt JPEG data" not in b.server.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = [x for x in b.server.log().splitlines() if "Corrupt JPEG data" in x]
    assert lines, "libjpeg printed nothing: the case tests nothing"
    as_json = all(native_log_line(x) for x in lines)
    return f"{answer}, libjpeg's warning {'logged as JSON' if as_json else 'printed raw'}"


@case("stream opened by a page of another origin", "403 origin_not_allowed")
def _(b):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    headers = {"Origin": "https://evil.example", **b.server.headers()}
    try:
        with connect(b.server.ws_url, additional_headers=headers, open_timeout=10):
            return "accepted"
    except InvalidStatus as exc:
        body = json.loads(exc.response.body)
        return f"{exc.response.status_code} {body['error']['code']}"


@case("stream opened by the server's own page (same Origin)", "ready")
def _(b):
    with b.ws(headers={"Origin": b.server.url}) as ws:
        return b.started(ws)["type"]


@case(
    f"{MAX_FAILURES} wrong API keys from one address",
    "401 x100, then 429 too_many_failures; its good key 429, other addresses 200",
)
def _(b):
    transport = httpx.HTTPTransport(local_address="127.0.0.9")
    with httpx.Client(base_url=b.server.url, transport=transport, timeout=30) as other:
        wrong = {"X-API-Key": "wrong-key-0123456789abcdef"}
        first = [other.post("/v1/token", headers=wrong).status_code for _ in range(MAX_FAILURES)]
        refused = other.post("/v1/token", headers=wrong)
        assert int(refused.headers["retry-after"]) >= 1
        good_there = other.post("/v1/token", headers=b.server.headers()).status_code
    good_here = b.http.post("/v1/token", headers=b.server.headers()).status_code
    counts = "x100" if set(first) == {401} else str(sorted(set(first)))
    return (
        f"401 {counts}, then {outcome(refused)}; its good key {good_there}, "
        f"other addresses {good_here}"
    )


@case("/docs and /redoc", "200, same-origin files with integrity, CSP")
def _(b):
    for page in ("/docs", "/redoc"):
        r = b.http.get(page)
        assert r.status_code == 200
        assert "script-src 'self'" in r.headers["content-security-policy"]
        tags = re.findall(r'(?:src|href)="([^"]+)"(?: integrity="([^"]+)")?', r.text)
        assert tags and all(not re.match(r"(https?:)?//", url) for url, _ in tags)
        for url, integrity in tags:
            asset = b.http.get("/" + url)
            assert asset.status_code == 200, url
            if integrity:
                digest = base64.b64encode(hashlib.sha384(asset.content).digest()).decode()
                assert integrity == f"sha384-{digest}", url
        assert sum(1 for _, i in tags if i) >= (2 if page == "/docs" else 1)
    return "200, same-origin files with integrity, CSP"


@case("headers of an API answer", "nosniff, no-referrer, DENY, no-store, default-src 'none'")
def _(b):
    h = b.post(b"").headers  # 400 empty_upload
    names = ("x-content-type-options", "referrer-policy", "x-frame-options", "cache-control")
    csp = h["content-security-policy"].split(";")[0]
    return ", ".join([*(h[n] for n in names), csp])


# -- the battery -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def battery(secured_server, genuine_clip, genuine_mp4, tmp_path_factory):  # noqa: F811
    frames, fps = genuine_clip
    with httpx.Client(base_url=secured_server.url, timeout=120) as http:
        b = Battery(secured_server, http, frames, fps, tmp_path_factory.mktemp("battery"))
        first = b.post(genuine_mp4.read_bytes())
        assert first.status_code == 200, first.text
        b.baseline = first.json()
        yield b


def test_enough_distinct_cases():
    assert len(CASES) >= 25 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("bad", CASES, ids=[c.name for c in CASES])
def test_bad_input_gets_its_documented_response(battery, bad):
    assert bad.run(battery) == bad.expect
    assert battery.http.get("/healthz").status_code == 200


def test_the_server_is_unharmed_after_the_battery(battery, genuine_mp4):
    again = battery.post(genuine_mp4.read_bytes())
    assert again.status_code == 200
    assert again.json()["score"] == battery.baseline["score"]
    assert [w["score"] for w in again.json()["windows"]] == [
        w["score"] for w in battery.baseline["windows"]
    ]
    log = battery.server.log()
    assert "Traceback" not in log and "Exception in ASGI application" not in log
    assert '"status": 500' not in log
    # frames and uploads were decoded in memory: nothing in TMPDIR or the working directory
    assert list(battery.server.tmpdir.iterdir()) == []
    assert list(battery.server.workdir.iterdir()) == []


def test_the_security_page_documents_every_case():
    page = (REPO_ROOT / "docs" / "security.md").read_text()
    section = page.split("\n## Bad inputs\n", 1)[1].split("\n## ", 1)[0]
    rows = {
        m.group(1).strip(" `"): m.group(2).strip(" `")
        for m in re.finditer(r"^\| ([^|]+) \| ([^|]+) \|", section, re.M)
    }
    missing = [(c.name, c.expect) for c in CASES if rows.get(c.name) != c.expect]
    assert not missing, f"docs/security.md bad-input table lacks or differs on: {missing}"
