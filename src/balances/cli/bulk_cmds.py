"""``balances bulk ...`` (BalanceSeriesAPI from the command line) and ``balances cache``."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import typer
from rich.table import Table

from balances.cli.common import (
    ChainOption,
    JsonOption,
    NetworkOption,
    StoreOption,
    console,
    fail,
    print_json,
    run_with_service,
    settings,
)
from balances.cli.output import balances_table
from balances.service.balances import BalanceService
from balances.service.series import BalanceSeriesAPI

bulk_app = typer.Typer(help="Many addresses at once (BalanceSeriesAPI).", no_args_is_help=True)
cache_app = typer.Typer(help="A running service's caches.", no_args_is_help=True)

Addresses = Annotated[list[str], typer.Argument(help="Stacks addresses.")]
Tokens = Annotated[list[str] | None, typer.Option("--token", help="A token (repeatable).")]
Period = Annotated[str, typer.Option("--period", help="1h, 24h, 7d, 30d, 90d, 1y, all.")]


def _errors(errors: list[Any]) -> None:
    for item in errors:
        console.print(f"[red]{item.address} {item.token_id or ''}: {item.error}[/red]")


@bulk_app.command("current")
def bulk_current(
    addresses: Addresses,
    tokens: Tokens = None,
    zeros: Annotated[bool, typer.Option("--zeros", help="Include zero balances.")] = False,
    minimum: Annotated[str | None, typer.Option("--min", help="Least base units.")] = None,
    as_json: JsonOption = False,
    store: StoreOption = None,
    chain_url: ChainOption = None,
    network: NetworkOption = None,
) -> None:
    """Current balances of many addresses."""
    request = {
        "addresses": addresses,
        "token_ids": tokens or [],
        "include_zero": zeros,
        "min_balance": minimum,
    }

    async def work(service: BalanceService) -> Any:
        return await BalanceSeriesAPI(service).get_current_balances_bulk(request)

    answer = run_with_service(settings(store, chain_url, network), work)
    if as_json:
        print_json(
            {
                "balances": [b.as_dict() for b in answer.balances],
                "errors": [e.as_dict() for e in answer.errors],
            }
        )
        return
    for address in addresses:
        mine = [b for b in answer.balances if b.address == address]
        if mine:
            console.print(balances_table(address, mine))
    _errors(answer.errors)


@bulk_app.command("series")
def bulk_series(
    addresses: Addresses,
    tokens: Tokens = None,
    period: Period = "30d",
    granularity: Annotated[str, typer.Option("--granularity", help="5m ... month, auto.")] = "auto",
    store: StoreOption = None,
    chain_url: ChainOption = None,
    network: NetworkOption = None,
) -> None:
    """Histories of tokens for many addresses (JSON)."""
    request = {
        "addresses": addresses,
        "token_ids": tokens or ["stx"],
        "period": period,
        "granularity": granularity,
    }

    async def work(service: BalanceService) -> Any:
        return await BalanceSeriesAPI(service).get_balance_series_bulk(request)

    answer = run_with_service(settings(store, chain_url, network), work)
    series = {
        address: {token: history.as_dict() for token, history in tokens_.items()}
        for address, tokens_ in answer.series.items()
    }
    print_json({"series": series, "errors": [e.as_dict() for e in answer.errors]})


@bulk_app.command("portfolio")
def bulk_portfolio(
    addresses: Addresses,
    period: Period = "30d",
    as_json: JsonOption = False,
    store: StoreOption = None,
    chain_url: ChainOption = None,
    network: NetworkOption = None,
) -> None:
    """Portfolio performance of many addresses over a period."""

    async def work(service: BalanceService) -> Any:
        return await BalanceSeriesAPI(service).get_portfolio_performance_bulk(addresses, period)

    answer = run_with_service(settings(store, chain_url, network), work)
    if as_json:
        performance = {a: p.as_dict() for a, p in answer.performance.items()}
        print_json({"performance": performance, "errors": [e.as_dict() for e in answer.errors]})
        return
    table = Table(title=f"portfolio performance, {period}", title_justify="left")
    for column in ("address", "start USD", "end USD", "change", "%"):
        table.add_column(column, justify="left" if column == "address" else "right")
    for address, found in answer.performance.items():
        row = found.as_dict()
        table.add_row(
            address,
            *(row[k] or "-" for k in ("start_usd", "end_usd", "change_usd", "change_pct")),
        )
    console.print(table)
    _errors(answer.errors)


@cache_app.command("stats")
def cache_stats(
    url: Annotated[str, typer.Option("--url", help="The running service.")] = (
        "http://127.0.0.1:8000"
    ),
) -> None:
    """Cache and blob-storage statistics of a running service (GET /cache/stats)."""
    try:
        answer = httpx.get(f"{url.rstrip('/')}/cache/stats", timeout=10)
    except httpx.HTTPError as error:
        fail(f"no service answered at {url}: {error}", 1)
    if answer.status_code != 200:
        fail(f"{url} answered {answer.status_code}: {answer.text[:200]}", 1)
    print_json(answer.json())
