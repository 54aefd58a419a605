"""The paper's hand-crafted baselines (its section 4.2): LBP and LBP-TOP features + SVM.

- ``LbpSvm``: LBP u2 with P=8 neighbours at radius R=1 on each grey face crop -> a
  59-bin normalised histogram per frame (58 uniform patterns + one bin for all the
  others). The SVM is trained on every frame of the training clips; a clip's score is
  the mean of its frames' scores, as the paper averages frame probabilities.
- ``LbpTopSvm``: the same uniform LBP on the three orthogonal planes of the clip volume
  (XY = appearance, XT and YT = how rows and columns change over time), one histogram
  per plane, concatenated (3 x 59 = 177 bins), one sample per clip (the paper's choice)
  or per block of frames.

Clips are uint8 face crops [T, H, W] grey or [T, H, W, 3] BGR (converted to grey).
Frame scores are the logistic of the SVM's decision value (genuine side positive): a
monotone map of the margin into [0, 1]. Thresholds are set on a dev set's EER point,
so no probability calibration is needed. Nothing is random: fitting twice on the same
data gives the same model. Saved models are joblib (pickle) files: load only files you
trust.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Self

import cv2
import joblib
import numpy as np
from skimage.feature import local_binary_pattern
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from tqdm import tqdm

LBP_POINTS = 8  # P: neighbours on the circle
LBP_RADIUS = 1  # R: circle radius in pixels (and in frames, for the XT / YT planes)
LBP_BINS = 59  # 'nri_uniform' codes for P=8: 58 uniform patterns + 1 non-uniform bin
LBP_TOP_PLANES = ("XY", "XT", "YT")
MIN_TOP_FRAMES = 2 * LBP_RADIUS + 1  # a time neighbourhood needs frames on both sides
FORMAT = "liveness-baseline"
FORMAT_VERSION = 1


class BaselineError(ValueError):
    """Bad clips or labels, an unfitted model, or a file that is not a baseline model."""


def to_grey_clip(clip: np.ndarray) -> np.ndarray:
    """uint8 [T, H, W] or [T, H, W, 3] BGR -> uint8 [T, H, W] grey."""
    clip = np.asarray(clip)
    if clip.dtype != np.uint8:
        raise BaselineError(f"clips must be uint8 face crops, got dtype {clip.dtype}")
    if clip.ndim == 4 and clip.shape[-1] == 3:
        clip = np.stack([cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) for frame in clip])
    if clip.ndim != 3:
        raise BaselineError(f"a clip must be [T, H, W] grey or [T, H, W, 3] BGR, got {clip.shape}")
    t, h, w = clip.shape
    if t < 1 or min(h, w) < 2 * LBP_RADIUS + 1:
        raise BaselineError(f"clip {clip.shape} is too small: need >= 1 frame of >= 3x3 pixels")
    return clip


def _code_histogram(image: np.ndarray) -> np.ndarray:
    """Counts [59] of LBP u2 codes over the interior pixels of one 2-D image. Border pixels
    are left out: their circle leaves the image and would see zero padding."""
    codes = local_binary_pattern(image, LBP_POINTS, LBP_RADIUS, method="nri_uniform")
    r = LBP_RADIUS
    interior = codes[r:-r, r:-r].astype(np.int64)
    return np.bincount(interior.ravel(), minlength=LBP_BINS).astype(np.float64)


def _normalised(counts: np.ndarray) -> np.ndarray:
    return counts / max(counts.sum(), 1.0)


def lbp_histogram(frame: np.ndarray) -> np.ndarray:
    """LBP u2 (8, 1) histogram of one grey frame [H, W]: float64 [59], sums to 1."""
    return _normalised(_code_histogram(frame))


def lbp_top_histogram(volume: np.ndarray) -> np.ndarray:
    """LBP-TOP histogram of a grey volume [T, H, W]: float64 [177] = XY | XT | YT, each
    third sums to 1. Every plane is measured over the same interior voxels."""
    t, h, w = volume.shape
    if t < MIN_TOP_FRAMES:
        raise BaselineError(f"LBP-TOP needs >= {MIN_TOP_FRAMES} frames, got {t}")
    r = LBP_RADIUS
    xy = sum(_code_histogram(volume[i]) for i in range(r, t - r))  # frames [H, W]
    xt = sum(_code_histogram(volume[:, y, :]) for y in range(r, h - r))  # rows over time [T, W]
    yt = sum(_code_histogram(volume[:, :, x]) for x in range(r, w - r))  # columns [T, H]
    return np.concatenate([_normalised(xy), _normalised(xt), _normalised(yt)])


def _check_training_set(clips: list[np.ndarray], labels: list[int]) -> np.ndarray:
    y = np.asarray(labels).reshape(-1)
    if len(clips) == 0:
        raise BaselineError("no training clips")
    if len(clips) != y.size:
        raise BaselineError(f"length mismatch: {len(clips)} clips but {y.size} labels")
    if not np.all(np.isin(y, (0, 1))):
        raise BaselineError(
            f"labels must be 1 (genuine) or 0 (spoof), got {sorted(set(y.tolist()))}"
        )
    if np.unique(y).size < 2:
        raise BaselineError("training needs both genuine and spoof clips")
    return y.astype(np.int64)


class _SvmBaseline(ABC):
    """Features per sample (frame or block) -> standardise -> RBF SVM."""

    kind: ClassVar[str] = ""

    def __init__(self, c: float = 1.0) -> None:
        if c <= 0:
            raise BaselineError(f"SVM C must be positive, got {c}")
        self.c = float(c)
        self.pipeline: Pipeline | None = None

    def params(self) -> dict[str, Any]:
        return {"c": self.c}

    @abstractmethod
    def clip_features(self, clip: np.ndarray) -> np.ndarray:
        """Feature rows [n_samples, D] of one clip."""

    def fit(self, clips: list[np.ndarray], labels: list[int], *, progress: bool = False) -> Self:
        """Train on labelled clips (1 genuine, 0 spoof); every sample inherits its clip's label."""
        y = _check_training_set(clips, labels)
        rows, targets = [], []
        for clip, label in tqdm(
            zip(clips, y, strict=True),
            total=len(clips),
            desc=f"{self.kind} features",
            disable=not progress,
        ):
            feats = self.clip_features(clip)
            rows.append(feats)
            targets.append(np.full(len(feats), label))
        svm = SVC(kernel="rbf", C=self.c, gamma="scale", class_weight="balanced")
        self.pipeline = make_pipeline(StandardScaler(), svm).fit(
            np.concatenate(rows), np.concatenate(targets)
        )
        return self

    def sample_scores(self, clip: np.ndarray) -> np.ndarray:
        """Per-sample genuine scores [n_samples] in (0, 1)."""
        if self.pipeline is None:
            raise BaselineError(f"{self.kind} is not fitted: call fit() or load() first")
        margin = self.pipeline.decision_function(self.clip_features(clip))  # > 0: genuine
        return 1.0 / (1.0 + np.exp(-margin))

    def score(self, clip: np.ndarray) -> float:
        """Clip score in (0, 1), higher = more genuine: the mean of its samples' scores."""
        return float(np.mean(self.sample_scores(clip)))

    def score_many(self, clips: list[np.ndarray], *, progress: bool = False) -> np.ndarray:
        return np.array(
            [self.score(c) for c in tqdm(clips, desc=f"{self.kind} scores", disable=not progress)]
        )

    def save(self, path: Path) -> Path:
        if self.pipeline is None:
            raise BaselineError(f"{self.kind} is not fitted: nothing to save")
        path = Path(path)
        payload = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "params": self.params(),
            "pipeline": self.pipeline,
        }
        joblib.dump(payload, path)
        return path

    @classmethod
    def load(cls, path: Path) -> Self:
        model = load_baseline(path)
        if not isinstance(model, cls):
            raise BaselineError(f"{path}: holds a {model.kind} model, not {cls.kind}")
        return model


class LbpSvm(_SvmBaseline):
    """LBP u2 (8, 1) per frame + SVM; clip score = mean over frames."""

    kind = "LBP"

    def __init__(self, c: float = 1.0, max_frames_per_clip: int | None = None) -> None:
        super().__init__(c)
        if max_frames_per_clip is not None and max_frames_per_clip < 1:
            raise BaselineError(f"max_frames_per_clip must be >= 1, got {max_frames_per_clip}")
        # None = every frame (the paper); a number = that many evenly spaced frames,
        # for data sets whose hundreds of frames per clip would make the SVM slow.
        self.max_frames_per_clip = max_frames_per_clip

    def params(self) -> dict[str, Any]:
        return {**super().params(), "max_frames_per_clip": self.max_frames_per_clip}

    def clip_features(self, clip: np.ndarray) -> np.ndarray:
        grey = to_grey_clip(clip)
        if self.max_frames_per_clip is not None and len(grey) > self.max_frames_per_clip:
            picks = np.linspace(0, len(grey) - 1, self.max_frames_per_clip).round().astype(int)
            grey = grey[picks]
        return np.stack([lbp_histogram(frame) for frame in grey])  # [T, 59]


class LbpTopSvm(_SvmBaseline):
    """LBP-TOP (uniform LBP on XY, XT, YT) + SVM, per clip or per block of frames."""

    kind = "LBP-TOP"

    def __init__(self, c: float = 1.0, block_frames: int | None = None) -> None:
        super().__init__(c)
        if block_frames is not None and block_frames < MIN_TOP_FRAMES:
            raise BaselineError(f"block_frames must be >= {MIN_TOP_FRAMES}, got {block_frames}")
        # None = one descriptor for the whole clip (the paper); a number = one per block
        # of that many consecutive frames (a trailing partial block is dropped).
        self.block_frames = block_frames

    def params(self) -> dict[str, Any]:
        return {**super().params(), "block_frames": self.block_frames}

    def clip_features(self, clip: np.ndarray) -> np.ndarray:
        grey = to_grey_clip(clip)
        if self.block_frames is None or len(grey) < self.block_frames:
            blocks = [grey]
        else:
            n = len(grey) // self.block_frames
            blocks = [grey[i * self.block_frames : (i + 1) * self.block_frames] for i in range(n)]
        return np.stack([lbp_top_histogram(block) for block in blocks])  # [blocks, 177]


BASELINES: dict[str, type[_SvmBaseline]] = {LbpSvm.kind: LbpSvm, LbpTopSvm.kind: LbpTopSvm}


def load_baseline(path: Path) -> LbpSvm | LbpTopSvm:
    """Load a model written by ``save``, whichever baseline it is."""
    path = Path(path)
    if not path.is_file():
        raise BaselineError(f"{path}: no such baseline model file")
    try:
        payload = joblib.load(path)
    except Exception as exc:  # joblib raises many kinds on foreign or truncated files
        raise BaselineError(f"{path}: not a readable baseline model ({exc!r})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise BaselineError(f"{path}: not a baseline model file")
    if payload.get("format_version") != FORMAT_VERSION:
        raise BaselineError(f"{path}: baseline format {payload.get('format_version')} unsupported")
    kind = payload.get("kind")
    if kind not in BASELINES:
        raise BaselineError(f"{path}: unknown baseline kind {kind!r}")
    model = BASELINES[kind](**payload["params"])
    model.pipeline = payload["pipeline"]
    return model
