"""``balances watch ADDRESS...``: balance changes as they happen, from a running service.

It follows ``GET /stream/balances`` (Server-Sent Events) and prints each change (or
reorg retraction) on a line, or one JSON object a line with ``--json``. A dropped
connection is resumed from the last change seen (``Last-Event-ID``), so nothing is
lost or printed twice; a cut-off (too slow) resumes the same way. A position the
feed no longer holds ends the command with status 1: re-read the balances.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import httpx
import typer
from httpx_sse import aconnect_sse

from balances.cli.common import JsonOption, console, errors, fail
from balances.domain import Principal, TokenId
from balances.errors import BalancesError

#: Seconds between reconnection attempts, doubled up to the last.
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
#: Seconds without a byte (heartbeats included) before the connection counts as dropped.
READ_TIMEOUT = 60.0


class StreamEndedError(Exception):
    """The stream cannot go on: ``message`` says why."""


@dataclass
class Watch:
    """One ``balances watch`` run: where it reads, and how far it got."""

    url: str
    params: dict[str, str]
    as_json: bool
    count: int | None
    position: int | None
    printed: int = 0

    async def run(self) -> None:
        failures = 0
        while not self._done():
            try:
                await self._follow()
                failures = 0
            except (httpx.TransportError, httpx.RemoteProtocolError) as error:
                delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                failures += 1
                errors.print(f"[yellow]connection lost ({error}); again in {delay:g} s[/yellow]")
                await asyncio.sleep(delay)

    def _done(self) -> bool:
        return self.count is not None and self.printed >= self.count

    async def _follow(self) -> None:
        headers = {} if self.position is None else {"Last-Event-ID": str(self.position)}
        timeout = httpx.Timeout(10.0, read=READ_TIMEOUT)
        async with (
            httpx.AsyncClient(timeout=timeout) as client,
            aconnect_sse(
                client, "GET", f"{self.url}/stream/balances", params=self.params, headers=headers
            ) as source,
        ):
            response = source.response
            if response.status_code != 200:
                await response.aread()
                raise StreamEndedError(_refusal(response))
            async for event in source.aiter_sse():
                if event.event in ("change", "retraction"):
                    self._show(json.loads(event.data))
                    if self._done():
                        return
                elif event.event == "cutoff":
                    self.position = json.loads(event.data)["resume_after"]
                    return  # too slow: resume from there at once
                elif event.event == "gone":
                    raise StreamEndedError(json.loads(event.data)["message"])

    def _show(self, entry: dict[str, Any]) -> None:
        self.position = entry["seq"]
        self.printed += 1
        if self.as_json:
            typer.echo(json.dumps(entry, separators=(",", ":")))
        else:
            console.print(describe(entry), highlight=False, soft_wrap=True)


def describe(entry: dict[str, Any]) -> str:
    """One change as a line of rich markup."""
    at = datetime.fromtimestamp(entry["at"]).strftime("%H:%M:%S")
    previous = entry["previous"] if entry["previous"] is not None else "?"
    amount = entry["amount"] if entry["amount"] is not None else "?"
    delta = entry["delta"]
    if delta is None:
        shown = ""
    elif delta.startswith("-"):
        shown = f" [red]({delta})[/red]"
    else:
        shown = f" [green](+{delta})[/green]"
    block = "" if entry["block_height"] is None else f"  block {entry['block_height']}"
    line = (
        f"{at}  #{entry['seq']}  {entry['address']}  [bold]{entry['token']}[/bold]  "
        f"{previous} -> {amount}{shown}{block}"
    )
    if entry["type"] == "retraction":
        undone = "" if entry["retracts"] is None else f" #{entry['retracts']}"
        return f"[yellow]retracted{undone} (reorg)[/yellow]  {line}"
    return line


def _refusal(response: httpx.Response) -> str:
    try:
        body = response.json()
        message = body.get("message", response.text)
    except ValueError:
        message = response.text[:200]
    return f"the service answered {response.status_code}: {message}"


def _checked(addresses: Sequence[str], tokens: Sequence[str]) -> tuple[list[str], list[str]]:
    try:
        return [str(Principal.parse(a)) for a in addresses], [str(TokenId.parse(t)) for t in tokens]
    except BalancesError as error:
        fail(str(error), 2)


def watch(
    addresses: Annotated[list[str], typer.Argument(help="Addresses to watch.")],
    token: Annotated[
        list[str] | None, typer.Option("--token", help="Only this token (repeatable).")
    ] = None,
    after: Annotated[
        int | None, typer.Option("--after", min=0, help="Start after this sequence number.")
    ] = None,
    count: Annotated[
        int | None, typer.Option("--count", min=1, help="Stop after this many changes.")
    ] = None,
    url: Annotated[str, typer.Option("--url", help="The running service.")] = (
        "http://127.0.0.1:8000"
    ),
    as_json: JsonOption = False,
) -> None:
    """Print balance changes of ADDRESS... as they are applied (Ctrl-C to stop)."""
    principals, tokens = _checked(addresses, token or [])
    params = {"addresses": ",".join(principals)}
    if tokens:
        params["tokens"] = ",".join(tokens)
    run = Watch(url.rstrip("/"), params, as_json, count, after)
    try:
        asyncio.run(run.run())
    except StreamEndedError as ended:
        fail(str(ended), 1)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
