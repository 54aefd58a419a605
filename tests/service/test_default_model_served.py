"""`liveness serve` with no model flags serves the committed default model: a real
uvicorn process, a real clip, and the same score the offline runtime gives that clip."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from bench.server import stop_process
from model.manifest import DEFAULT_MODEL_DIR, read_manifest
from model.runtime import LivenessModel, score_clip
from model.video import VideoReader
from tests.helpers import wait_until_ready
from tests.service.support import REPO_ROOT, free_port

pytestmark = pytest.mark.server  # starts its own server processes


def test_serve_without_flags_scores_with_the_default_model(real_clip_paths, tmp_path):
    manifest = read_manifest(DEFAULT_MODEL_DIR)
    held_out = manifest.training["held_out"]["test_people"]
    clip = next(p for p in real_clip_paths if p.stem == held_out[0])  # a held-out person
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVENESS_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    cmd = [sys.executable, "-m", "liveness", "serve", "--port", str(port), "--threads", "1"]
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(proc, url, log_path)
        r = httpx.post(
            url + "/v1/liveness",
            content=clip.read_bytes(),
            headers={"content-type": "video/mp4"},
            timeout=300,
        )
    finally:
        stop_process(proc)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (
        body["model"]["name"] == "default"
        and body["model"]["backbone"] == manifest.network.backbone
    )
    assert body["threshold"] == pytest.approx(manifest.threshold)
    model = LivenessModel(DEFAULT_MODEL_DIR, providers="cpu")
    reader = VideoReader(clip)
    offline = score_clip(model, reader, reader.info.fps)
    assert body["score"] == pytest.approx(offline.score, abs=1e-4)
    assert len(body["windows"]) == len(offline.windows)
    assert body["label"] == ("genuine" if offline.score >= manifest.threshold else "spoof")


def _still_clips(clip, out_dir, seconds: float = 3.0) -> dict[str, bytes]:
    """A looped still of ``clip`` (its middle frame, repeated) and the same photo with
    fresh camera noise on every frame (a photo on a stand in front of a live camera)."""
    import numpy as np

    from model.video import read_frames, write_clip

    frames, _, info = read_frames(clip, max_side=640)
    frame = frames[len(frames) // 2]
    n = round(seconds * info.fps)
    rng = np.random.default_rng(0)

    def noisy():
        for _ in range(n):
            noise = rng.normal(0.0, 2.5, frame.shape)
            yield np.clip(frame + noise, 0, 255).astype(np.uint8)

    looped = write_clip(out_dir / f"{clip.stem}-looped.mp4", [frame] * n, info.fps)
    on_stand = write_clip(out_dir / f"{clip.stem}-noisy.mp4", noisy(), info.fps)
    return {"looped": looped.read_bytes(), "noisy": on_stand.read_bytes()}


def test_the_default_model_itself_calls_a_still_photo_a_spoof(real_clip_paths, tmp_path):
    """Gates off, so only the model speaks: a looped still and a still with live camera
    noise, of every person held out of the default model's training, are spoofs."""
    manifest = read_manifest(DEFAULT_MODEL_DIR)
    held_out = set(manifest.training["held_out"]["test_people"])
    clips = [p for p in real_clip_paths if p.stem in held_out]
    assert clips, "the default model's held-out people are among the real clips"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVENESS_")}
    env.update(PYTHONPATH=str(REPO_ROOT), LIVENESS_GATES="off")
    cmd = [sys.executable, "-m", "liveness", "serve", "--port", str(port), "--threads", "1"]
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    answers = {}
    try:
        wait_until_ready(proc, url, log_path)
        for clip in clips:
            for kind, body in _still_clips(clip, tmp_path).items():
                r = httpx.post(
                    url + "/v1/liveness",
                    content=body,
                    headers={"content-type": "video/mp4"},
                    timeout=300,
                )
                assert r.status_code == 200, r.text
                answers[f"{clip.stem} {kind}"] = r.json()
    finally:
        stop_process(proc)
    for name, body in answers.items():
        assert body["gates"] == "off" and body["reasons"] == [], name
        assert body["model_label"] == body["label"] == "spoof", (name, body["score"])
