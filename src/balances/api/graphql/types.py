"""The GraphQL object types, each built from the domain's answer it shows.

Amounts are decimal strings in base units, as in the REST API (u128 does not fit
GraphQL's 32-bit ``Int``); a null amount is unknown, never zero. Field names are
camelCase (Strawberry's default), the REST fields' names otherwise.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, NewType

import strawberry

from balances.api.graphql.context import GraphContext
from balances.domain import Balance as DomainBalance
from balances.domain.feed import FeedEntry
from balances.errors import BalancesError
from balances.service.history import BalanceHistory, PortfolioHistory
from balances.stores.tokens.registry import TokenInfo


@strawberry.enum(description="Where an answer came from")
class Source(Enum):
    CACHE = "cache"
    STORE = "store"
    CHAIN = "chain"


@strawberry.enum(description="Whether a token's decimals and symbol are known")
class Metadata(Enum):
    KNOWN = "known"
    PENDING = "pending"
    UNKNOWN = "unknown"


@strawberry.type(description="What is known of one token")
class Token:
    token_id: str
    kind: str = strawberry.field(description="stx, native or map")
    asset_identifier: str | None
    decimals: int | None = strawberry.field(description="null while unknown")
    symbol: str | None
    name: str | None
    token_uri: str | None
    total_supply: str | None = strawberry.field(description="base units, a decimal string")

    @classmethod
    def of(cls, info: TokenInfo) -> Token:
        data = info.as_dict()
        return cls(**{name: data[name] for name in _TOKEN_FIELDS})


_TOKEN_FIELDS = (
    "token_id",
    "kind",
    "asset_identifier",
    "decimals",
    "symbol",
    "name",
    "token_uri",
    "total_supply",
)


@strawberry.type(description="Unconfirmed mempool amounts, apart from the balance")
class Pending:
    inbound: str
    outbound: str


@strawberry.type(description="One token balance of one address, with its freshness")
class Balance:
    address: str
    token_id: str
    balance: str = strawberry.field(description="base units, a decimal string (u128)")
    decimals: int | None = strawberry.field(description="null while the metadata is unknown")
    display_balance: str | None = strawberry.field(description="balance / 10^decimals, exact")
    symbol: str | None
    updated_at: datetime | None = strawberry.field(
        description="when the chain last confirmed this amount"
    )
    block_height: int | None = strawberry.field(description="the chain tip at that read")
    source: Source
    stale: bool
    error: str | None = strawberry.field(description="why the last refresh failed")
    pending: Pending | None
    metadata: Metadata

    @strawberry.field(description="The token's metadata (one read per token per operation)")
    async def token(self, info: strawberry.Info[GraphContext, None]) -> Token:
        found = await info.context.tokens.load(self.token_id)
        if isinstance(found, BalancesError):
            raise found
        return Token.of(found)

    @classmethod
    def of(cls, balance: DomainBalance) -> Balance:
        data = balance.as_dict()
        pending = data.get("pending")
        return cls(
            address=data["address"],
            token_id=data["token_id"],
            balance=data["balance"],
            decimals=data["decimals"],
            display_balance=data["display_balance"],
            symbol=data["symbol"],
            updated_at=_time(data["updated_at"]),
            block_height=data["block_height"],
            source=Source(data["source"]),
            stale=data["stale"],
            error=data["error"],
            pending=None if pending is None else Pending(**pending),
            metadata=Metadata(data.get("metadata", "known")),
        )


@strawberry.type(description="An item of a bulk read that failed, and why")
class ItemError:
    address: str
    token_id: str | None
    error: str = strawberry.field(description="a stable code, as in the REST API")
    message: str


@strawberry.type(description="Balances of many addresses")
class BulkBalances:
    block_height: int | None = strawberry.field(
        description="the block every balance is as of: asOf, or the one tip all were read "
        "at; null when they were read at different tips (ask with asOf)"
    )
    balances: list[Balance]
    errors: list[ItemError]


@strawberry.type(description="A bucket of a chart: the amount in force at its end")
class HistoryPoint:
    at: datetime
    balance: str | None = strawberry.field(description="null: unknown")


@strawberry.type(description="One token's balance over time, as a step function")
class History:
    address: str
    token_id: str
    period: str
    granularity: str
    start: datetime
    end: datetime
    decimals: int | None
    symbol: str | None
    start_balance: str | None
    points: list[HistoryPoint]
    updated_at: datetime | None
    block_height: int | None
    stale: bool
    source: Source

    @classmethod
    def of(cls, history: BalanceHistory) -> History:
        data = history.as_dict()
        return cls(
            **{name: data[name] for name in _HISTORY_FIELDS},
            start=_required_time(data["start"]),
            end=_required_time(data["end"]),
            updated_at=_time(data["updated_at"]),
            source=Source(data["source"]),
            points=[
                HistoryPoint(at=_required_time(p["at"]), balance=p["balance"])
                for p in data["points"]
            ],
        )


_HISTORY_FIELDS = (
    "address",
    "token_id",
    "period",
    "granularity",
    "decimals",
    "symbol",
    "start_balance",
    "block_height",
    "stale",
)


@strawberry.type(description="A token of a portfolio")
class PortfolioToken:
    token_id: str
    symbol: str | None
    decimals: int | None
    priced: bool = strawberry.field(description="a USD price is known for it")


@strawberry.type(description="One token's amount and USD value in a bucket")
class PortfolioAmount:
    token_id: str
    balance: str | None
    usd: str | None = strawberry.field(description="null: no price, or decimals unknown")


@strawberry.type(description="A bucket of a portfolio chart")
class PortfolioBucket:
    at: datetime
    amounts: list[PortfolioAmount]
    total_usd: str | None = strawberry.field(description="sum over priced tokens")


@strawberry.type(description="Every token's amount per bucket, with USD value where priced")
class Portfolio:
    address: str
    period: str
    granularity: str
    start: datetime
    end: datetime
    tokens: list[PortfolioToken]
    buckets: list[PortfolioBucket]
    missing_prices: list[str]
    stale: bool
    updated_at: datetime | None

    @classmethod
    def of(cls, portfolio: PortfolioHistory) -> Portfolio:
        data = portfolio.as_dict()
        return cls(
            address=data["address"],
            period=data["period"],
            granularity=data["granularity"],
            start=_required_time(data["start"]),
            end=_required_time(data["end"]),
            tokens=[PortfolioToken(**token) for token in data["tokens"]],
            buckets=[_bucket(bucket) for bucket in data["buckets"]],
            missing_prices=data["missing_prices"],
            stale=data["stale"],
            updated_at=_time(data["updated_at"]),
        )


def _bucket(data: dict[str, Any]) -> PortfolioBucket:
    usd = data["usd"]
    amounts = [
        PortfolioAmount(token_id=token, balance=amount, usd=usd.get(token))
        for token, amount in data["balances"].items()
    ]
    return PortfolioBucket(
        at=_required_time(data["at"]), amounts=amounts, total_usd=data["total_usd"]
    )


@strawberry.type(description="An address the service keeps current")
class TrackedAddress:
    address: str
    tokens: list[str]
    since: datetime


#: A change-feed sequence number. GraphQL's Int is 32-bit, which a busy feed
#: outgrows; ``Seq`` carries any whole number JSON represents exactly (2^53 - 1).
SeqNumber = NewType("SeqNumber", int)
MAX_SEQ = 2**53 - 1


def _parse_seq(value: object) -> SeqNumber:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEQ:
        raise ValueError(f"a sequence number is a whole number from 0 to 2^53 - 1, not {value!r}")
    return SeqNumber(value)


SEQ_SCALAR = strawberry.scalar(
    name="Seq",
    description="A change-feed sequence number: a whole number from 0 to 2^53 - 1",
    serialize=int,
    parse_value=_parse_seq,
)


@strawberry.enum(description="A change, or a retraction of one a reorg undid")
class ChangeType(Enum):
    CHANGE = "change"
    RETRACTION = "retraction"


@strawberry.type(description="One entry of the change feed (docs/change-feed.md)")
class BalanceChange:
    seq: SeqNumber = strawberry.field(description="the feed's sequence number: resume after it")
    type: ChangeType
    address: str
    token_id: str
    kind: str
    previous: str | None = strawberry.field(description="null: unknown")
    amount: str | None = strawberry.field(description="the new amount; null: unknown")
    delta: str | None
    block_height: int | None
    block_hash: str | None
    tx_ids: list[str]
    source: str
    at: float = strawberry.field(description="unix seconds it was applied")
    retracts: SeqNumber | None = strawberry.field(description="the change a retraction undoes")

    @classmethod
    def of(cls, entry: FeedEntry) -> BalanceChange:
        data = entry.to_json()
        token = data.pop("token")
        return cls(**{**data, "type": ChangeType(data["type"]), "token_id": token})


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _required_time(text: str) -> datetime:
    return datetime.fromisoformat(text)
