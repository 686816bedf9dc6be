"""The ``balances`` commands that run the service: balance, sync, track, and demo.

The commands call ``asyncio.run`` themselves, so the Stacks API stand-in runs in a
background thread: uvicorn serving :func:`balances.testing.demo_chain`, the ledger
``balances testing fake-chain`` serves. Expected amounts come from that same
in-process ledger. ``demo`` runs in a subprocess, as a user would start it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from threaded_stand_in import ThreadedStandIn
from typer.testing import CliRunner, Result

from balances.cli import app
from balances.testing import (
    CHARISMA_SUBNET,
    DEMO_ADDRESSES,
    FakeChain,
    demo_chain,
    fake_address,
)

ALICE, BOB = DEMO_ADDRESSES[0], DEMO_ADDRESSES[1]
SBTC = "SM3VDXK3WZZSA84XXFKAFAF15NNZX32CTSG82JFQ4.sbtc-token"
ALEX = "SP3K8BC0PPEVCV7NZ6QSRWPQ2JE9E5B6N3PA0KBR9.age000-governance-token"
BAD_CHECKSUM = ALICE[:-1] + ("8" if ALICE[-1] != "8" else "9")
TESTNET = fake_address("someone on testnet", "testnet")
#: The default mainnet limit (25 a minute) would make these tests wait.
ENV = {"BALANCES_NETWORKS__MAINNET__REQUESTS_PER_MINUTE": "100000"}

runner = CliRunner()


@pytest.fixture(scope="module")
def stand_in() -> Iterator[ThreadedStandIn]:
    """The demo ledger on loopback; read-only for the tests (they only read it)."""
    with ThreadedStandIn(demo_chain()) as running:
        yield running


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def dead_url() -> str:
    """A loopback URL nothing listens on."""
    return f"http://127.0.0.1:{_free_port()}"


def invoke(*args: str, **env: str) -> Result:
    return runner.invoke(app, list(args), env={**ENV, **env})


def _held(chain: FakeChain, address: str) -> dict[str, int]:
    """Every non-zero balance of ``address`` on the ledger."""
    balances = {token: chain.balance(token, address) for token in chain.accounts(address)}
    return {token: amount for token, amount in balances.items() if amount > 0}


def _amounts(items: list[dict[str, Any]]) -> dict[str, int]:
    return {item["token_id"]: int(item["balance"]) for item in items}


def _one_line(text: str) -> str:
    """Rich wraps long messages at the terminal width."""
    return " ".join(text.split())


# --- balance ---------------------------------------------------------------------------


def test_balance_json_prints_every_held_balance(stand_in: ThreadedStandIn) -> None:
    result = invoke("balance", ALICE, "--json", "--chain-url", stand_in.url, "--store", "memory://")
    assert result.exit_code == 0, result.output
    items = json.loads(result.stdout)
    expected = _held(stand_in.chain, ALICE)
    assert CHARISMA_SUBNET in expected, "the demo holder has map-based credits too"
    assert _amounts(items) == expected
    for item in items:
        assert item["address"] == ALICE
        assert (item["source"], item["stale"], item["error"]) == ("chain", False, None)
        assert item["block_height"] == stand_in.chain.tip_height
        assert item["updated_at"] is not None
    by_token = {item["token_id"]: item for item in items}
    assert (by_token["stx"]["decimals"], by_token["stx"]["symbol"]) == (6, "STX")
    # the answer did not wait on metadata; it says so
    assert (by_token[SBTC]["decimals"], by_token[SBTC]["metadata"]) == (None, "pending")


def test_metadata_fetched_after_one_answer_is_there_for_the_next(
    stand_in: ThreadedStandIn, tmp_path: Path
) -> None:
    where = ["--chain-url", stand_in.url, "--store", f"file://{tmp_path}"]
    first = invoke("balance", ALICE, "--json", *where)
    assert first.exit_code == 0, first.output
    assert "balances tokens sync" not in first.stderr  # JSON: no hint on stderr
    second = invoke("balance", ALICE, "--json", *where)
    by_token = {item["token_id"]: item for item in json.loads(second.stdout)}
    assert (by_token[SBTC]["decimals"], by_token[SBTC]["symbol"]) == (8, "sBTC")
    assert by_token[SBTC]["metadata"] == "known"
    table = invoke("balance", ALICE, "--chain-url", stand_in.url, "--store", "memory://")
    assert "decimals are not known yet" in _one_line(table.stderr)


@pytest.mark.parametrize(
    ("token", "ledger_token"),
    [("stx", "stx"), (SBTC, SBTC), (f"{ALEX}::alex", ALEX), (CHARISMA_SUBNET, CHARISMA_SUBNET)],
    ids=["stx", "contract-id", "asset-identifier", "map-token"],
)
def test_balance_of_one_token(stand_in: ThreadedStandIn, token: str, ledger_token: str) -> None:
    result = invoke(
        "balance", ALICE, token, "--json", "--chain-url", stand_in.url, "--store", "memory://"
    )
    assert result.exit_code == 0, result.output
    [item] = json.loads(result.stdout)
    assert item["token_id"] == ledger_token
    assert item["balance"] == str(stand_in.chain.balance(ledger_token, ALICE))


def test_balance_without_json_prints_a_table_with_whole_amounts(
    stand_in: ThreadedStandIn,
) -> None:
    """The table is what people read: the amount asked for must be shown in full.

    Run without a terminal (CliRunner, a pipe, a log), rich lays the table out in 80
    columns; a single STX row must still fit its balance.
    """
    result = invoke("balance", ALICE, "stx", "--chain-url", stand_in.url, "--store", "memory://")
    assert result.exit_code == 0, result.output
    assert ALICE in result.stdout
    assert "STX" in result.stdout
    assert str(stand_in.chain.tip_height) in result.stdout
    amount = stand_in.chain.balance("stx", ALICE)
    assert f"{Decimal(amount).scaleb(-6):,}" in result.stdout, result.stdout
    assert str(amount) in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("address", "mentions"),
    [(BAD_CHECKSUM, "checksum"), (TESTNET, "testnet")],
    ids=["bad-checksum", "testnet-on-mainnet"],
)
def test_a_bad_address_exits_2_with_a_clear_message(
    stand_in: ThreadedStandIn, address: str, mentions: str
) -> None:
    result = invoke("balance", address, "--json", "--chain-url", stand_in.url)
    assert result.exit_code == 2
    assert result.stdout == ""
    message = _one_line(result.stderr)
    assert message.startswith("error:")
    assert mentions in message
    assert address in message


def test_a_bad_token_id_exits_2(stand_in: ThreadedStandIn) -> None:
    result = invoke("balance", ALICE, "SP123", "--json", "--chain-url", stand_in.url)
    assert result.exit_code == 2
    assert "is not a token id" in _one_line(result.stderr)


def test_an_unreachable_chain_exits_1_with_a_clear_message(dead_url: str) -> None:
    result = invoke("balance", ALICE, "--json", "--chain-url", dead_url, "--store", "memory://")
    assert result.exit_code == 1
    assert result.stdout == "", "nothing is printed, least of all a zero"
    message = _one_line(result.stderr)
    assert "ChainUnavailableError" in message
    assert "could not be reached" in message


def test_a_bad_store_url_fails_naming_the_accepted_schemes(stand_in: ThreadedStandIn) -> None:
    result = invoke("balance", ALICE, "--chain-url", stand_in.url, "--store", "nope://x")
    assert result.exit_code != 0
    assert result.stdout == ""
    message = _one_line(result.stderr)
    assert "nope://" in message
    assert "file://" in message
    assert "memory://" in message


# --- sync and the store ------------------------------------------------------------------


def test_sync_reads_every_address_and_stores_them(
    stand_in: ThreadedStandIn, dead_url: str, tmp_path: Path
) -> None:
    store = f"file://{tmp_path / 'store'}"
    result = invoke("sync", ALICE, BOB, "--json", "--chain-url", stand_in.url, "--store", store)
    assert result.exit_code == 0, result.output
    synced = json.loads(result.stdout)
    assert set(synced) == {ALICE, BOB}
    for address in (ALICE, BOB):
        amounts = _amounts(synced[address])
        assert {t: n for t, n in amounts.items() if n} == _held(stand_in.chain, address)
        assert {item["source"] for item in synced[address]} == {"chain"}

    # the chain is gone; the store still answers, fresh (read moments ago)
    stored = invoke("balance", ALICE, "--json", "--chain-url", dead_url, "--store", store)
    assert stored.exit_code == 0, stored.output
    items = json.loads(stored.stdout)
    assert _amounts(items) == _held(stand_in.chain, ALICE)
    assert {(i["source"], i["stale"], i["error"]) for i in items} == {("store", False, None)}

    # past the staleness limit the chain is asked, fails, and the stored amounts are
    # served marked stale with the error
    stale = invoke(
        "balance", ALICE, "--json", "--chain-url", dead_url, "--store", store,
        BALANCES_STALE_AFTER="0.001",
    )  # fmt: skip
    assert stale.exit_code == 0, stale.output
    items = json.loads(stale.stdout)
    assert _amounts(items) == _held(stand_in.chain, ALICE)
    assert all(item["stale"] is True for item in items)
    assert all("could not be reached" in item["error"] for item in items)
    assert all(item["source"] != "chain" for item in items)


def test_sync_reports_a_bad_address_and_exits_1(stand_in: ThreadedStandIn) -> None:
    result = invoke(
        "sync", ALICE, BAD_CHECKSUM, "--json", "--chain-url", stand_in.url, "--store", "memory://"
    )
    assert result.exit_code == 1
    synced = json.loads(result.stdout)
    assert _amounts(synced[ALICE])["stx"] == stand_in.chain.balance("stx", ALICE)
    assert isinstance(synced[BAD_CHECKSUM], str)
    assert "checksum" in synced[BAD_CHECKSUM]


def test_sync_with_an_unreachable_chain_exits_1(dead_url: str) -> None:
    result = invoke("sync", ALICE, "--json", "--chain-url", dead_url, "--store", "memory://")
    assert result.exit_code == 1
    assert "could not be reached" in json.loads(result.stdout)[ALICE]


# --- track ---------------------------------------------------------------------------------


def _tracked(store: str) -> list[dict[str, Any]]:
    result = invoke("track", "list", "--json", "--store", store)
    assert result.exit_code == 0, result.output
    entries: list[dict[str, Any]] = json.loads(result.stdout)
    return entries


def test_tracking_persists_across_invocations(tmp_path: Path) -> None:
    store = f"file://{tmp_path / 'store'}"
    assert _tracked(store) == []

    added = invoke("track", "add", ALICE, "--store", store)
    assert added.exit_code == 0, added.output
    assert f"tracking {ALICE}" in added.stdout
    with_tokens = invoke("track", "add", BOB, CHARISMA_SUBNET, "--store", store)
    assert with_tokens.exit_code == 0, with_tokens.output
    assert CHARISMA_SUBNET in _one_line(with_tokens.stdout)

    entries = {entry["address"]: entry for entry in _tracked(store)}
    assert set(entries) == {ALICE, BOB}
    assert entries[ALICE]["tokens"] == []
    assert entries[BOB]["tokens"] == [CHARISMA_SUBNET]
    assert abs(entries[ALICE]["since"] - time.time()) < 600

    removed = invoke("track", "remove", ALICE, "--store", store)
    assert removed.exit_code == 0, removed.output
    assert "no longer tracked" in removed.stdout
    assert [entry["address"] for entry in _tracked(store)] == [BOB]

    again = invoke("track", "remove", ALICE, "--store", store)
    assert again.exit_code == 0
    assert "was not tracked" in again.stdout


def test_track_add_rejects_a_bad_address(tmp_path: Path) -> None:
    store = f"file://{tmp_path / 'store'}"
    result = invoke("track", "add", BAD_CHECKSUM, "--store", store)
    assert result.exit_code == 2
    assert "checksum" in _one_line(result.stderr)
    assert _tracked(store) == []


# --- demo ------------------------------------------------------------------------------------


def _wait_for(url: str, process: subprocess.Popen[bytes]) -> httpx.Response:
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr.read().decode() if process.stderr else ""
            raise AssertionError(f"demo exited early ({process.returncode}): {stderr}")
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"nothing answered at {url}")


@pytest.mark.timeout(90)
def test_demo_serves_the_api_on_the_stand_in_and_stops_on_sigint() -> None:
    port, chain_port = _free_port(), _free_port()
    command = [
        sys.executable, "-m", "balances", "demo",
        "--port", str(port), "--chain-port", str(chain_port), "--days", "3",
        "--every", "3600",  # no live activity: the tip stays where it is
    ]  # fmt: skip
    process = subprocess.Popen(
        command, env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    try:
        health = _wait_for(f"{base}/health", process)
        assert health.status_code == 200
        assert (health.json()["status"], health.json()["network"]) == ("ok", "demo")
        assert health.json()["tracked_addresses"] == len(DEMO_ADDRESSES)

        answer = httpx.get(f"{base}/balances/{ALICE}", timeout=10)
        assert answer.status_code == 200
        balances = answer.json()["balances"]
        assert balances
        assert {item["source"] for item in balances} <= {"chain", "cache", "store"}
        # the demo's ledger is demo_chain(days=3), whose amounts do not depend on the date
        assert _amounts(balances) == _held(demo_chain(days=3), ALICE)

        chain_info = httpx.get(f"http://127.0.0.1:{chain_port}/extended", timeout=5)
        assert chain_info.json()["chain_tip"]["block_height"] == balances[0]["block_height"]

        refreshed = httpx.post(
            f"{base}/balances/{ALICE}/refresh", headers={"x-api-key": "demo"}, timeout=10
        )
        assert refreshed.status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 0
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base}/health", timeout=2)
