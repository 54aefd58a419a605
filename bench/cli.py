"""Run the benchmarks and print their tables (Markdown, ready for docs/benchmarks.md).

Each benchmark waits for an idle machine (other normal-priority processes using under
0.15 core), measures the foreign CPU load while it runs, retries a noisy block, and
prints that load under its table. Figures are ratios against a baseline measured in the
same run, with absolute medians (p10-p90) beside them. --quick runs tiny settings
without waiting: it shows that everything runs and what the tables look like; its
figures mean nothing.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
from pathlib import Path

# name -> (module, what it measures); `liveness bench` with no names runs all but "gpu"
BENCHMARKS: dict[str, tuple[str, str]] = {
    "stages": ("bench.stages", "per-frame stage costs, encoder engines, one stream end to end"),
    "streaming": ("bench.streaming", "per-frame cost against window length: cached vs naive"),
    "batching": ("bench.batching", "server micro-batching: throughput and p95 latency"),
    "magnifier": ("bench.magnifier", "magnifier speed and gain vs a reference FFT EVM"),
    "upload": ("bench.upload", "POST /v1/liveness time to result vs decoding the clip"),
    "gpu": ("bench.gpu", "encoder and service throughput on a CUDA GPU (torch, ORT CUDA)"),
}
DEFAULT_SET = [name for name in BENCHMARKS if name != "gpu"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "benchmarks:\n" + "\n".join(
        f"  {name:<10} {text}" for name, (_, text) in BENCHMARKS.items()
    )
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help="benchmarks to run (default: all but gpu)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny settings, no waiting: checks that they run"
    )
    parser.add_argument(
        "--max-wait",
        type=float,
        default=60.0,
        help="seconds to wait for an idle machine before each measured block (default 60)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="keep exported models and generated clips here (default: a temporary folder)",
    )
    parser.add_argument("--out", type=Path, help="also write the tables (Markdown) to this file")
    parser.add_argument(
        "--cpu", action="store_true", help="gpu benchmark: run it on the CPU (to check it runs)"
    )


def run(args: argparse.Namespace) -> int:
    from bench.common import BenchContext, machine_description
    from bench.gate import Gate, quick_gate

    names = args.names or DEFAULT_SET
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"liveness bench: unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}",
              file=sys.stderr)  # fmt: skip
        return 2
    gate = quick_gate() if args.quick else Gate(max_wait_s=args.max_wait)
    header = [
        f"machine: {machine_description()}",
        f"date: {time.strftime('%Y-%m-%d %H:%M')}; command: liveness bench {' '.join(sys.argv[2:])}".rstrip(),
    ]  # fmt: skip
    print("\n".join(header) + "\n", flush=True)
    rendered = list(header) + [""]
    with tempfile.TemporaryDirectory(prefix="liveness-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        ctx = BenchContext(quick=args.quick, gate=gate, workdir=workdir)
        for name in names:
            module = importlib.import_module(BENCHMARKS[name][0])
            print(f"## {name}: {BENCHMARKS[name][1]}\n", flush=True)
            tables = module.run(ctx, cpu=args.cpu) if name == "gpu" else module.run(ctx)
            for table in tables:
                text = table.render()
                print(text, flush=True)
                rendered.append(text)
    if args.out:
        args.out.write_text("\n".join(rendered))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="liveness bench", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
