"""Decoding one streamed frame (a JPEG or PNG message) into a BGR image.

The header is parsed first, strictly, so a small message that claims a huge image is
refused before OpenCV allocates it: a JPEG's markers are walked from SOI to the first
scan (SOS), every byte accounted for, and exactly one frame header (SOF) must give its
size; a PNG's first chunk must be a well-formed IHDR with a matching CRC. A header that
does not parse is a ``bad_frame``, never "decode and see": libjpeg skips bytes it cannot
place ("extraneous bytes before marker"), so a lenient parser that gives up on them
would let any size through. Behind it, ``liveness serve`` sets OpenCV's own decoder limit
(``OPENCV_IO_MAX_IMAGE_PIXELS``) to the same number of pixels. Oversize frames are
downscaled to ``max_side`` by area averaging (model.video.downscale_to), as uploaded videos
are in their colour conversion; the two resamplers differ by about a grey level.
"""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np

from model.video import downscale_to
from service.errors import Unprocessable
from service.settings import MAX_FRAME_PIXELS

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, extended, progressive, lossless, arithmetic): H, W
_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_SOS, _EOI, _SOI, _TEM = 0xDA, 0xD9, 0xD8, 0x01
_HIERARCHICAL = {0xDE, 0xDF}  # DHP, EXP: several frames of several sizes; libjpeg refuses them


class BadFrame(Unprocessable):
    code = "bad_frame"


class _Malformed(ValueError):
    """The header does not parse: the reason."""


def image_kind(data: bytes) -> str | None:
    if data.startswith(JPEG_MAGIC):
        return "jpeg"
    if data.startswith(PNG_MAGIC):
        return "png"
    return None


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) of the one frame header before the first scan; _Malformed unless
    every byte from SOI to SOS is a marker, a fill byte or inside a segment."""
    size: tuple[int, int] | None = None
    i, n = 2, len(data)
    while True:
        if i >= n:
            raise _Malformed("the JPEG header ends before its first scan")
        if data[i] != 0xFF:
            raise _Malformed(f"byte {i} of the JPEG header is 0x{data[i]:02x}, not a marker")
        while i < n and data[i] == 0xFF:  # a marker, after any number of fill bytes
            i += 1
        if i >= n:
            raise _Malformed("the JPEG header ends inside a marker")
        marker = data[i]
        i += 1
        if marker in (0x00, _SOI, _EOI) or marker in _HIERARCHICAL:
            raise _Malformed(f"marker 0x{marker:02x} cannot appear before the first scan")
        if marker == _TEM or 0xD0 <= marker <= 0xD7:  # stand-alone markers, no length
            continue
        if i + 2 > n:
            raise _Malformed("the JPEG header ends inside a segment length")
        (length,) = struct.unpack(">H", data[i : i + 2])
        if length < 2 or i + length > n:
            raise _Malformed(f"a JPEG segment of length {length} does not fit the message")
        if marker in _SOF_MARKERS:
            if size is not None:
                raise _Malformed("the JPEG has two frame headers")
            if length < 8:
                raise _Malformed("the JPEG frame header is too short")
            height, width = struct.unpack(">HH", data[i + 3 : i + 7])
            if width == 0 or height == 0:
                raise _Malformed(f"the JPEG frame header says {width}x{height} px")
            size = (width, height)
        elif marker == _SOS:
            if size is None:
                raise _Malformed("the JPEG scan comes before any frame header")
            return size
        i += length


def _png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the IHDR chunk, which must come first, whole, with its CRC."""
    if len(data) < 33 or data[8:16] != b"\x00\x00\x00\x0dIHDR":
        raise _Malformed("the PNG does not start with its IHDR chunk")
    width, height = struct.unpack(">II", data[16:24])
    if not (0 < width < 2**31 and 0 < height < 2**31):
        raise _Malformed(f"the PNG header says {width}x{height} px")
    if (
        width * height <= MAX_FRAME_PIXELS
        and zlib.crc32(data[12:29]) != struct.unpack(">I", data[29:33])[0]
    ):
        raise _Malformed("the PNG header's CRC does not match")
    return width, height


def _header_size(data: bytes) -> tuple[int, int]:
    kind = image_kind(data)
    if kind == "jpeg":
        return _jpeg_size(data)
    if kind == "png":
        return _png_size(data)
    raise _Malformed("not a JPEG or PNG image")


def decode_frame(data: bytes, max_side: int) -> np.ndarray:
    """JPEG/PNG bytes -> uint8 BGR [H, W, 3] (grey expanded, alpha dropped), downscaled to
    ``max_side``. Raises BadFrame for anything else."""
    kind = image_kind(data)
    if kind is None:
        raise BadFrame("a frame must be a JPEG or PNG image")
    try:
        width, height = _header_size(data)
    except _Malformed as exc:
        raise BadFrame(f"the {kind.upper()} image cannot be decoded: {exc}") from None
    if width * height > MAX_FRAME_PIXELS:
        raise BadFrame(f"the frame is {width}x{height} px, over {MAX_FRAME_PIXELS} pixels")
    try:
        frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:  # OpenCV's own limits (OPENCV_IO_MAX_IMAGE_PIXELS) refused it
        raise BadFrame(f"the {kind.upper()} image is over the decoder's limits") from None
    if frame is None or frame.size == 0:
        raise BadFrame(f"the {kind.upper()} image cannot be decoded (corrupt or truncated)")
    return downscale_to(frame, max_side)
