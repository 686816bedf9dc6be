"""Run the reference workload through a real layout and price its month.

:func:`simulate` builds a scaled-down fleet (see :mod:`balances.costmodel.workload`),
pre-populates months of history (:mod:`.prepopulate`), resets the meter, runs one
month of syncs, maintenance, reads and the scheduler's bookkeeping (:mod:`.month`,
:mod:`.overhead`) in simulated time, and scales
the counts to the fleet (:mod:`.meter`). Why the scaling is faithful: each
address's writes, reads and bytes are independent of the others', except where a
blob is shared, and the run keeps every shared blob production-sized: a sharded
run has ``256 * scale`` shards, so a shard holds ~39 addresses as in production,
and its journal (one segment per cycle, however many addresses changed) is scaled
by segments, not by addresses. :func:`compare` runs both layouts on the same fleet
and traffic (the same seed), in two processes when ``parallel``.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from time import perf_counter

from balances.blobs import MeterSnapshot
from balances.costmodel.fleet import Fleet, make_fleet
from balances.costmodel.meter import (
    Extra,
    GroupedMeter,
    ScaleRule,
    add_snapshots,
    operations_between,
    scale_storage,
    scale_traffic,
)
from balances.costmodel.month import MonthTraffic, plan_month, run_month
from balances.costmodel.prepopulate import (
    History,
    history_begin,
    prepopulate_sharded,
    prepopulate_spec,
)
from balances.costmodel.results import (
    DAILY_YEAR,
    HOURLY_30D,
    STORAGE,
    SYNC,
    CostComparison,
    LayoutCost,
    Part,
)
from balances.costmodel.rig import FEED, LayoutName, Rig, open_rig, scale_rules, start_feed
from balances.costmodel.workload import DEFAULT_SCALE, Plan, Targets, Workload
from balances.stores.layout import BalanceLayout
from balances.stores.sharded.store import ShardedStore
from balances.stores.spec.store import PREFIX as SPEC_PREFIX
from balances.stores.spec.store import SpecLayoutStore

SNAPSHOTS = "snapshots"


@dataclass(frozen=True, slots=True)
class SimOptions:
    """How a run may cut corners, and how it says so in its notes.

    ``snapshot_days``: days of spec snapshots really written before the month
    (None: every day); earlier ones are extrapolated (see :mod:`.prepopulate`).
    ``refresh_unchanged``: refresh one unchanged address per shard each cycle (see
    :mod:`.month`); off, a run prices a sync that skips unchanged addresses.
    ``chart_reads``: history and portfolio reads simulated of each kind (None: all
    of the run's share); each stands for its share of the month's reads.
    """

    snapshot_days: int | None = 31
    refresh_unchanged: bool = True
    chart_reads: int | None = 60


async def simulate(
    layout_name: LayoutName,
    workload: Workload | None = None,
    scale: float = DEFAULT_SCALE,
    seed: int = 0,
    *,
    options: SimOptions | None = None,
) -> LayoutCost:
    """One layout's month of ``workload`` at fleet size (see the module docstring)."""
    workload, options = workload or Workload(), options or SimOptions()
    plan = Plan.of(workload, scale)
    begin = history_begin(workload)
    rig = open_rig(layout_name, plan, begin)
    epoch = datetime.fromtimestamp(begin, UTC)
    w = workload
    fleet = make_fleet(plan.addresses, w.tokens_per_address, w.token_universe, epoch, seed)
    started = perf_counter()
    history = await _prepopulate(rig, fleet, options)
    populated = perf_counter()
    traffic = plan_month(rig, fleet, seed, options.chart_reads)
    if not options.refresh_unchanged:
        traffic = replace(traffic, refreshed=())
    rig.meter.reset()
    rig.meter.phantom = lambda key: _skipped_snapshot(key, history)
    await start_feed(rig)
    await run_month(rig, fleet, traffic)
    ran = perf_counter()
    counted = Counted.of(rig.meter)  # before the probes, which are not the month's
    probes = await probe_charts(rig, fleet)
    seconds = {"prepopulate": populated - started, "month": ran - populated}
    seconds["total"] = perf_counter() - started
    return _assemble(rig, counted, traffic, history, probes, seconds)


async def _prepopulate(rig: Rig, fleet: Fleet, options: SimOptions) -> History:
    layout = rig.layout
    if isinstance(layout, ShardedStore):
        return await prepopulate_sharded(layout, fleet, rig.plan, rig.clock)
    assert isinstance(layout, SpecLayoutStore)
    return await prepopulate_spec(layout, fleet, rig.plan, rig.clock, options.snapshot_days)


def _skipped_snapshot(key: str, history: History) -> bool:
    if not key.startswith(f"{SPEC_PREFIX}/{SNAPSHOTS}/"):
        return False
    try:
        return history.skipped(date.fromisoformat(key.rsplit("/", 1)[1]))
    except ValueError:
        return False


# --- cold reads ----------------------------------------------------------------

Probes = dict[str, dict[str, int]]


async def probe_charts(rig: Rig, fleet: Fleet) -> tuple[Probes, Probes]:
    """The operations of one read of each chart with the layout's caches dropped, and
    on a freshly opened layout object."""
    cold: Probes = {}
    fresh: Probes = {}
    for chart in (DAILY_YEAR, HOURLY_30D):
        cold[chart] = await _count(rig, await _cold_layout(rig, fleet), fleet, chart)
        fresh[chart] = await _count(rig, rig.fresh_layout(), fleet, chart)
    return cold, fresh


async def _cold_layout(rig: Rig, fleet: Fleet) -> BalanceLayout:
    """The running layout with its caches dropped. The sharded one first re-reads its
    shard blob (which the month's last compaction just rewrote: between compactions a
    running process holds it, and a read re-checks it with a HEAD)."""
    if isinstance(rig.layout, ShardedStore):
        rig.layout.invalidate()
        await rig.layout.load(fleet.principals[0])
        rig.layout.invalidate()
        return rig.layout
    return rig.fresh_layout()  # the spec layout caches no history: the same thing


async def _count(rig: Rig, layout: BalanceLayout, fleet: Fleet, chart: str) -> dict[str, int]:
    address, key = fleet.principals[0], fleet.holdings[0][0]
    now = rig.clock.moment()
    w = rig.plan.workload
    before = rig.meter.total.snapshot()
    if chart == DAILY_YEAR:
        start = now - timedelta(days=w.portfolio_window_days)
        await layout.series(address, start, now, keys=None, resolution="daily")
    else:
        start = now - timedelta(days=w.history_window_days)
        await layout.series(address, start, now, keys=[key], resolution="raw")
    return operations_between(before, rig.meter.total.snapshot())


# --- scaling to the fleet --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Counted:
    """What the meter counted in the month."""

    traffic: dict[tuple[str, str], MeterSnapshot]
    stored: dict[str, MeterSnapshot]
    phantom_misses: dict[tuple[str, str], int]
    total: MeterSnapshot

    @property
    def segments(self) -> int:
        """Journal segments the month's sync wrote (0: a layout without a journal)."""
        found = self.traffic.get((SYNC, "journal"))
        return 0 if found is None else found.operations["put"]

    @property
    def feed_segments(self) -> int:
        """Change-feed segments (and head writes) the month's sync wrote."""
        found = self.traffic.get((SYNC, FEED))
        return 0 if found is None else found.operations["put"]

    @classmethod
    def of(cls, meter: GroupedMeter) -> Counted:
        phantom = dict(meter.phantom_misses)
        return cls(meter.snapshots(), meter.stored(), phantom, meter.total.snapshot())


def _assemble(
    rig: Rig,
    counted: Counted,
    traffic: MonthTraffic,
    history: History,
    probes: tuple[Probes, Probes],
    seconds: dict[str, float],
) -> LayoutCost:
    segments = counted.segments
    rules = scale_rules(rig, segments, counted.feed_segments)
    mean = _mean_size(counted.stored.get(SNAPSHOTS))
    parts = _parts(rig, counted, traffic, history, rules, mean)
    monthly = add_snapshots([part.monthly for part in parts])
    plan = rig.plan
    prices = plan.workload.prices
    return LayoutCost(
        layout=rig.name,
        scale=plan.scale,
        addresses=plan.addresses,
        shards=plan.shards if rig.name == "sharded" else None,
        factor=plan.factor,
        monthly=monthly,
        dollars=monthly.cost_report(prices),
        parts=parts,
        cold_ops=probes[0],
        fresh_ops=probes[1],
        measured=counted.total,
        notes=tuple(_notes(rig, counted, rules, history, traffic, mean)),
        seconds=seconds,
        prices=prices,
    )


def _parts(
    rig: Rig,
    counted: Counted,
    traffic: MonthTraffic,
    history: History,
    rules: dict[str, ScaleRule],
    mean: float,
) -> tuple[Part, ...]:
    """Each (phase, group)'s traffic and each group's storage at fleet size, with
    what a shortened pre-population skipped added back (see :mod:`.prepopulate`)."""
    prices = rig.plan.workload.prices
    parts = []
    for (phase, group), snapshot in counted.traffic.items():
        rule = rules[group] if phase == SYNC else _per_read(traffic.read_factors[phase])
        missed = counted.phantom_misses.get((phase, group), 0)
        monthly = scale_traffic(snapshot, rule, Extra(bytes_downloaded=missed * mean))
        parts.append(Part(phase, group, monthly, monthly.cost_report(prices)))
    for group, snapshot in counted.stored.items():
        missing = history.skipped_days * rig.plan.addresses if group == SNAPSHOTS else 0
        extra = Extra(bytes_stored=missing * mean, blobs_stored=missing)
        monthly = scale_storage(snapshot, rules[group], extra)
        parts.append(Part(STORAGE, group, monthly, monthly.cost_report(prices)))
    return tuple(part for part in parts if part.dollars.total or part.monthly.blobs_stored)


def _per_read(factor: float) -> ScaleRule:
    return ScaleRule(factor, factor)


def _mean_size(snapshot: MeterSnapshot | None) -> float:
    if snapshot is None or not snapshot.blobs_stored:
        return 0.0
    return snapshot.bytes_stored / snapshot.blobs_stored


def _notes(
    rig: Rig,
    counted: Counted,
    rules: dict[str, ScaleRule],
    history: History,
    traffic: MonthTraffic,
    mean: float,
) -> list[str]:
    plan = rig.plan
    segments = counted.segments
    shards = f" in {plan.shards} shards" if rig.name == "sharded" else ""
    reads = ", ".join(f"{kind} x{factor:.4g}" for kind, factor in traffic.read_factors.items())
    notes = [
        f"simulated {plan.addresses} addresses{shards} = 1/{plan.factor:.4g} of the fleet; "
        f"the sync's counts and bytes x{plan.factor:.4g}",
        f"reads (sampled; each stands for its share of the month's): {reads}",
        f"{plan.workload.prepopulated_months} months of history pre-populated: storage is "
        f"{plan.workload.prepopulated_months + 1} months' at the month's end",
    ]
    if "journal" in rules:
        notes.append(
            f"journal: {segments} segments written, production writes "
            f"{plan.production_segments:.0f}: its puts/gets/deletes "
            f"x{rules['journal'].default:.4g}, its listings x1, its bytes x{plan.factor:.4g}; "
            "the manifest x1"
        )
        notes.append(
            f"change feed: {counted.feed_segments} segments written, production writes "
            f"{plan.production_feed_segments:.0f} (feed_write_seconds "
            f"{plan.workload.feed_write_seconds:g}): its puts/deletes "
            f"x{rules[FEED].default:.4g}, its head and listings x1"
        )
    if isinstance(rig.layout, ShardedStore):
        kept = rig.layout.written.stats()
        production = kept.bytes * plan.workload.production_shards / plan.shards
        budget = rig.layout.settings.written_cache_bytes
        notes.append(
            f"compaction's kept copies of the shard blobs it wrote: {kept.bytes / 1e6:.1f} MB, "
            f"{production / 1e6:.0f} MB at fleet size (budget {budget / 1e6:.0f} MB"
            + ("" if production <= budget else "; beyond it, passes download the excess")
            + ")"
        )
    if history.skipped_days:
        missed = sum(n for (_, group), n in counted.phantom_misses.items() if group == SNAPSHOTS)
        notes.append(
            f"snapshots of the first {history.skipped_days} days of history extrapolated: "
            f"{history.skipped_days * plan.addresses} blobs at the mean {mean:.0f} B, and "
            f"{missed} GETs of them billed as downloads of that size"
        )
    return notes


# --- both layouts ------------------------------------------------------------------


def simulate_blocking(
    layout_name: LayoutName, workload: Workload, scale: float, seed: int, options: SimOptions
) -> LayoutCost:
    """:func:`simulate` in its own event loop (for a worker process)."""
    return asyncio.run(simulate(layout_name, workload, scale, seed, options=options))


async def compare(
    workload: Workload | None = None,
    scale: float = DEFAULT_SCALE,
    seed: int = 0,
    *,
    options: SimOptions | None = None,
    targets: Targets | None = None,
    parallel: bool = False,
    ingestion: bool = True,
) -> CostComparison:
    """Both layouts on the same fleet and traffic; ``parallel``: one process each.

    ``ingestion``: the sharded layout is kept fresh by block ingestion (a segment per
    flush of what changed, nothing for unchanged addresses), as ``balances serve``
    runs by default; the spec layout is always synced by polling (it cannot ingest).
    """
    workload, options = workload or Workload(), options or SimOptions()
    runs: list[tuple[LayoutName, Workload, SimOptions]] = [("spec", workload, options)]
    if ingestion:
        runs.insert(
            0, ("sharded", workload.on_ingestion(), replace(options, refresh_unchanged=False))
        )
    else:
        runs.insert(0, ("sharded", workload, options))
    if parallel:
        loop = asyncio.get_running_loop()
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
            futures = [
                loop.run_in_executor(pool, simulate_blocking, name, load, scale, seed, opts)
                for name, load, opts in runs
            ]
            sharded, spec = await asyncio.gather(*futures)
    else:
        sharded, spec = [
            await simulate(name, load, scale, seed, options=opts) for name, load, opts in runs
        ]
    return CostComparison(workload, targets or Targets(), seed, sharded, spec, ingestion)
