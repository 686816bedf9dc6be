"""The ``balances`` Typer app: every command registered in one place."""

from __future__ import annotations

import json
from importlib.metadata import version as installed_version
from typing import Annotated

import typer

from balances.cli import (
    balance_cmds,
    bulk_cmds,
    cost_cmds,
    graphql_cmds,
    history_cmds,
    ingest_cmds,
    scheduler_cmds,
    serve_cmds,
    store_cmds,
    tokens_cmds,
    watch_cmds,
    webhooks_cmds,
)
from balances.config import BalanceServiceConfig
from balances.errors import ConfigError

app = typer.Typer(
    help="Token balances on the Stacks blockchain.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
testing_app = typer.Typer(help="Test doubles for offline use.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(testing_app, name="testing")
app.add_typer(balance_cmds.track_app, name="track")
app.add_typer(bulk_cmds.bulk_app, name="bulk")
app.add_typer(bulk_cmds.cache_app, name="cache")
app.add_typer(scheduler_cmds.scheduler_app, name="scheduler")
app.add_typer(ingest_cmds.ingest_app, name="ingest")
app.add_typer(tokens_cmds.tokens_app, name="tokens")
app.add_typer(store_cmds.store_app, name="store")
app.add_typer(webhooks_cmds.webhooks_app, name="webhooks")
app.add_typer(graphql_cmds.graphql_app, name="graphql")
app.command()(balance_cmds.balance)
app.command()(balance_cmds.sync)
app.command()(history_cmds.history)
app.command()(history_cmds.portfolio)
app.command()(history_cmds.backfill)
app.command()(serve_cmds.serve)
app.command()(serve_cmds.demo)
app.command()(cost_cmds.cost)
app.command()(watch_cmds.watch)


@app.command()
def version() -> None:
    """Print the installed version."""
    typer.echo(installed_version("balances"))


@config_app.command("show")
def config_show() -> None:
    """Print the effective configuration (defaults + BALANCES_* variables), secrets hidden."""
    try:
        config = BalanceServiceConfig.from_env()
    except ConfigError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from error
    typer.echo(json.dumps(config.model_dump(mode="json"), indent=2))


@testing_app.command("fake-chain")
def fake_chain(
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 3999,
    host: Annotated[str, typer.Option(help="Interface to bind (loopback by default).")] = (
        "127.0.0.1"
    ),
    empty: Annotated[bool, typer.Option(help="Start with an empty ledger.")] = False,
) -> None:
    """Serve the Stacks API stand-in (seeded with demo data unless --empty)."""
    from balances.testing import FakeChain, demo_chain, run_fake_chain_forever

    chain = FakeChain() if empty else demo_chain()
    typer.echo(f"Stacks API stand-in on http://{host}:{port} (Ctrl-C to stop)", err=True)
    run_fake_chain_forever(chain, host=host, port=port)


def main() -> None:
    app()
