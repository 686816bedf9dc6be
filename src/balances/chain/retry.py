"""Bounded retries: exponential backoff with full jitter, and ``retry-after``.

Full jitter (a uniform delay between 0 and the exponential cap) spreads the retries
of many concurrent callers instead of having them hit the API again in lockstep.
A server's ``retry-after`` is a floor: we never retry sooner than it asks.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a failed request is retried.

    ``attempts`` counts every try (1 means no retry). Delays grow as
    ``base_delay * 2**retry`` up to ``max_delay``, each drawn uniformly from
    ``[0, cap]``. A ``retry-after`` above ``max_retry_after`` is not waited for: the
    request fails at once with the server's hint, for the caller to schedule.
    """

    attempts: int = 4
    base_delay: float = 0.2
    max_delay: float = 5.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {self.attempts}")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("retry delays must be >= 0")

    def backoff(self, retry: int, rng: Callable[[], float] = random.random) -> float:
        """The jittered delay before retry number ``retry`` (0 for the first retry)."""
        cap = min(self.max_delay, self.base_delay * 2.0 ** min(retry, 32))
        return cap * rng()

    def delay(
        self, retry: int, retry_after: float | None, rng: Callable[[], float] = random.random
    ) -> float:
        """Backoff, but never less than the server's ``retry-after``."""
        jittered = self.backoff(retry, rng)
        return jittered if retry_after is None else max(retry_after, jittered)


NO_RETRY = RetryPolicy(attempts=1)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``retry-after`` header: delta-seconds or an HTTP date.

    Unreadable values give None (fall back to backoff) rather than an error: the
    header is a hint, and a bad hint must not turn a retryable answer into a crash.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        return _seconds_until_date(text, now)
    if seconds != seconds or seconds < 0 or seconds == float("inf"):  # NaN, negative, inf
        return None
    return seconds


def _seconds_until_date(text: str, now: datetime | None) -> float | None:
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    reference = now or datetime.now(UTC)
    return max(0.0, (moment - reference).total_seconds())
