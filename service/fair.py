"""A thread pool that shares its threads fairly between uploads.

Each upload has a ``Share``: the seconds of pool time its tasks have used so far. A free
thread always takes the waiting task of the share that has used the least, so a short
upload that arrives while costly ones are decoding runs almost as fast as on an idle
server, and the costly ones go on whenever nobody with less use is waiting. Tasks are
short (a decoding turn of about 50 ms), so no thread is held for long either way.

An upload queues its next turn a moment after its last one ends (its coroutine has to
wake up first). So that this moment does not hand the thread to a costlier upload for a
whole turn, a thread that finished a task waits up to ``LINGER_SECONDS`` for a task of a
share that has used no more than the finished one's before it takes a costlier one.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

LINGER_SECONDS = 0.01


@dataclass
class Share:
    """One upload's account: seconds of pool time used so far."""

    used: float = 0.0


class FairPool:
    def __init__(self, workers: int, name: str, linger: float = LINGER_SECONDS) -> None:
        self._linger = linger
        self._queue: list[tuple[float, int, Share, Future, Callable, tuple]] = []
        self._order = itertools.count()
        self._ready = threading.Condition()
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
            for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    def submit(self, share: Share, fn: Callable[..., Any], *args: Any) -> Future:
        future: Future = Future()
        with self._ready:
            if self._stopping:
                raise RuntimeError("the pool is shut down")
            heapq.heappush(self._queue, (share.used, next(self._order), share, future, fn, args))
            self._ready.notify()
        return future

    def _take(self, last: Share | None) -> tuple | None:
        """The next task: the least-used share's, lingering for ``last``'s next one while
        only costlier shares wait; None once the pool stops."""
        with self._ready:
            linger_until = time.monotonic() + self._linger
            while True:
                if self._queue and (last is None or self._queue[0][0] <= last.used):
                    return heapq.heappop(self._queue)
                if self._stopping:
                    return heapq.heappop(self._queue) if self._queue else None
                if last is None:
                    self._ready.wait()
                    continue
                remaining = linger_until - time.monotonic()
                if remaining <= 0:
                    last = None
                else:
                    self._ready.wait(remaining)

    def _work(self) -> None:
        last: Share | None = None
        while True:
            task = self._take(last)
            if task is None:
                return
            _, _, share, future, fn, args = task
            last = share
            if not future.set_running_or_notify_cancel():
                continue
            start = time.perf_counter()
            try:
                result = fn(*args)
            except BaseException as exc:
                # counted before the caller hears back and queues its next task
                share.used += time.perf_counter() - start
                future.set_exception(exc)
            else:
                share.used += time.perf_counter() - start
                future.set_result(result)

    def shutdown(self) -> None:
        """Cancel what waits, let running tasks end, and stop the threads."""
        with self._ready:
            self._stopping = True
            for *_, future, _fn, _args in self._queue:
                future.cancel()
            self._queue.clear()
            self._ready.notify_all()
        for t in self._threads:
            t.join()
