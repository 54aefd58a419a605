"""Loading a model directory in ONNX Runtime, and the one scoring path everyone uses.

``LivenessModel`` holds the two ONNX sessions (encoder, head) and the manifest.
``StreamScorer`` is the per-stream scorer: frames go in one at a time (crop ->
magnify -> encode once -> cache the feature -> head over the sliding window).
``score_clip`` is literally that loop over a clip's frames, so a clip and the same
frames streamed give the same scores.

Which windows make the clip score is model/windows.py's rule.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model.config import (
    PROVIDER_CHOICES,
    PreprocessConfig,
    Provider,
    WindowConfig,
    reads_motion,
)
from model.face import FaceDetector
from model.gates import GateConfig, QualityVerdict, outcome
from model.labels import decide
from model.manifest import ENCODER_NAME, HEAD_NAME, Manifest, read_manifest
from model.preprocess import PreparedFrame, Preprocessor, to_network_input
from model.quality import FrameQuality, assess
from model.windows import clip_windows, tile_ends


class TooFewFramesError(ValueError):
    """The stream ended without enough encoded face frames for one window."""


def resolve_providers(choice: Provider = "auto") -> list[str]:
    """Map a provider setting to onnxruntime execution providers, CUDA first when asked."""
    import onnxruntime as ort

    if choice not in PROVIDER_CHOICES:
        raise ValueError(f"providers must be one of {PROVIDER_CHOICES}, got {choice!r}")
    available = ort.get_available_providers()
    has_cuda = "CUDAExecutionProvider" in available
    if choice == "cuda" and not has_cuda:
        raise RuntimeError(
            "providers='cuda' but this onnxruntime has no CUDAExecutionProvider "
            f"(available: {available}); install onnxruntime-gpu or use 'cpu'/'auto'"
        )
    if choice in ("cuda", "auto") and has_cuda:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _session_options(threads: int | None):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = int(threads or os.cpu_count() or 1)
    so.inter_op_num_threads = 1
    # Spin-waiting after each run steals the core from decoding and magnification.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    return so


class LivenessModel:
    """A model directory loaded in ONNX Runtime: ``encode`` frames, run the ``head``."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        providers: Provider = "auto",
        threads: int | None = None,
        threshold: float | None = None,
    ) -> None:
        import onnxruntime as ort

        self.model_dir = Path(model_dir)
        self.manifest: Manifest = read_manifest(self.model_dir)
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold {threshold} is outside [0, 1]")
        # a deployment's own operating point in place of the manifest's (None: the manifest's)
        self.threshold_override = threshold
        self.providers = resolve_providers(providers)
        so = _session_options(threads)
        self._encoder = ort.InferenceSession(
            str(self.model_dir / ENCODER_NAME), so, providers=self.providers
        )
        self._head = ort.InferenceSession(
            str(self.model_dir / HEAD_NAME), so, providers=self.providers
        )
        # ONNX Runtime falls back to the CPU silently when the CUDA provider fails to load
        # (missing CUDA/cuDNN libraries): asking for CUDA must not end up on the CPU.
        active = self._encoder.get_providers()
        if providers == "cuda" and "CUDAExecutionProvider" not in active:
            raise RuntimeError(
                "providers='cuda' but the CUDA execution provider did not load (check the "
                f"CUDA and cuDNN libraries onnxruntime-gpu needs); active providers: {active}"
            )
        self.providers = active

    @property
    def preprocess(self) -> PreprocessConfig:
        return self.manifest.preprocess

    @property
    def threshold(self) -> float:
        """The decision threshold: the override given at load, else the manifest's."""
        if self.threshold_override is not None:
            return self.threshold_override
        return self.manifest.threshold

    @property
    def window(self) -> WindowConfig:
        """The head's window: T encoded frames, the sampling rate, the shortest scored."""
        return self.manifest.preprocess.window

    @property
    def input_size(self) -> int:
        """Side of the encoder's square input, pixels."""
        return self.manifest.network.input_size

    def label(self, score: float) -> str:
        """The decision for a probability of genuine: genuine at or above the threshold."""
        return decide(score, self.threshold)

    def encode(self, frames: np.ndarray) -> np.ndarray:
        """frames float32 [N, 3, S, S] (``to_network_input``) -> features [N, F]."""
        (features,) = self._encoder.run(["features"], {"frames": frames})
        return features

    def head(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """features [B, T, F] -> (prob_genuine [B], attention [B, T])."""
        prob, attention = self._head.run(
            ["prob_genuine", "attention"], {"features": features.astype(np.float32, copy=False)}
        )
        return prob, attention

    def describe(self) -> dict[str, str]:
        m = self.manifest
        return {
            "name": m.name,
            "backbone": m.network.backbone,
            "version": m.version,
            "hash": m.model_hash,
        }


@dataclass
class WindowScore:
    start: int  # index of the window's first frame in the stream
    end: int  # index of its last frame
    score: float  # probability of genuine
    frames: list[int]  # stream indices of the encoded frames in the window
    attention: list[float]  # one weight per encoded frame, summing to 1


@dataclass
class FrameResult:
    index: int
    t: float
    box: list[float] | None
    faces: int
    encoded: bool  # the frame entered the encoder
    window: WindowScore | None = None  # sliding window ending at this frame, once full
    quality: FrameQuality | None = None  # the capture-quality gates' measures

    @property
    def score(self) -> float | None:
        return None if self.window is None else self.window.score


@dataclass
class ClipResult:
    score: float  # mean of the clip windows' scores
    label: str  # the outcome: the model's label, or the gates' (model/quality.py)
    threshold: float
    windows: list[WindowScore]
    frames: list[FrameResult] = field(default_factory=list)
    attention: dict[int, float] = field(default_factory=dict)  # frame index -> weight
    model_label: str = ""  # score vs threshold alone
    quality: QualityVerdict = field(default_factory=lambda: QualityVerdict([]))

    @property
    def n_encoded(self) -> int:
        return sum(1 for f in self.frames if f.encoded)


class StreamScorer:
    """Scores one stream frame by frame. Not thread-safe: one stream, frames in order.

    ``push`` does everything; the server splits it into ``prepare`` (crop + magnify),
    a batched encoder call shared across streams, and ``complete``.
    """

    def __init__(
        self,
        model: LivenessModel,
        fps: float,
        *,
        detector: FaceDetector | None = None,
        encode: Callable[[np.ndarray], np.ndarray] | None = None,
        keep_frames: bool = True,
        gates: GateConfig | None = None,
    ) -> None:
        self.model = model
        self.qualities: list[FrameQuality] = []  # every frame's gate measures, by index
        self.frame_reasons: list[list[str]] = []  # ...and the frame reasons they fail
        self.window = model.window
        self.gates = gates or GateConfig()
        self.pre = Preprocessor(
            model.manifest.preprocess,
            fps,
            detector=detector,
            loop_period=self.gates.loop_max_period,
            motion=reads_motion(model.manifest.network),
        )
        self._encode = encode or model.encode
        self.keep_frames = keep_frames
        self.frames: list[FrameResult] = []
        self._segment: list[tuple[int, np.ndarray]] = []  # (frame index, feature) this segment
        self._tiles: list[WindowScore] = []  # clip windows of finished segments
        self._seg_windows: dict[int, WindowScore] = {}  # sliding windows of this segment, by end
        self._best_partial: list[tuple[int, np.ndarray]] = []
        self._latest: WindowScore | None = None  # newest window of the face being tracked
        self._lengths: list[int] = []  # encoded frames of each finished segment

    # -- the three steps ---------------------------------------------------------------
    def prepare(self, frame: np.ndarray, t: float | None = None) -> PreparedFrame:
        return self.pre.process(frame, t)

    def encoder_input(self, prepared: PreparedFrame) -> np.ndarray | None:
        if prepared.crop is None:
            return None
        return to_network_input(prepared.crop, self.model.manifest.network)

    def complete(self, prepared: PreparedFrame, feature: np.ndarray | None) -> FrameResult:
        if prepared.new_segment:
            self._close_segment()
        result = FrameResult(
            prepared.index,
            prepared.t,
            prepared.box,
            prepared.faces,
            False,
            quality=prepared.quality,
        )
        if prepared.quality is not None and self.gates.mode != "off":
            self.qualities.append(prepared.quality)
            self.frame_reasons.append(prepared.quality.reasons(self.gates))
        if prepared.box is None:  # no face: no window speaks for this frame
            self._latest = None
        if prepared.crop is not None:
            if feature is None:
                raise ValueError(f"frame {prepared.index} was sampled but got no feature")
            result.encoded = True
            feature = np.asarray(feature).reshape(-1)
            if prepared.motion is not None:  # the head reads the motion after the appearance
                feature = np.concatenate([feature, prepared.motion])
            self._segment.append((prepared.index, feature))
            if len(self._segment) >= self.window.length:
                result.window = self._score(self._segment[-self.window.length :])
                self._seg_windows[prepared.index] = result.window
                self._latest = result.window
        if self.keep_frames:
            self.frames.append(result)
        return result

    def assess(self, start: int = 0, end: int | None = None) -> QualityVerdict:
        """The gates' verdict on frames ``start``..``end`` (stream indices, inclusive) of
        the frames pushed so far (all of them by default)."""
        if self.gates.mode == "off":
            return QualityVerdict([])
        stop = len(self.qualities) if end is None else end + 1
        return assess(self.qualities[start:stop], self.gates, self.frame_reasons[start:stop])

    def window_label(self, window: WindowScore) -> tuple[str, QualityVerdict]:
        """A window's label, gated by the frames it spans, and the gates' verdict on them."""
        verdict = self.assess(window.start, window.end)
        return outcome(self.model.label(window.score), verdict, self.gates), verdict

    @property
    def latest_window(self) -> WindowScore | None:
        """The newest sliding window of the face track the last completed frame belongs to
        (frames between encoded ones share it); None while no face is tracked, and on a new
        track until its first window is full."""
        return self._latest

    def push(self, frame: np.ndarray, t: float | None = None) -> FrameResult:
        prepared = self.prepare(frame, t)
        x = self.encoder_input(prepared)
        feature = None if x is None else self._encode(x)[0]
        return self.complete(prepared, feature)

    # -- windows -------------------------------------------------------------------------
    def _score(self, items: list[tuple[int, np.ndarray]]) -> WindowScore:
        feats = np.stack([f for _, f in items])[None]  # [1, T, F]
        prob, attention = self.model.head(feats)
        idx = [i for i, _ in items]
        return WindowScore(idx[0], idx[-1], float(prob[0]), idx, attention[0].tolist())

    def _close_segment(self) -> None:
        seg, T = self._segment, self.window.length
        self._tiles.extend(self._seg_windows[seg[e][0]] for e in tile_ends(len(seg), T))
        if seg:
            self._lengths.append(len(seg))
        if len(seg) < T and len(seg) > len(self._best_partial):
            self._best_partial = list(seg)  # the first longest: the one shorter window
        self._segment, self._seg_windows, self._latest = [], {}, None

    def finish(self) -> ClipResult:
        """Close the stream and return the clip result (raises TooFewFramesError)."""
        self._close_segment()
        windows = list(self._tiles)
        if not windows and clip_windows(self._lengths, self.window):
            windows = [self._score(self._best_partial)]
        if not windows:
            n = sum(1 for f in self.frames if f.encoded) if self.keep_frames else None
            raise TooFewFramesError(
                f"too few face frames to score: a window needs at least "
                f"{self.window.min_length} encoded frames of one tracked face"
                + (f", got {n}" if n is not None else "")
            )
        score = float(np.mean([w.score for w in windows]))
        attention: dict[int, float] = {}
        for w in windows:
            for i, a in zip(w.frames, w.attention, strict=True):
                attention.setdefault(i, a)
        model_label = self.model.label(score)
        verdict = self.assess()
        return ClipResult(
            score=score,
            label=outcome(model_label, verdict, self.gates),
            threshold=self.model.threshold,
            windows=windows,
            frames=self.frames,
            attention=attention,
            model_label=model_label,
            quality=verdict,
        )


def score_clip(
    model: LivenessModel,
    frames: Iterable[tuple[np.ndarray, float]],
    fps: float,
    *,
    detector: FaceDetector | None = None,
    gates: GateConfig | None = None,
) -> ClipResult:
    """Score a clip: the streaming loop over its ``(frame, t)`` pairs, then ``finish``."""
    scorer = StreamScorer(model, fps, detector=detector, gates=gates)
    for frame, t in frames:
        scorer.push(frame, t)
    return scorer.finish()
