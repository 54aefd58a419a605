"""`liveness magnify`: the before/after XT-slice picture, on synthetic stacks and real clips."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from liveness.cli import main
from model.cli_magnify import (
    GAP_PX,
    HEADER_PX,
    LINE_BGR,
    temporal_variation,
    xt_regions,
    xt_slice_image,
)
from model.video import read_frames, write_clip
from training.shared_data import REAL_CLIPS

TALKING = REAL_CLIPS / "thin_plate_spline_motion__driving.mp4"  # interview crop, talking, 25 fps
needs_real = pytest.mark.skipif(
    not TALKING.is_file(), reason=f"real face clips not present at {REAL_CLIPS}"
)


def _stacks(n_frames=30, side=16, seed=0):
    rng = np.random.default_rng(seed)
    before = rng.integers(0, 256, (n_frames, side, side, 3), dtype=np.uint8)
    return before, 255 - before


def test_picture_geometry_and_panels_hold_the_slices():
    before, after = _stacks()
    picture = xt_slice_image(before, after, row=5, scale=3)
    assert picture.shape == (HEADER_PX + 16 * 3 + GAP_PX + 30 * 3, 2 * 16 * 3 + GAP_PX, 3)
    regions = xt_regions(30, 16, scale=3)
    for name, frames in (("before", before), ("after", after)):
        xt = picture[regions[f"{name}_xt"]]
        # row t of the panel (3x enlarged) is line 5 of frame t, x across
        assert np.array_equal(xt[::3, ::3], frames[:, 5])
        assert np.array_equal(xt[2::3, 2::3], frames[:, 5])
        xy = picture[regions[f"{name}_xy"]]
        assert np.array_equal(xy[::3, ::3][:5], frames[15, :5])  # middle frame above the line
        assert (xy[5 * 3 + 1] == LINE_BGR).all()  # the line marks the slice
    assert picture[: HEADER_PX - 2].max() > 200  # labels drawn in the header


def test_picture_rejects_mismatched_stacks_and_rows_outside_the_crop():
    before, after = _stacks()
    with pytest.raises(ValueError, match="equal"):
        xt_slice_image(before, after[:-1], row=3)
    with pytest.raises(ValueError, match="outside"):
        xt_slice_image(before, after, row=16)


def test_temporal_variation_counts_only_pairs_of_face_frames():
    xt = np.zeros((4, 8, 3), np.uint8)
    assert temporal_variation(xt) == 0
    xt[1::2] = 10  # 0, 10, 0, 10: every step is 10 grey levels
    assert temporal_variation(xt) == pytest.approx(10)
    xt[3] = 250
    assert temporal_variation(xt, valid=np.array([True, True, True, False])) == pytest.approx(10)


def _panels(path: Path, n_frames: int, side: int = 112) -> dict[str, np.ndarray]:
    picture = cv2.imread(str(path))
    assert picture is not None, f"{path} was not written"
    regions = xt_regions(n_frames, side)
    assert picture.shape == (regions["before_xt"][0].stop, regions["after_xt"][1].stop, 3)
    return {name: picture[box] for name, box in regions.items()}


@needs_real
def test_cli_magnifies_a_real_talking_face(tmp_path, capsys):
    out, video = tmp_path / "xt.png", tmp_path / "side_by_side.mp4"
    args = ["magnify", str(TALKING), "--image", str(out), "--frames", "60", "--quiet"]
    assert main([*args, "--video", str(video)]) == 0
    panels = _panels(out, 60)
    before = temporal_variation(panels["before_xt"][::2, ::2])
    after = temporal_variation(panels["after_xt"][::2, ::2])
    assert before > 1 and after > 1.3 * before  # the magnifier made the motion larger
    assert "60 frames (60 with a face)" in capsys.readouterr().out
    capture = cv2.VideoCapture(str(video))
    assert capture.get(cv2.CAP_PROP_FRAME_WIDTH) == 224 and capture.get(cv2.CAP_PROP_FPS) == 25
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 60


@needs_real
def test_cli_leaves_a_still_photo_unchanged(tmp_path):
    """Paper Fig. 2(a-c): a printed photo has no motion, so nothing is magnified."""
    (frame,), _, _ = read_frames(TALKING, max_frames=1)
    # lossless PNG frames: MJPG decodes the first of 30 identical frames differently (a step)
    still = write_clip(tmp_path / "photo.avi", [frame] * 30, 25, "png ")
    out = tmp_path / "photo_xt.png"
    assert main(["magnify", str(still), "--image", str(out), "--alpha", "30", "--quiet"]) == 0
    panels = _panels(out, 30)
    assert np.array_equal(panels["before_xt"], panels["after_xt"])
    assert temporal_variation(panels["before_xt"]) == 0


@needs_real
def test_cli_takes_crop_and_magnifier_from_the_models_manifest(tmp_path, capsys, tiny_model_dir):
    out = tmp_path / "xt.png"
    args = ["magnify", str(TALKING), "--image", str(out), "--frames", "20", "--quiet"]
    assert main([*args, "--model", str(tiny_model_dir)]) == 0
    _panels(out, 20, side=64)  # the tiny model's 64 px crop, not the default's 112
    assert "row 26 of 64" in capsys.readouterr().out
    assert main([*args, "--model", str(tmp_path)]) == 2
    assert "--model" in capsys.readouterr().err


def test_cli_reports_bad_input_with_a_reason(tmp_path, capsys):
    out = str(tmp_path / "xt.png")
    assert main(["magnify", str(tmp_path / "missing.mp4"), "--image", out]) == 2
    assert "cannot open video" in capsys.readouterr().err
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(10)]
    noise = write_clip(tmp_path / "noise.avi", frames, 25, "MJPG")
    assert main(["magnify", str(noise), "--image", out, "--quiet"]) == 2
    assert "no face found in the first 10 frames" in capsys.readouterr().err
    assert main(["magnify", str(noise), "--image", out, "--row", "1.5"]) == 2
    assert "--row" in capsys.readouterr().err
    assert main(["magnify", str(noise), "--image", out, "--out", str(tmp_path)]) == 2
    assert "--out names a folder" in capsys.readouterr().err
    assert not Path(out).exists()
