"""Helpers shared by the service tests: limits, transport adapters, frame encoders."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024

# Limits small enough to test cheaply; the same for both transports.
LIMITS = {
    "max_upload_bytes": 3 * MiB,
    "max_clip_seconds": 6.0,
    "max_frames": 300,
    "max_stream_fps": 1000.0,  # rate drops are tested on their own app
    "max_streams": 4,
    "max_uploads": 3,
    "stream_idle_seconds": 3.0,
    "stream_max_seconds": 120.0,
    "stream_max_bad_frames": 3,
    "max_message_bytes": 1 * MiB,
    "batch_max_wait_ms": 5.0,
    "cpu_workers": 2,
}
CLIP_FRAMES = 40  # 1.6 s at 25 fps -> 24 encoded frames at 15 fps -> 3 windows of T=8


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Closed:
    """The server closed the WebSocket."""

    code: int
    reason: str = ""


class InProcessWs:
    def __init__(self, session) -> None:
        self.session = session

    def send_json(self, payload: dict) -> None:
        self.session.send_text(json.dumps(payload))

    def send_bytes(self, data: bytes) -> None:
        self.session.send_bytes(data)

    def recv(self) -> dict | Closed:
        message = self.session.receive()
        if message["type"] == "websocket.close":
            return Closed(message.get("code", 1000), message.get("reason") or "")
        return json.loads(message["text"])


class LoopbackWs:
    def __init__(self, conn) -> None:
        self.conn = conn

    def send_json(self, payload: dict) -> None:
        self.conn.send(json.dumps(payload))

    def send_bytes(self, data: bytes) -> None:
        self.conn.send(data)

    def recv(self, timeout: float = 60.0) -> dict | Closed:
        from websockets.exceptions import ConnectionClosed

        try:
            return json.loads(self.conn.recv(timeout=timeout))
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            return Closed(rcvd.code if rcvd else 1006, rcvd.reason if rcvd else "")


@dataclass
class Api:
    """One transport: ``http`` is an httpx-style client, ``ws()`` opens a stream."""

    name: str
    http: httpx.Client
    base_url: str = ""
    _client: object = None

    def ws(self, path: str = "/v1/stream"):
        @contextmanager
        def connect() -> Iterator[InProcessWs | LoopbackWs]:
            if self.name == "inprocess":
                with self._client.websocket_connect(path) as session:
                    yield InProcessWs(session)
            else:
                from websockets.sync.client import connect as ws_connect

                url = self.base_url.replace("http://", "ws://") + path
                with ws_connect(url, max_size=None, open_timeout=10) as conn:
                    yield LoopbackWs(conn)

        return connect()


def end_and_drain(ws) -> None:
    """End a stream and read until the server closes it, so the app has returned before the
    test leaves the connection (tearing down an in-process app that is still closing its
    stream races inside Starlette's test client: CancelledError)."""
    ws.send_json({"type": "end"})
    while not isinstance(ws.recv(), Closed):
        pass


def recv_until(ws, kind: str, limit: int = 1000) -> tuple[dict | Closed, list[dict]]:
    """Messages up to the first of type ``kind`` (or a close): (that message, those before)."""
    seen: list[dict] = []
    for _ in range(limit):
        m = ws.recv()
        if isinstance(m, Closed) or m.get("type") == kind:
            return m, seen
        seen.append(m)
    raise AssertionError(f"no {kind!r} message in {limit}")


def metric(text: str, name: str) -> float:
    """The value of one sample line ``name value`` of a Prometheus exposition."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no sample {name} in the metrics")


def check_result(body: dict, manifest) -> None:
    """The invariants of every result body."""
    model_label = "genuine" if body["score"] >= body["threshold"] else "spoof"
    assert body["model_label"] == model_label
    codes = [r["code"] for r in body["reasons"]]
    if body["gates"] != "enforce" or not codes:
        assert body["label"] == model_label
    elif {"static_input", "looped_input"} & set(codes):
        assert body["label"] in ("spoof", "inconclusive")
    else:
        assert body["label"] == "inconclusive"
    assert all(r["hint"] and 0 < r["share"] <= 1 for r in body["reasons"])
    assert body["threshold"] == manifest.threshold
    scores = [w["score"] for w in body["windows"]]
    assert body["score"] == pytest.approx(np.mean(scores), abs=1e-9)
    encoded = [f["index"] for f in body["frames"] if f["encoded"]]
    first_weight: dict[int, float] = {}
    for w in body["windows"]:
        assert len(w["attention"]) == len(w["frames"])
        assert sum(w["attention"]) == pytest.approx(1.0, abs=1e-5)
        assert set(w["frames"]) <= set(encoded)
        assert (w["start"], w["end"]) == (w["frames"][0], w["frames"][-1])
        for i, a in zip(w["frames"], w["attention"], strict=True):
            first_weight.setdefault(i, a)
    for f in body["frames"]:
        assert f["attention"] == first_weight.get(f["index"])
        assert f["encoded"] or f["attention"] is None
    times = [f["t"] for f in body["frames"]]
    assert times == sorted(times)
    assert body["model"]["hash"] == manifest.model_hash
    assert body["model"]["name"] == manifest.name
    assert all(v >= 0 for v in body["timing_ms"].values())
    assert body["timing_ms"]["total"] >= body["timing_ms"]["inference"]
    assert len(body["request_id"]) == 32


def wait_until_no_streams(http: httpx.Client, timeout: float = 15.0) -> None:
    """Closed streams give their slot back when the server's handler ends, a moment after
    the client sees the close: wait for that before counting on free slots."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        text = http.get("/metrics").text
        line = next(x for x in text.splitlines() if x.startswith("liveness_active_streams "))
        if float(line.split()[1]) == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"streams still open after {timeout} s: {line}")
        time.sleep(0.05)


def limits_env(model_dir: Path) -> dict[str, str]:
    env = {f"LIVENESS_{k.upper()}": str(v) for k, v in LIMITS.items()}
    env["LIVENESS_MODEL_DIR"] = str(model_dir)
    return env


def make_app(model_dir: Path, **overrides):
    from service.app import create_app
    from service.settings import Settings

    settings = {"providers": "cpu", "threads": 1, **LIMITS, **overrides}
    return create_app(Settings(model_dir=model_dir, **settings))


def png(frame: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", frame)
    assert ok
    return buf.tobytes()


def jpeg(frame: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()
