"""MiniFASNet: the shipped files load strictly into our modules, only with their pinned
sha256; the classifier calls a real face real; the trunk is a CNN-LSTM encoder that
exports to ONNX and matches torch there."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from model.backbones import WeightsError
from model.config import MINIFASNET_MEAN, MINIFASNET_STD, NetworkConfig, PreprocessConfig
from model.export import encoder_state_dict_from_onnx, export_model, make_manifest
from model.manifest import ENCODER_NAME, HEAD_NAME
from model.minifasnet import (
    INPUT_SIZE,
    MINIFASNET_V1SE,
    MINIFASNET_V2,
    SILENT_FACE_DIR,
    SPECS,
    WeightsFileError,
    load_minifasnet,
    load_state_dict,
)
from model.network import build_network, load_minifasnet_weights
from model.preprocess import to_network_input

SHARED_REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
REAL_CLIP = SHARED_REAL / "liveportrait__driving_d3.mp4"  # a woman facing the camera
TOLERANCE = 1e-4  # max |onnxruntime - torch|


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("spec", [MINIFASNET_V2, MINIFASNET_V1SE], ids=lambda s: s.name)
def test_shipped_files_load_strictly(spec) -> None:
    state = load_state_dict(spec)
    assert not any(k.startswith("module.") for k in state)
    net = load_minifasnet(spec)  # load_state_dict(strict=True) inside
    assert set(net.state_dict()) == set(state)
    logits = net(torch.zeros(2, 3, INPUT_SIZE, INPUT_SIZE))
    assert logits.shape == (2, 3)


def test_a_file_with_another_sha256_is_refused(tmp_path: Path) -> None:
    altered = tmp_path / MINIFASNET_V2.file
    shutil.copyfile(SILENT_FACE_DIR / MINIFASNET_V2.file, altered)
    with altered.open("ab") as f:
        f.write(b"\0")
    with pytest.raises(WeightsFileError, match="sha256 .* is not the pinned"):
        load_state_dict(MINIFASNET_V2, altered)
    with pytest.raises(WeightsFileError, match="no MiniFASNetV2 weights"):
        load_state_dict(MINIFASNET_V2, tmp_path / "missing.pth")
    # the other network's genuine file has the other hash: refused before any shape check
    with pytest.raises(WeightsFileError, match="sha256"):
        load_state_dict(MINIFASNET_V2, SILENT_FACE_DIR / MINIFASNET_V1SE.file)


@pytest.mark.skipif(not REAL_CLIP.is_file(), reason=f"{REAL_CLIP} absent (../shared/data)")
def test_classifier_calls_a_real_face_real() -> None:
    from model.config import CropConfig
    from model.detectors import BlazeFaceDetector
    from model.face import crop_face
    from model.video import read_frames

    frames, _, _ = read_frames(REAL_CLIP, max_frames=1)
    (box, *_) = BlazeFaceDetector().detect(frames[0])
    scores = []
    for spec in (MINIFASNET_V2, MINIFASNET_V1SE):
        margin = (spec.crop_scale - 1) / 2  # side = crop_scale x the box, as the authors crop
        config = CropConfig(input_size=INPUT_SIZE, margin=margin, border="shift")
        crop = crop_face(frames[0], box, config)  # BGR uint8
        x = torch.from_numpy(crop.transpose(2, 0, 1)[None].astype(np.float32))  # [0, 255]
        with torch.no_grad():
            scores.append(float(load_minifasnet(spec).p_real(x)[0]))
    assert min(scores) > 0.5, scores
    assert abs(scores[0] - scores[1]) < 0.3, scores  # the two networks roughly agree


def _network(backbone: str = "minifasnet_v2") -> NetworkConfig:
    return NetworkConfig(
        backbone=backbone,
        input_size=INPUT_SIZE,
        hidden=32,
        channel_order="bgr",
        mean=MINIFASNET_MEAN,
        std=MINIFASNET_STD,
    )


def test_network_input_is_bgr_0_255() -> None:
    crop = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), np.uint8)
    crop[..., 0] = 200  # blue
    x = to_network_input(crop, _network())
    assert x.shape == (1, 3, INPUT_SIZE, INPUT_SIZE)
    np.testing.assert_allclose(x[0, :, 0, 0], [200, 0, 0], atol=1e-3)
    rgb = to_network_input(crop, NetworkConfig())  # the default stays RGB, ImageNet-normalised
    assert rgb[0, 2, 0, 0] > rgb[0, 0, 0, 0]


@pytest.mark.parametrize("backbone", sorted(SPECS))
def test_backbone_loads_the_trunk_of_the_classifier(backbone: str) -> None:
    net = build_network(_network(backbone)).eval()
    assert net.encoder.map_size == INPUT_SIZE // 16
    loaded = load_minifasnet_weights(net.encoder)
    reference = load_minifasnet(SPECS[backbone])
    assert len(loaded) == len(reference.trunk().state_dict())
    x = torch.rand(2, 3, INPUT_SIZE, INPUT_SIZE) * 255
    with torch.no_grad():
        torch.testing.assert_close(net.encoder.features(x), reference.features(x))
    other = build_network(_network("light"))
    with pytest.raises(WeightsError, match="MiniFASNet weights need backbone"):
        load_minifasnet_weights(other.encoder)


def test_backbone_exports_and_onnx_runtime_matches_torch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = _network()
    net = build_network(config)
    load_minifasnet_weights(net.encoder)
    net.eval()
    manifest = make_manifest(net, PreprocessConfig(), name="test-minifasnet", threshold=0.5)
    out = export_model(net, manifest, tmp_path / "model")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    encoder = ort.InferenceSession(str(out / ENCODER_NAME), options, providers=["CPUExecutionProvider"])  # fmt: skip
    head = ort.InferenceSession(str(out / HEAD_NAME), options, providers=["CPUExecutionProvider"])
    crops = np.random.default_rng(0).integers(0, 256, (3, INPUT_SIZE, INPUT_SIZE, 3), np.uint8)
    frames = to_network_input(crops, config)
    with torch.no_grad():
        expected = net.encoder(torch.from_numpy(frames)).numpy()
        out_torch = net.forward_features(torch.from_numpy(expected)[None])
    (features,) = encoder.run(None, {"frames": frames})
    assert np.abs(features - expected).max() <= TOLERANCE * max(1.0, np.abs(expected).max())
    prob, _ = head.run(None, {"features": features[None]})
    expected_prob = torch.softmax(out_torch.logits, dim=-1)[:, 1].numpy()
    assert np.abs(prob - expected_prob).max() <= TOLERANCE
    state = encoder_state_dict_from_onnx(out / ENCODER_NAME)  # PReLU slopes included
    for key, value in net.encoder.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            torch.testing.assert_close(state[key].reshape(value.shape), value, msg=key)


def test_training_config_starts_from_the_shipped_weights_frozen() -> None:
    from training.config import ConfigError, resolve_config
    from training.train.loop import build_model

    config = resolve_config("minifasnet")
    assert config.network.backbone == "minifasnet_v2" and config.preprocess.crop.input_size == 80
    net = build_model(config)
    reference = load_minifasnet(MINIFASNET_V2)
    torch.testing.assert_close(net.encoder.features.conv1.conv.weight, reference.conv1.conv.weight)
    assert not any(p.requires_grad for p in net.encoder.features.parameters())
    assert all(p.requires_grad for p in net.encoder.reduce.parameters())
    with pytest.raises(ConfigError, match="BGR"):
        resolve_config("minifasnet", sets=["network.channel_order=rgb"])
    with pytest.raises(ConfigError, match="MiniFASNet checkpoint"):
        resolve_config("minifasnet", sets=["network.backbone=light"])


def test_shift_crop_stays_inside_the_frame_as_the_authors_crop() -> None:
    from model.config import CropConfig
    from model.detectors import FaceBox
    from model.face import crop_face

    frame = np.random.default_rng(1).integers(0, 256, (120, 200, 3), np.uint8)
    box = FaceBox(10.0, 40.0, 20.0, 20.0)  # near the left edge: a 60 px crop leaves it by 10
    size = 60
    shifted = crop_face(frame, box, CropConfig(input_size=size, margin=1.0, border="shift"))
    np.testing.assert_array_equal(shifted, frame[20:80, 0:60])  # moved right, not padded
    replicated = crop_face(frame, box, CropConfig(input_size=size, margin=1.0))
    np.testing.assert_array_equal(replicated[:, 10:], frame[20:80, 0:50])
    assert (replicated[:, :10] == replicated[:, 10:11]).all()  # the default repeats the edge
    big = crop_face(frame, FaceBox(60.0, 20.0, 80.0, 80.0), CropConfig(input_size=size, margin=1.0, border="shift"))  # fmt: skip
    assert big.shape == (size, size, 3)  # a 240 px square shrunk to the frame's 120 px side
    # the new field leaves every existing preprocessing cache's key as it was
    assert PreprocessConfig().digest() == "57e2f13325d993d2"
    shift = PreprocessConfig(crop=CropConfig(border="shift"))
    assert shift.digest() != PreprocessConfig().digest()
