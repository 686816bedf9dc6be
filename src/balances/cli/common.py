"""What every command shares: options, settings, running async code, errors, output."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from balances.bootstrap import load_config
from balances.config import BalanceServiceConfig
from balances.errors import BalancesError, ConfigError, ValidationError
from balances.service.balances import BalanceService

T = TypeVar("T")
console = Console()
errors = Console(stderr=True)

StoreOption = Annotated[
    str | None,
    typer.Option("--store", help="Blob store URL (file://PATH, memory://, s3://..., vercel://)."),
]
ChainOption = Annotated[
    str | None,
    typer.Option("--chain-url", help="Stacks API base URL (overrides the network's URL)."),
]
NetworkOption = Annotated[
    str | None, typer.Option("--network", help="Configured network name (mainnet, testnet, ...).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def settings(
    store: str | None = None, chain_url: str | None = None, network: str | None = None
) -> BalanceServiceConfig:
    """The settings with the command's overrides; a bad one exits with status 2."""
    try:
        return load_config(store_url=store, chain_url=chain_url, network=network)
    except ConfigError as error:
        fail(str(error), 2)


def run_with_service(
    config: BalanceServiceConfig, work: Callable[[BalanceService], Awaitable[T]]
) -> T:
    """Run ``work`` with a service built from ``config``; errors exit cleanly."""

    async def main() -> T:
        async with BalanceService(config) as service:
            return await work(service)

    try:
        return asyncio.run(main())
    except (ValidationError, ConfigError) as error:
        fail(str(error), 2)
    except BalancesError as error:
        fail(f"{type(error).__name__}: {error}", 1)


def fail(message: str, code: int) -> NoReturn:
    errors.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    raise typer.Exit(code)


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))
