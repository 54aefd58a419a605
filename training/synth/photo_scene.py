"""The ``print_photo`` attack kind: training/synth/photo.py's sheet ray-traced frame by
frame onto its bent cylinder, lit, held by hands, in front of another person's room.

Sheet coordinates are centimetres from its centre: ``a`` across the bend, ``b`` along
its axis (x and y for a vertical axis, y and x for a horizontal one). A sheet bent by
half-arc angle k has radius rho = half-width / |k|; its point at arc length a sits at
(rho sin(a / rho), b, sigma rho (1 - cos(a / rho))) with sigma = -sign(k) (k > 0 brings
the edges toward the camera). Each frame pixel's camera ray is intersected with that
cylinder (the nearest hit within the sheet), which gives the texture point it sees and
the surface normal it is lit by.
"""

from __future__ import annotations

import cv2
import numpy as np

from training.synth.backdrop import Backdrop
from training.synth.hands import composite_held, draw_hands
from training.synth.held import HeldTrack
from training.synth.photo import TEXTURE_MAX, PhotoParams, sample_photo_params, sheet_texture
from training.synth.scene import room_background

FLAT = 1e-3  # |k| below this is a flat sheet


class PhotoScene:
    """What the camera sees at time t: ``render(t)`` -> BGR uint8 frame."""

    def __init__(
        self,
        still: np.ndarray,
        frame_hw: tuple[int, int],
        params: PhotoParams,
        duration_s: float,
        room: np.ndarray | None,
    ) -> None:
        h, w = frame_hw
        self.params, self.frame_wh = params, (w, h)
        self.track = HeldTrack(params.pose, (w, h), duration_s)
        self.room = room if room is not None else room_background(params.room_seed, h, w)
        sw, sh = params.sheet.size_cm
        self.tex_px = min(1.5 * params.pose.px_per_cm, TEXTURE_MAX / max(sw, sh))  # px per cm
        self.texture = sheet_texture(still, params, self.tex_px)
        self.vertical = params.bend.axis == "vertical"
        self.half = (sw if self.vertical else sh) / 2  # half the sheet across the bend

    def _swap(self, pts: np.ndarray) -> np.ndarray:
        """(x, y, ...) <-> (a, b, ...): sheet axes to bend axes and back."""
        return pts if self.vertical else pts[..., [1, 0, *range(2, pts.shape[-1])]]

    def bent_points(self, xy: np.ndarray, t: float) -> np.ndarray:
        """Flat sheet points [N, 2] (cm) -> object space [N, 3] on the bent sheet (points
        beyond its edge continue along the edge's tangent, for the hands)."""
        ab = self._swap(np.asarray(xy, np.float64))
        a, b = ab[:, 0], ab[:, 1]
        k = self.params.bend.at(t)
        if abs(k) < FLAT:
            return self._swap(np.c_[a, b, np.zeros_like(a)])
        rho, sigma = self.half / abs(k), -np.sign(k)
        inside = np.clip(a, -self.half, self.half)
        th = inside / rho
        rest = a - inside  # beyond the edge, along the tangent
        x = rho * np.sin(th) + rest * np.cos(th)
        z = sigma * rho * (1 - np.cos(th)) + sigma * rest * np.sin(th)
        out = np.c_[x, b, z]
        return out if self.vertical else out[:, [1, 0, 2]]

    def trace(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """For every frame pixel: sheet coords x, y (cm; NaN where it misses the sheet),
        the brightness factor of its lighting and its specular sheen (0..1), each [H, W]."""
        w, h = self.frame_wh
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
        origin, d = self.track.rays(xs, ys, t)
        o = self._swap(origin[None])[0]
        d = self._swap(d)
        oa, ob, oz = o
        da, db, dz = d[..., 0], d[..., 1], d[..., 2]
        k = self.params.bend.at(t)
        if abs(k) < FLAT:
            lam = -oz / dz
            a, th, sigma = oa + lam * da, np.zeros_like(da), 1.0
        else:
            rho, sigma = self.half / abs(k), -np.sign(k)
            cz = oz - sigma * rho
            qa, qb, qc = da**2 + dz**2, 2 * (oa * da + cz * dz), oa**2 + cz**2 - rho**2
            disc = np.sqrt(np.maximum(qb**2 - 4 * qa * qc, 0))
            lam = np.full(da.shape, np.nan)
            th = np.zeros_like(da)
            for root in ((-qb + disc) / (2 * qa), (-qb - disc) / (2 * qa)):  # far, then near
                pa, pz = oa + root * da, oz + root * dz
                ang = np.arctan2(pa, rho - sigma * pz)
                ok = (root > 0) & (np.abs(ang) < np.pi / 2) & (np.abs(rho * ang) <= self.half + 1)
                lam, th = np.where(ok, root, lam), np.where(ok, ang, th)
            a = rho * th
        b = ob + lam * db
        normal = np.stack([-sigma * np.sin(th), np.zeros_like(th), np.cos(th)], -1)  # [a, b, z]
        shade, spec = self._light(self._swap(normal), self._swap(d), t)
        sheet = self._swap(np.stack([a, b], -1))
        return sheet[..., 0], sheet[..., 1], shade, spec

    def _light(
        self, normal: np.ndarray, ray: np.ndarray, t: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Brightness factor [H, W] (Lambert, relative to the flat sheet's) and sheen
        [H, W] (Blinn's half vector between the light and the view, Gaussian lobe)."""
        bend = self.params.bend
        rot, _, _ = self.track.camera_pose(t)
        light = rot.T @ np.array(bend.light)  # to object axes
        facing = np.clip(-(normal @ light), 0, None)  # normals point away from the camera
        flat = max(-light[2], 1e-3)
        shade = (bend.ambient + (1 - bend.ambient) * facing) / (
            bend.ambient + (1 - bend.ambient) * flat
        )
        half = light - ray / np.linalg.norm(ray, axis=-1, keepdims=True)
        half /= np.linalg.norm(half, axis=-1, keepdims=True)
        spec = np.exp(-(1 + np.sum(normal * half, -1)) / self.params.sheet.gloss_width)
        return shade, spec

    def render(self, t: float) -> np.ndarray:
        w, h = self.frame_wh
        x, y, shade, spec = self.trace(t)
        sw, sh = self.params.sheet.size_cm
        mx = np.nan_to_num((x + sw / 2) * self.tex_px - 0.5, nan=-10).astype(np.float32)
        my = np.nan_to_num((y + sh / 2) * self.tex_px - 0.5, nan=-10).astype(np.float32)
        colour = cv2.remap(
            self.texture, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )
        ones = np.ones(self.texture.shape[:2], np.float32)
        alpha = cv2.remap(
            ones, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )
        lit = colour * shade[..., None].astype(np.float32)
        s = self.params.sheet
        if s.gloss > 0:  # a sheen where the surface mirrors the light toward the camera
            lit += (s.gloss * spec).astype(np.float32)[..., None]
        hands = None
        if self.params.hand is not None:
            hands = draw_hands(
                self.frame_wh,
                self.params.grips,
                self.params.hand,
                lambda p: self.track.project(self.bent_points(p, t), t),
            )
        room = self.room
        if self.track.shake is not None:
            room = cv2.warpPerspective(
                room, self.track.shake_homography(t), (w, h), borderMode=cv2.BORDER_REFLECT
            )
        return np.clip(
            composite_held(room, hands, lit * alpha[..., None], alpha) + 0.5, 0, 255
        ).astype(np.uint8)


def render_print_photo(
    frames: np.ndarray,
    fps: float,
    rng: np.random.Generator,
    *,
    backdrop: Backdrop | None = None,
    support: str | None = None,
) -> tuple[np.ndarray, PhotoParams]:
    """Render a photo print attack of live frames [T, H, W, 3] BGR at ``fps`` (same shape
    and timing) in front of ``backdrop`` (another person's room; a drawn room if None)."""
    hw = frames.shape[1:3]
    params = sample_photo_params(frames, rng, backdrop, support=support)
    scene = PhotoScene(
        frames[params.still_index],
        hw,
        params,
        len(frames) / fps,
        None if backdrop is None else backdrop.image,
    )
    return np.stack([scene.render(i / fps) for i in range(len(frames))]), params
