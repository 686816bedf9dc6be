"""The sharded, journaled layout: an LSM tree on object storage (docs/storage.md).

Writes: every :meth:`ShardedStore.apply_many` call (a sync cycle) appends *one*
journal segment with the changes of every address in it. Reads: an address
belongs to one of ``shards`` shards; its balances are the shard's compacted
*current* blob with the journal's newer records laid over it (the *tail*, held in
memory: the segments this process wrote, and those others wrote, listed at most
every ``poll_seconds``). :meth:`maintain` (compaction, :mod:`.lsm_compact`) folds
old segments into the shard blobs, the month blobs of change points and the daily
rollups, then deletes them.

Folding is by read time, token by token, so records fold in any order and twice
without harm; every shard blob says which segments it holds (``folded_through``),
and a reader drops tail records only once the blob it reads holds them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from balances.blobs import BlobStore, blob_key
from balances.domain import BalancePoint, Principal
from balances.domain.current import (
    AddressBalances,
    AddressUpdate,
    Change,
    Merged,
    TokenKindName,
    apply_changes,
    merge,
    merge_views,
)
from balances.domain.retractions import Retraction, Voided, apply_retractions
from balances.errors import (
    BalancesError,
    BlobNotFoundError,
    CorruptBlobError,
)
from balances.stores.cache import TtlLruCache
from balances.stores.layout import MaintenanceReport, Resolution, SeriesSlice
from balances.stores.sharded.documents import (
    DailyRollup,
    MonthSeries,
    ShardCurrent,
    decode_current,
    decode_daily,
    decode_month,
)
from balances.stores.sharded.heal import Healer
from balances.stores.sharded.journal import IngestMark, Journal, Record, Segment
from balances.stores.sharded.manifest import Manifest, ManifestDocument
from balances.stores.sharded.read import read_slices

log = logging.getLogger("balances.stores")
DEFAULT_SHARDS = 256
DEFAULT_PREFIX = "v1"
#: The tail's segment mark of records staged but not yet written (sorts after every id).
STAGED = "~staged"
#: How long a written blob is kept for the next compaction: a week, well past the
#: daily pass (a stale copy costs one failed If-Match write, never a lost update).
WRITTEN_TTL_SECONDS = 7 * 86400.0


def shard_of(address: str, shards: int) -> int:
    """A stable shard for ``address`` (blake2b, not Python's salted hash)."""
    digest = hashlib.blake2b(address.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def newer(a: str | None, b: str | None) -> str | None:
    """The later of two segment ids (None is before everything)."""
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


@dataclass(slots=True)
class _Base:
    doc: ShardCurrent
    etag: str | None
    checked_at: float
    #: The manifest's folded_through when this blob was (re)validated: every segment up
    #: to it that concerns this shard is in the blob (compaction writes shards first).
    manifest_seen: str | None

    @property
    def folded(self) -> str | None:
        return newer(self.doc.folded_through, self.manifest_seen)


@dataclass(slots=True)
class _Tail:
    view: AddressBalances
    points: list[tuple[str, TokenKindName, BalancePoint]] = field(default_factory=list)
    newest: str = ""
    #: Retractions of this address not yet compacted: folded over the shard's blob too,
    #: which may hold the state (or the point) they void.
    retractions: list[Retraction] = field(default_factory=list)
    voided: Voided = field(default_factory=Voided)


@dataclass(frozen=True, slots=True)
class LsmSettings:
    shards: int = DEFAULT_SHARDS
    prefix: str = DEFAULT_PREFIX
    recheck_seconds: float = 300.0
    poll_seconds: float = 300.0
    max_points_per_month: int = 1000
    retention_days: int = 365
    compact_grace_seconds: float = 600.0
    blob_cache_bytes: int = 64_000_000
    #: Compressed shard blobs this process wrote, kept so the next compaction
    #: rewrites them without downloading them again (its If-Match catches a change).
    written_cache_bytes: int = 256_000_000


class ShardedStore:
    """Current balances and history in the sharded, journaled layout."""

    def __init__(
        self,
        blobs: BlobStore,
        settings: LsmSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings or LsmSettings()
        self.blobs = blobs
        self._clock = clock
        self._wall = wall_clock
        self.journal = Journal(blobs, self.settings.prefix, wall_clock=wall_clock)
        self.manifest = Manifest(blobs, self.key("manifest"), self.settings.shards, clock=clock)
        self.healer = Healer(self)
        self._bases: dict[int, _Base] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._tail: dict[str, _Tail] = {}
        self._staged: list[Record] = []
        #: The newest ingest mark seen in the journal (or the manifest): the cursor.
        self.ingest_mark: IngestMark | None = None
        self._mark_segment = ""  # the segment the mark came from (newest wins)
        self._known_segments: set[str] = set()
        self._polled_at: float | None = None
        self._poll_lock = asyncio.Lock()
        self._doc_fetches: dict[
            str, asyncio.Task[tuple[MonthSeries | DailyRollup | None, str | None]]
        ] = {}
        #: The first month kept when retention last swept (see lsm_compact).
        self.retention_swept: str | None = None
        # key -> (document or None when absent, the segment it is known to hold up to)
        self._docs: TtlLruCache[str, tuple[MonthSeries | DailyRollup | None, str | None]] = (
            TtlLruCache(
                ttl=self.settings.recheck_seconds,
                max_entries=100_000,
                max_bytes=self.settings.blob_cache_bytes,
                size_of=lambda entry: _doc_size(entry[0]),
                clock=clock,
                name="series-blobs",
            )
        )

        self.written: TtlLruCache[str, tuple[str, bytes]] = TtlLruCache(
            ttl=WRITTEN_TTL_SECONDS,
            max_entries=1_000_000,
            max_bytes=self.settings.written_cache_bytes,
            size_of=lambda entry: len(entry[1]),
            clock=clock,
            name="written-shard-blobs",
        )

    # --- keys ----------------------------------------------------------------

    def key(self, *parts: str) -> str:
        return blob_key(self.settings.prefix, *parts)

    def current_key(self, shard: int) -> str:
        return self.key("current", f"{shard:03x}")

    def month_key(self, month: str, shard: int) -> str:
        return self.key("month", month, f"{shard:03x}")

    def daily_key(self, shard: int) -> str:
        return self.key("daily", f"{shard:03x}")

    def shard(self, address: str) -> int:
        return shard_of(address, self.settings.shards)

    # --- current balances (CurrentBalanceStore) -----------------------------

    def wall_time(self) -> float:
        return self._wall()

    async def load(self, address: Principal) -> AddressBalances | None:
        await self.poll()
        key = str(address)
        if self.healer.is_lost(key):
            return None  # its blob was quarantined: unknown until read again
        base = await self._base(self.shard(key))
        stored = base.doc.addresses.get(key)
        tail = self._tail.get(key)
        if tail is None:
            return stored
        if stored is None:
            return tail.view
        # The tail's retractions void states of the shard blob, which comes before
        # them: void first, then join (a retraction does not commute with the join).
        return merge_views(apply_retractions(stored, tail.retractions) or stored, tail.view)

    async def load_many(self, addresses: Sequence[Principal]) -> dict[str, AddressBalances | None]:
        unique = list(dict.fromkeys(addresses))
        loaded = await asyncio.gather(*(self.load(address) for address in unique))
        return {str(a): found for a, found in zip(unique, loaded, strict=True)}

    async def apply(self, update: AddressUpdate) -> Merged:
        (outcome,) = await self.apply_many([update])
        if isinstance(outcome, BalancesError):
            raise outcome
        return outcome

    async def apply_many(self, updates: Sequence[AddressUpdate]) -> list[Merged | BalancesError]:
        """Merge every update into what is known; store what changed as one segment."""
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
        return results

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
        base = await self._base(shard)
        tail = self._tail.get(name)
        return await read_slices(
            name,
            start,
            end,
            keys=keys,
            resolution=resolution,
            load_daily=lambda: self._daily(shard, base.folded),
            load_month=lambda month: self._month(month, shard, base.folded),
            tail=[] if tail is None else tail.points,
            since=_since(base, name, tail),
            voided=None if tail is None else tail.voided,
        )

    async def first_seen(self, address: Principal) -> datetime | None:
        await self.poll()
        name = str(address)
        base = await self._base(self.shard(name))
        times = [base.doc.since[name]] if name in base.doc.since else []
        tail = self._tail.get(name)
        if tail is not None:
            times += [point.at.timestamp() for _, _, point in tail.points]
        return datetime.fromtimestamp(min(times), UTC) if times else None

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
            self._fold_record(record, segment.segment_id)

    def _fold_record(self, record: Record, segment_id: str) -> None:
        tail = self._tail.get(record.address)
        view = apply_changes(
            tail.view if tail else None, record.address, record.changes, record.listing
        )
        if tail is None:
            tail = self._tail[record.address] = _Tail(view)
        tail.points += [(change.key, change.kind, change.point()) for change in record.changes]
        if tail.retractions and record.changes:
            made = {(c.key, c.stamp, c.new) for c in record.changes}
            tail.retractions = [
                r for r in tail.retractions if (r.key, r.stamp, r.amount) not in made
            ]
            for c in record.changes:
                tail.voided.discard(c.key, c.point())
        if record.retracted:
            view = apply_retractions(view, record.retracted) or view
            tail.retractions += record.retracted
            tail.voided.add(record.retracted)
            tail.points = [p for p in tail.points if (p[0], p[2]) not in tail.voided]
        tail.view = view
        tail.newest = max(tail.newest, segment_id)

    # --- staged writes (block ingestion) -------------------------------------------

    def stage(self, records: Sequence[Record]) -> None:
        """Serve ``records`` at once and write them with the next :meth:`flush` (one
        segment for many blocks: blob stores bill per write)."""
        for record in records:
            self._fold_record(record, STAGED)
        self._staged += records

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
        for address in {record.address for record in batch} - still:
            tail = self._tail.get(address)
            if tail is not None and tail.newest == STAGED:
                tail.newest = segment.segment_id
        return segment

    def _prune(self, shard: int, folded: str | None) -> None:
        if folded is None:
            return
        for address in [a for a, t in self._tail.items() if t.newest <= folded]:
            if self.shard(address) == shard:
                del self._tail[address]

    def clear(self) -> None:
        """Forget every blob held in memory (a cold start; the tail stays: it holds
        records not yet in any blob)."""
        self._bases.clear()
        self._docs.clear()
        self.written.clear()
        self.manifest.invalidate()
        self._polled_at = None

    def invalidate(self) -> None:
        """Re-check every blob on its next read (after compaction, or for tests)."""
        for base in self._bases.values():
            base.checked_at = float("-inf")
        self._docs.clear()
        self.manifest.invalidate()
        self._polled_at = None

    # --- blobs ---------------------------------------------------------------------

    async def _base(self, shard: int) -> _Base:
        lock = self._locks.setdefault(shard, asyncio.Lock())
        async with lock:
            base = self._bases.get(shard)
            if base is not None and self._clock() - base.checked_at < self.settings.recheck_seconds:
                return base
            manifest = await self.manifest.current()
            if base is not None and base.manifest_seen == manifest.folded_through:
                # Shard blobs change only in compaction, which then advances the
                # manifest: while it has not moved, the shard needs no HEAD (one per
                # shard per recheck was most of this layout's bill).
                base.checked_at = self._clock()
                return base
            base = await self._revalidate(shard, base, manifest)
            self._bases[shard] = base
            self._prune(shard, base.folded)
            return base

    async def _revalidate(
        self, shard: int, base: _Base | None, manifest: ManifestDocument
    ) -> _Base:
        key = self.current_key(shard)
        if base is not None and base.etag is not None:
            try:
                info = await self.blobs.head(key)
            except BlobNotFoundError:
                info = None
            if info is not None and info.etag == base.etag:
                return _Base(base.doc, base.etag, self._clock(), manifest.folded_through)
        try:
            blob = await self.blobs.get(key)
        except BlobNotFoundError:
            return _Base(ShardCurrent(None), None, self._clock(), manifest.folded_through)
        doc = decode_current(blob.data, key)
        return _Base(doc, blob.etag, self._clock(), manifest.folded_through)

    async def _month(self, month: str, shard: int, folded: str | None) -> MonthSeries | None:
        found = await self._doc(self.month_key(month, shard), folded, decode_month)
        return found if isinstance(found, MonthSeries) else None

    async def _daily(self, shard: int, folded: str | None) -> DailyRollup | None:
        found = await self._doc(self.daily_key(shard), folded, decode_daily)
        return found if isinstance(found, DailyRollup) else None

    async def _doc(
        self,
        key: str,
        folded: str | None,
        decode: Callable[[bytes, str], MonthSeries | DailyRollup],
    ) -> MonthSeries | DailyRollup | None:
        """A decoded series blob (None: there is none) that holds every segment up to
        the shard's ``folded``; a copy cached before that would miss records the tail
        has already dropped. Compaction writes series blobs before the shard's current
        blob, so a blob missing when the shard said ``folded`` has nothing up to it."""
        for _ in range(2):  # a shared fetch that began too early is followed by our own
            cached = self._docs.get(key)
            if cached is not None and newer(cached[1], folded) == cached[1]:
                return cached[0]
            fetch = self._doc_fetches.get(key)
            if fetch is None:
                fetch = asyncio.create_task(self._fetch_doc(key, folded, decode))
                self._doc_fetches[key] = fetch
                fetch.add_done_callback(lambda _: self._doc_fetches.pop(key, None))
            found, holds = await asyncio.shield(fetch)
            if newer(holds, folded) == holds:
                return found
        return (await self._fetch_doc(key, folded, decode))[0]

    async def _fetch_doc(
        self,
        key: str,
        folded: str | None,
        decode: Callable[[bytes, str], MonthSeries | DailyRollup],
    ) -> tuple[MonthSeries | DailyRollup | None, str | None]:
        """One GET (concurrent readers of one blob share it), cached."""
        try:
            blob = await self.blobs.get(key)
        except BlobNotFoundError:
            entry: tuple[MonthSeries | DailyRollup | None, str | None] = (None, folded)
        else:
            doc = decode(blob.data, key)
            entry = (doc, newer(doc.folded_through, folded))
        self._docs.put(key, entry)
        return entry


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


def _doc_size(doc: MonthSeries | DailyRollup | None) -> int:
    if doc is None:
        return 100
    if isinstance(doc, MonthSeries):
        return 200 + sum(120 + 100 * len(points) for _, points in doc.series.values())
    return 200 + sum(160 + 80 * len(s.days) for s in doc.series.values())


def _since(base: _Base, address: str, tail: _Tail | None) -> datetime | None:
    """When ``address``'s history begins, as far as this store knows."""
    times = [base.doc.since[address]] if address in base.doc.since else []
    if tail is not None:
        times += [point.at.timestamp() for _, _, point in tail.points]
    return datetime.fromtimestamp(min(times), UTC) if times else None
