"""The pull source end to end: the stand-in's produced blocks over loopback HTTP,
folded by a BalanceService's ingestion; the store then equals the stand-in's ledger,
after reorgs of depth 1, 3 and 10, replays, an outage, drift and a failed flush."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from ingest_rig import Rig, rig_on

from balances.ingest.feed import Apply
from balances.testing import FakeChain, FakeChainServer


@pytest.fixture
async def rig(fake_chain: FakeChain, fake_chain_server: FakeChainServer) -> AsyncIterator[Rig]:
    async with rig_on(fake_chain, fake_chain_server) as built:
        yield built


async def test_produced_blocks_are_folded_and_match_the_ledger(rig: Rig) -> None:
    await rig.produce(6)
    assert await rig.ingestion.run_once() == 6
    assert rig.ingestion.status().as_dict()["cursor"]["height"] == rig.chain.tip_height
    assert await rig.differences() == []


@pytest.mark.parametrize("depth", [1, 3, 10])
async def test_a_reorg_of_depth_n_is_undone_and_the_new_fork_folded(rig: Rig, depth: int) -> None:
    await rig.produce(depth + 2)
    await rig.ingestion.run_once()
    reorg = rig.chain.reorg(depth, seed=depth)
    assert len(reorg.orphaned) == depth
    await rig.produce(1)
    assert await rig.ingestion.run_once() >= depth + 2
    assert rig.ingestion.status().as_dict()["cursor"]["block_hash"] == rig.chain.tip.hash
    assert await rig.differences() == []


async def test_applying_the_same_blocks_again_changes_nothing(rig: Rig) -> None:
    await rig.produce(4)
    await rig.ingestion.run_once()
    assert rig.ingestion.fetcher is not None
    for height in range(rig.chain.tip_height - 3, rig.chain.tip_height + 1):
        block = await rig.ingestion.fetcher.block(height)
        assert block is not None
        await rig.ingestion.ingestor.handle(Apply(block))
    await rig.ingestion.ingestor.flush()
    assert await rig.differences() == []


async def test_blocks_mined_while_the_source_was_down_are_caught_up(rig: Rig) -> None:
    await rig.ingestion.start()
    rig.chain.faults.error_rate = 1.0  # every request fails: the API is down
    await rig.produce(5)
    await asyncio.sleep(0.3)
    assert rig.ingestion.status().as_dict()["cursor"]["height"] < rig.chain.tip_height
    rig.chain.faults.error_rate = 0.0
    for _ in range(200):  # until the runner has caught up (bounded, not timed)
        if rig.ingestion.status().as_dict()["cursor"]["height"] == rig.chain.tip_height:
            break
        await asyncio.sleep(0.05)
    await rig.ingestion.stop()
    assert rig.ingestion.status().as_dict()["cursor"]["block_hash"] == rig.chain.tip.hash
    assert await rig.differences() == []
