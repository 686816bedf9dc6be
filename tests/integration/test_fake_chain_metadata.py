"""The stand-in's Token Metadata API routes, read by StacksClient over loopback:
the real API's shapes, its page limit, 404 for an unknown token, tokens listed
without decimals, and the faults that can be aimed at these routes alone."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from conftest_client import stacks_client

from balances.chain.client import StacksClient
from balances.errors import ChainError, NotFoundError, ValidationError
from balances.testing import FakeChain, FakeChainServer, fake_address

DEPLOYER = fake_address("metadata-route-deployer")
TOKENS = [f"{DEPLOYER}.route-token-{i}" for i in range(75)]


@pytest.fixture
async def client(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer
) -> AsyncIterator[StacksClient]:
    for index, contract in enumerate(TOKENS):
        fake_chain.add_native_token(
            contract, f"route{index}", decimals=index % 7, symbol=f"R{index}", name=f"Route {index}"
        )
    fake_chain.mint(TOKENS[0], fake_address("route-holder"), 12_345)
    async with stacks_client(fake_chain_server) as built:
        yield built


async def test_one_token_has_the_apis_fields(
    client: StacksClient, fake_chain_client: httpx.AsyncClient
) -> None:
    raw = (await fake_chain_client.get(f"/metadata/v1/ft/{TOKENS[0]}")).json()
    assert {"name", "symbol", "decimals", "total_supply", "token_uri", "tx_id"} <= set(raw)
    assert raw["sender_address"] == DEPLOYER
    assert raw["total_supply"] == "12345"  # a decimal string, as the API sends it
    meta = await client.get_ft_metadata(TOKENS[0])
    assert (meta.decimals, meta.symbol, meta.name, meta.total_supply) == (
        0,
        "R0",
        "Route 0",
        12_345,
    )


async def test_an_unknown_token_is_404(
    client: StacksClient, fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient
) -> None:
    missing = f"{DEPLOYER}.no-such-token"
    answer = await fake_chain_client.get(f"/metadata/v1/ft/{missing}")
    assert (answer.status_code, answer.json()) == (404, {"error": "Token not found"})
    fake_chain.metadata_unknown.add(TOKENS[1])
    with pytest.raises(NotFoundError):
        await client.get_ft_metadata(TOKENS[1])


async def test_a_token_listed_without_decimals_is_not_known_to_the_client(
    client: StacksClient, fake_chain: FakeChain
) -> None:
    fake_chain.metadata_undecided.add(TOKENS[2])
    with pytest.raises(NotFoundError, match="no decimals"):
        await client.get_ft_metadata(TOKENS[2])
    page = await client.list_ft_metadata(0, 60)
    assert TOKENS[2] in page.undecided
    assert TOKENS[2] not in page.tokens


async def test_the_list_pages_60_at_most(
    client: StacksClient, fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient
) -> None:
    first = await client.list_ft_metadata(0, 60)
    second = await client.list_ft_metadata(60, 60)
    listed = len(fake_chain.tokens)
    assert first.total == second.total == listed
    assert len(first.tokens) == 60
    assert len(second.tokens) == listed - 60
    assert not set(first.tokens) & set(second.tokens)
    assert first.tokens[TOKENS[5]].decimals == 5
    too_many = await fake_chain_client.get("/metadata/v1/ft", params={"limit": 61})
    assert too_many.status_code == 400
    with pytest.raises(ValidationError):
        await client.list_ft_metadata(0, 61)


async def test_faults_can_hit_the_metadata_routes_alone(
    client: StacksClient, fake_chain: FakeChain
) -> None:
    fake_chain.faults.routes = ("/metadata",)
    fake_chain.faults.error_rate = 1.0
    with pytest.raises(ChainError):
        await client.get_ft_metadata(TOKENS[0])
    assert await client.get_stx_balance(fake_address("route-holder")) == 0
