"""The sharded, journaled layout: an LSM tree on object storage (docs/storage.md).

Writes: every :meth:`ShardedStore.apply_many` call (a sync cycle) appends *one*
journal segment with the changes of every address in it. Reads: an address
belongs to one of ``shards`` shards; its balances are the shard's compacted
*current* blob with the journal's newer records laid over it (the *tail*, held in
memory: the segments this process wrote, and those others wrote, listed at most
every ``poll_seconds``). :meth:`maintain` (compaction, :mod:`.compact`) folds
old segments into the shard blobs, the month blobs of change points and the daily
rollups, then deletes them.

Folding is by read time, token by token, so records fold in any order and twice
without harm; every shard blob says which segments it holds (``folded_through``),
and a reader drops tail records only once the blob it reads holds them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Sequence
from datetime import datetime

from balances.blobs import BlobStore
from balances.domain import Principal
from balances.domain.current import (
    AddressBalances,
    AddressUpdate,
    Change,
    Merged,
    merge,
)
from balances.domain.feed import ChangeDraft
from balances.errors import (
    BalancesError,
    BlobNotFoundError,
    CorruptBlobError,
)
from balances.stores.layout import ChangeSink, MaintenanceReport, Resolution, SeriesSlice
from balances.stores.sharded.heal import Healer
from balances.stores.sharded.journal import IngestMark, Record, Segment
from balances.stores.sharded.parts import (
    LsmSettings,
    ShardedParts,
)
from balances.stores.sharded.read import read_slices
from balances.stores.sharded.shard_reader import ShardReader
from balances.stores.sharded.tail import STAGED, Tail, since

log = logging.getLogger("balances.stores")


class ShardedStore(ShardedParts):
    """Current balances and history in the sharded, journaled layout."""

    def __init__(
        self,
        blobs: BlobStore,
        settings: LsmSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(blobs, settings, clock=clock, wall_clock=wall_clock)
        self.healer = Healer(self, poll=self.poll, invalidate=self.invalidate)
        self._shards = ShardReader(self, clock, self._prune)
        self._tail = Tail()
        self._staged: list[Record] = []
        #: The newest ingest mark seen in the journal (or the manifest): the cursor.
        self.ingest_mark: IngestMark | None = None
        self._mark_segment = ""  # the segment the mark came from (newest wins)
        self._known_segments: set[str] = set()
        self._polled_at: float | None = None
        self._poll_lock = asyncio.Lock()
        #: The change feed this store's writes are handed to (None: none kept).
        self.feed: ChangeSink | None = None

    # --- current balances (CurrentBalanceStore) -----------------------------

    async def load(self, address: Principal) -> AddressBalances | None:
        await self.poll()
        key = str(address)
        if self.healer.is_lost(key):
            return None  # its blob was quarantined: unknown until read again
        base = await self._shards.base(self.shard(key))
        stored = base.doc.addresses.get(key)
        tail = self._tail.get(key)
        return stored if tail is None else tail.over(stored)

    async def load_many(self, addresses: Sequence[Principal]) -> dict[str, AddressBalances | None]:
        unique = list(dict.fromkeys(addresses))
        loaded = await asyncio.gather(*(self.load(address) for address in unique))
        return {str(a): found for a, found in zip(unique, loaded, strict=True)}

    async def apply(self, update: AddressUpdate) -> Merged:
        (outcome,) = await self.apply_many([update])
        if isinstance(outcome, BalancesError):
            raise outcome
        return outcome

    async def apply_many(
        self, updates: Sequence[AddressUpdate], *, source: str = "sync"
    ) -> list[Merged | BalancesError]:
        """Merge every update into what is known; store what changed as one segment
        (and hand the changes to the feed, as made by ``source``)."""
        try:
            await self.heal()
        except BalancesError as error:
            return [error for _ in updates]
        results: list[Merged | BalancesError] = []
        records: list[Record] = []
        for update in updates:
            try:
                current = await self._load_healing(Principal.parse(update.address))
            except BalancesError as error:
                results.append(error)
                continue
            merged = merge(current, update)
            results.append(merged)
            confirmed = confirmations(update, merged) if update.confirm else ()
            if merged.needs_write or confirmed:
                listing = update.stamp if update.listing_complete else None
                records.append(Record(update.address, (*merged.changes, *confirmed), listing))
        if records:
            try:
                await self.manifest.ensure()
                self._remember(await self.journal.append(records))
            except BalancesError as error:
                return [error if isinstance(r, Merged) and r.needs_write else r for r in results]
        for update, result in zip(updates, results, strict=True):
            if isinstance(result, Merged):
                self.healer.stored(update)
        if records and self.feed is not None:
            await self._publish(sync_drafts(results, source, self._wall()))
        return results

    async def _publish(self, drafts: Sequence[ChangeDraft]) -> None:
        """Number ``drafts`` in the feed and write it (after the journal segment that
        holds the changes; on failure it is written with the next one)."""
        assert self.feed is not None
        self.feed.emit(drafts)
        try:
            await self.feed.flush()
        except BalancesError as error:
            log.warning("the change feed could not be written (will retry): %s", error)

    async def _load_healing(self, address: Principal) -> AddressBalances | None:
        """:meth:`load`, quarantining a damaged shard blob on the way (a write pass
        repairs what it meets; the shard's addresses then read as unknown)."""
        try:
            return await self.load(address)
        except CorruptBlobError as error:
            if not await self.healer.quarantine(error):
                raise
        return await self.load(address)

    # --- history (BalanceLayout) -----------------------------------------------

    async def series(
        self,
        address: Principal,
        start: datetime,
        end: datetime,
        *,
        keys: Collection[str] | None = None,
        resolution: Resolution = "raw",
    ) -> dict[str, SeriesSlice]:
        await self.poll()
        name = str(address)
        shard = self.shard(name)
        base = await self._shards.base(shard)
        tail = self._tail.get(name)
        return await read_slices(
            name,
            start,
            end,
            keys=keys,
            resolution=resolution,
            load_daily=lambda: self._shards.daily(shard, base.folded),
            load_month=lambda month: self._shards.month(month, shard, base.folded),
            tail=[] if tail is None else tail.points,
            since=since(base.doc.since.get(name), tail),
            voided=None if tail is None else tail.voided,
        )

    async def first_seen(self, address: Principal) -> datetime | None:
        await self.poll()
        name = str(address)
        base = await self._shards.base(self.shard(name))
        return since(base.doc.since.get(name), self._tail.get(name))

    async def record_history(self, address: Principal, changes: Sequence[Change]) -> None:
        if changes:
            self._remember(await self.journal.append([Record(str(address), tuple(changes))]))

    async def maintain(self, now: float | None = None) -> MaintenanceReport:
        await self.heal()
        report = await self.healer.compact(self._wall() if now is None else now)
        self.invalidate()
        report.notes.extend(f"quarantined {k} as {c}" for k, c in self.healer.quarantined.items())
        return report

    async def probe(self) -> None:
        await self.manifest.current()

    async def heal(self) -> None:
        """Repair what a write pass can before it writes (:meth:`Healer.before_write`)."""
        await self.healer.before_write()

    # --- the tail ---------------------------------------------------------------

    async def poll(self, *, force: bool = False) -> None:
        """Read the segments other writers added since the last poll (or at start)."""
        async with self._poll_lock:
            now = self._clock()
            due = self._polled_at is None or now - self._polled_at >= self.settings.poll_seconds
            if not (due or force):
                return
            manifest = await self.manifest.current()
            folded = manifest.folded_through or ""
            if manifest.ingest is not None and folded > self._mark_segment:
                self.ingest_mark, self._mark_segment = manifest.ingest, folded
            ids = await self.journal.list_ids(after=manifest.folded_through)
            for segment_id in ids:
                if segment_id in self._known_segments:
                    continue
                try:
                    self._remember(await self.journal.read(segment_id))
                except BlobNotFoundError:
                    self._known_segments.add(segment_id)  # compacted meanwhile
            self._polled_at = now

    def _remember(self, segment: Segment) -> None:
        self._known_segments.add(segment.segment_id)
        if segment.mark is not None and segment.segment_id >= self._mark_segment:
            self.ingest_mark, self._mark_segment = segment.mark, segment.segment_id
        for record in segment.records:
            self._tail.fold(record, segment.segment_id)

    # --- staged writes (block ingestion) -------------------------------------------

    def stage(self, records: Sequence[Record], drafts: Sequence[ChangeDraft] = ()) -> None:
        """Serve ``records`` at once and write them with the next :meth:`flush` (one
        segment for many blocks: blob stores bill per write). ``drafts`` (the
        changes as the feed tells them) go to the feed's live subscribers now."""
        for record in records:
            self._tail.fold(record, STAGED)
        self._staged += records
        if drafts and self.feed is not None:
            self.feed.emit(drafts)

    @property
    def staged(self) -> int:
        """Records staged and not yet written."""
        return len(self._staged)

    async def flush(self, mark: IngestMark | None = None) -> Segment | None:
        """Write every staged record (and ``mark``) as one segment; None when there was
        nothing to write. On failure the records stay staged for the next flush."""
        batch = self._staged
        if not batch and mark is None:
            return None
        await self.heal()
        self._staged = []
        try:
            await self.manifest.ensure()
            segment = await self.journal.append(batch, mark)
        except BalancesError:
            self._staged = batch + self._staged
            raise
        self._known_segments.add(segment.segment_id)
        if mark is not None:
            self.ingest_mark, self._mark_segment = mark, segment.segment_id
        still = {record.address for record in self._staged}
        self._tail.written({record.address for record in batch} - still, segment.segment_id)
        if self.feed is not None:
            await self._publish(())
        return segment

    def _prune(self, shard: int, folded: str | None) -> None:
        if folded is None:
            return
        for address, tail in self._tail.addresses():
            if tail.newest <= folded and self.shard(address) == shard:
                self._tail.drop(address)

    def clear(self) -> None:
        """Forget every blob held in memory (a cold start; the tail stays: it holds
        records not yet in any blob)."""
        self._shards.clear()
        self.written.clear()
        self.manifest.invalidate()
        self._polled_at = None

    def invalidate(self) -> None:
        """Re-check every blob on its next read (after compaction, or for tests)."""
        self._shards.invalidate()
        self.manifest.invalidate()
        self._polled_at = None


def sync_drafts(
    results: Sequence[Merged | BalancesError], source: str, now: float
) -> list[ChangeDraft]:
    """The feed's drafts of the amounts a write pass moved."""
    drafts = []
    for result in results:
        if not isinstance(result, Merged):
            continue
        for change in result.changes:
            if change.old == change.new:
                continue
            height = change.stamp.block_height
            drafts.append(
                ChangeDraft(
                    "change",
                    change.address,
                    change.key,
                    change.kind,
                    change.old,
                    change.new,
                    height,
                    None,
                    source,
                    now,
                )
            )
    return drafts


def confirmations(update: AddressUpdate, merged: Merged) -> tuple[Change, ...]:
    """The reads of a confirming update that changed nothing, as changes to the same
    amount: stored so that the read's stamp (its block height) persists (history
    drops a step that does not move)."""
    moved = {change.key for change in merged.changes}
    confirmed = []
    for key, (amount, kind) in update.amounts.items():
        state = merged.balances.tokens.get(key)
        # Only a read that stands: at one stamp a larger amount may have kept its place.
        if (
            key not in moved
            and state is not None
            and (state.amount, state.stamp) == (amount, update.stamp)
        ):
            confirmed.append(Change(update.address, key, kind, amount, amount, update.stamp))
    return tuple(confirmed)
