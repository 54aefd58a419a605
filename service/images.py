"""Decoding one streamed frame (a JPEG or PNG message) into a BGR image.

The header is read first so a small message that claims a huge image is refused before
OpenCV allocates it; oversize frames are downscaled to ``max_side`` exactly as uploaded
videos are (model.video.downscale_to), so a stream and a clip see the same pixels.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np

from model.video import downscale_to
from service.errors import Unprocessable

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_FRAME_PIXELS = 36_000_000  # above 8K UHD (33 Mpx): refuse rather than allocate it
# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic): carry H and W
_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


class BadFrame(Unprocessable):
    code = "bad_frame"


def image_kind(data: bytes) -> str | None:
    if data.startswith(JPEG_MAGIC):
        return "jpeg"
    if data.startswith(PNG_MAGIC):
        return "png"
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # stand-alone markers, no length
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _SOF_MARKERS and i + 9 <= len(data):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG or PNG header, None when the header does not say."""
    kind = image_kind(data)
    if kind == "png" and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if kind == "jpeg":
        return _jpeg_size(data)
    return None


def decode_frame(data: bytes, max_side: int) -> np.ndarray:
    """JPEG/PNG bytes -> uint8 BGR [H, W, 3] (grey expanded, alpha dropped), downscaled to
    ``max_side``. Raises BadFrame for anything else."""
    kind = image_kind(data)
    if kind is None:
        raise BadFrame("a frame must be a JPEG or PNG image")
    size = image_size(data)
    if size is not None and size[0] * size[1] > MAX_FRAME_PIXELS:
        raise BadFrame(f"the frame is {size[0]}x{size[1]} px, over {MAX_FRAME_PIXELS} pixels")
    frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if frame is None or frame.size == 0:
        raise BadFrame(f"the {kind.upper()} image cannot be decoded (corrupt or truncated)")
    return downscale_to(frame, max_side)
