"""An object held up in front of the camera in a real scene: its pose over time.

The object (a phone, a tablet, a printed photo) is a surface in 3-D described in its own
centimetres: x to the right, y down, z away from the camera, origin at its centre. A
``HeldPose`` places it in front of the pinhole camera of training/synth/scene.py (focal
length 1.2x the frame's long side) and a hand moves it: a smoothed random walk of
translation, roll, tilt and distance plus tremor (scene.py's ``PoseTrack``), or nothing
on a stand. Half of the hand-held scenes are filmed by a hand-held camera too: a smaller
walk moves the whole frame, room included (training/synth/still.py's ``camera_shake``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from training.synth.scene import HandMotion, PoseTrack, _rotation, plane_homography
from training.synth.still import CENTRED

FOCAL = 1.2  # focal length as a multiple of the frame's long side (plane_homography's)


@dataclass(frozen=True)
class HeldPose:
    """Where a held object rests and how it moves."""

    size_cm: tuple[float, float]  # object width, height
    px_per_cm: float  # frame px per cm at the object's distance, facing the camera
    center: tuple[float, float]  # rest position of the object's centre, frame px
    roll_deg: float
    tilt_x_deg: float  # rotation about the horizontal axis (top leaning away if > 0)
    tilt_y_deg: float  # rotation about the vertical axis
    motion: HandMotion  # the hand's walk and tremor, or a stand ("fixed")
    shake: HandMotion | None  # the camera's own shake, or None (camera on a stand)


class HeldTrack:
    """The pose of a ``HeldPose`` at any time, and the projection of object points."""

    def __init__(self, pose: HeldPose, frame_wh: tuple[int, int], duration_s: float) -> None:
        self.pose = pose
        self.frame_wh = frame_wh
        short = min(frame_wh)
        self.focal = FOCAL * max(frame_wh)
        self.track = PoseTrack(pose.motion, duration_s, short)
        self.shake = PoseTrack(pose.shake, duration_s, short) if pose.shake else None

    def camera_pose(self, t: float) -> tuple[np.ndarray, float, tuple[float, float]]:
        """(rotation [3, 3], px per cm, image position of the centre) at time t."""
        p, off = self.pose, self.track.at(t)
        rot = _rotation(p.roll_deg + off[2], p.tilt_x_deg + off[3], p.tilt_y_deg + off[4])
        return (
            rot,
            p.px_per_cm * float(np.exp(off[5])),
            (p.center[0] + off[0], p.center[1] + off[1]),
        )

    def project(self, points: np.ndarray, t: float) -> np.ndarray:
        """Object points [N, 3] (cm) -> frame px [N, 2] at time t, camera shake included."""
        rot, s, (cx, cy) = self.camera_pose(t)
        cam = s * np.asarray(points, np.float64) @ rot.T + [0.0, 0.0, self.focal]
        xy = np.c_[self.focal * cam[:, 0] / cam[:, 2] + cx, self.focal * cam[:, 1] / cam[:, 2] + cy]
        if self.shake is None:
            return xy
        moved = cv2.perspectiveTransform(xy[:, None], self.shake_homography(t))
        return moved[:, 0].astype(np.float64)

    def rays(self, xs: np.ndarray, ys: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        """The camera rays through frame pixels, in object cm: origin [3] and directions
        [..., 3] (unnormalised): a point of the ray is origin + lambda * direction."""
        if self.shake is not None:  # undo the camera's shake first
            inv = np.linalg.inv(self.shake_homography(t))
            den = inv[2, 0] * xs + inv[2, 1] * ys + inv[2, 2]
            xs, ys = (
                (inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]) / den,
                (inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]) / den,
            )
        rot, s, (cx, cy) = self.camera_pose(t)
        d = np.stack([(xs - cx) / self.focal, (ys - cy) / self.focal, np.ones_like(xs)], -1)
        origin = rot.T @ np.array([0.0, 0.0, -self.focal]) / s
        return origin, (d @ rot) / s  # rot.T applied to each direction

    def homography(self, t: float) -> np.ndarray:
        """3x3 map from the object's flat plane (cm, z = 0) to frame px at time t."""
        w, h = self.pose.size_cm
        corners = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
        dst = self.project(np.c_[corners, np.zeros(4)], t)
        return cv2.getPerspectiveTransform(corners.astype(np.float32), dst.astype(np.float32))

    def shake_homography(self, t: float) -> np.ndarray:
        """3x3 motion of the whole frame by the camera's shake at time t (identity if none)."""
        if self.shake is None:
            return np.eye(3)
        return plane_homography(self.frame_wh, (0, 0), self.frame_wh, CENTRED, self.shake.at(t))


def visible_share(quad: np.ndarray, frame_wh: tuple[int, int]) -> float:
    """Share of the frame covered by a convex quad [4, 2] (frame px), clipped to the frame."""
    w, h = frame_wh
    rect = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    hull = cv2.convexHull(quad.astype(np.float32))
    area, _ = cv2.intersectConvexConvex(hull, rect)
    return max(float(area), 0.0) / (w * h)
