"""Composition root: settings -> the concrete parts of a running service.

The one place that turns a :class:`~balances.config.BalanceServiceConfig` into
concrete parts: the blob store its URL names, the chain client of a named network,
the HTTP price source. :class:`~balances.service.BalanceService` asks it for every
part it is not handed, and the CLI applies its command-line overrides here.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import ValidationError

from balances.blobs import BlobStore
from balances.blobs.factory import DEFAULT_BLOB_URL, open_blob_store
from balances.chain.client import StacksClient
from balances.config import BalanceServiceConfig, NetworkConfig
from balances.errors import ConfigError
from balances.prices import HttpPriceSource, PriceSource

__all__ = [
    "DEFAULT_BLOB_URL",
    "create_client",
    "load_config",
    "network_config",
    "open_blob_store",
    "open_configured_store",
    "open_price_source",
]


def load_config(
    *,
    store_url: str | None = None,
    chain_url: str | None = None,
    network: str | None = None,
    base: BalanceServiceConfig | None = None,
) -> BalanceServiceConfig:
    """``BALANCES_*`` settings (or ``base``) with command-line overrides on top.

    ``chain_url`` replaces the active network's API URL, keeping its key and limits.
    """
    config = base if base is not None else BalanceServiceConfig.from_env()
    update: dict[str, object] = {}
    if network is not None:
        update["network"] = network
    if store_url is not None:
        update["store_url"] = store_url
    if update:
        try:
            config = BalanceServiceConfig.model_validate({**config.model_dump(), **update})
        except ValidationError as error:
            raise ConfigError(f"invalid option: {error.errors()[0]['msg']}") from error
    if chain_url is not None:
        active = config.networks.get(config.network) or NetworkConfig()
        networks = {
            **config.networks,
            config.network: active.model_copy(update={"api_url": chain_url}),
        }
        config = config.model_copy(update={"networks": networks})
    return config


def open_configured_store(config: BalanceServiceConfig) -> BlobStore:
    """The store ``config.store_url`` names, with the settings that belong to it
    (Vercel's token, API URL and the ``blob_cache_control`` max-age)."""
    options: dict[str, Any] = {}
    if config.store_url.lower().startswith("vercel:"):
        token = config.vercel_blob_token
        options = {
            "token": None if token is None else token.get_secret_value(),
            "api_url": config.vercel_blob_api_url,
            "cache_control_max_age": config.blob_cache_control,
        }
        if token is None:
            raise ConfigError("BALANCES_STORE_URL=vercel:// needs BLOB_READ_WRITE_TOKEN")
    return open_blob_store(config.store_url, **options)


def network_config(config: BalanceServiceConfig, name: str | None = None) -> NetworkConfig:
    """The settings of network ``name`` (default: the configured ``network``)."""
    chosen = config.network if name is None else name
    found = config.networks.get(chosen)
    if found is None:
        known = ", ".join(sorted(config.networks))
        variable = f"BALANCES_NETWORKS__{chosen.upper()}__API_URL"
        raise ConfigError(
            f"unknown network {chosen!r}; configured networks: {known}. "
            f"Configure it with {variable}"
        )
    return found


def create_client(
    config: BalanceServiceConfig,
    http: httpx.AsyncClient,
    network: str | None = None,
    **options: Any,
) -> StacksClient:
    """A client for ``network`` with its URL, API key and rate limit.

    ``options`` go to :class:`StacksClient` (retry, timeout, clock, sleep, ...).
    """
    settings = network_config(config, network)
    if settings.api_url is None:
        raise ConfigError("the network has no api_url")
    return StacksClient(
        http,
        settings.api_url,
        api_key=settings.api_key,
        requests_per_minute=settings.rate_limit,
        **options,
    )


def open_price_source(config: BalanceServiceConfig, http: httpx.AsyncClient) -> PriceSource | None:
    """The configured HTTP price source, or None when no price URL is set."""
    prices = config.prices
    if prices.url_template is None:
        return None
    return HttpPriceSource(
        http, prices.url_template, history_url_template=prices.history_url_template
    )
