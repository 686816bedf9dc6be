"""The REST API's balance, token, tracking and health routes, on the Stacks API stand-in.

Amounts are compared with the stand-in's ledger; times with the tests' fake wall
clock (``WALL_START``). Most tests run the app in process (``httpx.ASGITransport``);
``test_the_api_answers_over_real_http`` serves it with uvicorn on loopback.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from service_helpers import HOLDER, MAP_TOKEN, NATIVE, OTHER, SPENT, WALL_START, Kit, config

from balances import __version__
from balances.service.balances import BalanceService

ASSET = f"{NATIVE}::charisma"
#: ``make_client(service=None, **config_fields)``: an in-process client (see conftest.py).
ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]
STARTED = datetime.fromtimestamp(WALL_START, UTC)

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _amounts(body: dict[str, Any]) -> dict[str, int]:
    return {item["token_id"]: int(item["balance"]) for item in body["balances"]}


# --- one balance (the spec's route) ------------------------------------------------


@pytest.mark.parametrize(
    ("token_id", "ledger_token", "decimals", "symbol"),
    [
        ("stx", "stx", 6, "STX"),
        (NATIVE, NATIVE, 8, "CHA"),
        (ASSET, NATIVE, 8, "CHA"),
        (MAP_TOKEN, MAP_TOKEN, 3, "sCHA"),
    ],
    ids=["stx", "contract-id", "asset-identifier", "map-token"],
)
async def test_one_balance_equals_the_ledger_with_its_freshness(
    api: httpx.AsyncClient, kit: Kit, token_id: str, ledger_token: str, decimals: int, symbol: str
) -> None:
    response = await api.get(f"/balances/{HOLDER}/{token_id}")
    assert response.status_code == 200
    body = response.json()
    expected = kit.chain.balance(ledger_token, HOLDER)
    assert expected > 0
    assert body["balance"] == str(expected)
    assert body["address"] == HOLDER
    assert body["token_id"] == ledger_token
    assert datetime.fromisoformat(body["updated_at"]) == STARTED
    assert body["block_height"] == kit.chain.tip_height
    assert (body["source"], body["stale"], body["error"]) == ("chain", False, None)
    if token_id != "stx":  # the first answer does not wait on metadata
        assert (body["decimals"], body["display_balance"], body["metadata"]) == (
            None,
            None,
            "pending",
        )
        await kit.metadata_settled()

    again = (await api.get(f"/balances/{HOLDER}/{token_id}")).json()
    assert again["decimals"] == decimals
    assert again["display_balance"] == f"{Decimal(expected).scaleb(-decimals):f}"
    assert again["symbol"] == symbol
    assert again["metadata"] == "known"
    assert again["source"] == "cache"
    assert again["balance"] == body["balance"]
    assert again["updated_at"] == body["updated_at"]


async def test_a_contract_principal_is_a_valid_holder(api: httpx.AsyncClient, kit: Kit) -> None:
    vault = f"{OTHER}.vault"
    kit.chain.mint("stx", vault, 1234)
    body = (await api.get(f"/balances/{vault}/stx")).json()
    assert (body["address"], body["balance"]) == (vault, "1234")


# --- every balance of an address ---------------------------------------------------


async def test_all_balances_lists_the_non_zero_ones(api: httpx.AsyncClient, kit: Kit) -> None:
    response = await api.get(f"/balances/{HOLDER}")
    assert response.status_code == 200
    body = response.json()
    assert body["address"] == HOLDER
    expected = {
        token: kit.chain.balance(token, HOLDER) for token in ("stx", NATIVE, MAP_TOKEN, SPENT)
    }
    assert _amounts(body) == expected
    assert all(item["balance"] != "0" for item in body["balances"])


async def test_include_zero_adds_tokens_now_at_zero(
    api: httpx.AsyncClient, kit: Kit, key: dict[str, str]
) -> None:
    assert SPENT in _amounts((await api.get(f"/balances/{HOLDER}")).json())
    kit.chain.transfer(SPENT, HOLDER, OTHER, kit.chain.balance(SPENT, HOLDER))
    refreshed = await api.post(f"/balances/{HOLDER}/refresh", headers=key)
    assert refreshed.status_code == 200

    non_zero = _amounts((await api.get(f"/balances/{HOLDER}")).json())
    assert SPENT not in non_zero
    assert non_zero[NATIVE] == 750
    with_zeros = _amounts(
        (await api.get(f"/balances/{HOLDER}", params={"include_zero": "true"})).json()
    )
    assert with_zeros[SPENT] == 0
    assert {token: n for token, n in with_zeros.items() if n} == non_zero


# --- refresh and the API key ---------------------------------------------------------

GUARDED = [
    ("POST", f"/balances/{HOLDER}/refresh", None),
    ("PUT", f"/tracked/{OTHER}", {"tokens": []}),
    ("DELETE", f"/tracked/{OTHER}", None),
]
GUARDED_IDS = ["refresh", "track", "untrack"]


@pytest.mark.parametrize(("method", "path", "body"), GUARDED, ids=GUARDED_IDS)
async def test_write_routes_are_disabled_without_a_configured_key(
    make_client: ClientFactory, method: str, path: str, body: Any
) -> None:
    client = await make_client(api={})
    response = await client.request(method, path, json=body, headers={"x-api-key": "any"})
    assert response.status_code == 403
    assert response.json()["error"] == "disabled"
    assert "BALANCES_API__KEY" in response.json()["message"]


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong"}], ids=["missing", "wrong"])
@pytest.mark.parametrize(("method", "path", "body"), GUARDED, ids=GUARDED_IDS)
async def test_write_routes_need_the_right_key(
    api: httpx.AsyncClient, method: str, path: str, body: Any, headers: dict[str, str]
) -> None:
    response = await api.request(method, path, json=body, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert "x-api-key" in response.json()["message"]
    assert response.headers["www-authenticate"] == "ApiKey"
    assert (await api.get("/tracked")).json() == [], "a refused write changed nothing"


async def test_refresh_with_the_key_reads_the_chain_now(
    api: httpx.AsyncClient, kit: Kit, key: dict[str, str]
) -> None:
    before = (await api.get(f"/balances/{HOLDER}/stx")).json()
    kit.chain.transfer("stx", HOLDER, OTHER, 1_000)
    kit.chain.burn(NATIVE, HOLDER, 50)
    cached = (await api.get(f"/balances/{HOLDER}/stx")).json()
    assert (cached["source"], cached["balance"]) == ("cache", before["balance"])

    response = await api.post(f"/balances/{HOLDER}/refresh", headers=key)
    assert response.status_code == 200
    body = response.json()
    assert (body["address"], body["refreshed"]) == (HOLDER, True)
    amounts = _amounts(body)
    assert amounts["stx"] == kit.chain.balance("stx", HOLDER) == int(before["balance"]) - 1_000
    assert amounts[NATIVE] == kit.chain.balance(NATIVE, HOLDER) == 700
    assert {item["source"] for item in body["balances"]} == {"chain"}

    after = (await api.get(f"/balances/{HOLDER}/stx")).json()
    assert after["balance"] == str(kit.chain.balance("stx", HOLDER))


# --- tracking -----------------------------------------------------------------------


async def test_track_list_and_untrack(api: httpx.AsyncClient, key: dict[str, str]) -> None:
    assert (await api.get("/tracked")).json() == []

    put = await api.put(f"/tracked/{OTHER}", json={"tokens": [MAP_TOKEN]}, headers=key)
    assert put.status_code == 200
    entry = put.json()
    assert (entry["address"], entry["tokens"]) == (OTHER, [MAP_TOKEN])
    assert datetime.fromisoformat(entry["since"]) == STARTED

    listed = (await api.get("/tracked")).json()
    assert [(e["address"], e["tokens"]) for e in listed] == [(OTHER, [MAP_TOKEN])]

    deleted = await api.delete(f"/tracked/{OTHER}", headers=key)
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert (await api.get("/tracked")).json() == []


# --- tokens --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token_id", "expected"),
    [
        ("stx", ("stx", "stx", None, 6, "STX", "Stacks")),
        (NATIVE, (NATIVE, "native", ASSET, 8, "CHA", "Charisma")),
        (ASSET, (NATIVE, "native", ASSET, 8, "CHA", "Charisma")),
        (MAP_TOKEN, (MAP_TOKEN, "map", None, 3, "sCHA", "Charisma Subnet")),
    ],
    ids=["stx", "contract-id", "asset-identifier", "map-token"],
)
async def test_token_metadata(
    api: httpx.AsyncClient, token_id: str, expected: tuple[Any, ...]
) -> None:
    response = await api.get(f"/tokens/{token_id}")
    assert response.status_code == 200
    body = response.json()
    fields = ("token_id", "kind", "asset_identifier", "decimals", "symbol", "name")
    assert tuple(body[name] for name in fields) == expected


async def test_an_unknown_contract_is_token_not_found(api: httpx.AsyncClient) -> None:
    missing = f"{OTHER}.no-such-token"
    for path in (f"/tokens/{missing}", f"/balances/{HOLDER}/{missing}"):
        response = await api.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"] == "token_not_found"
        assert missing in response.json()["message"]


# --- health --------------------------------------------------------------------------


async def test_health_reports_version_network_store_tracking_and_cache(
    make_client: ClientFactory, kit: Kit, api_key: str, key: dict[str, str]
) -> None:
    # store_url memory://, opened by the service itself (no store passed in)
    service = BalanceService(
        config(map_tokens=[MAP_TOKEN], api={"key": api_key}),
        chain=kit.client,
        clock=kit.clocks.mono,
        wall_clock=kit.clocks.wall,
    )
    kit.services.append(service)
    client = await make_client(service)

    first = (await client.get("/health")).json()
    assert first["status"] == "ok"
    assert first["version"] == __version__
    assert first["network"] == "mainnet"
    assert first["store"] == "memory"
    assert first["tracked_addresses"] == 0
    assert set(first["cache"]) == {"hits", "misses", "hit_rate", "entries", "evictions"}

    await client.get(f"/balances/{OTHER}/stx")  # anonymous: answered, not tracked
    assert (await client.get("/health")).json()["tracked_addresses"] == 0
    await client.get(f"/balances/{HOLDER}/stx", headers=key)
    await client.get(f"/balances/{HOLDER}/stx")  # a cache hit
    await client.put(f"/tracked/{OTHER}", json={}, headers=key)
    after = (await client.get("/health")).json()
    assert after["tracked_addresses"] == 2  # HOLDER tracked on a keyed read, OTHER by hand
    cache = after["cache"]
    assert cache["entries"] == 2
    assert cache["hits"] >= 1
    assert cache["misses"] >= 1
    assert cache["hit_rate"] == pytest.approx(cache["hits"] / (cache["hits"] + cache["misses"]))


# --- OpenAPI and CORS -----------------------------------------------------------------


async def test_openapi_lists_the_spec_route_and_docs_answer(api: httpx.AsyncClient) -> None:
    schema = (await api.get("/openapi.json")).json()
    paths = schema["paths"]
    assert "get" in paths["/balances/{address}/{tokenId}"]
    assert "post" in paths["/balances/{address}/refresh"]
    assert {"/balances/{address}", "/tokens/{tokenId}", "/tracked", "/health"} <= set(paths)
    docs = await api.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in docs.text


WALLET = "https://wallet.example"


async def test_cors_admits_the_configured_origin(make_client: ClientFactory) -> None:
    client = await make_client(api={"cors_origins": [WALLET]})
    got = await client.get(f"/balances/{HOLDER}/stx", headers={"origin": WALLET})
    assert got.status_code == 200
    assert got.headers["access-control-allow-origin"] == WALLET

    preflight = await client.options(
        f"/balances/{HOLDER}/refresh",
        headers={
            "origin": WALLET,
            "access-control-request-method": "POST",
            "access-control-request-headers": "x-api-key",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == WALLET
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "x-api-key" in preflight.headers["access-control-allow-headers"].lower()

    other = await client.get("/health", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


async def test_without_configured_origins_there_is_no_cors(api: httpx.AsyncClient) -> None:
    got = await api.get("/health", headers={"origin": WALLET})
    assert got.status_code == 200
    assert "access-control-allow-origin" not in got.headers
    preflight = await api.options(
        f"/balances/{HOLDER}/stx",
        headers={"origin": WALLET, "access-control-request-method": "GET"},
    )
    assert "access-control-allow-origin" not in preflight.headers


# --- over real HTTP ------------------------------------------------------------------


async def test_the_api_answers_over_real_http(
    live_api: tuple[str, BalanceService], kit: Kit, key: dict[str, str]
) -> None:
    url, service = live_api
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        one = await client.get(f"/balances/{HOLDER}/{ASSET}")
        assert one.status_code == 200
        assert one.json()["balance"] == str(kit.chain.balance(NATIVE, HOLDER))
        assert one.headers["content-type"] == "application/json"

        every = await client.get(f"/balances/{HOLDER}")
        assert _amounts(every.json())["stx"] == kit.chain.balance("stx", HOLDER)

        refused = await client.post(f"/balances/{HOLDER}/refresh")
        assert (refused.status_code, refused.json()["error"]) == (401, "unauthorized")
        refreshed = await client.post(f"/balances/{HOLDER}/refresh", headers=key)
        assert refreshed.status_code == 200

        bad = await client.get("/balances/not-an-address/stx")
        assert (bad.status_code, bad.json()["error"]) == (400, "invalid_address")

        health = await client.get("/health")
        assert health.json()["tracked_addresses"] == 0  # anonymous reads track nothing
        assert health.json()["cache"] == _cache_stats(service)


def _cache_stats(service: BalanceService) -> dict[str, Any]:
    stats = service.cache.stats()
    return {
        "hits": stats.hits,
        "misses": stats.misses,
        "hit_rate": stats.hit_rate,
        "entries": stats.entries,
        "evictions": stats.evictions,
    }
