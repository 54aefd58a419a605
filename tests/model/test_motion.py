"""The motion descriptor (model/motion.py): what it reads of a still picture, of a picture
moved as one plane, and of a face that moves against its surroundings."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from model.config import MOTION_DIM, CropConfig, PreprocessConfig
from model.face import FaceBox, crop_face, crop_square
from model.motion import EMPTY, MotionMeter
from model.preprocess import Preprocessor
from tests.helpers import real_frames

H, W = 240, 320
BOX = FaceBox(120.0, 80.0, 80.0, 80.0)  # the face box: centred, 80 px
CROP = CropConfig(input_size=112, margin=0.6)
FACE, RING, ALL_RESIDUAL, FACE_RESIDUAL, RELATIVE = 0, 1, 2, 3, 4


def texture(seed: int, h: int = H, w: int = W) -> np.ndarray:
    """A smooth random BGR picture with detail at several scales (flow needs texture)."""
    rng = np.random.default_rng(seed)
    out = np.zeros((h, w, 3), np.float32)
    for scale in (4, 8, 16):
        small = rng.uniform(0, 255, (h // scale + 2, w // scale + 2, 3)).astype(np.float32)
        out += cv2.resize(small, (w + 2 * scale, h + 2 * scale))[
            scale : scale + h, scale : scale + w
        ]
    return np.clip(out / 3, 0, 255).astype(np.uint8)


def moved(image: np.ndarray, dx: float, dy: float, angle: float = 0.0) -> np.ndarray:
    m = cv2.getRotationMatrix2D((W / 2, H / 2), angle, 1.0)
    m[:, 2] += (dx, dy)
    return cv2.warpAffine(image, m, (W, H), borderMode=cv2.BORDER_REFLECT)


def descriptor(frames: list[np.ndarray], boxes: list[FaceBox] | None = None) -> np.ndarray:
    """The mean descriptor of a run of frames, as the Preprocessor's meter reads them."""
    meter = MotionMeter(CROP.margin)
    rows = []
    for i, frame in enumerate(frames):
        box = boxes[i] if boxes else BOX
        meter.measure(crop_face(frame, box, CROP), crop_square(box, W, H, CROP), 30.0)
        if i:
            rows.append(meter.take())
    return np.mean(rows, axis=0)


def noisy(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(image + rng.normal(0, 2.0, image.shape), 0, 255).astype(np.uint8)


def test_a_still_picture_barely_moves_and_a_moved_one_moves_as_one_plane() -> None:
    rng = np.random.default_rng(1)
    base = texture(0)
    still = descriptor([noisy(base, rng) for _ in range(12)])
    # a hand-held picture: translation and a little rotation, different every frame
    steps = [(1.2 * np.sin(i), 0.8 * np.cos(0.7 * i), 0.3 * np.sin(0.5 * i)) for i in range(12)]
    held = descriptor([noisy(moved(base, *s), rng) for s in steps])
    assert held[FACE] > still[FACE] + 2.0  # e^2: seven times the motion
    # ...but one affine motion explains it: the residual is a small part of the motion
    assert held[ALL_RESIDUAL] < held[FACE] - 1.5
    assert held[RELATIVE] < held[FACE] - 1.5


def test_a_face_moving_against_its_background_is_not_one_plane() -> None:
    rng = np.random.default_rng(2)
    room, face = texture(3), texture(4, 90, 90)
    frames = []
    for i in range(12):
        frame = room.copy()
        x, y = 115 + round(3 * np.sin(0.9 * i)), 75 + round(2 * np.cos(0.8 * i))
        frame[y : y + 90, x : x + 90] = face  # the head moves, the room stays
        frames.append(noisy(frame, rng))
    live = descriptor(frames)
    steps = [(3 * np.sin(0.9 * i), 2 * np.cos(0.8 * i)) for i in range(12)]
    picture = descriptor([noisy(moved(frames[0], *s), rng) for s in steps])
    assert live[RELATIVE] > picture[RELATIVE] + 1.0
    assert live[ALL_RESIDUAL] > picture[ALL_RESIDUAL] + 1.0
    assert live[RING] < live[FACE] - 0.5  # the margin is mostly room: it stays


def test_the_trackers_own_moves_are_not_motion() -> None:
    """The same still picture cut with a box that jumps by several pixels each frame: the
    previous frame is recut where the current box lies, so nothing moves."""
    rng = np.random.default_rng(5)
    base = texture(6)
    boxes = [FaceBox(120.0 + 4 * (i % 3), 80.0 - 3 * (i % 2), 80.0 + i % 2, 80.0 + i % 2) for i in range(12)]  # fmt: skip
    jumpy = descriptor([noisy(base, rng) for _ in range(12)], boxes)
    steps = [(4 * (i % 3), -3 * (i % 2)) for i in range(12)]
    truly = descriptor([noisy(moved(base, *s), rng) for s in steps])
    assert jumpy[FACE] < truly[FACE] - 1.5


def test_the_meter_averages_frames_between_takes_and_starts_empty() -> None:
    meter = MotionMeter(CROP.margin)
    base = texture(7)
    square = crop_square(BOX, W, H, CROP)
    assert np.array_equal(meter.take(), EMPTY)  # nothing measured yet
    meter.measure(crop_face(base, BOX, CROP), square, 30.0)
    assert np.array_equal(meter.take(), EMPTY)  # one frame: no pair yet
    for dx in (1.0, 2.0):
        meter.measure(crop_face(moved(base, dx, 0), BOX, CROP), square, 30.0)
    two = meter.take()
    assert two.shape == (MOTION_DIM,) and two.dtype == np.float32 and np.all(two > EMPTY)
    meter.reset()
    meter.measure(crop_face(base, BOX, CROP), square, 30.0)
    assert np.array_equal(meter.take(), EMPTY)  # a new segment has no predecessor


def test_flow_is_rescaled_to_the_frame_rate_and_face_size() -> None:
    """The same motion per second reads the same at 15 and 30 fps, and on a face twice as
    large."""
    base = texture(8, 480, 640)
    big = FaceBox(240.0, 160.0, 160.0, 160.0)

    def one(fps: float, step: float, box: FaceBox, image: np.ndarray) -> float:
        meter = MotionMeter(CROP.margin)
        h, w = image.shape[:2]
        m = np.float32([[1, 0, step], [0, 1, 0]])
        second = cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REFLECT)
        for frame in (image, second):
            meter.measure(crop_face(frame, box, CROP), crop_square(box, w, h, CROP), fps)
        return float(meter.take()[FACE])

    small = cv2.resize(base, (W, H), interpolation=cv2.INTER_AREA)
    at_30 = one(30.0, 1.0, BOX, small)
    assert one(15.0, 2.0, BOX, small) == pytest.approx(at_30, abs=0.15)
    assert one(30.0, 2.0, big, base) == pytest.approx(at_30, abs=0.15)


def test_the_preprocessor_hands_motion_out_with_sampled_frames(real_clip_paths) -> None:
    frames, fps = real_frames(real_clip_paths[0], 40)
    config = PreprocessConfig(crop=CropConfig(input_size=64))
    with_motion = Preprocessor(config, fps, motion=True)
    without = Preprocessor(config, fps)
    seen = 0
    for frame in frames:
        a, b = with_motion.process(frame), without.process(frame)
        assert b.motion is None
        assert (a.motion is not None) == a.sampled
        if a.sampled:
            assert a.motion.shape == (MOTION_DIM,) and np.all(np.isfinite(a.motion))
            # the first sampled frame of a segment has no pair behind it
            assert np.array_equal(a.motion, EMPTY) == (a.new_segment and seen == 0)
            seen += 1
    assert seen >= 10
