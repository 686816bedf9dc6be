"""The sharded layout's parts that block ingestion uses: staged writes flushed as one
segment with the ingest cursor, retractions (a reorg voids changes: the state
before comes back, the history point goes), through the tail, a replica's poll,
compaction, and a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from balances.blobs import MemoryBlobStore
from balances.domain import BalancePoint, Principal
from balances.domain.current import AddressUpdate, Change, Stamp, TokenState
from balances.domain.retractions import Retraction
from balances.errors import BlobBackendError, CorruptBlobError
from balances.stores.sharded.journal import (
    IngestMark,
    Record,
    Segment,
    decode_segment,
    encode_segment,
)
from balances.stores.sharded.parts import LsmSettings
from balances.stores.sharded.store import ShardedStore
from balances.testing import fake_address

ALICE, BOB = fake_address("ingest-alice"), fake_address("ingest-bob")
T0 = datetime(2024, 3, 5, 12, tzinfo=UTC).timestamp()
GRACE = 600.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def mark(height: int, anchored: int = 100) -> IngestMark:
    return IngestMark(height, f"0xb{height}", f"0xi{height}", T0 + height, anchored, "pull")


def change(address: str, amount: int, at: float, height: int, old: int | None = None) -> Change:
    return Change(address, "stx", "stx", old, amount, Stamp(at, height))


def store_on(blobs: MemoryBlobStore, wall: Clock, mono: Clock) -> ShardedStore:
    settings = LsmSettings(shards=4, compact_grace_seconds=GRACE, poll_seconds=0.0)
    return ShardedStore(blobs, settings, clock=mono, wall_clock=wall)


@pytest.fixture
def rig() -> tuple[MemoryBlobStore, Clock, Clock]:
    return MemoryBlobStore(), Clock(T0), Clock(1000.0)


async def amount(store: ShardedStore, address: str) -> int | None:
    found = await store.load(Principal.parse(address))
    state = None if found is None else found.tokens.get("stx")
    return None if state is None else state.amount


async def points(store: ShardedStore, address: str) -> list[tuple[float, int]]:
    start, end = datetime.fromtimestamp(T0 - 86400, UTC), datetime.fromtimestamp(T0 + 86400, UTC)
    found = await store.series(Principal.parse(address), start, end)
    return [(p.at.timestamp(), p.amount) for p in found["stx"].points] if "stx" in found else []


async def segments(blobs: MemoryBlobStore) -> list[str]:
    return [key async for key in blobs.iter_keys("v1/journal/")]


async def test_staged_records_are_served_at_once_and_written_by_flush(rig) -> None:
    blobs, wall, mono = rig
    store = store_on(blobs, wall, mono)
    store.stage([Record(ALICE, (change(ALICE, 7, T0 + 1, 101),))])
    store.stage([Record(BOB, (change(BOB, 3, T0 + 2, 102),))])
    assert await amount(store, ALICE) == 7
    assert await points(store, ALICE) == [(T0 + 1, 7)]
    assert await segments(blobs) == []  # nothing written yet
    assert store.staged == 2

    written = await store.flush(mark(102))
    assert written is not None
    assert len(await segments(blobs)) == 1
    assert store.staged == 0
    replica = store_on(blobs, wall, mono)
    assert await amount(replica, ALICE) == 7
    assert await amount(replica, BOB) == 3
    assert replica.ingest_mark == mark(102)


async def test_a_failed_flush_keeps_the_records_for_the_next_one(rig) -> None:
    blobs, wall, mono = rig
    store = store_on(blobs, wall, mono)
    store.stage([Record(ALICE, (change(ALICE, 7, T0 + 1, 101),))])
    real_put = blobs.put
    calls = {"n": 0}

    async def failing_put(key, data, **options):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if key.startswith("v1/journal/"):
            raise BlobBackendError("injected outage")
        return await real_put(key, data, **options)

    blobs.put = failing_put  # type: ignore[method-assign]
    with pytest.raises(BlobBackendError):
        await store.flush(mark(101))
    assert store.staged == 1
    assert await amount(store, ALICE) == 7  # still served
    blobs.put = real_put  # type: ignore[method-assign]
    await store.flush(mark(101))
    assert await amount(store_on(blobs, wall, mono), ALICE) == 7


async def test_a_mark_alone_is_written_and_the_newest_segment_wins(rig) -> None:
    blobs, wall, mono = rig
    store = store_on(blobs, wall, mono)
    await store.flush(mark(105))
    wall.now += 1
    await store.flush(mark(103))  # a reorg lowered the cursor: the newest segment counts
    assert store_on(blobs, wall, mono).ingest_mark is None  # not polled yet
    replica = store_on(blobs, wall, mono)
    await replica.poll(force=True)
    assert replica.ingest_mark == mark(103)


async def test_a_retraction_restores_the_state_before_and_removes_the_point(rig) -> None:
    blobs, wall, mono = rig
    store = store_on(blobs, wall, mono)
    before = TokenState(5, Stamp(T0, 100), "stx")
    store.stage([Record(ALICE, (change(ALICE, 5, T0, 100),))])
    store.stage([Record(ALICE, (change(ALICE, 7, T0 + 10, 101, old=5),))])
    assert await amount(store, ALICE) == 7
    voided = Retraction("stx", "stx", 7, Stamp(T0 + 10, 101), before)
    store.stage([Record(ALICE, (), None, (voided,))])
    assert await amount(store, ALICE) == 5
    assert await points(store, ALICE) == [(T0, 5)]
    await store.flush(mark(100))
    replica = store_on(blobs, wall, mono)
    assert await amount(replica, ALICE) == 5
    assert await points(replica, ALICE) == [(T0, 5)]


async def test_a_retraction_of_a_state_already_superseded_changes_nothing(rig) -> None:
    blobs, wall, mono = rig
    store = store_on(blobs, wall, mono)
    store.stage([Record(ALICE, (change(ALICE, 7, T0 + 10, 101),))])
    store.stage([Record(ALICE, (change(ALICE, 9, T0 + 20, 102),))])
    voided = Retraction("stx", "stx", 7, Stamp(T0 + 10, 101), TokenState(5, Stamp(T0, 100), "stx"))
    store.stage([Record(ALICE, (), None, (voided,))])
    assert await amount(store, ALICE) == 9
    assert await points(store, ALICE) == [(T0 + 20, 9)]  # 7's point is gone, 9 stands


async def test_a_retraction_of_a_first_change_makes_the_pair_unknown_again(rig) -> None:
    blobs, wall, mono = rig
    store = store_on(blobs, wall, mono)
    store.stage([Record(ALICE, (change(ALICE, 7, T0 + 10, 101),))])
    store.stage([Record(ALICE, (), None, (Retraction("stx", "stx", 7, Stamp(T0 + 10, 101)),))])
    assert await amount(store, ALICE) is None  # unknown, not zero
    assert await points(store, ALICE) == []


async def test_the_same_point_made_again_after_its_retraction_stays(rig) -> None:
    blobs, wall, mono = rig
    store = store_on(blobs, wall, mono)
    orphan = change(ALICE, 7, T0 + 10, 101)
    store.stage([Record(ALICE, (orphan,))])
    store.stage([Record(ALICE, (), None, (Retraction("stx", "stx", 7, orphan.stamp),))])
    store.stage([Record(ALICE, (orphan,))])  # the new fork's block did the same
    assert await amount(store, ALICE) == 7
    assert await points(store, ALICE) == [(T0 + 10, 7)]


async def test_compaction_folds_retractions_into_every_blob(rig) -> None:
    """A point compacted before its retraction is removed from the month blob and the
    day closes with what is left; the shard blob holds the restored state."""
    blobs, wall, mono = rig
    store = store_on(blobs, wall, mono)
    store.stage([Record(ALICE, (change(ALICE, 5, T0, 100),))])
    store.stage([Record(ALICE, (change(ALICE, 7, T0 + 10, 101, old=5),))])
    await store.flush(mark(101))
    wall.now = T0 + 2 * GRACE
    await store.maintain()  # 5 and 7 are in the blobs now
    before = TokenState(5, Stamp(T0, 100), "stx")
    store.stage(
        [Record(ALICE, (), None, (Retraction("stx", "stx", 7, Stamp(T0 + 10, 101), before),))]
    )
    assert await amount(store, ALICE) == 5  # the tail voids the shard blob's state
    assert await points(store, ALICE) == [(T0, 5)]
    await store.flush(mark(100))
    wall.now = T0 + 4 * GRACE
    await store.maintain()
    fresh = store_on(blobs, wall, mono)
    assert await amount(fresh, ALICE) == 5
    assert await points(fresh, ALICE) == [(T0, 5)]
    start = datetime.fromtimestamp(T0, UTC) - timedelta(days=2)
    daily = await fresh.series(
        Principal.parse(ALICE), start, start + timedelta(days=4), resolution="daily"
    )
    assert [p.amount for p in daily["stx"].points] == [5]
    assert (await fresh.manifest.current()).ingest == mark(100)


def test_segments_with_retractions_and_marks_round_trip() -> None:
    restored = TokenState(5, Stamp(T0, 100), "stx")
    segment = Segment(
        "0001709640000000-abcd",
        (
            Record(ALICE, (change(ALICE, 7, T0 + 1, 101),)),
            Record(BOB, (), None, (Retraction("stx", "stx", 3, Stamp(T0 + 2, 102), restored),)),
        ),
        mark(102),
    )
    decoded = decode_segment(encode_segment(segment), "k")
    assert decoded.mark == segment.mark
    assert decoded.records[1].retracted == segment.records[1].retracted
    assert decoded.records[0].changes[0].new == 7


def test_a_plain_segment_is_still_format_1() -> None:
    import orjson
    import zstandard

    segment = Segment("0001709640000000-abcd", (Record(ALICE, (change(ALICE, 7, T0, 1),)),))
    raw = zstandard.ZstdDecompressor().decompress(encode_segment(segment))
    assert orjson.loads(raw)["format"] == 1


def test_a_retraction_row_of_the_wrong_shape_is_corrupt() -> None:
    from balances.stores.encoding import encode_document

    bad = encode_document(
        "journal-segment",
        2,
        {
            "segment": "s",
            "stamps": [[T0, 1]],
            "tokens": [["stx", "stx"]],
            "records": [[ALICE, [], None, [[0, "7"]]]],
        },
    )
    with pytest.raises(CorruptBlobError):
        decode_segment(bad, "k")


def test_a_point_from_a_daily_close_matches_a_voided_change() -> None:
    from balances.domain.retractions import Voided

    voided = Voided([Retraction("stx", "stx", 7, Stamp(T0, 101))])
    at = datetime.fromtimestamp(T0, UTC)
    assert ("stx", BalancePoint(at, 7, 101)) in voided
    assert ("stx", BalancePoint(at, 7)) in voided  # a daily close keeps no height
    assert ("stx", BalancePoint(at, 7, 102)) not in voided
    assert ("stx", BalancePoint(at, 8)) not in voided


async def test_a_new_forks_change_at_the_orphans_stamp_stands_over_the_shard_blob(rig) -> None:
    """The orphan (9) was compacted; the new fork's block at the same height and time
    set 3. The tail's retraction voids the shard blob's 9 before the tail is joined
    over it (the join alone would keep the larger amount at one stamp)."""
    blobs, wall, mono = rig
    store = store_on(blobs, wall, mono)
    before = TokenState(5, Stamp(T0, 100), "stx")
    orphan = change(ALICE, 9, T0 + 10, 101, old=5)
    store.stage([Record(ALICE, (change(ALICE, 5, T0, 100),)), Record(ALICE, (orphan,))])
    await store.flush(mark(101))
    wall.now = T0 + 2 * GRACE
    await store.maintain()  # 9 is in the shard blob
    voided = Retraction("stx", "stx", 9, orphan.stamp, before)
    store.stage([Record(ALICE, (), None, (voided,))])
    store.stage([Record(ALICE, (change(ALICE, 3, T0 + 10, 101, old=5),))])
    assert await amount(store, ALICE) == 3
    await store.flush(mark(101))
    assert await amount(store_on(blobs, wall, mono), ALICE) == 3
    wall.now = T0 + 4 * GRACE
    await store.maintain()
    assert await amount(store_on(blobs, wall, mono), ALICE) == 3


async def test_a_confirming_read_that_loses_at_its_stamp_writes_nothing(rig) -> None:
    """At one stamp the larger amount stands (docs/folding.md): a confirming read of a
    smaller amount confirms nothing, so no record claims it."""
    blobs, wall, mono = rig
    store = store_on(blobs, wall, mono)
    stamp = Stamp(T0, 100)
    await store.apply(AddressUpdate(ALICE, stamp, {"stx": (9, "stx")}, confirm=True))
    written = await segments(blobs)
    await store.apply(AddressUpdate(ALICE, stamp, {"stx": (4, "stx")}, confirm=True))
    assert await segments(blobs) == written
    later = Stamp(T0 + 5, 101)
    await store.apply(AddressUpdate(ALICE, later, {"stx": (9, "stx")}, confirm=True))
    assert len(await segments(blobs)) == len(written) + 1  # the new height persists
    found = await store_on(blobs, wall, mono).load(Principal.parse(ALICE))
    assert found is not None
    assert found.tokens["stx"] == TokenState(9, later, "stx")
