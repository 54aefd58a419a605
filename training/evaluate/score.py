"""Scoring a data set's clips the way the service scores an upload, for ``liveness eval``.

Every clip is decoded by ``model.video.VideoReader`` and scored by
``model.runtime.score_clip`` in ONNX Runtime: the service's own path, so the figures
measured here are the figures a deployment gets. A clip the runtime cannot score (no
face tracked in enough frames for one window, or an undecodable file) is a *failure to
acquire*; it keeps its record and the reason, and ``training.evaluate.run`` decides how it
counts.

For a few sample clips (one per class / attack kind) the decoded frames are kept, small,
so the attention plot can show the faces a window looked at.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from model.config import CropConfig
from model.face import FaceBox, crop_face
from model.labels import GENUINE, SPOOF
from model.runtime import LivenessModel, TooFewFramesError, WindowScore, score_clip
from model.video import VideoDecodeError, VideoReader, downscale_to
from training.records import ClipRecord

SAMPLE_FRAME_SIDE = 240  # sample clips' frames are kept at most this size (longer side)
THUMB_SIZE = 64  # side of a thumbnail face crop in the attention plot, px


@dataclass
class ClipOutcome:
    """One clip through the runtime: its score and windows, or why it got none."""

    record: ClipRecord
    score: float | None  # mean window P(genuine); None = failure to acquire
    windows: list[WindowScore] = field(default_factory=list)
    frames: int = 0  # frames decoded
    encoded: int = 0  # frames that entered the encoder
    reason: str = ""  # why no score (failure to acquire), else ""
    thumbs: dict[int, np.ndarray] = field(default_factory=dict)  # frame index -> uint8 crop

    @property
    def acquired(self) -> bool:
        return self.score is not None

    @property
    def kind(self) -> str:
        """ "genuine" or the attack kind (``"spoof"`` when the data set names none)."""
        return GENUINE if self.record.is_genuine else (self.record.attack or SPOOF)


def pick_samples(records: Sequence[ClipRecord]) -> list[ClipRecord]:
    """The first clip (by path) of each kind: genuine, then each attack kind by name."""
    first: dict[str, ClipRecord] = {}
    for record in sorted(records, key=lambda r: str(r.path)):
        kind = GENUINE if record.is_genuine else (record.attack or SPOOF)
        first.setdefault(kind, record)
    return [first[k] for k in sorted(first, key=lambda k: (k != GENUINE, k))]


class _FrameKeeper:
    """Passes (frame, t) pairs through and keeps a downscaled copy of each frame."""

    def __init__(self, frames: Iterator[tuple[np.ndarray, float]]) -> None:
        self._frames = frames
        self.kept: list[np.ndarray] = []
        self.scale = 1.0  # kept / original size

    def __iter__(self) -> Iterator[tuple[np.ndarray, float]]:
        for frame, t in self._frames:
            small = downscale_to(frame, SAMPLE_FRAME_SIDE)
            self.scale = small.shape[1] / frame.shape[1]
            self.kept.append(small)
            yield frame, t


def _thumbnails(
    keeper: _FrameKeeper, windows: list[WindowScore], boxes: dict[int, list[float]], margin: float
) -> dict[int, np.ndarray]:
    """Extended face crops [THUMB_SIZE, THUMB_SIZE, 3] of the first window's frames."""
    if not windows:
        return {}
    crop = CropConfig(input_size=THUMB_SIZE, margin=margin)
    thumbs = {}
    for index in windows[0].frames:
        box = boxes.get(index)
        if box is None or index >= len(keeper.kept):
            continue
        s = keeper.scale
        scaled = FaceBox(box[0] * s, box[1] * s, box[2] * s, box[3] * s)
        thumbs[index] = crop_face(keeper.kept[index], scaled, crop)
    return thumbs


def score_record(model: LivenessModel, record: ClipRecord, *, keep_frames: bool) -> ClipOutcome:
    """One clip scored by ``score_clip``; failures to acquire come back with a reason."""
    try:
        reader = VideoReader(record.path)
    except VideoDecodeError as exc:
        return ClipOutcome(record, None, reason=f"not decodable: {exc}")
    keeper = _FrameKeeper(iter(reader)) if keep_frames else None
    frames = iter(keeper) if keeper is not None else reader
    counter = _Counter(frames)
    try:
        result = score_clip(model, counter, reader.info.fps)
    except TooFewFramesError as exc:
        return ClipOutcome(record, None, frames=counter.n, reason=f"no usable face: {exc}")
    except VideoDecodeError as exc:
        return ClipOutcome(record, None, frames=counter.n, reason=f"not decodable: {exc}")
    if counter.n == 0:
        return ClipOutcome(record, None, reason="not decodable: no frame could be decoded")
    thumbs = {}
    if keeper is not None:
        boxes = {f.index: f.box for f in result.frames if f.box is not None}
        margin = model.manifest.preprocess.crop.margin
        thumbs = _thumbnails(keeper, result.windows, boxes, margin)
    return ClipOutcome(
        record,
        result.score,
        windows=result.windows,
        frames=counter.n,
        encoded=result.n_encoded,
        thumbs=thumbs,
    )


class _Counter:
    """Counts the frames that pass through."""

    def __init__(self, frames) -> None:
        self._frames = frames
        self.n = 0

    def __iter__(self) -> Iterator[tuple[np.ndarray, float]]:
        for item in self._frames:
            self.n += 1
            yield item


def score_records(
    model: LivenessModel,
    records: Sequence[ClipRecord],
    *,
    samples: Sequence[ClipRecord] = (),
    progress: bool = True,
    desc: str = "clips (onnxruntime)",
) -> list[ClipOutcome]:
    """Every record scored in order; ``samples`` keep thumbnails of their first window."""
    keep = {Path(r.path) for r in samples}
    return [
        score_record(model, r, keep_frames=Path(r.path) in keep)
        for r in tqdm(records, desc=desc, unit="clip", disable=not progress)
    ]


def thumbnail_strip(outcome: ClipOutcome) -> np.ndarray | None:
    """uint8 [T, S, S, 3] thumbnails of the first window's frames, or None if any is missing."""
    if not outcome.windows:
        return None
    frames = outcome.windows[0].frames
    if not all(i in outcome.thumbs for i in frames):
        return None
    return np.stack([outcome.thumbs[i] for i in frames])
