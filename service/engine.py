"""The inference engine: one loaded model shared by every stream and upload.

``LivenessEngine`` owns the model, two thread pools for CPU work (decoding, face crop,
magnification, the temporal head): one for streams (``cpu_workers``) and one for uploads
(``upload_workers``, a ``FairPool``: the upload that has used the least pool time goes
first), so no upload, however costly, delays a stream's frames or its ``ready``, and a
short upload is not held up by costly ones; the encoder micro-batcher and a pool of face
detectors. ``ScoringSession`` is one stream or one upload: the runtime's
``StreamScorer`` (per-stream tracker, magnifier and feature window) split into
``prepare`` (in the thread pool), a batched encoder call shared with other sessions,
and ``complete`` (in the thread pool). Nothing here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np

from model.config import WindowConfig, replace
from model.face import FaceDetector, make_detector
from model.manifest import DEFAULT_MODEL_DIR, ManifestError, read_manifest
from model.preprocess import PreparedFrame
from model.runtime import (
    ClipResult,
    FrameResult,
    LivenessModel,
    StreamScorer,
    TooFewFramesError,
    WindowScore,
)
from service.batching import FrameEncoder, MicroBatcher
from service.calibration import CalibrationError, read_calibration
from service.errors import OverCapacity, Unprocessable
from service.fair import FairPool, Share
from service.metrics import ServiceMetrics
from service.schemas import DetectorInfo, ModelInfo, ThresholdInfo
from service.settings import Settings

log = logging.getLogger("liveness.service")
R = TypeVar("R")


class ModelLoadError(RuntimeError):
    """The configured model directory cannot be served."""


def configure_opencv() -> None:
    """One OpenCV thread (it fights ONNX Runtime for the cores and gains nothing on small
    crops); FFmpeg and OpenCV warnings about bad client input kept off stderr."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    cv2.setNumThreads(1)
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def check_model_dir(path: Path) -> None:
    """Raise ModelLoadError, saying what to do, unless ``path`` is a usable model directory."""
    if not path.is_dir():
        hint = (
            "the embedded default model is not installed in this copy; "
            if path == DEFAULT_MODEL_DIR
            else ""
        )
        raise ModelLoadError(
            f"model directory {path} does not exist: {hint}pass --model-dir or set "
            "LIVENESS_MODEL_DIR to a directory made by `liveness export`"
        )
    try:
        read_manifest(path)
    except ManifestError as exc:
        raise ModelLoadError(f"cannot load the model in {path}: {exc}") from exc


def settings_threshold(settings: Settings) -> float | None:
    """The threshold the settings ask for: LIVENESS_THRESHOLD, else the calibration file's
    (checked against the model; ModelLoadError saying what to do), else None (the
    manifest's)."""
    if settings.threshold is not None or settings.calibration is None:
        return settings.threshold
    manifest = read_manifest(settings.model_dir, verify_files=False)
    try:
        return read_calibration(settings.calibration, manifest)
    except CalibrationError as exc:
        raise ModelLoadError(str(exc)) from exc


def load_model(settings: Settings) -> LivenessModel:
    """Load the model directory named by the settings, with a message that says what to do."""
    check_model_dir(settings.model_dir)
    threshold = settings_threshold(settings)
    if settings.threshold is None and threshold is not None:
        log.info("threshold %.4f from the calibration file %s", threshold, settings.calibration)
    try:
        return LivenessModel(
            settings.model_dir,
            providers=settings.providers,
            threads=settings.threads,
            threshold=threshold,
        )
    except Exception as exc:  # provider or ONNX Runtime errors alike
        raise ModelLoadError(f"cannot load the model in {settings.model_dir}: {exc}") from exc


def make_encoder(settings: Settings, model: LivenessModel) -> FrameEncoder:
    """The frame encoder the ``encoder`` setting names (the ONNX session by default)."""
    if settings.encoder == "onnx":
        return model
    if settings.encoder == "torch":
        from model.torch_engine import TorchEncoder, TorchEncoderError, TorchUnavailableError

        try:
            encoder = TorchEncoder(
                model.model_dir,
                device=settings.torch_device,
                dtype=settings.torch_dtype,
                compile=settings.torch_compile,
                threads=settings.threads,
            )
            if settings.torch_compile:  # one graph per power-of-two batch size, before ready
                sizes, n = [], 1
                while n < settings.batch_max_size:
                    sizes.append(n)
                    n *= 2
                encoder.warmup((*sizes, n))
        except (TorchUnavailableError, TorchEncoderError) as exc:
            raise ModelLoadError(f"torch encoder engine: {exc}") from exc
        log.info("encoder engine: %s", encoder.describe())
        return encoder
    raise ModelLoadError(f"unknown encoder engine {settings.encoder!r}")


class DetectorPool:
    """Face detectors handed to one session at a time (they are not thread-safe, and
    loading one costs ~50 ms, so finished sessions give theirs back)."""

    def __init__(self, factory: Callable[[], FaceDetector], keep: int) -> None:
        self._factory = factory
        self._keep = keep
        self._free: list[FaceDetector] = []
        self._lock = threading.Lock()

    def acquire(self) -> FaceDetector:
        with self._lock:
            if self._free:
                return self._free.pop()
        return self._factory()

    def release(self, detector: FaceDetector) -> None:
        with self._lock:
            if len(self._free) < self._keep:
                self._free.append(detector)


@dataclass
class Timing:
    decode: float = 0.0  # seconds: container or image decoding
    preprocess: float = 0.0  # face crop, magnification, network input
    inference: float = 0.0  # encoder (incl. batching wait) and temporal head


@contextmanager
def timed(timing: Timing, stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        setattr(timing, stage, getattr(timing, stage) + time.perf_counter() - start)


@dataclass(frozen=True)
class Prepared:
    """A cropped and magnified frame, and its encoder input when the window samples it."""

    frame: PreparedFrame
    encoder_input: np.ndarray | None  # float32 [1, 3, S, S]

    @property
    def sampled(self) -> bool:
        return self.encoder_input is not None


class ScoringSession:
    """One stream or upload. ``prepare`` frames in order, then ``complete`` them in order."""

    def __init__(
        self, engine: LivenessEngine, fps: float, source: str, share: Share | None = None
    ) -> None:
        self.engine = engine
        self.source = source  # "upload" or "stream" (metrics label)
        if share is not None:  # an upload: its CPU work goes to the uploads' pool
            self._run: Callable[..., Any] = functools.partial(engine.run_upload, share)
        else:
            self._run = engine.run_cpu
        self.fps = fps
        self._detector: FaceDetector | None = engine.detectors.acquire()
        try:
            self.scorer = StreamScorer(
                engine.model, fps, detector=self._detector, gates=engine.gates
            )
        except ValueError as exc:  # a rate too low for the magnifier's temporal pass band
            engine.detectors.release(self._detector)
            raise Unprocessable(
                f"cannot process {fps:g} frames per second: {exc}", code="frame_rate_too_low"
            ) from exc
        self.source_index: list[int] = []  # scorer frame index -> index in the video/stream
        self.timing = Timing()
        self.started = time.perf_counter()
        self.faces_seen = False
        # Held by whichever pool thread works on this session: a cancelled request's
        # thread may still run, and the detector must not go back to the pool under it.
        self._busy = threading.Lock()

    def prepare(self, frame: np.ndarray, t: float, source_index: int) -> Prepared:
        """Crop and magnify one frame (blocking: run it in the engine's thread pool)."""
        with self._busy, timed(self.timing, "preprocess"):
            self.source_index.append(source_index)
            prepared = self.scorer.prepare(frame, t)
            self.faces_seen = self.faces_seen or prepared.box is not None
            return Prepared(prepared, self.scorer.encoder_input(prepared))

    async def complete(self, items: list[Prepared]) -> list[FrameResult]:
        """Encode the sampled crops of ``items`` in one batched call, then update the windows."""
        start = time.perf_counter()
        xs = [p.encoder_input for p in items if p.encoder_input is not None]
        features = await self.engine.batcher.encode(np.concatenate(xs)) if xs else None
        results = await self._run(self._complete, items, features)
        self.timing.inference += time.perf_counter() - start
        self.engine.metrics.frames.labels(self.source).inc(len(items))
        return results

    def complete_unbatched(self, items: list[Prepared]) -> list[FrameResult]:
        """``complete`` without the micro-batcher (blocking): the sampled crops in one call
        of the engine's encoder, then the windows. For tools that score clips one at a
        time through the server's path (liveness calibrate)."""
        xs = [p.encoder_input for p in items if p.encoder_input is not None]
        features = self.engine.encoder.encode(np.concatenate(xs)) if xs else None
        return self._complete(items, features)

    def _complete(self, items: list[Prepared], features: np.ndarray | None) -> list[FrameResult]:
        rows = iter(features if features is not None else ())
        with self._busy:
            return [self.scorer.complete(p.frame, next(rows) if p.sampled else None) for p in items]

    def finish(self) -> ClipResult:
        """The clip result (blocking). Raises Unprocessable ``no_face``/``too_few_frames``."""
        with self._busy, timed(self.timing, "inference"):
            try:
                return self.scorer.finish()
            except TooFewFramesError as exc:
                if not self.faces_seen:
                    raise Unprocessable(
                        "no face found in any frame (a frontal face must be visible)",
                        code="no_face",
                    ) from exc
                raise Unprocessable(str(exc), code="too_few_frames") from exc

    @property
    def window(self) -> WindowConfig:
        return self.scorer.window

    @property
    def latest_window(self) -> WindowScore | None:
        """The newest window of the face the last completed frame shows (None: no face, or
        its track's first window is not full yet)."""
        return self.scorer.latest_window

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def close(self) -> None:
        """Give the detector back (blocking until no pool thread works on the session)."""
        with self._busy:
            if self._detector is not None:
                self.engine.detectors.release(self._detector)
                self._detector = None


class LivenessEngine:
    def __init__(
        self,
        model: LivenessModel,
        settings: Settings,
        metrics: ServiceMetrics,
        encoder: FrameEncoder | None = None,
    ) -> None:
        self.model = model
        self.settings = settings
        self.metrics = metrics
        self.gates = settings.gate_config()
        self.encoder = encoder or make_encoder(settings, model)
        self.batcher = MicroBatcher(
            self.encoder.encode,
            max_batch=settings.batch_max_size,
            max_wait_ms=settings.batch_max_wait_ms,
            on_batch=metrics.batch_size.observe,
            callers=lambda: self.active_streams + self.active_uploads,
        )
        crop = model.preprocess.crop
        self.trained_detector = crop.detector
        if settings.detector_override and settings.detector_override != crop.detector:
            crop = replace(crop, detector=settings.detector_override)
            log.warning(
                "face detector override: serving %s, trained with the %s detector, with the %s "
                "detector; its crops differ from the training crops, so scores may shift",
                model.manifest.name,
                self.trained_detector,
                crop.detector,
            )
        self.detector = crop.detector
        self.detectors = DetectorPool(
            functools.partial(make_detector, crop, settings.yunet_model),
            keep=settings.max_streams + settings.max_uploads,
        )
        self._cpu: ThreadPoolExecutor | None = None
        self._upload_cpu: FairPool | None = None
        self.active_streams = 0
        self.active_uploads = 0

    async def start(self) -> None:
        """Check the detector, start the workers and warm the encoder up once."""
        try:
            self.detectors.release(self.detectors.acquire())
        except (ValueError, OSError) as exc:
            raise ModelLoadError(f"face detector: {exc}") from exc
        self._cpu = ThreadPoolExecutor(self.settings.cpu_workers, thread_name_prefix="liveness-cpu")
        self._upload_cpu = FairPool(self.upload_workers, "liveness-upload")
        await self.batcher.start()
        size = self.model.input_size
        await self.batcher.encode(np.zeros((1, 3, size, size), np.float32))

    async def stop(self) -> None:
        await self.batcher.stop()
        if self._cpu is not None:
            self._cpu.shutdown(wait=True, cancel_futures=True)
        if self._upload_cpu is not None:
            self._upload_cpu.shutdown()
        self._cpu = self._upload_cpu = None

    @property
    def upload_workers(self) -> int:
        return self.settings.upload_workers or max(1, self.settings.cpu_workers // 2)

    async def run_cpu(self, fn: Callable[..., R], *args: Any) -> R:
        """Run blocking CPU work of a stream in the streams' thread pool."""
        return await asyncio.get_running_loop().run_in_executor(self._cpu, fn, *args)

    async def run_upload(self, share: Share, fn: Callable[..., R], *args: Any) -> R:
        """Run blocking CPU work of an upload (``share``) in the uploads' fair pool."""
        assert self._upload_cpu is not None, "the engine is not started"
        return await asyncio.wrap_future(self._upload_cpu.submit(share, fn, *args))

    async def open_session(
        self, fps: float, source: str, share: Share | None = None
    ) -> ScoringSession:
        # A new detector may be loaded here (~50 ms): not on the event loop.
        if share is not None:
            return await self.run_upload(share, ScoringSession, self, fps, source, share)
        return await self.run_cpu(ScoringSession, self, fps, source)

    @property
    def window(self) -> WindowConfig:
        return self.model.window

    @property
    def threshold(self) -> float:
        return self.model.threshold

    def label(self, score: float) -> str:
        return self.model.label(score)

    def describe_model(self) -> ModelInfo:
        return ModelInfo(**self.model.describe())

    def describe_threshold(self) -> ThresholdInfo:
        manifest = self.model.manifest.threshold
        return ThresholdInfo(
            value=self.threshold, manifest=manifest, override=self.threshold != manifest
        )

    def describe_detector(self) -> DetectorInfo:
        return DetectorInfo(
            name=self.detector,
            trained_with=self.trained_detector,
            override=self.detector != self.trained_detector,
        )

    @contextmanager
    def upload_slot(self) -> Iterator[None]:
        if self.active_uploads >= self.settings.max_uploads:
            raise OverCapacity(
                f"the server is processing {self.active_uploads} uploads, its limit; retry shortly"
            )
        self.active_uploads += 1
        try:
            yield
        finally:
            self.active_uploads -= 1

    @contextmanager
    def stream_slot(self) -> Iterator[None]:
        if self.active_streams >= self.settings.max_streams:
            raise OverCapacity(
                f"{self.active_streams} streams are open, the server's limit; retry later"
            )
        self.active_streams += 1
        self.metrics.active_streams.inc()
        try:
            yield
        finally:
            self.active_streams -= 1
            self.metrics.active_streams.dec()
