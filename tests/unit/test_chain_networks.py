"""Named networks resolve to clients with their URL, key and rate limit."""

from __future__ import annotations

import httpx
import pytest
from test_chain_support import HOLDER, stx_body

from balances.bootstrap import create_client, network_config
from balances.chain.retry import RetryPolicy
from balances.config import BalanceServiceConfig
from balances.errors import ConfigError


def config(**data: object) -> BalanceServiceConfig:
    return BalanceServiceConfig.model_validate(data)


async def test_mainnet_is_the_default() -> None:
    async with httpx.AsyncClient() as http:
        client = create_client(BalanceServiceConfig(), http)
    assert client.base_url == "https://api.hiro.so"
    assert client.limiter.requests_per_minute == 25  # anonymous


async def test_testnet_and_a_keyed_mainnet() -> None:
    settings = config(networks={"mainnet": {"api_key": "k", "requests_per_minute": 500}})
    async with httpx.AsyncClient() as http:
        mainnet = create_client(settings, http)
        testnet = create_client(settings, http, "testnet")
    assert mainnet.base_url == "https://api.hiro.so"
    assert mainnet.limiter.requests_per_minute == 500
    assert testnet.base_url == "https://api.testnet.hiro.so"


async def test_a_custom_network_uses_its_own_url_key_and_limit() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=stx_body("21"))

    settings = config(
        network="devnet",
        networks={
            "devnet": {
                "api_url": "http://devnet.local:3999/",
                "api_key": "dev",
                "requests_per_minute": 6000,
            }
        },
    )
    assert network_config(settings).api_url == "http://devnet.local:3999/"
    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as http:
        client = create_client(settings, http)
        assert client.base_url == "http://devnet.local:3999"
        assert client.limiter.requests_per_minute == 6000
        assert await client.get_stx_balance(HOLDER) == 21
    assert str(seen[0].url).startswith("http://devnet.local:3999/extended/v3/")
    assert seen[0].headers["x-api-key"] == "dev"


async def test_an_unknown_network_is_a_clear_error() -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(
            ConfigError,
            match=r"unknown network 'subnet'.*mainnet, testnet.*BALANCES_NETWORKS__SUBNET__API_URL",
        ):
            create_client(BalanceServiceConfig(), http, "subnet")


async def test_options_reach_the_client() -> None:
    async with httpx.AsyncClient() as http:
        client = create_client(BalanceServiceConfig(), http, retry=RetryPolicy(attempts=1))
    assert client.retry.attempts == 1
