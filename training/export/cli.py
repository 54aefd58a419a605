"""Export a training run to a model directory the service loads: encoder.onnx, head.onnx
and manifest.json, from the run's best.pt and config.json.

The decision threshold is set at the equal-error point of the dev clips' scores computed
through ONNX Runtime exactly as the server scores an upload; dev clips with no usable
face are listed and left out. The manifest records the training data, the resolved
config, the run name and the dev metrics.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from training.config import output_folder

    parser.add_argument(
        "run", type=Path, metavar="RUN", help="training run folder (liveness train --out)"
    )
    parser.add_argument(
        "--out",
        type=output_folder,
        metavar="DIR",
        help="model directory to write (default: RUN/model)",
    )
    parser.add_argument(
        "--name", help="model name in the manifest (default: the run folder's name)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="ONNX Runtime threads for scoring the dev clips (default: all cores)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from model.manifest import ManifestError
    from training.config import ConfigError
    from training.datasets import DatasetError
    from training.export.run import ExportRunError, export_run
    from training.train.state import CheckpointError

    try:
        result = export_run(
            args.run, args.out, args.name, progress=not args.quiet, threads=args.threads
        )
    except (ConfigError, CheckpointError, DatasetError, ExportRunError, ManifestError) as exc:
        print(f"liveness export: error: {exc}", file=sys.stderr)
        return 2
    dev = result.manifest.metrics["dev"]
    for clip, why in sorted(result.excluded.items()):
        print(f"excluded from the threshold: {clip}: {why}", file=sys.stderr)
    print(
        f"wrote {result.model_dir}: threshold {result.manifest.threshold:.4f} at dev EER "
        f"{dev['eer']:.4f} over {dev['clips']} clips ({dev['excluded']} excluded)"
    )
    return 0
