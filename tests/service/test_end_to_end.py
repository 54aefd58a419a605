"""A real server process and real clients: concurrency, a flood of frames, the CLIs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from websockets.sync.client import connect

from model.video import read_frames
from tests.helpers import write_clip
from tests.service.support import (
    REPO_ROOT,
    Closed,
    LoopbackWs,
    jpeg,
    metric,
    png,
    recv_until,
    wait_until_no_streams,
)


def ws_url(server_url: str) -> str:
    return server_url.replace("http://", "ws://") + "/v1/stream"


def post_clip(server_url: str, path: Path) -> dict:
    r = httpx.post(
        server_url + "/v1/liveness",
        files={"file": (path.name, path.read_bytes(), "video/mp4")},
        timeout=120,
    )
    assert r.status_code == 200, r.text
    return r.json()


def stream_clip(server_url: str, path: Path) -> dict:
    """Stream a clip's frames as PNG, waiting for each answer; the final result."""
    frames, _, info = read_frames(path)
    with connect(ws_url(server_url), max_size=None) as conn:
        ws = LoopbackWs(conn)
        ws.send_json({"type": "start", "fps": info.fps})
        assert ws.recv()["type"] == "ready"
        for i, f in enumerate(frames):
            ws.send_bytes(png(f))
            answer, _ = recv_until(ws, "frame")
            assert answer["index"] == i
        ws.send_json({"type": "end"})
        result = ws.recv()
    return result


def memory(pid: int, field: str = "VmRSS") -> int:
    """Resident memory (VmRSS) or its peak so far (VmHWM) of a process, bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field}")


@pytest.fixture(scope="module")
def mirrored_mp4(genuine_clip, clip_dir) -> Path:
    frames, fps = genuine_clip
    return write_clip(
        clip_dir / "mirrored.mp4", [np.ascontiguousarray(f[:, ::-1]) for f in frames], fps
    )


def test_concurrent_streams_and_uploads_are_all_answered_alike(
    server_url, genuine_mp4, attack_mp4, mirrored_mp4
):
    clips = [genuine_mp4, attack_mp4, mirrored_mp4]
    alone = [post_clip(server_url, c)["score"] for c in clips]
    with httpx.Client(base_url=server_url) as http:
        wait_until_no_streams(http)
    before = httpx.get(server_url + "/metrics").text
    results: dict[str, float] = {}
    errors: list[BaseException] = []

    def job(kind: str, i: int) -> None:
        try:
            clip = clips[i]
            body = stream_clip(server_url, clip) if kind == "ws" else post_clip(server_url, clip)
            results[f"{kind}{i}"] = body["score"]
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=job, args=(k, i)) for k in ("ws", "post") for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert len(results) == 6
    for i in range(3):  # per-stream state stays per stream: each equals its clip alone
        assert results[f"ws{i}"] == pytest.approx(alone[i], abs=1e-5)
        assert results[f"post{i}"] == pytest.approx(alone[i], abs=1e-5)
    after = httpx.get(server_url + "/metrics").text
    batches = metric(after, "liveness_encoder_batch_size_count") - metric(
        before, "liveness_encoder_batch_size_count"
    )
    singles = metric(after, 'liveness_encoder_batch_size_bucket{le="1.0"}') - metric(
        before, 'liveness_encoder_batch_size_bucket{le="1.0"}'
    )
    assert batches - singles > 0  # batches of more than one crop
    assert metric(after, "liveness_active_streams") == 0


def test_a_flood_of_frames_is_dropped_not_buffered(server, genuine_clip):
    """Floods of 100 large frames sent without reading: the server keeps the newest,
    reports the drops, does not grow with the flood, and still gives a final result."""
    rng = np.random.default_rng(0)
    # 3840x2160 smooth noise (about 430 KiB each): each costs the server several times
    # more to decode and scale down than to receive, whatever the machine and the face
    # detector cost (ten distinct frames, sent in turn)
    coarse = [rng.integers(0, 255, (27, 48, 3), np.uint8) for _ in range(10)]
    noise = [jpeg(cv2.resize(c, (3840, 2160), interpolation=cv2.INTER_CUBIC), 75) for c in coarse]
    flood = [noise[i % len(noise)] for i in range(100)]
    flood_bytes = sum(len(d) for d in flood)
    frames, fps = genuine_clip
    answers: list[dict] = []
    with connect(ws_url(server.url), max_size=None) as conn:
        ws = LoopbackWs(conn)
        ws.send_json({"type": "start", "fps": fps})
        assert ws.recv()["type"] == "ready"
        sent = 0
        for data in noise:  # warm-up: each large frame answered before the next is sent,
            ws.send_bytes(data)  # so the decoders' working memory is in the baseline
            sent += 1
            while not answers or answers[-1]["index"] != sent - 1:
                answers.append(ws.recv())
        warm = sent
        rss, peak = [memory(server.pid)], [memory(server.pid, "VmHWM")]
        for part in (frames[:20], frames[20:]):
            for data in flood:  # 100 frames without reading a single answer
                ws.send_bytes(data)
            sent += len(flood)
            for f in part:  # then a real face, waiting for each answer
                ws.send_bytes(jpeg(f))
                sent += 1
                while not answers or answers[-1]["index"] != sent - 1:
                    answers.append(ws.recv())
            rss.append(memory(server.pid))
            peak.append(memory(server.pid, "VmHWM"))
        ws.send_json({"type": "end"})
        result, late = recv_until(ws, "result")
        closed = ws.recv()
    answers += late
    # every frame has exactly one answer: processed ("frame") or "dropped"
    assert sorted(m["index"] for m in answers) == list(range(sent))
    drops = [m for m in answers if m["type"] == "dropped"]
    assert result["type"] == "result" and result["windows"]
    assert result["dropped"] == len(drops) > 0
    assert {m["reason"] for m in drops} == {"busy"}  # the server was busy, not rate-limited
    waited = [m for m in answers if m["index"] < warm]  # sent one at a time
    waited += [m for m in answers if m["index"] - warm in range(100, 120)]
    waited += [m for m in answers if m["index"] - warm >= 220]
    assert len(waited) == warm + len(frames)
    assert all(m["type"] == "frame" for m in waited)  # a client that waits loses nothing
    assert result["frames_decoded"] == warm + 200 + len(frames)
    assert isinstance(closed, Closed) and closed.code == 1000
    # Holding a flood would take its size at once; the peak stays well below, and the
    # second flood (buffers warm) leaves resident memory where the first left it.
    assert peak[1] - peak[0] < flood_bytes / 2, (peak, flood_bytes)
    assert rss[2] - rss[1] < flood_bytes / 4, (rss, flood_bytes)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "liveness", *args],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_check_cli_prints_the_verdict_and_exits_by_label(server_url, genuine_mp4, tmp_path):
    expected = post_clip(server_url, genuine_mp4)
    out = run_cli("check", str(genuine_mp4), "--url", server_url)
    assert out.returncode == (0 if expected["label"] == "genuine" else 1), out.stderr
    assert f"{expected['label'].upper()} (score {expected['score']:.3f}" in out.stdout
    assert f"{len(expected['windows'])} windows" in out.stdout
    as_json = run_cli("check", str(genuine_mp4), "--url", server_url, "--json", "--fps", "10")
    assert json.loads(as_json.stdout)["frames"][1]["index"] == 3  # 25 fps thinned to ~10
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(os.urandom(4000))
    out = run_cli("check", str(bad), "--url", server_url)
    assert out.returncode == 2 and "undecodable_video" in out.stderr
    out = run_cli("check", str(genuine_mp4), "--url", "http://127.0.0.1:9")
    assert out.returncode == 2 and "cannot reach" in out.stderr


def test_stream_cli_streams_a_video_and_prints_the_result(server_url, genuine_mp4):
    out = run_cli("stream", "--video", str(genuine_mp4), "--url", server_url, "--png")
    assert out.returncode in (0, 1), out.stderr
    lines = out.stdout.splitlines()
    assert sum(line.startswith("frame ") for line in lines) >= 30  # live scores
    assert any(" windows: " in line for line in lines)
    label = "GENUINE" if out.returncode == 0 else "SPOOF"
    assert any(line.startswith(f"{genuine_mp4}: {label}") for line in lines)
    out = run_cli("stream", "--video", str(genuine_mp4), "--url", server_url, "--json", "--png")
    assert out.returncode in (0, 1), out.stderr
    result = json.loads(out.stdout)
    assert result["type"] == "result" and result["frames_decoded"] == 40
    if result["dropped"] == 0:  # lossless frames at the clip's own pace: the clip's score
        assert result["score"] == pytest.approx(
            post_clip(server_url, genuine_mp4)["score"], abs=1e-5
        )
    out = run_cli("stream", "--video", str(genuine_mp4), "--url", "http://127.0.0.1:9")
    assert out.returncode == 2 and "127.0.0.1:9" in out.stderr
