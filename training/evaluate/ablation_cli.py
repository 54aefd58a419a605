"""Train and measure the paper's ablation (LBP, LBP-TOP, CNN, CNN-LSTM, +M, +A, +AM) on a
data set's train/dev/test splits (training/evaluate/ablation.py).

Each network column is trained with --config (default: ablation) and its paper variant,
exported and scored through ONNX Runtime; the LBP baselines fit an SVM. --out receives
the runs, models and evaluations of every column, ablation.md and ablation.json. An
interrupted ablation resumes its runs. --quick makes it a minutes-long check, not a
measurement.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from training.config import add_set_option, output_folder

    parser.add_argument(
        "--data", required=True, metavar="SPEC", help="a data set with train/dev/test splits"
    )
    parser.add_argument(
        "--out", type=output_folder, metavar="DIR", help="output folder (default: runs/ablation)"
    )
    parser.add_argument(
        "--config",
        metavar="CONFIG",
        help="base training config, a TOML path or a configs/ name (default ablation)",
    )
    add_set_option(parser, "override a training setting for every column (repeatable)")
    parser.add_argument(
        "--quick", action="store_true", help="the smoke config for 3 steps a network (a check)"
    )
    parser.add_argument("--threads", type=int, help="ONNX Runtime threads (default: all cores)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from model.manifest import ManifestError
    from training.cache import CacheError
    from training.config import ConfigError
    from training.datasets import DatasetError
    from training.evaluate.ablation import AblationError, run_ablation
    from training.evaluate.baselines import BaselineError
    from training.evaluate.run import EvaluationError
    from training.export.run import ExportRunError
    from training.train.data import DataError
    from training.train.state import CheckpointError

    out = args.out or Path("runs") / "ablation"
    try:
        result = run_ablation(
            args.data,
            out,
            config_file=args.config,
            sets=args.sets,
            quick=args.quick,
            threads=args.threads,
            progress=not args.quiet,
        )
    except (
        AblationError, BaselineError, CacheError, CheckpointError, ConfigError, DataError,
        DatasetError, EvaluationError, ExportRunError, ManifestError,
    ) as exc:  # fmt: skip
        print(f"liveness ablation: error: {exc}", file=sys.stderr)
        return 2
    print(result.table)
    print(f"wrote {out / 'ablation.md'} and ablation.json ({result.seconds / 60:.1f} min)")
    return 0
