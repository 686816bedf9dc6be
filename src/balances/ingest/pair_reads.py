"""Reading (address, token) pairs exactly as of one block, with retries: a block is
applied whole or not at all, so a pair that cannot be read holds the block back."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

from balances.chain.events import BlockRef
from balances.domain.current import TokenKindName
from balances.errors import ChainError, IngestError
from balances.ingest.feed import PairReader
from balances.ingest.settings import IngestSettings
from balances.ingest.stats import IngestStats

Pair = tuple[str, str, TokenKindName]  # (address, token read: stx or contract id, kind)


class PairReads:
    """Pair reads at a block through ``reader``, ``read_concurrency`` at a time."""

    def __init__(
        self,
        reader: PairReader,
        settings: IngestSettings,
        stats: IngestStats,
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self._reader = reader
        self._settings = settings
        self._stats = stats
        self._sleep = sleep

    async def read(self, pairs: Iterable[Pair], at: BlockRef) -> dict[Pair, int]:
        """Each pair's amount exactly as of block ``at``; raises IngestError when one
        cannot be read (the block is then not applied)."""
        wanted = sorted(pairs)
        if not wanted:
            return {}
        index_hash = at.index_hash
        if index_hash is None:
            raise IngestError(f"block {at.label} has no index hash to read balances at")
        gate = asyncio.Semaphore(self._settings.read_concurrency)

        async def one(pair: Pair) -> int:
            async with gate:
                return await self._read_one(pair, index_hash)

        values = await asyncio.gather(*(one(pair) for pair in wanted))
        return dict(zip(wanted, values, strict=True))

    async def _read_one(self, pair: Pair, index_hash: str) -> int:
        address, token, _ = pair
        delay = 0.5
        attempts = self._settings.read_attempts
        for attempt in range(attempts):
            try:
                return await self._reader.get_balance_at(address, token, index_hash)
            except ChainError as error:
                self._stats.reads_failed += 1
                if attempt + 1 == attempts:
                    raise IngestError(f"reading {token} of {address} failed: {error}") from error
                await self._sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")
