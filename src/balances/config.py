"""Configuration: ``BalanceServiceConfig`` and the only code that reads the environment.

Every setting has a default. :meth:`BalanceServiceConfig.from_env` reads variables
prefixed ``BALANCES_``; nested fields use ``__`` (``BALANCES_CACHE_TIMEOUTS__CURRENT``,
``BALANCES_NETWORKS__DEVNET__API_URL``). Two variables keep the names their own
ecosystems use: ``BLOB_READ_WRITE_TOKEN`` and ``VERCEL_BLOB_API_URL`` (Vercel Blob).
Durations are seconds (the TypeScript spec used milliseconds).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from balances.chain.networks import KNOWN_MAP_TOKENS, KNOWN_NETWORK_URLS, default_rate_limit
from balances.domain import TokenId
from balances.errors import ConfigError

ENV_PREFIX = "BALANCES_"
ENV_NESTING = "__"
#: Variables read without the prefix, as their own ecosystems name them.
FOREIGN_ENV = {
    "BLOB_READ_WRITE_TOKEN": "vercel_blob_token",
    "VERCEL_BLOB_API_URL": "vercel_blob_api_url",
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CacheTimeouts(_Frozen):
    """How long cached answers stay fresh, in seconds."""

    current: float = Field(300.0, gt=0, description="seconds; current balances (5 minutes)")
    time_series: float = Field(3600.0, gt=0, description="seconds; history answers (1 hour)")
    snapshots: float = Field(86400.0, gt=0, description="seconds; daily rollups (24 hours)")


class NetworkConfig(_Frozen):
    """One named Stacks network: the API it is read from, its key and rate limit."""

    api_url: str | None = Field(
        None, description="the Stacks API base URL (known for mainnet and testnet)"
    )
    api_key: SecretStr | None = Field(None, description="sent as x-api-key")
    requests_per_minute: int | None = Field(
        None,
        gt=0,
        description="client-side limit; default on Hiro's hosts 25, or 900 with an API key; "
        "elsewhere none",
    )

    map_tokens: list[str] | None = Field(
        None,
        description="comma-separated contract ids of map-based tokens read for every address "
        "(default: the known ones of mainnet, none elsewhere)",
    )
    address_network: Literal["mainnet", "testnet"] | None = Field(
        None,
        description="mainnet or testnet: which addresses belong here "
        "(default: mainnet for the network named mainnet, testnet otherwise)",
    )

    @field_validator("map_tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("map_tokens", mode="after")
    @classmethod
    def _canonical_tokens(cls, value: list[str] | None) -> list[str] | None:
        """Each one a contract id, in canonical form (a bad one names itself)."""
        if value is None:
            return None
        tokens = [TokenId.parse(text) for text in value]
        if any(token.is_stx for token in tokens):
            raise ValueError("stx is not a map-based token")
        return [str(token) for token in tokens]

    @property
    def rate_limit(self) -> float:
        """Requests a minute to pace at (``inf``: not paced; 429s still honoured)."""
        if self.requests_per_minute is not None:
            return self.requests_per_minute
        return default_rate_limit(self.api_url or "", self.api_key is not None)


class ApiConfig(_Frozen):
    """The REST API: where ``balances serve`` listens and who may write."""

    key: SecretStr | None = Field(
        None,
        description="x-api-key for write/admin routes; unset: those routes are disabled",
    )
    host: str = Field("127.0.0.1", description="interface to bind (loopback by default)")
    port: int = Field(8000, ge=0, le=65535, description="TCP port, 0-65535 (0: a free port)")
    max_batch: int = Field(1000, gt=0, description="a positive integer; items per batch request")
    max_bulk_items: int = Field(
        1000, gt=0, description="a positive integer; addresses x tokens per bulk request"
    )
    anonymous_track_per_minute: int = Field(
        0,
        ge=0,
        description="addresses a client without the API key may add to the tracked set by "
        "reading them, per minute (0: none; keyed reads follow TRACK_ON_READ)",
    )
    anonymous_track_max: int = Field(
        10_000, ge=0, description="no anonymous additions once the tracked set holds this many"
    )
    max_body_bytes: int = Field(
        2_000_000, gt=0, description="bytes; a larger request body is refused with 413 unread"
    )
    max_delivery_bytes: int = Field(
        64_000_000,
        gt=0,
        description="bytes; the same for push deliveries (whole blocks, authenticated)",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="origins allowed by CORS, comma-separated (https://a.example,https://b.example)",
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        return _split_list(value)


def _split_list(value: Any) -> Any:
    """An environment variable is one string: accept a comma-separated list."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class SchedulerSettings(_Frozen):
    """The background scheduler that ``balances serve`` runs (see balances.scheduler)."""

    enabled: bool = Field(True, description="true or false; run it inside balances serve")
    sync_interval: float = Field(300.0, gt=0, description="seconds between sync passes")
    maintain_interval: float = Field(
        86400.0, gt=0, description="seconds between compactions, rollups and retention"
    )
    prices_interval: float = Field(3600.0, gt=0, description="seconds between price records")
    aggregates_interval: float = Field(
        3600.0, gt=0, description="seconds between portfolio aggregate precomputes"
    )
    aggregate_periods: list[str] = Field(
        default_factory=list,
        description="comma-separated periods (30d,1y) precomputed for every tracked "
        "address; none by default: each is a billed write per address and run",
    )
    lease_seconds: float = Field(
        600.0, gt=0, description="seconds a leader's lease lasts (replicas: one leader)"
    )

    @field_validator("aggregate_periods", mode="before")
    @classmethod
    def _split_periods(cls, value: Any) -> Any:
        return _split_list(value)


IngestSource = Literal["pull", "chainhook", "observer"]


class IngestConfig(_Frozen):
    """Block ingestion (docs/ingestion.md): balances kept fresh by folding each block's
    events, at a cost that grows with chain activity, not with the tracked set."""

    enabled: bool = Field(
        True,
        description="true or false; balances serve folds blocks (false: only the scheduler's "
        "polling sync keeps tracked addresses fresh)",
    )
    source: IngestSource = Field(
        "pull",
        description="pull (the Stacks API's block routes; no key needed), chainhook "
        "(deliveries to POST /ingest/chainhook) or observer (a stacks-node's event observer "
        "posting to /new_block ...)",
    )
    chainhook_secret: SecretStr | None = Field(
        None, description="the Chainhook consumer secret (Authorization: Bearer ...)"
    )
    observer_hosts: list[str] = Field(
        default_factory=lambda: ["127.0.0.1", "::1"],
        description="comma-separated client addresses allowed to post node observer events "
        "(the node sends no credentials)",
    )
    flush_seconds: float = Field(
        50.0, gt=0, le=60, description="seconds (at most 60) before applied blocks are written"
    )
    mark_seconds: float = Field(
        600.0, gt=0, description="seconds; a quiet chain's cursor is written this often"
    )
    window_blocks: int = Field(128, ge=1, description="recent blocks kept to undo a reorg")
    max_lag_blocks: int = Field(
        720, ge=1, description="blocks behind the tip beyond which ingestion resumes from the tip"
    )
    fresh_lag_blocks: int = Field(
        12, ge=0, description="blocks behind the tip within which ingestion vouches for freshness"
    )
    batch_blocks: int = Field(
        2, ge=1, le=10, description="blocks whose events the pull source reads in one request"
    )
    block_seconds: float = Field(
        5.0, gt=0, description="seconds between blocks expected until measured (pull timing)"
    )
    reorg_reads: int = Field(200, ge=0, description="pairs re-read after a reorg to check its undo")
    reconcile_seconds: float = Field(
        60.0, gt=0, description="seconds between drift checks of a rotating sample"
    )
    reconcile_addresses: int = Field(
        1, ge=0, description="tracked addresses re-read per drift check (0: none)"
    )

    @field_validator("observer_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        return _split_list(value)


SyncOnRead = Literal["never", "missing", "stale"]
Layout = Literal["sharded", "spec"]


class PriceConfig(_Frozen):
    """Where USD prices come from (unset: no prices; portfolios say so)."""

    url_template: str | None = Field(
        None,
        description='URL with {token_id}, answering {"usd": "1.23", "at": unix}',
    )
    history_url_template: str | None = Field(
        None, description="URL with {token_id} for ?from=&to= price history (optional)"
    )
    tokens: list[str] | None = Field(
        None,
        description="comma-separated token ids whose prices the scheduler records "
        "(default: every token the tracked addresses hold)",
    )

    @field_validator("tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("url_template", "history_url_template")
    @classmethod
    def _has_placeholder(cls, value: str | None) -> str | None:
        if value is not None and "{token_id}" not in value:
            raise ValueError("the URL template needs a {token_id} placeholder")
        return value


def _default_networks() -> dict[str, NetworkConfig]:
    return {name: NetworkConfig(api_url=url) for name, url in KNOWN_NETWORK_URLS.items()}


class BalanceServiceConfig(_Frozen):
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
    track_on_read: bool = Field(
        True,
        description="true or false; an address read once is kept fresh by the scheduler "
        "(anonymous REST reads: only within api.anonymous_track_per_minute)",
    )

    @model_validator(mode="after")
    def _networks_are_complete(self) -> BalanceServiceConfig:
        for name, network in self.networks.items():
            if network.api_url is None:
                variable = _env_name(("networks", name, "api_url"))
                raise ValueError(f"network {name!r} needs an API URL: set {variable}")
        if self.network not in self.networks:
            known = ", ".join(sorted(self.networks))
            variable = _env_name(("networks", self.network, "api_url"))
            raise ValueError(
                f"{_env_name(('network',))}={self.network!r} is not a configured network "
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
        data, origins = _nested_from_env(source)
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            raise ConfigError(_describe(error, origins)) from error


def _nested_from_env(
    environ: Mapping[str, str],
) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    """``BALANCES_A__B=1`` -> ``{"a": {"b": "1"}}``, and where each value came from."""
    data: dict[str, Any] = {}
    origins: dict[tuple[str, ...], str] = {}
    for variable, value in environ.items():
        if variable in FOREIGN_ENV:
            path: tuple[str, ...] = (FOREIGN_ENV[variable],)
        elif variable.upper().startswith(ENV_PREFIX):
            path = tuple(part.lower() for part in variable[len(ENV_PREFIX) :].split(ENV_NESTING))
        else:
            continue
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{variable} conflicts with another variable setting {part}")
            node = child
        node[path[-1]] = value
        origins[path] = variable
    return data, origins


def _describe(error: ValidationError, origins: dict[tuple[str, ...], str]) -> str:
    lines = []
    for problem in error.errors():
        path = tuple(str(part) for part in problem["loc"])
        if not path:  # a whole-model check: its message names the variables
            lines.append(str(problem.get("ctx", {}).get("error", problem["msg"])))
            continue
        variable = origins.get(path) or _env_name(path)
        accepted = _field_description(path)
        shown = f"={problem['input']!r}" if path in origins else ""
        hint = f" (accepted: {accepted})" if accepted else ""
        lines.append(f"{variable}{shown}: {problem['msg']}{hint}")
    return "invalid configuration: " + "; ".join(lines)


def _env_name(path: tuple[str, ...]) -> str:
    if not path:
        return "configuration"
    return ENV_PREFIX + ENV_NESTING.join(part.upper() for part in path)


def _field_description(path: tuple[str, ...]) -> str | None:
    model: type[BaseModel] = BalanceServiceConfig
    description = None
    for part in path:
        field = model.model_fields.get(part)
        if field is None:
            if model is BalanceServiceConfig and part != "networks":
                return None
            continue
        description = field.description
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        elif part == "networks":
            model = NetworkConfig
    return description
