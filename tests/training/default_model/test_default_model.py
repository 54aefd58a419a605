"""The committed default model (model/weights/default) against its own manifest: its
held-out test clips are synthesised again from the held-out people with the recorded
seeds and settings, scored through ONNX Runtime, and must give the HTER the manifest
reports, so the shipped figures stay true to the shipped weights.

The whole held-out split is re-made (the held-out sources' people, a few minutes): each clip is
a function of (seed, clip id) only, so the same clips come back. The tolerance allows
one clip of either class to change side, for a video encoder build other than the one
that made the manifest; the per-clip scores must agree closely in the median.
"""

from __future__ import annotations

import numpy as np
import pytest

from model.manifest import DEFAULT_MODEL_DIR, read_manifest
from model.runtime import LivenessModel
from training.config import resolve_config
from training.default_model.pipeline import CONFIG, source_of
from training.evaluate.metrics import report_at_threshold
from training.evaluate.run import clip_score_set
from training.evaluate.score import score_records
from training.synth.dataset import synthesize_dataset

SCORE_MEDIAN_TOLERANCE = 0.02  # median |fresh - recorded| clip score


@pytest.fixture(scope="module")
def manifest():
    return read_manifest(DEFAULT_MODEL_DIR)  # also checks the ONNX files' sha256


def test_the_manifest_describes_a_trained_and_measured_model(manifest):
    config = resolve_config(CONFIG)
    assert manifest.name == "default" and manifest.network == config.network
    assert manifest.preprocess == config.preprocess
    assert manifest.training["variant"] == "cnn-lstm-am"
    held_out = manifest.training["held_out"]
    people = manifest.training["people"]
    assert sorted(people["test"]) == sorted(held_out["test_people"])
    assert {source_of(p) for p in people["test"]} == set(held_out["test_sources"])
    seen = {source_of(p) for p in people["train"] + people["dev"]}
    assert not seen & set(held_out["test_sources"])  # whole sources held out
    settings = manifest.training["synth_settings"]
    assert settings["test_seed"] != settings["seed"]
    test = manifest.metrics["test"]
    assert test["threshold"] == pytest.approx(manifest.threshold)
    rule = manifest.metrics["threshold"]  # where the threshold came from, both candidates
    assert rule["candidates"]["dev"] == pytest.approx(manifest.metrics["dev"]["threshold"])
    cv_threshold = manifest.metrics["leave_people_out"]["threshold"]
    assert rule["candidates"]["cv"] == pytest.approx(cv_threshold)
    assert manifest.threshold == pytest.approx(rule["candidates"][rule["rule"]])
    for other, at in test["at_other_threshold"].items():
        assert other != rule["rule"] and at["threshold"] == pytest.approx(rule["candidates"][other])
    replays = manifest.metrics["real_replays"]
    assert replays and all(
        r["decision"] == ("genuine" if r["score"] >= manifest.threshold else "spoof")
        for r in replays
        if r["score"] is not None
    )
    assert test["hter"] == pytest.approx((test["far"] + test["frr"]) / 2)
    assert test["n_genuine"] + test["n_spoof"] == test["counts"]["scored"]
    assert len(test["clip_scores"]) == test["counts"]["clips"]
    assert manifest.metrics["real_clips"] and manifest.metrics["images"]
    cv = manifest.metrics["leave_people_out"]  # the cross-validation of this very config
    assert cv["n_sources"] == len({s for fold in cv["plan"]["folds"] for s in fold})
    raw = [c for source in cv["per_source"] for c in source["clips"]]
    assert len(raw) == cv["n_raw_genuine"]
    scored = [c for c in raw if c["score"] is not None]
    rejected = [c["score"] < cv["threshold"] for c in scored]
    assert cv["bpcer"] == pytest.approx(sum(rejected) / len(scored))
    assert all(c["pass"] == (c["score"] is not None and c["score"] >= cv["threshold"]) for c in raw)


@pytest.mark.slow
def test_held_out_hter_matches_the_manifest(manifest, tmp_path, real_clip_paths):
    settings = manifest.training["synth_settings"]
    people = manifest.training["held_out"]["test_people"]
    sources = [real_clip_paths[0].parent / f"{p}.mp4" for p in people]
    missing = [s for s in sources if not s.is_file()]
    if missing:
        pytest.skip(f"the held-out source clips are not available: {missing}")
    records = synthesize_dataset(
        sources,
        tmp_path / "held_out",
        splits={p: "test" for p in people},
        progress=False,
        **settings,
    )
    model = LivenessModel(DEFAULT_MODEL_DIR, providers="cpu")
    outcomes = score_records(model, records, progress=False)
    recorded = manifest.metrics["test"]
    fresh = {f"{o.record.subject}/{o.record.path.stem}": o.score for o in outcomes}
    assert set(fresh) == set(recorded["clip_scores"])
    both = [k for k in fresh if fresh[k] is not None and recorded["clip_scores"][k] is not None]
    diffs = [abs(fresh[k] - recorded["clip_scores"][k]) for k in both]
    assert np.median(diffs) <= SCORE_MEDIAN_TOLERANCE
    report = report_at_threshold(clip_score_set(outcomes), manifest.threshold, None)
    one_clip = max(1 / (2 * report.n_genuine), 1 / (2 * report.n_spoof))
    assert report.hter <= recorded["hter"] + one_clip + 1e-9
    assert report.n_genuine + report.n_spoof >= recorded["counts"]["scored"] - 1
