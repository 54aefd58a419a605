"""What every benchmark shares: the idle-machine gate, timing summaries and the tables.

The machines this runs on are small and shared, and other processes distort timings
badly (torch eager with OpenMP threads slows 10-100x when another process holds a core).
So each measurement block goes through a ``Gate``: it waits until other processes use
less than ``limit`` cores, measures their CPU use while the block runs, retries a noisy
block, and reports the foreign load it ran under. Inside a block, the variants being
compared are interleaved, and tables report ratios against a baseline measured in the
same block, with absolute medians (p10-p90) for context.

Foreign load = (all busy CPU time of the machine - CPU time of this process and the
processes it registered, e.g. a server it started) / wall time, read from /proc (Linux).
Where /proc is missing it is reported as unknown and the gate does not wait.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np

T = TypeVar("T")
FOREIGN_LIMIT = 0.15  # cores other processes may use while we measure
PROBE_S = 0.5  # length of one idle probe, s
_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _busy_jiffies() -> tuple[int, int] | None:
    """Busy CPU time of the whole machine (all cores), clock ticks: (at normal priority,
    in niced processes' user time); None without /proc."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:9]  # user nice system idle iowait irq softirq steal
    except OSError:
        return None
    v = [int(x) for x in fields]
    return v[0] + v[2] + v[5] + v[6] + v[7], v[1]


def _process_jiffies(pid: int, children: bool = False) -> int:
    """utime + stime of one process (all its threads), clock ticks; 0 once it is gone.

    ``children``: add the time of its children that it has waited for (a server this
    process started and stopped is counted here once it is reaped).
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()  # fields after the command name
    except OSError:
        return 0
    own = int(rest[11]) + int(rest[12])  # utime, stime: fields 14 and 15 of proc(5)
    return own + (int(rest[13]) + int(rest[14]) if children else 0)  # cutime, cstime


class CpuMeter:
    """Foreign CPU use (cores) between ``start`` and ``stop``.

    Niced processes (nice > 0, e.g. a background training run) are counted apart: the
    scheduler gives the benchmark's normal-priority threads the core first (at nice 10
    they get ~10 % of a core they share with us), so they are reported, not gated on.
    """

    def __init__(self) -> None:
        self.pids: set[int] = set()  # live processes started by this one, besides itself
        self.last_niced: float | None = None  # niced cores of the last start..stop

    def track(self, pid: int) -> None:
        """Count ``pid`` (a child process this run started) as ours, not foreign."""
        self.pids.add(pid)

    def untrack(self, pid: int) -> None:
        """Call once ``pid`` has been waited for: its time is then in our children's time."""
        self.pids.discard(pid)

    def _own(self) -> int:
        return _process_jiffies(os.getpid(), children=True) + sum(
            _process_jiffies(p) for p in self.pids
        )

    def start(self) -> None:
        self._t0, self._busy0, self._own0 = time.perf_counter(), _busy_jiffies(), self._own()

    def stop(self) -> float | None:
        """Foreign cores at normal priority since ``start`` (niced ones in ``last_niced``)."""
        busy = _busy_jiffies()
        if busy is None or self._busy0 is None:
            self.last_niced = None
            return None
        wall = max(time.perf_counter() - self._t0, 1e-6)
        foreign = (busy[0] - self._busy0[0]) - (self._own() - self._own0)
        self.last_niced = (busy[1] - self._busy0[1]) / _HZ / wall
        return max(0.0, foreign / _HZ / wall)


METER = CpuMeter()  # one per process: servers register their pid here


@dataclass
class Gated(Generic[T]):
    value: T
    foreign: float | None  # foreign cores (normal priority) during the accepted attempt
    attempts: int
    niced: float | None = None  # cores used by niced processes meanwhile


@dataclass
class Gate:
    """Wait for an idle machine, run a block, retry it while others were busy."""

    limit: float = FOREIGN_LIMIT
    max_wait_s: float = 60.0  # per attempt; after that the block runs anyway (and says so)
    retries: int = 3
    log: Callable[[str], None] = field(default=lambda msg: print(f"  [gate] {msg}", flush=True))

    def wait_for_idle(self) -> float | None:
        """Probe until foreign load < limit or max_wait_s passed; returns the last probe."""
        deadline = time.perf_counter() + self.max_wait_s
        while True:
            METER.start()
            time.sleep(PROBE_S)
            load = METER.stop()
            if load is None or load < self.limit or time.perf_counter() >= deadline:
                return load

    def run(self, label: str, block: Callable[[], T]) -> Gated[T]:
        best: Gated[T] | None = None
        for attempt in range(1, self.retries + 1):
            idle = self.wait_for_idle()
            if idle is not None and idle >= self.limit and self.max_wait_s > 0:
                self.log(f"{label}: machine still busy ({idle:.2f} foreign cores), running anyway")
            METER.start()
            value = block()
            foreign = METER.stop()
            if best is None or (foreign or 0.0) < (best.foreign or 0.0):
                best = Gated(value, foreign, attempt, METER.last_niced)
            if foreign is None or foreign < self.limit:
                break
            if attempt < self.retries:
                self.log(f"{label}: {foreign:.2f} foreign cores during the run, retrying")
        assert best is not None
        best.attempts = attempt
        return best


def quick_gate() -> Gate:
    """No waiting and no retries: for smoke runs, where only the table's shape matters."""
    return Gate(max_wait_s=0.0, retries=1, log=lambda msg: None)


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
