"""The still-attack and real-print columns of leave-people-out reports (``liveness eval
--cv``'s cv.json), a row per run, beside scripts/cv_table.py's main columns:

    python scripts/cv_still_table.py "name=DIR" ...

APCER per still kind made from the held-out people's raw clips (still_plain, still,
still_handheld), the synthetic still kinds when the run's data set holds them, the AUC of
raw genuine clips against the stills, the real prints' APCER and their live twins'
BPCER (NUAA), the raw clips' BPCER and the threshold. Values in %.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

STILL_KINDS = ("still_plain", "still", "still_handheld")
COLUMNS = (
    "APCER still_plain (raw)",
    "APCER still (raw)",
    "APCER still_handheld (raw)",
    "APCER still (synth)",
    "APCER still_handheld (synth)",
    "AUC raw vs stills",
    "APCER real prints",
    "BPCER their live twins",
    "BPCER raw",
    "threshold",
)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def row(name: str, report: dict) -> list[str]:
    stills = report.get("still_apcer_per_kind", {})
    synth = report.get("apcer_per_attack", {})
    return [
        name,
        *(_pct(stills.get(k)) for k in STILL_KINDS),
        _pct(synth.get("still")),
        _pct(synth.get("still_handheld")),
        _pct(report.get("auc_still")),
        _pct(report.get("nuaa_apcer")),
        _pct(report.get("nuaa_bpcer")),
        _pct(report.get("bpcer")),
        f"{report['threshold']:.3f}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", metavar="NAME=DIR")
    args = parser.parse_args(argv)
    lines = [
        "| run | " + " | ".join(COLUMNS) + " |",
        "| :--- | " + " | ".join("---:" for _ in COLUMNS) + " |",
    ]
    for spec in args.runs:
        name, _, folder = spec.partition("=")
        path = Path(folder or name) / "cv.json"
        if not path.is_file():
            print(f"cv_still_table: no {path}", file=sys.stderr)
            return 2
        lines.append("| " + " | ".join(row(name, json.loads(path.read_text()))) + " |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
