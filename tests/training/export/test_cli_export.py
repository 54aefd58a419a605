"""`liveness export`: a run -> ONNX model directory whose threshold is the dev EER point of
the scores the service itself computes (ONNX Runtime), faceless dev clips excluded."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from liveness.cli import main
from model.manifest import read_manifest
from model.network import build_network
from model.runtime import LivenessModel, score_clip
from model.video import VideoReader
from tests.helpers import write_clip
from tests.training.train_fixtures import tiny_config, tiny_dataset
from training.cache import PreprocessCache
from training.config import load_config
from training.datasets import load_dataset
from training.evaluate.metrics import eer_threshold
from training.records import ClipRecord, read_index, write_index
from training.train.data import load_clips, score_clips
from training.train.loop import METRICS_NAME, train
from training.train.state import BEST_NAME, load_checkpoint


@pytest.fixture(scope="module", params=["none", "flow", "flow_stream"])
def run(request, tmp_path_factory, real_clip_paths):
    """A short run on a copy of the tiny data set whose dev split has a faceless clip: of
    the plain network, and of one that reads the frames' motion descriptors."""
    base = tmp_path_factory.getbasetemp()
    data = tmp_path_factory.mktemp("export_data") / "set"
    shutil.copytree(tiny_dataset(base, real_clip_paths), data)
    blank = [np.full((160, 160, 3), 80, np.uint8)] * 24
    faceless = write_clip(data / "dev" / "faceless.mp4", blank, 24.0)
    records = read_index(data / "index.csv")
    records.append(ClipRecord(faceless, "spoof", attack="print", subject="nobody", split="dev"))
    write_index(records, data)
    cache = tmp_path_factory.mktemp("export_cache")
    run_dir = tmp_path_factory.mktemp("runs") / "tiny-run"
    train(tiny_config(data, cache, "epochs=2", f"network.motion={request.param}"), run_dir)
    return run_dir, data, faceless


def _runtime_dev_scores(model_dir, data, skip):
    model = LivenessModel(model_dir, providers="cpu", threads=1)
    scores, labels = {}, {}
    for record in load_dataset(f"{data}?split=dev"):
        if record.path == skip:
            continue
        reader = VideoReader(record.path)
        scores[str(record.path)] = score_clip(model, reader, reader.info.fps).score
        labels[str(record.path)] = record.target
    return scores, labels


@pytest.mark.training
def test_export_sets_the_threshold_at_the_runtime_dev_eer(run, tmp_path, capsys):
    run_dir, data, faceless = run
    out = tmp_path / "model"
    rc = main(
        ["export", str(run_dir), "--out", str(out), "--name", "tiny", "--quiet", "--threads", "1"]
    )
    assert rc == 0
    printed = capsys.readouterr()
    assert "faceless.mp4" in printed.err and "1 excluded" in printed.out
    manifest = read_manifest(out)  # also checks the ONNX files' hashes
    scores, labels = _runtime_dev_scores(out, data, skip=faceless)
    eer, threshold = eer_threshold(list(scores.values()), list(labels.values()))
    assert manifest.threshold == pytest.approx(threshold, abs=1e-9)
    dev = manifest.metrics["dev"]
    assert dev["eer"] == pytest.approx(eer, abs=1e-9)
    assert dev["clips"] == len(scores) == 4 and dev["genuine"] == 2 and dev["spoof"] == 2
    assert dev["excluded"] == 1 and dev["excluded_clips"] == [str(faceless)]

    config = load_config(run_dir)
    best = load_checkpoint(run_dir / BEST_NAME)
    assert manifest.name == "tiny" and manifest.network == config.network
    assert manifest.preprocess == config.preprocess
    training = manifest.training
    assert training["run"] == "tiny-run" and training["epoch"] == best["epoch"]
    assert training["variant"] == "cnn-lstm-am"
    assert training["config"] == json.loads((run_dir / "config.json").read_text())
    assert training["data"]["train"]["spec"] == config.train_data
    assert training["data"]["dev"]["clips"] == 5  # four scored + the faceless one
    assert training["synth"][0]["seed"] == 0 and len(training["synth"][0]["sources"]) == 3
    assert dev["training_eer"] == best["dev"]["dev_eer"]


@pytest.mark.training
def test_torch_dev_scores_match_the_runtime(run):
    """Training scores dev clips from the cache in torch; the service scores videos in ONNX
    Runtime. Same windows, same weights: the same clip scores."""
    run_dir, data, faceless = run
    assert main(["export", str(run_dir), "--quiet", "--threads", "1"]) == 0
    out = run_dir / "model"  # the default destination
    assert read_manifest(out).name == run_dir.name
    config = load_config(run_dir)
    net = build_network(config.network)
    net.load_state_dict(load_checkpoint(run_dir / BEST_NAME)["model"])
    records = [r for r in load_dataset(config.dev_data) if r.path != faceless]
    clips = load_clips(records, PreprocessCache(config.resolved_cache_root(), config.preprocess))
    torch.set_num_threads(1)
    ours = score_clips(
        net.eval(), clips, config.preprocess.window, config.network, torch.device("cpu")
    )
    theirs, _ = _runtime_dev_scores(out, data, skip=faceless)
    np.testing.assert_allclose(ours, [theirs[str(r.path)] for r in records], atol=1e-4)
    # The training log's last dev EER came from these same torch scores.
    lines = [json.loads(x) for x in (run_dir / METRICS_NAME).read_text().splitlines()]
    assert lines[-1]["dev_unscored"] == 1 and lines[-1]["dev_clips"] == 4


def test_export_errors_are_reported(tmp_path, capsys):
    assert main(["export", str(tmp_path)]) == 2
    assert "no config.json" in capsys.readouterr().err
