"""Reading history slices from the sharded layout's blobs and the journal tail.

A raw slice of ``[start, end]`` needs the daily rollup (the last change before the
start's day: the amount in force then) and the month blobs the window spans; a
daily slice needs only the rollup (each day's last change). Journal records not yet
compacted are added from the tail. Everything is normalized together, so a point
in both a blob and the tail counts once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import UTC, datetime

from balances.domain import BalancePoint
from balances.domain.series import normalize, value_at
from balances.stores.current import TokenKindName
from balances.stores.history import Resolution, SeriesSlice
from balances.stores.series_blobs import (
    DailyRollup,
    DailySeries,
    MonthSeries,
    day_of,
    day_start,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TailPoints = Sequence[tuple[str, TokenKindName, BalancePoint]]


def months_between(start: datetime, end: datetime) -> list[str]:
    """Every calendar month (``YYYY-MM``) that ``[start, end]`` touches."""
    months, year, month = [], start.year, start.month
    while (year, month) <= (end.year, end.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


async def read_slices(
    address: str,
    start: datetime,
    end: datetime,
    *,
    keys: Collection[str] | None,
    resolution: Resolution,
    load_daily: Callable[[], Awaitable[DailyRollup | None]],
    load_month: Callable[[str], Awaitable[MonthSeries | None]],
    tail: TailPoints,
) -> dict[str, SeriesSlice]:
    daily = await load_daily()
    # Raw: every month of the window. Daily: the end's month too, for the changes of the
    # end's own day up to the end (its close may come after the end).
    spanned = months_between(start, end) if resolution == "raw" else months_between(end, end)
    months = list(await asyncio.gather(*(load_month(m) for m in spanned)))
    last_day = day_start(day_of(end))
    gathered: dict[str, tuple[TokenKindName, list[BalancePoint]]] = {}

    def add(key: str, kind: TokenKindName, points: Sequence[BalancePoint]) -> None:
        if keys is None or key in keys:
            gathered.setdefault(key, (kind, []))[1].extend(points)

    for (owner, key), series in daily.series.items() if daily else ():
        if owner == address and (keys is None or key in keys):  # convert only what is asked
            add(key, series.kind, _from_daily(series, start, resolution))
    for doc in months:
        for (owner, key), (kind, points) in doc.series.items() if doc else ():
            if owner == address:
                add(key, kind, points if resolution == "raw" else _from(points, last_day))
    for key, kind, point in tail:
        add(key, kind, [point])
    return {key: _slice(kind, points, start, end) for key, (kind, points) in gathered.items()}


def _from(points: Sequence[BalancePoint], moment: datetime) -> list[BalancePoint]:
    return [point for point in points if point.at >= moment]


def _from_daily(series: DailySeries, start: datetime, resolution: Resolution) -> list[BalancePoint]:
    """The rollup's contribution: every day's last change (daily), or only the last
    change before the start's day (raw: month blobs give the rest)."""
    closes = [BalancePoint(datetime.fromtimestamp(c.at, UTC), c.amount) for c in series.days]
    opening = [] if series.opening is None else [BalancePoint(EPOCH, series.opening)]
    if resolution == "daily":
        return opening + closes
    first_day = day_start(day_of(start))
    before = [point for point in closes if point.at < first_day]
    return before[-1:] if before else opening


def _slice(
    kind: TokenKindName, points: list[BalancePoint], start: datetime, end: datetime
) -> SeriesSlice:
    ordered = normalize(points)
    opening = value_at(ordered, start)
    inside = tuple(point for point in ordered if start < point.at <= end)
    return SeriesSlice(kind, opening, inside)
