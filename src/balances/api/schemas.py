"""Response and request bodies of the REST API (pydantic; they make the OpenAPI schema)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from balances.api.params import TOKEN_ID_FORMAT
from balances.domain import Balance
from balances.domain.tokens import TOKEN_ID_PATTERN
from balances.stores.tokens.registry import TokenInfo
from balances.stores.tracked import TrackedAddress


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class ErrorOut(_Out):
    error: str = Field(description="a stable code, e.g. invalid_address, chain_unavailable")
    message: str = Field(description="what was wrong and what is accepted")


class PendingOut(_Out):
    inbound: str = Field(description="base units the mempool will credit (decimal string)")
    outbound: str = Field(description="base units the mempool will debit, fees included")


class BalanceOut(_Out):
    address: str
    token_id: str = Field(description="the contract id (or stx)")
    balance: str = Field(description="amount in base units, a decimal string (u128)")
    decimals: int | None = Field(description="null while the token's metadata is unknown")
    display_balance: str | None = Field(
        description="balance / 10^decimals, exact; null while the decimals are unknown"
    )
    symbol: str | None
    updated_at: datetime | None = Field(description="when the chain last confirmed this amount")
    block_height: int | None = Field(description="the chain tip at that read")
    source: Literal["cache", "store", "chain"]
    stale: bool = Field(description="older than the staleness limit, or the last refresh failed")
    error: str | None = Field(description="why the last refresh failed, when it did")
    pending: PendingOut | None = Field(
        None, description="unconfirmed mempool amounts, apart from the balance (null: unknown)"
    )
    metadata: Literal["known", "pending", "unknown"] = Field(
        "known",
        description="decimals and symbol: known; pending (being read); unknown (read failed, "
        "retried later)",
    )

    @classmethod
    def of(cls, balance: Balance) -> BalanceOut:
        return cls.model_validate(balance.as_dict())


class BalancesOut(_Out):
    address: str
    balances: list[BalanceOut]


class RefreshOut(BalancesOut):
    refreshed: bool = Field(True, description="at least one amount was read from the chain now")


class TokenOut(_Out):
    token_id: str
    kind: Literal["stx", "native", "map"] = Field(
        description="stx; native (define-fungible-token); map (balances in a Clarity map)"
    )
    asset_identifier: str | None
    decimals: int | None
    symbol: str | None
    name: str | None
    token_uri: str | None
    total_supply: str | None

    @classmethod
    def of(cls, info: TokenInfo) -> TokenOut:
        return cls.model_validate(info.as_dict())


class TrackedOut(_Out):
    address: str
    tokens: list[str]
    since: datetime

    @classmethod
    def of(cls, entry: TrackedAddress) -> TrackedOut:
        since = datetime.fromtimestamp(entry.since, UTC)
        return cls(address=entry.address, tokens=list(entry.tokens), since=since)


class TrackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tokens: list[
        Annotated[
            str, Field(json_schema_extra={"pattern": TOKEN_ID_PATTERN, "format": TOKEN_ID_FORMAT})
        ]
    ] = Field(default_factory=list, max_length=1000, description="map-based tokens to read for it")


class CacheOut(_Out):
    hits: int
    misses: int
    hit_rate: float
    entries: int
    evictions: int


class StorageProblemOut(_Out):
    key: str | None = Field(description="the blob that failed (null: the store as a whole)")
    kind: Literal["corrupt", "backend", "conflict", "other"]
    error: str
    first_seen: float = Field(description="unix seconds")
    last_seen: float = Field(description="unix seconds")
    count: int


class StorageOut(_Out):
    status: Literal["ok", "degraded"]
    problems: list[StorageProblemOut] = Field(
        description="blobs that failed to read in the last 10 minutes (and why)"
    )


class HealthOut(_Out):
    status: Literal["ok", "degraded"] = Field(
        description="degraded (HTTP 503) while reads of the store fail: see storage"
    )
    version: str
    network: str
    store: str = Field(description="the store: its URL scheme (file, memory, s3, vercel, ...)")
    storage: StorageOut
    tracked_addresses: int | None = Field(description="null while the tracked set is unreadable")
    cache: CacheOut
    scheduler: dict[str, Any] | None = Field(
        None, description="the background tasks' last and next runs (null: not running)"
    )
    ingestion: dict[str, Any] | None = Field(
        None, description="block ingestion: its cursor, lag and counts (null: not set up)"
    )
