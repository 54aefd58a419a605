"""The preprocessing cache: each clip cropped and magnified once per PreprocessConfig.

Training reads the network's input many times per clip (every epoch, several windows
per clip); the face crop and the Eulerian magnifier are the slow part and never change
for a given clip and ``PreprocessConfig``. So each clip goes once through the very code
the server runs (``VideoReader`` -> ``Preprocessor``, frame by frame) and the frames the
sampler passes to the encoder are stored::

    <cache root>/<preprocess.digest()>/<clip content sha256[:24]>.npz
        crops     uint8   [N, S, S, 3]  magnified BGR crops of the N encoded frames
        index     int64   [N]           their frame numbers in the decoded video
        times     float64 [N]           their timestamps, s
        segments  int64   [N]           face-track segment id (windows never span two)
        boxes     float32 [N, 4]        tracked face box x, y, w, h in frame pixels
        motion    float32 [N, M]        motion descriptors (model/motion.py) of those frames
        fps       float64 []            the clip's frame rate
        frames    int64   []            frames decoded

Files are written atomically (temporary file + rename), so an interrupted or concurrent
build (several DDP ranks) never leaves a half-written entry. Content hashes, not paths,
name the entries: a moved clip is not recomputed, an edited one is.

Windows: ``training_windows`` are runs of T consecutive encoded frames inside one
segment, starting every ``stride`` frames; ``tile_windows`` are the windows the service
scores a clip with (model/windows.py).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import BinaryIO

import numpy as np
from tqdm import tqdm

from model.config import MOTION_DIM, PreprocessConfig, WindowConfig
from model.manifest import sha256_file
from model.preprocess import Preprocessor
from model.video import VideoReader
from model.windows import clip_windows
from training.records import ClipRecord

CACHE_FORMAT = 2  # bump when the stored arrays change meaning (2: motion descriptors);
# an entry of another format is made again when the cache is filled
HASH_CHARS = 24  # hex characters of a clip's sha256 in its entry name


class CacheError(RuntimeError):
    """A cache entry that cannot be made or read."""


@dataclass(frozen=True)
class CachedClip:
    crops: np.ndarray  # uint8 [N, S, S, 3] magnified BGR crops of the encoded frames
    index: np.ndarray  # int64 [N] frame numbers in the video
    times: np.ndarray  # float64 [N] timestamps, s
    segments: np.ndarray  # int64 [N] face-track segment ids, non-decreasing
    boxes: np.ndarray  # float32 [N, 4] face boxes x, y, w, h
    fps: float  # the video's frame rate
    frames: int  # frames decoded
    motion: np.ndarray  # float32 [N, MOTION_DIM] motion descriptors of the encoded frames

    @property
    def n_encoded(self) -> int:
        return int(self.crops.shape[0])

    def segment_runs(self) -> list[np.ndarray]:
        """Positions (into ``crops``) of each segment's encoded frames, in stream order."""
        if self.n_encoded == 0:
            return []
        cuts = np.flatnonzero(np.diff(self.segments)) + 1
        return np.split(np.arange(self.n_encoded), cuts)


def training_windows(clip: CachedClip, length: int, stride: int) -> list[np.ndarray]:
    """Runs of ``length`` consecutive encoded frames of one segment, started every
    ``stride`` frames: a list of int64 [length] positions into ``clip.crops``."""
    if length < 1 or stride < 1:
        raise ValueError(f"window length and stride must be >= 1, got {length}, {stride}")
    windows = []
    for run in clip.segment_runs():
        windows.extend(run[s : s + length] for s in range(0, len(run) - length + 1, stride))
    return windows


def tile_windows(clip: CachedClip, window: WindowConfig) -> list[np.ndarray]:
    """The windows the service scores the clip with (model/windows.py): int64 positions
    into ``clip.crops``, full windows of T frames or the one shorter window."""
    runs = clip.segment_runs()
    return [runs[s][a:b] for s, a, b in clip_windows([len(r) for r in runs], window)]


def clip_hash(path: Path) -> str:
    return sha256_file(Path(path))[:HASH_CHARS]


def preprocess_clip(path: Path, preprocess: PreprocessConfig) -> CachedClip:
    """Run the serving path (VideoReader -> Preprocessor) over one clip."""
    reader = VideoReader(path)
    pre = Preprocessor(preprocess, reader.info.fps, motion=True)
    crops, index, times, segments, boxes, motion = [], [], [], [], [], []
    frames = 0
    for frame, t in reader:
        prepared = pre.process(frame, t)
        frames += 1
        if prepared.crop is None:
            continue
        crops.append(prepared.crop)
        index.append(prepared.index)
        times.append(prepared.t)
        segments.append(prepared.segment)
        boxes.append(prepared.box)
        motion.append(prepared.motion)
    size = preprocess.crop.input_size
    return CachedClip(
        crops=np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8),
        index=np.asarray(index, np.int64),
        times=np.asarray(times, np.float64),
        segments=np.asarray(segments, np.int64),
        boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
        fps=float(reader.info.fps),
        frames=frames,
        motion=np.asarray(motion, np.float32).reshape(-1, MOTION_DIM),
    )


def _atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write through a temporary file in the same folder, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_clip(path: Path, clip: CachedClip) -> None:
    def write(f: BinaryIO) -> None:
        np.savez_compressed(
            f,
            format=np.int64(CACHE_FORMAT),
            crops=clip.crops,
            index=clip.index,
            times=clip.times,
            segments=clip.segments,
            boxes=clip.boxes,
            motion=clip.motion,
            fps=np.float64(clip.fps),
            frames=np.int64(clip.frames),
        )

    _atomic_write(Path(path), write)


def load_clip(path: Path) -> CachedClip:
    try:
        with np.load(path) as data:
            if int(data["format"]) != CACHE_FORMAT:
                raise CacheError(f"{path}: cache format {int(data['format'])} != {CACHE_FORMAT}")
            return CachedClip(
                crops=data["crops"],
                index=data["index"],
                times=data["times"],
                segments=data["segments"],
                boxes=data["boxes"],
                fps=float(data["fps"]),
                frames=int(data["frames"]),
                motion=data["motion"],
            )
    except (OSError, KeyError, ValueError) as exc:
        raise CacheError(f"{path}: unreadable cache entry ({exc})") from exc


def _is_current(entry: Path) -> bool:
    """Whether ``entry`` exists and is of this CACHE_FORMAT (else it is made again)."""
    try:
        with np.load(entry) as data:
            return int(data["format"]) == CACHE_FORMAT
    except (OSError, KeyError, ValueError):
        return False


def _fill_entry(job: tuple[str, str, dict]) -> str:
    """Worker: preprocess one clip into its entry unless it exists. Returns the entry."""
    clip_path, entry, preprocess = job
    if not _is_current(Path(entry)):
        clip = preprocess_clip(Path(clip_path), PreprocessConfig.from_dict(preprocess))
        save_clip(Path(entry), clip)
    return entry


class PreprocessCache:
    """Cache entries of one PreprocessConfig under ``root/<digest>/``."""

    def __init__(self, root: Path, preprocess: PreprocessConfig) -> None:
        self.root = Path(root)
        self.preprocess = preprocess
        self.folder = self.root / preprocess.digest()
        self._hashes: dict[Path, str] = {}

    def entry(self, clip_path: Path) -> Path:
        """Where the clip's entry lives (hashing the file once per path)."""
        clip_path = Path(clip_path)
        if clip_path not in self._hashes:
            if not clip_path.is_file():
                raise CacheError(f"{clip_path}: no such clip")
            self._hashes[clip_path] = clip_hash(clip_path)
        return self.folder / f"{self._hashes[clip_path]}.npz"

    def missing(self, records: Sequence[ClipRecord]) -> list[ClipRecord]:
        return [r for r in records if not _is_current(self.entry(r.path))]

    def build(
        self, records: Sequence[ClipRecord], *, workers: int = 1, progress: bool = True
    ) -> int:
        """Fill the entries ``records`` lack; returns how many were computed (0 = no-op)."""
        todo = self.missing(records)
        self._describe()
        if not todo:
            return 0
        jobs = [(str(r.path), str(self.entry(r.path)), _as_dict(self.preprocess)) for r in todo]
        bar = tqdm(total=len(jobs), desc="preprocess", unit="clip", disable=not progress)
        try:
            if workers <= 1:
                for job in jobs:
                    _fill_entry(job)
                    bar.update()
            else:
                # spawn: a forked child of a process holding torch/OpenMP threads can hang
                ctx = get_context("spawn")
                with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
                    for _ in pool.map(_fill_entry, jobs):
                        bar.update()
        finally:
            bar.close()
        return len(jobs)

    def load(self, record: ClipRecord) -> CachedClip:
        path = self.entry(record.path)
        if not path.is_file():
            raise CacheError(f"{record.path} is not cached yet under {self.folder}; build first")
        return load_clip(path)

    def _describe(self) -> None:
        """config.json beside the entries says which preprocessing made them."""
        path = self.folder / "config.json"
        if not path.is_file() or json.loads(path.read_text()).get("format") != CACHE_FORMAT:
            text = json.dumps({"format": CACHE_FORMAT, "preprocess": _as_dict(self.preprocess)})
            _atomic_write(path, lambda f: f.write(text.encode() + b"\n"))


def _as_dict(preprocess: PreprocessConfig) -> dict:
    return asdict(preprocess)
