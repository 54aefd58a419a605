"""Decoding real video containers from files and from bytes."""

from __future__ import annotations

import numpy as np
import pytest

from model.container import sniff_container
from model.video import (
    PixelBudget,
    VideoDecodeError,
    VideoReader,
    VideoTooLarge,
    downscale_to,
    open_container,
    read_frames,
)
from tests.helpers import write_clip
from tests.video_media import encode_with_pyav, mjpeg_avi_claiming, mjpeg_avi_growing


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


# -- containers: only mp4/mov, webm/mkv and avi reach FFmpeg ----------------------------------
@pytest.mark.parametrize(
    "head,kind",
    [
        (b"\x00\x00\x00\x18ftypisom", "mov"),
        (b"\x00\x00\x00\x00mdat\x00\x00\x00\x00", "mov"),  # an older QuickTime layout
        (b"\x00\x00\x05\x00moov\x00\x00\x00\x00", "mov"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", "matroska"),
        (b"RIFF\x10\x00\x00\x00AVI LIST", "avi"),
    ],
)
def test_recognised_containers(head, kind):
    assert sniff_container(head) == kind


@pytest.mark.parametrize(
    "payload",
    [
        b"ffconcat version 1.0\nfile victim.mp4\n",
        b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nvictim.mp4\n#EXT-X-ENDLIST\n",
        b"concat:victim.mp4|victim.mp4",
        b"subfile,,start,0,end,0,,:victim.mp4",
        b"victim%03d.png",
        b"\x00\x00\x00\x04ftyp",  # a box too small to be one
        b"RIFF\x10\x00\x00\x00WAVEfmt ",  # RIFF, but not AVI
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    ],
)
def test_anything_else_is_refused_before_a_decoder_sees_it(tmp_path, payload, monkeypatch):
    # a real video beside the reader, under every name the payloads use
    clip = write_clip(tmp_path / "victim.mp4", _frames(12), fps=10.0)
    for name in ("victim000.png", "victim001.png"):
        (tmp_path / name).write_bytes(clip.read_bytes())
    monkeypatch.chdir(tmp_path)
    with pytest.raises(VideoDecodeError, match="not a recognised video container"):
        read_frames(payload)
    text = tmp_path / "list.txt"
    text.write_bytes(payload)
    with pytest.raises(VideoDecodeError, match="not a recognised video container"):
        read_frames(text)


def test_an_ffconcat_list_behind_an_mp4_box_is_not_followed(tmp_path, monkeypatch):
    """The mov demuxer is forced on anything that starts like an mp4: the concat demuxer
    never reads the list, so the file it names is never opened."""
    write_clip(tmp_path / "victim.mp4", _frames(12), fps=10.0)
    monkeypatch.chdir(tmp_path)
    payload = b"\x00\x00\x00\x08ftyp" + b"ffconcat version 1.0\nfile victim.mp4\n"
    with pytest.raises(VideoDecodeError) as caught:
        read_frames(payload)
    assert "not a mov container" in str(caught.value) or "no decodable" in str(caught.value)


@pytest.mark.parametrize(
    "demuxer,playlist",
    [
        ("concat", b"ffconcat version 1.0\nfile victim.mp4\n"),
        ("hls", b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nvictim.mp4\n#EXT-X-ENDLIST\n"),
    ],
)
def test_ffmpeg_may_open_nothing_beside_the_buffer(tmp_path, monkeypatch, demuxer, playlist):
    """The second line of defence, under the container check: even a demuxer that opens
    the files its input names (never chosen for client bytes) gets nothing through the
    reader's options. Without them, the same playlist decodes the file beside it."""
    import io

    import av

    write_clip(tmp_path / "victim.mp4", _frames(12), fps=10.0)
    monkeypatch.chdir(tmp_path)
    unguarded = av.open(io.BytesIO(playlist), format=demuxer, options={"safe": "0"})
    assert sum(1 for _ in unguarded.decode(video=0)) == 12
    unguarded.close()
    refused = (av.FFmpegError, PermissionError)
    with pytest.raises(refused), open_container(io.BytesIO(playlist), demuxer) as guarded:
        list(guarded.decode(video=0))


@pytest.mark.parametrize(
    "fmt,codec", [("webm", "libvpx"), ("matroska", "libx264"), ("mp4", "libx264")]
)
def test_pyav_encoded_containers_decode(fmt, codec):
    frames = _frames(10)
    data = encode_with_pyav(fmt, codec, frames)
    out, times, info = read_frames(data)
    assert len(out) == 10 and out[0].shape == (120, 160, 3)
    assert info.fps == pytest.approx(25.0)
    assert np.abs(out[5].astype(int) - frames[5]).mean() < 8  # the real content, lossy


# -- PyAV's frames are OpenCV's ------------------------------------------------------------
def _opencv_frames(path):
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames, times = [], []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
        times.append(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)
    return frames, times, cap.get(cv2.CAP_PROP_FPS)


@pytest.mark.parametrize("name", ["liveportrait__driving_d11.mp4", "ammp__recorded_62c325.avi"])
def test_frames_and_times_equal_opencv_on_real_clips(name):
    """What the embedded model was trained and measured on (OpenCV's FFmpeg backend) is
    what the reader returns, to the bit: same frames, same times, same fps."""
    from training.shared_data import REAL_CLIPS

    path = REAL_CLIPS / name
    if not path.is_file():
        pytest.skip(f"real clip {path} is absent")
    want, want_t, want_fps = _opencv_frames(path)
    got, got_t, info = read_frames(path)
    assert len(got) == len(want) > 0
    assert max(int(np.abs(a.astype(int) - b).max()) for a, b in zip(got, want, strict=True)) == 0
    assert got_t == want_t
    assert info.fps == want_fps
    # and the same from bytes, as the server decodes them
    from_bytes, _, _ = read_frames(path.read_bytes(), max_frames=20)
    assert all(np.array_equal(a, b) for a, b in zip(from_bytes, got, strict=False))


# -- pixel budgets -----------------------------------------------------------------------------
def test_an_8k_clip_is_refused_from_its_header_before_decoding(tmp_path):
    import time

    path = write_clip(tmp_path / "8k.mp4", [np.full((4320, 7680, 3), 128, np.uint8)] * 3, 10.0)
    budget = PixelBudget(max_frame_pixels=4096 * 4096, max_total_pixels=10**12)
    start = time.perf_counter()
    with pytest.raises(VideoTooLarge, match="7680x4320 .*over the limit of 16777216") as caught:
        VideoReader(path.read_bytes(), budget=budget)
    assert caught.value.code == "frame_too_large"
    assert time.perf_counter() - start < 2.0


def test_total_pixels_are_refused_from_the_header_counting_at_most_max_frames(tmp_path):
    path = write_clip(tmp_path / "c.mp4", _frames(12), fps=10.0)  # 160x120 x 12 frames
    budget = PixelBudget(max_frame_pixels=10**6, max_total_pixels=160 * 120 * 10)
    with pytest.raises(VideoTooLarge, match="12 frames of 160x120 .*limit of 192000") as caught:
        VideoReader(path, budget=budget)
    assert caught.value.code == "pixel_budget_exceeded"
    # a caller that takes at most 10 frames is within the budget
    reader = VideoReader(path, budget=budget, max_frames=10)
    assert len(list(reader)) == 11  # max_frames, and one to show the video goes on


def test_total_pixels_are_counted_while_decoding_when_the_header_does_not_say():
    data = encode_with_pyav("webm", "libvpx", _frames(20), seekable=False)
    reader = VideoReader(data, budget=PixelBudget(10**6, 160 * 120 * 15))
    assert reader.info.frame_count == 0  # a live recording's header: no count, no duration
    decoded = 0
    with pytest.raises(VideoTooLarge, match="more than the limit of 288000 pixels") as caught:
        for _ in reader:
            decoded += 1
    assert caught.value.code == "pixel_budget_exceeded" and decoded == 15


def test_a_16000x16000_header_is_refused_before_decoding(tmp_path):
    data = mjpeg_avi_claiming(tmp_path, (16000, 16000), (16000, 16000))
    with pytest.raises(VideoTooLarge, match="16000x16000 .*limit of 16777216") as caught:
        VideoReader(data, budget=PixelBudget(4096 * 4096, 10**12))
    assert caught.value.code == "frame_too_large"


def test_a_frame_the_header_hides_is_refused_by_the_decoder(tmp_path):
    """The AVI header says 64x48, the JPEGs inside say 16000x16000: the decoder's own
    max_pixels refuses the frame before allocating it (768 MB in BGR)."""
    import resource

    data = mjpeg_avi_claiming(tmp_path, (64, 48), (16000, 16000))
    reader = VideoReader(data, budget=PixelBudget(4096 * 4096, 10**12))
    assert (reader.info.width, reader.info.height) == (64, 48)  # the header passed
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(VideoDecodeError, match="first frame cannot be decoded"):
        list(reader)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 100


def test_a_frame_that_grows_midway_is_refused_as_too_large():
    """Header and first frames 64x48, then 640x480 JPEGs: without a budget they decode; with
    one of 100x100 px the decoder refuses the first large frame, and the video is refused
    with frame_too_large rather than scored on the frames before it."""
    data = mjpeg_avi_growing((64, 48), (640, 480), 10, 10)
    assert [f.shape[:2] for f, _ in VideoReader(data)][9:11] == [(48, 64), (480, 640)]
    reader = VideoReader(data, budget=PixelBudget(100 * 100, 10**9))
    seen = []
    with pytest.raises(VideoTooLarge, match="frame 11 changes the video's size") as info:
        for frame, _ in reader:
            seen.append(frame.shape[:2])
    assert info.value.code == "frame_too_large"
    assert seen == [(48, 64)] * 10
    assert reader.decoded_pixels == 10 * 64 * 48


def test_ffmpeg_writes_nothing_on_stderr(tmp_path):
    """A damaged clip makes FFmpeg complain: not on the process's stderr."""
    import subprocess
    import sys

    path = write_clip(tmp_path / "c.mp4", _frames(12), fps=10.0)
    data = bytearray(path.read_bytes())
    mdat = data.find(b"mdat")
    for i in range(mdat + 200, len(data) - 200, 97):
        data[i] ^= 0x5A
    bad = tmp_path / "damaged.mp4"
    bad.write_bytes(bytes(data))
    code = (
        "import sys\nfrom model.video import VideoReader, VideoDecodeError\n"
        "try:\n    print(sum(1 for _ in VideoReader(sys.argv[1])))\n"
        "except VideoDecodeError as e:\n    print('refused')\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(bad)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""


def _with_display_matrix(path, out, matrix: tuple[int, ...]):
    """A copy of the mp4 at ``path`` whose track header carries ``matrix`` (a b u c d v x y
    w, 16.16 and 2.30 fixed point, as ISO/IEC 14496-12 stores it): how a phone marks a clip
    recorded in portrait."""
    import struct

    data = bytearray(path.read_bytes())
    box = data.find(b"tkhd")
    version = data[box + 4]
    # after the type: version and flags, the times, track id and duration (32 bytes in
    # version 1, 20 in 0), 8 reserved, then layer, group, volume and 2 reserved
    offset = box + 4 + 4 + (32 if version == 1 else 20) + 8 + 8
    data[offset : offset + 36] = struct.pack(">9I", *(v & 0xFFFFFFFF for v in matrix))
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize(
    ("matrix", "turn"),
    [
        # shown turned 90 degrees clockwise: a portrait phone clip (the stored frames lie on
        # their side, turned counter-clockwise)
        ((0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000), 1),
        ((-0x10000, 0, 0, 0, -0x10000, 0, 0, 0, 0x40000000), 2),  # upside down
        ((0, -0x10000, 0, 0x10000, 0, 0, 0, 0, 0x40000000), 3),  # 90 degrees counter-clockwise
    ],
)
def test_frames_come_out_the_way_the_container_says_they_are_shown(tmp_path, matrix, turn):
    """A clip of upright frames stored turned, with the display matrix that turns them back,
    decodes upright: the picture a phone showed while recording, not the sensor's."""
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    upright = np.repeat(np.repeat(small, 20, axis=0), 20, axis=1)  # 120 x 160, blocky
    stored = np.ascontiguousarray(np.rot90(upright, turn))
    plain = write_clip(tmp_path / "stored.mp4", [stored] * 5, 10.0)
    phone = _with_display_matrix(plain, tmp_path / "phone.mp4", matrix)
    frames, _, _ = read_frames(phone)
    assert len(frames) == 5
    for frame in frames:
        assert frame.shape == upright.shape
        assert np.abs(frame.astype(int) - upright.astype(int)).mean() < 6
    as_stored, _, _ = read_frames(plain)  # no matrix: the frames as they are stored
    assert as_stored[0].shape == stored.shape
