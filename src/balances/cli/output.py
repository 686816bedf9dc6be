"""Rich rendering of answers for people (``--json`` prints the data instead)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from rich.table import Table

from balances.domain import Balance


def _age(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    seconds = max(0, int((now - moment).total_seconds()))
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def _shown(balance: Balance) -> str:
    """The display amount, or ``?`` while the decimals are unknown (never guessed)."""
    if balance.display_amount is None:
        return f"? ({balance.metadata})"
    return f"{balance.display_amount:,}"


def balances_table(address: str, balances: Sequence[Balance]) -> Table:
    """One row per token: amount with decimals, raw base units, freshness."""
    now = datetime.now(UTC)
    table = Table(title=address, title_justify="left")
    amounts = [_shown(b) for b in balances]
    units = [b.balance for b in balances]
    for column, justify in (("token", "left"), ("symbol", "left")):
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    # Amounts are never cut or wrapped: a shortened amount is a wrong amount.
    for column, texts in (("balance", amounts), ("base units", units)):
        width = max((len(text) for text in texts), default=len(column))
        table.add_column(column, justify="right", no_wrap=True, min_width=width)
    for column in ("updated", "block"):
        table.add_column(column, justify="right", overflow="fold")
    for column in ("source", "fresh"):
        table.add_column(column, overflow="fold")
    for index, balance in enumerate(balances):
        fresh = "[yellow]stale[/yellow]" if balance.stale else "[green]yes[/green]"
        if balance.error:
            fresh += f" ({balance.error[:60]})"
        table.add_row(
            balance.token_id,
            balance.symbol or "",
            amounts[index],
            units[index],
            _age(balance.updated_at, now),
            "-" if balance.block_height is None else str(balance.block_height),
            balance.source,
            fresh,
        )
    return table
