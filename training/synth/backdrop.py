"""The room behind a held attack: a frame of *another* person's genuine clip, that
person removed.

A phone or a print held up to a camera is filmed in a real room, never in front of a
drawn one, and never in front of the victim's own room (the attacker is elsewhere). So
the scene kinds (training/synth/device.py, training/synth/photo.py) put their object in
front of a frame of another source clip, drawn by the clip's own generator: preferably a
person of the same split (so a held-out person's room is not seen in training attacks),
else any other. The person in that frame is painted out (inpainted where the face
detector puts them, or the centre when it finds none): a second face would be a
detectable cue, and the cropper could pick it instead of the attack's face. The room is
then mirrored or not, zoomed a little, relit and put out of focus (the camera focuses on
the object held up to it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from training.synth.scene import detect_face

INPAINT_SHORT_SIDE = 96  # px: the painted-out person is smooth anyway; inpainting is slow


@dataclass(frozen=True)
class Backdrop:
    """A room frame and where its person was (the object is held about there)."""

    image: np.ndarray  # float32 [H, W, 3] 0..255, the scene size
    hole_center: tuple[float, float]  # where the removed person's face was, frame px
    params: dict  # how it was made, for the clip's sidecar

    def to_dict(self) -> dict:
        return self.params


@dataclass(frozen=True)
class BackdropLook:
    mirror: bool
    zoom: float  # >= 1: a crop of the room, centred at offset
    offset: tuple[float, float]  # crop centre shift, fraction of the spare margin (-1..1)
    gain: float  # room brightness relative to the source's exposure
    blur: float  # defocus, px per 360 px of short side

    @classmethod
    def sample(cls, rng: np.random.Generator) -> BackdropLook:
        return cls(
            mirror=bool(rng.random() < 0.5),
            zoom=float(rng.uniform(1.0, 1.3)),
            offset=tuple(float(o) for o in rng.uniform(-1, 1, 2)),
            gain=float(rng.uniform(0.7, 1.15)),
            blur=float(rng.uniform(0.6, 3.0)),
        )


def pick_backdrop_source(candidates: Sequence, rng: np.random.Generator) -> int:
    """Index of the source whose room is used (one draw from the clip's generator)."""
    return int(rng.integers(0, len(candidates)))


def person_mask(frame: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """uint8 mask [H, W] of the person (face, hair, shoulders down to the frame's bottom)
    and the face centre; a centred head is assumed where no face is found."""
    h, w = frame.shape[:2]
    box = detect_face(frame)
    x, y, fw, fh = box if box is not None else (0.3 * w, 0.15 * h, 0.4 * w, 0.55 * h)
    mask = np.zeros((h, w), np.uint8)
    cx, cy = x + fw / 2, y + fh / 2
    cv2.ellipse(mask, (int(cx), int(cy)), (int(0.85 * fw), int(0.95 * fh)), 0, 0, 360, 255, -1)
    body = np.array(
        [
            [cx - 0.7 * fw, cy + 0.6 * fh],
            [cx + 0.7 * fw, cy + 0.6 * fh],
            [cx + 1.9 * fw, h],
            [cx - 1.9 * fw, h],
        ]
    )
    cv2.fillConvexPoly(mask, body.astype(np.int32), 255)
    return mask, (float(cx), float(cy))


def remove_person(frame: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """The frame with its person painted out (inpainted at low resolution, blended in
    with a soft edge): float32 [H, W, 3], and where the face was."""
    mask, center = person_mask(frame)
    h, w = frame.shape[:2]
    s = min(1.0, INPAINT_SHORT_SIDE / min(h, w))
    size = (max(8, round(w * s)), max(8, round(h * s)))
    small = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    small_mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
    small_mask = cv2.dilate(small_mask, np.ones((3, 3), np.uint8))
    filled = cv2.inpaint(small, small_mask, 5, cv2.INPAINT_TELEA)
    filled = cv2.resize(filled, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    soft = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), 0.02 * min(h, w) + 0.5)
    soft = np.maximum(soft, mask / 255.0)[..., None]
    return frame.astype(np.float32) * (1 - soft) + filled * soft, center


def make_backdrop(
    frame: np.ndarray, scene_hw: tuple[int, int], look: BackdropLook, source: str, index: int
) -> Backdrop:
    """The room of ``frame`` (another person's, any size) fitted to ``scene_hw``."""
    room, (fx, fy) = remove_person(frame)
    if look.mirror:
        room = room[:, ::-1]
        fx = room.shape[1] - 1 - fx
    sh, sw = room.shape[:2]
    h, w = scene_hw
    scale = max(h / sh, w / sw) * look.zoom  # cover the scene, then crop
    cw, ch = w / scale, h / scale  # crop size in source px
    x0 = (sw - cw) / 2 * (1 + look.offset[0] * 0.9)
    y0 = (sh - ch) / 2 * (1 + look.offset[1] * 0.9)
    affine = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], np.float32)
    img = cv2.warpAffine(
        room, affine, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    img = cv2.GaussianBlur(img * look.gain, (0, 0), look.blur * min(h, w) / 360)
    center = ((fx - x0) * scale, (fy - y0) * scale)
    params = {"source": source, "frame": index, **asdict(look)}
    return Backdrop(np.clip(img, 0, 255), center, params)
