"""Video files made for the tests by FFmpeg's own encoders (PyAV), and hostile ones."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np

from tests.helpers import write_clip


def encode_with_pyav(
    fmt: str, codec: str, frames: list[np.ndarray], fps: int = 25, seekable: bool = True
) -> bytes:
    """BGR frames encoded by ``codec`` into a ``fmt`` container. A non-seekable output
    gets no duration or frame count in its header, as a live recording would."""
    import av

    class Sink(io.RawIOBase):
        def __init__(self) -> None:
            self.data = bytearray()

        def writable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def write(self, b) -> int:
            self.data += b
            return len(b)

    out: io.BytesIO | Sink = io.BytesIO() if seekable else Sink()
    with av.open(out, "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for i, f in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(f, format="bgr24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue() if isinstance(out, io.BytesIO) else bytes(out.data)


def mjpeg_avi_claiming(
    workdir: Path, avi_size: tuple[int, int], jpeg_size: tuple[int, int], frames: int = 30
) -> bytes:
    """An AVI of 64x48 grey JPEGs whose AVI headers claim ``avi_size`` (w, h) and whose
    every JPEG start-of-frame claims ``jpeg_size``: what a decoder would allocate."""
    grey = [np.full((48, 64, 3), 128, np.uint8)] * frames
    data = bytearray(write_clip(workdir / "claiming.avi", grey, 30.0, "MJPG").read_bytes())
    struct.pack_into("<II", data, data.find(b"avih") + 8 + 32, *avi_size)
    struct.pack_into("<ii", data, data.find(b"strf") + 8 + 4, *avi_size)
    at = data.find(b"\xff\xc0")
    while at >= 0:
        struct.pack_into(">HH", data, at + 5, jpeg_size[1], jpeg_size[0])
        at = data.find(b"\xff\xc0", at + 2)
    return bytes(data)


def mjpeg_avi_growing(
    small: tuple[int, int], big: tuple[int, int], n_small: int, n_big: int
) -> bytes:
    """An MJPEG AVI whose header and first ``n_small`` frames are ``small`` (w, h) and whose
    next ``n_big`` frames are ``big``: each JPEG carries its own size, as in a stream
    whose resolution changes midway."""
    from fractions import Fraction

    import av

    out = io.BytesIO()
    with av.open(out, "w", format="avi") as container:
        stream = container.add_stream("mjpeg", rate=25)
        stream.width, stream.height = small
        stream.pix_fmt = "yuvj420p"
        other = av.CodecContext.create("mjpeg", "w")
        other.width, other.height = big
        other.pix_fmt = "yuvj420p"
        other.time_base = Fraction(1, 25)
        for i in range(n_small + n_big):
            w, h = small if i < n_small else big
            frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), 100, np.uint8), format="bgr24")
            frame = frame.reformat(format="yuvj420p")
            frame.pts = i
            packets = stream.encode(frame) if i < n_small else other.encode(frame)
            for packet in packets:
                packet.stream = stream
                packet.pts = packet.dts = i
                container.mux(packet)
    return out.getvalue()
