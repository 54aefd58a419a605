"""One Markdown table from several leave-people-out reports (``liveness eval --cv``'s
cv.json): a row per run, the measures side by side, for an ablation or a learning curve.

    python scripts/cv_table.py artifacts/cv/light artifacts/cv/mobilenet_v2_frozen ...
    python scripts/cv_table.py --label "name=DIR" ...     (rows named by hand)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

KINDS = ("print", "replay", "warp", "cutout")


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def row(label: str, report: dict) -> str:
    plan = report["plan"]
    done = f"{len(report['folds_done'])}/{plan['k']}"
    apcer = report.get("apcer_per_attack", {})
    minutes = sum(s["train"] + s["score"] for s in report.get("fold_seconds", {}).values()) / 60
    cells = [
        label,
        done,
        _pct(report.get("auc")),
        _pct(report.get("bpcer")),
        *(_pct(apcer.get(k)) for k in KINDS),
        _pct(report.get("acer")),
        _pct(report.get("bpcer_camera")),
        _pct(report.get("replay_apcer")),
        _pct(report.get("subjects_all_raw_pass")),
        f"{report['threshold']:.3f}",
        f"{minutes:.0f}",
    ]
    return "| " + " | ".join(cells) + " |"


HEADER = (
    "| run | folds | AUC | BPCER raw | APCER print | APCER replay | APCER warp | APCER cutout "
    "| ACER | BPCER camera | real replays passed | people all pass | threshold | minutes |\n"
    "| :--- | :---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
    "| ---: | ---: |"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="cv output folders, or NAME=FOLDER")
    args = parser.parse_args(argv)
    lines = [HEADER]
    for spec in args.runs:
        label, _, folder = spec.rpartition("=") if "=" in spec else ("", "", spec)
        path = Path(folder) / "cv.json"
        if not path.is_file():
            print(f"cv_table: {path}: no such report", file=sys.stderr)
            return 2
        lines.append(row(label or Path(folder).name, json.loads(path.read_text())))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
