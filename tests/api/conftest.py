"""REST API fixtures: the app over a BalanceService on the Stacks API stand-in.

The stand-in helpers live in ``tests/integration`` (``service_helpers``,
``conftest_client``), imported there by module name because pytest puts that
directory on ``sys.path``. This directory needs them too, run alone or not, so it
puts that directory on the path itself.

One uvicorn serves every stand-in of a module (``shared_server``); each test gets
its own ledger, clocks and services. Most tests talk to the app in process through
``httpx.ASGITransport``; ``live_api`` serves it with uvicorn on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn

INTEGRATION = Path(__file__).resolve().parent.parent / "integration"
if str(INTEGRATION) not in sys.path:
    sys.path.insert(0, str(INTEGRATION))

from service_helpers import MAP_TOKEN, Kit, SharedServer, config, open_kit, shared_server  # noqa: E402

from balances.api import create_app  # noqa: E402
from balances.service.balances import BalanceService  # noqa: E402
from balances.testing import FakeChain  # noqa: E402

API_KEY = "test-api-key"
BASE_URL = "http://balances.test"

#: Builds an in-process client: over ``service`` if given, else a new service on the
#: kit with these config fields (map token configured, ``API_KEY`` unless overridden).
ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
def api_key() -> str:
    """The key the ``api`` app (and ``live_api``) is configured with."""
    return API_KEY


@pytest.fixture
def key() -> dict[str, str]:
    """The headers that admit a request to the write routes."""
    return {"x-api-key": API_KEY}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[SharedServer]:
    async with shared_server() as running:
        yield running


@pytest.fixture
def fake_chain() -> FakeChain:
    """An empty mainnet chain at height 1000 (2024-01-01), 10 s blocks; ``kit`` seeds it."""
    return FakeChain()


@pytest_asyncio.fixture(loop_scope="module")
async def kit(fake_chain: FakeChain, server: SharedServer) -> AsyncIterator[Kit]:
    """The seeded stand-in (see ``service_helpers.seed``), its client, store and clocks."""
    async with open_kit(fake_chain, server.plug(fake_chain)) as built:
        yield built


@pytest_asyncio.fixture(loop_scope="module")
async def make_client(kit: Kit) -> AsyncIterator[ClientFactory]:
    async with contextlib.AsyncExitStack() as stack:

        async def build(
            service: BalanceService | None = None,
            *,
            raise_app_exceptions: bool = True,
            **fields: Any,
        ) -> httpx.AsyncClient:
            fields.setdefault("api", {"key": API_KEY})
            svc = service if service is not None else kit.service(api_config(**fields))
            transport = httpx.ASGITransport(
                app=create_app(service=svc), raise_app_exceptions=raise_app_exceptions
            )
            client = httpx.AsyncClient(transport=transport, base_url=BASE_URL)
            return await stack.enter_async_context(client)

        yield build


@pytest_asyncio.fixture(loop_scope="module")
async def api(make_client: ClientFactory) -> httpx.AsyncClient:
    """The app with ``API_KEY`` configured and the seeded map token known."""
    return await make_client()


def api_config(**fields: Any) -> Any:
    """The tests' mainnet config: memory store, the seeded map token read for everyone."""
    return config(map_tokens=[MAP_TOKEN], **fields)


@pytest_asyncio.fixture(loop_scope="module")
async def live_api(kit: Kit) -> AsyncIterator[tuple[str, BalanceService]]:
    """(base URL, service) of the app served by uvicorn on a free loopback port."""
    service = kit.service(api_config(api={"key": API_KEY}))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    uv = uvicorn.Server(
        uvicorn.Config(
            create_app(service=service), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    task = asyncio.create_task(uv.serve(sockets=[sock]))
    try:
        while not uv.started:
            if task.done():
                task.result()
                raise RuntimeError("the API server stopped during startup")
            await asyncio.sleep(0.002)
        yield f"http://127.0.0.1:{port}", service
    finally:
        uv.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()
