"""The change feed of a service ingesting the stand-in's blocks (pull, over loopback):
folding the feed gives the store; a reorg's retractions come in order and name the
changes they undo; the feed is durable and read back by another service."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from ingest_rig import Rig, rig_on

from balances.domain.feed import FeedEntry
from balances.service.balances import BalanceService
from balances.stores.feed import ChangeFeed
from balances.testing import FakeChain, FakeChainServer


@pytest.fixture
async def rig(fake_chain: FakeChain, fake_chain_server: FakeChainServer) -> AsyncIterator[Rig]:
    async with rig_on(fake_chain, fake_chain_server) as built:
        yield built


def feed_of(service: BalanceService) -> ChangeFeed:
    assert service.feed is not None
    return service.feed


async def entries(feed: ChangeFeed, after: int = 0) -> list[FeedEntry]:
    found: list[FeedEntry] = []
    while True:
        page = await feed.read_after(after, 200)
        found += page.entries
        if not page.stopped:
            return found
        after = page.end or after


def folded(found: list[FeedEntry]) -> dict[tuple[str, str], int | None]:
    """Each pair's amount after every entry, in order (what a consumer keeps)."""
    amounts: dict[tuple[str, str], int | None] = {}
    for entry in found:
        amounts[(entry.change.address, entry.change.token)] = entry.change.amount
    return amounts


async def stored(rig: Rig) -> dict[tuple[str, str], int]:
    from balances.domain import Principal

    loaded = await rig.service.current.load_many([Principal.parse(a) for a in rig.tracked])
    return {
        (address, key): state.amount
        for address, balances in loaded.items()
        if balances is not None
        for key, state in balances.tokens.items()
    }


async def test_folding_the_feed_gives_what_the_store_holds(rig: Rig) -> None:
    start = feed_of(rig.service).last_seq
    await rig.produce(5)
    await rig.ingestion.run_once()
    found = await entries(feed_of(rig.service), start)
    assert found, "five blocks among 40 tracked addresses moved something"
    assert [e.seq for e in found] == list(range(start + 1, start + 1 + len(found)))
    assert {e.change.source for e in found} == {"pull"}
    assert all(e.change.type == "change" and e.change.block_hash for e in found)
    assert all(
        e.change.delta == e.change.amount - e.change.previous
        for e in found
        if e.change.previous is not None
    )  # type: ignore[operator]
    held = await stored(rig)
    for pair, amount in folded(found).items():
        assert held[pair] == amount, pair
    with_tx = [e for e in found if e.change.kind != "map"]
    assert with_tx
    assert all(e.change.tx_ids for e in with_tx)
    assert await rig.differences() == []


async def test_a_depth_3_reorg_appends_retractions_in_order_then_the_new_fork(rig: Rig) -> None:
    await rig.produce(5)
    await rig.ingestion.run_once()
    feed = feed_of(rig.service)
    before = await entries(feed)
    by_seq = {e.seq: e for e in before}
    mark = feed.last_seq
    reorg = rig.chain.reorg(3, seed=3)
    orphaned = {block.hash.lower() for block in reorg.orphaned}
    await rig.produce(1)
    await rig.ingestion.run_once()
    after = await entries(feed, mark)
    retractions = [e for e in after if e.change.type == "retraction"]
    assert retractions, "the orphaned blocks moved tracked balances"
    # All retractions first (newest block first), then the new fork's changes.
    kinds = [e.change.type for e in after]
    assert kinds == sorted(kinds, key=lambda t: t != "retraction")
    heights = [e.change.block_height or 0 for e in retractions]
    assert heights == sorted(heights, reverse=True)
    for retraction in retractions:
        assert retraction.change.block_hash is not None
        assert retraction.change.block_hash.lower() in orphaned
        assert retraction.retracts is not None
        undone = by_seq[retraction.retracts]
        assert undone.change.block_hash == retraction.change.block_hash
        assert (undone.change.address, undone.change.token) == (
            retraction.change.address,
            retraction.change.token,
        )
        assert retraction.change.previous == undone.change.amount
        assert retraction.change.amount == undone.change.previous
    held = await stored(rig)
    for pair, amount in folded([*before, *after]).items():
        assert held.get(pair) == amount, pair
    assert await rig.differences() == []


async def test_the_feed_is_durable_and_another_service_reads_it(rig: Rig) -> None:
    await rig.produce(3)
    await rig.ingestion.run_once()
    await rig.ingestion.ingestor.flush()
    written = await entries(feed_of(rig.service))
    other = BalanceService(rig.service.config, blobs=rig.service.backend, chain=rig.service.chain)
    try:
        assert await entries(feed_of(other)) == written
        assert not feed_of(other).writing
    finally:
        await other.close()
