"""Limits that need a real socket or a held server: early 413s, capacity, readiness."""

from __future__ import annotations

import threading

import httpx
import pytest
from fastapi.testclient import TestClient

from service.deps import state_of
from tests.service.battery import raw_exchange
from tests.service.support import LIMITS, Closed, InProcessWs, make_app

LIMIT = LIMITS["max_upload_bytes"]


def test_content_length_over_the_limit_is_refused_before_the_body(server_url):
    head = (
        b"POST /v1/liveness HTTP/1.1\r\nHost: test\r\nContent-Type: video/mp4\r\n"
        b"Content-Length: 1000000000\r\n\r\n"
    )
    answer = raw_exchange(server_url, head, [b"\x00" * 1024])  # 1 KiB of the promised 1 GB
    assert answer.startswith(b"HTTP/1.1 413")
    assert b'"payload_too_large"' in answer


def test_chunked_upload_is_refused_once_it_passes_the_limit(server_url):
    head = (
        b"POST /v1/liveness HTTP/1.1\r\nHost: test\r\nContent-Type: video/mp4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"\x00" * 65536
    n = LIMIT // len(chunk) + 2  # just past the limit; the body's last chunk never comes
    answer = raw_exchange(server_url, head, [b"%x\r\n" % len(chunk) + chunk + b"\r\n"] * n)
    assert answer.startswith(b"HTTP/1.1 413")
    assert b'"payload_too_large"' in answer


def test_uploads_over_capacity_get_503_on_a_real_server(server_url, genuine_mp4):
    """max_uploads (3) uploads whose bodies are still arriving hold every slot."""
    release = threading.Event()
    started = threading.Barrier(LIMITS["max_uploads"] + 1)
    data = genuine_mp4.read_bytes()
    results: list[int] = []

    def slow_body():
        yield data[:1000]
        started.wait(timeout=20)
        release.wait(timeout=30)
        yield data[1000:]

    def slow_upload():
        r = httpx.post(
            server_url + "/v1/liveness",
            content=slow_body(),
            headers={"content-type": "video/mp4"},
            timeout=60,
        )
        results.append(r.status_code)

    threads = [threading.Thread(target=slow_upload) for _ in range(LIMITS["max_uploads"])]
    for t in threads:
        t.start()
    try:
        started.wait(timeout=20)
        for _ in range(100):  # the slots are taken once the handlers run
            r = httpx.post(
                server_url + "/v1/liveness",
                content=data,
                headers={"content-type": "video/mp4"},
                timeout=30,
            )
            if r.status_code == 503:
                break
        assert r.status_code == 503 and r.json()["error"]["code"] == "over_capacity"
        assert r.headers["retry-after"] == "1"
    finally:
        release.set()
        for t in threads:
            t.join(timeout=60)
    assert results == [200] * LIMITS["max_uploads"]
    after = httpx.post(
        server_url + "/v1/liveness", content=data, headers={"content-type": "video/mp4"}
    )
    assert after.status_code == 200


def test_uploads_over_capacity_get_503_in_process(inprocess_client, genuine_mp4):
    engine = state_of(inprocess_client.app).engine
    slots = [engine.upload_slot() for _ in range(LIMITS["max_uploads"])]
    for slot in slots:
        slot.__enter__()
    try:
        r = inprocess_client.post(
            "/v1/liveness", content=genuine_mp4.read_bytes(), headers={"content-type": "video/mp4"}
        )
    finally:
        for slot in slots:
            slot.__exit__(None, None, None)
    assert r.status_code == 503 and r.json()["error"]["code"] == "over_capacity"
    assert engine.active_uploads == 0


def test_a_server_without_its_model_is_alive_but_not_ready(tiny_model_dir, genuine_mp4):
    client = TestClient(make_app(tiny_model_dir))  # no `with`: the lifespan never ran
    assert client.get("/healthz").json() == {"status": "alive", "model": None}
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["error"]["code"] == "not_ready"
    assert "not loaded" in ready.json()["error"]["message"]
    r = client.post(
        "/v1/liveness", content=genuine_mp4.read_bytes(), headers={"content-type": "video/mp4"}
    )
    assert r.status_code == 503 and r.json()["error"]["code"] == "not_ready"
    with client.websocket_connect("/v1/stream") as session:
        ws = InProcessWs(session)
        error, closed = ws.recv(), ws.recv()
    assert error["type"] == "error" and error["code"] == "not_ready"
    assert isinstance(closed, Closed) and closed.code == 1013


def test_start_up_fails_clearly_without_a_model(tmp_path):
    missing = make_app(tmp_path / "missing")
    with (
        pytest.raises(RuntimeError, match="does not exist.*LIVENESS_MODEL_DIR"),
        TestClient(missing),
    ):
        pass
    (tmp_path / "empty").mkdir()
    empty = make_app(tmp_path / "empty")
    with pytest.raises(RuntimeError, match="no manifest.json"), TestClient(empty):
        pass
