"""Block ingestion for a :class:`~balances.service.BalanceService`: built from its parts.

:class:`Ingestion` puts together the ingestor (the service's sharded store, tracked
set and chain client), its source (pull, or a push queue the REST routes feed),
the runner and the drift reconciler; it tells the service which answers it vouches
for (``coverage``) and which cached views its blocks changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol

from balances.chain.protocol import ChainReader
from balances.config import BalanceServiceConfig, IngestConfig, IngestSource
from balances.domain import Principal
from balances.domain.current import AddressBalances, Stamp
from balances.errors import BalancesError, ConfigError
from balances.ingest.ingestor import Ingestor
from balances.ingest.pending import PendingAmounts
from balances.ingest.pull import ApiBlockFetcher, PullSettings
from balances.ingest.push import PushQueue
from balances.ingest.reconciler import Reconciler
from balances.ingest.rules import anchor_height
from balances.ingest.runner import IngestRunner
from balances.ingest.settings import IngestSettings
from balances.ingest.stats import IngestStatus
from balances.ingest.tracked_index import TrackedIndex
from balances.stores.cache import TtlLruCache
from balances.stores.feed import ChangeFeed
from balances.stores.layout import BalanceLayout
from balances.stores.sharded.store import ShardedStore
from balances.stores.tracked import TrackedSet
from balances.sync.catalog import TokenCatalog
from balances.sync.syncer import Syncer

log = logging.getLogger("balances.ingest")


def ingest_settings(config: IngestConfig) -> IngestSettings:
    return IngestSettings(
        flush_seconds=config.flush_seconds,
        mark_seconds=config.mark_seconds,
        window=config.window_blocks,
        max_lag_blocks=config.max_lag_blocks,
        fresh_lag_blocks=config.fresh_lag_blocks,
        reorg_reads=config.reorg_reads,
    )


class ServiceParts(Protocol):
    """The parts of a :class:`~balances.service.BalanceService` ingestion works with."""

    config: BalanceServiceConfig
    layout: BalanceLayout
    tracked: TrackedSet
    catalog: TokenCatalog
    chain: ChainReader
    syncer: Syncer
    cache: TtlLruCache[str, AddressBalances]
    feed: ChangeFeed | None
    wall_clock: Callable[[], float]


class Ingestion:
    """Ingestion wired to one service; :meth:`start` runs it, :meth:`stop` ends it."""

    def __init__(self, service: ServiceParts, source: IngestSource | None = None) -> None:
        config = service.config.ingest
        layout = service.layout
        if not isinstance(layout, ShardedStore):
            raise ConfigError(
                "block ingestion needs the sharded layout (BALANCES_LAYOUT=sharded); the spec "
                "layout is kept as the cost baseline and is synced by polling"
            )
        self.service = service
        self.source: IngestSource = source or config.source
        self.index = TrackedIndex(service.tracked, service.catalog, service.config.map_tokens)
        chain: Any = service.chain
        self.fetcher = ApiBlockFetcher(chain) if hasattr(chain, "get_block_transactions") else None
        self.push = None if self.source == "pull" else PushQueue(self.source)
        self.ingestor = Ingestor(
            layout,
            self.index,
            chain,
            source=self.source,
            fetcher=self.fetcher,
            settings=ingest_settings(config),
            on_change=self._changed,
            wall_clock=service.wall_clock,
        )
        pull = PullSettings(batch_blocks=config.batch_blocks, interval=config.block_seconds)
        self.runner = IngestRunner(
            self.ingestor, fetcher=self.fetcher, push=self.push, pull_settings=pull
        )
        self.reconciler = Reconciler(
            self.ingestor, service.syncer, addresses=config.reconcile_addresses
        )
        self._reconcile_seconds = config.reconcile_seconds
        self._tasks: list[asyncio.Task[None]] = []

    # --- running -----------------------------------------------------------------

    async def start(self) -> None:
        """Fold blocks from the source; this replica writes the change feed meanwhile."""
        await self._write_feed()
        await self.runner.start()
        if self.reconciler.addresses:
            self._tasks.append(asyncio.create_task(self._reconcile_forever()))
        log.info("ingestion started (%s source)", self.source)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.runner.stop()
        if self.service.feed is not None:
            try:
                await self.service.feed.close()
            except BalancesError as error:
                log.warning("the change feed could not be closed cleanly: %s", error)

    async def run_once(self) -> int:
        await self._write_feed()
        return await self.runner.run_once()

    async def _write_feed(self) -> None:
        """The replica that folds blocks writes the change feed."""
        feed = self.service.feed
        if feed is not None and not feed.writing:
            await feed.open()

    async def _reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(self._reconcile_seconds)
            try:
                await self.reconciler.run_once()
            except BalancesError as error:
                log.info("drift check skipped: %s", error)

    # --- what the service asks -------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.ingestor.running

    def status(self) -> IngestStatus:
        return self.ingestor.status()

    def coverage(self, address: str, balances: AddressBalances | None) -> Stamp | None:
        return self.ingestor.coverage(address, balances)

    def pending(self, address: str, token: str) -> PendingAmounts | None:
        return self.ingestor.pending.amounts(address, token) if len(self.ingestor.pending) else None

    async def uncovered(self, principals: Sequence[Principal]) -> list[Principal]:
        """The addresses ingestion does not vouch for yet (to anchor by reading them)."""
        cursor = self.ingestor.cursor
        if cursor is None:
            return list(principals)
        await self.index.refresh()
        loaded = await self.service.layout.load_many(principals)
        found = []
        for principal in principals:
            height = anchor_height(loaded.get(str(principal)), self.index.maps_of(str(principal)))
            if height is None or height < cursor.anchored_from:
                found.append(principal)
        return found

    async def survey(self) -> dict[str, Any]:
        """What the shared store says ingestion has durably folded, and how far behind
        the chain's tip that is (for ``balances ingest status`` on any machine)."""
        store = self.ingestor.store
        await store.poll(force=True)
        mark = store.ingest_mark
        tip: dict[str, Any] | None = None
        error = None
        if self.fetcher is not None:
            try:
                header = await self.fetcher.tip()
                tip = {"height": header.height, "block_time": header.block_time}
            except BalancesError as failure:
                error = f"{type(failure).__name__}: {failure}"
        status = IngestStatus(False, self.source, mark, None, None, 0, self.ingestor.stats)
        found = {key: status.as_dict()[key] for key in ("source", "cursor")}
        behind = None if tip is None or mark is None else max(0, tip["height"] - mark.height)
        return {**found, "tip": tip, "lag_blocks": behind, "tip_error": error}

    def _changed(self, addresses: Collection[str]) -> None:
        for address in addresses:
            self.service.cache.invalidate(address)


SUPERVISE_SECONDS = 2.0


async def supervise(
    ingestion: Ingestion, leading: Callable[[], bool] | None, stop: asyncio.Event
) -> None:
    """Run ingestion while this replica leads (``leading`` None: always), until ``stop``:
    one ingesting replica among many, the one the scheduler's lease elected."""
    try:
        while not stop.is_set():
            should = leading is None or leading()
            if should and not ingestion.running:
                try:
                    await ingestion.start()
                except BalancesError as error:
                    log.warning("ingestion could not start (retrying): %s", error)
            elif not should and ingestion.running:
                log.info("no longer leading: ingestion stops")
                await ingestion.stop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SUPERVISE_SECONDS)
    finally:
        if ingestion.running:
            await ingestion.stop()
