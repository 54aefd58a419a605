"""What the benchmarks measure on: exported models and a generated 640x480 face clip.

Models: the embedded default (model/weights/default) when it matches the backbone and
size asked for, otherwise a network with random (seeded) weights exported by the bench
itself; random weights cost exactly as much as trained ones.

Clip: a real face (a genuine clip from ../shared/data/real when present, else the
scikit-image astronaut portrait swaying) on a textured, drifting background, 640x480,
written with OpenCV's ``mp4v`` (MPEG-4 part 2) encoder: the OpenCV wheels cannot write
H.264, and MPEG-4 part 2 decodes at a similar cost per frame.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from model.config import NetworkConfig, PreprocessConfig, WindowConfig
from model.manifest import DEFAULT_MODEL_DIR, ManifestError, read_manifest
from model.video import read_frames, write_clip
from training.shared_data import REAL_CLIPS

REAL_CLIP = REAL_CLIPS / "liveportrait__driving_d6.mp4"
FRAME_SIZE = (640, 480)  # width, height of the generated clip
# network input side of each backbone, px; mobilenet_v2 112 is the embedded default model
DEFAULT_SIZES = {"mobilenet_v2": 112, "light": 112, "vgg16": 224}
# the real-time encoders: their benchmarks also run the other face detectors and thread counts
REAL_TIME = ("mobilenet_v2", "light")


@dataclass(frozen=True)
class ModelSpec:
    backbone: str  # "mobilenet_v2", "light" or "vgg16"
    input_size: int  # px
    window: int = 16  # T
    window_fps: float = 15.0  # encoder frame rate of the window

    @property
    def name(self) -> str:
        return f"{self.backbone}-{self.input_size}-T{self.window}-{self.window_fps:g}fps"


def _default_matches(spec: ModelSpec) -> bool:
    if not DEFAULT_MODEL_DIR.is_dir():
        return False
    try:
        m = read_manifest(DEFAULT_MODEL_DIR, verify_files=False)
    except ManifestError:
        return False
    w = m.preprocess.window
    return (m.network.backbone, m.network.input_size, w.length, w.fps) == (
        spec.backbone,
        spec.input_size,
        spec.window,
        spec.window_fps,
    )


def bench_model(spec: ModelSpec, workdir: Path, seed: int = 0) -> Path:
    """A model directory for ``spec``: the default model if it matches, else a fresh export."""
    if _default_matches(spec):
        return DEFAULT_MODEL_DIR
    out = Path(workdir) / spec.name
    if (out / "manifest.json").is_file():
        return out
    import torch

    from model.export import export_model, make_manifest
    from model.network import build_network

    network = NetworkConfig(backbone=spec.backbone, input_size=spec.input_size)
    preprocess = PreprocessConfig(
        window=WindowConfig(
            length=spec.window, fps=spec.window_fps, min_length=min(8, spec.window)
        ),
    )
    torch.manual_seed(seed)
    net = build_network(network).eval()
    manifest = make_manifest(net, preprocess, name=f"bench-{spec.name}", version="random weights")
    return export_model(net, manifest, out)


def without_motion(model_dir: Path, workdir: Path, seed: int = 0) -> Path:
    """A model of ``model_dir``'s network and preprocessing that reads no motion
    (random weights): the baseline a motion model's cost is measured against."""
    manifest = read_manifest(model_dir, verify_files=False)
    out = Path(workdir) / f"{manifest.name}-no-motion"
    if (out / "manifest.json").is_file():
        return out
    import torch

    from model.config import replace
    from model.export import export_model, make_manifest
    from model.network import build_network

    torch.manual_seed(seed)
    net = build_network(replace(manifest.network, motion="none")).eval()
    made = make_manifest(
        net, manifest.preprocess, name=f"{manifest.name}-no-motion", version="random weights"
    )
    return export_model(net, made, out)


def model_source(model_dir: Path) -> str:
    return "embedded default model" if model_dir == DEFAULT_MODEL_DIR else "random weights"


# -- the face clip -------------------------------------------------------------------------


def _face_sources(n: int) -> Iterator[np.ndarray]:
    """n face images (BGR, square): a real clip's frames, looped, or the astronaut."""
    if REAL_CLIP.is_file():
        frames, _, _ = read_frames(REAL_CLIP, max_frames=n)
        for i in range(n):
            yield frames[i % len(frames)]
        return
    from skimage import data

    portrait = np.ascontiguousarray(data.astronaut()[:300, 60:360, ::-1])  # the face region
    for _ in range(n):
        yield portrait


def face_source_name() -> str:
    return REAL_CLIP.name if REAL_CLIP.is_file() else "scikit-image astronaut"


def face_frames(n: int, fps: float = 30.0, size: tuple[int, int] = FRAME_SIZE) -> list[np.ndarray]:
    """n BGR frames [H, W, 3]: the face (360 px) swaying over a drifting textured background."""
    width, height = size
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(
        rng.integers(0, 256, (height + 64, width + 64, 3), np.uint8), (0, 0), 3
    )
    side = min(360, int(0.75 * height))
    frames = []
    for i, face in enumerate(_face_sources(n)):
        t = i / fps
        bx, by = int(32 + 24 * math.sin(2 * math.pi * 0.1 * t)), int(32 + 16 * math.cos(0.7 * t))
        frame = texture[by : by + height, bx : bx + width].copy()
        x = (width - side) // 2 + round(12 * math.sin(2 * math.pi * 0.25 * t))  # head sway
        y = (height - side) // 2 + round(4 * math.sin(2 * math.pi * 0.4 * t))
        frame[y : y + side, x : x + side] = cv2.resize(
            face, (side, side), interpolation=cv2.INTER_AREA
        )
        noise = rng.normal(0, 2.0, frame.shape)  # sensor noise: keeps the encoder honest
        frames.append(np.clip(frame + noise, 0, 255).astype(np.uint8))
    return frames


def face_clip(
    path: Path, seconds: float, fps: float = 30.0, size: tuple[int, int] = FRAME_SIZE
) -> Path:
    """Write the face clip (mp4v) of ``seconds`` at ``fps`` to ``path``."""
    if not Path(path).is_file():
        write_clip(path, face_frames(max(1, round(seconds * fps)), fps, size), fps)
    return Path(path)


def jpeg_frames(frames: list[np.ndarray], quality: int = 80) -> list[bytes]:
    """JPEG bytes of each frame, as a browser camera stream would send them."""
    out = []
    for frame in frames:
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise RuntimeError("OpenCV could not JPEG-encode a frame")
        out.append(buf.tobytes())
    return out
