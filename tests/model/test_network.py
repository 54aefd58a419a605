"""The CNN-LSTM: attention as in paper eq. 12-13, ablations, VGG-16 and MobileNetV2
weight loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from model.backbones import MobileNetV2, WeightsError
from model.config import MOTION_DIM, NetworkConfig
from model.network import (
    FrameEncoder,
    LivenessNet,
    LivenessOutput,
    NetworkConfigError,
    NetworkInputError,
    TemporalHead,
    build_network,
    load_mobilenet_v2_weights,
    load_vgg16_weights,
)

# torchvision's vgg16().features / vgg16_bn().features: positions of the 13 convs.
TV_VGG16_CONVS = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
TV_VGG16_BN_CONVS = [0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40]
VGG16_WIDTHS = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # Tiny models gain nothing from threads, and on a busy 2-core machine OpenMP barriers
    # make eager torch up to 100x slower; restore the setting for other modules.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _head(attention: bool = True, feature_dim: int = 12, hidden: int = 8) -> TemporalHead:
    config = NetworkConfig(hidden=hidden, attention=attention)
    head = TemporalHead(config, feature_dim).eval()
    if head.attention is not None:
        with torch.no_grad():  # a sharper w so the weights are clearly not uniform
            head.attention.weight.mul_(8.0)
    return head


def test_attention_matches_eq13_by_hand() -> None:
    head = _head()
    feats = torch.randn(3, 6, 12)
    with torch.no_grad():
        logits, alpha, _ = head(feats)
        h = head.lstm(feats)[0].double().numpy()  # [B, T, H]
    w = head.attention.weight.detach().double().numpy()[0]  # [H]
    expected = np.zeros((3, 6))
    for b in range(3):
        h_prev = [np.zeros_like(w)] + [h[b, i - 1] for i in range(1, 6)]  # h_0 = 0
        e = np.array([w @ hp for hp in h_prev])
        expected[b] = np.exp(e) / np.exp(e).sum()
    np.testing.assert_allclose(alpha.double().numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(alpha.sum(1).numpy(), 1.0, atol=1e-6)
    assert alpha.std(dim=1).min() > 0.01  # not accidentally uniform
    c = (expected[..., None] * h).sum(1)  # eq. 12
    ref = (
        c @ head.classifier.weight.double().detach().numpy().T
        + head.classifier.bias.double().detach().numpy()
    )
    np.testing.assert_allclose(logits.double().numpy(), ref, atol=1e-5)


def test_attention_uses_previous_state_not_current() -> None:
    # alpha_i depends on h_{i-1}: the last frame never moves any weight, the first one does.
    head = _head()
    feats = torch.randn(2, 5, 12)
    changed_last, changed_first = feats.clone(), feats.clone()
    changed_last[:, -1] += 3.0
    changed_first[:, 0] += 3.0
    with torch.no_grad():
        logits, alpha, _ = head(feats)
        logits_last, alpha_last, _ = head(changed_last)
        _, alpha_first, _ = head(changed_first)
    torch.testing.assert_close(alpha_last, alpha, rtol=0, atol=1e-7)
    assert (logits_last - logits).abs().max() > 1e-4  # ... though h_T still enters c
    assert (alpha_first[:, 1:] - alpha[:, 1:]).abs().max() > 1e-3


def test_without_attention_weights_are_uniform_and_c_is_the_mean() -> None:
    head = _head(attention=False)
    assert head.attention is None
    assert not any("attention" in k for k in head.state_dict())
    feats = torch.randn(2, 7, 12)
    with torch.no_grad():
        logits, alpha, _ = head(feats)
        mean_h = head.lstm(feats)[0].mean(dim=1)
        ref = head.classifier(mean_h)
    torch.testing.assert_close(alpha, torch.full((2, 7), 1 / 7))
    torch.testing.assert_close(logits, ref)


def test_frame_only_variant_averages_frame_logits() -> None:
    net = build_network(NetworkConfig(input_size=32, temporal="none")).eval()
    assert net.head is None
    assert not any("lstm" in k for k in net.state_dict())
    feats = torch.randn(3, 4, net.feature_dim)
    with torch.no_grad():
        out = net.forward_features(feats)
    torch.testing.assert_close(out.logits, out.frame_logits.mean(dim=1))
    torch.testing.assert_close(out.attention, torch.full((3, 4), 0.25))


def test_forward_encodes_each_frame_in_batch_time_order() -> None:
    net = build_network(NetworkConfig(input_size=32, hidden=16)).eval()
    frames = torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        out = net(frames)
        per_frame = torch.stack(
            [
                torch.stack([net.encoder(frames[b, t : t + 1])[0] for t in range(3)])
                for b in range(2)
            ]
        )  # [B, T, F], one frame at a time
        ref = net.forward_features(per_frame)
    assert isinstance(out, LivenessOutput)
    torch.testing.assert_close(out.logits, ref.logits, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out.frame_logits, ref.frame_logits, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out.attention, ref.attention, atol=1e-6, rtol=1e-5)


def test_train_and_eval_return_the_same_type() -> None:
    net = build_network(NetworkConfig(input_size=32, hidden=16))
    frames = torch.randn(2, 3, 3, 32, 32)
    train_out = net.train()(frames)
    with torch.no_grad():
        eval_out = net.eval()(frames)
    for out in (train_out, eval_out):
        assert isinstance(out, LivenessOutput)
        assert out.logits.shape == (2, 2) and out.frame_logits.shape == (2, 3, 2)
        torch.testing.assert_close(out.attention.sum(1), torch.ones(2))
    train_out.logits.sum().backward()  # the joint loss can flow into the encoder
    assert net.encoder.features[0][0].weight.grad is not None


@pytest.mark.parametrize(
    ("backbone", "size", "map_size"),
    [
        ("light", 32, 1),
        ("light", 64, 2),
        ("light", 112, 4),
        ("vgg16", 32, 1),
        ("vgg16", 100, 3),
        ("mobilenet_v2", 32, 1),
        ("mobilenet_v2", 100, 4),
    ],
)
def test_feature_dim_keeps_the_spatial_map(backbone: str, size: int, map_size: int) -> None:
    config = NetworkConfig(backbone=backbone, input_size=size, reduce_channels=8)
    encoder = FrameEncoder(config).eval()
    with torch.no_grad():
        feats = encoder(torch.randn(2, 3, size, size))
    assert encoder.map_size == map_size
    assert encoder.feature_dim == 8 * map_size * map_size == feats.shape[1]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"backbone": "resnet"}, "backbone"),
        ({"temporal": "gru"}, "temporal"),
        ({"input_size": 16}, "stride"),
        ({"hidden": 0}, "hidden"),
        ({"dropout": 1.0}, "dropout"),
        ({"motion": "optical"}, "motion"),
        ({"motion": "delta", "temporal": "none"}, "motion needs the LSTM"),
    ],
)
def test_bad_config_is_refused(change: dict, message: str) -> None:
    with pytest.raises(NetworkConfigError, match=message):
        build_network(NetworkConfig(**change))


def test_motion_delta_feeds_the_lstm_each_frames_change() -> None:
    from model.network import with_deltas

    f = torch.tensor([[[1.0, 2.0], [4.0, 2.0], [4.0, 7.0]]])  # [B=1, T=3, F=2]
    expected = torch.tensor([[[1.0, 2.0, 0.0, 0.0], [4.0, 2.0, 3.0, 0.0], [4.0, 7.0, 0.0, 5.0]]])
    assert torch.equal(with_deltas(f), expected)
    head = TemporalHead(NetworkConfig(hidden=8, motion="delta"), 12).eval()
    assert head.lstm.input_size == 24
    # a window of one repeated frame has zero deltas: the head then sees only that frame,
    # so zeroing the delta half of the LSTM's input weights changes nothing for it
    still = torch.randn(1, 1, 12).repeat(2, 6, 1)
    moving = still + torch.randn(2, 6, 12)
    before = [head(x)[0] for x in (still, moving)]
    with torch.no_grad():
        head.lstm.weight_ih_l0[:, 12:] = 0.0
    after = [head(x)[0] for x in (still, moving)]
    assert torch.allclose(before[0], after[0])
    assert not torch.allclose(before[1], after[1])


def test_bad_input_shapes_are_refused() -> None:
    net = build_network(NetworkConfig(input_size=32, hidden=8)).eval()
    with pytest.raises(NetworkInputError, match=r"\[B, T, 3, S, S\]"):
        net(torch.randn(2, 3, 32, 32))
    with pytest.raises(NetworkInputError, match="32, 32"):
        net(torch.randn(1, 2, 3, 48, 48))
    with pytest.raises(NetworkInputError, match=str(net.feature_dim)):
        net.forward_features(torch.randn(1, 4, net.feature_dim + 1))
    with pytest.raises(NetworkInputError, match="T>=1"):
        net.forward_features(torch.randn(1, 0, net.feature_dim))


def _torchvision_vgg16_state(batchnorm: bool) -> dict[str, torch.Tensor]:
    """Random tensors under torchvision's vgg16 / vgg16_bn names, classifier included."""
    state: dict[str, torch.Tensor] = {}
    c_in = 3
    for index, width in zip(
        TV_VGG16_BN_CONVS if batchnorm else TV_VGG16_CONVS, VGG16_WIDTHS, strict=True
    ):
        state[f"features.{index}.weight"] = torch.randn(width, c_in, 3, 3) * 0.1
        state[f"features.{index}.bias"] = torch.randn(width)
        if batchnorm:
            bn = f"features.{index + 1}"
            state[f"{bn}.weight"] = torch.rand(width) + 0.5
            state[f"{bn}.bias"] = torch.randn(width)
            state[f"{bn}.running_mean"] = torch.randn(width)
            state[f"{bn}.running_var"] = torch.rand(width) + 0.5
            state[f"{bn}.num_batches_tracked"] = torch.tensor(7)
        c_in = width
    state["classifier.0.weight"] = torch.randn(16, 8)  # fully-connected layers: ignored
    state["classifier.6.bias"] = torch.randn(2622)
    return state


def _vgg_encoder(batchnorm: bool) -> FrameEncoder:
    return FrameEncoder(NetworkConfig(backbone="vgg16", input_size=32, vgg_batchnorm=batchnorm))


def test_vgg16_weights_land_in_the_right_layers() -> None:
    encoder = _vgg_encoder(batchnorm=False).eval()
    state = _torchvision_vgg16_state(batchnorm=False)
    loaded = load_vgg16_weights(encoder, state)
    assert len(loaded) == 26 and "classifier.0.weight" not in loaded
    x = torch.randn(1, 128, 8, 8)
    with torch.no_grad():  # conv 3_1 is features.10 in torchvision; check it through its ReLU
        out = encoder.features[10:12](x)
    ref = F.relu(F.conv2d(x, state["features.10.weight"], state["features.10.bias"], padding=1))
    torch.testing.assert_close(out, ref)


def test_vgg16_bn_weights_land_in_the_right_layers() -> None:
    encoder = _vgg_encoder(batchnorm=True).eval()
    state = _torchvision_vgg16_state(batchnorm=True)
    load_vgg16_weights(encoder, state)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():  # conv 1_1 + BN + ReLU, then conv 1_2 (features.3)
        out = encoder.features[0:4](x)
    y = F.conv2d(x, state["features.0.weight"], state["features.0.bias"], padding=1)
    y = F.batch_norm(
        y, state["features.1.running_mean"], state["features.1.running_var"],
        state["features.1.weight"], state["features.1.bias"], training=False,
    )  # fmt: skip
    ref = F.conv2d(F.relu(y), state["features.3.weight"], state["features.3.bias"], padding=1)
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
    assert int(encoder.features[1].num_batches_tracked) == 7


def test_vgg16_loading_refuses_bad_weights_clearly() -> None:
    encoder = _vgg_encoder(batchnorm=False)
    state = _torchvision_vgg16_state(batchnorm=False)
    with pytest.raises(WeightsError, match="vgg16_bn"):
        load_vgg16_weights(encoder, _torchvision_vgg16_state(batchnorm=True))
    with pytest.raises(WeightsError, match=r"features\.99\.weight"):
        load_vgg16_weights(encoder, {**state, "features.99.weight": torch.zeros(1)})
    with pytest.raises(WeightsError, match="features.N"):
        load_vgg16_weights(encoder, {**state, "fc7.weight": torch.zeros(1)})
    with pytest.raises(WeightsError, match=r"features\.0\.weight: shape \(64, 1, 3, 3\)"):
        load_vgg16_weights(encoder, {**state, "features.0.weight": torch.zeros(64, 1, 3, 3)})
    partial = {k: v for k, v in state.items() if k != "features.28.bias"}
    with pytest.raises(WeightsError, match=r"missing .*features\.28\.bias"):
        load_vgg16_weights(encoder, partial)
    before = encoder.features[28].bias.detach().clone()
    load_vgg16_weights(encoder, partial, strict=False)  # the rest loads, 28.bias stays
    torch.testing.assert_close(encoder.features[28].bias.detach(), before)
    torch.testing.assert_close(encoder.features[26].bias.detach(), state["features.26.bias"])
    with pytest.raises(WeightsError, match="'vgg16'"):
        load_vgg16_weights(FrameEncoder(NetworkConfig(input_size=32)), state)


def test_dataparallel_prefix_is_accepted() -> None:
    encoder = _vgg_encoder(batchnorm=False)
    state = {"module." + k: v for k, v in _torchvision_vgg16_state(batchnorm=False).items()}
    load_vgg16_weights(encoder, state)
    torch.testing.assert_close(
        encoder.features[0].weight.detach(), state["module.features.0.weight"]
    )


def test_build_network_rebuilds_from_config_alone() -> None:
    config = NetworkConfig(input_size=32, hidden=8, reduce_channels=4)
    first, second = build_network(config), build_network(config)
    assert isinstance(first, LivenessNet)
    second.load_state_dict(first.state_dict())  # same architecture, key for key
    assert first.config == config and first.feature_dim == 4


# -- MobileNetV2 ---------------------------------------------------------------------------

# Shapes torchvision's mobilenet_v2() state dict has under these names (its source, and the
# 314-entry ImageNet checkpoint mobilenet_v2-b0353104.pth).
TV_MOBILENET_V2_SHAPES = {
    "features.0.0.weight": (32, 3, 3, 3),
    "features.0.1.running_var": (32,),
    "features.1.conv.0.0.weight": (32, 1, 3, 3),  # t = 1: no expansion, depthwise first
    "features.1.conv.1.weight": (16, 32, 1, 1),
    "features.1.conv.2.weight": (16,),
    "features.2.conv.0.0.weight": (96, 16, 1, 1),
    "features.2.conv.1.0.weight": (96, 1, 3, 3),
    "features.2.conv.2.weight": (24, 96, 1, 1),
    "features.2.conv.3.bias": (24,),
    "features.17.conv.2.weight": (320, 960, 1, 1),
    "features.18.0.weight": (1280, 320, 1, 1),
    "features.18.1.num_batches_tracked": (),
    "classifier.1.weight": (1000, 1280),
    "classifier.1.bias": (1000,),
}


def _mobilenet_encoder(size: int = 32) -> FrameEncoder:
    return FrameEncoder(NetworkConfig(backbone="mobilenet_v2", input_size=size))


def _torchvision_named_state(num_classes: int, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    reference = MobileNetV2(num_classes)
    with torch.no_grad():
        for m in reference.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.num_batches_tracked.fill_(11)
    return reference.state_dict()


def test_mobilenet_v2_has_torchvisions_names_and_size() -> None:
    state = MobileNetV2().state_dict()
    assert len(state) == 314
    for key, shape in TV_MOBILENET_V2_SHAPES.items():
        assert tuple(state[key].shape) == shape, key
    assert sum(p.numel() for p in MobileNetV2().parameters()) == 3_504_872  # torchvision's figure
    assert sorted({k.split(".")[1] for k in state if k.startswith("features.")}, key=int) == [
        str(i) for i in range(19)
    ]


def test_mobilenet_v2_weights_load_strictly_into_the_encoder(tmp_path) -> None:
    from training.pretrained import load_state_dict

    state = _torchvision_named_state(num_classes=2)
    path = tmp_path / "user_mobilenet_v2.pth"
    torch.save({f"module.{k}": v for k, v in state.items()}, path)  # as DataParallel saves
    encoder = _mobilenet_encoder().eval()
    loaded = load_mobilenet_v2_weights(encoder, load_state_dict(path))
    assert len(loaded) == 312 and not any(k.startswith("classifier") for k in loaded)
    for key, value in encoder.features.state_dict().items():
        assert torch.equal(value, state[f"features.{key}"]), key
    # features.3 is a stride-1 block with a skip: check it against a hand computation.
    x = torch.randn(1, 24, 8, 8)
    w = {k.removeprefix("features.3.conv."): v for k, v in state.items() if ".3.conv." in k}

    def bn(y, p):
        args = (w[f"{p}.running_mean"], w[f"{p}.running_var"], w[f"{p}.weight"], w[f"{p}.bias"])
        return F.batch_norm(y, *args, training=False)

    y = F.relu6(bn(F.conv2d(x, w["0.0.weight"]), "0.1"))
    y = F.relu6(bn(F.conv2d(y, w["1.0.weight"], padding=1, groups=144), "1.1"))
    ref = x + bn(F.conv2d(y, w["2.weight"]), "3")
    with torch.no_grad():
        torch.testing.assert_close(encoder.features[3](x), ref, atol=1e-5, rtol=1e-5)


def test_mobilenet_v2_loading_refuses_bad_weights_clearly() -> None:
    encoder = _mobilenet_encoder()
    state = _torchvision_named_state(num_classes=1000)
    with pytest.raises(WeightsError, match="backbone 'mobilenet_v2'"):
        load_mobilenet_v2_weights(FrameEncoder(NetworkConfig(input_size=32)), state)
    with pytest.raises(WeightsError, match="fc7"):
        load_mobilenet_v2_weights(encoder, {**state, "fc7.weight": torch.zeros(1)})
    with pytest.raises(WeightsError, match=r"features\.99\.weight"):
        load_mobilenet_v2_weights(encoder, {**state, "features.99.weight": torch.zeros(1)})
    narrow = {**state, "features.0.0.weight": torch.zeros(16, 3, 3, 3)}  # width 0.5
    with pytest.raises(WeightsError, match=r"features\.0\.0\.weight"):
        load_mobilenet_v2_weights(encoder, narrow)
    partial = {k: v for k, v in state.items() if k != "features.18.1.bias"}
    with pytest.raises(WeightsError, match=r"features\.18\.1\.bias"):
        load_mobilenet_v2_weights(encoder, partial)
    before = encoder.features[18][1].bias.detach().clone()
    load_mobilenet_v2_weights(encoder, partial, strict=False)  # the rest loads, 18.1.bias stays
    torch.testing.assert_close(encoder.features[18][1].bias.detach(), before)
    torch.testing.assert_close(
        encoder.features[17].conv[2].weight.detach(), state["features.17.conv.2.weight"]
    )
    features_only = {k: v for k, v in state.items() if k.startswith("features.")}
    assert len(load_mobilenet_v2_weights(_mobilenet_encoder(), features_only)) == 312


def test_the_pinned_imagenet_weights_load_with_strict() -> None:
    from training.pretrained import FILENAME, load_state_dict, weights_dir

    if not (weights_dir() / FILENAME).is_file():
        pytest.skip(f"{weights_dir() / FILENAME} is absent: `make pretrained` fetches it")
    state = load_state_dict("imagenet")
    reference = MobileNetV2().eval()
    reference.load_state_dict(state, strict=True)
    encoder = _mobilenet_encoder(64).eval()
    assert len(load_mobilenet_v2_weights(encoder, state)) == 312
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(encoder.features(x), reference.features(x))
        # ImageNet statistics, not a fresh net's: the stem's BN has learnt running variances.
        assert not torch.allclose(encoder.features[0][1].running_var, torch.ones(32))


@pytest.mark.parametrize("mode", ["flow", "flow_stream"])
def test_a_motion_network_reads_the_descriptor_in_its_head_only(mode: str) -> None:
    """The head's logits change with the motion descriptor, the per-frame logits (one frame
    shows no motion) do not; a motion network refuses frames without descriptors."""
    torch.manual_seed(0)
    net = build_network(NetworkConfig(backbone="light", input_size=32, motion=mode)).eval()
    assert net.feature_dim == net.encoder.feature_dim + MOTION_DIM
    frames = torch.randn(2, 6, 3, 32, 32)
    still = torch.full((2, 6, MOTION_DIM), -6.0)
    moving = still + torch.linspace(0, 4, MOTION_DIM)
    a, b = net(frames, still), net(frames, moving)
    assert not torch.allclose(a.logits, b.logits, atol=1e-4)
    assert torch.equal(a.frame_logits, b.frame_logits)
    torch.testing.assert_close(a.attention.sum(dim=1), torch.ones(2))
    with pytest.raises(NetworkInputError, match="reads motion"):
        net(frames)
    with pytest.raises(NetworkInputError, match="expected motion"):
        net(frames, still[:, :3])
    # only the motion stream has logits of its own, and they are part of the clip's
    assert (a.motion_logits is not None) == (mode == "flow_stream")
