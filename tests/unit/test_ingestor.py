"""The ingestor against a model chain: deltas without reads for anchored pairs, reads
as of the block otherwise, drift, idempotent replays, reorgs of depth 1, 3 and 10
(announced by Chainhook, or only by a parent hash), gaps, a restart from the
written cursor, and a tracked address no block touches costing nothing."""

from __future__ import annotations

import pytest
from ingest_model import Fetcher, ModelChain

from balances.blobs import MemoryBlobStore
from balances.chain.events import AssetMove
from balances.domain import Principal
from balances.domain.current import AddressUpdate, Stamp
from balances.errors import IngestError
from balances.ingest.feed import Apply, Rollback, TipSeen
from balances.ingest.ingestor import Ingestor
from balances.ingest.settings import IngestSettings
from balances.ingest.tracked_index import TrackedIndex
from balances.stores.sharded.parts import LsmSettings
from balances.stores.sharded.store import ShardedStore
from balances.stores.tokens.directory import TokenDirectory
from balances.stores.tokens.registry import TokenRegistry
from balances.stores.tracked import TrackedSet
from balances.sync.catalog import TokenCatalog
from balances.testing import fake_address

ALICE, BOB, CAROL, DAVE = (fake_address(f"ingestor-{n}") for n in ("alice", "bob", "carol", "dave"))
OUTSIDER = fake_address("ingestor-outsider")
TOKEN = f"{fake_address('ingestor-deployer')}.coin"
ASSET = f"{TOKEN}::coin"
MAP = f"{fake_address('ingestor-deployer')}.credits-subnet-v1"
TRACKED = (ALICE, BOB, CAROL, DAVE)


class Rig:
    def __init__(self, *, fetcher: bool = True, maps: tuple[str, ...] = ()) -> None:
        self.blobs = MemoryBlobStore()
        self.chain = ModelChain(genesis={(a, "stx"): 1_000_000 for a in TRACKED})
        self.changed: list[str] = []
        self.fetcher = Fetcher(self.chain) if fetcher else None
        self.maps = maps
        self.store = self.new_store()
        self.tracked = TrackedSet(self.blobs)

    def new_store(self) -> ShardedStore:
        return ShardedStore(self.blobs, LsmSettings(shards=4, poll_seconds=0.0))

    def ingestor(self, store: ShardedStore | None = None, reorg_reads: int = 200) -> Ingestor:
        catalog = TokenCatalog(  # type: ignore[arg-type]
            self.chain, TokenRegistry(self.blobs), TokenDirectory(self.blobs)
        )
        index = TrackedIndex(self.tracked, catalog, self.maps, recheck_seconds=0.0)

        async def no_sleep(_: float) -> None:
            return None

        return Ingestor(
            store or self.store,
            index,
            self.chain,
            source="test",
            fetcher=self.fetcher,
            settings=IngestSettings(
                flush_seconds=3600.0, mark_seconds=3600.0, reorg_reads=reorg_reads
            ),
            on_change=self.changed.extend,
            sleep=no_sleep,
        )

    async def track_all(self) -> None:
        for address in TRACKED:
            await self.tracked.track(Principal.parse(address))

    async def anchor(self, ingestor: Ingestor) -> None:
        """What the anchoring pass does: read each tracked address exactly as of the tip."""
        tip = self.chain.tip
        updates = [
            AddressUpdate(
                address,
                Stamp(tip.time, tip.height),
                {
                    "stx": (self.chain.balance(address, "stx"), "stx"),
                    **{key: (self.chain.balance(address, key), "map") for key in self.maps},
                },
                listing_complete=True,
                confirm=True,
            )
            for address in TRACKED
        ]
        await ingestor.store.apply_many(updates)

    async def feed(self, ingestor: Ingestor, *blocks) -> None:  # type: ignore[no-untyped-def]
        for block in blocks:
            await ingestor.handle(Apply(block))

    async def amount(
        self, address: str, token: str = "stx", store: ShardedStore | None = None
    ) -> int | None:
        found = await (store or self.store).load(Principal.parse(address))
        state = None if found is None else found.tokens.get(token)
        return None if state is None else state.amount

    async def assert_matches_chain(self, store: ShardedStore | None = None) -> None:
        for address in TRACKED:
            assert await self.amount(address, store=store) == self.chain.balance(address, "stx"), (
                address
            )


async def started(rig: Rig, reorg_reads: int = 200) -> Ingestor:
    """A store whose ingestion began at the model's first mined block, then anchored."""
    await rig.track_all()
    ingestor = rig.ingestor(reorg_reads=reorg_reads)
    await ingestor.open()
    await rig.feed(ingestor, rig.chain.mine())  # the first block: anchoring starts after it
    rig.chain.mine()
    await rig.feed(ingestor, rig.chain.tip)
    await rig.anchor(ingestor)
    rig.chain.reads.clear()
    return ingestor


async def test_anchored_pairs_fold_deltas_with_no_read_and_untouched_ones_cost_nothing() -> None:
    rig = Rig()
    ingestor = await started(rig)
    puts_before = len([k async for k in rig.blobs.iter_keys("v1/journal/")])
    block = rig.chain.mine(
        AssetMove("stx", ALICE, BOB, 250), AssetMove("stx", OUTSIDER, CAROL, 7), fee=3
    )
    await rig.feed(ingestor, block)
    assert rig.chain.reads == {}  # every touched pair was anchored: no request
    await rig.assert_matches_chain()
    assert sorted(rig.changed) == sorted([ALICE, BOB, CAROL])
    assert await rig.amount(OUTSIDER) is None  # not tracked: nothing stored
    # Nothing written yet (one segment per flush), then one segment with the cursor.
    assert len([k async for k in rig.blobs.iter_keys("v1/journal/")]) == puts_before
    await ingestor.flush()
    replica = rig.new_store()
    await rig.assert_matches_chain(replica)
    assert replica.ingest_mark is not None
    assert replica.ingest_mark.height == block.height


async def test_reads_as_of_the_first_folded_block_anchor_the_next_blocks() -> None:
    """Anchored at the block ingestion began with (the cursor): the next block's deltas
    apply with no read, and none of the addresses needs anchoring again."""
    rig = Rig()
    await rig.track_all()
    ingestor = rig.ingestor()
    await ingestor.open()
    await rig.feed(ingestor, rig.chain.mine())
    await rig.anchor(ingestor)
    rig.chain.reads.clear()
    await rig.feed(ingestor, rig.chain.mine(AssetMove("stx", ALICE, BOB, 250), fee=3))
    assert rig.chain.reads == {}
    await rig.assert_matches_chain()
    for address in TRACKED:
        found = await ingestor.store.load(Principal.parse(address))
        assert ingestor.coverage(address, found) is not None


async def test_a_pair_not_anchored_is_read_as_of_its_block() -> None:
    rig = Rig()
    await rig.track_all()
    ingestor = rig.ingestor()
    await ingestor.open()
    block = rig.chain.mine(AssetMove("stx", ALICE, BOB, 10))
    await rig.feed(ingestor, block)
    assert rig.chain.reads["stx"] == 2  # Alice and Bob, read as of the block
    for address in (ALICE, BOB):
        assert await rig.amount(address) == rig.chain.balance(address, "stx")
    assert await rig.amount(CAROL) is None  # tracked, untouched: nothing read


async def test_a_delta_that_would_go_below_zero_is_drift_read_again_and_counted() -> None:
    rig = Rig()
    ingestor = await started(rig)
    # The store believes Alice has less than she does (drift): 5 instead of 1,000,000.
    await rig.store.apply(
        AddressUpdate(
            ALICE,
            Stamp(rig.chain.tip.time + 1, rig.chain.tip.height),
            {"stx": (5, "stx")},
            confirm=True,
        )
    )
    await rig.feed(ingestor, rig.chain.mine(AssetMove("stx", ALICE, BOB, 100)))
    assert ingestor.stats.drift_found["stx"] == 1
    assert await rig.amount(ALICE) == rig.chain.balance(ALICE, "stx")


async def test_the_same_block_twice_changes_nothing() -> None:
    rig = Rig()
    ingestor = await started(rig)
    block = rig.chain.mine(AssetMove("stx", ALICE, BOB, 40))
    await rig.feed(ingestor, block, block)
    await rig.feed(ingestor, block)
    assert ingestor.stats.blocks_skipped == 2
    await rig.assert_matches_chain()


@pytest.mark.parametrize("verify", [0, 200])
@pytest.mark.parametrize("depth", [1, 3, 10])
async def test_a_reorg_seen_by_parent_hash_is_undone_and_the_new_fork_applied(
    depth: int, verify: int
) -> None:
    """With and without re-reading the undone pairs: the undo alone is exact (the
    re-reads find no drift)."""
    rig = Rig()
    ingestor = await started(rig, reorg_reads=verify)
    for n in range(depth):
        await rig.feed(ingestor, rig.chain.mine(AssetMove("stx", ALICE, BOB, 1000 + n)))
    rig.chain.fork(depth)
    new = [rig.chain.mine(AssetMove("stx", BOB, CAROL, 77 + n)) for n in range(depth + 1)]
    await rig.feed(ingestor, *new)
    assert ingestor.stats.reorgs == 1
    assert ingestor.stats.blocks_undone == depth
    assert ingestor.stats.drift_found == {}
    await rig.assert_matches_chain()
    assert ingestor.cursor is not None
    assert ingestor.cursor.height == rig.chain.tip.height
    await ingestor.flush()
    await rig.assert_matches_chain(rig.new_store())  # what was written agrees too


@pytest.mark.parametrize("depth", [1, 3, 10])
async def test_a_rollback_delivery_undoes_the_blocks_it_names(depth: int) -> None:
    rig = Rig(fetcher=False)
    ingestor = await started(rig, reorg_reads=0)
    for n in range(depth):
        await rig.feed(ingestor, rig.chain.mine(AssetMove("stx", ALICE, DAVE, 10 + n)))
    orphaned = rig.chain.fork(depth)
    await ingestor.handle(Rollback(tuple(reversed(orphaned))))
    await rig.assert_matches_chain()  # back to the fork point exactly
    await rig.feed(ingestor, rig.chain.mine(AssetMove("stx", DAVE, CAROL, 5)))
    await rig.assert_matches_chain()


async def test_history_points_of_orphaned_blocks_are_removed() -> None:
    from datetime import UTC, datetime, timedelta

    rig = Rig()
    ingestor = await started(rig)
    orphan = rig.chain.mine(AssetMove("stx", ALICE, BOB, 999))
    await rig.feed(ingestor, orphan)
    rig.chain.fork(1)
    await rig.feed(ingestor, rig.chain.mine(), rig.chain.mine(AssetMove("stx", ALICE, BOB, 1)))
    start = datetime.fromtimestamp(orphan.time, UTC) - timedelta(hours=1)
    series = await rig.store.series(Principal.parse(ALICE), start, start + timedelta(hours=2))
    amounts = [p.amount for p in series["stx"].points]
    assert 1_000_000 - 999 not in amounts
    assert amounts[-1] == rig.chain.balance(ALICE, "stx")


async def test_a_gap_is_filled_from_the_api() -> None:
    rig = Rig()
    ingestor = await started(rig)
    skipped = [rig.chain.mine(AssetMove("stx", ALICE, BOB, 3)) for _ in range(4)]
    last = rig.chain.mine(AssetMove("stx", BOB, CAROL, 2))
    await rig.feed(ingestor, last)  # the source was down for four blocks
    assert ingestor.stats.blocks_applied >= 5
    assert skipped
    await rig.assert_matches_chain()


async def test_a_gap_without_an_api_is_an_ingest_error() -> None:
    rig = Rig(fetcher=False)
    ingestor = await started(rig)
    rig.chain.mine()
    with pytest.raises(IngestError, match="missing"):
        await rig.feed(ingestor, rig.chain.mine())


async def test_a_fork_deeper_than_the_window_is_an_ingest_error() -> None:
    rig = Rig()
    ingestor = await started(rig)
    ingestor.window._blocks = type(ingestor.window._blocks)(maxlen=2)  # keep two blocks
    for _ in range(4):
        await rig.feed(ingestor, rig.chain.mine(AssetMove("stx", ALICE, BOB, 1)))
    rig.chain.fork(4)
    with pytest.raises(IngestError, match="forked below"):
        await rig.feed(ingestor, *[rig.chain.mine() for _ in range(5)])


async def test_a_restart_resumes_from_the_written_cursor_and_applies_nothing_twice() -> None:
    rig = Rig()
    ingestor = await started(rig)
    first = rig.chain.mine(AssetMove("stx", ALICE, BOB, 11))
    await rig.feed(ingestor, first)
    await ingestor.flush()
    second = rig.chain.mine(AssetMove("stx", ALICE, BOB, 22))
    await rig.feed(ingestor, second)  # applied, not written: the process dies here
    restarted = rig.ingestor(rig.new_store())
    await restarted.open()
    assert restarted.cursor is not None
    assert restarted.cursor.height == first.height
    await rig.feed(restarted, first, second)  # the source replays from the cursor
    await rig.assert_matches_chain(restarted.store)


async def test_map_token_touches_are_read_as_of_the_block() -> None:
    rig = Rig(maps=(MAP,))
    ingestor = await started(rig)
    from balances.chain.events import ChainTx

    call = ChainTx("0x" + "77" * 32, 0, ALICE, True, 0, ALICE, contract_call=MAP)
    block = rig.chain._make(rig.chain.tip.height + 1, (call,), rig.chain.tip)
    rig.chain.blocks.append(block)
    await rig.feed(ingestor, block)
    assert rig.chain.reads == {MAP: 1}


async def test_a_read_that_keeps_failing_leaves_the_block_unapplied() -> None:
    rig = Rig()
    await rig.track_all()
    ingestor = rig.ingestor()
    await ingestor.open()
    rig.chain.fail_reads = 100
    block = rig.chain.mine(AssetMove("stx", ALICE, BOB, 5))
    with pytest.raises(IngestError, match="failed"):
        await rig.feed(ingestor, block)
    assert ingestor.cursor is None
    assert await rig.amount(ALICE) is None
    rig.chain.fail_reads = 0
    await rig.feed(ingestor, block)
    assert await rig.amount(ALICE) == rig.chain.balance(ALICE, "stx")


async def test_coverage_vouches_for_anchored_tracked_addresses_while_close_to_the_tip() -> None:
    rig = Rig()
    ingestor = await started(rig)
    await rig.feed(ingestor, rig.chain.mine())
    balances = await rig.store.load(Principal.parse(ALICE))
    stamp = ingestor.coverage(ALICE, balances)
    assert stamp is not None
    assert stamp.block_height == rig.chain.tip.height
    assert ingestor.coverage(OUTSIDER, balances) is None
    await ingestor.handle(TipSeen(rig.chain.tip.ref, rig.chain.tip.time))
    ingestor.stats.source_tip = (rig.chain.tip.height + 50, rig.chain.tip.time + 250)
    assert ingestor.coverage(ALICE, balances) is None  # far behind: no longer vouched
