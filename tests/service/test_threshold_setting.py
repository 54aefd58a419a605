"""The decision threshold a served model uses: its manifest's, or LIVENESS_THRESHOLD, which
every answer, the verdict and /readyz then carry."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from model.manifest import read_manifest
from model.runtime import LivenessModel
from service.settings import Settings
from tests.service.support import make_app


def _upload(client: TestClient, clip) -> dict:
    r = client.post(
        "/v1/liveness", content=clip.read_bytes(), headers={"content-type": "video/mp4"}
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_the_manifests_threshold_is_served_without_the_setting(tiny_model_dir, genuine_mp4):
    manifest = read_manifest(tiny_model_dir).threshold
    with TestClient(make_app(tiny_model_dir)) as client:
        ready = client.get("/readyz").json()["threshold"]
        body = _upload(client, genuine_mp4)
    assert ready == {"value": manifest, "manifest": manifest, "override": False}
    assert body["threshold"] == manifest


@pytest.mark.parametrize("threshold", [0.0, 1.0])
def test_the_setting_decides_every_answer(tiny_model_dir, genuine_mp4, threshold):
    manifest = read_manifest(tiny_model_dir).threshold
    with TestClient(make_app(tiny_model_dir, threshold=threshold)) as client:
        ready = client.get("/readyz").json()["threshold"]
        body = _upload(client, genuine_mp4)
    assert ready == {"value": threshold, "manifest": manifest, "override": True}
    assert body["threshold"] == threshold
    assert 0.0 < body["score"] < 1.0  # an untrained model: never exactly 0 or 1
    assert body["label"] == ("genuine" if threshold == 0.0 else "spoof")


def test_a_threshold_outside_0_1_is_refused(tiny_model_dir):
    with pytest.raises(ValidationError, match="threshold"):
        Settings(threshold=1.5)
    with pytest.raises(ValidationError, match="threshold"):
        Settings(threshold=-0.1)
    with pytest.raises(ValueError, match="outside"):
        LivenessModel(tiny_model_dir, providers="cpu", threshold=2.0)
