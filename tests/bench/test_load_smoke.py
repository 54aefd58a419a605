"""liveness bench load (bench/load.py), short: 2 streams x 5 s and an upload loop against a server it starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.server  # starts its own server processes

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_short_load_run_has_no_errors_and_a_result_per_stream(tiny_model_dir, tmp_path):
    out = tmp_path / "load.json"
    run = subprocess.run(
        [sys.executable, "-m", "liveness", "bench", "load", "--model-dir", str(tiny_model_dir),
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


def test_bomb_figure_times_a_good_upload_with_bombs_in_flight(tiny_model_dir, tmp_path):
    out = tmp_path / "bombs.json"
    run = subprocess.run(
        [sys.executable, "-m", "liveness", "bench", "load", "--model-dir", str(tiny_model_dir),
         "--streams", "0", "--uploads", "0", "--seconds", "1", "--bombs", "2",
         "--bomb-side", "1280", "--bomb-frames", "600", "--bomb-samples", "2",
         "--json", str(out)],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    b = json.loads(out.read_text())["bombs"]
    assert b["bombs"] == 2 and b["bomb"].startswith("1280x1280 x 600 frames")
    assert b["bomb_answers"] == ["422", "422"]  # grey: decoded whole, no face
    assert b["good_statuses"] == [200]
    assert b["upload_ratio"] > 0 and b["ready_ratio"] > 0
    assert b["good_upload_loaded_s_all"] and b["rss_peak_mib"] >= b["rss_idle_mib"] > 50
    assert "| good clip upload idle / with bombs |" in run.stdout
