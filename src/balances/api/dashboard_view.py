"""The dashboard's view model: what one address's page shows, read from the service.

No HTTP here: :mod:`balances.api.dashboard` renders this into HTML. Per-token charts
are drawn from the portfolio history's buckets: they are the same series
:meth:`BalanceService.get_balance_history` returns (same window, same buckets), read
once instead of once per token. USD values use the price in force now, where one is
known; a token without a price has no value (never zero) and is listed as such.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from markupsafe import Markup

from balances.api.dashboard_charts import ChartPoint, ChartSpec, format_exact, render_chart
from balances.domain import Balance, Granularity, Period, to_display_units
from balances.errors import BalancesError, ValidationError
from balances.service.balances import BalanceService
from balances.service.history import PortfolioHistory

log = logging.getLogger("balances.api.dashboard")

#: More buckets than this make a page of megabytes and a chart nobody can read.
MAX_BUCKETS = 1500
#: Per-token charts drawn (largest USD value first); the rest are listed.
TOP_TOKENS = 8
USD_CENTS = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Form:
    """The query as the user typed it (trimmed and bounded, not yet validated)."""

    address: str
    period: str
    granularity: str


@dataclass(frozen=True, slots=True)
class BalanceRow:
    symbol: str
    token_id: str
    amount: str
    price: str | None
    usd: str | None
    usd_value: Decimal | None
    #: For the live rows (static/live.js): the decimals and the price as exact text.
    decimals: int | None
    price_usd: str | None
    updated_at: str | None
    updated_ago: str
    block_height: int | None
    source: str
    stale: bool
    error: str | None


@dataclass(frozen=True, slots=True)
class TokenChart:
    symbol: str
    token_id: str
    svg: Markup


@dataclass(frozen=True, slots=True)
class DashboardView:
    address: str
    rows: list[BalanceRow]
    total_usd: str | None
    portfolio_svg: Markup
    buckets: int
    unpriced_buckets: int
    missing_prices: list[str]
    token_charts: list[TokenChart]
    more_tokens: list[str]
    granularity: str
    start: str
    end: str
    stale: bool


def too_many_buckets(period: str, granularity: str) -> bool:
    """Whether a named period at a fixed granularity has more than MAX_BUCKETS buckets
    (``all`` and ``auto`` are only known once read: :func:`build_view` checks them)."""
    try:
        length, bucket = Period.parse(period).length, Granularity.parse(granularity)
    except BalancesError:
        return False
    if length is None or bucket is Granularity.AUTO:
        return False
    return length / bucket.step > MAX_BUCKETS


async def build_view(svc: BalanceService, form: Form) -> DashboardView:
    """Read the balances, the portfolio history and prices of ``form.address``."""
    period, granularity = form.period, form.granularity
    Period.parse(period)  # bad input is refused before anything is read
    Granularity.parse(granularity)
    if too_many_buckets(period, granularity):
        raise ValidationError(_too_many_message(period, granularity, None))
    balances = await svc.get_all_balances(form.address)
    portfolio = await svc.get_portfolio_history(form.address, period, granularity)
    if len(portfolio.buckets) > MAX_BUCKETS:
        raise ValidationError(_too_many_message(period, granularity, len(portfolio.buckets)))
    now = datetime.fromtimestamp(svc.wall_clock(), UTC)
    prices = await _prices(svc, [b.token_id for b in balances], now)
    rows = sorted(
        (_row(b, prices.get(b.token_id), portfolio, now) for b in balances),
        key=lambda row: -(row.usd_value if row.usd_value is not None else Decimal(-1)),
    )
    return _view(form.address, rows, portfolio)


def _too_many_message(period: str, granularity: str, count: int | None) -> str:
    many = f"{count} buckets" if count is not None else f"more than {MAX_BUCKETS} buckets"
    return (
        f"{period} by {granularity} is {many}, too many to draw; "
        "choose a coarser granularity (day or week) or a shorter period"
    )


async def _prices(
    svc: BalanceService, token_ids: Sequence[str], now: datetime
) -> dict[str, Decimal]:
    """USD prices in force now, where known; a price store outage hides only prices."""
    store = svc.prices
    if store is None or not token_ids:
        return {}
    try:
        found = await asyncio.gather(*(store.price_at(t, now) for t in token_ids))
    except BalancesError as error:
        log.warning("prices unavailable for the dashboard: %s", error)
        return {}
    return {t: point.usd for t, point in zip(token_ids, found, strict=True) if point is not None}


def _row(
    balance: Balance, price: Decimal | None, portfolio: PortfolioHistory, now: datetime
) -> BalanceRow:
    value = _usd_value(balance, price, portfolio)
    return BalanceRow(
        symbol=_label(balance.symbol, balance.token_id),
        token_id=balance.token_id,
        amount=_amount_text(balance),
        price=None if price is None else f"${price:,f}",
        usd=None if value is None else _dollars(value),
        usd_value=value,
        decimals=balance.decimals,
        price_usd=None if price is None else f"{price:f}",
        updated_at=None if balance.updated_at is None else balance.updated_at.isoformat(),
        updated_ago=ago(balance.updated_at, now),
        block_height=balance.block_height,
        source=balance.source,
        stale=balance.stale,
        error=balance.error,
    )


def _amount_text(balance: Balance) -> str:
    shown = balance.display_amount
    if shown is None:  # decimals unknown: the exact base units, said so
        return f"{format_exact(balance.amount)} base units"
    return format_exact(shown)


def _usd_value(
    balance: Balance, price: Decimal | None, portfolio: PortfolioHistory
) -> Decimal | None:
    """The current amount at today's price; else the last bucket's value, when that
    bucket holds the same amount."""
    if balance.display_amount is None:
        return None  # decimals unknown: the value is unknown, never guessed
    if price is not None:
        return balance.display_amount * price
    if not portfolio.buckets:
        return None
    last = portfolio.buckets[-1]
    if last.amounts.get(balance.token_id) != balance.amount:
        return None
    return last.usd.get(balance.token_id)


def _view(address: str, rows: list[BalanceRow], portfolio: PortfolioHistory) -> DashboardView:
    values = [row.usd_value for row in rows if row.usd_value is not None]
    charted = [row for row in rows if row.token_id in {t.token_id for t in portfolio.tokens}]
    symbols = {t.token_id: _label(t.symbol, t.token_id) for t in portfolio.tokens}
    return DashboardView(
        address=portfolio.address,
        rows=rows,
        total_usd=_dollars(sum(values, Decimal(0))) if values else None,
        portfolio_svg=_portfolio_chart(portfolio),
        buckets=len(portfolio.buckets),
        unpriced_buckets=sum(b.total_usd is None for b in portfolio.buckets),
        missing_prices=[symbols.get(t, t) for t in portfolio.missing_prices],
        token_charts=[_token_chart(portfolio, row) for row in charted[:TOP_TOKENS]],
        more_tokens=[row.symbol for row in charted[TOP_TOKENS:]],
        granularity=portfolio.granularity.value,
        start=portfolio.start.strftime("%Y-%m-%d %H:%M"),
        end=portfolio.end.strftime("%Y-%m-%d %H:%M"),
        stale=portfolio.stale or any(row.stale for row in rows),
    )


def _portfolio_chart(portfolio: PortfolioHistory) -> Markup:
    points = [ChartPoint(bucket.at, bucket.total_usd) for bucket in portfolio.buckets]
    spec = ChartSpec(
        "line",
        "portfolio",
        f"Portfolio value in USD, {portfolio.period} by {portfolio.granularity.value}",
        prefix="$",
        end=portfolio.end,
    )
    return Markup(render_chart(points, spec))  # every text in it is escaped


def _units(amount: int, decimals: int | None) -> Decimal:
    """Display units; base units while the decimals are unknown."""
    return Decimal(amount) if decimals is None else to_display_units(amount, decimals)


def _token_chart(portfolio: PortfolioHistory, row: BalanceRow) -> TokenChart:
    token = next(t for t in portfolio.tokens if t.token_id == row.token_id)
    points = [
        ChartPoint(b.at, None if amount is None else _units(amount, token.decimals))
        for b in portfolio.buckets
        for amount in [b.amounts.get(row.token_id)]
    ]
    spec = ChartSpec(
        "step",
        "token",
        f"{row.symbol} balance, {portfolio.period} by {portfolio.granularity.value}",
        unit=row.symbol,
        end=portfolio.end,
        data={"token": row.token_id},
        width=480,
        height=200,
    )
    return TokenChart(row.symbol, row.token_id, Markup(render_chart(points, spec)))


# --- formatting ------------------------------------------------------------------------------


def _label(symbol: str | None, token_id: str) -> str:
    """The symbol, or the contract name when the token has none."""
    return symbol or token_id.rpartition(".")[2].partition("::")[0] or token_id


def _dollars(value: Decimal) -> str:
    return f"${value.quantize(USD_CENTS):,f}"


def ago(moment: datetime | None, now: datetime) -> str:
    """``12 s ago``, ``5 min ago``, ``3 h ago``, ``2 d ago``; ``never`` without a time."""
    if moment is None:
        return "never"
    seconds = int((now - moment).total_seconds())
    if seconds < 1:
        return "just now"
    for size, unit in ((86_400, "d"), (3_600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


__all__ = [
    "MAX_BUCKETS",
    "BalanceRow",
    "DashboardView",
    "Form",
    "TokenChart",
    "ago",
    "build_view",
    "too_many_buckets",
]
