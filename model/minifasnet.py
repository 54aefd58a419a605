"""MiniFASNet: the single-frame anti-spoofing networks of Silent-Face-Anti-Spoofing.

Our own modules, written from the key names and shapes of the two published state dicts
(minivision-ai/Silent-Face-Anti-Spoofing, Apache-2.0; model/weights/silent-face/NOTICE):
a MobileFaceNet-style stack of depthwise-separable blocks on an 80x80 BGR crop in
[0, 255] (no mean/std), a 5x5 depthwise "global" conv and a 3-way softmax, class 1 real.

    crop [N, 3, 80, 80] --trunk (9 modules, stride 16)--> map [N, 512, 5, 5]
        --conv_6_dw (5x5 depthwise)--> [N, 512] --linear, bn--> [N, 128] --prob--> [N, 3]

The trunk (``conv1`` ... ``conv_6_sep``) is what the CNN-LSTM uses as its encoder
(model/backbones.py, backbones ``minifasnet_v2`` / ``minifasnet_v1se``); the classifier
(``MiniFASNet.forward``) is the authors' own single-frame decision. Every block is a
1x1 expansion (conv+BN+PReLU), a 3x3 depthwise conv (+BN+PReLU) and a 1x1 linear
projection (conv+BN); blocks inside a stage add their input back, and in the SE variant
the last block of each stage gates its output channels (squeeze-excitation) first.
Attribute names equal the published keys (without DataParallel's ``module.``), so a file
loads with ``strict=True`` and nothing else.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from model.config import MINIFASNET_BACKBONES

SILENT_FACE_DIR = Path(__file__).resolve().parent / "weights" / "silent-face"
INPUT_SIZE = 80  # the published networks' square input, px
STRIDE = 16  # four stride-2 convs: 80 px -> a 5x5 map
TRUNK_CHANNELS = 512  # conv_6_sep, the last map
EMBEDDING = 128  # linear + BatchNorm1d before the classifier
CLASSES = 3  # the authors' classes; 0 and 2 are attack kinds
REAL_CLASS = 1
SE_REDUCTION = 4  # squeeze-excitation: 64 -> 16 and 128 -> 32 channels
STEM = 32  # conv1 (3x3, stride 2) and conv2_dw (3x3 depthwise) channels
# (stage, output channels): the three stride-2 blocks widen 32 -> 64 -> 128 -> 128
STAGE_CHANNELS = (64, 128, 128)
TRUNK = ("conv1", "conv2_dw", "conv_23", "conv_3", "conv_34", "conv_4", "conv_45", "conv_5", "conv_6_sep")  # fmt: skip


@dataclass(frozen=True)
class MiniFASNetSpec:
    """One published network: its file, its hash, its crop and its block widths."""

    name: str
    file: str
    sha256: str
    crop_scale: float  # the authors' crop side / their RetinaFace box side
    down: tuple[int, int, int]  # expansion widths of conv_23, conv_34, conv_45 (stride 2)
    stages: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]  # conv_3, conv_4, conv_5
    squeeze_excite: bool  # the last block of each stage gates its channels


# Widths are the pruned ones the files hold (the repository's keep lists "1.8M_" for V2,
# "1.8M" for V1SE), read from the shapes of each block's 1x1 expansion conv.
MINIFASNET_V2 = MiniFASNetSpec(
    name="MiniFASNetV2",
    file="2.7_80x80_MiniFASNetV2.pth",
    sha256="a5eb02e1843f19b5386b953cc4c9f011c3f985d0ee2bb9819eea9a142099bec0",
    crop_scale=2.7,
    down=(103, 231, 308),
    stages=((13, 13, 13, 13), (231, 52, 26, 77, 26, 26), (26, 26)),
    squeeze_excite=False,
)
MINIFASNET_V1SE = MiniFASNetSpec(
    name="MiniFASNetV1SE",
    file="4_0_0_80x80_MiniFASNetV1SE.pth",
    sha256="84ee1d37d96894d5e82de5a57df044ef80a58be2b218b5ed7cdfd875ec2f5990",
    crop_scale=4.0,
    down=(103, 231, 308),
    stages=((13, 26, 13, 52), (154, 52, 26, 52, 26, 26), (26, 26)),
    squeeze_excite=True,
)
# backbone name (model/config.py's MINIFASNET_BACKBONES) -> network
SPECS = dict(zip(MINIFASNET_BACKBONES, (MINIFASNET_V2, MINIFASNET_V1SE), strict=True))


class WeightsFileError(ValueError):
    """A MiniFASNet weights file that is missing, altered or of another network."""


class ConvBlock(nn.Module):
    """conv (no bias) -> BatchNorm -> PReLU (``prelu=False``: linear, no activation)."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        stride: int = 1,
        groups: int = 1,
        prelu: bool = True,
    ) -> None:
        super().__init__()
        pad = kernel // 2 if kernel == 3 else 0  # the 5x5 conv_6_dw is unpadded
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, pad, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.prelu = nn.PReLU(c_out) if prelu else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return x if self.prelu is None else self.prelu(x)


class SqueezeExcite(nn.Module):
    """x * sigmoid(BN(W2 relu(BN(W1 mean(x))))): the authors' SE, with BatchNorm."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        squeezed = channels // SE_REDUCTION
        self.fc1 = nn.Conv2d(channels, squeezed, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(squeezed)
        self.fc2 = nn.Conv2d(squeezed, channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, C, h, w]
        gate = torch.relu(self.bn1(self.fc1(x.mean((2, 3), keepdim=True))))
        return x * torch.sigmoid(self.bn2(self.fc2(gate)))


class DepthwiseBlock(nn.Module):
    """1x1 expand -> 3x3 depthwise (stride) -> 1x1 linear projection; + input when residual."""

    def __init__(
        self, c_in: int, hidden: int, c_out: int, stride: int, residual: bool, se: bool = False
    ) -> None:
        super().__init__()
        self.conv = ConvBlock(c_in, hidden, 1)
        self.conv_dw = ConvBlock(hidden, hidden, 3, stride, groups=hidden)
        self.project = ConvBlock(hidden, c_out, 1, prelu=False)
        self.se_module = SqueezeExcite(c_out) if se else None
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.conv_dw(self.conv(x)))
        if self.se_module is not None:
            y = self.se_module(y)
        return x + y if self.residual else y


class Stage(nn.Module):
    """Residual blocks at one width; SE on the last one in the SE variant."""

    def __init__(self, channels: int, widths: tuple[int, ...], se: bool) -> None:
        super().__init__()
        last = len(widths) - 1
        self.model = nn.Sequential(
            *(
                DepthwiseBlock(channels, w, channels, 1, residual=True, se=se and i == last)
                for i, w in enumerate(widths)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def minifasnet_trunk(spec: MiniFASNetSpec) -> nn.Sequential:
    """The conv trunk ``conv1`` ... ``conv_6_sep`` (TRUNK): [N, 3, S, S] -> [N, 512, S/16, S/16]."""
    c2, c3, c4 = STAGE_CHANNELS
    d23, d34, d45 = spec.down
    s3, s4, s5 = spec.stages
    se = spec.squeeze_excite
    modules = [
        ConvBlock(3, STEM, 3, stride=2),
        ConvBlock(STEM, STEM, 3, groups=STEM),
        DepthwiseBlock(STEM, d23, c2, 2, residual=False),
        Stage(c2, s3, se),
        DepthwiseBlock(c2, d34, c3, 2, residual=False),
        Stage(c3, s4, se),
        DepthwiseBlock(c3, d45, c4, 2, residual=False),
        Stage(c4, s5, se),
        ConvBlock(c4, TRUNK_CHANNELS, 1),
    ]
    return nn.Sequential(OrderedDict(zip(TRUNK, modules, strict=True)))


class MiniFASNet(nn.Module):
    """The whole published classifier at 80 px: logits [N, 3], class 1 real.

    Inference only: the authors' dropout before ``prob`` is left out (it does nothing in
    eval mode and has no weights)."""

    def __init__(self, spec: MiniFASNetSpec) -> None:
        super().__init__()
        self.spec = spec
        for name, module in minifasnet_trunk(spec).named_children():
            self.add_module(name, module)
        side = INPUT_SIZE // STRIDE  # conv_6_dw covers the whole 5x5 map
        self.conv_6_dw = ConvBlock(TRUNK_CHANNELS, TRUNK_CHANNELS, side, groups=TRUNK_CHANNELS, prelu=False)  # fmt: skip
        self.linear = nn.Linear(TRUNK_CHANNELS, EMBEDDING, bias=False)
        self.bn = nn.BatchNorm1d(EMBEDDING)
        self.prob = nn.Linear(EMBEDDING, CLASSES, bias=False)

    def trunk(self) -> nn.Sequential:
        """The conv trunk as a Sequential sharing this network's modules (and weights)."""
        return nn.Sequential(OrderedDict((name, getattr(self, name)) for name in TRUNK))

    def features(self, x: torch.Tensor) -> torch.Tensor:  # [N, 3, 80, 80] -> [N, 512, 5, 5]
        for name in TRUNK:
            x = getattr(self, name)(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # BGR [0, 255] -> logits [N, 3]
        x = self.conv_6_dw(self.features(x))
        return self.prob(self.bn(self.linear(x.reshape(x.shape[0], -1))))

    def p_real(self, x: torch.Tensor) -> torch.Tensor:  # [N, 3, 80, 80] -> [N]
        return torch.softmax(self(x), dim=1)[:, REAL_CLASS]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_state_dict(spec: MiniFASNetSpec, path: Path | None = None) -> dict[str, torch.Tensor]:
    """The published state dict of ``spec`` (``module.`` stripped), its sha256 checked first;
    by default the file shipped in model/weights/silent-face/."""
    path = Path(path) if path is not None else SILENT_FACE_DIR / spec.file
    if not path.is_file():
        raise WeightsFileError(f"{path}: no {spec.name} weights file")
    digest = sha256_of(path)
    if digest != spec.sha256:
        raise WeightsFileError(
            f"{path}: sha256 {digest} is not the pinned {spec.sha256} of {spec.file}; "
            "refusing to load it"
        )
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    return {key.removeprefix("module."): value for key, value in loaded.items()}


def load_minifasnet(spec: MiniFASNetSpec, path: Path | None = None) -> MiniFASNet:
    """The published classifier with its weights (strict=True), in eval mode."""
    net = MiniFASNet(spec)
    net.load_state_dict(load_state_dict(spec, path), strict=True)
    return net.eval()
