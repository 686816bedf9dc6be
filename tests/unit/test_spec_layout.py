"""The original service's layout (``SpecLayoutStore``): one blob per address and month,
daily snapshots, and answers that agree with the sharded layout on the same workload.

The spec layout is the baseline of the cost model, so it must be *right* even where
it is expensive: its raw slices equal the sharded layout's, and its daily charts
(from snapshots) show the same bucket values. Time is injected; nothing sleeps.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from balances.blobs import (
    DEFAULT_CONTENT_TYPE,
    OVERWRITE,
    Blob,
    BlobInfo,
    MemoryBlobStore,
    WriteMode,
)
from balances.domain import Granularity, Principal
from balances.domain.current import AddressUpdate, Change, Stamp, TokenKindName
from balances.domain.series import bucketize
from balances.errors import BlobBackendError
from balances.stores.layout import SeriesSlice
from balances.stores.sharded.documents import decode_month
from balances.stores.sharded.parts import LsmSettings
from balances.stores.sharded.store import ShardedStore
from balances.stores.spec.address_blobs import decode_balances
from balances.stores.spec.store import SpecLayoutStore
from balances.testing import fake_address

ALICE, BOB = fake_address("spec-alice"), fake_address("spec-bob")
TOKEN = f"{fake_address('spec-deployer')}.spec-token"
KINDS: dict[str, TokenKindName] = {"stx": "stx", TOKEN: "native"}
DAY = 86_400.0
#: 2024-02-26T00:00:00Z, a Monday: the workload crosses a (leap) month end.
DAY0 = datetime(2024, 2, 26, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Recorder(MemoryBlobStore):
    """A memory store that logs the key of every get and put."""

    def __init__(self) -> None:
        super().__init__()
        self.gets: list[str] = []
        self.puts: list[str] = []

    async def get(self, key: str) -> Blob:
        self.gets.append(key)
        return await super().get(key)

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        mode: WriteMode = OVERWRITE,
        content_type: str = DEFAULT_CONTENT_TYPE,
    ) -> BlobInfo:
        self.puts.append(key)
        return await super().put(key, data, mode=mode, content_type=content_type)

    def puts_under(self, prefix: str) -> list[str]:
        return [key for key in self.puts if key.startswith(prefix)]


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def update(address: str, moment: float, **amounts: int) -> AddressUpdate:
    tokens = {("stx" if k == "stx" else TOKEN): v for k, v in amounts.items()}
    return AddressUpdate(
        address,
        Stamp(moment, int(moment // 10)),
        {key: (amount, KINDS[key]) for key, amount in tokens.items()},
    )


def values(
    slices: dict[str, SeriesSlice], start: datetime, end: datetime, granularity: Granularity
) -> dict[str, list[int | None]]:
    return {
        key: [b.value for b in bucketize(s.points, start, end, granularity, opening=s.opening)]
        for key, s in slices.items()
    }


async def keys_under(blobs: MemoryBlobStore, prefix: str) -> list[str]:
    return [key async for key in blobs.iter_keys(prefix)]


async def test_each_change_rewrites_the_addresss_month_blob() -> None:
    blobs = Recorder()
    store = SpecLayoutStore(blobs, wall_clock=Clock(DAY0))
    month_key = store.month_key(ALICE, "2024-02")

    await store.apply(update(ALICE, DAY0 + 60, stx=10, tok=1))
    assert blobs.puts_under(month_key) == [month_key]  # two changes, one month: one put
    await store.apply(update(ALICE, DAY0 + 120, stx=11))
    await store.apply(update(ALICE, DAY0 + 180, tok=2))
    assert len(blobs.puts_under(month_key)) == 3
    await store.apply(update(ALICE, DAY0 + 240, stx=11, tok=2))  # nothing moved
    assert len(blobs.puts_under(month_key)) == 3
    assert blobs.puts_under(store.month_key(BOB, "2024-02")) == []

    doc = decode_month((await blobs.get(month_key)).data, month_key)
    assert [p.amount for p in doc.series[(ALICE, "stx")][1]] == [10, 11]
    assert [p.amount for p in doc.series[(ALICE, TOKEN)][1]] == [1, 2]

    old = [
        Change(ALICE, "stx", "stx", None, 3, Stamp(DAY0 - 40 * DAY)),  # January
        Change(ALICE, "stx", "stx", None, 5, Stamp(DAY0 - 10 * DAY)),  # February
    ]
    before = len(blobs.puts)
    await store.record_history(Principal.parse(ALICE), old)
    assert sorted(blobs.puts[before:]) == [store.month_key(ALICE, "2024-01"), month_key]
    loaded = await store.load(Principal.parse(ALICE))
    assert loaded is not None
    assert loaded.tokens["stx"].amount == 11  # backfill never changes the current amount
    assert await store.first_seen(Principal.parse(ALICE)) == at(DAY0 - 40 * DAY)


async def test_maintain_writes_one_snapshot_per_address_per_day() -> None:
    blobs = Recorder()
    wall = Clock(DAY0)
    store = SpecLayoutStore(blobs, wall_clock=wall)
    await store.apply(update(ALICE, DAY0 + 60, stx=10))
    await store.apply(update(BOB, DAY0 + 60, stx=20, tok=7))

    for day in range(3):
        wall.now = DAY0 + day * DAY + 23 * 3_600
        await store.apply(update(ALICE, wall.now - 60, stx=100 + day))
        before = len(blobs.puts_under("spec/snapshots/"))
        report = await store.maintain()
        assert len(blobs.puts_under("spec/snapshots/")) - before == 2
        assert report.blobs_written == 2
    await store.maintain(DAY0 + 2 * DAY + 23.5 * 3_600)  # again the same day: same blobs
    snapshots = await keys_under(blobs, "spec/snapshots/")
    days = [(at(DAY0) + timedelta(days=n)).date() for n in range(3)]
    assert snapshots == sorted(store.snapshot_key(a, d) for a in (ALICE, BOB) for d in days)

    key = store.snapshot_key(ALICE, days[1])
    snapshot = decode_balances((await blobs.get(key)).data, key)
    assert snapshot.tokens["stx"].amount == 101
    key = store.snapshot_key(BOB, days[2])
    snapshot = decode_balances((await blobs.get(key)).data, key)
    assert {k: s.amount for k, s in snapshot.tokens.items()} == {"stx": 20, TOKEN: 7}


async def test_series_agree_with_the_sharded_layout_on_the_same_workload() -> None:
    wall = Clock(DAY0)
    spec = SpecLayoutStore(Recorder(), wall_clock=wall)
    sharded = ShardedStore(
        MemoryBlobStore(), LsmSettings(shards=2), clock=Clock(1_000.0), wall_clock=wall
    )
    plan = {  # day -> [(hour, address, amounts)]
        0: [(1.5, ALICE, {"stx": 100, "tok": 5}), (9.25, BOB, {"stx": 7})],
        1: [(0.1, ALICE, {"stx": 90}), (12.0, ALICE, {"stx": 95}), (22.0, BOB, {"tok": 3})],
        2: [],
        3: [(5.0, ALICE, {"tok": 6}), (5.5, ALICE, {"tok": 5}), (18.0, BOB, {"stx": 8})],
        4: [(23.0, ALICE, {"stx": 0})],
        6: [(3.0, BOB, {"stx": 9, "tok": 4})],
    }
    days = 8
    for day in range(days):
        for hour, address, amounts in plan.get(day, []):
            moment = DAY0 + day * DAY + hour * 3_600
            wall.now = moment
            for layout in (spec, sharded):
                await layout.apply(update(address, moment, **amounts))
        wall.now = DAY0 + day * DAY + 23.9 * 3_600  # after the day's last change
        await spec.maintain()
        if day == 5:
            await sharded.maintain(wall.now)  # half compacted, half in the journal
    end_of_data = DAY0 + days * DAY - 1e-6

    raw_windows = [
        (DAY0 - DAY, end_of_data),
        (DAY0 + 1.2 * DAY, DAY0 + 3.4 * DAY),  # starts between changes
        (DAY0 + 3 * DAY + 5.25 * 3_600, DAY0 + 3 * DAY + 6 * 3_600),
        (DAY0 + 4.5 * DAY, DAY0 + 6.5 * DAY),  # across the month end, nothing in it for A
    ]
    for address in (ALICE, BOB):
        principal = Principal.parse(address)
        for low, high in raw_windows:
            start, end = at(low), at(high)
            from_spec = await spec.series(principal, start, end)
            from_sharded = await sharded.series(principal, start, end)
            assert from_spec == from_sharded, (address, start, end)
            for granularity in (Granularity.HOUR, Granularity.DAY):
                assert values(from_spec, start, end, granularity) == values(
                    from_sharded, start, end, granularity
                )
        for first, last in [(0, days - 1), (1, 3), (4, 6)]:
            start, end = at(DAY0 + first * DAY), at(DAY0 + (last + 1) * DAY - 1e-6)
            spec_daily = await spec.series(principal, start, end, resolution="daily")
            sharded_daily = await sharded.series(principal, start, end, resolution="daily")
            assert set(spec_daily) == set(sharded_daily)
            for granularity in (Granularity.DAY, Granularity.WEEK):
                from_spec_values = values(spec_daily, start, end, granularity)
                assert from_spec_values == values(sharded_daily, start, end, granularity)
    alice_days = values(
        await spec.series(Principal.parse(ALICE), at(DAY0), at(end_of_data), resolution="daily"),
        at(DAY0),
        at(end_of_data),
        Granularity.DAY,
    )
    assert alice_days["stx"] == [100, 95, 95, 95, 0, 0, 0, 0]
    assert alice_days[TOKEN] == [5, 5, 5, 5, 5, 5, 5, 5]


class Interleaved(Recorder):
    """Yields to the loop between a read and the write that follows it, so concurrent
    read-modify-writes of one blob really race."""

    async def get(self, key: str) -> Blob:
        blob = await super().get(key)
        await asyncio.sleep(0)
        return blob


async def test_two_writers_of_one_month_lose_no_point() -> None:
    blobs = Interleaved()
    wall = Clock(DAY0)
    first, second = (SpecLayoutStore(blobs, wall_clock=wall) for _ in range(2))
    alice = Principal.parse(ALICE)
    changes = [Change(ALICE, "stx", "stx", None, n, Stamp(DAY0 + n * 60, n)) for n in range(1, 11)]

    async def write(store: SpecLayoutStore, mine: list[Change]) -> None:
        for change in mine:
            await store.record_history(alice, [change])

    await asyncio.gather(write(first, changes[::2]), write(second, changes[1::2]))
    found = await first.series(alice, at(DAY0), at(DAY0 + DAY))
    assert [p.amount for p in found["stx"].points] == list(range(1, 11))


class FailingSeriesPuts(Recorder):
    """Fails the next ``failures`` puts of month blobs (a backend outage, or a writer
    that lost every conditional write)."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 0

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        mode: WriteMode = OVERWRITE,
        content_type: str = DEFAULT_CONTENT_TYPE,
    ) -> BlobInfo:
        if key.startswith("spec/series/") and self.failures > 0:
            self.failures -= 1
            raise BlobBackendError(f"injected failure writing {key}")
        return await super().put(key, data, mode=mode, content_type=content_type)


async def test_a_change_whose_month_write_failed_is_not_lost() -> None:
    """The current blob and the month blob are two writes. When the month write fails,
    the change must still reach the series (or the current blob must not move, so the
    next refresh sees the change again); otherwise the point is gone for good."""
    blobs = FailingSeriesPuts()
    store = SpecLayoutStore(blobs, wall_clock=Clock(DAY0 + DAY))
    alice = Principal.parse(ALICE)
    await store.apply(update(ALICE, DAY0 + 60, stx=10))
    blobs.failures = 1
    with pytest.raises(BlobBackendError):
        await store.apply(update(ALICE, DAY0 + 120, stx=20))
    await store.apply(update(ALICE, DAY0 + 180, stx=20))  # the next refresh: same amount
    found = await store.series(alice, at(DAY0), at(DAY0 + DAY))
    assert [p.amount for p in found["stx"].points] == [10, 20]
