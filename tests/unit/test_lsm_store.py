"""The sharded, journaled layout (``ShardedStore``) over memory blobs, with small shard counts.

Writes: one journal segment per ``apply_many`` with changes, nothing without.
Reads: shard blobs with the journal tail laid over them; a replica sees another's
segments when it polls (never before). Compaction (``maintain``) folds old
segments into current, month and daily blobs without changing any answer, also
when it races another compaction or crashes half-way. Time is injected: ``Clock``
objects stand in for ``time.monotonic`` and ``time.time``; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from balances.blobs import (
    DEFAULT_CONTENT_TYPE,
    OVERWRITE,
    Blob,
    BlobInfo,
    MemoryBlobStore,
    MeteredBlobStore,
    WriteMode,
)
from balances.domain import BalancePoint, Granularity, Principal
from balances.domain.current import AddressUpdate, Change, Stamp, TokenKindName
from balances.domain.series import bucketize, normalize, value_at
from balances.errors import (
    BlobBackendError,
    ConfigError,
    CorruptBlobError,
    PreconditionFailedError,
)
from balances.stores.encoding import encode_document
from balances.stores.layout import Resolution, SeriesSlice
from balances.stores.sharded.documents import decode_current, decode_daily, decode_month
from balances.stores.sharded.journal import decode_segment
from balances.stores.sharded.manifest import decode_manifest
from balances.stores.sharded.parts import LsmSettings, shard_of
from balances.stores.sharded.store import ShardedStore
from balances.testing import fake_address

ALICE, BOB, CAROL = (fake_address(f"lsm-{name}") for name in ("alice", "bob", "carol"))
ADDRESSES = (ALICE, BOB, CAROL)
TOKEN = f"{fake_address('lsm-deployer')}.lsm-token"
KINDS: dict[str, TokenKindName] = {"stx": "stx", TOKEN: "native"}
#: 2024-01-03T12:00:00Z: a Wednesday, two days into a month.
T0 = datetime(2024, 1, 3, 12, tzinfo=UTC).timestamp()
DAY = 86_400.0
SHARDS = 4
GRACE = 600.0


class Clock:
    """A clock that moves only when told to."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Recorder(MemoryBlobStore):
    """A memory store that logs every get/put key, can yield to the loop before each
    operation (so concurrent tasks interleave), and can fail its Nth put."""

    def __init__(self) -> None:
        super().__init__()
        self.gets: list[str] = []
        self.heads: list[str] = []
        self.puts: list[str] = []
        self.interleave = False
        self.fail_put_at: int | None = None
        self.fail_after_write = False
        self.conflicts = 0

    async def get(self, key: str) -> Blob:
        self.gets.append(key)
        if self.interleave:
            await asyncio.sleep(0)
        return await super().get(key)

    async def head(self, key: str) -> BlobInfo:
        self.heads.append(key)  # not a get: MemoryBlobStore.head reads through get
        return (await MemoryBlobStore.get(self, key)).info

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        mode: WriteMode = OVERWRITE,
        content_type: str = DEFAULT_CONTENT_TYPE,
    ) -> BlobInfo:
        self.puts.append(key)
        if self.interleave:
            await asyncio.sleep(0)
        crash = self.fail_put_at is not None and len(self.puts) == self.fail_put_at
        if crash and not self.fail_after_write:
            raise BlobBackendError(f"injected crash before put #{self.fail_put_at} ({key})")
        try:
            info = await super().put(key, data, mode=mode, content_type=content_type)
        except PreconditionFailedError:
            self.conflicts += 1
            raise
        if crash:
            raise BlobBackendError(f"injected crash after put #{self.fail_put_at} ({key})")
        return info

    def reset_log(self) -> None:
        self.gets.clear()
        self.heads.clear()
        self.puts.clear()

    def gets_under(self, prefix: str) -> list[str]:
        return [key for key in self.gets if key.startswith(prefix)]


@dataclass
class Rig:
    """A store under test, its blobs and clocks, and the ground truth of what it was told."""

    blobs: Any
    mono: Clock = field(default_factory=lambda: Clock(1_000.0))
    wall: Clock = field(default_factory=lambda: Clock(T0))
    settings: LsmSettings = field(
        default_factory=lambda: LsmSettings(shards=SHARDS, compact_grace_seconds=GRACE)
    )
    truth: dict[tuple[str, str], list[BalancePoint]] = field(default_factory=dict)

    def store(self, blobs: Any = None, **changes: Any) -> ShardedStore:
        """Another ShardedStore (a replica) on these blobs and clocks."""
        chosen = replace(self.settings, **changes)
        return ShardedStore(
            self.blobs if blobs is None else blobs, chosen, clock=self.mono, wall_clock=self.wall
        )

    async def apply(
        self, store: ShardedStore, at: float, amounts: dict[str, dict[str, int]]
    ) -> None:
        """One sync cycle at ``at``: ``{address: {token key: amount}}``, truth recorded."""
        self.wall.now = max(self.wall.now, at)
        updates = [
            AddressUpdate(
                address,
                Stamp(at, int(at // 10)),
                {key: (amount, KINDS[key]) for key, amount in tokens.items()},
            )
            for address, tokens in amounts.items()
        ]
        for outcome in await store.apply_many(updates):
            assert not isinstance(outcome, Exception), outcome
            for change in outcome.changes:
                self.truth.setdefault((change.address, change.key), []).append(change.point())

    def expected(self, address: str, start: datetime, end: datetime) -> dict[str, SeriesSlice]:
        """The raw slices every layout must answer, from the ground truth."""
        found = {}
        for (owner, key), points in self.truth.items():
            if owner != address:
                continue
            ordered = normalize(points)
            inside = tuple(p for p in ordered if start < p.at <= end)
            found[key] = SeriesSlice(KINDS[key], value_at(ordered, start), inside)
        return found


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def day_values(
    slices: dict[str, SeriesSlice], start: datetime, end: datetime, granularity: Granularity
) -> dict[str, list[int | None]]:
    """Bucket values of every slice (what a chart shows)."""
    return {
        key: [b.value for b in bucketize(s.points, start, end, granularity, opening=s.opening)]
        for key, s in slices.items()
    }


def day_window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """``[start, end]`` widened to whole UTC days (ending just before midnight): what a
    daily slice answers exactly (see ``test_a_daily_slice_ending_mid_day_...``)."""
    day_end = Granularity.DAY.floor(end) + timedelta(days=1, microseconds=-1)
    return Granularity.DAY.floor(start), day_end


async def keys_under(blobs: MemoryBlobStore, prefix: str) -> list[str]:
    return [key async for key in MemoryBlobStore.iter_keys(blobs, prefix)]


async def decoded_state(blobs: MemoryBlobStore) -> dict[str, object]:
    """Every blob of the layout, decoded (bytes could differ without meaning anything)."""
    decoders = {
        "current": decode_current,
        "month": decode_month,
        "daily": decode_daily,
        "manifest": decode_manifest,
        "journal": decode_segment,
    }
    state: dict[str, object] = {}
    for key in await keys_under(blobs, "v1/"):
        data = (await MemoryBlobStore.get(blobs, key)).data
        state[key] = decoders[key.split("/")[1]](data, key)
    return state


async def clone(source: MemoryBlobStore) -> Recorder:
    copy = Recorder()
    for key in await keys_under(source, ""):
        blob = await MemoryBlobStore.get(source, key)
        await MemoryBlobStore.put(copy, key, blob.data, content_type=blob.content_type or "")
    return copy


async def seed_workload(rig: Rig, store: ShardedStore) -> float:
    """Changes of three addresses over two months (Jan-Feb 2024); returns the last time."""
    moment = T0
    for step in range(12):
        moment = T0 + step * 4.5 * DAY + 3_600 * (step % 5)
        amounts = {
            ALICE: {"stx": 1_000 + 10 * step, TOKEN: 5 + step % 3},
            BOB: {"stx": 50 + (step // 2)},
        }
        if step % 4 == 0:
            amounts[CAROL] = {TOKEN: 2**100 + step}
        await rig.apply(store, moment, amounts)
    return moment


async def compacted_copy(rig: Rig) -> tuple[float, Recorder]:
    """Seed ``rig``'s blobs (uncompacted), and a clone of them compacted by one pass
    at the returned time: the state any other compaction must end in."""
    last = await seed_workload(rig, rig.store())
    now = last + GRACE + 1
    clean = await clone(rig.blobs)
    await rig.store(clean).maintain(now)
    return now, clean


WINDOWS = [
    (T0 - DAY, T0 + 60 * DAY),
    (T0 + 10 * DAY, T0 + 20 * DAY),
    (T0 + 27.5 * DAY, T0 + 33 * DAY),  # across the month end
    (T0 + 50 * DAY, T0 + 52 * DAY),
]


async def assert_answers(rig: Rig, store: ShardedStore) -> None:
    """``store`` answers every window exactly as the ground truth says."""
    for address in ADDRESSES:
        for low, high in WINDOWS:
            start, end = at(low), at(high)
            found = await store.series(Principal.parse(address), start, end)
            assert found == rig.expected(address, start, end), (address, start, end)
            day_start, day_end = day_window(start, end)
            daily = await store.series(
                Principal.parse(address), day_start, day_end, resolution="daily"
            )
            expected = rig.expected(address, day_start, day_end)
            for granularity in (Granularity.DAY, Granularity.WEEK):
                assert day_values(daily, day_start, day_end, granularity) == day_values(
                    expected, day_start, day_end, granularity
                )


# --- writes ------------------------------------------------------------------------


async def test_apply_many_writes_one_segment_per_call_and_nothing_without_changes() -> None:
    metered = MeteredBlobStore(MemoryBlobStore())
    rig = Rig(metered)
    store = rig.store()

    def puts() -> int:
        return metered.snapshot().operations["put"]

    await rig.apply(store, T0, {a: {"stx": 10, TOKEN: 3} for a in ADDRESSES})
    assert puts() == 2  # the manifest (first write of the store) + one segment
    assert len(await keys_under(metered.inner, "v1/journal/")) == 1

    before = puts()
    await rig.apply(store, T0 + 60, {ALICE: {"stx": 11}, BOB: {"stx": 12}, CAROL: {TOKEN: 4}})
    assert puts() - before == 1
    assert len(await keys_under(metered.inner, "v1/journal/")) == 2

    before = puts()
    await rig.apply(store, T0 + 120, {ALICE: {"stx": 11}, BOB: {"stx": 12}})  # nothing moved
    await rig.apply(store, T0 + 180, {})
    assert puts() - before == 0
    assert len(await keys_under(metered.inner, "v1/journal/")) == 2


async def test_load_after_apply_returns_the_merged_balances() -> None:
    rig = Rig(MemoryBlobStore())
    store = rig.store()
    await rig.apply(store, T0, {ALICE: {"stx": 100, TOKEN: 5}})
    await rig.apply(store, T0 + 60, {ALICE: {"stx": 120}})
    loaded = await store.load(Principal.parse(ALICE))
    assert loaded is not None
    assert {k: s.amount for k, s in loaded.tokens.items()} == {"stx": 120, TOKEN: 5}
    assert loaded.tokens["stx"].stamp == Stamp(T0 + 60, int((T0 + 60) // 10))
    assert loaded.tokens[TOKEN].stamp.at == T0
    assert await store.load(Principal.parse(BOB)) is None
    many = await store.load_many([Principal.parse(ALICE), Principal.parse(BOB)])
    assert many[BOB] is None
    assert many[ALICE] == loaded


async def test_a_replica_sees_writes_only_after_it_polls_with_one_list_per_poll() -> None:
    metered = MeteredBlobStore(MemoryBlobStore())
    rig = Rig(metered)
    writer = rig.store()
    reader_clock = Clock(1_000.0)
    reader = ShardedStore(metered, rig.settings, clock=reader_clock, wall_clock=rig.wall)
    alice = Principal.parse(ALICE)

    def lists() -> int:
        return metered.snapshot().operations["list"]

    assert await reader.load(alice) is None  # its first poll: nothing yet
    await rig.apply(writer, T0, {ALICE: {"stx": 7}})

    before = lists()
    assert await reader.load(alice) is None  # not polled again yet
    assert await reader.series(alice, at(T0 - 60), at(T0 + 60)) == {}
    assert lists() == before

    reader_clock.now += rig.settings.poll_seconds - 1
    assert await reader.load(alice) is None
    assert lists() == before

    reader_clock.now += 1
    found = await asyncio.gather(*(reader.load(alice) for _ in range(5)))
    assert lists() - before == 1  # five concurrent reads, one poll
    assert all(f is not None and f.tokens["stx"].amount == 7 for f in found)
    series = await reader.series(alice, at(T0 - 60), at(T0 + 60))
    assert series["stx"].points == (BalancePoint(at(T0), 7, int(T0 // 10)),)

    await rig.apply(writer, T0 + 30, {ALICE: {"stx": 8}})
    before = lists()
    await reader.poll(force=True)
    assert lists() - before == 1
    loaded = await reader.load(alice)
    assert loaded is not None
    assert loaded.tokens["stx"].amount == 8


# --- compaction ----------------------------------------------------------------------


async def test_maintain_folds_old_segments_and_answers_stay_the_same() -> None:
    blobs = Recorder()
    rig = Rig(blobs)
    store = rig.store()
    last = await seed_workload(rig, store)
    await assert_answers(rig, store)
    segments = await keys_under(blobs, "v1/journal/")
    assert len(segments) == 12

    report = await store.maintain(last + GRACE + 1)
    assert report.segments_folded == 12
    assert await keys_under(blobs, "v1/journal/") == []
    manifest = await store.manifest.current()
    assert manifest.folded_through == segments[-1].rpartition("/")[2]
    assert manifest.shards == SHARDS
    shards = {shard_of(a, SHARDS) for a in ADDRESSES}
    current = await keys_under(blobs, "v1/current/")
    assert current == sorted(f"v1/current/{s:03x}" for s in shards)
    assert await keys_under(blobs, "v1/daily/") == sorted(f"v1/daily/{s:03x}" for s in shards)
    months = {key.split("/")[2] for key in await keys_under(blobs, "v1/month/")}
    assert months == {"2024-01", "2024-02"}
    for key in current:
        doc = decode_current((await MemoryBlobStore.get(blobs, key)).data, key)
        assert doc.folded_through == manifest.folded_through

    await assert_answers(rig, store)
    await assert_answers(rig, rig.store())  # a cold replica reads the blobs alone
    for address in ADDRESSES:
        loaded = await rig.store().load(Principal.parse(address))
        assert loaded is not None
        for key, state in loaded.tokens.items():
            assert state.amount == normalize(rig.truth[(address, key)])[-1].amount

    again = await store.maintain(last + GRACE + 1)
    assert (again.segments_folded, again.blobs_written) == (0, 0)


async def test_segments_within_the_grace_period_are_left() -> None:
    blobs = Recorder()
    rig = Rig(blobs)
    store = rig.store()
    await rig.apply(store, T0, {ALICE: {"stx": 1}})
    await rig.apply(store, T0 + 500, {ALICE: {"stx": 2}, BOB: {"stx": 3}})
    young = (await keys_under(blobs, "v1/journal/"))[1]

    report = await store.maintain(T0 + GRACE + 100)
    assert report.segments_folded == 1
    assert await keys_under(blobs, "v1/journal/") == [young]
    for reader in (store, rig.store()):
        loaded = await reader.load(Principal.parse(ALICE))
        assert loaded is not None
        assert loaded.tokens["stx"].amount == 2
        assert await reader.series(Principal.parse(ALICE), at(T0 - 1), at(T0 + 600)) == (
            rig.expected(ALICE, at(T0 - 1), at(T0 + 600))
        )

    report = await store.maintain(T0 + 500 + GRACE)
    assert report.segments_folded == 1
    assert await keys_under(blobs, "v1/journal/") == []
    loaded = await rig.store().load(Principal.parse(BOB))
    assert loaded is not None
    assert loaded.tokens["stx"].amount == 3


async def test_two_concurrent_compactions_end_like_one() -> None:
    blobs = Recorder()
    rig = Rig(blobs)
    now, alone = await compacted_copy(rig)

    blobs.interleave = True
    first, second = rig.store(), rig.store()
    await asyncio.gather(first.maintain(now), second.maintain(now))
    blobs.interleave = False
    assert blobs.conflicts > 0  # they did race for the same blobs
    assert await decoded_state(blobs) == await decoded_state(alone)
    await assert_answers(rig, rig.store())


@pytest.mark.parametrize("after_write", [False, True], ids=["put-lost", "reply-lost"])
async def test_a_compaction_that_crashes_midway_loses_nothing(after_write: bool) -> None:
    base = Recorder()
    rig = Rig(base)
    now, clean = await compacted_copy(rig)
    clean_state = await decoded_state(clean)
    puts_in_a_pass = len(clean.puts)
    assert puts_in_a_pass >= 5

    for nth in range(1, puts_in_a_pass + 1):
        blobs = await clone(base)
        blobs.reset_log()
        blobs.fail_put_at, blobs.fail_after_write = nth, after_write
        with pytest.raises(BlobBackendError):
            await rig.store(blobs).maintain(now)
        blobs.fail_put_at = None
        await assert_answers(rig, rig.store(blobs))  # nothing is lost meanwhile
        await rig.store(blobs).maintain(now)
        assert await decoded_state(blobs) == clean_state, f"crash at put {nth}"


SHARD_BLOBS = ("v1/current/", "v1/daily/", "v1/month/")


async def test_a_compaction_rewrites_the_blobs_it_wrote_without_downloading_them() -> None:
    blobs = Recorder()
    rig = Rig(blobs)
    store = rig.store()
    last = await seed_workload(rig, store)
    await store.maintain(last + GRACE + 1)
    later = last + DAY
    await rig.apply(store, later, {ALICE: {"stx": 7}, BOB: {"stx": 8}, CAROL: {TOKEN: 9}})
    blobs.reset_log()

    report = await store.maintain(later + GRACE + 1)
    assert report.segments_folded == 1
    assert report.blobs_written > 0
    assert [key for key in blobs.gets if key.startswith(SHARD_BLOBS)] == []
    assert blobs.heads != []  # the month before the pass's first: checked, not downloaded
    assert blobs.conflicts == 0
    await assert_answers(rig, rig.store())  # what it wrote is complete for a cold reader


async def test_a_blob_another_replica_rewrote_is_read_again_never_overwritten() -> None:
    blobs = Recorder()
    rig = Rig(blobs)
    first, second = rig.store(), rig.store()
    last = await seed_workload(rig, first)
    await first.maintain(last + GRACE + 1)
    # The other replica compacts its own change into the same shard blobs ...
    await rig.apply(second, last + DAY, {ALICE: {"stx": 70}, CAROL: {TOKEN: 90}})
    await second.maintain(last + DAY + GRACE + 1)
    # ... so the first one's copies are stale: its If-Match fails and it reads again.
    await rig.apply(first, last + 2 * DAY, {ALICE: {TOKEN: 71}, BOB: {"stx": 80}})
    blobs.reset_log()
    conflicts = blobs.conflicts
    await first.maintain(last + 2 * DAY + GRACE + 1)
    assert blobs.conflicts > conflicts
    assert [key for key in blobs.gets if key.startswith(SHARD_BLOBS)] != []
    await assert_answers(rig, rig.store())  # both replicas' changes are in the blobs


async def test_a_compaction_whose_reply_was_lost_recovers_in_the_same_process() -> None:
    base = Recorder()
    rig = Rig(base)
    now, clean = await compacted_copy(rig)
    for nth in range(1, len(clean.puts) + 1):
        blobs = await clone(base)
        blobs.reset_log()
        blobs.fail_put_at, blobs.fail_after_write = nth, True
        store = rig.store(blobs)
        with pytest.raises(BlobBackendError):
            await store.maintain(now)
        blobs.fail_put_at = None
        await store.maintain(now)  # its remembered copies must not mislead it
        assert await decoded_state(blobs) == await decoded_state(clean), f"reply lost at {nth}"


async def test_random_updates_over_days_answer_the_same_before_and_after_compaction() -> None:
    await check_random_workload(random.Random(7), cycles=40)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(seed=st.integers(0, 2**32 - 1), cycles=st.integers(1, 30))
def test_property_compaction_never_changes_an_answer(seed: int, cycles: int) -> None:
    asyncio.run(check_random_workload(random.Random(seed), cycles=cycles))


async def check_random_workload(rng: random.Random, *, cycles: int) -> None:
    """Random updates over simulated days; series before, between and after two
    compactions (and on a cold replica) agree with each other and the truth."""
    rig = Rig(Recorder())
    store = rig.store()
    moment = T0
    checkpoint = rng.randrange(cycles)
    for cycle in range(cycles):
        moment += rng.choice([60, 900, 3_600, 0.4 * DAY, DAY, 2.5 * DAY])
        chosen = rng.sample(ADDRESSES, rng.randint(1, 3))
        amounts = {
            a: {key: rng.randint(0, 3) for key in rng.sample(list(KINDS), rng.randint(1, 2))}
            for a in chosen
        }
        await rig.apply(store, moment, amounts)
        if cycle == checkpoint:
            await store.maintain(moment + GRACE + 1 - rng.choice([0, 3_600]))
    windows = _random_windows(rng, T0, moment)
    before = await _answers(store, windows)
    assert before == _expected_answers(rig, windows)
    await store.maintain(moment + GRACE + 1)
    assert await keys_under(rig.blobs, "v1/journal/") == []
    assert await _answers(store, windows) == before
    assert await _answers(rig.store(), windows) == before


def _random_windows(rng: random.Random, low: float, high: float) -> list[tuple[float, float]]:
    windows = [(low - DAY, high + DAY), (low, high)]
    for _ in range(3):
        a, b = sorted(rng.uniform(low - DAY, high + DAY) for _ in range(2))
        windows.append((a, b))
    return windows


Answers = dict[tuple[str, float, float, str], object]


async def _answers(store: ShardedStore, windows: Sequence[tuple[float, float]]) -> Answers:
    """Raw slices and daily/weekly chart values of every address and window."""
    found: Answers = {}
    for address in ADDRESSES:
        principal = Principal.parse(address)
        for low, high in windows:
            start, end = at(low), at(high)
            found[(address, low, high, "raw")] = await store.series(principal, start, end)
            day_start, day_end = day_window(start, end)
            daily = await store.series(principal, day_start, day_end, resolution="daily")
            for granularity in (Granularity.DAY, Granularity.WEEK):
                found[(address, low, high, granularity.value)] = day_values(
                    daily, day_start, day_end, granularity
                )
    return found


def _expected_answers(rig: Rig, windows: Sequence[tuple[float, float]]) -> Answers:
    found: Answers = {}
    for address in ADDRESSES:
        for low, high in windows:
            start, end = at(low), at(high)
            found[(address, low, high, "raw")] = rig.expected(address, start, end)
            day_start, day_end = day_window(start, end)
            daily = rig.expected(address, day_start, day_end)
            for granularity in (Granularity.DAY, Granularity.WEEK):
                found[(address, low, high, granularity.value)] = day_values(
                    daily, day_start, day_end, granularity
                )
    return found


@pytest.mark.parametrize(
    ("change_at", "end_at"),
    [(7 * 3_600, 14 * 3_600), (0, 0)],
    ids=["end-at-14h-change-at-7h", "end-and-change-at-midnight"],
)
async def test_a_daily_slice_ending_mid_day_keeps_the_value_at_its_end(
    change_at: float, end_at: float
) -> None:
    """A day chart whose window ends inside a day (an explicit ``to`` in the past) must
    show the amount in force at that end in its last bucket, before and after
    compaction. The rollup keeps only each day's close, stamped with the time of the
    day's last change; when that is after the window's end, the slice drops it and,
    with it, every change of that day up to the end."""
    rig = Rig(Recorder())
    store = rig.store()
    day = datetime(2024, 1, 9, tzinfo=UTC).timestamp()
    await rig.apply(store, day - DAY + 3_600, {ALICE: {"stx": 2}})
    await rig.apply(store, day + change_at, {ALICE: {"stx": 3}})
    await rig.apply(store, day + 18 * 3_600, {ALICE: {"stx": 0}})  # 18:00, after the end
    start, end = at(day - 2 * DAY), at(day + end_at)
    expected = day_values(rig.expected(ALICE, start, end), start, end, Granularity.DAY)
    assert expected["stx"][-1] == 3
    before = await store.series(Principal.parse(ALICE), start, end, resolution="daily")
    assert day_values(before, start, end, Granularity.DAY) == expected
    await store.maintain(day + 2 * DAY)
    after = await rig.store().series(Principal.parse(ALICE), start, end, resolution="daily")
    assert day_values(after, start, end, Granularity.DAY) == expected


# --- retention and bounds --------------------------------------------------------------


async def test_retention_deletes_old_months_and_folds_old_days_into_openings() -> None:
    blobs = Recorder()
    rig = Rig(blobs, settings=LsmSettings(shards=SHARDS, compact_grace_seconds=GRACE))
    store = rig.store()
    start = datetime(2024, 1, 10, 9, tzinfo=UTC).timestamp()
    # One change every 10 days for 430 days: Jan 2024 to March 2025.
    for step in range(44):
        await rig.apply(store, start + step * 10 * DAY, {ALICE: {"stx": 100 + step}})
    now = start + 430 * DAY + 3_600
    rig.wall.now = now
    await store.maintain(now)

    boundary = at(now) - timedelta(days=365)
    first_kept = f"{boundary.year:04d}-{boundary.month:02d}"
    months = sorted({key.split("/")[2] for key in await keys_under(blobs, "v1/month/")})
    assert months
    assert months[0] == first_kept
    assert "2024-01" not in months

    daily_key = f"v1/daily/{shard_of(ALICE, SHARDS):03x}"
    daily = decode_daily((await MemoryBlobStore.get(blobs, daily_key)).data, daily_key)
    series = daily.series[(ALICE, "stx")]
    assert daily.start_day == boundary.date().toordinal()
    assert all(close.day >= daily.start_day for close in series.days)
    truth = normalize(rig.truth[(ALICE, "stx")])
    chart_start = Granularity.DAY.floor(boundary)
    assert series.opening == value_at(truth, chart_start)

    cold = rig.store()
    year = await cold.series(Principal.parse(ALICE), chart_start, at(now), resolution="daily")
    assert year["stx"].opening == value_at(truth, chart_start) is not None
    values = day_values(year, chart_start, at(now), Granularity.DAY)["stx"]
    expected = day_values(
        rig.expected(ALICE, chart_start, at(now)), chart_start, at(now), Granularity.DAY
    )["stx"]
    assert values == expected
    assert values[0] is not None
    assert values[-1] == truth[-1].amount


async def test_max_points_per_month_bounds_a_month_blob_and_keeps_the_newest() -> None:
    blobs = Recorder()
    rig = Rig(blobs, settings=LsmSettings(shards=SHARDS, max_points_per_month=5))
    store = rig.store()
    start = datetime(2024, 3, 2, tzinfo=UTC).timestamp()
    for step in range(30):
        await rig.apply(store, start + step * 7 * 3_600 + 420, {ALICE: {"stx": step + 1}})
    newest = normalize(rig.truth[(ALICE, "stx")])[-1]
    await store.maintain(start + 31 * DAY)

    key = f"v1/month/2024-03/{shard_of(ALICE, SHARDS):03x}"
    month = decode_month((await MemoryBlobStore.get(blobs, key)).data, key)
    kind, points = month.series[(ALICE, "stx")]
    assert kind == "stx"
    assert 1 <= len(points) <= 5
    assert points[-1] == newest
    found = await rig.store().series(Principal.parse(ALICE), at(start - 1), at(start + 31 * DAY))
    assert found["stx"].points[-1] == newest
    assert len(found["stx"].points) <= 5
    loaded = await rig.store().load(Principal.parse(ALICE))
    assert loaded is not None
    assert loaded.tokens["stx"].amount == newest.amount == 30


async def test_record_history_adds_old_points_without_touching_current_amounts() -> None:
    blobs = Recorder()
    rig = Rig(blobs)
    store = rig.store()
    now = datetime(2024, 3, 15, 12, tzinfo=UTC).timestamp()
    await rig.apply(store, now, {ALICE: {"stx": 500, TOKEN: 9}})
    old = [
        Change(ALICE, "stx", "stx", None, 100, Stamp(now - 70 * DAY, 1)),  # January
        Change(ALICE, "stx", "stx", None, 300, Stamp(now - 40 * DAY, 2)),  # February
        Change(ALICE, TOKEN, "native", None, 4, Stamp(now - 40 * DAY, 2)),
    ]
    alice = Principal.parse(ALICE)
    await store.record_history(alice, old)
    for change in old:
        rig.truth[(ALICE, change.key)].append(change.point())

    async def check(reader: ShardedStore) -> None:
        loaded = await reader.load(alice)
        assert loaded is not None
        assert {k: s.amount for k, s in loaded.tokens.items()} == {"stx": 500, TOKEN: 9}
        assert loaded.tokens["stx"].stamp.at == now
        window = (at(now - 90 * DAY), at(now + 60))
        found = await reader.series(alice, *window)
        assert found == rig.expected(ALICE, *window)
        assert [p.amount for p in found["stx"].points] == [100, 300, 500]
        assert found["stx"].points[0].at == at(now - 70 * DAY)
        assert await reader.first_seen(alice) == at(now - 70 * DAY)
        mid = await reader.series(alice, at(now - 50 * DAY), at(now - 45 * DAY))
        assert mid["stx"] == SeriesSlice("stx", 100, ())

    await check(store)
    await store.maintain(now + DAY)
    assert {key.split("/")[2] for key in await keys_under(blobs, "v1/month/")} == {
        "2024-01",
        "2024-02",
        "2024-03",
    }
    await check(store)
    await check(rig.store())


# --- configuration and damage --------------------------------------------------------


async def test_a_different_shard_count_than_the_manifest_is_a_config_error() -> None:
    blobs = Recorder()
    rig = Rig(blobs)
    await rig.apply(rig.store(), T0, {ALICE: {"stx": 1}})
    segments = await keys_under(blobs, "v1/journal/")
    other = rig.store(shards=SHARDS * 2)
    with pytest.raises(ConfigError, match=str(SHARDS)):
        await other.load(Principal.parse(ALICE))
    with pytest.raises(ConfigError):
        await other.series(Principal.parse(ALICE), at(T0 - 1), at(T0 + 1))
    with pytest.raises(ConfigError):
        await other.apply(AddressUpdate(BOB, Stamp(T0 + 5), {"stx": (2, "stx")}))
    with pytest.raises(ConfigError):
        await other.maintain(T0 + DAY)
    assert await keys_under(blobs, "v1/journal/") == segments


@pytest.mark.parametrize("kind", ["current", "month", "daily"])
@pytest.mark.parametrize("damage", ["garbage", "wrong-kind", "malformed"])
async def test_corrupt_shard_blobs_raise_corrupt_blob_error(kind: str, damage: str) -> None:
    blobs = Recorder()
    rig = Rig(blobs)
    store = rig.store()
    await rig.apply(store, T0, {ALICE: {"stx": 1}})
    await store.maintain(T0 + DAY)
    shard = shard_of(ALICE, SHARDS)
    key = {
        "current": f"v1/current/{shard:03x}",
        "month": f"v1/month/2024-01/{shard:03x}",
        "daily": f"v1/daily/{shard:03x}",
    }[kind]
    document = {"current": "shard-current", "month": "series-month", "daily": "series-daily"}
    data = {
        "garbage": b"\x00not a document",
        "wrong-kind": encode_document("journal-segment", 1, {}),
        "malformed": encode_document(
            document[kind], 1, {"folded_through": None, "series": 7, "addresses": 7}
        ),
    }[damage]
    await blobs.put(key, data)
    reader = rig.store()
    resolution: Resolution = "daily" if kind == "daily" else "raw"  # raw reads no rollup
    with pytest.raises(CorruptBlobError):
        await reader.series(Principal.parse(ALICE), at(T0 - 1), at(T0 + 1), resolution=resolution)
    assert (await blobs.get(key)).data == data  # never overwritten


# --- read costs ----------------------------------------------------------------------


async def test_months_without_a_blob_cost_one_get_once() -> None:
    blobs = Recorder()
    metered = MeteredBlobStore(blobs)
    rig = Rig(metered)
    store = rig.store()
    march = datetime(2024, 3, 5, tzinfo=UTC).timestamp()
    await rig.apply(store, march, {ALICE: {"stx": 1}})
    await store.maintain(march + DAY)
    shard = shard_of(ALICE, SHARDS)
    window = (at(datetime(2023, 11, 20, tzinfo=UTC).timestamp()), at(march + DAY))
    months = [f"v1/month/{m}/{shard:03x}" for m in ("2023-11", "2023-12", "2024-01", "2024-02")]

    reader = rig.store()
    blobs.reset_log()
    first = await reader.series(Principal.parse(ALICE), *window)
    assert first["stx"].points[0].amount == 1
    for key in months:
        assert blobs.gets.count(key) == 1, key
    gets = metered.snapshot().operations["get"]
    second = await reader.series(Principal.parse(ALICE), *window)
    assert second == first
    assert metered.snapshot().operations["get"] == gets  # absent months are remembered
    for key in months:
        assert blobs.gets.count(key) == 1, key


async def test_cold_read_costs_of_a_year_daily_and_a_month_raw_series() -> None:
    """Counted: GETs by key on a replica that has read nothing yet, after compaction
    (no journal segments left). Series blobs are ``month/`` and ``daily/`` keys; a
    cold read also GETs the manifest and the address's shard ``current/`` blob, and
    LISTs the journal once."""
    blobs = Recorder()
    metered = MeteredBlobStore(blobs)
    rig = Rig(metered)
    store = rig.store()
    start = datetime(2024, 1, 1, 8, tzinfo=UTC).timestamp()
    for step in range(0, 380, 2):
        await rig.apply(store, start + step * DAY, {ALICE: {"stx": step, TOKEN: step % 7}})
    now = start + 381 * DAY
    rig.wall.now = now
    await store.maintain(now)
    alice = Principal.parse(ALICE)

    def series_gets() -> list[str]:
        return blobs.gets_under("v1/month/") + blobs.gets_under("v1/daily/")

    blobs.reset_log()
    lists = metered.snapshot().operations["list"]
    year_start = Granularity.DAY.floor(at(now) - timedelta(days=365))
    year = await rig.store().series(alice, year_start, at(now), resolution="daily")
    # The daily rollup, and the end's month for the changes of the end's own day.
    assert sorted(series_gets()) == sorted(
        [
            f"v1/daily/{shard_of(ALICE, SHARDS):03x}",
            f"v1/month/{at(now):%Y-%m}/{shard_of(ALICE, SHARDS):03x}",
        ]
    )
    assert blobs.gets_under("v1/current/") == [f"v1/current/{shard_of(ALICE, SHARDS):03x}"]
    assert blobs.gets_under("v1/manifest") == ["v1/manifest"]
    assert blobs.gets_under("v1/journal/") == []
    assert metered.snapshot().operations["list"] - lists == 1
    assert day_values(year, year_start, at(now), Granularity.DAY) == day_values(
        rig.expected(ALICE, year_start, at(now)), year_start, at(now), Granularity.DAY
    )

    blobs.reset_log()
    month_start = at(now) - timedelta(days=30)
    month = await rig.store().series(alice, month_start, at(now))
    assert len(series_gets()) <= 3  # the daily rollup and the (at most two) months
    assert len(blobs.gets_under("v1/month/")) == 2
    assert len(blobs.gets_under("v1/current/")) == 1
    assert month == rig.expected(ALICE, month_start, at(now))


async def test_a_failed_segment_write_loses_nothing() -> None:
    """A cycle whose segment could not be written reports the error per address; the
    change is not taken as stored, so the next refresh writes it."""
    blobs = Recorder()
    rig = Rig(blobs)
    store = rig.store()
    alice = Principal.parse(ALICE)
    await rig.apply(store, T0, {ALICE: {"stx": 1}})
    blobs.fail_put_at = len(blobs.puts) + 1
    (outcome,) = await store.apply_many(
        [AddressUpdate(ALICE, Stamp(T0 + 60, 1), {"stx": (2, "stx")})]
    )
    assert isinstance(outcome, BlobBackendError)
    blobs.fail_put_at = None
    await rig.apply(store, T0 + 120, {ALICE: {"stx": 2}})
    for reader in (store, rig.store()):
        found = await reader.series(alice, at(T0 - 1), at(T0 + 600))
        assert [(p.at, p.amount) for p in found["stx"].points] == [(at(T0), 1), (at(T0 + 120), 2)]
