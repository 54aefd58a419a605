"""Decoding real video containers from files and from bytes."""

from __future__ import annotations

import numpy as np
import pytest

from model.video import VideoDecodeError, VideoReader, downscale_to, read_frames
from tests.helpers import write_clip


def _frames(n=12, h=120, w=160):
    out = []
    for i in range(n):
        f = np.zeros((h, w, 3), np.uint8)
        f[:, :, 1] = 40
        f[20:60, 10 + 5 * i : 50 + 5 * i] = 220  # a moving bright block
        out.append(f)
    return out


@pytest.mark.parametrize("fourcc,ext", [("mp4v", ".mp4"), ("MJPG", ".avi")])
def test_file_and_bytes_decode_to_the_same_frames(tmp_path, fourcc, ext):
    path = write_clip(tmp_path / f"clip{ext}", _frames(), fps=20.0, fourcc=fourcc)
    frames, times, info = read_frames(path)
    frames_b, times_b, info_b = read_frames(path.read_bytes())
    assert len(frames) == len(frames_b) == 12
    assert info.fps == pytest.approx(20.0) and info_b.fps == pytest.approx(20.0)
    assert (info.width, info.height) == (160, 120)
    for a, b in zip(frames, frames_b, strict=True):
        np.testing.assert_array_equal(a, b)
    assert all(t2 > t1 for t1, t2 in zip(times, times[1:], strict=False))
    assert times[1] - times[0] == pytest.approx(1 / 20.0, abs=1e-3)
    # the moving block moved: decoding returns the real content, in order
    col = [int(np.argmax(f[40, :, 0] > 128)) for f in frames]
    assert col == sorted(col) and col[-1] > col[0]


def test_large_frames_are_downscaled_not_rejected(tmp_path):
    path = write_clip(tmp_path / "big.mp4", _frames(4, h=480, w=640), fps=10.0)
    frames, _, info = read_frames(path, max_side=320)
    assert frames[0].shape == (240, 320, 3)
    assert (info.width, info.height) == (640, 480)
    small = np.zeros((100, 50, 3), np.uint8)
    assert downscale_to(small, 320) is small


def test_max_frames_stops_early(tmp_path):
    path = write_clip(tmp_path / "c.mp4", _frames(12), fps=10.0)
    frames, times, _ = read_frames(path, max_frames=5)
    assert len(frames) == len(times) == 5


@pytest.mark.parametrize(
    "payload,match",
    [
        (b"", "empty input"),
        (
            np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
            "not a recognised video container",
        ),
        (b"this is a text file pretending to be an mp4\n" * 20, "not a recognised video container"),
    ],
)
def test_undecodable_bytes_raise(payload, match):
    with pytest.raises(VideoDecodeError, match=match):
        read_frames(payload)


def test_missing_file_and_truncated_file(tmp_path):
    with pytest.raises(VideoDecodeError, match="no such file"):
        VideoReader(tmp_path / "nope.mp4")
    path = write_clip(tmp_path / "c.mp4", _frames(12), fps=10.0)
    data = path.read_bytes()
    with pytest.raises(VideoDecodeError):
        read_frames(data[: len(data) // 20])
