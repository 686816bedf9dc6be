"""The README's configuration table names every setting, with its real default.

The table is hand-written for readers; this keeps it from drifting when a setting is
added or a default changes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

from balances import BalanceServiceConfig
from balances.config import NetworkConfig

README = Path(__file__).resolve().parents[2] / "README.md"
# Settings documented under another name: the Vercel SDK's own variables, and the
# per-network table (``BALANCES_NETWORKS__<NAME>__...``) checked separately below.
OTHER_NAMES = {
    "vercel_blob_token": "BLOB_READ_WRITE_TOKEN",
    "vercel_blob_api_url": "VERCEL_BLOB_API_URL",
}


def _table_rows() -> dict[str, str]:
    """Each variable in the table's first column -> its default column."""
    rows: dict[str, str] = {}
    for line in README.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`"):
            for name in re.findall(r"`([A-Z_<>]+)`", cells[0]):
                rows[name] = cells[1]
    return rows


def _settings(model: type[BaseModel], prefix: str) -> Iterator[tuple[str, object]]:
    for field_name, field in model.model_fields.items():
        annotation = field.annotation
        if field_name in OTHER_NAMES or field_name == "networks":
            continue
        name = f"{prefix}{field_name.upper()}"
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _settings(annotation, f"{name}__")
        else:
            yield name, field.get_default(call_default_factory=True)


def _shown(default: object) -> str | None:
    """How the table shows a scalar default, or None when it describes it in words."""
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    if isinstance(default, int | float | str):
        return str(default)
    return None


def test_every_setting_is_in_the_table_with_its_default() -> None:
    rows = _table_rows()
    settings = list(_settings(BalanceServiceConfig, "BALANCES_"))
    assert len(settings) > 20  # the walk found the nested sections too
    missing = [name for name, _ in settings if name not in rows]
    assert not missing, f"README configuration table lacks {missing}"
    for name, default in settings:
        shown = _shown(default)
        if shown is not None:
            assert f"`{shown}`" in rows[name], f"{name}: README says {rows[name]}, code {shown}"


def test_network_and_vercel_variables_are_in_the_table() -> None:
    rows = _table_rows()
    for name in OTHER_NAMES.values():
        assert name in rows
    for field_name in NetworkConfig.model_fields:
        assert f"BALANCES_NETWORKS__<NAME>__{field_name.upper()}" in rows
