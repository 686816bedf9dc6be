"""``balances cost``: the storage cost model, both layouts side by side.

It runs the simulator of :mod:`balances.costmodel` (minutes, on two processes)
rather than reading a store: the figures are what a month of the reference
workload costs each layout at Vercel Blob prices.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from balances.cli.common import JsonOption, console, errors, fail, print_json
from balances.costmodel import (
    DEFAULT_SCALE,
    FAITHFUL,
    CostComparison,
    Plan,
    Workload,
    compare,
    render_tables,
)

ScaleOption = Annotated[
    float,
    typer.Option(
        "--scale",
        min=0.0001,
        max=1.0,
        help="Fraction of the 10,000-address fleet to simulate (counts are scaled back up).",
    ),
]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed of the fleet and its traffic.")]
PollingOption = Annotated[
    bool,
    typer.Option(
        "--polling",
        help="Price our layout on the polling sync (BALANCES_INGEST__ENABLED=false), "
        "not on block ingestion.",
    ),
]

FeedWriteOption = Annotated[
    float,
    typer.Option(
        "--feed-write-seconds",
        min=0,
        help="Seconds between durable change-feed segments at least "
        "(BALANCES_FEED__WRITE_SECONDS; 0: one with every journal segment).",
    ),
]


def cost(
    scale: ScaleOption = DEFAULT_SCALE,
    seed: SeedOption = 0,
    polling: PollingOption = False,
    feed_write_seconds: FeedWriteOption = 0.0,
    as_json: JsonOption = False,
) -> None:
    """Simulate a month of the reference workload on both layouts and price it."""
    workload = Workload(feed_write_seconds=feed_write_seconds)
    plan = Plan.of(workload, scale)
    errors.print(
        f"simulating {plan.addresses} addresses ({plan.shards} shards) x "
        f"{workload.tokens_per_address} tokens for a month, on both layouts "
        "(a few minutes) ...",
        highlight=False,
    )
    try:
        comparison = asyncio.run(
            compare(workload, scale, seed, parallel=True, ingestion=not polling)
        )
    except ValueError as error:
        fail(str(error), 2)
    if as_json:
        print_json(comparison.as_dict())
        return
    _print(comparison)


def _print(comparison: CostComparison) -> None:
    for table in render_tables(comparison):
        console.print(table)
    console.print(FAITHFUL, highlight=False)
    for layout in (comparison.sharded, comparison.spec):
        for note in layout.notes:
            console.print(f"[dim]{layout.layout}: {note}[/dim]", highlight=False)
    missed = [check.name for check in comparison.checks() if not check.met]
    if missed:
        console.print(f"[red]targets missed:[/red] {', '.join(missed)}", highlight=False)
    else:
        console.print("[green]every target met[/green]")
