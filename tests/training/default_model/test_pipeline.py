"""Steps of make default-model that run on small files: the threshold rule and the held-out
figures at the other rule's threshold."""

from __future__ import annotations

import csv
import shutil

import pytest

from model.manifest import read_manifest, write_manifest
from training.default_model.pipeline import DefaultModelError, adopt_threshold, scores_at


@pytest.fixture
def exported(tiny_model_dir, tmp_path):
    """The tiny model with the dev record an export writes (threshold at its dev EER)."""
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    manifest = read_manifest(model_dir)
    manifest.threshold = 0.6
    manifest.metrics = {**manifest.metrics, "dev": {"eer": 0.05, "threshold": 0.6}}
    write_manifest(model_dir, manifest)
    return model_dir


def test_the_cv_rule_puts_the_pooled_threshold_in_the_manifest(exported):
    record = adopt_threshold(exported, {"threshold": 0.04}, "cv")
    manifest = read_manifest(exported)  # the ONNX files' hashes still verify
    assert manifest.threshold == pytest.approx(0.04)
    assert record["rule"] == "cv" and record["value"] == pytest.approx(0.04)
    assert record["candidates"] == {"dev": pytest.approx(0.6), "cv": pytest.approx(0.04)}
    assert manifest.metrics["dev"]["threshold"] == pytest.approx(0.6)  # kept as measured


def test_the_dev_rule_keeps_the_exported_threshold(exported):
    record = adopt_threshold(exported, {"threshold": 0.04}, "dev")
    assert read_manifest(exported).threshold == pytest.approx(0.6)
    assert record["value"] == pytest.approx(0.6)


def test_an_unknown_rule_is_refused_and_changes_nothing(exported):
    with pytest.raises(DefaultModelError, match="threshold rule 'median'"):
        adopt_threshold(exported, {"threshold": 0.04}, "median")
    assert read_manifest(exported).threshold == pytest.approx(0.6)


def test_scores_at_another_threshold(tmp_path):
    path = tmp_path / "scores.csv"
    rows = [  # genuine 0.9, 0.3, 0.02; print 0.5, 0.01; replay 0.2; one clip with no score
        ("a/genuine_0", "genuine", "", "0.9"),
        ("a/genuine_1", "genuine", "", "0.3"),
        ("b/genuine_0", "genuine", "", "0.02"),
        ("a/print_0", "spoof", "print", "0.5"),
        ("b/print_0", "spoof", "print", "0.01"),
        ("a/replay_0", "spoof", "replay", "0.2"),
        ("b/replay_0", "spoof", "replay", ""),
    ]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "attack", "subject", "split", "score"])
        for clip, label, attack, score in rows:
            w.writerow([f"{clip}.mp4", label, attack, clip.split("/")[0], "test", score])
    high = scores_at(path, 0.4)
    assert high["bpcer"] == pytest.approx(2 / 3)
    assert high["apcer_per_attack"] == {"print": pytest.approx(0.5), "replay": 0.0}
    low = scores_at(path, 0.1)
    assert low["bpcer"] == pytest.approx(1 / 3)
    assert low["apcer_per_attack"] == {"print": pytest.approx(0.5), "replay": 1.0}
    assert low["apcer"] == 1.0 and low["hter"] == pytest.approx((2 / 3 + 1 / 3) / 2)  # all spoofs


def test_still_photos_of_the_real_clips_are_scored_by_kind_and_split(
    exported, tmp_path, real_clip_paths
):
    """Two real clips, each made into its three still attacks and scored as uploads: the
    counts by kind and by the person's split agree with every clip's own decision."""
    from training.default_model.real import score_still_photos

    sources = tmp_path / "sources"
    sources.mkdir()
    for path in real_clip_paths[:2]:
        shutil.copyfile(path, sources / path.name)
    splits = {real_clip_paths[0].stem: "train"}  # the other person: "not used"
    photos = score_still_photos(exported, sources, tmp_path / "stills", splits, progress=False)
    assert sorted(photos["kinds"]) == ["still", "still_handheld", "still_plain"]
    assert len(photos["clips"]) == 6
    threshold = read_manifest(exported).threshold
    for kind, row in photos["kinds"].items():
        clips = [c for c in photos["clips"] if c["kind"] == kind]
        assert row["clips"] == len(clips) == 2
        accepted = [c for c in clips if c["score"] is not None and c["score"] >= threshold]
        assert row["accepted"] == len(accepted)
        assert all(c["decision"] == "genuine" for c in accepted)
        assert set(row["by_split"]) == {"train", "not used"}
        assert sum(p["clips"] for p in row["by_split"].values()) == 2
