"""Genuine source clips for the synthetic data set: finding, checking and reading them,
seeding each clip, and assigning whole sources (people) to splits."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from model.manifest import sha256_file
from training.records import SPLITS

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
SCENE_SHORT_SIDE = 360  # scenes are rendered at most this size: the largest output short side
MIN_SOURCE_FRAMES = 8  # fewer frames than this is not a clip worth making attacks from
DEFAULT_TEST_SHARE = 0.2  # automatic splits: ~20 % of people to dev, ~20 % to test


class SynthError(ValueError):
    """Bad input to the synthetic data set generator (sources, options, output folder)."""


@dataclass(frozen=True)
class SourceClip:
    path: Path
    subject: str  # one person per source clip: the file stem
    sha256: str
    fps: float
    frames: int  # decoded frame count (containers' own counts are not always right)
    width: int
    height: int

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps

    @property
    def scene_hw(self) -> tuple[int, int]:
        """Size (h, w) at which this source's scenes are rendered."""
        s = min(1.0, SCENE_SHORT_SIDE / min(self.height, self.width))
        return max(2, round(self.height * s / 2) * 2), max(2, round(self.width * s / 2) * 2)

    def describe(self) -> dict:
        return {
            "name": self.path.name,
            "path": str(self.path),
            "subject": self.subject,
            "sha256": self.sha256,
            "fps": self.fps,
            "frames": self.frames,
            "width": self.width,
            "height": self.height,
        }


def find_sources(paths: Sequence[Path | str]) -> list[Path]:
    """Video files named directly or found (non-recursively) in folders, sorted by path."""
    if not paths:
        raise SynthError("no sources given: name genuine video files or folders holding them")
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise SynthError(f"source {p} does not exist")
        if p.is_dir():
            videos = sorted(
                f for f in p.iterdir() if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS
            )
            if not videos:
                raise SynthError(
                    f"source folder {p} holds no videos ({', '.join(VIDEO_EXTENSIONS)})"
                )
            found.extend(videos)
        else:
            found.append(p)
    found = sorted({f.resolve() for f in found})
    stems: dict[str, Path] = {}
    for f in found:
        if f.stem in stems:
            raise SynthError(
                f"two sources share the name {f.stem!r} ({stems[f.stem]}, {f}); "
                "each source is one person and its stem is the subject id"
            )
        stems[f.stem] = f
    return found


def probe_source(path: Path) -> SourceClip:
    """Open a source, count its frames by decoding them, and hash it; SynthError if unusable."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise SynthError(f"{path}: OpenCV cannot open this file as a video")
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        ok, first = cap.read()
        if not ok or first is None:
            raise SynthError(f"{path}: no frame could be decoded (not a video, or corrupt)")
        count = 1
        while cap.grab():
            count += 1
    finally:
        cap.release()
    if not 1.0 <= fps <= 240.0:
        raise SynthError(f"{path}: frame rate {fps:g} is not usable (container has no valid rate)")
    if count < MIN_SOURCE_FRAMES:
        raise SynthError(f"{path}: only {count} frames; at least {MIN_SOURCE_FRAMES} are needed")
    h, w = first.shape[:2]
    return SourceClip(
        path=path,
        subject=path.stem,
        sha256=sha256_file(path),
        fps=fps,
        frames=count,
        width=w,
        height=h,
    )


def read_frames_at(source: SourceClip, indices: Sequence[int]) -> np.ndarray:
    """Decode the frames at ``indices`` (repeats allowed, ascending), scene-sized:
    uint8 [len(indices), h, w, 3] BGR."""
    wanted = sorted(set(indices))
    h, w = source.scene_hw
    got: dict[int, np.ndarray] = {}
    cap = cv2.VideoCapture(str(source.path))
    try:
        i = 0
        for target in wanted:
            while i < target and cap.grab():  # skip without converting colour
                i += 1
            ok, frame = cap.read() if i == target else (False, None)
            if not ok:
                raise SynthError(f"{source.path}: frame {target} could not be decoded")
            i += 1
            got[target] = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
    finally:
        cap.release()
    return np.stack([got[i] for i in indices])


def clip_rng(seed: int, clip_id: str) -> np.random.Generator:
    """The Generator of one clip: a function of (seed, clip id) only."""
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise SynthError(f"seed must be a non-negative integer, got {seed!r}")
    words = np.frombuffer(hashlib.sha256(clip_id.encode()).digest()[:16], dtype="<u4")
    return np.random.default_rng([int(seed), *(int(w) for w in words)])


def parse_split_counts(text: str) -> dict[str, int]:
    """'train=7,dev=2,test=2' -> {'train': 7, 'dev': 2, 'test': 2}."""
    counts: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        name = name.strip().lower()
        if name not in SPLITS or not value.strip().isdigit():
            raise SynthError(f"bad split {part!r}: expected NAME=COUNT with NAME in {SPLITS}")
        counts[name] = int(value)
    if not counts:
        raise SynthError(f"no splits in {text!r}: expected e.g. train=7,dev=2,test=2")
    return counts


def assign_splits(
    subjects: Sequence[str],
    seed: int,
    *,
    counts: Mapping[str, int] | None = None,
    test_subjects: Sequence[str] = (),
) -> dict[str, str]:
    """Give each subject (person) one split, deterministically from ``seed``.

    ``counts`` fixes how many people go to each split (they must add up to all of them);
    ``test_subjects`` names the test people. Without counts, ~20 % go to dev and ~20 % to
    test (at least one each from three people up).
    """
    people = sorted(set(subjects))
    fixed_test = sorted(set(test_subjects))
    unknown = set(fixed_test) - set(people)
    if unknown:
        raise SynthError(f"test sources {sorted(unknown)} are not among the sources {people}")
    n = len(people)
    if counts is None:
        auto = max(1, round(DEFAULT_TEST_SHARE * n)) if n >= 3 else 0
        n_test = len(fixed_test) if fixed_test else auto
        n_dev = min(auto, n - n_test - 1) if n - n_test >= 2 else 0
        counts = {"train": n - n_test - n_dev, "dev": n_dev, "test": n_test}
    counts = {k: int(counts.get(k, 0)) for k in SPLITS}
    if fixed_test and counts["test"] not in (0, len(fixed_test)):
        raise SynthError(
            f"--splits asks for {counts['test']} test people but {len(fixed_test)} are named"
        )
    if fixed_test:
        counts["test"] = len(fixed_test)
    if sum(counts.values()) != n or min(counts.values()) < 0:
        raise SynthError(f"split counts {counts} must add up to the {n} sources")
    rest = [p for p in people if p not in fixed_test]
    order = [rest[i] for i in clip_rng(seed, "splits").permutation(len(rest))]
    if not fixed_test:
        fixed_test, order = order[: counts["test"]], order[counts["test"] :]
    out = {p: "test" for p in fixed_test}
    out.update({p: "dev" for p in order[: counts["dev"]]})
    out.update({p: "train" for p in order[counts["dev"] :]})
    return out
