"""The scene kinds: ``replay_handheld`` (a phone or tablet held up in another person's
room, training/synth/device.py) and ``print_photo`` (a printed photo, bent, held or on a
stand, training/synth/photo.py), on small drawn faces (test_synth.py's cartoons)."""

from __future__ import annotations

import dataclasses as dc
import json

import cv2
import numpy as np
import pytest

from model.video import write_clip
from tests.training.synth.test_synth import FPS, cartoon_face, tree_bytes
from training.synth.backdrop import BackdropLook, make_backdrop
from training.synth.dataset import ATTACK_KINDS, SCENE_KINDS, render_attack, synthesize_dataset
from training.synth.device import SCREEN_SHARE, sample_device_params, screen_quad
from training.synth.held import HeldTrack, visible_share
from training.synth.photo import sample_photo_params
from training.synth.photo_scene import PhotoScene
from training.synth.replay_handheld import DeviceScene
from training.synth.scene import HandMotion
from training.synth.screen_ui import ScreenUI

HW = (120, 160)


def _backdrop(rng: np.random.Generator, hw=HW):
    other = cartoon_face(1, hw, hue=40)[0]  # another "person", with another wall
    return make_backdrop(other, hw, BackdropLook.sample(rng), "other.avi", 0)


def _neutral_device(params, *, grips=True):
    """The same device with a panel that shows the clip unchanged: no UI, glare,
    reflection, sub-pixel grid or tone change (the geometry is untouched)."""
    panel = dc.replace(
        params.panel,
        gamma=2.2,
        black=0.0,
        brightness=1.0,
        saturation=1.0,
        tint=(1.0, 1.0, 1.0),
        grid_contrast=0.0,
        matrix_gap=0.0,
        reflection=0.0,
        fill=True,
    )
    body = dc.replace(params.body, feature="none")
    glare = dc.replace(params.glare, strength=0.0, veil=0.0)
    return dc.replace(
        params,
        panel=panel,
        body=body,
        glare=glare,
        ui=ScreenUI.none(),
        grips=params.grips if grips else (),
    )


def test_scene_kinds_are_attack_kinds():
    assert set(SCENE_KINDS) == {"replay_handheld", "print_photo"} and set(SCENE_KINDS) <= set(
        ATTACK_KINDS
    )


def test_device_screen_is_a_planar_homography_of_the_live_frames():
    live = cartoon_face(6, HW)
    for seed in range(3):
        params = sample_device_params(HW, 6, FPS, np.random.default_rng(seed), None)
        scene = DeviceScene(HW, _neutral_device(params, grips=False), 6 / FPS, None)
        for i in (0, 5):
            t = i / FPS
            frame = scene.render(t, live[i]).astype(np.float32)
            hom = scene.content_homography(t, HW[::-1])
            assert np.abs(hom[2, :2]).max() > 1e-7  # a perspective map, not an affine one
            expect = cv2.warpPerspective(live[i].astype(np.float32), hom, HW[::-1])
            inside = cv2.warpPerspective(np.ones(HW, np.float32), hom, HW[::-1])
            screen = cv2.fillConvexPoly(
                np.zeros(HW, np.uint8),
                screen_quad(scene.track, params.body, t).round().astype(np.int32),
                1,
            )
            keep = (cv2.erode(screen, np.ones((5, 5), np.uint8)) > 0) & (inside > 0.999)
            assert keep.sum() > 0.1 * keep.size
            err = np.abs(frame - expect)[keep].mean()
            assert err < 3.0, (seed, i, err)


@pytest.mark.parametrize("seed", range(20))
def test_device_screen_covers_15_to_60_percent_of_every_frame(seed):
    params = sample_device_params(HW, 10, FPS, np.random.default_rng(seed), None)
    track = HeldTrack(params.pose, HW[::-1], 10 / FPS)
    shares = [visible_share(screen_quad(track, params.body, i / FPS), HW[::-1]) for i in range(10)]
    assert SCREEN_SHARE[0] <= min(shares) and max(shares) <= SCREEN_SHARE[1], shares


def test_rendered_screen_share_matches_its_quad():
    green = np.zeros((4, *HW, 3), np.uint8)
    green[..., 1] = 255
    params = sample_device_params(HW, 4, FPS, np.random.default_rng(7), None)
    scene = DeviceScene(
        HW, _neutral_device(params, grips=False), 4 / FPS, np.zeros((*HW, 3), np.float32)
    )
    frame = scene.render(0.0, green[0])
    lit = (frame[..., 1] > 128) & (frame[..., 2] < 60)
    quad_share = visible_share(screen_quad(scene.track, params.body, 0.0), HW[::-1])
    assert abs(lit.mean() - quad_share) < 0.03, (lit.mean(), quad_share)


def test_device_moves_rigidly_and_smoothly():
    still = np.repeat(
        cartoon_face(1, HW), 12, axis=0
    )  # one picture on screen: only the device moves
    for seed in (1, 2):
        params = _neutral_device(
            sample_device_params(HW, 12, FPS, np.random.default_rng(seed), None), grips=False
        )
        params = dc.replace(params, pose=dc.replace(params.pose, shake=None))
        scene = DeviceScene(HW, params, 12 / FPS, np.zeros((*HW, 3), np.float32))
        frames = [scene.render(i / FPS, still[i]).astype(np.float32) for i in range(12)]
        h0 = scene.track.homography(0.0)
        corners = []
        for i in (3, 7, 11):
            rel = scene.track.homography(i / FPS) @ np.linalg.inv(h0)  # frame 0 -> frame i
            moved = cv2.warpPerspective(frames[0], rel, HW[::-1])
            body = cv2.warpPerspective(
                scene.body[1], scene.track.homography(i / FPS) @ scene.to_cm, HW[::-1]
            )
            mask = cv2.warpPerspective(np.ones(HW, np.float32), rel, HW[::-1]) * body
            keep = cv2.erode((mask > 0.999).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
            assert np.abs(frames[i] - moved)[keep].mean() < 3.0
            corners.append(cv2.perspectiveTransform(np.float64([[[0.0, 0.0]]]), rel)[0, 0])
        steps = np.linalg.norm(np.array(corners), axis=1)
        assert steps.max() > 0.2  # a hand holds it: it moves...
        assert steps.max() < 0.15 * HW[1]  # ...by a tremble, not a jump


def test_scene_kinds_use_the_backdrop_they_are_given():
    live = cartoon_face(4, HW)
    for kind in SCENE_KINDS:
        rng = np.random.default_rng(3)
        room = _backdrop(np.random.default_rng(9))
        frames, params = render_attack(kind, live, FPS, rng, backdrop=room)
        assert params["backdrop"]["source"] == "other.avi"
        same = np.abs(frames[0].astype(np.float32) - room.image).max(axis=2) < 3
        own = np.abs(frames[0].astype(np.float32) - live[0]).max(axis=2) < 3
        assert same.mean() > 0.05 and same.mean() > 5 * own.mean(), (kind, same.mean(), own.mean())


def _photo_scene(seed, still, *, axis="vertical", k=1.1, border=False):
    params = sample_photo_params(still[None], np.random.default_rng(seed), None, support="fixed")
    sheet = dc.replace(
        params.sheet, zoom=1.0, gloss=0.0, border_cm=(1.0,) * 4 if border else (0.0,) * 4
    )
    bend = dc.replace(params.bend, axis=axis, curvature=k, swing=0.0)
    pose = dc.replace(
        params.pose,
        roll_deg=0.0,
        tilt_x_deg=4.0,
        tilt_y_deg=-4.0,
        shake=None,
        center=(80.0, 60.0),
        px_per_cm=0.75 * min(HW[1] / params.sheet.size_cm[0], HW[0] / params.sheet.size_cm[1]),
    )
    params = dc.replace(params, sheet=sheet, bend=bend, pose=pose)
    return PhotoScene(still, HW, params, 1.0, np.full((*HW, 3), 128, np.float32)), params


def _stripe_residual(frame: np.ndarray, along_rows: bool) -> float:
    """Largest RMS distance of each dark stripe's centre line from its fitted line, px."""
    dark = (frame.mean(axis=2) < 90).astype(np.uint8)
    n, labels = cv2.connectedComponents(dark)
    worst = 0.0
    for c in range(1, n):
        ys, xs = np.nonzero(labels == c)
        if len(ys) < 40:
            continue
        lines = np.unique(ys if along_rows else xs)
        pts = np.array(
            [[xs[ys == r].mean(), r] if along_rows else [r, ys[xs == r].mean()] for r in lines]
        )
        if len(pts) < 15:
            continue
        vx, vy, x0, y0 = cv2.fitLine(pts.astype(np.float32), cv2.DIST_L2, 0, 0.01, 0.01).ravel()
        dist = np.abs((pts[:, 0] - x0) * vy - (pts[:, 1] - y0) * vx)
        worst = max(worst, float(np.sqrt((dist**2).mean())))
    return worst


@pytest.mark.parametrize("axis", ["vertical", "horizontal"])
def test_bent_print_is_a_cylinder_lines_along_its_axis_stay_straight(axis):
    still = np.full((*HW, 3), 235, np.uint8)
    along, across = still.copy(), still.copy()
    for k in range(8, 160, 24):  # stripes along x = const and y = const (scaled to HW)
        (along if axis == "vertical" else across)[:, k : k + 5] = 20
    for k in range(8, 120, 18):
        (across if axis == "vertical" else along)[k : k + 5] = 20
    straight = _stripe_residual(
        _photo_scene(4, along, axis=axis)[0].render(0.0), axis == "vertical"
    )
    curved = _stripe_residual(_photo_scene(4, across, axis=axis)[0].render(0.0), axis != "vertical")
    flat = _stripe_residual(
        _photo_scene(4, across, axis=axis, k=0.0)[0].render(0.0), axis != "vertical"
    )
    assert straight < 0.6, straight
    assert curved > 3 * max(straight, flat), (straight, curved, flat)


@pytest.mark.parametrize("border", [True, False])
def test_print_border_is_there_only_when_drawn(border):
    dark = np.full((*HW, 3), 40, np.uint8)
    scene, params = _photo_scene(2, dark, border=border, k=0.5)
    frame = scene.render(0.0).astype(np.float32)
    w, h = params.sheet.size_cm
    band = np.array(
        [[x, -h / 2 + 0.5] for x in np.linspace(-w / 3, w / 3, 9)]
        + [[-w / 2 + 0.5, y] for y in np.linspace(-h / 3, h / 3, 9)]
    )
    xy = scene.track.project(scene.bent_points(band, 0.0), 0.0).round().astype(int)
    ok = (xy[:, 0] >= 0) & (xy[:, 0] < HW[1]) & (xy[:, 1] >= 0) & (xy[:, 1] < HW[0])
    assert ok.sum() >= 6
    seen = frame[xy[ok, 1], xy[ok, 0]].mean(axis=1)
    paper = float(np.mean(params.sheet.paper_bgr))
    if border:
        assert (seen > 0.6 * paper).all(), (seen, paper)
    else:
        assert (seen < 0.45 * paper).all(), (seen, paper)


@pytest.mark.parametrize("kind", SCENE_KINDS)
def test_scene_kinds_are_determined_by_their_seed(kind):
    live = cartoon_face(3, HW)
    a, pa = render_attack(
        kind, live, FPS, np.random.default_rng(5), backdrop=_backdrop(np.random.default_rng(1))
    )
    b, pb = render_attack(
        kind, live, FPS, np.random.default_rng(5), backdrop=_backdrop(np.random.default_rng(1))
    )
    c, pc = render_attack(
        kind, live, FPS, np.random.default_rng(6), backdrop=_backdrop(np.random.default_rng(1))
    )
    assert np.array_equal(a, b) and json.dumps(pa, default=str) == json.dumps(pb, default=str)
    assert not np.array_equal(a, c)


def test_print_photo_support_and_hands():
    live = cartoon_face(3, HW)
    _, fixed = render_attack("print_photo", live, FPS, np.random.default_rng(0), support="fixed")
    assert (
        fixed["pose"]["motion"]["support"] == "fixed"
        and fixed["grips"] == ()
        and fixed["bend"]["swing"] == 0
    )
    _, held = render_attack("print_photo", live, FPS, np.random.default_rng(0), support="hand")
    assert (
        held["pose"]["motion"]["support"] == "hand"
        and len(held["grips"]) >= 1
        and held["hand"] is not None
    )
    assert HandMotion(**held["pose"]["motion"]).tremor_px > 0


@pytest.fixture(scope="module")
def two_people(tmp_path_factory):
    folder = tmp_path_factory.mktemp("people")
    for i, hw in enumerate([(120, 160), (128, 128)]):
        write_clip(folder / f"person{i}.avi", cartoon_face(12, hw, hue=20 * i), FPS, "MJPG")
    return folder


def test_scene_kinds_take_another_persons_room_and_leave_other_clips_unchanged(
    two_people, tmp_path
):
    old = ("print", "replay", "still_handheld")
    common = dict(
        seed=3,
        variants_per_source=1,
        genuine_variants_per_source=1,
        max_seconds=0.3,
        progress=False,
        splits={"person0": "train", "person1": "train"},
    )
    before = tree_bytes(
        synthesize_dataset([two_people], tmp_path / "a", kinds=old, **common) and tmp_path / "a"
    )
    after = tree_bytes(
        synthesize_dataset([two_people], tmp_path / "b", kinds=(*old, *SCENE_KINDS), **common)
        and tmp_path / "b"
    )
    clips = [k for k in before if k.endswith((".mp4", ".json")) and "/" in k]
    assert clips and all(before[k] == after[k] for k in clips)
    for kind in SCENE_KINDS:
        for person, other in (("person0", "person1"), ("person1", "person0")):
            side = json.loads((tmp_path / "b" / "train" / person / f"{kind}_0.json").read_text())
            assert side["attack_params"]["backdrop"]["source"] == f"{other}.avi"
