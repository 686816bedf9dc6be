"""The TTL + LRU cache with single-flight loading, on a fake clock (no real sleeping)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from balances.stores.cache import CacheStats, TtlLruCache


class FakeClock:
    """A monotonic clock that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_cache(
    clock: FakeClock, *, ttl: float = 10.0, max_entries: int = 100, max_bytes: int | None = None
) -> TtlLruCache[str, str]:
    size_of = len if max_bytes is not None else None
    return TtlLruCache(
        ttl=ttl, max_entries=max_entries, max_bytes=max_bytes, size_of=size_of, clock=clock
    )


def held_loader(gate: asyncio.Event, value: str, calls: list[str]) -> Callable[[], Awaitable[str]]:
    """A loader that records its call and stays in flight until ``gate`` is set."""

    async def load() -> str:
        calls.append(value)
        await gate.wait()
        return value

    return load


async def settle() -> None:
    """Let every ready task run a few steps."""
    for _ in range(5):
        await asyncio.sleep(0)


# --- get / put / peek --------------------------------------------------------


def test_counts_hits_and_misses() -> None:
    cache = make_cache(FakeClock())
    assert cache.get("a") is None
    cache.put("a", "1")
    assert cache.get("a") == "1"
    assert cache.get("a") == "1"
    stats = cache.stats()
    assert (stats.hits, stats.misses) == (2, 1)
    assert stats.hit_rate == pytest.approx(2 / 3)
    assert "a" in cache
    assert "b" not in cache
    assert len(cache) == 1


def test_hit_rate_is_zero_before_any_lookup() -> None:
    assert make_cache(FakeClock()).stats().hit_rate == 0.0


def test_an_entry_expires_exactly_at_its_ttl() -> None:
    clock = FakeClock()
    cache = make_cache(clock, ttl=10.0)
    cache.put("a", "1")
    clock.now = 9.999
    assert cache.get("a") == "1"
    clock.now = 10.0
    assert "a" not in cache
    assert len(cache) == 0
    assert cache.get("a") is None
    stats = cache.stats()
    assert (stats.expirations, stats.entries, stats.misses) == (1, 0, 1)


def test_a_per_entry_ttl_overrides_the_default() -> None:
    clock = FakeClock()
    cache = make_cache(clock, ttl=10.0)
    cache.put("short", "s", ttl=2.0)
    cache.put("long", "l", ttl=50.0)
    cache.put("default", "d")
    clock.now = 2.0
    assert cache.get("short") is None
    assert cache.get("default") == "d"
    clock.now = 20.0
    assert cache.get("default") is None
    assert cache.get("long") == "l"


def test_peek_returns_expired_values_with_their_age_and_counts_nothing() -> None:
    clock = FakeClock()
    cache = make_cache(clock, ttl=5.0)
    cache.put("a", "1")
    clock.now = 7.5
    assert cache.peek("a") == ("1", 7.5)
    assert cache.peek("missing") is None
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.expirations) == (0, 0, 0)


def test_get_drops_an_expired_entry() -> None:
    clock = FakeClock()
    cache = make_cache(clock, ttl=5.0)
    cache.put("a", "1")
    clock.now = 5.0
    assert cache.get("a") is None
    assert cache.peek("a") is None


def test_invalidate_and_replace() -> None:
    cache = make_cache(FakeClock())
    cache.put("a", "1")
    cache.put("a", "2")
    assert cache.get("a") == "2"
    cache.invalidate("a")
    cache.invalidate("never-there")
    assert cache.get("a") is None


def test_clear_drops_entries_but_keeps_stats() -> None:
    cache = make_cache(FakeClock(), max_bytes=100)
    cache.put("a", "1")
    cache.put("b", "22")
    assert cache.get("a") == "1"
    cache.clear()
    assert cache.get("a") is None
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.entries, stats.bytes) == (1, 1, 0, 0)


# --- bounds ----------------------------------------------------------------


def test_evicts_the_least_recently_used_and_a_get_refreshes_recency() -> None:
    cache = make_cache(FakeClock(), max_entries=2)
    cache.put("a", "1")
    cache.put("b", "2")
    assert cache.get("a") == "1"  # now b is the least recently used
    cache.put("c", "3")
    assert cache.get("b") is None
    assert cache.get("a") == "1"
    assert cache.get("c") == "3"
    assert cache.stats().evictions == 1
    assert cache.stats().entries == 2


def test_peek_does_not_refresh_recency() -> None:
    cache = make_cache(FakeClock(), max_entries=2)
    cache.put("a", "1")
    cache.put("b", "2")
    assert cache.peek("a") is not None
    cache.put("c", "3")
    assert cache.peek("a") is None


def test_expired_entries_make_room_before_live_ones() -> None:
    clock = FakeClock()
    cache = make_cache(clock, max_entries=2)
    cache.put("old-but-live", "1", ttl=100.0)
    cache.put("new-but-expired", "2", ttl=1.0)
    clock.now = 5.0
    cache.put("c", "3")
    assert cache.get("old-but-live") == "1"
    stats = cache.stats()
    assert (stats.expirations, stats.evictions) == (1, 0)


def test_evicts_by_bytes() -> None:
    cache = make_cache(FakeClock(), max_bytes=10)
    cache.put("a", "aaaa")
    cache.put("b", "bbbb")
    assert cache.stats().bytes == 8
    cache.put("c", "cccc")
    assert cache.get("a") is None
    assert cache.get("b") == "bbbb"
    stats = cache.stats()
    assert (stats.bytes, stats.evictions, stats.max_bytes) == (8, 1, 10)


def test_bytes_are_zero_without_size_of() -> None:
    cache = make_cache(FakeClock())
    cache.put("a", "aaaa")
    assert cache.stats().bytes == 0
    assert cache.stats().max_bytes is None


def test_an_oversized_value_is_refused_without_evicting_others() -> None:
    cache = make_cache(FakeClock(), max_bytes=10)
    cache.put("a", "aaaa")
    cache.put("b", "bbbb")
    cache.put("huge", "x" * 11)
    assert cache.get("huge") is None
    assert cache.get("a") == "aaaa"
    assert cache.get("b") == "bbbb"
    stats = cache.stats()
    assert (stats.rejections, stats.evictions, stats.entries) == (1, 0, 2)


def test_an_oversized_replacement_drops_the_old_value() -> None:
    cache = make_cache(FakeClock(), max_bytes=10)
    cache.put("a", "aaaa")
    cache.put("a", "x" * 11)
    assert cache.get("a") is None  # the old value is no longer the latest one
    assert cache.stats().rejections == 1


def test_a_value_of_exactly_max_bytes_fits() -> None:
    cache = make_cache(FakeClock(), max_bytes=10)
    cache.put("a", "aaaa")
    cache.put("b", "x" * 10)
    assert cache.get("b") == "x" * 10
    assert cache.get("a") is None


def test_a_negative_size_is_refused() -> None:
    cache: TtlLruCache[str, str] = TtlLruCache(ttl=1.0, max_entries=2, size_of=lambda _: -1)
    with pytest.raises(ValueError, match="size_of"):
        cache.put("a", "1")


def test_many_rewrites_keep_the_expiry_index_small() -> None:
    clock = FakeClock()
    cache = make_cache(clock, max_entries=3)
    for i in range(1000):
        cache.put(f"k{i % 3}", str(i))
    assert len(cache._expiry) <= 2 * 3 + 33
    clock.now = 11.0
    cache.put("new", "n")  # one expired entry makes room; the others stay for peek
    stats = cache.stats()
    assert (stats.expirations, stats.evictions, stats.entries) == (1, 0, 3)


# --- get_or_load -----------------------------------------------------------


async def test_get_or_load_loads_once_then_hits() -> None:
    clock = FakeClock()
    cache = make_cache(clock)
    calls: list[str] = []

    async def load() -> str:
        calls.append("x")
        clock.now += 3.0
        return "v"

    assert await cache.get_or_load("a", load) == "v"
    assert await cache.get_or_load("a", load) == "v"
    assert calls == ["x"]
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.loads, stats.load_failures) == (1, 1, 1, 0)
    assert stats.load_seconds_total == 3.0


async def test_get_or_load_honours_a_per_entry_ttl() -> None:
    clock = FakeClock()
    cache = make_cache(clock, ttl=100.0)

    async def load() -> str:
        return "v"

    await cache.get_or_load("a", load, ttl=1.0)
    clock.now = 1.0
    assert cache.get("a") is None
    with pytest.raises(ValueError, match="ttl"):
        await cache.get_or_load("a", load, ttl=0)


async def test_concurrent_loads_of_one_key_share_one_call() -> None:
    cache = make_cache(FakeClock())
    gate = asyncio.Event()
    calls: list[str] = []
    waiters = [
        asyncio.create_task(cache.get_or_load("a", held_loader(gate, "v", calls)))
        for _ in range(10)
    ]
    await settle()
    assert calls == ["v"]
    gate.set()
    assert await asyncio.gather(*waiters) == ["v"] * 10
    stats = cache.stats()
    assert (stats.loads, stats.misses, stats.hits) == (1, 10, 0)
    assert cache.get("a") == "v"


async def test_a_failed_load_reaches_every_waiter_and_is_not_cached() -> None:
    cache = make_cache(FakeClock())
    gate = asyncio.Event()
    failure = RuntimeError("chain down")
    calls = 0

    async def failing() -> str:
        nonlocal calls
        calls += 1
        await gate.wait()
        raise failure

    waiters = [asyncio.create_task(cache.get_or_load("a", failing)) for _ in range(5)]
    await settle()
    gate.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(result is failure for result in results)
    assert calls == 1
    assert "a" not in cache
    assert cache.stats().load_failures == 1

    async def working() -> str:
        return "v"

    assert await cache.get_or_load("a", working) == "v"
    assert cache.stats().loads == 2


async def test_a_failed_reload_leaves_the_stale_value_for_peek() -> None:
    clock = FakeClock()
    cache = make_cache(clock, ttl=5.0)
    cache.put("a", "old")
    clock.now = 6.0

    async def failing() -> str:
        raise RuntimeError("chain down")

    with pytest.raises(RuntimeError, match="chain down"):
        await cache.get_or_load("a", failing)
    assert cache.peek("a") == ("old", 6.0)


async def test_cancelling_one_waiter_does_not_cancel_the_load() -> None:
    cache = make_cache(FakeClock())
    gate = asyncio.Event()
    calls: list[str] = []
    first = asyncio.create_task(cache.get_or_load("a", held_loader(gate, "v", calls)))
    second = asyncio.create_task(cache.get_or_load("a", held_loader(gate, "v", calls)))
    await settle()
    first.cancel()
    await settle()
    assert first.cancelled()
    gate.set()
    assert await second == "v"
    assert calls == ["v"]
    assert cache.get("a") == "v"


async def test_a_cancelled_load_cancels_its_waiters_and_is_not_cached() -> None:
    cache = make_cache(FakeClock())
    gate = asyncio.Event()

    async def self_cancelling() -> str:
        await gate.wait()
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.sleep(0)
        return "never"

    waiters = [asyncio.create_task(cache.get_or_load("a", self_cancelling)) for _ in range(3)]
    await settle()
    gate.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(result, asyncio.CancelledError) for result in results)
    assert "a" not in cache

    async def working() -> str:
        return "v"

    assert await cache.get_or_load("a", working) == "v"


async def test_different_keys_load_concurrently() -> None:
    cache = make_cache(FakeClock())
    gate_a, gate_b = asyncio.Event(), asyncio.Event()
    calls: list[str] = []
    a = asyncio.create_task(cache.get_or_load("a", held_loader(gate_a, "A", calls)))
    b = asyncio.create_task(cache.get_or_load("b", held_loader(gate_b, "B", calls)))
    await settle()
    assert sorted(calls) == ["A", "B"]  # both in flight at once
    gate_b.set()
    assert await b == "B"
    assert not a.done()
    gate_a.set()
    assert await a == "A"


async def test_no_task_is_left_pending_after_loads_finish() -> None:
    cache = make_cache(FakeClock())
    gate = asyncio.Event()
    calls: list[str] = []
    waiters = [
        asyncio.create_task(cache.get_or_load(key, held_loader(gate, key, calls)))
        for key in ("a", "b", "a")
    ]
    await settle()
    gate.set()
    await asyncio.gather(*waiters)
    await settle()
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert cache._inflight == {}
    assert cache._tasks == set()


async def test_invalidate_during_a_load_answers_waiters_but_caches_nothing() -> None:
    cache = make_cache(FakeClock())
    gate = asyncio.Event()
    calls: list[str] = []
    waiter = asyncio.create_task(cache.get_or_load("a", held_loader(gate, "read-before", calls)))
    await settle()
    cache.invalidate("a")
    gate.set()
    assert await waiter == "read-before"
    assert "a" not in cache


# --- stats and validation ----------------------------------------------------


def test_stats_as_dict_has_every_counter() -> None:
    stats = make_cache(FakeClock(), max_entries=7).stats()
    assert isinstance(stats, CacheStats)
    assert set(stats.as_dict()) == {
        "hits",
        "misses",
        "loads",
        "load_failures",
        "load_seconds_total",
        "evictions",
        "expirations",
        "rejections",
        "entries",
        "bytes",
        "max_entries",
        "max_bytes",
        "hit_rate",
    }
    assert stats.as_dict()["max_entries"] == 7


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ttl": 0, "max_entries": 1}, "ttl"),
        ({"ttl": -1, "max_entries": 1}, "ttl"),
        ({"ttl": float("nan"), "max_entries": 1}, "ttl"),
        ({"ttl": 1, "max_entries": 0}, "max_entries"),
        ({"ttl": 1, "max_entries": 1, "max_bytes": 0, "size_of": len}, "max_bytes"),
        ({"ttl": 1, "max_entries": 1, "max_bytes": 10}, "size_of"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TtlLruCache(**kwargs)  # type: ignore[arg-type]


def test_a_bad_per_entry_ttl_is_refused() -> None:
    cache = make_cache(FakeClock())
    with pytest.raises(ValueError, match="ttl"):
        cache.put("a", "1", ttl=0)


# --- property ----------------------------------------------------------------

KEYS = st.sampled_from(["a", "b", "c", "d", "e"])
OPERATIONS = st.one_of(
    st.tuples(
        st.just("put"),
        KEYS,
        st.integers(0, 14),
        st.one_of(st.none(), st.floats(0.5, 20.0)),
    ),
    st.tuples(st.just("get"), KEYS),
    st.tuples(st.just("advance"), st.floats(0.0, 10.0)),
)


@settings(max_examples=300)
@given(
    operations=st.lists(OPERATIONS, max_size=60),
    max_entries=st.integers(1, 4),
    max_bytes=st.integers(1, 20),
)
def test_bounds_and_freshness_hold_for_any_sequence(
    operations: list[tuple[object, ...]], max_entries: int, max_bytes: int
) -> None:
    clock = FakeClock()
    default_ttl = 5.0
    cache: TtlLruCache[str, tuple[int, int]] = TtlLruCache(
        ttl=default_ttl,
        max_entries=max_entries,
        max_bytes=max_bytes,
        size_of=lambda value: value[1],
        clock=clock,
    )
    last_put: dict[str, tuple[tuple[int, int], float, float]] = {}  # value, at, ttl
    for serial, operation in enumerate(operations):
        match operation:
            case ("put", str(key), int(size), ttl):
                value = (serial, size)
                cache.put(key, value, ttl=ttl if isinstance(ttl, float) else None)
                entry_ttl = ttl if isinstance(ttl, float) else default_ttl
                last_put[key] = (value, clock.now, entry_ttl)
            case ("get", str(key)):
                got = cache.get(key)
                if got is not None:
                    value, at, entry_ttl = last_put[key]
                    assert got == value
                    assert clock.now - at < entry_ttl
            case ("advance", float(seconds)):
                clock.now += seconds
        stats = cache.stats()
        assert stats.entries <= max_entries
        assert stats.bytes <= max_bytes
        assert len(cache) <= stats.entries
