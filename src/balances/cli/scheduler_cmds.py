"""``balances scheduler run`` and ``balances scheduler status``.

``run`` is one replica of the scheduler: it leads (and runs the tasks) only while
it holds the lease in the shared store, so starting it on several machines is
safe. ``status`` reads the shared task record and lease without taking part.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Annotated, Any

import typer

from balances.cli.common import (
    ChainOption,
    NetworkOption,
    StoreOption,
    errors,
    print_json,
    run_with_service,
    settings,
)
from balances.scheduler import BalanceScheduler, scheduler_config
from balances.service.balances import BalanceService

scheduler_app = typer.Typer(
    help="The background scheduler: sync, prices, maintenance, aggregates.",
    no_args_is_help=True,
)
OnceOption = Annotated[
    bool, typer.Option("--once", help="Run the due tasks once, print the status JSON, exit.")
]


@scheduler_app.command("run")
def run(
    once: OnceOption = False,
    store: StoreOption = None,
    chain_url: ChainOption = None,
    network: NetworkOption = None,
) -> None:
    """Run the scheduled tasks until Ctrl-C (only while this replica holds the lease)."""
    config = settings(store, chain_url, network)
    if once:
        print_json(run_with_service(config, _run_once))
        return
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    errors.print("scheduler running (Ctrl-C to stop)", highlight=False)
    run_with_service(config, _run_forever)


@scheduler_app.command("status")
def status(
    store: StoreOption = None,
    chain_url: ChainOption = None,
    network: NetworkOption = None,
) -> None:
    """Print the shared task record and the lease as JSON."""
    config = settings(store, chain_url, network)
    print_json(run_with_service(config, _read_status))


async def _run_once(service: BalanceService) -> dict[str, Any]:
    scheduler = _scheduler(service)
    try:
        runs = await scheduler.run_once()
        return {**scheduler.get_status(), "runs": [run.as_dict() for run in runs]}
    finally:
        await scheduler.release()  # a one-off run must not block the next leader


async def _run_forever(service: BalanceService) -> None:
    scheduler = _scheduler(service)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
            handled.append(signum)
    try:
        await scheduler.run_forever(stop)
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)


def _scheduler(service: BalanceService) -> BalanceScheduler:
    """The scheduler that ``BALANCES_SCHEDULER__*`` configures, as ``balances serve`` runs it."""
    return BalanceScheduler(service, scheduler_config(service.config.scheduler))


async def _read_status(service: BalanceService) -> dict[str, Any]:
    """The shared view: who leads (the lease), not whether this process does."""
    found = await _scheduler(service).load_status()
    lease = found.pop("lease")
    found.pop("owner_id")
    found.pop("leader")
    active = lease is not None and lease["expires_at"] > found["now"]
    return {"lease": lease, "lease_active": active, **found}
