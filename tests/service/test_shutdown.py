"""Graceful shutdown of a real ``liveness serve`` process: on SIGTERM an upload in flight
still gets its result, an open stream gets a last message and a close 1001, and the
process exits by itself."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import pytest

from tests.service.secured import run_server
from tests.service.support import Closed, LoopbackWs, png

pytestmark = pytest.mark.server  # starts its own server processes


def test_sigterm_finishes_uploads_and_closes_streams_with_1001(
    tiny_model_dir, genuine_clip, genuine_mp4, tmp_path
):
    from websockets.sync.client import connect

    frames, fps = genuine_clip
    data = genuine_mp4.read_bytes()
    body_started = threading.Event()
    upload: list[httpx.Response] = []

    def slow_body():
        yield data[: len(data) // 2]
        body_started.set()
        time.sleep(1.5)  # the rest arrives after the signal
        yield data[len(data) // 2 :]

    with run_server(tiny_model_dir, tmp_path, log_level="info") as server:
        with connect(server.ws_url, max_size=None, open_timeout=10) as conn:
            ws = LoopbackWs(conn)
            ws.send_json({"type": "start", "fps": fps})
            assert ws.recv()["type"] == "ready"
            for f in frames[:5]:
                ws.send_bytes(png(f))
                assert ws.recv()["type"] == "frame"

            def post() -> None:
                upload.append(
                    httpx.post(
                        server.url + "/v1/liveness",
                        content=slow_body(),
                        headers={"content-type": "video/mp4"},
                        timeout=60,
                    )
                )

            poster = threading.Thread(target=post)
            poster.start()
            assert body_started.wait(timeout=30)
            signalled = time.monotonic()
            os.kill(server.pid, signal.SIGTERM)
            last, closed = ws.recv(timeout=10), ws.recv(timeout=10)
        poster.join(timeout=60)
        returncode = server.process.wait(timeout=30)
        exited = time.monotonic() - signalled
        log = server.log()
    assert last["type"] == "error" and last["code"] == "shutting_down", last
    assert isinstance(closed, Closed) and closed.code == 1001
    assert upload and upload[0].status_code == 200, upload
    assert upload[0].json()["frames_decoded"] == len(frames)
    assert returncode in (0, -signal.SIGTERM) and exited < 30  # uvicorn re-raises the signal
    assert "Traceback" not in log
    assert '"outcome": "shutting_down"' in log  # the stream's access-log line
