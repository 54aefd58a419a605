"""Flow control of a stream: a one-slot mailbox and a per-stream frame-rate limit.

Real-time behaviour with bounded memory: the receiver never waits for the processor.
Each new frame goes into the one slot; a frame still waiting there is replaced (newest
kept) and counted as dropped. Frames over the stream's rate are dropped on arrival.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class QueuedFrame:
    index: int  # the client's frame index (every frame sent counts, dropped ones too)
    data: bytes  # the JPEG/PNG message
    received: float  # time.perf_counter() at arrival, for the frame latency


class Mailbox:
    """One slot between a receiver task and a processor task on the same event loop."""

    def __init__(self) -> None:
        self._item: QueuedFrame | None = None
        self._closed = False
        self._changed = asyncio.Event()

    def put(self, item: QueuedFrame) -> QueuedFrame | None:
        """Leave ``item`` in the slot; returns the frame it replaced (dropped), if any."""
        if self._closed:
            raise RuntimeError("the mailbox is closed")
        replaced, self._item = self._item, item
        self._changed.set()
        return replaced

    def close(self) -> None:
        """No more frames: ``get`` returns what is left, then None."""
        self._closed = True
        self._changed.set()

    @property
    def pending(self) -> int:
        return 0 if self._item is None else 1

    async def get(self) -> QueuedFrame | None:
        while True:
            if self._item is not None:
                item, self._item = self._item, None
                return item
            if self._closed:
                return None
            self._changed.clear()
            await self._changed.wait()


class RateLimiter:
    """Token bucket: ``rate`` frames per second, bursts of ``burst_seconds`` worth."""

    def __init__(
        self,
        rate: float,
        burst_seconds: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = rate
        self.capacity = max(1.0, rate * burst_seconds)
        self._tokens = self.capacity
        self._clock = clock
        self._last = clock()

    def allow(self) -> bool:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
