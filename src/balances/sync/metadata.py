"""Token metadata in the background: bounded, single-flight, stored once per token.

A balance answer never waits on metadata (it says ``pending`` or ``unknown``
instead); reads ask for it with :meth:`MetadataFetcher.want`, which returns at once.
One worker drains what is wanted, at most ``concurrency`` requests at a time:

- the Token Metadata API's list route when the batch is large enough that paging
  the whole list costs fewer requests than one per token (its first page says how
  many there are), which also learns every other token listed;
- its per-token route otherwise (name, symbol and decimals in one request);
- the SIP-010 getters (decimals and symbol: two ``call-read``\\ s) for a token the
  API does not know, or when no metadata API is there (a bare node).

Found metadata goes to the :class:`~balances.stores.tokens.directory.TokenDirectory`
in one write per batch. A failure (5xx, timeout, 429 past the client's retries)
marks the token unknown for a backoff that doubles per failure, from
``retry_after`` to ``max_retry_after``; the next read after it asks again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from balances.chain.models import TokenMetadata
from balances.chain.protocol import ChainReader
from balances.chain.token_metadata import FT_LIST_LIMIT, MetadataPage
from balances.errors import BalancesError, NotFoundError
from balances.stores.tokens.directory import KnownMetadata, TokenDirectory

log = logging.getLogger("balances.sync")
FetchState = Literal["pending", "unknown"]
DEFAULT_CONCURRENCY = 4
DEFAULT_RETRY_AFTER = 300.0
DEFAULT_MAX_RETRY_AFTER = 86_400.0
#: Fewer wanted tokens than this are asked one by one, without probing the list.
LIST_MIN_BATCH = 20


@runtime_checkable
class MetadataApi(Protocol):
    """The Token Metadata API reads (StacksClient has them; a bare node does not)."""

    async def get_ft_metadata(self, contract_id: str) -> TokenMetadata: ...

    async def list_ft_metadata(
        self, offset: int = 0, limit: int = FT_LIST_LIMIT
    ) -> MetadataPage: ...


@dataclass(slots=True)
class _Failure:
    since: float
    why: str
    attempts: int


@dataclass(frozen=True, slots=True)
class SeedReport:
    """What one pass over the list route learned."""

    pages: int
    stored: int
    undecided: int
    total: int


class MetadataFetcher:
    """Fetches wanted tokens' metadata in the background and stores it once."""

    def __init__(
        self,
        chain: ChainReader,
        directory: TokenDirectory,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        retry_after: float = DEFAULT_RETRY_AFTER,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
        list_min_batch: int = LIST_MIN_BATCH,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._chain = chain
        self._api = chain if isinstance(chain, MetadataApi) else None
        self.directory = directory
        self._gate = asyncio.Semaphore(concurrency)
        self._retry_after = retry_after
        self._max_retry_after = max_retry_after
        self._list_min = list_min_batch
        self._clock = clock
        self._wall = wall_clock
        self._queued: dict[str, None] = {}  # insertion-ordered set
        self._inflight: set[str] = set()
        self._failures: dict[str, _Failure] = {}
        self._worker: asyncio.Task[None] | None = None

    # --- what reads ask -------------------------------------------------------------

    def want(self, contract_ids: Iterable[str]) -> None:
        """Fetch these tokens' metadata in the background (no-op for those in flight
        or failed recently); returns at once."""
        now = self._clock()
        for contract in contract_ids:
            if contract in self._queued or contract in self._inflight:
                continue
            failure = self._failures.get(contract)
            if failure is not None and now < self._retry_at(failure):
                continue
            self._queued[contract] = None
        if self._queued and (self._worker is None or self._worker.done()):
            self._worker = asyncio.create_task(self._drain())

    def state(self, contract_id: str) -> FetchState:
        """``unknown`` after a failed read (until it is asked again), else ``pending``."""
        busy = contract_id in self._queued or contract_id in self._inflight
        return "unknown" if contract_id in self._failures and not busy else "pending"

    def failure(self, contract_id: str) -> str | None:
        failed = self._failures.get(contract_id)
        return None if failed is None else failed.why

    def failed_recently(self, contract_id: str) -> bool:
        failed = self._failures.get(contract_id)
        return failed is not None and self._clock() < self._retry_at(failed)

    async def settled(self) -> None:
        """Wait until nothing wanted is left to fetch (tests, the CLI, shutdown)."""
        while self._worker is not None and not self._worker.done():
            await asyncio.shield(self._worker)

    async def close(self) -> None:
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    # --- the bulk seed --------------------------------------------------------------

    async def seed(self) -> SeedReport:
        """Every token the list route knows, page by page, stored as it goes."""
        if self._api is None:
            raise NotFoundError("this chain API serves no token metadata list")
        offset, pages, stored, undecided, total = 0, 0, 0, 0, 0
        while True:
            page = await self._page(offset)
            pages, total = pages + 1, page.total
            await self._store(page.tokens)
            stored, undecided = stored + len(page.tokens), undecided + len(page.undecided)
            offset += FT_LIST_LIMIT
            if offset >= page.total or not (page.tokens or page.undecided):
                return SeedReport(pages, stored, undecided, total)

    # --- the worker -----------------------------------------------------------------

    async def _drain(self) -> None:
        while self._queued:
            batch = list(self._queued)
            self._queued.clear()
            self._inflight.update(batch)
            try:
                found = await self._fetch(batch)
                await self._store(found)
            except BalancesError as error:  # the store failed: ask again later
                for contract in batch:
                    self._failed(contract, f"not stored: {error}")
            finally:
                self._inflight.difference_update(batch)

    async def _fetch(self, batch: list[str]) -> dict[str, TokenMetadata]:
        found: dict[str, TokenMetadata] = {}
        if self._api is not None and len(batch) >= self._list_min:
            found = await self._from_list(set(batch))
        rest = [contract for contract in batch if contract not in found]
        results = await asyncio.gather(*(self._one(contract) for contract in rest))
        found.update((meta.contract_id, meta) for meta in results if meta is not None)
        return found

    async def _from_list(self, wanted: set[str]) -> dict[str, TokenMetadata]:
        """Page the whole list when that is fewer requests than asking the wanted
        tokens one by one; returns every token listed (all are worth keeping)."""
        try:
            first = await self._page(0)
        except BalancesError as error:
            log.info("token metadata list unavailable: %s", error)
            return {}
        found = dict(first.tokens)
        pages_left = math.ceil(first.total / FT_LIST_LIMIT) - 1
        if pages_left >= len(wanted - found.keys()):
            return found  # the rest one by one is cheaper
        for index in range(1, pages_left + 1):
            try:
                found.update((await self._page(index * FT_LIST_LIMIT)).tokens)
            except BalancesError as error:
                log.info("token metadata list page %d unavailable: %s", index, error)
                break  # what is missing goes one by one
        return found

    async def _page(self, offset: int) -> MetadataPage:
        assert self._api is not None
        async with self._gate:
            return await self._api.list_ft_metadata(offset, FT_LIST_LIMIT)

    async def _one(self, contract: str) -> TokenMetadata | None:
        async with self._gate:
            try:
                return await self._read(contract)
            except BalancesError as error:
                self._failed(contract, str(error))
                log.info("metadata of %s unavailable: %s", contract, error)
                return None

    async def _read(self, contract: str) -> TokenMetadata:
        if self._api is not None:
            try:
                return await self._api.get_ft_metadata(contract)
            except NotFoundError:
                pass  # the API does not know it: ask the contract
        return await self._chain.get_token_metadata(contract, full=False)

    async def _store(self, found: dict[str, TokenMetadata]) -> None:
        if not found:
            return
        now = self._wall()
        await self.directory.record(
            {
                contract: KnownMetadata(
                    m.decimals, m.symbol, m.name, m.token_uri, m.total_supply, now
                )
                for contract, m in found.items()
            }
        )
        for contract in found:
            self._failures.pop(contract, None)

    def _failed(self, contract: str, why: str) -> None:
        known = self._failures.get(contract)
        attempts = 1 if known is None else known.attempts + 1
        self._failures[contract] = _Failure(self._clock(), why, attempts)

    def _retry_at(self, failure: _Failure) -> float:
        backoff: float = self._retry_after * 2.0 ** (failure.attempts - 1)
        return failure.since + min(self._max_retry_after, backoff)
