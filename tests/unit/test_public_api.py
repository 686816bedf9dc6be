"""The curated public API: pinned, sorted, importable, and light to import."""

from __future__ import annotations

import subprocess
import sys

import balances

# Changing the public API is a decision: update this list on purpose.
PUBLIC_API = [
    "DEFAULT_SCHEDULER_CONFIG",
    "MAX_AMOUNT",
    "STX",
    "Balance",
    "BalanceNotFoundError",
    "BalancePoint",
    "BalanceScheduler",
    "BalanceSeriesAPI",
    "BalanceService",
    "BalanceServiceConfig",
    "BalancesError",
    "BlobNotFoundError",
    "BlobStore",
    "BlobStoreError",
    "CacheTimeouts",
    "ChainError",
    "ChainUnavailableError",
    "ConfigError",
    "ContractCallError",
    "Granularity",
    "IfMatch",
    "InvalidAddressError",
    "InvalidAmountError",
    "InvalidGranularityError",
    "InvalidPeriodError",
    "InvalidTokenIdError",
    "LocalBlobStore",
    "MemoryBlobStore",
    "MeteredBlobStore",
    "NetworkConfig",
    "NotFoundError",
    "Period",
    "PreconditionFailedError",
    "Principal",
    "RateLimitedError",
    "SchedulerConfig",
    "StacksClient",
    "TokenId",
    "ValidationError",
    "__version__",
    "open_blob_store",
    "parse_amount",
    "parse_timestamp",
    "to_display_units",
]


def _isort_style(name: str) -> tuple[int, str]:
    """Constants, then classes, then functions; alphabetical within each (ruff RUF022)."""
    if name.isupper():
        return 0, name
    if name[0].isupper():
        return 1, name
    return 2, name


def test_public_api_is_pinned() -> None:
    assert balances.__all__ == PUBLIC_API


def test_public_api_is_sorted() -> None:
    assert balances.__all__ == sorted(balances.__all__, key=_isort_style)


def test_every_public_name_resolves() -> None:
    for name in balances.__all__:
        assert getattr(balances, name) is not None, name


def test_importing_the_package_loads_no_server_or_cloud_code() -> None:
    probe = (
        "import sys, balances; "
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette', 'obstore', 'moto', "
        "'typer') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"
