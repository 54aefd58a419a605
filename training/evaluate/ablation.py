"""The paper's ablation (Tables 1-2 columns) on one data set: LBP, LBP-TOP, CNN, CNN-LSTM,
CNN-LSTM+M, CNN-LSTM+A, CNN-LSTM+AM.

Each network column is the same base config (``training/configs/ablation.toml`` unless
another is named) with the paper variant applied (training.config.VARIANTS), trained on
the data set's train split (``training.train.loop``), exported with the threshold at the dev
EER of its ONNX Runtime scores (``liveness export``) and measured on the test split
through ONNX Runtime (``liveness eval``). The two baselines (training/evaluate/baselines.py) fit
an SVM on the train split's cached face crops without magnification (the CNN-LSTM
column's preprocessing cache), take the threshold at their dev EER and score the test
split. Clips without enough face crops are left out (counted per method).

Folders under ``out``: ``runs/<variant>`` (training runs; an interrupted ablation resumes
them), ``models/<variant>`` (ONNX), ``eval/<variant>`` (liveness eval outputs), and
``ablation.md`` / ``ablation.json`` (the table and every figure, with wall times).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from training.cache import PreprocessCache
from training.config import TrainConfig, resolve_config
from training.datasets import load_dataset
from training.evaluate.baselines import MIN_TOP_FRAMES, LbpSvm, LbpTopSvm
from training.evaluate.metrics import MetricsError, ScoreSet, evaluate
from training.evaluate.output import write_outputs
from training.evaluate.report import ABLATION_METHODS, ablation_table
from training.evaluate.run import EvaluationError, evaluate_model
from training.export.run import export_run
from training.records import ClipRecord
from training.train.cli import with_split
from training.train.loop import train
from training.train.state import LAST_NAME

NETWORK_METHODS = {  # table column -> training.config variant
    "CNN": "cnn",
    "CNN-LSTM": "cnn-lstm",
    "CNN-LSTM+M": "cnn-lstm-m",
    "CNN-LSTM+A": "cnn-lstm-a",
    "CNN-LSTM+AM": "cnn-lstm-am",
}
BASELINE_METHODS = ("LBP", "LBP-TOP")
DEFAULT_CONFIG = "ablation"
# --quick: the smoke config (32 px, windows of 4) for a handful of steps: a check that
# the whole ablation runs, not a measurement.
QUICK_CONFIG = "smoke"
QUICK_SETS = ("epochs=1", "max_steps=3", "patience=0")
QUICK_LBP_FRAMES = 8  # frames per clip for the LBP SVM in quick mode
BASELINE_CONFIG_VARIANT = "cnn-lstm"  # its cache holds the un-magnified (-M) crops


class AblationError(ValueError):
    """An ablation that cannot run (unknown method, data without the three splits...)."""


@dataclass
class AblationResult:
    out: Path
    results: dict[str, dict[str, Any]]  # method -> metrics (EvaluationReport.to_dict()) + extras
    table: str  # markdown
    seconds: float  # wall time of the whole ablation
    config: dict[str, Any] = field(default_factory=dict)  # the base config (CNN-LSTM+AM)


def _split_specs(data: str) -> dict[str, str]:
    specs = {s: with_split(data, s) for s in ("train", "dev", "test")}
    for split, spec in specs.items():
        try:
            load_dataset(spec)
        except ValueError as exc:
            raise AblationError(f"the ablation needs a {split} split in {data!r}: {exc}") from exc
    return specs


def _config(
    config_file: str | None, variant: str, specs: dict[str, str], sets: Sequence[str]
) -> TrainConfig:
    base = TrainConfig(**{f"{split}_data": spec for split, spec in specs.items()})
    return resolve_config(config_file, variant, list(sets), base=base)


def run_network(
    method: str,
    config: TrainConfig,
    out: Path,
    *,
    threads: int | None,
    progress: bool,
) -> dict[str, Any]:
    """Train (or resume), export and evaluate one network column."""
    variant = NETWORK_METHODS[method]
    run_dir = out / "runs" / variant
    started = time.perf_counter()
    train(config, run_dir, resume=(run_dir / LAST_NAME).is_file())
    trained = time.perf_counter()
    model_dir = out / "models" / variant
    export_run(run_dir, model_dir, f"ablation-{variant}", progress=progress, threads=threads)
    result = evaluate_model(model_dir, config.test_data, threads=threads, progress=progress)
    write_outputs(result, out / "eval" / variant)
    report = result.clips.to_dict()
    report.update(
        variant=variant,
        failed_clips=len(result.failures),
        train_seconds=round(trained - started, 1),
        seconds=round(time.perf_counter() - started, 1),
    )
    return report


def _crops(cache: PreprocessCache, records: list[ClipRecord], min_frames: int):
    """(cached crops [N, S, S, 3] of each usable clip, their records, left-out count)."""
    clips, kept = [], []
    for record in records:
        crops = cache.load(record).crops
        if len(crops) >= min_frames:
            clips.append(crops)
            kept.append(record)
    return clips, kept, len(records) - len(kept)


def _score_set(model, clips: list[np.ndarray], records: list[ClipRecord]) -> ScoreSet:
    return ScoreSet(
        scores=model.score_many(clips),
        labels=np.array([r.target for r in records], np.int64),
        attacks=[r.attack for r in records],
        ids=[str(r.path) for r in records],
    )


def run_baseline(
    method: str, config: TrainConfig, *, quick: bool, progress: bool
) -> dict[str, Any]:
    """Fit LBP or LBP-TOP + SVM on the train crops; threshold at the dev EER; test."""
    started = time.perf_counter()
    cache = PreprocessCache(config.resolved_cache_root(), config.preprocess)
    splits = {s: load_dataset(getattr(config, f"{s}_data")) for s in ("train", "dev", "test")}
    cache.build([r for rs in splits.values() for r in rs], progress=progress)
    if method == "LBP":
        model = LbpSvm(max_frames_per_clip=QUICK_LBP_FRAMES if quick else None)
        min_frames = 1
    else:
        model, min_frames = LbpTopSvm(), MIN_TOP_FRAMES
    data = {s: _crops(cache, rs, min_frames) for s, rs in splits.items()}
    train_clips, train_records, _ = data["train"]
    model.fit(train_clips, [r.target for r in train_records], progress=progress)
    try:
        report = evaluate(
            _score_set(model, *data["dev"][:2]), _score_set(model, *data["test"][:2])
        ).to_dict()
    except MetricsError as exc:
        raise AblationError(f"{method}: {exc}") from exc
    report.update(failed_clips=data["test"][2], seconds=round(time.perf_counter() - started, 1))
    return report


def run_ablation(
    data: str,
    out: Path,
    *,
    config_file: str | None = None,
    sets: Sequence[str] = (),
    quick: bool = False,
    methods: Sequence[str] = ABLATION_METHODS,
    threads: int | None = None,
    progress: bool = True,
) -> AblationResult:
    """Every column of ``methods`` on ``data``'s splits; writes ablation.md/.json in ``out``."""
    unknown = [m for m in methods if m not in NETWORK_METHODS and m not in BASELINE_METHODS]
    if unknown:
        raise AblationError(f"unknown ablation method(s) {unknown}; known: {ABLATION_METHODS}")
    out = Path(out)
    specs = _split_specs(data)
    config_file = config_file or (QUICK_CONFIG if quick else DEFAULT_CONFIG)
    sets = [*(QUICK_SETS if quick else ()), *sets, f"progress={str(progress).lower()}"]
    started = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    for method in methods:
        variant = NETWORK_METHODS.get(method, BASELINE_CONFIG_VARIANT)
        config = _config(config_file, variant, specs, sets)
        try:
            if method in NETWORK_METHODS:
                results[method] = run_network(
                    method, config, out, threads=threads, progress=progress
                )
            else:
                results[method] = run_baseline(method, config, quick=quick, progress=progress)
        except EvaluationError as exc:
            raise AblationError(f"{method}: {exc}") from exc
    seconds = time.perf_counter() - started
    base = _config(config_file, "cnn-lstm-am", specs, sets)
    result = AblationResult(out, results, ablation_table(results), seconds, base.to_dict())
    write_ablation(result, data, config_file, quick)
    return result


def write_ablation(result: AblationResult, data: str, config_file: str, quick: bool) -> None:
    out = result.out
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "data": data,
        "config_file": config_file,
        "quick": quick,
        "seconds": round(result.seconds, 1),
        "config": result.config,
        "results": result.results,
    }
    (out / "ablation.json").write_text(json.dumps(record, indent=2) + "\n")
    times = ", ".join(f"{m} {r['seconds']:.0f} s" for m, r in result.results.items())
    text = (
        f"# Ablation on `{data}`\n\n"
        f"Base config `{config_file}`{' (quick mode)' if quick else ''}; threshold at each "
        "method's dev EER, metrics on the test split (clips).\n\n"
        f"{result.table}\n"
        f"Wall time {result.seconds / 60:.1f} min ({times}).\n"
    )
    (out / "ablation.md").write_text(text)
