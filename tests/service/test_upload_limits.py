"""Upload time budgets and fairness against real ``liveness serve`` processes: slow
senders lose their slot (408) while good uploads are served, an upload whose client left
stops at its next turn, a costly upload stops at its processing deadline (422), and a
stream's ``ready`` does not wait behind uploads in flight."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest

from tests.helpers import write_clip
from tests.service.battery import raw_outcome
from tests.service.secured import KEYS, run_server, secured_server  # noqa: F401
from tests.service.slow_clients import trickle
from tests.service.support import LIMITS

pytestmark = pytest.mark.server  # starts its own server processes

FRAMES_SAMPLE = 'liveness_frames_processed_total{source="upload"}'


def metric(http: httpx.Client, sample: str) -> float:
    for line in http.get("/metrics").text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return 0.0


def post_until_scored(url: str, body: bytes, headers: dict, within: float) -> tuple[int, float]:
    """Post ``body`` until it is answered 200 (503 means: retry); (status, seconds)."""
    start = time.monotonic()
    while True:
        r = httpx.post(url + "/v1/liveness", content=body, headers=headers, timeout=60)
        if r.status_code != 503 or time.monotonic() - start > within:
            return r.status_code, time.monotonic() - start
        time.sleep(0.2)


@pytest.fixture(scope="module")
def long_face_clip(genuine_clip, tmp_path_factory) -> bytes:
    """The face clip looped to 300 frames at 50 fps: 6 s, seconds of work for the server."""
    frames, _ = genuine_clip
    looped = [frames[i % len(frames)] for i in range(300)]
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    return write_clip(path, looped, 50.0).read_bytes()


def test_slow_senders_lose_their_slots_and_good_uploads_are_served(secured_server, genuine_mp4):  # noqa: F811
    """Eight uploads promising 1,000,000 bytes and sending one every 10 s: each is
    answered 408 (or 503 while the slots were full) within seconds, and a good upload
    sent meanwhile is scored."""
    head = (
        "POST /v1/liveness HTTP/1.1\r\nHost: t\r\nContent-Type: video/mp4\r\n"
        f"X-API-Key: {KEYS['main']}\r\nContent-Length: 1000000\r\n\r\n"
    ).encode()
    answers: list[str] = []
    started = time.monotonic()

    def slow() -> None:
        answers.append(raw_outcome(trickle(secured_server.url, head, interval=10, limit=30)))

    threads = [threading.Thread(target=slow) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.5)  # the slow ones hold the slots now
    headers = {"X-API-Key": KEYS["main"], "content-type": "video/mp4"}
    status, waited = post_until_scored(secured_server.url, genuine_mp4.read_bytes(), headers, 20)
    for t in threads:
        t.join(timeout=40)
    assert status == 200 and waited < 10
    assert len(answers) == 8 and set(answers) <= {"408 upload_timeout", "503 over_capacity"}
    assert answers.count("408 upload_timeout") >= LIMITS["max_uploads"]
    assert time.monotonic() - started < 15  # upload_idle_seconds is 2, not 10 s a byte


def send_and_vanish(url: str, body: bytes) -> None:
    """A whole upload, then the connection closed without reading the answer."""
    parts = urlsplit(url)
    head = (
        "POST /v1/liveness HTTP/1.1\r\nHost: t\r\nContent-Type: video/mp4\r\n"
        f"X-API-Key: {KEYS['main']}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        sock.sendall(head + body)
        time.sleep(0.15)  # the body is in and decoding has begun


def test_an_upload_whose_client_left_stops_and_frees_its_slot(secured_server, long_face_clip):  # noqa: F811
    url = secured_server.url
    with httpx.Client(base_url=url, timeout=60) as http:
        before = metric(http, FRAMES_SAMPLE)
        gone = [threading.Thread(target=send_and_vanish, args=(url, long_face_clip))]
        gone += [threading.Thread(target=send_and_vanish, args=(url, long_face_clip))]
        gone += [threading.Thread(target=send_and_vanish, args=(url, long_face_clip))]
        for t in gone:
            t.start()
        for t in gone:
            t.join()
        headers = {"X-API-Key": KEYS["main"], "content-type": "video/mp4"}
        # every slot was taken by the three: a new upload is served once they stopped
        status, waited = post_until_scored(url, long_face_clip, headers, 30)
        assert status == 200
        after_good = metric(http, FRAMES_SAMPLE)
        time.sleep(1.0)
        assert metric(http, FRAMES_SAMPLE) == after_good  # nothing still runs for them
    # the good upload scored its 300 frames; the three that left, fewer than half of
    # their 900 together (each stops at its next turn once its client has gone)
    assert after_good - before - 300 < 450
    log = secured_server.log()
    assert log.count('"status": 499') >= 3


@pytest.fixture(scope="module")
def deadline_server(tiny_model_dir, tmp_path_factory):
    settings = {"upload_processing_seconds": 1, "max_video_pixels": 10**10}
    with run_server(tiny_model_dir, tmp_path_factory.mktemp("deadline"), **settings) as server:
        yield server


@pytest.fixture(scope="module")
def costly_clip(tmp_path_factory) -> bytes:
    """1920x1080 grey frames, 300 at 50 fps: accepted by the budgets, seconds to process
    (each is decoded, scaled down and searched for a face: about 8 ms on an idle core,
    2.5 s in all, against the test server's 1 s deadline)."""
    levels = [np.full((1080, 1920, 3), 100 + 5 * i, np.uint8) for i in range(8)]
    frames = [levels[(i // 40) % len(levels)] for i in range(300)]  # small P-frames
    return write_clip(tmp_path_factory.mktemp("costly") / "c.mp4", frames, 50.0).read_bytes()


def test_an_upload_past_its_processing_deadline_is_stopped(deadline_server, costly_clip):
    start = time.monotonic()
    r = httpx.post(
        deadline_server.url + "/v1/liveness",
        content=costly_clip,
        headers={"content-type": "video/mp4"},
        timeout=60,
    )
    elapsed = time.monotonic() - start
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "processing_timeout"
    assert "longer than the limit of 1 s" in r.json()["error"]["message"]
    assert elapsed < 5


def ready_seconds(server_url: str) -> float:
    from websockets.sync.client import connect

    start = time.monotonic()
    with connect(server_url.replace("http", "ws", 1) + "/v1/stream", open_timeout=30) as ws:
        ws.send('{"type": "start", "fps": 15}')
        assert '"ready"' in ws.recv(timeout=60)
        return time.monotonic() - start


def posting(url: str, clip: bytes, answers: list[int]) -> threading.Thread:
    """A thread (not started) that uploads ``clip`` and appends the answer's status."""

    def upload() -> None:
        r = httpx.post(
            url + "/v1/liveness", content=clip, headers={"content-type": "video/mp4"}, timeout=60
        )
        answers.append(r.status_code)

    return threading.Thread(target=upload)


def test_a_stream_is_ready_while_costly_uploads_are_in_flight(deadline_server, costly_clip):
    idle = min(ready_seconds(deadline_server.url) for _ in range(3))
    answers: list[int] = []

    bombs = [posting(deadline_server.url, costly_clip, answers) for _ in range(2)]
    for t in bombs:
        t.start()
    time.sleep(0.2)  # both are decoding
    loaded = [ready_seconds(deadline_server.url) for _ in range(3)]
    in_flight = sum(t.is_alive() for t in bombs)
    for t in bombs:
        t.join(timeout=30)
    assert in_flight == 2 and answers == [422, 422]
    assert max(loaded) < idle + 1.0, (idle, loaded)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_memory_for_the_largest_accepted_frames_stays_bounded(deadline_server, tmp_path):
    """Two uploads of 4096x4096 frames (the largest max_frame_pixels accepts) at once: the
    server holds one frame of each at a time, scaled down as it is converted; afterwards
    its RSS is back near where it was."""
    frames = [np.full((4096, 4096, 3), 90 + i, np.uint8) for i in range(12)]
    big = write_clip(tmp_path / "big.mp4", frames, 10.0).read_bytes()
    del frames
    pid = deadline_server.pid
    baseline = rss_mib(pid)
    peak = [baseline]
    answers: list[int] = []

    threads = [posting(deadline_server.url, big, answers) for _ in range(2)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        peak.append(rss_mib(pid))
        time.sleep(0.05)
    time.sleep(0.5)
    after = rss_mib(pid)
    print(f"server RSS MiB: baseline {baseline:.0f}, peak {max(peak):.0f}, after {after:.0f}")
    assert answers == [422, 422], answers  # no face, or past the 1 s deadline
    assert max(peak) - baseline < 400, (baseline, max(peak))
    assert after - baseline < 100, (baseline, after)
