"""Portfolio performance, and precomputed portfolio histories kept in blob storage.

An aggregate is a portfolio history as :meth:`PortfolioHistory.as_dict` writes it,
stored under ``aggregates/<period>/<address>`` with the time it was made; it is
used while younger than ``cache_timeouts.time_series`` (the spec's one hour).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from balances.blobs import BlobStore, blob_key
from balances.config import BalanceServiceConfig
from balances.domain import Granularity, parse_timestamp
from balances.errors import BlobNotFoundError, CorruptBlobError
from balances.service.history import PortfolioBucket, PortfolioHistory, PortfolioToken
from balances.stores.encoding import CONTENT_TYPE, corrupt, decode_document, encode_document

KIND = "portfolio-aggregate"
FORMAT = 1
PERCENT = Decimal("0.01")


def _change_pct(start: Decimal | int | None, end: Decimal | int | None) -> Decimal | None:
    """Percentage change; None when it is undefined (no start, or a start of zero)."""
    if start is None or end is None or start == 0:
        return None
    return (Decimal(end - start) * 100 / Decimal(start)).quantize(PERCENT)


@dataclass(frozen=True, slots=True)
class TokenPerformance:
    token_id: str
    start_amount: int | None
    end_amount: int | None
    start_usd: Decimal | None
    end_usd: Decimal | None

    def as_dict(self) -> dict[str, Any]:
        change = (
            None
            if self.start_amount is None or self.end_amount is None
            else self.end_amount - self.start_amount
        )
        change_usd = (
            None
            if self.start_usd is None or self.end_usd is None
            else self.end_usd - self.start_usd
        )
        return {
            "token_id": self.token_id,
            "start_balance": _text(self.start_amount),
            "end_balance": _text(self.end_amount),
            "change": _text(change),
            "change_pct": _text(_change_pct(self.start_amount, self.end_amount)),
            "start_usd": _text(self.start_usd),
            "end_usd": _text(self.end_usd),
            "change_usd": _text(change_usd),
            "change_usd_pct": _text(_change_pct(self.start_usd, self.end_usd)),
        }


@dataclass(frozen=True, slots=True)
class Performance:
    """One address over one period: totals in USD (priced tokens), and per token."""

    address: str
    period: str
    start: datetime
    end: datetime
    start_usd: Decimal | None
    end_usd: Decimal | None
    tokens: list[TokenPerformance] = field(default_factory=list)
    missing_prices: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        change = (
            None
            if self.start_usd is None or self.end_usd is None
            else self.end_usd - self.start_usd
        )
        return {
            "address": self.address,
            "period": self.period,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "start_usd": _text(self.start_usd),
            "end_usd": _text(self.end_usd),
            "change_usd": _text(change),
            "change_pct": _text(_change_pct(self.start_usd, self.end_usd)),
            "tokens": [token.as_dict() for token in self.tokens],
            "missing_prices": self.missing_prices,
        }


def _difference(start: Any, end: Any) -> Any:
    return None if start is None or end is None else end - start


def _text(value: Decimal | int | None) -> str | None:
    return None if value is None else str(value)


def performance_of(history: PortfolioHistory) -> Performance:
    """The first and last bucket of a portfolio history, compared."""
    first = history.buckets[0] if history.buckets else None
    last = history.buckets[-1] if history.buckets else None
    tokens = [
        TokenPerformance(
            t.token_id,
            None if first is None else first.amounts.get(t.token_id),
            None if last is None else last.amounts.get(t.token_id),
            None if first is None else first.usd.get(t.token_id),
            None if last is None else last.usd.get(t.token_id),
        )
        for t in history.tokens
    ]
    return Performance(
        history.address,
        history.period,
        history.start,
        history.end,
        None if first is None else first.total_usd,
        None if last is None else last.total_usd,
        tokens,
        list(history.missing_prices),
    )


# --- storage -------------------------------------------------------------------


def history_from_dict(data: dict[str, Any], where: str) -> PortfolioHistory:
    """The inverse of :meth:`PortfolioHistory.as_dict`."""
    try:
        tokens = [PortfolioToken(**token) for token in data["tokens"]]
        buckets = [
            PortfolioBucket(
                parse_timestamp(b["at"]),
                {k: None if v is None else int(v) for k, v in b["balances"].items()},
                {k: None if v is None else Decimal(v) for k, v in b["usd"].items()},
            )
            for b in data["buckets"]
        ]
        updated = data.get("updated_at")
        return PortfolioHistory(
            address=data["address"],
            period=data["period"],
            granularity=Granularity.parse(data["granularity"]),
            start=parse_timestamp(data["start"]),
            end=parse_timestamp(data["end"]),
            tokens=tokens,
            buckets=buckets,
            missing_prices=list(data["missing_prices"]),
            stale=bool(data["stale"]),
            updated_at=None if updated is None else parse_timestamp(updated),
        )
    except (KeyError, TypeError, ValueError, InvalidOperation) as error:
        raise corrupt(where, f"{type(error).__name__}: {error}") from error


class AggregateStore:
    """Precomputed portfolio histories, one blob per (period, address)."""

    def __init__(
        self,
        blobs: BlobStore,
        config: BalanceServiceConfig,
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._blobs = blobs
        self._ttl = config.cache_timeouts.time_series
        self._wall = wall_clock

    def key(self, address: str, period: str) -> str:
        return blob_key("aggregates", period, address)

    async def save(self, address: str, period: str, history: PortfolioHistory) -> None:
        body = {"generated_at": self._wall(), "history": history.as_dict()}
        data = encode_document(KIND, FORMAT, body)
        await self._blobs.put(self.key(address, period), data, content_type=CONTENT_TYPE)

    async def fresh(self, address: str, period: str) -> PortfolioHistory | None:
        """The stored aggregate, if it is younger than the time-series TTL."""
        key = self.key(address, period)
        try:
            blob = await self._blobs.get(key)
        except BlobNotFoundError:
            return None
        try:
            document = decode_document(blob.data, KIND, FORMAT, where=key)
        except CorruptBlobError:
            return None  # a broken aggregate is recomputed, never served
        generated = document.get("generated_at")
        if not isinstance(generated, int | float) or self._wall() - generated > self._ttl:
            return None
        history = document.get("history")
        if not isinstance(history, dict):
            return None  # a broken aggregate is recomputed, never served
        try:
            return history_from_dict(history, key)
        except CorruptBlobError:
            return None
