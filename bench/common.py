"""What every benchmark shares: timing summaries, the tables, the run context.

Inside a gated block (bench/gate.py), the variants being compared are interleaved, and
tables report ratios against a baseline measured in the same block, with absolute
medians (p10-p90) for context, and the foreign load each block ran under.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

# METER, CpuMeter and quick_gate are also imported from here by other tools (bench/load.py)
from bench.gate import FOREIGN_LIMIT, METER, CpuMeter, Gate, quick_gate  # noqa: F401

T = TypeVar("T")


# -- timing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    median: float  # ms
    p10: float
    p90: float
    n: int
    mean: float  # ms: what a stage costs per call on average (a periodic detector pass shows here)

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Summary:
        if not len(seconds):
            raise ValueError("no samples to summarise")
        ms = np.asarray(seconds, dtype=np.float64) * 1000.0
        p10, med, p90 = np.percentile(ms, [10, 50, 90])
        return cls(float(med), float(p10), float(p90), len(ms), float(ms.mean()))

    def __str__(self) -> str:
        return f"{fmt(self.median)} ({fmt(self.p10)}–{fmt(self.p90)})"


def fmt(x: float | None, digits: int = 3) -> str:
    """A number with `digits` significant digits, plain notation (no exponent)."""
    if x is None or not np.isfinite(x):
        return "–"
    if x == 0:
        return "0"
    decimals = max(0, digits - 1 - int(np.floor(np.log10(abs(x)))))
    return f"{x:.{decimals}f}"


def ratio(x: float, base: float) -> str:
    return f"{x / base:.2f}×" if base > 0 else "–"


def time_calls(fn: Callable[[], object], repeats: int, warmup: int = 1) -> list[float]:
    """Seconds per call of ``fn`` over ``repeats`` calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def interleaved(
    fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Time several variants round-robin, so a burst of foreign load hits them all alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    out: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            out[name].append(time.perf_counter() - t0)
    return out


# -- tables -------------------------------------------------------------------------------


@dataclass
class Table:
    """One benchmark table: Markdown when printed, rows kept for tests and callers."""

    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    foreign: list[float | None] = field(default_factory=list)  # one per gated block
    niced: list[float | None] = field(default_factory=list)  # niced cores, one per block

    def add(self, *cells: object) -> None:
        if len(cells) != len(self.headers):
            raise ValueError(f"row has {len(cells)} cells, table has {len(self.headers)} columns")
        self.rows.append([str(c) for c in cells])

    def column(self, name: str) -> list[str]:
        i = self.headers.index(name)
        return [r[i] for r in self.rows]

    def foreign_summary(self) -> str:
        known = [f for f in self.foreign if f is not None]
        if not known:
            return (
                "foreign load: unknown (no /proc)" if self.foreign else "foreign load: not measured"
            )
        niced = [n for n in self.niced if n is not None]
        text = (
            f"foreign load during the measured blocks: median {np.median(known):.2f}, "
            f"max {max(known):.2f} cores (gate: < {FOREIGN_LIMIT} cores)"
        )
        if niced and max(niced) >= 0.05:
            text += (
                f"; niced background processes: median {np.median(niced):.2f}, max "
                f"{max(niced):.2f} cores (they yield the cores to the benchmark)"
            )
        return text

    def render(self) -> str:
        """The table as Markdown, with its notes and the foreign load under it."""
        widths = [len(h) for h in self.headers]
        for row in self.rows:
            widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]

        def line(cells: list[str]) -> str:
            return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

        out = [f"### {self.title}", "", line(self.headers)]
        out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        out += [line(r) for r in self.rows]
        out += ["", *(f"- {n}" for n in [*self.notes, self.foreign_summary()])]
        return "\n".join(out) + "\n"


def machine_description() -> str:
    """CPU model, cores, memory and the versions that matter, for the table headers."""
    cpu = platform.processor() or platform.machine()
    try:
        for row in Path("/proc/cpuinfo").read_text().splitlines():
            if row.startswith("model name"):
                cpu = row.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    versions = []
    for name in ("torch", "onnxruntime", "cv2", "numpy"):
        try:
            mod = __import__(name)
            versions.append(f"{name} {mod.__version__}")
        except ImportError:
            continue
    return f"{cpu}, {os.cpu_count()} cores{mem}; Python {platform.python_version()}; " + ", ".join(
        versions
    )


@dataclass
class BenchContext:
    """What a benchmark's ``run(ctx) -> list[Table]`` is given."""

    quick: bool  # tiny settings: shows the tables' shape in seconds, figures meaningless
    gate: Gate
    workdir: Path  # exported models and generated clips go here

    def gated(self, table: Table, label: str, block: Callable[[], T]) -> T:
        """Run ``block`` through the gate and record its foreign load in ``table``."""
        result = self.gate.run(label, block)
        table.foreign.append(result.foreign)
        table.niced.append(result.niced)
        return result.value


@contextmanager
def opencv_threads(n: int) -> Iterator[None]:
    """OpenCV on ``n`` threads inside the block (the server uses 1), restored after."""
    import cv2

    previous = cv2.getNumThreads()
    cv2.setNumThreads(n)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)
