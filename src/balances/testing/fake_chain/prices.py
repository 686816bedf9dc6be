"""The stand-in's USD price ledger: a price history per token, on the chain's clock.

Not part of the Hiro API: our own extension, so that tests and ``make demo`` can
run the whole service, USD values included, offline (``GET /prices/...``, see
:mod:`~balances.testing.fake_chain.routes_prices`). Prices are Decimals; "now" is
the chain tip's time, so the current price is the last point at or before it.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from balances.domain import TokenId
from balances.errors import InvalidTokenIdError
from balances.testing.fake_chain.records import FakeChainError


@dataclass(frozen=True, slots=True)
class PriceTick:
    """From ``at`` (unix seconds) on, one whole token costs ``usd``."""

    at: int
    usd: Decimal


def _at(tick: PriceTick) -> int:
    return tick.at


@functools.lru_cache(maxsize=4096)  # parsing checks a c32 checksum; routes ask often
def price_key(token_id: str) -> str:
    """``stx`` or a canonical contract id: ``ADDR.name::asset`` prices as ``ADDR.name``."""
    try:
        return TokenId.parse(token_id).contract_id
    except InvalidTokenIdError as error:
        raise FakeChainError(f"cannot price {token_id!r}: {error}") from error


def _usd(value: Decimal | str | int) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | str | int):
        raise FakeChainError(f"a price must be a Decimal, str or int, got {value!r}")
    try:
        usd = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation as error:
        raise FakeChainError(f"not a decimal price: {value!r}") from error
    if not usd.is_finite() or usd < 0:
        raise FakeChainError(f"a price must be finite and >= 0, got {value!r}")
    return abs(usd)  # "-0" is 0


class PriceLedger:
    """Price points by token; ``clock`` is the chain's current time (its tip)."""

    def __init__(self, clock: Callable[[], int]) -> None:
        self._clock = clock
        self._ticks: dict[str, list[PriceTick]] = {}

    @property
    def tokens(self) -> list[str]:
        """Every priced token id, in the order first priced."""
        return list(self._ticks)

    def set_price(self, token_id: str, usd: Decimal | str | int, at: int | None = None) -> None:
        """Record that ``token_id`` costs ``usd`` from ``at`` (unix seconds; the tip's
        time by default) on. A point at the same time as an earlier one replaces it."""
        when = self._clock() if at is None else at
        if isinstance(when, bool) or not isinstance(when, int) or when < 0:
            raise FakeChainError(f"at must be unix seconds (an int >= 0), got {at!r}")
        ticks = self._ticks.setdefault(price_key(token_id), [])
        tick = PriceTick(when, _usd(usd))
        position = bisect.bisect_left(ticks, when, key=_at)
        if position < len(ticks) and ticks[position].at == when:
            ticks[position] = tick
        else:
            ticks.insert(position, tick)

    def known(self, token_id: str) -> bool:
        return price_key(token_id) in self._ticks

    def current(self, token_id: str) -> PriceTick | None:
        """The price in force at the tip: the last point at or before its time."""
        return self.at(token_id, self._clock())

    def at(self, token_id: str, when: int) -> PriceTick | None:
        """The price in force at ``when`` (unix seconds); None before the first point."""
        ticks = self._ticks.get(price_key(token_id), [])
        position = bisect.bisect_right(ticks, when, key=_at) - 1
        return ticks[position] if position >= 0 else None

    def history(self, token_id: str, start: int, end: int) -> list[PriceTick]:
        """Points with ``start <= at <= end``, oldest first."""
        ticks = self._ticks.get(price_key(token_id), [])
        first = bisect.bisect_left(ticks, start, key=_at)
        return ticks[first : bisect.bisect_right(ticks, end, key=_at)]


class PricedChain:
    """Mixed into :class:`~balances.testing.fake_chain.ledger.FakeChain`: ``chain.prices``
    and ``chain.set_price``, on the chain's tip time. The ledger is made on first use,
    so the mixin needs nothing from the chain's constructor."""

    _price_ledger: PriceLedger | None = None

    @property
    def tip_time(self) -> int:
        raise NotImplementedError  # FakeChain's own property answers

    @property
    def prices(self) -> PriceLedger:
        if self._price_ledger is None:
            self._price_ledger = PriceLedger(lambda: self.tip_time)
        return self._price_ledger

    def set_price(self, token_id: str, usd: Decimal | str | int, at: int | None = None) -> None:
        """See :meth:`PriceLedger.set_price`."""
        self.prices.set_price(token_id, usd, at)


def usd_text(usd: Decimal) -> str:
    """A plain decimal string, never exponent notation (``Decimal("1E+2")`` -> ``"100"``)."""
    return format(usd, "f")
