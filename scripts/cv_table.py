"""One Markdown table from several leave-people-out reports (``liveness eval --cv``'s
cv.json): a row per run, the measures side by side, for an ablation or a learning curve.

    python scripts/cv_table.py artifacts/cv/light artifacts/cv/default-model ...
    python scripts/cv_table.py "name=DIR" ...            (a row named by hand)
    python scripts/cv_table.py "name=DIR1,DIR2,DIR3" ... (one row over repeated runs)

A row over repeated runs (other fold deals and training seeds of the same config) gives
each measure's mean with its range, ``mean (min-max)``; its folds column counts the
finished folds of all the runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

KINDS = ("print", "replay", "warp", "cutout")
# The scene kinds (liveness synth's replay_handheld, print_photo) get their own APCER
# columns when any of the reports has them, so older tables read as before.
SCENE_KINDS = ("replay_handheld", "print_photo")


class TableError(ValueError):
    """A named report is missing or unreadable."""


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _cell(values: list[float | None], scale: float = 100.0, digits: int = 1) -> str:
    """One value as is; several as ``mean (min-max)``; missing ones are left out."""
    present = [v * scale for v in values if v is not None]
    if not present:
        return "–"
    if len(present) == 1:
        return f"{present[0]:.{digits}f}"
    mean = sum(present) / len(present)
    return f"{mean:.{digits}f} ({min(present):.{digits}f}-{max(present):.{digits}f})"


def kinds_of(reports: list[dict]) -> tuple[str, ...]:
    """The APCER columns: KINDS, then the scene kinds any report has."""
    present = {k for r in reports for k in r.get("apcer_per_attack", {})}
    return (*KINDS, *(k for k in SCENE_KINDS if k in present))


def _measures(report: dict, kinds: tuple[str, ...] = KINDS) -> list[float | None]:
    apcer = report.get("apcer_per_attack", {})
    return [
        report.get("auc"),
        report.get("bpcer"),
        *(apcer.get(k) for k in kinds),
        report.get("acer"),
        report.get("bpcer_camera"),
        report.get("replay_apcer"),
        report.get("subjects_all_raw_pass"),
    ]


def row(label: str, reports: list[dict], kinds: tuple[str, ...] = KINDS) -> str:
    """The table row of one run, or of repeated runs of one config."""
    done = sum(len(r["folds_done"]) for r in reports)
    planned = sum(r["plan"]["k"] for r in reports)
    columns = list(zip(*(_measures(r, kinds) for r in reports), strict=True))
    minutes = [
        sum(s["train"] + s["score"] for s in r.get("fold_seconds", {}).values()) / 60
        for r in reports
    ]
    cells = [
        label,
        f"{done}/{planned}",
        *(_cell(list(c)) for c in columns),
        _cell([r["threshold"] for r in reports], scale=1.0, digits=3),
        f"{sum(minutes) / len(minutes):.0f}",
    ]
    return "| " + " | ".join(cells) + " |"


def header(kinds: tuple[str, ...] = KINDS) -> str:
    names = ["run", "folds", "AUC", "BPCER raw", *(f"APCER {k}" for k in kinds), "ACER"]
    names += ["BPCER camera", "real replays passed", "people all pass", "threshold", "minutes"]
    align = [":---", ":---:", *["---:"] * (len(names) - 2)]
    return "| " + " | ".join(names) + " |\n| " + " | ".join(align) + " |"


HEADER = header()  # the table of runs with none of the scene kinds


def load(folder: str) -> dict:
    path = Path(folder) / "cv.json"
    if not path.is_file():
        raise TableError(f"{path}: no such report")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise TableError(f"{path}: not valid JSON ({exc})") from None


def table(specs: list[str]) -> str:
    runs = []
    for spec in specs:
        label, _, folders = spec.partition("=") if "=" in spec else ("", "", spec)
        names = [f for f in folders.split(",") if f]
        if not names:
            raise TableError(f"{spec!r}: no report folder")
        runs.append((label or Path(names[0]).name, [load(f) for f in names]))
    kinds = kinds_of([r for _, reports in runs for r in reports])
    return "\n".join([header(kinds), *(row(label, reports, kinds) for label, reports in runs)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "runs", nargs="+", help="cv output folders, NAME=FOLDER or NAME=FOLDER,FOLDER,..."
    )
    args = parser.parse_args(argv)
    try:
        print(table(args.runs))
    except TableError as exc:
        print(f"cv_table: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
