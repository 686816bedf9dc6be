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
from typing import TYPE_CHECKING, TypeVar

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
)

if TYPE_CHECKING:
    from balances.stores.lsm import ShardedStore

Doc = TypeVar("Doc", ShardCurrent, MonthSeries, DailyRollup)
Folded = list[tuple[str, Record]]  # (segment id, record)
ATTEMPTS = 8
READ_CONCURRENCY = 16
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
        keep_from = day_of(
            datetime.fromtimestamp(now, UTC) - timedelta(days=store.settings.retention_days)
        )
        for shard, records in sorted(by_shard.items()):
            written += await _compact_shard(store, shard, records, pending[-1], keep_from)
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
    store: ShardedStore, shard: int, records: Folded, cutoff: str, keep_from_day: int
) -> int:
    points: list[tuple[str, SeriesKey, TokenKindName, BalancePoint]] = [
        (segment_id, (record.address, change.key), change.kind, change.point())
        for segment_id, record in records
        for change in record.changes
    ]
    written = 0
    months = sorted({month_of(point.at) for _, _, _, point in points})
    max_points = store.settings.max_points_per_month
    for month in months:

        def fold(doc: MonthSeries, month: str = month) -> MonthSeries:
            chosen = _newer_than(points, doc.folded_through, month)
            return fold_month(doc, chosen, cutoff, max_points)

        written += await _update(
            store,
            store.month_key(month, shard),
            MonthSeries(None),
            decode_month,
            encode_month,
            fold,
        )

    def fold_day(doc: DailyRollup) -> DailyRollup:
        rolled = fold_daily(doc, _newer_than(points, doc.folded_through, None), cutoff)
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


def _newer_than(
    points: list[tuple[str, SeriesKey, TokenKindName, BalancePoint]],
    folded: str | None,
    month: str | None,
) -> dict[SeriesKey, tuple[TokenKindName, list[BalancePoint]]]:
    """The points (of ``month``, or all) from segments after ``folded``, by series."""
    chosen: dict[SeriesKey, tuple[TokenKindName, list[BalancePoint]]] = {}
    for segment_id, key, kind, point in points:
        if folded is not None and segment_id <= folded:
            continue
        if month is not None and month_of(point.at) != month:
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
    """Conditional read-modify-write of one blob; 1 if it was written, else 0."""
    for attempt in range(ATTEMPTS):
        mode: WriteMode
        try:
            blob = await store.blobs.get(key)
        except BlobNotFoundError:
            doc, mode = empty, CREATE
        else:
            doc, mode = decode(blob.data, key), IfMatch(blob.etag)
        new = change(doc)
        if new == doc:
            return 0
        try:
            await store.blobs.put(key, encode(new), mode=mode, content_type=CONTENT_TYPE)
        except PreconditionFailedError:
            await conflict_pause(attempt)
            continue
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
    store.retention_swept = first_kept
    return len(keys)
