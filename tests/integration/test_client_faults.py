"""StacksClient against the stand-in's fault switches, over loopback HTTP.

Waiting is done on a fake clock shared with the stand-in's rate window wherever a
server asks for seconds (retry-after), so these tests prove the behaviour without
sleeping through it.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from conftest_client import (
    ASSET,
    FAST_RETRY,
    HOLDER,
    MAP_TOKEN,
    NATIVE,
    SharedClock,
    seed_charisma,
    stacks_client,
)

from balances.chain.client import StacksClient
from balances.chain.retry import RetryPolicy
from balances.errors import (
    ChainUnavailableError,
    MalformedResponseError,
    RateLimitedError,
)
from balances.testing import FakeChain, FakeChainServer

STX_V3 = "GET /extended/v3/principals/{principal}/balances/stx"


async def test_forced_429_is_retried_after_the_servers_hint(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer
) -> None:
    seed_charisma(fake_chain)
    fake_chain.faults.force_429 = 2
    fake_chain.faults.retry_after = 3
    clock = SharedClock()
    async with stacks_client(fake_chain_server, clock=clock) as client:
        assert await client.get_stx_balance(HOLDER) == 5_000_000
    assert fake_chain.requests[STX_V3] == 3
    assert clock.slept >= 6.0  # two waits of at least retry-after


async def test_429s_past_the_bound_raise_rate_limited_with_the_hint(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer
) -> None:
    fake_chain.faults.force_429 = 100
    fake_chain.faults.retry_after = 2
    clock = SharedClock()
    retry = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05)
    async with stacks_client(fake_chain_server, clock=clock, retry=retry) as client:
        with pytest.raises(RateLimitedError) as caught:
            await client.get_stx_balance(HOLDER)
    assert caught.value.retry_after == 2.0
    assert fake_chain.requests[STX_V3] == 4  # the bound, not forever


async def test_a_429_storm_slows_the_client_instead_of_failing_calls(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer
) -> None:
    """30 concurrent reads against a 10-per-minute server: all succeed, paced by 429s."""
    seed_charisma(fake_chain)
    clock = SharedClock()
    fake_chain.faults.clock = clock
    fake_chain.faults.rate_limit_per_minute = 10
    retry = RetryPolicy(attempts=5, base_delay=0.01, max_delay=0.05, max_retry_after=120)
    async with stacks_client(fake_chain_server, clock=clock, retry=retry) as client:
        balances = await asyncio.gather(*(client.get_stx_balance(HOLDER) for _ in range(30)))
    assert balances == [5_000_000] * 30
    refused = fake_chain.requests[STX_V3] - 30
    assert 0 < refused <= 40  # the limiter pause keeps the storm from multiplying
    assert clock.slept >= 120.0  # 30 requests at 10 a minute need at least two more minutes


async def test_client_limiter_below_the_server_limit_never_sees_a_429(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer
) -> None:
    seed_charisma(fake_chain)
    clock = SharedClock()
    fake_chain.faults.clock = clock
    fake_chain.faults.rate_limit_per_minute = 10
    async with stacks_client(fake_chain_server, clock=clock, requests_per_minute=10) as client:
        await asyncio.gather(*(client.get_stx_balance(HOLDER) for _ in range(25)))
    assert fake_chain.requests[STX_V3] == 25  # no retries: no 429 was ever answered
    assert clock.slept >= 24 * 6.0 - 1e-6


async def test_5xx_is_retried_then_succeeds(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer
) -> None:
    seed_charisma(fake_chain)
    fake_chain.faults.force_5xx = 2
    async with stacks_client(fake_chain_server) as client:
        assert await client.get_map_token_balance(MAP_TOKEN, HOLDER) == 77


async def test_persistent_5xx_is_unavailable_after_the_bound(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer
) -> None:
    seed_charisma(fake_chain)
    fake_chain.faults.force_5xx = 100
    async with stacks_client(fake_chain_server) as client:
        with pytest.raises(ChainUnavailableError):
            await client.get_stx_balance(HOLDER)
    assert fake_chain.requests[STX_V3] == 3


async def test_random_5xx_at_a_high_rate_still_reads_correct_values(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer
) -> None:
    seed_charisma(fake_chain)
    fake_chain.faults.error_rate = 0.3
    fake_chain.faults.reseed(7)
    retry = RetryPolicy(attempts=8, base_delay=0.001, max_delay=0.005)
    async with stacks_client(fake_chain_server, retry=retry) as client:
        for _ in range(10):
            assert await client.get_ft_balances(HOLDER) == {ASSET: 750}


@pytest.mark.parametrize("kind", ["truncated", "html", "missing_field"])
async def test_malformed_bodies_raise(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer, kind: str
) -> None:
    seed_charisma(fake_chain)
    fake_chain.faults.malformed_kind = kind  # type: ignore[assignment]
    async with stacks_client(fake_chain_server) as client:
        for read in (
            lambda: client.get_stx_balance(HOLDER),
            lambda: client.get_ft_balances(HOLDER),
            lambda: client.get_map_token_balance(MAP_TOKEN, HOLDER),
            lambda: client.get_contract_interface(NATIVE),
            client.get_chain_tip,
        ):
            fake_chain.faults.force_malformed = 1
            with pytest.raises(MalformedResponseError):
                await read()


async def test_a_slow_api_times_out_as_unavailable(
    fake_chain: FakeChain, fake_chain_server: FakeChainServer
) -> None:
    fake_chain.faults.latency = 0.3
    retry = RetryPolicy(attempts=2, base_delay=0.0)
    async with stacks_client(fake_chain_server, timeout=0.05, retry=retry) as client:
        with pytest.raises(ChainUnavailableError, match="timed out"):
            await client.get_stx_balance(HOLDER)
    assert fake_chain.requests[STX_V3] == 2


async def test_an_unreachable_api_is_unavailable() -> None:
    async with httpx.AsyncClient() as http:
        client = StacksClient(
            http, "http://127.0.0.1:9", requests_per_minute=float("inf"), retry=FAST_RETRY
        )
        with pytest.raises(ChainUnavailableError, match="could not be reached"):
            await client.get_stx_balance(HOLDER)
