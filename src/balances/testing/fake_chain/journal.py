"""What happened on the fake chain, in order: the feed push deliverers read.

Every canonical block mined, every reorg (its orphaned blocks and the blocks that
replaced them, as one entry), and every mempool change is appended here. A
deliverer keeps its own position, so it sends each entry in order and can retry
one until the receiver takes it. Entries refer to :class:`Block` records; what a
block contained is read from the chain when an entry is rendered.

The chain is driven from one thread (the event loop's): appending wakes the
coroutines waiting in :meth:`ChainJournal.wait_beyond`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from balances.testing.fake_chain.blocks import Block

#: ``/drop_mempool_tx`` reasons, as the node writes them.
DROP_REASONS = (
    "ReplaceByFee",
    "ReplaceAcrossFork",
    "TooExpensive",
    "StaleGarbageCollect",
    "Problematic",
)


@dataclass(frozen=True, slots=True)
class BlockApplied:
    """A new canonical block on top of the previous tip."""

    block: Block


@dataclass(frozen=True, slots=True)
class ChainReorg:
    """``orphaned`` (oldest first) left the canonical chain; ``applied`` (oldest first)
    replaced them, starting at the height of the first orphaned block."""

    orphaned: tuple[Block, ...]
    applied: tuple[Block, ...]


@dataclass(frozen=True, slots=True)
class MempoolAdded:
    tx_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MempoolDropped:
    tx_ids: tuple[str, ...]
    reason: str  # one of DROP_REASONS


ChainEvent = BlockApplied | ChainReorg | MempoolAdded | MempoolDropped


class ChainJournal:
    """An append-only list of :data:`ChainEvent` with async waiting."""

    def __init__(self) -> None:
        self.entries: list[ChainEvent] = []
        self._waiters: list[asyncio.Event] = []

    def __len__(self) -> int:
        return len(self.entries)

    def append(self, entry: ChainEvent) -> None:
        self.entries.append(entry)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.set()

    async def wait_beyond(self, position: int) -> None:
        """Return once the journal holds more than ``position`` entries."""
        while len(self.entries) <= position:
            waiter = asyncio.Event()
            self._waiters.append(waiter)
            await waiter.wait()
