"""The BlazeFace detector with its real bundled weights, its install step and selection."""

from __future__ import annotations

import hashlib
import math
import shutil
import subprocess
import sys
import zipfile
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from model.config import CropConfig, PreprocessConfig
from model.detectors import (
    BLAZEFACE_FILE,
    BLAZEFACE_SHA256,
    BlazeFaceDetector,
    DetectorModelError,
    HaarDetector,
    detector_record,
    make_detector,
)
from model.face import FaceCropper
from model.manifest import Manifest

REPO_ROOT = Path(__file__).resolve().parents[2]
FETCH = REPO_ROOT / "scripts" / "fetch_detector_weights.py"
STILL_CLIP = "eulerian_remote_heartrate__face.mp4"


def clip_frame(path: Path, where: float = 0.5) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.set(cv2.CAP_PROP_POS_FRAMES, max(0, int(n * where)))
    ok, frame = cap.read()
    cap.release()
    assert ok, f"{path.name}: no frame decoded"
    return frame


def rotate(frame: np.ndarray, degrees: float) -> np.ndarray:
    h, w = frame.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(frame, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


@pytest.fixture(scope="module")
def blazeface() -> BlazeFaceDetector:
    return BlazeFaceDetector()


@pytest.fixture(scope="module")
def real_frames(real_clip_paths) -> dict[str, np.ndarray]:
    """One mid-clip frame of each real clip."""
    return {p.name: clip_frame(p) for p in real_clip_paths}


# ---------------------------------------------------------------------------- real clips
def test_blazeface_finds_the_face_in_the_real_clips(blazeface, real_frames):
    missed = [name for name, frame in real_frames.items() if not blazeface.detect(frame)]
    # the one hard clip is a wide stage shot with small faces
    assert len(missed) <= max(1, len(real_frames) // 20), missed


def test_blazeface_box_matches_haar_geometry_on_a_frontal_face(blazeface, real_clip_paths):
    (path,) = [p for p in real_clip_paths if p.name == STILL_CLIP] or [None]
    if path is None:
        pytest.skip(f"{STILL_CLIP} is not among the real clips")
    frame = clip_frame(path, 0.2)
    (b,), (h,) = blazeface.detect(frame), HaarDetector().detect(frame)
    assert b.iou(h) > 0.6  # grown to Haar's geometry, the crop margin means the same
    assert 0.8 < b.w / h.w < 1.25


@pytest.mark.parametrize("degrees", [30, -30, 45, -45])
def test_blazeface_finds_rolled_faces_and_its_eyes_follow_the_roll(blazeface, real_frames, degrees):
    names = [n for n in sorted(real_frames) if "liveportrait" in n or "pc_avs" in n][:6]
    assert names, "no close-up clips among the real clips"
    found = 0
    for name in names:
        boxes = blazeface.detect(rotate(real_frames[name], degrees))
        if not boxes:
            continue
        found += 1
        box, kps = boxes[0], blazeface.last_keypoints[0]
        eyes = kps[:2]  # the model's first two keypoints: the eyes
        for x, y in eyes:
            assert box.x <= x <= box.x + box.w and box.y <= y <= box.y + box.h
        (x0, y0), (x1, y1) = sorted(eyes.tolist())  # left to right in the image
        angle = math.degrees(math.atan2(y1 - y0, x1 - x0))
        # cv2 rotates counter-clockwise for positive angles: the eye line tilts up (-y)
        assert abs(angle + degrees) < 15, (name, angle)
    assert found >= len(names) - 1


def test_haar_misses_what_blazeface_finds_at_45_degrees(blazeface, real_frames):
    names = [n for n in sorted(real_frames) if "pc_avs" in n][:6]
    rolled = [rotate(real_frames[n], 45) for n in names]
    blaze = sum(bool(blazeface.detect(f)) for f in rolled)
    haar = sum(bool(HaarDetector().detect(f)) for f in rolled)
    assert blaze >= len(names) - 1 and haar < blaze


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "shape, value",
    [
        ((480, 640, 3), None),
        ((40, 16000, 3), 128),
        ((1, 1, 3), 200),
        ((1, 1), 0),
        ((480, 640), 128),
        ((16000, 8, 3), 30),
    ],  # fmt: skip
    ids=["noise", "16000-wide", "1px", "1px-grey", "grey", "16000-tall"],
)
def test_frames_without_a_face(blazeface, shape, value):
    if value is None:
        frame = cv2.GaussianBlur(
            np.random.default_rng(0).integers(0, 256, shape, np.uint8), (5, 5), 2
        )
    else:
        frame = np.full(shape, value, np.uint8)
    assert blazeface.detect(frame) == []
    result = FaceCropper(CropConfig(), blazeface).process(frame)
    assert result.box is None and result.crop is None


def test_a_huge_frame_with_a_face_is_handled(blazeface, real_frames):
    name = sorted(real_frames)[0]
    wide = np.zeros((400, 16000, 3), np.uint8)
    face = cv2.resize(real_frames[name], (400, 400))
    wide[:, 7800:8200] = face
    boxes = blazeface.detect(wide)  # shrunk 125x: the face is 3 px, beyond the model
    assert all(b.w > 0 and b.h > 0 for b in boxes)
    crop = FaceCropper(CropConfig(), blazeface).process(wide)
    assert crop.crop is None or crop.crop.shape == (112, 112, 3)


# ---------------------------------------------------------------------------- the weights
def test_a_tampered_weights_file_is_refused(tmp_path):
    bad = tmp_path / "face_detection_short_range.tflite"
    data = bytearray(BLAZEFACE_FILE.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(DetectorModelError, match="is not the pinned"):
        BlazeFaceDetector(model_path=bad)
    with pytest.raises(DetectorModelError, match="missing.*make install-serve"):
        BlazeFaceDetector(model_path=tmp_path / "absent.tflite")


def run_fetch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(FETCH), *args], capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def test_the_install_step_keeps_a_checked_file_and_refuses_a_tampered_wheel(tmp_path):
    dest = tmp_path / "w" / "face.tflite"
    shutil.copy(BLAZEFACE_FILE, tmp_path / "good.tflite")
    dest.parent.mkdir()
    shutil.copy(BLAZEFACE_FILE, dest)
    run = run_fetch("--dest", str(dest), "--wheel", str(tmp_path / "no-such.whl"))
    assert run.returncode == 0 and "present" in run.stdout  # no wheel needed, none read
    # a wheel with the right member name but other bytes: refused, the file left alone
    fake = tmp_path / "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
    with zipfile.ZipFile(fake, "w") as z:
        z.writestr("mediapipe/modules/face_detection/face_detection_short_range.tflite", b"x")
    dest.write_bytes(b"tampered")
    run = run_fetch("--dest", str(dest), "--wheel", str(fake))
    assert run.returncode == 1
    assert "sha256" in run.stderr and "refusing" in run.stderr, run.stderr
    assert dest.read_bytes() == b"tampered"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["face.tflite"]


def test_the_install_step_extracts_the_pinned_file_from_pypi(tmp_path):
    dest = tmp_path / "face.tflite"
    run = run_fetch("--dest", str(dest))
    assert run.returncode == 0, run.stderr
    assert "written" in run.stdout
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == BLAZEFACE_SHA256


# ---------------------------------------------------------------------------- selection
def test_make_detector_builds_blazeface_by_default():
    assert CropConfig().detector == "blazeface"
    assert isinstance(make_detector(CropConfig()), BlazeFaceDetector)
    assert isinstance(make_detector(CropConfig(detector="haar")), HaarDetector)
    with pytest.raises(ValueError, match="asks for blazeface"):
        make_detector(CropConfig(), "some.onnx")
    with pytest.raises(ValueError, match="expected one of 'blazeface', 'haar', 'yunet'"):
        make_detector(CropConfig(detector="mtcnn"))


def test_a_manifest_without_a_detector_means_haar():
    pre = asdict(PreprocessConfig())
    del pre["crop"]["detector"]
    base = {"name": "m", "network": {}, "preprocess": pre, "feature_dim": 8}
    assert Manifest.from_dict(base).preprocess.crop.detector == "haar"
    pre["crop"]["detector"] = "blazeface"
    assert Manifest.from_dict(base).preprocess.crop.detector == "blazeface"


def test_the_detector_record_names_origin_sha_and_licence():
    record = detector_record("blazeface")
    assert record["sha256"] == BLAZEFACE_SHA256 and record["licence"] == "Apache-2.0"
    assert "mediapipe==0.10.21" in record["package"]
    assert detector_record("haar")["file"] == "haarcascade_frontalface_default.xml"


# ---------------------------------------------------------------------------- hysteresis
def test_a_held_track_goes_on_with_weaker_detections_a_new_one_needs_a_confident_face(
    blazeface, real_frames
):
    frame = real_frames[sorted(real_frames)[0]]
    strict = BlazeFaceDetector(score_threshold=0.9999, held_threshold=0.5)
    assert strict.detect(frame) == [] and strict.detect(frame, held=True)
    assert FaceCropper(CropConfig(), strict).process(frame).box is None  # never starts a track
    cropper = FaceCropper(CropConfig(detect_every=1), blazeface)
    first = cropper.process(frame)
    assert first.new_track and first.box is not None
    cropper._tracker.detector = strict  # from here on only weak detections
    for _ in range(12):  # more than max_missed passes: each one found the face
        r = cropper.process(frame)
        assert r.detected and r.box is not None and not r.new_track


# ---------------------------------------------------------------------------- the scripts
def test_the_detector_table_script_prints_every_table(real_clip_paths, tmp_path, capsys):
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    import detector_table

    small = [p for p in real_clip_paths if p.name.startswith("pc_avs__Pose")][:2]
    for p in small:
        (tmp_path / p.name).symlink_to(p)
    assert detector_table.main(["--data", str(tmp_path), "--per-clip", "3"]) == 0
    out = capsys.readouterr().out
    for p in small:
        assert f"| {p.name} | 224x224 | 3 |" in out
    assert "| **all 2 clips** | | 6 |" in out
    assert "| blazeface | 100.0 | 100.0 | 100.0 |" in out  # 0°, ±30°, ±45°
    assert "foreign load while timing" in out and "head roll on" in out


def test_the_crop_jitter_script_measures_each_tracker_setting(real_clip_paths, capsys):
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    import crop_jitter

    (clip,) = [p for p in real_clip_paths if p.name == STILL_CLIP] or [None]
    if clip is None:
        pytest.skip(f"{STILL_CLIP} is not among the real clips")
    assert crop_jitter.main([str(clip), "--frames", "12"]) == 0
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith("| ") and "%" not in r]
    assert [r.split(" | ")[0][2:] for r in rows] == [s[0] for s in crop_jitter.SETTINGS]
    assert all(r.split(" | ")[1] == "100.0" for r in rows)  # a face on every frame


def test_an_exported_models_manifest_records_its_detector(tiny_model_dir):
    import json

    data = json.loads((tiny_model_dir / "manifest.json").read_text())
    assert data["preprocess"]["crop"]["detector"] == "blazeface"
    assert data["detector"] == {"name": "blazeface", **detector_record("blazeface")}
    assert data["detector"]["sha256"] == BLAZEFACE_SHA256


def test_only_a_wide_frame_without_a_face_is_searched_again_in_a_few_tiles():
    det = BlazeFaceDetector()
    passes = []
    whole = det._detect
    det._detect = lambda *args: passes.append(args[0].shape[:2]) or whole(*args)
    det.detect(np.full((720, 1280, 3), 90, np.uint8))  # 16:9, no face: two square tiles
    assert passes == [(720, 1280), (720, 720), (720, 720)]
    passes.clear()
    det.detect(np.full((40, 16000, 3), 90, np.uint8))  # a strip: never tiled
    det.detect(np.full((480, 560, 3), 90, np.uint8))  # near square: no tiles
    assert passes == [(40, 16000), (480, 560)]
