"""The change feed in blobs: numbering, durability, resume, holes, retention, takeover."""

from __future__ import annotations

from typing import Any

import pytest

from balances.blobs import DEFAULT_CONTENT_TYPE, OVERWRITE, BlobInfo, MemoryBlobStore, WriteMode
from balances.domain.feed import ChangeDraft, FeedEntry, FeedFilter, decode_entry
from balances.errors import BlobBackendError, FeedGoneError
from balances.stores.feed import ChangeFeed, FeedSettings
from balances.stores.feed.segments import parse_segment_key, segments_prefix

ADDRESS = "SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7"
TOKEN = "SP3K8BC0PPEVCV7NZ6QSRWPQ2JE9E5B6N3PA0KBR9.token-alex"
HUGE = 2**128 - 1


def draft(amount: int | None, previous: int | None = 0, *, block: str = "0xaa") -> ChangeDraft:
    return ChangeDraft(
        "change", ADDRESS, TOKEN, "native", previous, amount, 7, block, "pull", 1.0e9, ("0x1",)
    )


class FlakyPuts(MemoryBlobStore):
    """A memory store whose puts fail while ``down`` is set."""

    down = False

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        mode: WriteMode = OVERWRITE,
        content_type: str = DEFAULT_CONTENT_TYPE,
    ) -> BlobInfo:
        if self.down:
            raise BlobBackendError("store unreachable")
        return await super().put(key, data, mode=mode, content_type=content_type)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


async def opened(blobs: MemoryBlobStore, clock: Clock | None = None, **settings: Any) -> ChangeFeed:
    feed = ChangeFeed(blobs, "lsm", FeedSettings(**settings), wall_clock=clock or Clock())
    await feed.open()
    return feed


async def all_entries(feed: ChangeFeed, after: int = 0) -> list[FeedEntry]:
    found: list[FeedEntry] = []
    while True:
        page = await feed.read_after(after, 3)
        found += page.entries
        if not page.stopped:
            return found
        after = page.end or after


def test_an_entry_round_trips_through_json_with_exact_u128_amounts() -> None:
    entry = FeedEntry(5, draft(HUGE, HUGE - 1))
    data = entry.to_json()
    assert data["amount"] == str(HUGE)
    assert data["delta"] == "1"
    assert decode_entry(data) == entry
    unknown = FeedEntry(6, draft(None, 3))
    assert unknown.to_json()["delta"] is None  # unknown is not zero
    with pytest.raises(ValueError, match="amount"):
        decode_entry({**data, "amount": str(HUGE + 1)})
    with pytest.raises(ValueError, match="amount"):
        decode_entry({**data, "amount": "١٢"})  # Arabic-Indic digits are not read


async def test_numbers_are_dense_and_the_feed_reads_back_from_blobs_in_another_process() -> None:
    blobs = MemoryBlobStore()
    feed = await opened(blobs)
    first = feed.emit([draft(1), draft(2)])
    await feed.flush()
    second = feed.emit([draft(3)])
    await feed.flush()
    assert [e.seq for e in [*first, *second]] == [1, 2, 3]
    other = ChangeFeed(blobs, "lsm")  # not the writer: reads the segments only
    assert await all_entries(other) == [*first, *second]
    assert [e.seq for e in await all_entries(other, after=2)] == [3]
    keys = [k async for k in blobs.iter_keys(segments_prefix("lsm"))]
    assert [(n.first, n.last) for n in map(parse_segment_key, keys) if n] == [(1, 2), (3, 3)]


async def test_a_failed_write_keeps_the_entries_for_the_next_flush() -> None:
    blobs = FlakyPuts()
    feed = await opened(blobs)
    feed.emit([draft(1)])
    blobs.down = True
    with pytest.raises(BlobBackendError, match="unreachable"):
        await feed.flush()
    blobs.down = False
    feed.emit([draft(2)])
    await feed.flush()
    assert [e.seq for e in await all_entries(ChangeFeed(blobs, "lsm"))] == [1, 2]


async def test_a_writer_that_crashed_leaves_a_hole_that_resumes_are_told_about() -> None:
    blobs = MemoryBlobStore()
    crashed = await opened(blobs, reserve=100)
    crashed.emit([draft(1), draft(2)])
    await crashed.flush()
    lost = crashed.emit([draft(3), draft(4)])  # handed out live, never written
    assert [e.seq for e in lost] == [3, 4]
    successor = await opened(blobs, reserve=100)
    fresh = successor.emit([draft(5)])
    await successor.flush()
    assert fresh[0].seq > 4  # a number once handed out is never reused
    # From before the hole: what was written, then "gone" at the hole.
    page = await successor.read_after(0)
    assert [e.seq for e in page.entries] == [1, 2]
    assert page.stopped
    for position in (2, 3, 50):
        with pytest.raises(FeedGoneError, match="lost") as gone:
            await successor.read_after(position)
        assert gone.value.resume_after == 100
    assert [e.seq for e in (await successor.read_after(100)).entries] == [fresh[0].seq]


async def test_a_clean_close_leaves_no_hole() -> None:
    blobs = MemoryBlobStore()
    first = await opened(blobs)
    first.emit([draft(1)])
    await first.close()
    second = await opened(blobs)
    assert [e.seq for e in second.emit([draft(2)])] == [2]
    await second.flush()
    assert [e.seq for e in await all_entries(second)] == [1, 2]


async def test_retention_deletes_old_segments_and_an_older_position_is_gone() -> None:
    blobs, clock = MemoryBlobStore(), Clock()
    feed = await opened(blobs, clock, retention_seconds=3600, prune_every_seconds=0)
    feed.emit([draft(1), draft(2)])
    await feed.flush()
    clock.now += 7200
    feed.emit([draft(3)])
    await feed.flush()  # prunes the first segment: older than the retention
    reader = ChangeFeed(blobs, "lsm")
    with pytest.raises(FeedGoneError, match="re-read the snapshot") as gone:
        await reader.read_after(0)
    assert gone.value.resume_after == 3
    assert [e.seq for e in (await reader.read_after(2)).entries] == [3]


async def test_a_writer_whose_claim_was_taken_stops_writing() -> None:
    blobs = MemoryBlobStore()
    old = await opened(blobs, reserve=4)
    old.emit([draft(1)])
    await old.flush()
    new = await opened(blobs, reserve=4)
    old.emit([draft(2), draft(3), draft(4)])  # runs low on its claim: asks for more
    await old.flush()
    assert not old.writing
    new.emit([draft(9)])
    await new.flush()
    entries = await all_entries(ChangeFeed(blobs, "lsm"), after=4)
    assert [e.change.amount for e in entries] == [9]


async def test_a_retraction_names_the_change_it_undoes() -> None:
    feed = await opened(MemoryBlobStore())
    (change,) = feed.emit([draft(5, 0, block="0xbb")])
    undo = ChangeDraft("retraction", ADDRESS, TOKEN, "native", 5, 0, 7, "0xbb", "pull", 1.0e9)
    (retraction,) = feed.emit([undo])
    assert retraction.retracts == change.seq
    assert retraction.change.delta == -5


def test_filters_match_by_address_and_by_token_or_its_contract() -> None:
    entry = FeedEntry(1, draft(1))
    assert FeedFilter.of().matches(entry)
    assert FeedFilter.of([ADDRESS]).matches(entry)
    assert not FeedFilter.of(["SP000000000000000000002Q6VF78"]).matches(entry)
    assert FeedFilter.of(tokens=[TOKEN]).matches(entry)
    assert FeedFilter.of(tokens=[f"{TOKEN}::alex"]).matches(entry)  # kept under the contract
    assert not FeedFilter.of(tokens=["stx"]).matches(entry)


async def test_write_seconds_batches_durable_segments_without_delaying_live_ones() -> None:
    blobs, clock = MemoryBlobStore(), Clock()
    feed = await opened(blobs, clock, write_seconds=300.0)
    live = feed.hub.subscribe(FeedFilter())
    segments = segments_prefix("lsm")
    feed.emit([draft(1)])
    await feed.flush()  # the first segment is written at once
    feed.emit([draft(2)])
    clock.now += 10
    await feed.flush()  # within 300 s of the last: kept in memory
    assert len([k async for k in blobs.iter_keys(segments)]) == 1
    assert [e.seq for e in await live.next_batch(0)] == [1, 2]  # live: not delayed
    assert [e.seq for e in await all_entries(feed)] == [1, 2]  # resumes: from memory
    clock.now += 300
    feed.emit([draft(3)])
    await feed.flush()
    assert len([k async for k in blobs.iter_keys(segments)]) == 2
    feed.emit([draft(4)])
    await feed.close()  # a clean close writes what is pending, however recent
    reader = await opened(blobs, clock)
    assert [e.change.amount for e in await all_entries(reader)] == [1, 2, 3, 4]


class CountedLists(MemoryBlobStore):
    """A memory store that counts the LIST requests made of it."""

    lists = 0

    async def list(self, *args: Any, **kwargs: Any) -> Any:
        self.lists += 1
        return await super().list(*args, **kwargs)


async def test_readers_that_poll_share_one_listing_a_second() -> None:
    """Each stream consumer on a replica that does not write the feed polls it; the
    segments are listed again at most once a second for all of them, and a new
    segment is seen once that second has passed."""
    blobs = CountedLists()
    writer = await opened(blobs)
    writer.emit([draft(1)])
    await writer.flush()
    clock = Clock()
    reader = ChangeFeed(blobs, "lsm", clock=clock).reader  # its monotonic clock, by hand
    blobs.lists = 0
    for _ in range(50):  # fifty consumers polling within the same second
        assert [e.seq for e in (await reader.read_after(0)).entries] == [1]
    assert blobs.lists == 1
    writer.emit([draft(2)])
    await writer.flush()
    clock.now += 0.5
    assert [e.seq for e in (await reader.read_after(0)).entries] == [1]  # not listed yet
    clock.now += 0.5
    assert [e.seq for e in (await reader.read_after(0)).entries] == [1, 2]
    assert blobs.lists == 2
