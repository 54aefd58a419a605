"""`liveness eval`: metrics through ONNX Runtime equal training.evaluate.metrics on the runtime's own
scores, failures to acquire are counted, the outputs are written, errors are clear; the
quick ablation fills all seven columns; a VGG-16 run goes through train, export and eval."""

from __future__ import annotations

import csv
import json
import shutil

import cv2
import numpy as np
import pytest

from liveness.cli import main
from model.runtime import LivenessModel, score_clip
from model.video import VideoReader
from tests.helpers import export_tiny_model, write_clip
from tests.training.train_fixtures import SOURCES, tiny_dataset
from training.datasets import load_dataset
from training.evaluate.metrics import (
    ScoreSet,
    accuracy,
    apcer_per_attack,
    eer_threshold,
    evaluate,
    far_frr,
    roc_auc,
)
from training.evaluate.report import ABLATION_METHODS
from training.evaluate.run import EvaluationError, evaluate_model
from training.records import ClipRecord, read_index, write_index

# The tiny set's three people, one per split (the train fixtures use two for training).
SPLIT_OF = {SOURCES[0]: "train", SOURCES[1]: "test", SOURCES[2]: "dev"}
REPORT_KEYS = ("hter", "far", "frr", "acc", "eer", "auc", "apcer", "bpcer", "acer")


@pytest.fixture(scope="module")
def data(tmp_path_factory, real_clip_paths):
    """The tiny synthetic set re-split by person into train / dev / test (4 clips each)."""
    source = tiny_dataset(tmp_path_factory.getbasetemp(), real_clip_paths)
    folder = tmp_path_factory.mktemp("eval_data")
    records = [
        ClipRecord(r.path, r.label, r.attack, r.subject, SPLIT_OF[r.subject], r.meta)
        for r in read_index(source / "index.csv")
    ]
    for r in records:  # index.csv paths are relative to its folder: copy the clips
        target = folder / r.path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(r.path, target)
    moved = [
        ClipRecord(folder / r.path.relative_to(source), r.label, r.attack, r.subject, r.split)
        for r in records
    ]
    write_index(moved, folder)
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return export_tiny_model(tmp_path_factory.mktemp("eval_model"), threshold=0.5)


@pytest.fixture(scope="module")
def runtime(data, model_dir):
    """Every clip scored independently: path -> (clip score, number of windows)."""
    model = LivenessModel(model_dir, providers="cpu", threads=1)
    out = {}
    for record in load_dataset(str(data)):
        reader = VideoReader(record.path)
        result = score_clip(model, reader, reader.info.fps)
        out[str(record.path)] = (result.score, len(result.windows))
    return out


def _score_set(data, split: str, runtime) -> ScoreSet:
    records = load_dataset(f"{data}?split={split}")
    return ScoreSet(
        scores=np.array([runtime[str(r.path)][0] for r in records]),
        labels=np.array([r.target for r in records]),
        attacks=[r.attack for r in records],
        ids=[str(r.path) for r in records],
    )


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_eval_at_the_manifest_threshold_writes_every_output(data, model_dir, runtime, tmp_path):
    out = tmp_path / "eval"
    argv = ["eval", str(model_dir), "--data", f"{data}?split=test", "--out", str(out)]
    assert main([*argv, "--threads", "1", "--providers", "cpu", "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["threshold"] == 0.5 and metrics["threshold_source"] == "manifest"
    test = _score_set(data, "test", runtime)
    s, y = test.scores, test.labels
    far, frr = far_frr(s, y, 0.5)
    clips = metrics["clips"]
    assert clips["far"] == pytest.approx(far) and clips["frr"] == pytest.approx(frr)
    assert clips["hter"] == pytest.approx((far + frr) / 2)
    assert clips["acc"] == pytest.approx(accuracy(s, y, 0.5))
    assert clips["eer"] == pytest.approx(eer_threshold(s, y)[0])
    assert clips["auc"] == pytest.approx(roc_auc(s, y))
    assert clips["apcer_per_attack"] == pytest.approx(apcer_per_attack(s, y, test.attacks, 0.5))
    assert clips["n_genuine"] == 2 and clips["n_spoof"] == 2
    windows = sum(runtime[i][1] for i in test.ids)
    assert metrics["windows"]["n_genuine"] + metrics["windows"]["n_spoof"] == windows > 4
    assert metrics["counts"] == {
        "clips": 4,
        "scored": 4,
        "failed": 0,
        "per_kind": {
            k: {"clips": n, "scored": n, "failed": 0}
            for k, n in (("genuine", 2), ("print", 1), ("replay", 1))
        },
    }
    rows = {r["path"]: r for r in _rows(out / "scores.csv")}
    assert set(rows) == set(test.ids)
    for path, (score, n) in ((i, runtime[i]) for i in test.ids):
        assert float(rows[path]["score"]) == pytest.approx(score, abs=1e-6)
        assert int(rows[path]["windows"]) == n and rows[path]["status"] == "scored"
        assert rows[path]["decision"] == ("genuine" if score >= 0.5 else "spoof")
    for name in ("roc", "det", "scores", "window_scores"):
        image = cv2.imread(str(out / f"{name}.png"))
        assert image is not None and image.shape[0] > 300
    attention = cv2.imread(str(out / "attention.png"))
    assert attention.shape[0] == 3 * 340  # one panel each: genuine, print, replay
    report = (out / "report.md").read_text()
    assert "Intra-test" in report and "| HTER(%) |" in report and "APCER replay(%)" in report
    assert f"{100 * (far + frr) / 2:.2f}" in report


def test_eval_with_a_dev_set_equals_training_metrics_evaluate(data, model_dir, runtime):
    result = evaluate_model(
        model_dir, f"{data}?split=test", f"{data}?split=dev", threads=1, progress=False
    )
    expected = evaluate(_score_set(data, "dev", runtime), _score_set(data, "test", runtime))
    assert result.threshold_source == "dev EER"
    assert result.threshold == pytest.approx(expected.threshold)
    assert result.clips.dev_eer == pytest.approx(expected.dev_eer)
    for key in REPORT_KEYS:
        assert getattr(result.clips, key) == pytest.approx(getattr(expected, key)), key
    assert result.clips.apcer_per_attack == pytest.approx(expected.apcer_per_attack)
    assert result.clips.false_accepts == expected.false_accepts
    assert result.clips.false_rejects == expected.false_rejects
    assert len(result.dev_outcomes) == 4 and all(o.acquired for o in result.dev_outcomes)


def test_a_clip_without_a_face_is_a_failure_to_acquire(data, model_dir, tmp_path, capsys):
    folder = tmp_path / "with_blank"
    shutil.copytree(data, folder)
    records = read_index(folder / "index.csv")
    blank = [np.full((160, 160, 3), 90, np.uint8)] * 30
    faceless = write_clip(folder / "blank.mp4", blank, 15.0)
    records.append(ClipRecord(faceless, "genuine", subject="nobody", split="test"))
    write_index(records, folder)
    out = tmp_path / "eval"
    argv = ["eval", str(model_dir), "--data", f"{folder}?split=test", "--out", str(out)]
    assert main([*argv, "--threads", "1", "--quiet"]) == 0
    assert "blank.mp4" in capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["counts"]["failed"] == 1 and metrics["counts"]["per_kind"]["genuine"] == {
        "clips": 3,
        "scored": 2,
        "failed": 1,
    }
    assert metrics["non_response"]["bpnrr"] == pytest.approx(1 / 3)
    assert metrics["non_response"]["apnrr"] == 0.0
    clips = metrics["clips"]
    assert clips["n_genuine"] == 2  # left out of BPCER (ISO/IEC 30107-3 PAD subsystem)...
    system = metrics["with_failures_rejected"]
    assert system["bpcer"] == pytest.approx((2 * clips["bpcer"] + 1) / 3)  # ...a reject here
    assert system["apcer"] == pytest.approx(clips["apcer"])
    row = next(r for r in _rows(out / "scores.csv") if r["path"] == str(faceless))
    assert row["status"] == "failure to acquire" and "no usable face" in row["reason"]
    assert row["score"] == "" and metrics["failures"][0]["path"] == str(faceless)


def test_eval_errors_are_clear(data, model_dir, tmp_path, capsys):
    spec = f"{data}?split=test"

    def fails(*argv: str) -> str:
        assert main(["eval", *argv, "--quiet"]) == 2
        return capsys.readouterr().err

    assert "no such model directory" in fails(str(tmp_path / "nope"), "--data", spec)
    (tmp_path / "empty_model").mkdir()
    assert "not a usable model directory" in fails(str(tmp_path / "empty_model"), "--data", spec)
    assert "unknown data set 'nosuchset'" in fails(str(model_dir), "--data", "nosuchset:/x")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "index.csv").write_text("path,label,attack,subject,split\n")
    assert "lists no clips" in fails(str(model_dir), "--data", str(empty))
    blank = [np.full((120, 120, 3), 60, np.uint8)] * 20
    faceless = tmp_path / "faceless"
    (faceless / "genuine").mkdir(parents=True)
    (faceless / "spoof").mkdir()
    write_clip(faceless / "genuine" / "a_1.mp4", blank, 15.0)
    write_clip(faceless / "spoof" / "b_1.mp4", blank, 15.0)
    assert "scored no clip of the 2 test clips" in fails(str(model_dir), "--data", str(faceless))
    assert "apply to --cv only" in fails(str(model_dir), "--data", spec, "--set", "epochs=1")
    assert "apply to --cv only" in fails(str(model_dir), "--data", spec, "--folds", "0")
    with pytest.raises(EvaluationError, match="dev data"):
        evaluate_model(model_dir, spec, f"{data}?split=nosuch", progress=False)


@pytest.mark.slow
@pytest.mark.training
def test_quick_ablation_fills_all_seven_columns(data, tmp_path, capsys):
    out = tmp_path / "ablation"
    argv = ["ablation", "--quick", "--data", str(data), "--out", str(out)]
    argv += ["--set", f'cache_root="{tmp_path / "cache"}"', "--set", "num_threads=1"]
    assert main([*argv, "--threads", "1", "--quiet"]) == 0
    table = (out / "ablation.md").read_text()
    header = next(line for line in table.splitlines() if line.startswith("| Metric"))
    assert header == "| Metric | " + " | ".join(ABLATION_METHODS) + " |"
    assert table.count("| HTER(%) |") == 1 and "| AUC(%) |" in table
    record = json.loads((out / "ablation.json").read_text())
    assert list(record["results"]) == list(ABLATION_METHODS) and record["quick"] is True
    for method, result in record["results"].items():
        assert result["n_genuine"] == 2 and result["n_spoof"] == 2, method
        assert 0.0 <= result["hter"] <= 1.0 and result["seconds"] > 0
    magnified = {"cnn": False, "cnn-lstm": False, "cnn-lstm-m": True, "cnn-lstm-a": False}
    for variant, on in {**magnified, "cnn-lstm-am": True}.items():
        manifest = json.loads((out / "models" / variant / "manifest.json").read_text())
        assert manifest["preprocess"]["magnifier"]["enabled"] is on
        assert manifest["training"]["variant"] == variant
        assert (out / "eval" / variant / "metrics.json").is_file()
    assert "LBP-TOP" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.training
def test_vgg16_trains_exports_and_evaluates_with_the_same_commands(data, tmp_path):
    small = ["network.input_size=32"]
    small += ["preprocess.window.length=4", "preprocess.window.min_length=2"]
    small += ["preprocess.magnifier.n_levels=2", "max_steps=2", "num_threads=1"]
    small += [f'cache_root="{tmp_path / "cache"}"', 'device="cpu"']
    sets = [arg for s in small for arg in ("--set", s)]
    run = tmp_path / "vgg"
    assert main(["train", "vgg16", "--data", str(data), "--out", str(run), "--quiet", *sets]) == 0
    assert main(["export", str(run), "--quiet", "--threads", "1"]) == 0
    out = tmp_path / "eval"
    argv = ["eval", str(run / "model"), "--data", f"{data}?split=test", "--out", str(out)]
    assert main([*argv, "--quiet", "--threads", "1"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    manifest = json.loads((run / "model" / "manifest.json").read_text())
    assert manifest["network"]["backbone"] == "vgg16"
    assert metrics["threshold"] == pytest.approx(manifest["threshold"])
    assert metrics["counts"]["scored"] == 4
