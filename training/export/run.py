"""A training run -> a model directory the service can load, with its decision threshold.

``export_run`` writes encoder.onnx, head.onnx and manifest.json (model/export.py) from
the run's best.pt and config.json, then scores every dev clip through the service's own
path (ONNX Runtime, model.runtime.score_clip on the decoded video) and sets the
threshold at the EER point of those clip scores. Dev clips the runtime cannot score (no
face found, too few face frames, undecodable) are listed and left out, and counted in
the manifest. The manifest also records the training data (specs, clip counts, the
synthetic set's seeds), the resolved training config, the run name and the dev metrics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from model.export import export_model, make_manifest
from model.labels import GENUINE, GENUINE_CLASS, SPOOF, SPOOF_CLASS
from model.manifest import Manifest, write_manifest
from model.network import build_network
from model.runtime import LivenessModel, TooFewFramesError, score_clip
from model.video import VideoDecodeError, VideoReader
from training.config import TrainConfig, load_config, variant_of
from training.datasets import load_dataset, parse_spec
from training.evaluate.metrics import eer_threshold, hter_at_threshold
from training.records import ClipRecord, summarize
from training.train.state import BEST_NAME, CheckpointError, load_checkpoint

DEFAULT_MODEL_SUBDIR = "model"  # export destination inside the run folder by default


class ExportRunError(RuntimeError):
    """A run that cannot be exported (no best.pt, dev set unusable through the runtime)."""


@dataclass
class ExportResult:
    model_dir: Path
    manifest: Manifest
    dev_scores: dict[str, float]  # dev clip path -> runtime clip score
    excluded: dict[str, str] = field(default_factory=dict)  # dev clip path -> why unscored


def runtime_scores(
    model: LivenessModel, records: list[ClipRecord], progress: bool = True
) -> tuple[dict[str, float], dict[str, str]]:
    """Each clip scored as the service scores an upload: (scores, excluded with reason)."""
    scores: dict[str, float] = {}
    excluded: dict[str, str] = {}
    for record in tqdm(records, desc="dev clips (onnxruntime)", unit="clip", disable=not progress):
        key = str(record.path)
        try:
            reader = VideoReader(record.path)
            scores[key] = score_clip(model, reader, reader.info.fps).score
        except TooFewFramesError as exc:
            excluded[key] = f"face not found in enough frames: {exc}"
        except VideoDecodeError as exc:
            excluded[key] = f"not decodable: {exc}"
    return scores, excluded


def synth_descriptions(specs: list[str]) -> list[dict[str, Any]]:
    """The seeds and sources of each synthetic data set (synth.json) the specs point into."""
    found: dict[Path, dict[str, Any]] = {}
    for spec in specs:
        path = parse_spec(spec).path
        folder = path if path.is_dir() else path.parent
        synth = folder / "synth.json"
        if folder in found or not synth.is_file():
            continue
        data = json.loads(synth.read_text())
        keys = ("version", "seed", "test_seed", "kinds", "max_seconds", "codec")
        found[folder] = {k: data.get(k) for k in keys} | {
            "folder": str(folder),
            "sources": [s.get("name") for s in data.get("sources", [])],
        }
    return list(found.values())


def training_description(config: TrainConfig, run_dir: Path, best: dict[str, Any]) -> dict:
    specs = {s: getattr(config, f"{s}_data") for s in ("train", "dev", "test")}
    data = {s: {"spec": spec, **summarize(load_dataset(spec))} for s, spec in specs.items() if spec}
    return {
        "run": run_dir.name,
        "epoch": best["epoch"],
        "step": best["step"],
        "seed": config.seed,
        "variant": variant_of(config),  # paper ablation name, None for other combinations
        "data": data,
        "synth": synth_descriptions([s for s in specs.values() if s]),
        "config": config.to_dict(),
    }


def export_run(
    run_dir: Path,
    out_dir: Path | None = None,
    name: str | None = None,
    *,
    progress: bool = True,
    threads: int | None = None,
) -> ExportResult:
    """Export ``run_dir``'s best.pt to ``out_dir`` (default RUN/model) with the threshold at
    the dev EER of ONNX Runtime clip scores."""
    run_dir = Path(run_dir)
    config = load_config(run_dir)
    best = load_checkpoint(run_dir / BEST_NAME)
    if TrainConfig.from_dict(best["config"]) != config:
        raise CheckpointError(
            f"{run_dir}: best.pt was trained with another config than config.json"
        )
    net = build_network(config.network)
    net.load_state_dict(best["model"])
    net.eval()
    out_dir = Path(out_dir) if out_dir is not None else run_dir / DEFAULT_MODEL_SUBDIR
    name = name or run_dir.name
    manifest = make_manifest(
        net,
        config.preprocess,
        name,
        version=f"{name} epoch {best['epoch']}",
        training=training_description(config, run_dir, best),
    )
    export_model(net, manifest, out_dir)

    dev = load_dataset(config.dev_data)
    model = LivenessModel(out_dir, threads=threads)
    scores, excluded = runtime_scores(model, dev, progress)
    labels = {str(r.path): r.target for r in dev}
    s = np.array(list(scores.values()), np.float64)
    y = np.array([labels[k] for k in scores], np.int64)
    if len(set(y.tolist())) < 2:
        raise ExportRunError(
            f"the runtime scored {len(scores)} of {len(dev)} dev clips, not both classes: "
            "no EER threshold can be set"
        )
    eer, threshold = eer_threshold(s, y)
    manifest.threshold = threshold
    manifest.metrics = {
        "dev": {
            "eer": eer,
            "threshold": threshold,
            "hter": hter_at_threshold(s, y, threshold),
            "clips": len(scores),
            GENUINE: int(np.sum(y == GENUINE_CLASS)),
            SPOOF: int(np.sum(y == SPOOF_CLASS)),
            "excluded": len(excluded),
            "excluded_clips": sorted(excluded),
            "scored_by": "onnxruntime (model.runtime.score_clip)",
            "training_eer": best.get("dev", {}).get("dev_eer"),  # torch, at the best epoch
        }
    }
    write_manifest(out_dir, manifest)
    return ExportResult(out_dir, manifest, scores, excluded)
