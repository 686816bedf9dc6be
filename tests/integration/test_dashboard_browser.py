"""The dashboard in a real browser: Debian's chromium, headless, against ``balances demo``.

The demo runs in a subprocess, as a user would start it (the Stacks API stand-in
seeded with 30 days of history and prices). Chromium takes a screenshot and dumps
the DOM it rendered; the portfolio chart must hold one ``point`` per day bucket
with a value, as the portfolio route of the same server reports them.

Chromium is a system package: ``make test`` installs it through
``tools/ensure_chromium.sh``. Without it this test fails (it is not skipped), so a
missing browser cannot pass unnoticed.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = Path("/usr/bin/chromium")
ADDRESS = "SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7"
QUERY = f"address={ADDRESS}&period=30d&granularity=day"
#: 30 days back from now, floored to midnight UTC, up to today: 31 day buckets.
DAY_BUCKETS = 31
WINDOW = (1280, 1600)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    f"--window-size={WINDOW[0]},{WINDOW[1]}",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def require_chromium() -> Path:
    """Chromium's path; a test failure (not a skip) pointing at the installer without it."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: the dashboard browser test needs Debian's chromium. "
            "Run tools/ensure_chromium.sh (as root it installs it; `make test` runs it).",
            pytrace=False,
        )
    return CHROMIUM


def _wait_for(url: str, process: subprocess.Popen[bytes]) -> httpx.Response:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr.read().decode() if process.stderr else ""
            raise AssertionError(f"demo exited early ({process.returncode}): {stderr}")
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"nothing answered at {url}")


@contextmanager
def running_demo(every: float = 3600) -> Iterator[str]:
    """The base URL of ``balances demo --days 30``, with a transfer every ``every``
    seconds (by default none: a steady page)."""
    port, chain_port = _free_port(), _free_port()
    command = [
        sys.executable, "-m", "balances", "demo",
        "--port", str(port), "--chain-port", str(chain_port), "--days", "30",
        "--every", str(every),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        assert _wait_for(f"{base}/health", process).status_code == 200
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def _chromium(browser: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """One headless chromium run with its own profile directory."""
    command = [str(browser), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    done = subprocess.run(command, capture_output=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    return done


class PortfolioChart(HTMLParser):
    """The attributes of the portfolio chart's ``<svg>`` and its ``point`` elements."""

    def __init__(self) -> None:
        super().__init__()
        self.svg: dict[str, Any] | None = None
        self.points = 0
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "svg" and found.get("data-chart") == "portfolio":
            self.svg, self._inside = found, True
        elif self._inside and "point" in (found.get("class") or "").split():
            self.points += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._inside = False


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE, "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.timeout(240)
def test_the_dashboard_renders_in_chromium(tmp_path: Path) -> None:
    chromium = require_chromium()  # before the demo starts: fail fast, with the fix
    with running_demo() as demo:
        check_dashboard(chromium, demo, tmp_path)


def check_dashboard(chromium: Path, demo: str, tmp_path: Path) -> None:
    url = f"{demo}/?{QUERY}"
    portfolio = httpx.get(f"{demo}/balances/{ADDRESS}/portfolio?period=30d&granularity=day")
    buckets = portfolio.json()["buckets"]
    assert len(buckets) == DAY_BUCKETS
    valued = sum(bucket["total_usd"] is not None for bucket in buckets)
    assert valued >= DAY_BUCKETS - 2, "the demo has prices for (nearly) the whole month"

    screenshot = tmp_path / "dashboard.png"
    _chromium(chromium, tmp_path / "shot-profile", f"--screenshot={screenshot}", url)
    data = screenshot.read_bytes()
    assert _png_size(data) == WINDOW
    assert len(data) > 30_000, f"a {len(data)}-byte screenshot is a blank page"

    dom = _chromium(chromium, tmp_path / "dom-profile", "--dump-dom", url).stdout.decode()
    chart = PortfolioChart()
    chart.feed(dom)
    assert chart.svg is not None, dom[:3000]
    assert int(chart.svg["data-buckets"]) == DAY_BUCKETS
    assert int(chart.svg["data-points"]) == valued
    assert chart.points == valued
    assert "Current balances" in dom
    assert ADDRESS in dom
