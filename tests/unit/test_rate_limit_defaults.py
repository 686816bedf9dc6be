"""Default client-side rate limits fit the endpoint: Hiro's published limits on
Hiro's hosts only; a custom API URL (a user's own node or API) is not paced unless
a limit is configured."""

from __future__ import annotations

import math

import httpx
import pytest

from balances import BalanceServiceConfig
from balances.bootstrap import create_client
from balances.chain.client import StacksClient
from balances.chain.networks import default_rate_limit
from balances.config import NetworkConfig


@pytest.mark.parametrize(
    ("url", "keyed", "expected"),
    [
        ("https://api.hiro.so", False, 25),
        ("https://api.hiro.so", True, 900),
        ("https://api.testnet.hiro.so/", False, 25),
        ("https://API.Mainnet.Hiro.so.", True, 900),
        ("https://hiro.so", False, 25),
        ("http://127.0.0.1:3999", False, math.inf),
        ("http://localhost:20443", True, math.inf),
        ("https://stacks-node.example.com", False, math.inf),
        ("https://nothiro.so", False, math.inf),  # a look-alike, not a Hiro host
        ("https://api.hiro.so.example.com", False, math.inf),
        ("", False, math.inf),
    ],
)
def test_default_limit_by_host(url: str, keyed: bool, expected: float) -> None:
    assert default_rate_limit(url, keyed) == expected


def test_the_built_in_networks_are_paced_at_hiros_limits() -> None:
    config = BalanceServiceConfig()
    assert config.networks["mainnet"].rate_limit == 25
    keyed = BalanceServiceConfig(networks={"mainnet": {"api_key": "k"}})
    assert keyed.networks["mainnet"].rate_limit == 900


def test_a_custom_api_url_is_unlimited_unless_configured() -> None:
    own = NetworkConfig(api_url="http://10.0.0.5:3999")
    assert own.rate_limit == math.inf
    assert NetworkConfig(api_url="http://10.0.0.5:3999", requests_per_minute=120).rate_limit == 120
    assert NetworkConfig(api_url="https://api.hiro.so", requests_per_minute=60).rate_limit == 60


async def test_a_client_paces_only_where_the_limit_applies() -> None:
    async with httpx.AsyncClient() as http:
        own = StacksClient(http, "http://127.0.0.1:3999")
        assert own.limiter.interval == 0  # no wait between requests
        hiro = StacksClient(http, "https://api.hiro.so")
        assert hiro.limiter.requests_per_minute == 25
        keyed = create_client(
            BalanceServiceConfig(networks={"mainnet": {"api_key": "k"}}), http, "mainnet"
        )
        assert keyed.limiter.requests_per_minute == 900
