"""The GraphQL schema: queries, mutations (keyed) and the ``balanceChanged`` subscription.

Resolvers call the same service methods as the REST routes and read through the
operation's dataloaders (:mod:`.context`), so an operation costs the store reads
its REST counterpart would, however it nests its fields.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime

import strawberry
from graphql import GraphQLError
from strawberry.extensions import DisableIntrospection, QueryDepthLimiter, SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext, Info

from balances.api.errors import error_body
from balances.api.graphql.context import GraphContext
from balances.api.graphql.execution import LeafExecutionContext
from balances.api.graphql.limits import CostLimiter, label
from balances.api.graphql.types import (
    SEQ_SCALAR,
    Balance,
    BalanceChange,
    BulkBalances,
    History,
    ItemError,
    Portfolio,
    SeqNumber,
    Token,
    TrackedAddress,
)
from balances.config import GraphQLConfig
from balances.domain import DEFAULT_PERIOD
from balances.domain import Balance as DomainBalance
from balances.domain.feed import FeedFilter
from balances.errors import BalancesError, FeedUnavailableError
from balances.service.series import ItemError as ServiceItemError
from balances.service.stream import ChangeStream, CutOff, Entries, Gone
from balances.stores.tracked import TrackedAddress as TrackedEntry

Context = Info[GraphContext, None]
log = logging.getLogger("balances.api.graphql")


def _context(info: Context) -> GraphContext:
    return info.context


@strawberry.type(description="One address: its balances, charts and portfolio")
class Address:
    address: str

    @strawberry.field(description="Its balances: of these tokens, or every token it holds")
    async def balances(
        self, info: Context, tokens: list[str] | None = None, include_zero: bool = True
    ) -> list[Balance]:
        context = _context(info)
        if tokens is None:
            found = await context.holdings.load(self.address)
            if isinstance(found, BalancesError):
                raise found
            shown = found
        else:
            shown = [
                _or_raise(b)
                for b in await context.pairs.load_many([(self.address, t) for t in tokens])
            ]
        return [Balance.of(b) for b in shown if include_zero or b.amount > 0]

    @strawberry.field(description="One token's balance")
    async def balance(self, info: Context, token: str) -> Balance:
        return Balance.of(_or_raise(await _context(info).pairs.load((self.address, token))))

    @strawberry.field(description="One token's balance over time (a step function)")
    async def history(
        self,
        info: Context,
        token: str,
        period: str = DEFAULT_PERIOD,
        granularity: str = "auto",
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> History:
        service = _context(info).service
        chart = await service.get_balance_history(
            self.address, token, period, granularity, start, end
        )
        return History.of(chart)

    @strawberry.field(description="Every token's amount per bucket, with USD value where priced")
    async def portfolio(
        self,
        info: Context,
        period: str = DEFAULT_PERIOD,
        granularity: str = "auto",
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> Portfolio:
        service = _context(info).service
        answer = await service.get_portfolio_history(self.address, period, granularity, start, end)
        return Portfolio.of(answer)


@strawberry.type
class Query:
    @strawberry.field(description="One address (checked when its fields are read)")
    def address(self, address: str) -> Address:
        return Address(address=address)

    @strawberry.field(
        description="Balances of many addresses in one read per address, as the REST bulk "
        "route. asOf: every balance as of that block height (from the stored history)."
    )
    async def balances(
        self,
        info: Context,
        addresses: list[str],
        tokens: list[str] | None = None,
        include_zero: bool = False,
        min_balance: str | None = None,
        as_of: int | None = None,
    ) -> BulkBalances:
        context = _context(info)
        request = {
            "addresses": addresses,
            "token_ids": tokens or [],
            "include_zero": include_zero,
            "min_balance": min_balance,
            "at_block": as_of,
        }
        answer = await context.series.get_current_balances_bulk(request)
        return BulkBalances(
            block_height=answer.block_height,
            balances=[Balance.of(b) for b in answer.balances],
            errors=[_item_error(item) for item in answer.errors],
        )

    @strawberry.field(description="What is known of one token (its metadata)")
    async def token(self, info: Context, id: strawberry.ID) -> Token:
        found = await _context(info).tokens.load(str(id))
        if isinstance(found, BalancesError):
            raise found
        return Token.of(found)

    @strawberry.field(description="The addresses the service keeps current")
    async def tracked(self, info: Context) -> list[TrackedAddress]:
        return [_tracked(entry) for entry in await _context(info).service.tracked_addresses()]


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Keep an address current (needs the x-api-key header)")
    async def track(
        self, info: Context, address: str, tokens: list[str] | None = None
    ) -> TrackedAddress:
        context = _context(info)
        context.require_key()
        return _tracked(await context.service.track(address, tokens or ()))

    @strawberry.mutation(description="Stop keeping an address current (needs x-api-key)")
    async def untrack(self, info: Context, address: str) -> bool:
        context = _context(info)
        context.require_key()
        return await context.service.untrack(address)

    @strawberry.mutation(description="Read an address's balances from the chain now (x-api-key)")
    async def refresh(self, info: Context, address: str) -> list[Balance]:
        context = _context(info)
        context.require_key()
        return [Balance.of(b) for b in await context.service.refresh_address_balances(address)]


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Every balance change (and reorg retraction) of these addresses and "
        "tokens as it is applied; after: resume after that sequence number"
    )
    async def balance_changed(
        self,
        info: Context,
        addresses: list[str],
        tokens: list[str] | None = None,
        after: SeqNumber | None = None,
    ) -> AsyncGenerator[BalanceChange, None]:
        service = _context(info).service
        feed = service.feed
        if feed is None:
            raise FeedUnavailableError(
                "this service keeps no change feed (it needs the sharded layout and "
                "BALANCES_FEED__ENABLED=true)"
            )
        settings = service.config.feed
        where = FeedFilter.checked(addresses, tokens or [], max_addresses=settings.max_addresses)
        stream = ChangeStream(feed, where, after)
        await stream.start()
        try:
            async for event in stream.events(settings.heartbeat_seconds):
                if isinstance(event, Entries):
                    for entry in event.entries:
                        yield BalanceChange.of(entry)
                elif isinstance(event, CutOff):
                    raise GraphQLError(
                        f"{event.reason}; resume after {event.resume_after}",
                        extensions={"code": "cut_off", "resumeAfter": event.resume_after},
                    )
                elif isinstance(event, Gone):
                    raise event.error
        finally:
            stream.close()


def _or_raise(found: DomainBalance | BalancesError) -> DomainBalance:
    if isinstance(found, BalancesError):
        raise found
    return found


def _item_error(item: ServiceItemError) -> ItemError:
    shown = item.as_dict()
    body = error_body(item.error)
    return ItemError(
        address=shown["address"],
        token_id=shown["token_id"],
        error=body["error"],
        message=body["message"],
    )


def _tracked(entry: TrackedEntry) -> TrackedAddress:
    since = datetime.fromtimestamp(entry.since, UTC)
    return TrackedAddress(address=entry.address, tokens=list(entry.tokens), since=since)


class _Schema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Give each error its code (:func:`.limits.label`, which logs the unexpected
        ones): client errors are answers, not incidents to log."""
        for error in errors:
            label(error)
            log.debug("GraphQL error: %s", error.message)


def build_schema(settings: GraphQLConfig | None = None) -> strawberry.Schema:
    """The schema with the limits of ``settings`` (default: the default settings)."""
    chosen = settings if settings is not None else GraphQLConfig()
    # Factories: each operation gets its own extension objects (they hold its context).
    extensions: list[Callable[[], SchemaExtension]] = [
        lambda: QueryDepthLimiter(max_depth=chosen.max_depth),
        lambda: CostLimiter(chosen.max_cost),
    ]
    if not chosen.introspection:
        extensions.append(DisableIntrospection)
    return _Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        execution_context_class=LeafExecutionContext,
        config=StrawberryConfig(scalar_map={SeqNumber: SEQ_SCALAR}),
    )


def schema_text() -> str:
    """The schema in SDL (``balances graphql schema``; pinned in docs/schema.graphql)."""
    return build_schema().as_str() + "\n"
