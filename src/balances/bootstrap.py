"""Composition root: settings -> the concrete parts of a running service.

Blob stores are opened by URL (:func:`balances.blobs.open_blob_store`) and chain
clients by network name (:func:`balances.chain.networks.create_client`);
:class:`~balances.service.BalanceService` wires them from its config. This module
applies command-line overrides to the settings and builds the service the API and
the CLI run.
"""

from __future__ import annotations

from pydantic import ValidationError

from balances.blobs.factory import DEFAULT_BLOB_URL, open_blob_store
from balances.config import BalanceServiceConfig, NetworkConfig
from balances.errors import ConfigError
from balances.service.balances import BalanceService

__all__ = ["DEFAULT_BLOB_URL", "build_service", "load_config", "open_blob_store"]


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


def build_service(config: BalanceServiceConfig) -> BalanceService:
    """The service for ``config``: its store, its network's client, its cache."""
    return BalanceService(config)
