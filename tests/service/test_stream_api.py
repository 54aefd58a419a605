"""WS /v1/stream on both transports: protocol, stream == clip, every error and close code."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from model.manifest import read_manifest
from model.video import read_frames
from tests.service.support import (
    CLIP_FRAMES,
    Closed,
    InProcessWs,
    check_result,
    end_and_drain,
    jpeg,
    make_app,
    png,
    recv_until,
    wait_until_no_streams,
)


def send_and_wait(ws, data: bytes) -> dict:
    """Send one frame and return the server's answer to it (a frame or error message)."""
    ws.send_bytes(data)
    m = ws.recv()
    assert not isinstance(m, Closed), m
    return m


def finish(ws) -> tuple[dict | Closed, Closed | dict]:
    ws.send_json({"type": "end"})
    return ws.recv(), ws.recv()


def test_protocol_ready_frames_then_result(api, genuine_clip, tiny_model_dir):
    frames, fps = genuine_clip
    manifest = read_manifest(tiny_model_dir)
    T = manifest.preprocess.window.length
    with api.ws() as ws:
        ws.send_json({"type": "start", "fps": fps})
        ready = ws.recv()
        assert ready["type"] == "ready" and ready["fps"] == fps
        assert ready["model"]["hash"] == manifest.model_hash
        assert ready["window"]["length"] == T and ready["limits"]["max_bad_frames"] == 3
        answers = [send_and_wait(ws, png(f)) for f in frames]
        result, closed = finish(ws)
    assert [m["type"] for m in answers] == ["frame"] * CLIP_FRAMES
    assert [m["index"] for m in answers] == list(range(CLIP_FRAMES))
    assert [m["t"] for m in answers] == pytest.approx(
        [i / fps for i in range(CLIP_FRAMES)], abs=1e-6
    )
    first = next(i for i, m in enumerate(answers) if m["score"] is not None)
    assert sum(m["encoded"] for m in answers[: first + 1]) == T  # once a window is full
    assert answers[first]["encoded"] and answers[first]["window"] == [0, first]
    for m in answers[first:]:  # from then on every frame carries the latest window
        assert m["label"] == ("genuine" if m["score"] >= manifest.threshold else "spoof")
        assert len(m["attention"]) == T and sum(m["attention"]) == pytest.approx(1, abs=1e-5)
        start, end = m["window"]
        assert start < end == m["index"] if m["encoded"] else end == m["index"] - 1
    assert all(m["latency_ms"] > 0 and m["dropped"] == 0 for m in answers)
    assert result["type"] == "result" and result["dropped"] == 0
    assert result["frames_decoded"] == CLIP_FRAMES
    check_result(result, manifest)
    assert isinstance(closed, Closed) and closed.code == 1000


def test_stream_equals_clip(api, genuine_mp4):
    """The frames of the mp4 sent as lossless PNG score exactly as the uploaded mp4."""
    clip = api.http.post(
        "/v1/liveness", content=genuine_mp4.read_bytes(), headers={"content-type": "video/mp4"}
    ).json()
    frames, _, info = read_frames(genuine_mp4)
    with api.ws() as ws:
        ws.send_json({"type": "start", "fps": info.fps})
        assert ws.recv()["type"] == "ready"
        for f in frames:
            send_and_wait(ws, png(f))
        result, _ = finish(ws)
    assert result["score"] == pytest.approx(clip["score"], abs=1e-5)
    assert [w["frames"] for w in result["windows"]] == [w["frames"] for w in clip["windows"]]
    for ws_w, clip_w in zip(result["windows"], clip["windows"], strict=True):
        assert ws_w["attention"] == pytest.approx(clip_w["attention"], abs=1e-5)
    assert [f["box"] for f in result["frames"]] == [f["box"] for f in clip["frames"]]
    assert [f["encoded"] for f in result["frames"]] == [f["encoded"] for f in clip["frames"]]


def test_jpeg_frames_without_a_start_message_use_the_default_rate(api, genuine_clip):
    frames, _ = genuine_clip
    with api.ws() as ws:
        ws.send_bytes(jpeg(frames[0]))
        ready, first = ws.recv(), ws.recv()
        answers = [first] + [send_and_wait(ws, jpeg(f)) for f in frames[1:30]]
        result, _ = finish(ws)
    assert ready["type"] == "ready" and ready["fps"] == 30.0
    assert [m["t"] for m in answers] == pytest.approx([i / 30 for i in range(30)], abs=1e-6)
    assert result["type"] == "result" and result["windows"]


def test_a_bad_frame_gets_an_error_and_the_stream_goes_on(api, genuine_clip):
    frames, fps = genuine_clip
    with api.ws() as ws:
        ws.send_json({"type": "start", "fps": fps})
        ws.recv()
        answers = []
        for i, f in enumerate(frames):
            data = png(f)
            answers.append(send_and_wait(ws, data[: len(data) // 2] if i == 10 else data))
        result, closed = finish(ws)
    assert answers[10] == {
        "type": "error",
        "code": "bad_frame",
        "message": answers[10]["message"],
        "index": 10,
    }
    assert "PNG" in answers[10]["message"]
    assert all(m["type"] == "frame" for i, m in enumerate(answers) if i != 10)
    assert answers[11]["index"] == 11 and answers[11]["t"] == pytest.approx(11 / fps)
    assert result["type"] == "result" and 10 not in [f["index"] for f in result["frames"]]
    assert closed == Closed(1000, closed.reason)


def test_persistent_bad_frames_close_the_stream_1003(api):
    with api.ws() as ws:
        ws.send_json({"type": "start", "fps": 10})
        ws.recv()
        codes = [send_and_wait(ws, b"\xff\xd8\xff\xe0 not really a jpeg")["code"] for _ in range(3)]
        final, closed = ws.recv(), ws.recv()
    assert codes == ["bad_frame"] * 3
    assert final["code"] == "bad_frames" and "3 undecodable frames" in final["message"]
    assert isinstance(closed, Closed) and closed.code == 1003


@pytest.mark.parametrize(
    ("message", "code", "close"),
    [
        ("not json", "bad_message", 1003),
        ('{"type": "pause"}', "bad_message", 1003),
        ('["start"]', "bad_message", 1003),
        ('{"type": "start", "fps": 0}', "bad_parameters", 1008),
        ('{"type": "start", "fps": "fast"}', "bad_parameters", 1008),
        ('{"type": "start", "fps": 1000}', "bad_parameters", 1008),
    ],
)
def test_bad_text_messages_close_the_stream(api, message, code, close):
    with api.ws() as ws:
        if api.name == "inprocess":
            ws.session.send_text(message)
        else:
            ws.conn.send(message)
        error, closed = ws.recv(), ws.recv()
    assert error["type"] == "error" and error["code"] == code
    assert isinstance(closed, Closed) and closed.code == close


def test_start_after_frames_is_a_protocol_error_1008(api, genuine_clip):
    frames, _ = genuine_clip
    with api.ws() as ws:
        ws.send_bytes(jpeg(frames[0]))
        ready, _ = ws.recv(), ws.recv()
        ws.send_json({"type": "start", "fps": 25})
        error, closed = recv_until(ws, "error")[0], ws.recv()
    assert ready["type"] == "ready"
    assert error["code"] == "protocol_error" and "first message" in error["message"]
    assert isinstance(closed, Closed) and closed.code == 1008


def test_a_message_over_the_limit_closes_1009(api):
    with api.ws() as ws:
        ws.send_json({"type": "start", "fps": 25})
        ws.recv()
        ws.send_bytes(b"\xff\xd8\xff" + bytes(1024 * 1024 + 10))  # > max_message_bytes (1 MiB)
        error, closed = ws.recv(), ws.recv()
    assert error["code"] == "message_too_big" and str(1024 * 1024) in error["message"]
    assert isinstance(closed, Closed) and closed.code == 1009


def test_an_idle_stream_is_closed_1008(api):
    with api.ws() as ws:
        ws.send_json({"type": "start", "fps": 25})
        ws.recv()
        start = time.monotonic()
        error, closed = ws.recv(), ws.recv()  # send nothing for stream_idle_seconds (3)
    assert error["code"] == "idle_timeout" and "3 s" in error["message"]
    assert isinstance(closed, Closed) and closed.code == 1008
    assert time.monotonic() - start >= 2.5


def test_ending_without_enough_frames_answers_an_error_and_closes_normally(
    api, genuine_clip, no_face_mp4
):
    with api.ws() as ws:
        ws.send_json({"type": "end"})
        error, closed = ws.recv(), ws.recv()
    assert error["code"] == "too_few_frames" and closed == Closed(1000, closed.reason)
    frames, fps = genuine_clip
    with api.ws() as ws:
        ws.send_json({"type": "start", "fps": fps})
        ws.recv()
        for f in frames[:3]:
            send_and_wait(ws, jpeg(f))
        error, closed = finish(ws)
    assert error["code"] == "too_few_frames" and closed == Closed(1000, closed.reason)
    no_face, _, _ = read_frames(no_face_mp4)
    with api.ws() as ws:
        ws.send_json({"type": "start", "fps": 10})
        ws.recv()
        answers = [send_and_wait(ws, png(f)) for f in no_face]
        error, closed = finish(ws)
    assert all(m["box"] is None and m["score"] is None for m in answers)
    assert error["code"] == "no_face" and closed == Closed(1000, closed.reason)


def test_streams_over_capacity_are_closed_1013(api):
    from contextlib import ExitStack

    wait_until_no_streams(api.http)
    with ExitStack() as stack:
        open_streams = []
        for _ in range(4):  # max_streams
            ws = stack.enter_context(api.ws())
            ws.send_json({"type": "start", "fps": 25})
            assert ws.recv()["type"] == "ready"
            open_streams.append(ws)
        with api.ws() as extra:
            error, closed = extra.recv(), extra.recv()
        assert error["code"] == "over_capacity"
        assert isinstance(closed, Closed) and closed.code == 1013
        for ws in open_streams:
            end_and_drain(ws)
    wait_until_no_streams(api.http)  # the slots come back when the streams close
    with api.ws() as ws:
        ws.send_json({"type": "start", "fps": 25})
        assert ws.recv()["type"] == "ready"
        end_and_drain(ws)


def test_a_stream_over_its_time_limit_is_closed_1008(tiny_model_dir, genuine_clip):
    frames, fps = genuine_clip
    app = make_app(tiny_model_dir, stream_max_seconds=1.0)
    with TestClient(app) as client, client.websocket_connect("/v1/stream") as session:
        ws = InProcessWs(session)
        ws.send_json({"type": "start", "fps": fps})
        ws.recv()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ws.send_bytes(jpeg(frames[0]))
            m = ws.recv()
            if m.get("type") == "error":
                break
            time.sleep(0.05)
        closed = ws.recv()
    assert m["code"] == "stream_too_long" and "1 s" in m["message"]
    assert isinstance(closed, Closed) and closed.code == 1008


def test_frames_over_the_rate_limit_are_dropped_and_counted(tiny_model_dir, genuine_clip):
    frames, _ = genuine_clip
    data = [jpeg(f) for f in frames]
    with TestClient(make_app(tiny_model_dir, max_stream_fps=5.0)) as client:
        with client.websocket_connect("/v1/stream") as session:
            ws = InProcessWs(session)
            ws.send_json({"type": "start", "fps": 25})
            # the magnifier is set for the rate the stream will get, not the one declared
            assert ws.recv()["processing_fps"] == 5.0
        with client.websocket_connect("/v1/stream") as session:
            ws = InProcessWs(session)
            ws.send_json({"type": "start", "fps": 5})
            ws.recv()
            for d in data:  # 40 frames as fast as possible: far over 5 fps
                ws.send_bytes(d)
            time.sleep(1.0)  # the bucket refills
            for d in data[:8]:  # then 8 frames at 4 fps: none over the rate
                ws.send_bytes(d)
                time.sleep(0.25)
            ws.send_json({"type": "end"})
            result, seen = recv_until(ws, "result")
        metrics = client.get("/metrics").text
    assert result["type"] == "result", result
    frames_seen = [m for m in seen if m["type"] == "frame"]
    drops = [m for m in seen if m["type"] == "dropped"]
    assert result["dropped"] == len(drops) >= 30
    assert {m["reason"] for m in drops} == {"rate"}
    assert sorted(m["index"] for m in frames_seen + drops) == list(range(48))
    assert [m["index"] for m in frames_seen][-8:] == list(range(40, 48))
    rate_drops = float(
        metrics.split('liveness_stream_dropped_frames_total{reason="rate"} ')[1].split()[0]
    )
    assert rate_drops >= 30
