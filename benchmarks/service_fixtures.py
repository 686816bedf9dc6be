"""Fixtures of ``bench_service``: an in-process chain reader, the servers, the load.

- :class:`InProcessChain` is a :class:`~balances.chain.protocol.ChainReader` that
  answers from dicts without I/O, so a :class:`BalanceService` does real refreshes
  (plan, merge, store, cache) without HTTP.
- ``python -m benchmarks.service_fixtures service HOLDER TOKEN`` serves, in its own
  process, the balances API over a :class:`FakeChain` (``HOLDER`` holds ``TOKEN``)
  served on loopback in the same process; ``... bare BODY_HEX`` serves a raw ASGI
  app answering every GET with those bytes. Both use the same uvicorn settings and
  listening socket options; the process prints ``READY <port>`` once it accepts
  connections and runs until it is terminated. ``... live CONFIG_PATH`` serves a
  service built from JSON settings, with ingestion on (``bench_live``).
- :func:`drive` sends a fixed number of keep-alive GETs over a few connections
  (a minimal HTTP/1.1 client, lighter than httpx) and returns the requests per second.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from balances.chain.models import Block, ChainTip, ContractInterface, TokenKind, TokenMetadata
from balances.config import BalanceServiceConfig
from balances.domain import Principal
from balances.errors import ContractCallError
from balances.testing import fake_address

#: Cache and staleness long enough that nothing expires during a run.
LONG = 3600.0
HOST = "127.0.0.1"
TIP_HEIGHT = 150_000
TIP_TIME = datetime(2025, 1, 1, tzinfo=UTC)
DEPLOYER = fake_address("bench-service-deployer", "mainnet")
ROOT = Path(__file__).resolve().parent.parent


def service_config(**fields: Any) -> BalanceServiceConfig:
    """Mainnet, no known map tokens (no call-reads), long cache TTL and staleness."""
    return BalanceServiceConfig(
        cache_timeouts={"current": LONG},
        stale_after=LONG,
        networks={"mainnet": {"map_tokens": []}},
        store_url="memory://",
        **fields,
    )


def token_contract(index: int) -> str:
    return f"{DEPLOYER}.bench-token-{index}"


def token_asset(index: int) -> str:
    return f"{token_contract(index)}::bench{index}"


# --- an in-process chain ---------------------------------------------------------


class InProcessChain:
    """Every address holds ``stx`` micro-STX and ``tokens`` native tokens (no I/O).

    The listing builds its asset-identifier strings anew on every call, as decoding
    an API answer does, so what a refresh keeps is what a real one would keep.
    """

    def __init__(self, tokens: int, *, stx: int = 5_000_000) -> None:
        self.tokens = tokens
        self.stx = stx
        self.calls = 0

    async def get_stx_balance(self, principal: str | Principal) -> int:
        self.calls += 1
        return self.stx

    async def get_ft_balances(self, principal: str | Principal) -> dict[str, int]:
        self.calls += 1
        return {token_asset(i): 1_000_000_007 + i for i in range(self.tokens)}

    async def get_ft_balance(self, principal: str | Principal, asset_identifier: str) -> int:
        self.calls += 1
        return (await self.get_ft_balances(principal)).get(asset_identifier, 0)

    async def get_map_token_balance(self, contract_id: str, principal: str | Principal) -> int:
        raise ContractCallError(f"{contract_id} is not a map-based token here")

    async def get_token_metadata(self, contract_id: str, *, full: bool = True) -> TokenMetadata:
        self.calls += 1
        index = int(contract_id.rsplit("-", 1)[1])
        return TokenMetadata(contract_id, 6, f"BT{index}", f"Bench token {index}")

    async def get_contract_interface(self, contract_id: str) -> ContractInterface:
        self.calls += 1
        index = int(contract_id.rsplit("-", 1)[1])
        return ContractInterface(contract_id, TokenKind.NATIVE, f"bench{index}")

    async def get_chain_tip(self) -> ChainTip:
        return ChainTip(TIP_HEIGHT, "0x" + "ab" * 32, TIP_TIME)

    async def get_block(self, height: int) -> Block:
        return Block(height, "0x" + "cd" * 32, TIP_TIME, "0x" + "ef" * 32, height // 10)

    async def get_block_at(self, moment: datetime | int | float | str) -> Block:
        return await self.get_block(TIP_HEIGHT)

    async def get_balance_at(
        self, principal: str | Principal, token: str, index_block_hash: str
    ) -> int:
        if token == "stx":
            return await self.get_stx_balance(principal)
        index = int(token.rsplit("-", 1)[1])
        return await self.get_ft_balance(principal, token_asset(index))


# --- the servers (run in their own process) ----------------------------------------


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((HOST, 0))
    return sock


def uvicorn_config(app: Any, port: int) -> uvicorn.Config:
    """The settings both servers share: h11 on asyncio, one worker, no access log."""
    return uvicorn.Config(
        app,
        host=HOST,
        port=port,
        http="h11",
        loop="asyncio",
        log_level="warning",
        access_log=False,
        lifespan="on",
    )


async def _serve(app: Any) -> None:
    sock = _listening_socket()
    server = uvicorn.Server(uvicorn_config(app, sock.getsockname()[1]))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped during startup")
        await asyncio.sleep(0.005)
    print(f"READY {sock.getsockname()[1]}", flush=True)
    await task


async def answer_lifespan(
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[Mapping[str, Any]], Awaitable[None]],
) -> None:
    """A raw ASGI app's side of the lifespan protocol: nothing to start or stop."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class BareApp:
    """A raw ASGI app: every GET gets ``body`` as ``application/json``."""

    def __init__(self, body: bytes) -> None:
        self.start = {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-length", str(len(body)).encode()),
                (b"content-type", b"application/json"),
            ],
        }
        self.body = {"type": "http.response.body", "body": body}

    async def __call__(
        self,
        scope: Mapping[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[Mapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        await send(self.start)
        await send(self.body)


async def _serve_service(holder: str, token: str) -> None:
    from balances.api import create_app
    from balances.blobs import MemoryBlobStore
    from balances.chain.client import StacksClient
    from balances.service.balances import BalanceService
    from balances.testing import FakeChain, serve_fake_chain

    chain = FakeChain()
    chain.add_native_token(token, "bench", decimals=8, symbol="BNC", name="Bench")
    chain.mint("stx", holder, 5_000_000)
    chain.mint(token, holder, 123_456_789)
    async with (
        serve_fake_chain(chain) as fake,
        httpx.AsyncClient(timeout=15.0) as http,
    ):
        client = StacksClient(http, fake.url, requests_per_minute=float("inf"))
        async with BalanceService(service_config(), blobs=MemoryBlobStore(), chain=client) as svc:
            await _serve(create_app(service=svc))


def _serve_live(config_path: str) -> None:
    """The service ``bench_live`` measures: built from the JSON settings at
    ``config_path``, with ingestion on (its push endpoints) and no scheduler."""
    import resource

    from balances.api import create_app

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # a socket per subscriber
    config = BalanceServiceConfig.model_validate_json(Path(config_path).read_text())
    asyncio.run(_serve(create_app(config, scheduler=False, ingest=True)))


def main(argv: list[str]) -> None:
    kind = argv[0]
    if kind == "live":
        _serve_live(argv[1])
    elif kind == "bare":
        asyncio.run(_serve(BareApp(bytes.fromhex(argv[1]))))
    elif kind == "service":
        asyncio.run(_serve_service(argv[1], argv[2]))
    else:
        raise SystemExit(
            f"unknown server {kind!r}: service HOLDER TOKEN, bare BODY_HEX or live CONFIG_PATH"
        )


@dataclass(frozen=True, slots=True)
class Served:
    """A server process: its base URL and its pid (for its CPU time)."""

    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / _CLOCK_TICKS

    def rss_bytes(self) -> int:
        """The process's resident memory now."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no VmRSS for process {self.pid}")


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@contextlib.asynccontextmanager
async def serve_in_process(*args: str) -> AsyncIterator[Served]:
    """Start ``python -m benchmarks.service_fixtures *args``; stop it on exit."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.service_fixtures",
        *args,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,  # where ``benchmarks`` imports from
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
        if not line.startswith(b"READY "):
            raise RuntimeError(f"the {args[0]} server did not start (said {line!r})")
        yield Served(f"http://{HOST}:{int(line.split()[1])}", process.pid)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout=10)
            except TimeoutError:
                process.kill()
                await process.wait()


# --- the load ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Load:
    """One load run: requests per second and the server's share of one core."""

    rps: float
    server_cpu: float


async def _keep_alive(url: str, path: str, body: bytes, remaining: list[int]) -> None:
    """One connection sending GETs one after the other until ``remaining`` runs out."""
    host, _, port = url.removeprefix("http://").partition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: */*\r\n\r\n".encode()
    expected_length = f"content-length: {len(body)}".encode()
    try:
        while remaining[0] > 0:
            remaining[0] -= 1
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200 ") or expected_length not in head.lower():
                raise RuntimeError(f"unexpected answer head: {head!r}")
            if await reader.readexactly(len(body)) != body:
                raise RuntimeError("the answer's body differs from the expected bytes")
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def drive(served: Served, path: str, body: bytes, *, requests: int, connections: int) -> Load:
    """``requests`` GETs of ``path`` over ``connections`` keep-alive connections, each
    answer checked to be ``200`` with exactly ``body``.

    A minimal HTTP/1.1 client on asyncio streams: httpx costs the load process
    several times what the bare server spends per request, so with one core each it
    would measure httpx, not the servers.
    """
    await _keep_alive(served.url, path, body, [connections])  # warm the server's code paths
    remaining = [requests]
    cpu = served.cpu_seconds()
    started = time.perf_counter()
    await asyncio.gather(
        *(_keep_alive(served.url, path, body, remaining) for _ in range(connections))
    )
    elapsed = time.perf_counter() - started
    return Load(requests / elapsed, (served.cpu_seconds() - cpu) / elapsed)


if __name__ == "__main__":
    main(sys.argv[1:])
