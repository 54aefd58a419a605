"""Micro-batching of encoder calls across concurrent streams and uploads.

Callers ``await batcher.encode(x)`` with face crops ``x`` float32 [N, 3, S, S] and get
their features [N, F] back, rows in order. One loop on the event loop gathers queued
crops into batches of at most ``max_batch`` rows and runs the encoder on one dedicated
worker thread, so the event loop never blocks and the encoder never runs twice at once.

When to dispatch: as soon as ``max_batch`` rows are queued, or every possible caller
(``callers()``: the open streams and uploads, each with at most one request in flight)
has a request queued, or ``max_wait_ms`` after the oldest queued request arrived (a
lone stream frame never waits for callers that do not exist). Requests
that queued up while the encoder was busy are already past their wait, so under load
batches go back to back; the rest of a request split across batches never waits. A request larger than ``max_batch`` (an upload's chunk of
crops) is split across batches, and each batch shares its rows fairly between the
waiting requests, so a stream frame never waits behind a whole upload.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


class FrameEncoder(Protocol):
    """What the batcher runs: face crops [N, 3, S, S] -> features [N, F]."""

    def encode(self, frames: np.ndarray) -> np.ndarray: ...


class BatcherClosed(RuntimeError):
    """The batcher was stopped (server shutting down) before the request was served."""


@dataclass
class _Request:
    x: np.ndarray  # [N, 3, S, S]
    future: asyncio.Future
    arrived: float  # loop time
    taken: int = 0  # rows already put into a batch
    parts: list[np.ndarray] = field(default_factory=list)  # features of finished rows, in order

    @property
    def remaining(self) -> int:
        return len(self.x) - self.taken


def fair_shares(remaining: list[int], slots: int) -> list[int]:
    """Split ``slots`` rows between requests with ``remaining`` rows each, round-robin in
    arrival order: a request gets at most its remaining rows, small requests are served
    whole, and no request gets more than another while the other still wants rows."""
    shares = [0] * len(remaining)
    while slots > 0:
        wanting = [i for i, r in enumerate(remaining) if r > shares[i]]
        if not wanting:
            break
        each = max(1, slots // len(wanting))
        for i in wanting:
            k = min(each, remaining[i] - shares[i], slots)
            shares[i] += k
            slots -= k
            if slots == 0:
                break
    return shares


class MicroBatcher:
    def __init__(
        self,
        encode: Callable[[np.ndarray], np.ndarray],
        *,
        max_batch: int = 16,
        max_wait_ms: float = 2.0,
        on_batch: Callable[[int], None] | None = None,
        callers: Callable[[], int] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        self._encode = encode
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self._on_batch = on_batch
        self._callers = callers  # how many sessions could submit; None = unknown
        self._pending: list[_Request] = []
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        if self._task is not None:
            return
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="encoder")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for req in self._pending:
            if not req.future.done():
                req.future.set_exception(BatcherClosed("the encoder queue was shut down"))
        self._pending.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    @property
    def queued_rows(self) -> int:
        return sum(r.remaining for r in self._pending)

    async def encode(self, x: np.ndarray) -> np.ndarray:
        """Face crops [N, 3, S, S] -> features [N, F], batched with other callers' crops."""
        if self._task is None or self._wakeup is None:
            raise BatcherClosed("the encoder queue is not running")
        if x.ndim != 4 or len(x) == 0:
            raise ValueError(f"expected crops [N>0, 3, S, S], got shape {x.shape}")
        loop = asyncio.get_running_loop()
        req = _Request(x, loop.create_future(), loop.time())
        self._pending.append(req)
        self._wakeup.set()
        return await req.future

    # -- the loop ---------------------------------------------------------------------------
    async def _run(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            self._pending = [r for r in self._pending if not r.future.done()]
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            deadline = self._pending[0].arrived + self.max_wait
            if any(r.taken for r in self._pending):
                deadline = loop.time()  # a request split across batches never waits between them
            while (
                self.queued_rows < self.max_batch
                and loop.time() < deadline
                and not self._everyone_queued()
            ):
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), deadline - loop.time())
                except TimeoutError:
                    break
            await self._dispatch(loop)

    def _everyone_queued(self) -> bool:
        """Every session that could submit already has a request queued: waiting for more
        would only add latency."""
        if self._callers is None:
            return False
        pending = sum(1 for r in self._pending if not r.future.done())
        return pending >= self._callers()

    async def _dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        live = [r for r in self._pending if not r.future.done()]
        shares = fair_shares([r.remaining for r in live], self.max_batch)
        plan = [(r, r.taken, r.taken + k) for r, k in zip(live, shares, strict=True) if k > 0]
        if not plan:
            return
        for r, _, stop in plan:
            r.taken = stop
        slices = [r.x[a:b] for r, a, b in plan]
        x = np.concatenate(slices) if len(slices) > 1 else slices[0]  # [B, 3, S, S]
        try:
            features = await loop.run_in_executor(self._executor, self._encode, x)
            if len(features) != len(x):
                raise RuntimeError(f"encoder returned {len(features)} rows for {len(x)} crops")
        except Exception as exc:  # the encoder failed: every request in the batch fails
            for r, _, _ in plan:
                if not r.future.done():
                    r.future.set_exception(exc)
            return
        if self._on_batch is not None:
            self._on_batch(len(x))
        offset = 0
        for r, a, b in plan:
            r.parts.append(features[offset : offset + (b - a)])
            offset += b - a
            if r.remaining == 0 and not r.future.done():
                r.future.set_result(np.concatenate(r.parts) if len(r.parts) > 1 else r.parts[0])
