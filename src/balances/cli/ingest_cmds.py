"""``balances ingest run`` and ``balances ingest status``.

``run`` folds blocks into the store: with the pull source it follows the Stacks
API itself (``--once``: catch up with the tip, write, exit); a push source needs
an HTTP endpoint for its deliveries, so ``run`` then serves the REST API with
ingestion on (as ``balances serve`` does by default). ``status`` reads the cursor
the shared store holds and the chain's tip, from any machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Annotated, Any, get_args

import typer
import uvicorn

from balances.api import create_app
from balances.cli.common import (
    ChainOption,
    JsonOption,
    NetworkOption,
    StoreOption,
    console,
    errors,
    fail,
    print_json,
    run_with_service,
    settings,
)
from balances.config import BalanceServiceConfig, IngestSource
from balances.service.balances import BalanceService

ingest_app = typer.Typer(
    help="Block ingestion: balances kept fresh by folding each block's events.",
    no_args_is_help=True,
)
SourceOption = Annotated[
    str | None,
    typer.Option(
        "--source", help="pull, chainhook or observer (default: BALANCES_INGEST__SOURCE)."
    ),
]
OnceOption = Annotated[
    bool,
    typer.Option("--once", help="Pull source: catch up with the tip, write, print the status."),
]


@ingest_app.command("run")
def run(
    source: SourceOption = None,
    once: OnceOption = False,
    store: StoreOption = None,
    chain_url: ChainOption = None,
    network: NetworkOption = None,
) -> None:
    """Fold blocks until Ctrl-C (pull), or serve the push endpoints (chainhook, observer)."""
    config = _with_source(settings(store, chain_url, network), source)
    chosen = config.ingest.source
    if chosen != "pull":
        if once:
            fail(f"--once needs the pull source; {chosen} deliveries arrive when they come", 2)
        _serve_push(config)
        return
    if once:
        print_json(run_with_service(config, _run_once))
        return
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    errors.print("ingesting blocks from the Stacks API (Ctrl-C to stop)", highlight=False)
    run_with_service(config, _run_forever)


@ingest_app.command("status")
def status(
    as_json: JsonOption = False,
    store: StoreOption = None,
    chain_url: ChainOption = None,
    network: NetworkOption = None,
) -> None:
    """The cursor the store holds (the last block durably folded) and the lag behind the tip."""
    found = run_with_service(settings(store, chain_url, network), _survey)
    if as_json:
        print_json(found)
        return
    cursor, tip = found["cursor"], found["tip"]
    if cursor is None:
        console.print("no block folded yet (ingestion has not run on this store)")
    else:
        console.print(
            f"cursor   height {cursor['height']} ({cursor['source']}), "
            f"gap-free since {cursor['anchored_from']}"
        )
    if tip is None:
        console.print(f"tip      unknown ({found['tip_error'] or 'no block routes'})")
    else:
        console.print(f"tip      height {tip['height']}")
    if found["lag_blocks"] is not None:
        console.print(f"lag      {found['lag_blocks']} blocks")


def _with_source(config: BalanceServiceConfig, source: str | None) -> BalanceServiceConfig:
    if source is None:
        return config
    if source not in get_args(IngestSource):
        fail(f"--source must be one of {', '.join(get_args(IngestSource))}, not {source[:40]!r}", 2)
    ingest = config.ingest.model_copy(update={"source": source, "enabled": True})
    return config.model_copy(update={"ingest": ingest})


def _serve_push(config: BalanceServiceConfig) -> None:
    host, port = config.api.host, config.api.port
    route = "/ingest/chainhook" if config.ingest.source == "chainhook" else "/new_block"
    console.print(f"waiting for {config.ingest.source} deliveries on http://{host}:{port}{route}")
    uvicorn.run(create_app(config, ingest=True), host=host, port=port, log_level="info")


async def _run_once(service: BalanceService) -> dict[str, Any]:
    ingestion = service.ingestion_for()
    applied = await ingestion.run_once()
    return {"applied_blocks": applied, **ingestion.status().as_dict()}


async def _run_forever(service: BalanceService) -> None:
    ingestion = service.ingestion_for()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
            handled.append(signum)
    await ingestion.start()
    if service.webhooks is not None:
        service.webhooks.dispatcher.start()  # stopped when the service closes
    try:
        await stop.wait()
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
        await ingestion.stop()


async def _survey(service: BalanceService) -> dict[str, Any]:
    return await service.ingestion_for().survey()
