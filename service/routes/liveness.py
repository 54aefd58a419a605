"""``POST /v1/liveness``: score one uploaded clip."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, Request

from service.accesslog import note_result, request_id_of
from service.clip import score_video
from service.deps import AccessDep, EngineDep
from service.errors import BadRequest
from service.schemas import MAX_FPS, LivenessResult, error_doc
from service.security.tokens import NONCE_PATTERN
from service.upload import FILE_FIELD, VIDEO_CONTENT_TYPES, BodyPace, read_video_body

router = APIRouter(tags=["liveness"])

_BINARY = {"schema": {"type": "string", "format": "binary"}}
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": f"The video: a multipart form with the field '{FILE_FIELD}', or the raw "
        "file as the body (mp4, webm, avi, mov, mkv).",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FILE_FIELD],
                    "properties": {FILE_FIELD: {"type": "string", "format": "binary"}},
                }
            },
            **{ctype: _BINARY for ctype in VIDEO_CONTENT_TYPES},
        },
    }
}

RESPONSES = {
    400: error_doc("Bad query parameters or body", "bad_parameters", "fps: must be <= 240"),
    408: error_doc(
        "The upload body paused or came slower than the minimum rate",
        "upload_timeout",
        "the upload body arrived too slowly (12 bytes in 10.0 s): send at least 8192 bytes/s",
    ),
    401: error_doc("Missing or invalid credentials", "unauthorized", "an API key is required"),
    403: error_doc("Revoked API key", "forbidden", "the API key 'kiosk-3' is revoked"),
    413: error_doc(
        "Upload over a limit: bytes (payload_too_large), or from the video's header, frame "
        "size (frame_too_large) or pixels to decode (pixel_budget_exceeded)",
        "frame_too_large",
        "the video's frames are 7680x4320 (33177600 pixels), over the limit of 16777216 "
        "pixels per frame",
    ),
    415: error_doc("Not a video content type", "unsupported_media_type", "content type ..."),
    422: error_doc(
        "The video cannot be scored: undecodable_video (not an mp4/mov, webm/mkv or avi "
        "container, or no decodable frame), clip_too_long, no_face, too_few_frames, "
        "frame_rate_too_low, processing_timeout",
        "no_face",
        "no face found in any frame (a frontal face must be visible)",
    ),
    429: error_doc("Over the API key's rate (Retry-After)", "rate_limited", "retry in 2.0 s"),
    503: error_doc("Not ready or over capacity", "over_capacity", "retry shortly"),
}


@router.post(
    "/v1/liveness",
    response_model=LivenessResult,
    summary="Score a video clip: is a live person in front of the camera?",
    responses=RESPONSES,
    openapi_extra=UPLOAD_BODY,
)
async def score_clip(
    request: Request,
    engine: EngineDep,
    access: AccessDep,
    fps: Annotated[
        float | None,
        Query(
            gt=0,
            le=MAX_FPS,
            description="Process at most this many frames per second of video; the frames "
            "between are skipped before preprocessing (default: every frame).",
        ),
    ] = None,
    max_frames: Annotated[
        int | None,
        Query(
            ge=1,
            description="Decode at most this many frames; the rest of the clip is not "
            "analysed (default and cap: the server's max_frames setting).",
        ),
    ] = None,
    nonce: Annotated[
        str | None,
        Query(
            pattern=f"^{NONCE_PATTERN.pattern}$",
            description="Your one-time value for this check, signed into the result's "
            "verdict_token so your backend can tell this verdict from a replayed one.",
        ),
    ] = None,
) -> LivenessResult:
    started = time.perf_counter()
    limit = engine.settings.max_frames
    if max_frames is not None and max_frames > limit:
        raise BadRequest(f"max_frames: must be <= {limit}", code="bad_parameters")
    settings = engine.settings
    pace = BodyPace(settings.upload_idle_seconds, settings.upload_min_bytes_per_second)
    with engine.upload_slot():
        data = await read_video_body(request, settings.max_upload_bytes, pace)
        body = await score_video(
            engine,
            data,
            fps=fps,
            max_frames=max_frames or limit,
            request_id=request_id_of(request),
            started=started,
            disconnected=request.is_disconnected,
        )
    note_result(request.state, body)
    principal = getattr(request.state, "principal", None)
    return access.attach_verdict(body, principal, nonce)
