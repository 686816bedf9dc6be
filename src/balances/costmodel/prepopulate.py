"""Steady state before the measured month: months of history, written by each
layout's own write path.

Replaying 11 months through ``apply_many`` (96,000 cycles) would take hours, so
history goes in the way a backfill writes it:

- **sharded**: per month, one ``record_history`` per address (one journal segment
  each) and a ``maintain()`` that folds them into the shard, month and daily blobs;
  compacting month by month is also how the blobs grew in production;
- **spec**: the first sync through ``apply_many`` (current blobs and the first
  points), each month's points through ``record_history`` (one rewrite of each
  address's month blob), and the daily snapshots through ``maintain()`` once per
  simulated day, with the current blobs brought to each day's balances first (by
  the layout's own :class:`~balances.stores.spec.address_blobs.AddressBlobBalanceStore`).

Writing 335 days of snapshots takes a second per 1,000 address-days (a blob decode
and encode each), so by default only the last ``snapshot_days`` days get real
snapshots; the earlier ones are *extrapolated*: their storage at the mean measured
snapshot size, and each read of one (a GET that finds nothing, billed like a hit)
as a download of that size. Operation counts are exact either way; against a full
pre-population (39 addresses, 11 months) storage and transfer agree within 0.1 %.
Both layouts end the pre-population with one full sync (the listing stamps).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import pairwise

from balances.costmodel.fleet import Event, Fleet, changes_between
from balances.costmodel.rig import SimClock
from balances.costmodel.workload import DAY, Plan, Workload
from balances.domain.current import AddressUpdate, Change, Merged
from balances.errors import BalancesError
from balances.stores.layout import CurrentBalanceStore
from balances.stores.sharded.store import ShardedStore
from balances.stores.spec.address_blobs import AddressBlobBalanceStore
from balances.stores.spec.store import PREFIX as SPEC_PREFIX
from balances.stores.spec.store import SpecLayoutStore

HOUR = 3_600


@dataclass(frozen=True, slots=True)
class History:
    """What the pre-population wrote: history from ``begin``; daily snapshots (spec)
    really written from ``snapshots_from`` on, extrapolated before it."""

    begin: float
    snapshots_from: float

    @property
    def skipped_days(self) -> int:
        return round((self.snapshots_from - self.begin) / DAY)

    def skipped(self, day: date) -> bool:
        return _day(self.begin) <= day < _day(self.snapshots_from)


def _day(moment: float) -> date:
    return datetime.fromtimestamp(moment, UTC).date()


def history_months(workload: Workload) -> list[tuple[float, float]]:
    """The ``prepopulated_months`` calendar months before the measured month."""
    starts: list[datetime] = []
    year, month = workload.month_start.year, workload.month_start.month
    for _ in range(workload.prepopulated_months):
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
        starts.append(datetime(year, month, 1, tzinfo=UTC))
    bounds = [*reversed(starts), workload.month_start]
    return [(a.timestamp(), b.timestamp()) for a, b in pairwise(bounds)]


def history_begin(workload: Workload) -> float:
    months = history_months(workload)
    return months[0][0] if months else workload.month_start.timestamp() - HOUR


async def apply_all(store: CurrentBalanceStore, updates: Sequence[AddressUpdate]) -> list[Merged]:
    """``apply_many`` that fails loudly: a cost model must not price failed writes."""
    merged: list[Merged] = []
    for result in await store.apply_many(updates):
        if isinstance(result, BalancesError):
            raise result
        merged.append(result)
    return merged


def month_changes(
    fleet: Fleet, start: float, end: float, workload: Workload
) -> Iterator[tuple[Event, Change]]:
    """The month's changes, oldest first, applied to ``fleet`` as they are yielded."""
    per_day, interval = workload.changes_per_address_per_day, workload.sync_interval_seconds
    for event in changes_between(fleet, start, end, per_day, interval):
        yield event, fleet.change(event.address, event.token, event.at)


async def prepopulate_sharded(
    store: ShardedStore, fleet: Fleet, plan: Plan, clock: SimClock
) -> History:
    w = plan.workload
    begin = history_begin(w)
    for number, (start, end) in enumerate(history_months(w)):
        points = [fleet.creation(i, start) if number == 0 else [] for i in fleet.indices]
        for event, change in month_changes(fleet, start, end, w):
            points[event.address].append(change)
        clock.set(end - 2 * HOUR)
        for index, changes in enumerate(points):
            await store.record_history(fleet.principals[index], changes)
        clock.set(end - HOUR)
        await store.maintain(clock.now)
    await _last_sync(store, fleet, plan, clock)
    return History(begin, begin)


async def _last_sync(store: CurrentBalanceStore, fleet: Fleet, plan: Plan, clock: SimClock) -> None:
    """The sync just before the month: every address, with a complete listing."""
    clock.set(plan.workload.month_start.timestamp() - plan.workload.sync_interval_seconds)
    await apply_all(store, [fleet.update(i, clock.now) for i in fleet.indices])


async def prepopulate_spec(
    layout: SpecLayoutStore, fleet: Fleet, plan: Plan, clock: SimClock, snapshot_days: int | None
) -> History:
    w = plan.workload
    begin = history_begin(w)
    month_start = w.month_start.timestamp()
    snapshots_from = (
        begin if snapshot_days is None else max(begin, month_start - snapshot_days * DAY)
    )
    history = History(begin, snapshots_from)
    current = AddressBlobBalanceStore(layout.blobs, prefix=f"{SPEC_PREFIX}/current")
    clock.set(begin)
    created = await apply_all(current, [fleet.update(i, begin) for i in fleet.indices])
    points = [list(merged.changes) for merged in created]
    writer = _SnapshotWriter(layout, current, fleet, clock, w.sync_interval_seconds)
    for start, end in history_months(w):
        for event, change in month_changes(fleet, start, end, w):
            await writer.until(event.at, snapshots_from)
            points[event.address].append(change)
            writer.dirty.add(event.address)
        await writer.until(end, snapshots_from)
        await _record_months(layout, fleet, points)
    await writer.flush(month_start - w.sync_interval_seconds)
    return history


async def _record_months(layout: SpecLayoutStore, fleet: Fleet, points: list[list[Change]]) -> None:
    for index, changes in enumerate(points):
        await layout.record_history(fleet.principals[index], changes)
        changes.clear()


class _SnapshotWriter:
    """Takes the spec layout's daily snapshot at the end of each day (23:55, the
    day's last sync), after bringing the changed addresses' current blobs up to date."""

    def __init__(
        self,
        layout: SpecLayoutStore,
        current: AddressBlobBalanceStore,
        fleet: Fleet,
        clock: SimClock,
        interval: int,
    ) -> None:
        self.layout, self.current, self.fleet, self.clock = layout, current, fleet, clock
        self.interval = interval
        self.dirty: set[int] = set()
        self.next_day = _next_midnight(clock.now)

    async def until(self, moment: float, snapshots_from: float) -> None:
        """Take every snapshot of the days that end at or before ``moment``."""
        while self.next_day <= moment:
            if self.next_day > snapshots_from:
                at = self.next_day - self.interval
                await self.flush(at)
                await self.layout.maintain(at)
            self.next_day += DAY

    async def flush(self, at: float) -> None:
        self.clock.set(max(self.clock.now, at))
        updates = [self.fleet.update(i, at) for i in sorted(self.dirty)]
        await apply_all(self.current, updates)
        self.dirty.clear()


def _next_midnight(moment: float) -> float:
    return (int(moment) // DAY + 1) * DAY
