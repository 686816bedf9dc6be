"""``balances store verify`` and ``balances store repair``: a damaged store, found and fixed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from balances.cli.common import (
    ChainOption,
    JsonOption,
    NetworkOption,
    StoreOption,
    console,
    errors,
    print_json,
    run_with_service,
    settings,
)
from balances.doctor import (
    Finding,
    RepairReport,
    VerifyReport,
    layout_of,
    repair_store,
    verify_store,
)
from balances.service.balances import BalanceService

store_app = typer.Typer(help="Check and repair the blob store.", no_args_is_help=True)


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr (stdout stays clean for --json)."""
    with Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
    ) as progress:
        bar = progress.add_task(label, total=None)

        def advance(done: int, total: int) -> None:
            progress.update(bar, completed=done, total=total)

        yield advance


def _findings_table(title: str, findings: list[Finding]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("blob")
    table.add_column("kind")
    table.add_column("problem", overflow="fold")
    for finding in findings:
        table.add_row(finding.key, finding.kind, finding.problem)
    return table


@store_app.command("verify")
def verify(
    as_json: JsonOption = False,
    store: StoreOption = None,
    chain_url: ChainOption = None,
    network: NetworkOption = None,
) -> None:
    """Read every blob of the store, check its format and what it must agree with,
    and print what is damaged. Exit status 1 when anything is."""

    async def work(service: BalanceService) -> VerifyReport:
        with _progress("verifying") as advance:
            return await verify_store(service.backend, layout_of(service), progress=advance)

    report = run_with_service(settings(store, chain_url, network), work)
    if as_json:
        print_json(report.as_dict())
    else:
        _show_verify(report)
    raise typer.Exit(0 if report.ok else 1)


def _show_verify(report: VerifyReport) -> None:
    kinds = ", ".join(f"{count:,} {kind}" for kind, count in report.by_kind.items())
    console.print(f"checked {report.checked:,} blobs ({kinds or 'none'})")
    if report.quarantined:
        console.print(f"{report.quarantined:,} blob(s) kept under quarantine/")
    notes = [f for f in report.findings if not f.damaged]
    if notes:
        console.print(_findings_table("notes", notes))
    if report.ok:
        console.print("[green]no damage found[/green]")
        return
    console.print(_findings_table(f"{len(report.damaged)} damaged", report.damaged))
    console.print("run [bold]balances store repair[/bold] to quarantine and rebuild them")


@store_app.command("repair")
def repair(
    backfill: Annotated[
        bool, typer.Option(help="Backfill again the history that lost blobs held.")
    ] = True,
    as_json: JsonOption = False,
    store: StoreOption = None,
    chain_url: ChainOption = None,
    network: NetworkOption = None,
) -> None:
    """Quarantine damaged blobs (never deleted), rebuild a damaged or missing
    manifest from the listing, and read again from the chain what was lost. Safe
    while the service runs; a second run changes nothing. Exit status 1 when
    something could not be repaired."""

    async def work(service: BalanceService) -> RepairReport:
        with _progress("checking") as advance:
            return await repair_store(service, backfill=backfill, progress=advance)

    report = run_with_service(settings(store, chain_url, network), work)
    if as_json:
        print_json(report.as_dict())
    else:
        _show_repair(report)
    raise typer.Exit(0 if report.ok else 1)


def _show_repair(report: RepairReport) -> None:
    if not report.damaged:
        console.print("[green]no damage found; nothing changed[/green]")
        return
    console.print(_findings_table(f"{len(report.damaged)} damaged", report.damaged))
    for key, copy in report.quarantined.items():
        console.print(f"quarantined {key} -> {copy}")
    if report.manifest_rebuilt:
        console.print("rebuilt the manifest from the listing")
    if report.tracked_restored:
        console.print(f"tracked {report.tracked_restored:,} addresses again")
    console.print(
        f"read {len(report.reread):,} address(es) again from the chain; "
        f"backfilled {len(report.backfilled):,}"
    )
    for address, problem in report.failed.items():
        console.print(f"[red]not repaired[/red] {address}: {problem}")
    if report.remaining:
        console.print(_findings_table("still damaged", report.remaining))
    elif not report.failed:
        console.print("[green]repaired; the store verifies clean[/green]")
