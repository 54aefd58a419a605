"""The server with the PyTorch encoder engine (encoder='torch'), checked on the CPU:
same scores as the ONNX Runtime engine, clear start-up errors."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service.deps import state_of
from tests.service.support import make_app

pytest.importorskip("torch")


def _score(client: TestClient, clip_bytes: bytes) -> dict:
    r = client.post("/v1/liveness", content=clip_bytes, headers={"Content-Type": "video/mp4"})
    assert r.status_code == 200, r.text
    return r.json()


def test_torch_engine_scores_like_the_onnx_engine(tiny_model_dir, genuine_mp4):
    clip = genuine_mp4.read_bytes()
    with TestClient(make_app(tiny_model_dir)) as onnx_client:
        onnx_body = _score(onnx_client, clip)
    app = make_app(tiny_model_dir, encoder="torch", torch_device="cpu", torch_dtype="fp32")
    with TestClient(app) as torch_client:
        torch_body = _score(torch_client, clip)
        assert type(state_of(app).engine.encoder).__name__ == "TorchEncoder"
    assert torch_body["score"] == pytest.approx(onnx_body["score"], abs=1e-4)
    assert len(torch_body["windows"]) == len(onnx_body["windows"])
    for a, b in zip(torch_body["windows"], onnx_body["windows"], strict=True):
        assert a["frames"] == b["frames"]
        assert a["score"] == pytest.approx(b["score"], abs=1e-4)


def test_torch_engine_on_a_missing_gpu_fails_at_start_up(tiny_model_dir):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU: the error path cannot be shown")
    app = make_app(tiny_model_dir, encoder="torch", torch_device="cuda")
    with pytest.raises(Exception, match="torch encoder engine: .*no CUDA GPU"), TestClient(app):
        pass
