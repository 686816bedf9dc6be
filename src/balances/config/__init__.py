"""Configuration: ``BalanceServiceConfig`` and the only code that reads the environment.

Every setting has a default. :meth:`BalanceServiceConfig.from_env` reads variables
prefixed ``BALANCES_``; nested fields use ``__`` (``BALANCES_CACHE_TIMEOUTS__CURRENT``,
``BALANCES_NETWORKS__DEVNET__API_URL``). Two variables keep the names their own
ecosystems use: ``BLOB_READ_WRITE_TOKEN`` and ``VERCEL_BLOB_API_URL`` (Vercel Blob).
Durations are seconds (the TypeScript spec used milliseconds).
"""

from balances.config.env import ENV_NESTING, ENV_PREFIX, FOREIGN_ENV
from balances.config.sections import (
    ApiConfig,
    CacheTimeouts,
    FeedConfig,
    GraphQLConfig,
    IngestConfig,
    IngestSource,
    Layout,
    NetworkConfig,
    PriceConfig,
    SchedulerSettings,
    SyncOnRead,
    WebhookConfig,
)
from balances.config.settings import BalanceServiceConfig

__all__ = [
    "ENV_NESTING",
    "ENV_PREFIX",
    "FOREIGN_ENV",
    "ApiConfig",
    "BalanceServiceConfig",
    "CacheTimeouts",
    "FeedConfig",
    "GraphQLConfig",
    "IngestConfig",
    "IngestSource",
    "Layout",
    "NetworkConfig",
    "PriceConfig",
    "SchedulerSettings",
    "SyncOnRead",
    "WebhookConfig",
]
