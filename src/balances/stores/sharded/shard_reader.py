"""Reading the sharded layout's blobs: each shard's current blob and its series
blobs, cached and re-checked cheaply (docs/storage.md, "Reads")."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from balances.errors import BlobNotFoundError
from balances.stores.cache import TtlLruCache
from balances.stores.sharded.documents import (
    DailyRollup,
    MonthSeries,
    ShardCurrent,
    decode_current,
    decode_daily,
    decode_month,
)
from balances.stores.sharded.manifest import ManifestDocument
from balances.stores.sharded.parts import ShardedParts, newer

SeriesDoc = MonthSeries | DailyRollup
#: A series blob as cached: the document (None when absent) and the segment it is
#: known to hold up to.
Cached = tuple[SeriesDoc | None, str | None]


@dataclass(slots=True)
class ShardBase:
    doc: ShardCurrent
    etag: str | None
    checked_at: float
    #: The manifest's folded_through when this blob was (re)validated: every segment up
    #: to it that concerns this shard is in the blob (compaction writes shards first).
    manifest_seen: str | None

    @property
    def folded(self) -> str | None:
        return newer(self.doc.folded_through, self.manifest_seen)


class ShardReader:
    """The shard blobs of one layout as this process last read them."""

    def __init__(
        self,
        parts: ShardedParts,
        clock: Callable[[], float],
        on_revalidated: Callable[[int, str | None], None],
    ) -> None:
        self._parts = parts
        self._clock = clock
        #: Called with (shard, folded) after a shard blob was read again.
        self._on_revalidated = on_revalidated
        self._bases: dict[int, ShardBase] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._fetches: dict[str, asyncio.Task[Cached]] = {}
        self._docs: TtlLruCache[str, Cached] = TtlLruCache(
            ttl=parts.settings.recheck_seconds,
            max_entries=100_000,
            max_bytes=parts.settings.blob_cache_bytes,
            size_of=lambda entry: _doc_size(entry[0]),
            clock=clock,
            name="series-blobs",
        )

    def clear(self) -> None:
        self._bases.clear()
        self._docs.clear()

    def invalidate(self) -> None:
        for base in self._bases.values():
            base.checked_at = float("-inf")
        self._docs.clear()

    async def base(self, shard: int) -> ShardBase:
        lock = self._locks.setdefault(shard, asyncio.Lock())
        async with lock:
            base = self._bases.get(shard)
            recheck = self._parts.settings.recheck_seconds
            if base is not None and self._clock() - base.checked_at < recheck:
                return base
            manifest = await self._parts.manifest.current()
            if base is not None and base.manifest_seen == manifest.folded_through:
                # Shard blobs change only in compaction, which then advances the
                # manifest: while it has not moved, the shard needs no HEAD (one per
                # shard per recheck was most of this layout's bill).
                base.checked_at = self._clock()
                return base
            base = await self._revalidate(shard, base, manifest)
            self._bases[shard] = base
            self._on_revalidated(shard, base.folded)
            return base

    async def _revalidate(
        self, shard: int, base: ShardBase | None, manifest: ManifestDocument
    ) -> ShardBase:
        key = self._parts.current_key(shard)
        blobs = self._parts.blobs
        if base is not None and base.etag is not None:
            try:
                info = await blobs.head(key)
            except BlobNotFoundError:
                info = None
            if info is not None and info.etag == base.etag:
                return ShardBase(base.doc, base.etag, self._clock(), manifest.folded_through)
        try:
            blob = await blobs.get(key)
        except BlobNotFoundError:
            return ShardBase(ShardCurrent(None), None, self._clock(), manifest.folded_through)
        doc = decode_current(blob.data, key)
        return ShardBase(doc, blob.etag, self._clock(), manifest.folded_through)

    async def month(self, month: str, shard: int, folded: str | None) -> MonthSeries | None:
        found = await self._doc(self._parts.month_key(month, shard), folded, decode_month)
        return found if isinstance(found, MonthSeries) else None

    async def daily(self, shard: int, folded: str | None) -> DailyRollup | None:
        found = await self._doc(self._parts.daily_key(shard), folded, decode_daily)
        return found if isinstance(found, DailyRollup) else None

    async def _doc(
        self, key: str, folded: str | None, decode: Callable[[bytes, str], SeriesDoc]
    ) -> SeriesDoc | None:
        """A decoded series blob (None: there is none) that holds every segment up to
        the shard's ``folded``; a copy cached before that would miss records the tail
        has already dropped. Compaction writes series blobs before the shard's current
        blob, so a blob missing when the shard said ``folded`` has nothing up to it."""
        for _ in range(2):  # a shared fetch that began too early is followed by our own
            cached = self._docs.get(key)
            if cached is not None and newer(cached[1], folded) == cached[1]:
                return cached[0]
            fetch = self._fetches.get(key)
            if fetch is None:
                fetch = asyncio.create_task(self._fetch(key, folded, decode))
                self._fetches[key] = fetch
                fetch.add_done_callback(lambda _: self._fetches.pop(key, None))
            found, holds = await asyncio.shield(fetch)
            if newer(holds, folded) == holds:
                return found
        return (await self._fetch(key, folded, decode))[0]

    async def _fetch(
        self, key: str, folded: str | None, decode: Callable[[bytes, str], SeriesDoc]
    ) -> Cached:
        """One GET (concurrent readers of one blob share it), cached."""
        try:
            blob = await self._parts.blobs.get(key)
        except BlobNotFoundError:
            entry: Cached = (None, folded)
        else:
            doc = decode(blob.data, key)
            entry = (doc, newer(doc.folded_through, folded))
        self._docs.put(key, entry)
        return entry


def _doc_size(doc: SeriesDoc | None) -> int:
    if doc is None:
        return 100
    if isinstance(doc, MonthSeries):
        return 200 + sum(120 + 100 * len(points) for _, points in doc.series.values())
    return 200 + sum(160 + 80 * len(s.days) for s in doc.series.values())
