"""Face detectors on the real clips: frames with a face per clip, under head roll, and cost.

    python scripts/detector_table.py [--data ../shared/data/real] [--per-clip 20]

For every clip in the folder (default ``../shared/data/real`` beside the repository), up
to ``--per-clip`` frames evenly spread over it, as decoded. Each detector (as
``make_detector`` builds it for the default crop settings) runs on each frame, and a
frame counts when at least one face is found (every clip shows a face in every frame).
The roll test rotates the same frames in-plane about their centre, even-numbered by +θ
and odd-numbered by -θ, keeping the frame size. Cost: median (p10-p90) ms of one call on
40 frames letterboxed to 640x480 BGR, with the detector's own threads (OpenCV for Haar,
LiteRT for BlazeFace) at 1 and 2, and the CPU other processes used meanwhile (the
machine may be shared: bench/gate.py's meter). Geometry: Haar's box side over BlazeFace's raw side and
the offset of Haar's centre, on frames where both find one overlapping face; these are
the constants model/detectors.py grows BlazeFace boxes with; and how far the heads in
the clips roll (the eye line's angle). Prints Markdown tables.
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

from bench.gate import METER  # noqa: E402
from model.detectors import BlazeFaceDetector, HaarDetector  # noqa: E402
from model.video import VideoDecodeError, read_frames  # noqa: E402
from training.shared_data import REAL_CLIPS  # noqa: E402

DEFAULT_DATA = REAL_CLIPS
ROLLS = (0, 30, 45)


def sample_frames(clip: Path, per_clip: int) -> list[np.ndarray]:
    try:
        frames, _, _ = read_frames(clip)
    except VideoDecodeError:
        return []
    idx = np.unique(np.linspace(0, len(frames) - 1, min(per_clip, len(frames))).round().astype(int))
    return [frames[i] for i in idx]


def rotate(frame: np.ndarray, degrees: float) -> np.ndarray:
    h, w = frame.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(frame, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def letterbox(frame: np.ndarray, size=(640, 480)) -> np.ndarray:
    w, h = size
    s = min(w / frame.shape[1], h / frame.shape[0])
    small = cv2.resize(frame, (round(frame.shape[1] * s), round(frame.shape[0] * s)))
    out = np.zeros((h, w, 3), np.uint8)
    y, x = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
    out[y : y + small.shape[0], x : x + small.shape[1]] = small
    return out


def detectors(threads: int) -> dict[str, object]:
    cv2.setNumThreads(threads)
    return {"haar": HaarDetector(), "blazeface": BlazeFaceDetector(num_threads=threads)}


def timing(det, frames: list[np.ndarray]) -> str:
    for f in frames[:3]:
        det.detect(f)
    ms = []
    for f in frames:
        t0 = time.perf_counter()
        det.detect(f)
        ms.append(1000 * (time.perf_counter() - t0))
    p10, p50, p90 = np.percentile(ms, [10, 50, 90])
    return f"{p50:.2f} ({p10:.2f}–{p90:.2f})"


def geometry(clips: dict[str, list[np.ndarray]]) -> str:
    haar, raw = HaarDetector(), BlazeFaceDetector(box_scale=1.0, centre_shift=0.0)
    ratios, shifts, rolls = [], [], []
    for frames in clips.values():
        for f in frames:
            h, b = haar.detect(f), raw.detect(f)
            if b:  # the head's in-plane roll: the angle of the line between the eyes
                (x0, y0), (x1, y1) = sorted(raw.last_keypoints[0][:2].tolist())
                rolls.append(abs(np.degrees(np.arctan2(y1 - y0, x1 - x0))))
            if len(h) != 1 or len(b) != 1 or h[0].iou(b[0]) < 0.3:
                continue
            (hb,), (bb,) = h, b
            ratios.append(hb.w / bb.w)
            shifts.append(((hb.y + hb.h / 2) - (bb.y + bb.h / 2)) / hb.h)
    if not ratios:
        return "geometry: no frame where both detectors found one overlapping face"
    q = np.percentile(ratios, [25, 50, 75])
    r = np.percentile(rolls, [50, 90, 99])
    return (
        f"head roll on {len(rolls)} frames (BlazeFace's eye keypoints): |roll| median "
        f"{r[0]:.1f}°, p90 {r[1]:.1f}°, p99 {r[2]:.1f}°, max {max(rolls):.1f}°\n"
        f"geometry on {len(ratios)} frames: Haar side / BlazeFace raw side = {q[1]:.3f} "
        f"(IQR {q[0]:.3f}–{q[2]:.3f}); Haar centre - BlazeFace centre = "
        f"{np.median(shifts):+.3f} of Haar's side (+ = lower)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of clips")
    parser.add_argument("--per-clip", type=int, default=20, help="frames taken from each clip")
    parser.add_argument("--skip-geometry", action="store_true", help="leave out the box geometry")
    args = parser.parse_args(argv)
    paths = sorted(p for p in args.data.glob("*") if p.suffix in (".mp4", ".avi", ".mov"))
    if not paths:
        print(f"no clips in {args.data}", file=sys.stderr)
        return 1
    clips = {p.name: sample_frames(p, args.per_clip) for p in paths}
    clips = {k: v for k, v in clips.items() if v}
    dets = detectors(1)
    names = list(dets)
    found = {(n, r): {} for n in names for r in ROLLS}
    for clip, frames in clips.items():
        for roll in ROLLS:
            rolled = [
                rotate(f, roll if i % 2 == 0 else -roll) if roll else f
                for i, f in enumerate(frames)
            ]
            for n in names:
                found[(n, roll)][clip] = sum(bool(dets[n].detect(f)) for f in rolled)
    total = sum(len(v) for v in clips.values())

    def pct(hits: int, n: int) -> str:
        return f"{100 * hits / n:.1f}"

    print(f"### Frames with a face, per clip (up to {args.per_clip} frames each, as decoded)\n")
    print("| clip | size | frames | " + " | ".join(f"{n} %" for n in names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    for clip, frames in clips.items():
        h, w = frames[0].shape[:2]
        cells = [pct(found[(n, 0)][clip], len(frames)) for n in names]
        print(f"| {clip} | {w}x{h} | {len(frames)} | " + " | ".join(cells) + " |")
    cells = [pct(sum(found[(n, 0)].values()), total) for n in names]
    print(f"| **all {len(clips)} clips** | | {total} | " + " | ".join(cells) + " |")
    cells = [str(sum(found[(n, 0)][c] == 0 for c in clips)) for n in names]
    print("| clips with no face found | | | " + " | ".join(cells) + " |")
    print("\n### Head roll (the same frames rotated in-plane, ±θ alternately)\n")
    print("| detector | " + " | ".join(f"θ = ±{r}°" if r else "θ = 0°" for r in ROLLS) + " |")
    print("|---|" + "---|" * len(ROLLS))
    for n in names:
        print(
            f"| {n} | " + " | ".join(pct(sum(found[(n, r)].values()), total) for r in ROLLS) + " |"
        )
    spread = [f for frames in clips.values() for f in frames]
    step = max(1, len(spread) // 40)
    timed = [letterbox(f) for f in spread[::step][:40]]
    print("\n### Cost: ms per call on 640x480, median (p10–p90)\n")
    print("| detector | 1 thread | 2 threads | 2 threads / 1 |")
    print("|---|---|---|---|")
    METER.start()
    rows = {t: {n: timing(d, timed) for n, d in detectors(t).items()} for t in (1, 2)}
    foreign = METER.stop()
    for n in names:
        a, b = rows[1][n], rows[2][n]
        r = float(b.split()[0]) / float(a.split()[0])
        print(f"| {n} | {a} | {b} | {r:.2f}× |")
    load = "unknown" if foreign is None else f"{foreign:.2f}"
    print(f"\nforeign load while timing (other processes' CPU use, cores): {load}")
    cv2.setNumThreads(1)
    if not args.skip_geometry:
        print("\n" + geometry(clips))
    return 0


if __name__ == "__main__":
    sys.exit(main())
