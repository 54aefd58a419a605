"""Capture-quality gates through the API (REST and WebSocket, both transports): static and
looped input never come out genuine, poor captures come out inconclusive with the right
reason and a hint, and the gate settings are checked at start-up."""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from model.manifest import read_manifest
from tests.helpers import real_frames, write_clip
from tests.service.support import (
    REPO_ROOT,
    Closed,
    check_result,
    jpeg,
    limits_env,
    make_app,
    metric,
    recv_until,
)


def post(api, path):
    r = api.http.post(
        "/v1/liveness", content=path.read_bytes(), headers={"content-type": "video/mp4"}
    )
    assert r.status_code == 200, r.text
    return r.json()


def codes(body: dict) -> list[str]:
    return [r["code"] for r in body["reasons"]]


@pytest.fixture(scope="module")
def other_person(real_clip_paths) -> list[np.ndarray]:
    path = next(p for p in real_clip_paths if "Pose_Source_00067" in p.name)
    frames, _ = real_frames(path, 40, max_side=256)
    return [cv2.resize(f, (256, 256)) for f in frames]


def on_canvas(frame: np.ndarray, scale: float) -> np.ndarray:
    """The frame shrunk by ``scale`` on a plain 320x240 background: a small face."""
    small = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.full((240, 320, 3), 110, np.uint8)
    h, w = small.shape[:2]
    canvas[80 : 80 + h, 120 : 120 + w] = small
    return canvas


@pytest.fixture(scope="module")
def gate_clips(genuine_clip, other_person, tmp_path_factory):
    """name -> mp4 of the real genuine clip made unjudgeable (or unlive) one way each."""
    frames, fps = genuine_clip
    folder = tmp_path_factory.mktemp("gate_clips")
    k = len(frames) // 2
    made = {
        "still": [frames[k]] * 40,
        "loop": [frames[0], frames[-1]] * 20,
        "small": [on_canvas(f, 0.27) for f in frames],  # a face box of about 40 px
        "dark": [(f * 0.12).astype(np.uint8) for f in frames],
        "blurred": [cv2.GaussianBlur(f, (0, 0), 5) for f in frames],
        "two_faces": [np.concatenate(p, axis=1) for p in zip(frames, other_person, strict=False)],
    }
    return {name: write_clip(folder / f"{name}.mp4", fr, fps) for name, fr in made.items()}


def test_a_still_is_never_genuine(api, gate_clips, tiny_model_dir):
    body = post(api, gate_clips["still"])
    check_result(body, read_manifest(tiny_model_dir))
    assert body["label"] == "spoof" and codes(body) == ["static_input"]
    assert body["reasons"][0]["share"] == 1.0
    assert "live camera" in body["reasons"][0]["hint"]


def test_a_two_frame_loop_is_never_genuine(api, gate_clips):
    body = post(api, gate_clips["loop"])
    assert body["label"] == "spoof" and codes(body) == ["looped_input"]


@pytest.mark.parametrize(
    ("clip", "reason", "words"),
    [
        ("small", "face_too_small", "move closer"),
        ("dark", "too_dark", "brighter"),
        ("blurred", "blurred", "blurred"),
        ("two_faces", "multiple_faces", "only one person"),
    ],
)
def test_a_poor_capture_is_inconclusive_with_its_reason(api, gate_clips, clip, reason, words):
    body = post(api, gate_clips[clip])
    assert body["label"] == "inconclusive", body["reasons"]
    assert codes(body)[0] == reason
    assert words in body["reasons"][0]["hint"].lower()
    assert body["model_label"] in ("genuine", "spoof") and body["score"] >= 0


def test_a_genuine_capture_has_no_reasons(api, genuine_mp4, tiny_model_dir):
    body = post(api, genuine_mp4)
    assert body["reasons"] == [] and body["gates"] == "enforce"
    assert body["label"] == body["model_label"]


def stream(api, frames: list[np.ndarray], fps: float) -> tuple[list[dict], dict]:
    with api.ws() as ws:
        ws.send_json({"type": "start", "fps": fps})
        assert ws.recv()["type"] == "ready"
        answers = []
        for f in frames:
            ws.send_bytes(jpeg(f))
            answers.append(ws.recv())
        ws.send_json({"type": "end"})
        result, _ = recv_until(ws, "result")
        assert not isinstance(result, Closed), result
        assert isinstance(ws.recv(), Closed)
    return answers, result


def test_a_streamed_still_is_never_genuine_and_the_frames_say_why(api, genuine_clip):
    frames, fps = genuine_clip
    answers, result = stream(api, [frames[10]] * 40, fps)
    assert result["label"] == "spoof" and codes(result) == ["static_input"]
    scored = [m for m in answers if m["score"] is not None]
    assert scored and all(m["label"] == "spoof" for m in scored)
    assert all("static_input" in [h["code"] for h in m["hints"]] for m in scored)


def test_a_streamed_two_frame_loop_is_never_genuine(api, genuine_clip):
    frames, fps = genuine_clip
    _, result = stream(api, [frames[0], frames[-1]] * 20, fps)
    assert result["label"] == "spoof" and codes(result) == ["looped_input"]


def test_stream_frames_carry_live_hints(api, genuine_clip):
    frames, fps = genuine_clip
    dark = [(f * 0.12).astype(np.uint8) for f in frames]
    answers, result = stream(api, frames[:20] + dark[20:], fps)
    assert all(m["hints"] == [] for m in answers[:20] if m["type"] == "frame")
    late = [m for m in answers[22:] if m["type"] == "frame" and m["box"] is not None]
    assert late and all(m["hints"][0]["code"] == "too_dark" for m in late)
    assert "brighter" in late[0]["hints"][0]["hint"]


def test_input_policy_inconclusive_and_observe_mode(tiny_model_dir, gate_clips, genuine_mp4):
    still = gate_clips["still"].read_bytes()
    dark = gate_clips["dark"].read_bytes()
    headers = {"content-type": "video/mp4"}
    with TestClient(make_app(tiny_model_dir, gate_input_policy="inconclusive")) as client:
        body = client.post("/v1/liveness", content=still, headers=headers).json()
        assert body["label"] == "inconclusive" and codes(body) == ["static_input"]
    with TestClient(make_app(tiny_model_dir, gates="observe")) as client:
        for data, reason in ((still, "static_input"), (dark, "too_dark")):
            body = client.post("/v1/liveness", content=data, headers=headers).json()
            assert body["gates"] == "observe" and codes(body)[0] == reason
            assert body["label"] == body["model_label"]
        text = client.get("/metrics").text
        assert (
            metric(text, 'liveness_gate_reasons_total{reason="static_input",source="upload"}') == 1
        )
        assert metric(text, 'liveness_gate_reasons_total{reason="too_dark",source="upload"}') == 1
    with TestClient(make_app(tiny_model_dir, gates="off")) as client:
        body = client.post("/v1/liveness", content=still, headers=headers).json()
        assert body["gates"] == "off" and body["reasons"] == []


def test_results_are_counted_by_label_and_model_label(tiny_model_dir, gate_clips):
    with TestClient(make_app(tiny_model_dir)) as client:
        body = client.post(
            "/v1/liveness",
            content=gate_clips["dark"].read_bytes(),
            headers={"content-type": "video/mp4"},
        ).json()
        text = client.get("/metrics").text
    sample = (
        f'liveness_results_total{{label="inconclusive",model_label="{body["model_label"]}",'
        'source="upload"}'
    )
    assert metric(text, sample) == 1
    assert metric(text, 'liveness_scores_count{label="inconclusive"}') == 1


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"LIVENESS_GATES": "strict"}, "gates"),
        ({"LIVENESS_GATE_MIN_BRIGHTNESS": "200", "LIVENESS_GATE_MAX_BRIGHTNESS": "100"}, "below"),
        ({"LIVENESS_GATE_STATIC_QUANTILE": "2"}, "gate_static_quantile"),
        ({"LIVENESS_GATE_INPUT_POLICY": "genuine"}, "gate_input_policy"),
    ],
)
def test_bad_gate_settings_stop_the_server_at_start_up(tiny_model_dir, env, words):
    full = {**os.environ, **limits_env(tiny_model_dir), **env, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "liveness", "serve", "--port", "0"],
        cwd=REPO_ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert words in proc.stderr
