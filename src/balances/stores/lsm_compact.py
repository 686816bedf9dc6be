"""Compaction of the sharded layout: fold old journal segments into shard blobs.

For every shard that has records in the segments being folded, in this order:
the month blobs of its change points, its daily rollup, then its current blob;
then the manifest advances and the folded segments are deleted. Each blob is a
conditional read-modify-write that skips records it already holds (by segment
id), so a compaction that crashes, or two that race, leave nothing half-done:
the next one finishes the work. Segments younger than the grace period are left
for the next pass (a writer may still be listing them).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from balances.blobs import CREATE, IfMatch, WriteMode
from balances.domain import BalancePoint
from balances.errors import BlobNotFoundError, PreconditionFailedError, WriteConflictError
from balances.stores.current import TokenKindName, apply_changes
from balances.stores.encoding import CONTENT_TYPE
from balances.stores.history import MaintenanceReport
from balances.stores.journal import Record, segment_time
from balances.stores.lsm_read import months_between
from balances.stores.series_blobs import (
    DailyRollup,
    MonthSeries,
    Opening,
    SeriesKey,
    ShardCurrent,
    day_of,
    decode_current,
    decode_daily,
    decode_month,
    encode_current,
    encode_daily,
    encode_month,
    fold_daily,
    fold_month,
    month_of,
    trim_daily,
    with_openings,
)

if TYPE_CHECKING:
    from balances.stores.lsm import ShardedStore

Doc = TypeVar("Doc", ShardCurrent, MonthSeries, DailyRollup)
Folded = list[tuple[str, Record]]  # (segment id, record)
ATTEMPTS = 8
READ_CONCURRENCY = 16
#: How far back compaction looks for the month before the first one it writes.
RETENTION_WALK_MONTHS = 13
#: Months before the retention boundary whose blobs each pass deletes (deletes are free).
RETENTION_SWEEP_MONTHS = 6


async def compact(store: ShardedStore, now: float) -> MaintenanceReport:
    manifest = await store.manifest.current()
    done = manifest.folded_through
    ids = await store.journal.list_ids()
    leftover = [i for i in ids if done is not None and i <= done]  # a pass that crashed
    pending = [
        i
        for i in ids
        if (done is None or i > done)
        and segment_time(i) <= now - store.settings.compact_grace_seconds
    ]
    written = 0
    if pending:
        by_shard = await _records_by_shard(store, pending)
        moment = datetime.fromtimestamp(now, UTC)
        keep_from = day_of(moment - timedelta(days=store.settings.retention_days))
        for shard, records in sorted(by_shard.items()):
            written += await _compact_shard(
                store, shard, records, pending[-1], keep_from, month_of(moment)
            )
        await store.manifest.advance(pending[-1])
    deleted = await _sweep_retention(store, now)
    await store.journal.delete([*leftover, *pending])
    return MaintenanceReport(
        segments_folded=len(pending),
        blobs_written=written,
        blobs_deleted=deleted + len(leftover) + len(pending),
    )


async def _records_by_shard(store: ShardedStore, ids: Sequence[str]) -> dict[int, Folded]:
    gate = asyncio.Semaphore(READ_CONCURRENCY)

    async def read(segment_id: str) -> Folded:
        async with gate:
            try:
                segment = await store.journal.read(segment_id)
            except BlobNotFoundError:
                return []  # folded and deleted by a compaction that raced this one
        return [(segment_id, record) for record in segment.records]

    by_shard: dict[int, Folded] = {}
    for found in await asyncio.gather(*(read(i) for i in ids)):
        for segment_id, record in found:
            by_shard.setdefault(store.shard(record.address), []).append((segment_id, record))
    return by_shard


async def _compact_shard(
    store: ShardedStore,
    shard: int,
    records: Folded,
    cutoff: str,
    keep_from_day: int,
    now_month: str,
) -> int:
    points: list[tuple[str, SeriesKey, TokenKindName, BalancePoint]] = [
        (segment_id, (record.address, change.key), change.kind, change.point())
        for segment_id, record in records
        for change in record.changes
    ]
    by_month: dict[str, list[tuple[str, SeriesKey, TokenKindName, BalancePoint]]] = {}
    for item in points:
        by_month.setdefault(month_of(item[3].at), []).append(item)
    written = await _compact_months(store, shard, by_month, cutoff, now_month)

    def fold_day(doc: DailyRollup) -> DailyRollup:
        rolled = fold_daily(doc, _newer_than(points, doc.folded_through), cutoff)
        return trim_daily(rolled, keep_from_day)

    written += await _update(
        store, store.daily_key(shard), DailyRollup(None), decode_daily, encode_daily, fold_day
    )

    def fold_current(doc: ShardCurrent) -> ShardCurrent:
        addresses, since = dict(doc.addresses), dict(doc.since)
        for segment_id, record in records:
            if doc.folded_through is not None and segment_id <= doc.folded_through:
                continue
            address = record.address
            addresses[address] = apply_changes(
                addresses.get(address), address, record.changes, record.listing
            )
            times = [change.stamp.at for change in record.changes]
            if times:
                since[address] = min([since.get(address, times[0]), *times])
        return ShardCurrent(cutoff, addresses, since)

    written += await _update(
        store,
        store.current_key(shard),
        ShardCurrent(None),
        decode_current,
        encode_current,
        fold_current,
    )
    return written


async def _compact_months(
    store: ShardedStore,
    shard: int,
    by_month: dict[str, list[tuple[str, SeriesKey, TokenKindName, BalancePoint]]],
    cutoff: str,
    now_month: str,
) -> int:
    """Fold the points into their month blobs, and carry every series' closing into
    the next month's openings, up to the current month (whose blob then exists, so a
    raw chart finds its opening in the month it starts in)."""
    if not by_month:
        return 0  # only listings (a first refresh of an address holding no token)
    chain = months_between_keys(min(by_month), max(max(by_month), now_month))
    previous = await _closings_before(store, shard, chain[0])
    max_points = store.settings.max_points_per_month
    written = 0
    for month in chain:
        seen: list[MonthSeries] = []  # the version the update settled on

        def fold(
            doc: MonthSeries, month: str = month, opening: Any = previous, seen: Any = seen
        ) -> MonthSeries:
            chosen = _newer_than(by_month.get(month, []), doc.folded_through)
            new = fold_month(doc, chosen, cutoff, max_points) if chosen else doc
            new = with_openings(new, opening)
            seen[:] = [new]
            return new

        key = store.month_key(month, shard)
        written += await _update(store, key, MonthSeries(None), decode_month, encode_month, fold)
        previous = seen[-1].closings() if seen else previous
    return written


async def _closings_before(
    store: ShardedStore, shard: int, month: str
) -> dict[SeriesKey, Opening] | None:
    """The closings of the newest month blob before ``month`` (None: there is none
    within retention)."""
    moment = datetime.strptime(month + "-01", "%Y-%m-%d").replace(tzinfo=UTC)
    for _ in range(RETENTION_WALK_MONTHS):
        moment = moment - timedelta(days=1)
        key = store.month_key(month_of(moment), shard)
        try:
            data = await _read_known(store, key)
        except BlobNotFoundError:
            moment = moment.replace(day=1)
            continue
        return decode_month(data, key).closings()
    return None


async def _read_known(store: ShardedStore, key: str) -> bytes:
    """A blob's bytes: this process's written copy if a HEAD shows it is current (a
    cheap operation that moves no bytes), else a download."""
    known = store.written.get(key)
    if known is not None:
        try:
            if (await store.blobs.head(key)).etag == known[0]:
                return known[1]
        except BlobNotFoundError:
            store.written.invalidate(key)
            raise
    return (await store.blobs.get(key)).data


def months_between_keys(first: str, last: str) -> list[str]:
    """``YYYY-MM`` keys from ``first`` to ``last`` inclusive."""
    start = datetime.strptime(first + "-01", "%Y-%m-%d").replace(tzinfo=UTC)
    end = datetime.strptime(last + "-01", "%Y-%m-%d").replace(tzinfo=UTC)
    return months_between(start, end)


def _newer_than(
    points: list[tuple[str, SeriesKey, TokenKindName, BalancePoint]],
    folded: str | None,
) -> dict[SeriesKey, tuple[TokenKindName, list[BalancePoint]]]:
    """The points from segments after ``folded``, by series."""
    chosen: dict[SeriesKey, tuple[TokenKindName, list[BalancePoint]]] = {}
    for segment_id, key, kind, point in points:
        if folded is not None and segment_id <= folded:
            continue
        chosen.setdefault(key, (kind, []))[1].append(point)
    return chosen


async def _update(
    store: ShardedStore,
    key: str,
    empty: Doc,
    decode: Callable[[bytes, str], Doc],
    encode: Callable[[Doc], bytes],
    change: Callable[[Doc], Doc],
) -> int:
    """Conditional read-modify-write of one blob; 1 if it was written, else 0.

    The first attempt starts from the copy this process last wrote, if it still
    holds one (no download); its If-Match fails if anyone wrote the blob since, and
    the retry reads it."""
    for attempt in range(ATTEMPTS):
        mode: WriteMode
        known = store.written.get(key) if attempt == 0 else None
        if known is not None:
            doc, mode = decode(known[1], key), IfMatch(known[0])
        else:
            try:
                blob = await store.blobs.get(key)
            except BlobNotFoundError:
                doc, mode = empty, CREATE
            else:
                doc, mode = decode(blob.data, key), IfMatch(blob.etag)
        new = change(doc)
        if new == doc:
            return 0
        data = encode(new)
        try:
            info = await store.blobs.put(key, data, mode=mode, content_type=CONTENT_TYPE)
        except PreconditionFailedError:
            store.written.invalidate(key)
            if known is None:
                await conflict_pause(attempt)
            continue
        store.written.put(key, (info.etag, data))
        return 1
    raise WriteConflictError(f"{key}: compaction lost {ATTEMPTS} conditional writes in a row")


async def conflict_pause(attempt: int) -> None:
    """A short jittered wait after a lost conditional write, so writers taking turns
    do not starve one another (milliseconds: blob writes are that fast)."""
    await asyncio.sleep(random.random() * 0.002 * 2 ** min(attempt, 6))


async def _sweep_retention(store: ShardedStore, now: float) -> int:
    """Delete month blobs that fell out of retention (known keys: no listing needed)."""
    boundary = datetime.fromtimestamp(now, UTC) - timedelta(days=store.settings.retention_days)
    first_kept = month_of(boundary)
    if store.retention_swept == first_kept:
        return 0
    sweep_from = boundary - timedelta(days=31 * RETENTION_SWEEP_MONTHS)
    expired = [m for m in months_between(sweep_from, boundary) if m < first_kept]
    keys = [store.month_key(m, s) for m in expired for s in range(store.settings.shards)]
    if keys:
        await store.blobs.delete(keys)
        for key in keys:
            store.written.invalidate(key)
    store.retention_swept = first_kept
    return len(keys)
