"""``balances serve`` (the REST API) and ``balances demo`` (everything, offline)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import tempfile
import time
from collections.abc import Sequence
from typing import Annotated

import typer
import uvicorn

from balances.api import create_app
from balances.cli.common import ChainOption, NetworkOption, StoreOption, console, settings
from balances.config import BalanceServiceConfig
from balances.service.balances import BalanceService

HostOption = Annotated[str | None, typer.Option("--host", help="Interface to bind.")]
PortOption = Annotated[int | None, typer.Option("--port", help="TCP port of the API.")]
DEMO_API_KEY = "demo"


def serve(
    host: HostOption = None,
    port: PortOption = None,
    store: StoreOption = None,
    chain_url: ChainOption = None,
    network: NetworkOption = None,
) -> None:
    """Run the REST API (local store and mainnet unless configured otherwise)."""
    config = settings(store, chain_url, network)
    bind_host, bind_port = host or config.api.host, port if port is not None else config.api.port
    console.print(f"balances API on http://{bind_host}:{bind_port} (docs: /docs)")
    uvicorn.run(create_app(config), host=bind_host, port=bind_port, log_level="info")


def demo(
    port: Annotated[int, typer.Option("--port", help="TCP port of the API.")] = 8000,
    chain_port: Annotated[int, typer.Option("--chain-port", help="Port of the stand-in.")] = 3999,
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = "127.0.0.1",
    every: Annotated[float, typer.Option("--every", help="Seconds between new txs.")] = 5.0,
    days: Annotated[int, typer.Option("--days", help="Days of seeded history.")] = 90,
) -> None:
    """Run the service offline against the built-in Stacks API stand-in, seeded with
    realistic activity (native and map-based tokens, transfers every few seconds)."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_demo(host, port, chain_port, every, days))


def demo_config(chain_url: str, store_dir: str, host: str, port: int) -> BalanceServiceConfig:
    """The demo's settings: the stand-in as network ``demo``, a scratch local store."""
    from balances.testing import CHARISMA_SUBNET

    return BalanceServiceConfig(
        network="demo",
        networks={
            "demo": {
                "api_url": chain_url,
                "requests_per_minute": 60_000,
                "address_network": "mainnet",
                "map_tokens": [CHARISMA_SUBNET],
            }
        },
        store_url=f"file://{store_dir}",
        api={"key": DEMO_API_KEY, "host": host, "port": port},
        prices={
            "url_template": f"{chain_url}/prices/{{token_id}}",
            "history_url_template": f"{chain_url}/prices/{{token_id}}/history",
        },
        shards=16,
        # The stand-in moves every few seconds: sync each minute, compact often.
        scheduler={"sync_interval": 60, "maintain_interval": 600, "lease_seconds": 120},
    )


async def _demo(host: str, port: int, chain_port: int, every: float, days: int) -> None:
    from balances.testing import DEMO_ADDRESSES, demo_activity, demo_chain, serve_fake_chain

    chain = demo_chain(days=days, end=int(time.time()))
    rng = random.Random(11)
    with tempfile.TemporaryDirectory(prefix="balances-demo-") as store_dir:
        async with serve_fake_chain(chain, host=host, port=chain_port) as chain_server:
            config = demo_config(chain_server.url, store_dir, host, port)
            async with BalanceService(config) as service:
                await _prepare(service, DEMO_ADDRESSES, days)
                server = uvicorn.Server(
                    uvicorn.Config(
                        create_app(service=service, scheduler=True, ingest=True),
                        host=host,
                        port=port,
                        log_level="warning",
                    )
                )
                _announce(host, port, chain_server.url, DEMO_ADDRESSES[0])

                async def activity() -> None:
                    while True:
                        await asyncio.sleep(every)
                        demo_activity(chain, rng, time.time())

                ticker = asyncio.create_task(activity())
                try:
                    await server.serve()
                finally:
                    ticker.cancel()


def _announce(host: str, port: int, chain_url: str, address: str) -> None:
    base = f"http://{host}:{port}"
    console.print("[bold]balances demo[/bold] (offline; Ctrl-C to stop)")
    console.print(f"  dashboard      {base}/?address={address}")
    console.print(f"  API docs       {base}/docs")
    console.print(f"  a balance      {base}/balances/{address}/stx")
    console.print(f"  all balances   {base}/balances/{address}")
    console.print(f"  Stacks stand-in {chain_url}/extended")
    console.print(f"  API key for write routes: {DEMO_API_KEY}")


async def _prepare(service: BalanceService, addresses: Sequence[str], days: int) -> None:
    """Seed the token metadata (as ``balances tokens sync`` does), track the demo
    addresses, read them, and fill their history and prices."""
    await service.sync_token_metadata()
    for address in addresses:
        await service.track(address)
        await service.backfill(address)
    await service.backfill_prices(days=days)
    await service.layout.maintain()
