"""How the two published MiniFASNet classifiers score our real clips, frame by frame.

For every clip of ``--real`` (genuine), ``--replays`` (real screen replays) and ``--nuaa``
(real printed photos and their live twins, labels.csv): ten frames spread over the clip
in which BlazeFace finds a face, each cropped around its largest face box with our own
crop (model/face.py: a square of side ``scale`` x the box's larger side, moved inside the
frame and shrunk to fit as the authors crop, or with ``--border replicate`` edge-replicated
where it leaves the frame) at 80 px, BGR [0, 255]. A clip's score is the mean over its
frames of P(real) averaged over the two networks (V2 at its crop scale, V1SE at its own).
A still (one frame repeated) scores exactly its frame's P(real): a single-frame model
cannot tell it from the clip, which the ``still`` column shows with the first frame.

    OMP_NUM_THREADS=1 python scripts/minifasnet_figure.py [--scales 2.7,4.0 ...] [--json OUT]

``--scales V2,V1SE`` may be given several times: every pair is scored (the crops are the
authors' scales of a RetinaFace box; our boxes are BlazeFace's grown to Haar geometry).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model.config import CROP_BORDERS, CropConfig  # noqa: E402
from model.detectors import BlazeFaceDetector  # noqa: E402
from model.face import crop_face  # noqa: E402
from model.minifasnet import INPUT_SIZE, MINIFASNET_V1SE, MINIFASNET_V2, load_minifasnet  # noqa: E402
from model.video import VideoReader  # noqa: E402
from training.evaluate.metrics import roc_auc  # noqa: E402

FRAMES = 10  # frames scored per clip
CANDIDATES = 20  # evenly spaced frames searched for a face
ACCEPT = 0.5  # P(real) at or above which a clip is accepted (the authors' argmax, roughly)
SHARED = ROOT.parent / "shared" / "data"


def margin_for(scale: float) -> float:
    """Our crop margin for a crop side of ``scale`` x the box: side = (1 + 2 margin) x box."""
    return (scale - 1.0) / 2.0


def face_frames(path: Path, detector: BlazeFaceDetector) -> list[tuple[np.ndarray, object]]:
    """Up to FRAMES (frame, largest face box) pairs, spread over the clip."""
    with VideoReader(path) as reader:
        total = sum(1 for _ in reader)
    wanted = set(np.linspace(0, total - 1, min(CANDIDATES, total)).round().astype(int).tolist())
    found = []
    with VideoReader(path) as reader:
        for i, (frame, _) in enumerate(reader):
            if i in wanted:
                boxes = detector.detect(frame)
                if boxes:
                    found.append((frame, boxes[0]))
    if len(found) > FRAMES:
        keep = np.linspace(0, len(found) - 1, FRAMES).round().astype(int)
        found = [found[k] for k in keep]
    return found


def p_real(net, frames, scale: float, border: str) -> np.ndarray:
    """P(real) of each (frame, box) with crops of side ``scale`` x the box: [N]."""
    config = CropConfig(input_size=INPUT_SIZE, margin=margin_for(scale), border=border)
    crops = np.stack([crop_face(f, b, config) for f, b in frames])  # [N, 80, 80, 3] BGR
    x = torch.from_numpy(crops.transpose(0, 3, 1, 2).astype(np.float32))  # [0, 255], no mean/std
    with torch.no_grad():
        return net.p_real(x).numpy()


def clips(real: Path, replays: Path, nuaa: Path) -> list[tuple[Path, str, bool]]:
    """(path, group, genuine) for every clip measured."""
    out = [(p, "real", True) for p in sorted(real.iterdir()) if p.suffix in (".mp4", ".avi")]
    out += [(p, "replay", False) for p in sorted(replays.glob("*.mp4"))]
    with open(nuaa / "labels.csv", newline="") as f:
        for row in csv.DictReader(f):
            genuine = row["label"] == "genuine"
            out.append((nuaa / row["file"], "nuaa live" if genuine else "nuaa print", genuine))
    return out


def summary(rows: list[dict], key: str) -> dict:
    genuine = [r[key] for r in rows if r["genuine"]]
    attacks = [r[key] for r in rows if not r["genuine"]]
    labels = [1] * len(genuine) + [0] * len(attacks)
    out = {"auc": roc_auc(np.array(genuine + attacks), np.array(labels))}
    for group in ("real", "replay", "nuaa live", "nuaa print"):
        scores = [r[key] for r in rows if r["group"] == group]
        out[group] = {"clips": len(scores), "accepted": sum(s >= ACCEPT for s in scores)}
    real_live = [r[key] for r in rows if r["group"] == "real"]
    out["stills accepted"] = sum(r["still"] >= ACCEPT for r in rows if r["group"] == "real")
    out["real median"] = float(np.median(real_live))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", type=Path, default=SHARED / "real")
    parser.add_argument("--replays", type=Path, default=SHARED / "attacks")
    parser.add_argument("--nuaa", type=Path, default=SHARED / "attacks" / "nuaa")
    parser.add_argument("--scales", action="append", help="V2,V1SE crop scales (default 2.7,4.0)")
    parser.add_argument(
        "--border",
        choices=CROP_BORDERS,
        default="shift",
        help="where a crop leaves the frame: shift it inside (the authors' crop) or replicate",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    pairs = [tuple(float(v) for v in s.split(",")) for s in (args.scales or ["2.7,4.0"])]
    nets = {"v2": load_minifasnet(MINIFASNET_V2), "v1se": load_minifasnet(MINIFASNET_V1SE)}
    detector = BlazeFaceDetector()
    rows = []
    for path, group, genuine in clips(args.real, args.replays, args.nuaa):
        frames = face_frames(path, detector)
        row = {"clip": path.name, "group": group, "genuine": genuine, "frames": len(frames)}
        for s2, s1 in pairs:
            if not frames:
                continue
            v2 = p_real(nets["v2"], frames, s2, args.border)
            v1 = p_real(nets["v1se"], frames, s1, args.border)
            both = (v2 + v1) / 2
            tag = f"{s2},{s1}"
            row[f"v2@{s2}"], row[f"v1se@{s1}"] = float(v2.mean()), float(v1.mean())
            row[tag], row[f"still@{tag}"] = float(both.mean()), float(both[0])
        rows.append(row)
        print(json.dumps(row), flush=True)
    scored = [r for r in rows if r["frames"]]
    print(f"no face in any searched frame: {[r['clip'] for r in rows if not r['frames']]}")
    report = {}
    for s2, s1 in pairs:
        tag = f"{s2},{s1}"
        for r in scored:
            r["still"] = r[f"still@{tag}"]
        report[tag] = {k: summary(scored, k) for k in (tag, f"v2@{s2}", f"v1se@{s1}")}
        print(tag, json.dumps(report[tag], indent=1))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "summary": report}, indent=1))


if __name__ == "__main__":
    main()
