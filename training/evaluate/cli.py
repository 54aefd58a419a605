"""Evaluate a model directory on a data set, through ONNX Runtime exactly as the server
scores an upload.

The threshold is the model's own (manifest.json, set at its dev EER by `liveness
export`), or, with --dev, the EER point of the dev clips' scores (the paper's protocol).
At that threshold, per clip and per window: HTER, ACC, EER, AUC, APCER per attack kind
and its maximum, BPCER, ACER. Clips where no face is tracked in enough frames for one
window (failures to acquire) are listed, left out of APCER/BPCER and reported as
non-response rates (BPNRR, APNRR), as ISO/IEC 30107-3 does for a PAD subsystem; the
rates with those failures counted as rejections are reported too. --out receives
metrics.json, report.md (the paper's table shapes), scores.csv (per clip) and PNG
figures: ROC, DET, score histograms, attention over time for a sample clip of each kind.
Evaluating on a data set other than the training one is the paper's cross-test.

With --cv K, a leave-people-out evaluation is trained and measured instead
(training/evaluate/crossval.py): --data's sources (the subject up to its first `__`) dealt into K
folds, each fold trained on the others (--config, --set) and scored on its own held-out
sources' clips, their raw recordings (--raw) and the real replays (--replays); the
out-of-fold scores pooled, thresholded at the pooled dev EER, reported in cv.md and
cv.json. Finished folds are kept and not redone when the command runs again.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model.config import PROVIDER_CHOICES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from training.config import add_set_option, output_folder
    from training.datasets import SPEC_HELP

    parser.add_argument(
        "model",
        nargs="?",
        type=Path,
        metavar="MODEL",
        help="model directory (default: the embedded default model)",
    )
    parser.add_argument("--data", required=True, metavar="SPEC", help=f"clips to test: {SPEC_HELP}")
    parser.add_argument(
        "--dev",
        metavar="SPEC",
        help="dev clips: set the threshold at their EER point instead of the manifest's",
    )
    parser.add_argument(
        "--out",
        type=output_folder,
        metavar="DIR",
        help="output folder (default: runs/eval/<model name>, or runs/cv with --cv)",
    )
    parser.add_argument("--threads", type=int, help="ONNX Runtime threads (default: all cores)")
    parser.add_argument(
        "--providers",
        choices=PROVIDER_CHOICES,
        default="auto",
        help="ONNX Runtime execution providers (default auto: CUDA when available)",
    )
    parser.add_argument(
        "--cv",
        type=int,
        metavar="K",
        help="leave-people-out: train and measure K folds over --data's sources",
    )
    parser.add_argument(
        "--raw",
        type=Path,
        metavar="DIR",
        help="the sources' raw genuine recordings, scored with their still attacks (--cv "
        "default: --data's genuine clips)",
    )
    parser.add_argument(
        "--replays",
        type=Path,
        metavar="DIR",
        help="folder of real replay attacks, scored (with --cv: by every fold), never trained on",
    )
    parser.add_argument(
        "--nuaa",
        type=Path,
        metavar="DIR",
        help="folder of real print attacks and live twins with a labels.csv "
        "(../shared/data/attacks/nuaa), scored (with --cv: by every fold), never trained on",
    )
    parser.add_argument(
        "--dev-sources",
        type=int,
        default=0,
        metavar="N",
        help="--cv: dev sources per fold (default 0: about 15%% of the training sources)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="--cv: seed of the fold deal (default 0)"
    )
    parser.add_argument(
        "--folds",
        metavar="LIST",
        help="--cv: run only these folds, e.g. 0,1 (the report pools the finished ones)",
    )
    parser.add_argument(
        "--train-people",
        type=int,
        default=0,
        metavar="N",
        help="--cv: train each fold on N of its training people (a learning curve); 0 = all",
    )
    parser.add_argument(
        "--config",
        metavar="CONFIG",
        help="--cv: base training config, a TOML path or a configs/ name (default_model)",
    )
    add_set_option(parser, "--cv: override a training setting for every fold (repeatable)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _error(message: str) -> int:
    print(f"liveness eval: error: {message}", file=sys.stderr)
    return 2


def _evaluate(args: argparse.Namespace) -> int:
    from model.manifest import DEFAULT_MODEL_DIR
    from training.config import TrainConfig
    from training.evaluate.output import write_outputs
    from training.evaluate.run import evaluate_model
    from training.evaluate.unseen import STILLS_SEED

    model_dir = args.model or DEFAULT_MODEL_DIR
    stills = TrainConfig().resolved_cache_root() / "stills" / f"seed-{STILLS_SEED}"
    result = evaluate_model(
        model_dir,
        args.data,
        args.dev,
        threads=args.threads,
        providers=args.providers,
        progress=not args.quiet,
        raw=args.raw,
        replays=args.replays,
        nuaa=args.nuaa,
        stills_dir=stills,
    )
    out = args.out or Path("runs") / "eval" / result.manifest.name
    files = write_outputs(result, out)
    for failure in result.failures:
        print(f"failure to acquire: {failure.record.path}: {failure.reason}", file=sys.stderr)
    c = result.clips
    print(
        f"{result.manifest.name} on {args.data}: HTER {100 * c.hter:.2f}% ACC {100 * c.acc:.2f}% "
        f"EER {100 * c.eer:.2f}% AUC {100 * c.auc:.2f}% ACER {100 * c.acer:.2f}% at threshold "
        f"{result.threshold:.4f} ({result.threshold_source}); {c.n_genuine} genuine, "
        f"{c.n_spoof} spoof clips scored, {len(result.failures)} failed"
    )
    print(f"wrote {files['report']}, {files['metrics'].name}, {files['scores'].name} and figures")
    return 0


def _fold_list(text: str | None) -> list[int] | None:
    from training.evaluate.crossval import CrossValError

    if not text:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise CrossValError(f"--folds {text!r}: expected fold numbers like 0,2") from exc


def _cross_validation(args: argparse.Namespace) -> int:
    from training.evaluate.crossval import run_cross_validation

    if args.model is not None or args.dev:
        return _error("--cv trains its own models: drop MODEL and --dev")
    out = args.out or Path("runs") / "cv"
    result = run_cross_validation(
        args.data,
        out,
        args.cv,
        config_file=args.config,
        sets=args.sets,
        raw=args.raw,
        replays=args.replays,
        dev_sources=args.dev_sources,
        seed=args.seed,
        progress=not args.quiet,
        only=_fold_list(args.folds),
        train_people=args.train_people,
        nuaa=args.nuaa,
    )
    print(result.markdown)
    print(
        f"wrote {out / 'cv.md'} and cv.json; folds run now: {result.folds_run or 'none'} "
        f"({result.seconds / 60:.1f} min)"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    from model.manifest import ManifestError
    from training.cache import CacheError
    from training.datasets import DatasetError
    from training.evaluate.run import EvaluationError
    from training.evaluate.unseen import UnseenError
    from training.synth.sources import SynthError

    cv = args.cv is not None
    if not cv and (args.sets or args.config):
        return _error("--config and --set apply to --cv only (the ablation: liveness ablation)")
    if not cv and (args.dev_sources or args.folds or args.train_people):
        return _error("--dev-sources, --folds and --train-people apply to --cv only")
    errors: tuple[type[Exception], ...] = (CacheError, DatasetError, EvaluationError, ManifestError)
    errors += (SynthError, UnseenError)
    if cv:  # these modules import torch: only when training
        from training.config import ConfigError
        from training.evaluate.crossval import CrossValError
        from training.export.run import ExportRunError
        from training.pretrained import PretrainedError
        from training.train.data import DataError
        from training.train.state import CheckpointError

        errors += (CheckpointError, ConfigError, CrossValError, DataError, ExportRunError)
        errors += (PretrainedError,)
    try:
        return _cross_validation(args) if cv else _evaluate(args)
    except errors as exc:
        return _error(str(exc))
