"""A tiny real data set and a tiny training config for the training tests.

The data set is made once per test session: the first 40 frames of three real face clips
(downscaled to 160 px) are the genuine sources of ``training.synth.dataset``, which renders
genuine, print and replay clips of about 1.5 s; two people train, one is dev.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from model.video import read_frames, write_clip
from training.config import TrainConfig, resolve_config

SOURCES = ("liveportrait__driving_d0", "liveportrait__driving_d11", "liveportrait__driving_d12")
SOURCE_FRAMES = 40
SOURCE_SIDE = 160
SPLITS = {SOURCES[0]: "train", SOURCES[1]: "train", SOURCES[2]: "dev"}

# 32 px crops, windows of 4 frames, a narrow light network: seconds per epoch on one core.
TINY_SETTINGS = {
    "preprocess": {
        "magnifier": {"n_levels": 2},
        "window": {"length": 4, "min_length": 2},
    },
    "network": {"input_size": 32, "reduce_channels": 8, "hidden": 16},
    "epochs": 1,
    "batch_size": 4,
    "window_stride": 4,
    "patience": 0,
    "num_threads": 1,
    "device": "cpu",
    "progress": False,
}


def write_sources(real_dir: Path, out_dir: Path) -> list[Path]:
    """The first SOURCE_FRAMES frames of each source clip, resized, as MJPG .avi files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    size = (SOURCE_SIDE, SOURCE_SIDE)
    for name in SOURCES:
        frames, _, info = read_frames(real_dir / f"{name}.mp4", max_frames=SOURCE_FRAMES)
        assert len(frames) == SOURCE_FRAMES, f"{name}: fewer than {SOURCE_FRAMES} frames"
        small = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]
        paths.append(write_clip(out_dir / f"{name}.avi", small, info.fps, "MJPG"))
    return paths


def tiny_dataset(base: Path, real_clip_paths: list[Path]) -> Path:
    """The synthetic data set folder under ``base`` (made on first use, then reused)."""
    from training.synth.dataset import synthesize_dataset

    folder = base / "tiny_synth"
    if (folder / "index.csv").is_file():
        return folder
    real_dir = real_clip_paths[0].parent
    if not all((real_dir / f"{n}.mp4").is_file() for n in SOURCES):
        pytest.skip(f"the real clips {SOURCES} are not all in {real_dir}")
    sources = write_sources(real_dir, base / "tiny_sources")
    synthesize_dataset(
        sources,
        folder,
        seed=0,
        variants_per_source=1,
        genuine_variants_per_source=2,
        max_seconds=1.6,
        splits=SPLITS,
        progress=False,
    )
    return folder


def tiny_config(data: Path, cache_root: Path, *sets: str, **overrides) -> TrainConfig:
    """TINY_SETTINGS on ``data``'s train and dev splits, then ``overrides``, then ``sets``."""
    config = TrainConfig.from_dict(
        {
            **TINY_SETTINGS,
            "train_data": f"{data}?split=train",
            "dev_data": f"{data}?split=dev",
            "cache_root": str(cache_root),
            **overrides,
        }
    )
    return resolve_config(base=config, sets=list(sets))
