"""scripts/cv_table.py: leave-people-out reports side by side, repeated runs as mean (range)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "cv_table.py"


def _report(folder: Path, auc: float, bpcer: float, threshold: float, folds: int = 5) -> str:
    folder.mkdir(parents=True)
    report = {
        "plan": {"k": 5},
        "folds_done": list(range(folds)),
        "auc": auc,
        "bpcer": bpcer,
        "apcer_per_attack": {"print": 0.1, "replay": 0.3, "warp": 0.2},  # no cutout
        "acer": 0.25,
        "bpcer_camera": None,
        "replay_apcer": 0.5,
        "subjects_all_raw_pass": 0.9,
        "threshold": threshold,
        "fold_seconds": {str(f): {"train": 60.0, "score": 30.0} for f in range(folds)},
    }
    (folder / "cv.json").write_text(json.dumps(report))
    return str(folder)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)


def test_one_row_per_run_and_repeated_runs_as_mean_and_range(tmp_path):
    a = _report(tmp_path / "a", auc=0.90, bpcer=0.10, threshold=0.2)
    b = _report(tmp_path / "b", auc=0.94, bpcer=0.20, threshold=0.4, folds=3)
    done = _run(a, f"both={a},{b}")
    assert done.returncode == 0, done.stderr
    header, rule, single, pooled = done.stdout.strip().splitlines()
    assert header.count("|") == rule.count("|") == single.count("|") == pooled.count("|")
    assert single.startswith("| a | 5/5 | 90.0 | 10.0 | 10.0 | 30.0 | 20.0 | – |")
    assert single.endswith("| 0.200 | 8 |")  # 5 folds of 1.5 min
    assert pooled.startswith(
        "| both | 8/10 | 92.0 (90.0-94.0) | 15.0 (10.0-20.0) | 10.0 (10.0-10.0) |"
    )
    assert "| 0.300 (0.200-0.400) |" in pooled


def test_a_missing_or_broken_report_is_an_error(tmp_path):
    missing = _run(str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "no such report" in missing.stderr
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "cv.json").write_text("{")
    broken = _run(f"x={tmp_path / 'bad'}")
    assert broken.returncode == 2 and "not valid JSON" in broken.stderr
    assert _run("x=").returncode == 2


def test_scene_kinds_get_columns_only_when_a_report_has_them(tmp_path):
    old = _report(tmp_path / "old", auc=0.90, bpcer=0.10, threshold=0.2)
    new_dir = _report(tmp_path / "new", auc=0.92, bpcer=0.10, threshold=0.2)
    report = json.loads((Path(new_dir) / "cv.json").read_text())
    report["apcer_per_attack"]["replay_handheld"] = 0.4
    (Path(new_dir) / "cv.json").write_text(json.dumps(report))
    alone = _run(old).stdout.splitlines()
    assert "replay_handheld" not in alone[0] and "print_photo" not in alone[0]
    both = _run(old, new_dir).stdout.splitlines()
    header = [c.strip() for c in both[0].strip("|").split("|")]
    assert "APCER replay_handheld" in header and "APCER print_photo" not in header
    col = header.index("APCER replay_handheld")
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in both[2:]]
    assert [c[col] for c in cells] == ["–", "40.0"]
    assert all(len(c) == len(header) for c in cells)
