"""The ``liveness`` command: one entry point, subcommands registered by each package.

Each subcommand lives in a module that defines ``add_arguments(parser)`` and
``run(args) -> int``. Those modules import their heavy dependencies (torch, FastAPI)
inside ``run`` only, so ``liveness --help`` and the serving image (no torch) stay light.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

# name -> (module, one-line help). Order is the order shown in --help.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("service.cli.serve", "run the HTTP/WebSocket liveness server"),
    "check": ("service.cli.client", "send a clip to a running server and print its verdict"),
    "stream": ("service.cli.stream", "stream a camera or video file to a running server"),
    "verify-token": ("service.cli.token", "verify a signed verdict token offline"),
    "synth": ("training.synth.cli", "synthesise labelled print/replay attacks from genuine clips"),
    "train": ("training.train.cli", "train the CNN-LSTM (joint loss) on a data set"),
    "export": (
        "training.export.cli",
        "export a training run to a model directory (ONNX + manifest)",
    ),
    "eval": (
        "training.evaluate.cli",
        "evaluate a model directory on a data set (HTER, ACER, AUC, ...)",
    ),
    "magnify": ("model.cli_magnify", "magnify a clip and write the before/after XT-slice picture"),
    "bench": ("bench.cli", "run the benchmarks and print their tables"),
}


def _available() -> dict[str, tuple[str, str]]:
    """Subcommands whose module is importable in this installation."""
    found = {}
    for name, (module, help_text) in SUBCOMMANDS.items():
        if importlib.util.find_spec(module.split(".", 1)[0]) is None:
            continue
        try:
            spec = importlib.util.find_spec(module)
        except ModuleNotFoundError:
            spec = None
        if spec is not None:
            found[name] = (module, help_text)
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="liveness",
        description="Face liveness detection: train, export, evaluate and serve a CNN-LSTM "
        "that looks at motion over time.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in _available().items():
        mod = importlib.import_module(module)
        p = sub.add_parser(name, help=help_text, description=(mod.__doc__ or help_text).strip())
        mod.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    mod = importlib.import_module(args._module)
    return int(mod.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
