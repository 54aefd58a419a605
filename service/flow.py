"""Flow control of a stream: a one-slot mailbox between its receiver and its processor.

Real-time behaviour with bounded memory: the receiver never waits for the processor.
Each new frame goes into the one slot; a frame still waiting there is replaced (newest
kept) and counted as dropped. Frames over the stream's rate are dropped on arrival
(service/stream.py, with a ``TokenBucket`` of service/security/ratelimit.py).
"""

from __future__ import annotations

import asyncio
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

    async def get(self) -> QueuedFrame | None:
        while True:
            if self._item is not None:
                item, self._item = self._item, None
                return item
            if self._closed:
                return None
            self._changed.clear()
            await self._changed.wait()
