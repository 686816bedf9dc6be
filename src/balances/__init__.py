"""balances: token balances on the Stacks blockchain, current and historical.

The curated public API. Everything listed in ``__all__`` is supported; modules not
re-exported here are internal and may change.
"""

from balances.blobs import (
    BlobStore,
    IfMatch,
    LocalBlobStore,
    MemoryBlobStore,
    MeteredBlobStore,
    open_blob_store,
)
from balances.chain.client import StacksClient
from balances.config import BalanceServiceConfig, CacheTimeouts, NetworkConfig
from balances.domain import (
    MAX_AMOUNT,
    STX,
    Balance,
    BalancePoint,
    Granularity,
    Period,
    Principal,
    TokenId,
    parse_amount,
    parse_timestamp,
    to_display_units,
)
from balances.errors import (
    BalanceNotFoundError,
    BalancesError,
    BlobNotFoundError,
    BlobStoreError,
    ChainError,
    ChainUnavailableError,
    ConfigError,
    ContractCallError,
    InvalidAddressError,
    InvalidAmountError,
    InvalidGranularityError,
    InvalidPeriodError,
    InvalidTokenIdError,
    NotFoundError,
    PreconditionFailedError,
    RateLimitedError,
    ValidationError,
)
from balances.scheduler import DEFAULT_SCHEDULER_CONFIG, BalanceScheduler, SchedulerConfig
from balances.service.balances import BalanceService
from balances.service.series import BalanceSeriesAPI

__version__ = "0.1.0"

__all__ = [
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
