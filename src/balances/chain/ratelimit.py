"""A client-side rate limiter: requests per minute, smooth, fair, testable.

The limiter is a GCRA token bucket: every request reserves the next free slot
(``60 / requests_per_minute`` seconds apart, with an optional burst), then sleeps
until its slot. Reserving before sleeping makes concurrent callers queue in call
order without a lock, and keeps the pace exact however many tasks wait.

A small ``headroom`` (the client uses 2 %) keeps the pace just under the limit: a
server counting a sliding window rejects request 901 of a minute even when only
network jitter made it early.

``defer`` pushes every future slot past a moment: the client calls it when the API
answers 429 with ``retry-after``, so the whole client slows down, not just the one
request that was refused.

The clock and sleep are injected (``time.monotonic`` and ``asyncio.sleep`` by
default) so tests can drive time by hand.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from balances.errors import ConfigError

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class RateLimiter:
    """At most ``requests_per_minute`` acquisitions a minute, ``burst`` at once.

    ``requests_per_minute=None`` means no limit (``defer`` still works).
    """

    def __init__(
        self,
        requests_per_minute: float | None,
        *,
        burst: int = 1,
        headroom: float = 0.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if requests_per_minute is not None and not requests_per_minute > 0:
            raise ConfigError(f"requests_per_minute must be > 0 or None, got {requests_per_minute}")
        if burst < 1:
            raise ConfigError(f"burst must be >= 1, got {burst}")
        if not 0 <= headroom < 1:
            raise ConfigError(f"headroom must be in [0, 1), got {headroom}")
        self.requests_per_minute = requests_per_minute
        self.burst = burst
        nominal = 0.0 if requests_per_minute is None else 60.0 / requests_per_minute
        self._nominal = nominal
        # Pacing exactly at a server's sliding-window limit trips it as soon as one
        # early request arrives late; ``headroom`` paces that much below the limit.
        self._interval = nominal / (1 - headroom)
        # A burst of b lets a request start up to (b - 1) intervals before its slot.
        self._tolerance = self._interval * (burst - 1)
        self._clock = clock
        self._sleep = sleep
        self._next_slot = clock()  # the theoretical arrival time of the next request
        self._paused_until = float("-inf")
        self.acquired = 0
        self.waited = 0.0

    @property
    def interval(self) -> float:
        """Seconds between requests at the steady pace."""
        return self._interval

    def reserve(self) -> float:
        """Take the next slot; return how many seconds to wait before using it."""
        now = self._clock()
        slot = max(self._next_slot, now)
        start = max(slot - self._tolerance, self._paused_until)
        if start > slot:  # a pause moved this request: later slots move with it
            slot = start
        self._next_slot = slot + self._interval
        self.acquired += 1
        return max(0.0, start - now)

    async def acquire(self) -> None:
        """Wait for the next slot."""
        delay = self.reserve()
        if delay > 0:
            self.waited += delay
            await self._sleep(delay)

    def defer(self, seconds: float) -> None:
        """Start no request earlier than ``seconds`` from now (a 429's retry-after)."""
        if seconds > 0:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def minimum_seconds(self, requests: int) -> float:
        """The least time ``requests`` acquisitions can take at the limit itself (the
        server's bound, without this limiter's headroom)."""
        return max(0, requests - self.burst) * self._nominal
