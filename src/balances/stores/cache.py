"""An in-process cache for answers that are costly to get again: bounded, timed, shared.

The balance service caches current balances (5 minutes by default), token metadata
and history answers. A miss costs rate-limited API requests or billed blob reads, so:

- **Bounds.** An entry is fresh while ``clock() - stored_at < ttl`` (per-entry TTLs
  allowed). At most ``max_entries`` entries and, with ``size_of``, ``max_bytes``;
  room is made from expired entries first, then the least recently used. A value
  too big on its own is refused rather than emptying the cache for nothing.
- **Single flight.** Concurrent :meth:`TtlLruCache.get_or_load` calls for one key
  share one load, run in its own task so cancelling one waiter spares the others.
  A failure is never cached: every waiter sees it and the next call loads again.
- **Stale on demand.** An expired entry stays until ``get`` reads it, it is replaced,
  or room is needed; ``peek`` returns it with its age so a caller whose reload
  failed can serve it marked stale (``get_or_load`` keeps it while reloading).

The clock is injected for tests. For one asyncio event loop; not thread-safe.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import asdict, dataclass
from typing import Generic, TypeVar

from balances.errors import ConfigError

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class CacheStats:
    """A cache's counters; ``entries``/``bytes`` count what it holds, expired or not."""

    hits: int
    misses: int
    loads: int
    load_failures: int
    load_seconds_total: float
    evictions: int
    expirations: int
    rejections: int
    entries: int
    bytes: int
    max_entries: int
    max_bytes: int | None
    hit_rate: float

    def as_dict(self) -> dict[str, int | float | None]:
        """The counters as a plain dict (for JSON and metrics)."""
        return asdict(self)


@dataclass(slots=True)
class _Counters:
    hits: int = 0
    misses: int = 0
    loads: int = 0
    load_failures: int = 0
    load_seconds_total: float = 0.0
    evictions: int = 0
    expirations: int = 0
    rejections: int = 0


@dataclass(slots=True)
class _Entry(Generic[V]):
    value: V
    stored_at: float
    ttl: float
    size: int
    seq: int  # unique per put: tells a live expiry-heap item from a stale one

    def fresh(self, now: float) -> bool:
        return now - self.stored_at < self.ttl


def _positive_ttl(ttl: float) -> float:
    if not ttl > 0:  # also refuses NaN
        raise ConfigError(f"ttl must be > 0 seconds, got {ttl}")
    return ttl


class TtlLruCache(Generic[K, V]):
    """A TTL + LRU cache with single-flight loads; ``max_bytes`` is measured by ``size_of``."""

    def __init__(
        self,
        *,
        ttl: float,
        max_entries: int,
        max_bytes: int | None = None,
        size_of: Callable[[V], int] | None = None,
        clock: Clock = time.monotonic,
        name: str = "cache",
    ) -> None:
        _positive_ttl(ttl)
        if max_entries < 1:
            raise ConfigError(f"max_entries must be >= 1, got {max_entries}")
        if max_bytes is not None and max_bytes < 1:
            raise ConfigError(f"max_bytes must be >= 1 or None, got {max_bytes}")
        if max_bytes is not None and size_of is None:
            raise ConfigError("max_bytes needs size_of, the function that measures a value")
        self.name = name
        self.ttl = ttl
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._size_of = size_of
        self._clock = clock
        self._entries: OrderedDict[K, _Entry[V]] = OrderedDict()  # least recent first
        self._expiry: list[tuple[float, int, K]] = []  # (expires_at, seq, key), lazily pruned
        self._inflight: dict[K, asyncio.Task[V]] = {}
        self._tasks: set[asyncio.Task[V]] = set()  # strong references until each load ends
        self._seq = 0
        self._bytes = 0
        self._counts = _Counters()

    def get(self, key: K) -> V | None:
        """The fresh value under ``key``, or None; an expired entry is dropped."""
        entry = self._lookup(key, drop_expired=True)
        return None if entry is None else entry.value

    def peek(self, key: K) -> tuple[V, float] | None:
        """The value under ``key`` and its age, even if expired (no stats, no recency)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        return entry.value, self._clock() - entry.stored_at

    def __contains__(self, key: K) -> bool:
        entry = self._entries.get(key)
        return entry is not None and entry.fresh(self._clock())

    def __len__(self) -> int:
        now = self._clock()
        return sum(1 for entry in self._entries.values() if entry.fresh(now))

    def _lookup(self, key: K, *, drop_expired: bool) -> _Entry[V] | None:
        entry = self._entries.get(key)
        if entry is not None and entry.fresh(self._clock()):
            self._entries.move_to_end(key)
            self._counts.hits += 1
            return entry
        if entry is not None and drop_expired:
            self._remove(key)
            self._counts.expirations += 1
        self._counts.misses += 1
        return None

    def put(self, key: K, value: V, *, ttl: float | None = None) -> None:
        """Store ``value`` as most recent; one over ``max_bytes`` is refused (a rejection).

        A refused value still drops the old one under ``key``: that is no longer the latest.
        """
        entry_ttl = self.ttl if ttl is None else _positive_ttl(ttl)
        size = self._measure(value)
        self._remove(key)
        if self.max_bytes is not None and size > self.max_bytes:
            self._counts.rejections += 1
            return
        self._make_room(size)
        now = self._clock()
        self._seq += 1
        self._entries[key] = _Entry(value, now, entry_ttl, size, self._seq)
        self._bytes += size
        heapq.heappush(self._expiry, (now + entry_ttl, self._seq, key))
        if len(self._expiry) > 2 * len(self._entries) + 32:
            self._rebuild_expiry()

    def invalidate(self, key: K) -> None:
        """Forget ``key``; a load in flight for it still answers its waiters but is not cached."""
        self._remove(key)
        self._inflight.pop(key, None)

    def clear(self) -> None:
        """Forget every entry (and detach loads in flight); the counters are kept."""
        self._entries.clear()
        self._expiry.clear()
        self._inflight.clear()
        self._bytes = 0

    def _measure(self, value: V) -> int:
        if self._size_of is None:
            return 0
        size = self._size_of(value)
        if size < 0:
            raise ValueError(f"size_of returned {size} for a value of {self.name}; must be >= 0")
        return size

    def _remove(self, key: K) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry.size

    def _make_room(self, size: int) -> None:
        limit = self.max_bytes
        while self._entries and (
            len(self._entries) >= self.max_entries or (limit and self._bytes + size > limit)
        ):
            if not self._drop_one_expired():
                _, entry = self._entries.popitem(last=False)
                self._bytes -= entry.size
                self._counts.evictions += 1

    def _drop_one_expired(self) -> bool:
        """Drop the entry that expired first, if any has; False when none is expired."""
        now = self._clock()
        while self._expiry:
            _, seq, key = self._expiry[0]
            entry = self._entries.get(key)
            if entry is not None and entry.seq == seq and entry.fresh(now):
                return False
            heapq.heappop(self._expiry)
            if entry is not None and entry.seq == seq:
                self._remove(key)
                self._counts.expirations += 1
                return True
        return False

    def _rebuild_expiry(self) -> None:
        self._expiry = [(e.stored_at + e.ttl, e.seq, k) for k, e in self._entries.items()]
        heapq.heapify(self._expiry)

    async def get_or_load(
        self, key: K, load: Callable[[], Awaitable[V]], *, ttl: float | None = None
    ) -> V:
        """The fresh value under ``key``, or the result of ``load()``, then cached.

        Callers arriving while a load for ``key`` is in flight share it (and its ``ttl``).
        """
        if ttl is not None:
            _positive_ttl(ttl)
        entry = self._lookup(key, drop_expired=False)
        if entry is not None:
            return entry.value
        task = self._inflight.get(key)
        if task is None or task.done():
            task = self._start_load(key, load, ttl)
        return await asyncio.shield(task)

    def _start_load(
        self, key: K, load: Callable[[], Awaitable[V]], ttl: float | None
    ) -> asyncio.Task[V]:
        task = asyncio.create_task(self._run_load(key, load, ttl), name=f"{self.name}-load")
        self._inflight[key] = task
        self._tasks.add(task)
        self._counts.loads += 1
        task.add_done_callback(lambda done: self._finish_load(key, done))
        return task

    async def _run_load(self, key: K, load: Callable[[], Awaitable[V]], ttl: float | None) -> V:
        started = self._clock()
        try:
            value = await load()
        except BaseException:
            self._counts.load_failures += 1
            raise
        finally:
            self._counts.load_seconds_total += self._clock() - started
        if self._inflight.get(key) is asyncio.current_task():  # not invalidated meanwhile
            self.put(key, value, ttl=ttl)
        return value

    def _finish_load(self, key: K, task: asyncio.Task[V]) -> None:
        self._tasks.discard(task)
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved: waiters that were cancelled leave no warning

    def stats(self) -> CacheStats:
        """The counters now."""
        counts = self._counts
        looked_up = counts.hits + counts.misses
        return CacheStats(
            **asdict(counts),
            entries=len(self._entries),
            bytes=self._bytes,
            max_entries=self.max_entries,
            max_bytes=self.max_bytes,
            hit_rate=counts.hits / looked_up if looked_up else 0.0,
        )
