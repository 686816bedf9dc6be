"""The *push* sources: deliveries POSTed to us (Chainhooks, a node's event observer).

The REST routes decode a delivery (:mod:`balances.chain.chainhook`,
:mod:`balances.chain.observer`) and hand its events to a :class:`PushQueue`; the
route answers once the ingestor has applied them (in memory: they are served at
once and written with the next flush), so a delivery that times out or fails is
delivered again by its sender, and applying it twice changes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from balances.errors import IngestError
from balances.ingest.feed import IngestEvent

DEFAULT_CAPACITY = 1000


@dataclass(slots=True)
class Queued:
    """One delivery's events and who waits for them."""

    events: tuple[IngestEvent, ...]
    done: asyncio.Future[None]

    def settle(self, error: BaseException | None = None) -> None:
        if self.done.done():
            return
        if error is None:
            self.done.set_result(None)
        else:
            self.done.set_exception(error)


class PushQueue:
    """Deliveries waiting for the ingestor, in arrival order (bounded)."""

    def __init__(self, name: str, capacity: int = DEFAULT_CAPACITY) -> None:
        self.name = name
        self._queue: asyncio.Queue[Queued] = asyncio.Queue(capacity)
        self.stopping = False

    async def deliver(self, events: Sequence[IngestEvent], *, wait: float = 30.0) -> None:
        """Queue ``events`` and wait (at most ``wait`` seconds) until they are applied;
        raises what applying them raised, or IngestError when ingestion is not keeping
        up."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(Queued(tuple(events), done))
        except asyncio.QueueFull as error:
            raise IngestError("ingestion is behind: the delivery queue is full") from error
        try:
            await asyncio.wait_for(asyncio.shield(done), wait)
        except TimeoutError as error:
            raise IngestError(f"the delivery was not applied within {wait:g}s") from error

    async def deliveries(self) -> AsyncIterator[Queued]:
        """Each delivery, in arrival order, until stopped."""
        while not self.stopping:
            yield await self._queue.get()

    def __len__(self) -> int:
        return self._queue.qsize()
