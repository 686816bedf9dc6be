"""``balances history`` and ``balances portfolio``: charts in the terminal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from decimal import Decimal
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from balances.cli.common import (
    ChainOption,
    JsonOption,
    NetworkOption,
    StoreOption,
    console,
    print_json,
    run_with_service,
    settings,
)
from balances.domain.tokens import to_display_units
from balances.service.balances import BalanceService

BARS = "▁▂▃▄▅▆▇█"
PeriodOption = Annotated[str, typer.Option("--period", help="1h, 24h, 7d, 30d, 90d, 1y, all.")]
GranularityOption = Annotated[
    str, typer.Option("--granularity", help="5m, hour, day, week, month or auto.")
]
FromOption = Annotated[str | None, typer.Option("--from", help="Range start (ISO or unix).")]
ToOption = Annotated[str | None, typer.Option("--to", help="Range end (ISO or unix).")]


def sparkline(values: Sequence[Decimal | int | None]) -> str:
    """One character per value, scaled between the smallest and largest known."""
    known = [v for v in values if v is not None]
    if not known:
        return ""
    low, high = min(known), max(known)
    span = high - low
    chars = []
    for value in values:
        if value is None:
            chars.append(" ")
        elif span == 0:
            chars.append(BARS[len(BARS) // 2])
        else:
            chars.append(BARS[int((value - low) * (len(BARS) - 1) / span)])
    return "".join(chars)


def history(
    address: Annotated[str, typer.Argument(help="A Stacks address.")],
    token: Annotated[str, typer.Argument(help="stx, ADDR.contract or ADDR.contract::asset.")],
    period: PeriodOption = "30d",
    granularity: GranularityOption = "auto",
    start: FromOption = None,
    end: ToOption = None,
    as_json: JsonOption = False,
    store: StoreOption = None,
    chain_url: ChainOption = None,
    network: NetworkOption = None,
) -> None:
    """The balance of TOKEN over time: a table and a sparkline."""
    answer = run_with_service(
        settings(store, chain_url, network),
        lambda s: s.get_balance_history(address, token, period, granularity, start, end),
    )
    if as_json:
        print_json(answer.as_dict())
        return
    decimals = answer.decimals
    values = [
        None
        if p.amount is None
        else Decimal(p.amount)
        if decimals is None
        else to_display_units(p.amount, decimals)
        for p in answer.points
    ]
    name = answer.symbol or answer.token_id
    title = f"{name} of {address}, {answer.period} by {answer.granularity.value}"
    if decimals is None:
        title += " (base units: decimals not known yet)"
    table = Table(title=title, title_justify="left")
    table.add_column("bucket")
    table.add_column("balance", justify="right")
    for point, value in zip(answer.points, values, strict=True):
        table.add_row(point.at.strftime("%Y-%m-%d %H:%M"), "-" if value is None else f"{value:,}")
    console.print(table)
    console.print(sparkline(values))


def portfolio(
    address: Annotated[str, typer.Argument(help="A Stacks address.")],
    period: PeriodOption = "30d",
    granularity: GranularityOption = "auto",
    start: FromOption = None,
    end: ToOption = None,
    as_json: JsonOption = False,
    store: StoreOption = None,
    chain_url: ChainOption = None,
    network: NetworkOption = None,
) -> None:
    """Every token of ADDRESS over time, with USD values where prices are known."""
    answer = run_with_service(
        settings(store, chain_url, network),
        lambda s: s.get_portfolio_history(address, period, granularity, start, end),
    )
    if as_json:
        print_json(answer.as_dict())
        return
    table = Table(title=f"portfolio of {address}, {answer.period}", title_justify="left")
    table.add_column("bucket")
    table.add_column("total USD", justify="right")
    for bucket in answer.buckets:
        total = bucket.total_usd
        table.add_row(
            bucket.at.strftime("%Y-%m-%d %H:%M"), "-" if total is None else f"{total:,.2f}"
        )
    console.print(table)
    console.print(sparkline([bucket.total_usd for bucket in answer.buckets]))
    if answer.missing_prices:
        console.print(f"[yellow]no price for: {', '.join(answer.missing_prices)}[/yellow]")


def backfill(
    addresses: Annotated[list[str], typer.Argument(help="Addresses whose history to fill.")],
    token: Annotated[str | None, typer.Option("--token", help="Only this token.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Not before (ISO or unix).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Walk again even if done.")] = False,
    as_json: JsonOption = False,
    store: StoreOption = None,
    chain_url: ChainOption = None,
    network: NetworkOption = None,
) -> None:
    """Fill history from before tracking began, from the addresses' transactions
    (resumable: run it again after an interruption)."""

    async def work(service: BalanceService) -> list[dict[str, object]]:
        reports = []
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=as_json,
        ) as bar:
            for address in addresses:
                task = bar.add_task(address[:12] + "…", total=None)

                def advance(done: int, total: int | None, task: TaskID = task) -> None:
                    bar.update(task, completed=done, total=total)

                report = await service.backfill(
                    address, token, since, progress=advance, force=force
                )
                reports.append(asdict(report))
        return reports

    found = run_with_service(settings(store, chain_url, network), work)
    if as_json:
        print_json(found)
        return
    for report in found:
        note = " (already done)" if report["already_done"] else ""
        console.print(
            f"{report['address']}: {report['total_points']} points from "
            f"{report['total_txs']} transactions{note}"
        )
        for key, why in dict(report["stopped"]).items():  # type: ignore[call-overload]
            console.print(f"  [yellow]{key}: history starts later: {why}[/yellow]")
