"""``balances history``, ``balances portfolio`` and ``balances backfill`` against the
Stacks API stand-in.

The commands call ``asyncio.run`` themselves, so the stand-in runs in a background
thread (uvicorn with its own event loop, as in ``test_cli_service.py``). The CLI uses
the real clock, so the ledger's history is laid out over the twelve days before the
tests start and ends an hour before; it does not move afterwards, so the ledger's
amount at any bucket end is the ground truth.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from threaded_stand_in import ThreadedStandIn
from typer.testing import CliRunner, Result

from balances.blobs import LocalBlobStore
from balances.cli import app
from balances.cli.history_cmds import BARS
from balances.domain import Granularity
from balances.prices import PricePoint
from balances.stores.prices import PriceStore
from balances.testing import FakeChain, fake_address

HOLDER = fake_address("cli-history-holder")
FRIEND = fake_address("cli-history-friend")
DEPLOYER = "SP2ZNGJ85ENDY6QRHQ5P2D4FXKGZWCKTB2T0Z55KS"
NATIVE = f"{DEPLOYER}.charisma-token"
#: The mainnet map token the service reads for everyone by default.
CREDIT = f"{DEPLOYER}.charisma-token-subnet-v1"
DAY = 86_400
ENV = {"BALANCES_NETWORKS__MAINNET__REQUESTS_PER_MINUTE": "100000"}

runner = CliRunner()


def history_chain() -> FakeChain:
    """Twelve days of HOLDER's activity in every kind of token, ending an hour ago."""
    end = int(time.time()) - 3_600
    chain = FakeChain(start_time=end - 12 * DAY)
    chain.add_native_token(NATIVE, "charisma", decimals=6, symbol="CHA", name="Charisma")
    chain.add_map_token(CREDIT, decimals=6, symbol="sCHA", name="Charisma Subnet")
    chain.mint("stx", HOLDER, 50_000_000)
    chain.mint(NATIVE, HOLDER, 9_000)
    for day in range(11):
        chain.advance_time(DAY - 3_000)
        chain.transfer("stx", HOLDER, FRIEND, 1_000_000 + 1_000 * day)
        if day % 2:
            chain.transfer(NATIVE, HOLDER, FRIEND, 100 + day)
        if day % 3 == 0:
            chain.deposit(CREDIT, HOLDER, 30 + day)
    assert chain.tip_time <= end
    return chain


@pytest.fixture(scope="module")
def stand_in() -> Iterator[ThreadedStandIn]:
    """The ledger above on loopback; read-only for the tests."""
    with ThreadedStandIn(history_chain()) as running:
        yield running


def invoke(*args: str, **env: str) -> Result:
    return runner.invoke(app, list(args), env={**ENV, **env})


def truth(chain: FakeChain, token: str, moment: float) -> int:
    block = chain.blocks.at_time(math.floor(moment))
    assert block is not None
    return chain.balance(token, HOLDER, at_height=block.height)


def first_move(chain: FakeChain, token: str) -> float:
    block = chain.blocks.at_height(chain.accounts(HOLDER)[token].heights[0])
    assert block is not None
    return float(block.time)


def bucket_moments(starts: list[str], end: str) -> list[float]:
    """Just before each bucket's end (the last bucket includes its end)."""
    parsed = [datetime.fromisoformat(s) for s in starts]
    ends = [*parsed[1:], datetime.fromisoformat(end)]
    return [e.timestamp() - (0 if i == len(ends) - 1 else 1e-3) for i, e in enumerate(ends)]


def expected_balances(
    chain: FakeChain, token: str, starts: list[str], end: str, since: float
) -> list[str | None]:
    return [
        None if moment < since else str(truth(chain, token, moment))
        for moment in bucket_moments(starts, end)
    ]


def sparkline_lines(output: str) -> list[str]:
    """Lines made of sparkline bars (and spaces, for unknown buckets), right-trimmed."""
    return [
        line.rstrip()
        for line in output.splitlines()
        if line.strip() and set(line) <= set(BARS + " ")
    ]


def assert_sparkline(line: str, buckets: int) -> None:
    """One character per bucket (trailing ones are never unknown); unknown buckets are
    spaces and come first; the known part falls from the highest bar to the lowest."""
    assert len(line) == buckets
    known = line.lstrip()
    assert known
    assert " " not in known
    assert known[0] == BARS[-1]
    assert known[-1] == BARS[0]


@pytest.fixture(scope="module")
def backfilled(stand_in: ThreadedStandIn, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A file store holding HOLDER's backfilled history (run through the CLI)."""
    store = f"file://{tmp_path_factory.mktemp('history') / 'store'}"
    result = invoke("backfill", HOLDER, "--json", "--chain-url", stand_in.url, "--store", store)
    assert result.exit_code == 0, result.output
    return store


# --- backfill ---------------------------------------------------------------------------------


def test_backfill_json_reports_a_finished_walk_and_a_rerun_is_a_no_op(
    stand_in: ThreadedStandIn, tmp_path: Path
) -> None:
    store = f"file://{tmp_path / 'store'}"
    result = invoke("backfill", HOLDER, "--json", "--chain-url", stand_in.url, "--store", store)
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.stdout)
    chain = stand_in.chain
    assert report["address"] == HOLDER
    assert (report["done"], report["resumed"], report["already_done"]) == (True, False, False)
    assert report["total_txs"] == report["txs_seen"] == len(chain.transactions_of(HOLDER))
    moved = sum(len(chain.accounts(HOLDER)[t].heights) for t in ("stx", NATIVE, CREDIT))
    assert report["total_points"] == report["points_written"] == moved
    assert report["stopped"] == {}
    assert report["residuals"] == {}
    for token in ("stx", NATIVE, CREDIT):
        first = datetime.fromisoformat(report["first_point"][token])
        assert first == datetime.fromtimestamp(first_move(chain, token), UTC)

    again = invoke("backfill", HOLDER, "--json", "--chain-url", stand_in.url, "--store", store)
    assert again.exit_code == 0, again.output
    [second] = json.loads(again.stdout)
    assert (second["already_done"], second["points_written"], second["txs_seen"]) == (True, 0, 0)

    text = invoke("backfill", HOLDER, "--chain-url", stand_in.url, "--store", store)
    assert text.exit_code == 0, text.output
    assert "already done" in text.stdout
    assert HOLDER in text.stdout


# --- history ----------------------------------------------------------------------------------


def test_history_json_after_backfill_matches_the_ledger(
    stand_in: ThreadedStandIn, backfilled: str
) -> None:
    for token, period, granularity in [
        ("stx", "30d", "day"),
        ("stx", "7d", "hour"),
        (NATIVE, "30d", "week"),
        (CREDIT, "30d", "auto"),
    ]:
        result = invoke(
            "history", HOLDER, token, "--json", "--period", period,
            "--granularity", granularity, "--chain-url", stand_in.url, "--store", backfilled,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        body = json.loads(result.stdout)
        expected_granularity = "day" if granularity == "auto" else granularity
        assert (body["token_id"], body["period"]) == (token, period)
        assert body["granularity"] == expected_granularity
        starts = [p["at"] for p in body["points"]]
        since = first_move(stand_in.chain, token)
        assert [p["balance"] for p in body["points"]] == expected_balances(
            stand_in.chain, token, starts, body["end"], since
        ), (token, period, granularity)
        assert body["points"][-1]["balance"] == str(stand_in.chain.balance(token, HOLDER))
        assert body["source"] in ("cache", "store", "chain")


def test_history_json_on_an_empty_store_starts_now(stand_in: ThreadedStandIn) -> None:
    result = invoke(
        "history", HOLDER, "stx", "--json", "--chain-url", stand_in.url, "--store", "memory://"
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert (body["period"], body["granularity"]) == ("30d", "day")
    assert len(body["points"]) == 31
    assert body["start_balance"] is None
    assert all(p["balance"] is None for p in body["points"][:-1])  # unknown, not zero
    assert body["points"][-1]["balance"] == str(stand_in.chain.balance("stx", HOLDER))
    assert body["source"] == "chain"
    assert body["block_height"] == stand_in.chain.tip_height


def test_history_with_an_explicit_range(stand_in: ThreadedStandIn, backfilled: str) -> None:
    start = datetime.fromtimestamp(stand_in.chain.tip_time, UTC) - timedelta(days=5, hours=3)
    end = start + timedelta(days=2)
    result = invoke(
        "history", HOLDER, "stx", "--json", "--granularity", "hour",
        "--from", start.isoformat(), "--to", str(int(end.timestamp())),
        "--chain-url", stand_in.url, "--store", backfilled,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["granularity"] == "hour"
    first = Granularity.HOUR.floor(start)
    assert len(body["points"]) == math.ceil((int(end.timestamp()) - first.timestamp()) / 3_600)
    starts = [p["at"] for p in body["points"]]
    assert datetime.fromisoformat(starts[0]) == first
    assert body["start_balance"] == str(truth(stand_in.chain, "stx", first.timestamp()))
    assert [p["balance"] for p in body["points"]] == expected_balances(
        stand_in.chain, "stx", starts, body["end"], 0
    )


def test_history_table_has_a_sparkline(stand_in: ThreadedStandIn, backfilled: str) -> None:
    result = invoke("history", HOLDER, "stx", "--chain-url", stand_in.url, "--store", backfilled)
    assert result.exit_code == 0, result.output
    assert "STX of" in result.stdout
    assert "30d by day" in result.stdout
    [line] = sparkline_lines(result.stdout)
    assert_sparkline(line, 31)  # the balance only went down
    current = Decimal(stand_in.chain.balance("stx", HOLDER)).scaleb(-6)
    assert f"{current:,}" in result.stdout


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (("--period", "2d"), "period"),
        (("--granularity", "minute"), "granularity"),
        (("--from", "2024-01-02T00:00:00Z"), "from"),
        (("--period", "1y", "--granularity", "5m"), "buckets"),
    ],
    ids=["period", "granularity", "only-from", "too-many-buckets"],
)
def test_bad_history_options_exit_2(
    stand_in: ThreadedStandIn, args: tuple[str, ...], mentions: str
) -> None:
    result = invoke(
        "history", HOLDER, "stx", "--json", *args,
        "--chain-url", stand_in.url, "--store", "memory://",
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert mentions in " ".join(result.stderr.split())


# --- portfolio ---------------------------------------------------------------------------------


def test_portfolio_json_lists_every_token_and_says_prices_are_missing(
    stand_in: ThreadedStandIn, backfilled: str
) -> None:
    result = invoke(
        "portfolio", HOLDER, "--json", "--period", "7d", "--granularity", "day",
        "--chain-url", stand_in.url, "--store", backfilled,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert (body["address"], body["period"], body["granularity"]) == (HOLDER, "7d", "day")
    tokens = {t["token_id"]: t for t in body["tokens"]}
    assert set(tokens) == {"stx", NATIVE, CREDIT}
    assert sorted(body["missing_prices"]) == sorted(tokens)
    starts = [b["at"] for b in body["buckets"]]
    for token in tokens:
        expected = expected_balances(stand_in.chain, token, starts, body["end"], 0)
        assert [b["balances"][token] for b in body["buckets"]] == expected, token
    assert all(b["total_usd"] is None for b in body["buckets"])
    assert all(v is None for b in body["buckets"] for v in b["usd"].values())


def test_portfolio_table_has_a_sparkline_of_usd_values(
    stand_in: ThreadedStandIn, tmp_path: Path
) -> None:
    root = tmp_path / "store"
    store = f"file://{root}"
    backfill = invoke("backfill", HOLDER, "--json", "--chain-url", stand_in.url, "--store", store)
    assert backfill.exit_code == 0, backfill.output
    start = datetime.fromtimestamp(stand_in.chain.tip_time - 20 * DAY, UTC)

    async def record_prices() -> None:
        async with LocalBlobStore(root) as blobs:
            await PriceStore(blobs).record({"stx": PricePoint(start, Decimal("2"))})

    asyncio.run(record_prices())
    env: dict[str, Any] = {"BALANCES_PRICES__URL_TEMPLATE": f"{stand_in.url}/prices/{{token_id}}"}
    result = invoke("portfolio", HOLDER, "--chain-url", stand_in.url, "--store", store, **env)
    assert result.exit_code == 0, result.output
    [line] = sparkline_lines(result.stdout)
    assert_sparkline(line, 31)
    value = Decimal(stand_in.chain.balance("stx", HOLDER)).scaleb(-6) * 2
    assert f"{value:,.2f}" in result.stdout
    assert "no price for" in " ".join(result.stdout.split())
    assert NATIVE in "".join(result.stdout.split())
    as_json = invoke(
        "portfolio", HOLDER, "--json", "--chain-url", stand_in.url, "--store", store, **env
    )
    assert as_json.exit_code == 0, as_json.output
    body = json.loads(as_json.stdout)
    assert set(body["missing_prices"]) == {NATIVE, CREDIT}
    assert {t["token_id"]: t["priced"] for t in body["tokens"]}["stx"] is True
    assert Decimal(body["buckets"][-1]["total_usd"]) == value
