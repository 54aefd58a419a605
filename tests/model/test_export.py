"""ONNX export: onnxruntime agrees with torch at shapes other than the traced ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from model.config import CropConfig, NetworkConfig, PreprocessConfig, WindowConfig
from model.export import (
    ExportError,
    encoder_from_onnx,
    encoder_state_dict_from_onnx,
    export_model,
    make_manifest,
)
from model.manifest import ENCODER_NAME, HEAD_NAME, Manifest, ManifestError, read_manifest
from model.network import FrameEncoder, LivenessNet, build_network

TOLERANCE = 1e-4  # max |onnxruntime - torch|
EXPORT_WINDOW = 8  # the T the head is traced with; checks use other T too

VARIANTS = {
    "light": NetworkConfig(backbone="light", input_size=64, hidden=32),
    "vgg16": NetworkConfig(backbone="vgg16", input_size=32, hidden=32),
    "vgg16_bn": NetworkConfig(backbone="vgg16", input_size=32, vgg_batchnorm=True, hidden=32),
    "no_attention": NetworkConfig(backbone="light", input_size=64, hidden=32, attention=False),
    "frame_only": NetworkConfig(backbone="light", input_size=64, temporal="none"),
    "mobilenet_v2": NetworkConfig(backbone="mobilenet_v2", input_size=32, hidden=32),
    "motion_delta": NetworkConfig(backbone="light", input_size=64, hidden=32, motion="delta"),
}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # Tiny models gain nothing from threads, and on a busy 2-core machine OpenMP barriers
    # make eager torch up to 100x slower; restore the setting for other modules.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _preprocess(config: NetworkConfig) -> PreprocessConfig:
    return PreprocessConfig(window=WindowConfig(length=EXPORT_WINDOW))  # the crop follows the net


def _trained_looking(net: LivenessNet) -> LivenessNet:
    """Give the random net non-trivial BatchNorm statistics and a decisive head, so the
    parity checks compare outputs of real magnitude, not near-zeros or a flat 0.5."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.1)
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
        net.frame_classifier.weight.mul_(20.0)
        if net.head is not None:
            net.head.classifier.weight.mul_(20.0)
            if net.head.attention is not None:
                net.head.attention.weight.mul_(10.0)
    return net


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def exported(request, tmp_path_factory) -> tuple[LivenessNet, Path]:
    torch.manual_seed(0)
    config = VARIANTS[request.param]
    net = _trained_looking(build_network(config))
    manifest = make_manifest(net, _preprocess(config), name=f"test-{request.param}", threshold=0.4)
    out_dir = export_model(net, manifest, tmp_path_factory.mktemp(request.param))
    return net.eval(), out_dir


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def test_encoder_matches_torch_at_any_batch(exported) -> None:
    net, out_dir = exported
    session = _session(out_dir / ENCODER_NAME)
    assert [i.name for i in session.get_inputs()] == ["frames"]
    assert [o.name for o in session.get_outputs()] == ["features"]
    size = net.config.input_size
    gen = torch.Generator().manual_seed(2)
    for n in (1, 3, 5):
        frames = torch.randn(n, 3, size, size, generator=gen)
        with torch.no_grad():
            expected = net.encoder(frames).numpy()
        (features,) = session.run(None, {"frames": frames.numpy()})
        assert features.shape == (n, net.feature_dim)
        assert expected.std() > 1e-2  # a meaningful scale for the tolerance below
        assert np.abs(features - expected).max() <= TOLERANCE


@pytest.mark.parametrize(("batch", "length"), [(1, 1), (2, EXPORT_WINDOW), (3, 5), (1, 23)])
def test_head_matches_torch_at_any_window(exported, batch: int, length: int) -> None:
    net, out_dir = exported
    session = _session(out_dir / HEAD_NAME)
    assert [o.name for o in session.get_outputs()] == ["prob_genuine", "attention"]
    gen = torch.Generator().manual_seed(3 + length)
    features = torch.randn(batch, length, net.feature_dim, generator=gen).abs()  # ReLU outputs
    with torch.no_grad():
        out = net.forward_features(features)
    prob, attention = session.run(None, {"features": features.numpy()})
    expected_prob = torch.softmax(out.logits, dim=-1)[:, 1].numpy()
    assert prob.shape == (batch,) and attention.shape == (batch, length)
    assert np.abs(prob - expected_prob).max() <= TOLERANCE
    assert np.abs(attention - out.attention.numpy()).max() <= TOLERANCE
    np.testing.assert_allclose(attention.sum(axis=1), 1.0, atol=1e-5)


def test_head_scores_spread_and_attention_matches_the_variant(exported) -> None:
    net, out_dir = exported
    features = torch.randn(16, 6, net.feature_dim, generator=torch.Generator().manual_seed(4))
    prob, attention = _session(out_dir / HEAD_NAME).run(None, {"features": features.numpy()})
    assert prob.max() - prob.min() > 0.1  # the parity checks compare real decisions
    uniform = np.allclose(attention, 1 / 6, atol=1e-6)
    assert uniform == (not net.config.attention or net.config.temporal == "none")


def test_encoder_weights_round_trip_through_onnx(exported) -> None:
    net, out_dir = exported
    state = encoder_state_dict_from_onnx(out_dir / ENCODER_NAME)
    original = net.encoder.state_dict()
    assert set(state) == set(original)
    for key, value in original.items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(state[key], value), key
    fresh = FrameEncoder(net.config)
    fresh.load_state_dict(state, strict=True)
    frames = torch.randn(2, 3, net.config.input_size, net.config.input_size)
    (onnx_features,) = _session(out_dir / ENCODER_NAME).run(None, {"frames": frames.numpy()})
    with torch.no_grad():
        torch_features = fresh.eval()(frames).numpy()
    assert np.abs(torch_features - onnx_features).max() <= TOLERANCE
    rebuilt = encoder_from_onnx(out_dir / ENCODER_NAME, read_manifest(out_dir))
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(frames), fresh(frames))


def test_manifest_describes_the_export(exported) -> None:
    net, out_dir = exported
    manifest = read_manifest(out_dir)  # also checks the files' sha256
    assert manifest.network == net.config
    assert manifest.feature_dim == net.feature_dim
    assert manifest.threshold == 0.4
    assert set(manifest.files) == {ENCODER_NAME, HEAD_NAME}
    assert manifest.created  # filled in by make_manifest


def test_state_dict_reader_follows_deduplicated_tensors(tmp_path: Path) -> None:
    # A fresh network has many equal tensors (zero biases, unit BatchNorm variances); the
    # exporter stores each value once and aliases the rest through Identity nodes.
    net = build_network(VARIANTS["vgg16_bn"])
    export_model(net, make_manifest(net, _preprocess(net.config), "fresh"), tmp_path)
    graph = onnx.load(str(tmp_path / ENCODER_NAME)).graph
    aliased = {n.output[0] for n in graph.node if n.op_type == "Identity"}
    assert aliased - {i.name for i in graph.initializer}
    state = encoder_state_dict_from_onnx(tmp_path / ENCODER_NAME)
    for key in aliased:
        assert torch.equal(state[key], net.encoder.state_dict()[key]), key


def test_export_keeps_the_training_mode_and_checks_the_manifest(tmp_path: Path) -> None:
    net = build_network(VARIANTS["frame_only"]).train()
    manifest = make_manifest(net, _preprocess(net.config), "m", metrics={"hter": 0.1})
    assert manifest.metrics == {"hter": 0.1}
    export_model(net, manifest, tmp_path / "ok")
    assert net.training
    other = build_network(VARIANTS["light"])
    with pytest.raises(ExportError, match="network"):
        export_model(other, manifest, tmp_path / "bad")
    with pytest.raises(ManifestError, match="unknown manifest fields"):
        make_manifest(net, _preprocess(net.config), "m", accuracy=0.9)
    # one input size: the manifest's crop is the network's input, written once
    other_size = make_manifest(net, PreprocessConfig(crop=CropConfig(input_size=112)), "m")
    assert other_size.preprocess.crop.input_size == net.config.input_size
    written = other_size.to_dict()
    assert "input_size" not in written["preprocess"]["crop"]
    assert written["network"]["input_size"] == net.config.input_size
    assert Manifest.from_dict(written).preprocess.crop.input_size == net.config.input_size


def test_state_dict_reader_refuses_other_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ExportError, match="not a readable ONNX"):
        encoder_state_dict_from_onnx(junk)
    net = build_network(VARIANTS["frame_only"])
    export_model(net, make_manifest(net, _preprocess(net.config), "m"), tmp_path)
    with pytest.raises(ExportError, match="no named encoder weights"):
        encoder_state_dict_from_onnx(tmp_path / HEAD_NAME)
