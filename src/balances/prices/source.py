"""USD prices: the point type, the source protocol, its error, and a static source.

A price is a step function like a balance (DESIGN.md 5): a :class:`PricePoint`
says "from ``at`` on, one token costs ``usd``". Prices are :class:`~decimal.Decimal`,
never floats, so a portfolio's USD value is as exact as its amounts.

Missing is not zero: a source leaves out tokens it has no price for, and the
caller reports them as missing. A made-up ``0`` would show a wallet's holdings
as worthless.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

from balances.domain import parse_timestamp
from balances.errors import InvalidPeriodError, ValidationError


@dataclass(frozen=True, slots=True, order=True)
class PricePoint:
    """From ``at`` (UTC) on, one whole token is worth ``usd`` US dollars."""

    at: datetime
    usd: Decimal

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", parse_timestamp(self.at))
        if not isinstance(self.usd, Decimal):
            # A float here would already have lost digits; refuse it rather than guess.
            raise ValidationError(
                f"a USD price must be a Decimal, got {type(self.usd).__name__} {self.usd!r}"
            )
        if not self.usd.is_finite() or self.usd < 0:
            raise ValidationError(f"a USD price must be finite and >= 0, got {self.usd}")


@runtime_checkable
class PriceSource(Protocol):
    """Where USD prices come from: an HTTP API, a fixed table, a test double."""

    async def get_prices(self, token_ids: Sequence[str]) -> dict[str, PricePoint]:
        """Current prices by token id; tokens without a known price are absent."""
        ...

    async def get_price_history(
        self, token_id: str, start: datetime, end: datetime
    ) -> list[PricePoint]:
        """Price points within ``[start, end]``, oldest first; [] without history."""
        ...


def check_window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """``(start, end)`` as aware UTC datetimes; refuses a window that ends before it starts."""
    start_at, end_at = parse_timestamp(start), parse_timestamp(end)
    if start_at > end_at:
        raise InvalidPeriodError(
            f"price window start {start_at.isoformat()} is after its end {end_at.isoformat()}"
        )
    return start_at, end_at


def _now() -> datetime:
    return datetime.now(UTC)


class StaticPriceSource:
    """Prices from a table, for tests and offline use.

    Each token maps to a constant price (a ``Decimal``: in force at every moment)
    or to a series of :class:`PricePoint` (the current price is the last point at
    or before ``now()``). Tokens not in the table have no price.
    """

    def __init__(
        self,
        prices: Mapping[str, Decimal | Sequence[PricePoint]],
        *,
        now: Callable[[], datetime] = _now,
    ) -> None:
        self._constant: dict[str, Decimal] = {}
        self._series: dict[str, list[PricePoint]] = {}
        self._now = now
        for token_id, value in prices.items():
            if isinstance(value, Decimal):
                PricePoint(datetime(1970, 1, 1, tzinfo=UTC), value)  # validates the price
                self._constant[token_id] = value
            else:
                self._series[token_id] = sorted(value, key=lambda point: point.at)

    async def get_prices(self, token_ids: Sequence[str]) -> dict[str, PricePoint]:
        now = parse_timestamp(self._now())
        found: dict[str, PricePoint] = {}
        for token_id in dict.fromkeys(token_ids):
            point = self._current(token_id, now)
            if point is not None:
                found[token_id] = point
        return found

    async def get_price_history(
        self, token_id: str, start: datetime, end: datetime
    ) -> list[PricePoint]:
        start, end = check_window(start, end)
        if token_id in self._constant:
            return [PricePoint(start, self._constant[token_id])]
        series = self._series.get(token_id, [])
        return [point for point in series if start <= point.at <= end]

    def _current(self, token_id: str, now: datetime) -> PricePoint | None:
        if token_id in self._constant:
            return PricePoint(now, self._constant[token_id])
        series = self._series.get(token_id)
        if not series:
            return None
        position = bisect.bisect_right([point.at for point in series], now) - 1
        return series[position] if position >= 0 else None
