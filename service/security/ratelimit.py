"""Per-API-key limits (a request rate, a cap on concurrent streams) and the throttle of
failed credentials per client address.

One bucket per configured key name, so memory is bounded by the key list, never by
what clients send. A request takes one token; a bucket holds ``burst`` tokens and
refills at ``per_minute / 60`` tokens a second. Opening a stream counts as a request.
Open mode (no keys) has no per-key limits; the server-wide limits still hold.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from service.errors import WS_POLICY, WS_TRY_AGAIN_LATER, ServiceError


class RateLimited(ServiceError):
    """429 with Retry-After; on a stream, close 1013 (try again later)."""

    status, ws_close, code = 429, WS_TRY_AGAIN_LATER, "rate_limited"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, math.ceil(self.retry_after)))}


class TooManyStreams(RateLimited):
    code = "too_many_streams"


class TooManyFailures(RateLimited):
    """429 (close 1008 on a stream): an address that presented too many bad credentials."""

    ws_close, code = WS_POLICY, "too_many_failures"


class TokenBucket:
    """``capacity`` tokens, refilled at ``rate`` tokens per second on ``clock`` (seconds).

    The one bucket of the service: the per-key request rate, the failed-credential
    throttle, a stream's frame rate, WebSocket control frames and native log lines."""

    def __init__(
        self, rate: float, capacity: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self._clock = clock
        self._last = clock()

    @classmethod
    def per_second(
        cls, rate: float, burst_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> TokenBucket:
        """``rate`` a second, in bursts of ``burst_seconds`` worth (at least one)."""
        return cls(rate, max(1.0, rate * burst_seconds), clock)

    def wait(self) -> float:
        """The seconds until a token is available (0.0: one is), taking none."""
        now = self._clock()
        self.tokens = min(self.capacity, self.tokens + (now - self._last) * self.rate)
        self._last = now
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate

    def take(self) -> float:
        """Take a token: 0.0 when granted, else the seconds until one is available."""
        wait = self.wait()
        if wait == 0.0:
            self.tokens -= 1.0
        return wait

    def allow(self) -> bool:
        """Take a token if one is available."""
        return self.take() == 0.0


class KeyLimits:
    """The request buckets and open-stream counts of every key name."""

    def __init__(
        self,
        per_minute: float,
        burst: int,
        max_streams: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = per_minute / 60.0  # tokens per second; 0: unlimited
        self.burst = burst
        self.max_streams = max_streams
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._streams: dict[str, int] = {}
        self._lock = threading.Lock()  # routes run on the event loop; cheap insurance

    def charge(self, name: str) -> None:
        """Count one request of ``name``; raises RateLimited when its bucket is empty."""
        if self.rate <= 0:
            return
        with self._lock:
            bucket = self._buckets.get(name)
            if bucket is None:
                bucket = self._buckets[name] = TokenBucket(self.rate, self.burst, self._clock)
            wait = bucket.take()
        if wait > 0:
            raise RateLimited(
                f"the API key {name!r} is over its limit of {self.rate * 60:g} requests per "
                f"minute (bursts of {self.burst}); retry in {wait:.1f} s",
                retry_after=wait,
            )

    @contextmanager
    def stream_slot(self, name: str) -> Iterator[None]:
        """Hold one of ``name``'s ``max_streams`` stream slots while the stream runs."""
        with self._lock:
            if self._streams.get(name, 0) >= self.max_streams:
                raise TooManyStreams(
                    f"the API key {name!r} has {self.max_streams} streams open, its limit; "
                    "close one first",
                    retry_after=1.0,
                )
            self._streams[name] = self._streams.get(name, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._streams[name] -= 1


class FailureThrottle:
    """Failed credentials per client address: a bucket of ``max_failures`` that refills over
    ``window_seconds``; an address whose bucket is empty is refused before its credential is
    looked at. An IPv6 address counts as its /64 (one host usually has a whole /64 to pick
    from). At most ``max_addresses`` addresses are remembered (the least recently failing
    forgotten first), so memory is bounded whatever addresses clients come from."""

    def __init__(
        self,
        max_failures: int,
        window_seconds: float,
        max_addresses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window_seconds
        self.rate = max_failures / window_seconds if max_failures else 0.0
        self.max_addresses = max_addresses
        self._clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, address: str | None) -> None:
        """Raises TooManyFailures while ``address`` has no failure left."""
        if not self.max_failures or address is None:
            return
        address = client_key(address)
        with self._lock:
            bucket = self._buckets.get(address)
            if bucket is None:
                return
            wait = bucket.wait()
        if wait > 0:
            raise TooManyFailures(
                f"too many failed credentials from this address ({self.max_failures} per "
                f"{self.window:g} s); retry in {wait:.1f} s",
                retry_after=wait,
            )

    def failed(self, address: str | None) -> None:
        """Count one failed credential of ``address``."""
        if not self.max_failures or address is None:
            return
        address = client_key(address)
        with self._lock:
            bucket = self._buckets.pop(address, None)
            if bucket is None:
                bucket = TokenBucket(self.rate, self.max_failures, self._clock)
            bucket.take()
            self._buckets[address] = bucket  # most recent last
            while len(self._buckets) > self.max_addresses:
                self._buckets.popitem(last=False)


def client_key(address: str) -> str:
    """``address`` as the throttle counts it: an IPv4 address as it is, IPv6 as its /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:  # not an address (a test client's name): itself
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
