"""Server settings: one pydantic-settings class, read from ``LIVENESS_*`` environment variables.

Every field is documented (``description=``); ``liveness serve --help`` and the README
list the same names. Command-line flags of ``liveness serve`` override the environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from model.manifest import DEFAULT_MODEL_DIR

MiB = 1024 * 1024


def _default_cpu_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


class Settings(BaseSettings):
    """Everything the server can be told; env var = ``LIVENESS_`` + the field name."""

    model_config = SettingsConfigDict(env_prefix="LIVENESS_", extra="ignore", frozen=True)

    # -- where and what to serve ------------------------------------------------------
    host: str = Field("127.0.0.1", description="Address `liveness serve` listens on.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port `liveness serve` listens on.")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        "info", description="uvicorn log level."
    )
    model_dir: Path = Field(
        DEFAULT_MODEL_DIR,
        description="Model directory (encoder.onnx, head.onnx, manifest.json) loaded at start-up.",
    )
    encoder: Literal["onnx"] = Field(
        "onnx",
        description="Engine that runs the frame encoder: 'onnx' (ONNX Runtime with `providers`).",
    )
    providers: Literal["auto", "cpu", "cuda"] = Field(
        "auto",
        description="ONNX Runtime execution providers: 'cuda' requires onnxruntime-gpu, "
        "'auto' uses CUDA when present, else the CPU.",
    )
    threads: int | None = Field(
        None, ge=1, description="ONNX Runtime intra-op threads per session (default: all cores)."
    )
    yunet_model: Path | None = Field(
        None,
        description="YuNet face detector ONNX file; required when the model's manifest asks for "
        "the 'yunet' detector, refused when it asks for 'haar'.",
    )
    cpu_workers: int = Field(
        default_factory=_default_cpu_workers,
        ge=1,
        description="Threads for decoding, face cropping, magnification and the temporal head.",
    )

    # -- request limits -----------------------------------------------------------------
    max_upload_bytes: int = Field(
        20 * MiB, ge=1, description="Largest accepted upload body, bytes (larger: 413)."
    )
    max_clip_seconds: float = Field(
        60.0, gt=0, description="Longest accepted clip, seconds of video (longer: 422)."
    )
    max_frames: int = Field(
        1800,
        ge=1,
        description="Default and cap of the `max_frames` query parameter: frames decoded "
        "from an upload; the rest of the clip is not analysed.",
    )
    max_side: int = Field(
        1280, ge=64, description="Frames whose longer side exceeds this are downscaled to it, px."
    )
    max_uploads: int = Field(
        8, ge=1, description="Uploads processed at once; more are answered 503 over_capacity."
    )
    upload_chunk_frames: int = Field(
        64,
        ge=1,
        description="Sampled face crops of an upload sent to the encoder together "
        "(bounds an upload's memory; each chunk is one encoder submission).",
    )

    # -- streams --------------------------------------------------------------------------
    max_streams: int = Field(
        16, ge=1, description="Concurrent WebSocket streams; more are closed with 1013."
    )
    max_stream_fps: float = Field(
        30.0,
        gt=0,
        description="Frames per second one stream may send; frames above the rate are dropped "
        "and counted (bursts of half a second are allowed).",
    )
    stream_default_fps: float = Field(
        30.0, gt=0, le=240, description="Frame rate assumed when a stream sends no start message."
    )
    stream_idle_seconds: float = Field(
        15.0, gt=0, description="A stream with no message for this long is closed (1008)."
    )
    stream_max_seconds: float = Field(
        300.0, gt=0, description="A stream open longer than this is closed (1008)."
    )
    stream_max_bad_frames: int = Field(
        5,
        ge=1,
        description="Consecutive undecodable frames after which a stream is closed (1003); "
        "fewer get an error message each and the stream goes on.",
    )
    max_message_bytes: int = Field(
        4 * MiB, ge=1024, description="Largest WebSocket message, bytes (larger: close 1009)."
    )

    # -- encoder micro-batching -------------------------------------------------------------
    batch_max_size: int = Field(
        16, ge=1, description="Most face crops in one encoder call (streams and uploads merged)."
    )
    batch_max_wait_ms: float = Field(
        2.0,
        ge=0,
        description="How long the first queued crop waits for others before the encoder runs, "
        "ms; a full batch runs at once.",
    )
