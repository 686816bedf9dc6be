"""The history methods of ``BalanceService``: charts, portfolio history, the amount
at a time or block, backfill, and USD prices (read by :mod:`.history`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from balances.domain import (
    DEFAULT_PERIOD,
    Balance,
    Granularity,
    Period,
    parse_chain_time,
    parse_timestamp,
)
from balances.errors import (
    BalanceNotFoundError,
    BalancesError,
    ConfigError,
    InvalidPeriodError,
    quoted,
)
from balances.service.bulk import BulkReads
from balances.service.core import MAX_BLOCK_HEIGHT
from balances.service.history import (
    BalanceHistory,
    HistoricalBalance,
    PortfolioHistory,
)
from balances.sync.backfill import BackfillReport, Progress

log = logging.getLogger("balances.service")


class HistoryAPI(BulkReads):
    """History, backfill and prices of :class:`~balances.service.BalanceService`."""

    async def get_balance_history(
        self,
        address: str,
        token_id: str,
        period: str | None = DEFAULT_PERIOD,
        granularity: str = "auto",
        start: datetime | int | float | str | None = None,
        end: datetime | int | float | str | None = None,
    ) -> BalanceHistory:
        """The chart of one token: UTC buckets of ``granularity`` over ``period`` (or the
        explicit ``start``..``end``), each with the amount in force at its end."""
        principal, chosen = self._principal(address), Period.requested(period, start, end)
        bucket = Granularity.parse(granularity)
        current = await self.get_balance(address, token_id)
        window = await self.history.window(principal, chosen, bucket)
        return await self.history.balance_history(principal, current.token_id, current, window)

    async def get_balance_histories(
        self,
        address: str,
        token_ids: Sequence[str],
        period: str | None = DEFAULT_PERIOD,
        granularity: str = "auto",
        start: datetime | int | float | str | None = None,
        end: datetime | int | float | str | None = None,
    ) -> dict[str, BalanceHistory | BalancesError]:
        """:meth:`get_balance_history` for several tokens of one address, from one read
        of its balances and one of its series; a bad token gets its own error."""
        principal, chosen = self._principal(address), Period.requested(period, start, end)
        bucket = Granularity.parse(granularity)
        items = await self.get_balances_batch([(address, token) for token in token_ids])
        window = await self.history.window(principal, chosen, bucket)
        found = [item.balance for item in items if item.balance is not None]
        charts = iter(await self.history.balance_histories(principal, found, window))
        answers: dict[str, BalanceHistory | BalancesError] = {}
        for token, item in zip(token_ids, items, strict=True):
            answers[token] = next(charts) if item.balance is not None else item.error  # type: ignore[assignment]
        return answers

    async def get_portfolio_history(
        self,
        address: str,
        period: str | None = DEFAULT_PERIOD,
        granularity: str = "auto",
        start: datetime | int | float | str | None = None,
        end: datetime | int | float | str | None = None,
    ) -> PortfolioHistory:
        """Every token's amount per bucket, and its USD value where a price is known."""
        principal, chosen = self._principal(address), Period.requested(period, start, end)
        bucket = Granularity.parse(granularity)
        current = await self.get_balances(address)
        window = await self.history.window(principal, chosen, bucket)
        return await self.history.portfolio(principal, current, window)

    async def get_balance_at(
        self,
        address: str,
        token_id: str,
        at: datetime | int | float | str | None = None,
        *,
        block_height: int | None = None,
    ) -> HistoricalBalance:
        """The amount in force at a time, or at a block height (exactly one of them)."""
        if (at is None) == (block_height is None):
            raise InvalidPeriodError("give either at (a time) or block_height, not both or none")
        principal = self._principal(address)
        if block_height is not None:
            moment = await self.block_time(block_height)
        else:
            moment = parse_chain_time(at)  # type: ignore[arg-type]
            self._not_future(moment)
        current = await self.get_balance(address, token_id)
        amount = await self.history.amount_at(principal, current.token_id, moment, block_height)
        return HistoricalBalance(
            str(principal),
            current.token_id,
            moment,
            block_height,
            amount,
            current.decimals,
            current.symbol,
        )

    async def block_time(self, block_height: int) -> datetime:
        """The time of block ``block_height`` (InvalidPeriodError: no such height yet)."""
        if isinstance(block_height, bool) or not 0 <= block_height <= MAX_BLOCK_HEIGHT:
            raise InvalidPeriodError(
                f"block heights are 0 to {MAX_BLOCK_HEIGHT:,}, got {quoted(block_height)}"
            )
        moment = (await self.chain.get_block(block_height)).time
        self._not_future(moment)
        return moment

    def _not_future(self, moment: datetime) -> None:
        if moment.timestamp() > self._wall():
            raise InvalidPeriodError(f"{moment.isoformat()} is in the future")

    async def get_balances_at_block(
        self,
        address: str,
        token_ids: Sequence[str] | None,
        block_height: int,
        moment: datetime | None = None,
    ) -> list[HistoricalBalance | BalancesError]:
        """Each token's amount in force at block ``block_height`` (None: every token
        the address holds now), from one read of its series, in the order asked; a
        token whose history does not reach that block gets its own error, never a
        zero. ``moment``: the block's time when the caller read it already."""
        principal = self._principal(address)
        when = moment if moment is not None else await self.block_time(block_height)
        if token_ids is None:
            found: list[Balance | BalancesError] = list(await self.get_balances(address))
        else:
            items = await self.get_balances_batch([(address, t) for t in token_ids])
            found = [item.balance or item.error for item in items]  # type: ignore[misc]
        keys = [b.token_id for b in found if isinstance(b, Balance)]
        amounts = await self.history.amounts_at(principal, keys, when, block_height) if keys else {}
        answers: list[HistoricalBalance | BalancesError] = []
        for current in found:
            if isinstance(current, BalancesError):
                answers.append(current)
                continue
            amount = amounts[current.token_id]
            answers.append(
                amount
                if isinstance(amount, BalancesError)
                else HistoricalBalance(
                    str(principal),
                    current.token_id,
                    when,
                    block_height,
                    amount,
                    current.decimals,
                    current.symbol,
                )
            )
        return answers

    async def backfill(
        self,
        address: str,
        token_id: str | None = None,
        since: datetime | int | float | str | None = None,
        *,
        progress: Progress | None = None,
        force: bool = False,
    ) -> BackfillReport:
        """Fill the history of ``address`` (one token, or all) from before tracking
        began, from its transactions: STX and native tokens exactly, map-based tokens
        from their print events where they can be read (see docs/storage.md).
        Resumable: an interrupted backfill continues where it stopped."""
        principal = self._principal(address)
        tokens = None if token_id is None else [str(self._token(token_id))]
        if not hasattr(self.chain, "get_principal_transactions"):
            raise ConfigError("this chain reader cannot list transactions: no backfill")
        await self.sync_on_demand(address)  # the anchor: a fresh read with its height
        anchor = await self.current.load(principal)
        if anchor is None:
            raise BalanceNotFoundError(f"{principal} could not be read: nothing to anchor on")
        tracked = await self.tracked.get(principal)
        map_tokens = {*self.config.map_tokens, *(tracked.tokens if tracked else ())}
        report = await self.backfiller.backfill(
            principal,
            anchor,
            tokens=tokens,
            map_tokens=map_tokens,
            since=None if since is None else parse_timestamp(since),
            progress=progress,
            force=force,
        )
        self.cache.invalidate(str(principal))
        return report

    async def sync_prices(self, token_ids: Sequence[str] | None = None) -> int:
        """Record the current USD price of these tokens (default: the configured ones, or
        every token known); returns how many prices changed. 0 without a price source."""
        if self.price_source is None or self.prices is None:
            return 0
        wanted = list(token_ids or self.config.prices.tokens or await self._known_tokens())
        found = await self.price_source.get_prices(wanted)
        return await self.prices.record(found)

    async def backfill_prices(self, token_ids: Sequence[str] | None = None, days: int = 365) -> int:
        """Fill price history from the source's history endpoint (where it has one)."""
        if self.price_source is None or self.prices is None:
            return 0
        end = datetime.fromtimestamp(self._wall(), UTC)
        start = end - timedelta(days=days)
        wanted = list(token_ids or self.config.prices.tokens or await self._known_tokens())
        stored = 0
        for token_id in wanted:
            history = await self.price_source.get_price_history(token_id, start, end)
            if history:
                stored += await self.prices.record({token_id: history})
        return stored

    async def _known_tokens(self) -> list[str]:
        return ["stx", *sorted(await self.catalog.registry.all())]
