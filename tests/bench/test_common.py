"""The benchmarks' shared parts: the CPU meter and gate, summaries, tables, fixtures."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from bench import fixtures
from bench.common import Summary, Table, fmt, ratio
from bench.gate import CpuMeter, Gate

needs_proc = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the CPU meter reads /proc (Linux)"
)


@needs_proc
def test_meter_counts_a_tracked_process_as_ours():
    spin = "import time\nt = time.time()\nwhile time.time() - t < 1.5: pass"
    child = subprocess.Popen([sys.executable, "-c", spin])
    ours, theirs = CpuMeter(), CpuMeter()
    ours.track(child.pid)
    try:
        ours.start()
        theirs.start()
        time.sleep(1.0)
        foreign_seen_by_theirs = theirs.stop()
        foreign_seen_by_ours = ours.stop()
    finally:
        child.wait()
    # the same interval: the only difference is the spinning child's CPU time
    assert foreign_seen_by_theirs - foreign_seen_by_ours > 0.1
    assert foreign_seen_by_ours >= 0.0


def test_gate_retries_a_noisy_block_and_keeps_the_quietest():
    calls = []
    gate = Gate(limit=-1.0, max_wait_s=0.0, retries=3, log=calls.append)  # every run is "noisy"
    result = gate.run("block", lambda: len(calls))
    assert result.attempts == 3
    assert sum("retrying" in c for c in calls) == 2  # logged before the 2nd and 3rd attempt
    assert result.value in (0, 1, 2)
    quiet = Gate(limit=1e9, max_wait_s=0.0, retries=3).run("block", lambda: "done")
    assert (quiet.value, quiet.attempts) == ("done", 1)


def test_summary_is_in_milliseconds_with_the_spread():
    s = Summary.of([0.001 * k for k in range(1, 11)])  # 1..10 ms
    assert s.n == 10
    assert s.median == pytest.approx(5.5)
    assert s.p10 == pytest.approx(1.9) and s.p90 == pytest.approx(9.1)
    assert str(s) == "5.50 (1.90–9.10)"
    with pytest.raises(ValueError, match="no samples"):
        Summary.of([])


def test_number_formatting_and_ratios():
    assert fmt(0.012345) == "0.0123" and fmt(1234.5) == "1234" and fmt(2.0) == "2.00"
    assert fmt(None) == "–" and fmt(float("nan")) == "–" and fmt(0) == "0"
    assert ratio(3.0, 2.0) == "1.50×" and ratio(1.0, 0.0) == "–"


def test_table_renders_markdown_with_notes_and_load():
    table = Table("Title", ["a", "bb"])
    table.add("x", 1)
    table.add("longer", 22)
    table.notes.append("a note")
    table.foreign += [0.04, 0.1]
    with pytest.raises(ValueError, match="2 columns"):
        table.add("only one")
    text = table.render()
    lines = text.splitlines()
    assert lines[0] == "### Title"
    assert lines[2] == "| a      | bb |"
    assert lines[3] == "|--------|----|"
    assert lines[5] == "| longer | 22 |"
    assert "- a note" in text and "median 0.07, max 0.10 cores" in text
    assert table.column("bb") == ["1", "22"]


def test_face_frames_show_a_face_the_tracker_finds_with_either_source(monkeypatch, tmp_path):
    from model.config import CropConfig
    from model.face import FaceCropper

    for source in ("default", "astronaut"):
        if source == "astronaut":  # no real clip beside the repository: the fallback portrait
            monkeypatch.setattr(fixtures, "REAL_CLIP", tmp_path / "absent.mp4")
        frames = fixtures.face_frames(6)
        assert frames[0].shape == (480, 640, 3) and frames[0].dtype == np.uint8
        assert not np.array_equal(frames[0], frames[5])  # the scene moves
        cropper = FaceCropper(CropConfig())
        assert all(cropper.process(f).box is not None for f in frames), source


def test_written_clip_decodes_back(tmp_path):
    from model.video import read_frames

    path = fixtures.face_clip(tmp_path / "clip.mp4", seconds=0.5, fps=20.0, size=(160, 120))
    frames, _, info = read_frames(path)
    assert len(frames) == 10 and frames[0].shape == (120, 160, 3)
    assert info.fps == pytest.approx(20.0)
    jpegs = fixtures.jpeg_frames(frames[:2])
    assert all(j[:2] == b"\xff\xd8" for j in jpegs)  # JPEG start-of-image marker
