"""The still attack kinds (training/synth/still.py): one frame of the live clip, fixed or
moved rigidly, and the data set's ``still``/``still_handheld`` clips through the camera.

Pure tests use the drawn faces of test_synth.py; the real-face tests use the first
frames of a genuine clip from ../shared/data/real and skip where it is absent.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from liveness.cli import main as liveness_main
from model.labels import GENUINE
from model.video import read_frames, write_clip
from tests.training.synth.test_synth import (
    FPS,
    REAL_CLIP,
    cartoon_face,
    largest_face,
    read_video,
    rigid_residual,
)
from training.records import read_index
from training.shared_data import REAL_CLIPS
from training.synth.dataset import ATTACK_KINDS, render_attack, synthesize_dataset
from training.synth.still import STILL_KINDS, StillScene, sample_still_params


def _smoothed(frame: np.ndarray) -> np.ndarray:
    """Grey, blurred enough that sensor noise and JPEG blocks average out."""
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)
    return cv2.GaussianBlur(gray, (0, 0), 2.0)


def _face_motion(frames: list[np.ndarray], box: tuple[int, int, int, int]) -> float:
    """Largest mean absolute change of the smoothed, standardised face region from the
    first frame's (standardising removes the camera's exposure and white-balance drift)."""
    x, y, w, h = box

    def patch(f: np.ndarray) -> np.ndarray:
        p = _smoothed(f)[y : y + h, x : x + w]
        return (p - p.mean()) / p.std()

    ref = patch(frames[0])
    return max(float(np.abs(patch(f) - ref).mean()) for f in frames)


def test_still_kinds_are_attack_kinds():
    assert set(STILL_KINDS) == {"still", "still_handheld"}
    assert set(STILL_KINDS) <= set(ATTACK_KINDS)


def test_still_shows_one_live_frame_unchanged():
    live = cartoon_face(20)
    scene, params = render_attack("still", live, FPS, np.random.default_rng(4))
    assert params["kind"] == "still" and params["motion"]["support"] == "fixed"
    assert params["shake"] is None and params["placement"] is None
    assert scene.shape == live.shape and scene.dtype == np.uint8
    # Before the camera every frame is the chosen live frame, byte for byte.
    shown = live[params["still_index"]]
    assert all(np.array_equal(f, shown) for f in scene)


def test_the_still_frame_is_drawn_by_the_seed():
    live = cartoon_face(20)
    picks = {
        render_attack("still", live, FPS, np.random.default_rng(s))[1]["still_index"]
        for s in range(12)
    }
    assert len(picks) > 3  # not always the same frame (cartoons have no detectable face)
    again = render_attack("still", live, FPS, np.random.default_rng(5))
    assert again[1] == render_attack("still", live, FPS, np.random.default_rng(5))[1]


def test_handheld_still_moves_but_only_rigidly():
    live = cartoon_face(24, (180, 240))
    held, params = render_attack("still_handheld", live, FPS, np.random.default_rng(3))
    assert params["motion"]["support"] == "hand"
    assert not params["placement"]["edges_visible"]  # the photo fills the frame
    box = (84, 54, 72, 72)  # the frame centre: always inside the photo
    pairs = [(0, 8), (8, 16), (0, 23)]
    moved = [float(np.abs(held[a].astype(int) - held[b]).mean()) for a, b in pairs]
    assert max(moved) > 1.0, moved  # it does move
    rigid = [rigid_residual(held[a], held[b], box) for a, b in pairs]
    alive = [rigid_residual(live[a], live[b], box) for a, b in pairs]
    assert max(rigid) < 0.3 * np.mean(alive), (rigid, alive)


@pytest.mark.parametrize("shake", [False, True])
def test_every_handheld_frame_is_the_still_under_its_homography(shake):
    live = cartoon_face(16, (180, 240))
    rng = np.random.default_rng(8)
    params = sample_still_params("still_handheld", live, rng, shake=shake)
    assert (params.shake is not None) == shake
    still = live[params.still_index]
    scene = StillScene(still, params, 16 / FPS)
    moved_by_shake = []
    for i in (0, 7, 15):
        t = i / FPS
        frame = scene.render(t)
        expect = cv2.warpPerspective(still, scene.homography(t), (240, 180))
        inner = (slice(30, 150), slice(40, 200))
        assert np.abs(frame[inner].astype(int) - expect[inner]).mean() < 1.0
        moved_by_shake.append(not np.allclose(scene.shake_homography(t), np.eye(3)))
    assert any(moved_by_shake) == shake


def test_shake_is_half_of_the_handheld_stills():
    live = cartoon_face(8)
    shaken = [
        sample_still_params("still_handheld", live, np.random.default_rng(s)).shake is not None
        for s in range(60)
    ]
    assert 15 <= sum(shaken) <= 45


def test_unknown_still_kind_is_refused():
    with pytest.raises(ValueError, match="still"):
        sample_still_params("still_moving", cartoon_face(4), np.random.default_rng(0))


# ---------------------------------------------------------------- a real face, recorded


@pytest.fixture(scope="module")
def real_source(tmp_path_factory) -> Path:
    """The first 40 frames of a genuine clip, 256x256 (as test_synth.py's fixture)."""
    if not REAL_CLIP.is_file():
        pytest.skip(f"genuine clips not present at {REAL_CLIPS} (../shared/data/real)")
    frames, _, _ = read_frames(REAL_CLIP, max_frames=40)
    assert len(frames) == 40, f"{REAL_CLIP} has fewer than 40 frames"
    frames = [cv2.resize(f, (256, 256), interpolation=cv2.INTER_AREA) for f in frames]
    return write_clip(tmp_path_factory.mktemp("real") / "d0_start.avi", frames, FPS, "MJPG")


@pytest.fixture(scope="module")
def still_set(real_source, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("still_set") / "set"
    records = synthesize_dataset(
        [real_source],
        out,
        seed=11,
        kinds=STILL_KINDS,
        variants_per_source=1,
        genuine_variants_per_source=1,
        max_seconds=1.5,
        progress=False,
    )
    return {(r.attack or r.label): r for r in records}


def test_recorded_still_face_has_no_motion_beyond_camera_noise(still_set):
    still, _, _ = read_video(still_set["still"].path)
    genuine, _, _ = read_video(still_set[GENUINE].path)
    assert len(still) > 20
    # The camera adds fresh noise to every frame: no two recorded frames are identical...
    assert not np.array_equal(still[0], still[len(still) // 2])
    box = largest_face(still[0])
    assert box is not None
    # ...but once that noise is smoothed away the face does not change, while the same
    # person's genuine clip (talking, moving) does, many times more.
    box_live = largest_face(genuine[0])
    assert box_live is not None
    frozen, alive = _face_motion(still, box), _face_motion(genuine, box_live)
    assert frozen < 0.05, frozen
    assert alive > 4 * frozen, (frozen, alive)


def test_recorded_handheld_still_moves_rigidly(still_set):
    held, _, _ = read_video(still_set["still_handheld"].path)
    genuine, _, _ = read_video(still_set[GENUINE].path)
    box, box_live = largest_face(held[0]), largest_face(genuine[0])
    assert box is not None and box_live is not None
    assert _face_motion(held, box) > 0.1  # the photo moves in front of the camera
    n = min(len(held), len(genuine)) - 1
    pairs = [(0, n // 2), (n // 2, n), (0, n)]
    rigid = [rigid_residual(held[a], held[b], box) for a, b in pairs]
    alive = [rigid_residual(genuine[a], genuine[b], box_live) for a, b in pairs]
    assert max(rigid) < 0.5 * np.mean(alive), (rigid, alive)


def test_cli_makes_still_kinds_with_their_sidecars(real_source, tmp_path):
    out = tmp_path / "set"
    args = ["synth", "--source", str(real_source), "--out", str(out), "--quiet"]
    args += ["--kinds", "still,still_handheld", "--variants", "1", "--genuine-variants", "1"]
    args += ["--max-seconds", "1", "--splits", "train=1"]
    assert liveness_main(args) == 0
    records = read_index(out / "index.csv")
    assert sorted(r.attack or r.label for r in records) == [GENUINE, "still", "still_handheld"]
    for r in records:
        if r.attack:
            assert r.meta["support"] == ("fixed" if r.attack == "still" else "hand")
