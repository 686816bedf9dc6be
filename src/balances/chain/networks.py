"""Named networks: build a :class:`StacksClient` for ``mainnet``, ``testnet`` or a
custom network (a devnet, a subnet node) from :class:`BalanceServiceConfig`."""

from __future__ import annotations

from typing import Any

import httpx

from balances.chain.client import StacksClient
from balances.config import BalanceServiceConfig, NetworkConfig
from balances.errors import ConfigError


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
    return StacksClient.for_network(http, network_config(config, network), **options)
