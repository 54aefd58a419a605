"""Response bodies as pydantic models, so /openapi.json documents them with examples."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from service.settings import DetectorName


class FrameReport(BaseModel):
    index: int = Field(description="Frame index in the video (or in the stream, as sent)")
    t: float = Field(description="Frame time, seconds")
    box: list[float] | None = Field(
        description="Tracked face box [x, y, w, h] in frame pixels; null when no face"
    )
    faces: int = Field(description="Faces seen by the last detector pass (-1 before the first)")
    encoded: bool = Field(description="The face crop of this frame entered the encoder")
    attention: float | None = Field(
        description="The frame's attention weight within its clip window; null if in none"
    )


class WindowReport(BaseModel):
    start: int = Field(description="Index of the window's first frame")
    end: int = Field(description="Index of its last frame")
    frames: list[int] = Field(description="Indices of the encoded frames in the window")
    score: float = Field(description="Probability of genuine for this window")
    attention: list[float] = Field(description="One weight per encoded frame, summing to 1")


class ModelInfo(BaseModel):
    name: str
    backbone: str = Field(description="'light' (MobileNet-style) or 'vgg16'")
    version: str
    hash: str = Field(description="Short hash of the exact weight files")


class TimingReport(BaseModel):
    decode: float = Field(description="Video or image decoding, ms")
    preprocess: float = Field(description="Face crop, tracking and magnification, ms")
    inference: float = Field(description="Encoder (batched) and temporal head, ms")
    total: float = Field(
        description="The whole request (receiving the upload included) or stream, ms"
    )


RESULT_EXAMPLE = {
    "request_id": "4be1f2a0c3d94f6e8a7b5c2d1e0f9a8b",
    "score": 0.9132,
    "label": "genuine",
    "threshold": 0.5,
    "frames_decoded": 40,
    "truncated": False,
    "frames": [
        {
            "index": 0,
            "t": 0.0,
            "box": [92.0, 60.5, 88.0, 88.0],
            "faces": 1,
            "encoded": True,
            "attention": 0.131,
        }
    ],
    "windows": [
        {
            "start": 0,
            "end": 12,
            "frames": [0, 2, 4, 5, 7, 9, 10, 12],
            "score": 0.9132,
            "attention": [0.131, 0.12, 0.125, 0.124, 0.125, 0.126, 0.124, 0.125],
        }
    ],
    "aggregation": "mean of 1 window scores; windows tile each face track's encoded frames "
    "in runs of T=8 (plus one over the track's last 8 when frames are left over); a frame's "
    "attention is its weight in the first window holding it",
    "model": {"name": "default", "backbone": "light", "version": "1", "hash": "0d1c2b3a4f5e"},
    "timing_ms": {"decode": 12.1, "preprocess": 20.4, "inference": 9.8, "total": 45.0},
}


class LivenessResult(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [RESULT_EXAMPLE]})

    request_id: str
    score: float = Field(description="Probability that a live person is in front of the camera")
    label: Literal["genuine", "spoof"] = Field(description="score >= threshold: genuine")
    threshold: float = Field(description="Decision threshold (the model's dev-set EER point)")
    frames_decoded: int = Field(description="Frames decoded from the video (or received)")
    truncated: bool = Field(description="Decoding stopped at max_frames before the clip ended")
    frames: list[FrameReport] = Field(description="Every processed frame, in order")
    windows: list[WindowReport] = Field(description="The windows whose scores make the clip score")
    aggregation: str = Field(description="How the window scores combine into the clip score")
    model: ModelInfo
    timing_ms: TimingReport
    verdict_token: str | None = Field(
        None,
        description="The verdict signed with the server's signing key (JWT, HS256): score, "
        "label, threshold, model, request_id, your nonce, expiry. Verify it in your backend "
        "(service.security.tokens.verify_verdict or `liveness verify-token`); null when the server "
        "has no signing key.",
    )


class StreamResult(LivenessResult):
    type: Literal["result"] = "result"
    dropped: int = Field(description="Frames dropped in the stream (busy server or over the rate)")


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. 'no_face'")
    message: str = Field(description="What went wrong and why")


class ErrorResponse(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: Literal["alive", "ready"]
    model: ModelInfo | None = None


class DetectorInfo(BaseModel):
    name: DetectorName = Field(description="Face detector in use")
    trained_with: DetectorName = Field(
        description="Face detector the model's manifest names (the one it was trained with)"
    )
    override: bool = Field(
        description="True when LIVENESS_DETECTOR_OVERRIDE serves another detector than the "
        "model was trained with: its crops, and so its scores, may differ"
    )


class Ready(Health):
    detector: DetectorInfo
    auth: Literal["open", "api_key"] = Field(
        description="'open': no API keys configured, every request is accepted; 'api_key': "
        "/v1 routes and the stream need a key or token"
    )
    signed_verdicts: bool = Field(description="Results carry a verdict_token")


def error_doc(description: str, code: str, message: str) -> dict:
    return {
        "model": ErrorResponse,
        "description": description,
        "content": {"application/json": {"example": {"error": {"code": code, "message": message}}}},
    }
