"""Running the stand-in: in the test's event loop, and in the foreground as the CLI will."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx
import pytest

from balances.testing import FakeChain, create_fake_chain_app, demo_chain, serve_fake_chain

POX = "SP000000000000000000002Q6VF78.pox-4"  # a contract principal the demo funds


async def test_two_servers_get_free_ports_and_release_them() -> None:
    async with serve_fake_chain(FakeChain()) as first, serve_fake_chain(FakeChain()) as second:
        assert first.port != second.port
        assert first.url == f"http://127.0.0.1:{first.port}"
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{first.url}/extended")).status_code == 200
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.get(f"{first.url}/extended")


async def test_the_app_works_in_process_without_a_socket() -> None:
    chain = demo_chain(days=3)
    transport = httpx.ASGITransport(app=create_fake_chain_app(chain))
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as client:
        body = (await client.get("/extended/v2/blocks/latest")).json()
    assert body["height"] == chain.tip_height


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_run_forever_serves_the_demo_chain() -> None:
    port = _free_port()
    script = (
        "from balances.testing import demo_chain, run_fake_chain_forever;"
        f"run_fake_chain_forever(demo_chain(days=5), port={port}, log_level='warning')"
    )
    process = subprocess.Popen([sys.executable, "-c", script])
    url = f"http://127.0.0.1:{port}/extended/v3/principals/{POX}/balances/ft"
    try:
        with httpx.Client() as client:
            for _ in range(400):  # wait for startup by polling; nothing asserts on time
                try:
                    response = client.get(url)
                    break
                except httpx.ConnectError:
                    time.sleep(0.025)
            else:
                pytest.fail("the fake chain did not start")
        assert response.status_code == 200
        assert response.json()["total"] >= 1
    finally:
        process.terminate()
        process.wait(timeout=10)
