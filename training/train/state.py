"""The joint loss, early stopping, seeding and checkpoints of a training run.

Checkpoints (``torch.save`` dicts, written atomically by rank 0)::

    last.pt   format, config (resolved TrainConfig dict), epoch (epochs completed),
              step (optimizer steps), model (state_dict), optimizer, scheduler,
              stopper (early-stopping state), rng (python, numpy, torch, cuda),
              dev (the epoch's dev metrics), finished (why training ended, or None)
    best.pt   format, config, epoch, step, model, dev: the epoch with the lowest dev EER
              (ties: lower dev log-loss); what ``liveness export`` reads
"""

from __future__ import annotations

import math
import os
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from model.network import LivenessOutput

CHECKPOINT_FORMAT = 1
LAST_NAME = "last.pt"
BEST_NAME = "best.pt"


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable, or from a different config."""


class JointLoss(NamedTuple):
    total: torch.Tensor  # sequence + lambda * frame: what is minimised
    sequence: torch.Tensor  # CE of the clip (window) logits
    frame: torch.Tensor  # mean CE of the per-frame CNN logits


def joint_loss(
    output: LivenessOutput,
    targets: torch.Tensor,
    frame_loss_weight: float,
    motion_loss_weight: float = 0.0,
) -> JointLoss:
    """Paper §3.3 (end): the LSTM's sequence loss plus the CNN's per-frame loss, so both
    parts learn to separate the classes. Every frame of a window carries its label.

    output.logits [B, 2], output.frame_logits [B, T, 2], targets int64 [B]. A network with
    a motion stream (motion "flow_stream") may add that stream's own sequence loss,
    weighted ``motion_loss_weight``, so it learns what motion alone tells (in the total,
    not in the sequence part).
    """
    sequence = nn.functional.cross_entropy(output.logits, targets)
    T = output.frame_logits.shape[1]
    frame = nn.functional.cross_entropy(
        output.frame_logits.reshape(-1, 2), targets.repeat_interleave(T)
    )
    total = sequence + frame_loss_weight * frame
    if motion_loss_weight and output.motion_logits is not None:
        total = total + motion_loss_weight * nn.functional.cross_entropy(
            output.motion_logits, targets
        )
    return JointLoss(total, sequence, frame)


@dataclass
class EarlyStopping:
    """Stop after ``patience`` epochs without a dev EER lower by more than ``min_delta``.

    The best epoch (for best.pt) is the lowest EER; equal EERs are told apart by the dev
    log-loss, which keeps improving once a small dev set is perfectly separated.
    """

    patience: int  # 0 = never stop early
    min_delta: float = 0.0
    best_eer: float = math.inf
    best_loss: float = math.inf
    best_epoch: int = 0
    stale_epochs: int = 0  # epochs since the EER last improved
    reference_eer: float = math.inf  # EER the next one must beat (by min_delta)

    def update(self, epoch: int, eer: float, loss: float) -> bool:
        """Record one epoch's dev result; True when it is the new best epoch."""
        if eer < self.reference_eer - self.min_delta:
            self.reference_eer, self.stale_epochs = eer, 0
        else:
            self.stale_epochs += 1
        best = eer < self.best_eer or (eer == self.best_eer and loss < self.best_loss)
        if best:
            self.best_eer, self.best_loss, self.best_epoch = eer, loss, epoch
        return best

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.stale_epochs >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """torch.save through a temporary file and a rename: never a half-written file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save({"format": CHECKPOINT_FORMAT, **payload}, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint there")
    try:
        # weights_only=False: the checkpoint holds numpy/python RNG states, not just tensors
        data = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # torch.load raises many types for a bad file
        raise CheckpointError(f"{path}: not a readable checkpoint ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a checkpoint of format {CHECKPOINT_FORMAT}")
    return data
