"""USD price routes: our own extension, not part of the Hiro API.

``GET /prices/{token_id}`` answers ``{"usd": "1.23", "token_id", "at": <unix>}``
(the price in force at the chain tip); ``GET /prices/{token_id}/history?from=&to=``
answers ``{"prices": [{"at", "usd"}, ...], "token_id"}`` for points with
``from <= at <= to`` (``from`` defaults to 0, ``to`` to the tip's time). A token
never priced answers 404 ``{"error", "message"}``. ``token_id`` is ``stx`` or a
contract id (an asset identifier prices as its contract).

They go through the same pipeline as every route: counted, delayed, faulted. The
price field comes first in each body, so the ``missing_field`` fault drops it.
"""

from __future__ import annotations

import re

from balances.testing.fake_chain.http import Ctx, Reply, api_error, bad_request
from balances.testing.fake_chain.pipeline import RouteSpec
from balances.testing.fake_chain.prices import PriceTick, price_key, usd_text
from balances.testing.fake_chain.records import FakeChainError

_UNIX_RE = re.compile(r"\d{1,12}")


def _token(ctx: Ctx) -> str:
    text = ctx.params["token_id"]
    try:
        key = price_key(text)
    except FakeChainError as error:
        raise bad_request(f"params/token_id must be 'stx' or a contract id: {error}") from error
    if not ctx.chain.prices.known(key):
        raise api_error(404, "Not Found", f"no price is known for {key}")
    return key


def _unix(ctx: Ctx, name: str, default: int) -> int:
    raw = ctx.query.get(name)
    if raw is None or raw == "":
        return default
    if not _UNIX_RE.fullmatch(raw):
        raise bad_request(f"querystring/{name} must be unix seconds, got {raw!r}")
    return int(raw)


def _tick(tick: PriceTick) -> dict[str, object]:
    return {"usd": usd_text(tick.usd), "at": tick.at}


def current_price(ctx: Ctx) -> Reply:
    token = _token(ctx)
    tick = ctx.chain.prices.current(token)
    if tick is None:
        raise api_error(404, "Not Found", f"no price is known for {token} at the chain tip")
    return Reply(body={"usd": usd_text(tick.usd), "token_id": token, "at": tick.at})


def price_history(ctx: Ctx) -> Reply:
    token = _token(ctx)
    start = _unix(ctx, "from", 0)
    end = _unix(ctx, "to", ctx.chain.tip_time)
    if start > end:
        raise bad_request(f"querystring/from ({start}) must not be after to ({end})")
    ticks = ctx.chain.prices.history(token, start, end)
    return Reply(body={"prices": [_tick(tick) for tick in ticks], "token_id": token})


ROUTES = [
    RouteSpec("GET", "/prices/{token_id}", current_price),
    RouteSpec("GET", "/prices/{token_id}/history", price_history),
]
