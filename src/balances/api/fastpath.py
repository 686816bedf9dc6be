"""The hot path: ``GET /balances/{address}/{tokenId}`` answered from the cache in raw ASGI.

A wallet polls its balances; most polls find them cached. Routing, dependency
injection and response validation cost several times more than the answer itself,
so a cached answer is written here directly, serialized by the same pydantic model
as the full route (the bytes are identical). Anything the cache cannot answer alone
(a miss, a stale amount, bad input, an error to report) goes on to the full route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote

import orjson

from balances.api.schemas import BalanceOut
from balances.domain import Balance
from balances.service.balances import BalanceService

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ROUTE = "/balances/{address}/{tokenId}"
_HEADERS = [(b"content-type", b"application/json")]


class CachedBalanceFastPath:
    """ASGI middleware serving cached single balances; everything else passes through."""

    def __init__(self, app: ASGIApp, service: BalanceService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = self._cached(scope) if scope["type"] == "http" else None
        if body is None:
            await self.app(scope, receive, send)
            return
        scope["route_template"] = ROUTE  # for the latency metric
        headers = [*_HEADERS, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _cached(self, scope: Scope) -> bytes | None:
        if scope["method"] != "GET" or scope.get("query_string"):
            return None
        parts = scope["path"].split("/")
        if len(parts) != 4 or parts[1] != "balances" or not parts[2] or not parts[3]:
            return None
        balance = self.service.cached_balance(unquote(parts[2]), unquote(parts[3]))
        if balance is None:
            return None
        return balance_json(balance)


def balance_json(balance: Balance) -> bytes:
    """Exactly the bytes :class:`BalanceOut` serializes to (a test holds them equal),
    without pydantic's validation: orjson writes the same compact JSON, fields in the
    model's order, UTC times with ``Z``."""
    fields = balance.as_dict()
    fields["updated_at"] = balance.updated_at
    return orjson.dumps({name: fields[name] for name in _FIELDS}, option=orjson.OPT_UTC_Z)


_FIELDS = tuple(BalanceOut.model_fields)
