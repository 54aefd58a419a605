"""Probes, metrics, OpenAPI, settings and the `liveness serve` start-up checks."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from model.manifest import read_manifest
from service.settings import Settings
from tests.service.support import REPO_ROOT, metric


def test_probes(api, tiny_model_dir):
    assert api.http.get("/healthz").json() == {"status": "alive", "model": None}
    ready = api.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["model"]["hash"] == read_manifest(tiny_model_dir).model_hash


def test_metrics_count_requests_frames_streams_and_batches(api, genuine_mp4):
    before = api.http.get("/metrics").text
    route = 'liveness_http_requests_total{method="POST",route="/v1/liveness",status="200"}'
    n_before = metric(before, route) if route in before else 0.0
    upload_frames = 'liveness_frames_processed_total{source="upload"}'
    frames_before = metric(before, upload_frames) if upload_frames in before else 0.0
    r = api.http.post(
        "/v1/liveness", content=genuine_mp4.read_bytes(), headers={"content-type": "video/mp4"}
    )
    assert r.status_code == 200
    api.http.get("/v2/missing")
    after = api.http.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text
    assert metric(text, route) == n_before + 1
    assert metric(text, upload_frames) == frames_before + len(r.json()["frames"])
    assert 'liveness_http_requests_total{method="GET",route="unmatched",status="404"}' in text
    assert metric(text, 'liveness_http_request_duration_seconds_count{route="/v1/liveness"}') >= 1
    assert metric(text, "liveness_active_streams") == 0
    # an upload's crops go to the encoder together: batches larger than one crop
    total = metric(text, "liveness_encoder_batch_size_count")
    single = metric(text, 'liveness_encoder_batch_size_bucket{le="1.0"}')
    assert total - single >= 1
    for name in ("liveness_stream_frame_latency_seconds", "liveness_stream_dropped_frames"):
        assert f"# TYPE {name}" in text


def test_a_server_fault_still_answers_json(tiny_model_dir):
    from fastapi.testclient import TestClient

    from tests.service.support import make_app

    app = make_app(tiny_model_dir)

    def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/broken", broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/broken")
        assert client.get("/healthz").status_code == 200  # and the server stays up
    assert r.status_code == 500
    assert r.json() == {
        "error": {"code": "internal_error", "message": "internal server error (RuntimeError)"}
    }


def test_openapi_documents_the_api_with_examples(api):
    spec = api.http.get("/openapi.json").json()
    post = spec["paths"]["/v1/liveness"]["post"]
    content = post["requestBody"]["content"]
    assert "multipart/form-data" in content and "video/mp4" in content
    assert content["multipart/form-data"]["schema"]["properties"]["file"]["format"] == "binary"
    assert {p["name"] for p in post["parameters"]} == {"fps", "max_frames", "nonce"}
    for status in ("200", "400", "413", "415", "422", "503"):
        assert status in post["responses"]
    assert post["responses"]["422"]["content"]["application/json"]["example"]["error"]["code"]
    result = spec["components"]["schemas"]["LivenessResult"]
    assert {"score", "label", "threshold", "frames", "windows", "aggregation", "model"} <= set(
        result["properties"]
    )
    assert result["examples"][0]["label"] == "genuine"
    assert "ErrorResponse" in spec["components"]["schemas"]
    docs = api.http.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_settings_come_from_the_environment_and_are_checked(monkeypatch):
    monkeypatch.setenv("LIVENESS_MAX_STREAMS", "3")
    monkeypatch.setenv("LIVENESS_BATCH_MAX_WAIT_MS", "0.5")
    settings = Settings()
    assert settings.max_streams == 3 and settings.batch_max_wait_ms == 0.5
    assert Settings(max_streams=5).max_streams == 5  # explicit values win
    monkeypatch.setenv("LIVENESS_MAX_STREAMS", "0")
    with pytest.raises(ValidationError, match="max_streams"):
        Settings()
    with pytest.raises(ValidationError, match="providers"):
        Settings(providers="tpu")
    defaults = Settings.model_fields
    assert all(field.description for field in defaults.values())
    assert defaults["max_upload_bytes"].default == 20 * 1024 * 1024
    assert (defaults["max_clip_seconds"].default, defaults["max_frames"].default) == (60.0, 1800)
    assert (defaults["batch_max_size"].default, defaults["batch_max_wait_ms"].default) == (16, 2.0)


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "liveness", *args],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_serve_refuses_to_start_without_a_model(tmp_path):
    out = run_cli("serve", "--model-dir", str(tmp_path / "nowhere"), "--port", "0")
    assert out.returncode == 2
    assert "does not exist" in out.stderr and "--model-dir" in out.stderr
    out = run_cli("serve", "--port", "0", env={"LIVENESS_MAX_STREAMS": "many"})
    assert out.returncode == 2 and "max_streams" in out.stderr
