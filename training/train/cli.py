"""Train the joint CNN-LSTM (paper §3.3) on a data set and keep the best epoch.

Settings start from training/config.py's defaults, then CONFIG (a TOML file, or the name
of one in training/configs/: default_model, mobilenet_v2, vgg16, smoke), then --variant, then each
--set KEY=VALUE. The run folder --out receives config.json (the resolved settings),
metrics.jsonl (one line per epoch: train loss, dev EER, dev HTER at its own
threshold), last.pt (resumable), best.pt (lowest dev EER; `liveness export` reads it)
and, with test clips, test_metrics.json (best.pt on them at the dev EER threshold).
Clips are preprocessed once into a cache (cache_root; default $LIVENESS_CACHE or
.cache/liveness).
Under `torchrun --nproc_per_node=N -m liveness train ...` the same command trains with DDP.
"""

from __future__ import annotations

import argparse
import os
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from training.config import VARIANTS, add_set_option, output_folder

    parser.add_argument(
        "config",
        nargs="?",
        metavar="CONFIG",
        help="override file: a TOML path or a name in training/configs/ (default: none)",
    )
    parser.add_argument(
        "--out",
        required=True,
        type=output_folder,
        metavar="DIR",
        help="run folder to write (or resume)",
    )
    parser.add_argument(
        "--data",
        metavar="SPEC",
        help="a data set with train/dev(/test) splits, e.g. a liveness synth folder",
    )
    parser.add_argument("--train", metavar="SPEC", help="training clips (sets train_data)")
    parser.add_argument("--dev", metavar="SPEC", help="dev clips (sets dev_data)")
    parser.add_argument("--test", metavar="SPEC", help="test clips (sets test_data)")
    parser.add_argument(
        "--variant", choices=list(VARIANTS), help="paper ablation: m = magnification, a = attention"
    )
    add_set_option(
        parser,
        "override one setting, e.g. network.hidden=64 (repeatable; values read as TOML)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last.pt, with its own config.json",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def with_split(spec: str, split: str) -> str:
    """``spec`` narrowed to one split (the data set option ``split=``)."""
    if "split=" in spec.partition("?")[2]:
        raise ValueError(f"--data {spec!r} already picks a split; use --train/--dev/--test")
    return f"{spec}{'&' if '?' in spec else '?'}split={split}"


def _data_sets(args: argparse.Namespace) -> list[str]:
    """The --data/--train/--dev/--test choices as --set assignments (TOML strings)."""
    specs: dict[str, str] = {}
    if args.data:
        specs = {f"{s}_data": with_split(args.data, s) for s in ("train", "dev")}
        if _has_clips(with_split(args.data, "test")):  # a test split is optional
            specs["test_data"] = with_split(args.data, "test")
    for split in ("train", "dev", "test"):
        if getattr(args, split):
            specs[f"{split}_data"] = getattr(args, split)
    return [f"{key}={_toml_string(value)}" for key, value in specs.items()]


def _has_clips(spec: str) -> bool:
    from training.datasets import ProtocolError, load_dataset

    try:
        return bool(load_dataset(spec))
    except ProtocolError:  # "selects no clips"
        return False


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def run(args: argparse.Namespace) -> int:
    from training.config import ConfigError, load_config, resolve_config
    from training.datasets import DatasetError
    from training.train.data import DataError
    from training.train.loop import train
    from training.train.state import CheckpointError

    sets = list(args.sets) + (["progress=false"] if args.quiet else [])
    try:
        if args.resume:
            if args.config or args.variant or args.data or args.train or args.dev or args.test:
                raise ConfigError(
                    "--resume takes the run's own config.json; drop CONFIG/--variant/data"
                )
            config = resolve_config(base=load_config(args.out), sets=sets)
        else:
            config = resolve_config(args.config, args.variant, _data_sets(args) + sets)
        result = train(config, args.out, resume=args.resume)
    except (ConfigError, DataError, DatasetError, CheckpointError, ValueError) as exc:
        print(f"liveness train: error: {exc}", file=sys.stderr)
        return 2
    if os.environ.get("RANK", "0") == "0":  # one summary under torchrun
        print(
            f"{result.stopped}: {result.epochs} epochs, {result.steps} steps; best epoch "
            f"{result.best_epoch} (dev EER {result.best_dev_eer:.4f}) in {result.run_dir / 'best.pt'}"
        )
    return 0
