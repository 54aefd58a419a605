"""The HTTP header limits at their edges, against the real keyed server on loopback: a
slow but timely header is served, a kept-alive connection's next header has its own
deadline, a header just under the size limit is served and one just over it is not."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

from tests.service.battery import raw_outcome, read_http_response
from tests.service.secured import SECURED, secured_server  # noqa: F401 (fixture)

TIMEOUT = SECURED["header_timeout_seconds"]
REQUEST = b"GET /healthz HTTP/1.1\r\nHost: t\r\n"


def connect(server) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", urlsplit(server.url).port), timeout=TIMEOUT + 10)
    return s


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_a_slow_header_that_ends_in_time_is_served(secured_server):  # noqa: F811
    with connect(secured_server) as s:
        for part in (b"GET /healthz HT", b"TP/1.1\r\nHost: t\r\n", b"X-Slow: 1\r\n\r\n"):
            s.sendall(part)
            time.sleep(TIMEOUT / 4)
        assert status(read_http_response(s)) == 200


def test_a_kept_alive_connection_gets_a_new_deadline_for_each_header(secured_server):  # noqa: F811
    with connect(secured_server) as s:
        time.sleep(TIMEOUT * 0.6)
        s.sendall(REQUEST + b"\r\n")
        assert status(read_http_response(s)) == 200
        time.sleep(TIMEOUT * 0.6)  # past the first deadline, counted from the connection
        s.sendall(REQUEST + b"\r\n")
        assert status(read_http_response(s)) == 200
        s.sendall(REQUEST)  # half of the third header, then nothing
        started = time.monotonic()
        answer = read_http_response(s)
        assert raw_outcome(answer) == "408 header_timeout"
        assert TIMEOUT - 0.5 < time.monotonic() - started < TIMEOUT + 5
        assert s.recv(1) == b""  # closed


def test_the_header_size_limit_at_its_edge(secured_server):  # noqa: F811
    from service.settings import Settings

    limit = Settings().max_header_bytes
    for filler, expected in ((limit - 2048, 200), (limit + 1024, 431)):
        with connect(secured_server) as s:
            s.sendall(REQUEST + b"X-Fill: " + b"f" * filler + b"\r\n\r\n")
            answer = read_http_response(s)
        assert status(answer) == expected, answer[:200]
    assert raw_outcome(answer) == "431 header_too_large"


def test_a_client_over_the_ping_limit_that_reads_gets_close_1008(secured_server):  # noqa: F811
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    from service.settings import Settings

    burst = int(2 * Settings().ws_max_control_frames_per_second)  # two seconds' worth
    headers = secured_server.headers()
    with connect(secured_server.ws_url, additional_headers=headers, open_timeout=10) as ws:
        for _ in range(burst):  # within the burst: answered
            ws.ping().wait(10)
        try:
            for _ in range(burst):
                ws.ping()
            ws.recv(timeout=10)
            raise AssertionError("no close")
        except ConnectionClosed as exc:
            assert exc.rcvd is not None and exc.rcvd.code == 1008
            assert "ping frames over the limit" in exc.rcvd.reason


def server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of each unmasked server frame in ``data`` (short payloads only)."""
    frames, i = [], 0
    while i + 2 <= len(data):
        opcode, size = data[i] & 0x0F, data[i + 1] & 0x7F
        assert size < 126, "only short frames are expected here"
        frames.append((opcode, data[i + 2 : i + 2 + size]))
        i += 2 + size
    return frames


def test_the_close_1008_survives_pings_the_client_sends_after_it(secured_server):  # noqa: F811
    """A client still flooding when the server closes must get the close frame: the
    server keeps reading (and dropping) its frames, so its socket is never closed with
    unread data, which the kernel would answer with a reset that destroys the close."""
    from service.settings import Settings
    from tests.service.battery import deaf_websocket, ws_frame
    from tests.service.secured import KEYS

    burst = int(2 * Settings().ws_max_control_frames_per_second)
    ping = ws_frame(9, b"p" * 100)
    with deaf_websocket(secured_server, KEYS["second"]) as sock:
        sock.sendall(ping * (burst + 1))  # one over the burst: the server closes
        time.sleep(0.2)
        # A client busy writing learns of the close late; a reset would fail its writes
        # (websockets then drops its socket unread, so the close is lost).
        until = time.monotonic() + 0.5
        while time.monotonic() < until:
            sock.sendall(ping)  # raises BrokenPipeError/ConnectionResetError on a reset
            time.sleep(0.01)
        sock.settimeout(5)
        data = b""
        while chunk := sock.recv(65536):  # a reset here raises ConnectionResetError
            data += chunk
    frames = server_frames(data)
    ops = [op for op, _ in frames]
    assert ops == [0xA] * len(ops[:-1]) + [0x8] and len(ops) > burst, ops
    close = frames[-1][1]
    assert int.from_bytes(close[:2], "big") == 1008
    assert b"ping frames over the limit" in close[2:]
