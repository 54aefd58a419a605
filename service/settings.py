"""Server settings: one pydantic-settings class, read from ``LIVENESS_*`` environment variables.

Every field is documented (``description=``); ``liveness serve --help`` and the configuration
reference in docs/deployment.md list the same names. Command-line flags of ``liveness serve``
override the environment.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from model.config import DETECTORS, Provider
from model.gates import GateConfig, GateMode, InputPolicy
from model.manifest import DEFAULT_MODEL_DIR

MiB = 1024 * 1024
# Largest streamed frame, pixels (above 8K UHD, 33 Mpx): refused from its header before
# decoding (service/images.py), and OpenCV's own decoder limit (OPENCV_IO_MAX_IMAGE_PIXELS)
MAX_FRAME_PIXELS = 36_000_000
MIN_API_KEY_CHARS = 16  # a guessable key is a configuration error, refused at start-up
MIN_SIGNING_KEY_CHARS = 32  # HS256 wants a key of at least its 256-bit output
KEY_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
ORIGIN = re.compile(r"https?://(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:\d{1,5})?")
DetectorName = Literal[DETECTORS]
_GATES = GateConfig()  # the gates' defaults  # the face detectors model/detectors.py can make


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
    encoder: Literal["onnx", "torch"] = Field(
        "onnx",
        description="Engine that runs the frame encoder: 'onnx' (ONNX Runtime with `providers`) "
        "or 'torch' (the same exported weights through PyTorch, for CUDA GPUs; needs torch).",
    )
    torch_device: Literal["cuda", "cpu"] = Field(
        "cuda", description="Device of the 'torch' encoder engine."
    )
    torch_dtype: Literal["fp32", "bf16", "fp16"] = Field(
        "fp16",
        description="Precision of the 'torch' encoder engine's convolutions (features deviate "
        "~0.1-0.3 % from fp32 in fp16, ~1-2 % in bf16).",
    )
    torch_compile: bool = Field(
        False,
        description="torch.compile the 'torch' encoder (GPU: faster, minutes of autotuning at "
        "start-up, before /readyz turns ready).",
    )
    providers: Provider = Field(
        "auto",
        description="ONNX Runtime execution providers: 'cuda' requires onnxruntime-gpu, "
        "'auto' uses CUDA when present, else the CPU.",
    )
    threads: int | None = Field(
        None, ge=1, description="ONNX Runtime intra-op threads per session (default: all cores)."
    )
    yunet_model: Path | None = Field(
        None,
        description="YuNet face detector ONNX file; required when the detector in use (the "
        "manifest's, or detector_override) is 'yunet', refused otherwise.",
    )
    # -- face detector: the one the model was trained with, unless overridden ------------
    detector_override: DetectorName | None = Field(
        None,
        description="Serve the model with this face detector instead of the one its manifest "
        "names (the crops then differ from those it was trained on: logged as a warning at "
        "start-up and shown by /readyz). Unset: the manifest's detector.",
    )
    threshold: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Decision threshold (score >= threshold: genuine) in place of the one in "
        "the model's manifest; shown by /readyz. Set it from your own users' genuine clips "
        "and attacks (`liveness eval --dev`). Unset: the manifest's.",
    )
    calibration: Path | None = Field(
        None,
        description="A file written by `liveness calibrate` for this model: its threshold "
        "replaces the manifest's (threshold, when set, wins over it); shown by /readyz. A "
        "file made for another model is refused at start-up.",
    )
    cpu_workers: int = Field(
        default_factory=_default_cpu_workers,
        ge=1,
        description="Threads for decoding, face cropping, magnification and the temporal head.",
    )

    # -- capture-quality gates (model/quality.py, docs/quality.md) ------------------------
    gates: GateMode = Field(
        "enforce",
        description="Capture-quality gates: 'enforce' (a failing gate makes the result "
        "inconclusive, or static/looped input per gate_input_policy), 'observe' (reasons "
        "reported and counted in /metrics, the label stays the model's: a shadow period on a "
        "new site) or 'off'.",
    )
    gate_input_policy: InputPolicy = Field(
        "spoof",
        description="The label of static input (every frame the same) and looped input (the "
        "same frames over and over), which no live camera produces: 'spoof' or "
        "'inconclusive'. Either way never genuine.",
    )
    gate_min_face_px: float = Field(
        _GATES.min_face_px,
        ge=0,
        description="A face box side under this many frame pixels: face_too_small.",
    )
    gate_max_other_face: float = Field(
        _GATES.max_other_face,
        ge=0,
        description="Another face at least this fraction of the tracked face's side: "
        "multiple_faces.",
    )
    gate_min_brightness: float = Field(
        _GATES.min_brightness,
        ge=0,
        le=255,
        description="Mean grey level of the face under this: too_dark.",
    )
    gate_max_brightness: float = Field(
        _GATES.max_brightness,
        ge=0,
        le=255,
        description="Mean grey level of the face over this: too_bright.",
    )
    gate_min_contrast: float = Field(
        _GATES.min_contrast,
        ge=0,
        description="Grey-level standard deviation of the face under this: low_contrast.",
    )
    gate_min_sharpness: float = Field(
        _GATES.min_sharpness,
        ge=0,
        description="Variance of the Laplacian of the face (64 px grey patch) under this: blurred.",
    )
    gate_max_yaw: float = Field(
        _GATES.max_yaw,
        ge=0,
        description="Nose tip off the eyes' midpoint by more than this many eye distances: "
        "pose_out_of_range (needs a detector with keypoints: BlazeFace).",
    )
    gate_max_roll: float = Field(
        _GATES.max_roll,
        ge=0,
        le=180,
        description="Eye line tilted more than this, degrees: pose_out_of_range.",
    )
    gate_min_usable_share: float = Field(
        _GATES.min_usable_share,
        ge=0,
        le=1,
        description="Fewer than this share of frames without a frame reason: inconclusive, "
        "naming the reasons of at least gate_reason_min_share of the frames.",
    )
    gate_reason_min_share: float = Field(
        _GATES.reason_min_share,
        ge=0,
        le=1,
        description="Share of frames at which a frame reason is named.",
    )
    gate_static_floor: float = Field(
        _GATES.static_floor,
        ge=0,
        description="Mean absolute grey change of the face crop between two frames at or "
        "below which the pair did not change (static_input).",
    )
    gate_static_quantile: float = Field(
        _GATES.static_quantile,
        ge=0,
        le=1,
        description="static_input when this share of frame pairs did not change.",
    )
    gate_loop_min_share: float = Field(
        _GATES.loop_min_share,
        ge=0,
        le=1,
        description="looped_input when this share of the changing frames repeat an earlier "
        "change exactly.",
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

    # -- upload budgets: pixels, time, CPU (docs/security.md) ------------------------------
    max_frame_pixels: int = Field(
        4096 * 4096,
        ge=64 * 64,
        description="Largest frame of an upload, pixels (width x height), read from the "
        "container header before decoding and enforced by the decoder itself; larger: 413 "
        "frame_too_large.",
    )
    max_video_pixels: int = Field(
        4_000_000_000,
        ge=64 * 64,
        description="Most pixels decoded from one upload (width x height x frames, counting at "
        "most max_frames frames), checked on the header before decoding and counted while "
        "decoding; more: 413 pixel_budget_exceeded.",
    )
    upload_processing_seconds: float = Field(
        120.0,
        gt=0,
        description="Longest an upload's decoding and scoring may take once its body is in, "
        "seconds; longer: 422 processing_timeout.",
    )
    upload_idle_seconds: float = Field(
        10.0,
        gt=0,
        description="An upload body that sends nothing for this long is answered 408 "
        "upload_timeout (its slot freed); also the grace before upload_min_bytes_per_second "
        "applies.",
    )
    upload_min_bytes_per_second: float = Field(
        8192.0,
        ge=0,
        description="Average rate an upload body must keep up once upload_idle_seconds have "
        "passed, bytes per second; slower: 408 upload_timeout. 0: no rate limit.",
    )
    upload_workers: int | None = Field(
        None,
        ge=1,
        description="Threads that decode and prepare uploads, apart from the cpu_workers of "
        "the streams, so uploads never delay a stream. Uploads take them in turns of about "
        "50 ms, the upload that has used the least time first (default: half of cpu_workers, "
        "at least 1).",
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

    # -- access: API keys, tokens, per-key limits (docs/security.md) -------------------------
    api_keys: Annotated[dict[str, SecretStr], NoDecode] = Field(
        default_factory=dict,
        description='API keys by client name: JSON {"name": "key"} or name:key,name2:key2 '
        f"(keys of at least {MIN_API_KEY_CHARS} characters). Empty: open mode, no key needed.",
    )
    revoked_keys: Annotated[frozenset[str], NoDecode] = Field(
        default_factory=frozenset,
        description="Names of api_keys that are refused with 403 (comma-separated or a JSON list).",
    )
    signing_key: SecretStr | None = Field(
        None,
        description="HMAC-SHA256 key signing every result's verdict_token (at least "
        f"{MIN_SIGNING_KEY_CHARS} characters); unset: results carry no verdict_token.",
    )
    verdict_token_seconds: float = Field(
        300.0, gt=0, le=86400, description="Lifetime of a verdict_token, seconds."
    )
    access_token_seconds: float = Field(
        120.0, gt=0, le=900, description="Lifetime of a token from POST /v1/token, seconds."
    )
    key_requests_per_minute: float = Field(
        120.0,
        ge=0,
        description="Requests (and stream openings) per minute per API key, refilled "
        "continuously; over it: 429 / close 1013. 0: no limit.",
    )
    key_burst: int = Field(20, ge=1, description="Requests one API key may make at once.")
    key_max_streams: int = Field(
        4, ge=1, description="Concurrent WebSocket streams per API key; more are closed with 1013."
    )
    stream_send_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="A stream whose client reads nothing for this long while the server "
        "sends is aborted (its slot freed).",
    )

    # -- connections: HTTP header limits, WebSocket control frames and origins, failed
    # credentials, who may read the docs and metrics (docs/security.md) ---------------------
    header_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="A connection must send its whole request header within this many seconds "
        "of connecting (kept alive: of the request's first byte); else 408 and closed.",
    )
    max_header_bytes: int = Field(
        64 * 1024,
        ge=1024,
        le=MiB,
        description="Largest request line plus headers, bytes; larger: 431 and the connection "
        "closed.",
    )
    ws_max_control_frames_per_second: float = Field(
        5.0,
        gt=0,
        description="Ping and pong frames one WebSocket client may send per second (bursts of "
        "two seconds' worth); more: close 1008. Pings never reset the idle timer.",
    )
    stream_origins: Annotated[frozenset[str], NoDecode] = Field(
        default_factory=frozenset,
        description="Web origins (scheme://host[:port], comma-separated) whose pages may open "
        "WS /v1/stream; empty: only the server's own origin (the request's Host); '*': any. "
        "Clients that send no Origin header (not browsers) are not checked.",
    )
    auth_max_failures: int = Field(
        10,
        ge=0,
        description="Failed credentials (wrong key or token) one client address may present "
        "per auth_failure_window_seconds before its requests get 429 too_many_failures. "
        "0: no limit.",
    )
    auth_failure_window_seconds: float = Field(
        60.0,
        gt=0,
        description="The window of auth_max_failures; the allowance refills continuously.",
    )
    docs_access: Literal["open", "key", "off"] = Field(
        "open",
        description="With API keys: /docs, /redoc and /openapi.json are 'open' to anyone, need "
        "a 'key' (header), or are 'off' (404). Without keys they are open unless 'off'.",
    )
    metrics_access: Literal["open", "key", "off"] = Field(
        "open",
        description="With API keys: GET /metrics is 'open' to anyone, needs a 'key', or is "
        "'off' (404). Without keys it is open unless 'off'.",
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_api_keys(cls, value: object) -> object:
        # messages never quote a key: they reach logs and terminals
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("{"):
                try:
                    value = json.loads(text)
                except json.JSONDecodeError:
                    raise ValueError(
                        'api_keys: not valid JSON (expected {"name": "key"})'
                    ) from None
            else:
                value = dict(_name_key_pair(item) for item in text.split(",") if item.strip())
        if not isinstance(value, dict):
            raise ValueError("api_keys: expected a mapping of client names to keys")
        for name, key in value.items():
            secret = key.get_secret_value() if isinstance(key, SecretStr) else key
            if not isinstance(name, str) or not KEY_NAME.fullmatch(name):
                raise ValueError(
                    f"api_keys: bad client name {str(name)[:64]!r} (letters, digits, _.@-)"
                )
            if (
                not isinstance(secret, str)
                or len(secret) < MIN_API_KEY_CHARS
                or secret != secret.strip()
            ):
                raise ValueError(
                    f"api_keys: the key of {name!r} must be a string of at least "
                    f"{MIN_API_KEY_CHARS} characters without surrounding spaces"
                )
        secrets = [k.get_secret_value() if isinstance(k, SecretStr) else k for k in value.values()]
        if len(set(secrets)) != len(secrets):
            raise ValueError("api_keys: two clients share one key")
        return value

    @field_validator("revoked_keys", mode="before")
    @classmethod
    def _parse_revoked(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else text.split(",")
        if isinstance(value, (list, tuple, set, frozenset)):
            if not all(isinstance(v, str) for v in value):
                raise ValueError("revoked_keys: expected client names")
            return frozenset(v.strip() for v in value if v.strip())
        return value

    @field_validator("stream_origins", mode="before")
    @classmethod
    def _parse_origins(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, (list, tuple, set, frozenset)):
            origins = frozenset(str(v).strip().rstrip("/").lower() for v in value if str(v).strip())
            for origin in origins - {"*", "null"}:
                if not ORIGIN.fullmatch(origin):
                    raise ValueError(
                        f"stream_origins: {origin[:80]!r} is not an origin "
                        "(scheme://host[:port], e.g. https://app.example.com)"
                    )
            return origins
        return value

    @field_validator("signing_key")
    @classmethod
    def _check_signing_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SIGNING_KEY_CHARS:
            raise ValueError(f"signing_key: at least {MIN_SIGNING_KEY_CHARS} characters")
        return value

    def gate_config(self) -> GateConfig:
        """The gates' settings as model/gates.py takes them: every ``gate_<name>`` field is
        GateConfig's ``<name>`` (the fields a deployment sets; the others keep their
        defaults)."""
        return GateConfig(
            mode=self.gates,
            input_policy=self.gate_input_policy,
            **{
                name.removeprefix("gate_"): getattr(self, name)
                for name in type(self).model_fields
                if name.startswith("gate_") and name != "gate_input_policy"
            },
        )

    @model_validator(mode="after")
    def _gates_are_consistent(self) -> Settings:
        try:
            self.gate_config()
        except ValueError as exc:
            raise ValueError(str(exc).replace("gate setting ", "gate_")) from None
        return self

    @model_validator(mode="after")
    def _revoked_are_known(self) -> Settings:
        unknown = sorted(self.revoked_keys - set(self.api_keys))
        if unknown:
            raise ValueError(f"revoked_keys names keys that api_keys does not have: {unknown}")
        return self


def _name_key_pair(item: str) -> tuple[str, str]:
    name, sep, key = item.strip().partition(":")
    if not sep:
        raise ValueError("api_keys: expected name:key pairs separated by commas")
    return name.strip(), key.strip()
