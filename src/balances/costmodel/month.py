"""The measured month: 8,640 sync cycles, a maintenance pass a day, and the reads.

Each cycle passes the addresses whose balances changed in it to
``layout.apply_many`` in one call (``Workload.apply_batch`` splits it the way
``balances.scheduler`` does, one call per ``sync_concurrency`` addresses: one
journal segment each, which the sharded layout pays for). A real sync refreshes
*every* tracked address each cycle; the unchanged ones are not replayed one by one
(10,000 x 8,640 merges a month), because what they cost is known: nothing in the
spec layout (its current store remembers each address's blob and skips the write;
``tests/unit/test_costmodel.py`` checks it), and in the sharded layout one
revalidation (a HEAD) per shard per cycle, the shard blob's recheck interval being
the sync interval. So each cycle also refreshes one unchanged address per shard:
exactly the sharded layout's cost of the other refreshes, and free in the spec's.
That refresh re-reads one token only (:meth:`Fleet.unchanged`): the blob operations
of an unchanged refresh do not depend on how many tokens it re-read, and merging
100 tokens for nothing would double the run time.

Reads are spread uniformly over the month at random addresses (cold for the store:
the service's own caches would absorb repeats, the store's do what they do):
``load`` for a balance, a 30-day raw ``series`` of one token for an hourly chart,
and a 365-day daily ``series`` of every token for a portfolio chart. Before a
cycle, the sharded layout polls the journal as due (at most once per
``poll_seconds``: the fleet's reads come every ~20 s, so a poll is always due
after that long): that is the replica's work, metered once, not part of each
read, which the run multiplies by the reads a sampled read stands for.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from balances.costmodel.fleet import Fleet, changes_between
from balances.costmodel.overhead import SchedulerOverhead
from balances.costmodel.prepopulate import apply_all
from balances.costmodel.results import SYNC
from balances.costmodel.rig import Rig
from balances.stores.layout import BalanceLayout
from balances.stores.sharded.parts import shard_of
from balances.stores.sharded.store import ShardedStore

ReadKind = Literal["balance", "history", "portfolio"]


@dataclass(frozen=True, slots=True)
class Read:
    kind: ReadKind
    address: int
    token: int


@dataclass(frozen=True, slots=True)
class MonthTraffic:
    """Who changes in each cycle (address, token), what is read after it, and for
    each kind of read what one simulated read stands for in the fleet's month."""

    changes: dict[int, list[tuple[int, int]]]
    reads: dict[int, list[Read]]
    refreshed: tuple[int, ...]  # one unchanged address per shard, every cycle
    read_factors: dict[str, float]


def plan_month(rig: Rig, fleet: Fleet, seed: int, chart_reads: int | None = None) -> MonthTraffic:
    """The month's changes and reads. ``chart_reads`` caps the simulated history and
    portfolio reads each (a sharded chart read decodes a shard's year of daily closes,
    about a quarter second): they are sampled, and each stands for its share."""
    w, plan = rig.plan.workload, rig.plan
    start = w.month_start.timestamp()
    interval = w.sync_interval_seconds
    changes: dict[int, list[tuple[int, int]]] = {}
    events = changes_between(
        fleet, start, start + w.cycles * interval, w.changes_per_address_per_day, interval
    )
    for event in events:
        changes.setdefault(int((event.at - start) // interval), []).append(
            (event.address, event.token)
        )
    rng = random.Random(seed ^ 0x5EED)
    tokens = w.tokens_per_address
    reads: dict[int, list[Read]] = {}
    factors: dict[str, float] = {}
    mix: Sequence[tuple[ReadKind, int, int | None]] = (
        ("balance", w.balance_reads_per_month, None),
        ("history", w.history_reads_per_month, chart_reads),
        ("portfolio", w.portfolio_reads_per_month, chart_reads),
    )
    for kind, per_month, cap in mix:
        count = plan.per_run(per_month) if cap is None else min(cap, plan.per_run(per_month))
        factors[kind] = per_month / count
        for _ in range(count):
            read = Read(kind, rng.randrange(len(fleet.addresses)), rng.randrange(tokens))
            reads.setdefault(rng.randrange(w.cycles), []).append(read)
    return MonthTraffic(changes, reads, representatives(fleet, plan.shards), factors)


def representatives(fleet: Fleet, shards: int) -> tuple[int, ...]:
    """The first address of each shard (of the sharded layout's shard function)."""
    first: dict[int, int] = {}
    for index, address in enumerate(fleet.addresses):
        first.setdefault(shard_of(address, shards), index)
    return tuple(sorted(first.values()))


def maintain_every(rig: Rig) -> int:
    """Cycles between maintenance passes. The spec layout's pass writes the day's
    snapshots, so it runs daily whatever the workload says (hourly, it would write
    every snapshot 24 times)."""
    w = rig.plan.workload
    return w.cycles_per_maintain if rig.name == "sharded" else w.cycles_per_day


async def run_month(rig: Rig, fleet: Fleet, traffic: MonthTraffic) -> None:
    w = rig.plan.workload
    start = w.month_start.timestamp()
    every = maintain_every(rig)
    scheduler = SchedulerOverhead(rig.meter, rig.clock.wall)
    for cycle in range(w.cycles):
        at = start + cycle * w.sync_interval_seconds
        rig.clock.set(at)
        rig.meter.phase = SYNC
        await scheduler.step(cycle * w.sync_interval_seconds)
        await sync_cycle(rig.layout, fleet, traffic, cycle, at, w.apply_batch)
        if isinstance(rig.layout, ShardedStore):
            await rig.layout.poll()  # reads arrive every ~20 s: a poll is due every 300 s
        for read in traffic.reads.get(cycle, ()):
            rig.meter.phase = read.kind  # reads scale apart: they must not meter the sync's work
            await run_read(rig, fleet, read)
        rig.meter.phase = SYNC
        if (cycle + 1) % every == 0:
            await rig.layout.maintain(at)


async def sync_cycle(
    layout: BalanceLayout,
    fleet: Fleet,
    traffic: MonthTraffic,
    cycle: int,
    at: float,
    batch: int | None = None,
) -> None:
    """The cycle's ``apply_many``: the changed addresses, then the refreshed unchanged
    ones; with ``batch``, one call per batch of addresses (by index) that changed."""
    calls: dict[int, list[int]] = {}
    for address, token in traffic.changes.get(cycle, ()):
        fleet.change(address, token, at)
        members = calls.setdefault(0 if batch is None else address // batch, [])
        if address not in members:
            members.append(address)
    changed = {address for members in calls.values() for address in members}
    updates = {key: [fleet.update(i, at) for i in members] for key, members in calls.items()}
    quiet = [fleet.unchanged(i, at) for i in traffic.refreshed if i not in changed]
    if batch is None:
        updates[0] = [*updates.get(0, []), *quiet]
    elif quiet:
        updates[-1] = quiet  # loads only: an apply_many without a change writes nothing
    for _, batched in sorted(updates.items()):
        await apply_all(layout, batched)


async def run_read(rig: Rig, fleet: Fleet, read: Read) -> None:
    layout, address = rig.layout, fleet.principals[read.address]
    now = rig.clock.moment()
    w = rig.plan.workload
    if read.kind == "balance":
        await layout.load(address)
    elif read.kind == "history":
        key = fleet.holdings[read.address][read.token]
        start = now - timedelta(days=w.history_window_days)
        await layout.series(address, start, now, keys=[key], resolution="raw")
    else:
        start = now - timedelta(days=w.portfolio_window_days)
        await layout.series(address, start, now, keys=None, resolution="daily")
