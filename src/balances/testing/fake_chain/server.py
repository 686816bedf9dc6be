"""Run the stand-in with uvicorn: in a test's event loop, or in the foreground (the CLI)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import uvicorn

from balances.testing.fake_chain.app import create_fake_chain_app
from balances.testing.fake_chain.ledger import FakeChain

_STARTUP_POLL_SECONDS = 0.005


@dataclass(frozen=True, slots=True)
class FakeChainServer:
    """A running stand-in: point a client at :attr:`url`."""

    chain: FakeChain
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def _config(chain: FakeChain, host: str, port: int, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        create_fake_chain_app(chain),
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="off",
    )


@contextlib.asynccontextmanager
async def serve_fake_chain(
    chain: FakeChain, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[FakeChainServer]:
    """Serve ``chain`` on ``host:port`` (0: a free port) for the ``async with`` block.

    The socket is bound before uvicorn starts, so the port is known and nothing
    races for it; the server runs as a task in the current event loop.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # uvicorn writes headers and body separately: without this, every answer waits
    # ~40 ms for the client's delayed ACK (Nagle).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(_config(chain, host, bound_port, "warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()  # re-raise why it stopped
                raise RuntimeError("the fake chain server stopped during startup")
            await asyncio.sleep(_STARTUP_POLL_SECONDS)
        yield FakeChainServer(chain, host, bound_port)
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()


def run_fake_chain_forever(
    chain: FakeChain, host: str = "127.0.0.1", port: int = 3999, log_level: str = "info"
) -> None:
    """Serve ``chain`` until interrupted (blocking, like ``uvicorn.run``)."""
    uvicorn.Server(_config(chain, host, port, log_level)).run()
