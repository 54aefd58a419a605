"""What the capture-quality gates cost genuine clips: each clip through the server's
per-frame path (decode, face tracking and crop, the gates' measures) and the gates'
verdict at the server's settings (LIVENESS_GATE_* from the environment, else the
defaults), as the Markdown table of docs/quality.md.

    python scripts/gate_table.py --folder ../shared/data/real \
        --dataset artifacts/cv/data --out docs/gates-genuine.md

``--folder``: every video in it (genuine clips); ``--dataset``: the genuine clips of a
data set folder's index.csv (``liveness synth`` output: camera-processed genuine clips).
The gates do not depend on the model's scores, so the model is not run; its
preprocessing settings (crop margin, detector) come from ``--model`` (default: the
embedded model). A clip with no face in any frame is listed as such (the server answers
it 422 no_face).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from model.manifest import DEFAULT_MODEL_DIR, read_manifest  # noqa: E402
from model.preprocess import Preprocessor  # noqa: E402
from model.quality import assess  # noqa: E402
from model.video import VideoReader  # noqa: E402
from service.settings import Settings  # noqa: E402

VIDEO = (".mp4", ".avi", ".mov", ".mkv", ".webm")


def clips(args: argparse.Namespace) -> list[tuple[str, Path, str]]:
    """(set name, file, name shown) of every clip asked for."""
    out = []
    for folder in args.folder:
        videos = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO)
        out += [(folder.name, p, p.name) for p in videos]
    for root in args.dataset:
        with open(root / "index.csv", newline="") as f:
            rows = [r for r in csv.DictReader(f) if r["label"] == "genuine"]
        out += [(f"{root.name} (synthetic)", root / r["path"], r["path"]) for r in rows]
    return out


def gate_clip(path: Path, settings: Settings, preprocess) -> dict:
    reader = VideoReader(
        path.read_bytes(), max_side=settings.max_side, max_frames=settings.max_frames, threads=1
    )
    pre = Preprocessor(preprocess, reader.info.fps)
    qualities = [pre.process(frame, t).quality for frame, t in reader]
    verdict = assess(qualities, settings.gate_config())
    return {"frames": verdict.frames, "usable": verdict.usable, "verdict": verdict,
            "faces": sum(q.face for q in qualities)}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", type=Path, action="append", default=[],
                        help="a folder of genuine videos (repeatable)")  # fmt: skip
    parser.add_argument("--dataset", type=Path, action="append", default=[],
                        help="a data set folder with index.csv: its genuine clips (repeatable)")  # fmt: skip
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR,
                        help="model directory whose preprocessing is used (default: embedded)")  # fmt: skip
    parser.add_argument("--out", type=Path, help="also write the Markdown here")
    args = parser.parse_args()
    if not args.folder and not args.dataset:
        parser.error("give --folder or --dataset")
    settings = Settings()
    preprocess = read_manifest(args.model).preprocess
    rows, reasons, per_set = [], Counter(), Counter()
    started, frames = time.perf_counter(), 0
    for group, path, name in clips(args):
        r = gate_clip(path, settings, preprocess)
        frames += r["frames"]
        v = r["verdict"]
        named = ", ".join(f"{c} ({v.shares.get(c, 0):.0%})" for c in v.reasons)
        if r["faces"] == 0:
            named = "no face in any frame (422 no_face)"
        per_set[group, "clips"] += 1
        if v.reasons or r["faces"] == 0:
            per_set[group, "flagged"] += 1
            reasons.update(v.reasons or ["no_face (422)"])
        near = {k: s for k, s in v.shares.items() if s >= 0.1 and k not in v.reasons}
        rows.append(f"| {group} | {name} | "
                    f"{r['frames']} | {r['usable'] / max(1, r['faces']):.0%} | "
                    f"{named or 'passes'} | "
                    f"{', '.join(f'{k} {s:.0%}' for k, s in sorted(near.items())) or '–'} |")  # fmt: skip
        print(rows[-1], flush=True)
    seconds = time.perf_counter() - started
    groups = sorted({g for g, _ in per_set})  # (set, "clips" / "flagged") keys
    lines = [
        "| clips | genuine clips | inconclusive (or no face) | share |",
        "|---|---:|---:|---:|",
    ]
    for g in groups:
        n, k = per_set[g, "clips"], per_set[g, "flagged"]
        lines.append(f"| {g} | {n} | {k} | {k / max(1, n):.1%} |")
    lines += ["", "Reasons: " + (", ".join(f"{c} {n}" for c, n in reasons.most_common()) or "none"),
              "", "| set | clip | frames | usable face frames | gates | other reasons over 10 % of frames |",
              "|---|---|---:|---:|---|---|", *rows, "",
              f"{frames} frames in {seconds:.0f} s (decode, face tracking and the gates' measures)."]  # fmt: skip
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
