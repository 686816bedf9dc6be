"""Runs ingestion: a source's events into the ingestor, flushes on time, falls back.

One runner per process that ingests (the scheduler's leader in ``balances serve``;
``balances ingest run`` on its own). With the *pull* source it follows the API;
with a *push* source it applies the deliveries the REST routes queue, filling gaps
from the API when one is configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from balances.chain.events import BlockRef
from balances.errors import BalancesError, IngestError
from balances.ingest.feed import Apply, IngestEvent
from balances.ingest.ingestor import Ingestor
from balances.ingest.pull import ApiBlockFetcher, PullSettings, PullSource
from balances.ingest.push import PushQueue, Queued

log = logging.getLogger("balances.ingest")
TICK_SECONDS = 1.0
#: Blocks applied back to back (no probe missed) before the runner checks the lag.
CATCH_UP_CHECK = 30


class IngestRunner:
    def __init__(
        self,
        ingestor: Ingestor,
        *,
        fetcher: ApiBlockFetcher | None = None,
        push: PushQueue | None = None,
        pull_settings: PullSettings | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if fetcher is None and push is None:
            raise ValueError("ingestion needs a source: an API to pull from, or a push queue")
        self.ingestor = ingestor
        self.fetcher = fetcher
        self.push = push
        self._sleep = sleep
        self.pull: PullSource | None = None
        if push is None and fetcher is not None:
            self.pull = PullSource(fetcher, self._next_height, settings=pull_settings, sleep=sleep)
        self._tasks: list[asyncio.Task[None]] = []
        self._streak = 0

    @property
    def source(self) -> str:
        return "pull" if self.pull is not None else self.ingestor.source

    async def start(self) -> None:
        await self.ingestor.open()
        if self.pull is not None:
            await self._check_lag()
        loop = self._pull_loop() if self.pull is not None else self._push_loop()
        self._tasks = [asyncio.create_task(loop), asyncio.create_task(self._ticker())]

    async def stop(self) -> None:
        if self.pull is not None:
            self.pull.stopping = True
        if self.push is not None:
            self.push.stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.ingestor.flush()
        self.ingestor.running = False

    async def run_once(self) -> int:
        """Pull until caught up with the tip, flush, and return the blocks applied."""
        assert self.pull is not None, "run_once follows the API (the pull source)"
        await self.ingestor.open()
        await self._check_lag()
        before = self.ingestor.stats.blocks_applied
        async for event in self.pull.events():
            if not isinstance(event, Apply):
                break  # a probe found nothing new: caught up
            await self._apply(event)
        await self.ingestor.flush()
        return self.ingestor.stats.blocks_applied - before

    # --- loops ---------------------------------------------------------------------

    async def _next_height(self) -> int:
        cursor = self.ingestor.cursor
        if cursor is not None:
            return cursor.height + 1
        assert self.fetcher is not None
        return (await self.fetcher.tip()).height  # a new store starts at the tip

    async def _pull_loop(self) -> None:
        assert self.pull is not None
        while True:
            try:
                async for event in self.pull.events():
                    await self._apply(event)
                return
            except BalancesError as error:  # the source failed: wait, go on
                self.ingestor.stats.last_error = str(error)
                log.warning("pull ingestion: %s", error)
                await self._sleep(self.pull.settings.interval)

    async def _apply(self, event: IngestEvent) -> None:
        try:
            await self.ingestor.handle(event)
        except IngestError as error:
            await self._fall_back(str(error), event)
            return
        if isinstance(event, Apply):
            self._streak += 1
            if self._streak >= CATCH_UP_CHECK:
                self._streak = 0
                await self._check_lag()
        else:
            self._streak = 0

    async def _push_loop(self) -> None:
        assert self.push is not None
        async for queued in self.push.deliveries():
            await self._deliver(queued)

    async def _deliver(self, queued: Queued) -> None:
        try:
            for event in queued.events:
                try:
                    await self.ingestor.handle(event)
                except IngestError as error:
                    await self._fall_back(str(error), event)
        except BalancesError as error:
            self.ingestor.stats.last_error = str(error)
            queued.settle(error)
            return
        queued.settle()

    async def _ticker(self) -> None:
        while True:
            await self._sleep(TICK_SECONDS)
            try:
                await self.ingestor.tick()
            except BalancesError as error:
                log.warning("ingestion tick: %s", error)

    # --- falling back ------------------------------------------------------------------

    async def _check_lag(self) -> None:
        """Beyond ``max_lag_blocks`` behind the tip, resume from the tip."""
        cursor = self.ingestor.cursor
        if self.fetcher is None or cursor is None:
            return
        try:
            tip = await self.fetcher.tip()
        except BalancesError as error:
            log.info("ingestion: the tip could not be read: %s", error)
            return
        lag = tip.height - cursor.height
        self.ingestor.stats.source_tip = (tip.height, float(tip.block_time))
        if lag > self.ingestor.settings.max_lag_blocks:
            ref = BlockRef(tip.height, tip.hash, tip.index_block_hash)
            await self.ingestor.fall_back(ref, float(tip.block_time), f"{lag} blocks behind")

    async def _fall_back(self, reason: str, event: IngestEvent) -> None:
        """Resume from the tip (pull), or from the delivered block (push)."""
        if self.fetcher is not None:
            try:
                tip = await self.fetcher.tip()
            except BalancesError as error:
                raise IngestError(f"{reason}; and the tip cannot be read: {error}") from error
            ref = BlockRef(tip.height, tip.hash, tip.index_block_hash)
            await self.ingestor.fall_back(ref, float(tip.block_time), reason)
            if isinstance(event, Apply) and event.block.height > tip.height:
                await self.ingestor.handle(event)
            return
        if not isinstance(event, Apply):
            raise IngestError(reason)
        block = event.block
        await self.ingestor.fall_back(block.parent, block.time, reason)
        await self.ingestor.handle(event)
