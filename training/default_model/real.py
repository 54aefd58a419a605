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


def score_still_photos(
    model_dir: Path,
    sources: Path,
    folder: Path,
    splits: dict[str, str],
    progress: bool = True,
) -> dict[str, Any]:
    """Every raw genuine clip of ``sources`` made into its still attacks (a looped photo, a
    photo on a stand in front of a camera, a photo in a hand: training/evaluate/stills.py,
    written to ``folder``) and scored as uploads. Per kind: how many clips, how many the
    model accepted (of all, and of each split's people), and every clip's score."""
    from training.evaluate.score import score_records
    from training.evaluate.stills import EVAL_STILL_KINDS, make_still_attacks
    from training.evaluate.unseen import STILLS_SEED, raw_records

    model = LivenessModel(model_dir)
    attacks = make_still_attacks(
        raw_records(sources), folder, seed=STILLS_SEED, kinds=EVAL_STILL_KINDS, progress=progress
    )
    outcomes = score_records(model, attacks, progress=progress, desc="still photos")
    kinds: dict[str, Any] = {}
    clips = []
    for outcome in outcomes:
        record = outcome.record
        split = splits.get(record.subject, "not used")
        accepted = outcome.score is not None and outcome.score >= model.threshold
        clips.append(
            {
                "clip": record.meta.get("raw", record.subject),
                "kind": record.attack,
                "split": split,
                "score": None if outcome.score is None else round(outcome.score, 6),
                "decision": "no face"
                if outcome.score is None
                else decide(outcome.score, model.threshold),
            }
        )
        row = kinds.setdefault(record.attack, {"clips": 0, "accepted": 0, "by_split": {}})
        part = row["by_split"].setdefault(split, {"clips": 0, "accepted": 0})
        for counts in (row, part):
            counts["clips"] += 1
            counts["accepted"] += int(accepted)
    return {"seed": STILLS_SEED, "kinds": kinds, "clips": clips}
