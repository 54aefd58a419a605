"""Real faces through the default model: the genuine clips of ../shared/data/real scored
raw (no simulated camera), and still images shown to the model as static clips.

A still image repeated frame after frame is what a photo held perfectly still looks
like, so a model that uses motion should call every one of them a spoof, the picture of
a real person included; the figures are reported, not asserted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
from tqdm import tqdm

from model.labels import decide
from model.runtime import LivenessModel, TooFewFramesError, score_clip
from model.video import VideoDecodeError, VideoReader

STILL_SECONDS = 3.0  # a still image is shown for this long...
STILL_FPS = 15.0  # ...at this frame rate (45 identical frames: two windows of 16 and more)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


def _verdict(model: LivenessModel, result) -> dict[str, Any]:
    return {
        "score": round(result.score, 6),
        "decision": decide(result.score, model.threshold),
        "windows": len(result.windows),
        "encoded_frames": result.n_encoded,
    }


def score_real_clips(model_dir: Path, folder: Path, progress: bool = True) -> list[dict]:
    """Every video of ``folder`` scored as an upload; a clip with no usable face says why."""
    model = LivenessModel(model_dir)
    out = []
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".mp4", ".avi"))
    for path in tqdm(paths, desc="real clips", unit="clip", disable=not progress):
        row: dict[str, Any] = {"clip": path.name}
        try:
            reader = VideoReader(path)
            row.update(_verdict(model, score_clip(model, reader, reader.info.fps)))
        except (TooFewFramesError, VideoDecodeError) as exc:
            row.update(score=None, decision="failure to acquire", reason=str(exc))
        out.append(row)
    return out


def score_images(model_dir: Path, folder: Path) -> dict[str, dict]:
    """Each still image of ``folder`` as a static clip of STILL_SECONDS at STILL_FPS."""
    model = LivenessModel(model_dir)
    out: dict[str, dict] = {}
    n = round(STILL_SECONDS * STILL_FPS)
    for path in sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            out[path.name] = {"score": None, "decision": "unreadable image"}
            continue
        frames = ((image, i / STILL_FPS) for i in range(n))
        try:
            out[path.name] = _verdict(model, score_clip(model, frames, STILL_FPS))
        except TooFewFramesError as exc:
            out[path.name] = {"score": None, "decision": "failure to acquire", "reason": str(exc)}
    return out
