"""What the training loop feeds the network: windows of cached clips, drawn and augmented.

Each epoch's draws (which windows, in which order, with which augmentation) are a
function of (seed, epoch) alone. Under DDP every rank computes the same draws and takes
its share of each global batch, so a run's data order does not depend on how many
processes share it, and resuming at an epoch boundary repeats nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from model.config import NetworkConfig, WindowConfig
from model.labels import GENUINE, GENUINE_CLASS, SPOOF
from model.preprocess import to_network_input
from training.cache import CachedClip, PreprocessCache, tile_windows, training_windows
from training.records import ClipRecord
from training.train.features import FeatureClip, window_input, window_motion


class DataError(ValueError):
    """Training or dev data that cannot be used (no windows, a single class, ...)."""


@dataclass(frozen=True)
class Augmentation:
    """One draw's augmentation, applied identically to every frame of its window."""

    flip: bool  # mirror left-right
    offset: float  # brightness offset, fraction of 255
    gain: float  # contrast gain around the window's mean

    def apply(self, crops: np.ndarray) -> np.ndarray:
        """uint8 [T, S, S, 3] -> uint8 [T, S, S, 3]."""
        if not self.flip and self.offset == 0.0 and self.gain == 1.0:
            return crops
        x = crops.astype(np.float32)
        if self.flip:
            x = x[:, :, ::-1]
        mean = x.mean()  # one mean for the window: frames keep their relative brightness
        x = (x - mean) * self.gain + mean + self.offset * 255.0
        return np.clip(np.rint(x), 0, 255).astype(np.uint8)


NO_AUGMENTATION = Augmentation(False, 0.0, 1.0)


@dataclass(frozen=True)
class EpochDraws:
    windows: np.ndarray  # int64 [n] indices into WindowPool.windows, n = steps * batch
    augmentations: list[Augmentation]  # [n]
    copies: np.ndarray | None = None  # int64 [n]: rendering of a FeatureClip (0 = itself)

    def __len__(self) -> int:
        return int(self.windows.size)


def load_clips(records: Sequence[ClipRecord], cache: PreprocessCache) -> list[CachedClip]:
    return [cache.load(r) for r in records]


class WindowPool:
    """All training windows of a set of cached clips, with their labels."""

    def __init__(
        self,
        clips: Sequence[CachedClip | FeatureClip],
        records: Sequence[ClipRecord],
        length: int,
        stride: int,
    ) -> None:
        self.clips = list(clips)
        self.windows: list[tuple[int, np.ndarray]] = []  # (clip number, positions [T])
        targets = []
        for i, (clip, record) in enumerate(zip(self.clips, records, strict=True)):
            for positions in training_windows(clip, length, stride):
                self.windows.append((i, positions))
                targets.append(record.target)
        self.targets = np.asarray(targets, np.int64)  # [W]
        if self.targets.size == 0:
            raise DataError(
                f"no training windows: no clip has {length} encoded face frames in one segment"
            )
        if np.unique(self.targets).size < 2:
            only = GENUINE if self.targets[0] == GENUINE_CLASS else SPOOF
            raise DataError(f"training windows come from {only} clips only; need both classes")

    def __len__(self) -> int:
        return len(self.windows)

    def class_counts(self) -> dict[str, int]:
        n_genuine = int(np.sum(self.targets == GENUINE_CLASS))
        return {GENUINE: n_genuine, SPOOF: len(self) - n_genuine}

    def draw_epoch(
        self,
        seed: int,
        epoch: int,
        batch_size: int,
        *,
        balance: bool,
        augment: dict | None,
        copies: int = 0,
    ) -> EpochDraws:
        """The epoch's global draws: len(pool) rounded down to whole batches (at least
        one), sampled with class-balanced weights or a plain shuffle; ``augment`` holds
        flip_prob, brightness, contrast (None = no augmentation); ``copies`` > 0 also draws,
        for each window, which of its clip's 1 + copies renderings it is read from."""
        rng = np.random.default_rng([seed, epoch])
        n = max(batch_size, len(self) // batch_size * batch_size)
        if balance:
            per_class = np.bincount(self.targets, minlength=2).astype(np.float64)
            p = 1.0 / (2.0 * per_class[self.targets])  # each class gets half of the draws
            windows = rng.choice(len(self), size=n, replace=True, p=p / p.sum())
        else:
            order = np.concatenate([rng.permutation(len(self)) for _ in range(-(-n // len(self)))])
            windows = order[:n]
        if augment is None:
            augs = [NO_AUGMENTATION] * n
        else:
            flips = rng.random(n) < augment["flip_prob"]
            offsets = rng.uniform(-augment["brightness"], augment["brightness"], n)
            gains = 1.0 + rng.uniform(-augment["contrast"], augment["contrast"], n)
            augs = [
                Augmentation(bool(f), float(o), float(g))
                for f, o, g in zip(flips, offsets, gains, strict=True)
            ]
        chosen = None
        if copies:  # a stream of its own: the other draws stay as without copies
            chosen = np.random.default_rng([seed, epoch, 1]).integers(0, copies + 1, n)
        return EpochDraws(np.asarray(windows, np.int64), augs, chosen)

    def batch(
        self, draws: EpochDraws, picks: Sequence[int], network: NetworkConfig
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Draw positions ``picks`` -> (frames float32 [B, T, 3, S, S], motion float32
        [B, T, MOTION_DIM] or None when the network reads none, targets int64 [B]); for
        clips of frozen maps (training/train/features.py) the maps [B, T, C, h, w]."""
        frames, motion, targets = [], [], []
        for k in picks:
            clip_no, positions = self.windows[int(draws.windows[k])]
            clip, augmentation = self.clips[clip_no], draws.augmentations[k]
            if isinstance(clip, FeatureClip):
                if augmentation != NO_AUGMENTATION:
                    raise DataError("frozen maps cannot be augmented: set augment = false")
                copy = int(draws.copies[k]) if draws.copies is not None else 0
                frames.append(window_input(clip, positions, network, copy))  # [T, C, h, w]
            else:
                crops = augmentation.apply(clip.crops[positions])
                frames.append(to_network_input(crops, network))  # [T, 3, S, S]
            motion.append(window_motion(clip, positions, network))
            targets.append(self.targets[int(draws.windows[k])])
        return (
            torch.from_numpy(np.stack(frames)),
            stack_motion(motion),
            torch.as_tensor(targets, dtype=torch.int64),
        )


def stack_motion(motion: Sequence[np.ndarray | None]) -> torch.Tensor | None:
    """The windows' motion descriptors as one tensor [B, T, M], or None when absent."""
    if not motion or motion[0] is None:
        return None
    return torch.from_numpy(np.stack(motion))


@torch.no_grad()
def score_clips(
    net: torch.nn.Module,
    clips: Sequence[CachedClip | FeatureClip],
    window: WindowConfig,
    network: NetworkConfig,
    device: torch.device,
    batch_size: int = 32,
) -> list[float | None]:
    """Clip scores as the service computes them: mean P(genuine) over each clip's windows
    (model/windows.py). None for a clip with no window. ``net`` is used as given (call
    ``eval()`` first); for clips of frozen maps it is the FrozenTail."""
    full: list[tuple[int, np.ndarray]] = []  # (clip number, positions [T])
    partial: list[tuple[int, np.ndarray]] = []  # shorter windows, one forward each
    for i, clip in enumerate(clips):
        for positions in tile_windows(clip, window):
            (full if len(positions) == window.length else partial).append((i, positions))
    probs: list[list[float]] = [[] for _ in clips]
    groups = [full[s : s + batch_size] for s in range(0, len(full), batch_size)]
    groups += [[item] for item in partial]
    for group in groups:
        x = np.stack([window_input(clips[i], p, network) for i, p in group])
        motion = stack_motion([window_motion(clips[i], p, network) for i, p in group])
        out = net(torch.from_numpy(x).to(device), None if motion is None else motion.to(device))
        p_genuine = torch.softmax(out.logits.float(), dim=-1)[:, GENUINE_CLASS].cpu().tolist()
        for (i, _), p in zip(group, p_genuine, strict=True):
            probs[i].append(p)
    return [float(np.mean(p)) if p else None for p in probs]
