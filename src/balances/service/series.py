"""``BalanceSeriesAPI``: bulk reads for dashboards, portfolio analytics, aggregates.

Every bulk call groups its items by address, so each address's balances (one
current-balance blob) and history (its shard's series blobs, shared by every
address of the shard through the layout's cache) are read once however many
tokens are asked for. Items fail one by one: a bad address or token gets its own
error, the others their answers. A request larger than ``api.max_bulk_items``
(addresses x tokens) is refused as a whole before any work.

``generate_aggregated_data`` precomputes portfolio histories into blob storage;
``get_portfolio_performance_bulk`` reuses them while they are fresher than
``cache_timeouts.time_series``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from balances.config import BalanceServiceConfig
from balances.domain import Balance, Granularity, Period, parse_amount
from balances.errors import (
    QUOTE_LIMIT,
    BalancesError,
    BehindBlockError,
    RequestTooLargeError,
    ValidationError,
    quoted,
)
from balances.service.aggregates import AggregateStore, Performance, performance_of
from balances.service.balances import BalanceService
from balances.service.consistency import as_of_one_block, at_one_block, ends_on
from balances.service.history import PortfolioHistory


@dataclass(frozen=True, slots=True)
class ItemError:
    address: str
    token_id: str | None
    error: BalancesError

    def as_dict(self) -> dict[str, Any]:
        from_error = {"error": type(self.error).__name__, "message": str(self.error)}
        # The item as asked for, cut like any quoted input: a bad one may be huge.
        address, token = _cut(self.address), None if self.token_id is None else _cut(self.token_id)
        return {"address": address, "token_id": token, **from_error}


def _block_height(value: Any) -> int | None:
    """``at_block`` as given: None, or a block height (an int, or its digits)."""
    if value is None:
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValidationError(f"at_block is a block height (a whole number), not {quoted(value)}")


def _moved(read: Balance, now: Balance | BalancesError, block: int | None) -> BalancesError:
    """Why a history is left out of an answer as of ``block``."""
    if isinstance(now, BalancesError):
        return now
    return BehindBlockError(
        f"moved from {read.amount} (read at block {read.block_height}) to {now.amount} as of "
        f"block {block}, a change its history does not hold yet: ask again after a refresh"
    )


def _cut(text: str) -> str:
    return text if len(text) <= QUOTE_LIMIT else f"{text[:QUOTE_LIMIT]}..."


@dataclass(frozen=True, slots=True)
class SeriesBulk:
    """``series[address][token_id]`` is a :class:`BalanceHistory`; every one's
    current amount holds at ``block_height``."""

    series: dict[str, dict[str, Any]]
    errors: list[ItemError] = field(default_factory=list)
    block_height: int | None = None


@dataclass(frozen=True, slots=True)
class CurrentBulk:
    balances: list[Balance]
    errors: list[ItemError] = field(default_factory=list)
    #: The block every balance is as of (None: no balance, so no block).
    block_height: int | None = None


@dataclass(frozen=True, slots=True)
class PerformanceBulk:
    performance: dict[str, Performance]
    errors: list[ItemError] = field(default_factory=list)
    #: The block every performance's end holds at (None: no performance).
    block_height: int | None = None


def _field(request: Mapping[str, Any] | object, name: str, *aliases: str) -> Any:
    if isinstance(request, Mapping):
        for key in (name, *aliases):
            if key in request:
                return request[key]
        return None
    return getattr(request, name, None)


def _strings(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValidationError(f"{what} is a list of strings, got {quoted(value)}")
    items = list(value)
    if not all(isinstance(item, str) for item in items):
        raise ValidationError(f"{what} is a list of strings")
    return list(dict.fromkeys(items))


class BalanceSeriesAPI:
    """Bulk and analytics reads over a :class:`BalanceService`.

    ``BalanceSeriesAPI()`` builds its own service from ``BALANCES_*`` settings; pass
    ``service=`` to share one (the REST app does).
    """

    def __init__(
        self, service: BalanceService | None = None, config: BalanceServiceConfig | None = None
    ) -> None:
        self._owned = service is None
        self.service = service if service is not None else BalanceService(config)
        self.aggregates = AggregateStore(
            self.service.blobs, self.service.config, wall_clock=self.service.wall_clock
        )

    async def close(self) -> None:
        if self._owned:
            await self.service.close()

    async def __aenter__(self) -> BalanceSeriesAPI:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- bulk ----------------------------------------------------------------

    def _check_size(self, addresses: int, tokens: int) -> None:
        limit = self.service.config.api.max_bulk_items
        if addresses == 0:
            raise ValidationError("addresses must name at least one address")
        if addresses * max(tokens, 1) > limit:
            raise RequestTooLargeError(
                f"{addresses} addresses x {max(tokens, 1)} tokens is over the limit of {limit} "
                "items per request; split it (BALANCES_API__MAX_BULK_ITEMS sets the limit)"
            )

    async def _per_address(self, addresses: Sequence[str], work: Any) -> list[Any]:
        gate = asyncio.Semaphore(self.service.config.sync_concurrency)

        async def one(address: str) -> Any:
            async with gate:
                try:
                    return await work(address)
                except BalancesError as error:
                    return ItemError(address, None, error)

        return list(await asyncio.gather(*(one(address) for address in addresses)))

    async def get_balance_series_bulk(self, request: Mapping[str, Any] | object) -> SeriesBulk:
        """Histories of ``token_ids`` for each of ``addresses`` over ``period`` (or
        ``from``/``to``) at ``granularity``, every one ending on an amount that holds
        at the answer's ``block_height`` (:meth:`_series_at_one_block`)."""
        addresses = _strings(_field(request, "addresses"), "addresses")
        tokens = _strings(_field(request, "token_ids", "tokenIds"), "token_ids")
        if not tokens:
            raise ValidationError("token_ids must name at least one token")
        self._check_size(len(addresses), len(tokens))
        period = _field(request, "period") or "30d"
        granularity = _field(request, "granularity") or "auto"
        start, end = _field(request, "start", "from"), _field(request, "end", "to")
        Period.requested(period, start, end), Granularity.parse(granularity)  # the request's
        series: dict[str, dict[str, Any]] = {}
        errors: list[ItemError] = []

        async def of(address: str) -> None:
            charts = await self.service.get_balance_histories(
                address, tokens, period, granularity, start, end
            )
            for token, answer in charts.items():
                if isinstance(answer, BalancesError):
                    errors.append(ItemError(address, token, answer))
                else:
                    series.setdefault(address, {})[token] = answer

        for outcome in await self._per_address(addresses, of):
            if isinstance(outcome, ItemError):
                errors.append(outcome)
        block = await self._series_at_one_block(series, errors)
        return SeriesBulk(series, errors, block)

    async def _series_at_one_block(
        self, series: dict[str, dict[str, Any]], errors: list[ItemError]
    ) -> int | None:
        """Make every history's current amount hold at one block (:mod:`.consistency`):
        one read at an older block is re-read as of it; if its amount moved since,
        its history lacks that change, so it is an item error, not a stale end."""
        charts = [(a, t, h) for a, by_token in series.items() for t, h in by_token.items()]
        block, found = await at_one_block(self.service, [h.current for _, _, h in charts])
        for (address, token, history), current in zip(charts, found, strict=True):
            if isinstance(current, Balance) and current.amount == history.current.amount:
                series[address][token] = dataclasses.replace(history, current=current)
                continue
            del series[address][token]
            errors.append(ItemError(address, token, _moved(history.current, current, block)))
        for address in [a for a, by_token in series.items() if not by_token]:
            del series[address]
        return block

    async def get_current_balances_bulk(self, request: Mapping[str, Any] | object) -> CurrentBulk:
        """Current balances of ``addresses`` (``token_ids`` or every token held),
        without zeros unless ``include_zero``, at least ``min_balance`` base units.

        ``at_block``: every balance as of that block height instead, from the stored
        history (a token whose history does not reach back that far gets its own
        error, never a zero). The answer's ``block_height`` is the block all its
        balances are as of: ``at_block``, or else the newest block any was read at,
        those read at an older one re-read as of it (:mod:`.consistency`: never a
        mix of blocks; one that cannot be re-read is an item error)."""
        addresses = _strings(_field(request, "addresses"), "addresses")
        tokens = _strings(_field(request, "token_ids", "tokenIds"), "token_ids")
        include_zero = bool(_field(request, "include_zero", "includeZero"))
        minimum = _field(request, "min_balance", "minBalance")
        floor = 0 if minimum is None else parse_amount(minimum)
        at_block = _block_height(_field(request, "at_block", "atBlock"))
        self._check_size(len(addresses), len(tokens))
        moment = None if at_block is None else await self.service.block_time(at_block)
        found_by: dict[str, list[Balance]] = {}
        errors: list[ItemError] = []

        async def of(address: str) -> None:
            balances = found_by.setdefault(address, [])
            found = await self._current(address, tokens or None, at_block, moment)
            names: list[str | None] = list(tokens) or [None] * len(found)
            for token, item in zip(names, found, strict=True):
                if isinstance(item, BalancesError):
                    errors.append(ItemError(address, token, item))
                else:
                    balances.append(item)

        for outcome in await self._per_address(addresses, of):
            if isinstance(outcome, ItemError):
                errors.append(outcome)
        ordered = [b for address in addresses for b in found_by.get(address, [])]  # as asked
        block = at_block
        if at_block is None:
            one = await as_of_one_block(self.service, ordered)
            ordered, block = one.balances, one.block_height
            errors += [ItemError(b.address, b.token_id, error) for b, error in one.behind]
        shown = [
            b for b in ordered if (include_zero or b.amount > 0) and b.amount >= floor
        ]  # after the re-reads: an amount they changed is filtered as it is now
        return CurrentBulk(shown, errors, block)

    async def _current(
        self,
        address: str,
        tokens: Sequence[str] | None,
        at_block: int | None,
        moment: datetime | None,
    ) -> Sequence[Balance | BalancesError]:
        service = self.service
        if at_block is not None:
            found = await service.get_balances_at_block(address, tokens, at_block, moment)
            return [
                item if isinstance(item, BalancesError) else item.as_balance() for item in found
            ]
        if tokens is None:
            return await service.get_balances(address)
        items = await service.get_balances_batch([(address, t) for t in tokens])
        return [item.balance or item.error for item in items]  # type: ignore[misc]

    async def get_portfolio_performance_bulk(
        self, addresses: Sequence[str], period: str = "30d"
    ) -> PerformanceBulk:
        """Start and end value, absolute and percentage change, per token and in
        total: in USD where prices are known, in token amounts always. Every end
        holds at the answer's ``block_height`` (:meth:`_performance_at_one_block`)."""
        addresses = _strings(addresses, "addresses")
        self._check_size(len(addresses), 1)
        Period.parse(period)  # a bad period is the request's error, not each item's
        portfolios: dict[str, tuple[PortfolioHistory, list[Balance]]] = {}
        errors: list[ItemError] = []

        async def of(address: str) -> None:
            history = await self._portfolio(address, period)
            portfolios[address] = (history, await self.service.get_balances(address))

        for outcome in await self._per_address(addresses, of):
            if isinstance(outcome, ItemError):
                errors.append(outcome)
        performance, block = await self._performance_at_one_block(period, portfolios, errors)
        return PerformanceBulk(performance, errors, block)

    async def _performance_at_one_block(
        self,
        period: str,
        portfolios: Mapping[str, tuple[PortfolioHistory, list[Balance]]],
        errors: list[ItemError],
    ) -> tuple[dict[str, Performance], int | None]:
        """Each portfolio's end against its balances as of one block: a stored
        aggregate that ends elsewhere is computed again; one that still differs (a
        balance moved since it was read) is an item error, not a stale end."""
        currents = [(a, b) for a, (_, found) in portfolios.items() for b in found]
        block, found = await at_one_block(self.service, [b for _, b in currents])
        held: dict[str, dict[str, Balance | BalancesError]] = {a: {} for a in portfolios}
        for (address, read), now in zip(currents, found, strict=True):
            held[address][read.token_id] = now
        performance: dict[str, Performance] = {}
        for address, (history, _) in portfolios.items():
            amounts = held[address]
            failed = next((a for a in amounts.values() if isinstance(a, BalancesError)), None)
            if failed is None and not ends_on(history, amounts):
                history = await self.service.get_portfolio_history(address, period, "auto")
                if not ends_on(history, amounts):
                    failed = BehindBlockError(
                        f"a balance of {address} moved after it was read, so its portfolio "
                        f"cannot end at block {block} yet: ask again after a refresh"
                    )
            if failed is not None:
                errors.append(ItemError(address, None, failed))
            else:
                performance[address] = performance_of(history)
        return performance, block

    async def _portfolio(self, address: str, period: str) -> PortfolioHistory:
        stored = await self.aggregates.fresh(address, period)
        if stored is not None:
            return stored
        return await self.service.get_portfolio_history(address, period, "auto")

    async def generate_aggregated_data(
        self, addresses: Sequence[str], period: str = "30d"
    ) -> dict[str, Any]:
        """Precompute portfolio histories into blob storage for later reads."""
        addresses = _strings(addresses, "addresses")
        self._check_size(len(addresses), 1)
        written: list[str] = []
        errors: list[ItemError] = []

        async def of(address: str) -> None:
            history = await self.service.get_portfolio_history(address, period, "auto")
            await self.aggregates.save(address, period, history)
            written.append(address)

        for outcome in await self._per_address(addresses, of):
            if isinstance(outcome, ItemError):
                errors.append(outcome)
        return {"period": period, "generated": sorted(written), "errors": errors}

    # --- caches ----------------------------------------------------------------

    async def clear_cache(self) -> None:
        """Drop every in-process cache (balances, series blobs); stores are untouched."""
        await self.service.clear_cache()

    def get_cache_stats(self) -> dict[str, Any]:
        """Cache hits and misses, memory, blob operations by class, bytes and dollars."""
        return self.service.cache_report()
