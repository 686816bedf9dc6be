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


def balances_table(address: str, balances: Sequence[Balance]) -> Table:
    """One row per token: amount with decimals, raw base units, freshness."""
    now = datetime.now(UTC)
    table = Table(title=address, title_justify="left")
    for column, justify in (
        ("token", "left"),
        ("symbol", "left"),
        ("balance", "right"),
        ("base units", "right"),
        ("updated", "right"),
        ("block", "right"),
        ("source", "left"),
        ("fresh", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for balance in balances:
        fresh = "[yellow]stale[/yellow]" if balance.stale else "[green]yes[/green]"
        if balance.error:
            fresh += f" ({balance.error[:60]})"
        table.add_row(
            balance.token_id,
            balance.symbol or "",
            f"{balance.display_amount:,}",
            balance.balance,
            _age(balance.updated_at, now),
            "-" if balance.block_height is None else str(balance.block_height),
            balance.source,
            fresh,
        )
    return table
