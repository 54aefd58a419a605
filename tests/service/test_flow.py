"""Stream flow control (one-slot mailbox, rate limit) and streamed-frame decoding."""

from __future__ import annotations

import asyncio
import struct

import cv2
import numpy as np
import pytest

from service.flow import Mailbox, QueuedFrame
from service.images import MAX_FRAME_PIXELS, BadFrame, decode_frame
from service.security.ratelimit import TokenBucket
from service.stream import FRAME_BURST_SECONDS
from tests.service.support import jpeg, png


def item(i: int) -> QueuedFrame:
    return QueuedFrame(i, bytes([i]), 0.0)


def test_mailbox_keeps_only_the_newest_frame():
    async def main():
        box = Mailbox()
        replaced = [box.put(item(i)) for i in range(100)]
        assert replaced[0] is None
        assert [r.index for r in replaced[1:]] == list(range(99))  # each put drops the older one
        got = await box.get()
        box.close()
        return got, await box.get()

    got, after_close = asyncio.run(main())
    assert got.index == 99 and after_close is None


def test_mailbox_hands_over_a_waiting_frame_after_close_then_ends():
    async def main():
        box = Mailbox()
        consumer = asyncio.create_task(box.get())
        await asyncio.sleep(0)
        box.put(item(1))
        first = await consumer
        box.put(item(2))
        box.close()
        with pytest.raises(RuntimeError, match="closed"):
            box.put(item(3))
        return first, await box.get(), await box.get()

    first, second, end = asyncio.run(main())
    assert (first.index, second.index, end) == (1, 2, None)


def test_frame_rate_limit_allows_the_rate_plus_a_half_second_burst():
    now = [0.0]
    limiter = TokenBucket.per_second(10.0, FRAME_BURST_SECONDS, clock=lambda: now[0])
    burst = sum(limiter.allow() for _ in range(20))  # 20 frames at once
    assert burst == 5  # half a second's worth
    allowed = 0
    for _ in range(100):  # then 100 frames at 50 fps for 2 s: the rate passes 20
        now[0] += 0.02
        allowed += limiter.allow()
    assert allowed == 20
    with pytest.raises(ValueError):
        TokenBucket.per_second(0, FRAME_BURST_SECONDS)


@pytest.fixture(scope="module")
def picture() -> np.ndarray:
    rng = np.random.default_rng(0)
    return cv2.GaussianBlur(rng.integers(0, 255, (48, 80, 3), np.uint8), (0, 0), 3)


def test_png_decodes_losslessly_and_jpeg_closely(picture):
    np.testing.assert_array_equal(decode_frame(png(picture), 1280), picture)
    decoded = decode_frame(jpeg(picture, 95), 1280)
    assert decoded.shape == picture.shape
    assert np.abs(decoded.astype(int) - picture).mean() < 4


def test_grey_and_alpha_frames_become_bgr(picture):
    grey = cv2.cvtColor(picture, cv2.COLOR_BGR2GRAY)
    out = decode_frame(png(grey), 1280)
    assert out.shape == (48, 80, 3)
    np.testing.assert_array_equal(out[..., 0], grey)
    bgra = cv2.cvtColor(picture, cv2.COLOR_BGR2BGRA)
    bgra[..., 3] = 7
    np.testing.assert_array_equal(decode_frame(png(bgra), 1280), picture)


def test_oversize_frames_are_downscaled_to_the_max_side(picture):
    big = cv2.resize(picture, (800, 480))
    out = decode_frame(png(big), 200)
    assert out.shape == (120, 200, 3)


def test_bad_frames_are_refused_with_reasons(picture):
    with pytest.raises(BadFrame, match="JPEG or PNG"):
        decode_frame(b"GIF89a....", 1280)
    data = jpeg(picture)
    with pytest.raises(BadFrame, match="cannot be decoded"):
        decode_frame(data[:40], 1280)
    # a PNG header claiming 20000 x 20000 px is refused before any allocation
    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR"
    header += struct.pack(">II", 20000, 20000) + b"\x08\x02\x00\x00\x00" + b"\x00" * 4
    assert MAX_FRAME_PIXELS < 20000 * 20000
    with pytest.raises(BadFrame, match="20000x20000"):
        decode_frame(header, 1280)
    assert BadFrame("x").code == "bad_frame"


# -- the frame header cannot be skipped -----------------------------------------------------------
def test_a_stray_byte_before_a_marker_is_a_bad_frame_whatever_size_it_claims(picture):
    from tests.service.battery import jpeg_claiming, with_stray_byte

    for width, height in ((20000, 20000), (30000, 30000), (80, 48)):
        data = with_stray_byte(jpeg_claiming(width, height))
        with pytest.raises(BadFrame, match="not a marker"):
            decode_frame(data, 1280)
    # libjpeg itself would decode it: the bytes are refused by the parser, not by luck
    real = with_stray_byte(jpeg(picture))
    assert cv2.imdecode(np.frombuffer(real, np.uint8), cv2.IMREAD_COLOR) is not None
    with pytest.raises(BadFrame, match="byte 20 of the JPEG header is 0x00"):
        decode_frame(real, 1280)


def _segments(data: bytes) -> list[tuple[int, int]]:
    """(offset, marker) of each segment from SOI to SOS of a well-formed JPEG."""
    out, i = [], 2
    while data[i + 1] != 0xDA:
        out.append((i, data[i + 1]))
        i += 2 + struct.unpack(">H", data[i + 2 : i + 4])[0]
    return [*out, (i, 0xDA)]


def test_malformed_jpeg_headers_are_bad_frames(picture):
    data = jpeg(picture)
    segments = dict((m, i) for i, m in _segments(data))
    sof, sos = segments[0xC0], segments[0xDA]
    cases = {
        "ends before its first scan": data[:sos],
        "scan comes before any frame header": data[:sof] + data[sos:],
        "two frame headers": data[:sos] + data[sof:sos] + data[sos:],
        "does not fit": data[: sof + 2] + b"\xff\xff" + data[sof + 4 :],
        "says 80x0 px": data[: sof + 5] + b"\x00\x00" + data[sof + 7 :],
        "cannot appear before the first scan": data[:sof] + b"\xff\xd9" + data[sof:],
        "hierarchical": data[:sof] + b"\xff\xde\x00\x02" + data[sof:],
    }
    for reason, bad in cases.items():
        match = "cannot appear" if reason == "hierarchical" else reason
        with pytest.raises(BadFrame, match=match):
            decode_frame(bad, 1280)


def test_malformed_png_headers_are_bad_frames(picture):
    data = png(picture)
    bad_crc = data[:29] + bytes(4) + data[33:]
    no_ihdr = data[:12] + b"IHDX" + data[16:]
    zero = data[:16] + bytes(4) + data[20:]
    for bad, reason in ((bad_crc, "CRC"), (no_ihdr, "IHDR"), (zero, "0x48 px")):
        with pytest.raises(BadFrame, match=reason):
            decode_frame(bad, 1280)


def test_camera_style_jpegs_and_png_variants_decode(picture):
    from tests.service.battery import camera_jpeg, grey_png, png16

    big = cv2.resize(picture, (320, 192))
    for data in (camera_jpeg(big), png16(big), grey_png(big)):
        frame = decode_frame(data, 1280)
        assert frame.shape == (192, 320, 3) and frame.dtype == np.uint8
    np.testing.assert_array_equal(decode_frame(png16(big), 1280), big)
    assert np.abs(decode_frame(camera_jpeg(big), 1280).astype(int) - big).mean() < 6


GUARD = """
from pathlib import Path
import cv2
import service.images as images
from tests.service.battery import jpeg_claiming


def rss_mib():
    status = Path("/proc/self/status").read_text().split("VmRSS:")[1]
    return int(status.split()[0]) // 1024


decode, held = cv2.imdecode, [0]


def measured(*args):
    frame = decode(*args)
    held[0] = rss_mib()  # while the decoded frame is alive
    return frame


cv2.imdecode = measured
images._header_size = lambda data: (1, 1)  # the header parser skipped: only OpenCV's limit
data = jpeg_claiming(7000, 7000)
before = rss_mib()
try:
    images.decode_frame(data, 1280)
    outcome = "decoded"
except images.BadFrame as exc:
    outcome = exc.message
print(outcome, "|", max(0, held[0] - before))
"""


@pytest.mark.parametrize("limit", [True, False], ids=["opencv limit", "no limit (control)"])
def test_opencv_pixel_limit_is_the_second_guard(limit):
    """With OPENCV_IO_MAX_IMAGE_PIXELS (set by `liveness serve`), a 49 Mpx frame that got past
    the header check is refused by OpenCV before it allocates; without it, it is allocated."""
    import os
    import subprocess
    import sys

    from service.settings import MAX_FRAME_PIXELS
    from tests.service.support import REPO_ROOT

    env = {k: v for k, v in os.environ.items() if k != "OPENCV_IO_MAX_IMAGE_PIXELS"}
    if limit:
        env["OPENCV_IO_MAX_IMAGE_PIXELS"] = str(MAX_FRAME_PIXELS)
    run = subprocess.run(
        [sys.executable, "-c", GUARD],
        cwd=REPO_ROOT,
        env={**env, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    outcome, grew = run.stdout.strip().rsplit("|", 1)
    if limit:
        assert "over the decoder's limits" in outcome and int(grew) < 50, run.stdout
    else:
        assert int(grew) > 100, run.stdout  # 7000 x 7000 x 3 bytes were allocated


SERVE_GUARD = """
import sys
import uvicorn


def instead_of_serving(self, *args, **kwargs):
    import service.images as images
    from tests.service.battery import jpeg_claiming

    images._header_size = lambda data: (1, 1)  # as if the header parser were skipped
    try:
        images.decode_frame(jpeg_claiming(7000, 7000), 1280)
        print("decoded")
    except images.BadFrame as exc:
        print(exc.message)


uvicorn.Server.run = instead_of_serving
from liveness.cli import main

sys.argv = ["liveness", "serve", "--port", "0", "--providers", "cpu"]
main()
"""


def test_serve_sets_the_opencv_pixel_limit_before_opencv_loads():
    """`liveness serve`'s own start-up, up to where uvicorn would serve: by then OpenCV
    refuses a 49 Mpx frame itself."""
    import os
    import subprocess
    import sys

    from tests.service.support import REPO_ROOT

    env = {k: v for k, v in os.environ.items() if k != "OPENCV_IO_MAX_IMAGE_PIXELS"}
    run = subprocess.run(
        [sys.executable, "-c", SERVE_GUARD],
        cwd=REPO_ROOT,
        env={**env, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "over the decoder's limits" in run.stdout, run.stdout + run.stderr[-2000:]
