"""The PyTorch encoder engine against the ONNX Runtime engine, on the same exported model."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from model.export import encoder_from_onnx
from model.manifest import ENCODER_NAME, read_manifest
from model.runtime import LivenessModel
from model.torch_engine import (
    TorchEncoder,
    TorchEncoderError,
    TorchUnavailableError,
    fold_batchnorm,
)
from tests.helpers import TINY_SIZE


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    """Five normalised-looking frames [5, 3, S, S] (batch 5: not a power of two)."""
    rng = np.random.default_rng(7)
    return rng.normal(0.0, 1.0, (5, 3, TINY_SIZE, TINY_SIZE)).astype(np.float32)


@pytest.fixture(scope="module")
def onnx_features(tiny_model_dir, frames) -> np.ndarray:
    return LivenessModel(tiny_model_dir, providers="cpu", threads=1).encode(frames)


@pytest.mark.parametrize("channels_last", [True, False])
def test_fp32_matches_onnx_runtime(tiny_model_dir, frames, onnx_features, channels_last):
    encoder = TorchEncoder(tiny_model_dir, device="cpu", channels_last=channels_last)
    features = encoder.encode(frames)
    assert features.dtype == np.float32 and features.shape == onnx_features.shape
    assert np.abs(onnx_features).max() > 0.1  # a real signal, not all zeros
    np.testing.assert_allclose(features, onnx_features, atol=1e-4, rtol=0)
    # rows are independent: one frame alone gives its row of the batch
    np.testing.assert_allclose(encoder.encode(frames[2:3])[0], features[2], atol=1e-5, rtol=0)


def test_manifest_and_path_give_the_same_encoder(tiny_model_dir, frames):
    manifest = read_manifest(tiny_model_dir)
    by_dir = TorchEncoder(tiny_model_dir, device="cpu").encode(frames)
    by_manifest = TorchEncoder(manifest, tiny_model_dir / ENCODER_NAME, device="cpu").encode(frames)
    np.testing.assert_array_equal(by_dir, by_manifest)


@pytest.mark.parametrize(("dtype", "tolerance"), [("bf16", 0.05), ("fp16", 0.01)])
def test_half_precision_stays_close_to_fp32(
    tiny_model_dir, frames, onnx_features, dtype, tolerance
):
    features = TorchEncoder(tiny_model_dir, device="cpu", dtype=dtype).encode(frames)
    assert features.dtype == np.float32
    deviation = np.abs(features - onnx_features).max() / np.abs(onnx_features).max()
    assert deviation < tolerance
    assert deviation > 1e-5, f"{dtype} gave fp32 results: the weights were not converted"


def test_fold_batchnorm_keeps_outputs_and_removes_the_norms(tiny_model_dir, frames):
    manifest = read_manifest(tiny_model_dir)
    encoder = encoder_from_onnx(tiny_model_dir / ENCODER_NAME, manifest)
    # give the norms non-trivial statistics, so folding has something to fold
    gen = torch.Generator().manual_seed(0)
    for m in encoder.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    x = torch.from_numpy(frames)
    with torch.no_grad():
        before = encoder(x)
        norms = sum(isinstance(m, torch.nn.BatchNorm2d) for m in encoder.modules())
        folded = fold_batchnorm(encoder)
        after = folded(x)
    assert norms > 10
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    torch.testing.assert_close(after, before, atol=1e-4, rtol=1e-4)


@pytest.mark.slow  # torch.compile tracing: about 9 s
def test_compiled_encoder_pads_odd_batches_and_matches(tiny_model_dir, frames, onnx_features):
    # "aot_eager" traces and runs the graph through torch.compile without code generation
    # (inductor takes minutes on two CPU cores); the padding and slicing are the same.
    encoder = TorchEncoder(tiny_model_dir, device="cpu", compile=True, compile_backend="aot_eager")
    np.testing.assert_allclose(encoder.encode(frames), onnx_features, atol=1e-4, rtol=0)
    np.testing.assert_allclose(encoder.encode(frames[:3]), onnx_features[:3], atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"device": "tpu"}, "device must be one of"),
        ({"dtype": "int8"}, "dtype must be one of"),
    ],
)
def test_bad_options_are_refused(tiny_model_dir, options, message):
    with pytest.raises(TorchEncoderError, match=message):
        TorchEncoder(tiny_model_dir, **{"device": "cpu", **options})


def test_bad_inputs_are_refused(tiny_model_dir, frames):
    encoder = TorchEncoder(tiny_model_dir, device="cpu")
    with pytest.raises(TorchEncoderError, match=r"expected frames \[N>0, 3, 64, 64\]"):
        encoder.encode(frames[:, :, :32])
    with pytest.raises(TorchEncoderError, match="N>0"):
        encoder.encode(frames[:0])
    with pytest.raises(TorchEncoderError, match="float32"):
        encoder.encode(frames.astype(np.float64))
    with pytest.raises(TorchEncoderError, match="numpy array"):
        encoder.encode(torch.from_numpy(frames))


def test_missing_weights_and_ambiguous_sources_are_refused(tiny_model_dir, tmp_path):
    manifest = read_manifest(tiny_model_dir)
    with pytest.raises(TorchEncoderError, match="needs encoder_path"):
        TorchEncoder(manifest, device="cpu")
    with pytest.raises(TorchEncoderError, match="not found"):
        TorchEncoder(manifest, tmp_path / "nothing.onnx", device="cpu")
    with pytest.raises(TorchEncoderError, match="only for a Manifest"):
        TorchEncoder(tiny_model_dir, tiny_model_dir / ENCODER_NAME, device="cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_says_so(tiny_model_dir):
    with pytest.raises(TorchUnavailableError, match="sees no CUDA GPU"):
        TorchEncoder(tiny_model_dir, device="cuda")


def test_missing_torch_is_a_clear_error(tiny_model_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    with pytest.raises(TorchUnavailableError, match="needs PyTorch, which is not installed"):
        TorchEncoder(tiny_model_dir, device="cpu")
