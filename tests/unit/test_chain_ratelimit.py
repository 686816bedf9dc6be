"""The client-side rate limiter and the retry policy, on a fake clock (no real sleeping)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from balances.chain.ratelimit import RateLimiter
from balances.chain.retry import NO_RETRY, RetryPolicy, parse_retry_after


class FakeClock:
    """A monotonic clock that only moves when something sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def limiter(rpm: float | None, clock: FakeClock, burst: int = 1) -> RateLimiter:
    return RateLimiter(rpm, burst=burst, clock=clock, sleep=clock.sleep)


async def test_paces_requests_evenly_at_the_limit() -> None:
    clock = FakeClock()
    gate = limiter(60, clock)  # one a second
    starts = []
    for _ in range(5):
        await gate.acquire()
        starts.append(clock.now)
    assert starts == [0.0, 1.0, 2.0, 3.0, 4.0]


async def test_burst_allows_that_many_at_once_then_paces() -> None:
    clock = FakeClock()
    gate = limiter(60, clock, burst=3)
    starts = []
    for _ in range(5):
        await gate.acquire()
        starts.append(clock.now)
    assert starts == [0.0, 0.0, 0.0, 1.0, 2.0]
    assert gate.minimum_seconds(5) == pytest.approx(2.0)


async def test_idle_time_does_not_bank_more_than_the_burst() -> None:
    clock = FakeClock()
    gate = limiter(60, clock)
    await gate.acquire()
    clock.now = 100.0  # a long quiet stretch
    await gate.acquire()
    await gate.acquire()
    assert clock.now == pytest.approx(101.0)


async def test_concurrent_callers_get_successive_slots() -> None:
    clock = FakeClock()
    gate = limiter(120, clock)  # every 0.5 s
    delays = [gate.reserve() for _ in range(4)]
    assert delays == [0.0, 0.5, 1.0, 1.5]
    await asyncio.gather(*(gate.acquire() for _ in range(2)))
    assert gate.acquired == 6


async def test_defer_pauses_everyone_and_later_slots_follow() -> None:
    clock = FakeClock()
    gate = limiter(60, clock)
    await gate.acquire()  # t=0, next slot t=1
    gate.defer(5.0)
    assert gate.reserve() == pytest.approx(5.0)
    assert gate.reserve() == pytest.approx(6.0)  # paced after the pause, not bunched at 5


async def test_unlimited_never_waits_but_still_defers() -> None:
    clock = FakeClock()
    gate = limiter(None, clock)
    assert [gate.reserve() for _ in range(100)] == [0.0] * 100
    gate.defer(2.0)
    assert gate.reserve() == pytest.approx(2.0)
    infinite = limiter(float("inf"), clock)
    assert infinite.reserve() == 0.0
    assert infinite.interval == 0.0


def test_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError, match="requests_per_minute"):
        RateLimiter(0)
    with pytest.raises(ValueError, match="burst"):
        RateLimiter(60, burst=0)


def test_minimum_seconds_is_the_pace_bound() -> None:
    gate = RateLimiter(900)
    assert gate.minimum_seconds(601) == pytest.approx(40.0)
    assert gate.minimum_seconds(0) == 0


# --- retry policy -------------------------------------------------------------------


def test_backoff_grows_exponentially_up_to_the_cap_with_full_jitter() -> None:
    policy = RetryPolicy(attempts=10, base_delay=0.5, max_delay=3.0)
    top = [policy.backoff(retry, rng=lambda: 1.0) for retry in range(5)]
    assert top == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.backoff(3, rng=lambda: 0.0) == 0.0
    assert policy.backoff(1000, rng=lambda: 1.0) == 3.0  # no overflow on huge retry counts


def test_retry_after_is_a_floor() -> None:
    policy = RetryPolicy(base_delay=0.1, max_delay=1.0)
    assert policy.delay(0, 4.0, rng=lambda: 1.0) == 4.0
    assert policy.delay(5, 0.2, rng=lambda: 1.0) == 1.0
    assert policy.delay(0, None, rng=lambda: 0.5) == pytest.approx(0.05)


def test_policy_validation() -> None:
    assert NO_RETRY.attempts == 1
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError, match="delays"):
        RetryPolicy(base_delay=-1)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("3", 3.0),
        (" 1.5 ", 1.5),
        ("0", 0.0),
        ("-1", None),
        ("nan", None),
        ("inf", None),
        ("soon", None),
        (None, None),
        ("Wed, 01 Jan 2025 00:00:30 GMT", 30.0),
        ("Tue, 31 Dec 2024 23:00:00 GMT", 0.0),  # in the past: retry now
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_retry_after(header, now=now) == expected
