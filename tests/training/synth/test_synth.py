"""The synthetic attack data set: attack physics, seeding, splits, camera parity, CLI.

Pure tests run on small drawn "cartoon" faces whose eyes blink and mouth moves; tests
that need a detectable real face use the first frames of a genuine clip from
../shared/data/real and skip where that folder is absent.
"""

from __future__ import annotations

import dataclasses as dc
import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy import stats

from liveness.cli import main as liveness_main
from model.labels import GENUINE, SPOOF
from model.video import read_frames, write_clip
from training.records import INDEX_COLUMNS, read_index
from training.shared_data import REAL_CLIPS
from training.synth.camera import CODECS, OUTPUT_FPS, OUTPUT_SHORT_SIDES, Camera, CameraProfile
from training.synth.dataset import (
    ATTACK_KINDS,
    SynthError,
    assign_splits,
    parse_split_counts,
    plan_clip,
    render_attack,
    synthesize_dataset,
)
from training.synth.paper import PrintLook, print_photo
from training.synth.replay import ReplayParams, ReplayScene
from training.synth.scene import HandMotion, PoseTrack
from training.synth.sources import SourceClip

REAL_CLIP = REAL_CLIPS / "liveportrait__driving_d0.mp4"  # a man's face, expressions, 25 fps
FPS = 25.0
HAAR = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")


# ---------------------------------------------------------------- fixtures and helpers


def cartoon_face(n: int, hw: tuple[int, int] = (120, 160), hue: int = 0) -> np.ndarray:
    """n frames [n, h, w, 3] of a drawn face that blinks and talks in front of a wall.

    The face and wall carry fixed random texture so image registration has something to
    lock on; eyes and mouth change shape (non-rigid motion), the head sways a little."""
    h, w = hw
    rng = np.random.default_rng(hue)
    wall = cv2.GaussianBlur(rng.uniform(60, 200, (h, w, 3)).astype(np.float32), (0, 0), 3)
    skin_tex = cv2.GaussianBlur(rng.normal(0, 12, (h, w)).astype(np.float32), (0, 0), 1.5)
    frames = []
    for i in range(n):
        t = i / FPS
        img = wall.copy()
        cx, cy = int(w / 2 + 3 * np.sin(2 * np.pi * 0.5 * t)), int(h / 2)
        fw, fh = int(0.28 * w), int(0.38 * h)
        face = np.zeros((h, w), np.uint8)
        cv2.ellipse(face, (cx, cy), (fw, fh), 0, 0, 360, 255, -1)
        skin = np.array([90 + hue, 140, 200], np.float32)
        img[face > 0] = skin + skin_tex[face > 0, None]
        open_eye = max(1, int(5 * abs(np.cos(2 * np.pi * 0.7 * t))))  # blinking
        for ex in (cx - fw // 2, cx + fw // 2):
            cv2.ellipse(img, (ex, cy - fh // 4), (fw // 5, open_eye), 0, 0, 360, (40, 30, 30), -1)
        mouth = max(1, int(fh * 0.25 * abs(np.sin(2 * np.pi * 1.3 * t))))  # talking
        cv2.ellipse(img, (cx, cy + fh // 2), (fw // 2, mouth), 0, 0, 360, (50, 40, 120), -1)
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return np.stack(frames)


def read_video(path: Path) -> tuple[list[np.ndarray], float, str]:
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS)
    fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode(errors="replace")
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    return frames, fps, fourcc


def rigid_residual(a: np.ndarray, b: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """What a homography cannot explain between two frames inside ``box``.

    Frames are smoothed (so sensor noise and JPEG matter little), b is registered to a by
    ECC with a full homography, and the mean absolute difference of the standardised
    patches is returned: ~0 for a rigid plane, larger where the face itself moved."""
    x, y, w, h = box
    ga, gb = (
        cv2.GaussianBlur(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY).astype(np.float32), (0, 0), 2.0)
        for f in (a, b)
    )
    mask = np.zeros(ga.shape, np.uint8)
    mask[y : y + h, x : x + w] = 255
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 200, 1e-6)
    try:
        _, warp = cv2.findTransformECC(
            ga, gb, np.eye(3, dtype=np.float32), cv2.MOTION_HOMOGRAPHY, criteria, mask, 5
        )
    except cv2.error:  # no homography fits at all: compare unregistered (an upper bound)
        warp = np.eye(3, dtype=np.float32)
    back = cv2.warpPerspective(
        gb, warp, ga.shape[::-1], flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    )
    inner = (slice(y + h // 8, y + h - h // 8), slice(x + w // 8, x + w - w // 8))
    pa, pb = ga[inner], back[inner]
    return float(np.abs((pa - pa.mean()) / pa.std() - (pb - pb.mean()) / pb.std()).mean())


def fft_peak_ratio(frame: np.ndarray) -> float:
    """Strongest spatial frequency of the frame's high-pass centre over the median one."""
    g = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)
    h, w = g.shape
    c = g[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]
    hp = (c - cv2.GaussianBlur(c, (0, 0), 2.0)) * np.outer(
        np.hanning(c.shape[0]), np.hanning(c.shape[1])
    )
    mag = np.abs(np.fft.fftshift(np.fft.fft2(hp)))
    cy, cx = mag.shape[0] // 2, mag.shape[1] // 2
    mag[cy - 2 : cy + 3, cx - 2 : cx + 3] = 0  # what the high-pass left of DC
    return float(mag.max() / max(float(np.median(mag)), 1e-6))


def largest_face(frame: np.ndarray) -> tuple[int, int, int, int] | None:
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    faces = HAAR.detectMultiScale(gray, 1.1, 4, minSize=(24, 24))
    return None if len(faces) == 0 else tuple(max(faces.tolist(), key=lambda b: b[2] * b[3]))


def tree_bytes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def cartoon_sources(tmp_path_factory) -> Path:
    """Three short drawn-face videos (three 'people') in one folder."""
    folder = tmp_path_factory.mktemp("sources")
    for i, hw in enumerate([(120, 160), (128, 128), (160, 120)]):
        write_clip(folder / f"person{i}.avi", cartoon_face(20, hw, hue=10 * i), FPS, "MJPG")
    return folder


@pytest.fixture(scope="module")
def real_source(tmp_path_factory) -> Path:
    """The first 40 frames of a genuine clip, 256x256: small but a real, detectable face."""
    if not REAL_CLIP.is_file():
        pytest.skip(f"genuine clips not present at {REAL_CLIPS} (../shared/data/real)")
    frames, _, _ = read_frames(REAL_CLIP, max_frames=40)
    assert len(frames) == 40, f"{REAL_CLIP} has fewer than 40 frames"
    frames = [cv2.resize(f, (256, 256), interpolation=cv2.INTER_AREA) for f in frames]
    return write_clip(tmp_path_factory.mktemp("real") / "d0_start.avi", frames, FPS, "MJPG")


@pytest.fixture(scope="module")
def real_dataset(real_source, tmp_path_factory) -> list:
    out = tmp_path_factory.mktemp("real_set") / "set"
    return synthesize_dataset(
        [real_source],
        out,
        seed=7,
        kinds=ATTACK_KINDS,
        variants_per_source=1,
        genuine_variants_per_source=1,
        max_seconds=1.5,
        progress=False,
    )


# ---------------------------------------------------------------- attack physics (in memory)


def test_fixed_print_is_static_and_held_print_moves():
    live = cartoon_face(16)
    assert not np.array_equal(live[0], live[8])  # the live face does move
    fixed, params = render_attack("print", live, FPS, np.random.default_rng(1), support="fixed")
    assert params["motion"]["support"] == "fixed"
    assert fixed.shape == live.shape and fixed.dtype == np.uint8
    # On a stand, nothing changes at all before the camera (its sensor noise comes later).
    assert all(np.array_equal(fixed[0], f) for f in fixed[1:])
    held, params = render_attack("print", live, FPS, np.random.default_rng(1), support="hand")
    assert params["motion"]["support"] == "hand"
    assert np.abs(held[0].astype(int) - held[-1]).max() > 10


def test_print_face_region_moves_only_rigidly():
    live = cartoon_face(24, (180, 240))
    spoof, _ = render_attack("print", live, FPS, np.random.default_rng(3), support="hand")
    box = (84, 54, 72, 72)  # frame centre: inside the sheet however it is placed
    pairs = [(0, 5), (0, 10), (5, 15), (0, 20)]  # mouth and eyes in different states
    printed = [rigid_residual(spoof[a], spoof[b], box) for a, b in pairs]
    genuine = [rigid_residual(live[a], live[b], box) for a, b in pairs]
    assert max(printed) < 0.06, printed  # interpolation and halftone aliasing only
    assert max(printed) < 0.3 * np.mean(genuine), (printed, genuine)


def test_cutout_moves_only_through_its_holes():
    live = cartoon_face(12, (180, 240))
    spoof, params = render_attack("cutout", live, FPS, np.random.default_rng(5), support="fixed")
    assert params["cutout"] is not None and params["bend"] is None
    changed = np.abs(spoof.astype(int) - spoof[0]).max(axis=(0, 3)) > 8  # [h, w]
    assert changed.any()  # the live eyes behind the holes blink
    assert changed.mean() < 0.04  # ... and nothing else moves
    ys, _ = np.nonzero(changed)
    assert ys.max() < 0.6 * live.shape[1]  # the eyes, not the mouth, show through


def test_warp_bends_the_sheet_over_time():
    live = cartoon_face(25, (120, 160))
    spoof, params = render_attack("warp", live, FPS, np.random.default_rng(2))
    bend = params["bend"]
    assert bend is not None and params["motion"]["support"] == "hand"
    assert 0.2 <= abs(bend["curvature"]) <= 0.7 and bend["swing"] > 0


def test_print_tone_curve_and_halftone():
    rng = np.random.default_rng(4)
    look = dc.replace(PrintLook.sample(rng), halftone_strength=0.4, halftone_period=3.0)
    ramp = np.tile(np.linspace(0, 255, 96, dtype=np.float32), (96, 1)).astype(np.uint8)
    printed = print_photo(np.dstack([ramp] * 3), look)
    assert printed[:, :8].mean() > 8  # raised blacks
    assert printed[:, -8:].mean() < 245  # dimmer whites: compressed dynamic range
    grey = print_photo(np.full((96, 96, 3), 128, np.uint8), look).astype(np.uint8)
    assert fft_peak_ratio(grey) > 20  # the dot screen is periodic
    assert (
        fft_peak_ratio(
            np.full((96, 96, 3), 128, np.uint8)
            + np.random.default_rng(0).integers(0, 3, (96, 96, 3)).astype(np.uint8)
        )
        < 8
    )


def test_hand_tremor_lies_in_the_physiological_band():
    rng = np.random.default_rng(8)
    held = PoseTrack(HandMotion.sample(rng, support="hand"), 4.0, 300)
    t = np.arange(400) / 100.0
    dx = np.array([held.at(s)[0] for s in t])
    spec = np.abs(np.fft.rfft(dx - dx.mean())) ** 2
    freq = np.fft.rfftfreq(len(t), 1 / 100.0)
    tremor = spec[(freq >= 4) & (freq <= 12)].mean()  # power per frequency bin
    above = spec[(freq > 14) & (freq < 50)].mean()
    assert tremor > 20 * above
    assert dx.std() > 0.1  # px: it does move
    still = PoseTrack(HandMotion.sample(rng, support="fixed"), 4.0, 300)
    assert all(np.allclose(still.at(s), 0) for s in t[::37])


def _strong_screen(params: ReplayParams) -> ReplayParams:
    """A monitor filmed close, square-on and in focus (pitch 0.8 camera px), no glare or
    flicker: its moiré has one frequency over the frame, so it shows as one FFT peak."""
    return dc.replace(
        params,
        display=dc.replace(
            params.display, pixel_pitch=0.8, focus_blur=0.15, grid_contrast=0.8, flicker=0.0
        ),
        glare=dc.replace(params.glare, strength=0.0, veil=0.0),
        placement=dc.replace(
            params.placement,
            edges_visible=False,
            cover=1.15,
            roll_deg=2.0,
            tilt_x_deg=0.0,
            tilt_y_deg=0.0,
        ),
    )


def test_replay_screen_grid_leaves_a_periodic_pattern():
    grey = np.full((4, 160, 160, 3), 128, np.uint8)
    params = _strong_screen(ReplayParams.sample(np.random.default_rng(0), support="fixed"))
    screen = ReplayScene(grey.shape[1:3], params, 1.0).render(0.0, grey[0])
    camera = CameraProfile.sample(np.random.default_rng(1), (160, 160), FPS)
    profile = dc.replace(camera, jpeg_quality=85, blur_sigma=0.3)  # a sharp webcam
    assert fft_peak_ratio(screen) > 50
    assert fft_peak_ratio(Camera(profile).capture(screen, 0.0)) > 20  # survives the camera
    assert fft_peak_ratio(Camera(profile).capture(grey[0], 0.0)) < 12  # a plain scene has none


def test_unknown_kind_is_refused():
    with pytest.raises(SynthError, match="unknown attack kind 'mask'"):
        render_attack("mask", cartoon_face(4), FPS, np.random.default_rng(0))


# ---------------------------------------------------------------- the data set on disk


def test_dataset_index_labels_sidecars_and_description(cartoon_sources, tmp_path):
    out = tmp_path / "set"
    records = synthesize_dataset(
        [cartoon_sources],
        out,
        seed=11,
        kinds=ATTACK_KINDS,
        variants_per_source=1,
        genuine_variants_per_source=2,
        max_seconds=0.5,
        progress=False,
    )
    header = (out / "index.csv").read_text().splitlines()[0].split(",")
    assert tuple(header[:5]) == INDEX_COLUMNS
    assert {
        "source",
        "variant",
        "seed",
        "fps",
        "width",
        "height",
        "frames",
        "codec",
        "params",
    } <= set(header)
    rows = read_index(out / "index.csv")
    assert [r.path for r in rows] == [r.path for r in records]
    assert len(rows) == 3 * (2 + len(ATTACK_KINDS))
    for r in rows:
        assert r.path.is_file() and r.subject in {"person0", "person1", "person2"}
        assert (r.label, r.attack) in [(GENUINE, None)] + [(SPOOF, k) for k in ATTACK_KINDS]
        assert r.path.name.startswith(r.attack or "genuine")
        frames, fps, _ = read_video(r.path)
        assert len(frames) == int(r.meta["frames"]) >= 2
        assert frames[0].shape[1::-1] == (int(r.meta["width"]), int(r.meta["height"]))
        assert fps == pytest.approx(float(r.meta["fps"]), abs=0.01)
        side = json.loads((out / r.meta["params"]).read_text())
        assert side["label"] == r.label and side["attack"] == r.attack and side["split"] == r.split
        assert (side["attack_params"] is None) == (r.label == GENUINE)
        assert side["camera"]["fps"] == float(r.meta["fps"])
    # Whole people per split: 3 people -> one each; each person's clips share one split.
    for person in {r.subject for r in rows}:
        assert len({r.split for r in rows if r.subject == person}) == 1
    assert sorted({r.split for r in rows}) == ["dev", "test", "train"]
    described = json.loads((out / "synth.json").read_text())
    assert (
        described["seed"] == 11
        and described["test_seed"] == 12
        and described["kinds"] == list(ATTACK_KINDS)
    )
    for src in described["sources"]:
        assert src["sha256"] == hashlib.sha256(Path(src["path"]).read_bytes()).hexdigest()
    seeds = {r.split: int(r.meta["seed"]) for r in rows}
    assert seeds["test"] == 12 and seeds["train"] == seeds["dev"] == 11  # held-out draws differ
    assert described["counts"]["clips"] == len(rows)


def _one_person_set(source: Path, out: Path, seed: int, kinds=("print", "replay")) -> Path:
    synthesize_dataset(
        [source],
        out,
        seed=seed,
        kinds=kinds,
        variants_per_source=1,
        genuine_variants_per_source=1,
        max_seconds=0.4,
        progress=False,
    )
    return out


def test_same_seed_same_bytes_other_seed_other_clips(cartoon_sources, tmp_path):
    src = cartoon_sources / "person1.avi"
    first = tree_bytes(_one_person_set(src, tmp_path / "a", seed=5))
    again = tree_bytes(_one_person_set(src, tmp_path / "b", seed=5))
    assert first == again and len(first) == 2 + 3 * 2  # index, synth.json, clips + sidecars
    other_dir = _one_person_set(src, tmp_path / "c", seed=6)
    other = tree_bytes(other_dir)
    clips = [k for k in first if k.endswith(".mp4")]
    assert all(first[k] != other[k] for k in clips)
    for k in (k for k in first if k.endswith(".json") and "/" in k):
        a = json.loads((tmp_path / "a" / k).read_text())
        b = json.loads((other_dir / k).read_text())
        assert a["camera"] != b["camera"]
        if a["attack"] is not None:
            assert a["attack_params"] != b["attack_params"]


def test_a_clip_does_not_depend_on_the_other_clips(cartoon_sources, tmp_path):
    src = cartoon_sources / "person2.avi"
    alone = tree_bytes(_one_person_set(src, tmp_path / "a", seed=3, kinds=("print",)))
    mixed = tree_bytes(_one_person_set(src, tmp_path / "b", seed=3, kinds=("replay", "print")))
    print_clip = "train/person2/print_0.mp4"
    assert alone[print_clip] == mixed[print_clip]


def test_splits_assign_whole_people_deterministically():
    people = [f"p{i:02d}" for i in range(11)]
    split = assign_splits(people, 1, counts=parse_split_counts("train=7,dev=2,test=2"))
    assert sorted(split) == people
    assert [sum(v == s for v in split.values()) for s in ("train", "dev", "test")] == [7, 2, 2]
    assert assign_splits(people, 1, counts={"train": 7, "dev": 2, "test": 2}) == split
    assert any(
        assign_splits(people, s, counts={"train": 7, "dev": 2, "test": 2}) != split for s in (2, 3)
    )
    auto = assign_splits(people, 1)
    assert [sum(v == s for v in auto.values()) for s in ("train", "dev", "test")] == [7, 2, 2]
    named = assign_splits(people, 1, test_subjects=["p03", "p07"])
    assert sorted(p for p, s in named.items() if s == "test") == ["p03", "p07"]
    with pytest.raises(SynthError, match="add up"):
        assign_splits(people, 1, counts={"train": 5, "dev": 2, "test": 2})
    with pytest.raises(SynthError, match="not among the sources"):
        assign_splits(people, 1, test_subjects=["nobody"])
    with pytest.raises(SynthError, match="NAME=COUNT"):
        parse_split_counts("train=7,holdout=4")


def test_camera_side_is_drawn_alike_for_both_classes():
    """Frame rate, size, JPEG quality and clip length: one distribution for every kind."""
    source = SourceClip(Path("x.mp4"), "x", "0" * 64, 30.0, 300, 640, 480)
    draws: dict[str, list] = {}
    for kind in ("genuine", "print", "replay"):
        plans = [plan_clip(source, kind, v, 0, 4.0) for v in range(150)]
        draws[kind] = [
            (
                p.camera.fps,
                p.camera.height,
                p.camera.jpeg_quality // 20,
                len(p.source_frames) / p.camera.fps,
            )
            for p in plans
        ]
    for field in range(3):  # categorical: chi-square of kind x value
        values = sorted({d[field] for ds in draws.values() for d in ds})
        table = [[sum(d[field] == v for d in ds) for v in values] for ds in draws.values()]
        assert stats.chi2_contingency(table).pvalue > 0.001, (field, table)
    for kind in ("print", "replay"):  # durations: two-sample Kolmogorov-Smirnov
        assert (
            stats.ks_2samp([d[3] for d in draws["genuine"]], [d[3] for d in draws[kind]]).pvalue
            > 0.001
        )
    assert {d[0] for d in draws["genuine"]} == {f for f in OUTPUT_FPS if f <= 30.5}
    assert {d[1] for d in draws["genuine"]} == set(OUTPUT_SHORT_SIDES)


# ---------------------------------------------------------------- a real face


def test_real_face_is_still_found_in_every_clip(real_dataset):
    kinds = set()
    for r in real_dataset:
        frames, _, _ = read_video(r.path)
        sample = frames[:: max(1, len(frames) // 5)]
        found = sum(largest_face(f) is not None for f in sample)
        assert found >= 0.8 * len(sample), (r.path.name, found, len(sample))
        kinds.add(r.attack or r.label)
    assert kinds == {GENUINE, *ATTACK_KINDS}


def test_real_recordings_share_the_camera_options(real_dataset):
    for r in real_dataset:
        frames, fps, fourcc = read_video(r.path)
        assert fps in OUTPUT_FPS and r.path.suffix == CODECS["mp4v"]
        assert fourcc.lower() in ("mp4v", "fmp4")  # FFmpeg reports MPEG-4 part 2 as FMP4
        assert min(frames[0].shape[:2]) in OUTPUT_SHORT_SIDES


def test_real_print_face_moves_rigidly_but_the_live_face_does_not(real_source):
    live = np.stack(read_video(real_source)[0][:30])
    spoof, _ = render_attack("print", live, FPS, np.random.default_rng(12), support="hand")
    pairs = [(0, 10), (10, 20), (0, 29)]
    box_live, box_spoof = largest_face(live[0]), largest_face(spoof[0])
    assert box_live is not None and box_spoof is not None
    printed = [rigid_residual(spoof[a], spoof[b], box_spoof) for a, b in pairs]
    genuine = [rigid_residual(live[a], live[b], box_live) for a, b in pairs]
    assert max(printed) < 0.5 * np.mean(genuine), (printed, genuine)


def test_real_replay_through_the_camera_shows_moire(real_source):
    live = np.stack(read_video(real_source)[0][:4])
    params = _strong_screen(ReplayParams.sample(np.random.default_rng(0), support="fixed"))
    screen = ReplayScene(live.shape[1:3], params, 1.0).render(0.0, live[0])
    camera = CameraProfile.sample(np.random.default_rng(1), live.shape[1:3], FPS)
    profile = dc.replace(camera, jpeg_quality=85, blur_sigma=0.3, width=256, height=256)
    replayed = fft_peak_ratio(Camera(profile).capture(screen, 0.0))
    genuine = fft_peak_ratio(Camera(profile).capture(live[0], 0.0))
    assert replayed > 2.5 * genuine, (replayed, genuine)


# ---------------------------------------------------------------- command line


def test_cli_makes_a_split_data_set(cartoon_sources, tmp_path, capsys):
    out = tmp_path / "cli_set"
    rc = liveness_main(
        [
            "synth",
            "--source",
            str(cartoon_sources),
            "--out",
            str(out),
            "--seed",
            "4",
            "--kinds",
            "print,replay",
            "--variants",
            "1",
            "--genuine-variants",
            "1",
            "--max-seconds",
            "0.4",
            "--test-sources",
            "person1",
            "--test-seed",
            "40",
            "--quiet",
        ]
    )
    assert rc == 0
    assert "wrote 9 clips" in capsys.readouterr().out
    rows = read_index(out / "index.csv")
    assert {r.subject for r in rows if r.split == "test"} == {"person1"}
    assert {int(r.meta["seed"]) for r in rows if r.split == "test"} == {40}
    assert {int(r.meta["seed"]) for r in rows if r.split != "test"} == {4}
    assert sorted(r.attack or r.label for r in rows if r.subject == "person0") == [
        "genuine",
        "print",
        "replay",
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--kinds", "print,mask"], "unknown attack kind"),
        (["--splits", "train=1,dev=1,test=2"], "must add up to the 3 sources"),
        (["--test-sources", "nobody"], "not among the sources"),
        (["--max-seconds", "0"], "max_seconds must be positive"),
    ],
)
def test_cli_refuses_bad_options(cartoon_sources, tmp_path, capsys, extra, message):
    rc = liveness_main(
        ["synth", "--source", str(cartoon_sources), "--out", str(tmp_path / "o"), *extra]
    )
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_refuses_bad_sources(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video")
    for source, message in [
        (tmp_path / "missing", "does not exist"),
        (empty, "holds no videos"),
        (broken, "cannot open this file as a video"),
    ]:
        rc = liveness_main(["synth", "--source", str(source), "--out", str(tmp_path / "o")])
        assert rc == 2 and message in capsys.readouterr().err, source


def test_output_folder_is_not_overwritten_unless_asked(cartoon_sources, tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    keep = out / "notes.txt"
    keep.write_text("mine")
    args = [
        "synth",
        "--source",
        str(cartoon_sources / "person0.avi"),
        "--out",
        str(out),
        "--variants",
        "1",
        "--genuine-variants",
        "1",
        "--max-seconds",
        "0.3",
        "--quiet",
    ]
    assert liveness_main(args) == 2
    assert "is not empty" in capsys.readouterr().err
    assert liveness_main([*args, "--overwrite"]) == 0
    stale = out / "train" / "person0" / "stale.mp4"
    stale.write_bytes(b"old")
    assert liveness_main([*args, "--overwrite", "--kinds", "replay"]) == 0
    assert keep.read_text() == "mine" and not stale.exists()
    assert {r.attack for r in read_index(out / "index.csv")} == {None, "replay"}
