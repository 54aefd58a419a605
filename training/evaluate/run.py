"""``liveness eval``: a model directory measured on a data set through ONNX Runtime.

Every clip is scored by the service's own path (training/evaluate/score.py). The decision
threshold is the manifest's (set by ``liveness export`` at the dev EER) or, with a dev
set, the EER point of the dev clips' runtime scores (the paper's protocol, §4.2). At that
threshold: HTER, ACC, the test set's own EER and AUC, APCER per attack kind and its
maximum, BPCER and ACER, per clip (the clip score: mean over its windows) and per window
(each window's score against the same threshold, as a stream decision would be).

Failures to acquire (no face tracked in enough frames for one window, undecodable
files) follow ISO/IEC 30107-3's PAD-subsystem evaluation: APCER and BPCER are measured
over the presentations that got a decision, and the failures are reported beside them
as non-response rates (BPNRR for bona fide clips, APNRR per attack kind). Because the
service rejects a clip it cannot score, the system-level figures with every failure
counted as a rejection (a spoof decision, as ISO/IEC 19795-1 counts failures to acquire
in the false reject rate) are reported too, under ``with_failures_rejected``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from model.labels import GENUINE
from model.manifest import Manifest, ManifestError, read_manifest
from model.runtime import LivenessModel
from training.datasets import DatasetError, load_dataset
from training.evaluate.metrics import (
    EvaluationReport,
    MetricsError,
    ScoreSet,
    evaluate,
    report_at_threshold,
)
from training.evaluate.score import ClipOutcome, pick_samples, score_records
from training.evaluate.unseen_run import evaluate_unseen
from training.records import ClipRecord

THRESHOLD_FROM_MANIFEST = "manifest"
THRESHOLD_FROM_DEV = "dev EER"


class EvaluationError(ValueError):
    """A model or data set that cannot be evaluated (and why)."""


@dataclass
class EvaluationResult:
    model_dir: Path
    manifest: Manifest
    data: str  # the test data set spec
    dev: str | None  # the dev data set spec (threshold at its EER), None = manifest threshold
    threshold: float
    threshold_source: str  # THRESHOLD_FROM_MANIFEST or THRESHOLD_FROM_DEV
    clips: EvaluationReport  # per clip, over the clips that got a decision
    windows: EvaluationReport  # per window, same threshold
    outcomes: list[ClipOutcome]  # every test clip, scored or not
    dev_outcomes: list[ClipOutcome] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the scoring
    unseen: dict[str, Any] = field(default_factory=dict)  # unseen_run's figures and rows

    @property
    def failures(self) -> list[ClipOutcome]:
        return [o for o in self.outcomes if not o.acquired]

    def non_response(self) -> dict[str, Any]:
        return non_response_rates(self.outcomes)

    def with_failures_rejected(self) -> dict[str, Any]:
        return failures_rejected(self.clips, self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "model": {"dir": str(self.model_dir), "name": m.name, "hash": m.model_hash},
            "data": self.data,
            "dev": self.dev,
            "threshold": self.threshold,
            "threshold_source": self.threshold_source,
            "clips": self.clips.to_dict(),
            "windows": self.windows.to_dict(),
            "counts": counts(self.outcomes),
            "non_response": self.non_response(),
            "with_failures_rejected": self.with_failures_rejected(),
            "failures": [
                {"path": str(o.record.path), "kind": o.kind, "reason": o.reason}
                for o in self.failures
            ],
            "seconds": round(self.seconds, 3),
            **({"unseen": self.unseen} if self.unseen else {}),
        }


def clip_score_set(outcomes: list[ClipOutcome]) -> ScoreSet:
    """The clips that got a score, as a ScoreSet (ids = clip paths)."""
    scored = [o for o in outcomes if o.acquired]
    return ScoreSet(
        scores=np.array([o.score for o in scored], np.float64),
        labels=np.array([o.record.target for o in scored], np.int64),
        attacks=[o.record.attack for o in scored],
        ids=[str(o.record.path) for o in scored],
    )


def window_score_set(outcomes: list[ClipOutcome]) -> ScoreSet:
    """Every window of every scored clip, labelled as its clip (ids = ``path#w<k>``)."""
    rows = [(o, k, w.score) for o in outcomes if o.acquired for k, w in enumerate(o.windows)]
    return ScoreSet(
        scores=np.array([s for _, _, s in rows], np.float64),
        labels=np.array([o.record.target for o, _, _ in rows], np.int64),
        attacks=[o.record.attack for o, _, _ in rows],
        ids=[f"{o.record.path}#w{k}" for o, k, _ in rows],
    )


def counts(outcomes: list[ClipOutcome]) -> dict[str, Any]:
    """Clips per kind: in the data set, scored, failed to acquire."""
    out: dict[str, Any] = {"clips": len(outcomes), "scored": 0, "failed": 0, "per_kind": {}}
    for o in outcomes:
        row = out["per_kind"].setdefault(o.kind, {"clips": 0, "scored": 0, "failed": 0})
        key = "scored" if o.acquired else "failed"
        row["clips"] += 1
        row[key] += 1
        out[key] += 1
    out["per_kind"] = dict(sorted(out["per_kind"].items()))
    return out


def non_response_rates(outcomes: list[ClipOutcome]) -> dict[str, Any]:
    """ISO/IEC 30107-3 non-response rates: BPNRR, and APNRR per attack kind (and max)."""
    per_kind = counts(outcomes)["per_kind"]
    genuine = per_kind.get(GENUINE)
    apnrr = {k: v["failed"] / v["clips"] for k, v in per_kind.items() if k != GENUINE}
    return {
        "bpnrr": genuine["failed"] / genuine["clips"] if genuine else None,
        "apnrr_per_attack": apnrr,
        "apnrr": max(apnrr.values()) if apnrr else None,
    }


def failures_rejected(report: EvaluationReport, outcomes: list[ClipOutcome]) -> dict[str, Any]:
    """System-level rates with every failure to acquire counted as a spoof decision: an
    unscored genuine clip is a false reject, an unscored attack a correct rejection."""
    per_kind = counts(outcomes)["per_kind"]
    genuine = per_kind.get(GENUINE, {"clips": 0, "failed": 0})
    n_genuine = max(genuine["clips"], 1)
    bpcer = (report.bpcer * report.n_genuine + genuine["failed"]) / n_genuine
    apcer = {
        kind: rate * per_kind[kind]["scored"] / per_kind[kind]["clips"]
        for kind, rate in report.apcer_per_attack.items()
    }
    n_spoof = sum(v["clips"] for k, v in per_kind.items() if k != GENUINE)
    far = report.far * report.n_spoof / max(n_spoof, 1)
    apcer_max = max(apcer.values()) if apcer else 0.0
    return {
        "hter": (far + bpcer) / 2.0,
        "far": far,
        "bpcer": bpcer,
        "apcer_per_attack": apcer,
        "apcer": apcer_max,
        "acer": (apcer_max + bpcer) / 2.0,
    }


def _load(spec: str, what: str) -> list[ClipRecord]:
    try:
        records = load_dataset(spec)
    except DatasetError as exc:
        raise EvaluationError(f"{what} data {spec!r}: {exc}") from exc
    if not records:
        raise EvaluationError(f"{what} data {spec!r} holds no clips")
    return records


def _scored_set(outcomes: list[ClipOutcome], what: str) -> ScoreSet:
    scored = [o for o in outcomes if o.acquired]
    classes = {o.record.target for o in scored}
    if len(classes) < 2:
        have = "no clip" if not scored else f"only {'genuine' if 1 in classes else 'spoof'} clips"
        raise EvaluationError(
            f"the runtime scored {have} of the {len(outcomes)} {what} clips; "
            "metrics need genuine and spoof clips with a face"
        )
    return clip_score_set(outcomes)


def load_model(model_dir: Path, threads: int | None, providers: str) -> LivenessModel:
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise EvaluationError(f"{model_dir}: no such model directory")
    try:
        read_manifest(model_dir)
    except ManifestError as exc:
        raise EvaluationError(f"{model_dir}: not a usable model directory ({exc})") from exc
    return LivenessModel(model_dir, providers=providers, threads=threads)


def evaluate_model(
    model_dir: Path,
    data: str,
    dev: str | None = None,
    *,
    threads: int | None = None,
    providers: str = "auto",
    progress: bool = True,
    raw: Path | None = None,
    replays: Path | None = None,
    nuaa: Path | None = None,
    stills_dir: Path | None = None,
) -> EvaluationResult:
    """Score ``data`` (and ``dev``) through ONNX Runtime and measure it (module docstring).
    ``raw``, ``replays`` and ``nuaa`` add the unseen-people rows (unseen_run.py); the
    still attacks of the raw clips are kept in ``stills_dir``."""
    model = load_model(model_dir, threads, providers)
    records = _load(data, "test")
    dev_records = _load(dev, "dev") if dev else []
    started = time.perf_counter()
    dev_outcomes = score_records(model, dev_records, progress=progress, desc="dev clips")
    outcomes = score_records(
        model, records, samples=pick_samples(records), progress=progress, desc="test clips"
    )
    seconds = time.perf_counter() - started
    test_set = _scored_set(outcomes, "test")
    try:
        if dev:
            clips = evaluate(_scored_set(dev_outcomes, "dev"), test_set)
            source = THRESHOLD_FROM_DEV
        else:
            dev_eer = model.manifest.metrics.get("dev", {}).get("eer")
            clips = report_at_threshold(test_set, model.threshold, dev_eer)
            source = THRESHOLD_FROM_MANIFEST
        windows = report_at_threshold(window_score_set(outcomes), clips.threshold, clips.dev_eer)
    except MetricsError as exc:
        raise EvaluationError(f"cannot measure {data!r}: {exc}") from exc
    unseen = {}
    if raw or replays or nuaa:
        if stills_dir is None:
            raise EvaluationError("the still attacks of the raw clips need a folder (stills_dir)")
        unseen = evaluate_unseen(
            model,
            records,
            outcomes,
            clips.threshold,
            raw=raw,
            replays=replays,
            nuaa=nuaa,
            stills_dir=stills_dir,
            progress=progress,
        )
    return EvaluationResult(
        model_dir=Path(model_dir),
        manifest=model.manifest,
        data=data,
        dev=dev,
        threshold=clips.threshold,
        threshold_source=source,
        clips=clips,
        windows=windows,
        outcomes=outcomes,
        dev_outcomes=dev_outcomes,
        seconds=seconds,
        unseen=unseen,
    )
