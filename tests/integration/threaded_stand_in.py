"""The stand-in served in a background thread, for the CLI tests (imported explicitly).

The CLI commands call ``asyncio.run`` themselves, so the stand-in cannot share the
test's event loop: uvicorn runs it in a daemon thread with its own loop.
"""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from balances.testing import FakeChain, create_fake_chain_app


class ThreadedStandIn:
    """The stand-in served by uvicorn in a daemon thread (its own event loop)."""

    def __init__(self, chain: FakeChain) -> None:
        self.chain = chain
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        config = uvicorn.Config(
            create_fake_chain_app(chain), log_level="warning", access_log=False, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def __enter__(self) -> ThreadedStandIn:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the stand-in did not start")
            time.sleep(0.005)
        return self

    def __exit__(self, *_: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()
