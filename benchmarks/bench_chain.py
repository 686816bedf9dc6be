"""Chain access: requests per address refresh, and refresh throughput under a rate limit.

(a) Requests per refresh: our plan (STX + FT pages of 200 + one call-read per
    map-based token) against the naive plan (one request per tracked token), both
    executed against the stand-in and counted by its request counter.
(b) 300 addresses refreshed against the stand-in with 20 ms latency and a
    900-per-minute limit, enforced by the stand-in *and* by the client's limiter.
    The bound is the least time that limit allows for the requests made at a
    steady pace: ``(requests - burst) * 60 / 900`` seconds. Target: within 1.15x.
"""

from __future__ import annotations

import asyncio
import math
import time

import httpx

from balances.chain.client import StacksClient
from balances.chain.retry import RetryPolicy
from balances.chain.routes import PAGE_SIZE
from balances.sync.plan import TrackedToken, build_plan, execute_plan, execute_plans
from balances.testing import FakeChain, fake_address, serve_fake_chain
from benchmarks.harness import Result

HOLDER = "SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7"
RATE_LIMIT = 900
LATENCY = 0.020
UNLIMITED = float("inf")


def _wallet(chain: FakeChain, native: int, mapped: int) -> list[TrackedToken]:
    """``HOLDER`` holds ``native`` native tokens and ``mapped`` map-based tokens."""
    tracked = []
    for index, contract_id in enumerate(chain.add_native_tokens(native, prefix=f"w{native}t")):
        chain.mint(contract_id, HOLDER, 1 + index)
        tracked.append(TrackedToken.native(f"{contract_id}::w{native}t{index}"))
    deployer = fake_address(f"subnets-{native}", "mainnet")
    for index in range(mapped):
        contract_id = f"{deployer}.credit-{index}-subnet-v1"
        chain.add_map_token(contract_id)
        chain.deposit(contract_id, HOLDER, 10 + index)
        tracked.append(TrackedToken.map_based(contract_id))
    chain.mint("stx", HOLDER, 1_000_000)
    return tracked


async def _naive_refresh(client: StacksClient, tracked: list[TrackedToken]) -> None:
    """One request per token: what the original service did."""
    reads = [client.get_stx_balance(HOLDER)]
    for token in tracked:
        if token.token.asset_identifier is not None:
            reads.append(client.get_ft_balance(HOLDER, token.token.asset_identifier))
        else:
            reads.append(client.get_map_token_balance(token.token.contract_id, HOLDER))
    await asyncio.gather(*reads)


async def _requests_per_refresh(native: int, mapped: int) -> Result:
    chain = FakeChain()
    tracked = _wallet(chain, native, mapped)
    async with serve_fake_chain(chain) as server, httpx.AsyncClient() as http:
        client = StacksClient(http, server.url, requests_per_minute=UNLIMITED)
        chain.reset_requests()
        result = await execute_plan(build_plan(HOLDER, tracked), client)
        ours = sum(chain.requests.values())
        if result.errors:
            raise RuntimeError(f"refresh failed: {result.errors}")
        chain.reset_requests()
        await _naive_refresh(client, tracked)
        naive = sum(chain.requests.values())
    design = 1 + math.ceil(native / PAGE_SIZE) + mapped  # STX + FT pages + call-reads
    return Result(
        name=f"requests/refresh, {native} native + {mapped} map",
        figure=ours,
        unit="req",
        baseline=naive,
        baseline_name="1 per token",
        target=design / (1 + native + mapped),  # no more than the design's count
        note=f"design: 1 STX + {math.ceil(native / PAGE_SIZE)} FT pages + {mapped} call-reads",
    )


def _holders(chain: FakeChain, count: int) -> list[str]:
    tokens = chain.add_native_tokens(3, prefix="pop")
    holders = [fake_address(f"bench-holder-{i}", "mainnet") for i in range(count)]
    for index, holder in enumerate(holders):
        chain.mint("stx", holder, 1_000 + index)
        for token in tokens[: 1 + index % 3]:
            chain.mint(token, holder, 500 + index)
    return holders


async def _refresh_under_limit(addresses: int) -> list[Result]:
    chain = FakeChain()
    holders = _holders(chain, addresses)
    tracked = [TrackedToken.native(token.contract_id) for token in chain.tokens]
    plans = [build_plan(holder, tracked) for holder in holders]
    chain.faults.latency = LATENCY
    chain.faults.rate_limit_per_minute = RATE_LIMIT
    retry = RetryPolicy(attempts=5, max_retry_after=90)
    async with serve_fake_chain(chain) as server, httpx.AsyncClient(timeout=30) as http:
        client = StacksClient(http, server.url, requests_per_minute=RATE_LIMIT, retry=retry)
        chain.reset_requests()
        started = time.perf_counter()
        results = await execute_plans(plans, client, concurrency=10)
        elapsed = time.perf_counter() - started
    failed = sum(len(result.errors) for result in results)
    if failed:
        raise RuntimeError(f"{failed} token reads failed during the throughput benchmark")
    expected = sum(plan.request_count(held_native=len(plan.native)) for plan in plans)
    sent = sum(chain.requests.values())
    bound = client.limiter.minimum_seconds(expected)
    return [
        Result(
            name=f"refresh {addresses} addresses, {RATE_LIMIT}/min, {LATENCY * 1000:g} ms",
            figure=elapsed,
            unit="s",
            baseline=bound,
            baseline_name=f"limit bound, {expected} req",
            target=1.15,
        ),
        Result(
            name=f"429s refreshing {addresses} addresses",
            figure=sent - expected,
            unit="req",
            target=0,
            note=f"{sent} sent for {expected} planned",
        ),
    ]


async def run(quick: bool) -> list[Result]:
    rows = [
        await _requests_per_refresh(450, 3),
        await _requests_per_refresh(20, 1),
    ]
    rows += await _refresh_under_limit(30 if quick else 300)
    return rows
