"""``balances balance``, ``balances sync`` and ``balances track ...``."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from balances.cli.common import (
    ChainOption,
    JsonOption,
    NetworkOption,
    StoreOption,
    console,
    errors,
    print_json,
    run_with_service,
    settings,
)
from balances.cli.output import balances_table
from balances.domain import Balance
from balances.errors import BalancesError
from balances.service.balances import BalanceService

track_app = typer.Typer(help="Which addresses the service keeps fresh.", no_args_is_help=True)


def balance(
    address: Annotated[str, typer.Argument(help="A Stacks address or contract principal.")],
    token: Annotated[
        str | None, typer.Argument(help="stx, ADDR.contract or ADDR.contract::asset.")
    ] = None,
    zeros: Annotated[bool, typer.Option("--zeros", help="Also tokens at zero.")] = False,
    as_json: JsonOption = False,
    store: StoreOption = None,
    chain_url: ChainOption = None,
    network: NetworkOption = None,
) -> None:
    """Show the balances of ADDRESS (or one TOKEN of it), with their freshness."""

    async def work(service: BalanceService) -> None:
        if token is not None:
            found = [await service.get_balance(address, token)]
        elif zeros:
            found = await service.get_balances(address)
        else:
            found = await service.get_all_balances(address)
        if as_json:
            print_json([item.as_dict() for item in found])
        else:
            console.print(balances_table(address, found))
            _hint_metadata(found)
        await _store_metadata(service)

    run_with_service(settings(store, chain_url, network), work)


def sync(
    addresses: Annotated[list[str], typer.Argument(help="Addresses to read from the chain now.")],
    as_json: JsonOption = False,
    store: StoreOption = None,
    chain_url: ChainOption = None,
    network: NetworkOption = None,
) -> None:
    """Read ADDRESSES from the chain now and store what changed (with a progress bar)."""
    config = settings(store, chain_url, network)

    async def work(service: BalanceService) -> dict[str, list[Balance] | str]:
        outcome: dict[str, list[Balance] | str] = {}
        gate = asyncio.Semaphore(config.sync_concurrency)
        with Progress(
            TextColumn("syncing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=as_json,
            transient=True,
        ) as progress:
            bar = progress.add_task("sync", total=len(addresses))

            async def one(address: str) -> None:
                async with gate:
                    try:
                        outcome[address] = await service.refresh_address_balances(address)
                    except BalancesError as error:
                        outcome[address] = f"{type(error).__name__}: {error}"
                progress.advance(bar)

            await asyncio.gather(*(one(address) for address in addresses))
        _show_synced(addresses, outcome, as_json)
        await _store_metadata(service)
        return outcome

    results = run_with_service(config, work)
    failed = [address for address, result in results.items() if isinstance(result, str)]
    if failed:
        raise typer.Exit(1)


@track_app.command("add")
def track_add(
    address: Annotated[str, typer.Argument(help="The address to keep fresh.")],
    tokens: Annotated[
        list[str] | None, typer.Argument(help="Map-based tokens to read for it.")
    ] = None,
    store: StoreOption = None,
) -> None:
    """Track ADDRESS (and map-based TOKENS for it)."""
    entry = run_with_service(settings(store), lambda s: s.track(address, tokens or ()))
    console.print(
        f"tracking {entry.address}" + (f" with {', '.join(entry.tokens)}" if entry.tokens else "")
    )


@track_app.command("remove")
def track_remove(
    address: Annotated[str, typer.Argument(help="The address to stop tracking.")],
    store: StoreOption = None,
) -> None:
    """Stop tracking ADDRESS."""
    removed = run_with_service(settings(store), lambda s: s.untrack(address))
    console.print(f"{address} " + ("is no longer tracked" if removed else "was not tracked"))


@track_app.command("list")
def track_list(as_json: JsonOption = False, store: StoreOption = None) -> None:
    """List the tracked addresses."""
    entries = run_with_service(settings(store), lambda s: s.tracked_addresses())
    if as_json:
        print_json(
            [{"address": e.address, "tokens": list(e.tokens), "since": e.since} for e in entries]
        )
        return
    for entry in entries:
        console.print(entry.address + (f"  {', '.join(entry.tokens)}" if entry.tokens else ""))


def _show_synced(
    addresses: list[str], results: dict[str, list[Balance] | str], as_json: bool
) -> None:
    if as_json:
        print_json(
            {
                address: result if isinstance(result, str) else [b.as_dict() for b in result]
                for address, result in results.items()
            }
        )
        return
    for address in addresses:
        result = results[address]
        if isinstance(result, str):
            console.print(f"[red]{address}: {result}[/red]")
        else:
            console.print(balances_table(address, [b for b in result if b.amount]))
    _hint_metadata([b for r in results.values() if not isinstance(r, str) for b in r])


#: After printing, how long a command goes on fetching the metadata its answer
#: lacked, so that it is stored for the next one.
METADATA_WAIT_SECONDS = 10.0


async def _store_metadata(service: BalanceService) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(service.metadata_settled(), METADATA_WAIT_SECONDS)


def _hint_metadata(balances: list[Balance]) -> None:
    """Say why some amounts are in base units (their decimals are not known yet)."""
    lacking = {b.token_id for b in balances if b.decimals is None}
    if lacking:
        errors.print(
            f"{len(lacking)} tokens' decimals are not known yet (amounts in base units, "
            "shown with ?): `balances tokens sync` seeds every token's metadata",
            highlight=False,
        )
