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
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from balances.blobs import CREATE, IfMatch, WriteMode
from balances.domain import BalancePoint
from balances.domain.current import TokenKindName, apply_changes
from balances.domain.retractions import apply_retractions
from balances.errors import BlobNotFoundError, PreconditionFailedError, WriteConflictError
from balances.stores.encoding import CONTENT_TYPE
from balances.stores.layout import MaintenanceReport
from balances.stores.sharded.documents import (
    DailyRollup,
    DayClose,
    MonthSeries,
    Opening,
    SeriesKey,
    ShardCurrent,
    day_of,
    day_start,
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
from balances.stores.sharded.journal import IngestMark, Record, Segment, segment_time
from balances.stores.sharded.parts import ShardedParts
from balances.stores.sharded.read import months_between

Doc = TypeVar("Doc", ShardCurrent, MonthSeries, DailyRollup)
Folded = list[tuple[str, Record]]  # (segment id, record)
ATTEMPTS = 8
READ_CONCURRENCY = 16
#: How far back compaction looks for the month before the first one it writes.
RETENTION_WALK_MONTHS = 13
#: Months before the retention boundary whose blobs each pass deletes (deletes are free).
RETENTION_SWEEP_MONTHS = 6


@dataclass(slots=True)
class _Batch:
    """The records of one shard being folded, in journal order, as point events."""

    records: Folded
    #: (segment id, series, kind, point, live): a change point, or a void (live False).
    events: list[tuple[str, SeriesKey, TokenKindName, BalancePoint, bool]]

    @classmethod
    def of(cls, records: Folded) -> _Batch:
        events: list[tuple[str, SeriesKey, TokenKindName, BalancePoint, bool]] = []
        for segment_id, record in records:
            address = record.address
            for change in record.changes:
                events.append(
                    (segment_id, (address, change.key), change.kind, change.point(), True)
                )
            for r in record.retracted:
                events.append((segment_id, (address, r.key), r.kind, r.point, False))
        return cls(records, events)

    def replay(
        self, series: dict[SeriesKey, tuple[TokenKindName, list[BalancePoint]]], after: str | None
    ) -> set[tuple[SeriesKey, int]]:
        """Apply the events newer than ``after`` to ``series`` in order; returns the
        (series, day) pairs a void touched."""
        touched: set[tuple[SeriesKey, int]] = set()
        for segment_id, key, kind, point, live in self.events:
            if after is not None and segment_id <= after:
                continue
            _, points = series.setdefault(key, (kind, []))
            if live:
                points.append(point)
            else:
                points[:] = [p for p in points if not _same_point(p, point)]
                touched.add((key, day_of(point.at)))
        return touched


def _same_point(a: BalancePoint, b: BalancePoint) -> bool:
    return a.at == b.at and a.amount == b.amount and a.block_height == b.block_height


async def compact(store: ShardedParts, now: float) -> MaintenanceReport:
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
        by_shard, mark = await _records_by_shard(store, pending)
        moment = datetime.fromtimestamp(now, UTC)
        keep_from = day_of(moment - timedelta(days=store.settings.retention_days))
        for shard, records in sorted(by_shard.items()):
            written += await _compact_shard(
                store, shard, records, pending[-1], keep_from, month_of(moment)
            )
        await store.manifest.advance(pending[-1], mark)
    deleted = await _sweep_retention(store, now)
    await store.journal.delete([*leftover, *pending])
    return MaintenanceReport(
        segments_folded=len(pending),
        blobs_written=written,
        blobs_deleted=deleted + len(leftover) + len(pending),
    )


async def _records_by_shard(
    store: ShardedParts, ids: Sequence[str]
) -> tuple[dict[int, Folded], IngestMark | None]:
    """Every record by shard, in journal order, and the newest segment's ingest mark."""
    gate = asyncio.Semaphore(READ_CONCURRENCY)

    async def read(segment_id: str) -> Segment | None:
        async with gate:
            try:
                return await store.journal.read(segment_id)
            except BlobNotFoundError:
                return None  # folded and deleted by a compaction that raced this one

    by_shard: dict[int, Folded] = {}
    mark: IngestMark | None = None
    for segment in await asyncio.gather(*(read(i) for i in ids)):
        if segment is None:
            continue
        mark = segment.mark or mark
        for record in segment.records:
            by_shard.setdefault(store.shard(record.address), []).append(
                (segment.segment_id, record)
            )
    return by_shard, mark


async def _compact_shard(
    store: ShardedParts,
    shard: int,
    records: Folded,
    cutoff: str,
    keep_from_day: int,
    now_month: str,
) -> int:
    batch = _Batch.of(records)
    by_month: dict[str, list[int]] = {}
    for index, event in enumerate(batch.events):
        by_month.setdefault(month_of(event[3].at), []).append(index)
    months, written = await _compact_months(store, shard, batch, by_month, cutoff, now_month)

    def fold_day(doc: DailyRollup) -> DailyRollup:
        live: dict[SeriesKey, tuple[TokenKindName, list[BalancePoint]]] = {}
        touched = batch.replay(live, doc.folded_through)
        rolled = fold_daily(doc, live, cutoff)
        rolled = reclose_days(rolled, touched, months)
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
            folded = apply_changes(addresses.get(address), address, record.changes, record.listing)
            addresses[address] = apply_retractions(folded, record.retracted) or folded
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
    store: ShardedParts,
    shard: int,
    batch: _Batch,
    by_month: dict[str, list[int]],
    cutoff: str,
    now_month: str,
) -> tuple[dict[str, MonthSeries], int]:
    """Fold the batch's events into their month blobs, and carry every series'
    closing into the next month's openings, up to the current month (whose blob then
    exists, so a raw chart finds its opening in the month it starts in). Returns the
    month documents as written."""
    if not by_month:
        return {}, 0  # only listings (a first refresh of an address holding no token)
    chain = months_between_keys(min(by_month), max(max(by_month), now_month))
    previous = await _closings_before(store, shard, chain[0])
    max_points = store.settings.max_points_per_month
    written = 0
    final: dict[str, MonthSeries] = {}
    for month in chain:
        seen: list[MonthSeries] = []  # the version the update settled on
        month_batch = _Batch(batch.records, [batch.events[i] for i in by_month.get(month, [])])

        def fold(
            doc: MonthSeries,
            opening: Any = previous,
            seen: Any = seen,
            month_batch: _Batch = month_batch,
        ) -> MonthSeries:
            new = replay_month(doc, month_batch, cutoff, max_points)
            new = with_openings(new, opening)
            seen[:] = [new]
            return new

        key = store.month_key(month, shard)
        written += await _update(store, key, MonthSeries(None), decode_month, encode_month, fold)
        if seen:
            final[month] = seen[-1]
        previous = seen[-1].closings() if seen else previous
    return final, written


def replay_month(doc: MonthSeries, batch: _Batch, cutoff: str, max_points: int) -> MonthSeries:
    """``doc`` with the batch's events newer than what it holds: new points added,
    voided points removed (a void may remove a point folded in an earlier pass)."""
    if not batch.events:
        return doc
    pending = [e for e in batch.events if doc.folded_through is None or e[0] > doc.folded_through]
    if not pending:
        return doc
    if all(live for *_, live in pending):
        chosen: dict[SeriesKey, tuple[TokenKindName, list[BalancePoint]]] = {}
        for _, key, kind, point, _ in pending:
            chosen.setdefault(key, (kind, []))[1].append(point)
        return fold_month(doc, chosen, cutoff, max_points)
    series = {key: (kind, list(points)) for key, (kind, points) in doc.series.items()}
    batch.replay(series, doc.folded_through)
    rebuilt = MonthSeries(doc.folded_through, {}, doc.openings)
    kept = {key: value for key, value in series.items() if value[1]}
    return fold_month(rebuilt, kept, cutoff, max_points)


async def _closings_before(
    store: ShardedParts, shard: int, month: str
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


async def _read_known(store: ShardedParts, key: str) -> bytes:
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


def reclose_days(
    doc: DailyRollup, touched: set[tuple[SeriesKey, int]], months: dict[str, MonthSeries]
) -> DailyRollup:
    """Each (series, day) a void touched closes with the last point left that day in
    its month (none left: the day has no close of its own)."""
    if not touched:
        return doc
    series = dict(doc.series)
    for key, day in touched:
        known = series.get(key)
        month = months.get(month_of(day_start(day)))
        if known is None or month is None:
            continue
        found = month.series.get(key)
        points = [p for p in (found[1] if found else ()) if day_of(p.at) == day]
        days = [close for close in known.days if close.day != day]
        if points:
            last = points[-1]
            days.append(DayClose(day, last.amount, last.at.timestamp()))
        series[key] = replace(known, days=tuple(sorted(days, key=lambda c: c.day)))
    return replace(doc, series=series)


async def _update(
    store: ShardedParts,
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


async def _sweep_retention(store: ShardedParts, now: float) -> int:
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
