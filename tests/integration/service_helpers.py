"""Helpers for the BalanceService integration tests (imported explicitly, not a conftest).

The service runs against the Stacks API stand-in over loopback HTTP (``conftest.py``
serves it; ``conftest_client.stacks_client`` builds the StacksClient). Time is
injected: :class:`FakeClock` objects stand in for ``time.monotonic`` (cache TTLs)
and ``time.time`` (staleness), so no test sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from conftest_client import DEPLOYER, HOLDER, MAP_TOKEN, NATIVE, OTHER, stacks_client

from balances.blobs import (
    DEFAULT_CONTENT_TYPE,
    OVERWRITE,
    Blob,
    BlobInfo,
    BlobStore,
    MemoryBlobStore,
    WriteMode,
)
from balances.chain.client import StacksClient
from balances.chain.routes import BALANCE_ROUTES, CALL_READ, FT_LIST_V3, STX_ROUTES
from balances.config import BalanceServiceConfig
from balances.errors import BalancesError, PreconditionFailedError
from balances.service.balances import BalanceService
from balances.testing import FakeChain, FakeChainServer, create_fake_chain_app

STX_V3 = STX_ROUTES[0]
FT_V3 = FT_LIST_V3
#: 2024-01-01T00:00:00Z plus a little: the stand-in's genesis time, as a wall clock.
WALL_START = 1_704_067_200.0 + 1_000.0
MONO_START = 5_000.0

#: A second native token (fully transferred away in some tests), and a token for
#: amounts beyond int64.
SPENT = f"{DEPLOYER}.spent-token"
SPENT_ASSET = "spent"
WHALE = f"{DEPLOYER}.whale-token"
MAX_U128 = 2**128 - 1

__all__ = [
    "DEPLOYER",
    "FT_V3",
    "HOLDER",
    "MAP_TOKEN",
    "MAX_U128",
    "NATIVE",
    "OTHER",
    "SPENT",
    "STX_V3",
    "WALL_START",
    "WHALE",
    "CallReads",
    "Clocks",
    "FakeClock",
    "GatedPuts",
    "KeyLog",
    "Kit",
    "SharedServer",
    "balance_requests",
    "config",
    "open_kit",
    "seed",
    "shared_server",
]


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@dataclass
class Clocks:
    """The monotonic clock (cache TTLs) and the wall clock (staleness) of a test."""

    mono: FakeClock = field(default_factory=lambda: FakeClock(MONO_START))
    wall: FakeClock = field(default_factory=lambda: FakeClock(WALL_START))

    def advance(self, *, mono: float = 0.0, wall: float = 0.0) -> None:
        self.mono.advance(mono)
        self.wall.advance(wall)


def seed(chain: FakeChain) -> None:
    """HOLDER holds STX, charisma-token::charisma (750), the map token (77) and the
    spent token (10); OTHER holds 250 charisma. Decimals differ from the default 6
    so a test can tell metadata from the fallback."""
    chain.add_native_token(NATIVE, "charisma", decimals=8, symbol="CHA", name="Charisma")
    chain.add_map_token(MAP_TOKEN, decimals=3, symbol="sCHA", name="Charisma Subnet")
    chain.add_native_token(SPENT, SPENT_ASSET, decimals=2, symbol="SPT", name="Spent")
    chain.add_native_token(WHALE, "whale", decimals=0, symbol="WHL", name="Whale")
    chain.mint("stx", HOLDER, 5_000_000)
    chain.mint(NATIVE, HOLDER, 1_000)
    chain.transfer(NATIVE, HOLDER, OTHER, 250)
    chain.deposit(MAP_TOKEN, HOLDER, 77)
    chain.mint(SPENT, HOLDER, 10)


def config(*, map_tokens: Sequence[str] = (), **fields: Any) -> BalanceServiceConfig:
    """A mainnet config whose known map tokens are ``map_tokens`` (none by default)."""
    return BalanceServiceConfig(
        networks={"mainnet": {"map_tokens": list(map_tokens)}}, store_url="memory://", **fields
    )


def balance_requests(chain: FakeChain) -> dict[str, int]:
    """The stand-in's counter restricted to balance routes (call-read included)."""
    return {route: n for route, n in chain.requests.items() if route in BALANCE_ROUTES}


class CallReads:
    """An httpx response hook counting call-reads by (contract, function)."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()

    async def __call__(self, response: httpx.Response) -> None:
        parts = response.request.url.path.strip("/").split("/")
        if parts[:3] == ["v2", "contracts", "call-read"] and len(parts) == 6:
            self.calls[(f"{parts[3]}.{parts[4]}", parts[5])] += 1

    def balance_reads(self, contract_id: str) -> int:
        return self.calls[(contract_id, "get-balance")]


class KeyLog(MemoryBlobStore):
    """A memory store that remembers the key of every get."""

    def __init__(self) -> None:
        super().__init__()
        self.gets: list[str] = []

    async def get(self, key: str) -> Blob:
        self.gets.append(key)
        return await super().get(key)

    def gets_under(self, prefix: str) -> list[str]:
        return [key for key in self.gets if key.startswith(prefix)]


class GatedPuts(MemoryBlobStore):
    """A memory store whose next ``parties`` puts under ``prefix`` wait for each other
    once :meth:`arm` is called.

    Writers that read the same version then meet at the barrier, so all but one of
    their conditional writes lose the race: a real write conflict, deterministically.
    """

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix
        self.first_put = asyncio.Event()
        self.conflicts = 0
        self._barrier: asyncio.Barrier | None = None
        self._gated = 0

    def arm(self, parties: int = 2) -> None:
        self._barrier = asyncio.Barrier(parties)
        self._gated = parties
        self.first_put.clear()

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        mode: WriteMode = OVERWRITE,
        content_type: str = DEFAULT_CONTENT_TYPE,
    ) -> BlobInfo:
        if key.startswith(self.prefix) and self._gated > 0 and self._barrier is not None:
            self._gated -= 1
            self.first_put.set()
            await asyncio.wait_for(self._barrier.wait(), timeout=10)
        try:
            return await super().put(key, data, mode=mode, content_type=content_type)
        except PreconditionFailedError:
            self.conflicts += 1
            raise


@dataclass
class Kit:
    """One test's stand-in, client, shared blob store and clocks; builds services."""

    chain: FakeChain
    client: StacksClient
    store: BlobStore
    clocks: Clocks
    call_reads: CallReads
    services: list[BalanceService] = field(default_factory=list)

    def service(
        self,
        cfg: BalanceServiceConfig | None = None,
        *,
        store: BlobStore | None = None,
        client: StacksClient | None = None,
        **fields: Any,
    ) -> BalanceService:
        """A new BalanceService on the kit's store (unless given), clocks and client."""
        built = BalanceService(
            cfg if cfg is not None else config(**fields),
            blobs=store if store is not None else self.store,
            chain=client if client is not None else self.client,
            clock=self.clocks.mono,
            wall_clock=self.clocks.wall,
        )
        self.services.append(built)
        return built

    async def metadata_settled(self) -> None:
        """Wait until every service's background metadata reads are done."""
        for built in self.services:
            await built.metadata_settled()

    def reset(self) -> None:
        """Zero the stand-in's request counter and the call-read log."""
        self.chain.reset_requests()
        self.call_reads.calls.clear()

    def balance_requests(self) -> dict[str, int]:
        """Every balance-route request, SIP-010 metadata call-reads included."""
        return balance_requests(self.chain)

    def balance_reads(self) -> dict[str, int]:
        """Balance requests with call-reads of SIP-010 getters (metadata) left out."""
        counts = {route: n for route, n in self.balance_requests().items() if route != CALL_READ}
        reads = sum(n for (_, name), n in self.call_reads.calls.items() if name == "get-balance")
        if reads:
            counts[CALL_READ] = reads
        return counts


@asynccontextmanager
async def open_kit(
    chain: FakeChain, server: FakeChainServer, *, store: BlobStore | None = None
) -> AsyncIterator[Kit]:
    """Seed ``chain`` (see :func:`seed`) and yield a :class:`Kit` aimed at ``server``."""
    seed(chain)
    call_reads = CallReads()
    async with stacks_client(server, hooks=[call_reads]) as client:
        kit = Kit(chain, client, store or MemoryBlobStore(), Clocks(), call_reads)
        try:
            yield kit
        finally:
            for built in kit.services:
                with contextlib.suppress(BalancesError):
                    await built.close()


class SwitchableApp:
    """An ASGI app that forwards to ``target``: one server, a new stand-in per test."""

    def __init__(self) -> None:
        self.target: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.target is None:
            raise RuntimeError("no stand-in is plugged in")
        await self.target(scope, receive, send)


@dataclass(frozen=True, slots=True)
class SharedServer:
    """A running uvicorn serving a :class:`SwitchableApp` on loopback."""

    app: SwitchableApp
    host: str
    port: int

    def plug(self, chain: FakeChain) -> FakeChainServer:
        """Serve ``chain`` from now on (what ``serve_fake_chain`` would have served)."""
        self.app.target = create_fake_chain_app(chain)
        return FakeChainServer(chain, self.host, self.port)


@asynccontextmanager
async def shared_server() -> AsyncIterator[SharedServer]:
    """uvicorn on a free loopback port, like :func:`balances.testing.serve_fake_chain`
    but started once per module and with ``TCP_NODELAY`` on its socket.

    uvicorn's h11 protocol writes a response's headers and body separately; with
    Nagle's algorithm on, the body waits for the client's delayed ACK (about 40 ms
    on Linux), making each request ~15 times slower. Accepted sockets inherit the
    option from the listening socket. Starting and stopping uvicorn costs ~0.2 s,
    hence one server per module.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = SwitchableApp()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the fake chain server stopped during startup")
            await asyncio.sleep(0.002)
        yield SharedServer(app, "127.0.0.1", port)
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()
