"""Graceful shutdown: on SIGTERM, open streams are told and closed (1001) before the
server stops, and in-flight requests finish.

uvicorn closes WebSockets with 1012 as soon as it shuts down. ``liveness serve`` runs
a ``uvicorn.Server`` whose first SIGTERM/SIGINT calls :meth:`Drain.begin` instead: new
streams are refused, every open stream gets ``{"type": "error", "code":
"shutting_down"}`` and a close 1001 (going away), and once no stream is left (or after
``grace`` seconds) uvicorn's own graceful shutdown runs: it stops listening and lets
in-flight HTTP requests finish (up to its ``timeout_graceful_shutdown``). A second
signal skips the wait.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from service.errors import ServiceError

WS_GOING_AWAY = 1001


class ShuttingDown(ServiceError):
    status, ws_close, code = 503, WS_GOING_AWAY, "shutting_down"


class Drain:
    """The app's shutdown state, set from a signal handler, awaited by streams."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self.event: asyncio.Event | None = None
        self._requested = False  # set in the signal handler itself: a second signal sees it

    def bind(self) -> None:
        """Attach to the running event loop (called at start-up, in the lifespan)."""
        self._loop = asyncio.get_running_loop()
        self.event = asyncio.Event()

    @property
    def draining(self) -> bool:
        return self.event is not None and self.event.is_set()

    async def wait(self) -> None:
        if self.event is None:
            await asyncio.Event().wait()  # never bound: never drains
        else:
            await self.event.wait()

    def begin(
        self, open_streams: Callable[[], int], then: Callable[[], None], grace: float
    ) -> bool:
        """Start draining (safe from a signal handler); ``then`` runs on the loop once
        ``open_streams()`` is 0 or ``grace`` seconds passed. False when already draining
        or not bound (the caller then shuts down at once)."""
        if self._requested or self._loop is None or self._loop.is_closed():
            return False
        self._requested = True
        self._loop.call_soon_threadsafe(self._start, open_streams, then, grace)
        return True

    def _start(
        self, open_streams: Callable[[], int], then: Callable[[], None], grace: float
    ) -> None:
        assert self.event is not None
        self.event.set()
        asyncio.ensure_future(self._wait_then(open_streams, then, grace))

    async def _wait_then(
        self, open_streams: Callable[[], int], then: Callable[[], None], grace: float
    ) -> None:
        deadline = time.monotonic() + grace
        while open_streams() > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        then()
