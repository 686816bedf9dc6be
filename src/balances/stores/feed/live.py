"""Handing new feed entries to the subscribers of this process, with bounded memory.

Each :class:`Subscription` holds at most ``limit`` undelivered entries. A consumer
that falls further behind is *cut off*: its queue is dropped and it is told so
(it resumes from the last sequence number it saw, out of the durable feed). So a
slow consumer costs the server a bounded queue, never more.

Subscriptions are indexed by address, so an entry costs only the subscribers that
asked for its address (plus those that asked for every address).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable, Sequence

from balances.domain.feed import FeedEntry, FeedFilter

DEFAULT_QUEUE_LIMIT = 1000


class Subscription:
    """One consumer's queue of entries that match its filter."""

    __slots__ = ("_hub", "_queue", "_ready", "cut_off", "filter", "limit")

    def __init__(self, hub: LiveHub, where: FeedFilter, limit: int) -> None:
        self._hub = hub
        self.filter = where
        self.limit = limit
        self._queue: deque[FeedEntry] = deque()
        self._ready = asyncio.Event()
        #: Set when the consumer fell more than ``limit`` entries behind.
        self.cut_off = False

    def offer(self, entry: FeedEntry) -> None:
        if self.cut_off or not self.filter.matches(entry):
            return
        if len(self._queue) >= self.limit:
            self.cut_off = True
            self._queue.clear()
            self._hub.unsubscribe(self)
        else:
            self._queue.append(entry)
        self._ready.set()

    async def next_batch(self, wait: float | None = None) -> list[FeedEntry]:
        """The entries queued so far, waiting up to ``wait`` seconds for one; empty
        when the wait timed out or the consumer was cut off."""
        if not self._queue and not self.cut_off:
            self._ready.clear()
            try:
                await asyncio.wait_for(self._ready.wait(), wait)
            except TimeoutError:
                return []
        batch = list(self._queue)
        self._queue.clear()
        return batch

    @property
    def queued(self) -> int:
        return len(self._queue)

    def close(self) -> None:
        self._hub.unsubscribe(self)


class LiveHub:
    """Subscriptions of this process, and the fan-out of each new entry to them."""

    def __init__(self, queue_limit: int = DEFAULT_QUEUE_LIMIT) -> None:
        self.queue_limit = queue_limit
        self._by_address: dict[str, set[Subscription]] = {}
        self._everything: set[Subscription] = set()
        self._listeners: list[Callable[[Sequence[FeedEntry]], None]] = []
        self.cut_offs = 0

    def listen(self, listener: Callable[[Sequence[FeedEntry]], None]) -> Callable[[], None]:
        """Call ``listener`` with each published batch (no queue: it must not block);
        returns the function that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def subscribe(self, where: FeedFilter, limit: int | None = None) -> Subscription:
        subscription = Subscription(self, where, limit or self.queue_limit)
        if not where.addresses:
            self._everything.add(subscription)
        for address in where.addresses:
            self._by_address.setdefault(address, set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription.cut_off:
            self.cut_offs += 1 if subscription in self else 0
        self._everything.discard(subscription)
        for address in subscription.filter.addresses:
            found = self._by_address.get(address)
            if found is not None:
                found.discard(subscription)
                if not found:
                    del self._by_address[address]

    def __contains__(self, subscription: Subscription) -> bool:
        if not subscription.filter.addresses:
            return subscription in self._everything
        address = next(iter(subscription.filter.addresses))
        return subscription in self._by_address.get(address, ())

    def __len__(self) -> int:
        """How many subscriptions are open."""
        unique = set(self._everything)
        for found in self._by_address.values():
            unique |= found
        return len(unique)

    def publish(self, entries: Iterable[FeedEntry]) -> None:
        batch = list(entries)
        for entry in batch:
            for subscription in tuple(self._by_address.get(entry.change.address, ())):
                subscription.offer(entry)
            for subscription in tuple(self._everything):
                subscription.offer(entry)
        if batch:
            for listener in tuple(self._listeners):
                listener(batch)
