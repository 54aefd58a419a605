"""Recognising a video container from its first bytes, before any decoder sees them.

Only three families reach FFmpeg, each with its demuxer named explicitly (FFmpeg never
probes client bytes): ISO base media / QuickTime (mp4, mov, m4v, 3gp) for the ``mov``
demuxer, EBML (Matroska, WebM) for ``matroska``, and RIFF AVI for ``avi``. Everything
else, including the text playlists of FFmpeg's concat, HLS and image-sequence demuxers,
is refused here: those demuxers open further files and URLs named by their input.
"""

from __future__ import annotations

import struct

HEAD_BYTES = 12  # enough for every signature below

# First box types of ISO/QuickTime files: ``ftyp`` for every mp4 and modern mov; older
# QuickTime files may open with the movie box, the media data or padding instead.
QUICKTIME_FIRST_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")
EBML_MAGIC = b"\x1a\x45\xdf\xa3"


class VideoDecodeError(ValueError):
    """The input is not a video that can be decoded (or holds no frames)."""


def sniff_container(head: bytes) -> str:
    """The FFmpeg demuxer for a file that starts with ``head``; VideoDecodeError if none."""
    if len(head) >= 8 and head[4:8] in QUICKTIME_FIRST_BOXES:
        (size,) = struct.unpack(">I", head[:4])
        # 0: the box runs to the end of the file; 1: a 64-bit size follows
        if size in (0, 1) or size >= 8:
            return "mov"
    if head[:4] == EBML_MAGIC:
        return "matroska"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    raise VideoDecodeError(
        "not a recognised video container (its first bytes are not those of an "
        "mp4/mov, webm/mkv or avi file)"
    )
