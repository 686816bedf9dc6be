"""Reading history slices from the sharded layout's blobs and the journal tail.

A raw slice of ``[start, end]`` needs only the month blobs the window spans: the
first one's openings are the amounts in force at its start. A daily slice needs the
rollup (each day's last change) and the end's month (the end day's own changes).
Journal records not yet compacted are added from the tail. Everything is
normalized together, so a point in both a blob and the tail counts once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta

from balances.domain import BalancePoint
from balances.domain.current import TokenKindName
from balances.domain.retractions import Voided
from balances.domain.series import normalize, value_at
from balances.stores.layout import Resolution, SeriesSlice
from balances.stores.sharded.documents import (
    DailyRollup,
    DailySeries,
    MonthSeries,
    Opening,
    SeriesKey,
    day_of,
    day_start,
    month_of,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: How many months a raw read walks back for a start month that has no blob.
WALK_BACK_MONTHS = 13
TailPoints = Sequence[tuple[str, TokenKindName, BalancePoint]]


def months_between(start: datetime, end: datetime) -> list[str]:
    """Every calendar month (``YYYY-MM``) that ``[start, end]`` touches."""
    months, year, month = [], start.year, start.month
    while (year, month) <= (end.year, end.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


Found = list[tuple[SeriesKey, TokenKindName, Sequence[BalancePoint]]]
MonthLoader = Callable[[str], Awaitable[MonthSeries | None]]


async def read_slices(
    address: str,
    start: datetime,
    end: datetime,
    *,
    keys: Collection[str] | None,
    resolution: Resolution,
    load_daily: Callable[[], Awaitable[DailyRollup | None]],
    load_month: MonthLoader,
    tail: TailPoints,
    since: datetime | None = None,
    voided: Voided | None = None,
) -> dict[str, SeriesSlice]:
    """Raw: the window's month blobs (the first one's openings give the amounts in
    force at its start). Daily: the rollup, and the end's month for the changes of
    the end's own day up to the end (its close may come after the end). Points a
    retraction ``voided`` (not yet compacted away) are left out."""
    if resolution == "raw":
        found = await _raw(load_month, start, end, since)
    else:
        found = await _daily(load_daily, load_month, end, keys)
    gathered: dict[str, tuple[TokenKindName, list[BalancePoint]]] = {}
    for (owner, key), kind, points in found:
        if owner == address and (keys is None or key in keys):
            gathered.setdefault(key, (kind, []))[1].extend(points)
    for key, kind, point in tail:
        if keys is None or key in keys:
            gathered.setdefault(key, (kind, []))[1].append(point)
    if voided:
        for key, (_, points) in gathered.items():
            points[:] = voided.keep(key, points)
    return {key: _slice(kind, points, start, end) for key, (kind, points) in gathered.items()}


async def _raw(
    load_month: MonthLoader, start: datetime, end: datetime, since: datetime | None
) -> Found:
    months = list(await asyncio.gather(*(load_month(m) for m in months_between(start, end))))
    first = months[0]
    openings = first.openings if first is not None else await _walk_back(load_month, start, since)
    found: Found = [
        (series_key, kind, [BalancePoint(datetime.fromtimestamp(at, UTC), amount)])
        for series_key, (kind, amount, at) in openings.items()
    ]
    for doc in months:
        found += [(k, kind, points) for k, (kind, points) in (doc.series.items() if doc else ())]
    return found


async def _daily(
    load_daily: Callable[[], Awaitable[DailyRollup | None]],
    load_month: MonthLoader,
    end: datetime,
    keys: Collection[str] | None,
) -> Found:
    daily, end_month = await asyncio.gather(load_daily(), load_month(month_of(end)))
    last_day = day_start(day_of(end))
    found: Found = [
        (series_key, series.kind, _from_daily(series))
        for series_key, series in (daily.series.items() if daily else ())
        if keys is None or series_key[1] in keys  # convert only what is asked
    ]
    series = end_month.series.items() if end_month else ()
    found += [(k, kind, _from(points, last_day)) for k, (kind, points) in series]
    return found


async def _walk_back(
    load_month: MonthLoader, start: datetime, since: datetime | None
) -> dict[SeriesKey, Opening]:
    """The closings of the newest month blob before ``start``'s month (none exists for
    a month without compaction, such as a quiet shard's): at most back to ``since``,
    the address's first point, and never further than :data:`WALK_BACK_MONTHS`."""
    moment, oldest = _month_start(start), None if since is None else _month_start(since)
    for _ in range(WALK_BACK_MONTHS):
        moment = _month_start(moment - timedelta(days=1))
        if oldest is None or moment < oldest:
            return {}
        doc = await load_month(month_of(moment))
        if doc is not None:
            return doc.closings()
    return {}


def _month_start(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _from(points: Sequence[BalancePoint], moment: datetime) -> list[BalancePoint]:
    return [point for point in points if point.at >= moment]


def _from_daily(series: DailySeries) -> list[BalancePoint]:
    """The rollup's points: its opening, then every day's last change."""
    closes = [BalancePoint(datetime.fromtimestamp(c.at, UTC), c.amount) for c in series.days]
    return ([] if series.opening is None else [BalancePoint(EPOCH, series.opening)]) + closes


def _slice(
    kind: TokenKindName, points: list[BalancePoint], start: datetime, end: datetime
) -> SeriesSlice:
    ordered = normalize(points)
    opening = value_at(ordered, start)
    inside = tuple(point for point in ordered if start < point.at <= end)
    return SeriesSlice(kind, opening, inside)
