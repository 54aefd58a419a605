"""Stream flow control (one-slot mailbox, rate limit) and streamed-frame decoding."""

from __future__ import annotations

import asyncio
import struct

import cv2
import numpy as np
import pytest

from service.flow import Mailbox, QueuedFrame, RateLimiter
from service.images import MAX_FRAME_PIXELS, BadFrame, decode_frame, image_size
from tests.service.support import jpeg, png


def item(i: int) -> QueuedFrame:
    return QueuedFrame(i, bytes([i]), 0.0)


def test_mailbox_keeps_only_the_newest_frame():
    async def main():
        box = Mailbox()
        replaced = [box.put(item(i)) for i in range(100)]
        assert replaced[0] is None
        assert [r.index for r in replaced[1:]] == list(range(99))  # each put drops the older one
        assert box.pending == 1
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


def test_rate_limiter_allows_the_rate_plus_a_half_second_burst():
    now = [0.0]
    limiter = RateLimiter(10.0, clock=lambda: now[0])
    burst = sum(limiter.allow() for _ in range(20))  # 20 frames at once
    assert burst == 5  # half a second's worth
    allowed = 0
    for _ in range(100):  # then 100 frames at 50 fps for 2 s: the rate passes 20
        now[0] += 0.02
        allowed += limiter.allow()
    assert allowed == 20
    with pytest.raises(ValueError):
        RateLimiter(0)


@pytest.fixture(scope="module")
def picture() -> np.ndarray:
    rng = np.random.default_rng(0)
    return cv2.GaussianBlur(rng.integers(0, 255, (48, 80, 3), np.uint8), (0, 0), 3)


def test_png_decodes_losslessly_and_jpeg_closely(picture):
    np.testing.assert_array_equal(decode_frame(png(picture), 1280), picture)
    decoded = decode_frame(jpeg(picture, 95), 1280)
    assert decoded.shape == picture.shape
    assert np.abs(decoded.astype(int) - picture).mean() < 4
    assert image_size(png(picture)) == (80, 48)
    assert image_size(jpeg(picture)) == (80, 48)


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
