"""The scheduler's lease: conditional puts on one blob decide who leads."""

from __future__ import annotations

import pytest

from balances.blobs import DEFAULT_CONTENT_TYPE, OVERWRITE, BlobInfo, MemoryBlobStore, WriteMode
from balances.errors import BlobBackendError
from balances.scheduler import LEASE_KEY, Lease

T0 = 1_704_067_200.0


class FlakyPuts(MemoryBlobStore):
    """A memory store whose puts fail while ``down`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.puts = 0

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        mode: WriteMode = OVERWRITE,
        content_type: str = DEFAULT_CONTENT_TYPE,
    ) -> BlobInfo:
        self.puts += 1
        if self.down:
            raise BlobBackendError("store unreachable")
        return await super().put(key, data, mode=mode, content_type=content_type)


def pair(store: MemoryBlobStore) -> tuple[Lease, Lease]:
    return Lease(store, "a", lease_seconds=60), Lease(store, "b", lease_seconds=60)


async def test_the_first_creates_the_lease_and_the_other_follows_until_it_expires() -> None:
    store = MemoryBlobStore()
    a, b = pair(store)
    assert await a.step(T0) is True
    assert await b.step(T0) is False
    assert b.record is not None
    assert (b.record.owner, b.record.expires_at, b.record.term) == ("a", T0 + 60, 1)
    assert b.next_check(T0 + 1) == T0 + 30  # no reads before half a lease
    assert await b.step(T0 + 30) is False  # still a's
    assert b.next_check(T0 + 30) == T0 + 60  # its expiry comes before another half
    assert await b.step(T0 + 60) is True  # a never renewed: b takes over
    assert b.record.term == 2


async def test_the_leader_renews_at_half_and_keeps_the_lease() -> None:
    store = FlakyPuts()
    a, b = pair(store)
    await a.step(T0)
    puts = store.puts
    assert await a.step(T0 + 29) is True
    assert store.puts == puts  # nothing to write before half the lease
    assert a.next_check(T0 + 29) == T0 + 30
    assert await a.step(T0 + 30) is True
    assert a.record is not None
    assert a.record.expires_at == T0 + 90
    assert await b.step(T0 + 61) is False  # renewed: still a's


async def test_a_leader_whose_lease_was_taken_over_is_a_follower_at_once() -> None:
    store = MemoryBlobStore()
    a, b = pair(store)
    await a.step(T0)
    await b.step(T0)
    assert await b.step(T0 + 61) is True  # a paused past its expiry
    assert a.holds(T0 + 61) is False
    assert await a.step(T0 + 61) is False  # its renewal fails the etag check
    assert a.leader is False
    assert a.record is not None
    assert a.record.owner == "b"


async def test_an_unreachable_store_keeps_the_leader_only_until_its_lease_expires() -> None:
    store = FlakyPuts()
    (a, _) = pair(store)
    await a.step(T0)
    store.down = True
    assert await a.step(T0 + 30) is True  # renewal failed, the lease still runs
    retry = a.next_check(T0 + 30)
    assert T0 + 30 < retry < T0 + 60  # tries again soon, not in a tight loop
    assert await a.step(T0 + 60) is False  # expired unrenewed: no more tasks
    store.down = False
    assert await a.step(a.next_check(T0 + 60)) is True  # nobody took it: renewed


async def test_a_released_lease_is_taken_at_once_and_a_corrupt_one_is_replaced() -> None:
    store = MemoryBlobStore()
    a, b = pair(store)
    await a.step(T0)
    await b.step(T0)
    await a.release(T0 + 5)
    assert a.leader is False
    assert b.next_check(T0 + 5) == T0 + 30  # a follower looks again every half lease
    assert await b.step(T0 + 30) is True  # not at a's old expiry (T0 + 60)
    assert await Lease(store, "new").step(T0 + 30) is False

    await store.put(LEASE_KEY, b"not a lease")
    c = Lease(store, "c")
    assert await c.step(T0 + 6) is True
    assert (await Lease(store, "observer").observe()) == c.record


@pytest.mark.parametrize("owner", ["a", "b"])
async def test_only_one_of_two_racing_replicas_wins(owner: str) -> None:
    store = MemoryBlobStore()
    first, second = pair(store) if owner == "a" else pair(store)[::-1]
    results = [await first.step(T0), await second.step(T0)]
    assert results == [True, False]
    assert second.record is not None
    assert second.record.owner == owner
