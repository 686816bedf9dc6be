"""``balances ingest run --source pull --once`` and ``balances ingest status [--json]``
on a local store, against the stand-in served in a thread (the commands run their
own event loop). Blocks are produced between commands; the cursor and the lag the
commands print are checked against the stand-in's tip.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from threaded_stand_in import ThreadedStandIn
from typer.testing import CliRunner, Result

from balances.cli import app
from balances.testing import BlockProducer, FakeChain, fake_address

POPULATION = [fake_address(f"cli-ingest-{i}") for i in range(12)]
runner = CliRunner()


@pytest.fixture
def produced() -> Iterator[tuple[ThreadedStandIn, BlockProducer]]:
    chain = FakeChain()
    producer = BlockProducer(chain, POPULATION, txs_per_block=10, seed=4)
    producer.produce_one()
    with ThreadedStandIn(chain) as running:
        yield running, producer


def invoke(stand_in: ThreadedStandIn, store: Path, producer: BlockProducer, *args: str) -> Result:
    env = {
        "BALANCES_NETWORKS__MAINNET__REQUESTS_PER_MINUTE": "100000",
        "BALANCES_NETWORKS__MAINNET__MAP_TOKENS": producer.map_token,
        "BALANCES_LAYOUT": "sharded",
        "BALANCES_INGEST__BLOCK_SECONDS": "0.1",
    }
    where = ["--store", f"file://{store}", "--chain-url", stand_in.url]
    return runner.invoke(app, [*args, *where], env=env)


def as_json(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    shown: dict[str, Any] = json.loads(result.stdout)
    return shown


def test_run_once_folds_to_the_tip_and_status_prints_the_cursor_and_lag(
    produced: tuple[ThreadedStandIn, BlockProducer], tmp_path: Path
) -> None:
    stand_in, producer = produced
    chain, store = stand_in.chain, tmp_path / "store"
    for address in POPULATION[:3]:
        tracked = runner.invoke(app, ["track", "add", address, "--store", f"file://{store}"])
        assert tracked.exit_code == 0, tracked.output

    before = as_json(invoke(stand_in, store, producer, "ingest", "status", "--json"))
    assert (before["cursor"], before["lag_blocks"]) == (None, None)
    assert before["tip"]["height"] == chain.tip_height

    first = as_json(
        invoke(stand_in, store, producer, "ingest", "run", "--source", "pull", "--once")
    )
    assert first["applied_blocks"] == 1  # a new store starts at the tip
    assert (first["cursor"]["height"], first["cursor"]["block_hash"]) == (
        chain.tip_height,
        chain.tip.hash,
    )
    assert first["lag_blocks"] == 0

    for _ in range(3):
        producer.produce_one()
    behind = as_json(invoke(stand_in, store, producer, "ingest", "status", "--json"))
    assert behind["cursor"]["height"] == chain.tip_height - 3
    assert behind["tip"]["height"] == chain.tip_height
    assert behind["lag_blocks"] == 3
    table = invoke(stand_in, store, producer, "ingest", "status")
    assert table.exit_code == 0, table.output
    assert f"height {chain.tip_height - 3}" in table.stdout
    assert "lag      3 blocks" in table.stdout

    caught = as_json(invoke(stand_in, store, producer, "ingest", "run", "--once"))
    assert caught["applied_blocks"] == 3
    assert caught["cursor"]["height"] == chain.tip_height
    assert caught["lag_blocks"] == 0
    assert caught["lag_seconds"] == 0
    after = as_json(invoke(stand_in, store, producer, "ingest", "status", "--json"))
    assert (after["cursor"]["block_hash"], after["lag_blocks"]) == (chain.tip.hash, 0)


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["--source", "carrier-pigeon", "--once"], "--source must be one of"),
        (["--source", "chainhook", "--once"], "--once needs the pull source"),
    ],
    ids=["unknown-source", "once-with-push"],
)
def test_bad_run_options_exit_2_and_write_nothing(
    produced: tuple[ThreadedStandIn, BlockProducer], tmp_path: Path, args: list[str], mentions: str
) -> None:
    stand_in, producer = produced
    store = tmp_path / "store"
    result = invoke(stand_in, store, producer, "ingest", "run", *args)
    assert result.exit_code == 2
    assert mentions in " ".join(result.stderr.split())
    status = as_json(invoke(stand_in, store, producer, "ingest", "status", "--json"))
    assert status["cursor"] is None


def test_status_with_the_chain_unreachable_names_the_error_and_no_lag(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    env = {"BALANCES_LAYOUT": "sharded"}
    where = ["--store", f"file://{tmp_path / 'store'}", "--chain-url", dead]
    result = runner.invoke(app, ["ingest", "status", "--json", *where], env=env)
    shown = as_json(result)
    assert shown["tip"] is None
    assert shown["lag_blocks"] is None
    assert shown["tip_error"]
