"""The sections of the settings: cache, networks, API, scheduler, ingestion, prices."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
)

from balances.chain.networks import default_rate_limit
from balances.domain import TokenId


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CacheTimeouts(Frozen):
    """How long cached answers stay fresh, in seconds."""

    current: float = Field(300.0, gt=0, description="seconds; current balances (5 minutes)")
    time_series: float = Field(3600.0, gt=0, description="seconds; history answers (1 hour)")
    snapshots: float = Field(86400.0, gt=0, description="seconds; daily rollups (24 hours)")


class NetworkConfig(Frozen):
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
        return split_list(value)

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


class ApiConfig(Frozen):
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
    max_consistency_reads: int = Field(
        200,
        ge=0,
        description="balances of one bulk answer read at an older block than the rest that "
        "are re-read as of its block, at most (beyond: a behind_block error each)",
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
        return split_list(value)


def split_list(value: Any) -> Any:
    """An environment variable is one string: accept a comma-separated list."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class SchedulerSettings(Frozen):
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
        return split_list(value)


IngestSource = Literal["pull", "chainhook", "observer"]


class IngestConfig(Frozen):
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
        return split_list(value)


class FeedConfig(Frozen):
    """The change feed and its streams (docs/change-feed.md)."""

    enabled: bool = Field(
        True,
        description="true or false; keep the change feed (written by the replica that folds "
        "blocks) and serve GET /stream/balances",
    )
    retention_hours: float = Field(
        168.0, gt=0, description="hours the feed keeps changes for resuming (default a week)"
    )
    queue_limit: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="undelivered changes a stream consumer may fall behind before it is cut off",
    )
    heartbeat_seconds: float = Field(
        15.0, gt=0, le=300, description="seconds between keep-alive comments on an idle stream"
    )
    max_addresses: int = Field(
        1000, ge=1, le=100_000, description="addresses one stream or subscription may filter"
    )
    write_seconds: float = Field(
        0.0,
        ge=0,
        le=3600,
        description="seconds between durable feed segments at least (0: one with every "
        "journal segment); more is cheaper, but replicas that do not ingest stream that late",
    )


class WebhookConfig(Frozen):
    """Signed webhook deliveries of the change feed (README, "Webhooks")."""

    max_subscriptions: int = Field(
        1000, ge=1, le=100_000, description="webhook subscriptions the service keeps at most"
    )
    max_failures: int = Field(
        10,
        ge=1,
        le=1000,
        description="consecutive failed deliveries after which a subscription is dead-lettered",
    )
    backoff_seconds: float = Field(
        1.0, gt=0, le=3600, description="first retry delay; doubled per failure, with jitter"
    )
    backoff_max_seconds: float = Field(
        300.0, gt=0, le=86_400, description="longest delay between two delivery attempts"
    )
    timeout_seconds: float = Field(
        10.0, gt=0, le=120, description="seconds a receiver has to answer one delivery"
    )
    batch_size: int = Field(
        500, ge=1, le=10_000, description="changes one delivery carries at most"
    )
    allow_private_urls: bool = Field(
        False,
        description="true or false; deliver to loopback, private and link-local addresses "
        "too (false: refused, so a subscription cannot reach the service's own network)",
    )


class GraphQLConfig(Frozen):
    """The GraphQL endpoint at ``/graphql`` (README, "GraphQL")."""

    enabled: bool = Field(True, description="serve /graphql (queries, mutations, subscriptions)")
    introspection: bool = Field(
        True, description="answer introspection queries (the schema; GraphiQL needs it)"
    )
    max_depth: int = Field(
        8, ge=2, le=50, description="deepest nesting of fields one operation may ask for"
    )
    max_cost: int = Field(
        250_000,
        ge=100,
        le=100_000_000,
        description="fields one operation may resolve at most (lists count once per item)",
    )


SyncOnRead = Literal["never", "missing", "stale"]
Layout = Literal["sharded", "spec"]


class PriceConfig(Frozen):
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
        return split_list(value)

    @field_validator("url_template", "history_url_template")
    @classmethod
    def _has_placeholder(cls, value: str | None) -> str | None:
        if value is not None and "{token_id}" not in value:
            raise ValueError("the URL template needs a {token_id} placeholder")
        return value
