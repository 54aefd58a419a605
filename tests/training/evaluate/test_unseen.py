"""The unseen-people rows: still attacks made from raw clips, the NUAA real prints, their
figures, and `liveness eval --raw/--replays/--nuaa` on a tiny exported model.

The figures are checked on hand-made rows with known answers; the still clips and the
eval command on short cuts of the shared real clips (skipped where ../shared/data is
absent)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from liveness.cli import main
from model.runtime import LivenessModel, score_clip
from model.video import VideoReader, read_frames
from tests.helpers import export_tiny_model, write_clip
from tests.training.train_fixtures import SOURCES, tiny_dataset
from training.evaluate.stills import EVAL_STILL_KINDS, make_still_attacks
from training.evaluate.unseen import (
    UnseenError,
    nuaa_figures,
    nuaa_records,
    raw_records,
    still_figures,
    unseen_table_rows,
)
from training.records import ClipRecord, read_index, write_index
from training.shared_data import SHARED_DATA

NUAA = SHARED_DATA / "attacks" / "nuaa"
NUAA_CLIPS = {  # one person's live clip and print, and another person's print
    "nuaa_0001__g00_t00_s01_genuine.mp4": ("genuine", "genuine"),
    "nuaa_0001__g00_t00_s01_print.mp4": ("spoof", "realprint"),
    "nuaa_0004__g01_t00_s01_print.mp4": ("spoof", "realprint"),
}


def _row(role, kind, score, label="spoof", subject="p__a", fold=0):
    return {
        "role": role,
        "kind": kind,
        "label": label,
        "score": score,
        "subject": subject,
        "fold": fold,
    }


def test_still_figures_count_each_kind_at_the_threshold():
    rows = [_row("raw", "genuine_raw", s, "genuine") for s in (0.9, 0.8, 0.3)]
    rows += [_row("still", "still", s) for s in (0.6, 0.1)]
    rows += [_row("still", "still_plain", s) for s in (0.2, None)]
    rows += [_row("still", "still_handheld", s) for s in (0.7, 0.9)]
    rows += [_row("test", "print", 0.99)]  # not a still: not in these figures
    fig = still_figures(rows, 0.5)
    assert fig["still_apcer_per_kind"] == {"still": 0.5, "still_handheld": 1.0, "still_plain": 0.0}
    assert fig["still_apcer"] == 1.0 and fig["n_still"] == 6 and fig["still_failures"] == 1
    # raw 0.9 beats 4 stills and ties one, 0.8 beats 4, 0.3 beats 2: 10.5 of 15 pairs
    assert fig["auc_still"] == pytest.approx(10.5 / 15)
    labels = [a for a, _ in unseen_table_rows(fig)]
    assert "APCER, still_plain (from raw clips)" in labels
    assert still_figures([_row("raw", "genuine_raw", 0.9, "genuine")], 0.5) == {}


def test_nuaa_figures_split_prints_live_twins_and_people():
    rows = [_row("nuaa", "realprint", s, subject="nuaa_0001__p") for s in (0.6, 0.2, 0.1, None)]
    rows += [_row("nuaa", "nuaa_live", s, "genuine", "nuaa_0001__g") for s in (0.7, 0.4)]
    rows += [_row("nuaa", "nuaa_live", 0.9, "genuine", "nuaa_0004__g")]
    rows += [_row("nuaa", "nuaa_live", 0.9, "genuine", "nuaa_0001__g", fold=1)]
    fig = nuaa_figures(rows, 0.5)
    assert fig["nuaa_apcer"] == pytest.approx(1 / 3) and fig["nuaa_failures"] == 1
    assert fig["nuaa_bpcer"] == pytest.approx(1 / 4)
    assert fig["nuaa_auc"] == pytest.approx(11 / 12)  # 0.4 is below 0.6 only
    # (fold, person): 0/0001 fails (0.4), 0/0004 passes, 1/0001 passes
    assert fig["nuaa_people_all_pass"] == pytest.approx(2 / 3)
    assert fig["n_nuaa_print"] == 4 and fig["n_nuaa_live"] == 4
    assert nuaa_figures([_row("raw", "genuine_raw", 0.9, "genuine")], 0.5) == {}


@pytest.fixture(scope="module")
def nuaa_folder(tmp_path_factory) -> Path:
    """Three NUAA clips (copied) and their labels.csv."""
    missing = [n for n in NUAA_CLIPS if not (NUAA / n).is_file()]
    if missing:
        pytest.skip(f"the NUAA clips are absent from {NUAA}: {missing}")
    folder = tmp_path_factory.mktemp("nuaa")
    with open(folder / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "label", "kind", "source"])
        for name, (label, kind) in NUAA_CLIPS.items():
            shutil.copy2(NUAA / name, folder / name)
            w.writerow([name, label, kind, "test copy"])
    return folder


def test_nuaa_records_read_labels_and_refuse_bad_folders(nuaa_folder, tmp_path):
    records = nuaa_records(nuaa_folder)
    assert [(r.label, r.attack) for r in records] == [
        ("genuine", None),
        ("spoof", "realprint"),
        ("spoof", "realprint"),
    ]
    assert records[0].subject == "nuaa_0001__g00_t00_s01_genuine"
    with pytest.raises(UnseenError, match="labels.csv"):
        nuaa_records(tmp_path)
    (tmp_path / "labels.csv").write_text("file,label,kind,source\nnone.mp4,spoof,realprint,x\n")
    with pytest.raises(UnseenError, match="not in"):
        nuaa_records(tmp_path)


@pytest.fixture(scope="module")
def raw_folder(tmp_path_factory, real_clip_paths) -> Path:
    """The tiny set's three people's source clips, and one of another source."""
    base = tmp_path_factory.getbasetemp()
    tiny_dataset(base, real_clip_paths)
    folder = tmp_path_factory.mktemp("raw")
    for p in (base / "tiny_sources").iterdir():
        shutil.copy2(p, folder / p.name)
    frames, _, info = read_frames(real_clip_paths[0], max_frames=30)
    small = [cv2.resize(f, (128, 128), interpolation=cv2.INTER_AREA) for f in frames]
    write_clip(folder / "other__clip.avi", small, info.fps, "MJPG")
    return folder


def _frames(path: Path) -> list[np.ndarray]:
    return [f for f, _ in VideoReader(path)]


def test_still_attacks_of_raw_clips_last_as_long_and_are_kept(raw_folder, tmp_path):
    raw = [r for r in raw_records(raw_folder) if r.subject == SOURCES[0]]
    stills = make_still_attacks(raw, tmp_path, seed=3, progress=False)
    assert sorted(r.attack for r in stills) == sorted(EVAL_STILL_KINDS)
    source = _frames(raw[0].path)
    for r in stills:
        frames = _frames(r.path)
        assert r.subject == SOURCES[0] and r.label == "spoof"
        assert len(frames) == len(source)
        side = json.loads(r.path.with_suffix(".json").read_text())
        assert side["seed"] == 3 and 0 <= side["source_frame"] < len(source)
        diffs = [float(np.abs(frames[0].astype(int) - f).mean()) for f in frames[1:]]
        if r.attack == "still_plain":
            assert max(diffs) < 0.5  # identical frames (only the codec touches them)
        else:
            assert max(diffs) > 0.5  # camera noise, or the hand's motion
    stamps = {r.path: r.path.stat().st_mtime_ns for r in stills}
    again = make_still_attacks(raw, tmp_path, seed=3, progress=False)
    assert {r.path: r.path.stat().st_mtime_ns for r in again} == stamps  # reused
    other = make_still_attacks(raw, tmp_path, seed=4, progress=False)
    assert any(r.path.stat().st_mtime_ns != stamps[r.path] for r in other)  # re-rendered


@pytest.fixture(scope="module")
def test_split(tmp_path_factory, real_clip_paths) -> Path:
    """The tiny set with SOURCES[1] as the test person."""
    source = tiny_dataset(tmp_path_factory.getbasetemp(), real_clip_paths)
    records = [
        ClipRecord(
            r.path, r.label, r.attack, r.subject, "test" if r.subject == SOURCES[1] else "train"
        )
        for r in read_index(source / "index.csv")
    ]
    folder = tmp_path_factory.mktemp("unseen_data")
    moved = []
    for r in records:
        target = folder / r.path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(r.path, target)
        moved.append(ClipRecord(target, r.label, r.attack, r.subject, r.split))
    write_index(moved, folder)
    return folder


def test_eval_reports_stills_real_prints_and_raw_clips(
    test_split, raw_folder, nuaa_folder, tmp_path, monkeypatch
):
    monkeypatch.setenv("LIVENESS_CACHE", str(tmp_path / "cache"))
    model_dir = export_tiny_model(tmp_path / "model", threshold=0.5)
    out = tmp_path / "eval"
    argv = ["eval", str(model_dir), "--data", f"{test_split}?split=test", "--out", str(out)]
    argv += ["--raw", str(raw_folder), "--nuaa", str(nuaa_folder), "--replays", str(raw_folder)]
    assert main([*argv, "--threads", "1", "--providers", "cpu", "--quiet"]) == 0
    unseen = json.loads((out / "metrics.json").read_text())["unseen"]
    rows = unseen["rows"]
    raw = [r for r in rows if r["role"] == "raw"]
    # the test person's source is "liveportrait": its three clips, not other__clip
    assert sorted(Path(r["path"]).stem for r in raw) == sorted(SOURCES)
    stills = [r for r in rows if r["role"] == "still"]
    assert sorted(r["kind"] for r in stills) == sorted(EVAL_STILL_KINDS * 3)
    assert all(
        (tmp_path / "cache" / "stills" / "seed-0") in Path(r["path"]).parents for r in stills
    )
    assert (
        sum(r["role"] == "nuaa" for r in rows) == 3
        and sum(r["role"] == "replay" for r in rows) == 4
    )
    model = LivenessModel(model_dir, providers="cpu", threads=1)
    for r in [raw[0], stills[0]]:  # the service's own path
        reader = VideoReader(r["path"])
        assert r["score"] == pytest.approx(score_clip(model, reader, reader.info.fps).score)
    scores = {k: [r["score"] for r in stills if r["kind"] == k] for k in EVAL_STILL_KINDS}
    for kind, values in scores.items():
        expect = sum(s >= 0.5 for s in values if s is not None) / sum(s is not None for s in values)
        assert unseen["still_apcer_per_kind"][kind] == pytest.approx(expect)
        assert unseen["apcer_per_attack"][f"{kind} (raw)"] == pytest.approx(expect)
    raw_scores = [r["score"] for r in raw]
    assert unseen["bpcer_raw"] == pytest.approx(sum(s < 0.5 for s in raw_scores) / 3)
    assert {"print", "replay"} <= set(unseen["apcer_per_attack"])
    assert unseen["n_nuaa_print"] == 2 and unseen["n_nuaa_live"] == 1
    report = (out / "report.md").read_text()
    assert "## Unseen people" in report and "| APCER, still_handheld (raw) |" in report
    assert "| APCER, real prints (NUAA) |" in report and "| BPCER, raw genuine clips |" in report


def test_eval_refuses_raw_clips_of_other_people(test_split, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LIVENESS_CACHE", str(tmp_path / "cache"))
    model_dir = export_tiny_model(tmp_path / "model", threshold=0.5)
    raw = tmp_path / "raw"
    raw.mkdir()
    frames = [np.full((64, 64, 3), 120, np.uint8)] * 10
    write_clip(raw / "stranger__a.avi", frames, 10.0, "MJPG")
    argv = ["eval", str(model_dir), "--data", f"{test_split}?split=test", "--raw", str(raw)]
    assert main([*argv, "--out", str(tmp_path / "e"), "--providers", "cpu", "--quiet"]) == 2
    assert "no clip of the data set's people" in capsys.readouterr().err
