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
