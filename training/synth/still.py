"""Still attacks: one frame of a live clip shown to the camera as an unmoving picture.

Two kinds, the easiest attacks there are, which only motion can catch (the frame is the
person's own, so no print or screen texture tells them apart):

* ``still``          -- the frame repeated for the whole clip, on a fixed support: every
  change between frames is the recording camera's own (sensor noise, compression,
  auto-exposure), added later by training/synth/camera.py;
* ``still_handheld`` -- the same frame moved rigidly, as a photo held in a hand: a
  smoothed random walk of translation, roll, tilt (small perspective) and scale plus
  hand tremor (training/synth/scene.py's ``PoseTrack``), so every frame is the still
  under a planar homography. In half of them (``SHAKE_SHARE``) the camera shakes too (a
  phone held in the other hand): a second, smaller walk applied to the whole frame,
  room included. Where the photo's edge comes into view, a room shows behind it.

The photo fills the frame (no border, no paper look, no hand in view): nothing but the
missing life of the face and its rigid motion separates it from a genuine clip.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from training.synth.print import choose_still
from training.synth.scene import HandMotion, Placement, PoseTrack, plane_homography, room_background

STILL_KINDS = ("still", "still_handheld")
SHAKE_SHARE = 0.5  # share of hand-held stills filmed by a shaking (hand-held) camera
SHAKE_SCALE = 0.35  # camera shake amplitude relative to the hand's drift and tremor
CENTRED = Placement(
    edges_visible=False,
    cover=1.0,
    center_x=0.5,
    center_y=0.5,
    roll_deg=0.0,
    tilt_x_deg=0.0,
    tilt_y_deg=0.0,
)  # the frame itself, unmoved: the camera shake's rest pose (identity homography)


@dataclass(frozen=True)
class StillParams:
    kind: str  # "still" or "still_handheld"
    still_index: int  # which input frame is shown
    motion: HandMotion  # the photo's support: "fixed" (still) or "hand"
    placement: Placement | None  # hand-held: where the (frame-filling) photo rests
    shake: HandMotion | None  # hand-held: the camera's own shake, or None (camera fixed)
    background_seed: int  # the room seen where the photo's edge comes into view

    def to_dict(self) -> dict:
        return asdict(self)


def camera_shake(rng: np.random.Generator) -> HandMotion:
    """A hand-held camera: the drift and tremor of a hand, scaled down (a phone is held
    closer to the body and steadier than an outstretched photo)."""
    hand = HandMotion.sample(rng, support="hand")
    return HandMotion(
        support="hand",
        drift_px=hand.drift_px * SHAKE_SCALE,
        drift_deg=hand.drift_deg * SHAKE_SCALE,
        drift_tau_s=hand.drift_tau_s,
        tremor_px=hand.tremor_px * SHAKE_SCALE,
        tremor_hz=hand.tremor_hz,
        tremor_phase=hand.tremor_phase,
        walk_seed=hand.walk_seed,
    )


def sample_still_params(
    kind: str, frames: np.ndarray, rng: np.random.Generator, *, shake: bool | None = None
) -> StillParams:
    """Draw a still attack's parameters; ``shake`` forces the hand-held camera on or off."""
    if kind not in STILL_KINDS:
        raise ValueError(f"not a still attack kind: {kind!r}")
    still_index, _ = choose_still(frames, rng)
    background_seed = int(rng.integers(0, 2**31 - 1))
    if kind == "still":
        motion = HandMotion.sample(rng, support="fixed")
        return StillParams(kind, still_index, motion, None, None, background_seed)
    motion = HandMotion.sample(rng, support="hand")
    placement = Placement.sample(rng, p_edges=0.0)  # filling the frame, 8-25 % larger
    shaking = bool(rng.random() < SHAKE_SHARE) if shake is None else shake
    return StillParams(
        kind,
        still_index,
        motion,
        placement,
        camera_shake(rng) if shaking else None,
        background_seed,
    )


class StillScene:
    """What the camera sees of a still at time t: the frame, fixed or moved rigidly."""

    def __init__(self, still: np.ndarray, params: StillParams, duration_s: float) -> None:
        self.still = still
        self.params = params
        h, w = still.shape[:2]
        self.wh = (w, h)
        self.track = PoseTrack(params.motion, duration_s, min(h, w))
        self.shake = PoseTrack(params.shake, duration_s, min(h, w)) if params.shake else None
        self.room = room_background(params.background_seed, h, w) if params.placement else None

    def homography(self, t: float) -> np.ndarray:
        """3x3 map from the still's pixels to the frame at time t (identity for ``still``)."""
        if self.params.placement is None:
            return np.eye(3)
        photo = plane_homography(self.wh, (0, 0), self.wh, self.params.placement, self.track.at(t))
        return self.shake_homography(t) @ photo

    def shake_homography(self, t: float) -> np.ndarray:
        """3x3 motion of the whole frame by the camera's shake at time t (identity if none)."""
        if self.shake is None:
            return np.eye(3)
        return plane_homography(self.wh, (0, 0), self.wh, CENTRED, self.shake.at(t))

    def render(self, t: float) -> np.ndarray:
        """The scene frame [h, w, 3] BGR uint8 at time t."""
        if self.params.placement is None:
            return self.still.copy()
        h_photo = self.homography(t)
        photo = cv2.warpPerspective(
            self.still.astype(np.float32), h_photo, self.wh, flags=cv2.INTER_LINEAR
        )
        alpha = cv2.warpPerspective(
            np.ones(self.still.shape[:2], np.float32), h_photo, self.wh, flags=cv2.INTER_LINEAR
        )
        room = cv2.warpPerspective(
            self.room, self.shake_homography(t), self.wh, borderMode=cv2.BORDER_REFLECT
        )
        out = room * (1.0 - alpha[..., None]) + photo * alpha[..., None]
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)

    def frames(self, n: int, fps: float) -> Iterator[np.ndarray]:
        """``n`` scene frames at ``fps``, in time order."""
        for i in range(n):
            yield self.render(i / fps)


def render_still_attack(
    kind: str,
    frames: np.ndarray,
    fps: float,
    rng: np.random.Generator,
    *,
    shake: bool | None = None,
) -> tuple[np.ndarray, StillParams]:
    """Render a still attack (``still``/``still_handheld``) from live frames [T, H, W, 3]
    BGR at ``fps``: the scene in front of the camera, same shape and timing."""
    params = sample_still_params(kind, frames, rng, shake=shake)
    scene = StillScene(frames[params.still_index], params, len(frames) / fps)
    return np.stack(list(scene.frames(len(frames), fps))), params
