"""The scale-out profile on loopback: two real `liveness serve` replicas behind a real nginx
running the repository's template, as docker-compose.yml's `scale` profile runs it.

Checked: uploads and WebSocket streams pass through nginx (upgrade headers), both replicas
serve, each stream stays on one replica and ends with its result, and a rolling restart onto
a new model directory loses no request.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from model.manifest import read_manifest
from tests.deploy.support import (
    Nginx,
    Replica,
    find_nginx,
    sample,
    start_nginx,
    start_replica,
    wait_ready,
)
from tests.helpers import export_tiny_model, real_frames, write_clip
from tests.service.support import free_port

pytestmark = pytest.mark.server  # starts its own server processes

STREAM_FRAMES = 24  # ~1 s of the clip: 14 frames encoded at 15 fps, windows of T=8
UPLOADS = "liveness_http_requests_total"
STREAMS = "liveness_streams_total"
FRAMES = "liveness_frames_processed_total"


@dataclass
class Cluster:
    nginx: Nginx
    replicas: list[Replica]
    logs: Path


@pytest.fixture(scope="module")
def nginx_binary() -> Path:
    binary = find_nginx()
    if binary is None:
        pytest.skip("nginx is not installed (`make system-deps` installs Debian's package)")
    return binary


@pytest.fixture(scope="module")
def face_frames(real_clip_paths) -> tuple[list[np.ndarray], float]:
    path = next(p for p in real_clip_paths if "d11" in p.name)
    return real_frames(path, STREAM_FRAMES, max_side=256)


@pytest.fixture(scope="module")
def face_mp4(face_frames, tmp_path_factory) -> bytes:
    frames, fps = face_frames
    return write_clip(tmp_path_factory.mktemp("clips") / "face.mp4", frames, fps).read_bytes()


@pytest.fixture(scope="module")
def cluster(nginx_binary, tiny_model_dir, tmp_path_factory):
    logs = tmp_path_factory.mktemp("scaleout")
    replicas = [start_replica(tiny_model_dir, free_port(), logs / f"r{i}.log") for i in range(2)]
    nginx = None
    try:
        for replica in replicas:
            wait_ready(replica)
        nginx = start_nginx(
            nginx_binary, logs / "nginx", free_port(), [r.address for r in replicas]
        )
        yield Cluster(nginx, replicas, logs)
    finally:
        if nginx is not None:
            nginx.stop()
        for replica in replicas:
            replica.stop()


def upload(url: str, clip: bytes) -> httpx.Response:
    return httpx.post(
        url + "/v1/liveness", content=clip, headers={"content-type": "video/mp4"}, timeout=120
    )


def upstreams_in_log(nginx: Nginx, pattern: str) -> list[str]:
    """The `upstream=` field of the access log lines whose request matches ``pattern``."""
    lines = [line for line in nginx.log_lines() if re.search(pattern, line)]
    return [re.search(r"upstream=(\S+)", line)[1] for line in lines]


def test_uploads_are_balanced_over_the_replicas(cluster, face_mp4, tiny_model_dir):
    manifest = read_manifest(tiny_model_dir)
    before = [
        sample(r.metrics(), UPLOADS, route="/v1/liveness", status="200") for r in cluster.replicas
    ]
    logged = len(upstreams_in_log(cluster.nginx, r'"POST /v1/liveness'))
    bodies = []
    for _ in range(4):
        response = upload(cluster.nginx.url, face_mp4)
        assert response.status_code == 200, response.text
        bodies.append(response.json())
    after = [
        sample(r.metrics(), UPLOADS, route="/v1/liveness", status="200") for r in cluster.replicas
    ]
    # least_conn with no upload open elsewhere falls back to round robin: 2 and 2
    assert [a - b for a, b in zip(after, before, strict=True)] == [2, 2]
    served = upstreams_in_log(cluster.nginx, r'"POST /v1/liveness')[logged:]
    assert Counter(served) == {r.address: 2 for r in cluster.replicas}
    # the same clip and model on either replica: the same answer
    assert {b["model"]["hash"] for b in bodies} == {manifest.model_hash}
    assert max(b["score"] for b in bodies) - min(b["score"] for b in bodies) < 1e-6
    assert len({b["request_id"] for b in bodies}) == 4


def test_the_proxy_answers_probes_and_hides_per_replica_metrics(cluster):
    assert httpx.get(cluster.nginx.url + "/readyz", timeout=10).json()["status"] == "ready"
    assert httpx.get(cluster.nginx.url + "/healthz", timeout=10).status_code == 200
    assert httpx.get(cluster.nginx.url + "/metrics", timeout=10).status_code == 403


def test_query_strings_stay_out_of_the_proxy_log(cluster):
    """A browser's stream carries its access token in the URL: nginx logs the path only."""
    secret = "tok-5f1c0ffee"
    r = httpx.get(cluster.nginx.url + f"/healthz?token={secret}", timeout=10)
    assert r.status_code == 200
    wait_for_log_lines(cluster.nginx, r'"GET /healthz ', 1)
    assert not [line for line in cluster.nginx.log_lines() if secret in line]


def jpeg(frame: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return buf.tobytes()


def test_streams_pass_the_proxy_and_each_stays_on_one_replica(cluster, face_frames):
    """Four streams open together: least_conn gives each replica two; every frame of a
    stream is answered by the replica that answered its start, and every stream ends with
    its result and a normal close."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    frames, fps = face_frames
    data = [jpeg(f) for f in frames]
    ws_url = cluster.nginx.url.replace("http://", "ws://") + "/v1/stream"
    before = [r.metrics() for r in cluster.replicas]
    logged = len(upstreams_in_log(cluster.nginx, r'"GET /v1/stream'))
    with ExitStack() as stack:
        conns, readies = [], []
        for _ in range(4):  # one after the other, each counted open before the next
            conn = stack.enter_context(connect(ws_url, open_timeout=10, max_size=None))
            conn.send(json.dumps({"type": "start", "fps": fps}))
            readies.append(json.loads(conn.recv(timeout=30)))
            conns.append(conn)
        answers: list[list[dict]] = [[] for _ in conns]
        for frame in data:  # the streams interleaved, frame by frame
            for conn, seen in zip(conns, answers, strict=True):
                conn.send(frame)
                seen.append(json.loads(conn.recv(timeout=30)))
        results, closes = [], []
        for conn in conns:
            conn.send(json.dumps({"type": "end"}))
            results.append(json.loads(conn.recv(timeout=30)))
            with pytest.raises(ConnectionClosed) as closed:  # the server closes after it
                conn.recv(timeout=30)
            closes.append(closed.value.rcvd.code if closed.value.rcvd else None)
    assert [m["type"] for m in readies] == ["ready"] * 4
    assert closes == [1000] * 4  # normal closes, passed through by nginx
    for ready, seen, result in zip(readies, answers, results, strict=True):
        assert [m["type"] for m in seen] == ["frame"] * len(frames)
        assert [m["index"] for m in seen] == list(range(len(frames)))
        assert result["type"] == "result" and result["windows"]
        assert result["request_id"] == ready["request_id"]  # one connection, start to end
        assert result["frames_decoded"] == len(frames) and result["dropped"] == 0
    # each replica finished two streams and processed exactly their frames: no stream's
    # frames were split between replicas
    after = [wait_until_no_streams(r) for r in cluster.replicas]
    for b, a in zip(before, after, strict=True):
        assert sample(a, STREAMS, outcome="result") - sample(b, STREAMS, outcome="result") == 2
        assert sample(a, FRAMES, source="stream") - sample(b, FRAMES, source="stream") == 2 * len(
            frames
        )
    wait_for_log_lines(cluster.nginx, r'"GET /v1/stream[^"]*" 101', logged + 4)
    served = upstreams_in_log(cluster.nginx, r'"GET /v1/stream[^"]*" 101')[logged:]
    assert Counter(served) == {r.address: 2 for r in cluster.replicas}


def test_a_stream_from_the_demo_page_origin_passes_the_proxy_and_others_are_refused(cluster):
    """nginx forwards the Host the browser asked for (port included), so the service's own
    origin, as the demo page opens the stream through the proxy, is its own; another
    site's is refused at the handshake."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    ws_url = cluster.nginx.url.replace("http://", "ws://") + "/v1/stream"
    with connect(ws_url, additional_headers={"Origin": cluster.nginx.url}, open_timeout=10) as c:
        c.send(json.dumps({"type": "start", "fps": 15}))
        assert json.loads(c.recv(timeout=30))["type"] == "ready"
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url, additional_headers={"Origin": "https://evil.example"}, open_timeout=10)
    assert refused.value.response.status_code == 403
    assert json.loads(refused.value.response.body)["error"]["code"] == "origin_not_allowed"


def wait_until_no_streams(replica: Replica, timeout: float = 15) -> str:
    """A replica counts a stream's outcome when its handler ends, a moment after the client
    has read the close: its metrics once no stream is open there."""
    deadline = time.monotonic() + timeout
    while sample(text := replica.metrics(), "liveness_active_streams") != 0:
        if time.monotonic() > deadline:
            raise AssertionError(f"streams still open on {replica.address} after {timeout:g} s")
        time.sleep(0.05)
    return text


def wait_for_log_lines(nginx: Nginx, pattern: str, count: int, timeout: float = 10) -> None:
    """A stream's line is written when nginx closes both sides, a moment after the client."""
    deadline = time.monotonic() + timeout
    while len(upstreams_in_log(nginx, pattern)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"fewer than {count} log lines match {pattern!r}")
        time.sleep(0.05)


class UploadLoad:
    """Uploads sent through the proxy one after the other, from a thread, until stopped
    (at most ``max_requests`` or ``max_seconds``): (start time, status, model hash or error)."""

    def __init__(self, url: str, clip: bytes, max_requests: int = 400, max_seconds: float = 240):
        self.url, self.clip = url, clip
        self.max_requests, self.max_seconds = max_requests, max_seconds
        self.outcomes: list[tuple[float, int, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        end = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and len(self.outcomes) < self.max_requests:
            if time.monotonic() > end:
                break
            started = time.monotonic()
            try:
                r = upload(self.url, self.clip)
                what = r.json()["model"]["hash"] if r.status_code == 200 else r.text[:200]
                self.outcomes.append((started, r.status_code, what))
            except httpx.HTTPError as exc:
                self.outcomes.append((started, 0, repr(exc)))

    def start(self) -> None:
        self._thread.start()

    def wait_for(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.outcomes) < count and self._thread.is_alive():
            if time.monotonic() > deadline:
                raise AssertionError(f"fewer than {count} uploads in {timeout:g} s")
            time.sleep(0.05)

    def stop(self) -> list[tuple[float, int, str]]:
        self._stop.set()
        self._thread.join(timeout=180)
        return list(self.outcomes)


def wait_until_proxied_to(replica: Replica, timeout: float = 60) -> None:
    """nginx skips a replica for 10 s (fail_timeout) after a refused connection; it is back
    in rotation once nginx has sent it an upload again."""
    deadline = time.monotonic() + timeout
    while sample(replica.metrics(), UPLOADS, route="/v1/liveness") == 0:
        if time.monotonic() > deadline:
            raise AssertionError(f"nginx sent no upload to {replica.address} in {timeout:g} s")
        time.sleep(0.2)


@pytest.mark.slow
def test_a_rolling_restart_onto_a_new_model_loses_no_request(cluster, face_mp4, tmp_path_factory):
    """The model upgrade of docs/deployment.md: replicas restarted one at a time on a new model
    directory, the next only once nginx uses the restarted one, under steady uploads."""
    new_model = export_tiny_model(tmp_path_factory.mktemp("new_model"), seed=1)
    old_hash = read_manifest(cluster.replicas[0].model_dir).model_hash
    new_hash = read_manifest(new_model).model_hash
    assert new_hash != old_hash
    load = UploadLoad(cluster.nginx.url, face_mp4)
    load.start()
    try:
        load.wait_for(2)
        for i, old in enumerate(list(cluster.replicas)):
            old.stop()
            last_stop = time.monotonic()
            new = start_replica(new_model, old.port, cluster.logs / f"r{i}-upgraded.log")
            cluster.replicas[i] = new  # the fixture stops whichever replica runs at the end
            wait_ready(new)
            wait_until_proxied_to(new)
        load.wait_for(len(load.outcomes) + 3)
    finally:
        outcomes = load.stop()
    failed = [o for o in outcomes if o[1] != 200]
    assert not failed, failed
    assert outcomes[0][2] == old_hash
    after = [o[2] for o in outcomes if o[0] > last_stop]
    assert len(after) >= 3 and set(after) == {new_hash}
