"""The storage cost model (``balances.costmodel``): its premises and a tiny run.

The model skips replaying the refreshes that change nothing, on the premise that
they cost no blob operations once the address is known: checked here for both
layouts, within the recheck interval (where it holds exactly) and after it (where
the sharded layout re-validates with a HEAD and lists the journal: the cost the
model charges by refreshing one unchanged address per shard each cycle). A tiny
simulation (one shard, a 2-day "month") must run and give sane numbers.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from balances.blobs import MemoryBlobStore, MeteredBlobStore
from balances.config import IngestConfig
from balances.costmodel import (
    QUICK_SCALE,
    Plan,
    SimOptions,
    Targets,
    Workload,
    compare,
    render_text,
)
from balances.costmodel.fleet import make_fleet
from balances.costmodel.meter import GroupedMeter, ScaleRule, scale_storage, scale_traffic
from balances.costmodel.results import DAILY_YEAR, HOURLY_30D
from balances.domain import Principal
from balances.domain.current import AddressUpdate
from balances.scheduler import DEFAULT_SCHEDULER_CONFIG
from balances.stores.layout import BalanceLayout
from balances.stores.sharded.parts import LsmSettings
from balances.stores.sharded.store import ShardedStore
from balances.stores.spec.store import SpecLayoutStore

T0 = Workload().month_start.timestamp()
RECHECK = 300.0
MAINTAINED = T0 + 3_600  # past the compaction grace of both refreshes


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _layout(name: str, blobs: MeteredBlobStore, clock: Clock) -> BalanceLayout:
    if name == "sharded":
        settings = LsmSettings(shards=2, recheck_seconds=RECHECK, poll_seconds=RECHECK)
        return ShardedStore(blobs, settings, clock=clock, wall_clock=clock)
    return SpecLayoutStore(blobs, wall_clock=clock)


def _fleet(later: float) -> tuple[AddressUpdate, AddressUpdate, AddressUpdate]:
    """A first refresh, one that changed one token (a minute later), and one that
    changed nothing (``later``)."""
    fleet = make_fleet(1, 100, 500, Workload().month_start, seed=7)
    first = fleet.update(0, T0)
    fleet.change(0, 3, T0 + 60)
    changed = fleet.update(0, T0 + 60)
    return first, changed, fleet.update(0, later)


async def _known(layout: BalanceLayout, clock: Clock, later: float) -> AddressUpdate:
    """Store a first and a changed refresh, then maintain (the sharded layout compacts
    them into its shard blobs: steady state); the unchanged refresh comes ``later``
    after that."""
    first, changed, unchanged = _fleet(MAINTAINED + later)
    await layout.apply_many([first])
    clock.now = T0 + 60
    (merged,) = await layout.apply_many([changed])
    assert not isinstance(merged, Exception)
    assert len(merged.changes) == 1
    clock.now = MAINTAINED
    await layout.maintain(MAINTAINED)
    if isinstance(layout, ShardedStore):
        await layout.load(Principal.parse(first.address))  # the process reads its shard
    clock.now = MAINTAINED + later
    return unchanged


@pytest.mark.parametrize("name", ["sharded", "spec"])
async def test_an_unchanged_refresh_of_a_known_address_costs_nothing(name: str) -> None:
    blobs, clock = MeteredBlobStore(MemoryBlobStore()), Clock(T0)
    layout = _layout(name, blobs, clock)
    unchanged = await _known(layout, clock, 60)  # within the recheck interval
    blobs.reset()
    (merged,) = await layout.apply_many([unchanged])
    assert not isinstance(merged, Exception)
    assert not merged.needs_write
    assert blobs.snapshot().operations == dict.fromkeys(blobs.snapshot().operations, 0)


@pytest.mark.parametrize("name", ["sharded", "spec"])
async def test_an_unchanged_refresh_a_cycle_later_costs_only_revalidation(name: str) -> None:
    """What the model charges: nothing for the spec layout; for the sharded one a
    HEAD of the shard blob and of the manifest and a journal listing (per cycle and
    shard, not per address), and never a write or a download."""
    blobs, clock = MeteredBlobStore(MemoryBlobStore()), Clock(T0)
    layout = _layout(name, blobs, clock)
    unchanged = await _known(layout, clock, RECHECK + 1)
    blobs.reset()
    (merged,) = await layout.apply_many([unchanged])
    assert not isinstance(merged, Exception)
    assert not merged.needs_write
    ops = blobs.snapshot().operations
    assert ops["put"] == ops["get"] == 0, ops
    if name == "spec":
        assert ops == dict.fromkeys(ops, 0)
    else:
        assert ops["head"] <= 2
        assert ops["list"] <= 1


def test_a_plan_keeps_shards_production_sized() -> None:
    assert (Plan.of(Workload(), 1 / 20).shards, Plan.of(Workload(), 1 / 20).addresses) == (13, 508)
    quick = Plan.of(Workload(), QUICK_SCALE)
    assert (quick.shards, quick.addresses) == (1, 39)
    assert quick.factor == pytest.approx(256, rel=0.01)
    assert Plan.of(Workload(), 1 / 20).production_segments == pytest.approx(8640)
    with pytest.raises(ValueError, match="scale"):
        Plan.of(Workload(), 0)


async def test_the_grouped_meter_routes_by_prefix_and_scales_by_rule() -> None:
    meter = GroupedMeter(
        MeteredBlobStore(MemoryBlobStore()), {"v1/journal/": "journal"}, "shards", ("sync", "read")
    )
    await meter.put("v1/journal/a", b"x" * 10)
    await meter.put("v1/current/000", b"y" * 100)
    meter.phase = "read"
    await meter.get("v1/current/000")
    _ = [key async for key in meter.iter_keys("v1/journal/")]
    meter.reset()
    await meter.get("v1/current/000")
    counts = meter.snapshots()
    assert counts[("read", "shards")].operations["get"] == 1
    assert counts[("sync", "journal")].operations["put"] == 0  # reset
    stored = meter.stored()
    assert (stored["journal"].bytes_stored, stored["shards"].bytes_stored) == (10, 100)
    rule = ScaleRule(3.0, 2.0, {"list": 1.0})
    scaled = scale_traffic(counts[("read", "shards")], rule)
    assert (scaled.operations["get"], scaled.bytes_downloaded) == (3, 200)
    assert scale_storage(stored["shards"], rule).bytes_stored == 200


async def test_a_tiny_simulation_prices_both_layouts_sanely() -> None:
    workload = replace(
        Workload(),
        month_days=2,
        prepopulated_months=1,
        balance_reads_per_month=2_000,
        history_reads_per_month=1_000,
        portfolio_reads_per_month=500,
    )
    options = SimOptions(snapshot_days=7, chart_reads=4)
    comparison = await compare(workload, QUICK_SCALE, seed=3, options=options)
    ours, spec = comparison.sharded, comparison.spec
    for layout in (ours, spec):
        assert layout.total > 0
        assert layout.storage_gb > 0
        assert layout.monthly.operations["put"] > 0
        assert layout.measured.operations["put"] > 0
    assert ours.total < spec.total
    assert ours.monthly.advanced < spec.monthly.advanced / 5
    assert ours.cold_gets(DAILY_YEAR) <= Targets().daily_year_gets
    assert ours.cold_gets(HOURLY_30D) <= Targets().hourly_30d_gets
    assert spec.cold_gets(DAILY_YEAR) > 300  # a snapshot per day
    text = render_text(comparison)
    assert "sharded" in text
    assert "$ total / month" in text
    assert comparison.as_dict()["layouts"]["spec"]["dollars"]["total"] == spec.total


async def test_the_scheduler_s_lease_and_task_record_are_priced_unscaled() -> None:
    """One leader's bookkeeping, the same for any fleet: a lease write per renewal
    (every ``lease_seconds * renew_fraction``) and a task-record write per finished
    run of each scheduled task (aggregates are off by default)."""
    days = 2
    workload = replace(Workload(), month_days=days, prepopulated_months=1)
    options = SimOptions(snapshot_days=1, chart_reads=1)
    comparison = await compare(workload, QUICK_SCALE, seed=5, options=options)
    config = DEFAULT_SCHEDULER_CONFIG
    seconds = days * 86_400
    lease_writes = seconds / (config.lease_seconds * config.renew_fraction)
    record_writes = sum(
        seconds / config.task(name).interval for name in ("sync", "prices", "maintain")
    )
    assert not config.runs("aggregates")
    for layout in (comparison.sharded, comparison.spec):
        bookkeeping = layout.totals_by("group")["scheduler"].monthly.operations
        assert bookkeeping["put"] == lease_writes + record_writes, layout.layout
        assert bookkeeping["get"] <= 2  # each document read once, then known


async def test_on_ingestion_a_replica_lists_the_journal_once_per_poll_not_per_read() -> None:
    """Reads are sampled and each stands for hundreds: a poll they triggered, priced
    per read, would be counted hundreds of times. The replica polls as due (every
    ``poll_seconds``, 300) whatever its read rate, so reads list nothing and the
    month's listings are bounded by its polls (plus compaction's, one a day)."""
    days = 2
    workload = replace(
        Workload(), month_days=days, prepopulated_months=1, balance_reads_per_month=5_000
    )
    options = SimOptions(snapshot_days=1, chart_reads=2)
    comparison = await compare(workload, QUICK_SCALE, seed=7, options=options, ingestion=True)
    assert comparison.ingestion
    parts = {(p.phase, p.group): p.monthly.operations for p in comparison.sharded.parts}
    for phase in ("balance", "history", "portfolio"):
        assert parts.get((phase, "journal"), {}).get("list", 0) == 0, phase
    polls = days * 86_400 / 300
    listings = parts[("sync", "journal")]["list"]
    assert polls <= listings <= polls + 2 * days
    assert parts[("sync", "journal")]["put"] == days * 86_400 / workload.ingest_flush_seconds


def test_the_cost_model_prices_ingestion_at_the_default_flush_interval() -> None:
    assert Workload().ingest_flush_seconds == IngestConfig().flush_seconds
