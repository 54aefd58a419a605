"""The uploads' fair pool: real threads, the least-used share first."""

from __future__ import annotations

import threading
import time
from concurrent.futures import CancelledError

import pytest

from service.fair import FairPool, Share


def test_the_share_that_used_least_runs_first_and_use_is_counted():
    pool = FairPool(1, "test")
    try:
        gate = threading.Event()
        hold = pool.submit(Share(), gate.wait, 10)  # the only thread waits on the gate
        order: list[str] = []
        costly, fresh = Share(used=5.0), Share()
        queued = [pool.submit(costly, order.append, "costly") for _ in range(3)]
        queued.append(pool.submit(fresh, order.append, "fresh"))
        gate.set()
        for f in [hold, *queued]:
            f.result(timeout=10)
        assert order == ["fresh", "costly", "costly", "costly"]
        pool.submit(fresh, time.sleep, 0.2).result(timeout=10)
        assert 0.2 <= fresh.used < 1.0
    finally:
        pool.shutdown()


def test_errors_reach_the_caller_and_shutdown_cancels_what_waits():
    pool = FairPool(1, "test")
    with pytest.raises(ZeroDivisionError):
        pool.submit(Share(), lambda: 1 / 0).result(timeout=10)
    gate, started = threading.Event(), threading.Event()

    def hold() -> bool:
        started.set()
        return gate.wait(10)

    running = pool.submit(Share(), hold)
    assert started.wait(10)  # the thread runs it: only ``waiting`` waits in the queue
    waiting = pool.submit(Share(), time.sleep, 0)
    threading.Timer(0.2, gate.set).start()
    pool.shutdown()
    assert running.result(timeout=10) is True
    with pytest.raises(CancelledError):
        waiting.result(timeout=1)
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(Share(), time.sleep, 0)


@pytest.mark.parametrize("linger,first", [(1.0, "fresh"), (0.0, "costly")])
def test_a_thread_lingers_for_the_next_turn_of_the_share_it_just_served(linger, first):
    """A short upload's next turn comes a moment after its last ends; in that moment the
    thread does not go to a costlier share waiting all along (and would, not lingering)."""
    pool = FairPool(1, "test", linger=linger)
    try:
        order: list[str] = []
        fresh, costly = Share(), Share(used=5.0)
        gate = threading.Event()
        done = pool.submit(fresh, gate.wait, 10)
        waiting = pool.submit(costly, order.append, "costly")
        gate.set()
        done.result(timeout=10)
        if linger == 0:
            waiting.result(timeout=10)  # the thread did not wait
        pool.submit(fresh, order.append, "fresh").result(timeout=10)  # its next turn
        waiting.result(timeout=10)
        assert order[0] == first
    finally:
        pool.shutdown()
