"""Following the change feed: what a stream consumer receives, and in what order.

:class:`ChangeStream` first replays what the feed holds after the consumer's
position (a resume), then hands over new entries as they are applied. It
subscribes before it replays and drops what it already gave, so a resume loses
nothing and repeats nothing. Where this process does not write the feed (another
replica folds blocks), it polls the durable feed instead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from balances.domain.feed import FeedEntry, FeedFilter
from balances.errors import FeedGoneError, ValidationError
from balances.stores.feed import ChangeFeed, Subscription

PAGE = 500


@dataclass(frozen=True, slots=True)
class Entries:
    """Entries for the consumer, in order of their numbers."""

    entries: list[FeedEntry]


@dataclass(frozen=True, slots=True)
class Idle:
    """Nothing happened for a while (the stream's keep-alive)."""


@dataclass(frozen=True, slots=True)
class CutOff:
    """The consumer fell too far behind; it resumes from ``resume_after``."""

    resume_after: int
    reason: str


@dataclass(frozen=True, slots=True)
class Gone:
    """The consumer's position is no longer in the feed (a hole met while replaying)."""

    error: FeedGoneError


StreamEvent = Entries | Idle | CutOff | Gone


def check_position(text: str | None) -> int | None:
    """A resume position (``Last-Event-ID`` or ``after``): None, or a number >= 0."""
    if text is None or not text.strip():
        return None
    value = text.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 20:
        raise ValidationError(f"a stream position is a sequence number, not {value[:40]!r}")
    return int(value)


class ChangeStream:
    """One consumer's view of the feed, from ``after`` (None: from now)."""

    def __init__(
        self,
        feed: ChangeFeed,
        where: FeedFilter,
        after: int | None,
        *,
        poll_seconds: float = 1.0,
    ) -> None:
        self._feed = feed
        self._filter = where
        self._after = after
        self._poll = poll_seconds
        self._subscription: Subscription | None = None
        self.position = 0

    async def start(self) -> None:
        """Subscribe and check the position (FeedGoneError before anything is sent)."""
        if self._feed.writing:
            self._subscription = self._feed.hub.subscribe(self._filter)
        if self._after is None:
            self.position = self._feed.last_seq or await self._feed.reader.last_written()
        else:
            self.position = self._after
            await self._feed.read_after(self._after, 1)  # raises when gone

    def close(self) -> None:
        if self._subscription is not None:
            self._subscription.close()

    async def events(self, idle_seconds: float) -> AsyncIterator[StreamEvent]:
        """Replayed entries, then live ones; :class:`Idle` after ``idle_seconds`` of
        quiet; ends after a :class:`CutOff` or :class:`Gone`."""
        if self._after is not None:
            async for event in self._replay():
                yield event
                if isinstance(event, Gone):
                    return
        while True:
            sub = self._subscription
            if sub is not None and self._feed.writing:
                batch = await sub.next_batch(idle_seconds)
                if sub.cut_off:
                    yield CutOff(self.position, "slow consumer: too many undelivered changes")
                    return
                fresh = [entry for entry in batch if entry.seq > self.position]
            else:
                fresh = await self._poll_once(idle_seconds)
            if fresh:
                self.position = fresh[-1].seq
                yield Entries(fresh)
            else:
                yield Idle()

    async def _replay(self) -> AsyncIterator[StreamEvent]:
        while True:
            try:
                page = await self._feed.read_after(self.position, PAGE)
            except FeedGoneError as error:
                yield Gone(error)
                return
            if page.end is not None:
                matching = [e for e in page.entries if self._filter.matches(e)]
                self.position = page.end
                if matching:
                    yield Entries(matching)
            if not page.stopped:
                return

    async def _poll_once(self, idle_seconds: float) -> list[FeedEntry]:
        """Entries after the position from the durable feed, waiting up to
        ``idle_seconds`` (one read per ``poll_seconds``)."""
        deadline = time.monotonic() + idle_seconds
        while True:
            page = await self._feed.read_after(self.position, PAGE)
            if page.end is not None:
                matching = [e for e in page.entries if self._filter.matches(e)]
                self.position = page.end
                if matching:
                    return matching
            if time.monotonic() >= deadline:
                return []
            await asyncio.sleep(min(self._poll, max(0.0, deadline - time.monotonic())))
