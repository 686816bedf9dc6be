"""The *pull* source: follow the chain through the Stacks API's block routes.

Works without an API key. Per block, at the API's page sizes
(:mod:`balances.chain.blocks`): its transactions (the probe: 404 until the API has
the block), then the events of the transactions a summary cannot describe, for
``batch_blocks`` blocks in one ``/extended/v1/tx/multiple`` request. A block's
parent hash comes from those transactions (or from its header when it has none
that need events), so a reorg is seen. Probes are timed by the observed interval
between blocks, so a block costs about ``1 + 1/batch_blocks`` requests and a quiet
chain costs a probe per interval.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from balances.chain.blocks import header_ref, needs_events, tx_from_details, tx_from_summary
from balances.chain.events import BlockRef, ChainBlock, ChainTx
from balances.chain.wire_blocks import BlockHeader, BlockTxSummary, V1Event, V1Transaction, V3Event
from balances.errors import BalancesError, NotFoundError
from balances.ingest.feed import Apply, IngestEvent, TipSeen

log = logging.getLogger("balances.ingest")


Details = dict[str, tuple[V1Transaction, list[V1Event | V3Event]]]


class BlockApi(Protocol):
    """The client methods the pull source uses (StacksClient has them)."""

    async def get_block_header(self, height_or_hash: int | str) -> BlockHeader: ...

    async def get_latest_header(self) -> BlockHeader: ...

    async def get_block_transactions(self, height_or_hash: int | str) -> list[BlockTxSummary]: ...

    async def get_transactions_with_events(self, tx_ids: Sequence[str]) -> Details: ...


@dataclass(slots=True)
class _Fetched:
    height: int
    summaries: list[BlockTxSummary]
    seen_at: float
    header: BlockHeader | None = None


@dataclass(slots=True)
class PullSettings:
    #: Blocks whose events share one request (lag: up to one interval more).
    batch_blocks: int = 2
    #: The expected time between blocks until it is measured (seconds).
    interval: float = 5.0
    min_probe: float = 0.2
    max_probe: float = 30.0
    #: The most a fetched block waits for the next one to share its events request.
    max_wait: float | None = None
    #: Behind the tip by more than this: catch up without waiting.
    catch_up_blocks: int = 2


class ApiBlockFetcher:
    """Canonical blocks by height from the API (also fills gaps for push sources)."""

    def __init__(self, api: BlockApi) -> None:
        self._api = api

    async def header(self, height: int) -> BlockHeader | None:
        try:
            return await self._api.get_block_header(height)
        except NotFoundError:
            return None

    async def tip(self) -> BlockHeader:
        return await self._api.get_latest_header()

    async def summaries(self, height: int) -> list[BlockTxSummary] | None:
        """A block's transactions; None when the API does not have the block yet."""
        try:
            return await self._api.get_block_transactions(height)
        except NotFoundError:
            return None

    async def block(self, height: int) -> ChainBlock | None:
        found = await self.summaries(height)
        if found is None:
            return None
        blocks = await self.complete([_Fetched(height, found, 0.0)])
        return blocks[0]

    async def complete(self, fetched: Sequence[_Fetched]) -> list[ChainBlock]:
        """Turn fetched summaries into blocks: one events request for all of them."""
        wanted: list[str] = []
        for item in fetched:
            eventful = [s.tx_id for s in item.summaries if needs_events(s)]
            if not eventful and item.summaries:
                eventful = [item.summaries[0].tx_id]  # its parent hash
            wanted += eventful
        details: Details = await self._api.get_transactions_with_events(wanted) if wanted else {}
        return [await self._block(item, details) for item in fetched]

    async def _block(self, item: _Fetched, details: Details) -> ChainBlock:
        txs: list[ChainTx] = []
        parent_hash: str | None = None
        for summary in item.summaries:
            found = details.get(summary.tx_id)
            if found is not None and needs_events(summary):
                txs.append(tx_from_details(summary, *found))
            else:
                txs.append(tx_from_summary(summary))
            if found is not None:
                parent_hash = found[0].parent_block_hash
        if not item.summaries or parent_hash is None:
            header = item.header or await self._api.get_block_header(item.height)
            own, parent = header_ref(header)
            return ChainBlock(own, parent, float(header.block_time), tuple(txs))
        first = item.summaries[0].block
        own = BlockRef(item.height, first.hash, first.index_hash)
        return ChainBlock(
            own, BlockRef(item.height - 1, parent_hash), float(first.time), tuple(txs)
        )


@dataclass(slots=True)
class _Rhythm:
    """When to probe next: the observed time between blocks (an average)."""

    interval: float
    last_seen: float | None = None
    misses: int = 0
    samples: list[float] = field(default_factory=list)

    def saw_block(self, now: float) -> None:
        if self.last_seen is not None and now > self.last_seen:
            gap = now - self.last_seen
            self.interval = 0.8 * self.interval + 0.2 * gap if self.samples else gap
            self.samples.append(gap)
        self.last_seen = now
        self.misses = 0

    def wait(self, now: float, settings: PullSettings) -> float:
        """Seconds until the next probe."""
        if self.last_seen is not None and self.misses == 0:
            due = self.last_seen + self.interval - now
            if due > 0:
                return min(due, settings.max_probe)
        step = max(settings.min_probe, self.interval * 0.2 * (1 + self.misses))
        return min(step, settings.max_probe)


class PullSource:
    """Yields the ingestor's events from the API, from ``next_height()`` on."""

    name = "pull"

    def __init__(
        self,
        fetcher: ApiBlockFetcher,
        next_height: Callable[[], Awaitable[int]],
        *,
        settings: PullSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.fetcher = fetcher
        self._next_height = next_height
        self.settings = settings or PullSettings()
        self._rhythm = _Rhythm(self.settings.interval)
        self._clock = clock
        self._wall = wall_clock
        self._sleep = sleep
        self.stopping = False

    async def events(self) -> AsyncIterator[IngestEvent]:
        buffered: list[_Fetched] = []
        while not self.stopping:
            height = (await self._next_height()) + len(buffered)
            try:
                found = await self.fetcher.summaries(height)
            except BalancesError as error:
                log.warning("pull: block %d could not be read: %s", height, error)
                await self._sleep(min(self.settings.max_probe, self._rhythm.interval))
                continue
            now = self._clock()
            if found is None:
                if buffered and self._waited_enough(buffered, now):
                    for event in await self._release(buffered):
                        yield event
                    buffered = []
                    continue
                self._rhythm.misses += 1
                if height > 0 and not buffered:
                    yield TipSeen(BlockRef(height - 1), self._wall())
                await self._sleep(self._rhythm.wait(now, self.settings))
                continue
            self._rhythm.saw_block(now)
            buffered.append(_Fetched(height, found, now))
            if len(buffered) >= self.settings.batch_blocks:
                for event in await self._release(buffered):
                    yield event
                buffered = []

    def _waited_enough(self, buffered: Sequence[_Fetched], now: float) -> bool:
        limit = self.settings.max_wait
        if limit is None:
            limit = self._rhythm.interval
        return now - buffered[0].seen_at >= limit * 0.9

    async def _release(self, buffered: Sequence[_Fetched]) -> list[IngestEvent]:
        blocks = await self.fetcher.complete(buffered)
        return [Apply(block) for block in blocks]
