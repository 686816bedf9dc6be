"""GraphQL at ``/graphql`` on the Stacks API stand-in: reads equal the REST routes',
a bulk query costs the REST bulk route's store reads, limits refuse with a
message, writes need the API key, introspection can be switched off.

The subscription over graphql-transport-ws is in tests/integration/test_graphql_live.py
(it needs a served app and block ingestion).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from service_helpers import (
    HOLDER,
    MAP_TOKEN,
    NATIVE,
    OTHER,
    SPENT,
    KeyLog,
    Kit,
    SharedServer,
    open_kit,
)

from balances.api import create_app
from balances.config import BalanceServiceConfig
from balances.service.balances import BalanceService
from balances.stores.sharded.store import ShardedStore
from balances.testing import FakeChain

pytestmark = pytest.mark.asyncio(loop_scope="module")

API_KEY = "test-api-key"
BASE_URL = "http://balances.test"
ASSET = f"{NATIVE}::charisma"
BALANCE_FIELDS = "address tokenId balance decimals displayBalance symbol blockHeight source stale"


def api_config(**fields: Any) -> BalanceServiceConfig:
    fields.setdefault("api", {"key": API_KEY})
    return BalanceServiceConfig(
        networks={"mainnet": {"map_tokens": [MAP_TOKEN]}}, store_url="memory://", **fields
    )


@contextlib.asynccontextmanager
async def _client(service: BalanceService) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(service=service))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        yield client


async def _graphql(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers or {}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _codes(body: dict[str, Any]) -> list[str | None]:
    return [error.get("extensions", {}).get("code") for error in body.get("errors", [])]


async def test_an_address_answers_its_balances_with_token_metadata_as_rest(
    api: httpx.AsyncClient, kit: Kit
) -> None:
    await api.get(f"/balances/{HOLDER}")
    await kit.metadata_settled()
    rest = (await api.get(f"/balances/{HOLDER}")).json()["balances"]
    query = f"""query($a: String!) {{ address(address: $a) {{
        balances {{ {BALANCE_FIELDS} token {{ tokenId kind decimals symbol name }} }} }} }}"""
    body = await _graphql(api, query, {"a": HOLDER})
    assert "errors" not in body, body
    found = body["data"]["address"]["balances"]
    assert {b["tokenId"]: b["balance"] for b in found} == {
        b["token_id"]: b["balance"] for b in rest
    }
    assert {b["tokenId"]: b["decimals"] for b in found} == {
        b["token_id"]: b["decimals"] for b in rest
    }
    charisma = next(b for b in found if b["tokenId"] == NATIVE)
    assert charisma["balance"] == str(kit.chain.balance(NATIVE, HOLDER)) == "750"
    assert charisma["token"] == {
        "tokenId": NATIVE,
        "kind": "native",
        "decimals": 8,
        "symbol": "CHA",
        "name": "Charisma",
    }
    assert charisma["displayBalance"] == "0.00000750"  # 750 / 10^8, as the REST route says
    assert charisma["displayBalance"] == next(
        b["display_balance"] for b in rest if b["token_id"] == NATIVE
    )


async def test_bulk_balances_equal_the_rest_bulk_route(api: httpx.AsyncClient) -> None:
    tokens = ["stx", NATIVE, MAP_TOKEN]
    rest = await api.post(
        "/balances/bulk/current",
        json={"addresses": [HOLDER, OTHER, "nope"], "tokenIds": tokens, "includeZero": True},
    )
    query = f"""query($a: [String!]!, $t: [String!]) {{
        balances(addresses: $a, tokens: $t, includeZero: true) {{
            blockHeight balances {{ {BALANCE_FIELDS} }} errors {{ address tokenId error message }}
        }} }}"""
    body = await _graphql(api, query, {"a": [HOLDER, OTHER, "nope"], "t": tokens})
    answer = body["data"]["balances"]
    expected = rest.json()
    assert [(b["tokenId"], b["address"], b["balance"]) for b in answer["balances"]] == [
        (b["token_id"], b["address"], b["balance"]) for b in expected["balances"]
    ]
    assert answer["blockHeight"] == expected["block_height"]
    assert [(e["address"], e["tokenId"], e["error"]) for e in answer["errors"]] == [
        (e["address"], e["token_id"], e["error"]) for e in expected["errors"]
    ]
    assert {e["error"] for e in answer["errors"]} == {"invalid_address"}
    assert {e["address"] for e in answer["errors"]} == {"nope"}


@pytest_asyncio.fixture(loop_scope="module")
async def logged(fake_chain: FakeChain, server: SharedServer) -> AsyncIterator[Kit]:
    async with open_kit(fake_chain, server.plug(fake_chain), store=KeyLog()) as built:
        yield built


async def test_a_bulk_query_reads_the_store_as_the_rest_bulk_route_does(logged: Kit) -> None:
    store = logged.store
    assert isinstance(store, KeyLog)
    warm = logged.service(api_config())
    for address in (HOLDER, OTHER):
        await warm.refresh_address_balances(address)
    for token in (NATIVE, SPENT, MAP_TOKEN):
        await warm.get_token(token)
    await warm.close()
    addresses, tokens = [HOLDER, OTHER], ["stx", NATIVE, ASSET, MAP_TOKEN, SPENT]
    reads: dict[str, list[str]] = {}
    for way in ("rest", "graphql"):
        logged.reset()
        store.gets.clear()
        svc = logged.service(api_config())  # a cold cache each way
        async with _client(svc) as client:
            if way == "rest":
                body = {"addresses": addresses, "tokenIds": tokens, "includeZero": True}
                response = await client.post("/balances/bulk/current", json=body)
                assert len(response.json()["balances"]) == 10
            else:
                # Nested and aliased: the loaders still read each address once.
                query = """query($h: String!, $o: String!, $t: [String!]) {
                    one: address(address: $h) { balances(tokens: $t) { balance token { symbol } } }
                    two: address(address: $o) { balances(tokens: $t) { balance } }
                    again: address(address: $h) { balance(token: "stx") { balance } }
                }"""
                answer = await _graphql(client, query, {"h": HOLDER, "o": OTHER, "t": tokens})
                assert "errors" not in answer, answer
                assert len(answer["data"]["one"]["balances"]) == 5
        assert isinstance(svc.layout, ShardedStore)
        reads[way] = sorted(store.gets_under("v1/current/"))
        assert logged.balance_requests() == {}, "both answer from the store"
    assert reads["graphql"] == reads["rest"]
    assert len(reads["rest"]) >= 1


async def test_as_of_gives_every_balance_at_one_block(api: httpx.AsyncClient, kit: Kit) -> None:
    await api.get(f"/balances/{HOLDER}")  # a first reading of its history
    height = kit.chain.tip_height
    query = """query($a: [String!]!, $h: Int) {
        balances(addresses: $a, tokens: ["stx"], includeZero: true, asOf: $h) {
            blockHeight
            balances { address tokenId balance blockHeight source }
            errors { error } } }"""
    body = await _graphql(api, query, {"a": [HOLDER], "h": height})
    answer = body["data"]["balances"]
    assert answer["blockHeight"] == height
    assert [b["blockHeight"] for b in answer["balances"]] == [height]
    assert answer["balances"][0]["balance"] == str(kit.chain.balance("stx", HOLDER))
    rest = await api.post(
        "/balances/bulk/current",
        json={"addresses": [HOLDER], "tokenIds": ["stx"], "includeZero": True, "at_block": height},
    )
    assert rest.json()["block_height"] == height
    assert rest.json()["balances"][0]["balance"] == answer["balances"][0]["balance"]

    future = await _graphql(api, query, {"a": [HOLDER], "h": height + 10_000})
    assert future["data"] is None
    assert _codes(future) == ["not_found"]
    assert f"no block at height {height + 10_000}" in future["errors"][0]["message"]
    negative = await _graphql(api, query, {"a": [HOLDER], "h": -1})
    assert _codes(negative) == ["invalid_period"]


async def test_a_bad_address_is_an_error_with_its_code(api: httpx.AsyncClient) -> None:
    body = await _graphql(api, '{ address(address: "nope") { balances { balance } } }')
    assert body["data"] is None
    assert _codes(body) == ["invalid_address"]
    assert "nope" in body["errors"][0]["message"]


async def test_too_deep_a_query_is_refused_with_a_message(make_client: Any) -> None:
    client = await make_client(graphql={"max_depth": 2})
    query = "query($a: String!) { address(address: $a) { balances { token { symbol } } } }"
    body = await _graphql(client, query, {"a": HOLDER})
    assert body["data"] is None
    assert "exceeds maximum operation depth of 2" in body["errors"][0]["message"]


async def test_too_costly_a_query_is_refused_before_anything_is_read(
    api: httpx.AsyncClient, kit: Kit
) -> None:
    kit.reset()
    addresses = [HOLDER] * 1000
    tokens = [f"{NATIVE}-{i}" for i in range(300)]
    query = """query($a: [String!]!, $t: [String!]) {
        balances(addresses: $a, tokens: $t) { balances { balance symbol } } }"""
    body = await _graphql(api, query, {"a": addresses, "t": tokens})
    assert body["data"] is None
    assert _codes(body) == ["query_too_costly"]
    message = body["errors"][0]["message"]
    assert "limit of 250,000" in message
    assert "BALANCES_GRAPHQL__MAX_COST" in message
    assert kit.balance_requests() == {}

    many_addresses = ", ".join(f'"{HOLDER}"' for _ in range(900))
    many_tokens = ", ".join(f'"{NATIVE}-{i}"' for i in range(300))
    literal = (
        f"{{ balances(addresses: [{many_addresses}], tokens: [{many_tokens}])"
        " { balances { balance } } }"
    )
    assert _codes(await _graphql(api, literal)) == ["query_too_costly"]


async def test_a_fragment_counts_toward_the_cost(make_client: Any) -> None:
    client = await make_client(graphql={"max_cost": 100})
    query = """query($a: [String!]!) { balances(addresses: $a, tokens: ["stx"]) { ...rows } }
        fragment rows on BulkBalances { balances { balance symbol decimals } }"""
    body = await _graphql(client, query, {"a": [HOLDER] * 40})
    assert _codes(body) == ["query_too_costly"]
    fine = await _graphql(client, query, {"a": [HOLDER] * 2})
    assert "errors" not in fine, fine


async def test_mutations_need_the_api_key(api: httpx.AsyncClient) -> None:
    mutation = "mutation($a: String!) { track(address: $a) { address tokens } }"
    refused = await _graphql(api, mutation, {"a": OTHER})
    assert _codes(refused) == ["unauthorized"]
    before = await _graphql(api, "{ tracked { address } }")
    assert {"address": OTHER} not in before["data"]["tracked"], "nothing was tracked"
    wrong = await _graphql(api, mutation, {"a": OTHER}, headers={"x-api-key": "wrong"})
    assert _codes(wrong) == ["unauthorized"]
    done = await _graphql(api, mutation, {"a": OTHER}, headers={"x-api-key": API_KEY})
    assert done["data"]["track"]["address"] == OTHER
    tracked = await _graphql(api, "{ tracked { address } }")
    assert {"address": OTHER} in tracked["data"]["tracked"]


async def test_mutations_are_disabled_without_a_configured_key(make_client: Any) -> None:
    client = await make_client(api={})
    body = await _graphql(client, "mutation($a: String!) { untrack(address: $a) }", {"a": OTHER})
    assert _codes(body) == ["disabled"]


async def test_introspection_is_on_by_default_and_can_be_switched_off(make_client: Any) -> None:
    query = "{ __schema { queryType { name } } }"
    on = await make_client()
    assert (await _graphql(on, query))["data"] == {"__schema": {"queryType": {"name": "Query"}}}
    off = await make_client(graphql={"introspection": False})
    body = await _graphql(off, query)
    assert body["data"] is None
    assert "introspection" in body["errors"][0]["message"].lower()
    assert (await off.get("/graphql", headers={"accept": "text/html"})).status_code != 200


async def test_graphql_can_be_switched_off(make_client: Any) -> None:
    client = await make_client(graphql={"enabled": False})
    response = await client.post("/graphql", json={"query": "{ tracked { address } }"})
    assert response.status_code == 404
