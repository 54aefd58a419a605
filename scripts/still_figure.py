"""How a model scores still photos of real people: every raw genuine clip turned into
still attacks (training/evaluate/stills.py: still, still_plain, still_handheld), each
scored through ONNX Runtime as the server scores an upload (model.runtime.score_clip),
with the raw clips themselves beside them. Prints a Markdown table: per kind, the share
scored genuine at the model's threshold and the score range.

    OMP_NUM_THREADS=1 python scripts/still_figure.py [--model DIR] [--raw DIR] [--seed S]

A clip with no face in enough frames for one window is a failure to acquire: it is
counted apart and not as genuine.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model.labels import GENUINE  # noqa: E402
from model.manifest import DEFAULT_MODEL_DIR  # noqa: E402
from model.runtime import LivenessModel  # noqa: E402
from training.evaluate.score import score_records  # noqa: E402
from training.evaluate.stills import EVAL_STILL_KINDS, make_still_attacks  # noqa: E402
from training.evaluate.unseen import raw_records  # noqa: E402


def kind_rows(outcomes, threshold: float) -> list[dict]:
    """Per kind: clips, failures to acquire, share scored genuine (of all clips), scores."""
    by_kind: dict[str, list] = {}
    for o in outcomes:
        kind = "raw genuine" if o.record.is_genuine else o.record.attack
        by_kind.setdefault(kind, []).append(o)
    rows = []
    for kind, items in by_kind.items():
        scores = [o.score for o in items if o.acquired]
        passed = sum(1 for s in scores if s >= threshold)
        rows.append(
            {
                "kind": kind,
                "clips": len(items),
                "no_face": len(items) - len(scores),
                "genuine_share": passed / len(items),
                "min": min(scores, default=None),
                "median": sorted(scores)[len(scores) // 2] if scores else None,
                "max": max(scores, default=None),
            }
        )
    return rows


def markdown(rows: list[dict], threshold: float) -> str:
    lines = [
        f"| kind | clips | no face | scored genuine at {threshold:.3f} | min | median | max |",
        "| :--- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        cells = [f"{r[k]:.3f}" if r[k] is not None else "–" for k in ("min", "median", "max")]
        lines.append(
            f"| {r['kind']} | {r['clips']} | {r['no_face']} | "
            f"{100 * r['genuine_share']:.1f} % | {' | '.join(cells)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--raw", type=Path, default=ROOT.parent / "shared" / "data" / "real")
    parser.add_argument("--seed", type=int, default=0, help="seed of the still frames and motion")
    parser.add_argument("--stills", type=Path, help="folder for the clips (default artifacts/)")
    parser.add_argument("--json", type=Path, help="also write every clip's score here")
    args = parser.parse_args(argv)
    raw = raw_records(args.raw)
    folder = args.stills or ROOT / "artifacts" / "stills" / f"seed-{args.seed}"
    stills = make_still_attacks(raw, folder, seed=args.seed, kinds=EVAL_STILL_KINDS)
    model = LivenessModel(args.model, threads=1)
    outcomes = score_records(model, [*raw, *stills])
    print(markdown(kind_rows(outcomes, model.threshold), model.threshold))
    if args.json:
        clips = [
            {
                "clip": str(o.record.path),
                "kind": GENUINE if o.record.is_genuine else o.record.attack,
                "score": o.score,
                "reason": o.reason,
            }
            for o in outcomes
        ]
        args.json.write_text(json.dumps(clips, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
