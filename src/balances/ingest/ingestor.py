"""The ingestor: fold each canonical block into the balances of tracked addresses.

One block at a time, in order (docs/ingestion.md):

1. **Check its place.** A block already applied is skipped (idempotent). A block
   whose parent is not the last one applied means a reorg: the blocks above the
   fork point are undone (their changes retracted, their pairs re-read) first. A
   gap is filled block by block from the API (``fetcher``); beyond what the window
   of recent blocks can undo, or beyond ``max_lag_blocks``, ingestion *falls back*:
   it resumes from the tip and the scheduler re-reads (anchors) the tracked set.
2. **Fold it.** Every (tracked address, token) the block touched gets its delta
   (:mod:`balances.ingest.rules`), or a read exactly as of the block (the node's
   ``tip``) where the delta cannot be trusted: a map-based token, an amount never
   read or not anchored, a drift. A block is applied whole or not at all: a read
   that keeps failing leaves it for the next attempt.
3. **Keep it.** Its changes are *staged* in the store (served at once) and written
   with the next flush, one journal segment per ``flush_seconds`` carrying the
   cursor (``IngestMark``): a restart resumes from the last written cursor, and
   what was staged after it is replayed, never applied twice.

A tracked address no block touches costs nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence

from balances.chain.events import BlockRef, ChainBlock
from balances.domain import Principal
from balances.domain.current import AddressBalances, Stamp, TokenKindName
from balances.errors import BalancesError, IngestError
from balances.ingest.changes import block_drafts, retraction_drafts
from balances.ingest.feed import (
    Apply,
    BlockFetcher,
    IngestEvent,
    PairReader,
    Pending,
    Rollback,
    TipSeen,
)
from balances.ingest.folding import block_records, checked_amounts, plan_block, undone_pairs
from balances.ingest.pair_reads import PairReads
from balances.ingest.pending import PendingBook
from balances.ingest.rules import (
    anchor_height,
    block_deltas,
    map_touches,
)
from balances.ingest.settings import IngestSettings
from balances.ingest.stats import IngestStats, IngestStatus
from balances.ingest.tracked_index import TrackedIndex
from balances.ingest.window import AppliedBlock, Window, retraction_records
from balances.stores.sharded.journal import IngestMark
from balances.stores.sharded.store import ShardedStore

log = logging.getLogger("balances.ingest")


class Ingestor:
    """Applies :mod:`balances.ingest.feed` events to a :class:`ShardedStore`."""

    def __init__(
        self,
        store: ShardedStore,
        index: TrackedIndex,
        reader: PairReader,
        *,
        source: str,
        fetcher: BlockFetcher | None = None,
        settings: IngestSettings | None = None,
        on_change: Callable[[Collection[str]], None] = lambda _: None,
        wall_clock: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.index = index
        self.reader = reader
        self.fetcher = fetcher
        self.source = source
        self.settings = settings or IngestSettings()
        self.on_change = on_change
        self.window = Window(self.settings.window)
        self.pending = PendingBook()
        self.stats = IngestStats()
        self.reads = PairReads(reader, self.settings, self.stats, sleep)
        self._wall = wall_clock
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._cursor: IngestMark | None = None
        self._durable: IngestMark | None = None
        self._staged_since: float | None = None
        self._marked_at: float = clock()
        #: Wall time the source last confirmed the cursor is the tip (freshness).
        self._confirmed_at: float | None = None
        self.running = False

    # --- state -------------------------------------------------------------------

    async def open(self) -> None:
        """Resume from the cursor the store holds (the last segment written)."""
        await self.store.poll(force=True)
        self._cursor = self._durable = self.store.ingest_mark
        self.running = True

    @property
    def cursor(self) -> IngestMark | None:
        return self._cursor

    @property
    def anchored_from(self) -> int | None:
        return None if self._cursor is None else self._cursor.anchored_from

    def status(self) -> IngestStatus:
        return IngestStatus.of(
            self.running, self.source, self._cursor, self.store.staged, self.stats
        )

    def healthy(self) -> bool:
        """Close enough to the tip, recently, to vouch for freshness (on every read:
        kept cheap)."""
        cursor, confirmed = self._cursor, self._confirmed_at
        if not self.running or cursor is None or confirmed is None:
            return False
        tip = self.stats.source_tip
        if tip is not None and tip[0] - cursor.height > self.settings.fresh_lag_blocks:
            return False
        return self._wall() - confirmed <= self.settings.fresh_seconds

    def coverage(self, address: str, balances: AddressBalances | None) -> Stamp | None:
        """The stamp every balance of ``address`` is confirmed at by ingestion (the
        cursor), or None when ingestion does not vouch for it: not tracked, not
        anchored since ingestion began without a gap, or ingestion behind."""
        cursor = self._cursor
        if cursor is None or address not in self.index or not self.healthy():
            return None
        height = anchor_height(balances, self.index.maps_of(address))
        if height is None or height < cursor.anchored_from:
            return None
        return Stamp(max(cursor.block_time, self._confirmed_at or 0.0), cursor.height)

    # --- events --------------------------------------------------------------------

    async def handle(self, event: IngestEvent) -> None:
        """Apply one event (serialized: one at a time)."""
        async with self._lock:
            if isinstance(event, Apply):
                await self._on_block(event.block)
            elif isinstance(event, Rollback):
                await self._on_rollback(event.blocks)
            elif isinstance(event, Pending):
                self.pending.add(event.added)
                self.pending.remove(event.dropped)
            elif isinstance(event, TipSeen):
                self._saw_tip(event.ref.height, event.time)
            await self._flush_if_due()

    async def tick(self) -> None:
        """Flush what is due (call every second or so)."""
        async with self._lock:
            await self._flush_if_due()

    def _saw_tip(self, height: int, block_time: float) -> None:
        self.stats.source_tip = (height, block_time)
        if self._cursor is not None and height <= self._cursor.height:
            self._confirmed_at = self._wall()

    async def _on_block(self, block: ChainBlock) -> None:
        self._note_tip(block)
        cursor = self._cursor
        if cursor is None:  # the first block this store folds: reads as of it on anchor
            # (every block after it is folded, as after a fall-back to the tip)
            await self._fold(block, anchored_from=block.height)
            return
        if block.height <= cursor.height:
            if not self._is_fork(block, cursor):
                self.stats.blocks_skipped += 1  # delivered again (or older than we keep)
                return
            await self._reorg_to(block.parent)
        elif block.height > cursor.height + 1:
            await self._fill(cursor.height + 1, block.height - 1)
        assert self._cursor is not None
        if block.follows(_ref(self._cursor)) is False:
            await self._reorg_to(block.parent)
        await self._fold(block, anchored_from=self._cursor.anchored_from)

    def _is_fork(self, block: ChainBlock, cursor: IngestMark) -> bool:
        """A block at or below the cursor is a new fork when its parent is a block we
        applied (or the cursor's own parent) but it is not one we applied."""
        if self.window.find(block.ref) is not None:
            return False
        if block.height == cursor.height and block.ref.same_as(_ref(cursor)) is not False:
            return False
        return self.window.find(block.parent) is not None

    def _note_tip(self, block: ChainBlock) -> None:
        tip = self.stats.source_tip
        if tip is None or block.height >= tip[0]:
            self.stats.source_tip = (block.height, block.time)

    async def _on_rollback(self, blocks: Sequence[ChainBlock]) -> None:
        """An explicit rollback (Chainhook): undo every one of ``blocks`` we applied."""
        ours = [block for block in blocks if self.window.find(block.ref) is not None]
        if not ours:
            return  # never applied, or already undone
        lowest = min(ours, key=lambda block: block.height)
        await self._undo(self.window.pop_after(lowest.height - 1), lowest.parent)

    # --- folding a block -------------------------------------------------------------

    async def _fold(self, block: ChainBlock, *, anchored_from: int) -> None:
        await self.index.refresh()
        deltas = block_deltas(block, self.index.__contains__)
        touched = map_touches(block, self.index.follows, self.index.map_tokens())
        addresses = sorted(set(deltas) | {address for address, _ in touched})
        loaded = await self._load(addresses)
        amounts, reads = plan_block(block, deltas, touched, loaded, anchored_from, self.stats)
        read = await self.reads.read(reads, block.ref)
        for (address, key, kind), amount in read.items():
            amounts[address][key] = (amount, kind)
        applied = AppliedBlock(block.ref, block.parent, block.time)
        changed = self._stage(block, loaded, amounts, applied)
        self.window.push(applied)
        self._advance(block, anchored_from)
        self.stats.blocks_applied += 1
        self.stats.pairs_read += len(read)
        self.stats.pairs_applied += sum(len(a) for a in amounts.values()) - len(read)
        self.pending.remove(tx.tx_id for tx in block.txs)
        if changed:
            self.on_change(changed)

    async def _load(self, addresses: Sequence[str]) -> dict[str, AddressBalances | None]:
        if not addresses:
            return {}
        return await self.store.load_many([Principal.parse(a) for a in addresses])

    def _stage(
        self,
        block: ChainBlock,
        loaded: Mapping[str, AddressBalances | None],
        amounts: Mapping[str, Mapping[str, tuple[int, TokenKindName]]],
        applied: AppliedBlock,
    ) -> list[str]:
        """Merge each address's amounts as of ``block`` and stage the records; fills
        the block's undo log; returns the addresses whose balances moved."""
        records, changed = block_records(block, loaded, amounts, applied)
        if records:
            self.store.stage(records, block_drafts(block, records, self.source, self._wall()))
            self._staged_since = self._staged_since or self._clock()
        return changed

    def _advance(self, block: ChainBlock, anchored_from: int) -> None:
        self._cursor = IngestMark(
            block.height,
            block.ref.block_hash,
            block.ref.index_hash,
            block.time,
            anchored_from,
            self.source,
        )
        self._confirmed_at = self._wall()
        self.stats.applied_at = self._wall()

    # --- reorgs, gaps, fallback -----------------------------------------------------------

    async def _reorg_to(self, parent: BlockRef) -> None:
        """Undo every applied block above the fork point where ``parent`` joins what we
        applied (found in the window, else through the fetcher's canonical headers)."""
        found = self.window.find(parent)
        if found is None and self.fetcher is not None:
            found = await self._fork_point()
        if found is None:
            raise IngestError(
                f"the chain forked below the {len(self.window)} blocks ingestion can undo "
                f"(parent {parent.label})"
            )
        undone = self.window.pop_after(found.ref.height)
        await self._undo(undone, found.ref)
        if parent.height > found.ref.height:
            await self._fill(found.ref.height + 1, parent.height)

    async def _fork_point(self) -> AppliedBlock | None:
        assert self.fetcher is not None
        for applied in reversed(list(self.window)):
            header = await self.fetcher.header(applied.ref.height)
            if header is not None and header.index_block_hash.lower() in applied.ref.hashes:
                return applied
        return None

    async def _undo(self, blocks: list[AppliedBlock], fork: BlockRef) -> None:
        """Retract ``blocks`` (newest first); re-read a sample of their pairs at the fork."""
        if not blocks:
            return
        self.stats.reorgs += 1
        self.stats.blocks_undone += len(blocks)
        records = retraction_records(blocks)
        self.store.stage(records, retraction_drafts(blocks, self.source, self._wall()))
        self._staged_since = self._staged_since or self._clock()
        base = self.window.tip
        assert self._cursor is not None
        anchored = self._cursor.anchored_from
        ref, at = (base.ref, base.time) if base is not None else (fork, blocks[-1].time)
        self._cursor = IngestMark(
            ref.height, ref.block_hash, ref.index_hash, at, anchored, self.source
        )
        addresses = sorted({record.address for record in records})
        log.warning("reorg: undid %d blocks down to %s", len(blocks), fork.label)
        await self._verify_undo(blocks, fork)
        self.on_change(addresses)

    async def _verify_undo(self, blocks: list[AppliedBlock], fork: BlockRef) -> None:
        """Re-read (as of the fork point) the pairs the undone blocks set, up to the
        budget; a difference is drift, repaired by the read."""
        chosen = undone_pairs(blocks, self.settings.reorg_reads)
        if not chosen or fork.index_hash is None:
            return
        read = await self.reads.read(chosen, fork)
        loaded = await self._load(sorted({address for address, _, _ in read}))
        amounts = checked_amounts(read, loaded, self.stats)
        assert self._cursor is not None
        fork_block = ChainBlock(fork, BlockRef(fork.height - 1), self._cursor.block_time)
        self._stage(fork_block, loaded, amounts, AppliedBlock(fork, fork, fork_block.time))

    async def _fill(self, first: int, last: int) -> None:
        """Apply the canonical blocks ``first..last`` from the fetcher (a gap)."""
        if last < first:
            return
        if self.fetcher is None:
            raise IngestError(f"blocks {first}..{last} are missing and no API can fill them")
        if last - first + 1 > self.settings.max_lag_blocks:
            raise IngestError(f"{last - first + 1} blocks behind: more than max_lag_blocks")
        for height in range(first, last + 1):
            block = await self.fetcher.block(height)
            if block is None:
                raise IngestError(f"block {height} is not available to fill the gap")
            assert self._cursor is not None
            if block.follows(_ref(self._cursor)) is False:
                await self._reorg_to(block.parent)
            await self._fold(block, anchored_from=self._cursor.anchored_from)

    async def fall_back(self, tip: BlockRef, tip_time: float, reason: str) -> None:
        """Resume from ``tip``: nothing before it is anchored any more, so the tracked
        set is re-read (the scheduler's anchoring pass) and pairs a block touches meanwhile
        are read as of their block."""
        async with self._lock:
            self.stats.fallbacks += 1
            self.stats.last_error = reason
            log.warning("ingestion falls back to polling and resumes at %s: %s", tip.label, reason)
            self.window.clear()
            self._cursor = IngestMark(
                tip.height, tip.block_hash, tip.index_hash, tip_time, tip.height, self.source
            )
            await self._flush(force_mark=True)

    # --- durability -------------------------------------------------------------------------

    async def _flush_if_due(self) -> None:
        now = self._clock()
        staged_due = (
            self._staged_since is not None
            and now - self._staged_since >= self.settings.flush_seconds
        )
        mark_due = (
            self._cursor != self._durable and now - self._marked_at >= self.settings.mark_seconds
        )
        if staged_due or mark_due:
            await self._flush(force_mark=mark_due)

    async def flush(self) -> None:
        """Write everything staged with the cursor now (shutdown, tests)."""
        async with self._lock:
            await self._flush(force_mark=self._cursor != self._durable)

    async def _flush(self, *, force_mark: bool) -> None:
        if self.store.staged == 0 and not force_mark:
            return
        mark = self._cursor
        try:
            await self.store.flush(mark)
        except BalancesError as error:
            self.stats.last_error = f"flush failed: {error}"
            log.warning("ingestion could not write its segment (will retry): %s", error)
            return
        self.stats.flushes += 1
        self._durable = mark
        self._staged_since = None
        self._marked_at = self._clock()


def _ref(mark: IngestMark) -> BlockRef:
    return BlockRef(mark.height, mark.block_hash, mark.index_hash)
