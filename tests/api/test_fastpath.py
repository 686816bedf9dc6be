"""The hot path (``balances.api.fastpath``): a cached ``GET /balances/{address}/{tokenId}``
answered in raw ASGI, before routing.

It must answer exactly what the full route would (the same bytes), cost no blob or
chain operation, and step aside for everything the cache cannot answer alone: a
miss, a stale amount, a query string, bad input, a token path with ``/``, any method
but GET. Which path answered is observed by spying on the service: the fast path
only calls ``cached_balance``; the full route calls ``get_balance``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from service_helpers import HOLDER, MAP_TOKEN, NATIVE, OTHER, Kit, config

from balances.api.schemas import BalanceOut
from balances.config import BalanceServiceConfig
from balances.service.balances import BalanceService

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]
ASSET = f"{NATIVE}::charisma"
WALLET = "https://wallet.example"

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: As in conftest.py (the ``api`` fixture's key and base URL).
API_KEY = "test-api-key"


def api_config(**fields: Any) -> BalanceServiceConfig:
    """The tests' mainnet config: memory store, the seeded map token read for all."""
    return config(map_tokens=[MAP_TOKEN], **fields)


class Spy:
    """Counts the service calls of each path: ``cached`` (fast path), ``full`` (route)."""

    def __init__(self, service: BalanceService) -> None:
        self.cached: list[tuple[str, str]] = []
        self.full: list[tuple[str, str]] = []
        cached_balance, get_balance = service.cached_balance, service.get_balance

        def cached(address: str, token_id: str) -> Any:
            self.cached.append((address, token_id))
            return cached_balance(address, token_id)

        async def full(address: str, token_id: str) -> Any:
            self.full.append((address, token_id))
            return await get_balance(address, token_id)

        service.cached_balance = cached  # type: ignore[method-assign]
        service.get_balance = full  # type: ignore[method-assign]

    def reset(self) -> None:
        self.cached.clear()
        self.full.clear()


async def _setup(
    kit: Kit, make_client: ClientFactory, **api: Any
) -> tuple[BalanceService, httpx.AsyncClient, Spy]:
    service = kit.service(api_config(api={"key": API_KEY, **api}))
    client = await make_client(service)
    return service, client, Spy(service)


def _costs(service: BalanceService, kit: Kit) -> tuple[dict[str, int], dict[str, int]]:
    return dict(service.blobs.snapshot().operations), dict(kit.chain.requests)


@pytest.mark.parametrize(
    "token_id", ["stx", NATIVE, ASSET, MAP_TOKEN], ids=["stx", "native", "asset", "map"]
)
async def test_a_cached_balance_is_answered_with_the_full_routes_bytes(
    kit: Kit, make_client: ClientFactory, token_id: str
) -> None:
    service, client, spy = await _setup(kit, make_client)
    path = f"/balances/{HOLDER}/{token_id}"
    miss = await client.get(path)
    assert miss.status_code == 200
    assert (len(spy.cached), len(spy.full)) == (1, 1), "a miss goes on to the full route"
    assert miss.json()["source"] == "chain"
    await service.metadata_settled()  # an answer still lacking metadata takes the full route

    spy.reset()
    cached = service.cached_balance(HOLDER, token_id)
    assert cached is not None
    spy.reset()
    before = _costs(service, kit)
    fast = await client.get(path)
    assert _costs(service, kit) == before, "a fast answer costs no blob or chain operation"
    assert (spy.cached, spy.full) == ([(HOLDER, token_id)], [])
    assert fast.status_code == 200
    assert fast.content == BalanceOut.of(cached).model_dump_json().encode()
    assert fast.headers["content-type"] == "application/json"
    assert int(fast.headers["content-length"]) == len(fast.content)
    assert fast.json()["source"] == "cache"
    assert fast.json()["balance"] == miss.json()["balance"]

    # The full route, made to answer the same cached balance (a query string sends it
    # there), writes the very same bytes.
    spy.reset()
    full = await client.get(path, params={"via": "full"})
    assert (spy.cached, len(spy.full)) == ([], 1)
    assert full.status_code == 200
    assert full.json()["source"] == "cache"
    assert full.content == fast.content
    assert full.headers["content-type"] == fast.headers["content-type"]


async def test_a_stale_cached_balance_goes_to_the_full_route(
    kit: Kit, make_client: ClientFactory
) -> None:
    service, client, spy = await _setup(kit, make_client)
    path = f"/balances/{HOLDER}/stx"
    await client.get(path)
    kit.chain.transfer("stx", HOLDER, OTHER, 1_000)
    # Older than stale_after (wall clock), still in the cache (its TTL runs on the
    # monotonic clock, which has not moved).
    kit.clocks.advance(wall=service.config.stale_after + 1)
    kit.chain.advance_time(int(service.config.stale_after) + 1)
    spy.reset()
    answer = await client.get(path)
    assert (len(spy.cached), len(spy.full)) == (1, 1)
    assert answer.json()["source"] == "chain"
    assert answer.json()["balance"] == str(kit.chain.balance("stx", HOLDER))
    assert answer.json()["stale"] is False
    spy.reset()
    again = await client.get(path)
    assert (len(spy.cached), spy.full) == (1, [])
    assert again.json()["balance"] == answer.json()["balance"]


async def test_an_expired_cache_entry_goes_to_the_full_route(
    kit: Kit, make_client: ClientFactory
) -> None:
    service, client, spy = await _setup(kit, make_client)
    path = f"/balances/{HOLDER}/stx"
    await client.get(path)
    kit.clocks.advance(mono=service.config.cache_timeouts.current + 1)
    spy.reset()
    answer = await client.get(path)
    assert (len(spy.cached), len(spy.full)) == (1, 1)
    assert answer.json()["source"] == "store"  # still fresh in the store


@pytest.mark.parametrize(
    ("path", "params", "status", "consulted"),
    [
        (f"/balances/{HOLDER}/stx", {"fresh": "1"}, 200, []),
        (f"/balances/{HOLDER}/stx", {"": ""}, 200, []),
        (f"/balances/{HOLDER}/stx/more", None, 400, []),
        (f"/balances/{HOLDER}/stx/", None, 400, []),
        (f"/balances/{HOLDER}", None, 200, []),
        (f"/balances/{HOLDER}/history/stx", None, 200, []),
        # the same shape as the spec's route: the cache is asked, "portfolio" is no
        # token, and the full app routes it
        (f"/balances/{HOLDER}/portfolio", None, 200, [(HOLDER, "portfolio")]),
    ],
    ids=[
        "query-string",
        "bare-query",
        "token-with-slash",
        "trailing-slash",
        "all-balances",
        "history",
        "portfolio",
    ],
)
async def test_the_fast_path_steps_aside_for_other_shapes(
    kit: Kit,
    make_client: ClientFactory,
    path: str,
    params: dict[str, str] | None,
    status: int,
    consulted: list[tuple[str, str]],
) -> None:
    service, client, spy = await _setup(kit, make_client)
    await client.get(f"/balances/{HOLDER}/stx")
    assert service.cached_balance(HOLDER, "stx") is not None
    spy.reset()
    response = await client.get(path, params=params)
    assert response.status_code == status, response.text
    assert spy.cached == consulted
    if status == 400:
        assert response.json()["error"] == "invalid_token_id"
        assert len(spy.full) == 1, "the full route gave the error"
    if path.endswith("/stx") and status == 200:
        assert len(spy.full) == 1, "the full route answered"


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/balances/not-an-address/stx", "invalid_address"),
        (f"/balances/{HOLDER}/not%20a%20token", "invalid_token_id"),
        (f"/balances/{HOLDER}/{OTHER}", "invalid_token_id"),
    ],
    ids=["address", "token", "address-as-token"],
)
async def test_bad_input_gets_the_full_routes_json_error(
    kit: Kit, make_client: ClientFactory, path: str, code: str
) -> None:
    _, client, spy = await _setup(kit, make_client)
    await client.get(f"/balances/{HOLDER}/stx")
    spy.reset()
    response = await client.get(path)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == code
    assert set(response.json()) == {"error", "message"}
    assert len(spy.full) == 1


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "HEAD"])
async def test_other_methods_go_to_the_full_app(
    kit: Kit, make_client: ClientFactory, method: str
) -> None:
    _, client, spy = await _setup(kit, make_client)
    await client.get(f"/balances/{HOLDER}/stx")
    spy.reset()
    response = await client.request(method, f"/balances/{HOLDER}/stx")
    assert response.status_code == 405
    assert spy.cached == []
    if method != "HEAD":
        assert response.json()["error"] == "method_not_allowed"


async def test_cors_headers_are_added_to_fast_answers(kit: Kit, make_client: ClientFactory) -> None:
    _, client, spy = await _setup(kit, make_client, cors_origins=[WALLET])
    path = f"/balances/{HOLDER}/stx"
    first = await client.get(path, headers={"origin": WALLET})
    assert first.headers["access-control-allow-origin"] == WALLET
    spy.reset()
    fast = await client.get(path, headers={"origin": WALLET})
    assert (len(spy.cached), spy.full) == (1, [])
    assert fast.json()["source"] == "cache"
    assert fast.headers["access-control-allow-origin"] == WALLET
    other = await client.get(path, headers={"origin": "https://evil.example"})
    assert other.status_code == 200
    assert "access-control-allow-origin" not in other.headers


async def test_without_cors_configured_fast_answers_carry_no_cors_headers(
    kit: Kit, make_client: ClientFactory
) -> None:
    _, client, spy = await _setup(kit, make_client)
    path = f"/balances/{HOLDER}/stx"
    await client.get(path)
    spy.reset()
    fast = await client.get(path, headers={"origin": WALLET})
    assert (len(spy.cached), spy.full) == (1, [])
    assert "access-control-allow-origin" not in fast.headers
