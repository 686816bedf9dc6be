"""``balances webhooks list``: the webhook subscriptions of the store and their state.

Read from the store, so it works on any machine that can reach it: which
subscriptions exist, how far each got (its cursor), and which are dead-lettered
(with the last error). Manage them with the keyed ``/webhooks`` routes.
"""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.table import Table

from balances.cli.common import (
    JsonOption,
    StoreOption,
    console,
    fail,
    print_json,
    run_with_service,
    settings,
)
from balances.domain.webhooks import Webhook
from balances.service.balances import BalanceService

webhooks_app = typer.Typer(help="Webhook subscriptions of the change feed.", no_args_is_help=True)


@webhooks_app.command("list")
def list_webhooks(as_json: JsonOption = False, store: StoreOption = None) -> None:
    """Every subscription: its URL, filter, state (active or dead), cursor and last error."""
    hooks = run_with_service(settings(store), _list)
    if hooks is None:
        fail("this store keeps no change feed, so no webhooks (BALANCES_LAYOUT=sharded)", 1)
    if as_json:
        print_json([hook.public() for hook in hooks])
        return
    if not hooks:
        console.print("no webhook subscriptions")
        return
    console.print(_table(hooks))


async def _list(service: BalanceService) -> list[Webhook] | None:
    return None if service.webhooks is None else await service.webhooks.list()


def _table(hooks: list[Webhook]) -> Table:
    table = Table(title="webhooks", title_justify="left")
    for column in ("id", "url", "filter", "state", "cursor", "delivered", "last delivery", "error"):
        table.add_column(column, justify="right" if column in ("cursor", "delivered") else "left")
    for hook in hooks:
        table.add_row(
            hook.id,
            hook.url,
            _filter(hook),
            "[red]dead[/red]" if hook.state == "dead" else "active",
            str(hook.cursor),
            str(hook.delivered),
            _when(hook.last_delivery_at),
            hook.last_error or "",
        )
    return table


def _filter(hook: Webhook) -> str:
    addresses = f"{len(hook.addresses)} addresses" if hook.addresses else "every address"
    tokens = f", {len(hook.tokens)} tokens" if hook.tokens else ""
    return addresses + tokens


def _when(at: float | None) -> str:
    return "" if at is None else datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")
