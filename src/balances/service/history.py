"""Balance history, portfolio history and point-in-time balances (DESIGN.md section 5).

A history is the step function of one token over a window, in UTC buckets aligned
to the granularity: each bucket carries the amount in force at its end (empty
buckets carry the previous one forward), and the window begins at its first
bucket's start, with the amount in force then. Day, week and month buckets are read
from the daily rollups (every bucket ends on a day boundary, where a rollup is
exact); 5-minute and hour buckets from the raw change points.

A portfolio adds, per bucket, each token's USD value at the price in force at the
bucket's end, where a price is known; tokens without one are listed as missing,
never valued at zero.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from balances.domain import Balance, BalancePoint, Granularity, Period, Principal
from balances.domain.series import Bucket, bucketize
from balances.domain.tokens import to_display_units
from balances.errors import BalanceNotFoundError
from balances.prices import PricePoint
from balances.stores.layout import BalanceLayout, Resolution, SeriesSlice
from balances.stores.prices import PriceStore

USD_QUANTUM = Decimal("0.000001")
#: How long after a block a live reading stamped with that tip may have been made.
HEIGHT_LOOKAHEAD = timedelta(days=1)
_DAILY = (Granularity.DAY, Granularity.WEEK, Granularity.MONTH)


def _iso(moment: datetime) -> str:
    return moment.isoformat()


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """A bucket of a balance chart: from ``at``, the amount in force at its end."""

    at: datetime
    amount: int | None

    def as_dict(self) -> dict[str, Any]:
        return {"at": _iso(self.at), "balance": None if self.amount is None else str(self.amount)}


@dataclass(frozen=True, slots=True)
class BalanceHistory:
    """One token's chart: the buckets, the granularity used, and how fresh it is."""

    address: str
    token_id: str
    period: str
    granularity: Granularity
    start: datetime
    end: datetime
    decimals: int | None
    symbol: str | None
    start_balance: int | None
    points: list[HistoryPoint]
    current: Balance

    def as_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "token_id": self.token_id,
            "period": self.period,
            "granularity": self.granularity.value,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "decimals": self.decimals,
            "symbol": self.symbol,
            "start_balance": None if self.start_balance is None else str(self.start_balance),
            "points": [point.as_dict() for point in self.points],
            "updated_at": None
            if self.current.updated_at is None
            else _iso(self.current.updated_at),
            "block_height": self.current.block_height,
            "stale": self.current.stale,
            "source": self.current.source,
        }


@dataclass(frozen=True, slots=True)
class PortfolioToken:
    token_id: str
    symbol: str | None
    decimals: int | None
    priced: bool


@dataclass(frozen=True, slots=True)
class PortfolioBucket:
    at: datetime
    amounts: dict[str, int | None]
    usd: dict[str, Decimal | None]

    @property
    def total_usd(self) -> Decimal | None:
        """The sum over tokens with a price (None when none has one)."""
        values = [value for value in self.usd.values() if value is not None]
        return sum(values, Decimal(0)) if values else None

    def as_dict(self) -> dict[str, Any]:
        total = self.total_usd
        return {
            "at": _iso(self.at),
            "balances": {k: None if v is None else str(v) for k, v in self.amounts.items()},
            "usd": {k: None if v is None else str(v) for k, v in self.usd.items()},
            "total_usd": None if total is None else str(total),
        }


@dataclass(frozen=True, slots=True)
class PortfolioHistory:
    address: str
    period: str
    granularity: Granularity
    start: datetime
    end: datetime
    tokens: list[PortfolioToken]
    buckets: list[PortfolioBucket]
    missing_prices: list[str] = field(default_factory=list)
    stale: bool = False
    updated_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "period": self.period,
            "granularity": self.granularity.value,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "tokens": [
                {
                    "token_id": t.token_id,
                    "symbol": t.symbol,
                    "decimals": t.decimals,
                    "priced": t.priced,
                }
                for t in self.tokens
            ],
            "buckets": [bucket.as_dict() for bucket in self.buckets],
            "missing_prices": self.missing_prices,
            "stale": self.stale,
            "updated_at": None if self.updated_at is None else _iso(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class HistoricalBalance:
    """The amount of one token in force at a moment (or block)."""

    address: str
    token_id: str
    at: datetime
    block_height: int | None
    amount: int
    decimals: int | None
    symbol: str | None

    def as_balance(self) -> Balance:
        """This amount as a :class:`Balance` as of its block (from the store, not stale)."""
        return Balance(
            address=self.address,
            token_id=self.token_id,
            amount=self.amount,
            decimals=self.decimals,
            updated_at=self.at,
            block_height=self.block_height,
            source="store",
            stale=False,
            symbol=self.symbol,
            metadata="known" if self.decimals is not None else "unknown",
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "token_id": self.token_id,
            "at": _iso(self.at),
            "block_height": self.block_height,
            "balance": str(self.amount),
            "decimals": self.decimals,
            "display_balance": None
            if self.decimals is None
            else str(to_display_units(self.amount, self.decimals)),
            "symbol": self.symbol,
        }


@dataclass(frozen=True, slots=True)
class Window:
    period: str
    granularity: Granularity
    start: datetime
    end: datetime

    @property
    def resolution(self) -> Resolution:
        return "daily" if self.granularity in _DAILY else "raw"


class HistoryReader:
    """Charts from a :class:`BalanceLayout` (and prices from a :class:`PriceStore`)."""

    def __init__(
        self,
        layout: BalanceLayout,
        prices: PriceStore | None,
        wall_clock: Callable[[], float],
    ) -> None:
        self._layout = layout
        self._prices = prices
        self._wall = wall_clock

    async def window(
        self, principal: Principal, period: Period, granularity: Granularity
    ) -> Window:
        """The bucket-aligned window of ``period`` now (``all``: from the first point)."""
        now = datetime.fromtimestamp(self._wall(), UTC)
        earliest = await self._layout.first_seen(principal) if period.name == "all" else None
        start, end = period.window(now, earliest)
        chosen = granularity.resolve(start, end)
        return Window(str(period), chosen, chosen.floor(start), end)

    async def balance_history(
        self, principal: Principal, key: str, current: Balance, window: Window
    ) -> BalanceHistory:
        return (await self.balance_histories(principal, [current], window))[0]

    async def balance_histories(
        self, principal: Principal, currents: Sequence[Balance], window: Window
    ) -> list[BalanceHistory]:
        """Several tokens' charts of one address from one read of its series."""
        slices = await self._slices(principal, window, [c.token_id for c in currents])
        return [self._history(principal, c, window, slices.get(c.token_id)) for c in currents]

    def _history(
        self, principal: Principal, current: Balance, window: Window, found: SeriesSlice | None
    ) -> BalanceHistory:
        buckets = self._buckets(found, window)
        return BalanceHistory(
            address=str(principal),
            token_id=current.token_id,
            period=window.period,
            granularity=window.granularity,
            start=window.start,
            end=window.end,
            decimals=current.decimals,
            symbol=current.symbol,
            start_balance=None if found is None else found.opening,
            points=[HistoryPoint(b.start, b.value) for b in buckets],
            current=current,
        )

    async def portfolio(
        self, principal: Principal, current: Sequence[Balance], window: Window
    ) -> PortfolioHistory:
        slices = await self._slices(principal, window, None)
        by_token = {balance.token_id: balance for balance in current}
        token_ids = sorted(set(by_token) | set(slices), key=lambda t: (t != "stx", t))
        prices = await self._price_histories(token_ids, window)
        buckets_by_token = {t: self._buckets(slices.get(t), window) for t in token_ids}
        starts = [b.start for b in next(iter(buckets_by_token.values()), [])]
        portfolio_buckets = []
        for index, start in enumerate(starts):
            amounts = {t: buckets_by_token[t][index].value for t in token_ids}
            end = buckets_by_token[token_ids[0]][index].end
            usd = {t: _usd(amounts[t], by_token.get(t), prices.get(t), end) for t in token_ids}
            portfolio_buckets.append(PortfolioBucket(start, amounts, usd))
        tokens = [
            PortfolioToken(
                t,
                by_token[t].symbol if t in by_token else None,
                by_token[t].decimals if t in by_token else None,
                bool(prices.get(t)),
            )
            for t in token_ids
        ]
        updated = [b.updated_at for b in current if b.updated_at is not None]
        return PortfolioHistory(
            address=str(principal),
            period=window.period,
            granularity=window.granularity,
            start=window.start,
            end=window.end,
            tokens=tokens,
            buckets=portfolio_buckets,
            missing_prices=[t.token_id for t in tokens if not t.priced],
            stale=any(b.stale for b in current),
            updated_at=min(updated) if updated else None,
        )

    async def amount_at(
        self, principal: Principal, key: str, at: datetime, height: int | None = None
    ) -> int:
        """The amount of ``key`` in force at ``at`` (the time of block ``height`` when
        given); BalanceNotFoundError before its history begins (unknown, not zero).

        A live read is stamped with the chain tip it saw, a little after that block's
        time: for a height, readings made within a day after the block whose tip was
        still at or below it count too (the last of them wins)."""
        found = (await self.amounts_at(principal, [key], at, height))[key]
        if isinstance(found, BalanceNotFoundError):
            raise found
        return found

    async def amounts_at(
        self, principal: Principal, keys: Sequence[str], at: datetime, height: int | None = None
    ) -> dict[str, int | BalanceNotFoundError]:
        """:meth:`amount_at` of several tokens from one read of the address's series;
        a token whose history does not reach back that far gets its error."""
        now = datetime.fromtimestamp(self._wall(), UTC)
        until = at if height is None else min(now, at + HEIGHT_LOOKAHEAD)
        slices = await self._layout.series(principal, at, until, keys=list(keys), resolution="raw")
        answers: dict[str, int | BalanceNotFoundError] = {}
        for key in keys:
            found = slices.get(key)
            amount = None if found is None else found.opening
            if found is not None and height is not None:
                amount = _at_height(found.points, height, amount)
            if amount is not None:
                answers[key] = amount
        missing = [key for key in keys if key not in answers]
        if missing:
            first = await self._layout.first_seen(principal)
            since = "it has no history" if first is None else f"its history begins {_iso(first)}"
            for key in missing:
                answers[key] = BalanceNotFoundError(
                    f"the {key} balance of {principal} at {_iso(at)} is unknown: {since} "
                    "(backfill it to reach further back)"
                )
        return answers

    async def _slices(
        self, principal: Principal, window: Window, keys: Sequence[str] | None
    ) -> dict[str, SeriesSlice]:
        return await self._layout.series(
            principal, window.start, window.end, keys=keys, resolution=window.resolution
        )

    @staticmethod
    def _buckets(found: SeriesSlice | None, window: Window) -> list[Bucket]:
        points: Sequence[BalancePoint] = () if found is None else found.points
        opening = None if found is None else found.opening
        return bucketize(points, window.start, window.end, window.granularity, opening=opening)

    async def _price_histories(
        self, token_ids: Sequence[str], window: Window
    ) -> dict[str, list[PricePoint]]:
        if self._prices is None:
            return {}
        found = {}
        for token_id in token_ids:
            history = await self._prices.history(token_id, window.start, window.end)
            if history:
                found[token_id] = history
        return found


def _at_height(points: Sequence[BalancePoint], height: int, amount: int | None) -> int | None:
    """The last of ``points`` read at a tip at or below ``height`` (else ``amount``)."""
    for point in points:
        if point.block_height is None:
            continue
        if point.block_height > height:
            break
        amount = point.amount
    return amount


def _usd(
    amount: int | None,
    balance: Balance | None,
    prices: list[PricePoint] | None,
    bucket_end: datetime,
) -> Decimal | None:
    """``amount`` in USD at the price in force just before ``bucket_end``."""
    if amount is None or not prices:
        return None
    position = bisect.bisect_left(prices, bucket_end, key=lambda price: price.at)
    if position == 0:
        return None  # no price known yet at that time
    decimals = None if balance is None else balance.decimals
    if decimals is None:
        return None  # the decimals are unknown, so is the value: never guessed
    value = to_display_units(amount, decimals) * prices[position - 1].usd
    return value.quantize(USD_QUANTUM)
