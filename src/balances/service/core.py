"""The parts every ``BalanceService`` method stands on: wiring and the read path.

:class:`ServiceCore` builds the service from its settings (the parts it is not
handed come from :mod:`balances.bootstrap`) and holds the read path of one
address: cache -> store -> chain (:meth:`ServiceCore._view`). A refresh is a path of
its own: the syncer reads the chain and stores what it read; the answer is cached.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, cast

import httpx

from balances.blobs import (
    BlobStore,
    MeteredBlobStore,
    StorageHealth,
    WatchedBlobStore,
)
from balances.bootstrap import create_client, open_configured_store, open_price_source
from balances.chain.history import HistoryReader as HistoryChain
from balances.chain.protocol import ChainReader
from balances.config import BalanceServiceConfig, IngestSource, SyncOnRead
from balances.domain import (
    Principal,
    Source,
    TokenId,
)
from balances.domain.current import AddressBalances, merge_views
from balances.errors import (
    BalanceNotFoundError,
    BalancesError,
)
from balances.prices import PriceSource
from balances.service.history import (
    HistoryReader,
)
from balances.service.ingest import Ingestion
from balances.service.views import (
    Need,
    ViewBuilder,
    size_of_balances,
)
from balances.service.webhooks import Webhooks
from balances.stores.cache import TtlLruCache
from balances.stores.feed import ChangeFeed, FeedSettings, LiveHub
from balances.stores.layout import BalanceLayout, CurrentBalanceStore
from balances.stores.layouts import open_layout
from balances.stores.prices import PriceStore
from balances.stores.sharded.store import ShardedStore
from balances.stores.tokens.directory import TokenDirectory
from balances.stores.tokens.registry import TokenRegistry
from balances.stores.tracked import TrackedSet
from balances.stores.webhooks import WebhookRegistry
from balances.sync.backfill import Backfiller
from balances.sync.catalog import TokenCatalog
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


class ServiceCore:
    """The wiring and read path of :class:`~balances.service.BalanceService`."""

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
        #: The change feed (the sharded layout only), written while ingestion runs here.
        self.feed = self._wire_feed(wall_clock)
        #: Webhook subscriptions of the feed (None without a feed).
        self.webhooks = self._wire_webhooks(wall_clock)
        self.tracked = TrackedSet(self.blobs, wall_clock=wall_clock)
        self._wire_sync(clock, wall_clock)
        self._views = ViewBuilder(self.catalog, self.config.stale_after, wall_clock)
        self._address_network = self.config.address_network
        self._wire_history(price_source, clock, wall_clock)
        #: Block ingestion, once :meth:`ingestion_for` built it (``balances serve`` does).
        self.ingestion: Ingestion | None = None
        self._background: set[asyncio.Task[Any]] = set()

    def _wire_feed(self, wall_clock: Callable[[], float]) -> ChangeFeed | None:
        layout, settings = self.layout, self.config.feed
        if not settings.enabled or not isinstance(layout, ShardedStore):
            return None
        feed = ChangeFeed(
            self.blobs,
            layout.settings.prefix,
            FeedSettings(
                retention_seconds=settings.retention_hours * 3600.0,
                write_seconds=settings.write_seconds,
            ),
            hub=LiveHub(settings.queue_limit),
            wall_clock=wall_clock,
        )
        layout.feed = feed
        return feed

    def _wire_webhooks(self, wall_clock: Callable[[], float]) -> Webhooks | None:
        layout = self.layout
        if self.feed is None or not isinstance(layout, ShardedStore):
            return None
        return Webhooks(
            self.feed,
            WebhookRegistry(self.blobs, layout.settings.prefix),
            self.config.webhooks,
            max_addresses=self.config.feed.max_addresses,
            wall_clock=wall_clock,
        )

    def _wire_sync(self, clock: Callable[[], float], wall_clock: Callable[[], float]) -> None:
        """The refresh path: token catalog, syncer, and the cache of current balances."""
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

    def _wire_history(
        self,
        price_source: PriceSource | None,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
    ) -> None:
        """Prices, history reads and backfill."""
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
        if self.webhooks is not None:
            try:
                await self.webhooks.dispatcher.stop()
            except BalancesError as error:
                log.warning("webhook cursors could not be saved: %s", error)
        if self.ingestion is not None and self.ingestion.running:
            await self.ingestion.stop()
        if self.feed is not None and self.feed.writing:
            try:
                await self.feed.close()
            except BalancesError as error:
                log.warning("the change feed could not be closed cleanly: %s", error)
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

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
