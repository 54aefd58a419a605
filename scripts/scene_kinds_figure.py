"""Example frames of the scene attack kinds beside the close-up ones: docs/scene-kinds.png.

    python scripts/scene_kinds_figure.py [--out docs/scene-kinds.png] [--seed 0]

Rows: ``replay_handheld``, ``print_photo``, then today's close-up ``replay`` and flat
``print`` for comparison; columns: four people of ../shared/data/real (each scene kind
in another person's room, drawn as ``liveness synth`` draws it), one frame each after
the simulated camera.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.shared_data import REAL_CLIPS  # noqa: E402
from training.synth.camera import Camera  # noqa: E402
from training.synth.dataset import (  # noqa: E402
    SCENE_KINDS,
    draw_backdrop,
    plan_clip,
    render_attack,
)
from training.synth.sources import find_sources, probe_source, read_frames_at  # noqa: E402

ROWS = (*SCENE_KINDS, "replay", "print")
COLUMNS = 4
THUMB_W, THUMB_H = 220, 150  # px, one example frame's cell
MAX_SECONDS = 0.6  # a short stretch: one frame of it is shown


def example(source, rooms, kind: str, seed: int) -> np.ndarray:
    """One recorded frame of ``kind`` from ``source``, as liveness synth renders it."""
    plan = plan_clip(source, kind, 0, seed, MAX_SECONDS)
    frames = read_frames_at(source, plan.source_frames)
    backdrop = draw_backdrop(rooms, frames.shape[1:3], plan.rng) if kind in SCENE_KINDS else None
    scene, _ = render_attack(kind, frames, plan.camera.fps, plan.rng, backdrop=backdrop)
    camera = Camera(plan.camera)
    shots = [camera.capture(f, i / plan.camera.fps) for i, f in enumerate(scene)]
    return shots[len(shots) // 2]


def thumb(frame: np.ndarray, label: str) -> np.ndarray:
    """The frame fitted into a THUMB_W x THUMB_H cell (portrait ones with dark sides)."""
    h, w = frame.shape[:2]
    s = min(THUMB_W / w, THUMB_H / h)
    fitted = cv2.resize(frame, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    small = np.full((THUMB_H, THUMB_W, 3), 24, np.uint8)
    y0, x0 = (THUMB_H - fitted.shape[0]) // 2, (THUMB_W - fitted.shape[1]) // 2
    small[y0 : y0 + fitted.shape[0], x0 : x0 + fitted.shape[1]] = fitted
    cv2.putText(small, label, (5, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(
        small, label, (5, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA
    )
    return small


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/scene-kinds.png"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    paths = find_sources([REAL_CLIPS])
    step = max(1, len(paths) // COLUMNS)
    people = [probe_source(p) for p in paths[::step][:COLUMNS]]
    rooms = [probe_source(p) for p in paths[1::step][:COLUMNS]]
    rows = []
    for kind in ROWS:
        cells = [
            thumb(example(person, [rooms[i]], kind, args.seed), kind)
            for i, person in enumerate(people)
        ]
        rows.append(np.concatenate(cells, axis=1))
    cv2.imwrite(str(args.out), np.concatenate(rows, axis=0), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
