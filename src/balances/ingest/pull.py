"""The *pull* source: follow the chain through the Stacks API's block routes.

Works without an API key. Per block, at the API's page sizes
(:mod:`balances.chain.blocks`): its transactions (the probe: 404 until the API has
the block), then the events of the transactions a summary cannot describe, for
``batch_blocks`` blocks in one ``/extended/v1/tx/multiple`` request. A block's
parent hash comes from those transactions (or from its header when it has none
that need events), so a reorg is seen. Probes are timed by the blocks' own times
and the observed interval (:class:`_Rhythm`), so at the tip a block costs about
``1 + 1/batch_blocks`` requests, and a quiet chain a probe per growing step.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections import deque
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


#: A due probe that finds its block takes this share of the interval off the lead.
LEAD_DECAY = 0.002
#: A probe that misses retries after this share of the interval, times the misses.
MISS_STEP = 0.1
#: Gaps between block times whose median is the chain's interval.
GAPS_KEPT = 15
#: The most intervals after a block that the probe for the next one waits.
LATEST_DUE = 2.0


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


def _average(current: float, sample: float) -> float:
    return 0.8 * current + 0.2 * sample


@dataclass(slots=True)
class _Rhythm:
    """When to probe next.

    ``interval`` is the observed time between blocks found here (an average),
    ``chain_interval`` the median gap between the blocks' own times (robust to the
    long gaps of a slow Bitcoin block or a resumed source). After a block, the probe
    for the next one is due when that one is expected (this block's time plus
    ``chain_interval``) plus ``lead``: the learned delay until the API serves a
    block, clock offset included. A probe that misses retries in small steps, and
    the probe that then finds the block sets the lead; a due probe that finds its
    block lowers it to what worked, and a little more. So at the tip a block costs
    about one probe and the schedule neither drifts late nor stays early. A block
    whose next is already due means we are behind the tip: the next probe goes at
    once.
    """

    interval: float
    chain_interval: float
    chain_gaps: deque[float] = field(default_factory=lambda: deque(maxlen=GAPS_KEPT))
    lead: float = 1.0
    last_seen: float | None = None
    last_block_time: float | None = None
    misses: int = 0
    #: Wall time the next block is expected at (the last block's time + interval).
    expected: float | None = None
    #: The next probe is the one scheduled for its block (not a catch-up or a retry).
    due_probe: bool = False
    #: The due probe was sent by the latest-due bound, not by the block's time.
    capped: bool = False
    #: No miss has bounded the lead from below since the latest-due bound sent a probe.
    exploring: bool = False
    #: Wall time of the last probe that found no block.
    missed_at: float = 0.0

    def saw_block(self, now: float, wall: float, block_time: float | None) -> None:
        """A probe sent at ``now`` (``wall`` on the wall clock) found a block."""
        if self.last_seen is not None and now > self.last_seen:
            self.interval = _average(self.interval, now - self.last_seen)
        previous = self.last_block_time
        if block_time is not None and previous is not None and block_time > previous:
            self.chain_gaps.append(block_time - previous)
            self.chain_interval = statistics.median(self.chain_gaps)
        self.last_seen, self.last_block_time = now, block_time
        if self.expected is not None and self.misses:
            # It came between the last miss and now: after one small step, take
            # what worked; after growing steps, halfway (the next due probe narrows it).
            unsure = wall - self.missed_at if self.misses > 1 else 0.0
            self.lead = wall - self.expected - unsure / 2
            self.exploring = False
        elif self.expected is not None and self.due_probe:
            # A lead this large worked; probe a little earlier next time, or half an
            # interval earlier while no miss has shown how early is too early.
            self.exploring = self.exploring or self.capped
            earlier = 0.5 if self.exploring else LEAD_DECAY
            self.lead = min(self.lead, wall - self.expected) - earlier * self.chain_interval
        self.misses, self.due_probe = 0, False

    def after_block(self, now: float, wall: float) -> float:
        """Seconds from ``now`` until the probe for the block after the one just seen:
        when the block's time says the next is served, and never later than
        LATEST_DUE intervals after this probe (a clock behind the chain's, or a
        block without transactions to tell its time: one interval)."""
        assert self.last_seen is not None
        if self.last_block_time is None:
            self.expected = None
            due = self.last_seen + self.interval - now
        else:
            self.expected = self.last_block_time + self.chain_interval
            latest = self.last_seen + LATEST_DUE * self.interval - now
            by_time = self.expected + self.lead - wall
            self.capped = latest < by_time
            due = min(latest, by_time)
        self.due_probe = due > 0
        return max(0.0, due)

    def after_miss(self, settings: PullSettings, wall: float) -> float:
        """Seconds until the next probe once a probe sent at ``wall`` found no block."""
        self.misses += 1
        self.missed_at = wall
        self.due_probe = False
        step = MISS_STEP * self.interval * self.misses
        return min(max(settings.min_probe, step), settings.max_probe)


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
        self._rhythm = _Rhythm(self.settings.interval, self.settings.interval)
        self._clock = clock
        self._wall = wall_clock
        self._sleep = sleep
        self.stopping = False

    async def events(self) -> AsyncIterator[IngestEvent]:
        buffered: list[_Fetched] = []
        while not self.stopping:
            height = (await self._next_height()) + len(buffered)
            sent, sent_wall = self._clock(), self._wall()
            try:
                found = await self.fetcher.summaries(height)
            except BalancesError as error:
                log.warning("pull: block %d could not be read: %s", height, error)
                self._rhythm.due_probe = False
                await self._sleep(min(self.settings.max_probe, self._rhythm.interval))
                continue
            if found is None:
                if buffered and self._waited_enough(buffered, self._clock()):
                    for event in await self._release(buffered):
                        yield event
                    buffered = []
                elif height > 0 and not buffered:
                    yield TipSeen(BlockRef(height - 1), self._wall())
                await self._sleep(self._rhythm.after_miss(self.settings, sent_wall))
                continue
            stamp = float(found[0].block.time) if found else None
            self._rhythm.saw_block(sent, sent_wall, stamp)
            buffered.append(_Fetched(height, found, sent))
            if len(buffered) >= self.settings.batch_blocks:
                for event in await self._release(buffered):
                    yield event
                buffered = []
            wait = self._rhythm.after_block(self._clock(), self._wall())
            if wait > 0:
                await self._sleep(wait)

    def _waited_enough(self, buffered: Sequence[_Fetched], now: float) -> bool:
        limit = self.settings.max_wait
        if limit is None:
            limit = self._rhythm.interval
        return now - buffered[0].seen_at >= limit * 0.9

    async def _release(self, buffered: Sequence[_Fetched]) -> list[IngestEvent]:
        blocks = await self.fetcher.complete(buffered)
        return [Apply(block) for block in blocks]
