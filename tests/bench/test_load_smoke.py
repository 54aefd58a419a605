"""bench/load.py, short: 2 streams x 5 s and an upload loop against a server it starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_short_load_run_has_no_errors_and_a_result_per_stream(tiny_model_dir, tmp_path):
    out = tmp_path / "load.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench.load", "--model-dir", str(tiny_model_dir),
         "--streams", "2", "--fps", "10", "--uploads", "1", "--seconds", "5", "--json", str(out)],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    s = json.loads(out.read_text())
    assert s["errors"] == 0 and s["error_kinds"] == []
    assert s["stream_results"] == 2
    assert 80 <= s["frames_sent"] <= 102  # 2 x 10 fps x 5 s, paced
    assert s["frames_scored"] + s["dropped_busy"] + s["dropped_rate"] == s["frames_sent"]
    assert s["frames_scored"] > 0 and s["uploads_done"] >= 1
    lat = s["frame_latency_ms"]
    assert 0 < lat["50"] <= lat["95"] <= lat["99"]
    assert all(s["rss_mib"][k] > 50 for k in ("idle", "warm", "end"))  # read from /proc
    assert "| frames sent / scored |" in run.stdout and "| errors | 0 |" in run.stdout
