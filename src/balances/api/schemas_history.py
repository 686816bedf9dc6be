"""Bodies of the history routes (pydantic; they make the OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Granularity = Literal["5m", "hour", "day", "week", "month"]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class HistoryPointOut(_Out):
    at: datetime = Field(description="the bucket's start (UTC)")
    balance: str | None = Field(
        description="the amount in force at the bucket's end; null: unknown"
    )


class HistoryOut(_Out):
    address: str
    token_id: str
    period: str
    granularity: Granularity = Field(description="the granularity used (auto resolved)")
    start: datetime
    end: datetime
    decimals: int | None = Field(description="null while the token's metadata is unknown")
    symbol: str | None
    start_balance: str | None = Field(description="the amount in force at start")
    points: list[HistoryPointOut]
    updated_at: datetime | None = Field(description="when the current amount was confirmed")
    block_height: int | None
    stale: bool
    source: Literal["cache", "store", "chain"]

    @classmethod
    def of(cls, answer: Any) -> HistoryOut:
        return cls.model_validate(answer.as_dict())


class PortfolioTokenOut(_Out):
    token_id: str
    symbol: str | None
    decimals: int | None = Field(description="null while unknown (then its USD value is null)")
    priced: bool = Field(description="a USD price is known for this token")


class PortfolioBucketOut(_Out):
    at: datetime
    balances: dict[str, str | None]
    usd: dict[str, str | None] = Field(
        description="USD value per token; null: no price, or decimals unknown"
    )
    total_usd: str | None = Field(description="sum over priced tokens; null: none priced")


class PortfolioOut(_Out):
    address: str
    period: str
    granularity: Granularity
    start: datetime
    end: datetime
    tokens: list[PortfolioTokenOut]
    buckets: list[PortfolioBucketOut]
    missing_prices: list[str] = Field(description="tokens held without a known price")
    stale: bool
    updated_at: datetime | None

    @classmethod
    def of(cls, answer: Any) -> PortfolioOut:
        return cls.model_validate(answer.as_dict())


class BalanceAtOut(_Out):
    address: str
    token_id: str
    at: datetime
    block_height: int | None
    balance: str
    decimals: int | None = Field(description="null while the token's metadata is unknown")
    display_balance: str | None = Field(description="balance / 10^decimals; null: unknown")
    symbol: str | None

    @classmethod
    def of(cls, answer: Any) -> BalanceAtOut:
        return cls.model_validate(answer.as_dict())


class BackfillOut(_Out):
    address: str
    txs_seen: int = Field(description="transactions walked by this call")
    points_written: int
    total_txs: int
    total_points: int
    first_point: dict[str, datetime] = Field(description="each token's oldest point")
    stopped: dict[str, str] = Field(description="tokens whose history starts later, and why")
    resumed: bool
    done: bool
    already_done: bool
