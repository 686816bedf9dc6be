"""The documents of the sharded layout: a shard's current balances, its month of
change points, and its daily rollup.

- **current** (one per shard): every address's newest amounts and stamps, and when
  its history begins. A balance read needs only this.
- **month** (one per shard and calendar month): every change point of the month.
  ``max_points_per_month`` bounds each series by merging its oldest points into
  coarser buckets (never the newest).
- **daily** (one per shard): the closing amount of every day with a change, within
  retention, and each series' amount at the rollup's start. A one-year daily chart
  (or portfolio) is this one blob; it also gives the amount in force at any day's
  start for raw charts.

Each carries ``folded_through``: the newest journal segment folded into it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from balances.domain import MAX_AMOUNT, BalancePoint
from balances.domain.current import AddressBalances, Stamp, TokenKindName, TokenState
from balances.domain.series import downsample, normalize
from balances.stores.encoding import corrupt, decode_document, encode_document

SeriesKey = tuple[str, str]  # (address, token key)
Opening = tuple["TokenKindName", int, float]  # (kind, amount, when it was set)
_KINDS = ("stx", "native", "map")


@dataclass(frozen=True, slots=True)
class ShardCurrent:
    folded_through: str | None
    addresses: Mapping[str, AddressBalances] = field(default_factory=dict)
    since: Mapping[str, float] = field(default_factory=dict)  # first point time per address


@dataclass(frozen=True, slots=True)
class MonthSeries:
    """A month's change points, and every series' amount in force at the month's
    start (``openings``): a raw chart needs no other blob for its opening."""

    folded_through: str | None
    series: Mapping[SeriesKey, tuple[TokenKindName, tuple[BalancePoint, ...]]] = field(
        default_factory=dict
    )
    #: (kind, amount, time of the change that set it): a late point older than that
    #: change must not override it.
    openings: Mapping[SeriesKey, Opening] = field(default_factory=dict)

    def closings(self) -> dict[SeriesKey, Opening]:
        """Every series' amount at the month's end: the next month's openings."""
        closing = dict(self.openings)
        for key, (kind, points) in self.series.items():
            if points:
                closing[key] = (kind, points[-1].amount, points[-1].at.timestamp())
        return closing


@dataclass(frozen=True, slots=True)
class DayClose:
    """The amount at a day's end, and the time of the change that set it."""

    day: int  # date.toordinal()
    amount: int
    at: float


@dataclass(frozen=True, slots=True)
class DailySeries:
    kind: TokenKindName
    opening: int | None  # in force at the rollup's start
    days: tuple[DayClose, ...] = ()


@dataclass(frozen=True, slots=True)
class DailyRollup:
    folded_through: str | None
    start_day: int | None = None  # days before it were folded into the openings
    series: Mapping[SeriesKey, DailySeries] = field(default_factory=dict)


# --- encoding ------------------------------------------------------------------


def _amount(text: Any) -> int:
    if not isinstance(text, str) or not (text.isascii() and text.isdigit()):
        raise ValueError(f"amount {text!r}")
    value = int(text)
    if value > MAX_AMOUNT:
        raise ValueError(f"amount {text} exceeds u128")
    return value


def _kind(text: Any) -> TokenKindName:
    if text not in _KINDS:
        raise ValueError(f"token kind {text!r}")
    return cast(TokenKindName, text)


def encode_current(doc: ShardCurrent) -> bytes:
    stamps: dict[Stamp, int] = {}

    def index(stamp: Stamp) -> int:
        return stamps.setdefault(stamp, len(stamps))

    rows = []
    for address, balances in sorted(doc.addresses.items()):
        tokens = [
            [key, str(state.amount), index(state.stamp), state.kind]
            for key, state in sorted(balances.tokens.items())
        ]
        listing = None if balances.listing is None else index(balances.listing)
        rows.append([address, doc.since.get(address), listing, tokens])
    body = {
        "folded_through": doc.folded_through,
        "stamps": [[s.at, s.block_height] for s in stamps],
        "addresses": rows,
    }
    return encode_document("shard-current", 1, body)


def decode_current(data: bytes, where: str) -> ShardCurrent:
    document = decode_document(data, "shard-current", 1, where=where)
    try:
        stamps = [Stamp(float(at), height) for at, height in document["stamps"]]
        addresses: dict[str, AddressBalances] = {}
        since: dict[str, float] = {}
        for address, first, listing, tokens in document["addresses"]:
            states = {
                sys.intern(str(key)): TokenState(_amount(amount), stamps[index], _kind(kind))
                for key, amount, index, kind in tokens
            }
            addresses[address] = AddressBalances(
                address, states, None if listing is None else stamps[listing]
            )
            if first is not None:
                since[address] = float(first)
        return ShardCurrent(document["folded_through"], addresses, since)
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise corrupt(where, f"{type(error).__name__}: {error}") from error


def encode_month(doc: MonthSeries) -> bytes:
    rows = []
    for series_key in sorted({*doc.series, *doc.openings}):
        opening = doc.openings.get(series_key)
        found = doc.series.get(series_key)
        kind, points = found if found is not None else (opening[0], ())  # type: ignore[index]
        rows.append(
            [
                *series_key,
                kind,
                None if opening is None else [str(opening[1]), opening[2]],
                [[p.at.timestamp(), str(p.amount), p.block_height] for p in points],
            ]
        )
    body = {"folded_through": doc.folded_through, "series": rows}
    return encode_document("series-month", 1, body)


def decode_month(data: bytes, where: str) -> MonthSeries:
    document = decode_document(data, "series-month", 1, where=where)
    try:
        series: dict[SeriesKey, tuple[TokenKindName, tuple[BalancePoint, ...]]] = {}
        openings: dict[SeriesKey, Opening] = {}
        for address, key, kind, opening, points in document["series"]:
            series_key, kind_name = (str(address), sys.intern(str(key))), _kind(kind)
            if opening is not None:
                amount, at = opening
                openings[series_key] = (kind_name, _amount(amount), float(at))
            if points:
                series[series_key] = (kind_name, _month_points(points))
        return MonthSeries(document["folded_through"], series, openings)
    except (KeyError, TypeError, ValueError, OverflowError) as error:
        raise corrupt(where, f"{type(error).__name__}: {error}") from error


def _month_points(rows: Any) -> tuple[BalancePoint, ...]:
    return tuple(
        BalancePoint(datetime.fromtimestamp(at, UTC), _amount(amount), height)
        for at, amount, height in rows
    )


def encode_daily(doc: DailyRollup) -> bytes:
    rows = [
        [
            address,
            key,
            s.kind,
            None if s.opening is None else str(s.opening),
            [[d.day, str(d.amount), d.at] for d in s.days],
        ]
        for (address, key), s in sorted(doc.series.items())
    ]
    body = {"folded_through": doc.folded_through, "start_day": doc.start_day, "series": rows}
    return encode_document("series-daily", 1, body)


def decode_daily(data: bytes, where: str) -> DailyRollup:
    document = decode_document(data, "series-daily", 1, where=where)
    try:
        series = {
            (str(address), str(key)): DailySeries(
                _kind(kind),
                None if opening is None else _amount(opening),
                tuple(DayClose(int(day), _amount(amount), float(at)) for day, amount, at in days),
            )
            for address, key, kind, opening, days in document["series"]
        }
        start = document["start_day"]
        return DailyRollup(
            document["folded_through"], None if start is None else int(start), series
        )
    except (KeyError, TypeError, ValueError) as error:
        raise corrupt(where, f"{type(error).__name__}: {error}") from error


# --- folding -------------------------------------------------------------------


def month_of(moment: datetime) -> str:
    return f"{moment.year:04d}-{moment.month:02d}"


def fold_month(
    doc: MonthSeries,
    points: Mapping[SeriesKey, tuple[TokenKindName, list[BalancePoint]]],
    folded_through: str,
    max_points: int,
) -> MonthSeries:
    """``doc`` with ``points`` added, each series normalized and bounded; the openings
    are kept (see :func:`with_openings`)."""
    series = dict(doc.series)
    for key, (kind, new) in points.items():
        known = series.get(key)
        merged = normalize([*(known[1] if known else ()), *new])
        series[key] = (kind, tuple(downsample(merged, max_points)))
    return MonthSeries(folded_through, series, doc.openings)


def with_openings(doc: MonthSeries, previous: Mapping[SeriesKey, Opening] | None) -> MonthSeries:
    """``doc`` opening with the previous month's closings (None: no previous month is
    known: keep what it has)."""
    if previous is None:
        return doc
    return replace(doc, openings={**doc.openings, **previous})


def day_of(moment: datetime) -> int:
    return moment.date().toordinal()


def day_start(day: int) -> datetime:
    return datetime.combine(date.fromordinal(day), datetime.min.time(), UTC)


def fold_daily(
    doc: DailyRollup,
    points: Mapping[SeriesKey, tuple[TokenKindName, list[BalancePoint]]],
    folded_through: str,
) -> DailyRollup:
    """``doc`` with each day's close updated by ``points`` (the latest change wins)."""
    series = dict(doc.series)
    for key, (kind, new) in points.items():
        known = series.get(key) or DailySeries(kind, None)
        days = {close.day: close for close in known.days}
        for point in new:
            day, at = day_of(point.at), point.at.timestamp()
            if doc.start_day is not None and day < doc.start_day:
                continue  # before retention: openings are not rewritten by late points
            current = days.get(day)
            if current is None or current.at <= at:
                days[day] = DayClose(day, point.amount, at)
        series[key] = DailySeries(known.kind, known.opening, tuple(sorted(days.values(), key=_day)))
    return replace(doc, folded_through=folded_through, series=series)


def trim_daily(doc: DailyRollup, keep_from_day: int) -> DailyRollup:
    """Fold days before ``keep_from_day`` into the openings (retention)."""
    if doc.start_day is not None and doc.start_day >= keep_from_day:
        return doc
    series = {}
    for key, s in doc.series.items():
        old = [close for close in s.days if close.day < keep_from_day]
        kept = tuple(close for close in s.days if close.day >= keep_from_day)
        opening = old[-1].amount if old else s.opening
        series[key] = DailySeries(s.kind, opening, kept)
    return replace(doc, start_day=keep_from_day, series=series)


def daily_points(s: DailySeries) -> list[BalancePoint]:
    """A daily series as step points at each day's start (values hold at day ends)."""
    return [BalancePoint(day_start(close.day), close.amount) for close in s.days]


def value_before_day(s: DailySeries, day: int) -> int | None:
    """The amount in force at the start of ``day``."""
    value = s.opening
    for close in s.days:
        if close.day >= day:
            break
        value = close.amount
    return value


def points_by_series(
    changes: Iterable[tuple[SeriesKey, TokenKindName, BalancePoint]],
) -> dict[str, dict[SeriesKey, tuple[TokenKindName, list[BalancePoint]]]]:
    """Change points grouped by month, then series."""
    grouped: dict[str, dict[SeriesKey, tuple[TokenKindName, list[BalancePoint]]]] = {}
    for key, kind, point in changes:
        month = grouped.setdefault(month_of(point.at), {})
        month.setdefault(key, (kind, []))[1].append(point)
    return grouped


def _day(close: DayClose) -> int:
    return close.day


ONE_DAY = timedelta(days=1)
