"""BalanceService freshness and sync against the Stacks API stand-in over loopback HTTP.

Where answers come from (cache, store, chain) as injected clocks move; what a
failing chain does to known and unknown balances; sync_on_demand and shared
refreshes; replicas sharing one blob store; the tracked set.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from conftest_client import stacks_client
from service_helpers import (
    DEPLOYER,
    FT_V3,
    HOLDER,
    MAP_TOKEN,
    NATIVE,
    OTHER,
    SPENT,
    STX_V3,
    GatedPuts,
    Kit,
    SharedServer,
    open_kit,
    shared_server,
)

from balances.blobs import BlobStore, LocalBlobStore, MemoryBlobStore
from balances.chain.retry import RetryPolicy
from balances.errors import (
    BalanceNotFoundError,
    ChainError,
    ChainUnavailableError,
    RateLimitedError,
)
from balances.testing import FakeChain, FakeChainServer, fake_address

NOBODY = fake_address("never held anything")
OTHER_MAP = f"{DEPLOYER}.other-subnet-v1"
#: A 429 with retry-after above this fails at once (no test waits for it).
IMPATIENT = RetryPolicy(attempts=3, base_delay=0.0, max_delay=0.0, max_retry_after=5)

#: One uvicorn for the module (see ``shared_server``); each test gets its own chain.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[SharedServer]:
    async with shared_server() as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def fake_chain_server(fake_chain: FakeChain, server: SharedServer) -> FakeChainServer:
    """``fake_chain`` on loopback HTTP, as conftest.py serves it."""
    return server.plug(fake_chain)


@pytest_asyncio.fixture(loop_scope="module")
async def kit(fake_chain: FakeChain, fake_chain_server: FakeChainServer) -> AsyncIterator[Kit]:
    async with open_kit(fake_chain, fake_chain_server) as built:
        yield built


def _at(kit: Kit) -> datetime:
    return datetime.fromtimestamp(kit.clocks.wall.now, UTC)


async def _current_blobs(store: BlobStore) -> list[str]:
    return (await store.list("current/")).keys


# --- where answers come from ---------------------------------------------------


async def test_answers_come_from_chain_then_cache_then_store_then_chain(kit: Kit) -> None:
    svc = kit.service(cache_timeouts={"current": 60}, stale_after=300)
    first = await svc.get_balance(HOLDER, NATIVE)
    assert (first.source, first.amount, first.stale) == ("chain", 750, False)
    assert first.updated_at == _at(kit)
    assert kit.chain.requests[STX_V3] == kit.chain.requests[FT_V3] == 1

    kit.reset()
    kit.clocks.advance(mono=30, wall=30)
    cached = await svc.get_balance(HOLDER, NATIVE)
    assert (cached.source, cached.amount, cached.stale) == ("cache", 750, False)
    assert cached.updated_at == first.updated_at
    assert kit.chain.requests == {}

    kit.clocks.advance(mono=31, wall=70)  # the cache let go (61 s > 60); 100 s < stale_after
    stored = await svc.get_balance(HOLDER, NATIVE)
    assert (stored.source, stored.amount, stored.stale) == ("store", 750, False)
    assert (stored.updated_at, stored.block_height) == (first.updated_at, first.block_height)
    assert kit.balance_requests() == {}

    kit.chain.transfer(NATIVE, HOLDER, OTHER, 100)
    kit.clocks.advance(mono=61, wall=250)  # 350 s since the read: stale
    fresh = await svc.get_balance(HOLDER, NATIVE)
    assert fresh.source == "chain"
    assert fresh.amount == kit.chain.balance(NATIVE, HOLDER) == 650
    assert (fresh.updated_at, fresh.block_height) == (_at(kit), kit.chain.tip_height)
    assert fresh.stale is False
    assert kit.balance_reads() == {STX_V3: 1, FT_V3: 1}


async def test_a_stale_cached_answer_is_not_served_as_fresh(kit: Kit) -> None:
    """The cache TTL is longer than the staleness limit: staleness still wins."""
    svc = kit.service(cache_timeouts={"current": 3600}, stale_after=60)
    await svc.get_balance(HOLDER, "stx")
    kit.chain.transfer("stx", HOLDER, OTHER, 1_000)
    kit.clocks.advance(mono=61, wall=61)
    again = await svc.get_balance(HOLDER, "stx")
    assert (again.source, again.amount) == ("chain", kit.chain.balance("stx", HOLDER))


async def test_another_replica_reads_what_one_stored(kit: Kit) -> None:
    await kit.service().get_balances(HOLDER)
    kit.reset()
    kit.clocks.advance(mono=1, wall=10)
    replica = kit.service()
    balance = await replica.get_balance(HOLDER, NATIVE)
    assert (balance.source, balance.amount) == ("store", 750)
    assert kit.balance_requests() == {}


async def test_sync_on_read_missing_serves_stale_stored_balances(kit: Kit) -> None:
    await kit.service().get_balances(HOLDER)
    kit.chain.transfer("stx", HOLDER, OTHER, 1)
    kit.clocks.advance(mono=1_000, wall=10_000)
    kit.reset()
    svc = kit.service(sync_on_read="missing")
    old = await svc.get_balance(HOLDER, "stx")
    assert (old.source, old.stale, old.error) == ("store", True, None)
    assert old.amount == kit.chain.balance("stx", HOLDER) + 1
    assert kit.balance_requests() == {}
    # A token never read is missing: that one goes to the chain.
    assert (await svc.get_balance(HOLDER, MAP_TOKEN)).source == "chain"
    assert kit.call_reads.balance_reads(MAP_TOKEN) == 1


# --- unknown is not zero ---------------------------------------------------------


async def test_sync_on_read_never_with_nothing_stored_is_not_found(kit: Kit) -> None:
    svc = kit.service(sync_on_read="never")
    with pytest.raises(BalanceNotFoundError, match="refresh"):
        await svc.get_balance(HOLDER, "stx")
    with pytest.raises(BalanceNotFoundError):
        await svc.get_balances(HOLDER)
    assert kit.balance_requests() == {}
    refreshed = await svc.refresh_address_balances(HOLDER)
    assert {b.token_id: b.amount for b in refreshed}["stx"] == kit.chain.balance("stx", HOLDER)
    balance = await svc.get_balance(HOLDER, "stx")
    assert balance.amount == kit.chain.balance("stx", HOLDER)
    assert balance.source in ("cache", "store")
    reread = await kit.service(sync_on_read="never").get_balance(HOLDER, NATIVE)
    assert (reread.source, reread.amount) == ("store", 750)


@pytest.mark.parametrize("token", ["stx", NATIVE, MAP_TOKEN])
async def test_a_failing_chain_with_nothing_known_raises_never_zero(kit: Kit, token: str) -> None:
    svc = kit.service(map_tokens=[MAP_TOKEN])
    if token != "stx":
        await svc.get_token(token)  # the kind is known: the balance read itself fails
    kit.chain.faults.error_rate = 1.0
    with pytest.raises(ChainUnavailableError):
        await svc.get_balance(HOLDER, token)
    with pytest.raises(ChainError):
        await svc.get_balances(HOLDER, [token])


async def test_a_failed_first_refresh_stores_nothing(kit: Kit) -> None:
    svc = kit.service()
    kit.chain.faults.error_rate = 1.0
    with pytest.raises(ChainError):
        await svc.get_balance(HOLDER, "stx")
    assert await _current_blobs(kit.store) == []


async def test_a_rate_limited_chain_with_nothing_known_raises_rate_limited(
    kit: Kit, fake_chain_server: FakeChainServer
) -> None:
    kit.chain.faults.rate_limit_per_minute = 0  # every request: 429, retry-after 60
    async with stacks_client(fake_chain_server, retry=IMPATIENT) as client:
        svc = kit.service(client=client)
        with pytest.raises(RateLimitedError) as caught:
            await svc.get_balance(HOLDER, "stx")
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 0


# --- stale on error --------------------------------------------------------------


@pytest.mark.parametrize("token", ["stx", NATIVE, MAP_TOKEN])
async def test_a_failed_refresh_serves_the_old_amount_marked_stale(kit: Kit, token: str) -> None:
    svc = kit.service(map_tokens=[MAP_TOKEN])
    before = await svc.get_balance(HOLDER, token)
    kit.chain.mint(token, HOLDER, 5)  # what a working chain would now answer
    kit.chain.faults.error_rate = 1.0
    kit.clocks.advance(mono=10_000, wall=10_000)
    after = await svc.get_balance(HOLDER, token)
    assert after.amount == before.amount != kit.chain.balance(token, HOLDER)
    assert after.stale is True
    assert after.error
    assert after.updated_at == before.updated_at
    kit.chain.faults.error_rate = 0.0
    replica = kit.service(sync_on_read="never", map_tokens=[MAP_TOKEN])
    stored = await replica.get_balance(HOLDER, token)
    assert (stored.amount, stored.source) == (before.amount, "store")


async def test_a_failed_refresh_is_not_labelled_as_read_from_the_chain(kit: Kit) -> None:
    """``source="chain"`` means "the chain just now"; the old amount came from the
    store (or cache) because the chain failed."""
    svc = kit.service()
    await svc.get_balance(HOLDER, "stx")
    kit.chain.faults.error_rate = 1.0
    kit.clocks.advance(mono=10_000, wall=10_000)
    after = await svc.get_balance(HOLDER, "stx")
    assert after.stale is True
    assert after.source != "chain"


async def test_after_a_failure_the_chain_is_retried_later_and_recovery_clears_the_error(
    kit: Kit,
) -> None:
    svc = kit.service()
    await svc.get_balance(HOLDER, "stx")
    kit.chain.faults.error_rate = 1.0
    kit.clocks.advance(mono=10_000, wall=10_000)
    failed = await svc.get_balance(HOLDER, "stx")
    assert failed.stale
    assert failed.error
    kit.reset()
    kit.clocks.advance(mono=1, wall=1)
    again = await svc.get_balance(HOLDER, "stx")
    assert (again.stale, again.amount) == (True, failed.amount)
    assert kit.balance_requests() == {}, "a recent failure is served without hammering"
    kit.chain.faults.error_rate = 0.0
    kit.chain.transfer("stx", HOLDER, OTHER, 10)
    kit.clocks.advance(mono=60, wall=60)
    recovered = await svc.get_balance(HOLDER, "stx")
    assert (recovered.stale, recovered.error) == (False, None)
    assert recovered.amount == kit.chain.balance("stx", HOLDER)


async def test_a_failed_listing_keeps_native_tokens_and_does_not_zero_them(kit: Kit) -> None:
    svc = kit.service()
    await svc.get_balances(HOLDER)
    kit.chain.transfer(SPENT, HOLDER, OTHER, 10)
    kit.clocks.advance(mono=10_000, wall=10_000)
    kit.chain.faults.v3_missing = True
    kit.chain.faults.deprecated = "gone"  # no FT listing left anywhere; STX too
    balances = {b.token_id: b for b in await svc.get_balances(HOLDER, [NATIVE, SPENT])}
    assert balances[SPENT].amount == 10
    assert balances[NATIVE].amount == 750
    assert all(b.stale and b.error for b in balances.values())


async def test_a_429_storm_is_rate_limited_or_stale_never_zero(
    kit: Kit, fake_chain_server: FakeChainServer
) -> None:
    async with stacks_client(fake_chain_server, retry=IMPATIENT) as client:
        svc = kit.service(client=client)
        before = await svc.get_balances(HOLDER, ["stx", NATIVE])
        kit.chain.faults.rate_limit_per_minute = 0
        kit.clocks.advance(mono=10_000, wall=10_000)
        after = await svc.get_balances(HOLDER, ["stx", NATIVE])
        assert [b.amount for b in after] == [b.amount for b in before]
        assert all(b.stale for b in after)
        assert all(b.error is not None and "rate limited" in b.error for b in after)
        with pytest.raises(RateLimitedError):
            await svc.get_balance(OTHER, "stx")


# --- sync_on_demand and shared refreshes ---------------------------------------------


async def test_sync_on_demand_refreshes_only_what_is_stale(kit: Kit) -> None:
    svc = kit.service()
    await svc.get_balances(HOLDER)
    kit.reset()
    report = await svc.sync_on_demand(HOLDER)
    assert (report.address, report.refreshed) == (HOLDER, False)
    assert {b.token_id: b.amount for b in report.balances}[NATIVE] == 750
    assert kit.balance_requests() == {}

    kit.chain.transfer("stx", HOLDER, OTHER, 7)
    kit.clocks.advance(mono=1, wall=1)
    forced = await svc.sync_on_demand(HOLDER, max_age=0)
    assert forced.refreshed is True
    stx = {b.token_id: b for b in forced.balances}["stx"]
    assert (stx.amount, stx.source) == (kit.chain.balance("stx", HOLDER), "chain")
    assert kit.balance_reads() == {STX_V3: 1, FT_V3: 1}

    kit.reset()
    kit.clocks.advance(mono=10, wall=10)
    one = await svc.sync_on_demand(HOLDER, "stx", max_age=3600)
    assert one.refreshed is False
    assert [b.token_id for b in one.balances] == ["stx"]
    assert kit.balance_requests() == {}

    kit.clocks.advance(mono=400, wall=400)  # past stale_after (300 s)
    stale = await svc.sync_on_demand(HOLDER)
    assert stale.refreshed is True
    assert as_dict_ok(stale.as_dict())


def as_dict_ok(data: dict[str, object]) -> bool:
    balances = data["balances"]
    return (
        data["refreshed"] is True
        and isinstance(balances, list)
        and all(isinstance(b["balance"], str) for b in balances)
    )


async def test_sync_on_demand_with_nothing_stored_reads_the_chain(kit: Kit) -> None:
    report = await kit.service().sync_on_demand(OTHER, NATIVE)
    assert report.refreshed is True
    assert [b.amount for b in report.balances] == [250]


@pytest.mark.parametrize("backend", ["memory", "local"])
async def test_concurrent_reads_of_one_address_share_one_refresh(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer, tmp_path: Path, backend: str
) -> None:
    store: BlobStore = MemoryBlobStore() if backend == "memory" else LocalBlobStore(tmp_path)
    async with open_kit(fake_chain, fake_chain_server, store=store) as kit:
        svc = kit.service()
        for token in (NATIVE, SPENT):
            await svc.get_token(token)  # metadata known: only balance reads remain
        kit.reset()
        calls = [
            *(svc.sync_on_demand(HOLDER) for _ in range(4)),
            *(svc.get_balance(HOLDER, "stx") for _ in range(3)),
            *(svc.get_balance(HOLDER, NATIVE) for _ in range(2)),
            svc.get_balances(HOLDER),
        ]
        results = await asyncio.gather(*calls)
        assert kit.balance_reads() == {STX_V3: 1, FT_V3: 1}
        stx = kit.chain.balance("stx", HOLDER)
        assert all(r.amount == stx for r in results[4:7])  # type: ignore[union-attr]
        assert all(r.amount == 750 for r in results[7:9])  # type: ignore[union-attr]


async def test_concurrent_sync_on_demand_calls_share_one_refresh(kit: Kit) -> None:
    svc = kit.service()
    await svc.get_token(NATIVE)
    await svc.get_token(SPENT)
    kit.reset()
    reports = await asyncio.gather(*(svc.sync_on_demand(HOLDER) for _ in range(10)))
    assert sum(report.refreshed for report in reports) >= 1
    assert kit.balance_reads() == {STX_V3: 1, FT_V3: 1}


# --- replicas sharing one store ----------------------------------------------------------


#: Where each layout writes a refresh: conflicting per-address blobs (spec), or
#: uniquely named journal segments that cannot conflict (sharded).
RACE_PREFIX = {"spec": "spec/current/", "sharded": "v1/journal/"}


@pytest.mark.parametrize("layout", ["spec", "sharded"])
@pytest.mark.parametrize("stored_before", [False, True], ids=["create-race", "update-race"])
async def test_racing_replicas_lose_nothing(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer, stored_before: bool, layout: str
) -> None:
    store = GatedPuts(RACE_PREFIX[layout])
    async with open_kit(fake_chain, fake_chain_server, store=store) as kit:
        chain = kit.chain
        if stored_before:
            await kit.service(layout=layout).refresh_address_balances(HOLDER)
            chain.transfer(NATIVE, HOLDER, OTHER, 50)
            kit.clocks.advance(mono=1, wall=1)
        a = kit.service(map_tokens=[MAP_TOKEN], layout=layout)  # reads the map token too
        b = kit.service(layout=layout)  # does not know the map token
        await b.get_token(NATIVE)
        store.arm(2)
        first = asyncio.create_task(a.refresh_address_balances(HOLDER))
        await asyncio.wait_for(store.first_put.wait(), timeout=10)
        a_time = _at(kit)
        chain.transfer(NATIVE, HOLDER, OTHER, 100)
        chain.transfer("stx", HOLDER, OTHER, 1_000)
        chain.deposit(MAP_TOKEN, HOLDER, 23)  # b does not read it: a's read stands
        kit.clocks.advance(mono=1, wall=5)
        await asyncio.gather(first, b.refresh_address_balances(HOLDER))
        if layout == "spec":
            assert store.conflicts >= 1, "the writes did race"
        else:  # both segments were written: uniquely named, they cannot conflict
            assert len([k async for k in store.iter_keys("v1/journal/")]) >= 2

        third = kit.service(sync_on_read="never", map_tokens=[MAP_TOKEN], layout=layout)
        got = {b.token_id: b for b in await third.get_balances(HOLDER)}
        assert got["stx"].amount == chain.balance("stx", HOLDER)
        assert got[NATIVE].amount == chain.balance(NATIVE, HOLDER) == 650 - 50 * stored_before
        assert got[SPENT].amount == 10
        assert got[MAP_TOKEN].amount == 77  # a's read, not lost
        assert got[MAP_TOKEN].updated_at == a_time
        assert got["stx"].updated_at == got[NATIVE].updated_at == _at(kit)


async def test_replicas_interleaving_keep_the_newest_amounts(kit: Kit) -> None:
    a = kit.service(map_tokens=[MAP_TOKEN])
    b = kit.service()
    await a.refresh_address_balances(HOLDER)
    kit.chain.transfer(NATIVE, HOLDER, OTHER, 1)
    kit.clocks.advance(mono=1, wall=1)
    await b.refresh_address_balances(HOLDER)
    kit.chain.withdraw(MAP_TOKEN, HOLDER, 7)
    kit.clocks.advance(mono=1, wall=1)
    await a.refresh_balance(HOLDER, MAP_TOKEN)
    got = {
        x.token_id: x.amount
        for x in await kit.service(sync_on_read="never", map_tokens=[MAP_TOKEN]).get_balances(
            HOLDER
        )
    }
    assert got == {
        "stx": kit.chain.balance("stx", HOLDER),
        NATIVE: 749,
        SPENT: 10,
        MAP_TOKEN: 70,
    }


@pytest.mark.parametrize("same_address", [False, True])
async def test_concurrent_track_from_two_replicas_keeps_both(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer, same_address: bool
) -> None:
    store = GatedPuts("tracked")
    async with open_kit(fake_chain, fake_chain_server, store=store) as kit:
        a, b = kit.service(), kit.service()
        assert await a.tracked_addresses() == await b.tracked_addresses() == []
        store.arm(2)
        second = HOLDER if same_address else OTHER
        await asyncio.gather(a.track(HOLDER, [MAP_TOKEN]), b.track(second, [OTHER_MAP]))
        assert store.conflicts == 1
        entries = {e.address: set(e.tokens) for e in await kit.service().tracked_addresses()}
        if same_address:
            assert entries == {HOLDER: {MAP_TOKEN, OTHER_MAP}}
        else:
            assert entries == {HOLDER: {MAP_TOKEN}, OTHER: {OTHER_MAP}}


# --- the tracked set -------------------------------------------------------------------


async def test_tracking_persists_across_instances(kit: Kit) -> None:
    svc = kit.service(track_on_read=False)
    entry = await svc.track(HOLDER, [MAP_TOKEN, "stx"])
    assert (entry.address, entry.tokens, entry.since) == (HOLDER, (MAP_TOKEN,), kit.clocks.wall.now)
    since = entry.since
    await svc.track(OTHER)
    kit.clocks.advance(wall=5)
    assert (await svc.track(HOLDER, [MAP_TOKEN])).since == since

    second = kit.service()
    listed = [(e.address, e.tokens) for e in await second.tracked_addresses()]
    assert listed == [(HOLDER, (MAP_TOKEN,)), (OTHER, ())]
    assert await second.untrack(HOLDER, [MAP_TOKEN]) is True
    assert await second.untrack(HOLDER, [MAP_TOKEN]) is False
    assert await second.untrack(OTHER) is True
    assert await second.untrack(OTHER) is False
    assert await second.untrack(NOBODY) is False

    third = kit.service()
    assert [(e.address, e.tokens) for e in await third.tracked_addresses()] == [(HOLDER, ())]
    assert kit.chain.requests == {}


async def test_track_on_read_tracks_an_address_on_its_first_read(kit: Kit) -> None:
    await kit.service(track_on_read=False).get_balance(NOBODY, "stx")
    await kit.service().get_balance(OTHER, "stx")
    assert [e.address for e in await kit.service().tracked_addresses()] == [OTHER]


async def test_a_map_token_asked_for_is_tracked_and_read_by_later_refreshes(kit: Kit) -> None:
    svc = kit.service()  # no configured map tokens
    assert (await svc.get_balance(HOLDER, MAP_TOKEN)).amount == 77
    tracked = {e.address: e.tokens for e in await kit.service().tracked_addresses()}
    assert tracked == {HOLDER: (MAP_TOKEN,)}

    kit.chain.deposit(MAP_TOKEN, HOLDER, 23)
    reads = kit.call_reads.balance_reads(MAP_TOKEN)
    kit.clocks.advance(mono=1, wall=1)
    refreshed = {b.token_id: b.amount for b in await svc.refresh_address_balances(HOLDER)}
    assert refreshed[MAP_TOKEN] == 100 == kit.chain.balance(MAP_TOKEN, HOLDER)
    assert kit.call_reads.balance_reads(MAP_TOKEN) == reads + 1

    # A replica that never asked for it reads it too: the tracked set is shared.
    kit.chain.withdraw(MAP_TOKEN, HOLDER, 50)
    kit.clocks.advance(mono=1, wall=1)
    replica = kit.service()
    again = {b.token_id: b.amount for b in await replica.refresh_address_balances(HOLDER)}
    assert again[MAP_TOKEN] == 50
    assert kit.call_reads.balance_reads(MAP_TOKEN) == reads + 2


async def test_a_whole_address_read_includes_its_tracked_map_tokens(kit: Kit) -> None:
    await kit.service().track(HOLDER, [MAP_TOKEN])
    balances = {b.token_id: b.amount for b in await kit.service().get_all_balances(HOLDER)}
    assert balances[MAP_TOKEN] == 77
    assert kit.call_reads.balance_reads(MAP_TOKEN) == 1
