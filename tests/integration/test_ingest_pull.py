"""The pull source end to end: the stand-in's produced blocks over loopback HTTP,
folded by a BalanceService's ingestion; the store then equals the stand-in's ledger,
after reorgs of depth 1, 3 and 10, replays, an outage, drift and a failed flush."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
from conftest_client import stacks_client
from service_helpers import Clocks, config

from balances.blobs import MemoryBlobStore
from balances.domain import Principal
from balances.ingest.feed import Apply
from balances.service import BalanceService
from balances.service_ingest import Ingestion
from balances.testing import BlockProducer, FakeChain, FakeChainServer, fake_address

POPULATION = [fake_address(f"ingest-pull-{i}") for i in range(40)]


@dataclass
class Rig:
    chain: FakeChain
    producer: BlockProducer
    service: BalanceService
    ingestion: Ingestion

    @property
    def tracked(self) -> list[str]:
        return [*POPULATION, *self.producer.pools]

    async def differences(self, service: BalanceService | None = None) -> list[str]:
        """Every tracked (address, token) whose stored amount is not the ledger's."""
        found = await (service or self.service).current.load_many(
            [Principal.parse(a) for a in self.tracked]
        )
        wrong = []
        for address in self.tracked:
            balances = found.get(address)
            for token in self.producer.token_ids:
                truth = self.chain.balance(token, address)
                state = None if balances is None else balances.tokens.get(token)
                stored = None if state is None else state.amount
                if stored != truth and not (stored is None and truth == 0):
                    wrong.append(f"{address} {token}: stored {stored}, ledger {truth}")
        return wrong

    async def produce(self, blocks: int) -> None:
        for _ in range(blocks):
            self.producer.produce_one()


@asynccontextmanager
async def rig_on(chain: FakeChain, server: FakeChainServer) -> AsyncIterator[Rig]:
    producer = BlockProducer(chain, POPULATION, txs_per_block=30, seed=11)
    producer.produce_one()  # tokens deployed, hot wallets funded, a first mix
    async with stacks_client(server) as client:
        clocks = Clocks()
        # Short probe intervals: the stand-in mines on command, not every 5 s.
        ingest = {"block_seconds": 0.1}
        cfg = config(map_tokens=[producer.map_token], layout="sharded", ingest=ingest)
        service = BalanceService(
            cfg, blobs=MemoryBlobStore(), chain=client, clock=clocks.mono, wall_clock=clocks.wall
        )
        try:
            ingestion = service.ingestion_for("pull")
            rig = Rig(chain, producer, service, ingestion)
            await service.tracked.track_many(Principal.parse(a) for a in rig.tracked)
            assert await ingestion.run_once() == 1  # a new store starts at the tip block
            await service.syncer.refresh_many(
                [Principal.parse(a) for a in rig.tracked], confirm=True
            )
            yield rig
        finally:
            await service.close()


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
