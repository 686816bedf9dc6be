"""``BalanceService``: current balances of Stacks addresses, with their freshness.

Reads go cache -> blob store -> chain. The in-process cache holds each address's
balances for ``cache_timeouts.current``; the store holds what every replica has
read; the chain is asked when the stored amount is missing or older than
``stale_after`` (``sync_on_read``). A failed chain read never replaces a known
amount: it comes back ``stale`` with the error. With nothing known, the caller gets
the error itself, never ``"0"``.

``BalanceService()`` with no arguments reads ``BALANCES_*`` settings (defaults: the
local store ``./.balances`` and the Hiro mainnet API).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self, cast

import httpx

from balances.blobs import (
    S3_STANDARD,
    VERCEL_BLOB,
    BlobStore,
    MeteredBlobStore,
    Problem,
    StorageHealth,
    WatchedBlobStore,
)
from balances.blobs.health import reportable
from balances.bootstrap import create_client, open_configured_store, open_price_source
from balances.chain.history import HistoryReader as HistoryChain
from balances.chain.protocol import ChainReader
from balances.config import BalanceServiceConfig, IngestSource, SyncOnRead
from balances.domain import (
    DEFAULT_PERIOD,
    Balance,
    Granularity,
    Period,
    Principal,
    Source,
    TokenId,
    parse_chain_time,
    parse_timestamp,
)
from balances.domain.current import AddressBalances, merge_views
from balances.errors import (
    BalanceNotFoundError,
    BalancesError,
    BlobStoreError,
    ConfigError,
    InvalidPeriodError,
    ValidationError,
    quoted,
)
from balances.prices import PriceSource
from balances.service.history import (
    BalanceHistory,
    HistoricalBalance,
    HistoryReader,
    PortfolioHistory,
)
from balances.service.ingest import Ingestion
from balances.service.views import (
    BalanceRequest,
    BatchItem,
    Need,
    SyncReport,
    ViewBuilder,
    parse_request,
    size_of_balances,
)
from balances.stores.cache import TtlLruCache
from balances.stores.layout import BalanceLayout, CurrentBalanceStore
from balances.stores.layouts import open_layout
from balances.stores.prices import PriceStore
from balances.stores.tokens.directory import TokenDirectory
from balances.stores.tokens.registry import TokenInfo, TokenRegistry
from balances.stores.tracked import TrackedAddress, TrackedSet
from balances.sync.backfill import Backfiller, BackfillReport, Progress
from balances.sync.catalog import TokenCatalog
from balances.sync.metadata import SeedReport
from balances.sync.syncer import Syncer, SyncOutcome

log = logging.getLogger("balances.service.balances")
#: How long a failed refresh is served from the cache before the chain is tried again.
ERROR_TTL = 15.0


@dataclass(frozen=True, slots=True)
class _View:
    balances: AddressBalances
    source: Source


#: The highest block height we ask the chain for (the node's heights are u32).
MAX_BLOCK_HEIGHT = 2**32 - 1
#: Whether a read may add to the tracked set, set per request by the REST layer (an
#: anonymous request within the operator's budget only); None (the Python API, a
#: keyed request): ``config.track_on_read`` decides alone.
read_tracking: ContextVar[Callable[[], Awaitable[bool]] | None] = ContextVar(
    "read_tracking", default=None
)


async def _may_track() -> bool:
    gate = read_tracking.get()
    return True if gate is None else await gate()


class BalanceService:
    """Current balances; see the module docstring. Use it as an async context manager
    (or call :meth:`close`) to release its HTTP client and store."""

    def __init__(
        self,
        config: BalanceServiceConfig | None = None,
        *,
        blobs: BlobStore | None = None,
        chain: ChainReader | None = None,
        http: httpx.AsyncClient | None = None,
        price_source: PriceSource | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config if config is not None else BalanceServiceConfig.from_env()
        self._owned: list[Callable[[], object]] = []
        self._http = http
        #: What the store is, for health reports: a URL scheme, or the class passed in.
        self.store_label = (
            self.config.store_url.partition("://")[0] if blobs is None else type(blobs).__name__
        )
        #: Blobs that failed to read lately (``/health``, ``/metrics``).
        self.storage_health = StorageHealth()
        #: The store itself, beneath the health watch and the meter.
        self.backend = blobs if blobs is not None else self._own_store()
        self.blobs = MeteredBlobStore(WatchedBlobStore(self.backend, self.storage_health))
        self.chain = chain if chain is not None else create_client(self.config, self._client())
        self._wall = self.wall_clock = wall_clock
        self.layout: BalanceLayout = open_layout(self.config, self.blobs, clock, wall_clock)
        self.current: CurrentBalanceStore = self.layout
        self.tracked = TrackedSet(self.blobs, wall_clock=wall_clock)
        self.catalog = TokenCatalog(
            self.chain,
            TokenRegistry(self.blobs),
            TokenDirectory(self.blobs),
            clock=clock,
            wall_clock=wall_clock,
        )
        self.syncer = Syncer(
            self.chain,
            self.current,
            self.tracked,
            self.catalog,
            map_tokens=[TokenId.parse(t) for t in self.config.map_tokens],
            concurrency=self.config.sync_concurrency,
            clock=clock,
            wall_clock=wall_clock,
            exact_heights=self.config.ingest.enabled,
        )
        self.cache: TtlLruCache[str, AddressBalances] = TtlLruCache(
            ttl=self.config.cache_timeouts.current,
            max_entries=self.config.cache_max_addresses,
            max_bytes=int(self.config.cache_max_mb * 1_000_000),
            size_of=size_of_balances,
            clock=clock,
            name="current-balances",
        )
        self._views = ViewBuilder(self.catalog, self.config.stale_after, wall_clock)
        self._address_network = self.config.address_network
        self.price_source = price_source if price_source is not None else self._own_price_source()
        self.prices = (
            PriceStore(self.blobs, recheck_seconds=self.config.cache_timeouts.current, clock=clock)
            if self.price_source is not None
            else None
        )
        self.history = HistoryReader(self.layout, self.prices, wall_clock)
        self.backfiller = Backfiller(
            cast(HistoryChain, self.chain), self.layout, self.blobs, wall_clock=wall_clock
        )
        #: Block ingestion, once :meth:`ingestion_for` built it (``balances serve`` does).
        self.ingestion: Ingestion | None = None
        self._background: set[asyncio.Task[Any]] = set()

    def ingestion_for(self, source: IngestSource | None = None) -> Ingestion:
        """Block ingestion over this service's store and chain (built once): answers of
        the addresses it keeps fresh carry its cursor as their freshness."""
        if self.ingestion is None:
            self.ingestion = Ingestion(self, source)
            self._views.coverage = self.ingestion.coverage
            self._views.pending = self.ingestion.pending
        return self.ingestion

    def _own_store(self) -> BlobStore:
        store = open_configured_store(self.config)
        self._owned.append(store.close)
        return store

    def _client(self) -> httpx.AsyncClient:
        """The HTTP client for the chain and prices: the one given, or our own."""
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=15.0)
            self._owned.append(self._http.aclose)
        return self._http

    def _own_price_source(self) -> PriceSource | None:
        if self.config.prices.url_template is None:
            return None
        return open_price_source(self.config, self._client())

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        if self.ingestion is not None and self.ingestion.running:
            await self.ingestion.stop()
        await self.catalog.close()
        for release in reversed(self._owned):
            outcome = release()
            if asyncio.iscoroutine(outcome):
                await outcome
        self._owned.clear()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # --- reads ---------------------------------------------------------------

    async def get_balance(self, address: str, token_id: str) -> Balance:
        """One token balance of ``address``."""
        principal, token = self._principal(address), self._token(token_id)
        need = await self._views.need(principal, [token])
        view = await self._view(principal, need)
        return (await self._views.balances(principal, view.balances, need, view.source))[0]

    def cached_balance(self, address: str, token_id: str) -> Balance | None:
        """The answer :meth:`get_balance` would give from the cache, without any I/O, or
        None when the cache cannot answer alone (then call :meth:`get_balance`). The
        REST API's hot path: a cached balance costs no await at all."""
        try:
            principal, token = self._principal(address), self._token(token_id)
        except BalancesError:
            return None  # the full path gives the error
        key = str(principal)
        info = self.catalog.peek(token)
        if key not in self.cache or info is None or not self.catalog.display_ready(info, token):
            return None
        view = self.cache.get(key)
        need = Need(
            (token,), {str(token): info.kind}, self.config.stale_after, {}, {str(token): info}
        )
        if view is None or not self._views.satisfies(view, need, with_errors=True):
            return None
        answer = self._views.answer(principal, view, token, info, "cache")
        return answer if isinstance(answer, Balance) else None

    async def get_balances(
        self, address: str, token_ids: Sequence[str] | None = None
    ) -> list[Balance]:
        """``token_ids``' balances (None: every token the address is known to hold,
        zeros included), in the order asked."""
        principal = self._principal(address)
        tokens = None if token_ids is None else [self._token(t) for t in token_ids]
        need = await self._views.need(principal, tokens)
        view = await self._view(principal, need)
        return await self._views.balances(principal, view.balances, need, view.source)

    async def get_all_balances(self, address: str) -> list[Balance]:
        """Every non-zero balance of ``address``."""
        return [b for b in await self.get_balances(address) if b.amount > 0]

    async def get_balances_batch(
        self, requests: Sequence[BalanceRequest | tuple[str, str] | Mapping[str, str]]
    ) -> list[BatchItem]:
        """Many (address, token) balances: one store read per distinct address,
        results in input order, and a bad item gets its own error."""
        if len(requests) > self.config.api.max_batch:
            raise ValidationError(
                f"a batch holds at most {self.config.api.max_batch} requests, got {len(requests)}"
            )
        items: list[BatchItem | None] = [None] * len(requests)
        groups: dict[str, list[tuple[int, TokenId]]] = {}
        principals: dict[str, Principal] = {}
        for index, raw in enumerate(requests):
            try:
                address, token_id = parse_request(raw)
                principal, token = self._principal(address), self._token(token_id)
            except BalancesError as error:
                items[index] = BatchItem.failed(raw, error)
                continue
            principals[str(principal)] = principal
            groups.setdefault(str(principal), []).append((index, token))
        gate = asyncio.Semaphore(self.config.sync_concurrency)

        async def group(key: str) -> None:
            async with gate:
                for index, item in await self._batch_group(principals[key], groups[key]):
                    items[index] = item

        await asyncio.gather(*(group(key) for key in groups))
        return [item for item in items if item is not None]

    async def _batch_group(
        self, principal: Principal, wanted: list[tuple[int, TokenId]]
    ) -> list[tuple[int, BatchItem]]:
        tokens = [token for _, token in wanted]
        try:
            need = await self._views.need(principal, tokens)
            view = await self._view(principal, need)
        except BalancesError as error:
            return [(i, BatchItem.failed((str(principal), str(t)), error)) for i, t in wanted]
        results = await self._views.results(principal, view.balances, need, view.source)
        return [
            (index, BatchItem.of(str(principal), str(token), result))
            for (index, token), result in zip(wanted, results, strict=True)
        ]

    # --- history ---------------------------------------------------------------

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
            if not 0 <= block_height <= MAX_BLOCK_HEIGHT:
                raise InvalidPeriodError(
                    f"block heights are 0 to {MAX_BLOCK_HEIGHT:,}, got {quoted(block_height)}"
                )
            moment = (await self.chain.get_block(block_height)).time
        else:
            moment = parse_chain_time(at)  # type: ignore[arg-type]
        if moment.timestamp() > self._wall():
            raise InvalidPeriodError(f"{moment.isoformat()} is in the future")
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

    # --- prices ----------------------------------------------------------------

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

    # --- sync ----------------------------------------------------------------

    async def refresh_balance(self, address: str, token_id: str) -> Balance:
        """Read one token of ``address`` from the chain now (one request)."""
        principal, token = self._principal(address), self._token(token_id)
        need = await self._views.need(principal, [token])
        if need.kinds[str(token)] == "map":
            await self._track_tokens(principal, [token])
        outcome = await self.syncer.refresh_token(principal, token)
        view = self._after_refresh(principal, outcome)
        return (await self._views.balances(principal, view, need, "chain"))[0]

    async def refresh_address_balances(self, address: str) -> list[Balance]:
        """Read every tracked token of ``address`` from the chain now."""
        principal = self._principal(address)
        outcome = await self.syncer.refresh(principal)
        view = self._after_refresh(principal, outcome)
        need = await self._views.need(principal, None)
        return await self._views.balances(principal, view, need, "chain")

    async def sync_on_demand(
        self, address: str, token_id: str | None = None, max_age: float | None = None
    ) -> SyncReport:
        """Refresh only what is older than ``max_age`` seconds (default ``stale_after``)."""
        principal = self._principal(address)
        tokens = None if token_id is None else [self._token(token_id)]
        need = await self._views.need(principal, tokens, max_age=max_age)
        view = await self._view(principal, need, sync="stale")
        balances = await self._views.balances(principal, view.balances, need, view.source)
        return SyncReport(str(principal), view.source == "chain", balances)

    # --- tracking and tokens ---------------------------------------------------

    async def track(self, address: str, token_ids: Iterable[str] = ()) -> TrackedAddress:
        """Keep ``address`` fresh (and read these map-based tokens for it). With block
        ingestion running, it is read once now (its anchor); blocks keep it fresh."""
        principal = self._principal(address)
        entry = await self.tracked.track(principal, [self._token(t) for t in token_ids])
        if self.ingestion is not None and self.ingestion.running:
            await self.ingestion.index.refresh(force=True)
            self._spawn(self._anchor([principal]))
        return entry

    async def _anchor(self, principals: list[Principal]) -> None:
        try:
            await self.syncer.refresh_many(principals, confirm=True)
        except BalancesError as error:
            log.info(
                "anchoring %d addresses failed (the scheduler retries): %s", len(principals), error
            )
        for principal in principals:
            self.cache.invalidate(str(principal))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def untrack(self, address: str, token_ids: Iterable[str] | None = None) -> bool:
        principal = self._principal(address)
        tokens = None if token_ids is None else [self._token(t) for t in token_ids]
        return await self.tracked.untrack(principal, tokens)

    async def tracked_addresses(self) -> list[TrackedAddress]:
        return await self.tracked.entries()

    async def storage_problems(self) -> list[Problem]:
        """Blobs that failed to read lately, after probing the index blobs every
        answer needs (the tracked set; the sharded layout's manifest)."""
        for probe in (self.tracked.entries, self.layout.probe):
            try:
                await probe()
            except BlobStoreError as error:
                self.storage_failed(error)
        return self.storage_health.problems()

    def storage_failed(self, error: BlobStoreError) -> bool:
        """Record a storage failure met above the store (a blob that did not decode);
        True when it is news (then logged once, at warning level)."""
        return reportable(error) and self.storage_health.report(error)

    async def sync_token_metadata(self) -> SeedReport:
        """Seed the metadata of every token the Token Metadata API lists (bulk pages)."""
        return await self.catalog.fetcher.seed()

    async def metadata_settled(self) -> None:
        """Wait until the metadata that answers asked for is fetched (or failed)."""
        await self.catalog.fetcher.settled()

    async def get_token(self, token_id: str) -> TokenInfo:
        """What is known of a token (kind, asset name, SIP-010 metadata)."""
        return await self.catalog.info(self._token(token_id))

    async def clear_cache(self) -> None:
        """Drop the in-process caches (balances, series blobs); stores are untouched."""
        self.cache.clear()
        clear = getattr(self.layout, "clear", None)
        if clear is not None:
            clear()

    def cache_report(self) -> dict[str, Any]:
        """Cache statistics, blob operations by billing class and their estimated cost
        (at the store's own prices: S3 for s3://, Vercel Blob otherwise)."""
        stats = self.cache.stats()
        meter = self.blobs.snapshot()
        prices = S3_STANDARD if self.store_label in ("s3", "s3a") else VERCEL_BLOB
        return {
            **stats.as_dict(),
            "memory_bytes": stats.bytes,
            "blob_operations": dict(meter.operations),
            "blob_classes": {
                "simple": meter.simple,
                "advanced": meter.advanced,
                "free": meter.free,
            },
            "bytes_uploaded": meter.bytes_uploaded,
            "bytes_downloaded": meter.bytes_downloaded,
            "bytes_stored": meter.bytes_stored,
            "estimated_cost": meter.cost_report(prices).as_dict(),
        }

    # --- internals -------------------------------------------------------------

    def _principal(self, address: str) -> Principal:
        principal = Principal.parse(address)
        if principal.network != self._address_network:
            self._views.check_network(principal, self._address_network, self.config.network)
        return principal

    def _token(self, token_id: str) -> TokenId:
        token = TokenId.parse(token_id)
        contract = token.contract
        if contract is not None and contract.network != self._address_network:
            self._views.check_network(contract, self._address_network, self.config.network)
        return token

    async def _view(
        self, principal: Principal, need: Need, sync: SyncOnRead | None = None
    ) -> _View:
        """The balances of ``principal`` covering ``need``: cache, else store, else chain."""
        key, sync = str(principal), sync or self.config.sync_on_read
        cached = self.cache.get(key)
        if cached is not None and self._views.satisfies(cached, need, with_errors=True):
            return _View(cached, "cache")
        stored = cached or await self.current.load(principal)
        if stored is not None and self._views.satisfies(stored, need, with_errors=False):
            self.cache.put(key, stored)
            return _View(stored, "store")
        if sync == "never" or (sync == "missing" and stored and self._views.covers(stored, need)):
            if stored is None:
                raise BalanceNotFoundError(
                    f"no balance of {principal} has been read yet and sync_on_read is never; "
                    "refresh it first (refresh_address_balances, POST /balances/{address}/refresh)"
                )
            return _View(stored, "store")
        return _View(await self._refresh_for(principal, need, stored), "chain")

    async def _refresh_for(
        self, principal: Principal, need: Need, stored: AddressBalances | None
    ) -> AddressBalances:
        map_tokens = need.map_tokens
        if self.config.track_on_read:
            await self._track_tokens(principal, map_tokens, by_read=True)
        outcome = await self.syncer.refresh(principal, map_tokens)
        return self._after_refresh(principal, outcome, stored)

    async def _track_tokens(
        self, principal: Principal, tokens: Sequence[TokenId], *, by_read: bool = False
    ) -> None:
        known = await self.tracked.get(principal)
        if known is None or any(str(t) not in known.tokens for t in tokens):
            if by_read and not await _may_track():
                return  # answered, not kept fresh
            await self.tracked.track(principal, tokens)

    def _after_refresh(
        self, principal: Principal, outcome: SyncOutcome, stored: AddressBalances | None = None
    ) -> AddressBalances:
        view = outcome.balances
        if outcome.store_error is not None and stored is not None:
            view = merge_views(stored, view)
        ttl = ERROR_TTL if view.failures else None
        self.cache.put(str(principal), view, ttl=ttl)
        return view
