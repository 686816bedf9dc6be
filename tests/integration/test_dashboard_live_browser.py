"""The dashboard's live rows in a real browser: chromium, headless, driven over the
DevTools protocol, against ``balances demo`` with a transfer every two seconds.

The page follows the address's change stream; once the demo's activity moves one of
its balances, the row must be marked as changed and show exactly the amount of the
feed entry it names (``data-seq``), in display units, as the server renders
amounts. The entry is read back from ``/stream/balances`` itself.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import subprocess
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_dashboard_browser import ADDRESS, CHROMIUM_FLAGS, require_chromium, running_demo
from websockets.sync.client import ClientConnection, connect

#: What the page shows of its rows and its stream, as JSON (evaluated in the page).
PAGE_STATE = """JSON.stringify({
  state: (document.querySelector('.live-status') || {dataset: {}}).dataset.state || null,
  changed: Array.from(document.querySelectorAll('tr.balance.is-changed')).map(r => ({
    token: r.dataset.token, decimals: r.dataset.decimals, amount: r.dataset.amount,
    seq: r.dataset.seq, text: r.querySelector('td.amount').textContent,
    source: r.querySelector('.badge.source').textContent,
  })),
})"""
WAIT_SECONDS = 120


class DevTools:
    """One page of a headless chromium, over the DevTools protocol (a WebSocket)."""

    def __init__(self, socket: ClientConnection) -> None:
        self._socket = socket
        self._ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self._ids)
        self._socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:  # events arrive in between; the answer carries our id
            message = json.loads(self._socket.recv(timeout=30))
            if message.get("id") == ident:
                assert "error" not in message, message
                result: dict[str, Any] = message["result"]
                return result

    def evaluate(self, expression: str) -> Any:
        found = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return found["result"].get("value")


@contextlib.contextmanager
def browser_page(chromium: Path, profile: Path) -> Iterator[DevTools]:
    command = [
        str(chromium),
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        "--remote-debugging-port=0",
        "about:blank",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port = _devtools_port(profile / "DevToolsActivePort", process)
        pages = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        target = next(page for page in pages if page["type"] == "page")
        with connect(target["webSocketDebuggerUrl"], max_size=None) as socket:
            yield DevTools(socket)
    finally:
        process.kill()
        process.wait()


def _devtools_port(path: Path, process: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "chromium exited before it listened"
        if path.exists() and path.read_text().strip():
            return int(path.read_text().split()[0])
        time.sleep(0.1)
    raise AssertionError("chromium did not open its DevTools port")


def _entry(demo: str, seq: int) -> dict[str, Any]:
    """Feed entry ``seq`` of the address, read from its stream (resuming after seq - 1)."""
    params = {"addresses": ADDRESS, "after": str(seq - 1)}
    with httpx.stream("GET", f"{demo}/stream/balances", params=params, timeout=30) as answer:
        assert answer.status_code == 200
        for line in answer.iter_lines():
            if line.startswith("data:"):
                entry: dict[str, Any] = json.loads(line.removeprefix("data:"))
                return entry
    raise AssertionError(f"the stream ended before entry {seq}")


def _display(amount: str, decimals: str) -> str:
    if not decimals:
        return f"{Decimal(amount):,f} base units"
    return f"{Decimal(f'{amount}E-{decimals}'):,f}"


@pytest.mark.timeout(300)
def test_rows_change_live_as_blocks_are_applied(tmp_path: Path) -> None:
    chromium = require_chromium()
    with running_demo(every=2) as demo, browser_page(chromium, tmp_path / "profile") as page:
        page.call("Page.navigate", url=f"{demo}/?address={ADDRESS}&period=7d&granularity=day")
        deadline = time.monotonic() + WAIT_SECONDS
        state: dict[str, Any] = {}
        while time.monotonic() < deadline:
            state = json.loads(page.evaluate(PAGE_STATE) or "{}")
            if state.get("changed"):
                break
            time.sleep(0.5)
        assert state.get("changed"), f"no row changed within {WAIT_SECONDS} s: {state}"
        assert state["state"] == "live"
        row = state["changed"][0]
        entry = _entry(demo, int(row["seq"]))
        assert entry["seq"] == int(row["seq"])
        assert _contract(entry["token"]) == _contract(row["token"])
        assert entry["amount"] == row["amount"]
        assert row["text"] == _display(entry["amount"], row["decimals"])
        assert row["source"] == "stream"


def _contract(token: str) -> str:
    """A row is keyed by its contract; an entry may name the contract's asset."""
    return token.partition("::")[0]
