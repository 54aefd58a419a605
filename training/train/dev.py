"""The data a run trains and evaluates on, and how it is scored during training.

Dev (every epoch) and test (once, with best.pt) clips are scored in torch exactly as the
service scores them: mean P(genuine) over the clip's windows (model/windows.py),
so the dev EER seen here is the one ``liveness export`` finds through ONNX Runtime, up to
float rounding. Under DDP each rank scores its share of the clips and the scores are
gathered, so every rank computes the same metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from model.network import LivenessNet
from training.cache import CachedClip, PreprocessCache, tile_windows
from training.config import TrainConfig
from training.datasets import load_dataset
from training.evaluate.metrics import (
    MetricsError,
    ScoreSet,
    eer_threshold,
    evaluate,
    hter_at_threshold,
)
from training.records import ClipRecord
from training.train.data import DataError, WindowPool, load_clips, score_clips
from training.train.dist import Dist


@dataclass
class TrainingData:
    pool: WindowPool  # training windows
    dev_records: list[ClipRecord]
    dev_clips: list[CachedClip]  # one per dev record
    test_records: list[ClipRecord] = field(default_factory=list)  # empty without test_data
    test_clips: list[CachedClip] = field(default_factory=list)


def _records(spec: str, what: str) -> list[ClipRecord]:
    if not spec:
        raise DataError(f"no {what} data set: set {what}_data (e.g. --data or --set)")
    return load_dataset(spec)


def prepare_data(config: TrainConfig, state: Dist) -> TrainingData:
    """Load the records, fill the cache (each rank its share of the clips), load the clips."""
    train = _records(config.train_data, "train")
    dev = _records(config.dev_data, "dev")
    test = _records(config.test_data, "test") if config.test_data else []
    if len({r.target for r in dev}) < 2:
        raise DataError("the dev data needs genuine and spoof clips (EER needs both)")
    window = config.preprocess.window
    cache = PreprocessCache(config.resolved_cache_root(), config.preprocess)
    unique = {r.path: r for r in [*train, *dev, *test]}
    mine = sorted(unique.values(), key=lambda r: str(r.path))[state.rank :: state.world]
    cache.build(mine, workers=config.cache_workers, progress=config.progress and state.is_main)
    state.barrier()
    pool = WindowPool(
        load_clips(train, cache), train, config.preprocess.window.length, config.window_stride
    )
    dev_clips = load_clips(dev, cache)
    scorable = {r.target for r, c in zip(dev, dev_clips, strict=True) if tile_windows(c, window)}
    if len(scorable) < 2:
        raise DataError(
            "dev clips with enough face frames for one window cover fewer than two classes"
        )
    return TrainingData(pool, dev, dev_clips, test, load_clips(test, cache) if test else [])


def gather_scores(
    net: LivenessNet, clips: list[CachedClip], config: TrainConfig, state: Dist
) -> list[float | None]:
    """Every clip's score on every rank; each rank computes its share."""
    net.eval()
    mine = list(range(state.rank, len(clips), state.world))
    scores = score_clips(
        net,
        [clips[i] for i in mine],
        config.preprocess.window,
        config.network,
        state.device,
        config.eval_batch_size,
    )
    by_clip: dict[int, float | None] = {}
    for part in state.gather(list(zip(mine, scores, strict=True))):
        by_clip.update(part)
    return [by_clip[i] for i in range(len(clips))]


def score_set(records: list[ClipRecord], scores: list[float | None]) -> ScoreSet:
    """Clips with a score, as a training.evaluate.metrics ScoreSet (unscorable clips left out)."""
    kept = [i for i, s in enumerate(scores) if s is not None]
    return ScoreSet(
        scores=np.array([scores[i] for i in kept], np.float64),
        labels=np.array([records[i].target for i in kept], np.int64),
        attacks=[records[i].attack for i in kept],
        ids=[str(records[i].path) for i in kept],
    )


def evaluate_dev(net: LivenessNet, data: TrainingData, config: TrainConfig, state: Dist) -> dict:
    """Dev clip scores -> EER, its threshold, the HTER there, and the clip log-loss."""
    scores = gather_scores(net, data.dev_clips, config, state)
    if len({r.target for r, s in zip(data.dev_records, scores, strict=True) if s is not None}) < 2:
        raise DataError("dev clips with a scorable window cover one class only")
    dev = score_set(data.dev_records, scores)
    eer, threshold = eer_threshold(dev.scores, dev.labels)
    p_true = np.where(dev.labels == 1, dev.scores, 1.0 - dev.scores)
    return {
        "dev_eer": eer,
        "dev_threshold": threshold,
        "dev_hter": hter_at_threshold(dev.scores, dev.labels, threshold),
        "dev_loss": float(-np.mean(np.log(np.clip(p_true, 1e-7, 1.0)))),
        "dev_clips": int(dev.scores.size),
        "dev_unscored": len(scores) - int(dev.scores.size),
    }


def evaluate_test(
    net: LivenessNet, data: TrainingData, config: TrainConfig, state: Dist
) -> dict | None:
    """Test metrics at the dev EER threshold (training.evaluate.metrics.evaluate); None without
    test clips, ``{"error": ...}`` when they cannot be evaluated (e.g. one class)."""
    if not data.test_clips:
        return None
    dev_scores = gather_scores(net, data.dev_clips, config, state)
    scores = gather_scores(net, data.test_clips, config, state)
    try:
        report = evaluate(
            score_set(data.dev_records, dev_scores), score_set(data.test_records, scores)
        ).to_dict()
    except MetricsError as exc:
        return {"error": str(exc)}
    report["test_unscored"] = sum(s is None for s in scores)
    return report
