"""The comparison as text (for logs and tests) or rich tables (for the CLI)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from rich.table import Table

from balances.costmodel.results import DAILY_YEAR, HOURLY_30D, CostComparison, LayoutCost

Row = tuple[str, str, str]

FAITHFUL = (
    "Why a scaled run stands for the fleet: each address's writes, reads and bytes are "
    "independent of the others' except in shared blobs, and the run keeps those "
    "production-sized: 256 x scale shards, each filled with ~39 addresses as in production, "
    "so shard blobs keep their size and a shard is revalidated and compacted as often. So "
    "the sync's per-address counts and bytes are multiplied by the fleet/run ratio; the "
    "journal (one segment per apply_many, however many addresses changed) by production's "
    "segment count; each kind of read, sampled at random times and addresses, by the reads "
    "it stands for."
)


def _count(value: float) -> str:
    return f"{value:,.0f}"


def _dollars(value: float) -> str:
    return f"${value:,.3f}"


def _ops(layout: LayoutCost, chart: str, probes: str) -> str:
    found = layout.cold_ops if probes == "cold" else layout.fresh_ops
    ops = found[chart]
    others = ", ".join(f"{ops[op]} {op}" for op in ("head", "list") if ops.get(op))
    return f"{ops['get']} GET" + (f" (+{others})" if others else "")


def comparison_rows(comparison: CostComparison) -> list[Row]:
    """One row per figure: (label, sharded, spec)."""
    ours, spec = comparison.sharded, comparison.spec

    def row(label: str, figure: Callable[[LayoutCost], str]) -> Row:
        return label, figure(ours), figure(spec)

    shards = ours.shards
    return [
        row(
            "simulated",
            lambda c: f"{c.addresses} addr" + (f", {shards} shards" if c is ours else ""),
        ),
        row("storage (GB, end of month)", lambda c: f"{c.storage_gb:.3f}"),
        row("blobs stored", lambda c: _count(c.monthly.blobs_stored)),
        row("simple ops (get, head)", lambda c: _count(c.monthly.simple)),
        row("  get", lambda c: _count(c.monthly.operations["get"])),
        row("  head", lambda c: _count(c.monthly.operations["head"])),
        row("advanced ops (put, list)", lambda c: _count(c.monthly.advanced)),
        row("  put", lambda c: _count(c.monthly.operations["put"])),
        row("  list", lambda c: _count(c.monthly.operations["list"])),
        row("free ops (delete)", lambda c: _count(c.monthly.free)),
        row("GB downloaded", lambda c: f"{c.monthly.bytes_downloaded / 1e9:.2f}"),
        row("GB uploaded", lambda c: f"{c.monthly.bytes_uploaded / 1e9:.2f}"),
        row("$ storage", lambda c: _dollars(c.dollars.storage)),
        row("$ simple ops", lambda c: _dollars(c.dollars.simple_operations)),
        row("$ advanced ops", lambda c: _dollars(c.dollars.advanced_operations)),
        row("$ transfer", lambda c: _dollars(c.dollars.transfer)),
        row("$ total / month", lambda c: _dollars(c.total)),
        row(f"cold {DAILY_YEAR}", lambda c: _ops(c, DAILY_YEAR, "cold")),
        row(f"cold {HOURLY_30D}", lambda c: _ops(c, HOURLY_30D, "cold")),
        row(f"new process, {DAILY_YEAR}", lambda c: _ops(c, DAILY_YEAR, "fresh")),
        row(f"new process, {HOURLY_30D}", lambda c: _ops(c, HOURLY_30D, "fresh")),
        row("run time (s)", lambda c: f"{c.seconds['total']:.0f}"),
    ]


def breakdown_rows(layout: LayoutCost, by: Literal["phase", "group"]) -> list[tuple[str, ...]]:
    """Where one layout's dollars go, by phase (sync, each kind of read, storage) or
    by key group: operations, transfer, storage and dollars, largest first."""
    rows: list[tuple[str, ...]] = []
    for part in sorted(layout.totals_by(by).values(), key=lambda p: -p.dollars.total):
        ops, d = part.monthly.operations, part.dollars
        counts = ", ".join(f"{_count(ops[op])} {op}" for op in ops if ops[op])
        rows.append(
            (
                layout.layout,
                part.phase,
                counts or "-",
                f"{part.monthly.bytes_downloaded / 1e9:.2f}",
                f"{part.monthly.bytes_stored / 1e9:.3f}",
                _dollars(d.simple_operations + d.advanced_operations),
                _dollars(d.transfer),
                _dollars(d.storage),
                _dollars(d.total),
            )
        )
    return rows


#: Phases: what the layout was doing (sync, a kind of read; storage); groups: which blobs.
BREAKDOWNS: tuple[Literal["phase", "group"], ...] = ("phase", "group")
BREAKDOWN_COLUMNS: tuple[str, ...] = ("ops / month", "GB down", "GB stored", "$ ops", "$ xfer")
BREAKDOWN_COLUMNS += ("$ storage", "$ total")


def check_rows(comparison: CostComparison) -> list[tuple[str, str, str, str]]:
    return [
        (c.name, f"{c.figure:.4g}", f"<= {c.target:g}", "met" if c.met else "MISSED")
        for c in comparison.checks()
    ]


def sync_text(comparison: CostComparison) -> str:
    """How each layout was kept fresh in the run."""
    w = comparison.workload
    polling = f"a sync every {w.sync_interval_seconds // 60} min"
    if not comparison.ingestion:
        return polling
    return f"ours on block ingestion (a flush every {w.ingest_flush_seconds} s), spec {polling}"


def render_tables(comparison: CostComparison) -> list[Table]:
    """Rich tables: both layouts side by side, the groups, the targets."""
    w = comparison.workload
    title = (
        f"Storage cost, one month at {w.prices.name} prices: {w.addresses:,} addresses x "
        f"{w.tokens_per_address} tokens, {sync_text(comparison)}"
    )
    side = Table(title=title)
    for column in ("", "sharded (ours)", "spec"):
        side.add_column(column, justify="left" if not column else "right")
    for row in comparison_rows(comparison):
        side.add_row(*row)
    tables = [side]
    for by in BREAKDOWNS:
        table = Table(title=f"Where the dollars go, by {by}")
        for column in ("layout", by, *BREAKDOWN_COLUMNS):
            table.add_column(column, justify="left" if column in ("layout", by) else "right")
        for layout in (comparison.sharded, comparison.spec):
            for breakdown in breakdown_rows(layout, by):
                table.add_row(*breakdown)
        tables.append(table)
    checks = Table(title="Targets")
    for column in ("target", "figure", "bound", ""):
        checks.add_column(column)
    for check in check_rows(comparison):
        checks.add_row(*check)
    return [*tables, checks]


def _columns(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]


def render_text(comparison: CostComparison) -> str:
    """The same as :func:`render_tables`, as plain text."""
    lines = [sync_text(comparison), ""]
    lines += _columns([("", "sharded (ours)", "spec"), *comparison_rows(comparison)])
    for by in BREAKDOWNS:
        rows = [("layout", by, *BREAKDOWN_COLUMNS)]
        for layout in (comparison.sharded, comparison.spec):
            rows += breakdown_rows(layout, by)
        lines += ["", *_columns(rows)]
    lines += ["", *_columns([("target", "figure", "bound", ""), *check_rows(comparison)])]
    lines += ["", FAITHFUL, ""]
    for layout in (comparison.sharded, comparison.spec):
        lines += [f"{layout.layout}: {note}" for note in layout.notes]
    return "\n".join(lines)
