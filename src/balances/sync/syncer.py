"""The syncer: read addresses from the chain and fold what it read into storage.

One address refresh is the minimal plan of :mod:`balances.sync.plan`: STX, the
native listing (which discovers every native token the address holds) and one
call-read per map-based token it tracks (its own, plus the network's known map
tokens). Concurrent refreshes of one address share one set of requests. The chain
tip is read at most once per ``tip_ttl`` for every refresh in that window.

A read that fails changes nothing stored: its key carries the error instead (the
old amount stays, unknown stays unknown). What changed goes to the change sinks
(the time series) after it is stored.

With ``exact_heights`` (block ingestion runs), a stamp's height must be exact: the
reads are bracketed by two fresh tip reads, and the height is kept only when the
tip did not move in between (else it is None: the reads may include a block or
not, so ingestion re-reads such a pair rather than fold a block's delta into it).
"""

from __future__ import annotations

import asyncio
import logging
import math
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace

from balances.chain.models import ChainTip
from balances.chain.protocol import ChainReader
from balances.domain import STX, Principal, TokenId
from balances.domain.current import (
    LISTING_KEY,
    AddressBalances,
    AddressUpdate,
    Change,
    Merged,
    Stamp,
    TokenKindName,
    merge,
    token_key,
)
from balances.errors import BalancesError
from balances.stores.cache import TtlLruCache
from balances.stores.layout import CurrentBalanceStore
from balances.stores.tracked import TrackedSet
from balances.sync.catalog import TokenCatalog
from balances.sync.plan import RefreshResult, TrackedToken, build_plan, execute_plan

log = logging.getLogger("balances.sync")
ChangeSink = Callable[[Sequence[Change]], Awaitable[None]]
DEFAULT_TIP_TTL = 5.0


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    """One refresh: the address's balances after it, what moved, and what failed."""

    address: str
    balances: AddressBalances
    changes: tuple[Change, ...] = ()
    errors: dict[str, BalancesError] = field(default_factory=dict)
    #: Set when the reads could not be stored (they are still in ``balances``).
    store_error: BalancesError | None = None
    #: The map-based tokens this refresh read (callers check theirs were included).
    map_tokens: frozenset[str] = frozenset()


class Syncer:
    """Refreshes addresses; see the module docstring."""

    def __init__(
        self,
        chain: ChainReader,
        store: CurrentBalanceStore,
        tracked: TrackedSet,
        catalog: TokenCatalog,
        *,
        map_tokens: Sequence[TokenId] = (),
        concurrency: int = 10,
        tip_ttl: float = DEFAULT_TIP_TTL,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sinks: Sequence[ChangeSink] = (),
        exact_heights: bool = False,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self._chain = chain
        self._store = store
        self._tracked = tracked
        self.catalog = catalog
        self._map_tokens = tuple(map_tokens)
        catalog.learn_map(self._map_tokens)  # configured as map-based: no interface read
        self._gate = asyncio.Semaphore(concurrency)
        self._wall = wall_clock
        self._last_at = -math.inf
        self._tips: TtlLruCache[str, ChainTip] = TtlLruCache(
            ttl=tip_ttl, max_entries=1, clock=clock, name="chain-tip"
        )
        self._sinks = list(sinks)
        self._inflight: dict[str, asyncio.Task[SyncOutcome]] = {}
        self.exact_heights = exact_heights

    def add_sink(self, sink: ChangeSink) -> None:
        self._sinks.append(sink)

    async def refresh(self, address: Principal, extra: Sequence[TokenId] = ()) -> SyncOutcome:
        """Refresh every tracked token of ``address``, plus ``extra`` map-based tokens."""
        key = str(address)
        running = self._inflight.get(key)
        if running is None:
            running = self._start(key, self._refresh(address, extra))
            return await asyncio.shield(running)
        outcome = await asyncio.shield(running)
        # Joined a refresh planned without some of our tokens: read those one by one.
        for token in extra:
            if token_key(token) not in outcome.map_tokens:
                outcome = await self.refresh_token(address, token)
        return outcome

    async def refresh_many(
        self, addresses: Sequence[Principal], *, confirm: bool = False
    ) -> list[SyncOutcome]:
        """Refresh many addresses, ``concurrency`` at a time, and store what they read in
        one batch (one journal segment in the sharded layout); results in input order.
        ``confirm`` stores the reads' stamps even where nothing changed (an anchor)."""
        unique = list(dict.fromkeys(addresses))
        before = await self._exact_tip() if self.exact_heights else None
        reads = await asyncio.gather(
            *(self._read(address, (), bracket=False) for address in unique)
        )
        if self.exact_heights:
            height = await self._settle(before)
            reads = [(_at_height(update, height), e, m) for update, e, m in reads]
        updates = [replace(update, confirm=confirm) for update, _, _ in reads]
        merged = await self._store.apply_many(updates)
        outcomes = {}
        for (update, errors, mapped), result in zip(reads, merged, strict=True):
            outcomes[update.address] = await self._outcome(update, errors, mapped, result)
        return [outcomes[str(address)] for address in addresses]

    async def refresh_token(self, address: Principal, token: TokenId) -> SyncOutcome:
        """Read one token of ``address`` with a single request (no listing)."""
        async with self._gate:
            before = await self._exact_tip() if self.exact_heights else None
            stamp = await self._stamp()
            try:
                kind = await self.catalog.kind(token)
                amount = await self._read_one(address, token, kind)
                if self.exact_heights:
                    stamp = Stamp(stamp.at, await self._settle(before))
            except BalancesError as error:
                update = AddressUpdate(str(address), stamp, {}, errors={str(token): error})
                return await self._persist(update, {str(token): error}, frozenset())
            update = AddressUpdate(str(address), stamp, {token_key(token): (amount, kind)})
            mapped = frozenset({token_key(token)} if kind == "map" else ())
            return await self._persist(update, {}, mapped)

    def _start(self, key: str, work: Awaitable[SyncOutcome]) -> asyncio.Task[SyncOutcome]:
        async def run() -> SyncOutcome:
            return await work

        task = asyncio.create_task(run())
        self._inflight[key] = task
        task.add_done_callback(lambda _: self._inflight.pop(key, None))
        return task

    async def _refresh(self, address: Principal, extra: Sequence[TokenId]) -> SyncOutcome:
        update, errors, mapped = await self._read(address, extra)
        return await self._persist(update, errors, mapped)

    async def _read(
        self, address: Principal, extra: Sequence[TokenId], *, bracket: bool = True
    ) -> tuple[AddressUpdate, dict[str, BalancesError], frozenset[str]]:
        """Read ``address`` from the chain (nothing stored yet)."""
        async with self._gate:
            mapped, kind_errors = await self._map_tokens_of(address, extra)
            plan = build_plan(address, [TrackedToken.map_based(t) for t in mapped], discover=True)
            if self.exact_heights:  # a batch brackets all its reads at once
                before = await self._exact_tip() if bracket else None
                result = await execute_plan(plan, self._chain)
                stamp = Stamp(self._now(), await self._settle(before) if bracket else None)
            else:
                stamp, result = await asyncio.gather(self._stamp(), execute_plan(plan, self._chain))
        update, errors = _update_from(result, stamp, kind_errors)
        self.catalog.learn_native(result.held)
        return update, errors, frozenset(token_key(t) for t in mapped)

    async def _map_tokens_of(
        self, address: Principal, extra: Sequence[TokenId]
    ) -> tuple[list[TokenId], dict[str, BalancesError]]:
        """The map-based tokens to read for ``address``: known ones, its own, ``extra``."""
        tracked = await self._tracked.get(address)
        candidates = [*self._map_tokens, *extra]
        candidates += [TokenId.parse(t) for t in (tracked.tokens if tracked else ())]
        unique = list({token_key(t): t for t in candidates if not t.is_stx}.values())
        kinds = await asyncio.gather(
            *(self.catalog.kind(token) for token in unique), return_exceptions=True
        )
        mapped, errors = [], {}
        for token, kind in zip(unique, kinds, strict=True):
            if isinstance(kind, BalancesError):
                errors[token_key(token)] = kind
            elif isinstance(kind, BaseException):
                raise kind
            elif kind == "map":
                mapped.append(token)
        return mapped, errors

    async def _read_one(self, address: Principal, token: TokenId, kind: TokenKindName) -> int:
        if kind == "stx":
            return await self._chain.get_stx_balance(address)
        if kind == "map":
            return await self._chain.get_map_token_balance(token.contract_id, address)
        asset = token.asset_identifier or await self.catalog.asset_identifier(token)
        if asset is None:
            interface = await self._chain.get_contract_interface(token.contract_id)
            asset = interface.asset_identifier
        assert asset is not None  # a native token's interface names its asset
        return await self._chain.get_ft_balance(address, asset)

    def _now(self) -> float:
        """The wall clock, strictly increasing within this syncer: of two reads it
        takes, the later has the later stamp even when the clock did not move (at one
        stamp the rules keep the larger amount, docs/folding.md)."""
        at = max(self._wall(), math.nextafter(self._last_at, math.inf))
        self._last_at = at
        return at

    async def _stamp(self) -> Stamp:
        """Now, and the chain tip's height when it can be read (a refresh does not
        fail for want of a height)."""
        at = self._now()
        try:
            tip = await self._tips.get_or_load("tip", self._chain.get_chain_tip)
        except BalancesError as error:
            log.info("chain tip unavailable: %s", error)
            return Stamp(at, None)
        return Stamp(at, tip.height)

    async def _exact_tip(self) -> int | None:
        """A fresh tip height (None: it could not be read, so no height is exact)."""
        try:
            return (await self._chain.get_chain_tip()).height
        except BalancesError as error:
            log.info("chain tip unavailable: %s", error)
            return None

    async def _settle(self, before: int | None) -> int | None:
        """The height reads made since ``before`` was read are exact at: ``before`` if
        the tip has not moved since, else None."""
        if before is None:
            return None
        after = await self._exact_tip()
        return before if after == before else None

    async def _persist(
        self,
        update: AddressUpdate,
        errors: dict[str, BalancesError],
        mapped: frozenset[str],
    ) -> SyncOutcome:
        try:
            result: Merged | BalancesError = await self._store.apply(update)
        except BalancesError as error:
            result = error
        return await self._outcome(update, errors, mapped, result)

    async def _outcome(
        self,
        update: AddressUpdate,
        errors: dict[str, BalancesError],
        mapped: frozenset[str],
        result: Merged | BalancesError,
    ) -> SyncOutcome:
        if isinstance(result, BalancesError):
            log.warning("refresh of %s not stored: %s", update.address, result)
            alone = merge(None, update)
            return SyncOutcome(update.address, alone.balances, (), errors, result, mapped)
        await self._emit(result.changes)
        return SyncOutcome(update.address, result.balances, result.changes, errors, None, mapped)

    async def _emit(self, changes: Sequence[Change]) -> None:
        if not changes:
            return
        for sink in self._sinks:
            try:
                await sink(changes)
            except BalancesError as error:
                log.error("a change sink failed for %d changes: %s", len(changes), error)


def _update_from(
    result: RefreshResult, stamp: Stamp, errors: dict[str, BalancesError]
) -> tuple[AddressUpdate, dict[str, BalancesError]]:
    """The store update for a plan's result, and every error by key (``errors`` are
    those found before the plan ran)."""
    amounts: dict[str, tuple[int, TokenKindName]] = {}
    errors = dict(errors)
    for key, read in result.reads.items():
        kind: TokenKindName = "stx" if read.token == STX else "map"
        if read.source == "ft-list":
            continue  # natives come from the whole listing below
        if read.error is not None:
            errors[key] = read.error
        elif read.amount is not None:
            amounts[key] = (read.amount, kind)
    amounts.update(native_amounts(result.held))
    if result.listing_error is not None:
        errors[LISTING_KEY] = result.listing_error
    update = AddressUpdate(
        str(result.principal),
        stamp,
        amounts,
        listing_complete=result.listed,
        errors=errors,
    )
    return update, errors


def _at_height(update: AddressUpdate, height: int | None) -> AddressUpdate:
    return replace(update, stamp=Stamp(update.stamp.at, height))


def native_amounts(held: dict[str, int]) -> dict[str, tuple[int, TokenKindName]]:
    """A listing by asset identifier, keyed by contract id; a contract defining several
    fungible tokens keeps each under its full asset identifier."""
    contracts: dict[str, int] = {}
    for asset in held:
        contract = asset.partition("::")[0]
        contracts[contract] = contracts.get(contract, 0) + 1
    amounts: dict[str, tuple[int, TokenKindName]] = {}
    for asset, amount in held.items():
        contract = asset.partition("::")[0]
        # Interned: the same token ids key every address's balances in the cache.
        key = sys.intern(contract if contracts[contract] == 1 else asset)
        amounts[key] = (amount, "native")
    return amounts
