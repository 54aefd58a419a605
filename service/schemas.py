"""Every body of the API as a pydantic model, HTTP and WebSocket alike.

The routes and the stream build their JSON from these models (``model_dump``), and
/openapi.json documents them: the HTTP bodies through the routes, the stream's messages
(``StreamClientMessage``, ``StreamServerMessage``) as components of their own
(``stream_message_schemas``). A field's order here is its order on the wire.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel
from pydantic.json_schema import models_json_schema

from service.security.tokens import NONCE_PATTERN
from service.settings import DetectorName

MAX_FPS = 240.0  # the highest frame rate a client may announce (query or start message)
Outcome = Literal["genuine", "spoof", "inconclusive"]
GateModeName = Literal["enforce", "observe", "off"]


class FrameFields(BaseModel):
    """What every processed frame reports, in a result and in the stream's frame message."""

    index: int = Field(description="Frame index in the video (or in the stream, as sent)")
    t: float = Field(description="Frame time, seconds")
    box: list[float] | None = Field(
        description="Tracked face box [x, y, w, h] in frame pixels; null when no face"
    )
    faces: int = Field(description="Faces seen by the last detector pass (-1 before the first)")
    encoded: bool = Field(description="The face crop of this frame entered the encoder")


class FrameReport(FrameFields):
    attention: float | None = Field(
        description="The frame's attention weight within its clip window; null if in none"
    )


class Hint(BaseModel):
    code: str = Field(
        description="Reason code: no_face, multiple_faces, face_too_small, too_dark, "
        "too_bright, low_contrast, blurred, pose_out_of_range, too_few_usable_frames, "
        "static_input, looped_input (docs/quality.md)"
    )
    hint: str = Field(description="What the person in front of the camera can do about it")


class GateReason(Hint):
    share: float = Field(
        description="Share of the frames with this reason (static_input: of the frame pairs "
        "that did not change; looped_input: of the changing frames that repeat an earlier "
        "change)"
    )


class WindowReport(BaseModel):
    start: int = Field(description="Index of the window's first frame")
    end: int = Field(description="Index of its last frame")
    frames: list[int] = Field(description="Indices of the encoded frames in the window")
    score: float = Field(description="Probability of genuine for this window")
    attention: list[float] = Field(description="One weight per encoded frame, summing to 1")


class ModelInfo(BaseModel):
    name: str
    backbone: str = Field(
        description="'light' (MobileNet-style), 'mobilenet_v2', 'vgg16', 'minifasnet_v2' "
        "or 'minifasnet_v1se'"
    )
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
    "model_label": "genuine",
    "reasons": [],
    "gates": "enforce",
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
    label: Outcome = Field(
        description="The outcome. 'genuine' or 'spoof': the model's decision (model_label); "
        "'inconclusive': the capture could not be judged (reasons say why and what to do). "
        "Static or looped input is 'spoof' (or 'inconclusive', per LIVENESS_GATE_INPUT_POLICY) "
        "whatever the score. Only 'genuine' means a live person."
    )
    model_label: Literal["genuine", "spoof"] = Field(
        description="The model's decision alone: score >= threshold is genuine"
    )
    reasons: list[GateReason] = Field(
        description="The capture-quality gates that failed, most frequent first; empty when "
        "the capture is judgeable. With gates 'observe' they are reported and do not change "
        "the label."
    )
    gates: GateModeName = Field(
        description="LIVENESS_GATES: 'enforce' (failing gates decide the label), 'observe' "
        "(reported only, a shadow period) or 'off'"
    )
    threshold: float = Field(
        description="Decision threshold in use (the model manifest's, or LIVENESS_THRESHOLD)"
    )
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


class ThresholdInfo(BaseModel):
    value: float = Field(description="Decision threshold in use: score >= value is genuine")
    manifest: float = Field(description="The threshold the model's manifest sets")
    override: bool = Field(
        description="True when LIVENESS_THRESHOLD serves another threshold than the manifest's"
    )


class Ready(Health):
    detector: DetectorInfo
    threshold: ThresholdInfo
    auth: Literal["open", "api_key"] = Field(
        description="'open': no API keys configured, every request is accepted; 'api_key': "
        "/v1 routes and the stream need a key or token"
    )
    signed_verdicts: bool = Field(description="Results carry a verdict_token")
    gates: GateModeName = Field(
        description="Capture-quality gates: 'enforce', 'observe' (shadow) or 'off' (LIVENESS_GATES)"
    )


class AccessToken(BaseModel):
    token: str = Field(description="Use as ?token= on WS /v1/stream, or as a Bearer credential")
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds the token is valid for")
    client: str = Field(description="The name of the API key it was made with")


def error_doc(description: str, code: str, message: str) -> dict:
    """An error answer of a route, for its ``responses``: the model and an example."""
    example = ErrorDetail(code=code, message=message)
    return {
        "model": ErrorResponse,
        "description": description,
        "content": {"application/json": {"example": ErrorResponse(error=example).model_dump()}},
    }


# -- WS /v1/stream: the client's text messages -------------------------------------------------
class StartMessage(BaseModel):
    """Optional, before the first frame: the stream's frame rate and the check's nonce."""

    model_config = ConfigDict(frozen=True)

    type: Literal["start"]
    fps: float | None = Field(
        None,
        gt=0,
        le=MAX_FPS,
        description="Frames per second sent (t = index / fps); "
        "null or absent: the server's stream_default_fps",
    )
    nonce: str | None = Field(
        None,
        pattern=f"^{NONCE_PATTERN.pattern}$",
        description="Your one-time value for this check, signed into the result's "
        "verdict_token (instead of ?nonce=)",
    )


class EndMessage(BaseModel):
    """The last frame is sent: the server answers with the result and closes (1000)."""

    model_config = ConfigDict(frozen=True)

    type: Literal["end"]


# -- WS /v1/stream: the server's messages ------------------------------------------------------
# ``type`` comes first on the wire. A message that extends a shared model takes ``type`` from
# a second base class: pydantic orders the fields of the later bases first.
class _ServerMessage(BaseModel):
    # documented as sent: a field with a default is still always there
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


class WindowInfo(BaseModel):
    length: int = Field(description="T: encoded frames per window")
    fps: float = Field(description="Rate at which frames enter the encoder")
    min_length: int = Field(description="Fewest encoded frames of one face track scored")


class StreamLimits(BaseModel):
    max_stream_fps: float = Field(description="Frames per second processed; more: dropped")
    max_message_bytes: int = Field(description="Largest message; larger: close 1009")
    max_side: int = Field(description="Longer frame sides are downscaled to this, px")
    idle_seconds: float = Field(description="Longest wait for a message; then close 1008")
    max_seconds: float = Field(description="Longest stream; then close 1008")
    max_bad_frames: int = Field(description="Undecodable frames in a row before close 1003")


class ReadyMessage(_ServerMessage):
    """The server's first message: the stream's rates, the model, the window and the limits
    (before the first frame's answer)."""

    type: Literal["ready"] = "ready"
    request_id: str
    fps: float = Field(description="The client's frame rate: t = index / fps")
    processing_fps: float = Field(description="The rate the magnifier is set for (capped)")
    model: ModelInfo
    threshold: float = Field(
        description="Decision threshold in use (the model manifest's, or LIVENESS_THRESHOLD)"
    )
    gates: GateModeName = Field(description="Capture-quality gates: enforce, observe or off")
    window: WindowInfo
    limits: StreamLimits


class _FrameType(_ServerMessage):
    type: Literal["frame"] = "frame"


class FrameMessage(FrameFields, _FrameType):
    """One processed frame (t = index / fps, index counting every frame sent). score,
    label, attention and window are null until the face track's first window is full; then
    every frame reports the track's latest window."""

    score: float | None = Field(description="Probability of genuine of the latest window")
    label: Outcome | None = Field(
        description="The latest window's outcome: score >= threshold is genuine, unless the "
        "gates find the window's frames static or looped ('spoof', or 'inconclusive' per "
        "LIVENESS_GATE_INPUT_POLICY) or unusable ('inconclusive')"
    )
    hints: list[Hint] = Field(
        description="Guidance for this frame: what is wrong with the capture now (no face, "
        "too small, dark, blurred, ...) and, once the window shows it, static or looped "
        "input; empty when all is well"
    )
    attention: list[float] | None = Field(description="The window's weights, one per frame")
    window: list[int] | None = Field(description="[first, last] frame index of the window")
    latency_ms: float = Field(description="From the frame's arrival to this answer, ms")
    dropped: int = Field(description="Frames dropped in the stream so far")


class DroppedMessage(_ServerMessage):
    """A frame not processed: the one before it was still in work (busy) or it came over
    max_stream_fps (rate). Every frame gets one answer."""

    type: Literal["dropped"] = "dropped"
    index: int
    reason: Literal["busy", "rate"]
    dropped: int = Field(description="Frames dropped in the stream so far")


class ErrorMessage(_ServerMessage):
    """A failure: for bad_frame the stream goes on; any other error is followed by a close
    whose code says why (1000 after no_face/too_few_frames at the end)."""

    type: Literal["error"] = "error"
    code: str = Field(description="Stable machine-readable code, e.g. 'bad_frame'")
    message: str = Field(description="What went wrong and why")
    index: int | None = Field(
        None,
        description="bad_frame only: the index of the undecodable frame",
        exclude_if=lambda index: index is None,
    )


class _ResultType(BaseModel):
    type: Literal["result"] = "result"


class ResultMessage(LivenessResult, _ResultType):
    """The answer to ``end``: the upload's result body for the frames received, then a
    normal close (1000)."""

    model_config = ConfigDict(
        json_schema_serialization_defaults_required=True,
        json_schema_extra={"examples": [{"type": "result", **RESULT_EXAMPLE, "dropped": 0}]},
    )

    dropped: int = Field(description="Frames dropped in the stream (busy server or over the rate)")


ServerMessage = Annotated[
    ReadyMessage | FrameMessage | DroppedMessage | ErrorMessage | ResultMessage,
    Field(discriminator="type"),
]


class StreamServerMessage(RootModel[ServerMessage]):
    """A text message of WS /v1/stream from the server, told apart by its ``type``."""


class StreamClientMessage(
    RootModel[Annotated[StartMessage | EndMessage, Field(discriminator="type")]]
):
    """A text message of WS /v1/stream from the client (frames are binary JPEG/PNG)."""


def stream_message_schemas() -> dict[str, dict]:
    """The JSON schemas of the stream's messages and of the models they hold, named and
    linked as /openapi.json's components: what the client may send (validation) and what
    the server sends (serialization)."""
    _, top = models_json_schema(
        [(StreamClientMessage, "validation"), (StreamServerMessage, "serialization")],
        ref_template="#/components/schemas/{model}",
    )
    return top["$defs"]
