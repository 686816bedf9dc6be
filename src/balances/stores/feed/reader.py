"""Reading the durable feed: what came after a sequence number, or "gone".

The segment listing says which segment holds which numbers; segments are read once
and kept (they never change). A position below what retention kept, or inside a
hole a writer's crash left, is answered with :class:`FeedGoneError`: the consumer
re-reads the snapshot and resumes from the number the error gives.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from balances.blobs import BlobStore
from balances.domain.feed import FeedEntry
from balances.errors import BlobNotFoundError, FeedGoneError
from balances.stores.document import SharedDocument
from balances.stores.feed.segments import (
    FeedHead,
    SegmentName,
    decode_segment,
    parse_segment_key,
    segments_prefix,
)

_CACHED_SEGMENTS = 64


@dataclass(frozen=True, slots=True)
class FeedPage:
    """Entries in order, and the last number the feed had handed out then.
    ``stopped``: the page ended early (a limit or a hole), so ask again from its end."""

    entries: list[FeedEntry]
    last_seq: int
    stopped: bool = False

    @property
    def end(self) -> int | None:
        """The number of the last entry in the page."""
        return self.entries[-1].seq if self.entries else None


class FeedReader:
    """The durable segments of one feed.

    Reads list the segments again at most every ``list_seconds``: every stream
    consumer of a replica that does not write the feed polls it, and one listing a
    second serves them all (a LIST is a billed operation)."""

    def __init__(
        self,
        blobs: BlobStore,
        prefix: str,
        head: SharedDocument[FeedHead],
        *,
        list_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._blobs = blobs
        self._prefix = prefix
        self._head = head
        self._list_seconds = list_seconds
        self._clock = clock
        self._listed_at: float | None = None
        self._names: list[SegmentName] | None = None
        self._segments: OrderedDict[SegmentName, list[FeedEntry]] = OrderedDict()
        self._lock = asyncio.Lock()

    async def names(self, *, fresh: bool = False, recent: bool = False) -> list[SegmentName]:
        """The segments, in order of their numbers: listed again when ``fresh``, or
        when ``recent`` and the last listing is older than ``list_seconds``."""
        async with self._lock:
            now = self._clock()
            due = self._listed_at is None or now - self._listed_at >= self._list_seconds
            if self._names is None or fresh or (recent and due):
                found = []
                async for key in self._blobs.iter_keys(segments_prefix(self._prefix)):
                    name = parse_segment_key(key)
                    if name is not None:
                        found.append(name)
                self._names = sorted(found, key=lambda n: (n.first, n.last))
                self._listed_at = now
            return list(self._names)

    async def last_written(self) -> int:
        """The highest number any written segment holds (0: none)."""
        names = await self.names(fresh=True)
        head = await self._head.current()
        return max([head.pruned_through, *(n.last for n in names)])

    def wrote(self, name: SegmentName, entries: Sequence[FeedEntry]) -> None:
        """This process wrote ``name``: list and keep it without reading it back."""
        if self._names is not None:
            self._names.append(name)
        self._keep(name, list(entries))

    async def read_after(self, after: int, limit: int = 1000) -> FeedPage:
        head = await self._head.current()
        names = await self.names(recent=True)
        _check_position(head, names, after)
        last = max([head.pruned_through, *(n.last for n in names)])
        found: list[FeedEntry] = []
        for name in names:
            if name.last <= after or _inside_hole(head, name):
                continue
            seen = found[-1].seq if found else after
            if head.hole_at(seen) is not None:
                return FeedPage(found, last, stopped=True)
            for entry in await self._segment(name):
                if entry.seq > seen and not _in_holes(head, entry.seq):
                    found.append(entry)
                    if len(found) >= limit:
                        return FeedPage(found, last, stopped=True)
        seen = found[-1].seq if found else after
        return FeedPage(found, last, stopped=head.hole_at(seen) is not None)

    async def _segment(self, name: SegmentName) -> list[FeedEntry]:
        kept = self._segments.get(name)
        if kept is not None:
            self._segments.move_to_end(name)
            return kept
        key = name.key(self._prefix)
        try:
            blob = await self._blobs.get(key)
        except BlobNotFoundError:
            return []  # deleted by retention meanwhile: the next read says gone
        entries = decode_segment(blob.data, key)
        self._keep(name, entries)
        return entries

    def _keep(self, name: SegmentName, entries: list[FeedEntry]) -> None:
        self._segments[name] = entries
        while len(self._segments) > _CACHED_SEGMENTS:
            self._segments.popitem(last=False)

    async def prune(self, older_than: float) -> int:
        """Delete the segments written before unix time ``older_than`` (oldest first,
        never the newest one); returns how many went."""
        names = await self.names(fresh=True)
        doomed = [n for n in names[:-1] if n.written < older_than]
        if not doomed:
            return 0
        through = max(n.last for n in doomed)
        await self._head.update(
            lambda head: replace(
                head,
                pruned_through=max(head.pruned_through, through),
                holes=tuple(h for h in head.holes if h[1] > through),
            )
        )
        await self._blobs.delete([n.key(self._prefix) for n in doomed])
        async with self._lock:
            self._names = [n for n in names if n not in doomed]
        for name in doomed:
            self._segments.pop(name, None)
        return len(doomed)


def _check_position(head: FeedHead, names: Sequence[SegmentName], after: int) -> None:
    if after < 0:
        raise FeedGoneError(f"sequence numbers start at 1, not after {after}", resume_after=0)
    if after < head.pruned_through:
        raise FeedGoneError(
            f"the feed no longer holds the changes after {after} (retention kept those "
            f"after {head.pruned_through}): re-read the snapshot, then resume",
            resume_after=_newest(head, names),
        )
    hole = head.hole_at(after)
    if hole is not None:
        raise FeedGoneError(
            f"the changes {hole[0]}..{hole[1]} were lost when a writer stopped without "
            "writing them: re-read the snapshot, then resume",
            resume_after=hole[1],
        )


def _newest(head: FeedHead, names: Sequence[SegmentName]) -> int:
    return max([head.pruned_through, *(n.last for n in names)])


def _inside_hole(head: FeedHead, name: SegmentName) -> bool:
    return any(first <= name.first and name.last <= last for first, last in head.holes)


def _in_holes(head: FeedHead, seq: int) -> bool:
    return any(first <= seq <= last for first, last in head.holes)
