"""USD price history on blob storage: one blob per UTC month, every token in it.

``prices/<yyyy-mm>`` is a zstd JSON document (see :func:`encode_month`) holding
each token's price change points of that month, oldest first, usd as decimal
strings. A price is a step function like a balance (DESIGN.md 5), so only changes
are kept: a point equal to the price already in force is not stored. One blob per
month (not per token) because a sync cycle prices every token at once: one write
per cycle, and a chart of any token is a GET per month it spans.

Appends are read-modify-write with a conditional put (create, or if-match the
etag read), retried on conflict with jittered backoff, so concurrent recorders
never lose each other's points. Decoded months are cached with their etag; a
cached month is re-validated with a ``head`` (no bytes moved) before it is
trusted, unless it was checked less than ``recheck_seconds`` ago.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from balances.blobs import CREATE, BlobStore, IfMatch, WriteMode, blob_key
from balances.domain import parse_timestamp
from balances.errors import (
    BlobNotFoundError,
    InvalidPeriodError,
    PreconditionFailedError,
    ValidationError,
    WriteConflictError,
)
from balances.prices import PricePoint
from balances.stores.encoding import CONTENT_TYPE, corrupt, decode_document, encode_document

KIND = "price-history"
FORMAT = 1
DEFAULT_ATTEMPTS = 10
#: How many months before a window a price in force is looked for: a price that
#: has not changed for longer than this is unknown (reads stay bounded).
LOOKBACK_MONTHS = 13
CACHED_MONTHS = 32
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_DECIMAL_RE = re.compile(r"[0-9]{1,40}(?:\.[0-9]{1,40})?")

Series = dict[str, tuple[PricePoint, ...]]  # token id -> points, oldest first
Sleep = Callable[[float], Awaitable[None]]


# --- months ------------------------------------------------------------------


def month_of(moment: datetime) -> str:
    """``yyyy-mm`` of the UTC month holding ``moment``."""
    moment = parse_timestamp(moment)
    return f"{moment.year:04d}-{moment.month:02d}"


def previous_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:])
    return f"{year - 1:04d}-12" if number == 1 else f"{year:04d}-{number - 1:02d}"


def months_between(start: datetime, end: datetime) -> list[str]:
    """Every month from ``start``'s to ``end``'s, ascending."""
    months = [month_of(end)]
    first = month_of(start)
    while months[-1] > first:
        months.append(previous_month(months[-1]))
    return months[::-1]


# --- encoding ----------------------------------------------------------------


def _unix(moment: datetime) -> int | float:
    """Whole seconds as an int (the usual case), otherwise exact to the microsecond."""
    micros = (moment - _EPOCH) // _MICROSECOND
    return micros // 1_000_000 if micros % 1_000_000 == 0 else round(micros / 1e6, 6)


def encode_month(month: str, series: Series) -> bytes:
    """``{"month", "tokens": {token_id: [[unix seconds, "usd"], ...]}}``."""
    tokens = {
        token_id: [[_unix(point.at), format(point.usd, "f")] for point in points]
        for token_id, points in sorted(series.items())
    }
    return encode_document(KIND, FORMAT, {"month": month, "tokens": tokens})


def decode_month(data: bytes, month: str, where: str) -> Series:
    document = decode_document(data, KIND, FORMAT, where=where)
    if document.get("month") != month:
        raise corrupt(where, f"holds month {document.get('month')!r}, expected {month!r}")
    tokens = document.get("tokens")
    if not isinstance(tokens, dict):
        raise corrupt(where, "'tokens' is not an object")
    try:
        series = {str(token): _points(rows) for token, rows in tokens.items()}
    except (TypeError, ValueError, OverflowError) as error:  # ValidationError is a ValueError
        raise corrupt(where, f"{type(error).__name__}: {error}") from error
    for token, points in series.items():
        if any(month_of(point.at) != month for point in points):
            raise corrupt(where, f"{token} has a point outside {month}")
    return series


def _points(rows: Any) -> tuple[PricePoint, ...]:
    if not isinstance(rows, list):
        raise TypeError(f"points {rows!r} are not a list")
    return tuple(sorted((_point(row) for row in rows), key=lambda point: point.at))


def _point(row: Any) -> PricePoint:
    at, usd = row
    if isinstance(at, bool) or not isinstance(at, int | float):
        raise ValueError(f"time {at!r}")
    if not isinstance(usd, str) or not _DECIMAL_RE.fullmatch(usd):
        raise ValueError(f"usd {usd!r}")
    return PricePoint(_EPOCH + timedelta(seconds=at), Decimal(usd))


# --- merging -----------------------------------------------------------------


def in_force(
    points: Iterable[PricePoint], moment: datetime, *, strictly: bool
) -> PricePoint | None:
    """The last point before ``moment`` (or at it, unless ``strictly``)."""
    found = None
    for point in points:
        if point.at > moment or (strictly and point.at == moment):
            break
        found = point
    return found


def merge_point(
    points: tuple[PricePoint, ...], point: PricePoint, carried: PricePoint | None
) -> tuple[PricePoint, ...] | None:
    """``points`` with ``point`` added, or None when it changes nothing.

    ``carried`` is the price in force at the month's start. A point at the time of a
    stored one replaces it; one equal to the price in force just before is dropped.
    """
    same = [p for p in points if p.at == point.at]
    if same:
        if same[0].usd == point.usd:
            return None
        return tuple(point if p.at == point.at else p for p in points)
    before = in_force(points, point.at, strictly=True) or carried
    if before is not None and before.usd == point.usd:
        return None
    return tuple(sorted((*points, point), key=lambda p: p.at))


# --- the store ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Month:
    series: Series
    etag: str | None  # None: no blob yet
    checked_at: float


class PriceStore:
    """Price history of every token, one blob per month under ``prefix``."""

    def __init__(
        self,
        blobs: BlobStore,
        *,
        prefix: str = "prices",
        attempts: int = DEFAULT_ATTEMPTS,
        lookback_months: int = LOOKBACK_MONTHS,
        recheck_seconds: float = 0.0,
        conflict_delay: float = 0.01,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if attempts < 1 or lookback_months < 0:
            raise ValueError(
                f"need attempts >= 1 and lookback_months >= 0, got {attempts}, {lookback_months}"
            )
        self._blobs = blobs
        self._prefix = prefix
        self._attempts = attempts
        self._lookback = lookback_months
        self._recheck = recheck_seconds
        self._conflict_delay = conflict_delay
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._cache: OrderedDict[str, _Month] = OrderedDict()

    def key(self, month: str) -> str:
        return blob_key(self._prefix, month)

    async def record(self, points: Mapping[str, PricePoint | Sequence[PricePoint]]) -> int:
        """Store each token's point (or points: a history); returns how many were
        stored (changes only). One conditional write per month touched."""
        by_month: dict[str, dict[str, list[PricePoint]]] = {}
        for token_id, given in points.items():
            for point in [given] if isinstance(given, PricePoint) else given:
                if not isinstance(point, PricePoint):
                    raise ValidationError(f"{token_id}: expected a PricePoint, got {point!r}")
                by_month.setdefault(month_of(point.at), {}).setdefault(token_id, []).append(point)
        stored = 0
        for month in sorted(by_month):  # oldest first: later months compare against it
            stored += await self._record_month(month, by_month[month])
        return stored

    async def history(self, token_id: str, start: datetime, end: datetime) -> list[PricePoint]:
        """Points within ``[start, end]``, led by the price in force at ``start``."""
        start, end = parse_timestamp(start), parse_timestamp(end)
        if start > end:
            raise InvalidPeriodError(f"window start {start} is after its end {end}")
        months = months_between(start, end)
        loaded = await asyncio.gather(*(self._load(month) for month in months))
        points = [
            point
            for month in loaded
            for point in month.series.get(token_id, ())
            if start <= point.at <= end
        ]
        if points and points[0].at == start:
            return points
        opening = in_force(loaded[0].series.get(token_id, ()), start, strictly=True)
        if opening is None:
            opening = (await self._carried(months[0], [token_id])).get(token_id)
        return points if opening is None else [opening, *points]

    async def price_at(self, token_id: str, at: datetime) -> PricePoint | None:
        """The price in force at ``at``: the last point at or before it."""
        at = parse_timestamp(at)
        month = month_of(at)
        found = in_force((await self._load(month)).series.get(token_id, ()), at, strictly=False)
        return found or (await self._carried(month, [token_id])).get(token_id)

    # --- internals -------------------------------------------------------------

    async def _record_month(self, month: str, points: Mapping[str, list[PricePoint]]) -> int:
        conflicts, fresh = 0, False
        while True:
            current, verified = await self._fetch(month, fresh=fresh)
            series, count = await self._merged(month, current.series, points)
            if count == 0:
                if verified:
                    return 0
                fresh = True  # "nothing new" from a cached copy: confirm it is current
                continue
            if await self._write(month, series, current.etag):
                return count
            conflicts += 1
            if conflicts >= self._attempts:
                raise WriteConflictError(
                    f"{self.key(month)}: lost {conflicts} conditional writes in a row; "
                    "the prices were not stored"
                )
            fresh = True
            await self._sleep(self._conflict_delay * 2 ** min(conflicts, 8) * self._rng())

    async def _merged(
        self, month: str, series: Series, points: Mapping[str, list[PricePoint]]
    ) -> tuple[Series, int]:
        """``series`` with ``points`` merged in, and how many of them were stored."""
        needs_carry = [
            t
            for t, given in points.items()
            if in_force(series.get(t, ()), min(p.at for p in given), strictly=True) is None
        ]
        carried = await self._carried(month, needs_carry) if needs_carry else {}
        merged, count = dict(series), 0
        for token_id, given in points.items():
            for point in sorted(given, key=lambda p: p.at):
                updated = merge_point(merged.get(token_id, ()), point, carried.get(token_id))
                if updated is not None:
                    merged[token_id], count = updated, count + 1
        return merged, count

    async def _write(self, month: str, series: Series, etag: str | None) -> bool:
        """One conditional put; False when another writer got there first."""
        mode: WriteMode = CREATE if etag is None else IfMatch(etag)
        data = encode_month(month, series)
        try:
            info = await self._blobs.put(
                self.key(month), data, mode=mode, content_type=CONTENT_TYPE
            )
        except PreconditionFailedError:
            self._cache.pop(month, None)
            return False
        self._remember(month, _Month(series, info.etag, self._clock()))
        return True

    async def _carried(self, month: str, token_ids: Iterable[str]) -> dict[str, PricePoint]:
        """Each token's last point in the ``lookback_months`` months before ``month``
        (the price in force as ``month`` starts); tokens not found are absent."""
        wanted, found = set(token_ids), {}
        for _ in range(self._lookback):
            if not wanted:
                break
            month = previous_month(month)
            series = (await self._load(month)).series
            for token_id in [t for t in wanted if series.get(t)]:
                found[token_id] = series[token_id][-1]
                wanted.discard(token_id)
        return found

    async def _load(self, month: str) -> _Month:
        return (await self._fetch(month))[0]

    async def _fetch(self, month: str, *, fresh: bool = False) -> tuple[_Month, bool]:
        """The month, and whether it was checked against the blob just now.

        A cached copy checked less than ``recheck_seconds`` ago is used as it is
        (unless ``fresh``); an older one is re-validated with a ``head``.
        """
        cached = self._cache.get(month)
        now = self._clock()
        if cached is not None and not fresh and now - cached.checked_at < self._recheck:
            return cached, False
        if cached is not None and await self._etag(month) == cached.etag:
            self._remember(month, _Month(cached.series, cached.etag, now))
            return self._cache[month], True
        key = self.key(month)
        try:
            blob = await self._blobs.get(key)
        except BlobNotFoundError:
            loaded = _Month({}, None, now)
        else:
            loaded = _Month(decode_month(blob.data, month, key), blob.etag, now)
        self._remember(month, loaded)
        return loaded, True

    async def _etag(self, month: str) -> str | None:
        try:
            return (await self._blobs.head(self.key(month))).etag
        except BlobNotFoundError:
            return None

    def _remember(self, month: str, loaded: _Month) -> None:
        self._cache[month] = loaded
        self._cache.move_to_end(month)
        while len(self._cache) > CACHED_MONTHS:
            self._cache.popitem(last=False)
