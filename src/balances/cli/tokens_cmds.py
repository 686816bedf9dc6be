"""``balances tokens sync``: seed the token metadata of a new deployment in bulk."""

from __future__ import annotations

import typer

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
from balances.service.balances import BalanceService
from balances.sync.metadata import SeedReport

tokens_app = typer.Typer(help="The token registry: what each token is.", no_args_is_help=True)


@tokens_app.command("sync")
def sync(
    as_json: JsonOption = False,
    store: StoreOption = None,
    chain_url: ChainOption = None,
    network: NetworkOption = None,
) -> None:
    """Store the metadata of every fungible token the Token Metadata API lists, in as
    few requests as it allows (60 tokens a page), so first reads need none."""

    async def work(service: BalanceService) -> SeedReport:
        return await service.sync_token_metadata()

    report = run_with_service(settings(store, chain_url, network), work)
    if as_json:
        print_json(
            {
                "pages": report.pages,
                "stored": report.stored,
                "undecided": report.undecided,
                "total": report.total,
            }
        )
        return
    console.print(
        f"stored the metadata of {report.stored:,} tokens of {report.total:,} listed, "
        f"in {report.pages:,} requests"
        + (f"; {report.undecided:,} listed without decimals yet" if report.undecided else "")
    )
