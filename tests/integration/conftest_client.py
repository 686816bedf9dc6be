"""Helpers for the StacksClient integration tests (imported explicitly, not a conftest).

The stand-in itself comes from ``conftest.py`` (``fake_chain``, ``fake_chain_server``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx

from balances.chain.client import StacksClient
from balances.chain.retry import RetryPolicy
from balances.chain.routes import BALANCE_ROUTES
from balances.testing import FakeChain, FakeChainServer

HOLDER = "SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7"
OTHER = "SP3ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZW9P3P0G"
DEPLOYER = "SP2ZNGJ85ENDY6QRHQ5P2D4FXKGZWCKTB2T0Z55KS"
NATIVE = f"{DEPLOYER}.charisma-token"
ASSET = f"{NATIVE}::charisma"
MAP_TOKEN = f"{DEPLOYER}.charisma-token-subnet-v1"

#: Fast retries: the stand-in's faults are deterministic, so waiting long proves nothing.
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, max_retry_after=5)


def seed_charisma(chain: FakeChain) -> None:
    """A native token whose asset name differs from its contract, and a map-based token."""
    chain.add_native_token(NATIVE, "charisma", decimals=6, symbol="CHA", name="Charisma")
    chain.add_map_token(MAP_TOKEN, decimals=6, symbol="sCHA", name="Charisma Subnet")
    chain.mint("stx", HOLDER, 5_000_000)
    chain.mint(NATIVE, HOLDER, 1_000)
    chain.transfer(NATIVE, HOLDER, OTHER, 250)
    chain.deposit(MAP_TOKEN, HOLDER, 77)


class SharedClock:
    """Fake time shared by the client (limiter, backoff) and the stand-in's rate window.

    A small discrete-event simulation: sleepers wake in deadline order, and time
    only moves while no request is in flight (``hooks`` count them), so the
    stand-in sees each request at the fake moment the client sent it.
    """

    def __init__(self) -> None:
        self.now = 1_000.0
        self.slept = 0.0
        self.in_flight = 0
        self._deadlines: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        deadline = self.now + seconds
        self._deadlines.append(deadline)
        try:
            while self.now < deadline:
                await asyncio.sleep(0.001 if self.in_flight else 0)
                if not self.in_flight and deadline <= min(self._deadlines):
                    self.slept += deadline - self.now
                    self.now = deadline
        finally:
            self._deadlines.remove(deadline)

    @property
    def hooks(self) -> dict[str, list[Callable[[Any], Awaitable[None]]]]:
        async def sent(request: httpx.Request) -> None:
            self.in_flight += 1

        async def answered(response: httpx.Response) -> None:
            self.in_flight -= 1

        return {"request": [sent], "response": [answered]}


@asynccontextmanager
async def stacks_client(
    server: FakeChainServer,
    *,
    hooks: list[Callable[[httpx.Response], Awaitable[None]]] | None = None,
    clock: SharedClock | None = None,
    **options: Any,
) -> AsyncIterator[StacksClient]:
    """A StacksClient on a fresh httpx client aimed at ``server`` (unlimited by default).

    With ``clock``, the client waits on that fake clock and reports requests to it.
    """
    options.setdefault("requests_per_minute", float("inf"))
    options.setdefault("retry", FAST_RETRY)
    event_hooks: dict[str, list[Any]] = clock.hooks if clock else {"request": [], "response": []}
    event_hooks["response"] += hooks or []
    if clock is not None:
        options.update(clock=clock, sleep=clock.sleep)
    async with httpx.AsyncClient(event_hooks=event_hooks) as http:
        yield StacksClient(http, server.url, **options)


def balance_requests(chain: FakeChain) -> dict[str, int]:
    """The stand-in's counter restricted to balance routes."""
    return {route: n for route, n in chain.requests.items() if route in BALANCE_ROUTES}
