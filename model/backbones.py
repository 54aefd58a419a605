"""Convolutional backbones of the frame encoder, written out so no torchvision is needed.

``vgg16``: the 13 conv + 5 max-pool stack of Simonyan & Zisserman (2015), the paper's
§3.2 feature extractor, optionally with BatchNorm after each conv. Its ``nn.Sequential``
indices equal torchvision's ``vgg16().features`` / ``vgg16_bn().features``, so ImageNet
or VGG-Face weights converted to that naming load with :func:`load_vgg16_weights`.

``light``: a MobileNetV3-small stack (Howard et al. 2019, table 2): inverted residuals
with depthwise convs, squeeze-and-excitation and hardswish; about 50x cheaper than
VGG-16 on CPU.

``mobilenet_v2``: MobileNetV2 (Sandler et al. 2018, table 2) at width 1.0, module for
module as torchvision builds it (``features.0`` stem, ``features.1-17`` inverted
residuals with their ``conv`` Sequential, ``features.18`` the 1x1 conv to 1280 channels,
``classifier.1`` the ImageNet layer), so torchvision's own ImageNet checkpoint (and any
checkpoint saved from ``torchvision.models.mobilenet_v2``) loads with ``strict=True``
through :func:`load_mobilenet_v2_weights`, without torchvision installed.

``minifasnet_v2`` / ``minifasnet_v1se``: the conv trunks of Silent-Face-Anti-Spoofing's
two MiniFASNet classifiers (model/minifasnet.py), trained on real prints and replays at
80 px on BGR [0, 255] crops; their shipped weights load with :func:`load_minifasnet_weights`.

The VGG and MobileNet stacks have total stride 32, the MiniFASNet trunks 16 (an 80 px
crop gives a 5x5 map); every stack ends on a spatial map, never pooled.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from model.minifasnet import SPECS as MINIFASNET_SPECS
from model.minifasnet import STRIDE as MINIFASNET_STRIDE
from model.minifasnet import MiniFASNet, WeightsFileError, load_state_dict, minifasnet_trunk

if TYPE_CHECKING:
    from model.network import FrameEncoder

# Output channels of a conv, or "M" for a 2x2 max-pool with stride 2 (VGG configuration D).
VGG16_LAYERS: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
)  # fmt: skip
VGG16_CHANNELS = 512

# MobileNetV3-small blocks:
# (kernel, expanded channels, out channels, squeeze-excite, activation, stride)
LIGHT_BLOCKS: tuple[tuple[int, int, int, bool, str, int], ...] = (
    (3, 16, 16, True, "relu", 2),
    (3, 72, 24, False, "relu", 2),
    (3, 88, 24, False, "relu", 1),
    (5, 96, 40, True, "hardswish", 2),
    (5, 240, 40, True, "hardswish", 1),
    (5, 240, 40, True, "hardswish", 1),
    (5, 120, 48, True, "hardswish", 1),
    (5, 144, 48, True, "hardswish", 1),
    (5, 288, 96, True, "hardswish", 2),
    (5, 576, 96, True, "hardswish", 1),
    (5, 576, 96, True, "hardswish", 1),
)
LIGHT_STEM = 16  # channels of the stride-2 3x3 stem conv
LIGHT_CHANNELS = 576  # the final 1x1 expansion conv
# MobileNetV2 inverted-residual stages (torchvision's inverted_residual_setting):
# (expansion t, output channels c, repeats n, stride of the first s)
MOBILENET_V2_STAGES: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
MOBILENET_V2_STEM = 32
MOBILENET_V2_CHANNELS = 1280  # features.18, the last map
IMAGENET_CLASSES = 1000
BACKBONES = ("vgg16", "light", "mobilenet_v2", *MINIFASNET_SPECS)
BACKBONE_STRIDE = 32  # the smallest input any stack takes (five halvings for most)


class WeightsError(ValueError):
    """A state dict does not fit the backbone it is loaded into."""


def vgg16_features(batchnorm: bool) -> tuple[nn.Sequential, int]:
    """The VGG-16 conv stack, indexed like torchvision's ``features``; returns (stack, channels)."""
    layers: list[nn.Module] = []
    channels = 3
    for spec in VGG16_LAYERS:
        if spec == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        assert isinstance(spec, int)
        layers.append(nn.Conv2d(channels, spec, kernel_size=3, padding=1))
        if batchnorm:
            layers.append(nn.BatchNorm2d(spec))
        layers.append(nn.ReLU(inplace=True))
        channels = spec
    return nn.Sequential(*layers), channels


def _activation(name: str | None) -> nn.Module:
    if name is None:
        return nn.Identity()
    return {"relu": nn.ReLU(inplace=True), "hardswish": nn.Hardswish(inplace=True)}[name]


def _conv_bn_act(
    c_in: int, c_out: int, kernel: int, stride: int, act: str | None, groups: int = 1
) -> nn.Sequential:
    # BatchNorm settings of the reference MobileNetV3 (eps 1e-3, slow running averages).
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out, eps=1e-3, momentum=0.01),
        _activation(act),
    )


def _divisible_by_8(value: float) -> int:
    """Round channels to a multiple of 8, never more than 10 % down (MobileNet rule)."""
    rounded = max(8, int(value + 4) // 8 * 8)
    return rounded + 8 if rounded < 0.9 * value else rounded


class SqueezeExcite(nn.Module):
    """Channel gating from the global mean of the map: x * hardsigmoid(W2 relu(W1 mean(x)))."""

    def __init__(self, channels: int, squeezed: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.fc2 = nn.Conv2d(squeezed, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, C, h, w]
        scale = x.mean((2, 3), keepdim=True)  # [N, C, 1, 1]
        scale = nn.functional.hardsigmoid(self.fc2(nn.functional.relu(self.fc1(scale))))
        return x * scale


class InvertedResidual(nn.Module):
    """1x1 expand -> depthwise kxk -> (SE) -> 1x1 linear project, + skip when shapes allow."""

    def __init__(
        self, c_in: int, kernel: int, c_exp: int, c_out: int, se: bool, act: str, stride: int
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if c_exp != c_in:
            layers.append(_conv_bn_act(c_in, c_exp, 1, 1, act))
        layers.append(_conv_bn_act(c_exp, c_exp, kernel, stride, act, groups=c_exp))
        if se:
            layers.append(SqueezeExcite(c_exp, _divisible_by_8(c_exp / 4)))
        layers.append(_conv_bn_act(c_exp, c_out, 1, 1, None))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


def light_features() -> tuple[nn.Sequential, int]:
    """The MobileNetV3-small stack without its pooling and classifier; returns (stack, channels)."""
    layers: list[nn.Module] = [_conv_bn_act(3, LIGHT_STEM, 3, 2, "hardswish")]
    channels = LIGHT_STEM
    for kernel, c_exp, c_out, se, act, stride in LIGHT_BLOCKS:
        layers.append(InvertedResidual(channels, kernel, c_exp, c_out, se, act, stride))
        channels = c_out
    layers.append(_conv_bn_act(channels, LIGHT_CHANNELS, 1, 1, "hardswish"))
    return nn.Sequential(*layers), LIGHT_CHANNELS


def _conv_bn_relu6(
    c_in: int, c_out: int, kernel: int, stride: int, groups: int = 1
) -> nn.Sequential:
    """torchvision's Conv2dNormActivation with ReLU6: indices 0 conv, 1 BN, 2 ReLU6."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU6(inplace=True),
    )


class MobileNetV2Block(nn.Module):
    """torchvision's MobileNetV2 InvertedResidual: ``conv`` = [1x1 expand (when t > 1)],
    3x3 depthwise, 1x1 linear projection conv, its BatchNorm; + skip when shapes allow."""

    def __init__(self, c_in: int, c_out: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = round(c_in * expansion)
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(_conv_bn_relu6(c_in, hidden, 1, 1))
        layers += [
            _conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, c_out, 1, 1, 0, bias=False),
            nn.BatchNorm2d(c_out),
        ]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return x + y if self.residual else y


def mobilenet_v2_features() -> tuple[nn.Sequential, int]:
    """MobileNetV2's ``features`` (torchvision indices 0-18); returns (stack, channels)."""
    layers: list[nn.Module] = [_conv_bn_relu6(3, MOBILENET_V2_STEM, 3, 2)]
    channels = MOBILENET_V2_STEM
    for expansion, c_out, repeats, stride in MOBILENET_V2_STAGES:
        for i in range(repeats):
            layers.append(MobileNetV2Block(channels, c_out, stride if i == 0 else 1, expansion))
            channels = c_out
    layers.append(_conv_bn_relu6(channels, MOBILENET_V2_CHANNELS, 1, 1))
    return nn.Sequential(*layers), MOBILENET_V2_CHANNELS


class MobileNetV2(nn.Module):
    """The whole ImageNet classifier, named as torchvision names it (``features.*``,
    ``classifier.1``): what a torchvision checkpoint is checked against with strict=True."""

    def __init__(self, num_classes: int = IMAGENET_CLASSES) -> None:
        super().__init__()
        self.features, channels = mobilenet_v2_features()
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(channels, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, 3, S, S] -> logits [N, classes]
        x = self.features(x).mean((2, 3))
        return self.classifier(x)


def load_mobilenet_v2_weights(
    encoder: FrameEncoder, state_dict: Mapping[str, torch.Tensor], strict: bool = True
) -> list[str]:
    """Copy a torchvision-named MobileNetV2 checkpoint into ``encoder.features``.

    ``state_dict`` is what ``torchvision.models.mobilenet_v2(...).state_dict()`` saves
    (torchvision's ImageNet file ``mobilenet_v2-b0353104.pth`` is one), optionally with a
    ``module.`` prefix. With a ``classifier.1`` layer (of any number of classes) it is
    first loaded into a whole :class:`MobileNetV2` with ``load_state_dict(strict=...)``,
    so a checkpoint of another architecture or width is refused; a features-only
    checkpoint is checked against the ``features`` stack alone. The classifier is not
    used (the encoder keeps the spatial map). Any mismatch raises :class:`WeightsError`.
    Returns the ``features.*`` keys that were loaded.
    """
    if encoder.config.backbone != "mobilenet_v2":
        raise WeightsError(
            f"MobileNetV2 weights need backbone 'mobilenet_v2', not {encoder.config.backbone!r}"
        )
    incoming = {key.removeprefix("module."): value for key, value in state_dict.items()}
    strange = sorted(k for k in incoming if not k.startswith(("features.", "classifier.")))
    if strange:
        raise WeightsError(
            f"keys not in a torchvision MobileNetV2 (features.N.*, classifier.1.*): {strange[:5]}"
        )
    head = incoming.get("classifier.1.weight")
    reference = MobileNetV2(head.shape[0] if head is not None and head.dim() == 2 else 1)
    try:
        if head is not None:
            reference.load_state_dict(incoming, strict=strict)
        else:
            features = {k.removeprefix("features."): v for k, v in incoming.items()}
            reference.features.load_state_dict(features, strict=strict)
    except RuntimeError as exc:  # torch names every missing, unexpected or misshapen key
        raise WeightsError(f"not a torchvision MobileNetV2 (width 1.0) checkpoint: {exc}") from exc
    loaded = sorted(k for k in incoming if k.startswith("features."))
    present = {k.removeprefix("features.") for k in loaded}
    checked = {k: v for k, v in reference.features.state_dict().items() if k in present}
    encoder.features.load_state_dict(checked, strict=strict)
    return loaded


def minifasnet_features(backbone: str) -> tuple[nn.Sequential, int]:
    """A MiniFASNet trunk (``conv1`` ... ``conv_6_sep``, 9 modules); returns (stack, channels)."""
    from model.minifasnet import TRUNK_CHANNELS

    return minifasnet_trunk(MINIFASNET_SPECS[backbone]), TRUNK_CHANNELS


def load_minifasnet_weights(encoder: FrameEncoder, path: Path | None = None) -> list[str]:
    """Copy the shipped (or ``path``'s) MiniFASNet weights of the encoder's backbone into
    ``encoder.features``. The file's sha256 is checked, then the whole classifier is loaded
    with ``strict=True`` (a file of the other MiniFASNet, or altered, is refused) and its
    trunk copied. Raises :class:`WeightsError`. Returns the ``features.*`` keys loaded."""
    spec = MINIFASNET_SPECS.get(encoder.config.backbone)
    if spec is None:
        raise WeightsError(
            f"MiniFASNet weights need backbone {' or '.join(MINIFASNET_SPECS)}, "
            f"not {encoder.config.backbone!r}"
        )
    reference = MiniFASNet(spec)
    try:
        reference.load_state_dict(load_state_dict(spec, path), strict=True)
    except (WeightsFileError, RuntimeError) as exc:
        raise WeightsError(f"not the {spec.name} checkpoint: {exc}") from exc
    trunk = reference.trunk().state_dict()
    encoder.features.load_state_dict(trunk, strict=True)
    return sorted("features." + k for k in trunk)


def backbone_map_size(backbone: str, input_size: int) -> int:
    """Side of the backbone's output map for a square input of ``input_size`` px."""
    size = input_size
    stride = MINIFASNET_STRIDE if backbone in MINIFASNET_SPECS else 32
    for _ in range(stride.bit_length() - 1):  # one halving per stride-2 layer
        # VGG max-pools floor odd sides; the MobileNets' padded stride-2 convs round up.
        size = size // 2 if backbone == "vgg16" else (size + 1) // 2
    return size


def vgg16_conv_indices(batchnorm: bool) -> list[int]:
    """Positions of the 13 convs in the ``features`` Sequential (torchvision numbering)."""
    stack, _ = vgg16_features(batchnorm)
    return [i for i, layer in enumerate(stack) if isinstance(layer, nn.Conv2d)]


def load_vgg16_weights(
    encoder: FrameEncoder, state_dict: Mapping[str, torch.Tensor], strict: bool = True
) -> list[str]:
    """Copy torchvision-named VGG-16 conv weights into ``encoder.features``.

    ``state_dict`` uses the keys of torchvision's ``vgg16`` / ``vgg16_bn``
    (``features.0.weight``, ``features.0.bias``, ... and, for ``_bn``, the BatchNorm
    ``running_mean`` / ``running_var`` / ``num_batches_tracked``); VGG-Face weights
    converted to that naming work the same. ``classifier.*`` keys are ignored (the
    fully-connected layers are not used, paper §3.2) and a ``module.`` prefix is stripped.
    Note VGG-Face was trained on BGR input in [0, 255] minus a mean: set the network's
    mean/std, or convert the first conv, to match the weights you load.

    With ``strict`` every conv (and BN) tensor of the stack must be present; without it,
    missing ones keep their current values. Unknown keys and shape mismatches always
    raise :class:`WeightsError`. Returns the ``features.*`` keys that were loaded.
    """
    if encoder.config.backbone != "vgg16":
        raise WeightsError(f"VGG-16 weights need backbone 'vgg16', not {encoder.config.backbone!r}")
    own = encoder.features.state_dict()
    incoming: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        key = key.removeprefix("module.")
        if key.startswith("classifier."):
            continue
        if not key.startswith("features."):
            raise WeightsError(f"unexpected key {key!r}: VGG-16 weights are named features.N.*")
        incoming[key.removeprefix("features.")] = value
    unexpected = sorted(set(incoming) - set(own))
    if unexpected:
        _raise_for_unexpected(unexpected, set(incoming), encoder.config.vgg_batchnorm)
    missing = sorted(set(own) - set(incoming))
    if strict and missing:
        raise WeightsError(
            f"missing VGG-16 keys (strict=True): {['features.' + k for k in missing]}"
        )
    for key, value in incoming.items():
        if tuple(value.shape) != tuple(own[key].shape):
            raise WeightsError(
                f"features.{key}: shape {tuple(value.shape)} does not fit {tuple(own[key].shape)}"
            )
    encoder.features.load_state_dict(incoming, strict=False)
    return sorted("features." + k for k in incoming)


def _raise_for_unexpected(unexpected: list[str], incoming: set[str], batchnorm: bool) -> None:
    """Say plainly when vgg16 and vgg16_bn weights are swapped (their indices differ)."""
    other_layout = set(vgg16_features(not batchnorm)[0].state_dict())
    if incoming <= other_layout:
        have, need = ("vgg16_bn", "vgg16") if not batchnorm else ("vgg16", "vgg16_bn")
        raise WeightsError(
            f"these are {have} weights but the network is {need} (vgg_batchnorm={batchnorm})"
        )
    raise WeightsError(f"keys not in the VGG-16 stack: {['features.' + k for k in unexpected]}")
