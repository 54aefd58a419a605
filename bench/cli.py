"""Run the benchmarks and print their tables (Markdown, ready for docs/benchmarks.md); or,
as ``liveness bench load``, the load and soak run of bench/load.py.

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
LOAD_HELP = "load and soak: N streams and M upload loops against a server, for S seconds"


def _table_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick", action="store_true", help="tiny settings, no waiting: checks that they run"
    )
    parser.add_argument(
        "--max-wait",
        type=float,
        default=60.0,
        help="seconds to wait for an idle machine before each block (default 60)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="keep models and clips made here (default: a temporary folder)",
    )
    parser.add_argument(
        "--report", type=Path, metavar="FILE.md", help="also write the tables to this file"
    )
    parser.add_argument("--out", dest="out_folder", help=argparse.SUPPRESS)  # see run
    parser.add_argument(
        "--cpu", action="store_true", help="gpu benchmark: run it on the CPU (to check it runs)"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.usage = (
        "liveness bench [-h] [--quick] [--max-wait S] [--workdir DIR] [--report FILE.md] "
        "[--cpu] [NAME ...]\n       liveness bench load [LOAD OPTIONS]"
    )
    parser.epilog = "benchmarks:\n" + "\n".join(
        f"  {name:<10} {text}" for name, (_, text) in BENCHMARKS.items()
    )
    parser.epilog += f"\n  {'load':<10} {LOAD_HELP} (options: liveness bench load --help)"
    _table_options(parser)
    # The names are parsed again in run(): table options may follow them, and `load` takes
    # its own options (bench/load.py).
    parser.add_argument(
        "names",
        nargs=argparse.REMAINDER,
        metavar="NAME",
        help="benchmarks to run (default: all but gpu), or load and its options",
    )


def _tables_parser() -> argparse.ArgumentParser:
    tables = argparse.ArgumentParser(prog="liveness bench")
    _table_options(tables)
    tables.add_argument("names", nargs="*")
    return tables


def _tables_args(args: argparse.Namespace) -> argparse.Namespace:
    """``args`` with the table options that followed the benchmark names applied."""
    names = args.names
    del args.names
    return _tables_parser().parse_args(names, namespace=args)


def run(args: argparse.Namespace) -> int:
    from bench.common import BenchContext, machine_description
    from bench.gate import Gate, quick_gate

    if args.names[:1] == ["load"]:
        from bench import load

        defaults = vars(_tables_parser().parse_args([]))
        if any(getattr(args, k) != v for k, v in defaults.items() if k != "names"):
            print("liveness bench: error: the table options go after a benchmark name, not "
                  "before load (liveness bench load --help)", file=sys.stderr)  # fmt: skip
            return 2
        return load.main(args.names[1:])
    args = _tables_args(args)
    if args.out_folder is not None:
        print("liveness bench: error: --out names a folder in liveness commands; the tables "
              "file is --report", file=sys.stderr)  # fmt: skip
        return 2
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
    if args.report:
        args.report.write_text("\n".join(rendered))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="liveness bench", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
