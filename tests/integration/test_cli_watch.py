"""``balances watch`` against a served service that ingests the stand-in's blocks:
it prints every change in feed order, resumes after a dropped connection and a
cut-off without losing or repeating one, and refuses bad input."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from ingest_rig import POPULATION, Rig, rig_on, serve_api
from test_change_stream import feed_entries, feed_of
from typer.testing import CliRunner, Result

from balances.cli import app
from balances.domain.feed import FeedFilter
from balances.testing import FakeChain, FakeChainServer

WATCHED = POPULATION[:10]


@pytest.fixture
async def rig(fake_chain: FakeChain, fake_chain_server: FakeChainServer) -> AsyncIterator[Rig]:
    async with rig_on(fake_chain, fake_chain_server) as built:
        yield built


async def watch(*args: str) -> Result:
    """The command in a thread (it runs its own event loop), with a time limit."""
    runner = CliRunner()
    async with asyncio.timeout(60):
        return await asyncio.to_thread(runner.invoke, app, ["watch", *args])


async def test_json_lines_are_the_feed_entries_in_order(rig: Rig) -> None:
    feed = feed_of(rig.service)
    mark = feed.last_seq
    await rig.produce(3)
    await rig.ingestion.run_once()
    expected = await feed_entries(feed, mark, FeedFilter.of(WATCHED))
    assert len(expected) >= 2
    async with serve_api(rig.service) as client:
        url = str(client.base_url)
        result = await watch(
            *WATCHED, "--after", str(mark), "--count", str(len(expected)), "--json", "--url", url
        )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines == [entry.to_json() for entry in expected]


async def test_live_changes_print_as_they_happen_with_rich_lines(rig: Rig) -> None:
    feed = feed_of(rig.service)
    mark = feed.last_seq
    async with serve_api(rig.service) as client:
        url = str(client.base_url)
        running = asyncio.create_task(
            watch(*WATCHED, "--after", str(mark), "--count", "2", "--url", url)
        )
        await asyncio.sleep(0.5)
        await rig.produce(3)
        await rig.ingestion.run_once()
        result = await running
    expected = (await feed_entries(feed, mark, FeedFilter.of(WATCHED)))[:2]
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    for line, entry in zip(lines, expected, strict=True):
        assert f"#{entry.seq}" in line
        assert entry.change.address in line
        assert f"{entry.change.previous} -> {entry.change.amount}" in line


async def test_a_cut_off_watcher_resumes_and_loses_nothing(rig: Rig) -> None:
    feed = feed_of(rig.service)
    feed.hub.queue_limit = 1  # every live batch beyond one cuts the watcher off
    mark = feed.last_seq
    async with serve_api(rig.service) as client:
        url = str(client.base_url)
        await rig.produce(2)
        await rig.ingestion.run_once()
        expected = await feed_entries(feed, mark, FeedFilter.of(POPULATION))
        result = await watch(
            *POPULATION, "--after", str(mark), "--count", str(len(expected)), "--json", "--url", url
        )
    assert result.exit_code == 0, result.output
    seqs = [json.loads(line)["seq"] for line in result.stdout.splitlines()]
    assert seqs == [entry.seq for entry in expected]


async def test_bad_input_exits_2_with_a_message() -> None:
    result = await watch("not-an-address", "--url", "http://127.0.0.1:9")
    assert result.exit_code == 2
    assert "not-an-address" in result.stderr


async def test_a_position_the_feed_no_longer_holds_exits_1(rig: Rig) -> None:
    feed = feed_of(rig.service)
    for _ in range(2):
        await rig.produce(2)
        await rig.ingestion.run_once()
        await rig.ingestion.ingestor.flush()
    assert await feed.reader.prune(older_than=10**12) >= 1  # every segment but the newest
    async with serve_api(rig.service) as client:
        result = await watch(*WATCHED, "--after", "0", "--url", str(client.base_url))
    assert result.exit_code == 1, result.output
    assert "410" in result.stderr
    assert "re-read the snapshot" in result.stderr
    assert result.stdout == ""
