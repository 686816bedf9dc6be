"""GraphQL at ``/graphql`` (Strawberry): reads, keyed mutations, and the
``balanceChanged`` subscription over graphql-transport-ws (README, "GraphQL")."""

from __future__ import annotations

import orjson
from fastapi import Request, WebSocket
from strawberry.fastapi import GraphQLRouter
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from balances.api.graphql.context import GraphContext
from balances.api.graphql.schema import build_schema, schema_text
from balances.config import GraphQLConfig

PATH = "/graphql"


async def _context(request: Request = None, websocket: WebSocket = None) -> GraphContext:  # type: ignore[assignment]
    connection = request if request is not None else websocket
    state = connection.app.state
    return GraphContext(state.service, state.series_api)


class _Router(GraphQLRouter[GraphContext, None]):
    def encode_json(self, data: object) -> bytes:
        """orjson, as the REST routes: a bulk answer encodes several times faster."""
        return orjson.dumps(data)


def graphql_router(settings: GraphQLConfig) -> GraphQLRouter[GraphContext, None]:
    """The ``/graphql`` routes: POST and GET queries, the GraphiQL page while
    introspection is on, and subscriptions over graphql-transport-ws."""
    return _Router(
        build_schema(settings),
        path=PATH,
        graphql_ide="graphiql" if settings.introspection else None,
        context_getter=_context,
        subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
        include_in_schema=False,
    )


__all__ = ["PATH", "GraphContext", "build_schema", "graphql_router", "schema_text"]
