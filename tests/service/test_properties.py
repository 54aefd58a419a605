"""Property-based tests of the stream's parsers: whatever a client sends, the answer is a
frame or a message, or a typed error — never an exception of another type."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.errors import StreamPolicy
from service.images import PNG_MAGIC, BadFrame, decode_frame
from service.messages import BadMessage, parse_text_message
from service.schemas import MAX_FPS, EndMessage, StartMessage
from service.security.tokens import NONCE_PATTERN

MAX_SIDE = 96
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def encoded(kind: str, image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(kind, image)
    assert ok
    return buf.tobytes()


images = st.builds(
    lambda h, w, c, seed: np.random.default_rng(seed).integers(
        0, 256, (h, w) if c == 1 else (h, w, c), dtype=np.uint8
    ),
    st.integers(1, 200),
    st.integers(1, 200),
    st.sampled_from([1, 3, 4]),
    st.integers(0, 2**32 - 1),
)
valid_files = st.builds(encoded, st.sampled_from([".png", ".jpg"]), images)


@st.composite
def damaged_files(draw) -> bytes:
    """A real JPEG/PNG, truncated or with some bytes overwritten."""
    data = bytearray(draw(valid_files))
    for _ in range(draw(st.integers(0, 8))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(0, len(data)))])


frame_bytes = st.one_of(
    st.binary(max_size=2048),
    st.binary(max_size=2048).map(lambda b: b"\xff\xd8\xff" + b),  # a JPEG magic, then noise
    st.binary(max_size=2048).map(lambda b: PNG_MAGIC + b),
    valid_files,
    damaged_files(),
)


def check_frame(frame: np.ndarray) -> None:
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    assert max(frame.shape[:2]) <= MAX_SIDE and min(frame.shape[:2]) >= 1


@FAST
@given(frame_bytes)
def test_any_bytes_are_a_frame_or_a_bad_frame(data):
    try:
        frame = decode_frame(data, MAX_SIDE)
    except BadFrame as exc:
        assert exc.code == "bad_frame" and exc.message
        return
    check_frame(frame)


@settings(max_examples=100, deadline=None)
@given(images)
def test_png_frames_decode_to_their_pixels(image):
    frame = decode_frame(encoded(".png", image), max_side=10_000)
    h, w = image.shape[:2]
    assert frame.shape == (h, w, 3)
    if image.ndim == 2:  # grey: the same value in the three channels
        assert (frame == image[:, :, None]).all()
    else:  # colour: the BGR pixels exactly, alpha dropped
        assert (frame == image[:, :, :3]).all()
    assert decode_frame(encoded(".jpg", image), max_side=10_000).shape == (h, w, 3)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
start_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["start", "end", "START", "stop", 1, None])},
    optional={
        "fps": json_values,
        "nonce": json_values | st.from_regex(NONCE_PATTERN, fullmatch=True),
    },
)


def check_message(text: str) -> StartMessage | EndMessage | None:
    try:
        message = parse_text_message(text)
    except BadMessage as exc:
        assert exc.code == "bad_message" and exc.ws_close == 1003
        return None
    except StreamPolicy as exc:
        assert exc.code == "bad_parameters" and exc.ws_close == 1008
        assert len(exc.message) < 300  # a huge client value is never echoed whole
        return None
    if isinstance(message, StartMessage):
        assert message.fps is None or (math.isfinite(message.fps) and 0 < message.fps <= MAX_FPS)
        assert message.nonce is None or NONCE_PATTERN.fullmatch(message.nonce)
    return message


@FAST
@given(st.one_of(json_values, start_like))
def test_any_json_is_start_end_or_a_typed_error(value):
    message = check_message(json.dumps(value))
    if isinstance(value, dict) and value.get("type") == "end":
        assert isinstance(message, EndMessage)
    fps = value.get("fps") if isinstance(value, dict) else None
    valid_fps = (
        isinstance(fps, (int, float)) and not isinstance(fps, bool) and 0 < fps <= MAX_FPS
    ) or fps is None
    nonce = value.get("nonce") if isinstance(value, dict) else None
    valid_nonce = nonce is None or (isinstance(nonce, str) and NONCE_PATTERN.fullmatch(nonce))
    if isinstance(value, dict) and value.get("type") == "start" and valid_fps and valid_nonce:
        expected = StartMessage(type="start", fps=None if fps is None else float(fps), nonce=nonce)
        assert message == expected


@FAST
@given(st.text(max_size=300))
def test_any_text_is_start_end_or_a_typed_error(text):
    check_message(text)


def test_extreme_numbers_and_nesting():
    for text in (
        '{"type": "start", "fps": ' + "9" * 400 + "}",  # beyond float range
        '{"type": "start", "fps": ' + "9" * 5000 + "}",  # beyond int parsing's digit limit
        '{"type": "start", "fps": 1e999}',
        '{"type": "start", "fps": NaN}',
        "[" * 100_000,  # deeper than the JSON parser recurses
        '{"type": "' + "x" * 100_000 + '"}',
    ):
        assert check_message(text) is None
