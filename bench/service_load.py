"""The service in-process under N synthetic streams: the server's engine without HTTP.

``LivenessEngine`` (thread pool, micro-batcher, per-stream ``ScoringSession``) runs with
any encoder object; N streams push already-decoded frames in a closed loop (prepare in
the pool, then the batched encoder and the window update), as the WebSocket handler
does after decoding a JPEG.
"""

from __future__ import annotations

import asyncio
import os
import time

import numpy as np

from bench.common import opencv_threads

STREAM_FPS = 15.0  # declared by every stream: the window rate, so each frame is encoded


class ZeroEncoder:
    """Features of zeros at once: the service's rate when the encoder costs nothing."""

    def __init__(self, feature_dim: int) -> None:
        self.feature_dim = feature_dim

    def encode(self, frames: np.ndarray) -> np.ndarray:
        return np.zeros((len(frames), self.feature_dim), np.float32)


async def drive_service(
    model_dir, encoder, streams: int, frames: list[np.ndarray], seconds: float
) -> tuple[float, float]:
    """(frames/s over ``seconds`` after a warm-up, mean encoder batch) with ``streams`` streams."""
    from model.runtime import LivenessModel
    from service.engine import LivenessEngine
    from service.metrics import ServiceMetrics
    from service.settings import Settings

    settings = Settings(model_dir=model_dir, cpu_workers=os.cpu_count() or 1, max_streams=streams,
                        batch_max_size=max(16, streams), batch_max_wait_ms=2.0)  # fmt: skip
    model = LivenessModel(model_dir, providers="cpu")  # the head stays on ONNX Runtime
    metrics = ServiceMetrics()
    engine = LivenessEngine(model, settings, metrics, encoder=encoder)
    with opencv_threads(1):  # as the server's start-up sets it
        return await _drive(engine, metrics, streams, frames, seconds)


async def _drive(
    engine, metrics, streams: int, frames: list[np.ndarray], seconds: float
) -> tuple[float, float]:
    await engine.start()
    sessions = [await engine.open_session(STREAM_FPS, "stream") for _ in range(streams)]
    counted = [0]
    warm_until = time.perf_counter() + min(2.0, seconds / 2)
    stop_at = warm_until + seconds

    async def drive(session, offset: int) -> None:
        i = 0
        while (now := time.perf_counter()) < stop_at:
            frame = frames[(offset + i) % len(frames)]
            prepared = await engine.run_cpu(session.prepare, frame, i / STREAM_FPS, i)
            await session.complete([prepared])
            counted[0] += now >= warm_until
            i += 1

    try:
        await asyncio.gather(*(drive(s, k) for k, s in enumerate(sessions)))
    finally:
        for s in sessions:
            await engine.run_cpu(s.close)
        await engine.stop()
    sample = metrics.registry.get_sample_value
    rows = sample("liveness_encoder_batch_size_sum")
    calls = sample("liveness_encoder_batch_size_count")
    return counted[0] / seconds, rows / calls if calls else 0.0
