"""Routes that yield a path to a more literal route of another method.

``GET /balances/{address}/{tokenId:path}`` also matches ``/balances/bulk/current``
and ``/balances/SP.../refresh``, which are ``POST`` routes. Starlette takes the
first route that matches path and method, so a ``GET`` there would be read as the
token ``refresh`` of the address ``bulk``. A REST client expects those paths to be
the literal routes' resources: a ``GET`` on them is 405 with ``Allow: POST``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Match
from starlette.types import Scope


class LiteralFirstRoute(APIRoute):
    """An API route that does not take a path a more literal route names."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.yields_to: tuple[APIRoute, ...] = ()

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is Match.FULL and any(
            route.path_regex.match(scope["path"]) for route in self.yields_to
        ):
            return Match.NONE, {}
        return match, child


def yield_to_literal_routes(routes: Iterable[BaseRoute]) -> None:
    """Let each :class:`LiteralFirstRoute` yield to the routes with fewer path
    parameters and no method in common (call once, after every route is added)."""
    api_routes = [route for route in routes if isinstance(route, APIRoute)]
    for route in api_routes:
        if isinstance(route, LiteralFirstRoute):
            route.yields_to = tuple(
                other
                for other in api_routes
                if len(other.param_convertors) < len(route.param_convertors)
                and not (other.methods or set()) & (route.methods or set())
                and _first_segment(other.path) == _first_segment(route.path)
            )


def _first_segment(path: str) -> str:
    return path.split("/", 2)[1]
