"""The joint CNN-LSTM with attention (paper §3.2-3.3), rebuilt from a NetworkConfig alone.

    frames [B, T, 3, S, S] --FrameEncoder--> features [B, T, F]
        features --TemporalHead (LSTM + attention)--> clip logits [B, 2], attention [B, T]
        features --frame classifier Linear(F, 2)--> frame logits [B, T, 2]   (joint loss)

Class indices are model/labels.py's (1 = genuine). The encoder and the rest are separate so a
server can encode each frame once, cache its feature, and re-run only the cheap head
over a sliding window (``forward_features``). Reshapes use ``x.shape[...]`` rather than
flatten/unflatten so the ONNX export keeps B and T dynamic.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from model.backbones import (
    BACKBONE_STRIDE,
    BACKBONES,
    backbone_map_size,
    light_features,
    load_minifasnet_weights,
    load_mobilenet_v2_weights,
    load_vgg16_weights,
    minifasnet_features,
    mobilenet_v2_features,
    vgg16_features,
)
from model.config import (
    CHANNEL_ORDERS,
    FLOW_MODES,
    MOTION_CENTRE,
    MOTION_DIM,
    MOTION_SCALE,
    NetworkConfig,
    reads_motion,
)

__all__ = [
    "FrameEncoder",
    "LivenessNet",
    "LivenessOutput",
    "NetworkConfigError",
    "NetworkInputError",
    "TemporalHead",
    "build_network",
    "load_minifasnet_weights",
    "load_mobilenet_v2_weights",
    "load_vgg16_weights",
]

TEMPORAL_MODES = ("lstm", "none")
MOTION_MODES = ("none", "delta", *FLOW_MODES)
MOTION_EMBED = 16  # width the motion descriptor is mapped to before an LSTM reads it


class NetworkConfigError(ValueError):
    """A NetworkConfig that cannot describe a network."""


class NetworkInputError(ValueError):
    """A tensor of the wrong rank or shape was given to the network."""


class LivenessOutput(NamedTuple):
    logits: torch.Tensor  # [B, 2] clip logits (index 1 = genuine)
    attention: torch.Tensor  # [B, T] weight of each frame in the clip decision, rows sum to 1
    frame_logits: torch.Tensor  # [B, T, 2] per-frame CNN logits, for the joint loss
    # [B, 2] the motion stream's own logits (motion "flow_stream"; part of ``logits``), for
    # its own loss in training; None for other networks
    motion_logits: torch.Tensor | None = None


def validate_config(config: NetworkConfig) -> None:
    """Raise NetworkConfigError when ``config`` cannot be built."""
    if config.backbone not in BACKBONES:
        raise NetworkConfigError(f"backbone {config.backbone!r} is not one of {BACKBONES}")
    if config.temporal not in TEMPORAL_MODES:
        raise NetworkConfigError(f"temporal {config.temporal!r} is not one of {TEMPORAL_MODES}")
    if config.motion not in MOTION_MODES:
        raise NetworkConfigError(f"motion {config.motion!r} is not one of {MOTION_MODES}")
    if config.motion != "none" and config.temporal != "lstm":
        raise NetworkConfigError("motion needs the LSTM head (temporal 'lstm')")
    if config.input_size < BACKBONE_STRIDE:
        raise NetworkConfigError(
            f"input_size {config.input_size} is below the backbone stride {BACKBONE_STRIDE}"
        )
    for name in ("reduce_channels", "hidden"):
        if getattr(config, name) <= 0:
            raise NetworkConfigError(f"{name} must be positive, got {getattr(config, name)}")
    if not 0.0 <= config.dropout < 1.0:
        raise NetworkConfigError(f"dropout {config.dropout} is outside [0, 1)")
    if config.channel_order not in CHANNEL_ORDERS:
        raise NetworkConfigError(
            f"channel_order {config.channel_order!r} is not one of {CHANNEL_ORDERS}"
        )
    if len(config.mean) != 3 or len(config.std) != 3 or min(config.std) <= 0:
        raise NetworkConfigError("mean and std need three values each, std positive")


def _tracing() -> bool:
    """Shape checks run eagerly only: an ONNX trace must not bake the example's shape in."""
    return torch.jit.is_tracing()


def uniform_weights(x: torch.Tensor) -> torch.Tensor:
    """[B, T, ...] -> [B, T] all equal to 1/T: the honest weights of a plain average."""
    ones = torch.ones_like(x[:, :, 0]) if x.dim() > 2 else torch.ones_like(x)
    return ones / x.shape[1]


class FrameEncoder(nn.Module):
    """One frame -> one feature vector that keeps the spatial layout (paper §3.2).

    No global pooling: a 1x1 conv (+BN+ReLU) narrows the last map to
    ``reduce_channels``, then the [R, h, w] map is flattened, so F = R * h * w.
    """

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        validate_config(config)
        self.config = config
        if config.backbone == "vgg16":
            self.features, channels = vgg16_features(config.vgg_batchnorm)
        elif config.backbone == "mobilenet_v2":
            self.features, channels = mobilenet_v2_features()
        elif config.backbone.startswith("minifasnet"):
            self.features, channels = minifasnet_features(config.backbone)
        else:
            self.features, channels = light_features()
        reduced = config.reduce_channels
        self.reduce = nn.Sequential(
            nn.Conv2d(channels, reduced, kernel_size=1, bias=False),
            nn.BatchNorm2d(reduced),
            nn.ReLU(inplace=True),
        )
        self.map_size = backbone_map_size(config.backbone, config.input_size)  # h = w
        self.feature_dim = reduced * self.map_size * self.map_size  # F
        _init_conv_weights(self)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        # frames: [N, 3, S, S] normalised, in config.channel_order -> [N, F]
        size = self.config.input_size
        if not _tracing() and (frames.dim() != 4 or tuple(frames.shape[1:]) != (3, size, size)):
            raise NetworkInputError(
                f"encoder expects frames [N, 3, {size}, {size}], got {list(frames.shape)}"
            )
        x = self.reduce(self.features(frames))  # [N, R, h, w]
        return x.reshape(x.shape[0], -1)


def _init_conv_weights(module: nn.Module) -> None:
    """He init (fan-in: keeps activation scale even with fresh BatchNorm statistics)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def attention_weights(h: torch.Tensor, w: nn.Linear) -> torch.Tensor:
    """Paper eq. 13: alpha_i = softmax_i(w . h_{i-1}), with h_0 = 0.

    h: [B, T, H] LSTM outputs h_1..h_T -> alpha [B, T]. The paper writes a W_i per
    step; one vector w shared by all steps lets the head take windows of any length.
    """
    h_prev = torch.cat([torch.zeros_like(h[:, :1]), h[:, :-1]], dim=1)  # [B, T, H]: h_{i-1}
    return torch.softmax(w(h_prev).squeeze(-1), dim=1)


def with_deltas(features: torch.Tensor) -> torch.Tensor:
    """[B, T, F] -> [B, T, 2F]: each frame's feature beside its change from the previous
    frame (zero for the first frame of the window)."""
    previous = torch.cat([features[:, :1], features[:, :-1]], dim=1)
    return torch.cat([features, features - previous], dim=2)


class TemporalHead(nn.Module):
    """LSTM over frame features, attention pooling (eq. 12-13), 2-way classifier. With
    ``motion = "delta"`` the LSTM reads [feature, feature - previous feature]; with
    ``motion = "flow"`` the last MOTION_DIM columns of a feature are the frame's motion
    descriptor (model/motion.py), which a small layer maps to MOTION_EMBED values before
    the LSTM reads them beside the appearance; with ``"flow_stream"`` a second LSTM of
    MOTION_EMBED units reads them alone, with its own attention and classifier, and the
    clip logits are the two streams' sum (the attention reported is their mean), so the
    motion has a say the appearance's many features cannot drown."""

    def __init__(self, config: NetworkConfig, feature_dim: int) -> None:
        super().__init__()
        self.deltas = config.motion == "delta"
        self.flow = config.motion == "flow"
        self.stream = config.motion == "flow_stream"
        inputs = 2 * feature_dim if self.deltas else feature_dim
        if reads_motion(config):
            self.motion = nn.Sequential(nn.Linear(MOTION_DIM, MOTION_EMBED), nn.Tanh())
            self.register_buffer("motion_centre", torch.tensor(MOTION_CENTRE), persistent=False)
            inputs = feature_dim - MOTION_DIM + (MOTION_EMBED if self.flow else 0)
        if self.stream:
            self.motion_lstm = nn.LSTM(MOTION_EMBED, MOTION_EMBED, batch_first=True)
            self.motion_attention = (
                nn.Linear(MOTION_EMBED, 1, bias=False) if config.attention else None
            )
            self.motion_classifier = nn.Linear(MOTION_EMBED, 2)
        self.lstm = nn.LSTM(inputs, config.hidden, batch_first=True)
        # w of eq. 13; absent when attention is off, so such a model cannot pretend to use it.
        self.attention = nn.Linear(config.hidden, 1, bias=False) if config.attention else None
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.hidden, 2)

    def forward(
        self, features: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        # features: [B, T, F] -> logits [B, 2], attention [B, T], the motion stream's
        # logits [B, 2] (None without one)
        motion = None
        if self.deltas:
            features = with_deltas(features)
        elif self.flow or self.stream:
            appearance, raw = features[..., :-MOTION_DIM], features[..., -MOTION_DIM:]
            motion = self.motion((raw - self.motion_centre) / MOTION_SCALE)  # [B, T, E]
            features = torch.cat([appearance, motion], dim=2) if self.flow else appearance
        logits, alpha = self._pool(self.lstm(features)[0], self.attention, self.classifier)
        if self.stream:
            m_logits, m_alpha = self._pool(
                self.motion_lstm(motion)[0], self.motion_attention, self.motion_classifier
            )
            return logits + m_logits, (alpha + m_alpha) / 2, m_logits
        return logits, alpha, None

    def _pool(
        self, h: torch.Tensor, attention: nn.Linear | None, classifier: nn.Linear
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """LSTM outputs h [B, T, H] -> (logits [B, 2], attention [B, T])."""
        alpha = attention_weights(h, attention) if attention is not None else uniform_weights(h)
        c = (alpha.unsqueeze(-1) * h).sum(dim=1)  # eq. 12: c = sum_i alpha_i h_i, [B, H]
        return classifier(self.dropout(c)), alpha


class LivenessNet(nn.Module):
    """Encoder + temporal head + per-frame classifier; same output in train and eval.

    A frame's *feature* is what the head reads: the encoder's output, and with
    a ``motion`` that reads it the frame's motion descriptor after it (``feature_dim`` counts
    both). The per-frame classifier reads the encoder's part only: one frame shows no
    motion."""

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        validate_config(config)
        self.config = config
        self.encoder = FrameEncoder(config)
        self.motion_dim = MOTION_DIM if reads_motion(config) else 0
        self.feature_dim = self.encoder.feature_dim + self.motion_dim
        # temporal "none" is the frame-only CNN ablation: the clip score averages frames.
        self.head = TemporalHead(config, self.feature_dim) if config.temporal == "lstm" else None
        self.frame_dropout = nn.Dropout(config.dropout)
        self.frame_classifier = nn.Linear(self.encoder.feature_dim, 2)

    def with_motion(self, features: torch.Tensor, motion: torch.Tensor | None) -> torch.Tensor:
        """Encoder features [B, T, F] -> the head's [B, T, feature_dim]: ``motion``
        [B, T, MOTION_DIM] appended when the network reads it (and required then)."""
        if not self.motion_dim:
            return features
        if motion is None:
            raise NetworkInputError("this network reads motion: give the frames' descriptors")
        if not _tracing() and tuple(motion.shape) != (*features.shape[:2], self.motion_dim):
            raise NetworkInputError(
                f"expected motion [B, T, {self.motion_dim}] for features "
                f"{list(features.shape)}, got {list(motion.shape)}"
            )
        return torch.cat([features, motion.to(features.dtype)], dim=2)

    def forward(self, frames: torch.Tensor, motion: torch.Tensor | None = None) -> LivenessOutput:
        # frames: [B, T, 3, S, S] normalised RGB; motion [B, T, MOTION_DIM] if it reads motion
        if not _tracing() and frames.dim() != 5:
            raise NetworkInputError(f"expected frames [B, T, 3, S, S], got {list(frames.shape)}")
        flat = frames.reshape(-1, frames.shape[2], frames.shape[3], frames.shape[4])
        features = self.encoder(flat)  # [B*T, F]
        features = features.reshape(frames.shape[0], frames.shape[1], -1)
        return self.forward_features(self.with_motion(features, motion))

    def forward_features(self, features: torch.Tensor) -> LivenessOutput:
        # features: [B, T, F] from the encoder (possibly cached)
        if not _tracing() and (
            features.dim() != 3 or features.shape[2] != self.feature_dim or features.shape[1] < 1
        ):
            raise NetworkInputError(
                f"expected features [B, T>=1, {self.feature_dim}], got {list(features.shape)}"
            )
        appearance = features[..., : self.encoder.feature_dim]
        frame_logits = self.frame_classifier(self.frame_dropout(appearance))  # [B, T, 2]
        motion_logits = None
        if self.head is None:
            logits, attention = frame_logits.mean(dim=1), uniform_weights(frame_logits)
        else:
            logits, attention, motion_logits = self.head(features)
        return LivenessOutput(logits, attention, frame_logits, motion_logits)


def build_network(config: NetworkConfig) -> LivenessNet:
    """The network a NetworkConfig describes (randomly initialised)."""
    return LivenessNet(config)
