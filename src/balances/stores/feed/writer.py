"""Numbering and writing feed entries: one writer at a time, no number used twice.

The writer *claims* the feed in its head document (a conditional write), reserving a
range of numbers. It numbers entries in memory, hands them to the live hub at once,
and writes them as one segment whenever the journal is written (the store calls
:meth:`ChangeFeed.flush` after each journal segment): the feed costs one more
write per journal write, never one per change.

A crash loses the entries not yet written. The next writer finds the claimed range
above the last written number and records it as a *hole*, then numbers on from the
end of the reservation: a number once handed out is never given to another entry,
and a consumer whose position falls into a hole is told it is gone (re-read the
snapshot), never silently skipped. A writer whose claim was taken over stops writing.

Retention deletes whole segments older than ``retention_seconds``.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from balances.blobs import CREATE, BlobStore
from balances.domain.feed import ChangeDraft, FeedEntry
from balances.errors import BalancesError
from balances.stores.document import SharedDocument
from balances.stores.encoding import CONTENT_TYPE
from balances.stores.feed.live import LiveHub
from balances.stores.feed.reader import FeedPage, FeedReader
from balances.stores.feed.segments import (
    FeedHead,
    SegmentName,
    decode_head,
    encode_head,
    encode_segment,
    head_key,
)

log = logging.getLogger("balances.feed")


@dataclass(frozen=True, slots=True)
class FeedSettings:
    retention_seconds: float = 7 * 86400.0
    #: Numbers claimed at a time (one head write per this many entries).
    reserve: int = 100_000
    prune_every_seconds: float = 3600.0
    #: Entries kept in memory to answer resumes without reading blobs.
    recent: int = 20_000
    #: Changes remembered so that a reorg's retraction can name their numbers.
    index_size: int = 200_000
    #: Seconds between durable segments at least (0: one with every journal
    #: segment). Live subscribers are not delayed; a crash loses up to this long
    #: (a hole), and replicas reading the durable feed lag up to this long.
    write_seconds: float = 0.0


class ChangeFeed:
    """The feed of one store: numbering, the live hub, durable segments, resumes."""

    def __init__(
        self,
        blobs: BlobStore,
        prefix: str,
        settings: FeedSettings | None = None,
        *,
        hub: LiveHub | None = None,
        wall_clock: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or FeedSettings()
        self.hub = hub or LiveHub()
        self._blobs = blobs
        self._prefix = prefix
        self._wall = wall_clock
        self.head = SharedDocument(
            blobs,
            head_key(prefix),
            empty=FeedHead,
            encode=encode_head,
            decode=decode_head,
            recheck_seconds=5.0,
        )
        self.reader = FeedReader(blobs, prefix, self.head, clock=clock)
        self.writer_id = secrets.token_hex(6)
        self.writing = False
        self._next = 0
        self._reserved = 0
        self._pending: list[FeedEntry] = []
        self._held: list[FeedEntry] = []  # numbered beyond the claim: published once claimed
        self._recent: deque[FeedEntry] = deque(maxlen=self.settings.recent)
        self._changes: OrderedDict[tuple[str, str, str | None], int] = OrderedDict()
        self._pruned_at: float | None = None
        self._written_at: float | None = None
        self.written_segments = 0

    # --- the writer's claim ----------------------------------------------------------

    async def open(self) -> None:
        """Become the feed's writer (taking over from any other)."""
        durable = await self.reader.last_written()
        claimed: dict[str, int] = {}

        def claim(head: FeedHead) -> FeedHead:
            holes = head.holes
            if head.reserved_through > durable:
                holes = (*holes, (durable + 1, head.reserved_through))
            start = max(head.reserved_through, durable, head.pruned_through) + 1
            claimed["start"] = start
            return replace(
                head,
                writer=self.writer_id,
                reserved_through=start - 1 + self.settings.reserve,
                holes=holes,
            )

        head = await self.head.update(claim)
        self._next, self._reserved = claimed["start"], head.reserved_through
        self.writing = True
        log.info("the change feed is written here from %d", self._next)

    async def close(self) -> None:
        """Write what is pending and release the unused part of the claim."""
        if not self.writing:
            return
        try:
            await self.flush(force=True)
            used = self._next - 1

            def release(head: FeedHead) -> FeedHead | None:
                if head.writer != self.writer_id:
                    return None
                return replace(head, writer=None, reserved_through=used)

            await self.head.update(release)
        finally:
            self.writing = False

    @property
    def last_seq(self) -> int:
        """The last number handed out here (0: none)."""
        return self._next - 1 if self.writing else 0

    # --- numbering ----------------------------------------------------------------------

    def emit(self, drafts: Sequence[ChangeDraft]) -> list[FeedEntry]:
        """Number ``drafts`` in order and hand them to live subscribers (nothing when
        this process is not the writer)."""
        if not self.writing or not drafts:
            return []
        entries = [self._number(draft) for draft in drafts]
        self._pending += entries
        # Beyond the claim (or behind entries held there) wait for the next claim, so
        # what is handed out stays in order.
        claimed = [] if self._held else [e for e in entries if e.seq <= self._reserved]
        self._held += entries[len(claimed) :]
        self._recent.extend(claimed)
        self.hub.publish(claimed)
        return entries

    def _number(self, draft: ChangeDraft) -> FeedEntry:
        seq, self._next = self._next, self._next + 1
        where = (draft.address, draft.token, draft.block_hash)
        if draft.type == "retraction":
            return FeedEntry(seq, draft, self._changes.pop(where, None))
        self._changes[where] = seq
        if len(self._changes) > self.settings.index_size:
            self._changes.popitem(last=False)
        return FeedEntry(seq, draft)

    # --- durability ---------------------------------------------------------------------

    async def flush(self, *, force: bool = False) -> None:
        """Write the pending entries as one segment (unless one was written less than
        ``write_seconds`` ago and not ``force``), claim more numbers when the claim
        runs low, and apply retention when due. On failure what is pending stays for
        the next flush."""
        if not self.writing:
            return
        await self._claim_more()
        batch = self._pending
        if batch and (force or self._write_due()):
            name = SegmentName(batch[0].seq, batch[-1].seq, int(self._wall()))
            key = name.key(self._prefix)
            await self._blobs.put(
                key, encode_segment(batch), mode=CREATE, content_type=CONTENT_TYPE
            )
            self._pending = self._pending[len(batch) :]
            self.reader.wrote(name, batch)
            self.written_segments += 1
            self._written_at = self._wall()
        await self._prune_if_due()

    def _write_due(self) -> bool:
        written, every = self._written_at, self.settings.write_seconds
        return every <= 0 or written is None or self._wall() - written >= every

    async def _claim_more(self) -> None:
        if self._next + self.settings.reserve // 2 <= self._reserved:
            return
        through = self._next - 1 + self.settings.reserve
        lost = False

        def extend(head: FeedHead) -> FeedHead | None:
            nonlocal lost
            if head.writer != self.writer_id:
                lost = True
                return None
            return replace(head, reserved_through=max(head.reserved_through, through))

        head = await self.head.update(extend)
        if lost:
            log.warning("another replica took over the change feed: this one stops writing it")
            self.writing = False
            self._pending, self._held = [], []
            return
        self._reserved = head.reserved_through
        held, self._held = self._held, []
        self._recent.extend(held)
        self.hub.publish(held)

    async def _prune_if_due(self) -> None:
        now = self._wall()
        if (
            self._pruned_at is not None
            and now - self._pruned_at < self.settings.prune_every_seconds
        ):
            return
        self._pruned_at = now
        try:
            await self.reader.prune(now - self.settings.retention_seconds)
        except BalancesError as error:
            log.warning("feed retention could not delete old segments (will retry): %s", error)

    # --- reading -----------------------------------------------------------------------

    async def read_after(self, after: int, limit: int = 1000) -> FeedPage:
        """Up to ``limit`` entries numbered above ``after``, in order: from memory when
        this process holds them, else from the durable segments (FeedGoneError when
        the feed no longer holds the position)."""
        recent = self._recent
        head = self.head.peek()
        kept = head is None or after >= head.pruned_through  # else the reader says gone
        if self.writing and kept and recent and recent[0].seq <= after + 1:
            start = after + 1 - recent[0].seq  # numbers in memory are consecutive
            found = list(itertools.islice(recent, start, start + limit))
            return FeedPage(found, self.last_seq, stopped=len(found) >= limit)
        page = await self.reader.read_after(after, limit)
        if self.writing and not page.stopped:
            seen = page.end or after
            more = [entry for entry in recent if entry.seq > seen][: limit - len(page.entries)]
            found = [*page.entries, *more]
            return FeedPage(found, self.last_seq, stopped=len(found) >= limit)
        return page
