"""Rebuilding the sharded layout's manifest from the listing, alone and in a race."""

from __future__ import annotations

import asyncio

from balances.blobs import MemoryBlobStore
from balances.domain import Principal
from balances.domain.current import AddressUpdate, Stamp
from balances.stores.sharded.manifest import decode_manifest
from balances.stores.sharded.parts import LsmSettings
from balances.stores.sharded.rebuild import manifest_from_listing
from balances.stores.sharded.store import ShardedStore
from balances.testing import fake_address

SETTINGS = LsmSettings(shards=8, compact_grace_seconds=0.0, poll_seconds=0.0)
ADDRESSES = [fake_address(f"rebuild {i}") for i in range(12)]


class Wall:
    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        self.now += 0.01  # every segment id its own millisecond
        return self.now


async def _write(store: ShardedStore, amount: int) -> None:
    updates = [
        AddressUpdate(a, Stamp(store.wall_time(), amount), {"stx": (amount + i, "stx")}, True)
        for i, a in enumerate(ADDRESSES)
    ]
    await store.apply_many(updates)


async def _amounts(store: ShardedStore) -> dict[str, int]:
    found = await store.load_many([Principal.parse(a) for a in ADDRESSES])
    return {a: b.tokens["stx"].amount for a, b in found.items() if b is not None}


def _store(blobs: MemoryBlobStore, wall: Wall) -> ShardedStore:
    return ShardedStore(blobs, SETTINGS, wall_clock=wall)


async def test_the_rebuilt_manifest_is_the_one_compaction_wrote() -> None:
    blobs, wall = MemoryBlobStore(), Wall()
    store = _store(blobs, wall)
    await _write(store, 1)
    await store.maintain()
    written = decode_manifest((await blobs.get("v1/manifest")).data, "v1/manifest")
    await _write(store, 2)  # a segment compaction has not folded yet
    rebuilt, unreadable = await manifest_from_listing(store)
    assert (rebuilt.shards, rebuilt.folded_through, unreadable) == (
        8,
        written.folded_through,
        [],
    )


async def test_racing_rebuilds_of_a_damaged_manifest_agree_and_lose_nothing() -> None:
    blobs, wall = MemoryBlobStore(), Wall()
    writer = _store(blobs, wall)
    await _write(writer, 1)
    await writer.maintain()
    await _write(writer, 2)
    expected = await _amounts(_store(blobs, wall))
    await blobs.put("v1/manifest", b"half a manifest")

    racers = [_store(blobs, wall) for _ in range(4)]
    await asyncio.gather(*(r.heal() for r in racers))
    assert [k async for k in blobs.iter_keys("quarantine/")] != []
    assert len([k async for k in blobs.iter_keys("quarantine/v1/manifest/")]) == 1
    decode_manifest((await blobs.get("v1/manifest")).data, "v1/manifest")
    for racer in racers:
        assert await _amounts(racer) == expected == {a: 2 + i for i, a in enumerate(ADDRESSES)}
    await _write(racers[0], 3)
    await racers[1].maintain()
    assert await _amounts(_store(blobs, wall)) == {a: 3 + i for i, a in enumerate(ADDRESSES)}


async def test_a_missing_manifest_is_created_by_the_next_write() -> None:
    blobs, wall = MemoryBlobStore(), Wall()
    store = _store(blobs, wall)
    await _write(store, 1)
    await store.maintain()
    await blobs.delete("v1/manifest")
    fresh = _store(blobs, wall)
    await _write(fresh, 5)
    assert decode_manifest((await blobs.get("v1/manifest")).data, "v1/manifest").shards == 8
    assert await _amounts(_store(blobs, wall)) == {a: 5 + i for i, a in enumerate(ADDRESSES)}
