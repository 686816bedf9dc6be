"""``BalanceServiceConfig``: every setting of the service, with its default."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from balances.chain.networks import KNOWN_MAP_TOKENS, KNOWN_NETWORK_URLS
from balances.config.env import describe, env_name, nested_from_env
from balances.config.sections import (
    ApiConfig,
    CacheTimeouts,
    FeedConfig,
    Frozen,
    GraphQLConfig,
    IngestConfig,
    Layout,
    NetworkConfig,
    PriceConfig,
    SchedulerSettings,
    SyncOnRead,
    WebhookConfig,
)
from balances.errors import ConfigError


def _default_networks() -> dict[str, NetworkConfig]:
    return {name: NetworkConfig(api_url=url) for name, url in KNOWN_NETWORK_URLS.items()}


class BalanceServiceConfig(Frozen):
    """The service's settings, with the spec's fields and defaults."""

    cache_timeouts: CacheTimeouts = Field(default_factory=CacheTimeouts)
    max_points_per_month: int = Field(
        1000, gt=0, description="a positive integer; raw points kept per series-month"
    )
    blob_cache_control: int = Field(
        300, ge=60, description="seconds >= 60; CDN max-age of written blobs"
    )
    sync_concurrency: int = Field(
        10, gt=0, description="a positive integer; addresses synced in parallel"
    )
    store_url: str = Field(
        "file://./.balances", description="file://PATH, memory://, s3://bucket/prefix, vercel://"
    )
    network: str = Field("mainnet", description="the name of a configured network")
    networks: dict[str, NetworkConfig] = Field(default_factory=_default_networks)
    vercel_blob_token: SecretStr | None = Field(None, description="BLOB_READ_WRITE_TOKEN")
    vercel_blob_api_url: str | None = Field(None, description="VERCEL_BLOB_API_URL")
    api: ApiConfig = Field(default_factory=ApiConfig)
    stale_after: float = Field(
        300.0, gt=0, description="seconds; a balance read longer ago than this is stale"
    )
    sync_on_read: SyncOnRead = Field(
        "stale",
        description="never, missing or stale: when a read goes to the chain (missing: only "
        "balances never read; stale: also those older than stale_after)",
    )
    cache_max_addresses: int = Field(
        100_000, gt=0, description="a positive integer; addresses held in the in-process cache"
    )
    cache_max_mb: float = Field(
        256.0, gt=0, description="megabytes (10^6 bytes) the current-balance cache may hold"
    )
    layout: Layout = Field(
        "sharded",
        description="sharded (journal + shards, the cost-optimised default) or spec "
        "(one blob per address and month, as the original service)",
    )
    shards: int = Field(
        256,
        ge=1,
        le=4096,
        description="1-4096; address shards of the sharded layout (fixed per store)",
    )
    retention_days: int = Field(
        365, ge=1, description="days of raw change points kept (daily rollups cover the same)"
    )
    prices: PriceConfig = Field(default_factory=PriceConfig)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    feed: FeedConfig = Field(default_factory=FeedConfig)
    webhooks: WebhookConfig = Field(default_factory=WebhookConfig)
    graphql: GraphQLConfig = Field(default_factory=GraphQLConfig)
    track_on_read: bool = Field(
        True,
        description="true or false; an address read once is kept fresh by the scheduler "
        "(anonymous REST reads: only within api.anonymous_track_per_minute)",
    )

    @model_validator(mode="after")
    def _networks_are_complete(self) -> BalanceServiceConfig:
        for name, network in self.networks.items():
            if network.api_url is None:
                variable = env_name(("networks", name, "api_url"))
                raise ValueError(f"network {name!r} needs an API URL: set {variable}")
        if self.network not in self.networks:
            known = ", ".join(sorted(self.networks))
            variable = env_name(("networks", self.network, "api_url"))
            raise ValueError(
                f"{env_name(('network',))}={self.network!r} is not a configured network "
                f"(known: {known}); configure it with {variable}"
            )
        return self

    @model_validator(mode="before")
    @classmethod
    def _fill_known_networks(cls, data: Any) -> Any:
        """Overrides of mainnet/testnet keep the known URL unless one is given."""
        if isinstance(data, dict) and isinstance(data.get("networks"), dict):
            merged: dict[str, Any] = {**_default_networks()}
            for name, value in data["networks"].items():
                if isinstance(value, dict) and name in KNOWN_NETWORK_URLS:
                    value = {"api_url": KNOWN_NETWORK_URLS[name], **value}
                merged[name] = value
            data = {**data, "networks": merged}
        return data

    @property
    def active_network(self) -> NetworkConfig:
        return self.networks[self.network]

    @property
    def address_network(self) -> Literal["mainnet", "testnet"]:
        """Which addresses the active network holds (SP/SM or ST/SN)."""
        configured = self.active_network.address_network
        if configured is not None:
            return configured
        return "mainnet" if self.network == "mainnet" else "testnet"

    @property
    def map_tokens(self) -> tuple[str, ...]:
        """The map-based tokens read for every address on the active network."""
        configured = self.active_network.map_tokens
        if configured is not None:
            return tuple(configured)
        return KNOWN_MAP_TOKENS.get(self.network, ())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BalanceServiceConfig:
        """Read ``BALANCES_*`` (and the Vercel variables) from ``environ`` or ``os.environ``."""
        source = os.environ if environ is None else environ
        data, origins = nested_from_env(source)
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            raise ConfigError(describe(error, origins, cls)) from error
