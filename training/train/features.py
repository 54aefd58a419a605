"""Training on the frozen part of the encoder computed once: ``cache_features = true``.

With ``freeze_blocks = N`` the first N modules of the encoder's ``features`` stack never
change, so what they make of a frame is the same in every epoch. This computes it once per
encoded frame (in eval mode, as the frozen modules always run) and trains the rest of the
network on those maps: ``features[N:]``, the 1x1 reduction, the temporal head and the frame
classifier. The weights, the checkpoints and the exported model are the same as without the
cache; only the cost changes: a frame is encoded once rather than once per window per
epoch (16 windows of stride 4 hold each frame four times), and no gradient flows through
the frozen stack. An ImageNet MobileNetV2 frozen whole trains its head on two CPU cores in
minutes instead of hours.

Pixel augmentation cannot act on cached maps, so the config must turn ``augment`` off
(training/config.py checks it). ``feature_copies = K`` puts it back before the cache:
K appearance-augmented renderings of every training clip (training/train/augment.py) are
encoded too, and each training window is drawn from one of the clip's K + 1 renderings.

The maps are also kept on disk, beside the preprocessing cache, so the folds of a
cross-validation and the cells of an ablation that share a frozen stack compute them once::

    <cache root>/maps/<stack digest>/<crops digest>.npy    float16 [N, C, h, w]

The stack digest covers the frozen modules' weights and BatchNorm statistics, the input
size and the normalisation; the crops digest the clip's cached crops. An entry can only be
found again by the same frozen stack on the same crops.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from model.config import NetworkConfig, reads_motion
from model.network import LivenessNet, LivenessOutput
from model.preprocess import to_network_input
from training.cache import CachedClip, _atomic_write
from training.train.augment import appearance

MAP_DTYPE = np.float16  # half the memory; the frozen stack's output loses ~1e-3 relative
MAPS_FOLDER = "maps"  # under the cache root
DIGEST_CHARS = 24


@dataclass(frozen=True)
class FeatureClip:
    """A cached clip whose encoded frames are the frozen stack's maps [N, C, h, w], and
    those of its augmented renderings (``copies``, each [N, C, h, w])."""

    clip: CachedClip
    maps: np.ndarray
    copies: tuple[np.ndarray, ...] = ()

    @property
    def n_encoded(self) -> int:
        return self.clip.n_encoded

    def segment_runs(self) -> list[np.ndarray]:
        return self.clip.segment_runs()


class FrozenTail(nn.Module):
    """``net`` from the output of ``features[:blocks]`` on: maps [B, T, C, h, w] ->
    LivenessOutput. It shares every parameter with ``net`` (training it trains ``net``)."""

    def __init__(self, net: LivenessNet, blocks: int) -> None:
        super().__init__()
        self.net = net
        self.blocks = blocks

    def forward(self, maps: torch.Tensor, motion: torch.Tensor | None = None) -> LivenessOutput:
        B, T = maps.shape[0], maps.shape[1]
        x = maps.reshape(B * T, *maps.shape[2:])
        x = self.net.encoder.reduce(self.net.encoder.features[self.blocks :](x))
        return self.net.forward_features(self.net.with_motion(x.reshape(B, T, -1), motion))


@torch.no_grad()
def frozen_maps(
    net: LivenessNet,
    crops: np.ndarray,
    network: NetworkConfig,
    blocks: int,
    device: torch.device,
    batch_size: int = 64,
) -> np.ndarray:
    """uint8 crops [N, S, S, 3] -> the maps of ``features[:blocks]`` [N, C, h, w]."""
    stack = net.encoder.features[:blocks]
    was_training = stack.training
    stack.eval()
    try:
        parts = []
        for start in range(0, crops.shape[0], batch_size):
            x = torch.from_numpy(to_network_input(crops[start : start + batch_size], network))
            parts.append(stack(x.to(device)).cpu().numpy().astype(MAP_DTYPE))
    finally:
        stack.train(was_training)
    if not parts:
        size = network.input_size
        probe = stack(torch.zeros(1, 3, size, size, device=device))
        return np.zeros((0, *probe.shape[1:]), MAP_DTYPE)
    return np.concatenate(parts)


def stack_digest(net: LivenessNet, network: NetworkConfig, blocks: int) -> str:
    """What the frozen stack computes, as a hash: its parameters and buffers, the input
    size, the normalisation and the map dtype."""
    h = hashlib.blake2b(digest_size=DIGEST_CHARS // 2)
    head = [network.backbone, blocks, network.input_size, network.mean, network.std]
    if network.channel_order != "rgb":  # RGB stacks keep the digests they had before the field
        head.append(network.channel_order)
    h.update(repr([*head, np.dtype(MAP_DTYPE).str]).encode())
    for name, tensor in sorted(net.encoder.features[:blocks].state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _crops_digest(crops: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=DIGEST_CHARS // 2)
    h.update(repr(crops.shape).encode())
    h.update(np.ascontiguousarray(crops).tobytes())
    return h.hexdigest()


def _load_maps(path: Path) -> np.ndarray | None:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None  # absent, or unreadable: computed again and rewritten


def _save_maps(path: Path, maps: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, maps, allow_pickle=False)
    _atomic_write(path, lambda f: f.write(buffer.getvalue()))


def encode_clips(
    net: LivenessNet,
    clips: Sequence[CachedClip],
    network: NetworkConfig,
    blocks: int,
    device: torch.device,
    *,
    store: Path | None = None,
    copies: int = 0,
    seed: int = 0,
    progress: bool = False,
    desc: str = "frozen features",
) -> list[FeatureClip]:
    """Every clip's encoded frames through the frozen stack, once; with ``store`` (a cache
    root) read from and written to ``<store>/maps`` (module docstring). ``copies`` > 0
    also encodes that many appearance-augmented renderings of each clip, drawn from
    (``seed``, the clip's crops, the copy number) alone."""
    folder = Path(store) / MAPS_FOLDER / stack_digest(net, network, blocks) if store else None

    def encoded(crops: np.ndarray) -> np.ndarray:
        path = folder / f"{_crops_digest(crops)}.npy" if folder else None
        maps = _load_maps(path) if path else None
        if maps is None or maps.shape[0] != crops.shape[0]:
            maps = frozen_maps(net, crops, network, blocks, device)
            if path:
                _save_maps(path, maps)
        return maps

    out = []
    bar = tqdm(clips, desc=desc, unit="clip", disable=not progress)
    for clip in bar:
        renderings = []
        if copies:
            key = int(_crops_digest(clip.crops)[:15], 16)
            for c in range(1, copies + 1):
                rng = np.random.default_rng([seed, key, c])
                renderings.append(encoded(appearance(clip.crops, rng)))
        out.append(FeatureClip(clip, encoded(clip.crops), tuple(renderings)))
    bar.close()
    return out


def window_motion(
    clip: CachedClip | FeatureClip, positions: np.ndarray, network: NetworkConfig
) -> np.ndarray | None:
    """The motion descriptors float32 [T, MOTION_DIM] of one window, for a network that
    reads them (model/config.py ``reads_motion``); None for one that does not."""
    if not reads_motion(network):
        return None
    cached = clip.clip if isinstance(clip, FeatureClip) else clip
    return cached.motion[positions].astype(np.float32)


def window_input(
    clip: CachedClip | FeatureClip,
    positions: np.ndarray,
    network: NetworkConfig,
    copy: int = 0,
) -> np.ndarray:
    """What the network (or its FrozenTail) takes for one window of a clip: normalised
    frames float32 [T, 3, S, S], or the frozen maps float32 [T, C, h, w] (of rendering
    ``copy``: 0 = the clip itself, c = its c-th augmented copy)."""
    if isinstance(clip, FeatureClip):
        maps = clip.copies[copy - 1] if copy else clip.maps
        return maps[positions].astype(np.float32)
    return to_network_input(clip.crops[positions], network)
