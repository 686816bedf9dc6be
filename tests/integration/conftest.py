"""Integration fixtures: the Stacks API stand-in running on a free loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from balances.testing import FakeChain, FakeChainServer, serve_fake_chain


@pytest.fixture
def fake_chain() -> FakeChain:
    """An empty mainnet chain at height 1000 (2024-01-01), 10 s blocks."""
    return FakeChain()


@pytest.fixture
async def fake_chain_server(fake_chain: FakeChain) -> AsyncIterator[FakeChainServer]:
    """``fake_chain`` served by uvicorn on 127.0.0.1 (a free port) for one test."""
    async with serve_fake_chain(fake_chain) as server:
        yield server


@pytest.fixture
async def fake_chain_client(fake_chain_server: FakeChainServer) -> AsyncIterator[httpx.AsyncClient]:
    """A plain httpx client aimed at the running stand-in."""
    async with httpx.AsyncClient(base_url=fake_chain_server.url, timeout=10.0) as client:
        yield client
