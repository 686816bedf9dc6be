"""The tracked set's bulk import: one write for many addresses, no lost updates."""

from __future__ import annotations

from balances.blobs import MemoryBlobStore, MeteredBlobStore
from balances.domain import Principal
from balances.stores.tracked import TrackedSet
from balances.testing import fake_address


def _principals(count: int, tag: str = "bulk") -> list[Principal]:
    return [Principal.parse(fake_address(f"{tag}-{i}")) for i in range(count)]


async def test_track_many_writes_once_and_counts_only_new_addresses() -> None:
    blobs = MeteredBlobStore(MemoryBlobStore())
    tracked = TrackedSet(blobs)
    first = _principals(3)
    await tracked.track(first[0])
    puts = blobs.snapshot().operations["put"]
    assert await tracked.track_many([*first, *_principals(500, "more"), first[1]]) == 502
    assert blobs.snapshot().operations["put"] == puts + 1
    assert len(await tracked.entries()) == 503
    assert await tracked.track_many(first) == 0  # all known: nothing written
    assert blobs.snapshot().operations["put"] == puts + 1


async def test_track_many_keeps_a_concurrent_writers_address() -> None:
    blobs = MemoryBlobStore()
    ours, theirs = TrackedSet(blobs), TrackedSet(blobs)
    await ours.entries()  # holds the (empty) document and its etag
    other = Principal.parse(fake_address("other-writer"))
    await theirs.track(other)  # ours's etag is now stale: its write must retry
    assert await ours.track_many(_principals(10)) == 10
    fresh = TrackedSet(blobs)
    addresses = {entry.address for entry in await fresh.entries()}
    assert str(other) in addresses
    assert len(addresses) == 11
