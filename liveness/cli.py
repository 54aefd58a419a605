"""The ``liveness`` command: one entry point, one subcommand per module.

Each subcommand module defines ``add_arguments(parser)`` and ``run(args) -> int`` and
imports its heavy dependencies (torch, FastAPI) inside ``run`` only, so ``liveness
--help`` and the serving image (no torch) stay light. The serving image installs
liveness/, model/ and service/ only: the training and benchmark commands are offered
where their packages are installed.
"""

from __future__ import annotations

import argparse
import sys
from types import ModuleType
from typing import NamedTuple

from model import cli_magnify
from service.cli import calibrate, client, serve, stream, token


class Subcommand(NamedTuple):
    module: ModuleType  # add_arguments(parser), run(args) -> int
    help: str  # one line, shown by liveness --help


def _absent(exc: ModuleNotFoundError, package: str) -> bool:
    """True when ``package`` itself is not installed (not when it fails to import)."""
    return exc.name == package


def _training_commands() -> dict[str, Subcommand]:
    try:
        from training.evaluate import ablation_cli as ablation
        from training.evaluate import cli as evaluate
        from training.export import cli as export
        from training.synth import cli as synth
        from training.train import cli as train
    except ModuleNotFoundError as exc:
        if _absent(exc, "training"):
            return {}
        raise
    return {
        "synth": Subcommand(synth, "synthesise labelled print/replay attacks from genuine clips"),
        "train": Subcommand(train, "train the CNN-LSTM (joint loss) on a data set"),
        "export": Subcommand(export, "export a training run to a model directory (ONNX + manifest)"),
        "eval": Subcommand(evaluate, "evaluate a model directory on a data set (HTER, ACER, AUC, ...)"),
        "ablation": Subcommand(ablation, "train and measure the paper's ablation on a data set's splits"),
    }  # fmt: skip


def _bench_commands() -> dict[str, Subcommand]:
    try:
        from bench import cli as bench
    except ModuleNotFoundError as exc:
        if _absent(exc, "bench"):
            return {}
        raise
    return {"bench": Subcommand(bench, "run the benchmarks and print their tables")}


def subcommands() -> dict[str, Subcommand]:
    """name -> subcommand, in the order --help shows them."""
    return {
        "serve": Subcommand(serve, "run the HTTP/WebSocket liveness server"),
        "check": Subcommand(client, "send a clip to a running server and print its verdict"),
        "stream": Subcommand(stream, "stream a camera or video file to a running server"),
        "verify-token": Subcommand(token, "verify a signed verdict token offline"),
        "calibrate": Subcommand(calibrate, "measure a site's threshold and gates on its own clips"),
        **_training_commands(),
        "magnify": Subcommand(cli_magnify, "magnify a clip and write the before/after XT-slice picture"),
        **_bench_commands(),
    }  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="liveness",
        description="Face liveness detection: train, export, evaluate and serve a CNN-LSTM "
        "that looks at motion over time.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in subcommands().items():
        # --help shows the module docstring's first paragraph; the rest is for readers
        description = (module.__doc__ or help_text).strip().split("\n\n")[0]
        p = sub.add_parser(name, help=help_text, description=description)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
