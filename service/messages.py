"""The stream's client text messages, parsed: ``start`` and ``end``, or a typed error.

``{"type": "start", "fps": 30, "nonce": "..."}`` (every field but ``type`` optional) and
``{"type": "end"}``. Text that is not JSON, or JSON that is not such an object, is a
``BadMessage`` (close 1003); a ``start`` with a bad field is a ``StreamPolicy``
``bad_parameters`` (close 1008). Nothing else is raised, whatever the text.
"""

from __future__ import annotations

import json
import math

from service.errors import StreamPolicy, UnsupportedMediaType
from service.schemas import MAX_FPS, EndMessage, StartMessage
from service.security.tokens import NONCE_PATTERN


class BadMessage(UnsupportedMediaType):
    code = "bad_message"


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_nonce(value: object) -> str | None:
    """A client nonce: 1-128 characters of [A-Za-z0-9._~+/=:-], or None when absent."""
    if value is None:
        return None
    if not isinstance(value, str) or not NONCE_PATTERN.fullmatch(value):
        raise StreamPolicy(
            f"nonce must be 1-128 characters of A-Z a-z 0-9 . _ ~ + / = : -, got {_shown(value)}",
            code="bad_parameters",
        )
    return value


def parse_text_message(text: str) -> StartMessage | EndMessage:
    try:
        message = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, or an int over 4300 digits
        raise BadMessage(f"a text message must be JSON: {str(exc)[:80]}") from None
    kind = message.get("type") if isinstance(message, dict) else None
    if kind == "end":
        return EndMessage(type="end")
    if kind != "start":
        raise BadMessage(f"unknown message type {_shown(kind)}: expected 'start' or 'end'")
    fps = message.get("fps")
    if fps is not None:
        if isinstance(fps, bool) or not isinstance(fps, (int, float)):
            raise StreamPolicy(f"fps must be a number, got {_shown(fps)}", code="bad_parameters")
        try:
            value = float(fps)
        except OverflowError:  # a JSON integer beyond float range
            value = math.inf
        if not (math.isfinite(value) and 0 < value <= MAX_FPS):
            raise StreamPolicy(
                f"fps must be in (0, {MAX_FPS:g}], got {_shown(fps)}", code="bad_parameters"
            )
        fps = value
    return StartMessage(type="start", fps=fps, nonce=parse_nonce(message.get("nonce")))
