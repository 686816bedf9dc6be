"""The storage cost model: a month of the reference workload on both layouts.

10,000 addresses x 100 tokens, a sync every 5 minutes, 2 balance changes per
address per day, a year of history, and 100,000 balance, 20,000 30-day hourly and
5,000 1-year daily portfolio reads a month, priced at Vercel Blob's list prices
(no free tier), with the scheduler's own lease and task-record writes. The real
stores run over a metered memory store in simulated time
at a scale (default 1/100 of the fleet, 3 shards, about 3 minutes on two cores;
``--quick``: 1/200, one shard, 2 months of history before the measured month and
30 chart reads of each kind, under a minute), and the counts are scaled back up;
see :mod:`balances.costmodel.simulate` for why that is faithful.

Rows: our monthly dollars against the $1.15 the spec claims for itself (an
absolute figure: baseline None, the target bounds the figure); our dollars as a
ratio to the spec layout's in the same run (<= 1/5); cold GETs of a 1-year daily
chart (<= 2) and a 30-day hourly chart (<= 3); then informational rows.
"""

from __future__ import annotations

from dataclasses import replace

from balances.costmodel import (
    DEFAULT_SCALE,
    QUICK_SCALE,
    CostComparison,
    SimOptions,
    Targets,
    Workload,
    compare,
)
from balances.costmodel.results import DAILY_YEAR, HOURLY_30D
from benchmarks.harness import Result

QUICK_MONTHS = 2
QUICK_CHART_READS = 30


def _target_rows(comparison: CostComparison, targets: Targets) -> list[Result]:
    ours, spec = comparison.sharded, comparison.spec
    return [
        Result(
            name="sharded layout, $/month",
            figure=ours.total,
            unit="$",
            target=targets.monthly_dollars,
            note="absolute: the spec's own claim for itself is ~$1.15",
        ),
        Result(
            name="sharded / spec layout, $/month",
            figure=ours.total,
            unit="$",
            baseline=spec.total,
            baseline_name="spec layout, same run",
            target=targets.ratio_to_spec,
        ),
        Result(
            name=f"GETs, cold {DAILY_YEAR}",
            figure=ours.cold_gets(DAILY_YEAR),
            unit="GET",
            target=targets.daily_year_gets,
            note=f"spec layout: {spec.cold_gets(DAILY_YEAR)}",
        ),
        Result(
            name=f"GETs, cold {HOURLY_30D}",
            figure=ours.cold_gets(HOURLY_30D),
            unit="GET",
            target=targets.hourly_30d_gets,
            note=f"spec layout: {spec.cold_gets(HOURLY_30D)}",
        ),
    ]


def _info_rows(comparison: CostComparison) -> list[Result]:
    rows = []
    for layout in (comparison.sharded, comparison.spec):
        d = layout.dollars
        split = (
            f"storage ${d.storage:.3f}, simple ${d.simple_operations:.3f}, "
            f"advanced ${d.advanced_operations:.3f}, transfer ${d.transfer:.3f}"
        )
        rows += [
            Result(f"{layout.layout}: $/month", layout.total, "$", note=split),
            Result(f"{layout.layout}: advanced ops/month", layout.monthly.advanced, "ops"),
            Result(f"{layout.layout}: simple ops/month", layout.monthly.simple, "ops"),
            Result(f"{layout.layout}: GB stored", layout.storage_gb, "GB"),
            Result(
                f"{layout.layout}: GB downloaded/month", layout.monthly.bytes_downloaded / 1e9, "GB"
            ),
            Result(f"{layout.layout}: run time", layout.seconds["total"], "s"),
        ]
    return rows


async def run(quick: bool) -> list[Result]:
    workload, scale, options = Workload(), DEFAULT_SCALE, SimOptions()
    if quick:
        workload = replace(workload, prepopulated_months=QUICK_MONTHS)
        scale, options = QUICK_SCALE, SimOptions(chart_reads=QUICK_CHART_READS)
    targets = Targets()
    comparison = await compare(workload, scale, options=options, targets=targets, parallel=True)
    return _target_rows(comparison, targets) + _info_rows(comparison)
