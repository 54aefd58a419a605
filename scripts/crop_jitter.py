"""How still the face crop is: the crop box's frame-to-frame motion on a real clip.

    python scripts/crop_jitter.py [CLIP] [--frames 300]

The magnifier downstream amplifies any motion of the crop box as if the face moved, so
on a still head the box should not move. For each tracker setting (detector, detector
pass every k frames, EMA smoothing) the clip's frames go through ``FaceCropper`` as the
server runs it; per frame, the move of the box centre and the change of its side are
taken as a share of the side. Printed: their mean, p90 and max, the share of frames the
box moved at all, how far the box centre is from the face (BlazeFace run on that frame
alone: the lag of a smoothed, held box behind a moving head), and the tracker's cost per
frame (detection + tracking + crop). The default clip,
eulerian_remote_heartrate__face.mp4, is a still head.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from model.config import CropConfig  # noqa: E402
from model.detectors import BlazeFaceDetector  # noqa: E402
from model.face import FaceCropper  # noqa: E402
from model.video import read_frames  # noqa: E402
from training.shared_data import REAL_CLIPS  # noqa: E402

DEFAULT_CLIP = REAL_CLIPS / "eulerian_remote_heartrate__face.mp4"
# (label, detector, detect_every, smoothing)
SETTINGS = [
    ("haar, every 5th, EMA 0.6 (before)", "haar", 5, 0.6),
    ("blazeface, every 5th, EMA 0.6", "blazeface", 5, 0.6),
    ("blazeface, every frame, EMA 0.6", "blazeface", 1, 0.6),
    ("blazeface, every frame, EMA 0.8", "blazeface", 1, 0.8),
    ("blazeface, every frame, EMA 0.9", "blazeface", 1, 0.9),
    ("blazeface, every 2nd, EMA 0.8", "blazeface", 2, 0.8),
    ("blazeface, every 5th, EMA 0.8", "blazeface", 5, 0.8),
    ("blazeface, every frame, raw (EMA 0)", "blazeface", 1, 0.0),
]


def reference_centres(frames: list[np.ndarray]) -> list[tuple[float, float] | None]:
    """Where the face is on each frame: BlazeFace run on that frame alone."""
    detector, out = BlazeFaceDetector(), []
    for f in frames:
        boxes = detector.detect(f)
        out.append(
            None if not boxes else (boxes[0].x + boxes[0].w / 2, boxes[0].y + boxes[0].h / 2)
        )
    return out


def measure(frames: list[np.ndarray], config: CropConfig, reference) -> dict[str, float]:
    cropper = FaceCropper(config)
    boxes, seconds = [], 0.0
    for f in frames:
        t0 = time.perf_counter()
        r = cropper.process(f)
        seconds += time.perf_counter() - t0
        boxes.append(
            None if r.box is None else (r.box.x + r.box.w / 2, r.box.y + r.box.h / 2, r.box.w)
        )
    moves, sizes = [], []
    for a, b in zip(boxes, boxes[1:], strict=False):
        if a is None or b is None:
            continue
        moves.append(np.hypot(b[0] - a[0], b[1] - a[1]) / a[2])
        sizes.append(abs(b[2] - a[2]) / a[2])
    lag = [np.hypot(b[0] - r[0], b[1] - r[1]) / b[2] for b, r in zip(boxes, reference, strict=True)
           if b is not None and r is not None]  # fmt: skip
    m, s = np.asarray(moves) * 100, np.asarray(sizes) * 100
    return {
        "found": 100 * sum(b is not None for b in boxes) / len(boxes),
        "mean": m.mean(), "p90": np.percentile(m, 90), "max": m.max(),
        "moved": 100 * (m > 0).mean(), "size_mean": s.mean(),
        "lag": 100 * float(np.mean(lag)), "lag_p90": 100 * float(np.percentile(lag, 90)),
        "ms": 1000 * seconds / len(frames),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("clip", nargs="?", type=Path, default=DEFAULT_CLIP)
    parser.add_argument("--frames", type=int, default=300, help="frames read from the clip")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)  # as the server runs
    frames, _, _ = read_frames(args.clip, max_frames=args.frames)
    if not frames:
        print(f"no frames decoded from {args.clip}", file=sys.stderr)
        return 1
    h, w = frames[0].shape[:2]
    print(f"{args.clip.name}: {len(frames)} frames, {w}x{h}\n")
    print("| tracker | face % | centre move % of side: mean | p90 | max | frames moved % "
          "| side change % mean | off the face % of side: mean | p90 | ms per frame |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    reference = reference_centres(frames)
    for label, detector, every, smoothing in SETTINGS:
        r = measure(frames, CropConfig(detector=detector, detect_every=every, smoothing=smoothing),
                    reference)  # fmt: skip
        print(f"| {label} | {r['found']:.1f} | {r['mean']:.3f} | {r['p90']:.3f} | {r['max']:.2f} | "
              f"{r['moved']:.1f} | {r['size_mean']:.3f} | {r['lag']:.2f} | {r['lag_p90']:.2f} | {r['ms']:.2f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
