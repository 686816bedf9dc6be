"""The stand-in as an ASGI app (Starlette): every route, backed by one :class:`FakeChain`."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Route

from balances.testing.fake_chain import (
    contracts,
    routes_balances,
    routes_blocks,
    routes_chain,
    routes_history,
    routes_metadata,
    routes_prices,
)
from balances.testing.fake_chain.ledger import FakeChain
from balances.testing.fake_chain.pipeline import RouteSpec, make_endpoint, not_found_endpoint

ROUTE_SPECS: tuple[RouteSpec, ...] = (
    *routes_chain.ROUTES,
    *routes_blocks.ROUTES,
    *routes_balances.ROUTES,
    *routes_history.ROUTES,
    *contracts.ROUTES,
    *routes_metadata.ROUTES,  # the Token Metadata API
    *routes_prices.ROUTES,  # our own extension, not the Hiro API
)
#: The request counter's keys, e.g. ``"GET /extended/v3/principals/{principal}/balances/ft"``.
ROUTE_TEMPLATES: tuple[str, ...] = tuple(spec.key for spec in ROUTE_SPECS)


def create_fake_chain_app(chain: FakeChain) -> Starlette:
    """An ASGI app serving ``chain`` with the Hiro API's (and node RPC's) shapes."""
    routes = [
        Route(spec.starlette_path, make_endpoint(chain, spec), methods=[spec.method])
        for spec in ROUTE_SPECS
    ]
    fallback = not_found_endpoint(chain)
    routes.append(Route("/{rest:path}", fallback, methods=["GET", "POST", "PUT", "DELETE"]))
    return Starlette(routes=routes)
