"""The idle-machine gate: foreign CPU load measured from /proc, and retried noisy blocks.

The machines this runs on are small and shared, and other processes distort timings
badly (torch eager with OpenMP threads slows 10-100x when another process holds a core).
So each measurement block goes through a ``Gate``: it waits until other processes use
less than ``limit`` cores, measures their CPU use while the block runs, retries a noisy
block, and reports the foreign load it ran under.

Foreign load = (all busy CPU time of the machine - CPU time of this process and the
processes it registered, e.g. a server it started) / wall time, read from /proc (Linux).
Where /proc is missing it is reported as unknown and the gate does not wait.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

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
