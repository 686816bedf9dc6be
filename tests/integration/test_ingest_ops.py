"""Running ingestion: drift found and repaired by the reconciler within its request
budget, its rotating sample, a newly tracked address anchored once then kept fresh
by blocks, an outage beyond the max lag, and what ``/health`` and ``/metrics`` say.

Everything runs over loopback HTTP against the stand-in (``ingest_rig``).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from ingest_rig import POPULATION, Rig, rig_on, serve_api
from prometheus_client.parser import text_string_to_metric_families

from balances.chain.routes import BALANCE_ROUTES, LATEST_BLOCK
from balances.domain import Principal
from balances.domain.current import AddressUpdate, Stamp, TokenKindName
from balances.ingest.feed import Apply
from balances.scheduler.scheduler import BalanceScheduler
from balances.scheduler.tasks import requests_per_address
from balances.testing import FakeChain, FakeChainServer, fake_address, serve_fake_chain

#: STX, the SIP-010 listing and the one map token: the refresh plan of an address.
PLAN = requests_per_address([], ["the producer's map token"], {})


@pytest.fixture
async def rig(fake_chain: FakeChain, fake_chain_server: FakeChainServer) -> AsyncIterator[Rig]:
    async with rig_on(fake_chain, fake_chain_server) as built:
        yield built


async def until(condition: object, rounds: int = 400) -> None:
    """Wait (bounded, not timed) until ``condition()`` holds."""
    assert callable(condition)
    for _ in range(rounds):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the condition never held")


async def until_stored(rig: Rig, address: str, rounds: int = 400) -> None:
    """Wait (bounded) until the store holds balances of ``address``."""
    for _ in range(rounds):
        if await rig.service.layout.load(Principal.parse(address)) is not None:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{address} was never stored")


def held(rig: Rig, token: str) -> str:
    """A tracked address holding some ``token`` (the producer spreads every token)."""
    return next(a for a in rig.tracked if rig.chain.balance(token, a) > 0)


async def write_wrong(rig: Rig, address: str, token: str, kind: TokenKindName) -> None:
    """Store a wrong amount for (address, token) as if read at the cursor's height: what
    a bug, or a move blocks do not show, leaves behind."""
    wrong = rig.chain.balance(token, address) + 12_345
    rig.clocks.advance(wall=1)  # later than what ingestion stored, so it is kept
    update = AddressUpdate(
        address, Stamp(rig.clocks.wall(), rig.cursor_height()), {token: (wrong, kind)}
    )
    await rig.service.layout.apply(update)
    rig.service.cache.invalidate(address)


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


# --- drift -------------------------------------------------------------------------------


async def test_drift_is_found_repaired_counted_by_kind_and_a_second_run_finds_none(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer
) -> None:
    every = {"reconcile_addresses": 100}  # more than tracked: one run checks them all
    async with rig_on(fake_chain, fake_chain_server, ingest=every) as rig:
        await rig.produce(3)
        await rig.ingestion.run_once()
        assert await rig.differences() == []
        victims: list[tuple[str, str, TokenKindName]] = [
            (held(rig, "stx"), "stx", "stx"),
            (held(rig, rig.producer.tokens[0]), rig.producer.tokens[0], "native"),
            (held(rig, rig.producer.map_token), rig.producer.map_token, "map"),
        ]
        for address, token, kind in victims:
            await write_wrong(rig, address, token, kind)
        assert len(await rig.differences()) == 3
        rig.clocks.advance(wall=10)  # the reconciler's reads come after the wrong writes

        report = await rig.ingestion.reconciler.run_once()

        assert (report.checked, report.drift) == (len(rig.tracked), 3)
        assert await rig.differences() == []
        stats = rig.ingestion.status().stats
        assert dict(stats.drift_found) == {"stx": 1, "native": 1, "map": 1}
        assert dict(stats.drift_repaired) == {"stx": 1, "native": 1, "map": 1}
        async with serve_api(rig.service) as api:
            samples = metric_samples((await api.get("/metrics")).text)
        for kind in ("stx", "native", "map"):
            assert samples[("balances_ingest_drift_found_total", (("kind", kind),))] == 1
            assert samples[("balances_ingest_drift_repaired_total", (("kind", kind),))] == 1

        puts = rig.service.blobs.snapshot().operations.get("put", 0)
        rig.clocks.advance(wall=10)
        again = await rig.ingestion.reconciler.run_once()
        assert again.checked == len(rig.tracked)
        assert again.compared > 0
        assert again.drift == 0
        assert rig.service.blobs.snapshot().operations.get("put", 0) == puts  # nothing written
        assert dict(rig.ingestion.status().stats.drift_found) == {"stx": 1, "native": 1, "map": 1}


async def test_running_ingestion_reconciles_on_its_own_schedule(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer
) -> None:
    often = {"reconcile_addresses": 100, "reconcile_seconds": 0.05, "batch_blocks": 1}
    async with rig_on(fake_chain, fake_chain_server, ingest=often) as rig:
        address = held(rig, rig.producer.tokens[1])
        await write_wrong(rig, address, rig.producer.tokens[1], "native")
        assert len(await rig.differences()) == 1
        rig.clocks.advance(wall=10)
        await rig.ingestion.start()
        try:
            for _ in range(200):  # until a scheduled check ran (bounded, not timed)
                if rig.ingestion.status().stats.reconciled:
                    break
                await asyncio.sleep(0.02)
        finally:
            await rig.ingestion.stop()
        assert dict(rig.ingestion.status().stats.drift_repaired) == {"native": 1}
        assert await rig.differences() == []


async def test_a_token_a_block_credited_unseen_is_drift_counted_and_repaired(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer
) -> None:
    """A block whose events ingestion did not see (a miner reward, events the API
    misdescribes): the address gets a token the store never held for it."""
    every = {"reconcile_addresses": 100}
    async with rig_on(fake_chain, fake_chain_server, ingest=every) as rig:
        surprise = f"{fake_address('ingest-ops-surprise')}.surprise-token"
        rig.chain.add_native_token(surprise, "surprise", symbol="SRP")
        receiver = rig.tracked[1]
        with rig.chain.block():
            rig.chain.mint(surprise, receiver, 4_321)
        assert rig.ingestion.fetcher is not None
        block = await rig.ingestion.fetcher.block(rig.chain.tip_height)
        assert block is not None
        await rig.ingestion.ingestor.handle(Apply(replace(block, txs=())))  # seen without events
        assert rig.cursor_height() == rig.chain.tip_height
        rig.clocks.advance(wall=10)

        report = await rig.ingestion.reconciler.run_once()

        stored = await rig.service.layout.load(Principal.parse(receiver))
        assert stored is not None
        assert stored.tokens[surprise].amount == 4_321
        assert report.drift == 1
        assert dict(rig.ingestion.status().stats.drift_found) == {"native": 1}


async def test_the_rotating_sample_visits_every_address_and_keeps_to_its_budget(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer
) -> None:
    per_run = 7
    async with rig_on(
        fake_chain, fake_chain_server, ingest={"reconcile_addresses": per_run}
    ) as rig:
        await rig.produce(2)
        await rig.ingestion.run_once()
        visited: set[str] = set()
        runs = math.ceil(len(rig.tracked) / per_run)
        for _ in range(runs):
            rig.chain.reset_requests()
            rig.requests.clear()
            report = await rig.ingestion.reconciler.run_once()
            assert report.checked == per_run
            # The plan per address, and the tip read before and after (exact heights).
            spent = dict(rig.chain.requests)
            tips = spent.pop(LATEST_BLOCK, 0)
            assert set(spent) <= BALANCE_ROUTES, rig.chain.requests
            assert tips <= 2
            assert sum(spent.values()) <= per_run * PLAN, rig.chain.requests
            read = set(rig.requests.reads_of(rig.tracked))
            assert len(read) == per_run
            visited |= read
        assert visited == set(rig.tracked)


# --- newly tracked ---------------------------------------------------------------------------


async def test_a_newly_tracked_address_is_read_once_then_blocks_keep_it_fresh(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer
) -> None:
    newcomer = POPULATION[0]
    one = {"batch_blocks": 1}  # each block applied once seen: no wait for a second
    async with rig_on(fake_chain, fake_chain_server, ingest=one, hold_back=[newcomer]) as rig:
        await rig.ingestion.start()
        try:
            rig.requests.clear()
            await rig.service.track(newcomer)
            rig.tracked.append(newcomer)
            await until(lambda: rig.requests.by_address[newcomer] >= PLAN)
            # A block folded before the anchor is stored finds the newcomer unknown and
            # rightly reads it at the block: the blocks come after the anchor is stored.
            await until_stored(rig, newcomer)
            anchor = rig.requests.by_address[newcomer]
            assert anchor == PLAN  # its anchor: the refresh plan, once

            map_touches = stx_or_ft_touches = 0
            for _ in range(8):
                produced = rig.producer.produce_one()
                mine = {token for address, token in produced.pairs if address == newcomer}
                map_touches += rig.producer.map_token in mine
                stx_or_ft_touches += len(mine - {rig.producer.map_token})
                await until(lambda: rig.cursor_height() == rig.chain.tip_height)
        finally:
            await rig.ingestion.stop()
        assert stx_or_ft_touches > 0, "the blocks must move the newcomer's STX or tokens"
        # Deltas keep STX and SIP-010 fresh without a read; a map token is read per touch.
        assert rig.requests.by_address[newcomer] - anchor == map_touches, rig.requests.log[newcomer]
        assert await rig.differences() == []


# --- untouched addresses ------------------------------------------------------------------------


async def ingest_blocks(chain: FakeChain, quiet: list[str]) -> tuple[dict[str, int], Rig]:
    """Ingest 6 produced blocks with ``quiet`` also tracked: the blob operations and
    bytes the ingestion wrote, and the rig (its requests counted by address)."""
    async with serve_fake_chain(chain) as server, rig_on(chain, server, extra=quiet) as rig:
        before = await rig.service.current.load_many([Principal.parse(a) for a in quiet])
        meter = rig.service.blobs.snapshot()
        rig.requests.clear()
        await rig.produce(6)
        assert await rig.ingestion.run_once() == 6
        after = rig.service.blobs.snapshot()
        assert await rig.service.current.load_many([Principal.parse(a) for a in quiet]) == before
        assert await rig.differences() == []
        spent = {op: n - meter.operations.get(op, 0) for op, n in after.operations.items()}
        return {**spent, "uploaded": after.bytes_uploaded - meter.bytes_uploaded}, rig


async def test_a_tracked_address_no_block_touches_costs_no_request_and_no_write() -> None:
    quiet = [fake_address(f"ingest-quiet-{i}") for i in range(300)]
    alone, _ = await ingest_blocks(FakeChain(), [])
    with_quiet, rig = await ingest_blocks(FakeChain(), quiet)
    assert rig.requests.reads_of(quiet) == {}
    assert rig.requests.reads_of(POPULATION), "the blocks did read tracked addresses"
    # The same blocks cost the same writes, however many are tracked. The bytes may
    # differ by a few digits: stamps build on anchor reads, each a float ulp later.
    uploaded, uploaded_alone = with_quiet.pop("uploaded"), alone.pop("uploaded")
    assert with_quiet == alone
    assert abs(uploaded - uploaded_alone) <= uploaded_alone // 100
    assert with_quiet.get("put", 0) > 0


# --- beyond the max lag -----------------------------------------------------------------------


async def test_an_outage_beyond_max_lag_resumes_at_the_tip_and_polling_re_anchors(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer
) -> None:
    async with rig_on(fake_chain, fake_chain_server, ingest={"max_lag_blocks": 3}) as rig:
        await rig.produce(6)  # ingestion was away for more than 3 blocks
        rig.chain.reset_requests()
        assert await rig.ingestion.run_once() == 0
        status = rig.ingestion.status()
        assert status.stats.fallbacks == 1
        assert status.cursor is not None
        assert (status.cursor.height, status.cursor.anchored_from) == (rig.chain.tip_height,) * 2
        assert "GET /extended/v3/blocks/{height_or_hash}/transactions" not in {
            route for route, n in rig.chain.requests.items() if n > 1
        }, "the skipped blocks are not fetched one by one"
        principals = [Principal.parse(a) for a in rig.tracked]
        assert len(await rig.ingestion.uncovered(principals)) == len(rig.tracked)

        scheduler = BalanceScheduler(rig.service, clock=rig.clocks.wall)
        runs = {run.task: run for run in await scheduler.run_once()}
        sync = runs["sync"].result
        assert (sync["mode"], sync["planned"], sync["failed"]) == ("anchor", len(rig.tracked), 0)
        assert await rig.ingestion.uncovered(principals) == []
        assert await rig.differences() == []

        await rig.produce(3)
        assert await rig.ingestion.run_once() == 3
        assert await rig.differences() == []


# --- interfaces --------------------------------------------------------------------------------


async def test_health_and_metrics_show_the_cursor_lag_blocks_and_reorgs(rig: Rig) -> None:
    await rig.produce(4)
    await rig.ingestion.run_once()
    rig.chain.reorg(2, seed=5)
    await rig.ingestion.run_once()
    status = rig.ingestion.status()
    assert status.stats.reorgs == 1
    async with serve_api(rig.service) as api:
        health = (await api.get("/health")).json()
        samples = metric_samples((await api.get("/metrics")).text)
    shown = health["ingestion"]
    assert shown["cursor"]["height"] == rig.chain.tip_height
    assert shown["cursor"]["block_hash"] == rig.chain.tip.hash
    assert shown["lag_blocks"] == 0
    assert shown["lag_seconds"] == 0
    assert shown["blocks_applied"] == status.stats.blocks_applied
    assert samples[("balances_ingest_lag_blocks", ())] == 0
    assert samples[("balances_ingest_lag_seconds", ())] == 0
    assert samples[("balances_ingest_blocks_applied_total", ())] == status.stats.blocks_applied
    assert status.stats.blocks_applied >= 1 + 4 + 3
    assert samples[("balances_ingest_reorgs_total", ())] == 1
    for kind in ("stx", "native", "map"):
        assert ("balances_ingest_drift_found_total", (("kind", kind),)) in samples


async def test_health_and_metrics_show_the_lag_while_ingestion_catches_up(rig: Rig) -> None:
    await rig.produce(20)  # mined while ingestion was stopped
    rig.chain.faults.latency = 0.03  # a slow API: catching up takes a while
    await rig.ingestion.start()
    try:
        async with serve_api(rig.service) as api:
            await until(lambda: rig.ingestion.status().lag_blocks is not None)
            health = (await api.get("/health")).json()["ingestion"]
            samples = metric_samples((await api.get("/metrics")).text)
    finally:
        await rig.ingestion.stop()
    cursor = health["cursor"]
    assert health["lag_blocks"] == rig.chain.tip_height - cursor["height"] > 0
    assert health["lag_seconds"] == rig.chain.tip_time - cursor["block_time"] > 0
    assert 0 < samples[("balances_ingest_lag_blocks", ())] <= 20
    assert samples[("balances_ingest_lag_seconds", ())] > 0
